#!/usr/bin/env bash
# PKCS#11 benchmark: the same p11bench workload (../shared/tools/p11bench) against SoftHSMv2 (an
# in-process soft token) and against the Tresor module (network: client library → gateway →
# node → engine, all on this machine), next to the raw crypto baseline of `tresor bench engine`
# and, for RSA-2048 and ECDSA P-256, the bare two hops of `tresor bench network --sides bare`:
# the floor that any client → gateway → node path has on this machine.
#
#   scripts/bench-pkcs11.sh [--seconds S] [--threads 1,2,8,32] [--styles query,direct]
#                           [--repeat N] [--out FILE.md] [--stack dev|separate]
#
# --repeat N runs the whole sequence N times (default 1); each cell of the table is then the
# median round (ops/s, with that round's latencies), and each ratio the median of the rounds'
# ratios with their range, so that a drift of the machine's speed shows as a range instead of
# deciding one figure.
# --stack dev (the default) measures against `tresor dev`: node, gateway (and the idle REST
# service) in one process, as a newcomer runs it. --stack separate starts `tresor hsm` and
# `tresor gateway` as two processes (scripts/interop/tresor-stack.sh), which costs extra
# cross-process wake-ups on a 2-core machine.
#
# Cases: rsa2048-sign (CKM_SHA256_RSA_PKCS), ecdsa-p256-sign (CKM_ECDSA), ed25519-sign
# (CKM_EDDSA), aes256gcm-1k (CKM_AES_GCM, 1 KiB). Builds what it needs (release): p11bench into
# target/p11bench, `tresor`, `ppin` and libtresor_pkcs11.so. The Tresor stack (tresor hsm +
# tresor gateway processes, provisioned by `tresor dev --no-serve`) lives in a temporary
# directory on free ports and is stopped at the end. Prints one markdown table (also written to
# --out, default target/bench/pkcs11.md) and keeps the raw P11BENCH_JSON / TRESOR_BENCH_JSON
# lines next to it.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

SECONDS_PER_CASE=3
THREADS=1,2,8,32
STYLES=query,direct
OUT=target/bench/pkcs11.md
STACK=dev
REPEAT=1
CASES=rsa2048-sign,ecdsa-p256-sign,ed25519-sign,aes256gcm-1k
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_CASE="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --styles) STYLES="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --stack) STACK="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-pkcs11.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

scripts/setup.sh
for t in softhsm2-util python3; do
  command -v "$t" >/dev/null || { echo "bench-pkcs11.sh: $t missing (scripts/setup.sh)" >&2; exit 2; }
done
softhsm=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
  [ -f "$m" ] && softhsm="$m" && break
done
[ -n "$softhsm" ] || { echo "bench-pkcs11.sh: no libsofthsm2.so (scripts/setup.sh)" >&2; exit 2; }

p11bench_manifest="${P11BENCH_MANIFEST:-$root/../shared/tools/p11bench/Cargo.toml}"
[ -f "$p11bench_manifest" ] || { echo "bench-pkcs11.sh: no p11bench at $p11bench_manifest" >&2; exit 2; }
echo "== building p11bench, tresor, ppin, libtresor_pkcs11.so (release)"
cargo build --release --quiet --manifest-path "$p11bench_manifest" --target-dir target/p11bench
cargo build --release --quiet -p tresor-cli -p tresor-pkcs11
bench="$root/target/p11bench/release/p11bench"
module="$root/target/release/libtresor_pkcs11.so"

T="$(mktemp -d "${TMPDIR:-/tmp}/bench-pkcs11.XXXXXX")"
cleanup() {
  scripts/interop/tresor-stack.sh stop "$T/tresor" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$(dirname "$OUT")"
raw="${OUT%.md}.jsonl"
: >"$raw"

# CPU seconds (user + system) used so far by the processes in the file PIDS (the Tresor node and
# gateway), from /proc/PID/stat.
server_cpu() {
  local total=0 p tck
  tck="$(getconf CLK_TCK)"
  [ -f "${1:-/nonexistent}" ] || { echo 0; return; }
  while read -r p; do
    [ -r "/proc/$p/stat" ] || continue
    # Fields after the ") " that ends the command name: utime is the 12th, stime the 13th.
    total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done <"$1"
  awk -v t="$total" -v h="$tck" 'BEGIN { printf "%.3f", t / h }'
}

# The `tresor bench network` case of a p11bench case (none: no bare-hops floor for it).
network_case() {
  case "$1" in
    rsa2048-sign) echo rsa2048-pkcs1-sha256 ;;
    ecdsa-p256-sign) echo ecdsa-p256 ;;
    *) echo "" ;;
  esac
}

