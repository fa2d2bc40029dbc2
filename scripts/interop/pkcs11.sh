#!/usr/bin/env bash
# PKCS#11 interoperability checks: drives one PKCS#11 module with the consumer tools that real
# applications use, and checks every result independently with the openssl command line.
#
#   scripts/interop/pkcs11.sh MODULE [--pin PIN] [--so-pin PIN] [--token-label LABEL]
#                             [--only GROUPS] [--xfail NAME=REASON]... [--keep] [--timeout S]
#
# MODULE        the PKCS#11 shared object (Tresor: target/debug/libtresor_pkcs11.so with
#               TRESOR_PKCS11_CONF / TRESOR_SECRETS_CONF in the environment; SoftHSMv2:
#               /usr/lib/softhsm/libsofthsm2.so with SOFTHSM2_CONF).
# --pin         user PIN of the token (default 1234). It appears on tool command lines: scratch
#               tokens only.
# --so-pin      SO PIN; when given, an SO login is checked too.
# --token-label the token to use (default: the first slot with an initialised token).
# --only        comma-separated groups: pkcs11-tool, openssl, java, gnutls, p11-kit (default: all).
# --xfail       NAME=REASON: a known failure of this module; reported as XFAIL, not counted.
# --keep        keep the objects this run created (default: every one is destroyed at the end).
# --timeout     seconds allowed for one tool invocation (default 120).
#
# Groups and what they check:
#   pkcs11-tool  slot/token/mechanism lists, `--test`, RSA-2048 / EC P-256 / Ed25519 / AES-256
#                key generation, RSA PKCS#1 v1.5 and PSS, ECDSA and EdDSA signatures verified
#                by openssl against the exported public key, RSA-OAEP (openssl encrypts, the
#                token decrypts), AES-CBC-PAD (and AES-GCM where pkcs11-tool has it) against
#                openssl with an imported key, AES key wrap/unwrap checked against openssl,
#                `--test-threads`, `--test-fork`, parallel processes; also multi-part signing,
#                P-384, ECDH against openssl, digest, random, C_Verify refusing a changed
#                message, sensitive keys not readable, --allowed-mechanisms enforced;
#                last, C_SetPIN to a new PIN and back.
#   openssl      the libp11 engine: dgst -sign, pkeyutl -decrypt (PKCS#1 v1.5, OAEP), req -x509
#                with the key in the token,
#                s_server with that key and s_client connecting (TLS 1.3; RSA-PSS and ECDSA).
#   java         SunPKCS11: keytool -list / -genkeypair (RSA 2048, EC 256) / -certreq / -delete,
#                and interop/java/Jca.java (SHA256withRSA, RSASSA-PSS, SHA256withECDSA, ECDH,
#                AES/GCM/NoPadding, RSA decryption).
#   gnutls       p11tool --list-tokens / --list-all / --generate-privkey (RSA, ECDSA),
#                certtool --generate-self-signed with the key in the token.
#   p11-kit      `p11-kit server` exporting the module, pkcs11-tool through p11-kit-client.so:
#                slot list, key generation, an ECDSA signature verified by openssl.
#
# Output: one line per check, `PASS name`, `FAIL name: reason`, `SKIP name: reason` (the module
# does not list the mechanism, or the tool cannot do it) or `XFAIL name: reason`; then the tail
# of the log of every failed check, and a summary. Exit status 1 if any check failed, 2 on a
# usage error or a missing tool (install them with scripts/setup.sh).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

MODULE=""
PIN="1234"
SO_PIN=""
TOKEN=""
ONLY="pkcs11-tool,openssl,java,gnutls,p11-kit"
KEEP=0
TMO=120
declare -A XFAIL=()
while [ $# -gt 0 ]; do
  case "$1" in
    --pin) PIN="${2:?--pin needs a value}"; shift 2 ;;
    --so-pin) SO_PIN="${2:?--so-pin needs a value}"; shift 2 ;;
    --token-label) TOKEN="${2:?--token-label needs a value}"; shift 2 ;;
    --only) ONLY="${2:?--only needs a value}"; shift 2 ;;
    --xfail)
      x="${2:?--xfail needs NAME=REASON}"
      XFAIL["${x%%=*}"]="${x#*=}"
      shift 2 ;;
    --keep) KEEP=1; shift ;;
    --timeout) TMO="${2:?--timeout needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "pkcs11.sh: unknown option $1" >&2; exit 2 ;;
    *)
      if [ -n "$MODULE" ]; then echo "pkcs11.sh: one module only" >&2; exit 2; fi
      MODULE="$1"; shift ;;
  esac
done
if [ -z "$MODULE" ]; then usage >&2; exit 2; fi
if [ ! -f "$MODULE" ]; then echo "pkcs11.sh: no module at $MODULE" >&2; exit 2; fi
MODULE="$(cd "$(dirname "$MODULE")" && pwd)/$(basename "$MODULE")"

group_on() { [[ ",$ONLY," == *",$1,"* ]]; }

# Every tool this script needs, per group; a missing one is an error, never a silent skip.
missing=()
need_tool() { command -v "$1" >/dev/null 2>&1 || missing+=("$1"); }
need_tool openssl; need_tool timeout; need_tool xxd; need_tool pkcs11-tool
group_on java && { need_tool java; need_tool javac; need_tool keytool; }
group_on gnutls && { need_tool p11tool; need_tool certtool; }
ENGINE_SO=""
for d in /usr/lib/*/engines-3 /usr/lib/engines-3 /usr/lib64/engines-3; do
  [ -e "$d/pkcs11.so" ] && ENGINE_SO="$d/pkcs11.so" && break
done
if group_on openssl && [ -z "$ENGINE_SO" ]; then missing+=("libp11 engine (engines-3/pkcs11.so)"); fi
P11KIT_CLIENT=""
for f in /usr/lib/*/pkcs11/p11-kit-client.so /usr/lib/pkcs11/p11-kit-client.so; do
  [ -f "$f" ] && P11KIT_CLIENT="$f" && break
done
if group_on p11-kit; then
  need_tool p11-kit
  [ -n "$P11KIT_CLIENT" ] || missing+=("p11-kit-client.so (p11-kit-modules)")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "pkcs11.sh: missing tools: ${missing[*]} -- run scripts/setup.sh" >&2
  exit 2
fi

T="$(mktemp -d "${TMPDIR:-/tmp}/p11interop.XXXXXX")"
mkdir -p "$T/logs"
RUN="$(openssl rand -hex 3)"   # object IDs start with it, labels with ia-$RUN-
PFX="ia-$RUN"

cleanup_objects() {
  [ "$KEEP" -eq 1 ] && return 0
  [ -n "$TOKEN" ] || return 0
  # List once, then destroy what this run made (by ID prefix or label prefix).
  timeout "$TMO" pkcs11-tool --module "$MODULE" --token-label "$TOKEN" --login --pin "$PIN" \
    --list-objects 2>/dev/null | awk -v run="$RUN" -v pfx="$PFX" -v pfxhex="$(printf '%s' "$PFX" | xxd -p)" '
      function flush() {
        # Java keys have no label: their ID is the alias (ia-RUN-...) in bytes.
        if (type != "" && ((id != "" && (index(id, run) == 1 || index(id, pfxhex) == 1)) || index(label, pfx) == 1))
          print type "\t" id "\t" label
        type = ""; id = ""; label = ""
      }
      /Object;/ {
        flush()
        if ($0 ~ /^Private Key/) type = "privkey"
        else if ($0 ~ /^Public Key/) type = "pubkey"
        else if ($0 ~ /^Secret Key/) type = "secrkey"
        else if ($0 ~ /^Certificate/) type = "cert"
        else if ($0 ~ /^Data/) type = "data"
        else type = ""
        next
      }
      /^  label:/ { sub(/^  label: */, ""); label = $0; next }
      /^  ID:/ { id = $2; next }
      END { flush() }' | while IFS=$'\t' read -r type id label; do
      if [ -n "$id" ]; then
        timeout "$TMO" pkcs11-tool --module "$MODULE" --token-label "$TOKEN" --login --pin "$PIN" \
          --delete-object --type "$type" --id "$id" >/dev/null 2>&1 || true
      else
        timeout "$TMO" pkcs11-tool --module "$MODULE" --token-label "$TOKEN" --login --pin "$PIN" \
          --delete-object --type "$type" --label "$label" >/dev/null 2>&1 || true
      fi
    done
}

