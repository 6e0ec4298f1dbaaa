#!/usr/bin/env python3
"""Whole-process replay benchmark: `slo-agent replay` of a 1,000,000-line log
against baselines on the same file, all in the same run, interleaved round by
round so that machine noise hits every command alike.

--format cloudfront (the default): a CloudFront standard log with the 10 SLOs
of specs-10.yaml, against `wc -l`, `mawk` counting 5xx and goaccess
(`--log-format=CLOUDFRONT`, fewer rounds: it is slow), plus the replay of the
gzipped file.

--format apigateway / lambda: API Gateway JSON access log records or Lambda
REPORT lines with the SLOs of specs-apigw-lambda.yaml, against `wc -l` and
`mawk` counting errors, plus the replay of the gzipped file.

Prints min and median wall time per command, lines/s, the ratios, and the
peak RSS. Checks that the replay and goaccess really read every line (their
own counts are printed). A benchmark prints numbers; it asserts nothing.

    python3 tests/bench/replay.py [--format cloudfront|apigateway|lambda]
        [--lines 1000000] [--rounds 7] [--goaccess-rounds 3] [--bin PATH]
        [--baseline-bin PATH]   # an earlier build, replayed in the same rounds
        [--threads 1,2]         # also replay with each of these --threads, same rounds
        [--replay-args "ARGS"]  # more arguments for every replay command
"""

import argparse
import gzip
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import bench_dir, generated_log, machine, release_binary

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tests" / "bench"

# Per format: the spec file, the service of records that carry none, and a
# mawk program counting the failures (a baseline doing a little work per line).
FORMATS = {
    "cloudfront": {
        "specs": BENCH / "specs-10.yaml",
        "service": "",
        # The 9th tab-separated column (sc-status) starts with 5.
        "mawk": ("mawk 5xx count", ["-F\t", "$9 ~ /^5/ {n++} END {print n+0}"]),
    },
    "apigateway": {
        "specs": BENCH / "specs-apigw-lambda.yaml",
        "service": "shop-api",
        "mawk": ("mawk 5xx count", ['/"status":"5/ {n++} END {print n+0}']),
    },
    "lambda": {
        "specs": BENCH / "specs-apigw-lambda.yaml",
        "service": "shop-api",
        "mawk": ("mawk error count", ["/\tStatus: (error|timeout)\t/ {n++} END {print n+0}"]),
    },
}

GNU_TIME = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)


def run(cmd, stdout=subprocess.DEVNULL):
    """Wall seconds and peak RSS (KiB) of one run of `cmd`. The RSS comes from
    GNU time when present (a child forked from Python would start with
    Python's own pages counted), else it is reported as unknown."""
    wrapped = [GNU_TIME, "-f", "%M", *cmd] if GNU_TIME else cmd
    start = time.perf_counter()
    proc = subprocess.run(wrapped, stdout=stdout, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    err = proc.stderr.decode()
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {err}")
    rss = int(err.strip().splitlines()[-1]) if GNU_TIME else 0
    return wall, rss


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b"\n")
    return n


def check_replay(cmd):
    """Run the replay once and print what it counted, so a replay that
    rejects every line cannot pass for a fast one."""
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True).stdout
    report = json.loads(out)
    rejected = sum(r["count"] for r in report["rejects"].values())
    counted = sum(s["events"]["total"] for s in report["slos"])
    print(f"replay check: {report['lines']} lines read, {report['events']} events, {rejected} rejected, "
          f"{counted} event/SLO pairs counted across {len(report['slos'])} SLOs")


