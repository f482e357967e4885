#!/usr/bin/env bash
# Builds every fuzz target (libFuzzer, coverage-instrumented, stable Rust) and runs each
# for SECONDS over its corpus: fuzz/corpus/<target> (made from the repository's test
# fixtures by fuzz/seed.sh when missing) plus what earlier runs found.
#
#   bash fuzz/run.sh 8                 # CI: 8 s per target
#   bash fuzz/run.sh 3600 verify_tiles # one target for an hour (fuzz/README.md)
#   FUZZ_RUNS=10000000 bash fuzz/run.sh 7200   # the long run: 10 million executions each
#                                              # (or two hours, whichever comes first)
#
# One line per target: `PASS fuzz <target>: <executions> executions in <s> s` or
# `FAIL fuzz <target>: …` with the crashing input kept in fuzz/artifacts/<target>/.
# Exits non-zero if any target failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
seconds="${1:-8}"
shift || true

# The flags cargo-fuzz passes, minus the sanitizer: the code under test has no `unsafe`.
# `--target` keeps them off build scripts and procedural macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks"
cargo build --release --locked --target "$host" --bins
bin="$here/target/$host/release"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^custos-fuzz$')
fi
bash "$here/seed.sh"

runs=()
if [ -n "${FUZZ_RUNS:-}" ]; then
  runs=("-runs=$FUZZ_RUNS")
fi

failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="$(mktemp)"
  started=$SECONDS
  if "$bin/$t" "corpus/$t" -max_total_time="$seconds" ${runs[@]+"${runs[@]}"} -print_final_stats=1 \
      -artifact_prefix="artifacts/$t/" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    echo "PASS fuzz $t: ${execs:-?} executions in $((SECONDS - started)) s"
  else
    failed=1
    echo "FAIL fuzz $t: the crashing input is in fuzz/artifacts/$t/; libFuzzer said:"
    grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" | head -20 || true
  fi
  rm -f "$log"
done
exit "$failed"
