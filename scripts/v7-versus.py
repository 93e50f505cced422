#!/usr/bin/env python3
"""v7-uring-per-core against v5-reactor-per-core, nginx and v4-syscalls' one loop on
io_uring and on epoll: keep-alive GET /hello, 64 and 1,000 connections, 5 s a point,
interleaved (every server once per round, by turns) so the machine's noise falls on all.

Two settings, because on this 2-core machine the load generator and the server share the
cores and whichever design leaves the generator more CPU looks faster:

- shared: every server with its default threads (a loop, ring or worker per core; the
  v4-syscalls loop is one thread by design) and both cores for everyone; driven by wrk with
  2 threads and by loadgen (one thread; its busy column says when it is the limit).
- pinned: every server on CPU 1 with one loop, ring or worker, and wrk with 1 thread on
  CPU 0: one core each, so a server's requests per second are what one core of it does,
  as long as wrk's core is not full (its busy column).

Server CPU per request is the server's user + system time from /proc (nginx's workers
summed) over the requests answered, the figure that noise disturbs least; "busy" is the
generator's own CPU over the wall time (100% = one core). Then, at 64 connections, the
system-call census of each (`loadgen syscalls`, perf counting every call). Last, the
latency at low load (closed loop, 1 and 4 connections: one round trip each), where v7's
batching wait (`--batch-wait-us`) may cost rather than save.

    python3 scripts/v7-versus.py                 # 3 rounds, about 15 minutes
    ROUNDS=1 python3 scripts/v7-versus.py        # a first look
    SECTIONS=low-load python3 scripts/v7-versus.py   # one section: table, census, low-load

The ratios within a round are the result; the absolute numbers depend on the machine.
"""
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
LOADGEN = os.path.join(RELEASE, "loadgen")
HZ = os.sysconf("SC_CLK_TCK")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = os.environ.get("DURATION", "5s")
CONNECTIONS = [64, 1000]

# (name, command line after the binary, in the shared setting, in the pinned one)
SUBJECTS = [
    ("v5-reactor-per-core", [], ["--loops", "1"]),
    ("v7-uring-per-core", [], ["--rings", "1"]),
    ("v4-syscalls --api io-uring", [], []),
    ("v4-syscalls --api epoll", [], []),
    ("nginx", None, None),
]