finish() {
  cleanup_objects
  rm -rf "$T"
}
trap finish EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Reporting

NPASS=0 NFAIL=0 NSKIP=0 NXFAIL=0
FAILED=()

# reason LOG: the last REASON line, and the last line in which a tool reported an error.
reason_of() {
  local log="$1" r e
  # The first REASON is the most precise (a wrapper's); the ERR trap adds a general one after it.
  r="$(grep '^REASON: ' "$log" | head -n1 | sed 's/^REASON: //')"
  e="$(grep -v '^REASON: ' "$log" | grep -E 'CKR_|rv = |[Ee]rror|[Ff]ailed|[Ee]xception|not supported|invalid' | tail -n1 | tr -s ' \t' ' ')"
  if [ -n "$r" ] && [ -n "$e" ]; then echo "$r -- $e"
  elif [ -n "$r" ]; then echo "$r"
  elif [ -n "$e" ]; then echo "$e"
  else tail -n2 "$log" | tr '\n' ' '
  fi
}

pass() { echo "PASS $1"; NPASS=$((NPASS + 1)); }
skip() { echo "SKIP $1: $2"; NSKIP=$((NSKIP + 1)); }
fail() {
  if [ -n "${XFAIL[$1]+x}" ]; then
    echo "XFAIL $1: ${XFAIL[$1]} (got: $2)"; NXFAIL=$((NXFAIL + 1))
  else
    echo "FAIL $1: $2"; NFAIL=$((NFAIL + 1)); FAILED+=("$1")
  fi
}

# check NAME FUNCTION [ARGS...]: runs FUNCTION in a subshell with `set -e`; its output goes to
# the check's log. A function ends early with `die MESSAGE` or `skipit MESSAGE`.
check() {
  local name="$1"; shift
  local log="$T/logs/$name.log" rc
  (
    set -eE
    trap 'rc=$?; [ "$rc" -eq 124 ] && echo "REASON: timed out after ${TMO}s: $BASH_COMMAND" || echo "REASON: exit $rc from: $BASH_COMMAND"' ERR
    "$@"
  ) >"$log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    pass "$name"
    [ -n "${XFAIL[$name]+x}" ] && echo "  note: $name passed although marked --xfail (${XFAIL[$name]})"
  elif [ "$rc" -eq 77 ]; then
    skip "$name" "$(grep '^SKIP: ' "$log" | tail -n1 | sed 's/^SKIP: //')"
  else
    fail "$name" "$(reason_of "$log")"
  fi
  return 0
}
die() { echo "REASON: $*"; exit 1; }
skipit() { echo "SKIP: $*"; exit 77; }

# ---------------------------------------------------------------------------------------------
# Tool wrappers (every invocation has a time limit)

# pkcs11-tool with a time limit; on failure it names the invocation (PIN masked) in the log.
p11() {
  local rc=0
  timeout "$TMO" pkcs11-tool --module "$MODULE" "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    local args="$*"
    args="${args//"$PIN"/***}"
    [ -n "$SO_PIN" ] && args="${args//"$SO_PIN"/***}"
    if [ "$rc" -eq 124 ]; then
      echo "REASON: pkcs11-tool $args timed out after ${TMO}s"
    elif [ "$rc" -gt 128 ]; then
      echo "REASON: pkcs11-tool $args was killed by signal $((rc - 128)) ($(kill -l "$((rc - 128))" 2>/dev/null || echo '?'))"
    else
      echo "REASON: pkcs11-tool $args exited with status $rc"
    fi
  fi
  return "$rc"
}
p11t() { p11 --token-label "$TOKEN" "$@"; }
p11l() { p11 --token-label "$TOKEN" --login --pin "$PIN" "$@"; }
tmo() { timeout "$TMO" "$@"; }

hex() { xxd -p -c 256 "$1"; }

# export_pub ID OUT.pem: public key object -> openssl PEM (pkcs11-tool writes DER, or PEM for
# some key types).
export_pub() {
  p11t --read-object --type pubkey --id "$1" -o "$T/pub.$1.raw" >/dev/null
  openssl pkey -pubin -inform DER -in "$T/pub.$1.raw" -out "$2" 2>/dev/null ||
    openssl pkey -pubin -inform PEM -in "$T/pub.$1.raw" -out "$2" ||
    die "the public key of ID $1 read with --read-object is neither DER nor PEM SubjectPublicKeyInfo ($(head -c 16 "$T/pub.$1.raw" | xxd -p))"
}

# obj TYPE ID: the --list-objects paragraph of that object (pkcs11-tool filters the listing by
# --type but not by --id).
obj() {
  p11l --list-objects --type "$1" | awk -v want="$2" '
    /Object;/ { if (id == want) printf "%s", blk; blk = ""; id = "" }
    { blk = blk $0 "\n" }
    /^  ID:/ { id = $2 }
    END { if (id == want) printf "%s", blk }'
}

MECHS=""
has_mech() { grep -qx -- "$1" <<<"$MECHS"; }
need_mech() { has_mech "$1" || skipit "the module does not list $1"; }

# ---------------------------------------------------------------------------------------------
# Discovery

discover() {
  local out
  out="$(p11 --list-slots 2>&1)" || { echo "$out"; return 1; }
  if [ -z "$TOKEN" ]; then
    TOKEN="$(awk '/^Slot /{ slot = 1 } /token label *:/ && slot { sub(/.*token label *: */, ""); print; exit }' <<<"$out")"
  fi
  SLOT_ID="$(awk -v want="$TOKEN" '
      /^Slot / { match($0, /\(0x[0-9a-fA-F]+\)/); s = substr($0, RSTART + 1, RLENGTH - 2) }
      /token label *:/ { l = $0; sub(/.*token label *: */, "", l); if (l == want) { print s; exit } }' <<<"$out")"
  [ -n "$TOKEN" ] && [ -n "$SLOT_ID" ]
}

echo "module:  $MODULE"
if ! discover >"$T/logs/discover.log" 2>&1; then
  echo "FAIL list-slots: no initialised token found ($(reason_of "$T/logs/discover.log"))"
  tail -n 20 "$T/logs/discover.log" | sed 's/^/  | /'
  exit 1
fi
echo "token:   $TOKEN (slot $SLOT_ID = $((SLOT_ID)))"
MECHS="$(p11 --slot "$SLOT_ID" --list-mechanisms 2>/dev/null | awk -F, '/^  /{ gsub(/^ +/, "", $1); print $1 }')"
echo "run:     objects with IDs $RUN.. and labels $PFX-..; $(wc -l <<<"$MECHS") mechanisms listed"

# ---------------------------------------------------------------------------------------------
# pkcs11-tool

ID_RSA="${RUN}01" ID_EC="${RUN}02" ID_ED="${RUN}03" ID_AES="${RUN}04"
ID_WK="${RUN}05" ID_TK="${RUN}06" ID_UNW="${RUN}07" ID_AESK="${RUN}08" ID_ECDH="${RUN}09" ID_EC384="${RUN}0c" ID_ECDHI="${RUN}0d" ID_TEC="${RUN}0e" ID_P11KIT="${RUN}0f"
ID_GEC="${RUN}0a" ID_GRSA="${RUN}0b" ID_ALLOW="${RUN}10"

