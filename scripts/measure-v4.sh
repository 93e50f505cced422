#!/usr/bin/env bash
# Measures v4-nio against the targets of its issue, with wrk and a Python holder of idle
# connections: what 10,000 idle connections cost (RSS, threads, a new client's wait),
# keep-alive throughput with and without them, and pipelining 16 deep.
#
#   scripts/measure-v4.sh            # needs wrk (apt-get install wrk) and python3
#
# Each throughput is measured twice, alternating, because a shared machine is noisy;
# compare the ratios, not the absolute numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE=${IDLE:-10000}
DURATION=${DURATION:-5s}
PORT=${PORT:-18085}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ "$(ulimit -n)" -gt $((IDLE + 100)) ] || ulimit -n $((IDLE * 2 + 100))

cargo build --release -q -p v4-nio
./target/release/v4-nio --addr 127.0.0.1:$PORT >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; [ -n "${holder_pid:-}" ] && kill $holder_pid 2>/dev/null; true' EXIT
sleep 0.5
url=http://127.0.0.1:$PORT/hello
status() { awk -v f="$1" '$1 == f":" {print $2}' /proc/$server/status; }
mib() { awk "BEGIN {printf \"%.1f\", $1 / 1024}"; }
rps() { wrk "$@" | awk '/Requests\/sec/ {print $2}'; }
pipeline=$(mktemp --suffix=.lua)
cat >"$pipeline" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/hello") end
  req = table.concat(r)
end
request = function() return req end
LUA

echo "machine: $(nproc) cores; wrk -t1 (one thread) shares them with the server"
scripts/stamp.sh
curl -s $url >/dev/null
rss0=$(status VmRSS); threads0=$(status Threads)

base1=$(rps -t1 -c64 -d"$DURATION" $url)
piped=$(rps -t1 -c64 -d"$DURATION" -s "$pipeline" $url)

coproc holder { python3 scripts/hold-idle.py 127.0.0.1:$PORT "$IDLE"; }
holder_pid=$holder_PID
read -r line <&"${holder[0]}"
echo "$line idle connections"
sleep 1
rss1=$(status VmRSS); threads1=$(status Threads)
active=$(curl -s http://127.0.0.1:$PORT/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"]["active"])')
wait_ms=$(curl -s -o /dev/null -w '%{time_total}' $url | awk '{printf "%.1f", $1 * 1000}')
idle1=$(rps -t1 -c64 -d"$DURATION" $url)
kill $holder_pid; wait $holder_pid 2>/dev/null || true; holder_pid=
sleep 1
base2=$(rps -t1 -c64 -d"$DURATION" $url)
coproc holder { python3 scripts/hold-idle.py 127.0.0.1:$PORT "$IDLE"; }
holder_pid=$holder_PID
read -r line <&"${holder[0]}"
idle2=$(rps -t1 -c64 -d"$DURATION" $url)

echo
echo "idle connections:   $IDLE (the server counted $active open, /stats's own included)"
echo "RSS:                $(mib "$rss0") MiB -> $(mib "$rss1") MiB (+$(mib $((rss1 - rss0))) MiB)"
echo "threads:            $threads0 -> $threads1"
echo "new client's /hello with them open: ${wait_ms} ms"
echo "keep-alive /hello, 64 connections (req/s):"
echo "  no idle:          $base1, $base2"
echo "  $IDLE idle:      $idle1, $idle2"
echo "  ratio (idle/none): $(awk "BEGIN {printf \"%.2f\", ($idle1 + $idle2) / ($base1 + $base2)}")"
echo "pipelined 16 deep:  $piped req/s, $(awk "BEGIN {printf \"%.1f\", $piped / $base1}")x the non-pipelined run"