def children(pid):
    """The process and those it started (nginx's master and its workers)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry))
    return pids


def cpu_s(pids):
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / HZ


def wait_for_port(port, deadline=10.0):
    import socket
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {deadline} s")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name, options, pinned):
        self.dir = None
        prefix = ["taskset", "-c", "1"] if pinned else []
        if name == "nginx":
            port = free_port()
            self.dir = tempfile.mkdtemp(prefix="v7-versus-nginx-")
            conf = open(os.path.join(ROOT, "peers", "nginx", "nginx.conf")).read()
            conf = conf.replace("@DIR@", self.dir).replace("@PORT@", str(port))
            workers = "1" if pinned else "auto"
            conf = re.sub(r"^worker_processes auto;", f"worker_processes {workers};", conf,
                          flags=re.M)
            with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
                f.write(conf)
            self.process = subprocess.Popen(
                prefix + ["nginx", "-p", self.dir + "/", "-e", "stderr", "-c",
                          os.path.join(self.dir, "nginx.conf"), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for_port(port)
            self.addr = f"127.0.0.1:{port}"
        else:
            binary, *api = name.split()
            self.process = subprocess.Popen(
                prefix + [os.path.join(RELEASE, binary), "--addr", "127.0.0.1:0",
                          "--idle-timeout", "60", *api, *options],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            line = self.process.stdout.readline()
            if "listening on " not in line:
                raise RuntimeError(f"{name} did not start: {line!r}")
            self.addr = line.rsplit("listening on ", 1)[1].strip()

    def cpu(self):
        return cpu_s(children(self.process.pid))

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def generator_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def drive(tool, addr, connections, pinned):
    """Runs the generator; returns (requests answered, seconds, generator CPU seconds)."""
    before = generator_cpu()
    started = time.monotonic()
    if tool == "wrk":
        threads = "1" if pinned else "2"
        prefix = ["taskset", "-c", "0"] if pinned else []
        out = subprocess.run(
            prefix + ["wrk", "-t", threads, "-c", str(connections), "-d", DURATION,
                      f"http://{addr}/hello"],
            capture_output=True, text=True, check=True).stdout
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
        if errors:
            raise RuntimeError(f"wrk saw errors against {addr}: {errors.group(0)}")
    else:
        out = subprocess.run(
            [LOADGEN, "bench", "--addr", addr, "-c", str(connections), "-d", DURATION,
             "--json"],
            capture_output=True, text=True, check=True).stdout
        summary = json.loads(out.strip().splitlines()[-1])
        requests = summary["requests"]
    return requests, time.monotonic() - started, generator_cpu() - before


def point(name, options, pinned, tool, connections):
    server = Server(name, options, pinned)
    try:
        c0 = server.cpu()
        requests, seconds, generator = drive(tool, server.addr, connections, pinned)
        c1 = server.cpu()
    finally:
        server.stop()
    requests = max(requests, 1)
    return {
        "req_s": requests / seconds,
        "cpu_us": (c1 - c0) * 1e6 / requests,
        "busy": generator / seconds,
    }


LOW_LOAD = [
    ("v5-reactor-per-core", []),
    ("v7-uring-per-core", []),
    ("v7-uring-per-core", ["--batch-wait-us", "0"]),
    ("v4-syscalls --api io-uring", []),
    ("v4-syscalls --api epoll", []),
]


def low_load():
    """Closed loop with 1 and 4 connections: each latency is one round trip, with no
    schedule in it. (An open loop's latencies here would be the generator's: it wakes
    for its schedule with millisecond timeouts, so every request would carry up to a
    millisecond of its lateness.)"""
    print("$ loadgen bench -c 1 (and -c 4) -d 5s   # closed loop: a latency is one round trip")
    print(f"{'round':<6} {'conns':>5} {'server':<40} {'p50':>8} {'p99':>8} {'p99.9':>8} "
          f"{'req/s':>8} {'CPU/req':>9}")
    for round_ in range(1, ROUNDS + 1):
        for connections in (1, 4):
            for name, options in LOW_LOAD:
                server = Server(name, options, False)
                try:
                    c0 = server.cpu()
                    out = subprocess.run(
                        [LOADGEN, "bench", "--addr", server.addr, "-c", str(connections),
                         "-d", DURATION, "--json"],
                        capture_output=True, text=True, check=True).stdout
                    c1 = server.cpu()
                finally:
                    server.stop()
                summary = json.loads(out.strip().splitlines()[-1])
                latency = summary["latency_us"]
                label = " ".join([name, *options])
                cpu = (c1 - c0) * 1e6 / max(summary["requests"], 1)
                print(f"{round_:<6} {connections:>5} {label:<40} {latency['p50']:>5} µs "
                      f"{latency['p99']:>5} µs {latency['p999']:>5} µs "
                      f"{summary['requests_per_sec']:>8.0f} {cpu:>6.1f} µs", flush=True)


def main():
    # Stopped early (Ctrl-C, kill), the point's `finally` still stops its server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    for tool in ("wrk", "taskset", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk util-linux nginx-light")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "loadgen", "-p", "v4-syscalls",
                    "-p", "v5-reactor-per-core", "-p", "v7-uring-per-core"],
                   cwd=ROOT, check=True)
    sections = os.environ.get("SECTIONS", "table,census,low-load").split(",")
    if "table" in sections:
        table()
    if "census" in sections:
        census()
    if "low-load" in sections:
        low_load()


def table():
    settings = [("shared", "wrk"), ("shared", "loadgen"), ("pinned", "wrk")]
    header = (f"{'round':<6} {'setting':<8} {'driver':<8} {'server':<28} {'conns':>5} "
              f"{'req/s':>8} {'CPU/req':>9} {'driver busy':>11} {'req/s vs v5':>11} "
              f"{'CPU vs v5':>9}")
    print(f"$ ROUNDS={ROUNDS} DURATION={DURATION} python3 scripts/v7-versus.py")
    # The machine, kernel and commit the result is made on: its stamp.
    print(subprocess.run([os.path.join(ROOT, "scripts", "stamp.sh")], capture_output=True, text=True).stdout.strip(), flush=True)
    print(header, flush=True)
    points = {}
    for round_ in range(1, ROUNDS + 1):
        for setting, tool in settings:
            pinned = setting == "pinned"
            for connections in CONNECTIONS:
                v5 = None
                for name, shared_options, pinned_options in SUBJECTS:
                    options = pinned_options if pinned else shared_options
                    p = point(name, options or [], pinned, tool, connections)
                    if v5 is None:
                        v5 = p
                    points.setdefault((setting, tool, connections, name), []).append(p)
                    print(f"{round_:<6} {setting:<8} {tool:<8} {name:<28} {connections:>5} "
                          f"{p['req_s']:>8.0f} {p['cpu_us']:>6.1f} µs {p['busy']:>10.0%} "
                          f"{p['req_s'] / v5['req_s']:>11.2f} {p['cpu_us'] / v5['cpu_us']:>9.2f}",
                          flush=True)
    print("driver busy: the generator's CPU over the wall time (100% = one core); "
          "pinned, wrk has one core")
    print()
    summarize(points)
    print()


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def summarize(points):
    """v7 against each other server, per cell: the median over the rounds of the ratio
    within a round, and the lowest and highest, so one lucky round does not decide."""
    print(f"v7 against the others, ratio within each round: median (lowest-highest) of "
          f"{ROUNDS} rounds")
    print(f"{'setting':<8} {'driver':<8} {'conns':>5}  {'against':<28} {'req/s':>18} "
          f"{'CPU per request':>18}")
    for (setting, tool, connections, name), v7 in points.items():
        if name != "v7-uring-per-core":
            continue
        for other, _, _ in SUBJECTS:
            if other == name:
                continue
            them = points[(setting, tool, connections, other)]
            rate = [a["req_s"] / b["req_s"] for a, b in zip(v7, them)]
            cpu = [a["cpu_us"] / b["cpu_us"] for a, b in zip(v7, them)]
            print(f"{setting:<8} {tool:<8} {connections:>5}  {other:<28} "
                  f"{median(rate):>5.2f} ({min(rate):.2f}-{max(rate):.2f}) "
                  f"{median(cpu):>5.2f} ({min(cpu):.2f}-{max(cpu):.2f})")


def census():
    for name, options, _ in SUBJECTS:
        server = Server(name, options or [], False)
        try:
            out = subprocess.run(
                [LOADGEN, "syscalls", "--addr", server.addr, "-c", "64", "-d", "5s"],
                capture_output=True, text=True)
        finally:
            server.stop()
        print(f"$ loadgen syscalls -c 64 -d 5s   # against {name}")
        print((out.stdout + out.stderr).strip(), flush=True)
        print()


if __name__ == "__main__":
    main()
