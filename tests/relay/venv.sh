#!/usr/bin/env bash
# Prints the python of tests/relay/.venv with aiosmtpd (PyPI, pinned here): the real SMTP
# server the relay tests (crates/custos/tests/relay.rs) send email to.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../venv.sh" "$here" "aiosmtpd==1.4.6"
