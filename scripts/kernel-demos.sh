#!/usr/bin/env bash
# What the kernel does under a server, stored for the book: each kernel-demos
# demonstration's table in docs/src/results/kernel-<name>.txt, headed by the command that
# made it. Loopback only, a few seconds each. The machine is shared, so read the counts
# and ratios, not the exact microseconds. Run as root, reuseport-close also runs with
# net.ipv4.tcp_migrate_req = 1, and puts it back.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p kernel-demos
store() { # file command...
  local out=docs/src/results/$1; shift
  # Written aside first, so a failed run leaves the stored output as it was.
  { echo "\$ ${*#./target/release/}"; scripts/stamp.sh; "$@"; } > "$out.tmp"
  mv "$out.tmp" "$out"
  echo "wrote $out"
}
for demo in herd nagle time-wait reuseport-close switch; do
  store "kernel-$demo.txt" ./target/release/kernel-demo "$demo"
done
# Why, on one CPU, one of a round trip's two switches counts as involuntary: the woken
# thread preempts its waker. SCHED_BATCH does not preempt on wake-up.
if command -v chrt >/dev/null; then
  store kernel-switch-batch.txt chrt -b 0 ./target/release/kernel-demo switch
fi
