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
if ! "$venv/bin/st" --version 2>/dev/null | grep -qx "st, version $ST_VERSION"; then
  echo "api tests: installing schemathesis $ST_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

if [ -z "${CUSTOS_BIN:-}" ]; then
  cargo build --locked -p custos --bin custos
  CUSTOS_BIN="$root/target/debug/custos"
fi
CUSTOS_BIN="$(cd "$(dirname "$CUSTOS_BIN")" && pwd)/$(basename "$CUSTOS_BIN")"
[ -x "$CUSTOS_BIN" ] || { echo "api tests: no binary at $CUSTOS_BIN" >&2; exit 1; }

# Roles, as in the demo's staff list (demo-tokens.json); `integration` is the CRM.
roles="${ST_ROLES:-admin security_analyst support sales team_lead integration}"
reports="${ST_REPORTS:-$here/reports}"
mkdir -p "$reports"
# Options for `st run`: test cases per operation and phase (schemathesis.toml has the
# default), and a fixed seed unless ST_SEED says otherwise (`random` for a new one), so
# that a CI failure can be replayed.
options=()
if [ -n "${ST_EXAMPLES:-}" ]; then options+=(--max-examples "$ST_EXAMPLES"); fi
seed="${ST_SEED:-20261202}"
if [ "$seed" != random ]; then options+=(--seed "$seed"); fi

work="$(mktemp -d "${TMPDIR:-/tmp}/custos-st.XXXXXX")"
demo_pid=""
stop_demo() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill "$demo_pid" && wait "$demo_pid" 2>/dev/null || true
  fi
  demo_pid=""
}
trap 'stop_demo; rm -rf "$work"' EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a fresh demo in $1 on a free port; sets $base.
start_demo() {
  local dir="$1" port
  port="$(free_port)"
  # The server reads every CUSTOS_ variable as configuration: start it without ours.
  env $(env | grep -o '^CUSTOS_[A-Z_]*' | sed 's/^/-u /') NO_COLOR=1 RUST_LOG=warn \
    "$CUSTOS_BIN" demo --data-dir "$dir/data" --listen "127.0.0.1:$port" --customers 100 \
    >"$dir/demo.log" 2>&1 &
  demo_pid=$!
  for _ in $(seq 1 180); do
    if grep -qs 'custos ledger verify --url' "$dir/demo.log"; then
      base="http://127.0.0.1:$port"
      return 0
    fi
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 1
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

failed=""
started=$SECONDS
for role in $roles; do
  dir="$work/$role"
  mkdir -p "$dir"
  start_demo "$dir"
  read -r staff token stand_in < <(staff_of "$dir/data/demo-tokens.json" "$role")
  echo "api tests: $role ($staff) against $base" >&2
  status=0
  (
    cd "$here"
    CUSTOS_ST_TOKEN="$token" CUSTOS_ST_STAFF="$staff" CUSTOS_ST_STAND_IN="$stand_in" \
      PYTHONPATH="$here" "$venv/bin/st" --config-file "$here/schemathesis.toml" run \
      "$base/openapi.json" --checks all --phases examples,coverage,fuzzing,stateful \
      --no-color --report junit --report-junit-path "$reports/$role.xml" "${options[@]}"
  ) >"$reports/$role.log" 2>&1 || status=$?
  stop_demo
  tail -n 30 "$reports/$role.log" | sed -n '/SUMMARY/,$p'
  if [ "$status" -ne 0 ]; then
    echo "api tests: $role FAILED (exit $status); see $reports/$role.log" >&2
    failed="$failed $role"
  fi
done

total="$(echo "$roles" | wc -w)"
bad="$(echo "$failed" | wc -w)"
echo "api tests: $total roles in $((SECONDS - started)) s"
echo "schemathesis: $((total - bad)) passed, $bad failed"
[ -z "$failed" ]
