#!/usr/bin/env python3
"""What the recorder costs: server CPU per request, keep-alive GET /hello, for a build
without it (BASE, a checkout of the commit before it) against this build with it off, and
this build with it on (--trace-live: recording all the time, the oldest seconds let go).

The machine is shared and noisy, so the builds run in interleaved rounds (the order
alternating from round to round), each round's figures are taken as ratios to the base
run of the same round, and the medians of those ratios are the result. Server CPU is the
server process's utime + stime (/proc/PID/stat) over the load generator's run, divided
by the requests it had answered. Eight connections by default: fewer than v3's pool of
ten, so no client starves in its queue and every server answers all of them.

Usage: scripts/trace-cost.py BASE_DIR [--versions v3-thread-pool,v4-nio] [--rounds 5]
           [--duration 5s] [--connections 8] > docs/src/results/trace-cost.txt
BASE_DIR holds the base checkout, built with `cargo build --release -p loadgen -p <version>`
(its own target/); this checkout must be built the same way. Run it under `nice -n 10`.
"""

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """The process's CPU time so far, every thread's, user and system."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # After the name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / TICK


def start(binary, extra):
    server = subprocess.Popen(
        [binary, "--addr", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = server.stdout.readline()
    if "listening on " not in line:
        server.kill()
        sys.exit(f"{binary} did not start: {line!r}")
    return server, line.rsplit("listening on ", 1)[1].strip()


def stop(server):
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def one_run(binary, extra, loadgen, args):
    """Server CPU per answered request (µs), and requests per second, for one run."""
    server, addr = start(binary, extra)
    try:
        before = cpu_seconds(server.pid)
        bench = subprocess.run(
            [loadgen, "bench", "--addr", addr, "-c", str(args.connections),
             "-d", args.duration, "--json"],
            capture_output=True, text=True, check=True,
        )
        after = cpu_seconds(server.pid)
    finally:
        stop(server)
    summary = json.loads(bench.stdout.strip().splitlines()[-1])
    requests = summary["requests"]
    if requests == 0:
        sys.exit(f"{binary}: no request answered")
    return (after - before) * 1e6 / requests, summary["requests_per_sec"]


def git(*command, cwd=HERE):
    return subprocess.run(["git", *command], cwd=cwd, capture_output=True, text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("--versions", default="v3-thread-pool,v4-nio")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", default="5s")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    loadgen = os.path.join(HERE, "target/release/loadgen")
    builds = [
        ("base", os.path.join(args.base, "target/release"), []),
        ("off", os.path.join(HERE, "target/release"), []),
        ("on", os.path.join(HERE, "target/release"), ["--trace-live"]),
    ]

    print("$ nice -n 10 scripts/trace-cost.py " + " ".join(sys.argv[1:]))
    print(f"machine: {platform.node()}, {os.cpu_count()} cores; kernel {platform.release()}")
    print(f"this build: {git('rev-parse', '--short', 'HEAD')} (recorder off, then on with"
          " --trace-live); base: the checkout in BASE_DIR (7b8401c, before the recorder)")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"load: loadgen bench -c {args.connections} -d {args.duration}, keep-alive GET /hello,"
          " the same loadgen binary for every run")
    print("server CPU per request = the server's utime+stime over the run / requests answered;"
          " ratios are to the base run of the same round. The machine is shared with other"
          " work (see the load average), hence interleaved rounds and medians of ratios.")
    print()
    for version in args.versions.split(","):
        print(f"== {version}")
        print("round  order            base µs/req  off µs/req  on µs/req   off/base  on/base"
              "   base req/s  off req/s  on req/s")
        ratios = {"off": [], "on": []}
        for round_ in range(1, args.rounds + 1):
            order = builds if round_ % 2 else list(reversed(builds))
            results = {}
            for name, directory, extra in order:
                results[name] = one_run(os.path.join(directory, version), extra, loadgen, args)
            base = results["base"][0]
            for name in ratios:
                ratios[name].append(results[name][0] / base)
            print(f"{round_:>5}  {'>'.join(n for n, _, _ in order):<15}"
                  f"  {results['base'][0]:>11.2f}  {results['off'][0]:>10.2f}"
                  f"  {results['on'][0]:>9.2f}   {ratios['off'][-1]:>8.3f}"
                  f"  {ratios['on'][-1]:>7.3f}   {results['base'][1]:>10.0f}"
                  f"  {results['off'][1]:>9.0f}  {results['on'][1]:>8.0f}", flush=True)
        spread = lambda xs: f"{min(xs):.3f}..{max(xs):.3f}"
        print(f"median off/base {statistics.median(ratios['off']):.3f}"
              f" (rounds {spread(ratios['off'])});"
              f" median on/base {statistics.median(ratios['on']):.3f}"
              f" (rounds {spread(ratios['on'])})")
        print()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
