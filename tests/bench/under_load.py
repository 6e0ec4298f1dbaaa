#!/usr/bin/env python3
"""Runtime under load: while `slo-agent run` tails a CloudFront log written
at 200,000 lines/s (the live tail benchmark's writer, rename rotation) and
push clients post maximal gzip Firehose bodies in a bounded loop, how old
does the published snapshot get, and how fast does GET /api/v1/slos answer?

The runtime issue's figures: the snapshot is never older than 2 ticks, and
the p99 of GET /api/v1/slos stays under 10 ms. A benchmark prints numbers;
it asserts nothing.

The push bodies are as large as the agent accepts by default:
`Content-Encoding: gzip` over a Firehose delivery request whose records are
base64 of gzip of CloudWatch Logs subscription payloads (NDJSON request
lines as log events), so that everything the request
inflates to (the body, every record) adds up to just under the request's
decoding budget (`max_decoded_bytes`, 64 MiB). Every --bomb-every'th request
instead inflates past the budget (it must be refused with 413 after the
agent has inflated up to the budget, and nothing of it counted). Each
client is a process of its own; each request has a new request id (the
`X-Amz-Firehose-Request-Id` header), so every accepted one is counted.

The snapshot's age is measured from every answer of GET /api/v1/slos: the
client's clock when the answer arrived minus the answer's `at` (the time of
the evaluation that published it). The agent runs on the same machine, so
the clocks are the same.

Only 127.0.0.1 is used.

    python3 tests/bench/under_load.py [--seconds 30] [--rate 200000]
        [--push-clients 2] [--max-push-requests 400] [--bomb-every 4] [--bin PATH]
"""

import argparse
import base64
import gzip
import http.client
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from benchlib import bench_dir, generated_log, machine, release_binary, report
from live_tail import (SPECS, cpu_seconds, http_get, latencies, metric, pct, proc_status, start_agent,
                       stop_agent, writer)

TOKEN = "bench-firehose-access-key-0123456789"
PUSH_SOURCE = "pushed"
BUDGET = 64 * 1024 * 1024


