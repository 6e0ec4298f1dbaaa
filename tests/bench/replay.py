#!/usr/bin/env python3
"""Whole-process replay benchmark: `slo-agent replay` of a 1,000,000-line
CloudFront standard log with 10 SLOs, against `wc -l` and `mawk` (counting
5xx) on the same file, all in the same run, interleaved round by round so that
machine noise hits every command alike.

Prints min and median wall time per command, lines/s, the ratios, and the
peak RSS of the replay. A benchmark prints numbers; it asserts nothing.

    python3 tests/bench/replay.py [--lines 1000000] [--rounds 7] [--bin PATH]
"""

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tests" / "bench" / "specs-10.yaml"


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--bin", default=None, help="slo-agent binary (default: the release build)")
    ap.add_argument("--dir", default=os.environ.get("SLO_AGENT_BENCH_DIR", "/var/tmp/slo-agent-bench"))
    args = ap.parse_args()

    target = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/slo-agent-target"))
    binary = args.bin or str(target / "release" / "slo-agent")
    if not Path(binary).exists():
        sys.exit(f"{binary} not found: build it with `cargo build --release`")
    data = Path(args.dir)
    data.mkdir(parents=True, exist_ok=True)
    log = data / f"cloudfront-{args.lines}.log"
    if not log.exists():
        print(f"generating {log} …", flush=True)
        subprocess.run([binary, "generate", "--lines", str(args.lines), "--date", "2026-11-20", "--out", str(log)],
                       check=True)
    gz = log.with_suffix(".log.gz")
    if not gz.exists():
        print(f"compressing {gz} …", flush=True)
        with open(log, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    size = log.stat().st_size
    mawk = shutil.which("mawk")

    commands = {
        "wc -l": ["wc", "-l", str(log)],
        "slo-agent replay": [binary, "replay", "--specs", str(SPECS), "--output", "json", str(log)],
        "slo-agent replay (.gz)": [binary, "replay", "--specs", str(SPECS), "--output", "json", str(gz)],
    }
    if mawk:
        # Count 5xx: the 9th tab-separated column starts with 5.
        commands["mawk 5xx count"] = [mawk, "-F\t", "$9 ~ /^5/ {n++} END {print n+0}", str(log)]

    # Warm the page cache, then interleave rounds.
    run(["cat", str(log)])
    walls = {name: [] for name in commands}
    rss = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, cmd in commands.items():
            w, r = run(cmd)
            walls[name].append(w)
            rss[name].append(r)

    lines = args.lines + 2  # the two header lines
    uname = os.uname()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"\nmachine: {uname.sysname} {uname.release}, {os.cpu_count()} cores, {cpu}")
    print(f"file: {log} ({lines} lines, {size / 1e6:.0f} MB; gz {gz.stat().st_size / 1e6:.0f} MB); "
          f"{args.rounds} rounds, interleaved\n")
    print(f"{'command':<26} {'min s':>8} {'median s':>9} {'lines/s (min)':>15} {'lines/s (median)':>17} {'peak RSS':>10}")
    for name in commands:
        mn, md = min(walls[name]), statistics.median(walls[name])
        print(f"{name:<26} {mn:>8.3f} {md:>9.3f} {lines / mn / 1e6:>13.2f} M {lines / md / 1e6:>15.2f} M "
              + (f"{max(rss[name]) / 1024:>8.1f} MiB" if GNU_TIME else "       n/a"))
    rep, wc = walls["slo-agent replay"], walls["wc -l"]
    print(f"\nreplay speed as a share of wc -l: {min(wc) / min(rep):.0%} (min vs min), "
          f"{statistics.median(wc) / statistics.median(rep):.0%} (median vs median)")
    if mawk:
        mk = walls["mawk 5xx count"]
        print(f"replay vs mawk 5xx count: {min(mk) / min(rep):.1f}× (min vs min), "
              f"{statistics.median(mk) / statistics.median(rep):.1f}× (median vs median)")


if __name__ == "__main__":
    main()
