#!/usr/bin/env bash
# The report's kernel columns, for the chapter "The accept queue": the C10k rows of a
# `loadgen compare` run narrowed to what the kernel says of them (errors, the accept queue,
# listen overflows, the verdict), as docs/src/results/kernel-report-c10k.md. By default
# from a fresh run of the keep-alive, idle-clients and C10k scenarios (about five minutes;
# nothing else should run meanwhile); RESULTS=path/results.json narrows a run already made,
# such as the one behind docs/src/results/report.md (its results.json, beside it in
# target/compare after `loadgen compare`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${RESULTS:-}" ] || cargo build --release -q -p loadgen
ulimit -n 20000
# The stamp names this tree's commit only for a run this script makes: a run given in
# RESULTS was made on a commit its report does not record.
if [ -n "${RESULTS:-}" ]; then
  stamp="the run in $RESULTS (its machine and kernel in the report.md beside it; its commit not recorded), narrowed on $(nproc) cores, Linux $(uname -r)"
else
  stamp=$(scripts/stamp.sh | sed 's/^# //')
fi
if [ -z "${RESULTS:-}" ]; then
  ./target/release/loadgen compare --only keep-alive,idle-clients,c10k --out target/compare-kernel
  RESULTS=target/compare-kernel/results.json
fi
python3 - "$RESULTS" >docs/src/results/kernel-report-c10k.md <<'PY'
import json, sys

results = json.load(open(sys.argv[1]))
c10k = next(s for s in results["scenarios"] if s["id"] == "c10k")
print("| version | answered / sent | errors | accept queue (max seen / cap) | listen overflows | verdict |")
print("|---|---|---|---|---|---|")
for o in c10k["outcomes"]:
    b, listen = o["bench"], o["listen"]
    errors = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in b["errors"].items() if n) or "none"
    queue = f"{o['server']['max_accept_queue']} / {listen['cap']}"
    print(f"| {o['version']} | {b['requests']} / {b['sent']} | {errors} | {queue} "
          f"| {listen['overflows']} | {o['verdict']['text']} |")
PY
# The stamp above the table, an HTML comment: the chapter includes the file whole.
stamped=$(mktemp)
{ echo "<!-- scripts/kernel-report.sh; $stamp -->"; cat docs/src/results/kernel-report-c10k.md; } >"$stamped"
cat "$stamped" >docs/src/results/kernel-report-c10k.md
rm -f "$stamped"
echo "wrote docs/src/results/kernel-report-c10k.md from $RESULTS"
