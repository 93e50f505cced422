#!/usr/bin/env bash
# What an idle connection costs the event-loop versions: in user space, each server's RSS
# before and with 10,000 idle connections held by scripts/hold-idle.py, divided by 10,000,
# and its thread count; in the kernel, which RSS does not count, the growth of the slab
# caches (socket, inode, file, epoll entry...) per connection, from /proc/slabinfo (root
# only). On loopback both ends of a connection are sockets of this one kernel, so the
# kernel figure counts two sockets per connection, the client's and the server's.
#
#   scripts/idle-cost.sh          # IDLE=1000 for a smaller run
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${IDLE:-10000}
[ "$(ulimit -n)" -gt $((IDLE + 100)) ] || ulimit -n $((IDLE * 2 + 100))
cargo build --release -q -p v4-nio -p v5-reactor-per-core -p v6-async
for version in v4-nio v5-reactor-per-core v6-async; do
  ./target/release/$version --addr 127.0.0.1:18590 >/dev/null 2>&1 &
  server=$!
  sleep 0.5
  rss() { awk '/^VmRSS/ {print $2}' /proc/$server/status; }
  slab() { awk 'NR > 2 {s += $3 * $4} END {print s + 0}' /proc/slabinfo 2>/dev/null || echo 0; }
  before=$(rss)
  slab_before=$(slab)
  coproc holder { python3 scripts/hold-idle.py 127.0.0.1:18590 "$IDLE"; }
  holder_pid=$holder_PID
  read -r _ <&"${holder[0]}"
  sleep 1
  after=$(rss)
  slab_after=$(slab)
  printf '%-22s RSS %6d kB idle, %7d kB with %d idle connections: %5d bytes each; threads %s; kernel slabs %5d bytes per connection (both ends)\n' \
    "$version" "$before" "$after" "$IDLE" $(( (after - before) * 1024 / IDLE )) \
    "$(awk '/^Threads/ {print $2}' /proc/$server/status)" $(( (slab_after - slab_before) / IDLE ))
  kill $holder_pid $server; wait $server 2>/dev/null || true
done
