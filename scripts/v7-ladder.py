#!/usr/bin/env python3
"""v7's io_uring ablation ladder: one binary, every feature switched on one at a time
(`v7-uring-per-core --help` lists the switches), each rung measured against the rung
below it in the same round, then v7 as it ships against v5 and nginx for the targets.

Rungs, each adding one thing to the one above it:
  naive                 a plain ring, one accept per connection, one receive and one
                        send submitted per request, no batching wait
  + DEFER_TASKRUN       single issuer, completion work run only when the ring waits
  + multishot accept
  + multishot receive   one receive per connection, into the provided-buffer ring
  + batching            min_wait 50 µs when the last wait brought several (the default)
  + registered ring fd  io_uring_enter names the ring by index, no file-table lookup
  + direct descriptors  accepted into the ring's file table, every operation by index
  + receive bundles     a receive completion may fill several buffers
  + incremental buffers the buf ring consumed a receive at a time, 64 KiB buffers
  + zero-copy ≥ 16 KiB  SEND_ZC for large answers (only /echo of 64 KiB has any), on
                        the registered ring fd rung and measured against it
  SQPOLL (control)      the batching rung with a kernel thread polling the queue instead
                        of DEFER_TASKRUN

Settings (as scripts/v7-versus.py):
  pinned  the server on CPU 1 with one ring, wrk -t1 on CPU 0: one core each;
  shared  the server with a ring per core, wrk -t2, both cores for both.
Loads: keep-alive GET /hello (64 connections), and POST /echo of 64 KiB (16
connections) for the rungs from batching on, where zero-copy is the question.

Every round runs every point once, by turns, so the machine's noise falls on all; a
rung's change is the median over rounds of (rung / rung below) within a round, with the
lowest and highest. Server CPU per request is user + system time from /proc over the
requests answered. System calls per request are counted apart (perf's raw_syscalls and
io_uring_enter tracepoints, the pinned /hello load, 3 s), so counting costs no CPU in
the timed points. Memory per idle connection: the server's RSS grown by 1,000 idle
connections, divided by 1,000 (the kernel's socket memory is not in it).

    python3 scripts/v7-ladder.py > docs/src/results/v7-ladder.txt   # about 25 minutes
    ROUNDS=1 DURATION=2s python3 scripts/v7-ladder.py                # a first look
    SECTIONS=targets python3 scripts/v7-ladder.py     # one section: ladder, targets, slow
    SECTIONS=slow SLOW_LOADS=slow ROUNDS=10 python3 scripts/v7-ladder.py   # the slow handler only
    RUNGS="+ registered ring fd,+ direct descriptors" SECTIONS=ladder python3 scripts/v7-ladder.py

RUNGS (names, comma-separated) measures only those rungs; the Markdown table then keeps
the rows of the rungs not measured from the $MD it replaces, marked as the earlier run's.

The completions section (not run by default: SECTIONS=completions) counts what one 64 KiB
echo costs the ring from registered ring fd on, by /stats: completions, bundles and
enters per echo, 200 echoes one after another on one connection, one ring.

The slow section (not run by default) is compare's slow-handler and CPU-heavy scenarios
against v7 with and without eager sends, without the early reap, and v5.

It also writes the summary table as Markdown to $MD (docs/src/results/v7-ladder.md).
Root (perf) and wrk, nginx, taskset: apt-get install linux-perf wrk nginx-light util-linux.
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
versus = __import__("v7-versus")  # its Server (nginx's setup included), cpu and median

ROOT = versus.ROOT
RELEASE = versus.RELEASE
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = os.environ.get("DURATION", "5s")
MD = os.environ.get("MD", os.path.join(ROOT, "docs", "src", "results", "v7-ladder.md"))
V7 = "v7-uring-per-core"
PLAIN = ["--multishot-accept", "false", "--multishot-recv", "false", "--batch-wait-us", "0"]
REGISTERED = ["--register-ring-fd", "true"]
DIRECT = [*REGISTERED, "--direct-descriptors", "true"]
BUNDLE = [*DIRECT, "--recv-bundle", "true"]
# Bundles are v7's default (since the ladder showed them paying): every rung below them,
# and the two measured beside the ladder, turns them off.
NO_BUNDLE = ["--recv-bundle", "false"]

RUNGS = [
    ("naive", ["--defer-taskrun", "false", *PLAIN, *NO_BUNDLE]),
    ("+ DEFER_TASKRUN", [*PLAIN, *NO_BUNDLE]),
    ("+ multishot accept", ["--multishot-recv", "false", "--batch-wait-us", "0", *NO_BUNDLE]),
    ("+ multishot receive", ["--batch-wait-us", "0", *NO_BUNDLE]),
    ("+ batching", NO_BUNDLE),
    ("+ registered ring fd", [*REGISTERED, *NO_BUNDLE]),
    ("+ direct descriptors", [*DIRECT, *NO_BUNDLE]),
    ("+ receive bundles", BUNDLE),
    ("+ incremental buffers", [*BUNDLE, "--buffer-inc", "true"]),
    ("+ zero-copy >= 16 KiB", [*REGISTERED, *NO_BUNDLE, "--zero-copy-over", "16384"]),
    ("SQPOLL (control)", ["--sqpoll", "true", *NO_BUNDLE]),
]
# The rung each is measured against (zero-copy against the registered ring fd, on which
# it was first measured; SQPOLL against batching, which it varies).
BELOW = {name: RUNGS[i - 1][0] for i, (name, _) in enumerate(RUNGS) if i > 0}
BELOW["+ zero-copy >= 16 KiB"] = "+ registered ring fd"
BELOW["SQPOLL (control)"] = "+ batching"
# The rungs from batching on also serve the 64 KiB echo.
ECHOED = {name for name, _ in RUNGS[4:]}
# RUNGS="a,b": only these (the others' rows kept from the table this run replaces).
ALL_RUNGS = RUNGS
if os.environ.get("RUNGS"):
    WANTED = os.environ["RUNGS"].split(",")
    unknown = [w for w in WANTED if w not in dict(RUNGS)]
    if unknown:
        sys.exit(f"RUNGS names no rung {unknown}: the rungs are {[n for n, _ in RUNGS]}")
    RUNGS = [(name, options) for name, options in RUNGS if name in WANTED]

LOADS = {"hello": 64, "echo64k": 16}
ECHO_LUA = 'wrk.method = "POST"\nwrk.path = "/echo"\nwrk.body = string.rep("x", 65536)\n'


def start(name, options, pinned):
    """A server as v7-versus.py starts it; v7's rings set by the setting."""
    if name == V7:
        options = [*options, "--rings", "1"] if pinned else options
    elif name == "v5-reactor-per-core":
        options = ["--loops", "1"] if pinned else []
    return versus.Server(name, options, pinned)


