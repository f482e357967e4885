#!/usr/bin/env bash
# Prints the python of tests/relay/.venv (ignored by git), creating it with aiosmtpd
# (PyPI, pinned below) when it is missing there: the real SMTP server the relay tests
# (crates/custos/tests/relay.rs) send email to.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=1.4.6
venv="$here/.venv"
if ! "$venv/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$version')" 2>/dev/null; then
  echo "relay tests: installing aiosmtpd $version into $venv" >&2
  if ! python3 -m venv --clear "$venv" >&2; then
    # Debian's own python3 keeps venv in a package of its own.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --clear "$venv" >&2
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$version" >&2
fi
echo "$venv/bin/python"
