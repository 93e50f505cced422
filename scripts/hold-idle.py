#!/usr/bin/env python3
"""Open N idle TCP connections to HOST:PORT and hold them until stdin closes.

Prints "holding N" once every connection is established. Used by measure-v4.sh; any
version can be the target:  python3 scripts/hold-idle.py 127.0.0.1:8085 1000
"""
import socket
import sys


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: hold-idle.py HOST:PORT N")
    host, port = sys.argv[1].rsplit(":", 1)
    n = int(sys.argv[2])
    held = []
    for i in range(n):
        try:
            held.append(socket.create_connection((host, int(port)), timeout=10))
        except OSError as e:
            sys.exit(f"connection {i + 1} of {n} failed: {e} (is `ulimit -n` above {n}?)")
    print(f"holding {n}", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
