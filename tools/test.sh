#!/usr/bin/env bash
# The whole test suite, from a fresh Debian or Ubuntu machine with rustup:
#   bash tools/test.sh
# Installs what the tests need, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use (QEMU from bookworm-backports on Debian 12:
# see tools/lib.sh).
. tools/lib.sh
install_packages ca-certificates curl git gcc libc6-dev squashfs-tools cpio dosfstools mtools \
    fdisk gdisk zstd xz-utils attr e2fsprogs openssh-client \
    qemu-system-x86 qemu-system-arm qemu-system-misc

# rustup reads rust-toolchain.toml and installs the pinned toolchain; the
# musl targets stage 1 is built for are added explicitly (an already
# installed toolchain does not get them automatically).
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl

# Stage 1 for the 32-bit ARM boards: rustup has no musl standard library
# for them where MicrOS is developed, so micros-system's build.rs builds it
# from rust-src (-Zbuild-std) and links with zig, which carries musl for
# every architecture. zig comes from PyPI (`ziglang`), in a venv of its own.
rustup component add rust-src >/dev/null 2>&1 || echo "warning: rust-src is not installed: no stage 1 for armv7l/armv6l" >&2
zig_venv="${XDG_CACHE_HOME:-$HOME/.cache}/micros-tools/zig-0.17.1"
if ! "$zig_venv/bin/python" -m ziglang version >/dev/null 2>&1; then
    rm -rf "$zig_venv"
    python3 -m venv "$zig_venv"
    "$zig_venv/bin/pip" install -q "ziglang==0.17.1"
fi
export MICROS_ZIG="$zig_venv/bin/python -m ziglang"

# Every QEMU start is a line in this ledger (the tests' support code writes
# it): how many boots were started again because the emulator brought the
# guest down is part of the summary.
ledger="${CARGO_TARGET_DIR:-target}/tmp/qemu-boots.log"
mkdir -p "$(dirname "$ledger")" && : > "$ledger"

# --no-fail-fast: every failing test binary is reported, not only the first.
status=0
cargo test --workspace --locked --no-fail-fast "$@" || status=$?
echo "QEMU boots: $(grep -c '^boot' "$ledger" || true) started, $(grep -c '^retry' "$ledger" || true) of them again because the emulator brought a guest down"
exit "$status"
