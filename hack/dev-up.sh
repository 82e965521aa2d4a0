#!/usr/bin/env bash
# README's first command: a local control plane with Ferry running against it
# and examples/ applied. Builds the control-plane binaries once (cached).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash hack/ensure-toolchains.sh
FERRY_TOOLS_BIN="$(bash hack/install-tools.sh)"
export FERRY_TOOLS_BIN
exec cargo run --quiet --bin ferry-dev -- up "$@"
