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
#   v3-expire    the same steps with --max-queue-wait 50ms (the SLO less the service)
#   v4nio-noshed v4-nio --workers 4, the same steps, shedding off
#   v4nio-shed   the same with --max-queue 4
#   v5-noshed    v5 --loops 2 (an event loop running its handlers inline; its knee is
#                below 2 / 50 ms, since the kernel spreads connections by hash, not load),
#                at steps up to twice its knee
#   v5-expire    the same with --max-queue-wait 50ms (v5 has no queue of its own to bound)
#
#     cargo build --release -p loadgen -p v1-blocking -p v3-thread-pool -p v4-nio \
#       -p v5-reactor-per-core
#     scripts/overload-sweeps.sh                   # all of them, about twelve minutes
#     scripts/overload-sweeps.sh v3-shed v3-noshed # some
set -euo pipefail
cd "$(dirname "$0")/.."
port=18299
results=docs/src/results
# Fixed steps, every one run (a sweep given its rates does not stop early), so that each
# line has a step at twice its knee: 80 for four threads, about 27 for v5's two loops.
POOL_RATES=40,60,70,80,100,120,160
LOOP_RATES=10,15,20,27,35,45,54

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
    scripts/stamp.sh
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
    v3-noshed) sweep v3-noshed v3-thread-pool "--threads 4" --rates "$POOL_RATES" ;;
    v3-shed) sweep v3-shed v3-thread-pool "--threads 4 --max-queue 4" --rates "$POOL_RATES" ;;
    v3-expire) sweep v3-expire v3-thread-pool "--threads 4 --max-queue-wait 50ms" --rates "$POOL_RATES" ;;
    v4nio-noshed) sweep v4nio-noshed v4-nio "--workers 4" --rates "$POOL_RATES" ;;
    v4nio-shed) sweep v4nio-shed v4-nio "--workers 4 --max-queue 4" --rates "$POOL_RATES" ;;
    v5-noshed) sweep v5-noshed v5-reactor-per-core "--loops 2" --rates "$LOOP_RATES" ;;
    v5-expire) sweep v5-expire v5-reactor-per-core "--loops 2 --max-queue-wait 50ms" --rates "$LOOP_RATES" ;;
    *) echo "unknown sweep $1" >&2; exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then
  set -- v3-uniform v3-poisson v1 v3-noshed v3-shed v3-expire v4nio-noshed v4nio-shed v5-noshed v5-expire
fi
for name in "$@"; do run "$name"; done
