#!/usr/bin/env bash
# Starts (or stops) a throw-away Tresor stack on free 127.0.0.1 ports, with a client registered,
# for the PKCS#11 interoperability checks and benchmarks:
#
#   scripts/interop/tresor-stack.sh start DIR [--bin-dir DIR]   # default bin dir: target/debug
#   . DIR/env.sh                                                 # TRESOR_PKCS11_CONF, PINs
#   scripts/interop/tresor-stack.sh stop DIR
#
# `start` provisions a store with `tresor dev --no-serve --dir DIR/dev` (partition, service,
# setup password, primus.cfg), issues a gateway certificate (`tresor cert gateway`), starts
# `tresor hsm` and `tresor gateway` as two processes (pids in DIR/pids, logs in DIR/*.log),
# registers the client with `ppin -p` and `ppin -a`, and writes DIR/env.sh with
# TRESOR_PKCS11_CONF, TRESOR_SECRETS_CONF, TRESOR_USER_PIN and TRESOR_SO_PIN.
# `stop` ends the processes it started (by their pids) and leaves DIR in place.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
shift 2
bin="$root/target/debug"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin="$(cd "$2" && pwd)"; shift 2 ;;
    *) echo "tresor-stack.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

stop() {
  [ -f "$dir/pids" ] || return 0
  local p
  while read -r p; do
    [ -n "$p" ] || continue
    kill "$p" 2>/dev/null || true
  done <"$dir/pids"
  while read -r p; do
    [ -n "$p" ] || continue
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done <"$dir/pids"
  rm -f "$dir/pids"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # PORT PID NAME LOG
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then
      echo "tresor-stack.sh: $3 exited early:" >&2
      tail -n 20 "$4" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "tresor-stack.sh: $3 does not listen on port $1" >&2
  return 1
}

field() { # PREFIX FILE: the rest of the first line that starts with PREFIX (after spaces)
  sed -n "s/^ *$1 *//p" "$2" | head -n1
}

case "$cmd" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "tresor-stack.sh: start or stop" >&2; exit 2 ;;
esac

for b in tresor ppin; do
  [ -x "$bin/$b" ] || { echo "tresor-stack.sh: no $bin/$b (cargo build -p tresor-cli)" >&2; exit 2; }
done
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
stop
dev="$dir/dev"
gw_port="$(free_port)"
node_port="$(free_port)"
http_port="$(free_port)"

"$bin/tresor" dev --no-serve --dir "$dev" --gateway-port "$gw_port" --node-port "$node_port" \
  --metrics-port 0 --gateway-metrics-port 0 --rest-port 0 --rest-metrics-port 0 >"$dir/dev.out" 2>&1 || { cat "$dir/dev.out" >&2; exit 1; }
export TRESOR_STORE="$dev/tresor.db"
share="$dev/dev.share"
"$bin/tresor" cert gateway --share-file "$share" --san 127.0.0.1 --san localhost \
  --cert "$dir/gw.pem" --key "$dir/gw.key" >"$dir/cert.out" 2>&1 || { cat "$dir/cert.out" >&2; exit 1; }

: >"$dir/pids"
RUST_LOG="${RUST_LOG:-warn}" "$bin/tresor" hsm --share-file "$share" --listen "127.0.0.1:$node_port" \
  --http "127.0.0.1:$http_port" >"$dir/hsm.log" 2>&1 &
echo $! >>"$dir/pids"
wait_port "$node_port" "$!" "tresor hsm" "$dir/hsm.log" || { stop; exit 1; }
RUST_LOG="${RUST_LOG:-warn}" "$bin/tresor" gateway --listen "127.0.0.1:$gw_port" --cert "$dir/gw.pem" \
  --key "$dir/gw.key" --node "node0=127.0.0.1:$node_port" --health-interval 1 >"$dir/gateway.log" 2>&1 &
echo $! >>"$dir/pids"
wait_port "$gw_port" "$!" "tresor gateway" "$dir/gateway.log" || { stop; exit 1; }
sleep 1.5 # the gateway's first health round marks the node up

cfg="$(field 'export TRESOR_PKCS11_CONF=' "$dir/dev.out")"
secrets="$(field 'export TRESOR_SECRETS_CONF=' "$dir/dev.out")"
user_pin="$(field 'user PIN' "$dir/dev.out")"
so_pin="$(field 'SO PIN' "$dir/dev.out")"
export TRESOR_PKCS11_CONF="$cfg" TRESOR_SECRETS_CONF="$secrets"
for prefix in 'ppin -p' 'ppin -a'; do
  line="$(sed -n "s/^ *\($prefix .*\)/\1/p" "$dir/dev.out" | head -n1)"
  [ -n "$line" ] || { echo "tresor-stack.sh: no '$prefix' line in tresor dev's output" >&2; stop; exit 1; }
  # The line is `ppin -x -e NAME 'A' ['B']`: split on spaces, strip the quotes.
  read -r -a words <<<"${line#ppin }"
  args=()
  for w in "${words[@]}"; do args+=("${w//\'/}"); done
  "$bin/ppin" "${args[@]}" </dev/null >>"$dir/ppin.out" 2>&1 ||
    { echo "tresor-stack.sh: ppin ${words[0]} failed:" >&2; tail -n 5 "$dir/ppin.out" >&2; stop; exit 1; }
done

cat >"$dir/env.sh" <<EOF
export TRESOR_PKCS11_CONF='$cfg'
export TRESOR_SECRETS_CONF='$secrets'
export TRESOR_USER_PIN='$user_pin'
export TRESOR_SO_PIN='$so_pin'
EOF
echo "tresor stack: gateway 127.0.0.1:$gw_port, node 127.0.0.1:$node_port (pids $(tr '\n' ' ' <"$dir/pids"))"
