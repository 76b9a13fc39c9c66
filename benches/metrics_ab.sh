#!/usr/bin/env bash
# Cost of the request metrics: two release servers on copies of the same data, one with
# `metrics.enabled = true` (the default) and one with it false, and `memora-bench` runs
# alternating between them (on off, off on, on off, ...), so that each pair ran under the
# same machine load.
#
#   benches/metrics_ab.sh RUNS [SCENARIO[:SUBJECT]]      # default: progress
#
# Every run's JSON line goes to $OUT with "step" = "metrics-on" or "metrics-off" and the
# pair number as "run"; `python3 benches/metrics_ab.py $OUT` prints the per-pair ratios
# (throughput, server CPU per request) and their medians. The server's CPU seconds over
# each run are added as "server_cpu_secs" (and the generator's as "bench_cpu_secs"), as
# in load.sh.
#
# Environment (defaults in brackets): BIN [target/release], DATA [data/fcc-2018],
# OUT [bench-results.jsonl], PORT [18080] (the second server uses PORT+1),
# STUDENTS [1000], CONNECTIONS [64], DURATION [15], WARMUP [3]. Server settings as in
# load.sh: rate limits off, log level warn, cheap argon2.
set -euo pipefail

RUNS=${1:?usage: benches/metrics_ab.sh RUNS [SCENARIO[:SUBJECT]]}
STEP=${2:-progress}
BIN=${BIN:-target/release}
DATA=${DATA:-data/fcc-2018}
OUT=${OUT:-bench-results.jsonl}
PORT=${PORT:-18080}
STUDENTS=${STUDENTS:-1000}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}

dir=$(mktemp -d /tmp/memora-metrics-ab.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT

config() { # name port metrics_enabled
    cat >"$dir/$1.toml" <<EOF
[http]
addr = "127.0.0.1:$2"
[storage]
data_dir = "$1"
snapshots_dir = "snapshots-$1"
[auth]
argon2_memory_kib = 1024
argon2_iterations = 1
argon2_parallelism = 1
[rate_limits]
enabled = false
[log]
level = "warn"
[metrics]
enabled = $3
EOF
}
config on "$PORT" true
config off "$((PORT + 1))" false
echo "bench-admin-password" >"$dir/admin.pw"
"$BIN/memora" --config "$dir/on.toml" import "$DATA"/*.json >&2
"$BIN/memora" --config "$dir/on.toml" admin create --email admin@bench.local \
    --password-file "$dir/admin.pw" >&2
cp -r "$dir/on" "$dir/off"

declare -A port=([on]=$PORT [off]=$((PORT + 1)))
declare -A pid
for side in on off; do
    "$BIN/memora" --config "$dir/$side.toml" serve >"$dir/$side.log" 2>&1 &
    pid[$side]=$!
    pids+=("$!")
done
export MEMORA_BENCH_ADMIN_EMAIL=admin@bench.local MEMORA_BENCH_ADMIN_PASSWORD=bench-admin-password
for side in on off; do
    for _ in $(seq 300); do
        curl -fsS "http://127.0.0.1:${port[$side]}/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$BIN/memora-bench" --url "http://127.0.0.1:${port[$side]}" --students "$STUDENTS" \
        --connections "$CONNECTIONS" --setup --scenario progress --duration 0.5 --warmup 0 >/dev/null
done
# The switch really differs: /metrics answers on one side only.
curl -fsS "http://127.0.0.1:${port[on]}/metrics" >/dev/null
! curl -fsS "http://127.0.0.1:${port[off]}/metrics" >/dev/null 2>&1

server_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

scenario=${STEP%%:*}
subject=()
[[ $STEP == *:* ]] && subject=(--subject "${STEP#*:}")
for run in $(seq "$RUNS"); do
    # Odd runs start with the metrics-on server, even runs with the other, so that an
    # order effect (e.g. the first run after the other's load) cancels out.
    order=(on off)
    ((run % 2 == 0)) && order=(off on)
    for side in "${order[@]}"; do
        echo "== run $run: $STEP metrics-$side load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        before=$(server_cpu "${pid[$side]}")
        /usr/bin/time -f "%U %S" -o "$dir/time" "$BIN/memora-bench" \
            --url "http://127.0.0.1:${port[$side]}" --students "$STUDENTS" \
            --connections "$CONNECTIONS" --scenario "$scenario" "${subject[@]}" \
            --duration "$DURATION" --warmup "$WARMUP" | tee "$dir/run.txt" >&2
        after=$(server_cpu "${pid[$side]}")
        read -r user sys <"$dir/time"
        tail -n 1 "$dir/run.txt" | python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
v.update(run=int(sys.argv[1]), step=sys.argv[2], durability="strict", subject=sys.argv[3],
         bench_cpu_secs=round(float(sys.argv[4]) + float(sys.argv[5]), 2),
         server_cpu_secs=round(float(sys.argv[7]) - float(sys.argv[6]), 2))
print(json.dumps(v))' "$run" "metrics-$side" "$STEP" "$user" "$sys" "$before" "$after" >>"$OUT"
    done
done
