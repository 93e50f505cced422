#!/usr/bin/env python3
"""compare's CPU-heavy scenario (8 clients, GET /cpu?ms=10, 5 s, 2 s timeout) against v5
and v7 by turns, each round both, with what a single `compare` row does not show: how
the 8 clients fell between the two loops (rings), and how much CPU the server got in the
5 s (a handler burns 10 ms of its thread's CPU, so a thread that gets less of a core
answers fewer and later, whatever its model).

    python3 scripts/v7-slow-cpu.py > docs/src/results/v7-slow-cpu.txt
    ROUNDS=10 python3 scripts/v7-slow-cpu.py
    ONE=1 ROUNDS=12 python3 scripts/v7-slow-cpu.py > docs/src/results/v7-slow-cpu-one.txt

With ONE=1 each server runs one loop (ring), pinned to CPU 1, and the generator to CPU 0:
no hash deals the clients and neither competes with the generator for a core, so what
is left between the two p99s is the models' own. With BEFORE=1 a third server takes its
turn, `target/release/v7-uring-per-core-before` (a release build of an earlier commit,
copied there by hand), as `v7-bef`, its p99 also divided by v5's.

Uses the release build (cargo build --release -p loadgen -p v5-reactor-per-core
-p v7-uring-per-core) and v7-versus.py's Server.
"""
import json
import os
import statistics
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
versus = __import__("v7-versus")  # its Server and where the release binaries are

ROUNDS = int(os.environ.get("ROUNDS", "6"))
ONE = os.environ.get("ONE") == "1"
SERVERS = [("v5", "v5-reactor-per-core", "loops"), ("v7", "v7-uring-per-core", "rings")]
if os.environ.get("BEFORE") == "1":
    SERVERS.append(("v7-bef", "v7-uring-per-core-before", "rings"))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 // TICKS


def run(name, units):
    server = versus.Server(name, [f"--{units}", "1"] if ONE else [], ONE)
    pin = ["taskset", "-c", "0"] if ONE else []
    try:
        before = cpu_ms(server.process.pid)
        out = subprocess.run(
            pin + [versus.LOADGEN, "bench", "--addr", server.addr, "-c", "8", "--path",
             "/cpu?ms=10", "-d", "5s", "--timeout", "2s", "--json"],
            capture_output=True, text=True, check=True).stdout
        used = cpu_ms(server.process.pid) - before
        with urllib.request.urlopen(f"http://{server.addr}/stats", timeout=10) as answer:
            stats = json.load(answer)
    finally:
        server.stop()
    summary = json.loads(out.strip().splitlines()[-1])
    # Each loop's connections, less the /stats request's own on the one that took it.
    accepted = [u["accepted"] for u in stats["model"][units]]
    for unit, u in zip(range(len(accepted)), stats["model"][units]):
        if u["connections"] > 0:
            accepted[unit] -= 1
            break
    return summary, used, accepted


def main():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=versus.ROOT,
                            capture_output=True, text=True).stdout.strip()
    before = "BEFORE=1 " if len(SERVERS) > 2 else ""
    print(f"$ {'ONE=1 ' if ONE else ''}{before}ROUNDS={ROUNDS} python3 scripts/v7-slow-cpu.py")
    print(f"# {os.cpu_count()} cores, Linux {os.uname().release}, commit {commit}, load average "
          f"at the start {' '.join(f'{x:.2f}' for x in os.getloadavg())}; a shared machine "
          "(other sessions' builds and measurements ran meanwhile)")
    print("# each: loadgen bench -c 8 --path '/cpu?ms=10' -d 5s --timeout 2s; by turns, plain, "
          f"in the order {', '.join(label for label, _, _ in SERVERS)} in odd rounds and "
          "the reverse in even ones; split: clients per loop (ring); "
          "cores: server CPU / 5 s"
          + ("; ONE=1: --loops 1 / --rings 1, server pinned to CPU 1, generator to CPU 0"
             if ONE else ""))
    print(f"{'round':<6} {'server':<7} {'answered':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'split':>6} {'cores':>6} {'p99 /v5':>9}")
    ratios = []
    for round_ in range(1, ROUNDS + 1):
        # Which one runs first alternates, so that a drift in the machine's load within a
        # round does not always land on the same one.
        order = SERVERS if round_ % 2 else SERVERS[::-1]
        runs = {label: run(name, units) for label, name, units in order}
        p99 = {}
        for label, _, _ in SERVERS:
            summary, used, accepted = runs[label]
            lat = summary["latency_us"]
            p99[label] = lat["p99"]
            ratio = f"{p99[label] / p99['v5']:.2f}" if label != "v5" else ""
            print(f"{round_:<6} {label:<7} {summary['requests']:>8} {lat['p50'] / 1000:>7.1f} "
                  f"{lat['p99'] / 1000:>7.1f} {lat['max'] / 1000:>7.1f} "
                  f"{'/'.join(map(str, accepted)):>6} {used / 5000:>6.2f} {ratio:>9}", flush=True)
        ratios.append({label: p99[label] / p99["v5"] for label, _, _ in SERVERS[1:]})
    for label, _, _ in SERVERS[1:]:
        mine = [r[label] for r in ratios]
        print(f"# p99 {label}/v5 <= 1.2 in {sum(r <= 1.2 for r in mine)} of {ROUNDS} rounds, "
              f"median {statistics.median(mine):.2f}")
    print(f"# load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
