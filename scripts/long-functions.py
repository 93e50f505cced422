#!/usr/bin/env python3
"""Every Rust function longer than a screen, in every crate of the workspace.

CONTRIBUTING asks that a function fit on one screen (80 lines, from its `fn` line to its
closing brace, tests included), so a reader can hold it whole. This counts, over every
`.rs` file under the checkout (but `target/` and hidden folders), by matching braces
outside comments, strings and character literals, and exits 1 naming each function that
is longer. CI runs it.

    python3 scripts/long-functions.py            # the check: lists offenders, exit 1 if any
    python3 scripts/long-functions.py --top 10   # the ten longest, whatever their length
    python3 scripts/long-functions.py --limit 60 # a stricter screen
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FN = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:default\s+)?(?:const\s+)?(?:async\s+)?"
    r"(?:unsafe\s+)?(?:extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)"
)


def code_only(text):
    """`text` with comments, strings and character literals blanked (newlines kept), so
    that braces and `fn` are only seen where the compiler sees them."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif raw := re.match(r'b?r(#*)"', text[i:]):
            if i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
                out.append(c)
                i += 1
                continue
            end = '"' + raw.group(1)
            j = text.find(end, i + raw.end())
            j = n if j < 0 else j + len(end)
            out.append(blank(text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i : j + 1]))
            i = j + 1
        elif c == "'":
            # A character literal ('x', '\n', '\u{..}', '{') or a lifetime ('a, 'static).
            lit = re.match(r"'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'])'", text[i:])
            if lit:
                out.append(" " * lit.end())
                i += lit.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def blank(s):
    return "".join("\n" if ch == "\n" else " " for ch in s)


def functions(path):
    """(name, first line, length in lines) of each function with a body in `path`."""
    with open(path, encoding="utf-8") as f:
        code = code_only(f.read())
    lines = code.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    found = []
    for number, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        # The body opens at the first `{` after the signature, unless a `;` comes first
        # (a trait's declaration has no body). Generic bounds hold no braces.
        pos = starts[number] + m.end()
        while pos < len(code) and code[pos] not in "{;":
            pos += 1
        if pos >= len(code) or code[pos] == ";":
            continue
        depth, j = 0, pos
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        last = code.count("\n", 0, j)
        found.append((m.group(1), number + 1, last - number + 1))
    return found


def rust_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "target")
        for name in sorted(files):
            if name.endswith(".rs"):
                yield os.path.join(folder, name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=80, help="the most lines a function may have")
    parser.add_argument("--top", type=int, help="list the N longest and exit 0")
    args = parser.parse_args()
    every = [
        (length, os.path.relpath(path, ROOT), line, name)
        for path in rust_files()
        for name, line, length in functions(path)
    ]
    every.sort(reverse=True)
    if args.top:
        for length, path, line, name in every[: args.top]:
            print(f"{length:4} lines  {path}:{line}  {name}")
        return 0
    long = [f for f in every if f[0] > args.limit]
    for length, path, line, name in long:
        print(f"{path}:{line}: `{name}` is {length} lines, over the {args.limit} a screen holds")
    print(f"{len(every)} functions, {len(long)} over {args.limit} lines")
    return 1 if long else 0


if __name__ == "__main__":
    sys.exit(main())
