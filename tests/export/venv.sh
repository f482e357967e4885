#!/usr/bin/env bash
# Prints the python of tests/export/.venv with py-ocsf-models and ocsf-lib (PyPI, pinned
# here): what the export test (crates/custos/tests/export.rs) validates the events it
# received with (validate.py).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../venv.sh" "$here" "py-ocsf-models==0.10.0" "ocsf-lib==0.10.4"
