#!/usr/bin/env python3
"""v7-uring-per-core beside v5-reactor-per-core: keep-alive GET /hello from 64 and 1,000
connections (`loadgen bench -d 5s`, closed loop), each point a fresh server. Prints
requests per second, server CPU per request (/proc/<pid>/stat), and for v7 its own count
of io_uring_enter calls per request (/stats); then the system-call census of both at 64
connections (`loadgen syscalls`, perf or strace), where every call is counted.

Three rounds, the servers by turns within each, so that the machine's noise falls on all
of them alike; the last column is v7's CPU per request over v5's in the same round. A
first look, not the full benchmark: no nginx, no wrk.

    python3 scripts/v7-bench.py      # after cargo build --release -p loadgen
"""
import json
import os
import subprocess
import sys
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(ROOT, "target", "release", "loadgen")
HZ = os.sysconf("SC_CLK_TCK")
SUBJECTS = [
    ("v5-reactor-per-core", []),
    ("v7-uring-per-core", []),
    ("v7-uring-per-core", ["--batch-wait-us", "0"]),
]


def start(version, args):
    server = subprocess.Popen(
        [LOADGEN, "serve", version, "--addr", "127.0.0.1:0", "--idle-timeout", "60", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return server, server.stdout.readline().rsplit("listening on ", 1)[1].strip()


def cpu_ms(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / HZ


def enters(addr):
    with urllib.request.urlopen(f"http://{addr}/stats", timeout=30) as answer:
        model = json.load(answer)["model"]
    return model.get("enters")


def point(version, args, connections):
    server, addr = start(version, args)
    try:
        e0, c0 = enters(addr), cpu_ms(server.pid)
        bench = subprocess.run(
            [LOADGEN, "bench", "--addr", addr, "-c", str(connections), "-d", "5s", "--json"],
            capture_output=True, text=True, check=True)
        summary = json.loads(bench.stdout.strip().splitlines()[-1])
        e1, c1 = enters(addr), cpu_ms(server.pid)
    finally:
        server.kill()
        server.wait()
    requests = max(summary["requests"], 1)
    per_enter = f"{(e1 - e0) / requests:.2f}" if e0 is not None else "-"
    busy = summary.get("generator_busiest_share", 0.0) * 100
    return summary["requests_per_sec"], (c1 - c0) * 1000 / requests, per_enter, busy


def census(version, args):
    server, addr = start(version, args)
    try:
        out = subprocess.run(
            [LOADGEN, "syscalls", "--addr", addr, "-c", "64", "-d", "5s"],
            capture_output=True, text=True, check=True).stdout
    finally:
        server.kill()
        server.wait()
    return out.strip()


def main():
    if not os.path.exists(LOADGEN):
        sys.exit("build it first: cargo build --release -p loadgen")
    print("$ python3 scripts/v7-bench.py")
    print(f"{'round':<7}{'server':<40}{'connections':>12}{'req/s':>10}{'CPU/request':>14}"
          f"{'enters/request':>16}{'loadgen busy':>14}{'CPU vs v5':>11}")
    for round in range(1, 4):
        for connections in [64, 1000]:
            v5_cpu = None
            for version, args in SUBJECTS:
                rate, cpu, per_enter, busy = point(version, args, connections)
                v5_cpu = cpu if version.startswith("v5") else v5_cpu
                ratio = f"{cpu / v5_cpu:.2f}" if v5_cpu and not version.startswith("v5") else ""
                name = " ".join([version, *args])
                print(f"{round:<7}{name:<40}{connections:>12}{rate:>10.0f}{cpu:>11.1f} µs"
                      f"{per_enter:>16}{busy:>13.0f}%{ratio:>11}", flush=True)
    print("loadgen busy: the share of a core its one thread used; near 100% the generator, "
          "not the server, may be the limit")
    for version, args in SUBJECTS[:2]:
        print(f"\n$ loadgen syscalls -c 64 -d 5s   # against {version}")
        print(census(version, args))


if __name__ == "__main__":
    main()
