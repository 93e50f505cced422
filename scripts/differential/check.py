#!/usr/bin/env python3
"""The differential framing check: the same byte streams given to the workspace's decoder
(common/examples/framing.rs), to Python's h11 and to Node's llhttp (a node:http server on
loopback, node_parse.mjs), comparing for each stream: accepted or rejected; method, target
and version; the headers; the body bytes; where the next request begins.

Every disagreement must be classified against RFC 9112 in classified.py; one that is not
fails the check. With --write, the table of disagreements is stored in
docs/src/results/differential.md.

    python3 scripts/differential/check.py            # compare; fail on an unclassified one
    python3 scripts/differential/check.py --write    # and store the table
"""
import argparse
import json
import pathlib
import subprocess
import sys

import h11

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import cases  # noqa: E402
import classified  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs/src/results/differential.md"


def workspace(streams: list[bytes]) -> list[dict]:
    hexes = json.dumps([s.hex() for s in streams])
    out = subprocess.run(
        ["cargo", "run", "-q", "-p", "common", "--example", "framing"],
        input=hexes, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout)


def node(streams: list[bytes]) -> list[dict]:
    hexes = json.dumps([s.hex() for s in streams])
    out = subprocess.run(["node", str(ROOT / "scripts/differential/node_parse.mjs")],
                         input=hexes, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout)


def h11_parse(stream: bytes) -> dict:
    """What h11 makes of `stream` received whole, answering each request with an empty 200
    so that it goes on to the next."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(stream)
    messages, current = [], None
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                current = {"method": event.method.decode("latin-1"),
                           "target": event.target.decode("latin-1"),
                           "version": event.http_version.decode("latin-1"),
                           "headers": [[n.decode("latin-1"), v.decode("latin-1")]
                                       for n, v in event.headers],
                           "body": b""}
            elif isinstance(event, h11.Data):
                current["body"] += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                current["body"] = current["body"].hex()
                current["end"] = len(stream) - len(conn.trailing_data[0])
                messages.append(current)
                current = None
                conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
                if conn.our_state is h11.SWITCHED_PROTOCOL:
                    # A 200 to CONNECT hands the connection to a tunnel: no more HTTP.
                    return {"messages": messages, "outcome": "tunnel"}
                conn.send(h11.EndOfMessage())
                if conn.our_state is h11.MUST_CLOSE:
                    return {"messages": messages, "outcome": "closed"}
                conn.start_next_cycle()
            elif event is h11.NEED_DATA:
                pending = current is not None or conn.trailing_data[0]
                return {"messages": messages, "outcome": "incomplete" if pending else "end"}
            else:
                return {"messages": messages, "outcome": f"stopped at {event!r}"}
    except h11.RemoteProtocolError as e:
        return {"messages": messages, "outcome": "rejected", "detail": str(e)}


def origin_form(target: str) -> str:
    """The workspace's decoder keeps the path of an absolute-form target (RFC 9112 §3.2.2);
    the others' targets are compared in the same form."""
    for scheme in ("http://", "https://"):
        if target[:len(scheme)].lower() == scheme:
            rest = target[len(scheme):]
            cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0], default=-1)
            return rest[cut:] if cut >= 0 and rest[cut] == "/" else "/"
    return target


def differences(ours: dict, theirs: dict) -> list[str]:
    """How `theirs` differs from `ours`, field by field, message by message."""
    found = []
    for i, (a, b) in enumerate(zip(ours["messages"], theirs["messages"])):
        for field in ("method", "target", "version", "headers", "body", "end"):
            x, y = a.get(field), b.get(field)
            if field == "target":
                y = origin_form(y)
            if field == "end" and y is None:
                continue
            if x != y:
                found.append(f"request {i + 1}: {field}")
    shape = lambda r: (len(r["messages"]), r["outcome"])  # noqa: E731
    if shape(ours) != shape(theirs):
        found.append("accepted or rejected")
    return found


def summary(result: dict) -> str:
    n = len(result["messages"])
    return f"{n} request{'s' if n != 1 else ''}, {result['outcome']}"


