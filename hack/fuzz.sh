#!/usr/bin/env bash
# Fuzzes the package reader (fuzz/fuzz_targets/read_package.rs) with
# libFuzzer on the stable toolchain: the coverage instrumentation cargo-fuzz
# adds (`cargo fuzz run -s none`) is passed as plain codegen flags, so
# neither nightly nor cargo-fuzz is needed.
#
#   hack/fuzz.sh [MINUTES]   run for MINUTES (default 10)
#   hack/fuzz.sh --quick     about 60 seconds (CI)
#
# Seeds: fuzz/seeds/read_package (the bad-package corpus and the FlowSpec
# examples); inputs libFuzzer finds go to target/fuzz/corpus (not committed).
# The RSS limit is the chart's memory limit: an input that makes the reader
# need more would get the operator's pod OOM-killed. A crash, leak, timeout
# or RSS overrun leaves its input in target/fuzz/artifacts and fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${1:-}" in
  --quick) seconds=60 ;;
  "") seconds=600 ;;
  *[!0-9]*) echo "usage: hack/fuzz.sh [MINUTES|--quick]" >&2; exit 2 ;;
  *) seconds=$(( $1 * 60 )) ;;
esac

# The operator's memory limit from the chart (e.g. 512Mi), in MB for libFuzzer.
limit=$(awk '/^resources:/{r=1} r&&/limits:/{l=1} l&&/memory:/{print $2; exit}' charts/ferry/values.yaml)
case "$limit" in
  *Gi) rss_mb=$(( ${limit%Gi} * 1024 )) ;;
  *Mi) rss_mb=${limit%Mi} ;;
  *) echo "fuzz: cannot read resources.limits.memory from charts/ferry/values.yaml ($limit)" >&2; exit 1 ;;
esac

host=$(rustc -vV | sed -n 's/^host: //p')
# What `cargo fuzz build -s none` passes (libfuzzer-sys 0.4). --target keeps
# the flags off build scripts and proc macros, which have no libFuzzer to
# link against.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks -Cdebuginfo=1"
export CARGO_TARGET_DIR="$PWD/target/fuzz"
cargo build --release --manifest-path fuzz/Cargo.toml --target "$host" --bin read_package
bin="$CARGO_TARGET_DIR/$host/release/read_package"

work="$CARGO_TARGET_DIR/corpus"
artifacts="$CARGO_TARGET_DIR/artifacts/"
mkdir -p "$work" "$artifacts"
echo "fuzz: ${seconds}s, RSS limit ${rss_mb} MB (chart: $limit)"
# -max_len: the target's package limit is 8 MiB, but mutations of inputs
# that large are slow; 1 MiB covers every seed and a 1 MiB document.
"$bin" -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
  -timeout=30 -max_len=1048576 -print_final_stats=1 \
  -artifact_prefix="$artifacts" "$work" fuzz/seeds/read_package
