#!/usr/bin/env bash
# SCIM conformance: scim2-tester (PyPI, pinned below) checks the server's /scim/v2
# against RFC 7643 and RFC 7644 — discovery, create, read, attribute projection, search,
# replace, delete, PATCH add/replace/remove — on a fresh `custos demo`, as a `scim`
# principal the admin creates. Fails on any check that errs.
#
#   bash tests/scim/run.sh                      # builds target/debug/custos if needed
#   CUSTOS_BIN=target/release/custos bash tests/scim/run.sh
#
# Installs the checker into tests/scim/.venv (ignored by git) when it is missing there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

packages=("scim2-tester==0.5.2" "scim2-client[httpx2]==0.13.2" "scim2-models==0.12.3" "httpx2==2.16.2")
venv="$here/.venv"
bash "$here/../venv.sh" "$here" "${packages[@]}" >/dev/null

if [ -z "${CUSTOS_BIN:-}" ]; then
  cargo build --locked -p custos --bin custos
  CUSTOS_BIN="$root/target/debug/custos"
fi
[ -x "$CUSTOS_BIN" ] || { echo "scim tests: no binary at $CUSTOS_BIN" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/custos-scim.XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# The server reads every CUSTOS_ variable as configuration: start it without ours.
env $(env | grep -o '^CUSTOS_[A-Z_]*' | sed 's/^/-u /') NO_COLOR=1 RUST_LOG=warn \
  "$CUSTOS_BIN" demo --data-dir "$work/data" --listen "127.0.0.1:$port" --customers 20 \
  >"$work/demo.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  grep -qs 'custos ledger verify --url' "$work/demo.log" && break
  kill -0 "$pid" 2>/dev/null || { tail -40 "$work/demo.log" >&2; exit 1; }
  sleep 0.3
done
base="http://127.0.0.1:$port"

# The provider's client: a staff entry in the scim role, and its token.
token="$("$venv/bin/python" - "$base" "$(cat "$work/data/admin.token")" <<'PY'
import json, sys, urllib.request
base, admin = sys.argv[1], sys.argv[2]
def post(path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(base + path, data=data, method="POST",
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
post("/v1/staff", {"id": "idp-sync", "name": "Identity provider", "role": "scim", "org": "custos"})
print(post("/v1/staff/idp-sync/tokens")["token"])
PY
)"

"$venv/bin/python" "$here/conformance.py" "$base/scim/v2" "$token"
