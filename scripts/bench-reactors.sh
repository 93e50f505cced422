#!/usr/bin/env bash
# Keep-alive GET /hello with wrk against the event-loop designs, interleaved in one run so
# the machine's noise falls on all of them alike: v4-nio (acceptor, poller, 10 workers),
# v4-nio --workers 0 (one loop, handlers inline), v5-reactor-per-core (a loop per core),
# v6-async (tokio) once it exists, and nginx when it is installed (apt-get install
# nginx-light), with as many workers as v5 has loops and `reuseport`, as v5 listens.
#
#   scripts/bench-reactors.sh                 # 64 and 1,000 connections, 3 rounds of 5 s
#   ROUNDS=1 DURATION=3s scripts/bench-reactors.sh
#
# Read the ratios, not the absolute numbers: wrk and the servers share the machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-"64 1000"}
LOOPS=$(nproc)
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

packages=(-p v4-nio -p v5-reactor-per-core)
[ -d v6-async ] && packages+=(-p v6-async)
cargo build --release -q "${packages[@]}"

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"; true' EXIT

names=() urls=()
start() { # name port command...
  local name=$1 port=$2; shift 2
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name") urls+=("http://127.0.0.1:$port/hello")
}
start v4-nio 18185 ./target/release/v4-nio --addr 127.0.0.1:18185
start "v4-nio --workers 0" 18186 ./target/release/v4-nio --addr 127.0.0.1:18186 --workers 0
start v5-reactor-per-core 18187 ./target/release/v5-reactor-per-core --addr 127.0.0.1:18187
if [ -x ./target/release/v6-async ]; then
  start v6-async 18188 ./target/release/v6-async --addr 127.0.0.1:18188
  start "v6-async --blocking spawn" 18190 ./target/release/v6-async --addr 127.0.0.1:18190 --blocking spawn
fi
if command -v nginx >/dev/null; then
  mkdir -p "$work/nginx/logs"
  cat >"$work/nginx/nginx.conf" <<CONF
worker_processes $LOOPS;
error_log $work/nginx/logs/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:18189 reuseport;
    location = /hello { return 200 "Hello, World!"; }
  }
}
CONF
  start "nginx ($LOOPS workers)" 18189 nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g "daemon off;"
else
  echo "(nginx is not installed: apt-get install nginx-light to compare with it)"
fi
for url in "${urls[@]}"; do
  for _ in $(seq 50); do curl -sf "$url" >/dev/null && break; sleep 0.1; done
  curl -sf "$url" >/dev/null || { echo "no answer from $url" >&2; exit 1; }
done

rps() { wrk -t1 -c"$1" -d"$DURATION" "$2" | awk '/Requests\/sec/ {print $2}'; }

echo "machine: $LOOPS cores, $(uname -r); wrk -t1 shares them with the server; $ROUNDS rounds of $DURATION, interleaved"
scripts/stamp.sh
for c in $CONNECTIONS; do
  declare -A sum=()
  for round in $(seq "$ROUNDS"); do
    for i in "${!names[@]}"; do
      r=$(rps "$c" "${urls[$i]}")
      sum[$i]=$(awk -v a="${sum[$i]:-0}" -v b="$r" 'BEGIN {print a + b}')
    done
  done
  echo
  echo "keep-alive GET /hello, $c connections: requests per second (mean of $ROUNDS)"
  for i in "${!names[@]}"; do
    printf '  %-28s %10.0f\n' "${names[$i]}" "$(awk -v s="${sum[$i]}" -v n="$ROUNDS" 'BEGIN {print s / n}')"
  done
  v5=${sum[2]}
  printf '  v5 / v4-nio:                 %10.2f\n' "$(awk -v a="$v5" -v b="${sum[0]}" 'BEGIN {print a / b}')"
  for i in "${!names[@]}"; do
    case ${names[$i]} in
      nginx*) printf '  v5 / nginx:                  %10.2f\n' "$(awk -v a="$v5" -v b="${sum[$i]}" 'BEGIN {print a / b}')";;
      v6-async) printf '  v6 / v5:                     %10.2f\n' "$(awk -v a="${sum[$i]}" -v b="$v5" 'BEGIN {print a / b}')"
                printf '  v6 / v4-nio:                 %10.2f\n' "$(awk -v a="${sum[$i]}" -v b="${sum[0]}" 'BEGIN {print a / b}')";;
    esac
  done
  unset sum
done
