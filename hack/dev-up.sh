#!/usr/bin/env bash
# README's first command: a local control plane with Ferry running against it
# and examples/ applied. Builds the control-plane binaries once (cached).
# The operator it runs may fetch URL and object-store sources from private
# and loopback addresses (packages served from this machine): the
# equivalent of `ferry run --allow-private-sources`, never the default.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash hack/ensure-toolchains.sh
FERRY_TOOLS_BIN="$(bash hack/install-tools.sh)"
export FERRY_TOOLS_BIN
exec cargo run --quiet --bin ferry-dev -- up "$@"