def wrk(addr, load, connections, pinned, lua):
    prefix = ["taskset", "-c", "0"] if pinned else []
    threads = "1" if pinned else "2"
    script = ["-s", lua] if load == "echo64k" else []
    out = subprocess.run(
        prefix + ["wrk", "-t", threads, "-c", str(connections), "-d", DURATION, *script,
                  f"http://{addr}/hello"],
        capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: connect (\d+), "
                       r"read (\d+), write (\d+)", out)
    if errors and (errors.group(1) or any(int(n) for n in errors.groups()[1:4])):
        raise RuntimeError(f"wrk saw errors against {addr}: {errors.group(0)}")
    # A request unanswered within wrk's 2 s is a timeout, not a failure of the run: on a
    # CPU shared with other work it happens, and is reported beside the point.
    timeouts = re.search(r"timeout (\d+)", out)
    return int(re.search(r"(\d+) requests in", out).group(1)), int(timeouts.group(1)) if timeouts else 0


def point(name, options, pinned, load, connections, lua):
    server = start(name, options, pinned)
    try:
        c0, t0 = server.cpu(), time.monotonic()
        requests, timeouts = wrk(server.addr, load, connections, pinned, lua)
        requests = max(requests, 1)
        c1, seconds = server.cpu(), time.monotonic() - t0
    finally:
        server.stop()
    return {"req_s": requests / seconds, "cpu_us": (c1 - c0) * 1e6 / requests,
            "timeouts": timeouts}


