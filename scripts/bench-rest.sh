#!/usr/bin/env bash
# REST API benchmark: wrk against POST /v1/synchronousSign over HTTPS keep-alive at 1, 16 and
# 256 connections, for ECDSA P-256 (SHA256_WITH_ECDSA) and RSA-2048 (SHA256_WITH_RSA), against
# `tresor dev` (REST → in-process transport → engine), next to the engine in-process
# (`tresor bench engine`) in the same run. Prints one table.
#
#   scripts/bench-rest.sh [--duration 10] [--threads 2] [--connections 1,16,256] [--network]
#
# --network adds the same measurement against `tresor rest` as its own process, reaching an HSM
# node through a gateway and the end-to-end channel (the production path).
#
# Needs wrk and curl (scripts/setup.sh installs them) and a release build (built here).
set -euo pipefail

duration=10
threads=2
conns="1,16,256"
network=0
while [ $# -gt 0 ]; do
  case "$1" in
    --network) network=1; shift ;;
    --duration) duration="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --connections) conns="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
command -v wrk >/dev/null || { echo "wrk is missing: run scripts/setup.sh" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing: run scripts/setup.sh" >&2; exit 1; }
cargo build --release -q -p tresor-cli
tresor="$root/target/release/tresor"

work="$(mktemp -d)"
dev_pid=""
pids=()
cleanup() {
  for p in "$dev_pid" "${pids[@]}"; do
    if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TRESOR_LOG=error "$tresor" dev --dir "$work/dev" --gateway-port 0 --node-port 0 --metrics-port 0 --gateway-metrics-port 0 --rest-metrics-port 0 \
  --rest-port "$port" >"$work/dev.out" 2>"$work/dev.err" &
dev_pid=$!
for _ in $(seq 1 300); do
  grep -q "Press Ctrl-C" "$work/dev.out" 2>/dev/null && break
  sleep 0.2
done
grep -q "Press Ctrl-C" "$work/dev.out" || { cat "$work/dev.out" "$work/dev.err" >&2; exit 1; }
jwt=$(awk '$1=="JWT"{print $2}' "$work/dev.out")
key=$(awk '$1=="API" && $2=="key"{print $3}' "$work/dev.out")
ca=$(awk '$1=="CA" && $2=="for"{print $4}' "$work/dev.out")
url="https://127.0.0.1:$port"

api() {
  curl -sS --fail-with-body --cacert "$ca" -H "Authorization: Bearer $jwt" -H "X-API-KEY: $key" \
    -H 'Content-Type: application/json' "$@"
}
api -X POST "$url/v1/key" -o /dev/null --data \
  '{"label":"bench-p256","algorithm":"EC","curveOid":"1.2.840.10045.3.1.7","attributes":{"sign":true,"verify":true}}'
api -X POST "$url/v1/key" -o /dev/null --data \
  '{"label":"bench-rsa","algorithm":"RSA","keySize":2048,"attributes":{"sign":true,"verify":true}}'

lua() { # $1 key, $2 algorithm
  cat >"$work/$1.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"signRequest":{"payload":"UGF5bG9hZA==","signKeyName":"$1","signatureAlgorithm":"$2","signatureType":"DER"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $jwt"
wrk.headers["X-API-KEY"] = "$key"
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests, errors))
end
EOF
}
lua bench-p256 SHA256_WITH_ECDSA
lua bench-rsa SHA256_WITH_RSA

# Check each request shape once (a wrong body would measure errors).
for k in p256 rsa; do
  api -X POST "$url/v1/synchronousSign" -o /dev/null --data "$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$work/bench-$k.lua")"
done