head -c 1000 /dev/urandom >"$T/data"
printf 'Tresor interop %s\n' "$RUN" >"$T/msg"
openssl dgst -sha256 -binary "$T/msg" >"$T/msg.sha256"

t_list_slots() {
  p11 --show-info
  p11 --list-slots | tee "$T/slots.txt"
  grep -q "token label *: $TOKEN\$" "$T/slots.txt" || die "token $TOKEN not in --list-slots"
  p11 --list-token-slots | grep -q "$TOKEN" || die "token $TOKEN not in --list-token-slots"
}

t_list_mechs() {
  p11 --slot "$SLOT_ID" --list-mechanisms
  [ -n "$MECHS" ] || die "C_GetMechanismList returned no mechanism"
  local m
  for m in RSA-PKCS-KEY-PAIR-GEN ECDSA-KEY-PAIR-GEN AES-KEY-GEN; do
    has_mech "$m" || echo "note: $m not listed"
  done
}

t_so_login() {
  [ -n "$SO_PIN" ] || skipit "no --so-pin given"
  p11t --session-rw --login --login-type so --so-pin "$SO_PIN" --list-objects
}

t_test_login() { p11t --login --pin "$PIN" --test; }

t_keygen_rsa() {
  need_mech RSA-PKCS-KEY-PAIR-GEN
  p11l --keypairgen --key-type rsa:2048 --id "$ID_RSA" --label "$PFX-rsa" --usage-sign --usage-decrypt
  export_pub "$ID_RSA" "$T/rsa.pub.pem"
  openssl pkey -pubin -in "$T/rsa.pub.pem" -noout -text | grep -q '2048 bit' ||
    die "the generated RSA public key is not 2048 bits"
}

t_keygen_ec() {
  need_mech ECDSA-KEY-PAIR-GEN
  p11l --keypairgen --key-type EC:secp256r1 --id "$ID_EC" --label "$PFX-ec" --usage-sign
  export_pub "$ID_EC" "$T/ec.pub.pem"
  openssl pkey -pubin -in "$T/ec.pub.pem" -noout -text | grep -q 'prime256v1' ||
    die "the generated EC public key is not on P-256"
}

# An ECDH key pair: pkcs11-tool sets CKA_DERIVE=TRUE in both templates (a common key attribute,
# valid on public keys too).
t_keygen_ec_derive() {
  need_mech ECDSA-KEY-PAIR-GEN
  p11l --keypairgen --key-type EC:secp256r1 --id "$ID_ECDH" --label "$PFX-ecdh" --usage-derive
  obj privkey "$ID_ECDH" | tee "$T/ecdh.obj"
  grep -q 'derive' "$T/ecdh.obj" || die "the private key does not show the derive usage"
}

t_keygen_ed() {
  need_mech EC-EDWARDS-KEY-PAIR-GEN
  p11l --keypairgen --key-type EC:edwards25519 --id "$ID_ED" --label "$PFX-ed" --usage-sign
  export_pub "$ID_ED" "$T/ed.pub.pem"
  openssl pkey -pubin -in "$T/ed.pub.pem" -noout -text | grep -q 'ED25519' ||
    die "the generated public key is not an Ed25519 key"
}

t_keygen_aes() {
  need_mech AES-KEY-GEN
  p11l --keygen --key-type AES:32 --id "$ID_AES" --label "$PFX-aes" --usage-decrypt --usage-wrap
  obj secrkey "$ID_AES" | tee "$T/aes.obj"
  grep -q 'AES' "$T/aes.obj" || die "the generated secret key is not listed as an AES key"
}

have_key() { [ -s "$T/$1.pub.pem" ] || skipit "no $1 key (its key generation did not pass)"; }

t_sign_rsa() {
  need_mech SHA256-RSA-PKCS; have_key rsa
  p11l --sign --id "$ID_RSA" -m SHA256-RSA-PKCS -i "$T/msg" -o "$T/rsa.sig"
  openssl dgst -sha256 -verify "$T/rsa.pub.pem" -signature "$T/rsa.sig" "$T/msg" ||
    die "openssl does not verify the SHA256-RSA-PKCS signature"
  # And C_Verify in the token accepts it.
  p11l --verify --id "$ID_RSA" -m SHA256-RSA-PKCS -i "$T/msg" --signature-file "$T/rsa.sig" | tee "$T/rsa.verify"
  grep -q 'Signature is valid' "$T/rsa.verify" || die "C_Verify does not accept the token's own signature"
}

t_sign_rsa_pss() {
  need_mech SHA256-RSA-PKCS-PSS; have_key rsa
  p11l --sign --id "$ID_RSA" -m SHA256-RSA-PKCS-PSS --mgf MGF1-SHA256 --salt-len 32 \
    -i "$T/msg" -o "$T/rsa.pss.sig"
  openssl dgst -sha256 -verify "$T/rsa.pub.pem" -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256 -signature "$T/rsa.pss.sig" "$T/msg" ||
    die "openssl does not verify the SHA256-RSA-PKCS-PSS signature (salt 32, MGF1-SHA256)"
}

t_sign_ecdsa() {
  need_mech ECDSA; have_key ec
  # Raw CKM_ECDSA over the SHA-256 digest, DER (openssl) format.
  p11l --sign --id "$ID_EC" -m ECDSA -f openssl -i "$T/msg.sha256" -o "$T/ec.sig"
  openssl dgst -sha256 -verify "$T/ec.pub.pem" -signature "$T/ec.sig" "$T/msg" ||
    die "openssl does not verify the CKM_ECDSA signature over SHA-256(msg)"
}

t_sign_ecdsa_sha256() {
  need_mech ECDSA-SHA256; have_key ec
  p11l --sign --id "$ID_EC" -m ECDSA-SHA256 -f openssl -i "$T/msg" -o "$T/ec2.sig"
  openssl dgst -sha256 -verify "$T/ec.pub.pem" -signature "$T/ec2.sig" "$T/msg" ||
    die "openssl does not verify the ECDSA-SHA256 signature"
}

t_sign_eddsa() {
  need_mech EDDSA; have_key ed
  p11l --sign --id "$ID_ED" -m EDDSA -i "$T/msg" -o "$T/ed.sig"
  [ "$(wc -c <"$T/ed.sig")" -eq 64 ] || die "Ed25519 signature is $(wc -c <"$T/ed.sig") bytes, not 64"
  openssl pkeyutl -verify -pubin -inkey "$T/ed.pub.pem" -rawin -in "$T/msg" -sigfile "$T/ed.sig" ||
    die "openssl does not verify the EDDSA (Ed25519) signature"
}

t_verify_rejects() {
  need_mech SHA256-RSA-PKCS
  [ -s "$T/rsa.sig" ] || skipit "no RSA signature"
  local out rc=0
  cp "$T/msg" "$T/msg.bad"
  printf 'x' >>"$T/msg.bad"
  out="$(p11l --verify --id "$ID_RSA" -m SHA256-RSA-PKCS -i "$T/msg.bad" --signature-file "$T/rsa.sig" 2>&1)" || rc=$?
  echo "$out"
  # pkcs11-tool prints "Invalid signature" for CKR_SIGNATURE_INVALID (exit status 0).
  grep -q 'Signature is valid' <<<"$out" && die "C_Verify accepted the signature for a changed message"
  grep -q 'Invalid signature' <<<"$out" ||
    die "C_Verify refused a changed message, but not with CKR_SIGNATURE_INVALID (exit status $rc)"
}

