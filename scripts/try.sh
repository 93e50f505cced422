#!/usr/bin/env bash
# Talks to one running version with the tools a student has: curl (HTTP), nc (the line
# protocol), and wrk if it is installed. Start the servers first (scripts/start-all.sh).
#
#   scripts/try.sh 8085        # the ports: cargo run -q -p registry
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
  echo "usage: scripts/try.sh <port>, one of the versions' ports:" >&2
  cargo run -q -p registry | sed 's/^/  /' >&2
  exit 2
fi
port=$1
base=http://127.0.0.1:$port

echo "== curl -v $base/hello"
curl -sv "$base/hello" 2>&1 | grep -E '^(< |> GET)|Hello' || { echo "nothing on port $port: start it with scripts/start-all.sh" >&2; exit 1; }
echo
echo "== the line protocol, as you would type it into nc 127.0.0.1 $port"
if command -v nc >/dev/null; then
  printf 'GET /hello\nGET /echo?msg=hi\nnot a request\nexit\n' | nc -q 2 127.0.0.1 "$port" 2>/dev/null \
    || printf 'GET /hello\nexit\n' | nc 127.0.0.1 "$port"
else
  echo "(nc is not installed: apt-get install netcat-openbsd)"
fi
echo
echo "== /stats"
curl -s "$base/stats"; echo
if command -v wrk >/dev/null; then
  echo
  echo "== wrk -t1 -c64 -d3s $base/hello"
  wrk -t1 -c64 -d3s "$base/hello"
else
  echo "(wrk is not installed: apt-get install wrk; or use: cargo run --release -p loadgen -- bench --addr 127.0.0.1:$port)"
fi
