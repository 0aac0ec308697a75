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
    fdisk gdisk zstd xz-utils attr e2fsprogs openssh-client device-tree-compiler \
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

# QEMU emulates a guest on one core, so the suite runs its guests in two
# lanes to use both: the two power-cut tests and the Pi 2 card's updates
# (the second lane, about as long as all the rest) run their test binaries directly, as cargo would,
# beside the rest (the first lane, through cargo). With arguments (a
# filter, `-- --nocapture`), everything runs in one lane through cargo, as
# asked.
second_lane=(power_cut_qemu pi_power_cut_qemu pi2_update_qemu)
second_lane_tests=(
    needs_network_and_qemu_power_cuts_anywhere_in_an_update_leave_a_whole_slot_and_the_data
    needs_network_and_qemu_power_cuts_anywhere_in_a_pi_card_update_leave_a_whole_slot_and_the_data
    needs_network_and_qemu_a_pi_2_card_updates_itself_and_a_failing_version_rolls_back
)

# --no-fail-fast: every failing test binary is reported, not only the first.
status=0
if [ "$#" -gt 0 ]; then
    cargo test --workspace --locked --no-fail-fast "$@" || status=$?
else
    # Builds everything first (the first lane's cargo then only runs), and
    # lists the test binaries of the same build (the same packages, so the
    # same features: nothing is built twice).
    cargo test --workspace --locked --no-run
    binaries=$(cargo test --workspace --locked --no-run --message-format=json \
        | grep '"kind":\["test"\]' | grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' || true)
    for name in "${second_lane[@]}"; do
        if [ "$(echo "$binaries" | grep -c "/deps/${name}-")" -ne 1 ]; then
            echo "tools/test.sh: no single test binary for tests/$name.rs among: $binaries" >&2
            exit 1
        fi
    done
    lane_log="${CARGO_TARGET_DIR:-target}/tmp/second-lane.log"
    (
        cd crates/micros
        lane_status=0
        for name in "${second_lane[@]}"; do
            binary=$(echo "$binaries" | grep "/deps/${name}-")
            echo "     Running tests/$name.rs ($binary, second lane)"
            "$binary" || lane_status=1
        done
        exit "$lane_status"
    ) > "$lane_log" 2>&1 &
    lane=$!
    skips=()
    for name in "${second_lane_tests[@]}"; do skips+=(--skip "$name"); done
    cargo test --workspace --locked --no-fail-fast -- "${skips[@]}" || status=$?
    wait "$lane" || status=1
    echo "--- the second lane: ${second_lane[*]}"
    cat "$lane_log"
fi
echo "QEMU boots: $(grep -c '^boot' "$ledger" || true) started, $(grep -c '^retry' "$ledger" || true) of them again because the emulator brought a guest down"
exit "$status"
