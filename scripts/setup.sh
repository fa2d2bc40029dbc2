#!/usr/bin/env bash
# Installs the system packages that building and testing Tresor needs on Debian/Ubuntu:
# a C toolchain, perl and make (the vendored OpenSSL 3.6 build), pkg-config, and the openssl
# command line (the mechanism tests cross-check against it). Idempotent; does nothing when
# everything is present.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v make >/dev/null 2>&1 || need+=(make)
command -v perl >/dev/null 2>&1 || need+=(perl)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The vendored OpenSSL build needs these perl modules (absent from perl-base).
perl -MFindBin -MIPC::Cmd -MFile::Compare -e1 >/dev/null 2>&1 || need+=(perl)

if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install Rust with rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi
