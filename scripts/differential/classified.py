"""Each kind of disagreement between the workspace's decoder and another parser, classified
against RFC 9112 (and RFC 9110 where 9112 defers to it): a verdict and why.

A rule names the shape of stream it covers (a test on the bytes), the parser, and the
verdicts' reasons; the first rule that matches a disagreement classifies it. A
disagreement no rule matches is unclassified and fails the check: a new one must be read
against the RFC and given a rule here, or the decoder fixed.
"""
import re

WORKSPACE = "workspace right"
OTHER = "other right"
BOTH = "both allowed"


def _has(pattern: bytes):
    """A test of the whole stream; case-sensitive: `(?i:...)` where case does not matter."""
    regex = re.compile(pattern, re.S)
    return lambda row: regex.search(row["stream"]) is not None


def _head(row) -> bytes:
    """The stream up to the end of the first head, its last line end included."""
    stream = row["stream"]
    ends = [i for i in (stream.find(b"\r\n\r\n"), stream.find(b"\n\n")) if i >= 0]
    return stream[:min(ends) + 2] if ends else stream


def _head_has(pattern: bytes):
    """A test of the first head, case-insensitive (field names and codings are)."""
    regex = re.compile(pattern, re.S | re.I)
    return lambda row: regex.search(_head(row)) is not None


def _outcome(row, side: str) -> str:
    return row["ours" if side == "ours" else "theirs"]["outcome"]


def _rest(row) -> bytes:
    """The bytes after the last request the workspace read."""
    messages = row["ours"]["messages"]
    return row["stream"][messages[-1]["end"]:] if messages else row["stream"]


def _no_line_end(row) -> bool:
    return b"\n" not in _rest(row) and _outcome(row, "ours") == "incomplete"


def _blank_lines_only(row) -> bool:
    """The stream has a blank or whitespace-only line where a request could begin (at its
    start, or right after a request the workspace read), or nothing but such lines after
    the workspace's last request: the lines §2.2 lets a server skip. A stream with none is
    not this rule's, however the two parsers differ on it."""
    if _outcome(row, "ours") not in ("end", "incomplete"):
        return False
    stream = row["stream"]
    starts = [0] + [m["end"] for m in row["ours"]["messages"]]
    before = any(re.match(rb"[ \t]*\r?\n", stream[at:]) for at in starts if at < len(stream))
    rest = _rest(row)
    return before or (rest != b"" and rest.strip() == b"")


def _leading_blank_line(row) -> bool:
    return re.match(rb"^(\r?\n)+[A-Z]", row["stream"]) is not None


def _limit(row) -> bool:
    return row["ours"].get("status") in (413, 431)


def _h11_closes_http10(row) -> bool:
    return (row["parser"] == "h11" and _outcome(row, "theirs") == "closed"
            and re.match(rb"^[A-Z]+ \S+ HTTP/1\.0\r?\n", row["stream"]) is not None)


RULES = [
    # (name, parser or None for any, test, verdict, why)
    ("Transfer-Encoding in HTTP/1.0", None,
     lambda r: _has(rb"^POST \S+ HTTP/1\.0\r\n(?i:transfer-encoding)")(r), WORKSPACE,
     "§6.1: a server that receives an HTTP/1.0 message with Transfer-Encoding MUST treat it"
     " as if the framing is faulty, even with a Content-Length, and close the connection;"
     " the workspace rejects it (400), the others decode it by chunks."),
    ("HTTP/1.2 and later 1.x", None, _has(rb"^\S+ \S+ HTTP/1\.[2-9]\r\n"), WORKSPACE,
     "RFC 9110 §6.2: a recipient SHOULD process a message with a higher minor version as the"
     " highest minor version it conforms to; the workspace reads HTTP/1.2 as 1.1 (h11 keeps"
     " the number it was sent, node rejects it)."),
    ("a major version other than 1", None, _has(rb"^\S+ \S+ HTTP/[02]\.\d\r\n"), WORKSPACE,
     "RFC 9110 §6.2 and §15.6.6: a server answers 505 for a major version it does not"
     " support; h11 and node read the request (HTTP/2.0 or 0.9 in a 1.x request line) on."),
    ("a target in none of the four forms", None,
     lambda r: "the target is not" in (r["ours"].get("detail") or ""), WORKSPACE,
     "§3.2: a request target is in origin, absolute, authority (CONNECT) or asterisk"
     " (OPTIONS) form; §3: an invalid request line SHOULD get a 400, which the workspace"
     " sends. h11 takes any visible characters as the target, and routes nothing."),
    ("rejected before the head is whole", None,
     lambda r: (_outcome(r, "ours") == "rejected" and not r["ours"]["messages"]
                and _outcome(r, "theirs") == "incomplete" and not r["theirs"]["messages"]),
     BOTH,
     "Neither reads a request: the workspace rejects a line as soon as it has ended and is"
     " invalid (or over a limit), the other waits for the rest of the head or body before"
     " it judges. §3 and §5 ask for a 400 either way, and say nothing of when."),
    ("a stream that ends mid-request", "node",
     lambda r: (_outcome(r, "ours") == "incomplete"
                and r["theirs"].get("detail") == "HPE_INVALID_EOF_STATE"), BOTH,
     "The stream stops inside a request: the workspace waits for more, node (told the client"
     " has closed its side) reports the request as cut short. The same reading."),
    ("rejected at once, or once the head is whole", None,
     lambda r: (_outcome(r, "ours") == "incomplete" and not r["ours"]["messages"]
                and _outcome(r, "theirs") == "rejected" and not r["theirs"]["messages"]),
     BOTH,
     "Neither reads a request: the other rejects a first line it cannot parse as soon as it"
     " has seen it, the workspace (for which the line may be the line protocol, or whose"
     " head parser judges the head whole) waits for the rest. §3 asks for a 400 either way."),
    ("line not yet ended", None, _no_line_end, BOTH,
     "No line end has arrived: the workspace waits (a line-protocol request is one line, and"
     " an HTTP request line can only be judged whole); the others reject a method they do"
     " not accept at once. Neither has read a request; §3 lets a server reject an invalid"
     " request line, and nothing obliges it to before the line ends."),
    ("an empty stream", None, lambda r: r["stream"] == b"", BOTH,
     "No bytes at all: neither reads a request, and each reports the close in its own words."),
    ("an empty line before the request line", "h11", _leading_blank_line, WORKSPACE,
     "§2.2: a server that is expecting to receive and parse a request-line SHOULD ignore at"
     " least one empty line (CRLF) received prior to the request-line; h11 rejects it."),
    ("blank or whitespace lines before a request", None, _blank_lines_only, BOTH,
     "§2.2: a server SHOULD ignore at least one empty line before the request line; the"
     " workspace ignores blank and whitespace-only lines (up to 8 KiB: the line protocol is"
     " typed at a terminal), the others reject what is not an empty line or read nothing."),
    ("over the workspace's limits", None, _limit, BOTH,
     "A body over 1 MiB (413) or more than 100 fields (431): RFC 9110 §15.5.14 and §5.4"
     " (and RFC 6585 §5) let a server refuse what is larger than it is willing to process;"
     " the others' limits are larger."),
    ("HTTP/1.0 keep-alive in h11", "h11", _h11_closes_http10, BOTH,
     "h11 does not implement HTTP/1.0 keep-alive and closes after the response; §9.3 lets"
     " a server close after any response, and §9.6 says how. The framing agrees."),
    ("Content-Length with Transfer-Encoding", "h11",
     lambda r: _head_has(rb"content-length")(r) and _head_has(rb"transfer-encoding")(r), WORKSPACE,
     "§6.1: a server MAY reject a request with both, or process it by Transfer-Encoding, but"
     " MUST close the connection after responding either way; h11 goes on reading the next"
     " request on the same connection, the request-smuggling shape the rule is there for."),
    ("a repeated Content-Length", None,
     _head_has(rb"content-length: *(\d+)\r\n(.*\r\n)?content-length: *\1\r\n"), BOTH,
     "RFC 9110 §8.6: identical Content-Length values, repeated, MAY be rejected as invalid or"
     " replaced by the single value; the workspace takes the value (h11 shows one field),"
     " node rejects. Every reading that accepts it agrees on the length."),
    ("a Content-Length list of one value", None, _head_has(rb"content-length: *(\d+), *\1\r\n"),
     BOTH,
     "RFC 9110 §8.6: a comma-separated list of the same value MAY either be rejected or"
     " replaced by the single value; the workspace (and node) reject it, h11 takes it."),
    ("a transfer coding's case", "h11", _has(rb"(?i:transfer-encoding): *[^\r\n]*[A-Z]"), BOTH,
     "§7: transfer-coding names are case-insensitive; h11 reports the field lowercased, the"
     " workspace as received. The framing agrees."),
    ("a transfer coding before chunked", "node",
     lambda r: r["ours"].get("status") == 501, BOTH,
     "§6.1: chunked is last, so the body's end is known; a server that does not implement a"
     " coding before it SHOULD answer 501 (§6.1, RFC 9110 §15.6.2), which the workspace"
     " does; node leaves the coding to the application and hands it the still-encoded body."),
    ("an empty Transfer-Encoding", "node", _head_has(rb"transfer-encoding: *\r\n"), BOTH,
     "The field has no coding in it (its grammar, #transfer-coding, allows an empty list):"
     " node ignores it and frames by the rest, the workspace refuses a message whose"
     " framing is in doubt (§6.3 asks for 400 where the framing cannot be determined)."),
    ("empty list elements in Transfer-Encoding", "h11",
     _head_has(rb"transfer-encoding: *,|transfer-encoding:[^\r\n]*,\s*(,|\r\n)"), WORKSPACE,
     "RFC 9110 §5.6.1: a recipient MUST parse and ignore a reasonable number of empty list"
     " elements; h11 rejects `, chunked`."),
    ("obs-fold", "h11", _head_has(rb"\r\n[ \t]+\S"), BOTH,
     "§5.2: a server that receives obs-fold in a request MUST either reject it (400), as the"
     " workspace does, or replace each obs-fold with SP, as h11 does."),
    ("a control byte in a field value", "h11", _head_has(rb":[^\r\n]*[\x00-\x08\x0b-\x1f\x7f]"),
     BOTH,
     "RFC 9110 §5.5: a control byte (DEL among them) is not a field-vchar, so the value is"
     " invalid; a recipient MAY retain such characters in a safe context (h11) or reject"
     " the message (workspace)."),
    ("bare LF line ends in a head", "node", _head_has(rb"(?<!\r)\n"), BOTH,
     "§2.2: a recipient MAY recognize a single LF as a line terminator; the workspace does"
     " in the head (never in the chunked framing, §7.1), node does not."),
    ("a chunk size followed by whitespace only", "h11", _has(rb"\r\n[0-9a-fA-F]+[ \t]+\r\n"),
     WORKSPACE,
     "§7.1.1: whitespace (BWS) after a chunk size is allowed only before a `;` extension;"
     " `5 ` alone is not a chunk-size line. h11 accepts it; the workspace and node reject it."),
    ("whitespace around a chunk extension's `;` and `=`", None,
     _has(rb"\r\n[0-9a-fA-F]+([ \t]+;|;[ \t]+)"), WORKSPACE,
     "§7.1.1: chunk-ext = *( BWS \";\" BWS chunk-ext-name [ BWS \"=\" BWS chunk-ext-val ] ):"
     " the grammar allows the whitespace; h11 and node reject it."),
    ("a malformed chunk extension", "h11", _has(rb"\r\n[0-9a-f]+;([^\r\n]*([\x00-\x08\x0b-\x1f]|\r(?!\n))|\r\n)"),
     WORKSPACE,
     "§7.1.1: an extension is `;` then a token name; §2.2: a bare CR is invalid outside"
     " content. h11 skips whatever follows the `;`, the workspace and node reject it."),
    ("a chunk size past 2^64", "h11", _has(rb"\r\n[0-9a-f]{17,}\r\n"), BOTH,
     "§7.1: recipients MUST anticipate large hexadecimal numerals and prevent overflow:"
     " the workspace saturates and refuses it as too large (413), h11 (Python integers)"
     " waits for the data. Neither misreads the size."),
    ("CONNECT", None, _has(rb"^CONNECT "), BOTH,
     "The workspace does not implement CONNECT: it answers it like any unknown route"
     " (404), and only a 2xx turns a connection into a tunnel (RFC 9110 §9.3.6), so it"
     " stays HTTP. h11 reports the tunnel its 200 would open; node emits `connect`, which no"
     " listener takes, and closes."),
    ("a request line with a doubled space", "node", _has(rb"^\S+  +\S+ HTTP/"), BOTH,
     "§3: a recipient MAY parse on whitespace-delimited word boundaries (node); an invalid"
     " request line SHOULD get 400 (workspace)."),
    ("a method node does not know", "node",
     lambda r: (r["theirs"].get("detail") == "HPE_INVALID_METHOD"
                and (r["ours"]["messages"] or _outcome(r, "ours") in ("incomplete", "rejected"))),
     BOTH,
     "RFC 9110 §9.1: a method is any token, case-sensitive, so `get` or `FOO` is a valid,"
     " unknown method (the workspace answers 404 or 405, or reads on if the request is not"
     " whole); node's parser knows only the registered methods and rejects the rest, which"
     " §3 allows. Where the method is the second request's, the two agree on the first."),
    ("the line protocol after a request", None,
     lambda r: _outcome(r, "ours") == "not-http", BOTH,
     "The workspace speaks two protocols on one connection (see the README's The protocol):"
     " a first line that does not end in an HTTP version is a line-protocol request, answered"
     " with one line; the others reject it as an invalid request line (§3). The requests"
     " before it are read alike."),
    ("a malformed trailer, seen at once", "h11",
     lambda r: "malformed trailer" in (r["ours"].get("detail") or "")
     and _outcome(r, "theirs") == "incomplete", BOTH,
     "§7.1.2: a trailer section is field lines; the workspace rejects a malformed one as soon"
     " as its line ends, h11 waits for the section's end before it reads them."),
    ("an absolute URI node's parser refuses", "node",
     lambda r: r["theirs"].get("detail") == "HPE_INVALID_URL" and (
         r["ours"]["messages"] or _outcome(r, "ours") == "incomplete"), BOTH,
     "§3.2.2: the absolute form is an absolute-URI (RFC 3986 §4.3: a scheme, `:`, then a"
     " path that need not start with `//`); llhttp accepts only `scheme://authority` forms."
     " The workspace reads the path (or routes the URI as it is, to a 404)."),
    ("two Host fields", "node", _head_has(rb"\r\nhost:[^\r\n]*\r\n(.*\r\n)?host:"), WORKSPACE,
     "§3.2: a server MUST respond 400 to a request with more than one Host field line; node"
     " accepts it."),
]


def verdict(row: dict):
    """(verdict, why) for a disagreement, or None if no rule covers it."""
    for name, parser, test, verdict_, why in RULES:
        if parser in (None, row["parser"]) and test(row):
            row["rule"] = name
            return verdict_, why
    return None