# A 100 kB input: pkcs11-tool signs it with C_SignUpdate... C_SignFinal (multi-part).
t_sign_multipart() {
  need_mech SHA256-RSA-PKCS; have_key rsa
  head -c 100000 /dev/urandom >"$T/big"
  p11l --sign --id "$ID_RSA" -m SHA256-RSA-PKCS -i "$T/big" -o "$T/big.sig"
  openssl dgst -sha256 -verify "$T/rsa.pub.pem" -signature "$T/big.sig" "$T/big" ||
    die "openssl does not verify the multi-part SHA256-RSA-PKCS signature of 100 kB"
}

t_ecdsa_p384() {
  need_mech ECDSA-KEY-PAIR-GEN; need_mech ECDSA
  local out rc=0
  # pkcs11-tool 0.23 may end with "cannot create EVP_PKEY" after a P-384 key pair was made (it
  # fails to print it): the key pair's existence is what counts.
  out="$(p11l --keypairgen --key-type EC:secp384r1 --id "$ID_EC384" --label "$PFX-ec384" --usage-sign 2>&1)" || rc=$?
  echo "$out"
  grep -q 'Key pair generated' <<<"$out" || die "C_GenerateKeyPair for P-384 failed (exit status $rc)"
  # pkcs11-tool 0.23 cannot --read-object a P-384 public key ("cannot create EVP_PKEY"): build
  # the SubjectPublicKeyInfo from CKA_EC_POINT (DER OCTET STRING 04 61 || 04 X Y) instead.
  local point
  point="$(obj pubkey "$ID_EC384" | sed -n 's/^ *EC_POINT: *//p' | head -n1)"
  [[ "$point" == 046104* ]] && [ "${#point}" -eq 198 ] ||
    die "CKA_EC_POINT of the P-384 public key is not a DER OCTET STRING of an uncompressed point: $point"
  printf '3076301006072a8648ce3d020106052b81040022036200%s' "${point:4}" | xxd -r -p >"$T/ec384.pub.der"
  openssl pkey -pubin -inform DER -in "$T/ec384.pub.der" -out "$T/ec384.pub.pem"
  openssl pkey -pubin -in "$T/ec384.pub.pem" -noout -text | grep -q 'secp384r1' ||
    die "the generated EC public key is not on P-384"
  openssl dgst -sha384 -binary "$T/msg" >"$T/msg.sha384"
  p11l --sign --id "$ID_EC384" -m ECDSA -f openssl -i "$T/msg.sha384" -o "$T/ec384.sig"
  openssl dgst -sha384 -verify "$T/ec384.pub.pem" -signature "$T/ec384.sig" "$T/msg" ||
    die "openssl does not verify the P-384 CKM_ECDSA signature over SHA-384(msg)"
}

t_ecdh() {
  need_mech ECDH1-DERIVE
  obj privkey "$ID_ECDH" | grep -q EC || skipit "no ECDH key (keygen-ec-p256-derive did not pass)"
  export_pub "$ID_ECDH" "$T/ecdh.pub.pem"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/peer.pem"
  openssl pkey -in "$T/peer.pem" -pubout -outform DER -out "$T/peer.der"
  p11l --derive -m ECDH1-DERIVE --id "$ID_ECDH" -i "$T/peer.der" -o "$T/ecdh.secret"
  openssl pkeyutl -derive -inkey "$T/peer.pem" -peerkey "$T/ecdh.pub.pem" -out "$T/ecdh.osecret"
  cmp -s "$T/ecdh.secret" "$T/ecdh.osecret" || die "the token's ECDH shared secret differs from openssl's"
}

# The same with a private key made by openssl and written with C_CreateObject (CKA_DERIVE on the
# private key only).
t_ecdh_imported() {
  need_mech ECDH1-DERIVE
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ecdhk.pem"
  openssl pkey -in "$T/ecdhk.pem" -outform DER -out "$T/ecdhk.der"
  p11l --write-object "$T/ecdhk.der" --type privkey --id "$ID_ECDHI" --label "$PFX-ecdhi" --usage-derive
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/peer2.pem"
  openssl pkey -in "$T/peer2.pem" -pubout -outform DER -out "$T/peer2.der"
  p11l --derive -m ECDH1-DERIVE --id "$ID_ECDHI" -i "$T/peer2.der" -o "$T/ecdhi.secret"
  openssl pkeyutl -derive -inkey "$T/ecdhk.pem" -peerkey "$T/peer2.der" -peerform DER -out "$T/ecdhi.osecret"
  cmp -s "$T/ecdhi.secret" "$T/ecdhi.osecret" || die "the token's ECDH shared secret differs from openssl's"
}

t_digest() {
  need_mech SHA256
  p11t --hash -m SHA256 -i "$T/data" -o "$T/data.p11sha256"
  cmp -s "$T/data.p11sha256" <(openssl dgst -sha256 -binary "$T/data") || die "C_Digest SHA256 differs from openssl"
}

t_random() {
  p11t --generate-random 64 -o "$T/rand"
  [ "$(wc -c <"$T/rand")" -eq 64 ] || die "C_GenerateRandom returned $(wc -c <"$T/rand") bytes, not 64"
  [ "$(tr -d '\0' <"$T/rand" | wc -c)" -gt 0 ] || die "C_GenerateRandom returned only zero bytes"
}

# A sensitive key's value must not come out (CKA_VALUE of the AES key, the RSA private key).
t_sensitive() {
  local rc out
  for spec in "secrkey $ID_AES" "privkey $ID_RSA"; do
    set -- $spec
    rc=0
    out="$(p11l --read-object --type "$1" --id "$2" -o "$T/leak.$1" 2>&1)" || rc=$?
    echo "$out"
    if [ "$rc" -eq 0 ] && [ -s "$T/leak.$1" ]; then
      die "--read-object --type $1 returned $(wc -c <"$T/leak.$1") bytes of a sensitive key"
    fi
  done
}

# libp11 0.4.12 (Debian 12) stops enumerating a token's private keys when it meets an EdDSA key;
# the Ed25519 pair is therefore destroyed once its checks are done (not a module fault).
t_destroy_ed() {
  [ -s "$T/ed.pub.pem" ] || skipit "no Ed25519 key"
  p11l --delete-object --type privkey --id "$ID_ED"
  p11l --delete-object --type pubkey --id "$ID_ED"
}

t_oaep() { # HASH MGF
  need_mech RSA-PKCS-OAEP; have_key rsa
  local h="$1" mgf="$2" oh
  oh="$(tr 'A-Z' 'a-z' <<<"${h/-/}")"
  openssl pkeyutl -encrypt -pubin -inkey "$T/rsa.pub.pem" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt "rsa_oaep_md:$oh" -pkeyopt "rsa_mgf1_md:$oh" -in "$T/msg" -out "$T/msg.oaep.$oh"
  p11l --decrypt --id "$ID_RSA" -m RSA-PKCS-OAEP --hash-algorithm "$h" --mgf "$mgf" \
    -i "$T/msg.oaep.$oh" -o "$T/msg.dec.$oh"
  cmp -s "$T/msg" "$T/msg.dec.$oh" || die "RSA-OAEP ($h) decryption returned other bytes than openssl encrypted"
}

t_rsa_pkcs_decrypt() {
  need_mech RSA-PKCS; have_key rsa
  openssl pkeyutl -encrypt -pubin -inkey "$T/rsa.pub.pem" -in "$T/msg" -out "$T/msg.v15"
  p11l --decrypt --id "$ID_RSA" -m RSA-PKCS -i "$T/msg.v15" -o "$T/msg.v15.dec"
  cmp -s "$T/msg" "$T/msg.v15.dec" || die "RSA-PKCS decryption returned other bytes than openssl encrypted"
}

