#!/usr/bin/env bash
# The sweeps the Overload chapter quotes, each against a fresh server on a port of its own,
# a new connection per request (`--close`) and GET /sleep?ms=50, written to
# docs/src/results/overload-<name>.txt with the command that made it:
#
#   v3-uniform   v3 --threads 4, evenly spaced arrivals (capacity 4 / 50 ms = 80 req/s)
#   v3-poisson   the same with Poisson arrivals
#   v1           v1, one at a time (capacity 20 req/s)
#   v3-noshed    v3 --threads 4 at fixed steps up to twice 80, shedding off
#   v3-shed      the same steps with --max-queue 4 (the bound Little's law gives for a
#                100 ms SLO: 4 threads x (100 - 50) ms / 50 ms)
#
#     cargo build --release -p loadgen -p v1-blocking -p v3-thread-pool
#     scripts/overload-sweeps.sh                   # all of them, about six minutes
#     scripts/overload-sweeps.sh v3-shed v3-noshed # some
set -euo pipefail
cd "$(dirname "$0")/.."
port=18299
results=docs/src/results

# sweep NAME VERSION "SERVER OPTIONS" SWEEP OPTIONS...
sweep() {
  local name=$1 version=$2 server_options=$3
  shift 3
  # shellcheck disable=SC2086 # the server's options are words on purpose
  "./target/release/$version" --addr "127.0.0.1:$port" $server_options >/dev/null 2>&1 &
  local server=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/hello" && break; sleep 0.1; done
  {
    echo "\$ scripts/overload-sweeps.sh $name"
    echo "\$ $version${server_options:+ $server_options}"
    echo "\$ loadgen sweep --addr 127.0.0.1:$port --path '/sleep?ms=50' --close${*:+ $*}"
    ./target/release/loadgen sweep --addr "127.0.0.1:$port" --path '/sleep?ms=50' --close "$@"
  } >"$results/overload-$name.txt" 2>&1 || echo "$name: the sweep failed, see $results/overload-$name.txt"
  kill "$server"
  wait "$server" 2>/dev/null || true
  echo "$name: $results/overload-$name.txt"
}

run() {
  case $1 in
    v3-uniform) sweep v3-uniform v3-thread-pool "--threads 4" ;;
    v3-poisson) sweep v3-poisson v3-thread-pool "--threads 4" --arrivals poisson ;;
    v1) sweep v1 v1-blocking "" ;;
    v3-noshed) sweep v3-noshed v3-thread-pool "--threads 4" --capacity 80 ;;
    v3-shed) sweep v3-shed v3-thread-pool "--threads 4 --max-queue 4" --capacity 80 ;;
    *) echo "unknown sweep $1" >&2; exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then
  set -- v3-uniform v3-poisson v1 v3-noshed v3-shed
fi
for name in "$@"; do run "$name"; done
