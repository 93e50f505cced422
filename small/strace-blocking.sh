#!/usr/bin/env bash
# The socket calls page's proof: strace of the blocking small program serving one curl,
# stored as docs/src/results/strace-small-blocking.txt with the command, machine, kernel
# and commit on its first lines. Needs strace and curl. Run from anywhere:
#     small/strace-blocking.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/src/results/strace-small-blocking.txt
cargo build -q -p small --bin blocking
trace=$(mktemp)
ready=$(mktemp)
trap 'rm -f "$trace" "$ready"' EXIT
# -f: every thread; the server's own output goes to $ready, strace's to $trace.
strace -f -e trace=network,read,write,close -o "$trace" \
  target/debug/blocking 127.0.0.1:0 >"$ready" &
server=$!
for _ in $(seq 100); do grep -q listening "$ready" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$ready")
curl -s "http://$addr/hello" >/dev/null
# curl has left once it returns; stop the server when its trace shows the close of
# that connection and the next accept. strace blocks fatal signals when it runs the
# program with -o, so the signal goes to the program (strace's only child).
for _ in $(seq 100); do [ "$(grep -c '^[0-9]* *accept4' "$trace")" -ge 2 ] && break; sleep 0.1; done
kill "$(pgrep -P "$server")"
wait "$server" || true
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  echo "\$ strace -f -e trace=network,read,write,close target/debug/blocking 127.0.0.1:0   # then: curl -s http://ADDR/hello   (small/strace-blocking.sh)"
  echo "machine: ${cpu:-unknown CPU}, $(nproc) cores; kernel $(uname -r); commit $(git rev-parse --short HEAD); $(date -u +%Y-%m-%d)"
  echo
  # The process id says nothing the reader needs; the lines are left as strace wrote them.
  sed -E 's/^[0-9]+ +//' "$trace"
} >"$out"
echo "wrote $out"