def ndjson_lines(n, now_ms):
    """NDJSON request lines of service `shop`, a few percent of them 5xx,
    with times in the last minute (inside every SLO window, never ahead)."""
    paths = ["/api/cart", "/api/checkout", "/", "/static/app.js", "/api/search?q=shoes"]
    out = []
    for i in range(n):
        status = 503 if i % 37 == 0 else (404 if i % 11 == 0 else 200)
        out.append(json.dumps({"ts": now_ms - 60_000 + (i % 60_000), "service": "shop", "host": "shop.example.com",
                               "method": "GET", "path": paths[i % len(paths)], "status": status,
                               "latency_ms": 20 + i % 180}, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode()


def cwl_payload(lines, now_ms):
    """A CloudWatch Logs subscription payload (as Firehose receives it from
    a subscription filter) holding the NDJSON lines as log events."""
    events = [{"id": str(36_000_000_000 + i), "timestamp": now_ms, "message": line}
              for i, line in enumerate(lines.decode().splitlines())]
    return json.dumps({"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/shop/api",
                       "logStream": "bench", "subscriptionFilters": ["bench"], "logEvents": events},
                      separators=(",", ":")).encode()


def firehose_body(target_bytes, now_ms):
    """A gzip Firehose delivery request of gzip CloudWatch Logs payloads
    whose parts (the body, every payload) inflate to about `target_bytes`
    in all; returns (gzipped body, inflated total, request lines, lines under /api/)."""
    lines = ndjson_lines(6000, now_ms)
    payload = cwl_payload(lines, now_ms)  # about 1.5 MiB
    record = base64.b64encode(gzip.compress(payload, 6)).decode()
    per_record = len(payload) + len(record) + 12  # the payload inflated, and its text in the body
    n = max(1, target_bytes // per_record)
    body = json.dumps({"requestId": "bench", "timestamp": now_ms,
                       "records": [{"data": record}] * n}).encode()
    total = len(body) + n * len(payload)
    api = sum(1 for l in lines.splitlines() if b'"path":"/api/' in l)
    return gzip.compress(body, 6), total, n * lines.count(b"\n"), n * api


def push_client(port, bodies, deadline, max_requests, counter, lock, results):
    """Posts the bodies in turn until `deadline` or until the clients
    together have sent `max_requests`; puts (status, seconds) of each."""
    conn = None
    out = []
    i = 0
    while time.time() < deadline:
        with lock:
            if counter.value >= max_requests:
                break
            counter.value += 1
            n = counter.value
        kind, body = bodies[i % len(bodies)]
        i += 1
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "X-Amz-Firehose-Access-Key": TOKEN, "X-Amz-Firehose-Request-Id": f"bench-{os.getpid()}-{n}"}
        start = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("POST", f"/ingest/firehose/{PUSH_SOURCE}", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            out.append((kind, resp.status, time.perf_counter() - start))
            if resp.status == 503:
                time.sleep(float(resp.getheader("Retry-After", "1")))
        except (OSError, http.client.HTTPException):
            out.append((kind, 0, time.perf_counter() - start))
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.1)
    results.put(out)


def parse_at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_seconds(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", s)
    if not m:
        sys.exit(f"--tick {s!r}: give it as 500ms, 5s or 1m")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate", type=int, default=200_000, help="lines per second the writer appends")
    ap.add_argument("--rotate-lines", type=int, default=1_000_000, help="lines per file before a rotation")
    ap.add_argument("--keep", type=int, default=2, help="renamed files kept; older ones are deleted")
    ap.add_argument("--push-clients", type=int, default=2, help="processes posting push bodies")
    ap.add_argument("--max-push-requests", type=int, default=400, help="the bound on push requests in all")
    ap.add_argument("--bomb-every", type=int, default=4,
                    help="every Nth body inflates past the budget (0: none)")
    ap.add_argument("--api-rate", type=float, default=50.0, help="GET /api/v1/slos per second")
    ap.add_argument("--poll-interval", default="500ms", help="the agent's poll_interval")
    ap.add_argument("--tick", default="5s", help="the agent's evaluation tick")
    ap.add_argument("--pool-lines", type=int, default=200_000, help="distinct lines the writer cycles through")
    ap.add_argument("--bin", default=None, help="slo-agent binary (default: the release build)")
    ap.add_argument("--dir", default=None, help="for the generated logs and the work dir (default /var/tmp/slo-agent-bench)")
    args = ap.parse_args()
    args.copytruncate = []
    tick = parse_seconds(args.tick)

    binary = release_binary(args.bin)
    data = bench_dir(args.dir)
    args.pool_file = generated_log(binary, data, "cloudfront", 1_000_000)

    work = data / f"load-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    logs = work / "logs"
    logs.mkdir(parents=True)
    (work / "firehose.key").write_text(TOKEN)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = work / "agent.yaml"
    pushed_spec = work / "pushed.yaml"
    pushed_spec.write_text(
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: bench-pushed-api}\n"
        "spec:\n  service: shop\n  objective: 99.0\n  window: 28d\n"
        "  indicator: {source: ndjson, filter: {path: \"/api/*\"}, good: {status: \"< 500\", latency: \"<= 150ms\"}}\n")
    config.write_text(
        f"specs: [{SPECS}, {pushed_spec}]\n"
        f"state: {work / 'state.redb'}\n"
        f"listen: 127.0.0.1:{port}\n"
        f"tick: {args.tick}\n"
        f"poll_interval: {args.poll_interval}\n"
        "sources:\n"
        "  - name: edge\n"
        "    type: file\n"
        f"    paths: [{logs / 'access.log'}, {logs / 'access.log.*'}]\n"
        "    format: cloudfront\n"
        "    service: shop\n"
        f"  - name: {PUSH_SOURCE}\n"
        "    type: firehose\n"
        "    records: cloudwatch-logs\n"
        "    log_groups: [{log_group: /shop/*, format: ndjson, service: shop}]\n"
        f"    token_file: {work / 'firehose.key'}\n")

    now_ms = int(time.time() * 1000)
    accepted_body, accepted_total, accepted_lines, accepted_api_lines = firehose_body(BUDGET - 2 * 1024 * 1024, now_ms)
    bomb_body, bomb_total, _, _ = firehose_body(BUDGET + 4 * 1024 * 1024, now_ms)
    bodies = [("accepted", accepted_body)]
    if args.bomb_every > 0:
        bodies = [("accepted", accepted_body)] * (args.bomb_every - 1) + [("bomb", bomb_body)]

    agent, agent_log = start_agent(binary, config, work, port)
    conn = [None]
    try:
        cpu0 = cpu_seconds(agent.pid)

        stats = mp.Array("q", 2, lock=False)
        done = mp.Queue()
        w = mp.Process(target=writer, args=(args, logs, port, stats, done), daemon=True)
        w.start()
        counter = mp.Value("q", 0, lock=False)
        lock = mp.Lock()
        results = mp.Queue()
        clients = [mp.Process(target=push_client,
                              args=(port, bodies[i % len(bodies):] + bodies[:i % len(bodies)],
                                    time.time() + args.seconds, args.max_push_requests, counter, lock, results),
                              daemon=True)
                   for i in range(args.push_clients)]
        for c in clients:
            c.start()

        stop = threading.Event()
        api_lat, health_lat, ages, api_errors = [], [], [], [0]

        def poll_api():
            c = [None]
            period = 1.0 / args.api_rate
            nxt = time.perf_counter()
            while not stop.is_set():
                try:
                    status, body, secs = http_get(c, port, "/api/v1/slos")
                    if status == 200:
                        api_lat.append(secs)
                        ages.append(time.time() - parse_at(json.loads(body)["at"]))
                    else:
                        api_errors[0] += 1
                    status, _, secs = http_get(c, port, "/healthz")
                    if status == 200:
                        health_lat.append(secs)
                except OSError:
                    api_errors[0] += 1
                nxt += period
                time.sleep(max(0.0, nxt - time.perf_counter()))

        rss = []

        def sample_rss():
            while not stop.is_set():
                rss.append(proc_status(agent.pid).get("VmRSS"))
                stop.wait(0.25)

        threads = [threading.Thread(target=poll_api), threading.Thread(target=sample_rss)]
        for t in threads:
            t.start()
        result = done.get()
        w.join()
        pushed = []
        for _ in clients:
            pushed.extend(results.get())
        for c in clients:
            c.join()
        t_end = time.perf_counter()
        read = 0
        while time.perf_counter() - t_end < 15:
            _, body, _ = http_get(conn, port, "/metrics")
            read = metric(body.decode(), "slo_agent_ingest_lines_total") or 0
            if read >= result["total_lines"]:
                break
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        # The per-SLO counters are published by the evaluation: one more tick.
        time.sleep(tick + 0.5)
        _, body, _ = http_get(conn, port, "/metrics")
        text = body.decode()
        push_results = {}
        for m in re.finditer(r'^slo_agent_push_requests_total\{([^}]*)\} ([0-9.e+-]+)', text, re.M):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if labels.get("source") == PUSH_SOURCE:
                push_results[labels.get("result")] = float(m.group(2))
        push_events = 0.0
        m = re.search(r'^slo_agent_slo_events_total\{[^}]*slo="bench-pushed-api"[^}]*\} ([0-9.e+-]+)', text, re.M)
        if m:
            push_events = float(m.group(1))
        cpu = cpu_seconds(agent.pid) - cpu0
        mem = proc_status(agent.pid)
    finally:
        stop_agent(agent, agent_log)
        shutil.rmtree(logs, ignore_errors=True)

    by_kind = {}
    for kind, status, secs in pushed:
        by_kind.setdefault((kind, status), []).append(secs)
    print(f"\n{machine()}")
    print(f"agent: poll_interval {args.poll_interval}, tick {args.tick}, 10 SLOs ({SPECS.name}) and one over the pushed "
          f"NDJSON; work dir {work}\n")
    rate = result["written"] / result["elapsed"]
    accepted = len(by_kind.get(("accepted", 200), []))
    rows = [
        ("writer: lines written", f"{result['written']:,} in {result['elapsed']:.1f} s = {rate:,.0f} lines/s "
                                  f"(target {args.rate:,}); at most {result['late'] * 1000:.0f} ms behind schedule"),
        ("agent: file lines read", f"{int(read):,} of {result['total_lines']:,} written (headers included): "
                                   + ("all" if read == result["total_lines"] else f"DIFFERENCE {int(read) - result['total_lines']:+,}")),
        ("push bodies", f"accepted kind: {len(accepted_body) / 1024:,.0f} KiB gzip, inflating to "
                        f"{accepted_total / 2**20:.1f} MiB ({accepted_lines:,} lines); bomb: "
                        f"{len(bomb_body) / 1024:,.0f} KiB, {bomb_total / 2**20:.1f} MiB; budget {BUDGET / 2**20:.0f} MiB"),
        ("push requests (client)", ", ".join(f"{kind} → {status or 'error'}: {len(v)} (median {statistics.median(v):.2f} s)"
                                            for (kind, status), v in sorted(by_kind.items()))
         + f"; {len(pushed)} in all, {args.push_clients} clients"),
        ("push requests (agent)", ", ".join(f"{k} {int(v)}" for k, v in sorted(push_results.items()))),
        ("pushed events counted by bench-pushed-api", f"{int(push_events):,} (accepted × /api/ lines per body = "
                                                       f"{accepted * accepted_api_lines:,})"),
        ("snapshot age (every API answer)",
         (f"median {statistics.median(ages):.2f} s, p99 {pct(ages, 99):.2f} s, max {max(ages):.2f} s "
          f"= {max(ages) / tick:.2f} ticks of {tick:g} s" if ages else "no answers")),
        ("GET /api/v1/slos", latencies(api_lat) + f"; {api_errors[0]} errors"),
        ("GET /healthz (control)", latencies(health_lat)),
        ("agent: CPU", f"{cpu:.1f} s over {result['elapsed']:.1f} s ({cpu / result['elapsed']:.0%} of one core)"),
        ("agent: RSS", f"peak (VmHWM) {mem.get('VmHWM', 0) / 1024:.1f} MiB; sampled max "
                       f"{max([r for r in rss if r] or [0]) / 1024:.1f} MiB"),
    ]
    report(rows, work, read == result["total_lines"])


if __name__ == "__main__":
    main()
