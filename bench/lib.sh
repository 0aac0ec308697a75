# Shared by the benchmarks, sourced from the repository's root after
# `set -euo pipefail`:
# - the release `micros` ($micros, or $MICROS), the suite ($suite: SUITE or trixie) and
#   a work directory removed on exit ($work);
# - `row LABEL VALUE` prints one line of a table and, when BENCH_JSON names
#   a file, appends the figure to it as one JSON object per line
#   ({"bench", "label", "value"}), which bench/run.sh gathers.
# MICROS=path uses that binary instead (a benchmark that measures no time,
# such as daemons.sh, can run a debug build).
if [ -n "${MICROS:-}" ]; then
    micros="$(realpath "$MICROS")"
else
    cargo build --release -q
    micros="$PWD/target/release/micros"
fi
suite="${SUITE:-trixie}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bench_name="$(basename "$0" .sh)"
row() {
    printf '%-58s %14s\n' "$1" "$2"
    if [ -n "${BENCH_JSON:-}" ]; then
        python3 -c 'import json, sys; print(json.dumps({"bench": sys.argv[1], "label": sys.argv[2], "value": sys.argv[3]}))' \
            "$bench_name" "$1" "$2" >> "$BENCH_JSON"
    fi
}
