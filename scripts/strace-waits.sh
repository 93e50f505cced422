#!/usr/bin/env bash
# System calls per request for each of v4-syscalls' kernel interfaces, counted by
# strace -c while loadgen drives 4 keep-alive clients for 3 seconds. Needs strace
# (apt-get install strace). Tracing slows the server a lot: read the counts, not the speed.
#
#   scripts/strace-waits.sh            # prints a table per API, then calls per request
set -euo pipefail
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "strace is not installed: apt-get install strace" >&2; exit 1; }
cargo build --release -q -p v4-syscalls -p loadgen
port=18086
echo "# strace -c -f -p <v4-syscalls pid> during: loadgen bench -c 4 -d 3s /hello"
scripts/stamp.sh
for api in ${APIS:-poll epoll epoll-et io-uring}; do
  ./target/release/v4-syscalls --api "$api" --addr 127.0.0.1:$port 2>/dev/null &
  server=$!
  sleep 0.5
  strace -c -f -p "$server" -o /tmp/strace-waits.$$ &
  tracer=$!
  sleep 0.5
  before=$(curl -s http://127.0.0.1:$port/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
  ./target/release/loadgen bench --addr 127.0.0.1:$port -c 4 -d 3s --json >/dev/null
  after=$(curl -s http://127.0.0.1:$port/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
  kill -INT $tracer; wait $tracer 2>/dev/null || true
  kill -INT $server; wait $server 2>/dev/null || true
  requests=$((after - before))
  echo; echo "## $api ($requests requests)"
  cat /tmp/strace-waits.$$
  python3 - "$requests" /tmp/strace-waits.$$ <<'PY'
import sys
requests = int(sys.argv[1])
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        print(f"  {f[-1]:<16} {int(f[3]) / requests:6.2f} per request")
PY
  rm -f /tmp/strace-waits.$$
done
