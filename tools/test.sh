#!/usr/bin/env bash
# The whole test suite, from a fresh Debian or Ubuntu machine with rustup:
#   bash tools/test.sh
# Installs what the tests need, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use (QEMU, squashfs-tools, … as they arrive).
packages=(ca-certificates curl qemu-system-x86 qemu-system-arm squashfs-tools cpio dosfstools mtools fdisk gdisk zstd xz-utils attr e2fsprogs openssh-client)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# rustup reads rust-toolchain.toml and installs the pinned toolchain; the
# musl targets stage 1 is built for are added explicitly (an already
# installed toolchain does not get them automatically).
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl

# --no-fail-fast: every failing test binary is reported, not only the first.
cargo test --workspace --locked --no-fail-fast "$@"
