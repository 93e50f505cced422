#!/usr/bin/env python3
"""How `SO_REUSEPORT` splits compare's slow-handler clients between the loops (v5) or
rings (v7), and what each loop or ring answers: compare's scenario (50 clients,
GET /sleep?ms=100, 5 s, 2 s timeout, loadgen's closed loop) against servers recording a
trace (`--trace`), by turns.

A loop runs one 100 ms handler at a time, so a request that finds k requests ahead of it
on its loop is answered after about (k + 1) x 100 ms: a loop holding more than 20 waiting
clients cannot answer the ones at the back within the 2 s timeout. With 50 clients on two
loops the even split (25 and 25) is past that edge on both, and an uneven one (say 18
and 32) leaves one loop under it: which of the two a run gets is the kernel's hash of
each client's port, drawn again at every reconnect after a timeout.

    python3 scripts/v7-slow-split.py > docs/src/results/v7-slow-split.txt
    ROUNDS=8 python3 scripts/v7-slow-split.py     # each server ROUNDS times, by turns

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
slow = __import__("v7-slow-trace")  # the bench run against a traced server

ROUNDS = int(os.environ.get("ROUNDS", "6"))
SERVERS = [("v5", "v5-reactor-per-core"), ("v7", "v7-uring-per-core")]
CLIENTS = 50
RUN_US = 5_000_000
# A reset the answer itself met closes the connection as the send fails, within a few
# milliseconds of the handler's end; half a handler is a generous bound.
MET_US = 50_000


def per_loop(trace):
    """Each loop's (thread's) figures over the 5 s: the clients it was dealt at the start
    (the first 50 accepts), connections accepted later (reconnects after a timeout),
    handlers started, handlers whose client had reset (the connection's next event was a
    close on a reset, met by the answer: within [`MET_US`] of the handler's end; a reset
    met later is that of the client's next request, or the load generator's at the end),
    and so answered (the difference)."""
    with open(trace) as f:
        events = sorted((e for e in json.load(f)["traceEvents"] if e["ph"] != "M"),
                        key=lambda e: e["ts"])
    start = events[0]["ts"]
    accepts = [e for e in events if e.get("cat") == "accept"]
    loops = sorted({e["tid"] for e in events if e.get("cat") == "handle"} |
                   {e["tid"] for e in accepts})
    figures = {tid: defaultdict(int) for tid in loops}
    for i, e in enumerate(accepts):
        if e["ts"] - start < RUN_US:
            figures[e["tid"]]["dealt" if i < CLIENTS else "later"] += 1
    by_conn = defaultdict(list)
    for e in events:
        if e.get("cat") in ("handle", "close") and "conn" in e.get("args", {}):
            by_conn[(e["tid"], e["args"]["conn"])].append(e)
    for (tid, _), seq in by_conn.items():
        for e, after in zip(seq, seq[1:] + [None]):
            if e["cat"] != "handle" or e["ts"] - start >= RUN_US:
                continue
            figures[tid]["handlers"] += 1
            if (after and after["cat"] == "close" and after["args"].get("why") == "reset"
                    and after["ts"] - (e["ts"] + e["dur"]) < MET_US):
                figures[tid]["nobody"] += 1
    return [figures[tid] for tid in loops]


def main():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=versus.ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"$ ROUNDS={ROUNDS} python3 scripts/v7-slow-split.py")
    print(f"# {os.cpu_count()} cores, Linux {os.uname().release}, commit {commit}, load average "
          f"at the start {' '.join(f'{x:.2f}' for x in os.getloadavg())}; a shared machine")
    print("# each: server --trace FILE; loadgen bench -c 50 --path '/sleep?ms=100' -d 5s "
          "--timeout 2s; by turns")
    print("# per loop (ring), as dealt/later/handlers/nobody/answered: clients dealt at the "
          "start, connections accepted later, handlers started in the 5 s, of them for a "
          "client that had reset, answered (handlers - nobody)")
    print("# answered: as the load generator counted; by trace: the loops' answered summed "
          "(a check of the trace's reading)")
    print(f"{'round':<6} {'server':<7} {'answered':>8} {'by trace':>8} {'split':>7}  per loop")
    with tempfile.TemporaryDirectory(prefix="v7-slow-split-") as tmp:
        for round_ in range(1, ROUNDS + 1):
            for i, (label, name) in enumerate(SERVERS):
                trace = os.path.join(tmp, f"{round_}-{i}.json")
                summary = slow.traced(name, [], trace)
                loops = per_loop(trace)
                split = "/".join(str(f["dealt"]) for f in loops)
                detail = "  ".join(
                    f"{f['dealt']}/{f['later']}/{f['handlers']}/{f['nobody']}/"
                    f"{f['handlers'] - f['nobody']}" for f in loops)
                by_trace = sum(f["handlers"] - f["nobody"] for f in loops)
                print(f"{round_:<6} {label:<7} {summary['requests']:>8} {by_trace:>8} {split:>7}  "
                      f"{detail}", flush=True)
    print(f"# load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
