#!/usr/bin/env python3
"""Why a v7 ring dealt fewer than 20 of compare's slow-handler clients answered fewer of its
handlers than a v5 loop dealt as many: compare's scenario (50 clients, GET /sleep?ms=100,
5 s, 2 s timeout, loadgen's closed loop) against servers recording a trace (`--trace`), by
turns: v5, v7 as built at earlier commits (`EARLIER`) and v7 as built now.

A loop (ring) answers one 100 ms handler at a time, so with n clients in its rotation each
answer comes n x 100 ms after the one before: 19 is in time, 20 is not (the 20-client
edge). A loop under the edge answers every handler it runs, unless something adds to its
rotation: clients of the other loop that timed out and reconnected here (`later`), or a
connection served twice in one round of the others. This counts both, per loop:

- dealt, later: the clients it was dealt at the start (the first 50 accepts), and the
  connections it accepted later (reconnects after a timeout);
- served: of those later ones, how many had a handler run at all (the rest reset first);
- handlers, nobody, answered: handlers started in the 5 s, of them for a client that had
  reset (its answer met the reset, as `scripts/v7-slow-split.py` counts), and the rest;
- twice: handlers that served a connection again while another connection of the same
  loop had been waiting since before that connection's previous handler ended (a closed-
  loop client sends its next request as its answer arrives, so that one's request came
  first): a request served ahead of an older one. A first-come order has none.

    EARLIER=v7@fe9eccf=target/release/v7-uring-per-core-fe9eccf ROUNDS=20 \\
        nice -n 10 python3 scripts/v7-slow-edge.py > docs/src/results/v7-slow-edge.txt

EARLIER lists v7 as built at earlier commits, as label=binary pairs separated by commas,
each run by turns with the others: to make one, check out that commit's
v7-uring-per-core/src, `cargo build --release -p v7-uring-per-core`, copy
target/release/v7-uring-per-core to the name given, and check the sources out again.
Without EARLIER, only v5 and today's v7 run. The others are the release builds (cargo
build --release -p v5-reactor-per-core -p v7-uring-per-core -p loadgen); the traces are
kept in a temporary directory.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
versus = __import__("v7-versus")  # its Server and where the release binaries are
slow = __import__("v7-slow-trace")  # the bench run against a traced server
split = __import__("v7-slow-split")  # RUN_US, MET_US, CLIENTS: the same reading

ROUNDS = int(os.environ.get("ROUNDS", "20"))
EARLIER = [pair.split("=", 1) for pair in os.environ.get("EARLIER", "").split(",") if pair]
# Loops dealt this few clients or fewer are under the edge at the start.
UNDER = 20
# Two answers of one loop are a handler (100 ms) apart; a request that came this much
# earlier than another came first, whatever the scheduling of its client.
MARGIN_US = 10_000


def servers():
    earlier = [(label, os.path.abspath(binary)) for label, binary in EARLIER]
    return [("v5", "v5-reactor-per-core"), *earlier, ("v7", "v7-uring-per-core")]


def events_of(trace):
    with open(trace) as f:
        document = json.load(f)
    events = sorted((e for e in document["traceEvents"] if e["ph"] != "M"),
                    key=lambda e: e["ts"])
    return events, events[0]["ts"]


def served_twice(handlers, opened, closed):
    """Of one loop's handlers (start, end, conn), in order, those that served a connection
    again while another connection, open throughout, had been waiting since before that
    connection's previous handler ended: its last answer (or, not yet served, its accept)
    came at least `MARGIN_US` earlier, and it had no handler since."""
    last_end = {}
    count = 0
    for start, end, conn in handlers:
        previous = last_end.get(conn)
        if previous is not None and any(
                other != conn and at <= previous and closed.get(other, float("inf")) > start
                and last_end.get(other, at) <= previous - MARGIN_US
                for other, at in opened.items()):
            count += 1
        last_end[conn] = end
    return count


def per_loop(trace):
    """Each loop's figures, keyed by thread, as the module's docstring lists them."""
    events, start = events_of(trace)
    accepts = [e for e in events if e.get("cat") == "accept"]
    first = {e["args"]["conn"] for e in accepts[:split.CLIENTS]}
    loops = sorted({e["tid"] for e in events if e.get("cat") == "handle"})
    figures = {}
    for tid in loops:
        mine = [e for e in events if e["tid"] == tid and "conn" in e.get("args", {})]
        f = defaultdict(int)
        opened = {e["args"]["conn"]: e["ts"] for e in mine if e["cat"] == "accept"}
        closed = {e["args"]["conn"]: e["ts"] for e in mine if e["cat"] == "close"}
        for conn, at in opened.items():
            if at - start < split.RUN_US:
                f["dealt" if conn in first else "later"] += 1
        by_conn = defaultdict(list)
        for e in mine:
            if e["cat"] in ("handle", "close"):
                by_conn[e["args"]["conn"]].append(e)
        handled_later = set()
        for conn, seq in by_conn.items():
            for e, after in zip(seq, seq[1:] + [None]):
                if e["cat"] != "handle" or e["ts"] - start >= split.RUN_US:
                    continue
                f["handlers"] += 1
                if conn not in first:
                    handled_later.add(conn)
                if (after and after["cat"] == "close"
                        and after["args"].get("why") in ("reset", "closed")
                        and after["ts"] - (e["ts"] + e["dur"]) < split.MET_US):
                    f["nobody"] += 1
        f["served"] = len(handled_later)
        handlers = [(e["ts"], e["ts"] + e["dur"], e["args"]["conn"]) for e in mine
                    if e["cat"] == "handle" and e["ts"] - start < split.RUN_US]
        f["twice"] = served_twice(handlers, opened, closed)
        figures[tid] = f
    return [figures[tid] for tid in loops]


def cell(f):
    return (f"{f['dealt']}/{f['later']}/{f['served']}/{f['handlers']}/{f['nobody']}/"
            f"{f['handlers'] - f['nobody']}/{f['twice']}")


def summary(label, loops):
    """Loops dealt `UNDER` or fewer, and those dealt more, for one server."""
    for name, chosen in (("dealt 15-20", [f for f in loops if 15 <= f["dealt"] <= UNDER]),
                         ("dealt 21+", [f for f in loops if f["dealt"] > UNDER])):
        if not chosen:
            print(f"#   {label:<10} {name:<12} none")
            continue
        median = lambda key: statistics.median(f[key] for f in chosen)
        answered = sorted(f["handlers"] - f["nobody"] for f in chosen)
        print(f"#   {label:<10} {name:<12} {len(chosen):>2} loops: answered {answered}, "
              f"median later {median('later'):g}, served {median('served'):g}, nobody "
              f"{median('nobody'):g}; twice {sum(f['twice'] for f in chosen)} in all")


def main():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=versus.ROOT,
                            capture_output=True, text=True).stdout.strip()
    chosen = servers()
    earlier = ",".join(f"{label}={binary}" for label, binary in EARLIER)
    print(f"$ {f'EARLIER={earlier} ' if earlier else ''}ROUNDS={ROUNDS} nice -n 10 python3 "
          "scripts/v7-slow-edge.py")
    print(f"# {os.cpu_count()} cores, Linux {os.uname().release}, commit {commit} (v7; "
          "v7@<commit>: v7 built at that commit), load average at the start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; a shared machine")
    print("# each: server --trace FILE; loadgen bench -c 50 --path '/sleep?ms=100' -d 5s "
          f"--timeout 2s; by turns ({', '.join(label for label, _ in chosen)})")
    print("# per loop (ring): dealt/later/served/handlers/nobody/answered/twice (see the "
          "script's docstring)")
    print(f"{'round':<6} {'server':<10} {'answered':>8} {'split':>7}  per loop")
    loops = defaultdict(list)
    answered = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="v7-slow-edge-") as tmp:
        for round_ in range(1, ROUNDS + 1):
            for i, (label, name) in enumerate(chosen):
                trace = os.path.join(tmp, f"{round_}-{i}.json")
                result = slow.traced(name, [], trace)
                figures = per_loop(trace)
                loops[label].extend(figures)
                answered[label].append(result["requests"])
                split_ = "/".join(str(f["dealt"]) for f in figures)
                print(f"{round_:<6} {label:<10} {result['requests']:>8} {split_:>7}  "
                      f"{'  '.join(cell(f) for f in figures)}", flush=True)
                os.remove(trace)
    print(f"# load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("# summary, per server: answered by each loop, and medians of later, served and "
          "nobody")
    for label, _ in chosen:
        summary(label, loops[label])
    for label, _ in chosen:
        counts = answered[label]
        print(f"#   {label:<10} answered per run: median {statistics.median(counts):g}, "
              f"{min(counts)} to {max(counts)}")


if __name__ == "__main__":
    main()
