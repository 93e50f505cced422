#!/usr/bin/env bash
# Checks the instrument: loadgen's keep-alive rate against wrk's, on v4-nio's /hello with
# 64 connections, alternating runs in one session. Both drive the load from one thread;
# the server's threads share the machine's cores with them.
#
#   scripts/loadgen-vs-wrk.sh        # needs wrk (apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
PORT=${PORT:-18085}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p v4-nio -p loadgen
./target/release/v4-nio --addr 127.0.0.1:$PORT >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
sleep 0.5
wrk_sum=0; lg_sum=0
for i in $(seq "$ROUNDS"); do
  w=$(wrk -t1 -c64 -d"$DURATION" http://127.0.0.1:$PORT/hello | awk '/Requests\/sec/ {print $2}')
  l=$(./target/release/loadgen bench --addr 127.0.0.1:$PORT -c 64 -d "$DURATION" --threads 1 --json \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["requests_per_sec"])')
  printf 'round %s: wrk %.0f req/s, loadgen %.0f req/s\n' "$i" "$w" "$l"
  wrk_sum=$(awk "BEGIN {print $wrk_sum + $w}"); lg_sum=$(awk "BEGIN {print $lg_sum + $l}")
done
echo "loadgen / wrk: $(awk "BEGIN {printf \"%.3f\", $lg_sum / $wrk_sum}") (machine: $(nproc) cores; wrk -t1 and loadgen --threads 1)"
