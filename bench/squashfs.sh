#!/usr/bin/env bash
# squashfs: MicrOS's writer against mksquashfs on a large real tree (the
# unpacked linux-image-amd64 package), xz and zstd, 128 KiB blocks, all
# cores for both. Prints wall time, output bytes, peak RSS and the ratios.
#
#   bash bench/squashfs.sh            # needs squashfs-tools, time, dpkg-dev tools
#
# Not a test: it takes minutes and its numbers depend on the machine.
# BENCH_DIR (default /tmp/micros-bench) keeps the unpacked tree between runs.
set -euo pipefail
cd "$(dirname "$0")/.."

work="${BENCH_DIR:-/tmp/micros-bench}"
mkdir -p "$work"
block=131072
cores="$(nproc)"

for tool in mksquashfs unsquashfs /usr/bin/time bc apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install squashfs-tools time bc" >&2; exit 1; }
done

# The tree: the real kernel package behind the linux-image-amd64 meta package.
if [ ! -d "$work/tree/lib/modules" ]; then
    package="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')"
    [ -n "$package" ] || { echo "cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
    (cd "$work" && rm -f ./*.deb && apt-get download "$package" >/dev/null)
    rm -rf "$work/tree.partial" && dpkg-deb -x "$work"/*.deb "$work/tree.partial" && mv "$work/tree.partial" "$work/tree"
fi
tree="$work/tree"
echo "tree: $(du -sb "$tree" | cut -f1) bytes in $(find "$tree" -type f | wc -l) files ($(ls "$tree/lib/modules"))"

# Our writer, as the workspace builds it (with liblzma's fast unaligned
# access: .cargo/config.toml).
cargo build --release --quiet -p micros-image --example mksquashfs
ours="target/release/examples/mksquashfs"

measure() { # name output command...
    local name="$1" output="$2"; shift 2
    rm -f "$output"
    sync
    /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >/dev/null
    read -r wall rss user system <"$work/time"
    printf '%s %s %s %s %s\n' "$name" "$wall" "$(stat -c %s "$output")" "$rss" "$(echo "$user + $system" | bc)" >>"$work/results"
}

: >"$work/results"
for compressor in xz zstd; do
    measure "mksquashfs-$compressor" "$work/ref.$compressor" \
        mksquashfs "$tree" "$work/ref.$compressor" -noappend -comp "$compressor" -b "$block" \
        -processors "$cores" -quiet -no-progress
    measure "micros-$compressor" "$work/ours.$compressor" "$ours" "$tree" "$work/ours.$compressor" "$compressor" "$block"
    # Same files, modes and contents as the source, by unsquashfs.
    rm -rf "$work/check" && unsquashfs -no-progress -q -d "$work/check" "$work/ours.$compressor" >/dev/null
    diff -r --no-dereference "$tree" "$work/check" >/dev/null || { echo "micros-$compressor: extracted tree differs" >&2; exit 1; }
    rm -rf "$work/check"
    # And by the kernel, where this machine lets root loop-mount.
    if [ "$(id -u)" -eq 0 ] && mkdir -p "$work/mnt" && mount -t squashfs -o loop,ro "$work/ours.$compressor" "$work/mnt" 2>/dev/null; then
        diff -r --no-dereference "$tree" "$work/mnt" >/dev/null || { umount "$work/mnt"; echo "micros-$compressor: kernel sees another tree" >&2; exit 1; }
        umount "$work/mnt"
        echo "micros-$compressor: unsquashfs and the kernel both read back the source tree"
    fi
done

echo
echo "| writer | compressor | wall s | CPU s | bytes | peak RSS MB | wall vs mksquashfs | size vs mksquashfs | peak RSS vs mksquashfs |"
echo "|---|---|---|---|---|---|---|---|---|"
awk '
    { split($1, part, "-"); compressor = part[length(part)]; name = $1; sub("-" compressor "$", "", name)
      wall[$1] = $2; bytes[$1] = $3; rss[$1] = $4; cpu[$1] = $5; order[++n] = $1; comp[$1] = compressor; writer[$1] = name }
    END {
      for (i = 1; i <= n; i++) {
        k = order[i]; ref = "mksquashfs-" comp[k]
        printf "| %s | %s | %.2f | %.2f | %d | %.0f | %.3f | %.4f | %.3f |\n", writer[k], comp[k], wall[k], cpu[k], bytes[k], rss[k] / 1024,
               wall[k] / wall[ref], bytes[k] / bytes[ref], rss[k] / rss[ref]
      }
    }' "$work/results"
if [ -n "${BENCH_JSON:-}" ]; then
    python3 - "$work/results" "$BENCH_JSON" <<'PY'
import json, sys
rows = [line.split() for line in open(sys.argv[1])]
figures = {name: (float(wall), int(size), int(rss)) for name, wall, size, rss, _cpu in rows}
with open(sys.argv[2], "a") as out:
    for name, (wall, size, rss) in figures.items():
        reference = figures["mksquashfs-" + name.rsplit("-", 1)[1]]
        for label, value in [
            (f"{name} wall s", wall),
            (f"{name} bytes", size),
            (f"{name} peak RSS KiB", rss),
            (f"{name} wall vs mksquashfs", round(wall / reference[0], 3)),
            (f"{name} size vs mksquashfs", round(size / reference[1], 4)),
            (f"{name} peak RSS vs mksquashfs", round(rss / reference[2], 3)),
        ]:
            print(json.dumps({"bench": "squashfs", "label": label, "value": str(value)}), file=out)
PY
fi
