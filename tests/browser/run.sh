#!/usr/bin/env bash
# Browser tests of the web console: `custos demo` on a free loopback port, driven by
# Debian's headless Chromium through playwright-core (no browser download).
#
#   bash tests/browser/run.sh                      # builds target/debug/custos if needed
#   CUSTOS_BIN=target/release/custos bash tests/browser/run.sh
#   UPDATE_DOCS_SCREENSHOTS=1 bash tests/browser/run.sh   # also refreshes docs/console/*.png
#                                    (apt-get install pngquant first for smaller files)
#
# Installs what is missing: Debian's chromium (apt-get, as root) and the npm packages
# (npm ci, from package-lock.json). Screenshots go to $ARTIFACTS_DIR
# (default tests/browser/artifacts/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "browser tests: installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null || { echo "browser tests: node is missing" >&2; exit 1; }

if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "browser tests: npm ci" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -z "${CUSTOS_BIN:-}" ]; then
  cargo build --locked -p custos --bin custos
  export CUSTOS_BIN="$root/target/debug/custos"
fi
export CUSTOS_BIN="$(cd "$(dirname "$CUSTOS_BIN")" && pwd)/$(basename "$CUSTOS_BIN")"
[ -x "$CUSTOS_BIN" ] || { echo "browser tests: no binary at $CUSTOS_BIN" >&2; exit 1; }

export ARTIFACTS_DIR="${ARTIFACTS_DIR:-$here/artifacts}"
mkdir -p "$ARTIFACTS_DIR"

cd "$here"
exec node --test --test-concurrency=1 console.test.mjs