def ladder(lua):
    """Every rung, setting and load once per round, by turns; returns the points."""
    print(f"{'round':<6} {'setting':<7} {'load':<8} {'rung':<24} {'req/s':>8} {'CPU/req':>10} "
          f"{'timeouts':>8}")
    points = {}
    for round_ in range(1, ROUNDS + 1):
        for setting in ("pinned", "shared"):
            for load, connections in LOADS.items():
                rungs = [r for r in RUNGS if load == "hello" or r[0] in ECHOED]
                for rung, options in rungs:
                    p = point(V7, options, setting == "pinned", load, connections, lua)
                    points.setdefault((setting, load, rung), []).append(p)
                    print(f"{round_:<6} {setting:<7} {load:<8} {rung:<24} {p['req_s']:>8.0f} "
                          f"{p['cpu_us']:>7.2f} µs {p['timeouts']:>8}", flush=True)
    return points


def spread(values):
    return f"{versus.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def census(name, options, connections=64):
    """System calls and io_uring_enters per request, the pinned /hello load, 3 s."""
    server = start(name, options, True)
    out = tempfile.mktemp(prefix="v7-ladder-perf-")
    try:
        r0 = requests_answered(server)
        subprocess.run(
            ["perf", "stat", "-x,", "-o", out, "-e",
             "raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter", "-p",
             str(server.process.pid), "--", "taskset", "-c", "0", "wrk", "-t1", "-c",
             str(connections), "-d", "3s", f"http://{server.addr}/hello"],
            capture_output=True, text=True, check=True)
        answered = max(requests_answered(server) - r0 - 1, 1)
        counts = {}
        for line in open(out):
            fields = line.split(",")
            if len(fields) > 2 and fields[0].strip().isdigit():
                counts[fields[2]] = int(fields[0])
    finally:
        server.stop()
        if os.path.exists(out):
            os.remove(out)
    return (counts.get("raw_syscalls:sys_enter", 0) / answered,
            counts.get("syscalls:sys_enter_io_uring_enter", 0) / answered)


def requests_answered(server):
    """The server's own count from /stats (nginx has none: its access log is off, so the
    census of nginx is not taken)."""
    import urllib.request
    with urllib.request.urlopen(f"http://{server.addr}/stats", timeout=5) as r:
        return json.load(r)["requests"]


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def idle_memory(options, n=1000):
    """KiB of server RSS per idle connection, n of them opened and left silent."""
    server = start(V7, options, True)
    sockets = []
    try:
        host, port = server.addr.rsplit(":", 1)
        warm = socket.create_connection((host, int(port)))  # every ring has run a turn
        warm.sendall(b"GET /hello\n")
        warm.recv(100)
        before = rss_kib(versus.children(server.process.pid))
        for _ in range(n):
            sockets.append(socket.create_connection((host, int(port))))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and open_connections(server) < n + 1:
            time.sleep(0.1)
        after = rss_kib(versus.children(server.process.pid))
    finally:
        for s in sockets:
            s.close()
        server.stop()
    return (after - before) / n


def open_connections(server):
    import urllib.request
    with urllib.request.urlopen(f"http://{server.addr}/stats", timeout=5) as r:
        return json.load(r)["model"]["connections"] - 1  # not this one


