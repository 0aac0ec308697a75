#!/usr/bin/env bash
# Benchmark: building examples/qemu.ncl with micros (cold and warm cache)
# next to mmdebstrap + mksquashfs for the same package set, in one run;
# artifact sizes; boot time to a runit service (guest uptime, several
# boots); the smallest -m that still boots.
#
#   bash bench/build.sh              # suite trixie
#   SUITE=stable BOOTS=5 bash bench/build.sh
#
# Needs Debian's archive (MICROS_MIRROR or the host's apt sources), QEMU,
# mmdebstrap and squashfs-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
boots="${BOOTS:-5}"
export MICROS_CACHE_DIR="$work/cache"

cat > "$work/system.ncl" <<NCL
let micros = import "micros" in
micros.system { modules = [
  micros.profiles.minimal,
  micros.profiles.qemu,
  { packages.source.suite = "$suite" },
  { runit.services.ready = { oneshot = true, command = "sh -c 'echo MARKER-READY \$(cut -d\" \" -f1 /proc/uptime); /usr/sbin/poweroff'" } },
] }
NCL

seconds() { # command... → wall seconds
    local start end
    start=$(date +%s.%N)
    "$@" > "$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

echo "micros build of examples/qemu.ncl (plus a marker service), suite $suite, $(nproc) cores"
cold=$(seconds "$micros" build "$work/system.ncl" -o "$work/result")
warm=$(seconds "$micros" build --offline "$work/system.ncl" -o "$work/result")
row "micros build, cold cache (resolve, download, build) s" "$cold"
row "micros build, warm cache s" "$warm"
row "  initrd bytes" "$(stat -c %s "$work/result/initrd")"
row "  root.squashfs bytes (zstd)" "$(stat -c %s "$work/result/root.squashfs")"
row "  kernel bytes" "$(stat -c %s "$work/result/kernel")"

# The same package set, the way a user would without MicrOS. mmdebstrap
# needs the essential set: dpkg cannot run runit's maintainer scripts
# without it (--variant=custom fails on trixie).
mirror="${MICROS_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)}"
packages="busybox-static,runit,linux-image-cloud-amd64"
mm=$(seconds mmdebstrap --variant=essential --include="$packages" --mode=unshare --format=directory "$suite" "$work/mm" "$mirror")
sq=$(seconds mksquashfs "$work/mm" "$work/mm.squashfs" -comp zstd -noappend -quiet)
row "mmdebstrap --variant=essential s" "$mm"
row "mksquashfs (zstd) of that tree s" "$sq"
row "  tree bytes (du)" "$(du -sb "$work/mm" | cut -f1)"
row "  squashfs bytes" "$(stat -c %s "$work/mm.squashfs")"
row "ratio: (mmdebstrap + mksquashfs) / micros warm build" "$(echo "($mm + $sq) / $warm" | bc -l | cut -c1-6)"
row "ratio: squashfs bytes, mmdebstrap / micros" "$(echo "$(stat -c %s "$work/mm.squashfs") / $(stat -c %s "$work/result/root.squashfs")" | bc -l | cut -c1-6)"

faults=0
boot_uptime() { # memory → guest uptime at the marker, or nothing
    local log="$work/boot.log"
    for _ in 1 2 3; do
        timeout 120 "$work/result/run-vm" -m "$1" > "$log" 2>&1 || true
        # QEMU 7.2's TCG sometimes double-faults the kernel in early boot
        # (before MicrOS runs): count it and boot again.
        grep -q "Oops: double fault" "$log" || break
        faults=$((faults + 1))
    done
    grep -o 'MARKER-READY [0-9.]*' "$log" | head -1 | cut -d' ' -f2 || true
}
uptimes=()
for _ in $(seq "$boots"); do
    uptime="$(boot_uptime 256)"
    [ -n "$uptime" ] && uptimes+=("$uptime")
done
reached=${#uptimes[@]}
sorted=$(printf '%s\n' "${uptimes[@]}" | sort -n)
row "boots that reached the marker" "$reached of $boots"
row "boot to the runit service, guest uptime s (median)" "$(echo "$sorted" | sed -n "$(( (reached + 1) / 2 ))p")"
row "  min / max" "$(echo "$sorted" | head -1) / $(echo "$sorted" | tail -1)"
smallest="none"
for memory in 256 192 128 96 80 64 56 48 40 32; do
    if [ -n "$(boot_uptime "$memory")" ]; then smallest="$memory"; else break; fi
done
row "smallest -m (MiB) that still boots" "$smallest"
row "emulator double faults in early boot (retried)" "$faults"
