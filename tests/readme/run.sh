#!/usr/bin/env bash
# Runs the README's shell blocks top to bottom, as a reader would after the first set-up
# command, and fails on the first command that fails.
#
#   bash tests/readme/run.sh                         # builds target/debug/custos if needed
#   CUSTOS_BIN=target/release/custos bash tests/readme/run.sh
#
# What a reader does by hand, this script does the same way, and nothing more:
# - `cargo run --release --` and `custos` run $CUSTOS_BIN (the README installs the binary;
#   the demo is started as the binary itself, so that its pid is the server's);
# - the demo listens on a free loopback port instead of 8700 (HOST:8700 and 127.0.0.1:8700
#   become that address) and runs in the background, as a reader leaves it running;
# - DIR, the README's placeholder for the data directory, is the demo's `custos-data`;
# - placeholder assignments (`TOKEN=...`, `export CUSTOS_TOKEN=…`) are filled with what the
#   demo printed; `bash .ci/test` is skipped (it is what runs this script);
# - the files a reader brings are made here: `leak.csv` (phone numbers the printed support
#   agent revealed) and `bundle.json` (an evidence bundle from tracing it);
# - the simulator runs a small company with one scenario, a debug build being slow
#   (README_SIM="--staff 1000 --days 14 --scenario scenarios/*.toml" runs the README's
#   run, about 10 minutes on 2 cores in a release build);
# - curl fails on an error status, so a refused request fails the block.
# Work happens in a fresh temporary directory holding links to scenarios/ and bench/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

if [ -z "${CUSTOS_BIN:-}" ]; then
  cargo build --locked -p custos --bin custos
  CUSTOS_BIN="$root/target/debug/custos"
fi
CUSTOS_BIN="$(cd "$(dirname "$CUSTOS_BIN")" && pwd)/$(basename "$CUSTOS_BIN")"
[ -x "$CUSTOS_BIN" ] || { echo "readme: no binary at $CUSTOS_BIN" >&2; exit 1; }
# The README tells a Debian reader to install python3-venv for its venv; so does this.
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "readme: installing Debian's python3-venv" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
sim_size="${README_SIM:---staff 40 --days 2 --customers 2000 --scenario scenarios/departing-employee.toml}"

work="$(mktemp -d "${TMPDIR:-/tmp}/custos-readme.XXXXXX")"
demo_pid=""
cleanup() {
  if [ -n "$demo_pid" ]; then
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
ln -s "$root/scenarios" "$work/scenarios"
ln -s "$root/bench" "$work/bench"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
addr="127.0.0.1:$port"

# Every ```sh block of the README, one file each, in order.
awk -v dir="$work" '
  /^```sh$/ { n++; file = sprintf("%s/block-%02d.sh", dir, n); inside = 1; next }
  /^```/    { inside = 0; next }
  inside    { print > file }
' README.md
blocks=("$work"/block-*.sh)
[ "${#blocks[@]}" -ge 5 ] || { echo "readme: found only ${#blocks[@]} shell blocks" >&2; exit 1; }

# The README's words, turned into what runs here (see the list at the top).
rewrite() {
  sed -E \
    -e 's/^cargo run --release -- /custos /' \
    -e "s#(HOST|127\.0\.0\.1):8700#$addr#g" \
    -e 's/\bDIR\b/custos-data/g' \
    -e "s#--staff 1000 --days 14 --scenario scenarios/\*\.toml#$sim_size#" \
    -e '/^\s*(export\s+)?([A-Z_]+=(\.\.\.|…);?\s*)+(#.*)?$/d' \
    -e '/^bash \.ci\/test\b/d' \
    -e "s#^custos demo\b([^\#]*)(\#.*)?\$#\"\$CUSTOS_BIN\" demo --listen $addr\1 >demo.out 2>demo.err \&\nstarted_demo#" \
    "$1"
}

# Values the README tells the reader to take from the demo's output.
demo_values() {
  local try
  try="$(grep -m1 -- "-H 'X-Custos-Case:" demo.out)"
  TOKEN="$(sed -E "s/.*Bearer ([^']+)'.*/\1/" <<<"$try")"
  CASE="$(sed -E "s/.*X-Custos-Case: ([^']+)'.*/\1/" <<<"$try")"
  CUSTOMER="$(sed -E 's#.*/v1/customers/([^ ]+).*#\1#' <<<"$try")"
  CUSTOS_TOKEN="$(awk '/security analyst/ { print $NF; exit }' demo.out)"
  AGENT="$(sed -E 's/.*as support agent ([^:]+):.*/\1/' <<<"$(grep -m1 'try, as support agent' demo.out)")"
  export TOKEN CASE CUSTOMER CUSTOS_TOKEN AGENT
  for value in "$TOKEN" "$CASE" "$CUSTOMER" "$CUSTOS_TOKEN" "$AGENT"; do
    [ -n "$value" ] || { echo "readme: the demo did not print every value" >&2; exit 1; }
  done
}

# The files a reader brings: a leak of the printed agent's customers, and a bundle.
reader_files() {
  python3 - "$addr" "$AGENT" <<'EOF' >leak.csv
import json, sys, urllib.request
addr, agent = sys.argv[1], sys.argv[2]
staff = json.load(open("custos-data/demo-tokens.json"))["staff"]
me = next(s for s in staff if s["id"] == agent)
print("phone")
for case, customer in me["cases"]:
    body = json.dumps({"fields": ["phone"], "case": case, "reason": "call-back"}).encode()
    request = urllib.request.Request(
        f"http://{addr}/v1/customers/{customer}/reveal", data=body,
        headers={"Authorization": f"Bearer {me['token']}", "Content-Type": "application/json"})
    phone = json.load(urllib.request.urlopen(request))["fields"]["phone"]
    if phone:
        print(phone)
EOF
  # The checkpointer signs at least once a second: wait until it covers the reveals.
  sleep 2
  custos trace leak.csv --data-dir custos-data --evidence bundle.json --quiet >/dev/null
}

# Not passed on: the server reads CUSTOS_* variables as its configuration.
export -n CUSTOS_BIN
cd "$work"
custos() { "$CUSTOS_BIN" "$@"; }
curl() { command curl --fail-with-body -sS "$@"; }
started_demo() {
  demo_pid=$!
  for _ in $(seq 1 120); do
    command curl -fs "http://$addr/healthz" >/dev/null 2>&1 && grep -q 'X-Custos-Case' demo.out 2>/dev/null && break
    kill -0 "$demo_pid" 2>/dev/null || { cat demo.err >&2; echo "readme: the demo exited" >&2; exit 1; }
    sleep 1
  done
  demo_values
  reader_files
}

for block in "${blocks[@]}"; do
  name="$(basename "$block" .sh)"
  rewrite "$block" >"$block.run"
  echo "readme: $name" >&2
  sed 's/^/  | /' "$block.run" >&2
  # shellcheck disable=SC1090
  set -x
  source "$block.run"
  { set +x; } 2>/dev/null
done

# What the README promises of the trace: the leak points at the agent who revealed it.
top="$(python3 -c 'import json; print(json.load(open("report.json"))["suspects"][0]["staff"])')"
[ "$top" = "$AGENT" ] || { echo "readme: the trace named $top, not $AGENT" >&2; exit 1; }
echo "readme: every block ran (${#blocks[@]} blocks)" >&2
