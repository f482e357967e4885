#!/usr/bin/env bash
# Property-based tests of the HTTP API against its own OpenAPI document: schemathesis
# (PyPI, pinned below) runs every check in every phase (examples, coverage, fuzzing,
# stateful) against `custos demo`, once per role, and fails on any failure.
#
#   bash tests/api/schemathesis.sh                  # builds target/debug/custos if needed
#   CUSTOS_BIN=target/release/custos bash tests/api/schemathesis.sh
#   ST_ROLES="admin support" ST_EXAMPLES=30 bash tests/api/schemathesis.sh
#
# Installs schemathesis into tests/api/.venv (ignored by git) when it is missing there.
# Reports go to $ST_REPORTS (default tests/api/reports/, ignored by git).
#
# State: the runs create staff, revoke tokens, suspend people and close cases, so each
# role runs against a fresh demo in its own temporary data directory, and no run can
# lock out the next. Within a run, the one thing that would end it early, suspending
# the staff member whose token it uses (a stateful run learns their id from GET
# /v1/me), is redirected to another member of the demo (hooks.py). A run cannot revoke
# its own token: it never learns that token's id.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

ST_VERSION=4.32.5
venv="$here/.venv"
bash "$here/../venv.sh" "$here" "schemathesis==$ST_VERSION" >/dev/null

if [ -z "${CUSTOS_BIN:-}" ]; then
  cargo build --locked -p custos --bin custos
  CUSTOS_BIN="$root/target/debug/custos"
fi
CUSTOS_BIN="$(cd "$(dirname "$CUSTOS_BIN")" && pwd)/$(basename "$CUSTOS_BIN")"
[ -x "$CUSTOS_BIN" ] || { echo "api tests: no binary at $CUSTOS_BIN" >&2; exit 1; }

# Roles, as in the demo's staff list (demo-tokens.json); `integration` is the CRM,
# `contact_center` the contact centre's platform (`switch`), `telephony` the PBX (`pbx`),
# `scim` the identity provider's provisioning client (`idp`), `privacy_officer` `dpo`.
roles="${ST_ROLES:-admin security_analyst support sales team_lead integration contact_center telephony scim privacy_officer}"
reports="${ST_REPORTS:-$here/reports}"
mkdir -p "$reports"
# Options for `st run`: test cases per operation and phase (schemathesis.toml has the
# default), and a fixed seed unless ST_SEED says otherwise (`random` for a new one), so
# that a CI failure can be replayed.
options=()
if [ -n "${ST_EXAMPLES:-}" ]; then options+=(--max-examples "$ST_EXAMPLES"); fi
seed="${ST_SEED:-20261202}"
if [ "$seed" != random ]; then options+=(--seed "$seed"); fi

# Runs at once: schemathesis and the demo each use about one core while they run.
jobs="${ST_JOBS:-2}"

work="$(mktemp -d "${TMPDIR:-/tmp}/custos-st.XXXXXX")"
# Each demo's pid is in $work/<role>/demo.pid while it runs. A demo is not this shell's
# child (it starts in a command substitution), so stopping one waits until it has exited
# (a graceful shutdown takes a few seconds) before its directory may go.
stop_demo() {
  local file="$1" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$file"
}
stop_demos() {
  local file
  for file in "$work"/*/demo.pid; do
    stop_demo "$file"
  done
}
trap 'stop_demos; wait; rm -rf "$work"' EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a fresh demo in $1 on a free port and prints its base URL once it serves.
start_demo() {
  local dir="$1" port pid
  port="$(free_port)"
  # The server reads every CUSTOS_ variable as configuration: start it without ours.
  env $(env | grep -o '^CUSTOS_[A-Z_]*' | sed 's/^/-u /') NO_COLOR=1 RUST_LOG=warn \
    "$CUSTOS_BIN" demo --data-dir "$dir/data" --listen "127.0.0.1:$port" --customers 20 \
    >"$dir/demo.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/demo.pid"
  for _ in $(seq 1 600); do
    if grep -qs 'custos ledger verify --url' "$dir/demo.log"; then
      echo "http://127.0.0.1:$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.3
  done
  echo "api tests: custos demo did not start:" >&2
  tail -40 "$dir/demo.log" >&2
  return 1
}

# Prints "<staff id> <token> <stand-in id>" for the first company member with role $2
# in the demo-tokens.json at $1; the stand-in is another member of the demo.
staff_of() {
  python3 - "$1" "$2" <<'PY'
import json, sys
staff = json.load(open(sys.argv[1]))["staff"]
role = sys.argv[2]
own = next(s for s in staff if s["role"] == role and s["org"] == "custos")
other = next(s for s in staff if s["role"] == "support" and s["id"] != own["id"])
print(own["id"], own["token"], other["id"])
PY
}

# One role's run against its own demo; leaves its exit status in $work/<role>/status.
run_role() {
  local role="$1" dir="$work/$1" base staff token stand_in status=0
  mkdir -p "$dir"
  base="$(start_demo "$dir")" || { echo 1 >"$dir/status"; return; }
  read -r staff token stand_in < <(staff_of "$dir/data/demo-tokens.json" "$role")
  echo "api tests: $role ($staff) against $base" >&2
  (
    cd "$here"
    CUSTOS_ST_TOKEN="$token" CUSTOS_ST_STAFF="$staff" CUSTOS_ST_STAND_IN="$stand_in" \
      PYTHONPATH="$here" "$venv/bin/st" --config-file "$here/schemathesis.toml" run \
      "$base/openapi.json" --checks all --phases examples,coverage,fuzzing,stateful \
      --no-color --report junit --report-junit-path "$reports/$role.xml" "${options[@]}"
  ) >"$reports/$role.log" 2>&1 || status=$?
  stop_demo "$dir/demo.pid"
  echo "$status" >"$dir/status"
}

started=$SECONDS
for role in $roles; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_role "$role" &
done
wait

failed=""
for role in $roles; do
  status="$(cat "$work/$role/status" 2>/dev/null || echo 1)"
  echo "== $role: $(grep -E '^=+ .* in [0-9.]+s =+$' "$reports/$role.log" | tr -d '=' | sed 's/^ *//')"
  if [ "$status" -ne 0 ]; then
    echo "api tests: $role FAILED (exit $status); see $reports/$role.log" >&2
    sed -n '/= FAILURES =/,/= SUMMARY =/p' "$reports/$role.log" | head -200 >&2
    failed="$failed $role"
  fi
done

total="$(echo "$roles" | wc -w)"
bad="$(echo "$failed" | wc -w)"
echo "api tests: $total roles in $((SECONDS - started)) s"
echo "schemathesis: $((total - bad)) passed, $bad failed"
[ -z "$failed" ]
