#!/usr/bin/env bash
# What a thread per connection costs v2-thread-per-conn, with IDLE idle connections held
# by scripts/hold-idle.py: address space reserved (VmSize: each thread's stack is
# reserved whole), memory resident (VmRSS: only the stack pages touched), and the kernel
# stacks, which no process's RSS shows (KernelStack in /proc/meminfo, machine-wide).
#
#   scripts/thread-cost.sh          # IDLE=1000 for a smaller run
set -euo pipefail
cd "$(dirname "$0")/.."
# The command and the machine, kernel and commit first: the stored result's stamp.
scripts/stamp.sh scripts/thread-cost.sh "$@"
IDLE=${IDLE:-5000}
[ "$(ulimit -n)" -gt $((IDLE + 100)) ] || ulimit -n $((IDLE * 2 + 100))
cargo build --release -q -p v2-thread-per-conn
./target/release/v2-thread-per-conn --addr 127.0.0.1:18591 --idle-timeout 600 >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
sleep 0.5
field() { awk -v f="$1:" '$1 == f {print $2}' "$2"; }
show() { # label
  printf '%-28s threads %6s  VmSize %9s kB  VmRSS %7s kB  KernelStack (machine) %7s kB\n' "$1" \
    "$(field Threads /proc/$server/status)" "$(field VmSize /proc/$server/status)" \
    "$(field VmRSS /proc/$server/status)" "$(field KernelStack /proc/meminfo)"
}
echo "ulimit -s (the main thread's stack): $(ulimit -s) kB; Rust spawns threads with 2 MiB stacks"
show "at rest"
coproc holder { python3 scripts/hold-idle.py 127.0.0.1:18591 "$IDLE"; }
read -r _ <&"${holder[0]}"
sleep 1
show "with $IDLE idle connections"
kill $holder_PID
