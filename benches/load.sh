#!/usr/bin/env bash
# Load benchmark of a release `memora serve` on a fresh temporary data directory.
#
#   benches/load.sh RUNS STEP [STEP...]
#
# A STEP is `scenario[:subject]` (scenarios of `memora-bench --help`). The steps are run
# one after another, RUNS times round-robin (p b p b p b ...), against ONE server, so
# that paired figures (progress vs baseline) come from the same session. Every run's
# JSON line is appended to $OUT, with the load generator's CPU time (user+sys seconds,
# from /usr/bin/time) added as "bench_cpu_secs" and the server's CPU time over the same
# run as "server_cpu_secs".
#
# Environment (defaults in brackets):
#   BIN [target/release]       where `memora` and `memora-bench` are
#   DATA [data/fcc-2018]        curriculum to import (every *.json in it)
#   OUT [bench-results.jsonl]   JSON lines
#   PORT [18080]  STUDENTS [1000]  CONNECTIONS [64]  DURATION [15]  WARMUP [3]
#   DURABILITY [strict]         journal.durability
#   ARGON2_KIB [1024]  ARGON2_ITERATIONS [1]   auth.argon2_* (the `login` scenario at the
#                               shipped cost: ARGON2_KIB=19456 ARGON2_ITERATIONS=2)
#   KEEP=1                      keep the temporary directory (printed)
#
# The server is configured for load tests: rate limits off, bench routes on, log level
# warn, and a cheap argon2 (1 MiB, 1 pass), so that creating and logging in the students
# takes seconds; argon2 is not in any measured request except the `login` scenario.
set -euo pipefail

RUNS=${1:?usage: benches/load.sh RUNS STEP [STEP...]}
shift
STEPS=("$@")
BIN=${BIN:-target/release}
DATA=${DATA:-data/fcc-2018}
OUT=${OUT:-bench-results.jsonl}
PORT=${PORT:-18080}
STUDENTS=${STUDENTS:-1000}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
DURABILITY=${DURABILITY:-strict}

dir=$(mktemp -d /tmp/memora-load.XXXXXX)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

cat >"$dir/memora.toml" <<EOF
[http]
addr = "127.0.0.1:$PORT"
bench_routes = true
[storage]
data_dir = "data"
snapshots_dir = "snapshots"
[journal]
durability = "$DURABILITY"
[auth]
argon2_memory_kib = ${ARGON2_KIB:-1024}
argon2_iterations = ${ARGON2_ITERATIONS:-1}
argon2_parallelism = 1
[rate_limits]
enabled = false
[log]
level = "warn"
EOF
echo "bench-admin-password" >"$dir/admin.pw"
"$BIN/memora" --config "$dir/memora.toml" import "$DATA"/*.json >&2
# Compiled files for the `content` scenario.
"$BIN/memora" --config "$dir/memora.toml" build >&2
"$BIN/memora" --config "$dir/memora.toml" admin create --email admin@bench.local \
    --password-file "$dir/admin.pw" >&2

"$BIN/memora" --config "$dir/memora.toml" serve >"$dir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null

export MEMORA_BENCH_ADMIN_EMAIL=admin@bench.local MEMORA_BENCH_ADMIN_PASSWORD=bench-admin-password
common=(--url "http://127.0.0.1:$PORT" --students "$STUDENTS" --connections "$CONNECTIONS")
"$BIN/memora-bench" "${common[@]}" --setup --scenario progress --duration 0.5 --warmup 0 >/dev/null

server_cpu() { # user+sys seconds of the server so far
    awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$server_pid/stat"
}

for run in $(seq "$RUNS"); do
    for step in "${STEPS[@]}"; do
        scenario=${step%%:*}
        subject=()
        [[ $step == *:* ]] && subject=(--subject "${step#*:}")
        echo "== run $run: $step ($DURABILITY) load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        before=$(server_cpu)
        /usr/bin/time -f "%U %S" -o "$dir/time" "$BIN/memora-bench" "${common[@]}" \
            --scenario "$scenario" "${subject[@]}" --duration "$DURATION" --warmup "$WARMUP" \
            | tee "$dir/run.txt" >&2
        after=$(server_cpu)
        read -r user sys <"$dir/time"
        tail -n 1 "$dir/run.txt" | python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
v.update(run=int(sys.argv[1]), step=sys.argv[2], durability=sys.argv[3],
         bench_cpu_secs=round(float(sys.argv[4]) + float(sys.argv[5]), 2),
         server_cpu_secs=round(float(sys.argv[7]) - float(sys.argv[6]), 2))
print(json.dumps(v))' "$run" "$step" "$DURABILITY" "$user" "$sys" "$before" "$after" >>"$OUT"
    done
done
