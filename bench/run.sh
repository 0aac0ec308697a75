#!/usr/bin/env bash
# Every benchmark in one run: builds next to mmdebstrap + mksquashfs, the
# squashfs writer next to mksquashfs, boots (examples/qemu.ncl and
# examples/sshd.ncl), and how build cost scales. Prints each table and
# writes all figures as JSON to bench/results/<date>.json, to compare runs
# over time.
#
#   bash bench/run.sh                # suite trixie
#   SUITE=stable bash bench/run.sh   # while a mirror serves trixie mid-update
#
# Not part of the test suite: it takes about ten minutes and its numbers
# depend on the machine. Needs Debian's archive, QEMU, mmdebstrap,
# squashfs-tools, openssh-client and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
lines="$(mktemp)"
trap 'rm -f "$lines"' EXIT
export BENCH_JSON="$lines"
for bench in build squashfs ssh scaling update; do
    echo "== bench/$bench.sh"
    bash "bench/$bench.sh"
    echo
done
python3 - "$lines" "bench/results/$stamp.json" "$stamp" <<'PY'
import json, platform, os, sys
figures = [json.loads(line) for line in open(sys.argv[1])]
result = {
    "date": sys.argv[3],
    "machine": {"cores": os.cpu_count(), "kernel": platform.release()},
    "figures": figures,
}
with open(sys.argv[2], "w") as out:
    json.dump(result, out, indent=1)
    out.write("\n")
print(f"{len(figures)} figures written to {sys.argv[2]}")
PY
