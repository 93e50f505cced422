#!/usr/bin/env bash
# The stamp every stored result carries on its first lines: the machine, the kernel and the
# commit it was made on (and whether the tree had uncommitted changes), with the load
# average, since the machine may be shared. scripts/stale-results.py reads the commit back
# to tell a result older than the code it depicts.
#
#   scripts/stamp.sh                  # the stamp line alone
#   scripts/stamp.sh scripts/x.sh 20  # "$ scripts/x.sh 20" first: the command that made it
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then echo "\$ $*"; fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //' || true)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown")
if ! git diff --quiet HEAD -- 2>/dev/null; then commit="$commit (with uncommitted changes)"; fi
echo "# machine: $(nproc) cores (${cpu:-unknown CPU}), Linux $(uname -r), commit $commit, load average $(cut -d' ' -f1-3 /proc/loadavg)"
