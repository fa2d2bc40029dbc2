#!/usr/bin/env bash
# Installs the system packages that building and testing Tresor needs on Debian/Ubuntu:
# a C toolchain, perl and make (the vendored OpenSSL 3.6 build), pkg-config, the openssl
# command line (the mechanism tests cross-check against it), and the PKCS#11 consumer tools the
# interoperability tests drive (scripts/interop/pkcs11.sh): pkcs11-tool (opensc), the libp11
# OpenSSL engine, SoftHSMv2 (the reference token the script is validated against), GnuTLS's
# p11tool/certtool, p11-kit, a JDK (keytool, javac; SunPKCS11), wrk (REST benchmark) and the
# PostgreSQL client; starts the local PostgreSQL server if it is down (the cluster-store tests
# talk to it at 127.0.0.1:5432, or at TRESOR_TEST_PG_URL).
# Idempotent; does nothing when everything is present.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have cc || need+=(build-essential)
have make || need+=(make)
have perl || need+=(perl)
have pkg-config || need+=(pkg-config)
have openssl || need+=(openssl)
# The vendored OpenSSL build needs these perl modules (absent from perl-base).
perl -MFindBin -MIPC::Cmd -MFile::Compare -e1 >/dev/null 2>&1 || need+=(perl)

# PKCS#11 interoperability (scripts/interop/pkcs11.sh, crates/tresor-cli/tests/interop_pkcs11.rs).
have pkcs11-tool || need+=(opensc)
engine_found=0
for d in /usr/lib/*/engines-3 /usr/lib/engines-3 /usr/lib64/engines-3; do
  [ -e "$d/pkcs11.so" ] && engine_found=1
done
[ "$engine_found" -eq 1 ] || need+=(libengine-pkcs11-openssl)
have softhsm2-util || need+=(softhsm2)
have p11tool || need+=(gnutls-bin)
have certtool || need+=(gnutls-bin)
have p11-kit || need+=(p11-kit)
{ have java && have javac && have keytool; } || need+=(default-jdk-headless)
have wrk || need+=(wrk)
have xxd || need+=(xxd)
have python3 || need+=(python3)
# REST tests: curl for the seed walkthroughs, a venv for schemathesis (PyPI).
have curl || need+=(curl)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
have nm || need+=(binutils) # crates/tresor-pkcs11/tests/api.rs checks the exported symbols
# The PostgreSQL store's tests create and drop their schemas and databases with psql.
{ have psql && have pg_isready; } || need+=(postgresql-client)

if [ "${#need[@]}" -gt 0 ]; then
  # Each package once, in order.
  mapfile -t need < <(printf '%s\n' "${need[@]}" | awk '!seen[$0]++')
  echo "setup: installing ${need[*]}"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
fi

# PostgreSQL: the store's tests (crates/tresor-store/tests) run against the local server at
# 127.0.0.1:5432 (or TRESOR_TEST_PG_URL) and fail when it is down, so start it if needed.
if [ -z "${TRESOR_TEST_PG_URL:-}" ] && ! pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  if ! have pg_ctlcluster || [ ! -d /etc/postgresql ]; then
    echo "setup: PostgreSQL is not running at 127.0.0.1:5432 and no cluster is installed" \
      "(/etc/postgresql); install postgresql or set TRESOR_TEST_PG_URL" >&2
    exit 1
  fi
  pg_sudo=""
  if [ "$(id -u)" -ne 0 ]; then pg_sudo="sudo"; fi
  pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "setup: starting PostgreSQL $pg_version (cluster main)"
  $pg_sudo pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "setup: PostgreSQL did not accept connections at 127.0.0.1:5432 within 30 s;" \
      "try: pg_ctlcluster --skip-systemctl-redirect $pg_version main start" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install Rust with rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi
