#!/usr/bin/env python3
"""Roster import benchmark over HTTP against a release `memora serve`.

    benches/roster.py RUNS

Each run starts a fresh server (fresh data directory, the test fixtures' plan
`school`, an admin) with the argon2 cost given below (default: the shipped 19 MiB,
2 passes), generates a roster of ROWS students (every GIVEN_EVERY-th with a password in
the file, hashed at the configured cost; the others blank, so one is generated and
hashed at the cheaper cost of generated passwords) and measures:

- the dry run of the new file (all rows `create`): wall time of the request;
- the commit (`?commit=true`, a background job): time from the job's `started_at` to
  its `finished_at`, rows/s, and the server's CPU seconds over it (the machine may be
  shared: rows per CPU second do not depend on the neighbours); meanwhile the latency of every job poll (the async
  runtime must stay responsive) and of one admin login (argon2 at the configured cost,
  competing with the import for the cores);
- the dry run again (all rows `unchanged`);
- a commit of the same students with another grade and no password column (10,000
  updates, nothing hashed);
- from the server log, the commit's `hashing_ms`, `locked_ms` (admin lock held) and
  `event_bytes` (one journal record).

Environment (defaults in brackets): BIN [target/release], ROWS [10000], PORT [18090],
ARGON2_KIB [19456], ARGON2_ITERATIONS [2], OUT [roster-results.jsonl], GIVEN_EVERY [2]
(0: no given passwords, every row's is generated).
One JSON line per run is appended to OUT and printed.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime

BIN = os.environ.get("BIN", "target/release")
ROWS = int(os.environ.get("ROWS", "10000"))
GIVEN_EVERY = int(os.environ.get("GIVEN_EVERY", "2"))
PORT = int(os.environ.get("PORT", "18090"))
KIB = int(os.environ.get("ARGON2_KIB", "19456"))
ITER = int(os.environ.get("ARGON2_ITERATIONS", "2"))
OUT = os.environ.get("OUT", "roster-results.jsonl")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = f"http://127.0.0.1:{PORT}"


def request(method, path, token=None, body=None, ctype="application/json"):
    req = urllib.request.Request(BASE + path, method=method, data=body)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", ctype)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            data = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        data, status = e.read(), e.code
    return status, json.loads(data or b"null"), time.perf_counter() - started


def login(email, password):
    body = json.dumps({"email": email, "password": password}).encode()
    status, v, took = request("POST", "/api/v1/auth/login", body=body)
    assert status == 200, v
    return v["token"], took


def roster(grade, passwords=True):
    head = "email,display_name,plan_id,grade,stream,timezone" + (",password" if passwords else "")
    lines = [head]
    for i in range(ROWS):
        row = f"s{i}@school.example,Student {i},school,{grade},{'AB'[i % 2]},Europe/Paris"
        if passwords:
            row += f",pw-{i:08d}-given" if GIVEN_EVERY and i % GIVEN_EVERY == 0 else ","
        lines.append(row)
    return ("\n".join(lines) + "\n").encode()


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def cpu_secs(pid):
    """User + system CPU seconds of a process so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def commit(token, body, probe_login):
    status, job, took = request("POST", "/api/v1/admin/players/import?commit=true", token, body, "text/csv")
    assert status == 202, job
    polls, logins = [], []
    while True:
        status, view, took = request("GET", f"/api/v1/admin/jobs/{job['job_id']}", token)
        polls.append(took)
        if view["state"] in ("done", "failed"):
            break
        if probe_login and len(logins) < 3 and len(polls) % 8 == 4:
            logins.append(login("admin@bench.local", "bench-admin-password")[1])
        time.sleep(0.25)
    assert view["state"] == "done", view
    wall = ts(view["finished_at"]) - ts(view["started_at"])
    return view, wall, polls, logins


def run_once(n):
    with tempfile.TemporaryDirectory(prefix="memora-roster.") as d:
        cfg = os.path.join(d, "memora.toml")
        with open(cfg, "w") as f:
            f.write(f"""[http]
addr = "127.0.0.1:{PORT}"
admin_body_limit_bytes = 33554432
[storage]
data_dir = "data"
[auth]
argon2_memory_kib = {KIB}
argon2_iterations = {ITER}
argon2_parallelism = 1
[rate_limits]
enabled = false
[log]
level = "info"
""")
        memora = os.path.join(BIN, "memora")
        fixtures = [os.path.join(ROOT, "tests/fixtures", x)
                    for x in ("basics.subject.json", "chain.subject.json", "school.plan.json")]
        subprocess.run([memora, "--config", cfg, "import", *fixtures], check=True, capture_output=True)
        with open(os.path.join(d, "pw"), "w") as f:
            f.write("bench-admin-password\n")
        subprocess.run([memora, "--config", cfg, "admin", "create", "--email", "admin@bench.local",
                        "--password-file", os.path.join(d, "pw")], check=True, capture_output=True)
        log = open(os.path.join(d, "server.log"), "w")
        server = subprocess.Popen([memora, "--config", cfg, "serve"], stdout=log, stderr=log)
        try:
            for _ in range(300):
                try:
                    if request("GET", "/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            token, _ = login("admin@bench.local", "bench-admin-password")
            load = open("/proc/loadavg").read().split()[:3]
            new = roster(7)
            status, dry, dry_s = request("POST", "/api/v1/admin/players/import", token, new, "text/csv")
            assert status == 200 and dry["summary"]["create"] == ROWS, dry["summary"]
            cpu0 = cpu_secs(server.pid)
            view, commit_s, polls, logins = commit(token, new, True)
            commit_cpu = cpu_secs(server.pid) - cpu0
            assert view["result"]["summary"]["create"] == ROWS
            status, again, again_s = request("POST", "/api/v1/admin/players/import", token, new, "text/csv")
            assert again["summary"]["unchanged"] == ROWS, again["summary"]
            view2, update_s, _, _ = commit(token, roster(8, passwords=False), False)
            assert view2["result"]["summary"]["update"] == ROWS
        finally:
            server.terminate()
            server.wait(timeout=120)
            log.close()
        text = re.sub(r"\x1b\[[0-9;]*m", "", open(os.path.join(d, "server.log")).read())
        lines = [dict(re.findall(r"(\w+)=(\d+)", l)) for l in text.splitlines() if "roster imported" in l]
        return {
            "run": n, "rows": ROWS, "given_every": GIVEN_EVERY, "argon2_kib": KIB, "argon2_iterations": ITER, "load": load,
            "dry_run_s": round(dry_s, 3), "commit_s": round(commit_s, 3),
            "commit_rows_per_s": round(ROWS / commit_s, 1),
            "commit_server_cpu_s": round(commit_cpu, 1),
            "commit_rows_per_cpu_s": round(ROWS / commit_cpu, 1),
            "dry_run_unchanged_s": round(again_s, 3), "update_commit_s": round(update_s, 3),
            "poll_ms_median": round(statistics.median(polls) * 1e3, 1),
            "poll_ms_max": round(max(polls) * 1e3, 1),
            "login_during_import_ms": [round(x * 1e3, 1) for x in logins],
            "server": lines,
        }


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    for n in range(1, runs + 1):
        line = json.dumps(run_once(n))
        print(line, flush=True)
        with open(OUT, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