IV16=000102030405060708090a0b0c0d0e0f
IV12=cafebabefacedbaddecaf888

t_aes_cbc_roundtrip() {
  need_mech AES-CBC-PAD
  obj secrkey "$ID_AES" | grep -q AES || skipit "no generated AES key"
  p11l --encrypt --id "$ID_AES" -m AES-CBC-PAD --iv "$IV16" -i "$T/data" -o "$T/data.cbc"
  [ "$(wc -c <"$T/data.cbc")" -eq 1008 ] || die "AES-CBC-PAD of 1000 bytes gave $(wc -c <"$T/data.cbc") bytes, not 1008"
  p11l --decrypt --id "$ID_AES" -m AES-CBC-PAD --iv "$IV16" -i "$T/data.cbc" -o "$T/data.cbc.dec"
  cmp -s "$T/data" "$T/data.cbc.dec" || die "AES-CBC-PAD decrypt(encrypt(x)) != x"
}

# A known AES key written with C_CreateObject, so that openssl can check the token's output.
t_aes_import() {
  head -c 32 /dev/urandom >"$T/aesk.bin"
  p11l --write-object "$T/aesk.bin" --type secrkey --key-type AES:32 --id "$ID_AESK" \
    --label "$PFX-aesk" --usage-decrypt
}

t_aes_cbc_openssl() {
  need_mech AES-CBC-PAD
  [ -s "$T/aesk.bin" ] || skipit "no imported AES key"
  p11l --encrypt --id "$ID_AESK" -m AES-CBC-PAD --iv "$IV16" -i "$T/data" -o "$T/data.kcbc"
  openssl enc -d -aes-256-cbc -K "$(hex "$T/aesk.bin")" -iv "$IV16" -in "$T/data.kcbc" -out "$T/data.kcbc.dec" ||
    die "openssl cannot decrypt the token's AES-CBC-PAD output (bad padding or wrong key)"
  cmp -s "$T/data" "$T/data.kcbc.dec" || die "openssl decrypts the token's AES-CBC-PAD output to other bytes"
  openssl enc -aes-256-cbc -K "$(hex "$T/aesk.bin")" -iv "$IV16" -in "$T/data" -out "$T/data.ocbc"
  p11l --decrypt --id "$ID_AESK" -m AES-CBC-PAD --iv "$IV16" -i "$T/data.ocbc" -o "$T/data.ocbc.dec"
  cmp -s "$T/data" "$T/data.ocbc.dec" || die "the token decrypts openssl's AES-CBC-PAD output to other bytes"
}

t_aes_gcm() {
  need_mech AES-GCM
  [ -s "$T/aesk.bin" ] || skipit "no imported AES key"
  local out rc=0
  out="$(p11l --encrypt --id "$ID_AESK" -m AES-GCM --iv "$IV12" -i "$T/data" -o "$T/data.gcm" 2>&1)" || rc=$?
  echo "$out"
  if [ "$rc" -ne 0 ] && grep -q 'illegal or not supported' <<<"$out"; then
    skipit "this pkcs11-tool cannot drive AES-GCM (the Java check covers it)"
  fi
  [ "$rc" -eq 0 ] || die "AES-GCM encrypt failed"
  p11l --decrypt --id "$ID_AESK" -m AES-GCM --iv "$IV12" -i "$T/data.gcm" -o "$T/data.gcm.dec"
  cmp -s "$T/data" "$T/data.gcm.dec" || die "AES-GCM decrypt(encrypt(x)) != x"
}

t_wrap() {
  need_mech AES-KEY-WRAP
  head -c 32 /dev/urandom >"$T/wk.bin"
  head -c 32 /dev/urandom >"$T/tk.bin"
  p11l --write-object "$T/wk.bin" --type secrkey --key-type AES:32 --id "$ID_WK" --label "$PFX-wk" --usage-wrap
  p11l --write-object "$T/tk.bin" --type secrkey --key-type AES:32 --id "$ID_TK" --label "$PFX-tk" \
    --extractable --usage-decrypt
  p11l --wrap -m AES-KEY-WRAP --id "$ID_WK" --application-id "$ID_TK" -o "$T/tk.wrapped"
  [ "$(wc -c <"$T/tk.wrapped")" -eq 40 ] || die "AES-KEY-WRAP of a 32-byte key gave $(wc -c <"$T/tk.wrapped") bytes, not 40"
  openssl enc -d -id-aes256-wrap -K "$(hex "$T/wk.bin")" -iv A6A6A6A6A6A6A6A6 \
    -in "$T/tk.wrapped" -out "$T/tk.unwrapped" || die "openssl cannot unwrap the token's AES-KEY-WRAP output (RFC 3394)"
  cmp -s "$T/tk.bin" "$T/tk.unwrapped" || die "the wrapped key is not the key that was written"
}

t_unwrap() {
  need_mech AES-KEY-WRAP
  [ -s "$T/wk.bin" ] || skipit "no wrapping key"
  head -c 32 /dev/urandom >"$T/uk.bin"
  openssl enc -id-aes256-wrap -K "$(hex "$T/wk.bin")" -iv A6A6A6A6A6A6A6A6 -in "$T/uk.bin" -out "$T/uk.wrapped"
  p11l --unwrap -m AES-KEY-WRAP --id "$ID_WK" -i "$T/uk.wrapped" --key-type AES: \
    --application-id "$ID_UNW" --application-label "$PFX-unw"
  has_mech AES-CBC-PAD || { echo "no AES-CBC-PAD: cannot check the unwrapped value"; return 0; }
  p11l --encrypt --id "$ID_UNW" -m AES-CBC-PAD --iv "$IV16" -i "$T/msg" -o "$T/msg.unw"
  openssl enc -d -aes-256-cbc -K "$(hex "$T/uk.bin")" -iv "$IV16" -in "$T/msg.unw" -out "$T/msg.unw.dec" ||
    die "the unwrapped key does not encrypt like the key openssl wrapped"
  cmp -s "$T/msg" "$T/msg.unw.dec" || die "the unwrapped key does not encrypt like the key openssl wrapped"
}

# --allowed-mechanisms (CKA_ALLOWED_MECHANISMS): the list is shown by --list-objects, a listed
# mechanism signs (checked by openssl), one not listed is refused with CKR_MECHANISM_INVALID.
t_allowed_mechanisms() {
  need_mech RSA-PKCS-KEY-PAIR-GEN; need_mech SHA256-RSA-PKCS; need_mech SHA512-RSA-PKCS
  grep -q -- '--allowed-mechanisms' <<<"$(pkcs11-tool --help 2>&1)" ||
    skipit "this pkcs11-tool has no --allowed-mechanisms"
  p11l --keypairgen --key-type rsa:2048 --id "$ID_ALLOW" --label "$PFX-allowed" --usage-sign \
    --allowed-mechanisms SHA256-RSA-PKCS,SHA384-RSA-PKCS
  # The key goes when the check ends, pass or fail: pkcs11-tool --test, later, signs with every
  # key it finds, with mechanisms this one does not allow.
  trap 'p11l --delete-object --type privkey --id "$ID_ALLOW" >/dev/null 2>&1 || true
        p11l --delete-object --type pubkey --id "$ID_ALLOW" >/dev/null 2>&1 || true' EXIT
  obj privkey "$ID_ALLOW" | tee "$T/allowed.obj"
  grep -q 'Allowed mechanisms:.*SHA256-RSA-PKCS,SHA384-RSA-PKCS' "$T/allowed.obj" ||
    die "--list-objects does not show the allowed mechanisms SHA256-RSA-PKCS,SHA384-RSA-PKCS"
  export_pub "$ID_ALLOW" "$T/allowed.pub.pem"
  p11l --sign --id "$ID_ALLOW" -m SHA256-RSA-PKCS -i "$T/msg" -o "$T/allowed.sig"
  openssl dgst -sha256 -verify "$T/allowed.pub.pem" -signature "$T/allowed.sig" "$T/msg" ||
    die "openssl does not verify the signature made with an allowed mechanism"
  if p11l --sign --id "$ID_ALLOW" -m SHA512-RSA-PKCS -i "$T/msg" -o "$T/forbidden.sig" \
    >"$T/forbidden.log" 2>&1; then
    die "a mechanism not in CKA_ALLOWED_MECHANISMS (SHA512-RSA-PKCS) signed"
  fi
  cat "$T/forbidden.log"
  grep -q CKR_MECHANISM_INVALID "$T/forbidden.log" ||
    die "the refusal is not CKR_MECHANISM_INVALID"
}

