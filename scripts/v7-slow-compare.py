#!/usr/bin/env python3
"""Issue 36's criterion in full `compare` runs: v7's slow-handler row answers at least
0.9 times what v5's answers in the same run, and its CPU-heavy p99 is within 1.2 times
v5's. Runs `loadgen compare --only slow-handler,cpu-handler --versions
v5-reactor-per-core,v7-uring-per-core` RUNS times, plain (not under nice: the CPU-heavy
row is what a user's compare would show, on a machine as loaded as it is), and prints a
line per run from its results.json, with each version's split between its loops or rings
(compare's own reading, see loadgen's compare::split) and the load average.

    python3 scripts/v7-slow-compare.py > docs/src/results/v7-slow-compare.txt
    RUNS=8 python3 scripts/v7-slow-compare.py

Uses the release build (cargo build --release -p loadgen -p v5-reactor-per-core
-p v7-uring-per-core); each run's report is kept in a temporary directory.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(ROOT, "target", "release", "loadgen")
RUNS = int(os.environ.get("RUNS", "5"))
VERSIONS = ["v5-reactor-per-core", "v7-uring-per-core"]
ARGS = ["compare", "--only", "slow-handler,cpu-handler", "--versions", ",".join(VERSIONS)]


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def one(out):
    subprocess.run([LOADGEN, *ARGS, "--out", out], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, "results.json")) as f:
        scenarios = {s["id"]: s["outcomes"] for s in json.load(f)["scenarios"]}
    row = {}
    for name in VERSIONS:
        slow = next(o for o in scenarios["slow-handler"] if o["version"] == name)
        cpu = next(o for o in scenarios["cpu-handler"] if o["version"] == name)
        split = slow.get("split") or {}
        row[name] = (slow["bench"]["requests"], "/".join(map(str, split.get("accepted", []))),
                     cpu["bench"]["latency_us"]["p99"] / 1000, cpu["bench"]["requests"],
                     slow["cpu_ms"])
    return row


def main():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"$ RUNS={RUNS} python3 scripts/v7-slow-compare.py   # each run: loadgen "
          f"{' '.join(ARGS)}")
    print(f"# {os.cpu_count()} cores, Linux {os.uname().release}, commit {commit}; a shared "
          "machine (other sessions' builds and measurements ran meanwhile): read the ratios")
    print("# slow: requests answered in the slow-handler row; accepted: connections each loop "
          "(v5) or ring (v7) accepted in it; ms: the server's CPU time in it, all requests "
          "(the report's CPU per request is this over those answered); cpu p99 in ms and "
          "answered in the CPU-heavy row; ratios v7/v5 within the run")
    print(f"{'run':<4} {'load (1 5 15 min)':<17} {'v5 slow':>7} {'accepted':>8} {'v7 slow':>7} "
          f"{'accepted':>8} {'ratio':>6} {'>=0.9':>5} {'v5 ms':>5} {'v7 ms':>5} {'v5 p99':>7} {'v7 p99':>7} {'ratio':>6} "
          f"{'<=1.2':>5} {'v5 cpu':>6} {'v7 cpu':>6}")
    slow_ratios, p99_ratios = [], []
    with tempfile.TemporaryDirectory(prefix="v7-slow-compare-") as tmp:
        for run in range(1, RUNS + 1):
            at = load()
            row = one(os.path.join(tmp, str(run)))
            (s5, a5, p5, c5, m5), (s7, a7, p7, c7, m7) = row[VERSIONS[0]], row[VERSIONS[1]]
            slow_ratio, p99_ratio = s7 / max(s5, 1), p7 / p5
            slow_ratios.append(slow_ratio)
            p99_ratios.append(p99_ratio)
            print(f"{run:<4} {at:<17} {s5:>7} {a5:>8} {s7:>7} {a7:>8} {slow_ratio:>6.2f} "
                  f"{'yes' if slow_ratio >= 0.9 else 'no':>5} {m5:>5} {m7:>5} {p5:>7.1f} {p7:>7.1f} "
                  f"{p99_ratio:>6.2f} {'yes' if p99_ratio <= 1.2 else 'no':>5} {c5:>6} {c7:>6}",
                  flush=True)
    print(f"# slow-handler ratio >= 0.9 in {sum(r >= 0.9 for r in slow_ratios)} of {RUNS} runs "
          f"(median {statistics.median(slow_ratios):.2f}); CPU-heavy p99 ratio <= 1.2 in "
          f"{sum(r <= 1.2 for r in p99_ratios)} of {RUNS} (median "
          f"{statistics.median(p99_ratios):.2f}); load average at the end {load()}")


if __name__ == "__main__":
    main()
