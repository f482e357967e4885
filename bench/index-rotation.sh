#!/usr/bin/env bash
# The blind-index key's rotation: how fast every customer is re-indexed, alone and while
# lookups run, and the lookup rate meanwhile against the same server without a rotation.
#
#   bash bench/index-rotation.sh [RUNS]      (default 3 runs; medians go in BENCHMARKS.md)
#
# Each run, on one demo (10,000 customers, SQLite, the key file):
#   idle               lookups with no rotation (the anchor);
#   rotating           lookups during a rotation of the blind-index key (the rotation's own
#                      rate is printed as reindex_under_load);
#   reindex            a second rotation with no other load.
# BENCH_BIN runs a given binary instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
CONC="${BENCH_CONCURRENCY:-32}"
SECS="${BENCH_SECONDS:-15}"
OUT="${BENCH_OUT:-target/bench}"
mkdir -p "$OUT"

source bench/common.sh
BIN="$(custos_bin "${BENCH_BIN:-}")"
lift_quotas
# The benchmark's own load must not look like harvesting to the detector.
export CUSTOS_DETECTOR__SCORE__THRESHOLDS__STEP_UP=1000000 \
  CUSTOS_DETECTOR__SCORE__THRESHOLDS__LOWER_QUOTA=1000000 \
  CUSTOS_DETECTOR__SCORE__THRESHOLDS__SUSPEND=1000000
export CUSTOS_LOG=warn

JSONL="$OUT/index-rotation.jsonl"
: >"$JSONL"
for run in $(seq 1 "$RUNS"); do
  dir="$(mktemp -d)"
  port=$((18700 + RANDOM % 1000))
  start_demo "$dir" "$port"
  lookups idle "$run" "$dir" "$SECS" 3
  rotate reindex_under_load "$run" "$dir" "$port" --blind-index &
  rot=$!
  lookups rotating "$run" "$dir" 3 0
  wait "$rot"
  rotate reindex "$run" "$dir" "$port" --blind-index
  kill "$pid"; wait "$pid" || true
  rm -rf "$dir"
done

python3 - "$JSONL" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for phase in ["idle", "rotating"]:
    rs = [r["r"] for r in rows if r["phase"] == phase]
    med = lambda k: statistics.median(r[k] for r in rs) if rs else None
    print(f"{phase:12} runs={len(rs)} median req/s={med('req_per_s')} p50_ms={med('p50_ms')} p99_ms={med('p99_ms')} errors={med('errors')}")
for phase in ["reindex_under_load", "reindex"]:
    rs = [r["r"] for r in rows if r["phase"] == phase]
    print(f"{phase:20} runs={len(rs)} median customers/s={statistics.median(r['keys_per_s'] for r in rs) if rs else None}")
PY
