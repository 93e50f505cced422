#!/usr/bin/env bash
# The chapters' pictures: every version of the registry (or those named) run by
# `loadgen timeline --version` under the teaching workload (half a second: four keep-alive
# /hello clients, one /sleep?ms=50, one idle connection, a newcomer at 250 ms), each with
# its picture's options (v3 with a pool of four, the others with their chapter's), drawn to
# docs/src/results/timeline-<version>.svg. What each run printed goes to
# docs/src/results/timelines.txt, after the command, the machine, its kernel, the commit
# and the load average (the machine may be shared: the pictures' shapes are the lesson,
# their microseconds are this machine's at that moment).
#
#     cargo build --release -p loadgen -p registry
#     scripts/timelines.sh                          # every version, about half a minute
#     scripts/timelines.sh v3-thread-pool v4-nio    # some (timelines.txt holds only those)
set -euo pipefail
cd "$(dirname "$0")/.."
results=docs/src/results
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  # `registry` prints each version as `name address`.
  while read -r name _; do versions+=("$name"); done < <(cargo run -q --release -p registry)
fi
cargo build -q --release -p loadgen
stored=$results/timelines.txt
{
  echo "\$ scripts/timelines.sh${*:+ $*}"
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
  echo "machine: ${cpu:-unknown CPU}, $(nproc) cores; kernel $(uname -r); commit $(git rev-parse --short HEAD)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: shapes, not microseconds)"
} >"$stored"
for version in "${versions[@]}"; do
  out=$results/timeline-$version.svg
  {
    echo
    echo "\$ loadgen timeline --version $version --out $out"
    ./target/release/loadgen timeline --version "$version" --out "$out" 2>/dev/null
  } >>"$stored" || echo "$version: no picture, see $stored"
  echo "$version: $out"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$stored"
echo "what each run printed: $stored"
