#!/usr/bin/env python3
"""Fails when a stored result or a screenshot is older than the code it depicts.

Every file in docs/src/results/ and docs/src/images/ is named by an entry of
docs/src/results/DEPICTS.toml, which says which source paths the result measures, the
command that makes it again, and (where the file cannot say it) the machine, kernel and
commit it was made on. A result is stale when a commit after the one it was made on
touched a path it depicts. The check fails on every stale result that is not either

  - reviewed as still valid: `valid_at = "<commit>"` and `because = "..."`; a change
    after that commit makes it stale again, so a review covers only what it read; or
  - accepted as stale: `stale = "why it was not regenerated"`; it is listed on every run.

It also fails on a file that no entry names (a new result cannot slip in unstamped), on
an entry whose files are gone, and on a result that names no machine, kernel or commit.

The commit a result was made on is, in order: `made_at` in its entry; a `commit <hash>`
(or `at <hash>`) in the first lines of its stamp file (the entry's `stamp`, else its first
file; a screenshot's is the `.stamp` file beside it); else the commit that stored the file
(`git log -1 -- FILE`), an upper bound, said so in the output. A stamp made on a tree with
uncommitted changes (scripts/stamp.sh says so) was made on the code that the commit
storing the result then committed with it: changes made by a commit that also stores one
of the result's files do not count against it. Needs the git history:

    python3 scripts/stale-results.py          # the check (a step of .ci/run)
    python3 scripts/stale-results.py --list   # every result, its commit and its state
"""
import fnmatch
import os
import pathlib
import re
import subprocess
import sys
import tomllib

# STALE_RESULTS_ROOT: another repository to check (scripts/stale-results-test.py uses one).
ROOT = pathlib.Path(os.environ.get("STALE_RESULTS_ROOT") or pathlib.Path(__file__).resolve().parent.parent)
DOCS = ROOT / "docs" / "src"
MANIFEST = DOCS / "results" / "DEPICTS.toml"
# Every file under these folders must be named by an entry; the manifest and the
# screenshots' stamps are the check's own inputs, not results.
WATCHED = ("results", "images")
NOT_RESULTS = ("results/DEPICTS.toml", "images/*.stamp")
STAMP_LINES = 12
# What `models = [...]` stands for: each version's crate and the part of common that is
# its model. The decoder, handlers and recorder are shared alike and not listed.
BLOCKING, EVENTED = "common/src/blocking.rs", "common/src/evented.rs"
EVENT_LOOP, COMPLETION = "common/src/event_loop.rs", "common/src/completion.rs"
MODELS = {
    "v1-blocking": [BLOCKING],
    "v2-thread-per-conn": [BLOCKING],
    "v2-process-per-conn": [BLOCKING],
    "v3-thread-pool": [BLOCKING],
    "v4-nio": [EVENTED],
    "v4-syscalls": [EVENT_LOOP, COMPLETION],
    "v5-reactor-per-core": [EVENTED, EVENT_LOOP],
    "v6-async": [],
    "v7-uring-per-core": [COMPLETION],
}
# A stamp added after the run names the commit that stored the file: an upper bound.
STORED = re.compile(r"\bstored at ([0-9a-f]{7,40})\b")
COMMIT = [re.compile(p) for p in (r"\bcommit ([0-9a-f]{7,40})\b", r"\bat ([0-9a-f]{7,40})\b",
                                  r"\bthis build: ([0-9a-f]{7,40})\b")]
# A stamp may say truthfully that it does not know: "the machine and kernel were not
# recorded" names them as unknown, which is what the check asks of an old result.
KERNEL = re.compile(r"(\d+\.\d+\.\d+-\S+|Linux \d+\.\d+|kernel \d+\.\d+|kernel (was |were )?not recorded)")
MACHINE = re.compile(r"(\d+ cores|Xeon|EPYC|machine: |machine and kernel were not recorded)")


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def commit_of(hash_: str) -> str:
    return git("rev-parse", "--verify", "--quiet", f"{hash_}^{{commit}}")


def is_ancestor(older: str, newer: str) -> bool:
    """Whether `older` is `newer` or one of its ancestors (a shallow clone may not know)."""
    done = subprocess.run(["git", "merge-base", "--is-ancestor", older, newer], cwd=ROOT,
                          capture_output=True)
    return done.returncode == 0


def stamp_text(entry: dict, files: list[str]) -> tuple[str, str]:
    """The stamp file's name and its first lines (a screenshot's stamp is beside it)."""
    name = entry.get("stamp", files[0])
    if name.endswith(".png"):
        name += ".stamp"
    path = DOCS / name
    if not path.is_file():
        return name, ""
    with path.open(encoding="utf-8", errors="replace") as f:
        return name, "".join(line for _, line in zip(range(STAMP_LINES), f))


def made_at(entry: dict, files: list[str], text: str) -> tuple[str, str]:
    """The full hash the result was made on, and where that came from."""
    if "made_at" in entry:
        full = commit_of(entry["made_at"])
        if full:
            return full, "its entry's made_at"
        return "", f"made_at {entry['made_at']} is not a commit of this repository"
    for found in STORED.findall(text):
        full = commit_of(found)
        if full:
            return full, "the commit that stored it, as its stamp says: an upper bound"
    for pattern in COMMIT:
        for found in pattern.findall(text):
            full = commit_of(found)
            if full:
                return full, "its own stamp"
    stored = [git("log", "-1", "--format=%H", "--", str(DOCS / f)) for f in files]
    stored = [s for s in stored if s]
    if not stored:
        return "", "no commit: the file is not committed yet"
    # The newest of the files' storing commits: an upper bound on when the run was made.
    newest = max(stored, key=lambda h: int(git("log", "-1", "--format=%ct", h) or 0))
    return newest, "the commit that stored it (an upper bound: the run may be older)"


