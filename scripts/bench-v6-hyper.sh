#!/usr/bin/env bash
# v6-async against hyper (peers/hyper: what a Rust user would build the same design with),
# keep-alive GET /hello with wrk, interleaved in one run so the machine's noise falls on
# both alike. For each: requests per second, the server's own CPU time per request (user +
# system of all its threads, from /proc/<pid>/stat, over the measured window), and a
# census of its system calls per request (counted by perf in the kernel when it can,
# else by strace, which distorts what it counts; see below).
#
#   scripts/bench-v6-hyper.sh                       # 64 and 1,000 connections, 3 rounds of 5 s
#   OLD_V6=/path/to/older/v6-async scripts/bench-v6-hyper.sh   # and an older v6 beside them
#
# Needs wrk (apt-get install wrk); the census needs linux-perf (or, less exact, strace).
# Read the ratios, not the absolute numbers: wrk and the servers share the machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-"64 1000"}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p v6-async -p peer-hyper

pids=() names=() urls=()
trap 'kill "${pids[@]}" 2>/dev/null; true' EXIT
start() { # name port command...
  local name=$1 port=$2; shift 2
  "$@" --addr "127.0.0.1:$port" >/dev/null 2>&1 &
  pids+=($!) names+=("$name") urls+=("http://127.0.0.1:$port/hello")
}
start v6-async 18288 ./target/release/v6-async
start peer-hyper 18290 ./target/release/peer-hyper
if [ -n "${OLD_V6:-}" ]; then start "v6-async (before)" 18289 "$OLD_V6"; fi
for url in "${urls[@]}"; do
  for _ in $(seq 50); do curl -sf "$url" >/dev/null && break; sleep 0.1; done
  curl -sf "$url" >/dev/null || { echo "no answer from $url" >&2; exit 1; }
done

ticks() { # CPU time of process $1 so far, all threads, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)

echo "machine: $(nproc) cores, $(uname -r); wrk -t1 shares them with the servers; $ROUNDS rounds of $DURATION, interleaved"
scripts/stamp.sh
for c in $CONNECTIONS; do
  declare -A req=() cpu=() secs=()
  for _ in $(seq "$ROUNDS"); do
    for i in "${!names[@]}"; do
      before=$(ticks "${pids[$i]}")
      out=$(wrk -t1 -c"$c" -d"$DURATION" "${urls[$i]}")
      after=$(ticks "${pids[$i]}")
      n=$(awk '/requests in/ {print $1}' <<<"$out")
      t=$(awk '/requests in/ {sub(/s,$/, "", $4); print $4}' <<<"$out")
      req[$i]=$(( ${req[$i]:-0} + n ))
      cpu[$i]=$(( ${cpu[$i]:-0} + after - before ))
      secs[$i]=$(awk -v a="${secs[$i]:-0}" -v b="$t" 'BEGIN {print a + b}')
    done
  done
  echo
  echo "keep-alive GET /hello, $c connections (sums over $ROUNDS rounds)"
  printf '  %-20s %12s %16s\n' server "req/s" "CPU µs/request"
  for i in "${!names[@]}"; do
    printf '  %-20s %12.0f %16.2f\n' "${names[$i]}" \
      "$(awk -v n="${req[$i]}" -v s="${secs[$i]}" 'BEGIN {print n / s}')" \
      "$(awk -v c="${cpu[$i]}" -v n="${req[$i]}" -v hz="$hz" 'BEGIN {print c * 1e6 / hz / n}')"
  done
  printf '  v6 / hyper, req/s:   %12.2f\n' \
    "$(awk -v a="${req[0]}" -v sa="${secs[0]}" -v b="${req[1]}" -v sb="${secs[1]}" 'BEGIN {print (a / sa) / (b / sb)}')"
  unset req cpu secs
done

# The census: every system call the server's threads make while wrk runs, per request.
# perf counts them in the kernel (the syscalls tracepoints), which barely slows the
# server; strace stops it at every call, so much that the next request is usually there
# before a read that would have found nothing, which hides exactly the extra reads this
# census is for. strace is the fallback, said as such.
census() { # pid name url connections
  local log; log=$(mktemp)
  if [ "$census_tool" = perf ]; then
    perf stat -x, -e 'syscalls:sys_enter_*' -p "$1" -o "$log" -- sleep 4 &
  else
    strace -c -f -p "$1" -o "$log" 2>/dev/null &
  fi
  local tracer=$!
  sleep 0.5 # attached to every thread before the load starts
  local n; n=$(wrk -t1 -c"$4" -d3s "$3" | awk '/requests in/ {print $1}')
  if [ "$census_tool" = perf ]; then wait "$tracer"; else kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true; fi
  awk -v n="$n" -v name="$2" -v tool="$census_tool" '
    tool == "perf" { split($0, f, ","); if (f[1] + 0 > 0) { sub("syscalls:sys_enter_", "", f[3]); calls[f[3]] = f[1]; total += f[1] } }
    tool == "strace" && $NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { calls[$NF] = $4; total += $4 }
    END {
      printf "  %-20s %6.2f in all (%d requests):", name, total / n, n
      for (c in calls) if (calls[c] / n >= 0.01) printf " %s %.2f", c, calls[c] / n
      printf "\n"
    }' "$log"
  rm -f "$log"
}
if perf stat -e syscalls:sys_enter_recvfrom true >/dev/null 2>&1; then
  census_tool=perf
elif command -v strace >/dev/null; then
  census_tool=strace
else
  echo; echo "(no system-call census: install linux-perf, or strace, to count them)"
  exit 0
fi
for c in ${CENSUS_CONNECTIONS:-1 16 64}; do
  echo
  echo "system calls per request, keep-alive GET /hello, wrk -t1 -c$c -d3s, counted by $census_tool"
  for i in "${!names[@]}"; do
    census "${pids[$i]}" "${names[$i]}" "${urls[$i]}" "$c"
  done
done