# The `tresor bench engine` case that measures the same operation as a p11bench case.
engine_case() {
  case "$1" in
    rsa2048-sign) echo rsa2048-pkcs1 ;;
    ecdsa-p256-sign) echo ecdsa-p256 ;;
    ed25519-sign) echo ed25519 ;;
    *) echo "$1" ;;
  esac
}

run_bench() { # NAME MODULE PIN STYLE CASE PIDS-FILE THREADS [extra args]
  local name="$1" mod="$2" pin="$3" style="$4" case="$5" pids="$6" threads="$7" c0 c1; shift 7
  echo "== $name, $case, --call-style $style, threads $threads, $SECONDS_PER_CASE s"
  c0="$(server_cpu "$pids")"
  "$bench" --module "$mod" --pin "$pin" --mech "$case" --threads "$threads" \
    --seconds "$SECONDS_PER_CASE" --call-style "$style" "$@" >"$T/run.out"
  c1="$(server_cpu "$pids")"
  grep -v -e '^P11BENCH_JSON' -e '^module' -e '^library' -e '^token' -e '^ *$' "$T/run.out"
  sed -n "s/^P11BENCH_JSON /{\"who\":\"$name\",\"round\":$round,\"style\":\"$style\",\"server_cpu_s\":$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }'),\"run\":/p" \
    "$T/run.out" | sed 's/$/}/' >>"$raw"
}

# SoftHSMv2: a scratch token.
mkdir -p "$T/softhsm/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$T/softhsm/tokens" >"$T/softhsm/softhsm2.conf"
export SOFTHSM2_CONF="$T/softhsm/softhsm2.conf"
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 12345678 >/dev/null
IFS=, read -r -a styles <<<"$STYLES"
IFS=, read -r -a cases <<<"$CASES"

# Tresor: a stack of its own.
if [ "$STACK" = separate ]; then
  echo "== starting a Tresor stack (release): tresor hsm + tresor gateway processes"
  scripts/interop/tresor-stack.sh start "$T/tresor" --bin-dir target/release
  # shellcheck disable=SC1091
  . "$T/tresor/env.sh"
else
  echo "== starting tresor dev (release): node and gateway in one process"
  mkdir -p "$T/tresor"
  target/release/tresor dev --dir "$T/tresor/dev" --gateway-port 0 --node-port 0 \
    --metrics-port 0 --gateway-metrics-port 0 --rest-port 0 --rest-metrics-port 0 >"$T/tresor/dev.out" 2>"$T/tresor/dev.err" &
  echo $! >"$T/tresor/pids"
  for _ in $(seq 1 300); do grep -q '^Press Ctrl-C' "$T/tresor/dev.out" 2>/dev/null && break; sleep 0.1; done
  grep -q '^Press Ctrl-C' "$T/tresor/dev.out" || { cat "$T/tresor/dev.out" "$T/tresor/dev.err" >&2; echo "bench-pkcs11.sh: tresor dev did not start" >&2; exit 1; }
  export TRESOR_PKCS11_CONF="$T/tresor/dev/primus.cfg" TRESOR_SECRETS_CONF="$T/tresor/dev/.secrets.cfg"
  TRESOR_USER_PIN="$(awk '$1 == "user" && $2 == "PIN" { print $3 }' "$T/tresor/dev.out")"
  # The two ppin lines tresor dev prints, run as printed (with the release ppin).
  grep -E '^  ppin -[pa] ' "$T/tresor/dev.out" | sed 's#^  ppin #target/release/ppin #' >"$T/tresor/ppin.sh"
  bash -e "$T/tresor/ppin.sh" >/dev/null
