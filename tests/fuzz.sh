#!/usr/bin/env bash
# Run every fuzz target for a while and print how many executions each did.
#   tests/fuzz.sh [SECONDS]      (default 600 per target; two targets at a time)
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The toolchain here is stable:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the sanitizer flags it needs.
# Not part of tests/run: fuzzing is a measurement, not a test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-600}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/tmp/slo-fuzz-target}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2; exit 1; }
cargo fuzz build -O
logs="$(mktemp -d)"
targets=($(cargo fuzz list))
run() {
  cargo fuzz run -O "$1" -- -max_total_time="$secs" -rss_limit_mb=2048 >"$logs/$1.log" 2>&1
  echo "$1: exit $?, $(grep -o 'Done [0-9]* runs' "$logs/$1.log" | tail -1)"
}
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[i]}" &
  if ((i + 1 < ${#targets[@]})); then run "${targets[i + 1]}" & fi
  wait
done
echo "logs in $logs"
