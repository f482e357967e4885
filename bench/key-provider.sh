#!/usr/bin/env bash
# Protected lookups with the key-encryption key in a PKCS#11 token (SoftHSM2) against the
# key file, in the same run and on the same demo data; and the speed of a rotation.
#
#   bash bench/key-provider.sh [RUNS]      (default 3 runs; medians go in BENCHMARKS.md)
#
# Each run, on one demo (10,000 customers, SQLite):
#   file        lookups while every data key is under the file's KEK (the anchor);
#   rotating    lookups during a rotation from the file onto the token (the rotation's
#               own rate is printed as rotation_under_load);
#   token_warm  lookups with every key on the token and the data-key cache on (default);
#   rotation    a second rotation (token v1 → v2) with no other load, after a restart
#               with the cache off;
#   token_cold  lookups with the cache off: every lookup unwraps on the token.
# Needs softhsm2 (Debian). BENCH_BIN runs a given binary instead of building this tree's.
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
# The benchmark's own load must not look like harvesting to the detector (its restrictions
# would turn lookups into refusals part-way through a phase).
export CUSTOS_DETECTOR__SCORE__THRESHOLDS__STEP_UP=1000000 \
  CUSTOS_DETECTOR__SCORE__THRESHOLDS__LOWER_QUOTA=1000000 \
  CUSTOS_DETECTOR__SCORE__THRESHOLDS__SUSPEND=1000000
export CUSTOS_LOG=warn

JSONL="$OUT/key-provider.jsonl"
: >"$JSONL"
for run in $(seq 1 "$RUNS"); do
  dir="$(mktemp -d)"
  port=$((18700 + RANDOM % 1000))
  conf="$(bash tests/softhsm/init-token.sh "$dir/hsm" custos-bench 1357)"
  printf '1357\n' >"$dir/pin"; chmod 600 "$dir/pin"
  export SOFTHSM2_CONF="$conf" CUSTOS_KEYS__PROVIDER=pkcs11 \
    CUSTOS_KEYS__PKCS11__MODULE=/usr/lib/softhsm/libsofthsm2.so \
    CUSTOS_KEYS__PKCS11__TOKEN_LABEL=custos-bench CUSTOS_KEYS__PKCS11__PIN_FILE="$dir/pin"
  unset CUSTOS_KEYS__CACHE_KEYS
  start_demo "$dir" "$port"
  lookups file "$run" "$dir" "$SECS" 3
  rotate rotation_under_load "$run" "$dir" "$port" &
  rot=$!
  lookups rotating "$run" "$dir" 5 0
  wait "$rot"
  lookups token_warm "$run" "$dir" "$SECS" 3
  kill "$pid"; wait "$pid" || true
  export CUSTOS_KEYS__CACHE_KEYS=0
  start_demo "$dir" "$port"
  rotate rotation "$run" "$dir" "$port"
  lookups token_cold "$run" "$dir" "$SECS" 3
  kill "$pid"; wait "$pid" || true
  rm -rf "$dir"
done

python3 - "$OUT/key-provider.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for phase in ["file", "rotating", "token_warm", "token_cold"]:
    rs = [r["r"] for r in rows if r["phase"] == phase]
    med = lambda k: statistics.median(r[k] for r in rs) if rs else None
    print(f"{phase:12} runs={len(rs)} median req/s={med('req_per_s')} p50_ms={med('p50_ms')} p99_ms={med('p99_ms')} errors={med('errors')}")
for phase in ["rotation_under_load", "rotation"]:
    rs = [r["r"] for r in rows if r["phase"] == phase]
    print(f"{phase:20} runs={len(rs)} median keys/s={statistics.median(r['keys_per_s'] for r in rs) if rs else None}")
PY
