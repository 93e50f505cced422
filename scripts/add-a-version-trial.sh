#!/usr/bin/env bash
# Adds a throwaway version, v8-example (a copy of v1-blocking), to a scratch worktree of
# this checkout, one step at a time, and runs after each step the tests that guard adding
# a version: which fail, and what they ask for. Then lists the existing files the steps
# changed. It shows what CONTRIBUTING promises: four files by hand (the registry,
# SUMMARY.md, loadgen's manifest and serve.rs), the rest regenerated, and a failing test
# for each step left out. The checkout itself is not touched; the worktree is removed.
#
#     scripts/add-a-version-trial.sh            # about 5 minutes on two cores
#     KEEP=1 scripts/add-a-version-trial.sh     # leave the worktree to look at
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
trial="$(mktemp -d /tmp/add-a-version.XXXXXX)"
git -C "$root" worktree add -q --detach "$trial" HEAD
cleanup() { [ -n "${KEEP:-}" ] || git -C "$root" worktree remove --force "$trial"; }
trap cleanup EXIT
# The scratch tree builds in its own target/; seeding it from this one saves the
# dependencies' build.
[ -d "$root/target/debug" ] && cp -a "$root/target" "$trial/" 2>/dev/null || true
cd "$trial"

step() { printf '\n### %s\n' "$*"; }
checks() {
  # Each test binary on its own, so one failing does not hide the others.
  for t in "-p registry --lib" "-p registry --test workspace" "-p registry --test tables" \
           "-p loadgen --lib serve::" "-p harness --test fault_matrix_in_book"; do
    # shellcheck disable=SC2086
    out=$(cargo test -q $t 2>&1 || true)
    if grep -q "test result: ok" <<<"$out" && ! grep -q "FAILED\|error" <<<"$out"; then
      echo "  ok      cargo test $t"
    else
      echo "  FAILED  cargo test $t"
      grep -E "panicked|^error|add |no runner|not in|has no|differ" <<<"$out" | head -4 | sed 's/^/            /'
    fi
  done
}

step "0. the crate alone: v1-blocking copied to v8-example and renamed"
cp -r v1-blocking v8-example
sed -i 's/name = "v1-blocking"/name = "v8-example"/' v8-example/Cargo.toml
sed -i 's/V1_BLOCKING/V8_EXAMPLE/g; s/v1_blocking/v8_example/g; s/v1-blocking/v8-example/g' \
  v8-example/src/*.rs v8-example/tests/*.rs
mv v8-example/tests/v1_blocking.rs v8-example/tests/v8_example.rs
checks

step "1. its entry in registry/src/lib.rs (v1's, renamed, on port 8099)"
python3 - <<'PY'
p = 'registry/src/lib.rs'
s = open(p).read()
i = s.index('pub const V1_BLOCKING: Version = Version {')
j = s.index('\n};\n', i) + 4
entry = (s[i:j].replace('V1_BLOCKING', 'V8_EXAMPLE').replace('"v1-blocking"', '"v8-example"')
         .replace('127.0.0.1:8081', '127.0.0.1:8099').replace('v1-blocking.md', 'v8-example.md')
         .replace('v1-blocking:', 'v8-example:'))
k = s.index('/// The version called')
s = s[:k] + entry + '\n' + s[k:]
s = s.replace('    V7_URING_PER_CORE,\n', '    V7_URING_PER_CORE,\n    V8_EXAMPLE,\n', 1)
open(p, 'w').write(s)
PY
checks

step "2. its chapter, and its line in docs/src/SUMMARY.md"
printf '# v8: an example\n\nA throwaway.\n' >docs/src/v8-example.md
sed -i 's#^- \[v7: completion, a ring per core\](v7-uring-per-core.md)#&\n- [v8: an example](v8-example.md)#' \
  docs/src/SUMMARY.md
checks

step "3. loadgen's two lines: its dependency and its RUNNERS line"
sed -i 's#^v7-uring-per-core = { path = "../v7-uring-per-core" }#&\nv8-example = { path = "../v8-example" }#' \
  loadgen/Cargo.toml
sed -i 's#^    (v7_uring_per_core::SERVER, |name, args| run(name, args, v7_uring_per_core::serve)),#&\n    (v8_example::SERVER, |name, args| run(name, args, v8_example::serve)),#' \
  loadgen/src/serve.rs
checks

step "4. the generated tables"
UPDATE_DOCS=1 cargo test -q -p registry --test tables >/dev/null 2>&1 || true
UPDATE_BOOK=1 cargo test -q -p harness --test fault_matrix_in_book >/dev/null 2>&1 || true
checks

step "its fault matrix"
cargo test -q -p v8-example --test faults 2>&1 | grep -E "test result" || true

step "existing files changed (by hand: the registry, SUMMARY.md, loadgen's Cargo.toml and serve.rs)"
git status --short
