#!/usr/bin/env bash
# Prints the python of DIR/.venv (ignored by git), creating it with the pinned PyPI
# packages when any of them is missing there or at another version. Shared by the test
# tools written in Python (tests/api, tests/scim, tests/export, tests/relay).
#
#   python="$(bash tests/venv.sh DIR NAME==VERSION...)"
#
# Everything but the path goes to standard error.
set -euo pipefail
dir="$1"
shift
venv="$dir/.venv"
# Each NAME[extras]==VERSION must be installed at exactly VERSION.
check="import importlib.metadata as m, sys
pins = [p.split('==') for p in sys.argv[1:]]
sys.exit(any(m.version(n.split('[')[0]) != v for n, v in pins))"
if ! "$venv/bin/python" -c "$check" "$@" 2>/dev/null; then
  echo "tests: installing $* into $venv" >&2
  if ! python3 -m venv --clear "$venv" >&2; then
    # Debian's own python3 keeps venv in a package of its own.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --clear "$venv" >&2
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
fi
echo "$venv/bin/python"
