#!/usr/bin/env bash
# Installs the test control plane (kube-apiserver, kubectl, etcd, helm) at the
# versions pinned in hack/tools/*/go.mod, built with Go from the module proxy,
# into a cache directory outside the checkout. A directory per pin set: a
# changed pin builds anew, an unchanged one is reused.
#
# Prints the bin directory on stdout (everything else goes to stderr), so
#   export FERRY_TOOLS_BIN="$(hack/install-tools.sh)"
# is all a caller needs. FERRY_TOOLS_CACHE overrides the cache root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/tools"
cache_root="${FERRY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/tools}"

pinned() { (cd "$tools/$1" && go list -m -f '{{.Version}}' "$2"); }
command -v go >/dev/null || { echo "install-tools: Go is required (https://go.dev/doc/install)" >&2; exit 1; }
k8s_version="$(pinned kube k8s.io/kubernetes)"
etcd_version="$(pinned etcd go.etcd.io/etcd/server/v3)"
helm_version="$(pinned helm helm.sh/helm/v3)"
[ -n "$k8s_version" ] && [ -n "$etcd_version" ] && [ -n "$helm_version" ] || {
  echo "install-tools: could not read the pinned versions from $tools/*/go.mod" >&2; exit 1; }

# The pin set's identity: the versions plus the go.mod/go.sum contents, so a
# changed replace or checksum also rebuilds.
pin_hash="$(cat "$tools"/*/go.mod "$tools"/*/go.sum | sha256sum | cut -c1-12)"
dest="$cache_root/k8s-$k8s_version-etcd-$etcd_version-helm-$helm_version-$pin_hash"
bin="$dest/bin"

if [ -f "$dest/.complete" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
start=$(date +%s)
log() { echo "install-tools: $*" >&2; }

minor="${k8s_version#v1.}"; minor="${minor%%.*}"
# The version stamps kube-apiserver and kubectl report (`kubectl version`,
# /version); without them they report v0.0.0 and clients warn about skew.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build() { # module-dir package output
  log "building $3 ($2)"
  (cd "$tools/$1" && CGO_ENABLED=0 go build -trimpath -ldflags "$4" -o "$bin/$3" "$2") >&2
}
build kube k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$ldflags"
build kube k8s.io/kubernetes/cmd/kubectl kubectl "$ldflags"
build etcd go.etcd.io/etcd/server/v3 etcd "-s -w"
build helm helm.sh/helm/v3/cmd/helm helm "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"

touch "$dest/.complete"
log "installed into $bin in $(( $(date +%s) - start ))s"
echo "$bin"
