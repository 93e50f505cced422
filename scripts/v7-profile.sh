#!/usr/bin/env bash
# Where one loop spends its time per request: v4-syscalls' loop on epoll and on io_uring (the
# naive io_uring loop: a single-shot receive into each connection's own buffer, re-armed by
# hand), v7's ring (multishot, provided buffers, batching) and v5's loop, each alone on CPU 1
# with one thread, driven by wrk (1 thread, 64 keep-alive connections) alone on CPU 0.
#
# For each: requests answered and server CPU per request in a 4 s window (from /stats and
# /proc); io_uring's own tracepoints per request (a receive that found no data and had to
# arm a poll, task work runs, waits); then `perf record` over another 4 s: the samples by
# where they fell (user space; io_uring's or epoll's own code; system-call entry and exit,
# and the return to user space that runs deferred work; the rest of the kernel, mostly TCP),
# each share turned into µs per request, and the functions with at least 1.5% of samples.
#
# On a shared machine a 4 s window's CPU per request moves by a fifth from one run to the
# next; the tracepoint counts and the shares of the samples move far less. ROUNDS (2)
# repeats the whole set, the servers by turns.
#
#   scripts/v7-profile.sh        # root (the tracepoint counts need tracefs); apt-get install linux-perf wrk
#   SUBJECTS="v7-uring-per-core --rings 1;v7-uring-per-core --rings 1 --direct-descriptors true" \
#     scripts/v7-profile.sh      # other servers or switches, separated by ';'
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p v4-syscalls -p v5-reactor-per-core -p v7-uring-per-core
work=$(mktemp -d)
server=
trap 'kill $server 2>/dev/null; rm -rf "$work"; true' EXIT

requests() { curl -s "http://$1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

echo "$ scripts/v7-profile.sh   # on $(uname -r), $(nproc) cores"
scripts/stamp.sh
default="v4-syscalls --api epoll;v4-syscalls --api io-uring;v7-uring-per-core --rings 1;v5-reactor-per-core --loops 1"
IFS=';' read -r -a subjects <<<"${SUBJECTS:-$default}"
for round in $(seq "${ROUNDS:-2}"); do
for subject in "${subjects[@]}"; do
  read -r binary options <<<"$subject"
  # shellcheck disable=SC2086 # the options are words
  taskset -c 1 ./target/release/$binary --addr 127.0.0.1:0 $options >"$work/out" 2>/dev/null &
  server=$!
  until grep -q "listening on" "$work/out" 2>/dev/null; do sleep 0.05; done
  addr=$(sed -n 's/.*listening on //p' "$work/out" | head -1)
  taskset -c 0 wrk -t1 -c64 -d11s "http://$addr/hello" >/dev/null &
  load=$!
  sleep 1 # wrk's connections open and the loop warms up
  r0=$(requests "$addr") c0=$(cpu_ticks $server)
  perf stat -x, -e 'io_uring:io_uring_submit_req,io_uring:io_uring_poll_arm,io_uring:io_uring_task_work_run,io_uring:io_uring_local_work_run,io_uring:io_uring_cqring_wait,io_uring:io_uring_complete' \
    -p $server -o "$work/stat" -- sleep 4
  r1=$(requests "$addr") c1=$(cpu_ticks $server)
  perf record -q -g -o "$work/perf.data" -p $server -- sleep 4 2>/dev/null
  wait $load
  kill $server; wait $server 2>/dev/null || true
  n=$((r1 - r0))
  echo
  echo "== round $round, $subject: $n requests in 4 s, $(python3 -c "print(f'{($c1 - $c0) / $hz * 1e6 / $n:.1f}')") µs of server CPU per request"
  awk -F, -v n=$n '$1 ~ /^[0-9]+$/ && $1 > 0 {sub("io_uring:io_uring_", "", $3); printf "  %-16s %6.2f per request\n", $3, $1 / n}' "$work/stat"
  perf report -i "$work/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9]' >"$work/symbols"
  python3 scripts/profile-categories.py "$work/symbols" \
    "$(python3 -c "print(($c1 - $c0) / $hz * 1e6 / $n)")"
  awk '$1 + 0 >= 1.5' "$work/symbols" | sed 's/^ */  /'
done
done
