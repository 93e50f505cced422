#!/usr/bin/env python3
"""Fails when the book quotes code that is not there or links to a page that is not.

mdBook only warns about a missing include file, and an include of a missing anchor
silently renders as nothing; this check makes both errors. Run from anywhere:
    python3 docs/check.py
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent / "src"
INCLUDE = re.compile(r"\{\{#include\s+([^}:\s]+)(?::([A-Za-z0-9_-]+))?\s*\}\}")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def main() -> int:
    errors = []
    pages = sorted(SRC.rglob("*.md"))
    for page in pages:
        text = page.read_text(encoding="utf-8")
        where = page.relative_to(SRC.parent)
        for path, anchor in INCLUDE.findall(text):
            target = (page.parent / path).resolve()
            if not target.is_file():
                errors.append(f"{where}: includes {path}, which does not exist")
                continue
            if anchor:
                source = target.read_text(encoding="utf-8")
                if f"ANCHOR: {anchor}" not in source or f"ANCHOR_END: {anchor}" not in source:
                    errors.append(f"{where}: includes {path}:{anchor}, but that anchor is not in the file")
        for link in LINK.findall(text):
            if re.match(r"^[a-z]+:", link) or link.startswith("#"):
                continue
            target = (page.parent / link.split("#")[0]).resolve()
            if not target.exists():
                errors.append(f"{where}: links to {link}, which does not exist")
    for error in errors:
        print(error, file=sys.stderr)
    if not errors:
        print(f"book check: {len(pages)} pages, every include and link resolves")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
