#!/usr/bin/env bash
# Restart-to-ready after N journaled completions (quality.md: ≤ 10 s for 1,000,000).
#
#   benches/restart.sh [TARGET_COMPLETIONS] [RESTARTS]     (defaults 1000000, 3)
#
# 1. Starts a release server on a fresh temporary data directory with checkpoints
#    effectively off (intervals 86400 s, so the whole history stays in the journal) and
#    relaxed durability (only to get there faster; replay does not depend on it).
# 2. Drives `memora-bench --scenario complete` in 30 s rounds until the completions
#    counted by the generator reach TARGET_COMPLETIONS (warmup completions are journaled
#    too, so the journal holds a few more; recovery's `replayed` is the exact count).
# 3. kill -9, then RESTARTS times with the files in the page cache ("warm") and RESTARTS
#    times after evicting the data directory's files from it with posix_fadvise
#    DONTNEED ("cold"; only these files, the rest of the machine's cache is untouched):
#    start `serve`, time until GET /readyz answers 200 (polled every 10 ms), print the
#    log's "recovered" line, kill -9 again. No request is sent between restarts, so
#    every restart replays the same journal.
#
# Environment: BIN [target/release], DATA [data/fcc-2018], PORT [18081],
# STUDENTS [1000], CONNECTIONS [64], KEEP=1 keeps the temporary directory.
set -euo pipefail

TARGET=${1:-1000000}
RESTARTS=${2:-3}
BIN=${BIN:-target/release}
DATA=${DATA:-data/fcc-2018}
PORT=${PORT:-18081}
STUDENTS=${STUDENTS:-1000}
CONNECTIONS=${CONNECTIONS:-64}

dir=$(mktemp -d /tmp/memora-restart.XXXXXX)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

cat >"$dir/memora.toml" <<EOF
[http]
addr = "127.0.0.1:$PORT"
[storage]
data_dir = "data"
snapshots_dir = "snapshots"
[journal]
durability = "relaxed"
[checkpoint]
progress_interval_secs = 86400
wallet_interval_secs = 86400
[auth]
argon2_memory_kib = 1024
argon2_iterations = 1
argon2_parallelism = 1
[rate_limits]
enabled = false
[log]
level = "info"
EOF
echo "bench-admin-password" >"$dir/admin.pw"
"$BIN/memora" --config "$dir/memora.toml" import "$DATA"/*.json >&2
"$BIN/memora" --config "$dir/memora.toml" admin create --email admin@bench.local \
    --password-file "$dir/admin.pw" >&2

start_server() { # sets server_pid and ready_secs (seconds until /readyz is 200)
    local t0 t1
    t0=$(date +%s.%N)
    "$BIN/memora" --config "$dir/memora.toml" serve >>"$dir/server.log" 2>&1 &
    server_pid=$!
    until curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null; do
        kill -0 "$server_pid" || { cat "$dir/server.log" >&2; exit 1; }
        sleep 0.01
    done
    t1=$(date +%s.%N)
    ready_secs=$(echo "$t1 - $t0" | bc)
}

start_server
export MEMORA_BENCH_ADMIN_EMAIL=admin@bench.local MEMORA_BENCH_ADMIN_PASSWORD=bench-admin-password
common=(--url "http://127.0.0.1:$PORT" --students "$STUDENTS" --connections "$CONNECTIONS")
"$BIN/memora-bench" "${common[@]}" --setup --scenario progress --duration 0.5 --warmup 0 >/dev/null
done_count=0
while ((done_count < TARGET)); do
    n=$("$BIN/memora-bench" "${common[@]}" --scenario complete --duration 30 --warmup 1 \
        | tail -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["ops"]["complete"]["count"])')
    done_count=$((done_count + n))
    echo "completions so far: $done_count" >&2
done

kill -KILL "$server_pid"
wait "$server_pid" 2>/dev/null || true
echo "journal on disk: $(du -sb "$dir/data/journal" | cut -f1) bytes in $(ls "$dir/data/journal" | wc -l) files" >&2
echo "redb file: $(du -b "$dir/data/memora.redb" | cut -f1) bytes (apparent)" >&2
evict() { # drop this data directory's pages from the page cache (only these files)
    python3 - "$dir/data" <<'PY'
import os, sys
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        fd = os.open(os.path.join(root, name), os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
PY
}
for i in $(seq $((2 * RESTARTS))); do
    cache=warm
    if ((i > RESTARTS)); then cache=cold; evict; fi
    start_server
    line=$(grep recovered "$dir/server.log" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g')
    echo "restart $i ($cache page cache): ready after ${ready_secs}s; $line"
    kill -KILL "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
done
