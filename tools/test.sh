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

# rustup reads rust-toolchain.toml and installs the pinned toolchain with
# its components when it runs cargo below; stage 1 is built from its
# rust-src, which micros-system's build adds where the toolchain was
# already installed without it.

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
