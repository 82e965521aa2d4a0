#!/usr/bin/env bash
# Ferry's objects judged by the GitOps tools' own code (tests/gitops, a Go
# module built from the module proxy at the versions its go.mod pins):
#   - Argo CD: resource_customizations/ferry.dev/*/health.lua run under
#     gopher-lua the way Argo CD runs them, against health_test.yaml;
#   - kstatus (sigs.k8s.io/cli-utils) on every test object;
#   - Flux: the healthCheckExprs of docs/gitops.md through Flux's CEL
#     status reader (github.com/fluxcd/pkg/runtime/cel).
# The expected kstatus/Flux results are in tests/gitops/expect.yaml.
#
# With --capture it first refreshes the captured objects
# (resource_customizations/ferry.dev/*/testdata/phase-*.yaml) from a real
# control plane with the operator running (tests/gitops_capture.rs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v go >/dev/null || { echo "gitops-check: Go is required (https://go.dev/doc/install)" >&2; exit 1; }
if [ "${1:-}" = "--capture" ]; then
  FERRY_TOOLS_BIN="$(bash hack/install-tools.sh)" FERRY_CAPTURE_WRITE=1 \
    cargo test --locked --test gitops_capture -- --nocapture
fi
start=$(date +%s)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! go -C tests/gitops test -count=1 -v ./... >"$log" 2>&1; then
  cat "$log" >&2
  echo "gitops-check: FAILED" >&2
  exit 1
fi
grep -E '^(--- |\s+status_test\.go|ok)' "$log"
echo "gitops-check: Argo CD, kstatus and Flux checks passed in $(( $(date +%s) - start ))s"
