#!/usr/bin/env bash
# Protected lookups of two builds of custos, A and B, in the same run: the runs alternate
# (A, B, A, B, ...) so that both see the same machine, and each prints its median.
#
#   bash bench/ab-lookup.sh BIN_A BIN_B [RUNS]     (default 3 runs each; SQLite)
#
# BENCH_BACKENDS (default "sqlite") and BENCH_CONCURRENCY (default 32) as for
# bench/protected-lookup.sh, which does each run.
set -euo pipefail
cd "$(dirname "$0")/.."
A="$1" B="$2" RUNS="${3:-3}"
OUT="${BENCH_OUT:-target/bench}"
mkdir -p "$OUT"
: >"$OUT/results.jsonl"
export BENCH_BACKENDS="${BENCH_BACKENDS:-sqlite}" BENCH_APPEND=1
for run in $(seq 1 "$RUNS"); do
  BENCH_BIN="$A" BENCH_LABEL=A bash bench/protected-lookup.sh 1 >/dev/null
  BENCH_BIN="$B" BENCH_LABEL=B bash bench/protected-lookup.sh 1 >/dev/null
done
python3 - "$OUT/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"label"' in l]
for label in ["A", "B"]:
    for backend in sorted({r["backend"] for r in rows}):
        rs = [r["r"] for r in rows if r["label"] == label and r["backend"] == backend]
        if rs:
            med = lambda k: statistics.median(r[k] for r in rs) if all(k in r for r in rs) else None
            print(f"{label} {backend:8} runs={len(rs)} req/s each={[r['req_per_s'] for r in rs]} median req/s={med('req_per_s')} p50_ms={med('p50_ms')} p99_ms={med('p99_ms')} server_cpu_us_per_req={med('server_cpu_us_per_req')}")
PY