def goaccess_command(goaccess, log, report):
    # --no-strict-status: the log has status 000 (the viewer went away), which
    # goaccess would otherwise count as a failed request.
    return [goaccess, str(log), "--log-format=CLOUDFRONT", "--no-global-config", "--no-progress",
            "--no-strict-status", "-o", str(report)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--format", choices=sorted(FORMATS), default="cloudfront")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--goaccess-rounds", type=int, default=3,
                    help="rounds that also run goaccess (cloudfront only; 0 to skip it)")
    ap.add_argument("--bin", default=None, help="slo-agent binary (default: the release build)")
    ap.add_argument("--dir", default=None, help="for the generated logs (default /var/tmp/slo-agent-bench)")
    ap.add_argument("--baseline-bin", default=None,
                    help="another slo-agent binary (an earlier commit's build) to replay in the same rounds")
    ap.add_argument("--threads", default="",
                    help="comma-separated --threads values to replay with too, in the same rounds (e.g. 1,2)")
    ap.add_argument("--replay-args", default="", help="more arguments for every replay command (one string)")
    args = ap.parse_args()
    fmt = FORMATS[args.format]
    thread_counts = [t for t in args.threads.split(",") if t.strip()]

    binary = release_binary(args.bin)
    log = generated_log(binary, bench_dir(args.dir), args.format, args.lines)
    gz = log.with_suffix(".log.gz")
    if not gz.exists():
        print(f"compressing {gz} …", flush=True)
        with open(log, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    size = log.stat().st_size
    lines = count_lines(log)
    mawk = shutil.which("mawk")
    goaccess = shutil.which("goaccess") if args.format == "cloudfront" and args.goaccess_rounds > 0 else None

    replay = [binary, "replay", "--specs", str(fmt["specs"]), "--format", args.format,
              "--service", fmt["service"], "--output", "json", *shlex.split(args.replay_args)]
    commands = {
        "wc -l": ["wc", "-l", str(log)],
        "slo-agent replay": [*replay, str(log)],
        "slo-agent replay (.gz)": [*replay, str(gz)],
    }
    for t in thread_counts:
        commands[f"replay --threads {t}"] = [*replay, "--threads", t, str(log)]
    if args.baseline_bin:
        commands["replay (baseline binary)"] = [args.baseline_bin, *replay[1:], str(log)]
    if mawk:
        name, program = fmt["mawk"]
        commands[name] = [mawk, *program, str(log)]
    else:
        print("mawk not found: its baseline is skipped (apt-get install mawk)")
    workdir = Path(tempfile.mkdtemp(prefix="slo-agent-bench-"))
    ga_report = workdir / "goaccess.json"
    if goaccess:
        commands["goaccess"] = goaccess_command(goaccess, log, ga_report)
    elif args.format == "cloudfront" and args.goaccess_rounds > 0:
        print("goaccess not found: its baseline is skipped (apt-get install goaccess)")

    # Warm the page cache, check what the replay counts, then interleave rounds.
    run(["cat", str(log)])
    check_replay([*replay, str(log)])
    walls = {name: [] for name in commands}
    rss = {name: [] for name in commands}
    for r in range(args.rounds):
        for name, cmd in commands.items():
            if name == "goaccess" and r >= args.goaccess_rounds:
                continue
            w, m = run(cmd)
            walls[name].append(w)
            rss[name].append(m)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    print(f"\n{machine()}")
    print(f"file: {log} ({lines} lines, {size / 1e6:.0f} MB; gz {gz.stat().st_size / 1e6:.0f} MB); "
          f"{args.rounds} rounds, interleaved\n")
    if goaccess:
        general = json.loads(ga_report.read_text())["general"]
        print(f"goaccess counted {general['total_requests']} requests, {general['valid_requests']} valid, "
              f"{general['failed_requests']} failed (the file holds {lines - 2} request lines and 2 header lines)\n")
    print(f"{'command':<26} {'runs':>4} {'min s':>8} {'median s':>9} {'lines/s (min)':>15} {'lines/s (median)':>17} "
          f"{'peak RSS':>10}")
    for name in commands:
        mn, md = min(walls[name]), statistics.median(walls[name])
        print(f"{name:<26} {len(walls[name]):>4} {mn:>8.3f} {md:>9.3f} {lines / mn / 1e6:>13.2f} M "
              f"{lines / md / 1e6:>15.2f} M " + (f"{max(rss[name]) / 1024:>8.1f} MiB" if GNU_TIME else "       n/a"))
    rep, wc = walls["slo-agent replay"], walls["wc -l"]
    print(f"\nreplay speed as a share of wc -l: {min(wc) / min(rep):.0%} (min vs min), "
          f"{statistics.median(wc) / statistics.median(rep):.0%} (median vs median)")
    for t in thread_counts:
        w = walls[f"replay --threads {t}"]
        print(f"replay --threads {t} as a share of wc -l: {min(wc) / min(w):.0%} (min vs min), "
              f"{statistics.median(wc) / statistics.median(w):.0%} (median vs median)")
    for name in commands:
        if name.startswith("mawk") or name == "goaccess":
            other = walls[name]
            print(f"replay vs {name}: {min(other) / min(rep):.1f}× (min vs min), "
                  f"{statistics.median(other) / statistics.median(rep):.1f}× (median vs median)")
    if args.baseline_bin:
        base = walls["replay (baseline binary)"]
        print(f"replay vs the baseline binary: {min(base) / min(rep):.2f}× (min vs min), "
              f"{statistics.median(base) / statistics.median(rep):.2f}× (median vs median); above 1: faster")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
