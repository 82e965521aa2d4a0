#!/usr/bin/env bash
# The operator image run the way the chart's Deployment runs it, against a
# real kube-apiserver, with the chart's RBAC and nothing else:
#   - the chart is rendered (helm template) and applied; the container's
#     command, args, user, group, read-only root, dropped capabilities, no
#     privilege escalation, ports, probes, volumes and grace period are read
#     from the applied Deployment, not repeated here;
#   - the ServiceAccount's token, the cluster CA and the namespace are
#     mounted at /var/run/secrets/kubernetes.io/serviceaccount with
#     KUBERNETES_SERVICE_HOST/PORT set, so the operator uses its in-cluster
#     configuration and only the chart's RBAC;
# and checks: the probes answer on the chart's ports, metrics are served,
# the examples' import completes, a second container stands by and takes
# over through the Lease when the first is stopped (takeover time), SIGTERM
# ends the operator within the grace period, and the containers wrote
# nothing outside their volumes.
#
# The apiserver listens on loopback, so the containers use the host's
# network; the standby therefore listens on the chart's ports + 10000.
#
#   FERRY_IMAGE   an image to test (default: build one with hack/image.sh)
# Needs podman and runc, and the control plane of hack/install-tools.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v podman >/dev/null || { echo "container-e2e: podman is required (Debian: apt-get install podman runc)" >&2; exit 1; }
# See hack/image.sh: no default ulimits, runc.
export CONTAINERS_CONF="${TMPDIR:-/tmp}/ferry-containers.conf"
printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' >"$CONTAINERS_CONF"

t0=$(date +%s%N)
log() { printf 'container-e2e [%5.1fs]: %s\n' "$(( ($(date +%s%N) - t0) / 1000000 ))e-3" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

bin="${FERRY_TOOLS_BIN:-$(bash hack/install-tools.sh)}"
image="${FERRY_IMAGE:-$(bash hack/image.sh)}"
log "image $image: $(( $(podman image inspect --format '{{.Size}}' "$image") / 1024 / 1024 )) MiB"

work="$(mktemp -d)"
run="e2e-$$"
pids=()
cleanup() {
  set +e
  # Bounded: `podman rm` has been seen to hang here on this machine, and a
  # cleanup must never hold CI.
  for c in "$run-a" "$run-b"; do
    timeout 30 podman rm -f -t 0 "$c" >/dev/null 2>&1 \
      || timeout 10 podman kill -s KILL "$c" >/dev/null 2>&1
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  # The volumes belong to 65532; podman unshare is not needed as root.
  rm -rf "$work"
}
trap cleanup EXIT

# --- A control plane on loopback (the flags of src/testenv.rs). ---
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); peer_port=$(free_port); port=$(free_port)
mkdir -p "$work/certs"
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
admin_token=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$admin_token,admin,admin,\"system:masters\"" >"$work/tokens.csv"
"$bin/etcd" --data-dir="$work/etcd" --listen-client-urls="http://127.0.0.1:$etcd_port" \
  --advertise-client-urls="http://127.0.0.1:$etcd_port" --listen-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" --initial-cluster="default=http://127.0.0.1:$peer_port" \
  --unsafe-no-fsync --log-level=warn >"$work/etcd.log" 2>&1 &
pids+=($!)
"$bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 --secure-port="$port" --cert-dir="$work/certs" \
  --token-auth-file="$work/tokens.csv" --authorization-mode=RBAC --service-cluster-ip-range=10.0.0.0/24 \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$work/sa.key" --service-account-signing-key-file="$work/sa.key" \
  --endpoint-reconciler-type=none --v=0 >"$work/kube-apiserver.log" 2>&1 &
pids+=($!)
cat >"$work/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "https://127.0.0.1:$port", certificate-authority: "$work/certs/apiserver.crt"}}]
users: [{name: admin, user: {token: "$admin_token"}}]
contexts: [{name: e2e, context: {cluster: e2e, user: admin}}]
current-context: e2e
EOF
export KUBECONFIG="$work/admin.kubeconfig"
k() { "$bin/kubectl" "$@"; }
until [ -f "$work/certs/apiserver.crt" ] && [ "$(k get --raw /readyz 2>/dev/null)" = ok ]; do
  kill -0 "${pids[1]}" 2>/dev/null || fail "kube-apiserver exited: $(tail -5 "$work/kube-apiserver.log")"
  sleep 0.2
done
log "control plane ready at https://127.0.0.1:$port"

# --- The chart, rendered and applied as a GitOps tool would. ---
ns=ferry-system
"$bin/helm" template ferry charts/ferry --namespace "$ns" --include-crds \
  --set-string image.repository="${image%:*}" --set-string image.tag="${image##*:}" \
  --set leaderElection.enabled=true --set persistence.enabled=false >"$work/chart.yaml"
