#!/usr/bin/env bash
# Snapshot benchmarks (BENCHMARKS.md "Snapshots").
#
#   benches/snapshots.sh [STUDENTS] [RUNS]          (defaults 100000, 3)
#
# 1. A fresh temporary data directory: the curriculum imported, an admin, and STUDENTS
#    students created offline through the engine (examples/populate), each completing
#    LESSONS lessons of one subject, so each has progress rows and a wallet.
# 2. Offline, RUNS times: `memora snapshot` on the stopped data directory, `memora
#    verify` of the file, `memora restore` of it into an empty second data directory.
#    Wall times from /usr/bin/time, file sizes from stat. Lines go to $OUT_OFFLINE.
# 3. Online: `memora serve`; memora-bench sets up 1,000 students of its own; then RUNS
#    pairs of `memora-bench --scenario mixed` runs of DURATION s: step "mixed" alone,
#    then step "mixed+snapshot" while snapshots are written back to back through
#    POST /api/v1/admin/snapshots for the whole run. JSON lines (load.sh's shape) to
#    $OUT; each snapshot job's result to $OUT_JOBS.
#
#    With MIRROR_URL (a MariaDB server URL without database, e.g.
#    mysql://root@127.0.0.1:3306), the server mirrors to a database that does not exist
#    during "mixed" (the mirror retries every 0.5 s) and is created, empty, at the start
#    of "mixed+snapshot+mirror": the mirror then migrates it and copies every row (a
#    full resynchronization: the worst catch-up) while the snapshots and the load run.
#    The database is dropped after each run; the engine report's `mirror` part after
#    each step goes to $OUT_MIRROR.
#
# Environment: BIN [target/release], POPULATE [target/release/examples/populate],
# DATA [data/fcc-2018], PLAN [fcc-2018], LESSONS [5], PORT [18082], CONNECTIONS [64],
# DURATION [20], WARMUP [3], OUT [snapshots-load.jsonl],
# OUT_OFFLINE [snapshots-offline.jsonl], OUT_JOBS [snapshots-jobs.jsonl],
# MIRROR_URL [none], OUT_MIRROR [snapshots-mirror.jsonl], KEEP=1.
set -euo pipefail

STUDENTS=${1:-100000}
RUNS=${2:-3}
BIN=${BIN:-target/release}
POPULATE=${POPULATE:-target/release/examples/populate}
DATA=${DATA:-data/fcc-2018}
PLAN=${PLAN:-fcc-2018}
LESSONS=${LESSONS:-5}
PORT=${PORT:-18082}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
OUT=${OUT:-snapshots-load.jsonl}
OUT_OFFLINE=${OUT_OFFLINE:-snapshots-offline.jsonl}
OUT_JOBS=${OUT_JOBS:-snapshots-jobs.jsonl}
MIRROR_URL=${MIRROR_URL:-}
OUT_MIRROR=${OUT_MIRROR:-snapshots-mirror.jsonl}
mirror_db=memora_bench_$$
mirror_sql() { # mirror_sql STATEMENT (through the mariadb client, to MIRROR_URL's server)
    python3 - "$MIRROR_URL" "$1" <<'PY'
import subprocess, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
args = ["mariadb", "-h", u.hostname or "127.0.0.1", "-P", str(u.port or 3306), "-u", u.username or "root"]
if u.password:
    args.append("-p" + u.password)
subprocess.run(args + ["-e", sys.argv[2]], check=True)
PY
}

