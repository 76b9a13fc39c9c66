#!/usr/bin/env bash
# Upload of a full build to an S3-compatible server on loopback (moto), through the real
# `memora build` path (issue 4, BENCHMARKS.md "CDN upload").
#
#   benches/upload.sh RUNS
#
# Starts `python3 -m moto.server` on a free port (or uses $S3_URL), then RUNS times:
# a fresh data directory, `memora import` of the curriculum, a fresh bucket, and
#   1. `memora build` — a full build, then a full upload into the empty bucket;
#   2. one lesson of the first subject changed, `memora build` again — the first upload
#      of a process is a reconciliation: list the bucket, MD5 every local file, put the
#      changed files (manifest last), delete what vanished.
# Prints the upload line of `memora build`, the client's CPU seconds (build + upload) and
# the moto server's CPU seconds over the step (when this script started it).
#
# Environment: BIN [target/release] (where `memora` is), DATA [data/fcc-2018].
set -euo pipefail

RUNS=${1:?usage: benches/upload.sh RUNS}
BIN=${BIN:-target/release}
DATA=${DATA:-data/fcc-2018}
dir=$(mktemp -d /tmp/memora-upload.XXXXXX)
moto_pid=
cleanup() {
    if [[ -n $moto_pid ]]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

if [[ -z ${S3_URL:-} ]]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    python3 -m moto.server -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
    moto_pid=$!
    S3_URL="http://127.0.0.1:$port"
    for _ in $(seq 100); do curl -sf -o /dev/null "$S3_URL" && break; sleep 0.2; done
fi
echo "S3 server: $S3_URL (moto pid ${moto_pid:-external}), load $(cut -d' ' -f1 /proc/loadavg)"

# CPU seconds (user + sys) of the moto process, 0 when external.
moto_cpu() {
    if [[ -z $moto_pid ]]; then echo 0; return; fi
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$moto_pid/stat"
}

first_subject=$(ls "$DATA"/*.subject.json | head -1)
for run in $(seq "$RUNS"); do
    data="$dir/run$run"
    bucket="bench-$run-$RANDOM$RANDOM"
    curl -sf -X PUT "$S3_URL/$bucket" -o /dev/null
    export MEMORA_STORAGE__DATA_DIR="$data" MEMORA_LOG__LEVEL=warn \
        MEMORA_CONTENT__MIN_FREE_DISK_PERCENT=0 \
        MEMORA_CDN__S3__ENDPOINT="$S3_URL" MEMORA_CDN__S3__BUCKET="$bucket" \
        MEMORA_CDN__S3__ACCESS_KEY_ID=bench MEMORA_CDN__S3__SECRET_ACCESS_KEY=bench
    "$BIN/memora" import "$DATA"/*.json >/dev/null
    for step in full one-lesson; do
        if [[ $step == one-lesson ]]; then
            python3 - "$first_subject" "$dir/changed.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
lesson = doc["tracks"][0]["units"][0]["topics"][0]["lessons"][0]
lesson["title"] += " (changed)"
json.dump(doc, open(sys.argv[2], "w"))
PY
            "$BIN/memora" import "$dir/changed.json" >/dev/null
        fi
        before=$(moto_cpu)
        /usr/bin/time -f "%U %S" -o "$dir/time" "$BIN/memora" build >"$dir/out"
        after=$(moto_cpu)
        line=$(grep '^uploaded' "$dir/out")
        cpu=$(awk '{print $1 + $2}' "$dir/time")
        server=$(awk -v a="$before" -v b="$after" 'BEGIN{printf "%.2f", b - a}')
        echo "run $run $step: $line; client cpu ${cpu}s; moto cpu ${server}s; load $(cut -d' ' -f1 /proc/loadavg)"
    done
done
