#!/usr/bin/env bash
# The soak: the demo company (10,000 customers, SQLite) under a steady mixed load —
# masked views, reveals, searches, cases opened and closed, leak traces, ledger reads and
# console pages — for SECONDS (default 600), then the ledger verified by the offline
# verifier and checked consistent with the checkpoint it had before the load.
#
#   bash bench/soak.sh [SECONDS] [OPS_PER_SECOND]      (defaults 600 and 200)
#   bash bench/soak.sh 14400                           (the documented long run: 4 hours)
#
# Prints a JSON line per minute (requests, p50/p99, refusals by code, server errors, the
# server's resident memory), a summary line, and last `soak: PASS` or `soak: FAIL …`: it
# passes with no server error, resident memory grown < 10% from the end of the 30 s
# warm-up, and a ledger that verifies. BENCH_BIN runs a given binary instead of building
# this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-600}"
RATE="${2:-200}"
OUT="${BENCH_OUT:-target/bench}"
mkdir -p "$OUT"

source bench/common.sh
BIN="$(custos_bin "${BENCH_BIN:-}")"
lift_quotas
# The detector scores every request as usual, but its automatic answers would restrict
# the soak's agents, who work far faster than people: the load would turn into refusals.
export CUSTOS_DETECTOR__SCORE__THRESHOLDS__STEP_UP=1000000 \
  CUSTOS_DETECTOR__SCORE__THRESHOLDS__LOWER_QUOTA=1000000 \
  CUSTOS_DETECTOR__SCORE__THRESHOLDS__SUSPEND=1000000
export CUSTOS_LOG=warn

dir="$(mktemp -d)"
port=$((19700 + RANDOM % 1000))
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
start_demo "$dir" "$port"

url="http://127.0.0.1:$port"
key="$(sed -n 's/.*ledger verify --url [^ ]* --key \([^ ]*\).*/\1/p' "$dir/demo.out" | head -1)"
export CUSTOS_TOKEN="$(python3 -c '
import json, sys
print(next(s["token"] for s in json.load(open(sys.argv[1]))["staff"] if s["role"] == "security_analyst"))
' "$dir/data/demo-tokens.json")"
verify() { "$BIN" ledger verify --url "$url" --key "$key" --state "$dir/verified.checkpoint"; }

verify
result=0
"$BIN" bench soak --tokens "$dir/data/demo-tokens.json" --pid "$pid" \
  --duration "$SECS" --rate "$RATE" | tee "$OUT/soak.jsonl" || result=$?
# The last checkpoint must cover everything acknowledged; then verify against the saved one.
sleep 3
verified=0
verify || verified=$?
echo "ledger directory: $(du -sk "$dir/data/ledger" | cut -f1) KiB; database: $(du -sk "$dir/data/custos.db" | cut -f1) KiB"
if [ "$result" -eq 0 ] && [ "$verified" -eq 0 ]; then
  echo "soak: PASS"
else
  echo "soak: FAIL (load exit $result, ledger verification exit $verified)"
  exit 1
fi
