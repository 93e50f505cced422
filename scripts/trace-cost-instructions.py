#!/usr/bin/env python3
"""Instructions per request with the recorder off, counted by callgrind: a cost that no
other load on the machine changes (trace-cost.py measures CPU time, which a shared machine
blurs by tens of percent).

Runs each server binary under `valgrind --tool=callgrind`, sends N and then 2N keep-alive
`GET /hello` requests on one connection (each run a fresh server), and reports the marginal
instructions per request, (I(2N) - I(N)) / N, which leaves out start-up and shutdown.

    scripts/trace-cost-instructions.py BASE_BINARY THIS_BINARY [--requests N] [--server-args "--loops 1"]
"""
import argparse, os, re, signal, socket, subprocess, sys, tempfile, time

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def connect(port, deadline):
    while time.time() < deadline:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not listen on {port}")

def run(binary, requests, extra):
    port = free_port()
    out = tempfile.NamedTemporaryFile(prefix="callgrind.", delete=False).name
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
         "--addr", f"127.0.0.1:{port}", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = connect(port, time.time() + 60)
        request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
        answer = b"Hello, World!"
        buf = b""
        for _ in range(requests):
            conn.sendall(request)
            while answer not in buf:
                chunk = conn.recv(4096)
                if not chunk:
                    raise SystemExit("the server closed the connection")
                buf += chunk
            buf = buf[buf.index(answer) + len(answer):]
        conn.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    text = open(out).read()
    os.unlink(out)
    total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if not total:
        raise SystemExit(f"no total in callgrind's output for {binary}")
    return int(total.group(1))

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base"); p.add_argument("this")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--server-args", default="", help="passed to both servers")
    a = p.parse_args()
    n = a.requests
    print(f"$ {' '.join(sys.argv)}")
    # The machine, kernel and commit: the stored result's stamp.
    stamp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stamp.sh")
    print(subprocess.run([stamp], capture_output=True, text=True).stdout.strip())
    print(f"kernel {os.uname().release}; valgrind --tool=callgrind; {n} and {2*n} keep-alive GET /hello on one connection, a fresh server each run")
    print(f"{'round':>5} {'binary':>6} {'I(N)':>14} {'I(2N)':>14} {'instr/request':>14}")
    for r in range(1, a.rounds + 1):
        per = {}
        for name, binary in (("base", a.base), ("this", a.this)):
            one, two = run(binary, n, a.server_args.split()), run(binary, 2 * n, a.server_args.split())
            per[name] = (two - one) / n
            print(f"{r:>5} {name:>6} {one:>14} {two:>14} {per[name]:>14.1f}")
        print(f"      this/base {per['this'] / per['base']:.4f}")

main()
