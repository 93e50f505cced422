#!/usr/bin/env bash
# Regenerates the grade scorecards the book quotes (docs/src/results/grade-*.txt): a few
# Python fixture servers and v5, each scorecard whole, and its stages apart
# (…-protocol.txt, …-model.txt, …-matrix.txt, …-versus.txt, …-threads.txt, …-knee.txt)
# for the chapter to quote one at a time.
# Run from the workspace root: scripts/grade-examples.sh
set -euo pipefail
cargo build --release -q -p loadgen
out=docs/src/results
fixtures=loadgen/tests/fixtures

grade() {
    local name=$1; shift
    {
        echo "\$ loadgen grade $*"
        scripts/stamp.sh
        # The exit status is the grade's verdict, not a failure of this script.
        ./target/release/loadgen grade "$@" 2>&1 || true
    } | sed 's#/tmp/grade-[0-9]*-#/tmp/grade-PID-#' | grep -v '^  knee: ' > "$out/grade-$name.txt"
    # (the grep: the knee stage's progress line, written to the terminal as it goes)
    # Each numbered stage on its own, from its heading to the next one.
    awk -v base="$out/grade-$name" '
        /^1\. / { file = base "-protocol.txt" }
        /^2\. / { file = base "-model.txt" }
        /^3\. / { file = base "-matrix.txt" }
        /^4\. / { file = base "-versus.txt" }
        /^What each thread did/ { file = base "-threads.txt" }
        /^5\. / { file = base "-knee.txt" }
        /^The server.s own output/ { file = "" }
        file != "" && !/^$/ { print > file }
    ' "$out/grade-$name.txt"
}

grade pool4 --no-matrix -- python3 "$fixtures/pool4.py" --addr '{addr}'
grade no-content-length --no-matrix -- python3 "$fixtures/no_content_length.py" --addr '{addr}'
grade halfclose -- python3 "$fixtures/halfclose_only.py" --addr '{addr}'
grade threaded -- python3 "$fixtures/threaded.py" --addr '{addr}'
grade v5 --version v5-reactor-per-core
ls -1 "$out"/grade-*
