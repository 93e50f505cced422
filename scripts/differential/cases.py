"""The byte streams the differential check feeds every parser: request-smuggling shapes,
each named (the name is the key of its classification), and the fuzz corpus.

A shape is one stream, usually a request whose framing is in question followed by a plain
`GET /next`, so that where each parser thinks the first request ends shows in what it makes
of the bytes after it.
"""
import hashlib
import pathlib

NEXT = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"


def post(headers: bytes, body: bytes = b"") -> bytes:
    """A POST with the given header lines (CRLF-ended), its body, then GET /next."""
    return b"POST /echo HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n" + body + NEXT


def chunked(body: bytes) -> bytes:
    return post(b"Transfer-Encoding: chunked\r\n", body)


def head(lines: bytes) -> bytes:
    """A request whose head is `lines` (CRLF-ended), no body, then GET /next."""
    return lines + b"\r\n" + NEXT


SHAPES: dict[str, bytes] = {
    # Baselines: every parser must agree on these.
    "get": NEXT,
    "post-content-length": post(b"Content-Length: 5\r\n", b"hello"),
    "post-chunked": chunked(b"5\r\nhello\r\n0\r\n\r\n"),
    "http10-keep-alive": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + NEXT,
    "http10-closes": b"GET / HTTP/1.0\r\n\r\n" + NEXT,
    "connection-close": b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + NEXT,
    "blank-line-before-request": b"\r\n" + NEXT,
    "expect-100-continue": post(b"Expect: 100-continue\r\nContent-Length: 2\r\n", b"hi"),
    # Content-Length and Transfer-Encoding together and apart (RFC 9112 §6.1-§6.3).
    "cl-then-te": post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                       b"5\r\nhello\r\n0\r\n\r\n"),
    "te-then-cl": post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                       b"5\r\nhello\r\n0\r\n\r\n"),
    "cl-twice-same": post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
    "cl-twice-differ": post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
    "cl-list-same": post(b"Content-Length: 5, 5\r\n", b"hello"),
    "cl-plus": post(b"Content-Length: +5\r\n", b"hello"),
    "cl-negative": post(b"Content-Length: -1\r\n", b"hello"),
    "cl-hex": post(b"Content-Length: 0x5\r\n", b"hello"),
    "cl-leading-zeros": post(b"Content-Length: 005\r\n", b"hello"),
    "cl-space-inside": post(b"Content-Length: 5 5\r\n", b"hello"),
    "cl-empty": post(b"Content-Length: \r\n"),
    "cl-huge": post(b"Content-Length: 99999999999999999999999\r\n", b"hello"),
    "cl-trailing-space": post(b"Content-Length: 5 \r\n", b"hello"),
    "cl-get-with-body": b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + NEXT,
    "te-upper": post(b"Transfer-Encoding: CHUNKED\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-gzip-chunked": post(b"Transfer-Encoding: gzip, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-chunked-gzip": post(b"Transfer-Encoding: chunked, gzip\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-chunked-twice": post(b"Transfer-Encoding: chunked, chunked\r\n",
                             b"5\r\nhello\r\n0\r\n\r\n"),
    "te-two-headers": post(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                           b"5\r\nhello\r\n0\r\n\r\n"),
    "te-identity": post(b"Transfer-Encoding: identity\r\n", b"hello"),
    "te-xchunked": post(b"Transfer-Encoding: xchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-empty-list-item": post(b"Transfer-Encoding: , chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-empty": post(b"Transfer-Encoding: \r\n", b"hello"),
    "te-http10": b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n" + NEXT,
    "te-space-before-colon": post(b"Transfer-Encoding : chunked\r\n",
                                  b"5\r\nhello\r\n0\r\n\r\n"),
    "te-tab-value": post(b"Transfer-Encoding:\tchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-obs-fold": post(b"Transfer-Encoding:\r\n chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te-vertical-tab": post(b"Transfer-Encoding: \x0bchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    # Header lines (RFC 9112 §5).
    "obs-fold": head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n"),
    "space-before-colon": head(b"GET / HTTP/1.1\r\nHost : a\r\n"),
    "space-in-name": head(b"GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n"),
    "empty-name": head(b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n"),
    "no-colon": head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n"),
    "nul-in-value": head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n"),
    "del-in-value": head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7fb\r\n"),
    "obs-text-in-value": head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xe9\r\n"),
    "bare-cr-in-value": head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n"),
    "value-trailing-space": head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b  \r\n"),
    "leading-space-first-header": head(b"GET / HTTP/1.1\r\n Host: a\r\n"),
    "many-headers": head(b"GET / HTTP/1.1\r\nHost: a\r\n"
                         + b"".join(b"X-%d: v\r\n" % i for i in range(120))),
    # Line ends (RFC 9112 §2.2).
    "bare-lf-head": b"GET / HTTP/1.1\nHost: a\n\n" + NEXT,
    "bare-cr-line-ends": b"GET / HTTP/1.1\rHost: a\r\r\n" + NEXT,
    "bare-lf-chunk-line": chunked(b"5\nhello\r\n0\r\n\r\n"),
    "bare-lf-after-chunk-data": chunked(b"5\r\nhello\n0\r\n\r\n"),
    "bare-lf-last-chunk": chunked(b"5\r\nhello\r\n0\n\n"),
    # Chunk sizes and extensions (RFC 9112 §7.1).
    "chunk-upper-hex": chunked(b"A\r\n0123456789\r\n0\r\n\r\n"),
    "chunk-leading-zeros": chunked(b"0005\r\nhello\r\n0000\r\n\r\n"),
    "chunk-0x": chunked(b"0x5\r\nhello\r\n0\r\n\r\n"),
    "chunk-plus": chunked(b"+5\r\nhello\r\n0\r\n\r\n"),
    "chunk-space-before-size": chunked(b" 5\r\nhello\r\n0\r\n\r\n"),
    "chunk-space-after-size": chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
    "chunk-extension": chunked(b"5;name=value\r\nhello\r\n0\r\n\r\n"),
    "chunk-extension-quoted": chunked(b'5;name="a;b"\r\nhello\r\n0\r\n\r\n'),
    "chunk-extension-bws": chunked(b"5 ; name = value\r\nhello\r\n0\r\n\r\n"),
    "chunk-extension-no-name": chunked(b"5;\r\nhello\r\n0\r\n\r\n"),
    "chunk-extension-bare-cr": chunked(b"5;a\rb\r\nhello\r\n0\r\n\r\n"),
    "chunk-extension-ctl": chunked(b"5;a\x01b\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-overflow": chunked(b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    "chunk-data-too-long": chunked(b"5\r\nhelloXX\r\n0\r\n\r\n"),
    "chunk-data-too-short": chunked(b"5\r\nhell\r\n0\r\n\r\n"),
    "chunk-trailer": chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
    "chunk-trailer-no-colon": chunked(b"5\r\nhello\r\n0\r\nX-T\r\n\r\n"),
    "chunk-missing-last": post(b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n")[:-len(NEXT)],
    # Request lines and targets (RFC 9112 §3).
    "absolute-form": head(b"GET http://a/b?c HTTP/1.1\r\nHost: a\r\n"),
    "absolute-form-no-path": head(b"GET http://a HTTP/1.1\r\nHost: a\r\n"),
    "absolute-form-https": head(b"GET https://a/b HTTP/1.1\r\nHost: a\r\n"),
    "asterisk-form": head(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n"),
    "authority-form": head(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n"),
    "double-space": head(b"GET  / HTTP/1.1\r\nHost: a\r\n"),
    "tab-separators": head(b"GET\t/\tHTTP/1.1\r\nHost: a\r\n"),
    "trailing-space-line": head(b"GET / HTTP/1.1 \r\nHost: a\r\n"),
    "lower-case-version": head(b"GET / http/1.1\r\nHost: a\r\n"),
    "version-1-2": head(b"GET / HTTP/1.2\r\nHost: a\r\n"),
    "version-2-0": head(b"GET / HTTP/2.0\r\nHost: a\r\n"),
    "version-0-9": head(b"GET / HTTP/0.9\r\nHost: a\r\n"),
    "lower-case-method": head(b"get / HTTP/1.1\r\nHost: a\r\n"),
    "odd-method": head(b"G@T / HTTP/1.1\r\nHost: a\r\n"),
    "leading-space-line": head(b" GET / HTTP/1.1\r\nHost: a\r\n"),
    "non-utf8-target": head(b"GET /\xff HTTP/1.1\r\nHost: a\r\n"),
    "fragment-in-target": head(b"GET /a#b HTTP/1.1\r\nHost: a\r\n"),
    # Host (RFC 9112 §3.2).
    "no-host": head(b"GET / HTTP/1.1\r\n"),
    "two-hosts": head(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n"),
    "empty-host": head(b"GET / HTTP/1.1\r\nHost:\r\n"),
    "http10-no-host": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + NEXT,
}


def corpus(root: pathlib.Path) -> dict[str, bytes]:
    """The fuzz corpora's streams, without the cut header each input begins with (see
    fuzz/src/lib.rs), named by a hash of the stream."""
    streams = {}
    for target in ("decode_splits", "session"):
        for path in sorted((root / "fuzz" / "corpus" / target).glob("*")):
            data = path.read_bytes()
            if not data:
                continue
            cuts = data[0] % 17
            stream = data[1 + 2 * cuts:] if len(data) > 2 * cuts else data[1:]
            streams["corpus-" + hashlib.sha1(stream).hexdigest()[:12]] = stream
    return streams
