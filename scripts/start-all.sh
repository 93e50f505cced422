#!/usr/bin/env bash
# Starts every version of the registry (registry/src/lib.rs) on its default port
# (v4-syscalls on epoll) for playing by hand, and stops them all on Ctrl-C. Logs go to
# target/logs/<version>.log.
#
#   scripts/start-all.sh            # then, in another terminal: scripts/try.sh 8084
set -euo pipefail
cd "$(dirname "$0")/.."

# `registry` prints each version as `name address`.
versions=()
while read -r name _; do versions+=("$name"); done < <(cargo run -q --release -p registry)
cargo build --release -q $(printf -- '-p %s ' "${versions[@]}")
mkdir -p target/logs
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; echo; echo stopped.' EXIT INT TERM
for v in "${versions[@]}"; do
  # stdout carries the "listening on" line; the log carries everything else.
  ./target/release/"$v" 2>target/logs/"$v".log &
  pids+=($!)
done
sleep 0.5
echo
cargo run -q --release -p registry | sed 's/^/  /'
echo "Try: curl -v http://127.0.0.1:8081/hello   or   nc 127.0.0.1 8084, then type GET /hello"
echo "     scripts/try.sh <port>   runs curl, nc and (if installed) wrk against one of them"
echo "Ctrl-C stops them all."
wait
