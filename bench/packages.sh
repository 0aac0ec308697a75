#!/usr/bin/env bash
# Benchmark: resolving and fetching the minimal package set (busybox-static,
# runit and the kernel of examples/qemu.ncl) with a cold cache, a warm cache,
# and from an up-to-date lock with a warm cache.
#
#   bash bench/packages.sh            # suite from the example (trixie)
#   SUITE=stable bash bench/packages.sh
#
# Needs Debian's archive (MICROS_MIRROR or the host's apt sources).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
cat > "$work/system.ncl" <<NCL
let micros = import "micros" in
micros.system { modules = [ micros.profiles.minimal, micros.profiles.qemu, { packages.source.suite = "$suite" } ] }
NCL
export MICROS_CACHE_DIR="$work/cache"

time_it() { # label, command...
    local label="$1"; shift
    local start end
    start=$(date +%s.%N)
    "$@" > "$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
    end=$(date +%s.%N)
    printf '%-52s %8.3f s\n' "$label" "$(echo "$end - $start" | bc)"
}

echo "micros $("$micros" --version | cut -d' ' -f2), suite $suite, $(nproc) cores"
time_it "cold cache: resolve + fetch (micros fetch)" "$micros" fetch "$work/system.ncl"
grep -E "packages" "$work/out.txt" | tail -1
rm "$work/micros.lock"
time_it "warm cache, no lock: resolve + fetch" "$micros" fetch "$work/system.ncl"
runs=10
start=$(date +%s.%N)
for _ in $(seq $runs); do "$micros" fetch --locked "$work/system.ncl" > /dev/null; done
end=$(date +%s.%N)
printf '%-52s %8.3f s (mean of %d)\n' "lock + warm cache: micros fetch --locked" "$(echo "($end - $start) / $runs" | bc -l)" "$runs"
start=$(date +%s.%N)
for _ in $(seq $runs); do "$micros" lock --offline "$work/system.ncl" > /dev/null; done
end=$(date +%s.%N)
printf '%-52s %8.3f s (mean of %d)\n' "lock + warm cache: micros lock --offline" "$(echo "($end - $start) / $runs" | bc -l)" "$runs"
