#!/usr/bin/env bash
# The book's sequence diagrams, regenerated from measured times: each demonstration runs
# once with a clock on every side and draws docs/src/results/seq-<name>.svg; the times it
# measured go beside it in docs/src/results/seq-<name>.txt, headed by the command, the
# machine, the kernel and the commit. Loopback only; about 10 s in all (the SYN retries
# take 3 s, the lingering close's silent client 2 s). The machine is shared, so read the
# order of events and the long gaps (seconds, tens of ms), not the microseconds.
#
#   scripts/sequences.sh            # every diagram
#   scripts/sequences.sh nagle      # one: syn-retries nagle time-wait linger-close
#                                   #      omission uring handoff
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p kernel-demos -p v4-nio
demos=(syn-retries nagle time-wait linger-close omission uring handoff)
[ $# -gt 0 ] && demos=("$@")
machine="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), Linux $(uname -r), commit $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for demo in "${demos[@]}"; do
  svg=docs/src/results/seq-$demo.svg
  txt=docs/src/results/seq-$demo.txt
  args=("$demo" --sequence "$svg.tmp")
  [ "$demo" = handoff ] && args+=(--server ./target/release/v4-nio)
  # Written aside first, so a failed run leaves the stored diagram as it was.
  {
    echo "\$ kernel-demo ${args[*]/%$svg.tmp/$svg}"
    echo "# $machine"
    echo
    nice -n 10 ./target/release/kernel-demo "${args[@]}"
  } > "$txt.tmp"
  mv "$svg.tmp" "$svg"
  mv "$txt.tmp" "$txt"
  echo "wrote $svg and $txt"
done
