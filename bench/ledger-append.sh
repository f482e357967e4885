#!/usr/bin/env bash
# Durable ledger appends with group commit at 1, 16 and 256 concurrent writers, and in the
# same run raw append + fsync of the same bytes in the same batch sizes and PostgreSQL
# batch INSERTs of the same records; then Merkle proof generation on a 1,000,000-entry
# ledger (custos bench ledger, all in-process).
#
#   bash bench/ledger-append.sh [RUNS]      (default 3 runs; medians go in BENCHMARKS.md)
#
# Environment: BENCH_SECONDS (measured seconds per point, default 10), BENCH_WRITERS
# (default 1,16,256), BENCH_DIR (work directory; default ./target, i.e. this disk),
# BENCH_PG (default postgres://postgres@127.0.0.1:5432/postgres; the anchor is skipped
# with a note if psql cannot reach it), BENCH_OUT (default target/bench), BENCH_BIN (run
# this binary instead of building this tree's, e.g. an earlier commit's for an A/B).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
SECS="${BENCH_SECONDS:-10}"
WRITERS="${BENCH_WRITERS:-1,16,256}"
PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="${BENCH_OUT:-target/bench}"
mkdir -p "$OUT"
dir=()
[ -n "${BENCH_DIR:-}" ] && dir=(--dir "$BENCH_DIR")

source bench/common.sh
BIN="$(custos_bin "${BENCH_BIN:-}")"
export CUSTOS_LOG="${CUSTOS_LOG:-warn}"

echo "machine: $(nproc) CPUs; $(free -g | awk '/^Mem:/ {print $2 " GiB RAM"}'); $(df -hT "${BENCH_DIR:-target}" | awk 'NR==2 {print $2 " on " $1}')"
RESULTS="$OUT/ledger-append.jsonl"
: >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
  echo "== run $run of $RUNS" >&2
  "$BIN" bench ledger --seconds "$SECS" --writers "$WRITERS" --postgres-url "$PG" "${dir[@]}" \
    | tee "$OUT/ledger-append-run$run.txt" \
    | { grep '^{' || true; } \
    | sed "s/^/{\"run\":$run,\"r\":/; s/\$/}/" >>"$RESULTS"
  grep -v '^{' "$OUT/ledger-append-run$run.txt" >&2 || true
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = len({r["run"] for r in rows})
def med(measure, key, writers=None):
    vs = [r["r"][key] for r in rows if r["r"].get("measure") == measure
          and (writers is None or r["r"].get("writers") == writers) and key in r["r"]]
    return statistics.median(vs) if vs else None
def fmt(x, nd=0):
    return "-" if x is None else f"{x:,.{nd}f}"
setup = next((r["r"] for r in rows if r["r"]["measure"] == "setup"), {})
print(f"\nmedians of {runs} runs; work dir on {setup.get('filesystem')} ({setup.get('device')}), "
      f"{setup.get('seconds')} s per point, mean entry {setup.get('entry_bytes_mean')} bytes")
writers = sorted({r["r"]["writers"] for r in rows if r["r"]["measure"] == "group_commit"})
print(f"{'W':>4} {'group commit/s':>15} {'p50 µs':>8} {'p99 µs':>8} {'batch':>6} {'lag':>7} {'idx s':>6} "
      f"{'raw+fsync/s':>12} {'raw/gc':>7} {'PostgreSQL/s':>13} {'gc/pg':>6}")
for w in writers:
    gc = med("group_commit", "entries_per_s", w)
    raw = med("raw_append_fsync", "entries_per_s", w)
    pg = med("postgres_insert", "entries_per_s", w)
    print(f"{w:>4} {fmt(gc):>15} {fmt(med('group_commit','p50_us',w)):>8} {fmt(med('group_commit','p99_us',w)):>8} "
          f"{fmt(med('group_commit','mean_batch',w),1):>6} {fmt(med('group_commit','index_lag_max_entries',w)):>7} {fmt(med('group_commit','index_catch_up_s',w),2):>6} "
          f"{fmt(raw):>12} {fmt(raw/gc if gc and raw else None,2):>7} {fmt(pg):>13} {fmt(gc/pg if gc and pg else None,2):>6}")
print("diagnostic, Ledger::append alone (same batches, one thread, no sequencer/index/checkpoints): " + ", ".join(
    f"W={w}: {fmt(med('ledger_append_direct','entries_per_s',w))}/s, p50 {fmt(med('ledger_append_direct','append_p50_us',w))} µs"
    for w in writers))
print(f"raw+fsync batch sizes replayed: " + ", ".join(
    f"W={w}: {fmt(med('raw_append_fsync','batch_entries',w))}" for w in writers))
print(f"PostgreSQL p50/p99 commit µs: " + ", ".join(
    f"W={w}: {fmt(med('postgres_insert','commit_p50_us',w))}/{fmt(med('postgres_insert','commit_p99_us',w))}" for w in writers))
print(f"proof ledger build: {fmt(med('proof_ledger_build','entries'))} entries at {fmt(med('proof_ledger_build','entries_per_s'))} entries/s (append batches of 10,000)")
for m in ["inclusion_proof", "consistency_proof", "tlog_proof"]:
    print(f"{m:>18}: p50 {fmt(med(m,'p50_us'),2)} µs, p99 {fmt(med(m,'p99_us'),2)} µs, mean {fmt(med(m,'mean_us'),2)} µs")
print("lag: the access index's largest lag behind the ledger in the window (entries); idx s: its catch-up after the window")
print("targets (issue 19): >= 250,000 durable entries/s at 256 writers; raw/gc <= 2 at 1, 16 and 256 writers; index lag <= 1 s")
PY
