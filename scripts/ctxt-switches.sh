#!/usr/bin/env bash
# Context switches per request, for the event-loop designs: the sum over a server's
# threads of voluntary and involuntary switches (/proc/<pid>/task/*/status), across a
# `wrk -t1 -c64 -d5s` keep-alive run. Needs wrk (apt-get install wrk); the machine is
# shared, so read the differences between versions, not the exact figures.
set -euo pipefail
cd "$(dirname "$0")/.."
# The command and the machine, kernel and commit first: the stored result's stamp.
scripts/stamp.sh scripts/ctxt-switches.sh "$@"
cargo build --release -q -p v4-nio -p v5-reactor-per-core
switches() { cat /proc/$1/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches/ {s += $2} END {print s}'; }
run() { # name command...
  local name=$1; shift
  "$@" --addr 127.0.0.1:18390 >/dev/null 2>&1 & local pid=$!
  sleep 0.5
  local before=$(switches $pid)
  local requests=$(wrk -t1 -c64 -d5s http://127.0.0.1:18390/hello | awk '/requests in/ {print $1}')
  local after=$(switches $pid)
  kill $pid; wait $pid 2>/dev/null
  printf '%-24s %9d requests %9d switches %6.2f per request\n' "$name" "$requests" $((after - before)) "$(awk -v s=$((after - before)) -v r=$requests 'BEGIN {print s / r}')"
}
run "v4-nio" ./target/release/v4-nio
run "v4-nio --workers 0" ./target/release/v4-nio --workers 0
run "v5-reactor-per-core" ./target/release/v5-reactor-per-core
