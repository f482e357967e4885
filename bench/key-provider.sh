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

start_demo() { # dir port → pid in $pid
  "$BIN" demo --data-dir "$1/data" --listen "127.0.0.1:$2" --customers 10000 >"$1/demo.out" 2>"$1/demo.err" &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "Custos demo running" "$1/demo.out" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "bench: custos demo exited:" >&2; cat "$1/demo.err" >&2; exit 1; }
    sleep 0.5
  done
  echo "bench: the demo did not start" >&2; exit 1
}

lookups() { # phase run dir seconds warmup
  # The demo's own insiders are suspended by then (a canary hit, a risk score) and their
  # lookups are refused: the same few targets in every phase; their count is in "errors".
  { "$BIN" bench lookup --tokens "$3/data/demo-tokens.json" --concurrency "$CONC" --duration "$4" --warmup "$5" 2>/dev/null || true; } \
    | sed "s/^/{\"phase\":\"$1\",\"run\":$2,\"r\":/; s/\$/}/" | tee -a "$OUT/key-provider.jsonl"
}

rotate() { # phase run dir port
  local line
  line=$("$BIN" keys rotate --quiet --url "http://127.0.0.1:$4" --token-file "$3/data/admin.token" | tail -n1)
  # "rotation N: finished, R of T data keys re-wrapped in S s"
  python3 - "$1" "$2" "$line" <<'PY' | tee -a "$OUT/key-provider.jsonl"
import json, re, sys
m = re.search(r"(\d+) of (\d+) data keys re-wrapped in ([0-9.]+) s", sys.argv[3])
keys, secs = int(m.group(1)), float(m.group(3))
print(json.dumps({"phase": sys.argv[1], "run": int(sys.argv[2]),
                  "r": {"keys": keys, "seconds": secs, "keys_per_s": round(keys / secs)}}))
PY
}

: >"$OUT/key-provider.jsonl"
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
