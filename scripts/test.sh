#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the Debian tools the
# tests drive for real (promtool, ...), builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need: command -> package.
declare -A need=(
  [promtool]=prometheus
  [amtool]=prometheus-alertmanager
  [chromium]=chromium
  # The browser probe ties Chromium to the agent with setpriv --pdeathsig.
  [setpriv]=util-linux
  [pdftotext]=poppler-utils
  [sqlite3]=sqlite3
  [faketime]=faketime
  # Revocation and oversized-certificate tests: `openssl ocsp` makes OCSP
  # responses the way CA software does, `openssl s_server` sends a >64 KiB
  # TLS 1.3 certificate message (rustls' server will not).
  [openssl]=openssl
  [prometheus]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  # The demo's loopback-only test: a network namespace, lo up, connects traced.
  [unshare]=util-linux
  [ip]=iproute2
  [strace]=strace
  # DNSSEC tests: knotd serves signed zones on 127.0.0.1 (tests/src/knot.rs).
  [knotd]=knot
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# The PostgreSQL tests start their own server: they need the server
# binaries (initdb, pg_ctl), not just the psql client some images ship.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# scripts/evidence_digest.py (tested by sla_e2e) reads compacted evidence with it.
/usr/bin/python3 -c 'import zstandard' >/dev/null 2>&1 || missing+=(python3-zstandard)
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Formatting is part of the suite (rustfmt ships with the toolchain).
cargo fmt --all --check

# The e2e tests run the real binaries; build them first.
cargo build --workspace --bins --locked
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