declare -a rows
IFS=',' read -ra cs <<<"$conns"
# The raw RSA-2048 rate on 2 threads (aws-lc-rs / OpenSSL, the faster), measured now.
raw_rsa() {
  "$tresor" bench engine --seconds "$duration" --threads 2 --cases rsa2048-pkcs1 --lookup-keys 0 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    if l.startswith("TRESOR_BENCH_JSON "):
        print(round(json.loads(l.split(" ", 1)[1])["results"][0]["raw_ops_per_s"]))'
}
measure() { # $1 path label, $2 base url, $3 directory of the lua scripts
  for k in p256 rsa; do
    # Each RSA row is bracketed by raw-rate measurements, and its ratio uses their mean: the
    # speed of this VM drifts by tens of percent within minutes.
    raw_prev="-"; [ "$k" = rsa ] && raw_prev=$(raw_rsa)
    for c in "${cs[@]}"; do
      t=$threads; [ "$c" -lt "$t" ] && t=$c
      out=$(wrk -t"$t" -c"$c" -d"${duration}s" --timeout 10s -s "$3/bench-$k.lua" "$2/v1/synchronousSign" | grep '^RESULT')
      read -r _ rps p50 p99 n errs <<<"$out"
      raw="-"
      if [ "$k" = rsa ]; then
        raw_next=$(raw_rsa)
        raw=$(( (raw_prev + raw_next) / 2 ))
        raw_prev=$raw_next
      fi
      rows+=("$1 $k $c $rps $p50 $p99 $n $errs $raw")
    done
  done
}
measure dev "$url" "$work"
kill "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; dev_pid=""

if [ "$network" -eq 1 ]; then
  # tresor rest alone → gateway → HSM node, one partition (the production path).
  n="$work/net"; mkdir -p "$n"
  export TRESOR_STORE="$n/tresor.db"
  sf=(--share-file "$n/shares/share-1.txt")
  "$tresor" init --shares 1 --threshold 1 --share-dir "$n/shares" --root-cert "$n/root.pem" >/dev/null
  "$tresor" admin partition create P1 --so-pin so-pin-0001 --user-pin user-pin-0001 "${sf[@]}" >/dev/null
  svc_pw=$("$tresor" admin service create --name bench --service-user bench-svc --allow 127.0.0.1/32 \
    --partition P1 "${sf[@]}" | sed -n 's/.*Service user password: *//p')
  "$tresor" cert gateway --san 127.0.0.1 --cert "$n/gw.pem" --key "$n/gw.key" "${sf[@]}" >/dev/null
  "$tresor" cert gateway --name tresor-rest --san 127.0.0.1 --cert "$n/rest.pem" --key "$n/rest.key" "${sf[@]}" >/dev/null
  free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  np=$(free); gp=$(free); rp=$(free)
  TRESOR_LOG=error "$tresor" hsm --listen "127.0.0.1:$np" "${sf[@]}" >/dev/null 2>&1 & pids+=($!)
  sleep 2
  TRESOR_LOG=error "$tresor" gateway --listen "127.0.0.1:$gp" --cert "$n/gw.pem" --key "$n/gw.key" \
    --node "n1=127.0.0.1:$np" --health-interval 1 >/dev/null 2>&1 & pids+=($!)
  sleep 2
  printf 'version = "1.0";\nprimus: {\n  ca_file = "%s";\n  hsms: { hsm0: { host = "127.0.0.1"; port = "%s"; priority = 0;\n    slots: { slot0: { client_id = "bench"; user_name = "P1"; proxy_user = "bench-svc"; id = 0; }; }; }; };\n};\n' \
    "$n/root.pem" "$gp" >"$n/primus.cfg"
  ppin="$root/target/release/ppin"
  "$ppin" -c "$n/primus.cfg" -s "$n/.secrets.cfg" -p -e bench-svc "$svc_pw" >/dev/null
  setup=$("$tresor" admin credentials setup-password --partition P1 "${sf[@]}" \
    | grep -oE '[A-Z0-9]{5}(-[A-Z0-9]{5}){4}' | head -1)
  "$ppin" -c "$n/primus.cfg" -s "$n/.secrets.cfg" -a -e P1 "$setup" user-pin-0001 >/dev/null
  "$tresor" admin token keygen --private-key "$n/jwt.key" --public-key "$n/jwt.pub" >/dev/null
  printf '{"listen": "127.0.0.1:%s", "tls": {"cert": "rest.pem", "key": "rest.key"},\n "jwt": {"publicKey": "jwt.pub", "algorithm": "EdDSA", "audience": "tresor-rest"},\n "primusConfig": "primus.cfg", "secretsConfig": ".secrets.cfg", "store": "tresor.db",\n "tenants": [{"name": "bench", "partition": "P1", "pin": "user-pin-0001"}]}\n' \
    "$rp" >"$n/rest.json"
  TRESOR_LOG=error "$tresor" rest --config "$n/rest.json" >/dev/null 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -s --cacert "$n/root.pem" "https://127.0.0.1:$rp/health" >/dev/null && break; sleep 0.1; done
  jwt=$("$tresor" admin token issue --key "$n/jwt.key" --tenant bench --partition P1)
  ca="$n/root.pem"
  url="https://127.0.0.1:$rp"
  napi() {
    curl -sS --fail-with-body --cacert "$ca" -H "Authorization: Bearer $jwt" \
      -H 'Content-Type: application/json' "$@"
  }
  napi -X POST "$url/v1/key" -o /dev/null --data \
    '{"label":"bench-p256","algorithm":"EC","curveOid":"1.2.840.10045.3.1.7","attributes":{"sign":true,"verify":true}}'
  napi -X POST "$url/v1/key" -o /dev/null --data \
    '{"label":"bench-rsa","algorithm":"RSA","keySize":2048,"attributes":{"sign":true,"verify":true}}'
  mkdir -p "$n/lua"
  for f in "$work"/bench-*.lua; do
    grep -v -e 'X-API-KEY' -e 'Authorization' "$f" >"$n/lua/$(basename "$f")"
    printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$jwt" >>"$n/lua/$(basename "$f")"
  done
  measure network "$url" "$n/lua"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
