#!/usr/bin/env bash
# README's second command: every test of every crate, unit and integration,
# against a real kube-apiserver and etcd (built once, cached).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash hack/ensure-toolchains.sh
FERRY_TOOLS_BIN="$(bash hack/install-tools.sh)"
export FERRY_TOOLS_BIN
exec cargo test --workspace --locked "$@"
