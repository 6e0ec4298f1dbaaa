#!/usr/bin/env python3
"""Whole-process backup benchmark: an agent reads a generated CloudFront log
(the 10 SLOs of specs-10.yaml), then, round by round:

- `cp` of its live state file (the baseline: a raw copy, which is not even a
  consistent snapshot of a file under writes),
- `slo-agent backup --url` through the agent's API (admin token),
- `slo-agent restore --check` of that backup (read and checksum it),
- `slo-agent restore` of it into a fresh state file.

Then the agent is stopped and `slo-agent backup --state` of its file is
timed the same way. Prints the state file's size, min and median wall time
per command, the ratio to `cp`, each command's peak RSS, and the agent's
resident memory before and after the backups (it copies the state into a
staging file while it keeps serving). A benchmark prints numbers; it asserts
nothing.

    python3 tests/bench/backup.py [--lines 2000000] [--rounds 5] [--bin PATH]
"""

import argparse
import http.client
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import bench_dir, generated_log, machine, release_binary

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bench-backup-admin-token-0123456789abcdef"


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def lines_read(port):
    try:
        status, text = get(port, "/metrics")
    except OSError:
        return 0
    m = re.findall(r'^slo_agent_ingest_lines_total\{[^}]*\} ([0-9.e+-]+)', text, re.M)
    return sum(float(v) for v in m) if status == 200 else 0


def memory(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024
    return out


def timed(cmd):
    """(seconds, peak RSS MiB) of one command, which must succeed."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr}")
    rss_kib = int(p.stderr.strip().splitlines()[-1])
    return elapsed, rss_kib / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bin")
    ap.add_argument("--data")
    args = ap.parse_args()
    binary = release_binary(args.bin)
    data = bench_dir(args.data)
    log = generated_log(binary, data, "cloudfront", args.lines)
    work = Path(tempfile.mkdtemp(prefix="slo-agent-bench-backup-", dir=data))
    (work / "logs").mkdir()
    (work / "logs" / "access.log").symlink_to(log)
    (work / "admin.token").write_text(TOKEN)
    port = 20000 + (int(time.time()) % 20000)
    (work / "agent.yaml").write_text(
        f"specs: [{ROOT / 'tests' / 'bench' / 'specs-10.yaml'}]\nstate: state.redb\nlisten: 127.0.0.1:{port}\n"
        "tick: 1s\napi:\n  tokens:\n    - {name: bench, role: admin, token_file: admin.token}\n"
        "sources:\n  - name: edge\n    type: file\n    paths: [\"logs/*.log\"]\n    format: cloudfront\n")
    agent_log = open(work / "agent.log", "wb")
    agent = subprocess.Popen([binary, "run", "--config", "agent.yaml"], cwd=work, stdout=agent_log,
                             stderr=subprocess.STDOUT)
    complete = False
    try:
        deadline = time.time() + 600
        want = sum(1 for _ in open(log, "rb"))
        while lines_read(port) < want:
            if time.time() > deadline or agent.poll() is not None:
                sys.exit(f"the agent did not read the log; see {work / 'agent.log'}")
            time.sleep(0.2)
        time.sleep(2)  # a durable commit and an evaluation after the last batch
        state = work / "state.redb"
        before = memory(agent.pid)
        times = {k: [] for k in ("cp", "backup", "check", "restore")}
        rss = {k: 0.0 for k in times}
        url = f"http://127.0.0.1:{port}"
        for r in range(args.rounds):
            for name, cmd in [
                ("cp", ["cp", state, work / "copy.redb"]),
                ("backup", [binary, "backup", "--url", url, "--token-file", work / "admin.token",
                            "--out", work / "b.backup"]),
                ("check", [binary, "restore", "--from", work / "b.backup", "--check"]),
                ("restore", [binary, "restore", "--from", work / "b.backup", "--state", work / f"r{r}.redb"]),
            ]:
                s, m = timed(cmd)
                times[name].append(s)
                rss[name] = max(rss[name], m)
        after = memory(agent.pid)
        backup_bytes = (work / "b.backup").stat().st_size
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        times["backup --state"] = []
        rss["backup --state"] = 0.0
        for _ in range(args.rounds):
            s, m = timed([binary, "backup", "--state", state, "--out", work / "s.backup"])
            times["backup --state"].append(s)
            rss["backup --state"] = max(rss["backup --state"], m)
        complete = True
    finally:
        if agent.poll() is None:
            agent.kill()
        agent_log.close()

    mib = 1024 * 1024
    base = min(times["cp"])
    print(f"log: {log} ({want:,} lines); state file {state.stat().st_size / mib:.1f} MiB; "
          f"backup file {backup_bytes / mib:.1f} MiB; {args.rounds} rounds")
    print(f"{'command':<16} {'min s':>8} {'median s':>9} {'× cp (min)':>11} {'peak RSS MiB':>13}")
    for name, ts in times.items():
        print(f"{name:<16} {min(ts):>8.3f} {statistics.median(ts):>9.3f} {min(ts) / base:>11.1f} {rss[name]:>13.1f}")
    print(f"agent RSS before the backups {before.get('VmRSS', 0):.1f} MiB, after {after.get('VmRSS', 0):.1f} MiB; "
          f"peak (VmHWM) {before.get('VmHWM', 0):.1f} → {after.get('VmHWM', 0):.1f} MiB")
    print(machine())
    if complete:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"the agent's log and state are kept in {work}")


if __name__ == "__main__":
    main()
