"""What the benchmark scripts in this folder share: finding the release
binary, the generated logs they read, and a description of the machine."""

import os
import shutil
import subprocess
import sys
from pathlib import Path


def release_binary(given):
    """The slo-agent binary: `given`, else the release build under
    $CARGO_TARGET_DIR (default /var/tmp/slo-agent-target)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/slo-agent-target"))
    binary = given or str(target / "release" / "slo-agent")
    if not Path(binary).exists():
        sys.exit(f"{binary} not found: build it with `cargo build --release`")
    return binary


def bench_dir(given):
    """Where the big generated files go (never the repository)."""
    data = Path(given or os.environ.get("SLO_AGENT_BENCH_DIR", "/var/tmp/slo-agent-bench"))
    data.mkdir(parents=True, exist_ok=True)
    return data


def generated_log(binary, data, fmt, lines, date=None):
    """`{fmt}-{lines}.log` in `data`, written by `slo-agent generate` the
    first time it is asked for, from 2026-11-20; with `date` (YYYY-MM-DD)
    from that day, as `{fmt}-{lines}-from-{date}.log`."""
    log = data / (f"{fmt}-{lines}-from-{date}.log" if date else f"{fmt}-{lines}.log")
    if not log.exists():
        print(f"generating {log} …", flush=True)
        tmp = log.with_suffix(".log.tmp")
        subprocess.run([binary, "generate", "--format", fmt, "--lines", str(lines), "--date", date or "2026-11-20",
                        "--out", str(tmp)], check=True)
        tmp.rename(log)
    return log


def machine():
    """One line: kernel, cores, CPU model and the load average now."""
    uname = os.uname()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    load = os.getloadavg()
    return (f"machine: {uname.sysname} {uname.release}, {os.cpu_count()} cores, {cpu}; "
            f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def report(rows, work, complete):
    """Print (label, value) rows as a table; remove the work dir when the
    run was complete, else say where its log and state are."""
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if complete:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\nthe agent's log and state are kept in {work}")


def proc_status_kib(pid):
    """VmRSS and VmHWM of a process, KiB (empty when it is gone)."""
    out = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def cpu_seconds(pid):
    """User and system CPU seconds a process has used."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