fi
# Case by case and thread count by thread count: SoftHSM (both call styles), Tresor (both) and
# the raw baseline of that case and thread count one after the other, seconds apart, so that a
# change of the machine's speed during the run (other guests of the host) shifts them alike
# rather than one side of a ratio, and the two call styles of one module (which should agree)
# are compared on the same footing.
IFS=, read -r -a thread_list <<<"$THREADS"
case "$REPEAT" in ''|*[!0-9]*|0) echo "bench-pkcs11.sh: --repeat takes a positive number" >&2; exit 2 ;; esac
for round in $(seq 1 "$REPEAT"); do
[ "$REPEAT" -gt 1 ] && echo "== round $round of $REPEAT"
for c in "${cases[@]}"; do
  for t in "${thread_list[@]}"; do
    for s in "${styles[@]}"; do run_bench softhsm "$softhsm" 1234 "$s" "$c" "" "$t" --token-label bench; done
    for s in "${styles[@]}"; do run_bench tresor "$module" "$TRESOR_USER_PIN" "$s" "$c" "$T/tresor/pids" "$t"; done
    # Raw crypto baseline: the engine in-process and the faster of OpenSSL / aws-lc-rs.
    echo "== tresor bench engine, $c, threads $t (in-process engine and raw crypto libraries)"
    rm -rf "$T/engine"
    target/release/tresor bench engine --cases "$(engine_case "$c")" \
      --threads "$t" --seconds "$SECONDS_PER_CASE" --lookup-keys 0 --dir "$T/engine" \
      2>/dev/null | tee "$T/engine.out" | grep -v -e '^TRESOR_BENCH_JSON' -e '^aud.wait' -e '^the benchmark waits'
    sed -n "s/^TRESOR_BENCH_JSON /{\"who\":\"engine\",\"round\":$round,\"run\":/p" "$T/engine.out" | sed 's/$/}/' >>"$raw"
    # The floor under any client -> gateway -> node path on this machine: the bare two hops of
    # `tresor bench network` (blocking relay and signer threads, no TLS, no framing) with as
    # many client threads, for the cases it has.
    nc="$(network_case "$c")"
    if [ -n "$nc" ]; then
      echo "== bare two hops (tresor bench network --sides bare), $c, threads $t"
      target/release/tresor bench network --sides bare --cases "$nc" --clients "$t" \
        --seconds "$SECONDS_PER_CASE" --setups 0 2>/dev/null >"$T/bare.out"
      grep -e '^[a-z]' "$T/bare.out" | grep -v -e '^TRESOR_BENCH_JSON' -e '^thread hand-off' || true
      sed -n "s/^TRESOR_BENCH_JSON /{\"who\":\"bare\",\"round\":$round,\"run\":/p" "$T/bare.out" | sed 's/$/}/' >>"$raw"
    fi
  done
done
done
if [ "$STACK" = separate ]; then
  scripts/interop/tresor-stack.sh stop "$T/tresor"
else
  kill "$(cat "$T/tresor/pids")" 2>/dev/null || true
  wait 2>/dev/null || true
fi

if [ "$STACK" = separate ]; then STACK_DESC="tresor hsm and tresor gateway processes"; else STACK_DESC="tresor dev, one process"; fi
export STACK_DESC
python3 - "$raw" "$OUT" "$SECONDS_PER_CASE" "$STYLES" "$REPEAT" <<'EOF'
import json, sys, os, statistics
raw, out, secs, styles, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(","), int(sys.argv[5])
# Every result is kept per round: (..., round) keys.
p11 = {}       # (who, style, case, threads, round) -> result
srv = {}       # (style, case) -> (server cpu s, ops, wall s) over the Tresor runs
engine = {}    # (case, threads, round) -> row
bare = {}      # (bench network case, clients, round) -> bare hops result
libs = {}
for line in open(raw):
    d = json.loads(line)
    rnd = d.get("round", 1)
    if d["who"] == "bare":
        for r in d["run"]["results"]:
            bare[(r["case"], r["clients"], rnd)] = r["bare_hops"]
        continue
    if d["who"] == "engine":
        for r in d["run"]["results"]:
            engine[(r["case"], r["threads"], rnd)] = r
    else:
        libs[d["who"]] = d["run"].get("library", "?")
        for r in d["run"]["results"]:
            p11[(d["who"], d["style"], r["case"], r["threads"], rnd)] = r
        if d["who"] == "tresor":
            # One run: its server CPU once, its operations and time summed over its results.
            done = [r for r in d["run"]["results"] if "ops" in r]
            if done:
                key = (d["style"], done[0]["case"])
                cpu, ops, wall = srv.get(key, (0.0, 0, 0.0))
                srv[key] = (cpu + d["server_cpu_s"], ops + sum(r["ops"] for r in done),
                            wall + sum(r.get("wall_s", 0.0) for r in done))
net_case = {"rsa2048-sign": "rsa2048-pkcs1-sha256", "ecdsa-p256-sign": "ecdsa-p256"}
eng_case = {"rsa2048-sign": "rsa2048-pkcs1", "ecdsa-p256-sign": "ecdsa-p256",
            "ed25519-sign": "ed25519", "aes256gcm-1k": "aes256gcm-1k"}

def cell(r, k, fmt):
    if r is None:
        return "-"
    if "error" in r:
        return "error"
    if "skipped" in r:
        return "skipped"
    v = r.get(k)
    return "-" if v is None else fmt.format(v)

def ops(r):
    return r.get("ops_per_s") if r and "error" not in r and "skipped" not in r else None

