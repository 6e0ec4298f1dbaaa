#!/usr/bin/env python3
"""Scale benchmark (issue 15): 1,000 native SLOs (tests/bench/scale_specs.py:
availability and latency, 28-day windows, ten filters shared a hundred ways)
over 6.3 M CloudFront lines spread across 30 days, whole process.

The log is `slo-agent generate --lines 6300000 --date D`: the generator
writes about 212,400 lines a day (250 a minute at the daily peak, 59 % of
that on average), so 6.3 M lines span about 29.7 days. D is chosen so the
last line falls before midnight (UTC) of the day the benchmark runs: `run`
keeps only the last 28 days by the wall clock, and drops events from the
future. The file is cached in the bench dir (default /var/tmp/slo-agent-bench)
as cloudfront-LINES-from-D.log; older files of the same size with another
date are deleted (they are 2.5 GB each).

Parts (--parts, default all):

replay  `slo-agent replay` of the whole log with the SLOs, --rounds times:
        wall time, lines/s, peak RSS (GNU time). Every run's JSON report is
        checked: the lines read, events and rejects must add up to the file,
        and events must have been counted, or the benchmark stops. When
        `replay --help` offers --threads, runs with --threads 1 and with the
        default (all cores) in the same rounds.
wc      the issue's "1 M-line replay vs wc -l" figure: tests/bench/replay.py on
        its 1 M-line file with the 10 SLOs of specs-10.yaml (the setup the
        figure was first measured with), its output printed; plus, for
        information, `wc -l` against the replay with the scale SLOs on the
        same 1 M-line file, interleaved.
run     `slo-agent run` with the SLOs and a file source on the log, from an
        empty state file: time until it has read the whole file (its
        slo_agent_ingest_lines_total reaches the file's line count), RSS
        (VmRSS, VmHWM) sampled during the catch-up, after it and after
        --ticks evaluation ticks; the state file's size, whole and per SLO;
        then SIGTERM, a restart on the same state, the time from exec to
        /readyz answering 200, RSS after the restart and a few ticks, and the
        state file's size after the restart (a file mostly free is compacted
        when opened).
        With --run-lines N it reads a shorter log of N lines instead (dated
        the same way), for when the catch-up of the whole one is too slow.
        After the file is read it waits until the SLOs' event totals in
        GET /api/v1/slos are the same in two evaluations (two different
        `at`), a tick apart ("counted and evaluated").

Every wait is bounded (--run-timeout for the catch-up). The agents started
are stopped on exit, and the work dir removed when the run completed.
A benchmark prints numbers; it asserts nothing about them.

    python3 tests/bench/scale.py [--lines 6300000] [--slos 1000] [--rounds 3]
        [--parts replay,wc,run] [--wc-rounds 7] [--scale-wc-rounds 3] [--ticks 3]
        [--run-timeout 1800] [--restart-timeout 900] [--run-lines N]
        [--bin PATH] [--dir DIR]
"""

import argparse
import datetime as dt
import http.client
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import bench_dir, cpu_seconds, generated_log, machine, proc_status_kib, release_binary
from replay import GNU_TIME, count_lines
from scale_specs import write_specs

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tests" / "bench"
# Mean request lines per day of `slo-agent generate` (traffic.rs: a peak of
# 250 a minute, the diurnal shape averaging 0.18 + 0.82 / 2 of it).
LINES_PER_DAY = 250 * (0.18 + 0.82 / 2) * 1440
HEADER_LINES = 2
SOURCE = "edge"
TICK_S = 5

children = []  # agents started, stopped on exit


def scale_log(binary, data, lines):
    """The generated log, dated so that it ends before today's midnight (UTC)."""
    days = math.ceil(lines / LINES_PER_DAY)
    today = dt.datetime.now(dt.timezone.utc).date()
    start = (today - dt.timedelta(days=days)).isoformat()
    for old in data.glob(f"cloudfront-{lines}-from-*.log*"):
        if start not in old.name:
            print(f"removing {old} (another day's)", flush=True)
            old.unlink()
    return generated_log(binary, data, "cloudfront", lines, date=start), start


