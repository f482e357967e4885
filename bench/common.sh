# Shared by the benchmark scripts, which source it from the repository root.

# Prints the binary under test: $1 when given (e.g. an earlier commit's build, for an
# A/B), else this tree's release build, built first.
custos_bin() {
  if [ -n "${1:-}" ]; then
    echo "$1"
  else
    cargo build --release --quiet -p custos >&2
    echo target/release/custos
  fi
}
