#!/usr/bin/env bash
# `custos backup` of a SQLite data directory beside its running server, and in the same
# run the anchor: the same copy without Custos (Python's sqlite3 `VACUUM INTO` of the same
# database, then `cp -r` of the ledger directory: no checkpoint wait, no hashing, no
# verification).
#
#   bash bench/backup.sh [COUNT] [RUNS]      (default 200000 customers, 3 runs of each)
#
# The store is filled once with `custos import` of COUNT customers (bench/import.sh's
# file), then the server keeps running idle while each run backs it up into a new
# directory. Prints, per run, the seconds of the backup and of the anchor and the
# backup's size. BENCH_BIN runs a given binary instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-200000}"
RUNS="${2:-3}"
OUT="${BENCH_OUT:-target/bench}"
mkdir -p "$OUT"
source bench/common.sh
BIN="$(custos_bin "${BENCH_BIN:-}")"
export CUSTOS_LOG=warn

FILE="$OUT/import-$COUNT.ndjson"
if [ ! -s "$FILE" ]; then
  python3 - "$COUNT" >"$FILE" <<'PY'
import json, sys
n = int(sys.argv[1])
out = sys.stdout
for i in range(n):
    out.write(json.dumps({
        "name": f"Customer {i:07d}",
        "phone": f"+86 139 {i:08d}",
        "email": f"customer{i}@example.com",
        "account_id": f"ACC-{i:010d}",
        "attributes": {"tier": ["gold", "silver", "bronze"][i % 3], "province": "Zhejiang"},
    }) + "\n")
PY
fi

now() { date +%s.%N; }

dir="$(mktemp -d)"
port=$((19700 + RANDOM % 1000))
"$BIN" serve --data-dir "$dir/data" --listen "127.0.0.1:$port" >"$dir/serve.out" 2>"$dir/serve.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 200); do
  grep -q "custos listening" "$dir/serve.out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "bench: custos serve exited:" >&2; cat "$dir/serve.err" >&2; exit 1; }
  sleep 0.1
done
"$BIN" import "$FILE" --url "http://127.0.0.1:$port" --token-file "$dir/data/admin.token" \
  --state "$dir/state" --quiet >/dev/null

for run in $(seq 1 "$RUNS"); do
  t0=$(now)
  "$BIN" backup --data-dir "$dir/data" --out "$dir/backup-$run" >/dev/null
  t1=$(now)
  bytes=$(du -sb "$dir/backup-$run" | cut -f1)
  a0=$(now)
  mkdir "$dir/anchor-$run"
  python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('VACUUM INTO ?', (sys.argv[2],)); c.close()" \
    "$dir/data/custos.db" "$dir/anchor-$run/custos.db"
  cp -r "$dir/data/ledger" "$dir/anchor-$run/ledger"
  sync -f "$dir/anchor-$run/custos.db"
  a1=$(now)
  python3 - "$run" "$COUNT" "$t0" "$t1" "$a0" "$a1" "$bytes" <<'PY'
import sys
run, n = sys.argv[1], int(sys.argv[2])
t0, t1, a0, a1 = map(float, sys.argv[3:7])
size = int(sys.argv[7])
print(f"backup sqlite run={run} customers={n} seconds={t1 - t0:.2f} anchor_seconds={a1 - a0:.2f} bytes={size}")
PY
  rm -rf "$dir/backup-$run" "$dir/anchor-$run"
done
