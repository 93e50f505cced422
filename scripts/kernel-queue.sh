#!/usr/bin/env bash
# v1's accept queue filling, seen from the kernel: v1-blocking with a backlog of 16, then
# `loadgen hold` opening 200 idle connections at once (each given 3 s for its handshake).
# v1 takes one and waits on it; the kernel queues the next 17 (one past the cap) and drops
# the SYNs of the rest, which resend them a second apart (net.ipv4.tcp_syn_linear_timeouts,
# Linux 6.5 and later): sent at 0, 1 and 2 s before the 3 s deadline, three overflows each.
# `ss` and `nstat` show the same from outside (nstat's counters are namespace-wide).
set -euo pipefail
cd "$(dirname "$0")/.."
# The machine, kernel and commit first: the stored result's stamp.
scripts/stamp.sh scripts/kernel-queue.sh
cargo build --release -q -p v1-blocking -p loadgen
PORT=18481
./target/release/v1-blocking --addr 127.0.0.1:$PORT --backlog 16 >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
sleep 0.5
overflows() { awk '/^TcpExt:/ { if (!names) { for (i = 2; i <= NF; i++) n[i] = $i; names = 1 } else for (i = 2; i <= NF; i++) if (n[i] == "ListenOverflows") print $i }' /proc/net/netstat; }
before=$(overflows)
echo "\$ loadgen hold --addr 127.0.0.1:$PORT -c 200 --timeout 3s --keep 1s   # against v1-blocking --backlog 16"
./target/release/loadgen hold --addr 127.0.0.1:$PORT -c 200 --timeout 3s --keep 1s 2>/dev/null &
hold=$!
sleep 2
echo "\$ ss -ltn 'sport = :$PORT'   # while hold runs: Recv-Q is the queue, Send-Q its cap"
ss -ltn "sport = :$PORT"
wait $hold
echo "\$ awk ... ListenOverflows /proc/net/netstat   # what nstat -az TcpExtListenOverflows reads"
echo "ListenOverflows grew by $(( $(overflows) - before )) during the run"