def expand(entry: dict) -> list[str]:
    files = []
    for pattern in entry["files"]:
        matches = sorted(str(p.relative_to(DOCS)) for p in DOCS.glob(pattern) if p.is_file())
        files += [m for m in matches if m not in files]
    return files


def depicted(entry: dict) -> list[str]:
    """The repository paths an entry depicts: its models' and its own."""
    names = entry.get("models", [])
    if "all" in names:
        names = list(MODELS)
    paths = []
    for name in names:
        if name not in MODELS:
            raise SystemExit(f"{MANIFEST.name}: {entry['files']}: no model {name!r}")
        paths += [f"{name}/src", *MODELS[name]]
    paths += entry.get("depicts", [])
    return sorted(set(paths))


def newer_changes(since: str, paths: list[str]) -> list[str]:
    if not paths:
        # Without paths, git log would list every commit: a result that depicts nothing
        # of today's code (a comparison of two fixed builds) cannot go stale.
        return []
    log = git("log", "--no-merges", "--format=%h %ad %s", "--date=short", f"{since}..HEAD", "--",
              *paths)
    return [line for line in log.splitlines() if line]


def files_in_repo(files: list[str]) -> list[str]:
    return [str((DOCS / f).relative_to(ROOT)) for f in files]


def short(hash_: str) -> str:
    return hash_[:7]


def judge(entry: dict) -> tuple[str, list[str]]:
    """One entry's state (ok, stale, accepted, reviewed, broken) and what to say of it."""
    files = expand(entry)
    label = ", ".join(entry["files"])
    if not files:
        return "broken", [f"{label}: names no file that exists"]
    name, text = stamp_text(entry, files)
    lines = []
    for what, pattern, key in (("kernel", KERNEL, "kernel"), ("machine", MACHINE, "machine")):
        if not pattern.search(text) and key not in entry:
            lines.append(f"{label}: names no {what} (in {name}, or `{key}` in its entry)")
    commit, source = made_at(entry, files, text)
    if not commit:
        return "broken", lines + [f"{label}: {source}"]
    if lines:
        return "broken", lines
    since = entry.get("valid_at", commit)
    if "valid_at" in entry and not commit_of(since):
        return "broken", [f"{label}: valid_at {since} is not a commit of this repository"]
    if "valid_at" in entry and is_ancestor(since, commit) and since != commit:
        # Remade since it was reviewed: its own stamp says what it was made on, and the
        # review, of an older result, no longer applies.
        since = commit
        entry = {k: v for k, v in entry.items() if k not in ("valid_at", "because")}
    paths = depicted(entry)
    changes = newer_changes(since, paths)
    if "uncommitted changes" in text:
        storing = {line.split()[0] for line in newer_changes(since, files_in_repo(files))}
        changes = [c for c in changes if c.split()[0] not in storing]
    head = f"{label}: made at {short(commit)} ({source})"
    if not paths:
        return "ok", [f"{head}; depicts no code of today's tree: {entry['history']}"]
    if not changes:
        if "valid_at" in entry:
            return "reviewed", [f"{head}; reviewed valid at {short(since)}: {entry['because']}"]
        return "ok", [head]
    detail = [f"{head}; {len(changes)} later change(s) to {', '.join(paths)}",
              f"    newest: {changes[0]}", f"    to make it again: {entry['script']}"]
    if "stale" in entry:
        return "accepted", detail + [f"    accepted as stale: {entry['stale']}"]
    return "stale", detail


def unnamed(entries: list[dict]) -> list[str]:
    named = {f for entry in entries for f in expand(entry)}
    missing = []
    for folder in WATCHED:
        for path in sorted((DOCS / folder).rglob("*")):
            rel = str(path.relative_to(DOCS))
            if path.is_file() and rel not in named and not any(
                    fnmatch.fnmatch(rel, p) for p in NOT_RESULTS):
                missing.append(f"{rel}: no entry in {MANIFEST.relative_to(ROOT)} names it")
    return missing


def main() -> int:
    if git("rev-parse", "--is-shallow-repository") == "true":
        print("stale-results: a shallow clone has not the history this check reads; "
              "run `git fetch --unshallow` first", file=sys.stderr)
        return 1
    entries = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))["result"]
    verbose = "--list" in sys.argv[1:]
    states: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for entry in entries:
        state, lines = judge(entry)
        states.setdefault(state, []).extend(lines)
        counts[state] = counts.get(state, 0) + 1
    missing = unnamed(entries)
    states.setdefault("broken", []).extend(missing)
    counts["broken"] = counts.get("broken", 0) + len(missing)
    shown = ("ok", "reviewed", "accepted", "stale", "broken") if verbose else (
        "accepted", "stale", "broken")
    titles = {"ok": "up to date", "reviewed": "reviewed as still valid",
              "accepted": "stale, accepted (regenerate when you can)",
              "stale": "STALE: older than the code it depicts",
              "broken": "NOT CHECKABLE"}
    for state in shown:
        if states.get(state):
            print(f"== {titles[state]}")
            print("\n".join(states[state]))
    print(f"stale-results: {len(entries)} entries: "
          + ", ".join(f"{counts.get(s, 0)} {s}" for s in titles))
    return 1 if states.get("stale") or states.get("broken") else 0


if __name__ == "__main__":
    sys.exit(main())