k create namespace "$ns" >/dev/null
k apply --server-side -f "$work/chart.yaml" >/dev/null
k wait --for=condition=Established crd --all --timeout=60s >/dev/null
log "chart applied ($(grep -c '^kind:' "$work/chart.yaml") objects)"

# The pod spec, as applied.
dj() { k -n "$ns" get deployment ferry -o jsonpath="{.spec.template.spec$1}"; }
sa=$(dj '.serviceAccountName')
uid=$(dj '.securityContext.runAsUser'); gid=$(dj '.securityContext.runAsGroup')
fs_group=$(dj '.securityContext.fsGroup')
grace=$(dj '.terminationGracePeriodSeconds')
c='.containers[0]'
mapfile -t command < <(k -n "$ns" get deployment ferry -o json | jq -r '.spec.template.spec.containers[0].command[]')
mapfile -t args < <(k -n "$ns" get deployment ferry -o json | jq -r '.spec.template.spec.containers[0].args[]')
[ "$(dj "$c.securityContext.readOnlyRootFilesystem")" = true ] || fail "the chart does not set readOnlyRootFilesystem"
[ "$(dj "$c.securityContext.allowPrivilegeEscalation")" = false ] || fail "the chart allows privilege escalation"
[ "$(dj "$c.securityContext.capabilities.drop[*]")" = ALL ] || fail "the chart does not drop all capabilities"
health_port=$(dj "$c.ports[?(@.name==\"health\")].containerPort")
metrics_port=$(dj "$c.ports[?(@.name==\"metrics\")].containerPort")
live_path=$(dj "$c.livenessProbe.httpGet.path"); ready_path=$(dj "$c.readinessProbe.httpGet.path")
declare -A mounts
while read -r name path; do mounts[$name]=$path; done < <(k -n "$ns" get deployment ferry -o json \
  | jq -r '.spec.template.spec.containers[0].volumeMounts[] | .name + " " + .mountPath')
mapfile -t env_plain < <(k -n "$ns" get deployment ferry -o json | jq -r '.spec.template.spec.containers[0].env[] | select(.value != null) | .name + "=" + .value')
log "Deployment: user $uid:$gid, grace ${grace}s, ports health $health_port metrics $metrics_port, args: ${args[*]}"

