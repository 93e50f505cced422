#!/usr/bin/env python3
"""Context switches and CPU per request, swept over connection counts: a thread per
connection (v2-thread-per-conn) against a poller handing to workers (v4-nio) and a loop
per core (v5-reactor-per-core), keep-alive GET /hello, closed loop, `loadgen bench -d 5s`.

Switches come from the server's own /stats (kernel.context_switches: getrusage, which
keeps the counts of threads that have exited); CPU from /proc/<pid>/stat. Each point is a
fresh server. The machine is shared: read the ratios within a row, not the absolutes.

    python3 scripts/switch-sweep.py            # after cargo build --release -p loadgen
"""
import json
import os
import subprocess
import sys
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(ROOT, "target", "release", "loadgen")
VERSIONS = ["v2-thread-per-conn", "v4-nio", "v5-reactor-per-core"]
CONNECTIONS = [64, 1000, 10000]
HZ = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / HZ  # utime + stime


def switches(addr):
    with urllib.request.urlopen(f"http://{addr}/stats", timeout=30) as answer:
        c = json.load(answer)["kernel"]["context_switches"]
    return c["voluntary"], c["involuntary"]


def point(version, connections):
    server = subprocess.Popen(
        [LOADGEN, "serve", version, "--addr", "127.0.0.1:0", "--idle-timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        addr = server.stdout.readline().rsplit("listening on ", 1)[1].strip()
        (v0, i0), cpu0 = switches(addr), cpu_ms(server.pid)
        bench = subprocess.run(
            [LOADGEN, "bench", "--addr", addr, "-c", str(connections), "-d", "5s", "--json"],
            capture_output=True, text=True, check=True)
        summary = json.loads(bench.stdout.strip().splitlines()[-1])
        (v1, i1), cpu1 = switches(addr), cpu_ms(server.pid)
    finally:
        server.kill()
        server.wait()
    requests = max(summary["requests"], 1)
    return (summary["requests_per_sec"], (v1 - v0) / requests, (i1 - i0) / requests,
            (cpu1 - cpu0) * 1000 / requests, summary["clients_answered"], connections)


def main():
    if not os.path.exists(LOADGEN):
        sys.exit("build it first: cargo build --release -p loadgen")
    print("$ python3 scripts/switch-sweep.py")
    # The machine, kernel and commit the result is made on: its stamp.
    print(subprocess.run([os.path.join(ROOT, "scripts", "stamp.sh")], capture_output=True, text=True).stdout.strip(), flush=True)
    print(f"{'version':<22}{'connections':>12}{'req/s':>10}{'voluntary':>11}{'involuntary':>13}"
          f"{'CPU/request':>13}{'answered':>14}")
    for connections in CONNECTIONS:
        for version in VERSIONS:
            rate, vol, invol, cpu, answered, clients = point(version, connections)
            print(f"{version:<22}{connections:>12}{rate:>10.0f}{vol:>11.2f}{invol:>13.2f}"
                  f"{cpu:>10.1f} µs{answered:>8} / {clients}", flush=True)
    print("voluntary, involuntary: the server's context switches per request answered "
          "(getrusage over the run)")


if __name__ == "__main__":
    main()
