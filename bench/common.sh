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
