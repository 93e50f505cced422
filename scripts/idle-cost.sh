#!/usr/bin/env bash
# What an idle connection costs the event-loop versions: in user space, each server's RSS
# before and with 10,000 idle connections held by scripts/hold-idle.py, divided by 10,000,
# and its thread count; in the kernel, which RSS does not count, the growth of the slab
# caches (socket, inode, file, epoll entry...) per connection, from /proc/slabinfo (root
# only). On loopback both ends of a connection are sockets of this one kernel, so the
# kernel figure counts two sockets per connection, the client's and the server's.
# v4-syscalls on io_uring and v7 are there for what a receive costs while nothing arrives:
# a 4 KiB buffer per connection submitted with its receive (v4-syscalls), or none until
# bytes come (v7's provided buffers; its kernel side is the multishot receive it keeps).
#
#   scripts/idle-cost.sh          # IDLE=1000 for a smaller run
set -euo pipefail
cd "$(dirname "$0")/.."
# The command and the machine, kernel and commit first: the stored result's stamp.
scripts/stamp.sh scripts/idle-cost.sh "$@"
IDLE=${IDLE:-10000}
[ "$(ulimit -n)" -gt $((IDLE + 100)) ] || ulimit -n $((IDLE * 2 + 100))
cargo build --release -q -p v4-nio -p v4-syscalls -p v5-reactor-per-core -p v6-async -p v7-uring-per-core
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for subject in v4-nio "v4-syscalls --api io-uring" v5-reactor-per-core v6-async v7-uring-per-core; do
  read -r version options <<<"$subject"
  # shellcheck disable=SC2086 # the options are words
  ./target/release/$version --addr 127.0.0.1:18590 $options >/dev/null 2>&1 &
  server=$!
  sleep 0.5
  rss() { awk '/^VmRSS/ {print $2}' /proc/$server/status; }
  # Active objects times their size, per cache (allocated-but-free objects would count
  # what an earlier subject freed and the cache kept).
  caches() { awk 'NR > 2 {print $1, $2 * $4}' /proc/slabinfo 2>/dev/null | sort; }
  before=$(rss)
  caches >"$work/before"
  coproc holder { python3 scripts/hold-idle.py 127.0.0.1:18590 "$IDLE"; }
  holder_pid=$holder_PID
  read -r _ <&"${holder[0]}"
  sleep 1
  after=$(rss)
  caches >"$work/after"
  slab_growth=$(join "$work/before" "$work/after" | awk '{s += $3 - $2} END {print s + 0}')
  printf '%-27s RSS %6d kB idle, %7d kB with %d idle connections: %5d bytes each; threads %s; kernel slabs %5d bytes per connection (both ends)\n' \
    "$subject" "$before" "$after" "$IDLE" $(( (after - before) * 1024 / IDLE )) \
    "$(awk '/^Threads/ {print $2}' /proc/$server/status)" $(( slab_growth / IDLE ))
  # The caches that grew by 40 bytes or more per connection: where the kernel's share goes.
  join "$work/before" "$work/after" |
    awk -v n="$IDLE" '($3 - $2) / n >= 40 {printf "%s %d, ", $1, ($3 - $2) / n}' |
    sed 's/, $//; s/^/    by cache (bytes per connection): /; s/$/\n/'
  kill $holder_pid $server; wait $server 2>/dev/null || true
done
