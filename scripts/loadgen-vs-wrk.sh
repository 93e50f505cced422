#!/usr/bin/env bash
# Checks the instrument: loadgen's keep-alive rate against wrk's, on a version's /hello
# with 64 connections, alternating runs in one session. Both drive the load from one
# thread; the server's threads share the machine's cores with them. loadgen also says how
# busy its one thread was: near a full core, the generator is the limit.
#
#   scripts/loadgen-vs-wrk.sh                          # against v4-syscalls, the fastest here (needs wrk)
#   SERVER=v4-nio scripts/loadgen-vs-wrk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# The command and the machine, kernel and commit first: the stored result's stamp.
scripts/stamp.sh scripts/loadgen-vs-wrk.sh "$@"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
PORT=${PORT:-18085}
SERVER=${SERVER:-v4-syscalls}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p "$SERVER" -p loadgen
"./target/release/$SERVER" --addr 127.0.0.1:$PORT >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:$PORT/hello >/dev/null && break; sleep 0.1; done
wrk_sum=0; lg_sum=0
for i in $(seq "$ROUNDS"); do
  w=$(wrk -t1 -c64 -d"$DURATION" http://127.0.0.1:$PORT/hello | awk '/Requests\/sec/ {print $2}')
  read -r l busy < <(./target/release/loadgen bench --addr 127.0.0.1:$PORT -c 64 -d "$DURATION" --threads 1 --json \
      | python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["requests_per_sec"], s["generator_busiest_share"])')
  printf 'round %s: wrk %.0f req/s, loadgen %.0f req/s (its thread busy %.0f%% of the run)\n' "$i" "$w" "$l" "$(awk "BEGIN {print 100 * $busy}")"
  wrk_sum=$(awk "BEGIN {print $wrk_sum + $w}"); lg_sum=$(awk "BEGIN {print $lg_sum + $l}")
done
echo "loadgen / wrk: $(awk "BEGIN {printf \"%.3f\", $lg_sum / $wrk_sum}") against $SERVER (machine: $(nproc) cores; wrk -t1 and loadgen --threads 1)"
