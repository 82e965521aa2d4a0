#!/usr/bin/env bash
# Builds the operator image from the Dockerfile with podman, reports its size
# and runs a smoke check. Prints the image name on stdout (everything else
# goes to stderr).
#
#   FERRY_BINARY      a prebuilt ferry binary (default: cargo build --release)
#   FERRY_IMAGE       the image name (default: localhost/ferry:dev)
#   FERRY_BASE_IMAGE  the base image; default: one assembled here, offline,
#                     with the layout of distroless cc-debian12:nonroot (the
#                     binary's shared libraries, CA certificates, user 65532),
#                     since base images cannot be pulled everywhere. Set it
#                     to gcr.io/distroless/cc-debian12:nonroot to use the
#                     Dockerfile's own default.
#
# podman needs two settings on machines like the CI's, made here rather than
# in the user's configuration: a containers.conf without default ulimits
# (the sandbox cannot raise rlimits, and podman would try), passed through
# CONTAINERS_CONF, and runc as the runtime (crun refuses the hybrid cgroup
# layout).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v podman >/dev/null || { echo "image: podman is required (Debian: apt-get install podman runc)" >&2; exit 1; }
export CONTAINERS_CONF="${TMPDIR:-/tmp}/ferry-containers.conf"
printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' >"$CONTAINERS_CONF"
log() { echo "image: $*" >&2; }

image="${FERRY_IMAGE:-localhost/ferry:dev}"
binary="${FERRY_BINARY:-}"
if [ -z "$binary" ]; then
  log "cargo build --release --locked --bin ferry"
  cargo build --release --locked --bin ferry >&2
  binary="${CARGO_TARGET_DIR:-target}/release/ferry"
fi
[ -x "$binary" ] || { log "no executable binary at $binary"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

base="${FERRY_BASE_IMAGE:-}"
if [ -z "$base" ]; then
  # What distroless cc-debian12:nonroot provides, from this machine: the
  # libraries the binary links (and the dynamic loader), CA certificates,
  # /etc/passwd and /etc/group with nonroot (65532), a home and /tmp.
  base="localhost/ferry-base:local"
  root="$work/root"
  mkdir -p "$root/etc/ssl/certs" "$root/home/nonroot" "$root/tmp" "$root/usr/local/bin"
  chmod 1777 "$root/tmp"
  chown 65532:65532 "$root/home/nonroot"
  for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  tar --numeric-owner -C "$root" -c . \
    | podman import --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' - "$base" >/dev/null
  log "assembled the base $base ($(du -sh "$root" | cut -f1)): $(ldd "$binary" | grep -o '/[^ ]*' | xargs -n1 basename | tr '\n' ' ')"
fi

# A context with only the binary (the Dockerfile copies BINARY).
cp "$binary" "$work/ferry"
start=$(date +%s)
podman build --quiet -f Dockerfile --build-arg BASE_IMAGE="$base" --build-arg BINARY=ferry \
  -t "$image" "$work" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
log "built $image in $(( $(date +%s) - start ))s: $(( size / 1024 / 1024 )) MiB ($size bytes; binary $(( $(stat -c %s "$binary") / 1024 / 1024 )) MiB)"

# Smoke check: as the chart runs it (non-root, read-only root, no
# capabilities, no network), the binary starts and answers.
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "65532:65532" ] || { log "the image's user is '$user', not 65532:65532"; exit 1; }
out=$(podman run --rm --runtime runc --read-only --cap-drop ALL --security-opt no-new-privileges \
  --network none "$image" --version)
log "smoke check: \`ferry --version\` as 65532, read-only, no capabilities: $out"
podman run --rm --runtime runc --read-only --cap-drop ALL --network none "$image" run --help \
  | grep -q -- '--leader-elect' || { log "\`ferry run --help\` does not list --leader-elect"; exit 1; }
echo "$image"