fi

# The engine in-process, same machine, same run (2 threads = the 2 cores).
"$tresor" bench engine --seconds "$duration" --threads 1,2 --cases ecdsa-p256-sha256,rsa2048-pkcs1 \
  --lookup-keys 0 >"$work/engine.txt" 2>&1 || { cat "$work/engine.txt" >&2; exit 1; }

echo
echo "REST synchronousSign over HTTPS keep-alive (wrk, $duration s, $threads wrk threads) vs engine in-process"
echo "(dev: tresor dev, in-process transport; network: tresor rest -> gateway -> HSM node)"
printf '%-8s %-6s %6s %12s %10s %10s %9s %7s %10s %9s\n' path key conns req/s p50_ms p99_ms requests errors raw_2thr ratio
for r in "${rows[@]}"; do
  read -r p k c rps p50 p99 n errs raw <<<"$r"
  ratio="-"
  [ "$raw" != "-" ] && ratio=$(python3 -c "print(f'{$rps / $raw:.2f}')")
  printf '%-8s %-6s %6s %12s %10s %10s %9s %7s %10s %9s\n' "$p" "$k" "$c" "$rps" "$p50" "$p99" "$n" "$errs" "$raw" "$ratio"
done
echo "(raw_2thr: raw RSA-2048 signatures/s on 2 threads, mean of the measurements just before and after the row)"
echo
echo "Engine in-process (tresor bench engine):"
grep -iE 'ecdsa-p256-sha256|rsa2048-pkcs1|case|threads' "$work/engine.txt" || cat "$work/engine.txt"

# The targets: P-256 >= 20,000 req/s, RSA-2048 >= 0.75x the 2-thread raw rate of this run,
# p50 <= 1 ms at 16 connections.
printf '%s\n' "${rows[@]}" >"$work/rows.txt"
python3 - "$work/rows.txt" "$work/engine.txt" <<'PY' || true
import json, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print()
print("Targets (REST path, best connection count; p50 at 16 connections; RSA against the raw rate")
print("measured around the same row):")
for path in sorted({r[0] for r in rows}):
    p = [r for r in rows if r[0] == path]
    best = lambda k: max((float(r[3]) for r in p if r[1] == k), default=0.0)
    p50 = [float(r[4]) for r in p if r[1] == "p256" and r[2] == "16"]
    line = f"  {path}: P-256 {best('p256'):.0f} req/s (target 20000)"
    rsa = [(float(r[3]) / float(r[8]), r) for r in p if r[1] == "rsa" and r[8] != "-" and float(r[8]) > 0]
    if rsa:
        ratio, r = max(rsa)
        line += f", RSA-2048 {float(r[3]):.0f} req/s at {r[2]} conns = {ratio:.2f}x raw {float(r[8]):.0f} (target 0.75x)"
    if p50:
        line += f", P-256 p50 at 16 conns {p50[0]:.3f} ms (target 1 ms)"
    print(line)
PY
