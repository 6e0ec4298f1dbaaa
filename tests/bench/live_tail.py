#!/usr/bin/env python3
"""Live tail benchmark: `slo-agent run` follows a CloudFront log that a
writer appends to at a fixed rate (200,000 lines/s by default) and rotates,
while the API is polled. Prints what the writer achieved, whether the agent
kept up (its ingest lag and line count from /metrics), the latency of
GET /api/v1/slos, the agent's CPU time and its peak RSS. A benchmark prints
numbers; it asserts nothing.

The writer is a separate process. It cycles through the request lines of the
file `slo-agent generate` writes (the replay benchmark's file), stamping each
with the current time (UTC, to the second), and writes them in chunks every
few milliseconds, as many as the rate calls for so far. Every
--rotate-lines lines it rotates the file: by rename (access.log becomes
access.log.N, a new access.log starts with the #Version/#Fields header; the
oldest renamed files beyond --keep are deleted), or, for the rotations named
by --copytruncate, by copying access.log aside (to a name the agent does not
follow) and truncating it in place. copytruncate loses whatever the reader
had not read when the truncate happens, whatever the reader; so that the
final line count stays exact, the writer waits (at most 5 s) for the agent
to have read the file before truncating it, and reports how long it waited.

Only 127.0.0.1 is used.

    python3 tests/bench/live_tail.py [--seconds 30] [--rate 200000]
        [--rotate-lines 1000000] [--copytruncate 2,4] [--bin PATH]
"""

import argparse
import http.client
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchlib import bench_dir, cpu_seconds, generated_log, machine, proc_status_kib, release_binary, report

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tests" / "bench" / "specs-10.yaml"
SOURCE = "edge"
HEADER = (b"#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem "
          b"sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id "
          b"x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
          b"x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port "
          b"time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start "
          b"sc-range-end\n")
HEADER_LINES = HEADER.count(b"\n")
# Chunks are written every TICK seconds (or as soon as the writer can).
TICK = 0.005


