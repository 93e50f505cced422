#!/usr/bin/env bash
# Screenshots for the README and the book, with headless Chromium (apt-get install
# chromium): v4-nio's live page while 1,000 idle connections are held and loadgen drives
# keep-alive load beside them, and the compare report (run `loadgen compare` first).
#
#   scripts/screenshots.sh      # writes docs/src/images/live-v4-nio.png, report.png and
#                               # kernel-waits.png (from target/waits, `loadgen waits`)
set -euo pipefail
cd "$(dirname "$0")/.."
shot() { chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "$@" 2>/dev/null; }
# Each picture's stamp beside it (IMAGE.png.stamp): the command, the machine, kernel and
# commit, and what the picture was taken of; scripts/stale-results.py reads the commit.
stamp() {
  local image=$1; shift
  { scripts/stamp.sh scripts/screenshots.sh; echo "# $*"; } >"$image.stamp"
}
cargo build --release -q -p v4-nio -p loadgen
# Without --trace-live: with it the page asks for /trace without end, and the browser's
# virtual time, which waits for the page's requests, never runs out.
./target/release/v4-nio --addr 127.0.0.1:18785 >/dev/null 2>&1 &
server=$!
trap 'kill $server $holder $load 2>/dev/null; true' EXIT
sleep 0.5
sleep 30 | python3 scripts/hold-idle.py 127.0.0.1:18785 1000 >/dev/null &
holder=$!
./target/release/loadgen bench --addr 127.0.0.1:18785 -c 32 -d 20s >/dev/null 2>&1 &
load=$!
sleep 3
# The page's clock runs on the browser's virtual time: 8 s of it, 16 samples, while the
# real load runs.
shot --window-size=1100,1500 --virtual-time-budget=8000 \
  --screenshot=docs/src/images/live-v4-nio.png http://127.0.0.1:18785/
stamp docs/src/images/live-v4-nio.png "v4-nio's live page, 1000 idle connections held and loadgen bench -c 32 beside them"
if [ -s target/compare/report.html ]; then
  shot --window-size=1100,2600 --screenshot=docs/src/images/report.png "file://$PWD/target/compare/report.html"
  stamp docs/src/images/report.png "target/compare/report.html, written $(date -u -r target/compare/report.html '+%Y-%m-%d %H:%M UTC'); its first lines name the run"
fi
# The kernel-waits sweep's two charts (run `loadgen waits` first), without its tables.
if [ -s target/waits/report.html ]; then
  charts=$(mktemp --suffix=.html)
  python3 -c 'import re, sys; html = open(sys.argv[1]).read()
print("<!doctype html><body style=\"margin:0\">" + "".join(re.findall(r"<svg.*?</svg>", html, re.S)) + "</body>")' \
    target/waits/report.html >"$charts"
  shot --window-size=960,770 --screenshot=docs/src/images/kernel-waits.png "file://$charts"
  stamp docs/src/images/kernel-waits.png "the charts of target/waits/report.html, written $(date -u -r target/waits/report.html '+%Y-%m-%d %H:%M UTC')"
  rm -f "$charts"
fi
ls -l docs/src/images/
