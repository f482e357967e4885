#!/usr/bin/env bash
# Makes a fresh SoftHSM2 token for a test: its own configuration and token directory under
# DIR, a token labelled LABEL with user PIN PIN. Prints the configuration's path, which the
# caller passes to the module as SOFTHSM2_CONF.
# Usage: init-token.sh DIR LABEL PIN
set -euo pipefail
dir="$1" label="$2" pin="$3"
command -v softhsm2-util >/dev/null || {
  echo "softhsm2-util not found: install Debian's softhsm2 (bash .ci/test does)" >&2
  exit 1
}
mkdir -p "$dir/tokens"
conf="$dir/softhsm2.conf"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir" >"$conf"
SOFTHSM2_CONF="$conf" softhsm2-util --init-token --free --label "$label" \
  --pin "$pin" --so-pin "so-$pin" >/dev/null
echo "$conf"