def summary(points, counted, memory, earlier):
    """The table: a row per rung measured, and (RUNGS restricted) the `earlier` rows of
    the rungs not measured, each marked so."""
    rows = []
    header = ("| rung | pinned req/s | pinned CPU/req | vs rung below: CPU (median, range) "
              "| shared req/s | shared vs below: req/s | syscalls/req | enters/req "
              "| idle KiB/conn | echo 64 KiB pinned CPU/req | echo vs below: CPU |")
    rows.append(header)
    rows.append("|---|" + "---:|" * (header.count("|") - 2))
    for rung, _ in ALL_RUNGS:
        if ("pinned", "hello", rung) not in points:
            if rung in earlier:
                rows.append(earlier[rung])
            continue
        hp, hs = points[("pinned", "hello", rung)], points[("shared", "hello", rung)]
        med = lambda ps, k: versus.median([p[k] for p in ps])  # noqa: E731
        below = BELOW.get(rung)
        ratio = lambda key, setting, load: (  # noqa: E731
            spread([a[key] / b[key] for a, b in
                    zip(points[(setting, load, rung)], points[(setting, load, below)])])
            if below and (setting, load, below) in points else "")
        echo = points.get(("pinned", "echo64k", rung))
        echo_cpu = f"{med(echo, 'cpu_us'):.1f} µs" if echo else ""
        rows.append(
            f"| {rung} | {med(hp, 'req_s'):.0f} | {med(hp, 'cpu_us'):.2f} µs "
            f"| {ratio('cpu_us', 'pinned', 'hello')} | {med(hs, 'req_s'):.0f} "
            f"| {ratio('req_s', 'shared', 'hello')} | {counted[rung][0]:.3f} "
            f"| {counted[rung][1]:.3f} | {memory[rung]:.2f} "
            f"| {echo_cpu} "
            f"| {ratio('cpu_us', 'pinned', 'echo64k') if echo else ''} |")
    return rows


def earlier_rows(note):
    """The rows of the table in $MD, by rung, each rung's name followed by `note`."""
    rows = {}
    if not os.path.exists(MD):
        return rows
    for line in open(MD):
        cells = line.rstrip("\n").split("|")
        rung = cells[1].strip() if len(cells) > 2 else None
        if rung in dict(ALL_RUNGS):
            cells[1] = f" {rung} {note} "
            rows[rung] = "|".join(cells)
    return rows


def earlier_commit():
    """The commit the table in $MD was produced at, as its first line says."""
    if not os.path.exists(MD):
        return None
    found = re.search(r"\(commit (\w+)", open(MD).readline())
    return found.group(1) if found else None


def targets():
    """v7 as it ships against v5 and nginx, pinned, at 64 and 1,000 connections."""
    subjects = [(V7, []), ("v5-reactor-per-core", []), ("nginx", [])]
    print(f"{'round':<6} {'conns':>5} {'server':<22} {'req/s':>8} {'CPU/req':>10} {'timeouts':>8}")
    points = {}
    for round_ in range(1, ROUNDS + 1):
        for connections in (64, 1000):
            for name, options in subjects:
                p = point(name, options, True, "hello", connections, None)
                points.setdefault((connections, name), []).append(p)
                print(f"{round_:<6} {connections:>5} {name:<22} {p['req_s']:>8.0f} "
                      f"{p['cpu_us']:>7.2f} µs {p['timeouts']:>8}", flush=True)
    print()
    print("v7's CPU per request over the other's, within each round: median (lowest-highest)")
    for connections in (64, 1000):
        mine = points[(connections, V7)]
        for other in ("v5-reactor-per-core", "nginx"):
            ratios = [a["cpu_us"] / b["cpu_us"] for a, b in zip(mine, points[(connections, other)])]
            print(f"  {connections:>5} connections, against {other:<20} {spread(ratios)}")
        calls, enters = census(V7, [], connections)
        print(f"  {connections:>5} connections, v7's system calls per request {calls:.3f} "
              f"(io_uring_enter {enters:.3f})")