def http_get(conn_box, port, path, timeout=5.0):
    """GET over a kept-alive connection (reopened when it breaks); returns
    (status, body, seconds)."""
    for attempt in range(2):
        if conn_box[0] is None:
            conn_box[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        start = time.perf_counter()
        try:
            conn_box[0].request("GET", path)
            resp = conn_box[0].getresponse()
            body = resp.read()
            return resp.status, body, time.perf_counter() - start
        except (OSError, http.client.HTTPException):
            conn_box[0].close()
            conn_box[0] = None
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


def start_agent(binary, config, work, port):
    """`slo-agent run` with its output in work/agent.log; returns once
    /readyz says ready (exits the benchmark if it never does)."""
    log = open(work / "agent.log", "wb")
    agent = subprocess.Popen([binary, "run", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    conn = [None]
    deadline = time.time() + 30
    while True:
        try:
            if http_get(conn, port, "/readyz")[0] == 200:
                return agent, log
        except OSError:
            pass
        if time.time() > deadline or agent.poll() is not None:
            agent.kill()
            sys.exit(f"the agent did not start; see {work / 'agent.log'}")
        time.sleep(0.05)


def stop_agent(agent, log):
    agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(timeout=20)
    except subprocess.TimeoutExpired:
        agent.kill()
    log.close()


def metric(text, name):
    m = re.search(rf'^{name}\{{[^}}]*source="{SOURCE}"[^}}]*\}} ([0-9.e+-]+)', text, re.M)
    return float(m.group(1)) if m else None


def load_pool(path, n):
    """The first `n` request lines of a generated CloudFront log, without
    their date and time columns (the writer stamps its own)."""
    pool = []
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b"#"):
                continue
            # date \t time \t rest
            pool.append(line[20:-1])
            if len(pool) == n:
                break
    return pool


def writer(args, logs, port, stats, done):
    """The writer process: appends lines at `args.rate` per second for
    `args.seconds`, rotating as asked. Publishes its progress in `stats`
    (request lines written, lines written including headers)."""
    pool = load_pool(args.pool_file, args.pool_lines)
    live = logs / "access.log"
    fd = os.open(live, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, HEADER)
    total_lines = HEADER_LINES
    in_file = 0
    rotations = 0
    rotated = []
    copytruncate = set(args.copytruncate)
    waits = []
    conn = [None]
    prefix_for = {}
    pos = 0
    written = 0
    late = 0.0  # the largest shortfall behind the schedule, in seconds
    start = time.perf_counter()
    end = start + args.seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int(args.rate * (now - start)) - written
        if due <= 0:
            time.sleep(min(TICK, end - now))
            continue
        late = max(late, due / args.rate)
        n = min(due, args.rate // 50, args.rotate_lines - in_file)
        sec = int(time.time())
        prefix = prefix_for.get(sec)
        if prefix is None:
            prefix = time.strftime("%Y-%m-%d\t%H:%M:%S\t", time.gmtime(sec)).encode()
            prefix_for.clear()
            prefix_for[sec] = prefix
        if pos + n > len(pool):
            n = len(pool) - pos
        chunk = prefix + (b"\n" + prefix).join(pool[pos:pos + n]) + b"\n"
        pos = (pos + n) % len(pool)
        os.write(fd, chunk)
        written += n
        in_file += n
        total_lines += n
        stats[0], stats[1] = written, total_lines
        if in_file >= args.rotate_lines:
            rotations += 1
            in_file = 0
            if rotations in copytruncate:
                # Let the agent read what is there, then copy and truncate.
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < 5.0:
                    try:
                        _, body, _ = http_get(conn, port, "/metrics")
                        if (metric(body.decode(), "slo_agent_ingest_lines_total") or 0) >= total_lines:
                            break
                    except OSError:
                        pass
                    time.sleep(0.02)
                waits.append(time.perf_counter() - t0)
                aside = logs / f"copytruncate-{rotations}.bak"
                shutil.copyfile(live, aside)
                os.ftruncate(fd, 0)
                aside.unlink()
            else:
                os.close(fd)
                name = logs / f"access.log.{rotations}"
                os.rename(live, name)
                rotated.append(name)
                fd = os.open(live, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.write(fd, HEADER)
                total_lines += HEADER_LINES
                stats[1] = total_lines
                while len(rotated) > args.keep:
                    rotated.pop(0).unlink(missing_ok=True)
    elapsed = time.perf_counter() - start
    os.close(fd)
    done.put({"written": written, "total_lines": total_lines, "elapsed": elapsed, "rotations": rotations,
              "copytruncate_waits": waits, "late": late})


def dirty_kib():
    """The machine's dirty page cache: the log data not yet written back."""
    for line in open("/proc/meminfo"):
        if line.startswith("Dirty:"):
            return int(line.split()[1])
    return None


def longest_stall(samples):
    """The longest time the agent's line count stood still while it was
    behind the writer, in seconds (from the samples)."""
    longest, since = 0.0, None
    for t, _, read, written, *_ in samples:
        if read is None:
            continue
        if since is None or read != since[1] or read >= written:
            since = (t, read)
        longest = max(longest, t - since[0])
    return longest


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def latencies(xs):
    if not xs:
        return "no answers"
    return (f"{len(xs)} answers; p50 {pct(xs, 50) * 1000:.2f} ms, p99 {pct(xs, 99) * 1000:.2f} ms, "
            f"max {max(xs) * 1000:.2f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate", type=int, default=200_000, help="lines per second the writer appends")
    ap.add_argument("--rotate-lines", type=int, default=1_000_000, help="lines per file before a rotation")
    ap.add_argument("--copytruncate", default="2,4",
                    help="which rotations (1-based, comma-separated) copy and truncate instead of renaming")
    ap.add_argument("--keep", type=int, default=2, help="renamed files kept; older ones are deleted")
    ap.add_argument("--api-rate", type=float, default=20.0, help="GET /api/v1/slos per second")
    ap.add_argument("--poll-interval", default="500ms", help="the agent's poll_interval")
    ap.add_argument("--tick", default="5s", help="the agent's evaluation tick")
    ap.add_argument("--pool-lines", type=int, default=200_000, help="distinct lines the writer cycles through")
    ap.add_argument("--log-dir", default=None,
                    help="put the log files here instead of the work dir (e.g. /dev/shm, to keep their writeback "
                         "off the disk the agent's state is on)")
    ap.add_argument("--bin", default=None, help="slo-agent binary (default: the release build)")
    ap.add_argument("--dir", default=None, help="for the generated logs and the work dir (default /var/tmp/slo-agent-bench)")
    args = ap.parse_args()
    args.copytruncate = [int(x) for x in args.copytruncate.split(",") if x.strip()]

    binary = release_binary(args.bin)
    data = bench_dir(args.dir)
    args.pool_file = generated_log(binary, data, "cloudfront", 1_000_000)

    work = data / f"live-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    logs = Path(args.log_dir) / work.name if args.log_dir else work / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = work / "agent.yaml"
    config.write_text(
        f"specs: [{SPECS}]\n"
        f"state: {work / 'state.redb'}\n"
        f"listen: 127.0.0.1:{port}\n"
        f"tick: {args.tick}\n"
        f"poll_interval: {args.poll_interval}\n"
        "sources:\n"
        f"  - name: {SOURCE}\n"
        "    type: file\n"
        f"    paths: [{logs / 'access.log'}, {logs / 'access.log.*'}]\n"
        "    format: cloudfront\n"
        "    service: shop\n")

    agent, agent_log = start_agent(binary, config, work, port)
    conn = [None]
    try:
        cpu0 = cpu_seconds(agent.pid)

        stats = mp.Array("q", 2, lock=False)
        done = mp.Queue()
        w = mp.Process(target=writer, args=(args, logs, port, stats, done), daemon=True)
        w.start()

        stop = threading.Event()
        api_lat, health_lat, api_errors = [], [], [0]

        def poll_api():
            # GET /api/v1/slos at --api-rate, each followed by a GET /healthz
            # (a handler that does nothing): the control for what the client,
            # the loopback and the scheduler add.
            c = [None]
            period = 1.0 / args.api_rate
            nxt = time.perf_counter()
            while not stop.is_set():
                for path, into in (("/api/v1/slos", api_lat), ("/healthz", health_lat)):
                    try:
                        status, _, secs = http_get(c, port, path)
                        if status == 200:
                            into.append(secs)
                        else:
                            api_errors[0] += 1
                    except OSError:
                        api_errors[0] += 1
                nxt += period
                time.sleep(max(0.0, nxt - time.perf_counter()))

        samples = []  # (t, lag s, lines read, lines written, backlog bytes, rss KiB, dirty KiB)

        def scrape():
            c = [None]
            t0 = time.perf_counter()
            while not stop.is_set():
                try:
                    _, body, _ = http_get(c, port, "/metrics")
                    text = body.decode()
                    samples.append((time.perf_counter() - t0, metric(text, "slo_agent_ingest_lag_seconds"),
                                    metric(text, "slo_agent_ingest_lines_total"), stats[1],
                                    metric(text, "slo_agent_ingest_backlog_bytes"),
                                    proc_status_kib(agent.pid).get("VmRSS"), dirty_kib()))
                except OSError:
                    pass
                stop.wait(0.25)

        threads = [threading.Thread(target=poll_api), threading.Thread(target=scrape)]
        for t in threads:
            t.start()
        result = done.get()
        w.join()
        # The writer is done: how long until the agent has read every line?
        t_end = time.perf_counter()
        read = 0
        while time.perf_counter() - t_end < 15:
            _, body, _ = http_get(conn, port, "/metrics")
            read = metric(body.decode(), "slo_agent_ingest_lines_total") or 0
            if read >= result["total_lines"]:
                break
            time.sleep(0.05)
        catch_up = time.perf_counter() - t_end
        stop.set()
        for t in threads:
            t.join()
        _, body, _ = http_get(conn, port, "/metrics")
        final_lag = metric(body.decode(), "slo_agent_ingest_lag_seconds")
        rejected = sum(float(v) for v in re.findall(r'^slo_agent_rejected_lines_total\{[^}]*\} ([0-9.e+-]+)',
                                                    body.decode(), re.M))
        cpu = cpu_seconds(agent.pid) - cpu0
        mem = proc_status_kib(agent.pid)
    finally:
        stop_agent(agent, agent_log)
        shutil.rmtree(logs, ignore_errors=True)

    lags = [s[1] for s in samples if s[1] is not None]
    behind = [s[3] - s[2] for s in samples if s[2] is not None]
    rss = [s[5] for s in samples if s[5] is not None]
    dirty = [s[6] for s in samples if s[6] is not None]
    print(f"\n{machine()}")
    print(f"agent: poll_interval {args.poll_interval}, tick {args.tick}, 10 SLOs ({SPECS.name}); work dir {work}, "
          f"logs in {logs}\n")
    rate = result["written"] / result["elapsed"]
    rows = [
        ("writer: lines written", f"{result['written']:,} in {result['elapsed']:.1f} s = {rate:,.0f} lines/s "
                                  f"(target {args.rate:,}); at most {result['late'] * 1000:.0f} ms behind schedule"),
        ("writer: rotations", f"{result['rotations']} every {args.rotate_lines:,} lines "
                              f"(copytruncate at {args.copytruncate}, waits "
                              + ", ".join(f"{x * 1000:.0f} ms" for x in result["copytruncate_waits"]) + ")"),
        ("agent: lines read", f"{int(read):,} of {result['total_lines']:,} written (headers included): "
                              + ("all" if read == result["total_lines"] else f"DIFFERENCE {int(read) - result['total_lines']:+,}")
                              + f"; {int(rejected)} rejected"),
        ("agent: catch-up after writer stopped", f"{catch_up:.2f} s"),
        ("agent: ingest lag (/metrics, 4 samples/s)",
         (f"median {statistics.median(lags):.2f} s, max {max(lags):.2f} s, at the end {final_lag:.2f} s"
          if lags else "no samples")),
        ("agent: lines behind the writer (samples)",
         f"median {statistics.median(behind):,.0f}, max {max(behind):,.0f}" if behind else "no samples"),
        ("agent: longest stall (line count still)", f"{longest_stall(samples):.2f} s"),
        ("machine: dirty page cache", f"max {max(dirty) / 1024:,.0f} MiB" if dirty else "n/a"),
        ("GET /api/v1/slos", latencies(api_lat) + f"; {api_errors[0]} errors (both endpoints)"),
        ("GET /healthz (control)", latencies(health_lat)),
        ("agent: CPU", f"{cpu:.1f} s over {result['elapsed'] + catch_up:.1f} s "
                       f"({cpu / (result['elapsed'] + catch_up):.0%} of one core)"),
        ("agent: RSS", f"peak (VmHWM) {mem.get('VmHWM', 0) / 1024:.1f} MiB; "
                       f"sampled max {max(rss) / 1024 if rss else 0:.1f} MiB, at the end {mem.get('VmRSS', 0) / 1024:.1f} MiB"),
    ]
    report(rows, work, read == result["total_lines"])


if __name__ == "__main__":
    main()
