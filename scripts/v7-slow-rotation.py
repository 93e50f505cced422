#!/usr/bin/env python3
"""The edge in compare's slow-handler scenario, handler by handler: v7 against 50 clients
asking GET /sleep?ms=100 (5 s, 2 s timeout, loadgen's closed loop) with `--trace`, and
for each ring every handler started in the 5 s: when, for which connection, how long its
request had waited since the ring took it in (the receive's completion, reaped at the
latest after the handler before), and whether its answer found the client gone.

A ring serving n clients in turn answers each n x 100 ms after its last answer: with 19
in the rotation every answer comes at 1.9 s, within the timeout; with 20, at 2.0 s, a few
milliseconds past it, every one. (v5 records no arrival time: it reads a request just
before its handler, so its trace cannot show the wait.)

    python3 scripts/v7-slow-rotation.py > docs/src/results/v7-slow-rotation.txt
    TRIES=10 python3 scripts/v7-slow-rotation.py   # until a ring had 15 handlers for nobody

Uses the release build (cargo build --release -p loadgen -p v7-uring-per-core).
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
versus = __import__("v7-versus")
slow = __import__("v7-slow-trace")
split = __import__("v7-slow-split")

TRIES = int(os.environ.get("TRIES", "10"))
# A run is kept when a ring ran this many handlers for nobody: one that hit the edge.
EDGE_SEEN = 15


def handlers(trace):
    """Per thread: (start ms, connection, waited ms, for nobody) of each handler."""
    with open(trace) as f:
        document = json.load(f)
    names = {e["tid"]: e["args"]["name"] for e in document["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    events = sorted((e for e in document["traceEvents"] if e["ph"] != "M"),
                    key=lambda e: e["ts"])
    start = events[0]["ts"]
    rows = {name: [] for name in sorted(names.values())}
    for tid, name in names.items():
        mine = [e for e in events if e["tid"] == tid and "conn" in e.get("args", {})]
        taken_in = {}
        for i, e in enumerate(mine):
            conn = e["args"]["conn"]
            if e.get("cat") == "read":
                taken_in[conn] = e["ts"]
            if e.get("cat") != "handle" or e["ts"] - start >= split.RUN_US:
                continue
            after = next((x for x in mine[i + 1:] if x["args"]["conn"] == conn
                          and x.get("cat") in ("handle", "close")), None)
            nobody = bool(after and after["cat"] == "close"
                          and after["args"].get("why") == "reset"
                          and after["ts"] - (e["ts"] + e["dur"]) < split.MET_US)
            waited = (e["ts"] - taken_in.get(conn, e["ts"])) / 1000
            rows[name].append(((e["ts"] - start) / 1000, conn, waited, nobody))
    return rows


def main():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=versus.ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"$ TRIES={TRIES} python3 scripts/v7-slow-rotation.py")
    print(f"# {os.cpu_count()} cores, Linux {os.uname().release}, commit {commit}, load average "
          f"at the start {' '.join(f'{x:.2f}' for x in os.getloadavg())}; a shared machine")
    print("# v7-uring-per-core --trace; loadgen bench -c 50 --path '/sleep?ms=100' -d 5s "
          f"--timeout 2s; the first of up to {TRIES} runs in which a ring ran {EDGE_SEEN} or "
          "more handlers for nobody")
    with tempfile.TemporaryDirectory(prefix="v7-slow-rotation-") as tmp:
        for attempt in range(1, TRIES + 1):
            trace = os.path.join(tmp, f"{attempt}.json")
            summary = slow.traced("v7-uring-per-core", [], trace)
            rows = handlers(trace)
            worst = max(sum(r[3] for r in ring) for ring in rows.values())
            print(f"# run {attempt}: answered {summary['requests']}, most handlers for nobody "
                  f"on a ring {worst}", flush=True)
            if worst >= EDGE_SEEN:
                break
    print("# per ring: handler start (ms into the run), connection, its request's wait "
          "before the handler (ms), and `gone` when the answer met the client's reset")
    for name, ring in rows.items():
        print(f"{name}:")
        for at, conn, waited, nobody in ring:
            print(f"  {at:7.0f} {conn:>4} {waited:7.0f}  {'gone' if nobody else ''}".rstrip())
    print(f"# load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
