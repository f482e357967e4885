#!/usr/bin/env bash
# Protected lookups over HTTP (custos bench lookup) on SQLite and PostgreSQL, and in the same run
# `pgbench -S` (plain primary-key SELECT, no protection) against the same PostgreSQL.
#
#   bash bench/protected-lookup.sh [RUNS]      (default 3 runs of each; medians go in BENCHMARKS.md)
#
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust), pgbench. Quotas are lifted
# through the environment so the benchmark measures the path, not the ceilings.
# BENCH_BIN runs a given binary instead of building this tree's; BENCH_BACKENDS chooses
# among "sqlite postgres pgbench" (default all three); BENCH_LABEL tags the result lines.
# BENCH_CLIENT=wrk drives the lookups with wrk (one thread, bench/lookup.lua) instead of
# `custos bench lookup`: a load generator that costs far less CPU than the server it
# measures, which matters when both share this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
CONC="${BENCH_CONCURRENCY:-32}"
SECS="${BENCH_SECONDS:-20}"
PG="postgres://postgres@127.0.0.1:5432"
OUT="${BENCH_OUT:-target/bench}"
mkdir -p "$OUT"

source bench/common.sh
BIN="$(custos_bin "${BENCH_BIN:-}")"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres pgbench}"
LABEL="${BENCH_LABEL:-}"

lift_quotas
export CUSTOS_LOG=warn

cpu_ticks() { # pid: user + system clock ticks of the process, all threads
  awk '{print $14 + $15}' "/proc/$1/stat"
}

run_custos() { # backend run
  local backend=$1 run=$2 dir port pid url=()
  dir="$(mktemp -d)"
  port=$((18700 + RANDOM % 1000))
  if [ "$backend" = postgres ]; then
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS custos_bench" -c "CREATE DATABASE custos_bench"
    url=(--database-url "$PG/custos_bench")
  fi
  "$BIN" demo --data-dir "$dir" --listen "127.0.0.1:$port" --customers 10000 "${url[@]}" >"$dir/demo.out" 2>"$dir/demo.err" &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "Custos demo running" "$dir/demo.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "bench: custos demo exited:" >&2; cat "$dir/demo.err" >&2; exit 1; }
    sleep 0.5
  done
  if [ "${BENCH_CLIENT:-custos}" = wrk ]; then
    demo_targets "$dir/demo-tokens.json" >"$dir/targets.txt"
    wrk -t1 -c"$CONC" -d3s -s bench/lookup.lua "http://127.0.0.1:$port" -- "$dir/targets.txt" >/dev/null
    local before line after
    before=$(cpu_ticks "$pid")
    line=$(wrk -t1 -c"$CONC" -d"${SECS}s" -s bench/lookup.lua "http://127.0.0.1:$port" -- "$dir/targets.txt" | tail -n1)
    after=$(cpu_ticks "$pid")
    # The server's own CPU time per request (user + system, all its threads): what a
    # request costs the machine, whatever the client's share of the cores.
    python3 -c 'import json,sys,os; r=json.loads(sys.argv[1]); t=(int(sys.argv[3])-int(sys.argv[2]))/os.sysconf("SC_CLK_TCK"); r["server_cpu_us_per_req"]=round(t*1e6/max(r["requests"],1)); print(json.dumps(r))' "$line" "$before" "$after"
  else
    "$BIN" bench lookup --tokens "$dir/demo-tokens.json" --concurrency "$CONC" --duration "$SECS"
  fi | sed "s/^/{\"backend\":\"$backend\",\"label\":\"$LABEL\",\"run\":$run,\"r\":/; s/\$/}/" | tee -a "$OUT/results.jsonl"
  kill "$pid"; wait "$pid" || true
  rm -rf "$dir"
}

run_pgbench() { # run
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS pgbench_anchor" -c "CREATE DATABASE pgbench_anchor"
  pgbench -q -i -s 10 "$PG/pgbench_anchor" >/dev/null 2>&1
  local out tps lat
  out=$(pgbench -S -c "$CONC" -j 2 -T "$SECS" "$PG/pgbench_anchor" 2>&1)
  tps=$(awk '/^tps/ {print int($3)}' <<<"$out")
  lat=$(awk '/latency average/ {print $4}' <<<"$out")
  [ -n "$tps" ] || { echo "bench: pgbench failed: $out" >&2; exit 1; }
  echo "{\"backend\":\"pgbench-S\",\"run\":$1,\"r\":{\"req_per_s\":$tps,\"avg_ms\":$lat}}" | tee -a "$OUT/results.jsonl"
}

[ -n "${BENCH_APPEND:-}" ] || : >"$OUT/results.jsonl"
for run in $(seq 1 "$RUNS"); do
  for b in $BACKENDS; do
    case $b in
      pgbench) run_pgbench "$run" ;;
      *) run_custos "$b" "$run" ;;
    esac
  done
done

python3 - "$OUT/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for backend in ["sqlite", "postgres", "pgbench-S"]:
    rs = [r["r"] for r in rows if r["backend"] == backend]
    med = lambda k: statistics.median(r[k] for r in rs if k in r) if any(k in r for r in rs) else None
    print(f"{backend:10} runs={len(rs)} median req/s={med('req_per_s')} p50_ms={med('p50_ms')} p99_ms={med('p99_ms')} avg_ms={med('avg_ms')} server_cpu_us_per_req={med('server_cpu_us_per_req')}")
PY
