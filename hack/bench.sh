#!/usr/bin/env bash
# Benchmarks, release build, against the test control plane (built once,
# cached): package verification (verify-bench) and imports (ferry-bench:
# Ferry against direct kube-rs creates and kubectl apply --server-side).
# Writes BENCHMARKS.md. Arguments go to ferry-bench (e.g. --quick, --sizes
# 1000,10000 --runs 5); with --quick nothing is written unless --write is
# given.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash hack/ensure-toolchains.sh
FERRY_TOOLS_BIN="$(bash hack/install-tools.sh)"
export FERRY_TOOLS_BIN
cargo build --release --locked --bin ferry --bin ferry-bench -p ferry
cargo build --release --locked --bin verify-bench -p ferry-package
target="${CARGO_TARGET_DIR:-target}/release"
case " $* " in
  *" --quick "*)
    exec "$target/ferry-bench" "$@" ;;
esac
"$target/verify-bench" --write BENCHMARKS.md
exec "$target/ferry-bench" --write BENCHMARKS.md "$@"
