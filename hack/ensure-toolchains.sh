#!/usr/bin/env bash
# Checks that the toolchains Ferry builds with are present: Rust (cargo,
# rustfmt, clippy) for Ferry itself, Go for the test control plane, openssl
# and bash for the test harness. Installs the Rust components if rustup can.
set -euo pipefail
missing=()
command -v cargo >/dev/null || missing+=("Rust (cargo), 1.89 or newer: https://rustup.rs")
command -v go >/dev/null || missing+=("Go 1.26 or newer: https://go.dev/doc/install")
command -v openssl >/dev/null || missing+=("openssl (Debian: apt-get install openssl)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'missing toolchain: %s\n' "${missing[@]}" >&2
  exit 1
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null; then
    rustup component add rustfmt clippy >&2
  else
    echo "cargo fmt and cargo clippy are needed: install the rustfmt and clippy components" >&2
    exit 1
  fi
fi
# The object-store source tests run against moto's S3 server (PyPI) on loopback.
if command -v python3 >/dev/null && ! python3 -c 'import moto.server, flask, werkzeug' >/dev/null 2>&1; then
  python3 -m pip install --quiet 'moto[server]' >&2 || echo "warning: could not install moto[server]; the object-store tests will try again" >&2
fi
