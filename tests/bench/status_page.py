#!/usr/bin/env python3
"""The public status page with 50 components, served by the release binary:
how long `GET /status` takes, from a plain HTTP client (many requests) and
in Chromium (Navigation Timing: responseEnd - requestStart, and
loadEventEnd), against a baseline in the same run — the same bytes as a
static file served by `python3 -m http.server`. Rounds alternate between the
two; the script prints min, median, p99 and max, and the ratio of the
medians. A benchmark prints numbers; it asserts nothing.

The agent starts fresh on an hour of NDJSON log over 50 services (5 of them
paging), `tick` as given (default 1s: the page is rendered again after each
evaluation, so about one request a second pays for a rendering; the others
get the cached bytes). Its uptime bars hold today only (89 grey days).

Needs `chromium` (Debian) for the browser part; only 127.0.0.1 is used.

    python3 tests/bench/status_page.py [--requests 400] [--loads 15] [--tick 1s] [--bin PATH]
"""

import argparse
import http.client
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import bench_dir, machine, release_binary, report
from live_tail import start_agent, stop_agent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from test_status_page import Browser  # noqa: E402 - the e2e test's DevTools driver

COMPONENTS = 50


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_inputs(work, now_ms):
    specs, lines = [], []
    for i in range(COMPONENTS):
        specs.append(
            "apiVersion: slo-agent/v1\nkind: SLO\n"
            f"metadata: {{name: svc-{i:02d}-availability}}\n"
            f"spec:\n  service: svc-{i:02d}\n  objective: 99.9\n  window: 30d\n"
            f"  indicator: {{source: ndjson, filter: {{service: svc-{i:02d}}}, good: {{status: \"< 500\"}}}}\n")
        for m in range(59, -1, -1):
            status = 503 if m < 3 and i < 5 else 200
            for k in range(10):
                lines.append(json.dumps({"ts": now_ms - m * 60_000 - 1_000 - k, "service": f"svc-{i:02d}",
                                         "path": "/", "status": status}))
    (work / "specs.yaml").write_text("---\n".join(specs))
    (work / "logs").mkdir()
    (work / "logs" / "app.ndjson").write_text("\n".join(lines) + "\n")


def get(port, path):
    """One GET on a new connection: (seconds, body)."""
    start = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    body = c.getresponse().read()
    took = time.perf_counter() - start
    c.close()
    return took, body


def summary(values):
    v = sorted(values)
    p99 = v[min(len(v) - 1, int(len(v) * 0.99))]
    return f"min {v[0]:.2f}  median {statistics.median(v):.2f}  p99 {p99:.2f}  max {v[-1]:.2f} ms (n={len(v)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--requests", type=int, default=400, help="plain GETs of each server")
    ap.add_argument("--loads", type=int, default=15, help="Chromium navigations of each server")
    ap.add_argument("--tick", default="1s")
    args = ap.parse_args()
    binary = release_binary(args.bin)
    work = bench_dir(None) / f"status-page-{int(time.time())}"
    work.mkdir()
    now_ms = int(time.time() * 1000)
    write_inputs(work, now_ms)
    port = free_port()
    components = "".join(f"    - {{name: Component {i:02d}, service: svc-{i:02d}}}\n" for i in range(COMPONENTS))
    config = work / "agent.yaml"
    config.write_text(
        f"specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: {args.tick}\npoll_interval: 50ms\n"
        f"status:\n  title: Bench status\n  components:\n{components}"
        "sources:\n  - {name: logs, type: file, paths: [\"logs/*.ndjson\"], format: ndjson}\n")
    agent, log = start_agent(binary, config, work, port)
    static, browser = None, None
    complete = False
    try:
        deadline = time.time() + 60
        while json.loads(get(port, "/status.json")[1])["components"][0]["status"] != "major_outage":
            if time.time() > deadline:
                sys.exit("the first components never paged")
            time.sleep(0.2)
        body = get(port, "/status")[1]
        (work / "static").mkdir()
        (work / "static" / "status.html").write_bytes(body)
        sport = free_port()
        static = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(sport),
                                   "--directory", str(work / "static")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                get(sport, "/status.html")
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("python3 -m http.server did not start")
                time.sleep(0.05)

        # Plain GETs, alternating in rounds of 20.
        agent_ms, static_ms = [], []
        for _ in range(max(1, args.requests // 20)):
            agent_ms += [get(port, "/status")[0] * 1000 for _ in range(20)]
            static_ms += [get(sport, "/status.html")[0] * 1000 for _ in range(20)]

        rows = [
            ("page", f"{COMPONENTS} components, {len(body):,} bytes of HTML, tick {args.tick}"),
            ("GET /status (agent)", summary(agent_ms)),
            ("GET /status.html (http.server)", summary(static_ms)),
            ("median ratio agent / static", f"{statistics.median(agent_ms) / statistics.median(static_ms):.2f}"),
        ]
        chromium = shutil.which("chromium")
        if chromium is None:
            rows.append(("chromium", "not installed: browser timings skipped"))
        else:
            browser = Browser(chromium)
            nav = {"agent": ([], []), "static": ([], [])}
            for _ in range(args.loads):
                for name, url in (("agent", f"http://127.0.0.1:{port}/status"),
                                  ("static", f"http://127.0.0.1:{sport}/status.html")):
                    _, response, load = browser.load(url)
                    nav[name][0].append(response)
                    nav[name][1].append(load)
            for name in ("agent", "static"):
                rows.append((f"Chromium {name}: responseEnd - requestStart", summary(nav[name][0])))
                rows.append((f"Chromium {name}: loadEventEnd", summary(nav[name][1])))
            rows.append(("median ratio agent / static, loadEventEnd",
                         f"{statistics.median(nav['agent'][1]) / statistics.median(nav['static'][1]):.2f}"))
        rows.append(("", machine()))
        complete = True
    finally:
        if browser:
            browser.close()
        if static:
            static.terminate()
            static.wait(timeout=10)
        stop_agent(agent, log)
    report(rows, work, complete)


if __name__ == "__main__":
    main()
