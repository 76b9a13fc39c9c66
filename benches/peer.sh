#!/usr/bin/env bash
# Peer comparison (quality.md): Memora's lesson completion over HTTP, strict durability,
# against the original design's Redis commands for one completion, same machine, same
# concurrency, alternating RUNS times (memora, redis, memora, redis, ...).
#
#   benches/peer.sh [RUNS]          (default 3)
#
# Memora: benches/load.sh 1 complete (a fresh server each run; see that script).
# Redis: a redis-server on REDIS_PORT [6380] in its own temporary directory with
# `appendonly yes --appendfsync always --save ""`, driven by benches/redis_peer.rs
# (MULTI; SETBIT; SADD; HINCRBY; HINCRBY; EXEC per operation, one round trip).
# JSON lines go to $OUT [peer-results.jsonl]; the last line printed is the ratio.
# Environment: BIN, DATA as for load.sh; CARGO_TARGET_DIR for the bench binary.
set -euo pipefail
RUNS=${1:-3}
OUT=${OUT:-peer-results.jsonl}
REDIS_PORT=${REDIS_PORT:-6380}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
here=$(cd "$(dirname "$0")" && pwd)

peer=$(cargo bench --bench redis_peer --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    v = json.loads(l)
    if v.get("executable") and v.get("target", {}).get("name") == "redis_peer": print(v["executable"])')

rdir=$(mktemp -d /tmp/memora-redis.XXXXXX)
redis_pid=
cleanup() {
    if [[ -n $redis_pid ]]; then kill -TERM "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
    rm -rf "$rdir"
}
trap cleanup EXIT
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$rdir" --appendonly yes \
    --appendfsync always --save "" --logfile "$rdir/redis.log" &
redis_pid=$!
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
echo "redis: $(redis-cli -p "$REDIS_PORT" config get appendfsync | tr '\n' ' ')" >&2

for run in $(seq "$RUNS"); do
    echo "== run $run: memora complete (strict); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    OUT="$OUT" DURATION=$DURATION WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS \
        "$here/load.sh" 1 complete >/dev/null
    echo "== run $run: redis; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    before=$(awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$redis_pid/stat")
    REDIS_PEER_PORT=$REDIS_PORT REDIS_PEER_CONNECTIONS=$CONNECTIONS REDIS_PEER_SECS=$DURATION \
        REDIS_PEER_WARMUP_SECS=$WARMUP /usr/bin/time -f "%U %S" -o "$rdir/time" "$peer" \
        | tee -a "$rdir/peer.txt" >&2
    after=$(awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$redis_pid/stat")
    read -r user sys <"$rdir/time"
    tail -n 1 "$rdir/peer.txt" | python3 -c 'import json,sys
v = json.loads(sys.stdin.read())
v.update(run=int(sys.argv[1]), step="redis", durability="appendfsync-always",
         bench_cpu_secs=round(float(sys.argv[2]) + float(sys.argv[3]), 2),
         server_cpu_secs=round(float(sys.argv[5]) - float(sys.argv[4]), 2))
print(json.dumps(v))' "$run" "$user" "$sys" "$before" "$after" >>"$OUT"
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mem = [v["ops"]["complete"]["rps"] for v in lines if v.get("step") == "complete"]
cpu = lambda step: [f'{v["bench_cpu_secs"]}/{v["server_cpu_secs"]}' for v in lines if v.get("step") == step]
red = [v["ops"]["redis_completion"]["rps"] for v in lines if v.get("step") == "redis"]
ratios = [m / r for m, r in zip(mem, red)]
print("memora completions/s: " + ", ".join(f"{x:.0f}" for x in mem))
print("redis MULTI ops/s:    " + ", ".join(f"{x:.0f}" for x in red))
print("CPU s generator/server, memora: " + ", ".join(cpu("complete")) + "; redis: " + ", ".join(cpu("redis")))
print("ratio per pair: " + ", ".join(f"{x:.2f}" for x in ratios) + f"; median {statistics.median(ratios):.2f}")
PY
