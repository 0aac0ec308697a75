#!/usr/bin/env bash
# Benchmark: how a build's cost grows with the image. Three systems —
# minimal (busybox, runit, the QEMU profile), with sshd, and with a large
# package set (python3-minimal) — each built cold (resolve, download,
# build) and warm (everything cached), with wall time, peak memory and
# artifact sizes.
#
#   bash bench/scaling.sh            # suite trixie
#   SUITE=stable bash bench/scaling.sh
#
# Needs Debian's archive (MICROS_MIRROR or the host's apt sources).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

measure() { # name → "wall-seconds peak-KiB", building $work/$name
    /usr/bin/time -f "%e %M" -o "$work/time" "$micros" build "$work/$1/system.ncl" -o "$work/$1/result" \
        > "$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; exit 1; }
    cat "$work/time"
}

echo "build cost by image size, suite $suite, $(nproc) cores (each system has its own empty cache for the cold build)"
for name in minimal sshd python; do
    mkdir -p "$work/$name"
    case "$name" in
        minimal) extra="" ;;
        sshd) extra="services.sshd.enable = true," ;;
        python) extra="services.sshd.enable = true, environment.packages.python3-minimal = true," ;;
    esac
    cat > "$work/$name/system.ncl" <<NCL
let micros = import "micros" in
micros.system { modules = [
  micros.profiles.minimal,
  micros.profiles.qemu,
  { packages.source.suite = "$suite", $extra },
] }
NCL
    export MICROS_CACHE_DIR="$work/cache-$name"
    read -r cold_s cold_kib < <(measure "$name")
    read -r warm_s warm_kib < <(measure "$name")
    packages=$(grep -c '^\[\[package\]\]' "$work/$name/micros.lock")
    row "$name: locked packages" "$packages"
    row "$name: root.squashfs bytes" "$(stat -c %s "$work/$name/result/root.squashfs")"
    row "$name: cold build s" "$cold_s"
    row "$name: cold build peak RSS MiB" "$((cold_kib / 1024))"
    row "$name: warm build s" "$warm_s"
    row "$name: warm build peak RSS MiB" "$((warm_kib / 1024))"
done
