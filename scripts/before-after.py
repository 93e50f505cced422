#!/usr/bin/env python3
"""The same servers built from two trees, interleaved: server CPU per request and
requests per second of the build before a change against the build after it.

A change that should not move performance (a restructuring, a recorder compiled in but
switched off) is checked by this: keep-alive `GET /hello` from wrk (loadgen's `bench`
where wrk is not installed), each server alone on CPU 1 with one loop, ring or worker,
the generator on CPU 0, so a request costs what one core of the server spends on it.
Every round runs each (server, build) pair once, by turns, so the machine's noise falls
on both builds alike; the result is the median over rounds of after/before within a
round, with the lowest and highest ratio.

    # the binaries of the tree before the change, built once and kept aside:
    git worktree add /tmp/before <commit> && (cd /tmp/before && cargo build --release)
    BEFORE=/tmp/before/target/release python3 scripts/before-after.py
    ROUNDS=5 DURATION=5s CONNECTIONS=64 SERVERS="v5-reactor-per-core,v7-uring-per-core" ...

AFTER defaults to this tree's target/release (built here first). A server is a binary
name, optionally followed by its options after a space ("v4-syscalls --api io-uring").
"""
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEFORE = os.environ.get("BEFORE")
AFTER = os.environ.get("AFTER", os.path.join(ROOT, "target", "release"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
DURATION = os.environ.get("DURATION", "5s")
CONNECTIONS = int(os.environ.get("CONNECTIONS", "64"))
SERVERS = os.environ.get(
    "SERVERS", "v5-reactor-per-core --loops 1,v7-uring-per-core --rings 1").split(",")
HAVE_WRK = subprocess.run(["which", "wrk"], capture_output=True).returncode == 0


def cpu_seconds(pid):
    """The process's user + system time (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(binary_dir, server):
    binary, *options = server.split()
    process = subprocess.Popen(
        ["taskset", "-c", "1", os.path.join(binary_dir, binary), "--addr", "127.0.0.1:0",
         "--idle-timeout", "60", *options],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if "listening on " not in line:
        process.kill()
        raise RuntimeError(f"{binary_dir}/{server} did not start: {line!r}")
    return process, line.rsplit("listening on ", 1)[1].strip()


def drive(addr):
    """Requests answered and seconds taken, by wrk (one thread, CPU 0) or loadgen."""
    started = time.monotonic()
    if HAVE_WRK:
        out = subprocess.run(
            ["taskset", "-c", "0", "wrk", "-t1", "-c", str(CONNECTIONS), "-d", DURATION,
             f"http://{addr}/hello"], capture_output=True, text=True, check=True).stdout
        if re.search(r"Non-2xx|Socket errors", out):
            raise RuntimeError(f"wrk saw errors against {addr}:\n{out}")
        requests = int(re.search(r"(\d+) requests in", out).group(1))
    else:
        out = subprocess.run(
            ["taskset", "-c", "0", os.path.join(AFTER, "loadgen"), "bench", "--addr", addr,
             "-c", str(CONNECTIONS), "-d", DURATION, "--json"],
            capture_output=True, text=True, check=True).stdout
        requests = json.loads(out.strip().splitlines()[-1])["requests"]
    return requests, time.monotonic() - started


def point(binary_dir, server):
    process, addr = start(binary_dir, server)
    try:
        before = cpu_seconds(process.pid)
        requests, seconds = drive(addr)
        spent = cpu_seconds(process.pid) - before
    finally:
        process.terminate()
        process.wait(timeout=10)
    requests = max(requests, 1)
    return {"req_s": requests / seconds, "cpu_us": spent * 1e6 / requests}


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def main():
    if not BEFORE:
        sys.exit("set BEFORE to the target/release folder of the tree before the change "
                 "(see this script's docstring for how to build it)")
    if AFTER == os.path.join(ROOT, "target", "release"):
        subprocess.run(["cargo", "build", "--release", "-q", "--workspace", "--bins"],
                       cwd=ROOT, check=True)
    generator = "wrk -t1" if HAVE_WRK else "loadgen bench"
    # The machine, kernel and commit (the after tree's, when it is this one): the stamp.
    print(subprocess.run([os.path.join(ROOT, "scripts", "stamp.sh")], capture_output=True,
                         text=True).stdout.strip())
    print(f"# before: {BEFORE}\n# after:  {AFTER}\n# {generator} on CPU 0, -c {CONNECTIONS}, "
          f"{DURATION} a point, each server on CPU 1; {ROUNDS} rounds, by turns")
    print(f"{'round':>5}  {'server':34} {'build':6} {'req/s':>9} {'CPU µs/req':>11}")
    ratios = {server: {"cpu_us": [], "req_s": []} for server in SERVERS}
    for r in range(1, ROUNDS + 1):
        for server in SERVERS:
            # Alternate which build goes first, so neither always runs on a warmer machine.
            order = [("before", BEFORE), ("after", AFTER)]
            if r % 2 == 0:
                order.reverse()
            got = {}
            for build, folder in order:
                got[build] = point(folder, server)
                print(f"{r:>5}  {server:34} {build:6} {got[build]['req_s']:>9.0f} "
                      f"{got[build]['cpu_us']:>11.2f}", flush=True)
            for key in ratios[server]:
                ratios[server][key].append(got["after"][key] / got["before"][key])
    print("\nafter / before, within a round: median (lowest-highest)")
    for server, by_key in ratios.items():
        cells = [f"{key} {median(v):.3f} ({min(v):.3f}-{max(v):.3f})" for key, v in by_key.items()]
        print(f"  {server:34} " + "   ".join(cells))


if __name__ == "__main__":
    main()
