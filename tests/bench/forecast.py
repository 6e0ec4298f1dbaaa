#!/usr/bin/env python3
"""Holdout accuracy of `slo-agent forecast` against seasonal-naive and
classic Theta, on generated web/cloud-like series.

    python3 tests/bench/forecast.py [--binary PATH] [--seeds 3]

For each kind of series (several sampling steps; daily and weekly cycles,
trend, noise, a level shift, outliers, flat stretches, missing and jittered
rows) and seed: the last H steps are held out, the rest is written as CSV,
the built binary forecasts H steps, and the baselines forecast the same
steps from the same rows (put on the regular grid, gaps interpolated).
Printed per kind, averaged over seeds: sMAPE (%), MASE (mean absolute
error over the in-sample mean absolute error of the seasonal-naive forecast
at the daily period, or naive without one), the share of held-out points in
the 95 % interval, the wall time of one `slo-agent forecast` run (process
start, CSV read, forecast, write) and its peak RSS.

Pure Python (no numpy): the baselines are written here, not imported.
"""

import argparse
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import machine, release_binary  # noqa: E402

T0 = 1_790_000_000  # seconds, a Monday-ish start; only spacing matters
DAY = 86_400


def fmt_ts(sec):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))


def make(kind, seed):
    """(step seconds, daily period in steps or 0, values on the full grid, kept mask, jitter, horizon)."""
    rng = random.Random(f"{kind}-{seed}")
    if kind == "web-5min":  # requests/s: daily + weekday/weekend, slow growth, 4 weeks
        step, n, h = 300, 288 * 28, 288
        vals = []
        for i in range(n + h):
            t = i * step
            d = math.sin(2 * math.pi * (t % DAY) / DAY - math.pi / 2)
            weekend = (t // DAY) % 7 >= 5
            base = 200 * (1 + 0.2 * i / n) * (0.6 if weekend else 1.0)
            mean = base * (1 + 0.6 * d)
            vals.append(max(0.0, rng.gauss(mean, 0.05 * mean + 2)))
        return step, 288, vals, None, 0, h
    if kind == "cpu-1min-shift":  # CPU %: daily, a level shift 2 days before the end, outliers
        step, n, h = 60, 1440 * 10, 720
        vals = []
        for i in range(n + h):
            t = i * step
            d = math.sin(2 * math.pi * (t % DAY) / DAY)
            level = 35 if i < n - 2 * 1440 else 55
            v = level + 15 * d + rng.gauss(0, 3)
            if rng.random() < 0.002 and i < n:
                v += rng.choice([-1, 1]) * rng.uniform(40, 80)
            vals.append(v)
        return step, 1440, vals, None, 0, h
    if kind == "hourly-missing":  # hourly requests, daily + weekly, trend, 5 % rows missing
        step, n, h = 3600, 24 * 120, 168
        vals = []
        for i in range(n + h):
            d = math.sin(2 * math.pi * (i % 24) / 24)
            w = -0.3 if (i // 24) % 7 >= 5 else 0.0
            mean = 1000 * (1 + 0.3 * i / n) * (1 + 0.5 * d + w)
            vals.append(rng.gauss(mean, 0.04 * mean))
        keep = [rng.random() > 0.05 for _ in range(n)]
        keep[-1] = True
        return step, 24, vals, keep, 0, h
    if kind == "latency-flat-spikes":  # p99 latency ms: flat stretches, spikes, a step
        step, n, h = 60, 1440 * 7, 360
        vals = []
        for i in range(n + h):
            v = 120.0 if i < n - 1440 else 140.0
            if rng.random() < 0.3:
                v += rng.choice([0, 5, 10])
            if rng.random() < 0.005 and i < n:
                v += rng.uniform(200, 800)
            vals.append(v)
        return step, 1440, vals, None, 0, h
    if kind == "irregular-10min":  # jittered timestamps, 10 % missing, daily
        step, n, h = 600, 144 * 21, 144
        vals = []
        for i in range(n + h):
            d = math.cos(2 * math.pi * (i % 144) / 144)
            vals.append(50 + 20 * d + rng.gauss(0, 4))
        keep = [rng.random() > 0.1 for _ in range(n)]
        keep[-1] = True
        return step, 144, vals, keep, 90, h
    if kind == "trend-hourly":  # no cycle, a trend and noise
        step, n, h = 3600, 24 * 30, 48
        vals = [300 + 2.0 * i + rng.gauss(0, 20) for i in range(n + h)]
        return step, 0, vals, None, 0, h
    raise ValueError(kind)


WEEKLY = {"web-5min", "hourly-missing"}
KINDS = ["web-5min", "cpu-1min-shift", "hourly-missing", "latency-flat-spikes", "irregular-10min", "trend-hourly"]


def interpolate_fast(vals, keep):
    if keep is None:
        return list(vals)
    out = list(vals)
    prev = None
    for i, k in enumerate(keep):
        if not k:
            continue
        if prev is None:
            for j in range(i):
                out[j] = vals[i]
        elif i > prev + 1:
            for j in range(prev + 1, i):
                out[j] = vals[prev] + (vals[i] - vals[prev]) * (j - prev) / (i - prev)
        prev = i
    return out


def seasonal_naive(y, m, h):
    if m <= 1 or len(y) < m:
        return [y[-1]] * h
    return [y[len(y) - m + (k % m)] for k in range(h)]


def ses_fit(y):
    best = None
    for a in [x / 50 for x in range(1, 51)]:
        level, sse = y[0], 0.0
        for v in y[1:]:
            e = v - level
            sse += e * e
            level += a * e
        if best is None or sse < best[0]:
            best = (sse, a, level)
    return best[1], best[2]


def theta(y, m, h):
    """Classic Theta (Assimakopoulos & Nikolopoulos; Hyndman & Billah's form):
    classical additive decomposition at period m, SES with optimised alpha plus
    half the OLS drift, seasonality added back."""
    n = len(y)
    seas = [0.0] * max(m, 1)
    if m > 1 and n >= 2 * m:
        half = m // 2
        prefix = [0.0]
        for v in y:
            prefix.append(prefix[-1] + v)
        sums, counts = [0.0] * m, [0] * m
        for i in range(half, n - half):
            ma = (prefix[i + half + 1] - prefix[i - half]) / (2 * half + 1) if m % 2 else (
                (prefix[i + half] - prefix[i - half]) / m + (prefix[i + half + 1] - prefix[i - half + 1]) / m) / 2
            sums[i % m] += y[i] - ma
            counts[i % m] += 1
        seas = [s / c if c else 0.0 for s, c in zip(sums, counts)]
        mean = sum(seas) / m
        seas = [s - mean for s in seas]
    adj = [v - seas[i % len(seas)] for i, v in enumerate(y)]
    xm = (n - 1) / 2
    ym = sum(adj) / n
    b = sum((i - xm) * (v - ym) for i, v in enumerate(adj)) / sum((i - xm) ** 2 for i in range(n))
    a, level = ses_fit(adj)
    out = []
    for k in range(1, h + 1):
        f = level + b / 2 * (k - 1 + 1 / a - (1 - a) ** n / a)
        out.append(f + seas[(n - 1 + k) % len(seas)])
    return out


def smape(f, a):
    s = 0.0
    for x, y in zip(f, a):
        d = abs(x) + abs(y)
        s += 0.0 if d == 0 else 200 * abs(x - y) / d
    return s / len(a)


def mase(f, a, train, m):
    m = m if m > 1 and len(train) > m else 1
    scale = sum(abs(train[i] - train[i - m]) for i in range(m, len(train))) / (len(train) - m)
    mae = sum(abs(x - y) for x, y in zip(f, a)) / len(a)
    return mae / scale if scale > 0 else float("nan")


def run_binary(binary, csv_path, h, out_path):
    t = time.perf_counter()
    p = subprocess.run([binary, "forecast", "--input", str(csv_path), "--horizon", str(h), "--output", str(out_path)],
                       capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"slo-agent forecast failed: {p.stderr}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest child so far
    rows = Path(out_path).read_text().splitlines()[1:]
    f, lo, hi = [], [], []
    for r in rows:
        _, a, b, c = r.split(",")
        f.append(float(a))
        lo.append(float(b))
        hi.append(float(c))
    return f, lo, hi, elapsed, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    binary = release_binary(args.binary)
    print(machine())
    print(f"{'series':22} {'rows':>6} {'H':>4}  {'sMAPE ours/snaive/theta':>26}  {'MASE ours/snaive/theta':>24}"
          f"  {'cover95':>7} {'ms':>6} {'RSS MiB':>7}")
    ratios_sn, ratios_th = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            acc = {k: [] for k in ["so", "ss", "st", "mo", "ms", "mt", "cov", "ms_time", "rows"]}
            rss_max = 0
            for seed in range(args.seeds):
                step, m, vals, keep, jitter, h = make(kind, seed)
                n = len(vals) - h
                rng = random.Random(f"jitter-{kind}-{seed}")
                csv_path = Path(tmp) / f"{kind}-{seed}.csv"
                lines = ["timestamp,value"]
                count = 0
                for i in range(n):
                    if keep is not None and not keep[i]:
                        continue
                    j = rng.randint(-jitter, jitter) if jitter and i < n - 1 else 0
                    lines.append(f"{fmt_ts(T0 + i * step + j)},{vals[i]:.4f}")
                    count += 1
                csv_path.write_text("\n".join(lines) + "\n")
                train = interpolate_fast([float(f"{v:.4f}") for v in vals[:n]], keep)
                actual = vals[n:]
                f, lo, hi, elapsed, rss = run_binary(binary, csv_path, h, Path(tmp) / "out.csv")
                rss_max = max(rss_max, rss)
                # The seasonal-naive baseline uses the week when the series has a
                # weekly cycle and two weeks of data (its strongest form).
                week = m * 7 if kind in WEEKLY and m and n >= 14 * m else m
                sn = seasonal_naive(train, week, h)
                th = theta(train, m, h)
                acc["so"].append(smape(f, actual))
                acc["ss"].append(smape(sn, actual))
                acc["st"].append(smape(th, actual))
                acc["mo"].append(mase(f, actual, train, m))
                acc["ms"].append(mase(sn, actual, train, m))
                acc["mt"].append(mase(th, actual, train, m))
                acc["cov"].append(sum(1 for a, l, u in zip(actual, lo, hi) if l <= a <= u) / h)
                acc["ms_time"].append(elapsed * 1000)
                acc["rows"].append(count)
            mean = {k: sum(v) / len(v) for k, v in acc.items()}
            ratios_sn.append(mean["mo"] / mean["ms"])
            ratios_th.append(mean["mo"] / mean["mt"])
            print(f"{kind:22} {int(mean['rows']):>6} {h:>4}  {mean['so']:>8.2f}/{mean['ss']:>7.2f}/{mean['st']:>7.2f}"
                  f"  {mean['mo']:>8.3f}/{mean['ms']:>6.3f}/{mean['mt']:>6.3f}  {mean['cov']:>7.2f}"
                  f" {mean['ms_time']:>6.0f} {rss_max / 1024:>7.1f}")
    gm = lambda xs: math.exp(sum(math.log(x) for x in xs) / len(xs))  # noqa: E731
    print(f"geometric mean of MASE ratios: ours/seasonal-naive {gm(ratios_sn):.3f}, ours/theta {gm(ratios_th):.3f}")
    print("(RSS is the largest of any `slo-agent forecast` run so far in this script, in MiB)")


if __name__ == "__main__":
    main()
