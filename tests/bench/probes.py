#!/usr/bin/env python3
"""1,000 hop probes a minute from one agent against local targets, and the
same probes through blackbox_exporter, in the same go.

The targets are local HTTP servers, one process per hop (a thread per connection:
`agent/examples/bench_target.rs`, or Python with `--python-targets` and for `--https`)
whose answers wait a known time before the response head: `/edge` 20 ms,
`/origin` 5 ms. The agent runs `--probes` probes of two hops each
(`/edge`, `/origin`) every `--interval`; the script asks blackbox_exporter
for the same requests at the same rate (`/probe?module=http_2xx&target=…`,
spread evenly over the interval, from a thread pool). Reported:

- the agent's scheduling: `slo_agent_check_start_lateness_p99_seconds` and
  `_max_seconds` (how late runs started against their schedule), runs
  started and skipped;
- CPU of the agent and of blackbox_exporter over the measured minutes
  (after one warm-up interval), as a share of one core;
- the agent's RSS after the warm-up and at the end (growth);
- the phases: every hop's `processing` phase minus the injected delay,
  agent and blackbox (median, p99 and max over the last outcomes), and the
  agent's minus how long the target really held that same request (the
  target's own overshoot of its delay taken out).

    python3 tests/bench/probes.py [--binary PATH] [--probes 250] [--interval 30] [--minutes 4]

Loopback only; bounded: it ends after `--minutes`.
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchlib import machine, release_binary  # noqa: E402

DELAYS_MS = {"edge": 20.0, "origin": 5.0}


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target_server(port, ready, tls=None):
    """HTTP/1.1 on 127.0.0.1:port, a thread per connection: reads a request
    head, sleeps the path's delay (`time.sleep`, precise to a few tens of
    microseconds, where an asyncio timer rounds to the millisecond), answers
    200. It keeps, per request target, how long it really held the request
    (head read to answer written) and serves that as JSON on `/_held`."""
    import json
    import socketserver
    held = {}

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            conn = self.request
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            t0 = time.perf_counter()
            target = head.split(b" ", 2)[1].decode()
            if target == "/_held":
                body = json.dumps(held).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
                return
            hop = target.strip("/").split("?")[0]
            time.sleep(DELAYS_MS.get(hop, 0.0) / 1000)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            held[target] = (time.perf_counter() - t0) * 1000

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 1024

    if tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)

        class TlsServer(Server):
            def get_request(self):
                conn, addr = self.socket.accept()
                return ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

        class TlsHandler(Handler):
            def handle(self):
                try:
                    self.request.do_handshake()
                except OSError:
                    return
                super().handle()

        server_class, handler = TlsServer, TlsHandler
    else:
        server_class, handler = Server, Handler
    with server_class(("127.0.0.1", port), handler) as server:
        ready.set()
        server.serve_forever()


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, check, timeout=30):
    until = time.time() + timeout
    while time.time() < until:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def metric_values(text, name):
    """{labels text: value} of every sample of `name`."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, value = line.rsplit(" ", 1)
            out[labels] = float(value)
    return out


