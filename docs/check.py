#!/usr/bin/env python3
"""Fails when the book quotes code that is not there, links to a page that is not, or sets
an exercise without its answer.

mdBook only warns about a missing include file, and an include of a missing anchor
silently renders as nothing; this check makes both errors. Run from anywhere:
    python3 docs/check.py

What counts as an exercise, and as its answer:
- an exercise section is a level-two heading whose text starts with "Exercises"
  (`## Exercises`, `## Exercises: build it yourself`), up to the next level-one or
  level-two heading;
- an exercise is each top-level numbered item in it: a line that starts, with no
  indentation, with a number, a dot and a space (`1. ...`), outside a fenced code block;
  everything up to the next such line, or the end of the section, belongs to it;
- its answer is a `<details>` block whose `<summary>` is "Answer", within the item
  (indented as the item's text is, so that mdBook folds it under the item), closed by
  `</details>`, with some text between the two.
A section with no exercise in it is an error as well: it promises some.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent / "src"
INCLUDE = re.compile(r"\{\{#include\s+([^}:\s]+)(?::([A-Za-z0-9_-]+))?\s*\}\}")
LINK = re.compile(r"\]\(([^)\s]+)\)")
EXERCISES = re.compile(r"^##\s+Exercises\b")
SECTION_END = re.compile(r"^#{1,2}\s")
ITEM = re.compile(r"^(\d+)\.\s+(.*)")
FENCE = re.compile(r"^\s*(```|~~~)")
ANSWER_OPEN = re.compile(r"^\s+<details>\s*<summary>\s*Answer\s*</summary>")
ANSWER_CLOSE = re.compile(r"^\s+</details>\s*$")


def includes_and_links(page, text, where):
    errors = []
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
    return errors


def exercise_sections(lines):
    """(line number of the heading, [(line number, line)] of its body) for each section."""
    sections = []
    current = None
    fenced = False
    for number, line in enumerate(lines, start=1):
        if FENCE.match(line):
            fenced = not fenced
        if not fenced and SECTION_END.match(line):
            current = None
            if EXERCISES.match(line):
                current = (number, [])
                sections.append(current)
            continue
        if current is not None:
            current[1].append((number, line, fenced))
    return sections


def exercises(body):
    """(number as written, line number, first line, [lines]) for each top-level item."""
    items = []
    for number, line, fenced in body:
        item = None if fenced else ITEM.match(line)
        if item:
            items.append((item.group(1), number, item.group(2), []))
        elif items:
            items[-1][3].append(line)
    return items


def has_answer(lines):
    """Whether the item's lines hold a closed, non-empty `<details>` Answer block."""
    inside = None
    for line in lines:
        if inside is None and ANSWER_OPEN.match(line):
            inside = [line.split("</summary>", 1)[1]]
        elif inside is not None and ANSWER_CLOSE.match(line):
            if "".join(inside).strip():
                return True
            inside = None
        elif inside is not None:
            inside.append(line)
    return False


def unanswered(lines, where):
    errors = []
    for heading, body in exercise_sections(lines):
        items = exercises(body)
        if not items:
            errors.append(f"{where}:{heading}: an Exercises section with no numbered exercise")
        for written, number, first, item_lines in items:
            if not has_answer(item_lines):
                start = first if len(first) <= 60 else first[:57] + "..."
                errors.append(
                    f"{where}:{number}: exercise {written} has no answer "
                    f"(a <details><summary>Answer</summary> ... </details> block under it): {start}"
                )
    return errors


def main() -> int:
    errors = []
    answered = 0
    pages = sorted(SRC.rglob("*.md"))
    for page in pages:
        text = page.read_text(encoding="utf-8")
        where = page.relative_to(SRC.parent)
        errors += includes_and_links(page, text, where)
        lines = text.splitlines()
        errors += unanswered(lines, where)
        answered += sum(len(exercises(body)) for _, body in exercise_sections(lines))
    for error in errors:
        print(error, file=sys.stderr)
    if not errors:
        print(
            f"book check: {len(pages)} pages, every include and link resolves, "
            f"all {answered} exercises have an answer"
        )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