def compare(streams: dict[str, bytes]) -> list[dict]:
    names = list(streams)
    data = [streams[n] for n in names]
    ours, from_node = workspace(data), node(data)
    rows = []
    for i, name in enumerate(names):
        if ours[i]["outcome"] == "not-http" and not ours[i]["messages"]:
            continue  # the line protocol: the other parsers do not speak it
        for parser, theirs in (("h11", h11_parse(data[i])), ("node", from_node[i])):
            diff = differences(ours[i], theirs)
            if diff:
                rows.append({"case": name, "parser": parser, "diff": diff, "stream": data[i],
                             "ours": ours[i], "theirs": theirs})
    return rows


def escape(stream: bytes, limit: int = 90) -> str:
    text = stream.decode("latin-1").encode("unicode_escape").decode("ascii")
    text = text.replace("|", "\\|").replace("`", "'")
    return text if len(text) <= limit else text[:limit] + "…"


def write_table(rows: list[dict], checked: int, command: str) -> None:
    import platform
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    node_version = subprocess.run(["node", "--version"], capture_output=True,
                                  text=True).stdout.strip()
    lines = [
        f"<!-- {command} -->",
        f"<!-- machine: {platform.node()}, kernel {platform.release()}; h11 {h11.__version__},"
        f" node {node_version} (llhttp {node_llhttp()}); at {commit} -->",
        "",
        f"{checked} byte streams ({len(cases.SHAPES)} request-smuggling shapes from"
        " `scripts/differential/cases.py`, the rest the fuzz corpus) were given to the"
        f" workspace's decoder, to h11 {h11.__version__} and to node {node_version}'s"
        " `node:http` server. They disagreed"
        f" {len(rows)} times (a disagreement is one stream and one other parser). Each kind is"
        " classified against RFC 9112 (RFC 9110 where 9112 defers to it): **workspace right**,"
        " **other right** (none may stay: the decoder is fixed instead), or **both allowed**.",
        "",
        "## The kinds",
        "",
        "<!-- ANCHOR: kinds -->",
        "| kind | verdict | disagreements | why |",
        "|---|---|---|---|",
    ]
    for name, _, _, verdict, why in classified.RULES:
        count = sum(1 for row in rows if row.get("rule") == name)
        if count:
            lines.append(f"| {name} | {verdict} | {count} | {why} |")
    lines += [
        "<!-- ANCHOR_END: kinds -->",
        "",
        "## Every disagreement",
        "",
        "\"end\": every byte read; \"closed\": the last request closes the connection;"
        " \"incomplete\": a request begun and not finished; \"rejected\": an error.",
        "",
        "| stream | other | differs in | workspace | other's reading | kind |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['case']}`: `{escape(row['stream'])}` | {row['parser']} |"
            f" {', '.join(sorted(set(d.split(': ')[-1] for d in row['diff'])))} |"
            f" {summary(row['ours'])} | {summary(row['theirs'])} | {row.get('rule')} |")
    TABLE.write_text("\n".join(lines) + "\n")


def node_llhttp() -> str:
    out = subprocess.run(["node", "-p", "process.versions.llhttp"], capture_output=True,
                         text=True)
    return out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="store the table")
    parser.add_argument("--show", action="store_true", help="print every disagreement")
    args = parser.parse_args()
    streams = dict(cases.SHAPES)
    streams.update(cases.corpus(ROOT))
    rows = compare(streams)
    unclassified = []
    for row in rows:
        row["verdict"] = classified.verdict(row)
        if row["verdict"] is None or args.show:
            print(f"{row['case']} / {row['parser']}: {row['diff']}\n  stream {escape(row['stream'], 400)}"
                  f"\n  workspace {json.dumps(row['ours'])[:600]}"
                  f"\n  {row['parser']} {json.dumps(row['theirs'])[:600]}")
        if row["verdict"] is None:
            unclassified.append(row)
    wrong = [r for r in rows if r["verdict"] and r["verdict"][0] == "other right"]
    print(f"{len(streams)} streams, {len(rows)} disagreements, {len(unclassified)} unclassified,"
          f" {len(wrong)} where the workspace is wrong")
    if args.write:
        write_table(rows, len(streams), "python3 scripts/differential/check.py --write")
    return 1 if unclassified or wrong else 0


if __name__ == "__main__":
    sys.exit(main())