def completions(echoes=200):
    """Completions, bundles and enters per 64 KiB echo, by /stats, for each rung from the
    registered ring fd to incremental buffers: what bundles and incremental consumption
    remove is completions, which the CPU per request can only hint at."""
    import urllib.request
    body = b"x" * 65536
    request = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n" + body
    print(f"{'rung':<24} {'completions/echo':>17} {'bundles/echo':>13} {'enters/echo':>12}")
    names = ["+ registered ring fd", "+ direct descriptors", "+ receive bundles",
             "+ incremental buffers"]
    for rung in names:
        server = start(V7, dict(ALL_RUNGS)[rung], True)
        try:
            host, port = server.addr.rsplit(":", 1)
            stats = lambda: json.load(urllib.request.urlopen(  # noqa: E731
                f"http://{server.addr}/stats", timeout=5))["model"]
            conn = socket.create_connection((host, int(port)))
            replies = conn.makefile("rb")

            def echo():
                conn.sendall(request)
                replies.readline()
                while replies.readline() not in (b"\r\n", b""):
                    pass
                replies.read(len(body))
            echo()  # every ring has run a turn, and the connection is open
            before = stats()
            for _ in range(echoes):
                echo()
            after = stats()
            conn.close()
        finally:
            server.stop()
        # Less the one completion and enter of the /stats request that read `after`.
        per = lambda key, less: (after[key] - before[key] - less) / echoes  # noqa: E731
        print(f"{rung:<24} {per('completions', 1):>17.2f} {per('bundles', 0):>13.2f} "
              f"{per('enters', 1):>12.2f}", flush=True)


SLOW = [
    ("v7, sends only with the wait", V7, ["--send-budget-us", "off"]),
    ("v7, eager sends, no early reap", V7, ["--reap-early", "false"]),
    ("v7, eager sends (default)", V7, []),
    ("v5", "v5-reactor-per-core", []),
]
SLOW_LOADS = [("slow handler", 50, "/sleep?ms=100"), ("CPU-heavy handler", 8, "/cpu?ms=10")]
# SLOW_LOADS=slow: only the loads whose name starts with it (more rounds in the same time).
SLOW_LOADS = [l for l in SLOW_LOADS if l[0].startswith(os.environ.get("SLOW_LOADS", ""))]


def slow():
    """compare's slow-handler and CPU-heavy scenarios (5 s, 2 s timeout, loadgen's closed
    loop), each server with its default threads: v7 with its sends held to the turn's
    wait (as before eager sends), v7 whose early submits only submit (as before they took
    in what completed meanwhile), v7 as it ships, and v5."""
    print("$ loadgen bench -c 50 --path '/sleep?ms=100' (and -c 8 --path '/cpu?ms=10') "
          "-d 5s --timeout 2s --json   # against each, by turns")
    print(f"{'round':<6} {'load':<18} {'server':<32} {'answered':>8} {'sent':>6} "
          f"{'clients':>8} {'p50':>9} {'p99':>9}")
    lines = []
    for round_ in range(1, ROUNDS + 1):
        for load, connections, path in SLOW_LOADS:
            for label, name, options in SLOW:
                server = versus.Server(name, options, False)
                try:
                    out = subprocess.run(
                        [versus.LOADGEN, "bench", "--addr", server.addr, "-c", str(connections),
                         "--path", path, "-d", "5s", "--timeout", "2s", "--json"],
                        capture_output=True, text=True, check=True).stdout
                finally:
                    server.stop()
                summary = json.loads(out.strip().splitlines()[-1])
                latency = summary["latency_us"]
                lines.append(f"{round_:<6} {load:<18} {label:<32} {summary['requests']:>8} "
                             f"{summary['sent']:>6} {summary['clients_answered']:>4}/"
                             f"{connections:<3} {latency['p50'] / 1000:>6.1f} ms "
                             f"{latency['p99'] / 1000:>6.1f} ms")
                print(lines[-1], flush=True)
    slow_summary(lines)