def quantiles(values):
    v = sorted(values)
    if not v:
        return "none"
    p = lambda q: v[min(len(v) - 1, round(q * (len(v) - 1)))]  # noqa: E731
    return f"median {statistics.median(v):+.3f} ms, p99 {p(0.99):+.3f} ms, max {max(v, key=abs):+.3f} ms (n={len(v)})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary")
    ap.add_argument("--probes", type=int, default=250, help="probes of two hops each")
    ap.add_argument("--interval", type=int, default=30, help="seconds")
    ap.add_argument("--minutes", type=float, default=4.0, help="measured, after one warm-up interval")
    ap.add_argument("--no-blackbox", action="store_true")
    ap.add_argument("--https", action="store_true", help="TLS targets (a CA made with openssl, trusted through ca_file)")
    ap.add_argument("--python-targets", action="store_true",
                    help="HTTP targets in Python instead of agent/examples/bench_target.rs (HTTPS targets always are)")
    args = ap.parse_args()
    binary = release_binary(args.binary)
    blackbox_exe = shutil.which("prometheus-blackbox-exporter")
    if not blackbox_exe and not args.no_blackbox:
        sys.exit("prometheus-blackbox-exporter not found (Debian package prometheus-blackbox-exporter), or --no-blackbox")
    per_minute = args.probes * 2 * 60 / args.interval
    print(f"{args.probes} probes × 2 {'HTTPS' if args.https else 'HTTP'} hops every {args.interval}s = {per_minute:.0f} hop probes a minute; "
          f"measured for {args.minutes} min after {args.interval}s of warm-up")

    work = Path(tempfile.mkdtemp(prefix="slo-agent-probes-bench-"))
    tls = None
    if args.https:
        def ssl(*a):
            subprocess.run(["openssl", *a], check=True, capture_output=True)
        ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
            "-subj", "/CN=bench CA", "-keyout", str(work / "ca.key"), "-out", str(work / "ca.pem"))
        ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(work / "leaf.key"), "-out", str(work / "leaf.csr"))
        (work / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
        ssl("x509", "-req", "-in", str(work / "leaf.csr"), "-CA", str(work / "ca.pem"), "-CAkey", str(work / "ca.key"),
            "-CAcreateserial", "-days", "30", "-extfile", str(work / "ext"), "-out", str(work / "leaf.pem"))
        tls = (str(work / "leaf.pem"), str(work / "leaf.key"))
    scheme = "https" if args.https else "http"
    # One target process per hop: the two requests of a run arrive together,
    # and one Python process would answer the second after the first.
    import multiprocessing
    ports = {hop: free_port() for hop in DELAYS_MS}
    targets = []
    rust_targets = not args.https and not args.python_targets
    if rust_targets:
        target_dir = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/slo-agent-target"))
        exe = target_dir / "release" / "examples" / "bench_target"
        if not exe.exists():
            sys.exit(f"{exe} not found: build it with `cargo build --release --example bench_target` "
                     "(or use --python-targets)")
    for hop, p in ports.items():
        if rust_targets:
            proc = subprocess.Popen([str(exe), str(p), str(DELAYS_MS[hop])], stdout=subprocess.PIPE, text=True)
            assert proc.stdout.readline().strip() == "ready"
        else:
            ready = multiprocessing.Event()
            proc = multiprocessing.Process(target=target_server, args=(p, ready, tls), daemon=True)
            proc.start()
            ready.wait(10)
        targets.append(proc)
    print(f"targets: {'agent/examples/bench_target.rs (a thread per connection, std only)' if rust_targets else 'Python'}")

    (work / "slos.yaml").write_text("")
    port = free_port()
    probes = "".join(
        f"  - name: p{i:04}\n    interval: {args.interval}s\n    retries: 0\n"
        + (f"    ca_file: {work / 'ca.pem'}\n" if args.https else "")
        + "    hops:\n"
        f"      - {{name: edge, url: \"{scheme}://127.0.0.1:{ports['edge']}/edge?p=p{i:04}\"}}\n"
        f"      - {{name: origin, url: \"{scheme}://127.0.0.1:{ports['origin']}/origin?p=p{i:04}\"}}\n"
        for i in range(args.probes)
    )
    (work / "agent.yaml").write_text(
        f"specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 5s\nregion: bench\nprobes:\n{probes}")
    agent = subprocess.Popen([binary, "run", "--config", str(work / "agent.yaml")],
                             stdout=open(work / "agent.log", "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_for("the agent", lambda: get(base + "/healthz") is not None)

    bb = None
    bb_base = None
    if not args.no_blackbox:
        bport = free_port()
        (work / "blackbox.yml").write_text(
            "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"
            + (f"      tls_config: {{ca_file: '{work / 'ca.pem'}'}}\n" if args.https else ""))
        bb = subprocess.Popen([blackbox_exe, f"--config.file={work / 'blackbox.yml'}",
                               f"--web.listen-address=127.0.0.1:{bport}", "--log.level=warn"],
                              stdout=open(work / "blackbox.log", "w"), stderr=subprocess.STDOUT)
        bb_base = f"http://127.0.0.1:{bport}"
        wait_for("blackbox_exporter", lambda: get(bb_base + "/-/healthy") is not None)

    # blackbox_exporter is pulled: ask it for the same probes at the same rate.
    stop = threading.Event()
    bb_processing = {"edge": [], "origin": []}
    bb_lock = threading.Lock()

    def ask_blackbox():
        requests = [(hop, f"{bb_base}/probe?module=http_2xx&target={scheme}://127.0.0.1:{ports[hop]}/{hop}")
                    for _ in range(args.probes) for hop in ("edge", "origin")]
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=32)
        gap = args.interval / len(requests)
        start = time.time()
        k = 0
        while not stop.is_set():
            hop, url = requests[k % len(requests)]
            due = start + k * gap
            time.sleep(max(0.0, due - time.time()))

            def one(hop=hop, url=url):
                try:
                    text = get(url)
                    v = metric_values(text, "probe_http_duration_seconds")
                    p = next(val for lab, val in v.items() if 'phase="processing"' in lab)
                    with bb_lock:
                        bb_processing[hop].append(p * 1000 - DELAYS_MS[hop])
                except Exception:
                    pass
            pool.submit(one)
            k += 1
        pool.shutdown(wait=True)

    asker = None
    if bb:
        asker = threading.Thread(target=ask_blackbox, daemon=True)
        asker.start()

    time.sleep(args.interval)  # warm-up: every probe ran once
    t0 = time.time()
    cpu_a0 = cpu_seconds(agent.pid)
    cpu_b0 = cpu_seconds(bb.pid) if bb else 0.0
    rss0 = rss_kib(agent.pid)
    rss_max = rss0
    end = t0 + args.minutes * 60
    while time.time() < end:
        time.sleep(5)
        rss_max = max(rss_max, rss_kib(agent.pid))
    elapsed = time.time() - t0
    cpu_a = cpu_seconds(agent.pid) - cpu_a0
    cpu_b = (cpu_seconds(bb.pid) - cpu_b0) if bb else 0.0
    rss1 = rss_kib(agent.pid)
    metrics = get(base + "/metrics")
    import json
    import ssl as _ssl
    insecure = _ssl.create_default_context(cafile=str(work / "ca.pem")) if args.https else None
    held = {hop: json.loads(urllib.request.urlopen(f"{scheme}://127.0.0.1:{p}/_held", timeout=10, context=insecure).read())
            for hop, p in ports.items()}
    metrics_after = get(base + "/metrics")
    stop.set()
    if asker:
        asker.join(30)

    lateness = {k: metric_values(metrics, f"slo_agent_check_start_lateness_{k}_seconds") for k in ("p50", "p99", "max")}
    started = metric_values(metrics, "slo_agent_check_runs_started")
    skipped = metric_values(metrics, "slo_agent_check_runs_skipped")
    phases = metric_values(metrics, "probe_http_duration_seconds")
    ours = {"edge": [], "origin": []}
    # Against what the target really held each probe's last request: only
    # series that did not change while the target was asked, so the agent's
    # last outcome and the target's last request are the same request.
    against_held = {"edge": [], "origin": []}
    phases_after = metric_values(metrics_after, "probe_http_duration_seconds")
    for labels, v in phases.items():
        if 'phase="processing"' in labels:
            hop = re.search(r'hop="([^"]+)"', labels).group(1)
            probe = re.search(r'probe="([^"]+)"', labels).group(1)
            ours[hop].append(v * 1000 - DELAYS_MS[hop])
            h = held[hop].get(f"/{hop}?p={probe}")
            if h is not None and phases_after.get(labels) == v:
                against_held[hop].append(v * 1000 - h)
    success = metric_values(metrics, "probe_success")

    agent.terminate()
    agent.wait(20)
    if bb:
        bb.terminate()
        bb.wait(20)
    for t in targets:
        t.terminate()

    first = lambda d: next(iter(d.values()), float("nan"))  # noqa: E731
    rows = [
        ("hop probes a minute", f"{per_minute:.0f} ({args.probes} probes × 2 hops every {args.interval}s)"),
        ("agent: probe results successful", f"{sum(success.values()):.0f} of {len(success)}"),
        ("agent: runs started / skipped", f"{first(started):.0f} / {first(skipped):.0f}"),
        ("agent: start lateness", f"p50 {first(lateness['p50']) * 1000:.2f} ms, p99 {first(lateness['p99']) * 1000:.2f} ms, "
                                  f"max {first(lateness['max']) * 1000:.2f} ms"),
        ("agent: CPU", f"{cpu_a:.2f} s over {elapsed:.0f} s = {cpu_a / elapsed:.2%} of one core"),
        ("agent: RSS", f"{rss0 / 1024:.1f} MiB after warm-up, {rss1 / 1024:.1f} MiB at the end "
                       f"(growth {(rss1 - rss0) / 1024:+.1f} MiB, max {rss_max / 1024:.1f} MiB)"),
    ]
    for hop in ("edge", "origin"):
        rows.append((f"agent: processing − {DELAYS_MS[hop]:.0f} ms ({hop})", quantiles(ours[hop])))
    for hop in ("edge", "origin"):
        rows.append((f"agent: processing − target's hold ({hop})", quantiles(against_held[hop])))
    if bb:
        rows.append(("blackbox_exporter: CPU", f"{cpu_b:.2f} s over {elapsed:.0f} s = {cpu_b / elapsed:.2%} of one core"
                                               f" (agent/blackbox {cpu_a / cpu_b:.2f}×)" if cpu_b else ""))
        for hop in ("edge", "origin"):
            rows.append((f"blackbox: processing − {DELAYS_MS[hop]:.0f} ms ({hop})", quantiles(bb_processing[hop])))
    rows.append(("", machine()))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
