#!/usr/bin/env bash
# The report's kernel columns, for the chapter "What the kernel sees": the keep-alive,
# idle-clients and C10k scenarios of `loadgen compare`, stored whole as
# docs/src/results/kernel-report.md, and the C10k rows narrowed to what the kernel says of
# them (errors, the accept queue, listen overflows, the verdict) as kernel-report-c10k.md.
# About five minutes; nothing else should run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p loadgen
ulimit -n 20000
if [ "${SKIP_RUN:-}" != 1 ]; then
  ./target/release/loadgen compare --only keep-alive,idle-clients,c10k --out target/compare-kernel
fi
cp target/compare-kernel/report.md docs/src/results/kernel-report.md
python3 - target/compare-kernel/results.json >docs/src/results/kernel-report-c10k.md <<'PY'
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
echo "wrote docs/src/results/kernel-report.md and kernel-report-c10k.md"
