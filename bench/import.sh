#!/usr/bin/env bash
# Bulk import through `custos import FILE` (streamed batches, sealed and indexed by the
# server) on SQLite and PostgreSQL, and in the same run the anchor: the database alone
# storing as many rows of the same sizes, with the same table and indexes, in one
# transaction (made-up bytes: no parsing, no sealing, no HTTP).
#
#   bash bench/import.sh [COUNT] [RUNS]      (default 200000 customers, 3 runs of each)
#
# Prints, per run: customers/s of the import, bytes stored per customer (SQLite: the
# database file after a checkpoint of its WAL; PostgreSQL: the customers table with its
# indexes and TOAST), and the anchor's rows/s. BENCH_BIN runs a given binary instead of
# building this tree's; BENCH_BACKENDS chooses among "sqlite postgres" (default both);
# BENCH_BATCH sets --batch (default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-200000}"
RUNS="${2:-3}"
BATCH="${BENCH_BATCH:-20000}"
PG="postgres://postgres@127.0.0.1:5432"
OUT="${BENCH_OUT:-target/bench}"
mkdir -p "$OUT"
source bench/common.sh
BIN="$(custos_bin "${BENCH_BIN:-}")"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
export CUSTOS_LOG=warn

FILE="$OUT/import-$COUNT.ndjson"
if [ ! -s "$FILE" ]; then
  # Distinct mobile numbers, emails and account ids, as a real base has them.
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

run_import() { # backend run
  local backend=$1 run=$2 dir port pid url=() t0 t1 bytes
  dir="$(mktemp -d)"
  port=$((19700 + RANDOM % 1000))
  if [ "$backend" = postgres ]; then
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS custos_import_bench" -c "CREATE DATABASE custos_import_bench"
    url=(--database-url "$PG/custos_import_bench")
  fi
  "$BIN" serve --data-dir "$dir/data" --listen "127.0.0.1:$port" "${url[@]}" >"$dir/serve.out" 2>"$dir/serve.err" &
  pid=$!
  for _ in $(seq 1 200); do
    grep -q "custos listening" "$dir/serve.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "bench: custos serve exited:" >&2; cat "$dir/serve.err" >&2; exit 1; }
    sleep 0.1
  done
  t0=$(now)
  "$BIN" import "$FILE" --url "http://127.0.0.1:$port" --token-file "$dir/data/admin.token" \
    --batch "$BATCH" --state "$dir/state" --quiet >"$dir/import.out"
  t1=$(now)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if [ "$backend" = postgres ]; then
    bytes=$(psql -tA "$PG/custos_import_bench" -c "SELECT pg_total_relation_size('customers')")
  else
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.close()" "$dir/data/custos.db"
    bytes=$(stat -c %s "$dir/data/custos.db")
  fi
  python3 - "$backend" "$run" "$COUNT" "$t0" "$t1" "$bytes" <<'PY'
import sys
backend, run, n, t0, t1, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
print(f"import {backend} run={run} customers={n} seconds={t1 - t0:.2f} customers_per_s={n / (t1 - t0):.0f} bytes_per_customer={size / n:.0f}")
PY
  if [ "$backend" = sqlite ]; then
    anchor_sqlite "$dir/data/custos.db" "$run"
  else
    anchor_postgres "$run"
  fi
  rm -rf "$dir"
}

# The same table (schema copied from the imported database), the same row count and the
# average sizes of each column, written by SQLite alone with the server's settings.
anchor_sqlite() { # imported-db run
  python3 - "$1" "$2" "$COUNT" <<'PY'
import os, sqlite3, sys, tempfile, time
src, run, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = sqlite3.connect(src)
ddl = [r[0] for r in s.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'customers' AND sql IS NOT NULL ORDER BY type DESC")]
cols = ["wrapped_key", "name", "phone", "email", "account_id", "attributes", "phone_idx", "email_idx", "account_idx"]
avg = s.execute("SELECT " + ", ".join(f"CAST(AVG(LENGTH({c})) AS INTEGER)" for c in cols) + " FROM customers").fetchone()
s.close()
path = tempfile.mktemp(suffix=".db")
d = sqlite3.connect(path, isolation_level=None)
d.execute("PRAGMA journal_mode=WAL"); d.execute("PRAGMA synchronous=FULL")
for stmt in ddl:
    d.execute(stmt)
rows = [(f"cus_{i:016x}",) + tuple(os.urandom(a) if c not in ("phone_idx", "email_idx", "account_idx") else os.urandom(a // 2).hex() for c, a in zip(cols, avg)) + (0,) for i in range(n)]
t0 = time.time()
d.execute("BEGIN")
d.executemany("INSERT INTO customers (id, " + ", ".join(cols) + ", created_at) VALUES (" + ", ".join("?" * (len(cols) + 2)) + ")", rows)
d.execute("COMMIT")
t1 = time.time()
d.close(); os.remove(path)
for suffix in ("-wal", "-shm"):
    if os.path.exists(path + suffix): os.remove(path + suffix)
print(f"anchor sqlite run={run} rows={n} seconds={t1 - t0:.2f} rows_per_s={n / (t1 - t0):.0f}")
PY
}

# The same for PostgreSQL: the imported table's definition (LIKE … INCLUDING ALL) filled
# by one INSERT … SELECT of random bytes of the imported rows' average sizes.
anchor_postgres() { # run
  local out
  out=$(psql -q -tA "$PG/custos_import_bench" <<SQL
CREATE TABLE anchor (LIKE customers INCLUDING ALL);
CREATE TEMP TABLE sizes AS SELECT
  AVG(octet_length(wrapped_key))::int AS k, AVG(octet_length(name))::int AS nm, AVG(octet_length(phone))::int AS ph,
  AVG(octet_length(email))::int AS em, AVG(octet_length(account_id))::int AS ac, AVG(octet_length(attributes))::int AS at,
  AVG(length(phone_idx))::int AS pi FROM customers;
-- Bytes made cheaply from md5 (the anchor measures storing, not making random bytes).
CREATE FUNCTION pg_temp.rnd(g int, n int) RETURNS bytea LANGUAGE sql IMMUTABLE AS
  'SELECT substring(decode(repeat(md5(g::text || n::text), 32), ''hex'') from 1 for n)';
\timing on
INSERT INTO anchor (id, wrapped_key, name, phone, email, account_id, attributes, phone_idx, email_idx, account_idx, created_at)
  SELECT 'cus_' || lpad(to_hex(g), 16, '0'), pg_temp.rnd(g, k), pg_temp.rnd(g, nm), pg_temp.rnd(g, ph), pg_temp.rnd(g, em), pg_temp.rnd(g, ac), pg_temp.rnd(g, at),
         md5(g::text || 'p') || md5(g::text || 'q'), md5(g::text || 'e') || md5(g::text || 'f'), md5(g::text || 'a') || md5(g::text || 'b'), 0
  FROM generate_series(1, $COUNT) g, sizes;
SQL
)
  python3 - "$1" "$COUNT" "$out" <<'PY'
import re, sys
run, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ms = float(re.findall(r"Time: ([0-9.]+) ms", out)[-1])
print(f"anchor postgres run={run} rows={n} seconds={ms / 1000:.2f} rows_per_s={n / (ms / 1000):.0f}")
PY
}

for run in $(seq 1 "$RUNS"); do
  for backend in $BACKENDS; do
    run_import "$backend" "$run" | tee -a "$OUT/import.txt"
  done
done
