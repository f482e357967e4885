#!/usr/bin/env bash
# Phone normalisation's rate with the phone parser's own pattern cache and with Custos's
# wider one, in the same process (crates/custos-crypto/examples/phone_patterns.rs).
#
#   bash bench/phones.sh [NUMBERS] [RUNS]     (default 4000 numbers per set, 5 runs)
#
# Prints one JSON line per run, setting and set, then the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet -p custos-crypto --example phone_patterns -- "${1:-4000}" "${2:-5}"
