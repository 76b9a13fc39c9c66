#!/usr/bin/env python3
"""Medians of the JSON lines written by benches/load.sh, per (durability, step, op).

    python3 benches/summarize.py bench-results.jsonl [--ratio STEP_A STEP_B]

--ratio prints req/s of STEP_A's first op ÷ that of the next STEP_B run (load.sh
alternates the steps, so each pair comes from the same server session), and the median.
"""
import json
import statistics
import sys
from collections import defaultdict


def main() -> None:
    path = sys.argv[1]
    lines = [json.loads(l) for l in open(path) if l.strip()]
    rows = defaultdict(list)
    for v in lines:
        for op, s in v["ops"].items():
            rows[(v["durability"], v["step"], op)].append((v, s))
    print(f"{'durability':<10} {'step':<42} {'op':<9} {'runs':>4} {'req/s':>9} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6} {'gen CPU':>7}")
    for (dur, step, op), runs in rows.items():
        med = lambda f: statistics.median(f(s) for _, s in runs)
        errors = sum(sum(s["errors"].values()) for _, s in runs)
        gen = statistics.median(
            v["bench_cpu_secs"] / max(v["bench_cpu_secs"] + v["server_cpu_secs"], 1e-9)
            for v, _ in runs)
        print(f"{dur:<10} {step:<42} {op:<9} {len(runs):>4} {med(lambda s: s['rps']):>9.0f} "
              f"{med(lambda s: s['p50_us']) / 1000:>7.2f} {med(lambda s: s['p95_us']) / 1000:>7.2f} "
              f"{med(lambda s: s['p99_us']) / 1000:>7.2f} {errors:>6} {gen:>6.0%}")
    if "--ratio" in sys.argv:
        i = sys.argv.index("--ratio")
        a, b = sys.argv[i + 1], sys.argv[i + 2]
        # Each B run is paired with the A run just before it (load.sh alternates them).
        ratios, last_a = [], None
        for v in lines:
            rps = next(iter(v["ops"].values()))["rps"]
            if v["step"] == a:
                last_a = rps
            elif v["step"] == b and last_a is not None:
                ratios.append(last_a / rps)
                last_a = None
        print(f"{a} / {b}: " + ", ".join(f"{x:.1%}" for x in ratios)
              + f"; median {statistics.median(ratios):.1%} over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
