#!/usr/bin/env python3
"""Freeze answers under load: `GET /api/v1/freeze?service=…` for 100
services at a fixed rate (5,000 requests/s by default, with `oha`), while
the agent tails an NDJSON log written at 100,000 lines/s over those 100
services. Prints oha's latency percentiles, the achieved rate and the
answers' status codes, the agent's lines read, CPU and RSS. Baseline in the
same run: `GET /healthz`, a handler that does nothing, at the same rate.
A benchmark prints numbers; it asserts nothing.

Needs `oha` (`cargo install oha`): it keeps a fixed request rate, so the
latencies are those of a steady load, not of a saturated server.

Only 127.0.0.1 is used.

    python3 tests/bench/freeze_load.py [--seconds 20] [--rate 5000] [--lines 100000] [--bin PATH]
"""

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import time

from benchlib import bench_dir, machine, release_binary, report
from live_tail import cpu_seconds, http_get, metric, proc_status, start_agent, stop_agent

SERVICES = 100
SOURCE = "edge"  # the name live_tail.metric reads


def specs(path):
    """One availability SLO per service (half of them also frozen by their budget)."""
    docs = []
    for i in range(SERVICES):
        docs.append(
            "apiVersion: slo-agent/v1\nkind: SLO\n"
            f"metadata: {{name: svc-{i:03d}-availability}}\n"
            f"spec:\n  service: svc-{i:03d}\n  objective: 99.9\n  window: 28d\n"
            f"  indicator: {{source: ndjson, filter: {{service: svc-{i:03d}}}, good: {{status: \"< 500\"}}}}\n")
    path.write_text("---\n".join(docs))


def writer(log, rate, seconds, done):
    """Appends NDJSON lines at `rate` per second for `seconds`, stamped with
    the current time; odd services fail 5 % of their requests (their 0.1 %
    budget is spent at once), even ones none."""
    pool = []
    for i in range(2_000):
        svc = i % SERVICES
        status = 503 if svc % 2 == 1 and i // SERVICES == 0 else 200
        pool.append(f',"service":"svc-{svc:03d}","path":"/api/x","status":{status}}}'.encode())
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    written, pos = 0, 0
    start = time.perf_counter()
    end = start + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int(rate * (now - start)) - written
        if due <= 0:
            time.sleep(0.005)
            continue
        n = min(due, rate // 50, len(pool) - pos)
        head = b'{"ts":%d' % int(time.time() * 1000)
        os.write(fd, head + (b"\n" + head).join(pool[pos:pos + n]) + b"\n")
        pos = (pos + n) % len(pool)
        written += n
    os.close(fd)
    done.put((written, time.perf_counter() - start))


def oha(url_file, rate, seconds, conns):
    out = subprocess.run(
        ["oha", "--no-tui", "--output-format", "json", "-q", str(rate), "-z", f"{seconds}s", "-c", str(conns),
         "--latency-correction", "--urls-from-file", str(url_file)],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def summary(r):
    p = r["latencyPercentiles"]
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(r["statusCodeDistribution"].items()))
    s = r["summary"]
    return (f"{s['requestsPerSec']:,.0f} req/s; p50 {p['p50'] * 1000:.2f} ms, p99 {p['p99'] * 1000:.2f} ms, "
            f"p99.9 {p['p99.9'] * 1000:.2f} ms, max {s['slowest'] * 1000:.2f} ms; success rate "
            f"{s['successRate']:.3f}; codes {codes}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--rate", type=int, default=5_000, help="freeze requests per second")
    ap.add_argument("--lines", type=int, default=100_000, help="log lines per second the writer appends")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    if shutil.which("oha") is None:
        sys.exit("oha not found: cargo install oha")
    binary = release_binary(args.bin)
    work = bench_dir(args.dir) / f"freeze-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    specs(work / "slos.yaml")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = work / "agent.yaml"
    config.write_text(
        f"specs: [{work / 'slos.yaml'}]\nstate: {work / 'state.redb'}\nlisten: 127.0.0.1:{port}\n"
        "http: {max_in_flight: 256}\n"
        f"sources:\n  - name: {SOURCE}\n    type: file\n    paths: [{work / 'logs' / 'app.log'}]\n    format: ndjson\n")
    freeze_urls = work / "freeze-urls.txt"
    freeze_urls.write_text("".join(f"http://127.0.0.1:{port}/api/v1/freeze?service=svc-{i:03d}\n"
                                   for i in range(SERVICES)))
    health_urls = work / "health-urls.txt"
    health_urls.write_text(f"http://127.0.0.1:{port}/healthz\n")

    agent, agent_log = start_agent(binary, config, work, port)
    try:
        done = mp.Queue()
        w = mp.Process(target=writer, args=(work / "logs" / "app.log", args.lines, args.seconds * 2 + 10, done),
                       daemon=True)
        w.start()
        time.sleep(5)  # the first evaluations with traffic
        cpu0 = cpu_seconds(agent.pid)
        health = oha(health_urls, args.rate, args.seconds, args.connections)
        freeze = oha(freeze_urls, args.rate, args.seconds, args.connections)
        cpu = cpu_seconds(agent.pid) - cpu0
        written, elapsed = done.get()
        w.join()
        time.sleep(2)
        _, body, _ = http_get([None], port, "/metrics")
        read = metric(body.decode(), "slo_agent_ingest_lines_total") or 0
        _, body, _ = http_get([None], port, "/api/v1/freeze")
        board = json.loads(body)
        frozen = sum(1 for s in board["services"] if s["frozen"])
        mem = proc_status(agent.pid)
    finally:
        stop_agent(agent, agent_log)

    print(f"\n{machine()}")
    print(f"agent: {SERVICES} services, one SLO each; work dir {work}\n")
    rows = [
        ("writer: lines written", f"{written:,} in {elapsed:.1f} s = {written / elapsed:,.0f} lines/s "
                                  f"(target {args.lines:,})"),
        ("agent: lines read", f"{int(read):,}" + (" (all)" if read == written else f" (DIFFERENCE {int(read) - written:+,})")),
        ("services frozen at the end", f"{frozen} of {len(board['services'])}"),
        (f"GET /api/v1/freeze?service=… ({args.rate:,}/s target)", summary(freeze)),
        (f"GET /healthz (control, {args.rate:,}/s target)", summary(health)),
        ("agent: CPU during both load runs", f"{cpu:.1f} s over {2 * args.seconds} s "
                                             f"({cpu / (2 * args.seconds):.0%} of one core)"),
        ("agent: RSS", f"peak (VmHWM) {mem.get('VmHWM', 0) / 1024:.1f} MiB"),
    ]
    report(rows, work, read == written)


if __name__ == "__main__":
    main()
