#!/usr/bin/env bash
# Prints the python of tests/export/.venv (ignored by git), creating it with py-ocsf-models
# and ocsf-lib (PyPI, pinned below) when they are missing there: what the export test
# (crates/custos/tests/export.rs) validates the events it received with (validate.py).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
models=0.10.0
lib=0.10.4
venv="$here/.venv"
check="import importlib.metadata as m, sys; sys.exit(m.version('py-ocsf-models') != '$models' or m.version('ocsf-lib') != '$lib')"
if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
  echo "export tests: installing py-ocsf-models $models and ocsf-lib $lib into $venv" >&2
  if ! python3 -m venv --clear "$venv" >&2; then
    # Debian's own python3 keeps venv in a package of its own.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --clear "$venv" >&2
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "py-ocsf-models==$models" "ocsf-lib==$lib" >&2
fi
echo "$venv/bin/python"
