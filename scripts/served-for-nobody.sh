#!/usr/bin/env bash
# The slow-handler scenario (50 clients, closed loop, GET /sleep?ms=100, 5 s, 2 s timeout)
# against one version, counted from both ends: the answers the clients received in time,
# and the requests the server's handlers ran (/stats' `requests`) once it has drained what
# was still queued when the load stopped. The difference is the work the server did for
# clients that had already given up. (A /stats reading waits in the same queue as the
# load's requests, which is why none is taken until the load is over.)
#
#     cargo build --release -p loadgen -p v4-syscalls -p v3-thread-pool
#     scripts/served-for-nobody.sh v4-syscalls        # any version, with its own options after
#     scripts/served-for-nobody.sh v4-syscalls --skip-departed
set -euo pipefail
cd "$(dirname "$0")/.."
version=$1
shift
port=18199
requests() {
  curl -s "http://127.0.0.1:$port/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["requests"])'
}

"./target/release/$version" --addr "127.0.0.1:$port" "$@" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/hello" && break; sleep 0.1; done

echo "\$ loadgen bench --addr <$version${*:+ $*}> -c 50 -d 5s --timeout 2s --path '/sleep?ms=100'"
scripts/stamp.sh
before=$(requests)
./target/release/loadgen bench --addr "127.0.0.1:$port" -c 50 -d 5s --timeout 2s --path '/sleep?ms=100'
# Drained once two readings a second apart differ only by the reading itself (each /stats
# is a request too, so every reading is taken off the count).
previous=$(requests)
readings=1
sleep 1
now=$(requests)
readings=2
while [ "$now" -ne $((previous + 1)) ]; do
  previous=$now
  sleep 1
  now=$(requests)
  readings=$((readings + 1))
done
echo "server: handlers run, once its queue had drained: $((now - before - readings))"
# What shedding, where asked for (--skip-departed, --max-queue-wait), kept from handlers.
curl -s "http://127.0.0.1:$port/stats" | python3 -c '
import json, sys
shedding = json.load(sys.stdin).get("shedding", {})
counted = {k: shedding[k] for k in ("shed", "expired", "departed") if shedding.get(k)}
if counted:
    print("server: shedding " + ", ".join(f"{k} {v}" for k, v in counted.items()))'

