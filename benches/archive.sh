#!/usr/bin/env bash
# SRS archive benchmark (BENCHMARKS.md "SRS archive and reviews over HTTP"): CARDS cards
# seeded in an inactive season of a fresh data directory; then, against one release
# `memora serve`, a `memora-bench` load run while idle, the archive of the seeded season
# (POST /api/v1/admin/seasons/seeded/archive) with the same load running, and the
# archive job's own figures.
#
#   benches/archive.sh RUNS
#
# Environment (defaults in brackets):
#   BIN [target/release]      where `memora`, `memora-bench` and examples/srs_seed are
#   CARDS [10000000]          seeded cards;  PER_PLAYER [100] cards per seeded player
#   DATA [/work/shared/data/fcc-2018]  curriculum (for the load's students)
#   OUT [archive-results.jsonl]        JSON lines (one per load run, one per archive)
#   PORT [18081] STUDENTS [1000] CONNECTIONS [64] DURATION [20] WARMUP [3]
#   SCENARIO [reviews]        the load (`memora-bench --scenario`)
#   REVIEW_CARDS [200]        cards per load student
#   KEEP=1                    keep the temporary directory (printed)
#
# The data directory with the seeded cards is built once and copied for every run. The
# server is configured like benches/load.sh (rate limits off, cheap argon2, log warn).
set -euo pipefail

RUNS=${1:?usage: benches/archive.sh RUNS}
BIN=${BIN:-target/release}
CARDS=${CARDS:-10000000}
PER_PLAYER=${PER_PLAYER:-100}
DATA=${DATA:-/work/shared/data/fcc-2018}
OUT=${OUT:-archive-results.jsonl}
PORT=${PORT:-18081}
STUDENTS=${STUDENTS:-1000}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
SCENARIO=${SCENARIO:-reviews}
REVIEW_CARDS=${REVIEW_CARDS:-200}

dir=$(mktemp -d /tmp/memora-archive.XXXXXX)
server_pid=
stop_server() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
cleanup() {
    stop_server
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

cat >"$dir/memora.toml" <<EOF
[http]
addr = "127.0.0.1:$PORT"
request_timeout_ms = 60000
[storage]
data_dir = "data"
snapshots_dir = "snapshots"
[auth]
argon2_memory_kib = 1024
argon2_iterations = 1
argon2_parallelism = 1
[rate_limits]
enabled = false
[log]
level = "warn"
EOF
echo "bench-admin-password" >"$dir/admin.pw"
mkdir -p "$dir/template"
cp "$dir/memora.toml" "$dir/admin.pw" "$dir/template/"
"$BIN/memora" --config "$dir/template/memora.toml" import "$DATA"/*.json >&2
"$BIN/memora" --config "$dir/template/memora.toml" admin create --email admin@bench.local \
    --password-file "$dir/template/admin.pw" >&2
echo "== seeding $CARDS cards ($PER_PLAYER per player)" >&2
seed=$("$BIN/examples/srs_seed" "$dir/template/data" "$CARDS" "$PER_PLAYER" seeded)
echo "$seed" >&2
du -sh "$dir/template/data" >&2

export MEMORA_BENCH_ADMIN_EMAIL=admin@bench.local MEMORA_BENCH_ADMIN_PASSWORD=bench-admin-password
base="http://127.0.0.1:$PORT"
common=(--url "$base" --students "$STUDENTS" --connections "$CONNECTIONS"
    --scenario "$SCENARIO" --review-cards "$REVIEW_CARDS")

admin_token() {
    curl -fsS -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
        -H 'X-Device-ID: 6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b' \
        -d '{"email":"admin@bench.local","password":"bench-admin-password","device_name":"archive.sh"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
api() { # METHOD PATH [BODY]
    curl -sS -X "$1" "$base$2" -H "Authorization: Bearer $token" \
        -H 'X-Device-ID: 6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b' \
        -H 'Content-Type: application/json' ${3:+-d "$3"}
}
load_run() { # PHASE RUN
    /usr/bin/time -f "%U %S" -o "$dir/time" "$BIN/memora-bench" "${common[@]}" \
        --duration "$DURATION" --warmup "$WARMUP" | tee "$dir/run.txt" >&2
    read -r user sys <"$dir/time"
    tail -n 1 "$dir/run.txt" | python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
v.update(phase=sys.argv[1], run=int(sys.argv[2]), cards=int(sys.argv[3]),
         bench_cpu_secs=round(float(sys.argv[4]) + float(sys.argv[5]), 2),
         load=open("/proc/loadavg").read().split()[0])
print(json.dumps(v))' "$1" "$2" "$CARDS" "$user" "$sys" >>"$OUT"
}

for run in $(seq "$RUNS"); do
    rm -rf "$dir/run"
    cp -a "$dir/template" "$dir/run"
    "$BIN/memora" --config "$dir/run/memora.toml" serve >"$dir/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 600); do
        curl -fsS "$base/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    token=$(admin_token)
    "$BIN/memora-bench" "${common[@]}" --setup --duration 0.5 --warmup 0 >/dev/null
    echo "== run $run: idle load ($SCENARIO) load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    load_run idle "$run"

    echo "== run $run: archive of $CARDS cards with the load running" >&2
    job=$(api POST /api/v1/admin/seasons/seeded/archive '{"confirm": true}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
    load_run archiving "$run"
    while :; do
        view=$(api GET "/api/v1/admin/jobs/$job")
        state=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["state"])' "$view")
        [[ $state == done || $state == failed ]] && break
        sleep 1
    done
    status=$(api GET /api/v1/admin/seasons/seeded/archive-status)
    python3 -c '
import json, sys
job, status = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"phase": "archive_job", "run": int(sys.argv[3]), "cards": int(sys.argv[4]),
                  "state": job["state"], "result": job["result"], "error": job["error"],
                  "status": status, "load": open("/proc/loadavg").read().split()[0]}))' \
        "$view" "$status" "$run" "$CARDS" | tee -a "$OUT" >&2
    stop_server
done
