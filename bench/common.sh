# Shared by the benchmark scripts, which source it from the repository root.

# Prints the binary under test: $1 when given (e.g. an earlier commit's build, for an
# A/B), else this tree's release build, built first.
custos_bin() {
  if [ -n "${1:-}" ]; then
    echo "$1"
  else
    cargo build --release --quiet -p custos >&2
    echo target/release/custos
  fi
}

# Lifts every role's quotas through the environment, so that a benchmark measures the
# path, not the ceilings.
lift_quotas() {
  local role
  for role in default support sales team_lead; do
    export "CUSTOS_QUOTA__${role^^}__CUSTOMERS_PER_DAY=1000000000"
    export "CUSTOS_QUOTA__${role^^}__REVEALS_PER_HOUR=1000000000"
    export "CUSTOS_QUOTA__${role^^}__SEARCHES_PER_DAY=1000000000"
  done
}

# Prints bench/lookup.lua's targets, "token case customer" per line, from the demo's
# tokens file $1.
demo_targets() {
  python3 - "$1" <<'PY'
import json, sys
for s in json.load(open(sys.argv[1]))["staff"]:
    for case, customer in s["cases"]:
        print(s["token"], case, customer)
PY
}

# Starts `custos demo` (10,000 customers, SQLite) in $1/data on port $2, and waits until
# it serves; its pid in $pid.
start_demo() {
  "$BIN" demo --data-dir "$1/data" --listen "127.0.0.1:$2" --customers 10000 >"$1/demo.out" 2>"$1/demo.err" &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "Custos demo running" "$1/demo.out" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "bench: custos demo exited:" >&2; cat "$1/demo.err" >&2; exit 1; }
    sleep 0.5
  done
  echo "bench: the demo did not start" >&2; exit 1
}

# Protected lookups against the demo in $3 for $4 seconds after $5 of warm-up, with
# $CONC in flight; one JSON line {"phase": $1, "run": $2, "r": …} appended to $JSONL.
lookups() {
  # The demo's own insiders are suspended by then (a canary hit, a risk score) and their
  # lookups are refused: the same few targets in every phase; their count is in "errors".
  { "$BIN" bench lookup --tokens "$3/data/demo-tokens.json" --concurrency "$CONC" --duration "$4" --warmup "$5" 2>/dev/null || true; } \
    | sed "s/^/{\"phase\":\"$1\",\"run\":$2,\"r\":/; s/\$/}/" | tee -a "$JSONL"
}

# Rotates a key of the demo in $3 on port $4 (`custos keys rotate`, with the further
# arguments, e.g. --blind-index) and appends its rate as {"phase": $1, "run": $2, "r": …}
# to $JSONL.
rotate() {
  local phase="$1" run="$2" dir="$3" port="$4" line
  shift 4
  line=$("$BIN" keys rotate --quiet "$@" --url "http://127.0.0.1:$port" --token-file "$dir/data/admin.token" | tail -n1)
  # "rotation N: finished, R of T data keys re-wrapped in S s" (or "customers re-indexed")
  python3 - "$phase" "$run" "$line" <<'PY' | tee -a "$JSONL"
import json, re, sys
m = re.search(r"(\d+) of (\d+) [a-z -]+ in ([0-9.]+) s", sys.argv[3])
keys, secs = int(m.group(1)), float(m.group(3))
print(json.dumps({"phase": sys.argv[1], "run": int(sys.argv[2]),
                  "r": {"keys": keys, "seconds": secs, "keys_per_s": round(keys / secs)}}))
PY
}
