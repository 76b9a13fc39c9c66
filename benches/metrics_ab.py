#!/usr/bin/env python3
"""Per-pair ratios of the JSON lines written by benches/metrics_ab.sh.

    python3 benches/metrics_ab.py FILE

For each run (one metrics-on and one metrics-off measurement under the same load), the
throughput ratio on ÷ off and the ratio of server CPU per request on ÷ off; then the
medians of each side and of the ratios.
"""
import json
import statistics
import sys


def main() -> None:
    runs = {}
    for line in open(sys.argv[1]):
        if line.strip():
            v = json.loads(line)
            runs.setdefault(v["run"], {})[v["step"]] = v
    rps_ratios, cpu_ratios = [], []
    sides = {"metrics-on": [], "metrics-off": []}
    print(f"{'run':>3} {'side':<12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'server µs/req':>13}")
    for run, pair in sorted(runs.items()):
        if set(pair) != set(sides):
            continue
        cpu = {}
        for side, v in sorted(pair.items(), reverse=True):
            op = next(iter(v["ops"].values()))
            cpu[side] = v["server_cpu_secs"] * 1e6 / max(op["count"], 1)
            sides[side].append((op["rps"], op["p50_us"], op["p99_us"], cpu[side]))
            print(f"{run:>3} {side:<12} {op['rps']:>8.0f} {op['p50_us'] / 1000:>7.2f} "
                  f"{op['p99_us'] / 1000:>7.2f} {cpu[side]:>13.1f}")
        on = next(iter(pair["metrics-on"]["ops"].values()))["rps"]
        off = next(iter(pair["metrics-off"]["ops"].values()))["rps"]
        rps_ratios.append(on / off)
        cpu_ratios.append(cpu["metrics-on"] / cpu["metrics-off"])
    for side, rows in sides.items():
        med = lambda i: statistics.median(r[i] for r in rows)
        print(f"median {side}: {med(0):.0f} req/s, p50 {med(1) / 1000:.2f} ms, "
              f"p99 {med(2) / 1000:.2f} ms, {med(3):.1f} µs server CPU per request")
    print("throughput on/off per pair: " + ", ".join(f"{r:.1%}" for r in rps_ratios)
          + f"; median {statistics.median(rps_ratios):.1%}")
    print("server CPU per request on/off per pair: " + ", ".join(f"{r:.1%}" for r in cpu_ratios)
          + f"; median {statistics.median(cpu_ratios):.1%}")


if __name__ == "__main__":
    main()