dir=$(mktemp -d /tmp/memora-snapshots.XXXXXX)
server_pid=
loop_pid=
cleanup() {
    [[ -n $loop_pid ]] && kill "$loop_pid" 2>/dev/null || true
    if [[ -n $MIRROR_URL ]]; then mirror_sql "DROP DATABASE IF EXISTS $mirror_db" || true; fi
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

config() { # config NAME DATA_DIR
    cat >"$dir/$1.toml" <<EOF
[http]
addr = "127.0.0.1:$PORT"
[storage]
data_dir = "$2"
snapshots_dir = "snapshots"
[snapshots]
interval = "off"
keep = 2
[auth]
argon2_memory_kib = 1024
argon2_iterations = 1
argon2_parallelism = 1
[rate_limits]
enabled = false
[log]
level = "warn"
EOF
    if [[ -n $MIRROR_URL ]]; then
        printf '[mirror]\nurl = "%s/%s"\nbackoff_initial_ms = 100\nbackoff_max_ms = 500\n' \
            "$MIRROR_URL" "$mirror_db" >>"$dir/$1.toml"
    fi
}
config memora data
config restored restored
m() { "$BIN/memora" --config "$dir/memora.toml" "$@"; }

echo "bench-admin-password" >"$dir/admin.pw"
m import "$DATA"/*.json >/dev/null
m admin create --email admin@bench.local --password-file "$dir/admin.pw" >&2
echo "== populating $STUDENTS students ($LESSONS lessons each)" >&2
/usr/bin/time -f "populate: %e s wall, %M KiB max RSS" \
    "$POPULATE" "$dir/memora.toml" "$PLAN" "$STUDENTS" "$LESSONS"
echo "redb file: $(stat -c %s "$dir/data/memora.redb") bytes" >&2

timed() { # timed CMD... → "seconds max_rss_kib" in $dir/time; output on stderr
    if ! /usr/bin/time -f "%e %M" -o "$dir/time" "$@" >"$dir/cmd.txt" 2>&1; then
        cat "$dir/cmd.txt" >&2
        echo "failed: $*" >&2
        exit 1
    fi
    cat "$dir/cmd.txt" >&2
}

for run in $(seq "$RUNS"); do
    echo "== offline run $run, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    timed "$BIN/memora" --config "$dir/memora.toml" snapshot
    read -r snap_s snap_kb <"$dir/time"
    file=$(ls -t "$dir"/snapshots/*.snap | head -n 1)
    bytes=$(stat -c %s "$file")
    timed "$BIN/memora" verify "$file"
    read -r verify_s _ <"$dir/time"
    rm -rf "$dir/restored"
    timed "$BIN/memora" --config "$dir/restored.toml" restore "$file"
    read -r restore_s _ <"$dir/time"
    printf '{"run": %d, "students": %d, "snapshot_s": %s, "verify_s": %s, "restore_s": %s, "file_bytes": %d, "redb_bytes": %d, "snapshot_max_rss_kib": %s, "load": "%s"}\n' \
        "$run" "$STUDENTS" "$snap_s" "$verify_s" "$restore_s" "$bytes" \
        "$(stat -c %s "$dir/data/memora.redb")" "$snap_kb" "$(cut -d' ' -f1 /proc/loadavg)" \
        | tee -a "$OUT_OFFLINE" >&2
done
rm -rf "$dir/restored"

"$BIN/memora" --config "$dir/memora.toml" serve >"$dir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 600); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null
token=$(curl -fsS -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" \
    -H 'Content-Type: application/json' -H 'X-Device-ID: 6f1d7a52-3c1e-4b8e-9a44-0d5b2c7e8f10' \
    -d '{"email": "admin@bench.local", "password": "bench-admin-password"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

export MEMORA_BENCH_ADMIN_EMAIL=admin@bench.local MEMORA_BENCH_ADMIN_PASSWORD=bench-admin-password
common=(--url "http://127.0.0.1:$PORT" --students 1000 --connections "$CONNECTIONS" --plan "$PLAN")
"$BIN/memora-bench" "${common[@]}" --setup --scenario progress --duration 0.5 --warmup 0 >/dev/null

# Writes snapshots back to back until $dir/stop exists; one JSON line per job.
snapshot_loop() {
    local api="http://127.0.0.1:$PORT/api/v1/admin"
    while [[ ! -e $dir/stop ]]; do
        id=$(curl -fsS -X POST -H "Authorization: Bearer $token" "$api/snapshots" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
        while :; do
            curl -fsS -H "Authorization: Bearer $token" "$api/jobs/$id" >"$dir/job.json"
            state=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["state"])' "$dir/job.json")
            [[ $state == done || $state == failed ]] && break
            sleep 0.1
        done
        python3 -c 'import json, sys; v = json.load(open(sys.argv[1])); print(json.dumps({"state": v["state"], "result": v["result"], "error": v["error"]}))' \
            "$dir/job.json" >>"$OUT_JOBS"
    done
}

server_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$server_pid/stat"; }

measure() { # measure RUN STEP
    echo "== run $1: $2, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    before=$(server_cpu)
    /usr/bin/time -f "%U %S" -o "$dir/time" "$BIN/memora-bench" "${common[@]}" \
        --scenario mixed --duration "$DURATION" --warmup "$WARMUP" | tee "$dir/run.txt" >&2
    after=$(server_cpu)
    read -r user sys <"$dir/time"
    tail -n 1 "$dir/run.txt" | python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
v.update(run=int(sys.argv[1]), step=sys.argv[2], durability="strict",
         bench_cpu_secs=round(float(sys.argv[3]) + float(sys.argv[4]), 2),
         server_cpu_secs=round(float(sys.argv[6]) - float(sys.argv[5]), 2))
print(json.dumps(v))' "$1" "$2" "$user" "$sys" "$before" "$after" >>"$OUT"
}

mirror_report() { # mirror_report RUN STEP
    [[ -n $MIRROR_URL ]] || return 0
    curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/api/v1/admin/engine" |
        python3 -c 'import json, sys; v = json.load(sys.stdin); print(json.dumps({"run": int(sys.argv[1]), "step": sys.argv[2], "mirror": v.get("mirror")}))' \
            "$1" "$2" >>"$OUT_MIRROR"
}

step=mixed+snapshot
if [[ -n $MIRROR_URL ]]; then step=mixed+snapshot+mirror; fi
for run in $(seq "$RUNS"); do
    measure "$run" mixed
    mirror_report "$run" mixed
    rm -f "$dir/stop"
    if [[ -n $MIRROR_URL ]]; then mirror_sql "CREATE DATABASE $mirror_db"; fi
    snapshot_loop &
    loop_pid=$!
    measure "$run" "$step"
    mirror_report "$run" "$step"
    touch "$dir/stop"
    wait "$loop_pid" || true
    loop_pid=
    if [[ -n $MIRROR_URL ]]; then mirror_sql "DROP DATABASE $mirror_db"; fi
done