def first_last_times(log):
    """The date and time of the first and last request line."""
    with open(log, "rb") as f:
        first = next(line for line in f if not line.startswith(b"#"))
        f.seek(max(0, os.path.getsize(log) - 4096))
        last = f.read().splitlines()[-1]
    return [" ".join(x.decode().split("\t")[:2]) for x in (first, last)]


def timed_replay(cmd):
    """Wall seconds, peak RSS (KiB), CPU seconds (user + system; None
    without GNU time) and the JSON report of one replay. The CPU time says
    what the run cost when other work shares the cores."""
    wrapped = [GNU_TIME, "-f", "%U %S %M", *cmd] if GNU_TIME else cmd
    start = time.perf_counter()
    proc = subprocess.run(wrapped, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    err = proc.stderr.decode()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    rss, cpu = 0, None
    if GNU_TIME:
        user, sys_, rss = err.strip().splitlines()[-1].split()
        rss, cpu = int(rss), float(user) + float(sys_)
    return wall, rss, cpu, json.loads(proc.stdout)


def check_report(report, lines, slos, label):
    """What a replay counted; stops the benchmark when it does not add up."""
    rejected = sum(r["count"] for r in report["rejects"].values())
    pairs = sum(s["events"]["total"] for s in report["slos"])
    counted = sum(1 for s in report["slos"] if s["events"]["total"] > 0)
    text = (f"{label}: {report['lines']:,} lines read, {report['events']:,} events, {rejected:,} rejected, "
            f"{pairs:,} event/SLO pairs counted; {counted} of {len(report['slos'])} SLOs have events")
    ok = (report["lines"] == lines and report["events"] + rejected == lines - HEADER_LINES
          and len(report["slos"]) == slos and counted == slos and pairs > 0)
    if not ok:
        sys.exit(f"replay check FAILED: {text} (the file holds {lines:,} lines, {HEADER_LINES} of them headers)")
    return text, report["events"], rejected, pairs


def replay_threads_option(binary):
    out = subprocess.run([binary, "replay", "--help"], capture_output=True, text=True).stdout
    return "--threads" in out


def part_replay(args, binary, log, lines, specs):
    base = [binary, "replay", "--specs", str(specs), "--format", "cloudfront", "--output", "json"]
    variants = {"replay": [*base, str(log)]}
    if replay_threads_option(binary):
        variants = {"replay --threads 1": [*base, "--threads", "1", str(log)],
                    "replay (default threads)": [*base, str(log)]}
    else:
        print("replay has no --threads option: one variant (the default)")
    walls = {k: [] for k in variants}
    rss = {k: [] for k in variants}
    cpus = {k: [] for k in variants}
    checks = {}
    for r in range(args.rounds):
        for name, cmd in variants.items():
            w, m, cpu, report = timed_replay(cmd)
            checks[name] = check_report(report, lines, args.slos, name)
            walls[name].append(w)
            rss[name].append(m)
            cpus[name].append(cpu or 0)
            print(f"  round {r + 1}/{args.rounds} {name}: {w:.1f} s, CPU {cpu or 0:.1f} s, {m / 1024:.0f} MiB; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for name in variants:
        mn, md = min(walls[name]), statistics.median(walls[name])
        rows.append((name, len(walls[name]), mn, md, lines / mn, lines / md, max(rss[name]) / 1024,
                     min(cpus[name])))
    return rows, [c[0] for c in checks.values()]


def part_wc(args, binary, data, specs):
    """replay.py's figure, then wc -l against the scale SLOs on its file."""
    cmd = [sys.executable, str(BENCH / "replay.py"), "--lines", "1000000", "--rounds", str(args.wc_rounds),
           "--goaccess-rounds", "0", "--bin", binary, "--dir", str(data)]
    print("$ " + " ".join(cmd), flush=True)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
    print(out)
    m = re.search(r"share of wc -l: (\d+)% \(min vs min\), (\d+)% \(median vs median\)", out)
    ratio10 = (int(m.group(1)) / 100, int(m.group(2)) / 100) if m else None

    if args.scale_wc_rounds <= 0:
        return ratio10, None, None
    log = generated_log(binary, data, "cloudfront", 1_000_000)
    lines = count_lines(log)
    replay = [binary, "replay", "--specs", str(specs), "--format", "cloudfront", "--output", "json", str(log)]
    wc, rep, rss = [], [], 0
    for _ in range(args.scale_wc_rounds):
        t0 = time.perf_counter()
        subprocess.run(["wc", "-l", str(log)], stdout=subprocess.DEVNULL, check=True)
        wc.append(time.perf_counter() - t0)
        w, m, _, report = timed_replay(replay)
        check_report(report, lines, args.slos, "1 M-line replay")
        rep.append(w)
        rss = max(rss, m)
    ratio_scale = (min(wc) / min(rep), statistics.median(wc) / statistics.median(rep))
    return ratio10, ratio_scale, (min(wc), min(rep), lines / min(rep), rss / 1024)


def http_get(port, path, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def metric_sum(text, name):
    """The sum of a metric over its label sets (None when absent)."""
    vals = re.findall(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.M)
    return sum(float(v) for v in vals) if vals else None


def metrics(port):
    try:
        status, body = http_get(port, "/metrics", timeout=30)
        return body.decode() if status == 200 else ""
    except OSError:
        return ""


def slo_report(port):
    """(event/SLO pairs counted, SLOs with events, the evaluation's `at`) in
    GET /api/v1/slos."""
    try:
        status, body = http_get(port, "/api/v1/slos", timeout=60)
    except OSError:
        return 0, 0, None
    if status != 200:
        return 0, 0, None
    report = json.loads(body)
    slos = report["slos"]
    return (sum(s["events"]["total"] for s in slos), sum(1 for s in slos if s["events"]["total"] > 0),
            report.get("at"))


def slo_pairs(port):
    """(event/SLO pairs counted, SLOs with events) in GET /api/v1/slos."""
    return slo_report(port)[:2]


def memory(pid):
    """VmRSS and VmHWM of a process, MiB."""
    return {k: v / 1024 for k, v in proc_status_kib(pid).items()}


def start_agent(binary, work, name, timeout):
    """Start `slo-agent run`; returns (process, seconds from exec to /readyz
    200), or (None, None) when it was not ready within `timeout` (it is
    killed then)."""
    log = open(work / f"{name}.log", "wb")
    port = int((work / "port").read_text())
    t0 = time.perf_counter()
    agent = subprocess.Popen([binary, "run", "--config", str(work / "agent.yaml")], cwd=work, stdout=log,
                             stderr=subprocess.STDOUT)
    children.append(agent)
    while True:
        try:
            if http_get(port, "/readyz", timeout=2)[0] == 200:
                return agent, time.perf_counter() - t0
        except OSError:
            pass
        if agent.poll() is not None:
            sys.exit(f"the agent exited ({agent.returncode}); see {work / f'{name}.log'}")
        if time.perf_counter() - t0 > timeout:
            print(f"the agent was not ready within {timeout} s; see {work / f'{name}.log'}", flush=True)
            agent.kill()
            agent.wait()
            children.remove(agent)
            return None, None
        time.sleep(0.01)


def stop_agent(agent, timeout=120):
    """SIGTERM; seconds until it exited."""
    t0 = time.perf_counter()
    agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()
        return None
    finally:
        children.remove(agent)
    return time.perf_counter() - t0


def wait_ticks(agent, ticks):
    """Wait `ticks` evaluation ticks, sampling RSS; returns the max VmRSS."""
    peak = 0.0
    end = time.time() + ticks * TICK_S + 1
    while time.time() < end:
        peak = max(peak, memory(agent.pid).get("VmRSS", 0))
        time.sleep(0.25)
    return peak


class Rows(list):
    """The run's (label, value) rows, each also printed when it comes, so a
    run cut short still shows what it measured."""

    def append(self, row):
        print(f"  run: {row[0]}: {row[1]}", flush=True)
        super().append(row)


def part_run(args, binary, data, log, lines, specs):
    work = data / f"scale-run-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    (work / "logs" / "access.log").symlink_to(log)
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (work / "port").write_text(str(port))
    (work / "agent.yaml").write_text(
        f"specs: [{specs}]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: {TICK_S}s\n"
        f"sources:\n  - name: {SOURCE}\n    type: file\n    paths: [logs/access.log]\n    format: cloudfront\n")
    state = work / "state.redb"
    rows = Rows()
    agent, ready0 = start_agent(binary, work, "agent-first", 120)
    if agent is None:
        sys.exit("the agent did not start")
    rows.append(("first start (empty state) to /readyz", f"{ready0:.2f} s"))
    cpu0 = cpu_seconds(agent.pid)
    t0 = time.perf_counter()
    samples = []  # (t, lines read, VmRSS MiB)
    read = 0
    last_print = 0
    while True:
        text = metrics(port)
        read = metric_sum(text, "slo_agent_ingest_lines_total") or read
        mem = memory(agent.pid)
        t = time.perf_counter() - t0
        samples.append((t, read, mem.get("VmRSS", 0)))
        if t - last_print >= 30:
            print(f"  catch-up: {t:.0f} s, {read:,.0f} of {lines:,} lines, RSS {mem.get('VmRSS', 0):.0f} MiB",
                  flush=True)
            last_print = t
        if read >= lines:
            break
        if agent.poll() is not None:
            sys.exit(f"the agent exited during the catch-up; see {work / 'agent-first.log'}")
        if t > args.run_timeout:
            rows.append(("catch-up", f"NOT DONE within {args.run_timeout} s: {read:,.0f} of {lines:,} lines"))
            break
        time.sleep(0.5)
    catch_up = time.perf_counter() - t0
    done = read >= lines
    # Lines read are not yet counted and evaluated: wait until the SLOs'
    # event totals in GET /api/v1/slos are the same in two evaluations
    # (their `at` differs: a busy state thread publishes none).
    counted_after, pairs = None, 0
    if done:
        previous = (-1, None)
        while time.perf_counter() - t0 < args.run_timeout:
            pairs, _, at = slo_report(port)
            if pairs > 0 and pairs == previous[0] and at != previous[1]:
                counted_after = time.perf_counter() - t0 - TICK_S
                break
            if pairs != previous[0]:
                previous = (pairs, at)
            time.sleep(TICK_S)
    cpu = cpu_seconds(agent.pid) - cpu0
    text = metrics(port)
    events = metric_sum(text, "slo_agent_events_total") or 0
    too_old = metric_sum(text, "slo_agent_too_old_events_total") or 0
    future = metric_sum(text, "slo_agent_future_events_total") or 0
    rejected = metric_sum(text, "slo_agent_rejected_lines_total") or 0
    after_catch_up = memory(agent.pid)
    if done:
        rows.append(("catch-up: whole file read", f"{catch_up:.1f} s = {lines / catch_up / 1e6:.3f} M lines/s"))
    if counted_after:
        rows.append(("catch-up: counted and evaluated", f"{counted_after:.1f} s = "
                                                        f"{lines / counted_after / 1e6:.3f} M lines/s; CPU {cpu:.0f} s "
                                                        f"({cpu / counted_after:.0%} of one core); "
                                                        f"{pairs:,} event/SLO pairs in the SLOs' windows"))
    elif done:
        rows.append(("catch-up: counted and evaluated", f"NOT DONE within {args.run_timeout} s"))
    rows.append(("catch-up: counted", f"{events:,.0f} events, {rejected:,.0f} rejected lines; event/SLO pairs "
                                      f"too old for the window {too_old:,.0f}, from the future {future:,.0f}"))
    rows.append(("RSS during catch-up (sampled max)", f"{max(s[2] for s in samples):.0f} MiB"))
    rows.append(("RSS after catch-up", f"VmRSS {after_catch_up.get('VmRSS', 0):.0f} MiB, "
                                       f"VmHWM {after_catch_up.get('VmHWM', 0):.0f} MiB"))
    peak_ticks = wait_ticks(agent, args.ticks)
    after_ticks = memory(agent.pid)
    rows.append((f"RSS after {args.ticks} more ticks ({TICK_S} s)",
                 f"VmRSS {after_ticks.get('VmRSS', 0):.0f} MiB (max sampled {peak_ticks:.0f}), "
                 f"VmHWM {after_ticks.get('VmHWM', 0):.0f} MiB"))
    pairs, with_events = slo_pairs(port)
    rows.append(("SLOs with events (GET /api/v1/slos)", f"{with_events} of {args.slos}, {pairs:,} event/SLO pairs"))
    running_size = state.stat().st_size
    stopped = stop_agent(agent)
    size = state.stat().st_size
    rows.append(("SIGTERM to exit", f"{stopped:.2f} s" if stopped is not None else "KILLED after 120 s"))
    rows.append(("state file", f"{size / 2**20:.1f} MiB after the stop ({running_size / 2**20:.1f} MiB "
                               f"running) = {size / args.slos / 1024:.1f} KiB per SLO"))

    agent, ready = start_agent(binary, work, "agent-restart", args.restart_timeout)
    if agent is None:
        rows.append(("restart: exec to /readyz 200", f"NOT READY within {args.restart_timeout} s"))
        rows.append(("work dir kept", str(work)))
        return rows
    after_restart = memory(agent.pid)
    rows.append(("restart: exec to /readyz 200", f"{ready:.2f} s"))
    rows.append(("RSS right after the restart", f"VmRSS {after_restart.get('VmRSS', 0):.0f} MiB, "
                                                f"VmHWM {after_restart.get('VmHWM', 0):.0f} MiB"))
    peak_ticks = wait_ticks(agent, args.ticks)
    again = memory(agent.pid)
    text = metrics(port)
    reread = metric_sum(text, "slo_agent_ingest_lines_total") or 0
    pairs_again, with_events = slo_pairs(port)
    rows.append((f"RSS after the restart and {args.ticks} ticks",
                 f"VmRSS {again.get('VmRSS', 0):.0f} MiB (max sampled {peak_ticks:.0f}), "
                 f"VmHWM {again.get('VmHWM', 0):.0f} MiB"))
    compacted = [line for line in (work / "agent-restart.log").read_text(errors="replace").splitlines()
                 if "compacted the state file" in line]
    size_after = state.stat().st_size
    rows.append(("state file after the restart", f"{size_after / 2**20:.1f} MiB = "
                 f"{size_after / args.slos / 1024:.1f} KiB per SLO "
                 f"({'compacted at the start' if compacted else 'not compacted'})"))
    rows.append(("after the restart", f"{with_events} of {args.slos} SLOs with events, {pairs_again:,} event/SLO "
                                      f"pairs (before the stop {pairs:,}; the window moved meanwhile); "
                                      f"{reread:,.0f} lines read again (0: the checkpoint held)"))
    stop_agent(agent)
    if done:
        shutil.rmtree(work, ignore_errors=True)
    else:
        rows.append(("work dir kept", str(work)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=6_300_000, help="request lines of the scale log")
    ap.add_argument("--slos", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the big replay")
    ap.add_argument("--wc-rounds", type=int, default=7, help="rounds of the 1 M-line replay against wc -l")
    ap.add_argument("--scale-wc-rounds", type=int, default=3,
                    help="rounds of wc -l against the 1 M-line replay with the scale SLOs (0 to skip)")
    ap.add_argument("--parts", default="replay,wc,run")
    ap.add_argument("--ticks", type=int, default=3, help="evaluation ticks to wait after catch-up and restart")
    ap.add_argument("--run-timeout", type=float, default=1800, help="most seconds the run's catch-up may take")
    ap.add_argument("--restart-timeout", type=float, default=900, help="most seconds the restart may take to be ready")
    ap.add_argument("--run-lines", type=int, default=None,
                    help="request lines of the log `run` reads (default --lines); a shorter log, dated to end "
                         "before today's midnight too, when the catch-up would take too long")
    ap.add_argument("--bin", default=None, help="slo-agent binary (default: the release build)")
    ap.add_argument("--dir", default=None, help="for the generated logs (default /var/tmp/slo-agent-bench)")
    args = ap.parse_args()
    parts = set(p.strip() for p in args.parts.split(","))

    binary = release_binary(args.bin)
    data = bench_dir(args.dir)
    specs = write_specs(data / f"scale-specs-{args.slos}.yaml", args.slos)
    log, start = scale_log(binary, data, args.lines)
    lines = count_lines(log)
    first, last = first_last_times(log)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()

    def finish(*_):
        for agent in list(children):
            agent.kill()
        sys.exit(1)

    signal.signal(signal.SIGTERM, finish)
    try:
        replay_rows = checks = wc = run_rows = run_note = None
        if "replay" in parts:
            print(f"replay: {args.rounds} rounds of the {lines:,}-line log with {args.slos} SLOs", flush=True)
            replay_rows, checks = part_replay(args, binary, log, lines, specs)
        if "wc" in parts:
            wc = part_wc(args, binary, data, specs)
        if "run" in parts:
            run_log, run_lines = log, lines
            if args.run_lines and args.run_lines != args.lines:
                run_log, _ = scale_log(binary, data, args.run_lines)
                run_lines = count_lines(run_log)
                first_r, last_r = first_last_times(run_log)
                run_note = f"run read {run_log} ({run_lines:,} lines), requests from {first_r} to {last_r} UTC"
                print(run_note)
            print("run: catch-up, ticks, restart", flush=True)
            run_rows = part_run(args, binary, data, run_log, run_lines, specs)
    finally:
        for agent in list(children):
            agent.kill()

    print(f"\n{machine()}; at the start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"started {started}; binary {binary}")
    print(f"log: {log} ({lines:,} lines, {log.stat().st_size / 1e9:.2f} GB), requests from {first} to {last} UTC")
    print(f"specs: {specs} ({args.slos} SLOs)")
    if run_note:
        print(run_note)
    print()
    if replay_rows:
        print(f"{'command':<26} {'runs':>4} {'min s':>8} {'median s':>9} {'lines/s (min)':>14} "
              f"{'lines/s (median)':>17} {'peak RSS':>10} {'CPU s (min)':>12} {'lines/CPU s':>12}")
        for name, n, mn, md, ls_mn, ls_md, rss, cpu in replay_rows:
            print(f"{name:<26} {n:>4} {mn:>8.2f} {md:>9.2f} {ls_mn / 1e6:>12.3f} M {ls_md / 1e6:>15.3f} M "
                  f"{rss:>6.0f} MiB {cpu:>12.1f} {lines / cpu / 1e6 if cpu else 0:>10.3f} M")
        for c in checks:
            print(f"  check: {c}")
        print()
    if wc:
        ratio10, ratio_scale, figures = wc
        if ratio10:
            print(f"1 M-line replay vs wc -l (replay.py, 10 SLOs of specs-10.yaml): {ratio10[0]:.2f}× (min vs min), "
                  f"{ratio10[1]:.2f}× (median vs median)")
    if wc and ratio_scale:
        wc_min, rep_min, rate, rss = figures
        print(f"1 M-line replay with the {args.slos} SLOs vs wc -l: {ratio_scale[0]:.3f}× (min vs min: wc -l "
              f"{wc_min:.3f} s, replay {rep_min:.2f} s = {rate / 1e6:.2f} M lines/s, peak RSS {rss:.0f} MiB), "
              f"{ratio_scale[1]:.3f}× (median vs median)\n")
    if run_rows:
        width = max(len(k) for k, _ in run_rows)
        for k, v in run_rows:
            print(f"run: {k:<{width}}  {v}")


if __name__ == "__main__":
    main()
