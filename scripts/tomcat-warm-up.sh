#!/usr/bin/env bash
# How a fresh JVM warms up: starts the repository's Tomcat (peers/tomcat, 10 threads) as
# `compare --peers` does, then drives it for one second at a time with loadgen (16
# keep-alive connections, GET /hello) and prints each second's rate. The reason compare
# warms Tomcat up for 8 s before measuring it.
#
#   scripts/tomcat-warm-up.sh [seconds]      # default 10
set -euo pipefail
cd "$(dirname "$0")/.."
# The command and the machine, kernel and commit first: the stored result's stamp.
scripts/stamp.sh scripts/tomcat-warm-up.sh "$@"
seconds=${1:-10}
home=/usr/share/tomcat10
[ -f "$home/bin/bootstrap.jar" ] || { echo "Tomcat 10 not found in $home: apt-get install tomcat10" >&2; exit 1; }
cargo build --release -q -p loadgen
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cp -r peers/tomcat/. "$dir/"
mkdir -p "$dir/logs" "$dir/temp" "$dir/work"
find "$dir" -type f -exec sed -i "s|@PORT@|$port|g; s|@DIR@|$dir|g; s|@THREADS@|10|g" {} +
java -XX:-UsePerfData -Djava.net.preferIPv4Stack=true \
  -Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager \
  -Djava.util.logging.config.file="$dir/conf/logging.properties" \
  -Dcatalina.home=$home -Dcatalina.base="$dir" -Djava.io.tmpdir="$dir/temp" \
  -cp $home/bin/bootstrap.jar:$home/bin/tomcat-juli.jar \
  org.apache.catalina.startup.Bootstrap start 2>"$dir/logs/tomcat.log" &
pid=$!
trap 'kill -9 $pid 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$port/hello"; do
  kill -0 $pid 2>/dev/null || { echo "Tomcat exited; its log:" >&2; cat "$dir/logs/tomcat.log" >&2; exit 1; }
  sleep 0.2
done
echo "Tomcat 10 (NIO, 10 threads) on 127.0.0.1:$port, fresh; loadgen bench -c 16 -d 1s, $seconds times:"
for i in $(seq "$seconds"); do
  rate=$(./target/release/loadgen bench --addr "127.0.0.1:$port" -c 16 -d 1s 2>&1 | sed -n 's/^requests:.*, \([0-9]*\) answered per second/\1/p')
  echo "second $i: $rate requests/s"
done