def median_round(results):
    """The result of the median round by ops/s (its latencies with it); None if none ran."""
    ok = sorted((r for r in results if ops(r) is not None), key=ops)
    if not ok:
        return results[0] if results else None
    return ok[(len(ok) - 1) // 2]

def ratio_cell(pairs):
    """Median of the rounds' ratios, with their range when there are several."""
    vals = sorted(a / b for a, b in pairs if a is not None and b)
    if not vals:
        return "-"
    m = "{:.2f}".format(statistics.median(vals))
    return m if len(vals) == 1 else "{} ({:.2f}–{:.2f})".format(m, vals[0], vals[-1])

rows = []
keys = sorted({(s, c, t) for (_, s, c, t, _) in p11},
              key=lambda k: (list(eng_case).index(k[1]) if k[1] in eng_case else 99,
                             styles.index(k[0]) if k[0] in styles else 99, k[2]))
for style, case, thr in keys:
    rs = range(1, rounds + 1)
    s_r = {n: p11.get(("softhsm", style, case, thr, n)) for n in rs}
    t_r = {n: p11.get(("tresor", style, case, thr, n)) for n in rs}
    e_r = {n: engine.get((eng_case.get(case, case), thr, n)) for n in rs}
    b_r = {n: bare.get((net_case.get(case), thr, n)) for n in rs}
    s = median_round([r for r in s_r.values() if r])
    t = median_round([r for r in t_r.values() if r])
    raw_ops = lambda e: e.get("raw_ops_per_s") if e else None
    ratio = ratio_cell([(ops(t_r[n]), ops(s_r[n])) for n in rs])
    traw = ratio_cell([(ops(t_r[n]), raw_ops(e_r[n])) for n in rs])
    es = [e for e in e_r.values() if e]
    e = sorted(es, key=lambda e: e["engine"]["ops_per_s"])[(len(es) - 1) // 2] if es else None
    eng = "-" if e is None else "{:,.0f}".format(e["engine"]["ops_per_s"])
    rawc = "-" if e is None or e.get("raw_ops_per_s") is None else "{:,.0f} ({})".format(e["raw_ops_per_s"], e.get("raw_lib"))
    cpu, n_ops, _ = srv.get((style, case), (0.0, 0, 0.0))
    srv_us = "{:.0f}".format(cpu / n_ops * 1e6) if n_ops else "-"
    b = median_round([r for r in b_r.values() if r])
    bcell = "-"
    if b and b.get("ops_per_s"):
        bcell = "{:,.0f} ({:.0f})".format(b["ops_per_s"], b["p50_us"])
    bsoft = ratio_cell([((b_r[n] or {}).get("ops_per_s"), ops(s_r[n])) for n in rs])
    braw = ratio_cell([((b_r[n] or {}).get("ops_per_s"), raw_ops(e_r[n])) for n in rs])
    rows.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
        case, thr, style,
        cell(s, "ops_per_s", "{:,.0f}"), cell(s, "p50_us", "{:.0f}"), cell(s, "p99_us", "{:.0f}"),
        cell(t, "ops_per_s", "{:,.0f}"), cell(t, "p50_us", "{:.0f}"), cell(t, "p99_us", "{:.0f}"),
        ratio, srv_us, eng, rawc, traw, bcell, bsoft, braw))
load = os.getloadavg()
head = [
    "PKCS#11 benchmark ({} s per case, {} round(s): a cell is the median round, a ratio the median of the rounds'"
    " ratios (range); {} cores, loadavg now {:.2f}). SoftHSM: {}; Tresor: libtresor_pkcs11.so"
    " through gateway and node on 127.0.0.1 ({}). Latencies in µs (one complete operation as the"
    " application sees it). Baseline: `tresor bench engine` — the Tresor engine in-process, and the faster"
    " of OpenSSL / aws-lc-rs called directly (raw crypto). Server µs/op: CPU time of the node and gateway"
    " processes per Tresor operation, over all thread counts of that case and style (the client's own CPU is"
    " not in it). Bare hops: the floor under any client → gateway → node path here, `tresor bench network"
    " --sides bare` with as many client threads (two plain loopback hops through blocking relay threads to a"
    " signer thread using the same engine; no TLS, framing, login or PKCS#11 layer), ops/s (p50 µs), and as a"
    " share of SoftHSM and of raw crypto. On 2 cores the client, gateway and node share the CPUs: Tresor's figures are a lower bound"
    " for a deployment with its own HSM machine.".format(secs, rounds, os.cpu_count(), load[0], libs.get("softhsm", "?"),
        os.environ.get("STACK_DESC", "?")),
    "",
    "| case | thr | style | SoftHSM ops/s | p50 | p99 | Tresor ops/s | p50 | p99 | Tresor/SoftHSM | Tresor server µs/op | engine in-process ops/s | raw crypto ops/s (lib) | Tresor/raw | bare hops ops/s (p50) | bare/SoftHSM | bare/raw |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
text = "\n".join(head + rows) + "\n"
open(out, "w").write(text)
print()
print(text)
EOF
echo "table: $OUT; raw results: $raw"
