#!/usr/bin/env python3
"""Shows that scripts/stale-results.py fails when it should, in a scratch repository.

A result stamped at one commit, then a change to the code it depicts: the check must fail
and name the result, its commit, the change and the command; a review (`valid_at`) or an
acceptance (`stale`) must quiet it, and a later change must wake it again; a result made
again after a review is judged by its own, newer stamp; a file that no
entry names, and a stamp with no kernel, must fail too. Run from anywhere (a step of
.ci/run):
    python3 scripts/stale-results-test.py
"""
import os
import pathlib
import subprocess
import sys
import tempfile

CHECK = pathlib.Path(__file__).resolve().parent / "stale-results.py"
ENTRY = '[[result]]\nfiles = ["results/r.txt"]\ndepicts = ["src"]\nscript = "make r"\n'


def git(repo: pathlib.Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def commit(repo: pathlib.Path, path: str, text: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"change {path}")
    return git(repo, "rev-parse", "--short", "HEAD")


def check(repo: pathlib.Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True,
                          env={**os.environ, "STALE_RESULTS_ROOT": str(repo)})
    return done.returncode, done.stdout + done.stderr


def expect(repo: pathlib.Path, code: int, *words: str) -> None:
    got, out = check(repo)
    missing = [w for w in words if w not in out]
    if got != code or missing:
        raise SystemExit(f"stale-results-test: expected exit {code} naming {words}, got exit "
                         f"{got}, missing {missing}:\n{out}")


def manifest(repo: pathlib.Path, extra: str = "") -> str:
    return commit(repo, "docs/src/results/DEPICTS.toml", ENTRY + extra)


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        repo = pathlib.Path(scratch)
        git(repo, "init", "-q")
        git(repo, "config", "user.email", "test@example.invalid")
        git(repo, "config", "user.name", "stale-results-test")
        made = commit(repo, "src/a.rs", "fn a() {}\n")
        manifest(repo)
        stamp = f"$ make r\n# machine: 2 cores, Linux 6.1.0-test, commit {made}\n42\n"
        commit(repo, "docs/src/results/r.txt", stamp)
        expect(repo, 0, "0 stale")
        change = commit(repo, "src/a.rs", "fn a() { b() }\n")
        expect(repo, 1, "STALE", "results/r.txt", f"made at {made}", change, "make r")
        manifest(repo, f'valid_at = "{change}"\nbecause = "b() changes nothing"\n')
        expect(repo, 0, "1 reviewed")
        later = commit(repo, "src/a.rs", "fn a() { c() }\n")
        expect(repo, 1, "STALE", later)
        manifest(repo, 'stale = "too long to run again"\n')
        expect(repo, 0, "1 accepted", "too long to run again")
        commit(repo, "docs/src/results/new.txt", "$ make new\n")
        expect(repo, 1, "results/new.txt: no entry")
        (repo / "docs/src/results/new.txt").unlink()
        commit(repo, "docs/src/results/r.txt", f"$ make r\n# commit {made}\n")
        expect(repo, 1, "names no kernel")
        # Made on a dirty tree, then stored with the code it ran: not stale; a change after
        # it is.
        dirty = (f"$ make r\n# machine: 2 cores, Linux 6.1.0-test, commit {later} "
                 "(with uncommitted changes)\n")
        manifest(repo)
        (repo / "src/a.rs").write_text("fn a() { d() }\n", encoding="utf-8")
        commit(repo, "docs/src/results/r.txt", dirty)
        expect(repo, 0, "0 stale")
        after = commit(repo, "src/a.rs", "fn a() { e() }\n")
        expect(repo, 1, "STALE", after)
        # Reviewed once, then made again: its own stamp, newer than the review, decides.
        manifest(repo, f'valid_at = "{change}"\nbecause = "an old review"\n')
        expect(repo, 1, "STALE", after)
        commit(repo, "docs/src/results/r.txt",
               f"$ make r\n# machine: 2 cores, Linux 6.1.0-test, commit {after}\n43\n")
        expect(repo, 0, "0 stale", "0 reviewed")
    print("stale-results-test: the check fails on a stale result, an unnamed file and a "
          "missing stamp, a review or an acceptance quiets it until the next change, and a result made again is "
          "judged by its own stamp")
    return 0


if __name__ == "__main__":
    sys.exit(main())
