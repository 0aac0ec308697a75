#!/usr/bin/env bash
# Installs what building MicrOS and booting its systems needs on a fresh
# Debian or Ubuntu machine, as root or through sudo: a C compiler (some of
# MicrOS's compression libraries are C) and QEMU. The README's main command
# runs it before `cargo run`.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/lib.sh
install_packages ca-certificates gcc libc6-dev qemu-system-x86