P11_HELP="$(pkcs11-tool --help 2>&1 || true)"
tool_has() { grep -q -- "$1" <<<"$P11_HELP" || skipit "this pkcs11-tool has no $1 (parallel-processes checks concurrency with several processes)"; }

t_list_interfaces() {
  p11 --show-info | grep -q -E 'Cryptoki version ([3-9]|[1-9][0-9])\.' ||
    skipit "the module implements Cryptoki < 3.0 (no C_GetInterfaceList)"
  p11 --list-interfaces | tee "$T/ifaces"
  grep -q "Interface 'PKCS 11'" "$T/ifaces" || die "C_GetInterfaceList lists no 'PKCS 11' interface"
}

# pkcs11-tool's own EC exercise: token key pair, C_SetAttributeValue of CKA_ID / CKA_LABEL /
# CKA_SUBJECT, a CKM_ECDSA_SHA1 signature, C_DestroyObject.
t_test_ec() {
  need_mech ECDSA-KEY-PAIR-GEN; need_mech ECDSA-SHA1
  p11l --session-rw --test-ec --id "$ID_TEC" --label "$PFX-tec" --key-type EC:secp256r1 | tee "$T/test-ec.out"
  grep -q '==> OK' "$T/test-ec.out" || die "pkcs11-tool --test-ec did not end with OK"
}

t_test_threads() {
  local rc
  tool_has --test-threads
  # One thread initialises; four more (started at once) use the library concurrently.
  p11 --test-threads IL --test-threads P1GISLT0 --test-threads P1GISLT0 \
    --test-threads P1GISLT0 --test-threads P1GISLT0 --list-slots >"$T/threads.out" 2>&1 ||
    { rc=$?; cat "$T/threads.out"; die "pkcs11-tool --test-threads exited with status $rc"; }
  cat "$T/threads.out"
  # The main thread initialises too, so a thread's C_Initialize may find it done already.
  if grep -E 'returned CKR_' "$T/threads.out" | grep -v 'CKR_OK' |
    grep -v -E 'C_Initialize .*returned CKR_CRYPTOKI_ALREADY_INITIALIZED'; then
    die "a thread got an error"
  fi
  [ "$(grep -c 'returning rv = 0$' "$T/threads.out")" -eq 5 ] || die "not every thread ended with rv = 0"
}

t_test_threads_init() {
  local rc
  tool_has --test-threads
  # Three threads call C_Initialize(CKF_OS_LOCKING_OK) at the same moment: one must win, the
  # others get CKR_OK or CKR_CRYPTOKI_ALREADY_INITIALIZED, and every one must go on working.
  p11 --test-threads ILGISLT0 --test-threads ILGISLT0 --test-threads ILGISLT0 --list-slots \
    >"$T/threads2.out" 2>&1 ||
    { rc=$?; cat "$T/threads2.out"; die "pkcs11-tool --test-threads exited with status $rc"; }
  cat "$T/threads2.out"
  if grep -E 'returned CKR_' "$T/threads2.out" | grep -v -E 'CKR_OK|CKR_CRYPTOKI_ALREADY_INITIALIZED'; then
    die "a thread got an error"
  fi
}

t_test_fork() {
  tool_has --test-fork
  p11t --login --pin "$PIN" --test-fork --list-objects
}

# Eight processes at once, each: login, sign, verify the signature in the token.
t_parallel() {
  have_key ec
  local i pids=() bad=0
  for i in 1 2 3 4 5 6 7 8; do
    (p11l --sign --id "$ID_EC" -m ECDSA -f openssl -i "$T/msg.sha256" -o "$T/par.$i.sig" >"$T/par.$i.log" 2>&1) &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || { bad=1; cat "$T/par.$((i + 1)).log"; }; done
  [ "$bad" -eq 0 ] || die "a parallel pkcs11-tool process failed"
  for i in 1 2 3 4 5 6 7 8; do
    openssl dgst -sha256 -verify "$T/ec.pub.pem" -signature "$T/par.$i.sig" "$T/msg" ||
      die "signature of parallel process $i does not verify"
  done
}

if group_on pkcs11-tool; then
  check list-slots t_list_slots
  check list-mechanisms t_list_mechs
  check so-login t_so_login
  check test-login t_test_login
  check keygen-rsa2048 t_keygen_rsa
  check keygen-ec-p256 t_keygen_ec
  check keygen-ec-p256-derive t_keygen_ec_derive
  check keygen-ed25519 t_keygen_ed
  check keygen-aes256 t_keygen_aes
  check sign-rsa-pkcs-sha256 t_sign_rsa
  check sign-rsa-pss-sha256 t_sign_rsa_pss
  check sign-ecdsa t_sign_ecdsa
  check sign-ecdsa-sha256 t_sign_ecdsa_sha256
  check sign-eddsa t_sign_eddsa
  check verify-rejects-changed-message t_verify_rejects
  check sign-multipart-100k t_sign_multipart
  check keygen-sign-ecdsa-p384 t_ecdsa_p384
  check derive-ecdh-p256 t_ecdh
  check derive-ecdh-p256-imported-key t_ecdh_imported
  check digest-sha256 t_digest
  check generate-random t_random
  check sensitive-keys-not-readable t_sensitive
  check destroy-ed25519 t_destroy_ed
  check decrypt-rsa-pkcs t_rsa_pkcs_decrypt
  check decrypt-rsa-oaep-sha1 t_oaep SHA-1 MGF1-SHA1
  check decrypt-rsa-oaep-sha256 t_oaep SHA256 MGF1-SHA256
  check aes-cbc-pad-roundtrip t_aes_cbc_roundtrip
  check aes-import t_aes_import
  check aes-cbc-pad-vs-openssl t_aes_cbc_openssl
  check aes-gcm t_aes_gcm
  check wrap-aes-key-wrap t_wrap
  check unwrap-aes-key-wrap t_unwrap
  check allowed-mechanisms t_allowed_mechanisms
  check list-interfaces t_list_interfaces
  check test-ec t_test_ec
  check test-threads t_test_threads
  check test-threads-init-race t_test_threads_init
  check test-fork t_test_fork
  check parallel-processes t_parallel
  # pkcs11-tool --test once more, now that the token holds keys of every kind.
  check test-login-with-keys t_test_login
fi

# ---------------------------------------------------------------------------------------------
# OpenSSL through libp11

cat >"$T/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $MODULE
init = 0
[req]
distinguished_name = dn
[dn]
EOF

uri() { printf 'pkcs11:token=%s;object=%s;type=private;pin-value=%s' "$TOKEN" "$1" "$PIN"; }
eng() { OPENSSL_CONF="$T/openssl.cnf" PKCS11_MODULE_PATH="$MODULE" timeout "$TMO" openssl "$@"; }

