#!/usr/bin/env bash
# Where a protected lookup's time goes: `perf record` of the server under wrk load
# (the same demo, targets and script as bench/protected-lookup.sh with BENCH_CLIENT=wrk),
# then the share of samples by thread and the top symbols.
#
#   bash bench/profile-lookup.sh [BIN]     (default: this tree's release build)
#
# Needs perf and wrk. BENCH_CONCURRENCY (default 32) and BENCH_SECONDS (default 10) as
# for the lookup benchmark. The raw profile stays in target/bench/perf.data.
set -euo pipefail
cd "$(dirname "$0")/.."
CONC="${BENCH_CONCURRENCY:-32}"
SECS="${BENCH_SECONDS:-10}"
OUT="${BENCH_OUT:-target/bench}"
mkdir -p "$OUT"
source bench/common.sh
BIN="$(custos_bin "${1:-}")"
lift_quotas
export CUSTOS_LOG=warn

dir="$(mktemp -d)"
port=$((18700 + RANDOM % 1000))
"$BIN" demo --data-dir "$dir" --listen "127.0.0.1:$port" --customers 10000 >"$dir/demo.out" 2>"$dir/demo.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 600); do
  grep -q "Custos demo running" "$dir/demo.out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "profile: custos demo exited:" >&2; cat "$dir/demo.err" >&2; exit 1; }
  sleep 0.5
done
demo_targets "$dir/demo-tokens.json" >"$dir/targets.txt"
wrk -t1 -c"$CONC" -d3s -s bench/lookup.lua "http://127.0.0.1:$port" -- "$dir/targets.txt" >/dev/null
wrk -t1 -c"$CONC" -d"$((SECS + 2))s" -s bench/lookup.lua "http://127.0.0.1:$port" -- "$dir/targets.txt" | tail -n1 &
load=$!
sleep 1
perf record -q -F 499 -g -p "$pid" -o "$OUT/perf.data" -- sleep "$SECS" 2>/dev/null
wait "$load"

echo "== samples by thread"
perf report -i "$OUT/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8
echo "== kernel thread-switch paths (self)"
perf report -i "$OUT/perf.data" --no-children --sort sym --stdio 2>/dev/null \
  | grep -E '^ +[0-9].*(finish_task_switch|_raw_spin_unlock_irqrestore|futex|schedule)' | head -6
echo "== top symbols (self)"
perf report -i "$OUT/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -25