def slow_summary(lines):
    """The slow-handler rows read as the criterion asks: each v7 row's answered over v5's
    within a round (at least 0.9 wanted), and v7 over v7 without its early reap; median,
    lowest and highest over the rounds. Also run alone on a stored log:
    SLOW_SUMMARY=docs/src/results/v7-ladder-slow.txt python3 scripts/v7-ladder.py"""
    rounds = {}
    for line in lines:
        m = re.match(r"(\d+)\s+slow handler\s+(.+?)\s{2,}(\d+)\s+\d+", line)
        if m:
            rounds.setdefault(int(m.group(1)), {})[m.group(2)] = int(m.group(3))
    pairs = [("v7 (default) / v5", "v7, eager sends (default)", "v5"),
             ("v7 without the early reap / v5", "v7, eager sends, no early reap", "v5"),
             ("v7 (default) / v7 without the early reap", "v7, eager sends (default)",
              "v7, eager sends, no early reap")]
    for name, num, den in pairs:
        r = sorted(v[num] / v[den] for v in rounds.values() if v.get(den) and num in v)
        if r:
            print(f"# answered, {name}: median {statistics.median(r):.2f} "
                  f"(lowest {r[0]:.2f}, highest {r[-1]:.2f}); below 0.9 in "
                  f"{sum(x < 0.9 for x in r)} of {len(r)} rounds")


def header():
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
    sections = f"SECTIONS={os.environ['SECTIONS']} " if "SECTIONS" in os.environ else ""
    if "SLOW_LOADS" in os.environ:
        sections += f"SLOW_LOADS={os.environ['SLOW_LOADS']} "
    if os.environ.get("RUNGS"):
        sections += f'RUNGS="{os.environ["RUNGS"]}" '
    print(f"$ {sections}ROUNDS={ROUNDS} DURATION={DURATION} python3 scripts/v7-ladder.py")
    print(f"# {os.cpu_count()} cores ({cpu.group(1) if cpu else '?'}), Linux "
          f"{os.uname().release}, commit {commit}, load average at the start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("# A shared machine (other builds run beside this): read ratios within a round, "
          "not absolute figures.")
    return commit


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if "SLOW_SUMMARY" in os.environ:
        with open(os.environ["SLOW_SUMMARY"]) as log:
            return slow_summary(log)
    for tool in ("wrk", "taskset", "nginx", "perf"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk util-linux nginx-light linux-perf")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "v5-reactor-per-core", "-p", V7],
                   cwd=ROOT, check=True)
    commit = header()
    sections = os.environ.get("SECTIONS", "ladder,targets").split(",")
    if "ladder" in sections:
        run_ladder(commit)
    if "targets" in sections:
        print()
        targets()
    if "slow" in sections:
        print()
        slow()
    if "completions" in sections:
        print()
        completions()
    print(f"# load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def run_ladder(commit):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(ECHO_LUA)
        lua = f.name
    try:
        points = ladder(lua)
    finally:
        os.remove(lua)
    print()
    counted = {rung: census(V7, options) for rung, options in RUNGS}
    memory = {rung: idle_memory(options) for rung, options in RUNGS}
    restricted = len(RUNGS) < len(ALL_RUNGS)
    before = earlier_commit() if restricted else None
    earlier = earlier_rows(f"(earlier run, {before})") if restricted else {}
    rows = summary(points, counted, memory, earlier)
    print("\n".join(rows))
    only = f'RUNGS="{os.environ["RUNGS"]}" ' if restricted else ""
    with open(MD, "w") as md:
        md.write(f"Produced by `{only}ROUNDS={ROUNDS} DURATION={DURATION} python3 scripts/v7-ladder.py` "
                 f"(commit {commit}, Linux {os.uname().release}, {os.cpu_count()} cores, a "
                 "shared machine: load average "
                 f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end). Medians over "
                 f"{ROUNDS} interleaved rounds; a change is the median (lowest-highest) of the "
                 "ratio to the rung below within a round. The full log is "
                 f"`{os.path.splitext(os.path.basename(MD))[0]}.txt`.")
        if restricted:
            md.write(f" Only the rungs {', '.join(n for n, _ in RUNGS)} were measured in "
                     "this run.")
        if earlier:
            md.write(f" The rows marked \"earlier run\" are the table this one replaced "
                     f"(commit {before}), kept as they were, and compare with this run's "
                     "rows only through each row's own ratio to the rung below.")
        md.write("\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
