#!/usr/bin/env python3
"""Why a ring answers fewer slow requests than it could: compare's slow-handler scenario
(50 clients, GET /sleep?ms=100, 5 s, 2 s timeout, loadgen's closed loop) against servers
recording a trace (`--trace`), then, from each trace, how many of the handlers run in
those 5 s answered a client that had already reset (given up at its timeout): work done
for nobody, which delays every answer behind it.

A readiness loop (v5) reads a connection just before running its handlers, so a reset
that came meanwhile is seen first; a completion loop takes in its requests when it reaps,
and hears nothing new from their clients until it reaps again.

    python3 scripts/v7-slow-trace.py > docs/src/results/v7-slow-trace.txt
    ROUNDS=3 python3 scripts/v7-slow-trace.py     # each server ROUNDS times, by turns

Each server is the release build (cargo build --release -p v5-reactor-per-core
-p v7-uring-per-core -p loadgen); the traces are kept in a temporary directory.
"""
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
versus = __import__("v7-versus")  # its Server and where the release binaries are

ROUNDS = int(os.environ.get("ROUNDS", "2"))
SERVERS = [
    ("v7, early submits only submit", "v7-uring-per-core", ["--reap-early", "false"]),
    ("v7 (default: they also reap)", "v7-uring-per-core", []),
    ("v5", "v5-reactor-per-core", []),
]
RUN_US = 5_000_000


def traced(name, options, trace):
    server = versus.Server(name, [*options, "--trace", trace], False)
    try:
        out = subprocess.run(
            [versus.LOADGEN, "bench", "--addr", server.addr, "-c", "50", "--path",
             "/sleep?ms=100", "-d", "5s", "--timeout", "2s", "--json"],
            capture_output=True, text=True, check=True).stdout
    finally:
        server.stop()  # the trace is written at the shutdown
    return json.loads(out.strip().splitlines()[-1])


def read(trace):
    """Handlers started in the first 5 s, and those after which the next thing the
    connection did was to close on a reset (its answer found the client gone)."""
    with open(trace) as f:
        events = sorted((e for e in json.load(f)["traceEvents"] if e["ph"] != "M"),
                        key=lambda e: e["ts"])
    start = events[0]["ts"]
    by_conn = defaultdict(list)
    for e in events:
        if e.get("cat") in ("handle", "close") and "conn" in e.get("args", {}):
            by_conn[e["args"]["conn"]].append(e)
    handled = for_nobody = 0
    for seq in by_conn.values():
        for e, after in zip(seq, seq[1:] + [None]):
            if e["cat"] != "handle" or e["ts"] - start >= RUN_US:
                continue
            handled += 1
            if after and after["cat"] == "close" and after["args"].get("why") == "reset":
                for_nobody += 1
    reaps = sum(1 for e in events if e["name"] == "reap" and e["ts"] - start < RUN_US)
    waits = sum(1 for e in events if e.get("cat") == "wait" and e["ts"] - start < RUN_US)
    return handled, for_nobody, waits, reaps


def main():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=versus.ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"$ ROUNDS={ROUNDS} python3 scripts/v7-slow-trace.py")
    print(f"# {os.cpu_count()} cores, Linux {os.uname().release}, commit {commit}, load average "
          f"at the start {' '.join(f'{x:.2f}' for x in os.getloadavg())}; a shared machine")
    print("# each: server --trace FILE; loadgen bench -c 50 --path '/sleep?ms=100' -d 5s "
          "--timeout 2s; by turns")
    print(f"{'round':<6} {'server':<31} {'answered':>8} {'handlers':>8} {'for nobody':>10} "
          f"{'waits':>6} {'reaps':>6}")
    with tempfile.TemporaryDirectory(prefix="v7-slow-trace-") as tmp:
        for round_ in range(1, ROUNDS + 1):
            for i, (label, name, options) in enumerate(SERVERS):
                trace = os.path.join(tmp, f"{round_}-{i}.json")
                summary = traced(name, options, trace)
                handled, nobody, waits, reaps = read(trace)
                print(f"{round_:<6} {label:<31} {summary['requests']:>8} {handled:>8} "
                      f"{nobody:>10} {waits:>6} {reaps:>6}", flush=True)
    print(f"# load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("# handlers: started in the 5 s; for nobody: the connection's next event after the "
          "handler was a close on a reset (v5 reaps nothing: it reads before each handler)")


if __name__ == "__main__":
    main()
