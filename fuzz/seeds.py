#!/usr/bin/env python3
"""Seeds the fuzz corpora from the byte strings of the fault matrix's probes and the codec's
tests: every `b"..."` literal in those files becomes an input (prefixed by a zero byte: no
cuts), and for the chunked target, whatever follows a chunked head.

Run from the repository root: python3 fuzz/seeds.py. The committed corpus is then the
seeds and a long run's finds, minimised on edge coverage alone (hit counts and compared
values left out, which keeps it to hundreds of inputs):

    cargo +nightly fuzz cmin <target> <dir> -- -max_len=4096 -use_counters=0 -use_cmp=0
"""
import hashlib
import pathlib
import re
import sys

SOURCES = ["harness/src/probes.rs", "common/src/codec/tests.rs"]
LITERAL = re.compile(rb'b"((?:[^"\\]|\\.|\\\n)*)"', re.S)


def unescape(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    simple = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("\\"): b"\\",
              ord('"'): b'"', ord("'"): b"'", ord("0"): b"\0"}
    while i < len(raw):
        c = raw[i]
        if c != ord("\\"):
            out.append(c)
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt == ord("x"):
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
        elif nxt == ord("\n"):  # a line continuation: the newline and leading spaces go
            i += 2
            while i < len(raw) and raw[i] in b" \t":
                i += 1
        else:
            out += simple[nxt]
            i += 2
    return bytes(out)


def write(corpus: pathlib.Path, data: bytes) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def main() -> None:
    root = pathlib.Path("fuzz/corpus")
    streams = set()
    for source in SOURCES:
        for raw in LITERAL.findall(pathlib.Path(source).read_bytes()):
            streams.add(unescape(raw))
    streams.discard(b"")
    for stream in sorted(streams):
        for target in ("decode_splits", "session"):
            write(root / target, b"\0" + stream)
        head, sep, body = stream.partition(b"\r\n\r\n")
        if sep and b"chunked" in head.lower():
            write(root / "chunked", b"\0" + body)
        elif re.match(rb"^[0-9a-fA-F]+[ \t;\r]", stream):
            write(root / "chunked", b"\0" + stream)
    print(f"{len(streams)} streams from {', '.join(SOURCES)}", file=sys.stderr)


if __name__ == "__main__":
    main()
