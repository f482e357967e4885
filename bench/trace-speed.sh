#!/usr/bin/env bash
# Leak attribution speed (BENCHMARKS.md, "Leak attribution speed"): `custos bench trace`
# on a generated store of RECORDS access records with a LEAK_ROWS-row leaked file, then
# DuckDB doing the equivalent join and count on the same data exported to CSV/Parquet,
# in the same run, on the same machine; prints the ratio.
#
#   bash bench/trace-speed.sh RECORDS LEAK_ROWS RUNS [CUSTOMERS]
#
# Environment: TRACE_BENCH_DIR (where the data goes; default target/bench/trace-data,
# removed at the end unless KEEP=1), REUSE=1 to trace a store generated earlier in the
# same place, STAFF (default 2000), CARGO_TARGET_DIR (where the binary is built). Needs
# python3 with duckdb (`pip install duckdb`).
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${1:-1000000}
LEAK_ROWS=${2:-1000000}
RUNS=${3:-3}
CUSTOMERS=${4:-2000000}
STAFF=${STAFF:-2000}
BASE=${TRACE_BENCH_DIR:-target/bench/trace-data}
DIR="$BASE/r$RECORDS-l$LEAK_ROWS-c$CUSTOMERS"
OUT=target/bench
mkdir -p "$OUT"

python3 -c 'import duckdb' 2>/dev/null || pip install --quiet duckdb
cargo build --release -p custos >&2
CUSTOS="${CARGO_TARGET_DIR:-target}/release/custos"

reuse=()
if [ "${REUSE:-0}" = 1 ] && [ -f "$DIR/custos.db" ]; then
  reuse=(--reuse)
else
  rm -rf "$DIR"
fi
# The commit, marked -dirty when the code measured has uncommitted changes.
COMMIT=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- crates/custos-trace crates/custos-store crates/custos-crypto crates/custos/src || COMMIT="$COMMIT-dirty"
echo "== machine: $(nproc) CPUs, $(free -g | awk '/Mem:/{print $2}') GiB RAM, commit $COMMIT, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$CUSTOS" bench trace --dir "$DIR" --customers "$CUSTOMERS" --records "$RECORDS" \
  --staff "$STAFF" --leak-rows "$LEAK_ROWS" --runs "$RUNS" --export "$DIR/csv" "${reuse[@]}" \
  | tee "$OUT/trace-custos.jsonl"
python3 bench/trace_duckdb.py "$DIR/csv" "$RUNS" | tee "$OUT/trace-duckdb.jsonl" | tee -a "$OUT/results.jsonl"

python3 - "$OUT/trace-custos.jsonl" "$OUT/trace-duckdb.jsonl" "$COMMIT" <<'PY' | tee -a "$OUT/results.jsonl"
import json, sys
custos = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
summary = next(l for l in custos if l.get("measure") == "summary")
duck = json.loads(open(sys.argv[2]).read())
t = summary["median_total_s"]
print(json.dumps({
    "bench": "trace-speed", "commit": sys.argv[3], "data": summary["data"],
    "custos_median_total_s": t,
    "custos_steps_s": {k[7:-2]: v for k, v in summary.items() if k.startswith("median_") and k != "median_total_s"},
    "match_breakdown": summary.get("match_breakdown"),
    "gather_breakdown": summary.get("gather_breakdown"),
    "duckdb_median_parquet_s": duck["median_query_parquet_s"],
    "duckdb_median_csv_s": duck["median_query_csv_s"],
    "duckdb_csv_to_parquet_s": duck["csv_to_parquet_s"],
    "ratio_vs_parquet": round(t / max(duck["median_query_parquet_s"], 1e-9), 1),
    "ratio_vs_csv": round(t / max(duck["median_query_csv_s"], 1e-9), 1),
}))
PY

if [ "${KEEP:-0}" != 1 ]; then rm -rf "$DIR"; fi
