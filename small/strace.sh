#!/usr/bin/env bash
# The socket calls page's proof: strace of a small program serving one curl, stored as
# docs/src/results/strace-small-PROGRAM.txt with the command, machine, kernel and commit
# on its first lines. Needs strace and curl. Run from anywhere:
#     small/strace.sh            # the blocking program (the page's whole trace)
#     small/strace.sh fork       # a process per connection: the parent's clone, the child's calls
#     small/strace.sh epoll      # the readiness loop: epoll_ctl and epoll_wait around each read
set -euo pipefail
cd "$(dirname "$0")/.."
program=${1:-blocking}
case "$program" in
  blocking) calls=network,read,write,close ;;
  fork) calls=network,read,write,close,clone,clone3 ;;
  epoll) calls=network,close,epoll_create1,epoll_wait,epoll_ctl ;;
  *) echo "usage: small/strace.sh [blocking|fork|epoll]" >&2; exit 2 ;;
esac
out=docs/src/results/strace-small-$program.txt
cargo build -q -p small --bin "$program"
trace=$(mktemp)
ready=$(mktemp)
trap 'rm -f "$trace" "$ready"' EXIT
# -f: every thread and child; the server's own output goes to $ready, strace's to $trace.
strace -f -e trace="$calls" -o "$trace" "target/debug/$program" 127.0.0.1:0 >"$ready" &
server=$!
for _ in $(seq 100); do grep -q listening "$ready" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$ready")
curl -s "http://$addr/hello" >/dev/null
# curl has left once it returns; the server closes the connection when it reads the end
# of the stream. Wait for that close in the trace (the descriptor accept4 returned; under
# fork, the child's as well as the parent's), then stop the server. strace blocks fatal
# signals when it runs the program with -o, so the signal goes to the program (strace's
# only child).
fd=
for _ in $(seq 100); do
  fd=$(sed -n 's/.*accept4(.*) = \([0-9][0-9]*\)$/\1/p' "$trace" | head -1)
  [ -n "$fd" ] && break
  sleep 0.1
done
want=1
[ "$program" = fork ] && want=2
for _ in $(seq 100); do
  [ "$(grep -c "close($fd) " "$trace")" -ge "$want" ] && break
  sleep 0.1
done
kill "$(pgrep -P "$server" | head -1)"
wait "$server" || true
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  echo "\$ strace -f -e trace=$calls target/debug/$program 127.0.0.1:0   # then: curl -s http://ADDR/hello   (small/strace.sh $program)"
  echo "machine: ${cpu:-unknown CPU}, $(nproc) cores; kernel $(uname -r); commit $(git rev-parse --short HEAD); $(date -u +%Y-%m-%d)"
  echo
  if [ "$program" = fork ]; then
    # Two processes: the process id is what tells the parent's lines from the child's.
    cat "$trace"
  else
    # The process id says nothing the reader needs; the lines are left as strace wrote them.
    sed -E 's/^[0-9]+ +//' "$trace"
  fi
} >"$out"
echo "wrote $out"
