#!/usr/bin/env python3
"""DuckDB anchor for `custos bench trace`: the equivalent join and count.

Reads the CSVs written by `custos bench trace --export DIR`:

* customers.csv  (id, phone_idx)             the vault's phone blind indexes
* access.csv     (staff_id, customer_id, action, at)   the access log
* leak_idx.csv   (phone_idx)                 blind index of each leaked row's number

and does, as one query, what the trace's match and gather steps do in the store:
leaked blind indexes -> customers -> their views and reveals, counted per staff as
distinct customers revealed / only viewed; and every person's holdings over the whole
log (distinct customers revealed / only viewed), which the trace weighs suspects by.
It does not parse or normalise the leaked file, compute the keyed hashes, or rank:
those are Custos' read/match-hashing and rank steps (small, see BENCHMARKS.md).

The CSVs are first converted to Parquet (timed on its own), then the query runs
RUNS times on the Parquet files and RUNS times on the CSVs directly. Prints one JSON
line with the medians.

Usage: trace_duckdb.py EXPORT_DIR [RUNS] [THREADS]
"""

import json
import os
import statistics
import sys
import tempfile
import time

import duckdb

QUERY = """
WITH leaked AS (
    SELECT DISTINCT c.id AS customer_id
    FROM {leak} l JOIN {customers} c ON c.phone_idx = l.phone_idx
),
per_pair AS (
    SELECT a.staff_id, a.customer_id, max(a.action = 'reveal')::INT AS r
    FROM {access} a
    WHERE a.action IN ('view', 'reveal')
    GROUP BY a.staff_id, a.customer_id
),
exposed AS (
    SELECT p.staff_id, sum(p.r) AS leaked_revealed, count(*) - sum(p.r) AS leaked_viewed
    FROM per_pair p JOIN leaked USING (customer_id)
    GROUP BY p.staff_id
),
holdings AS (
    SELECT staff_id, sum(r) AS revealed, count(*) - sum(r) AS viewed_only
    FROM per_pair GROUP BY staff_id
)
SELECT e.staff_id, e.leaked_revealed, e.leaked_viewed, h.revealed, h.viewed_only
FROM exposed e JOIN holdings h USING (staff_id)
ORDER BY e.leaked_revealed + e.leaked_viewed DESC, e.staff_id
"""


def timed(con, sql):
    start = time.perf_counter()
    rows = con.execute(sql).fetchall()
    return time.perf_counter() - start, rows


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    export = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else (os.cpu_count() or 1)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    files = {name: os.path.join(export, f"{name}.csv") for name in ("customers", "access", "leak_idx")}

    def csv(name):
        return f"read_csv('{files[name]}', header = true)"

    work = tempfile.mkdtemp(prefix="trace-duckdb-", dir=export)
    parquet = {name: os.path.join(work, f"{name}.parquet") for name in files}
    start = time.perf_counter()
    for name in files:
        con.execute(f"COPY (SELECT * FROM {csv(name)}) TO '{parquet[name]}' (FORMAT parquet)")
    to_parquet_s = time.perf_counter() - start

    def pq(name):
        return f"read_parquet('{parquet[name]}')"

    on_parquet = QUERY.format(leak=pq("leak_idx"), customers=pq("customers"), access=pq("access"))
    on_csv = QUERY.format(leak=csv("leak_idx"), customers=csv("customers"), access=csv("access"))
    parquet_times, csv_times, rows = [], [], []
    for _ in range(runs):
        t, rows = timed(con, on_parquet)
        parquet_times.append(t)
    for _ in range(runs):
        t, _ = timed(con, on_csv)
        csv_times.append(t)
    for p in parquet.values():
        os.remove(p)
    os.rmdir(work)
    top = rows[0] if rows else None
    print(json.dumps({
        "bench": "trace-duckdb",
        "duckdb": duckdb.__version__,
        "threads": threads,
        "runs": runs,
        "csv_to_parquet_s": round(to_parquet_s, 3),
        "median_query_parquet_s": round(statistics.median(parquet_times), 3),
        "median_query_csv_s": round(statistics.median(csv_times), 3),
        "query_parquet_s": [round(t, 3) for t in parquet_times],
        "query_csv_s": [round(t, 3) for t in csv_times],
        "staff_exposed": len(rows),
        "top_staff_leaked_customers": (top[1] + top[2]) if top else None,
    }))


if __name__ == "__main__":
    main()