t_eng_load() { eng engine -t -c pkcs11; }

t_eng_sign() { # LABEL-SUFFIX PUBFILE
  [ -s "$T/$1.pub.pem" ] || skipit "no $1 key"
  eng dgst -sha256 -engine pkcs11 -keyform engine -sign "$(uri "$PFX-$1")" -out "$T/eng.$1.sig" "$T/data"
  openssl dgst -sha256 -verify "$T/$1.pub.pem" -signature "$T/eng.$1.sig" "$T/data" ||
    die "openssl does not verify the signature made through the engine"
}

t_eng_decrypt() { # PADDING-OPTS...
  [ -s "$T/rsa.pub.pem" ] || skipit "no rsa key"
  openssl pkeyutl -encrypt -pubin -inkey "$T/rsa.pub.pem" "$@" -in "$T/msg" -out "$T/eng.ct"
  eng pkeyutl -decrypt -engine pkcs11 -keyform engine -inkey "$(uri "$PFX-rsa")" "$@" \
    -in "$T/eng.ct" -out "$T/eng.pt"
  cmp -s "$T/msg" "$T/eng.pt" || die "decryption through the engine returned other bytes"
}

t_eng_req() { # LABEL-SUFFIX
  [ -s "$T/$1.pub.pem" ] || skipit "no $1 key"
  eng req -x509 -new -engine pkcs11 -keyform engine -key "$(uri "$PFX-$1")" \
    -subj "/CN=tresor interop $1" -days 2 -sha256 -out "$T/$1.crt.pem"
  openssl verify -CAfile "$T/$1.crt.pem" "$T/$1.crt.pem" || die "the self-signed certificate does not verify"
  cmp -s <(openssl x509 -in "$T/$1.crt.pem" -noout -pubkey) "$T/$1.pub.pem" ||
    die "the certificate's public key is not the token key's"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

t_tls() { # LABEL-SUFFIX TLS-VERSION-FLAG
  [ -s "$T/$1.crt.pem" ] || skipit "no certificate for the $1 key"
  local port spid i out
  port="$(free_port)"
  OPENSSL_CONF="$T/openssl.cnf" openssl s_server -engine pkcs11 -keyform engine -key "$(uri "$PFX-$1")" \
    -cert "$T/$1.crt.pem" -accept "127.0.0.1:$port" -naccept 1 "$2" -www >"$T/s_server.$1.log" 2>&1 &
  spid=$!
  S_SERVER_PID=$spid   # global, for the subshell's EXIT trap
  trap 'kill "$S_SERVER_PID" 2>/dev/null || true; wait "$S_SERVER_PID" 2>/dev/null || true' EXIT
  for i in $(seq 1 100); do
    grep -q '^ACCEPT' "$T/s_server.$1.log" && break
    kill -0 "$spid" 2>/dev/null || { cat "$T/s_server.$1.log"; die "s_server exited before accepting"; }
    sleep 0.1
  done
  out="$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout "$TMO" openssl s_client -connect "127.0.0.1:$port" \
    -CAfile "$T/$1.crt.pem" -verify_return_error -servername localhost "$2" -ign_eof 2>&1)" || true
  echo "$out"
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  cat "$T/s_server.$1.log"
  grep -q 'Verify return code: 0 (ok)' <<<"$out" || die "s_client: handshake or certificate check failed"
  grep -q -E 'HTTP/1.0 200|s_server' <<<"$out" || die "s_client: no answer from s_server"
}

if group_on openssl; then
  check openssl-engine-load t_eng_load
  check openssl-dgst-sign-rsa t_eng_sign rsa
  check openssl-dgst-sign-ec t_eng_sign ec
  check openssl-pkeyutl-decrypt-rsa-pkcs1 t_eng_decrypt -pkeyopt rsa_padding_mode:pkcs1
  check openssl-pkeyutl-decrypt-rsa-oaep t_eng_decrypt -pkeyopt rsa_padding_mode:oaep
  check openssl-req-x509-ec t_eng_req ec
  check openssl-req-x509-rsa t_eng_req rsa
  check openssl-tls13-ecdsa t_tls ec -tls1_3
  if has_mech RSA-PKCS-PSS; then
    check openssl-tls13-rsa-pss t_tls rsa -tls1_3
  else
    skip openssl-tls13-rsa-pss "the module does not list RSA-PKCS-PSS (TLS 1.3 signs with RSA-PSS)"
  fi
  check openssl-tls12-rsa t_tls rsa -tls1_2
fi

# ---------------------------------------------------------------------------------------------
# Java SunPKCS11

# Key templates stated the way SunPKCS11 users of HSMs state them: an EC private key that may
# both sign and derive (ECDH), and a derived ECDH secret that JCA can read back (KeyAgreement
# .generateSecret() returns bytes: SunPKCS11 reads CKA_VALUE of the derived key). Without them
# the outcome depends on each token's defaults.
cat >"$T/java.cfg" <<EOF
name = TresorInterop
library = $MODULE
slot = $((SLOT_ID))
attributes(generate, CKO_PRIVATE_KEY, CKK_EC) = {
  CKA_SIGN = true
  CKA_DERIVE = true
}
attributes(generate, CKO_SECRET_KEY, CKK_GENERIC_SECRET) = {
  CKA_SENSITIVE = false
  CKA_EXTRACTABLE = true
}
EOF
kt() {
  timeout "$TMO" keytool -storetype PKCS11 -providerclass sun.security.pkcs11.SunPKCS11 \
    -providerarg "$T/java.cfg" -storepass "$PIN" "$@"
}

t_keytool_list() { kt -list; }

t_keytool_gen() { # ALIAS-SUFFIX KEYALG ARGS...
  local alias="$PFX-$1"; shift
  kt -genkeypair -alias "$alias" -dname "CN=$alias" -validity 2 "$@"
  kt -list -alias "$alias" | tee "$T/kt.$alias.txt"
  grep -q PrivateKeyEntry "$T/kt.$alias.txt" || die "keytool -list does not show $alias as a PrivateKeyEntry"
  kt -exportcert -rfc -alias "$alias" -file "$T/$alias.crt.pem"
  openssl verify -CAfile "$T/$alias.crt.pem" "$T/$alias.crt.pem" || die "the self-signed certificate of $alias does not verify"
}

t_keytool_certreq() { # ALIAS-SUFFIX
  local alias="$PFX-$1"
  [ -s "$T/$alias.crt.pem" ] || skipit "no $alias key"
  kt -certreq -alias "$alias" -file "$T/$alias.csr"
  openssl req -in "$T/$alias.csr" -noout -verify || die "the CSR's signature does not verify"
  cmp -s <(openssl req -in "$T/$alias.csr" -noout -pubkey) <(openssl x509 -in "$T/$alias.crt.pem" -noout -pubkey) ||
    die "the CSR's public key is not the key's"
}

t_keytool_delete() { # ALIAS-SUFFIX
  local alias="$PFX-$1"
  [ -s "$T/$alias.crt.pem" ] || skipit "no $alias key"
  kt -delete -alias "$alias"
  if kt -list -alias "$alias" >"$T/kt.del" 2>&1; then
    cat "$T/kt.del"; die "keytool -list still shows $alias after keytool -delete"
  fi
}

t_java_jca() {
  mkdir -p "$T/classes"
  timeout "$TMO" javac -d "$T/classes" "$root/interop/java/Jca.java"
  timeout "$TMO" java -cp "$T/classes" Jca "$T/java.cfg" "$PIN" "$PFX-jrsa" "$PFX-jec" | tee "$T/jca.out"
  grep -q '^FAIL' "$T/jca.out" && die "$(grep '^FAIL' "$T/jca.out" | head -n3 | tr '\n' ';')"
  grep -q '^PASS' "$T/jca.out" || die "Jca printed no result"
}

if group_on java; then
  check keytool-list t_keytool_list
  check keytool-genkeypair-rsa2048 t_keytool_gen jrsa -keyalg RSA -keysize 2048
  check keytool-genkeypair-ec256 t_keytool_gen jec -keyalg EC -groupname secp256r1
  check keytool-certreq-rsa t_keytool_certreq jrsa
  check keytool-certreq-ec t_keytool_certreq jec
  check java-jca t_java_jca
  check keytool-delete t_keytool_delete jec
fi

# ---------------------------------------------------------------------------------------------
# GnuTLS

gp() { GNUTLS_PIN="$PIN" timeout "$TMO" p11tool --provider "$MODULE" "$@"; }

t_p11tool_tokens() {
  gp --list-tokens | tee "$T/gt.tokens"
  grep -q "Label: $TOKEN\$" "$T/gt.tokens" || die "p11tool --list-tokens does not show token $TOKEN"
}

t_p11tool_list_all() {
  gp --login --list-all "pkcs11:token=$TOKEN" | tee "$T/gt.all"
  grep -q '^Object 0:' "$T/gt.all" || die "p11tool --list-all shows no object"
  if [ -s "$T/rsa.pub.pem" ]; then
    grep -q "object=$PFX-rsa;type=private" "$T/gt.all" || die "p11tool --list-all does not show the private key $PFX-rsa"
  fi
}

t_p11tool_gen() { # LABEL-SUFFIX ID TYPE-ARGS...
  local l="$PFX-$1" id="$2"; shift 2
  gp --login "$@" --label "$l" --id "$id" --outfile "$T/$l.pub.pem" "pkcs11:token=$TOKEN"
  openssl pkey -pubin -in "$T/$l.pub.pem" -noout || die "p11tool's public key output is not a public key"
}

t_certtool() { # LABEL-SUFFIX
  local l="$PFX-$1"
  [ -s "$T/$l.pub.pem" ] || skipit "no $l key"
  printf 'cn = "%s"\nexpiration_days = 2\nsigning_key\ncert_signing_key\n' "$l" >"$T/$l.tmpl"
  GNUTLS_PIN="$PIN" timeout "$TMO" certtool --provider "$MODULE" --generate-self-signed \
    --load-privkey "pkcs11:token=$TOKEN;object=$l;type=private" --template "$T/$l.tmpl" \
    --outfile "$T/$l.crt.pem"
  openssl verify -CAfile "$T/$l.crt.pem" "$T/$l.crt.pem" || die "certtool's self-signed certificate does not verify"
  cmp -s <(openssl x509 -in "$T/$l.crt.pem" -noout -pubkey) <(openssl pkey -pubin -in "$T/$l.pub.pem") ||
    die "the certificate's public key is not the token key's"
}

if group_on gnutls; then
  check p11tool-list-tokens t_p11tool_tokens
  check p11tool-list-all t_p11tool_list_all
  if has_mech ECDSA-KEY-PAIR-GEN; then
    check p11tool-generate-ecc t_p11tool_gen gec "$ID_GEC" --generate-privkey=ECDSA --curve=secp256r1
  else
    skip p11tool-generate-ecc "the module does not list ECDSA-KEY-PAIR-GEN"
  fi
  if has_mech RSA-PKCS-KEY-PAIR-GEN; then
    check p11tool-generate-rsa t_p11tool_gen grsa "$ID_GRSA" --generate-privkey=RSA --bits=2048
  else
    skip p11tool-generate-rsa "the module does not list RSA-PKCS-KEY-PAIR-GEN"
  fi
  check certtool-self-signed-ecc t_certtool gec
  check certtool-self-signed-rsa t_certtool grsa
fi

# ---------------------------------------------------------------------------------------------
# p11-kit: the module exported by `p11-kit server`, used through p11-kit-client.so (the module is
# then driven from another process over p11-kit's RPC, as containers and Flatpak apps use it).

t_p11kit() {
  local sock="$T/p11kit.sock" i
  p11-kit server -f --provider "$MODULE" -n "$sock" "pkcs11:token=$TOKEN" >"$T/p11kit.out" 2>&1 &
  P11KIT_PID=$!   # global: the subshell's EXIT trap runs after this function has returned
  trap 'kill "$P11KIT_PID" 2>/dev/null || true; wait "$P11KIT_PID" 2>/dev/null || true' EXIT
  for i in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { cat "$T/p11kit.out"; die "p11-kit server did not create its socket"; }
  pc() { P11_KIT_SERVER_ADDRESS="unix:path=$sock" timeout "$TMO" pkcs11-tool --module "$P11KIT_CLIENT" "$@"; }
  pc --list-slots | tee "$T/p11kit.slots"
  grep -q "token label *: $TOKEN\$" "$T/p11kit.slots" || die "the token is not seen through p11-kit-client.so"
  pc --token-label "$TOKEN" --login --pin "$PIN" --keypairgen --key-type EC:secp256r1 \
    --id "$ID_P11KIT" --label "$PFX-p11kit" --usage-sign
  pc --token-label "$TOKEN" --read-object --type pubkey --id "$ID_P11KIT" -o "$T/p11kit.pub.der"
  openssl pkey -pubin -inform DER -in "$T/p11kit.pub.der" -out "$T/p11kit.pub.pem"
  pc --token-label "$TOKEN" --login --pin "$PIN" --sign --id "$ID_P11KIT" -m ECDSA -f openssl \
    -i "$T/msg.sha256" -o "$T/p11kit.sig"
  openssl dgst -sha256 -verify "$T/p11kit.pub.pem" -signature "$T/p11kit.sig" "$T/msg" ||
    die "openssl does not verify the signature made through p11-kit"
}

if group_on p11-kit; then
  if [ -n "$P11KIT_CLIENT" ] && has_mech ECDSA-KEY-PAIR-GEN && has_mech ECDSA; then
    check p11-kit-server-client t_p11kit
  else
    skip p11-kit-server-client "needs p11-kit-client.so and the ECDSA-KEY-PAIR-GEN / ECDSA mechanisms"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Last, because it touches the credential every other check uses: C_SetPIN there and back.

t_change_pin() {
  local new="${PIN}x9"
  p11t --login --pin "$PIN" --change-pin --new-pin "$new"
  if ! p11t --login --pin "$new" --list-objects >/dev/null; then
    p11t --login --pin "$new" --change-pin --new-pin "$PIN" >/dev/null 2>&1 || true
    die "C_Login with the new PIN fails after C_SetPIN"
  fi
  if p11t --login --pin "$PIN" --list-objects >/dev/null 2>&1; then
    p11t --login --pin "$new" --change-pin --new-pin "$PIN" >/dev/null 2>&1 || true
    die "C_Login still accepts the old PIN after C_SetPIN"
  fi
  p11t --login --pin "$new" --change-pin --new-pin "$PIN" ||
    die "C_SetPIN back to the original PIN failed: the user PIN is now the original PIN followed by x9"
  p11t --login --pin "$PIN" --list-objects >/dev/null || die "C_Login with the original PIN fails after changing it back"
}

if group_on pkcs11-tool; then
  check change-pin-and-back t_change_pin
fi

# ---------------------------------------------------------------------------------------------

for name in "${FAILED[@]}"; do
  echo "--- log of $name (last 25 lines)"
  tail -n 25 "$T/logs/$name.log" | sed 's/^/  | /'
done
echo "summary: $NPASS passed, $NFAIL failed, $NSKIP skipped, $NXFAIL expected failures"
[ "$NFAIL" -eq 0 ]