# --- The ServiceAccount's projected token, as the kubelet mounts it. ---
sa_dir="$work/serviceaccount"
mkdir -p "$sa_dir"
k -n "$ns" create token "$sa" --duration=1h >"$sa_dir/token"
cp "$work/certs/apiserver.crt" "$sa_dir/ca.crt"
printf '%s' "$ns" >"$sa_dir/namespace"
chmod 0644 "$sa_dir"/*

# One container per "pod": emptyDir volumes owned by fsGroup, the pod's env.
start_pod() { # name port-offset
  local name=$1 off=$2 vols=()
  for v in "${!mounts[@]}"; do
    mkdir -p "$work/$name/$v"
    chown "$uid:$fs_group" "$work/$name/$v"; chmod 2775 "$work/$name/$v"
    vols+=(-v "$work/$name/$v:${mounts[$v]}")
  done
  local a=() e=()
  for arg in "${args[@]}"; do
    # The standby shares the host's network: shift every bind port.
    if [[ $arg =~ ^(--[a-z-]+-bind-address=.*:)([0-9]+)$ ]]; then arg="${BASH_REMATCH[1]}$(( BASH_REMATCH[2] + off ))"; fi
    a+=("$arg")
  done
  for kv in "${env_plain[@]}"; do e+=(-e "$kv"); done
  podman run -d --name "$run-$name" --runtime runc --network host \
    --user "$uid:$gid" --group-add "$fs_group" --read-only --read-only-tmpfs=false \
    --cap-drop ALL --security-opt no-new-privileges \
    "${vols[@]}" -v "$sa_dir:/var/run/secrets/kubernetes.io/serviceaccount:ro" \
    -e KUBERNETES_SERVICE_HOST=127.0.0.1 -e KUBERNETES_SERVICE_PORT="$port" \
    -e POD_NAME="ferry-$name" -e POD_NAMESPACE="$ns" "${e[@]}" \
    --entrypoint "${command[0]}" "$image" "${a[@]}" >/dev/null
}
wait_http() { # url timeout-seconds
  local deadline=$(( $(date +%s) + $2 ))
  until curl -sf -o /dev/null "$1"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
holder() { k -n "$ns" get lease ferry-leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true; }

# --- The leader. ---
started=$(date +%s%N)
start_pod a 0
wait_http "http://127.0.0.1:$health_port$ready_path" 60 || fail "readiness never answered: $(podman logs "$run-a" 2>&1 | tail -5)"
ready_ms=$(ms_since "$started")
curl -sf -o /dev/null "http://127.0.0.1:$health_port$live_path" || fail "liveness $live_path did not answer"
log "container a: start to ready ${ready_ms} ms ($ready_path and $live_path answer on :$health_port)"
until [ "$(holder)" = ferry-a ]; do sleep 0.1; done
leader_ms=$(ms_since "$started")
log "container a holds the Lease ferry-leader after ${leader_ms} ms"

# --- An import, with the chart's RBAC only. ---
k apply --server-side --field-manager=e2e -R -f examples >/dev/null
k -n sales-prod wait --for=condition=Ready importtask/q4-import --timeout=180s >/dev/null \
  || fail "the import did not complete: $(k -n sales-prod get importtask q4-import -o jsonpath='{.status.phase}: {.status.message}')"
log "import sales-prod/q4-import: $(k -n sales-prod get importtask q4-import -o jsonpath='{.status.phase}') ($(k -n sales-prod get importtask q4-import -o jsonpath='{.status.progress.done}/{.status.progress.total}'))"
metrics=$(curl -sf "http://127.0.0.1:$metrics_port/metrics") || fail "no /metrics on :$metrics_port"
echo "$metrics" | grep -q '^ferry_' || fail "/metrics has no ferry_ series"
log "metrics on :$metrics_port: $(echo "$metrics" | grep -c '^ferry_') ferry_ samples"

# --- A standby, then the leader stopped. ---
start_pod b 10000
wait_http "http://127.0.0.1:$(( health_port + 10000 ))$ready_path" 60 || fail "the standby never became ready"
# Ready comes first; the standby then says it waits for the lease.
deadline=$(( $(date +%s) + 30 ))
until podman logs "$run-b" 2>&1 | grep -q 'waiting for the leader lease'; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the standby does not say it waits for the lease: $(podman logs "$run-b" 2>&1 | tail -5)"
  sleep 0.1
done
[ "$(holder)" = ferry-a ] || fail "the Lease moved to $(holder) while a was running"
log "container b stands by (ready, waiting for the lease)"

stop_start=$(date +%s%N)
podman stop -t "$grace" "$run-a" >/dev/null
stop_ms=$(ms_since "$stop_start")
code=$(podman inspect --format '{{.State.ExitCode}}' "$run-a")
[ "$code" -ne 137 ] || fail "container a did not stop within the ${grace}s grace period (killed)"
log "container a stopped on SIGTERM in ${stop_ms} ms (exit code $code; grace ${grace}s)"
until [ "$(holder)" = ferry-b ]; do
  [ "$(ms_since "$stop_start")" -lt 120000 ] || fail "container b did not take the Lease within 120s"
  sleep 0.1
done
takeover_ms=$(ms_since "$stop_start")
log "container b took over the Lease ${takeover_ms} ms after SIGTERM to a"

# The new leader acts: a second import of the same package.
sed 's/name: q4-import/name: q4-import-again/' examples/40-import.yaml | k apply --server-side --field-manager=e2e -f - >/dev/null
k -n sales-prod wait --for=condition=Ready importtask/q4-import-again --timeout=180s >/dev/null \
  || fail "the import after the takeover did not complete: $(k -n sales-prod get importtask q4-import-again -o jsonpath='{.status.phase}: {.status.message}'); container b's log:
$(podman logs --tail 25 "$run-b" 2>&1)"
log "import sales-prod/q4-import-again completed under container b"

# --- Nothing written outside the volumes. ---
# The root filesystem is mounted read-only; podman diff may list only what
# podman itself made: the mount points (and their parents) and the files it
# provides under /etc (hosts, resolv.conf, passwd entries).
allowed=("/etc" "/etc/hosts" "/etc/resolv.conf" "/etc/hostname" "/etc/passwd" "/etc/group")
for m in "${mounts[@]}" /var/run/secrets/kubernetes.io/serviceaccount; do
  while [ "$m" != / ]; do allowed+=("$m"); m=$(dirname "$m"); done
done
for c in a b; do
  [ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$run-$c")" = true ] || fail "container $c has a writable root"
  while read -r _ path; do
    printf '%s\n' "${allowed[@]}" | grep -qxF "$path" || fail "container $c wrote $path outside its volumes"
  done < <(podman diff "$run-$c")
done
written=$(find "$work/a" "$work/b" -type f | wc -l)
log "no writes outside the volumes (read-only root; podman diff lists only mount points); $written files in the volumes"

echo "container-e2e: image $(( $(podman image inspect --format '{{.Size}}' "$image") / 1024 / 1024 )) MiB, start-to-ready ${ready_ms} ms, lease after ${leader_ms} ms, SIGTERM stop ${stop_ms} ms, takeover ${takeover_ms} ms: passed"
