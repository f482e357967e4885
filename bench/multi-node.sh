#!/usr/bin/env bash
# Protected lookups over HTTP against 1, 2 and 3 gateway nodes on one PostgreSQL
# (docs/MULTI_NODE.md), driven by wrk (bench/lookup.lua): one wrk per node, the clients
# split evenly, all at once. Reports the total req/s, the worst node's p99, and the CPU
# per request of the nodes together and of PostgreSQL's processes (every one on the
# machine: keep other work off it), so the figure is what a request and its shared state
# cost this machine.
#
#   bash bench/multi-node.sh [RUNS]          (default 3 runs of each node count)
#
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust), wrk. Quotas are lifted
# through the environment so the benchmark measures the path, not the ceilings.
# BENCH_BIN runs a given binary instead of building this tree's; BENCH_NODES chooses the
# node counts (default "1 2 3").
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
NODES="${BENCH_NODES:-1 2 3}"

lift_quotas
export CUSTOS_LOG=warn

cpu_ticks() { # pids: user + system clock ticks of the processes, all threads
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

pg_ticks() { # every PostgreSQL server process on the machine (backends of other work too)
  local pid
  for pid in $(pgrep -x postgres); do
    awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true
  done | awk '{s += $1} END {print s + 0}'
}

wait_listening() { # file pid
  for _ in $(seq 1 600); do
    grep -q "listening on\|Custos demo running" "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "bench: custos exited:" >&2; cat "$1" >&2; return 1; }
    sleep 0.5
  done
  return 1
}

run_nodes() { # node-count run
  local count=$1 run=$2 root pids=() ports=() i dir port
  root="$(mktemp -d)"
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS custos_bench" -c "CREATE DATABASE custos_bench"
  # Node 1 is the demo: it creates the keys, the company and the agents' tokens.
  port=$((18700 + RANDOM % 1000))
  "$BIN" demo --data-dir "$root/n1" --listen "127.0.0.1:$port" --customers 10000 \
    --database-url "$PG/custos_bench" >"$root/n1.out" 2>"$root/n1.err" &
  pids+=($!); ports+=("$port")
  wait_listening "$root/n1.out" "${pids[0]}"
  for i in $(seq 2 "$count"); do
    dir="$root/n$i"
    install -d -m 700 "$dir"
    cp "$root/n1/master.key" "$root/n1/ledger.key" "$dir/"
    port=$((port + 1))
    "$BIN" serve --data-dir "$dir" --listen "127.0.0.1:$port" \
      --database-url "$PG/custos_bench" >"$root/n$i.out" 2>"$root/n$i.err" &
    pids+=($!); ports+=("$port")
    wait_listening "$root/n$i.out" "${pids[$((i - 1))]}"
  done
  demo_targets "$root/n1/demo-tokens.json" >"$root/targets.txt"
  local per=$((CONC / count)) before after warm=() load=()
  for p in "${ports[@]}"; do
    wrk -t1 -c"$per" -d3s -s bench/lookup.lua "http://127.0.0.1:$p" -- "$root/targets.txt" >/dev/null &
    warm+=($!)
  done
  wait "${warm[@]}"
  before=$(cpu_ticks "${pids[@]}")
  pg_before=$(pg_ticks)
  for i in "${!ports[@]}"; do
    wrk -t1 -c"$per" -d"${SECS}s" -s bench/lookup.lua "http://127.0.0.1:${ports[$i]}" -- "$root/targets.txt" \
      >"$root/wrk$i.out" &
    load+=($!)
  done
  wait "${load[@]}"
  after=$(cpu_ticks "${pids[@]}")
  pg_after=$(pg_ticks)
  for i in "${!ports[@]}"; do tail -n1 "$root/wrk$i.out" >"$root/wrk$i.json"; done
  python3 - "$count" "$run" "$before" "$after" "$pg_before" "$pg_after" "$root"/wrk*.json <<'PY' | tee -a "$OUT/multi-node.jsonl"
import json, os, sys
count, run, before, after, pg_before, pg_after = (int(x) for x in sys.argv[1:7])
rows = [json.loads(open(p).read()) for p in sys.argv[7:]]
requests = sum(r["requests"] for r in rows)
cpu = (after - before) / os.sysconf("SC_CLK_TCK")
pg_cpu = (pg_after - pg_before) / os.sysconf("SC_CLK_TCK")
print(json.dumps({"nodes": count, "run": run,
                  "req_per_s": sum(r["req_per_s"] for r in rows),
                  "p99_ms": max(r["p99_ms"] for r in rows),
                  "errors": sum(r["errors"] for r in rows),
                  "server_cpu_us_per_req": round(cpu * 1e6 / max(requests, 1)),
                  "postgres_cpu_us_per_req": round(pg_cpu * 1e6 / max(requests, 1))}))
PY
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  rm -rf "$root"
}

: >"$OUT/multi-node.jsonl"
for run in $(seq 1 "$RUNS"); do
  for count in $NODES; do
    run_nodes "$count" "$run"
  done
done

python3 - "$OUT/multi-node.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for count in sorted({r["nodes"] for r in rows}):
    rs = [r for r in rows if r["nodes"] == count]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"nodes={count} runs={len(rs)} median req/s={med('req_per_s')} p99_ms={med('p99_ms')} server_cpu_us_per_req={med('server_cpu_us_per_req')} postgres_cpu_us_per_req={med('postgres_cpu_us_per_req')} errors={sum(r['errors'] for r in rs)}")
PY
