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

The baselines seasonal-naive and Theta are written here in pure Python. When
the `augurs` Python bindings import (`pip install augurs`, which brings
numpy), two published implementations are run too, on the same grid rows:
augurs MSTL with its AutoETS trend model (`MSTL.ets`, at the daily period,
plus the week where the seasonal-naive baseline gets the week; at the period
`augurs.seasonalities` finds when the series has no daily cycle) and augurs
AutoETS without a season (`AutoETS(1, "ZZN")`). Both give 95 % intervals. A
model that cannot be run prints why and shows as n/a (augurs 0.8.0's Python
`AutoETS.fit` drops the fitted model, so its `predict` raises "model not fit
yet"; the script keeps trying it so that a fixed release is measured).
`--augurs-ets-bin` runs AutoETS from augurs' Rust crate instead, through the
helper in tests/bench/augurs_ets (a separate cargo project, outside the
workspace): `cargo build --release --manifest-path tests/bench/augurs_ets/Cargo.toml`.
The time it reports includes that helper's process start and text parsing.
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


def load_augurs():
    try:
        import augurs  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        print(f"note: augurs baselines skipped ({e}); `pip install augurs` to run them")
        return None
    return augurs


def run_ets_bin(ets_bin, train, h, errors):
    """augurs' non-seasonal AutoETS through the Rust helper tests/bench/augurs_ets."""
    t = time.perf_counter()
    p = subprocess.run([ets_bin, str(h)], input=" ".join(repr(v) for v in train), capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        errors.setdefault("ets", p.stderr.strip())
        return None
    rows = [[float(x) for x in line.split(",")] for line in p.stdout.splitlines()]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], elapsed


def augurs_baselines(augurs, train, m, week, h, errors, used, ets_bin=None):
    """{name: (point, lower, upper, seconds) or None}: augurs MSTL+AutoETS and AutoETS."""
    import numpy as np

    out = {}
    periods = [m] if m > 1 else [p for p in augurs.seasonalities(np.array(train))[:2] if len(train) >= 2 * p]
    if week != m and week > 1:
        periods.append(week)
    used.add(tuple(int(p) for p in periods))
    models = {
        "mstl": (lambda: augurs.MSTL.ets([int(p) for p in periods])) if periods else None,
        "ets": lambda: augurs.AutoETS(1, "ZZN"),
    }
    for name, new in models.items():
        if name == "ets" and ets_bin:
            out[name] = run_ets_bin(ets_bin, train, h, errors)
            continue
        if new is None:
            errors.setdefault(name, "no period (MSTL needs at least one)")
            out[name] = None
            continue
        try:
            t = time.perf_counter()
            model = new()
            model.fit(np.array(train, dtype=float))
            fc = model.predict(h, 0.95)
            out[name] = ([float(x) for x in fc.point()], [float(x) for x in fc.lower()],
                         [float(x) for x in fc.upper()], time.perf_counter() - t)
        except Exception as e:  # a baseline that cannot run is reported, not fatal
            errors.setdefault(name, f"{type(e).__name__}: {e}")
            out[name] = None
    return out


def run_ours(binary, kind, seed, tmp):
    """Write the series' kept rows as CSV and forecast them with the binary."""
    step, m, vals, keep, jitter, h = make(kind, seed)
    n = len(vals) - h
    rng = random.Random(f"jitter-{kind}-{seed}")
    csv_path = Path(tmp) / f"{kind}-{seed}.csv"
    lines = ["timestamp,value"]
    for i in range(n):
        if keep is not None and not keep[i]:
            continue
        j = rng.randint(-jitter, jitter) if jitter and i < n - 1 else 0
        lines.append(f"{fmt_ts(T0 + i * step + j)},{vals[i]:.4f}")
    csv_path.write_text("\n".join(lines) + "\n")
    return (len(lines) - 1,) + run_binary(binary, csv_path, h, Path(tmp) / "out.csv")


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


def fmt_mean(xs, spec):
    xs = [x for x in xs if x is not None]
    return "n/a" if not xs else format(sum(xs) / len(xs), spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--no-augurs", action="store_true", help="skip the augurs baselines")
    ap.add_argument("--augurs-ets-bin", help="the built tests/bench/augurs_ets helper: augurs AutoETS from Rust "
                    "(augurs 0.8.0's Python AutoETS cannot predict)")
    args = ap.parse_args()
    binary = release_binary(args.binary)
    print(machine())
    # Every `slo-agent forecast` run first, before numpy and augurs are loaded:
    # a child's peak RSS counts the pages it shares with this process before exec.
    tmpdir = tempfile.TemporaryDirectory()
    ours = {(kind, seed): run_ours(binary, kind, seed, tmpdir.name) for kind in KINDS for seed in range(args.seeds)}
    tmpdir.cleanup()
    augurs = None if args.no_augurs else load_augurs()
    if augurs is not None:
        from importlib.metadata import version
        print(f"augurs {version('augurs')} (Python bindings), numpy {version('numpy')}"
              + (f"; AutoETS from {args.augurs_ets_bin}" if args.augurs_ets_bin else ""))
    names = ["ours", "snaive", "theta"] + (["mstl", "ets"] if augurs else [])
    label = "/".join(names)
    print(f"{'series':22} {'rows':>6} {'H':>4}  sMAPE {label}  MASE {label}  cover95 {'/'.join(['ours'] + names[3:])}"
          f"  ms ours{'/mstl/ets' if augurs else ''}  RSS MiB")
    ratios = {n: [] for n in names[1:]}
    errors = {}
    mstl_periods = {}
    for kind in KINDS:
        acc = {k: [] for k in ["cov_ours", "cov_mstl", "cov_ets", "t_ours", "t_mstl", "t_ets", "rows"]}
        for n_ in names:
            acc["s_" + n_], acc["m_" + n_] = [], []
        rss_max = 0
        used = set()
        for seed in range(args.seeds):
            step, m, vals, keep, jitter, h = make(kind, seed)
            n = len(vals) - h
            train = interpolate_fast([float(f"{v:.4f}") for v in vals[:n]], keep)
            actual = vals[n:]
            count, f, lo, hi, elapsed, rss = ours[kind, seed]
            rss_max = max(rss_max, rss)
            # The seasonal-naive baseline uses the week when the series has a
            # weekly cycle and two weeks of data (its strongest form).
            week = m * 7 if kind in WEEKLY and m and n >= 14 * m else m
            points = {"ours": f, "snaive": seasonal_naive(train, week, h), "theta": theta(train, m, h)}
            intervals = {"ours": (lo, hi)}
            acc["t_ours"].append(elapsed * 1000)
            if augurs is not None:
                for name, res in augurs_baselines(augurs, train, m, week, h, errors, used, args.augurs_ets_bin).items():
                    points[name] = res[0] if res else None
                    intervals[name] = (res[1], res[2]) if res else None
                    acc["t_" + name].append(res[3] * 1000 if res else None)
            for name in names:
                pt = points[name]
                acc["s_" + name].append(smape(pt, actual) if pt else None)
                acc["m_" + name].append(mase(pt, actual, train, m) if pt else None)
            for name, iv in intervals.items():
                acc["cov_" + name].append(
                    sum(1 for a, l, u in zip(actual, iv[0], iv[1]) if l <= a <= u) / h if iv else None)
            acc["rows"].append(count)
        mo = sum(acc["m_ours"]) / len(acc["m_ours"])
        for name in names[1:]:
            xs = [x for x in acc["m_" + name] if x is not None]
            if xs:
                ratios[name].append(mo / (sum(xs) / len(xs)))
        smapes = "/".join(fmt_mean(acc["s_" + n_], ".2f") for n_ in names)
        mases = "/".join(fmt_mean(acc["m_" + n_], ".3f") for n_ in names)
        covs = "/".join(fmt_mean(acc["cov_" + n_], ".2f") for n_ in ["ours"] + names[3:])
        times = "/".join(fmt_mean(acc["t_" + n_], ".0f") for n_ in ["ours"] + names[3:])
        print(f"{kind:22} {int(sum(acc['rows']) / len(acc['rows'])):>6} {h:>4}  {smapes}  {mases}  {covs}"
              f"  {times}  {rss_max / 1024:.1f}")
        if augurs is not None:
            mstl_periods[kind] = sorted(used)
    gm = lambda xs: math.exp(sum(math.log(x) for x in xs) / len(xs))  # noqa: E731
    print("geometric mean of MASE ratios: " + ", ".join(
        f"ours/{n_} {gm(r):.3f} ({len(r)} kinds)" if r else f"ours/{n_} n/a" for n_, r in ratios.items()))
    for kind, used in mstl_periods.items():
        print(f"augurs MSTL periods (steps) for {kind}: {', '.join(str(list(u)) for u in used)}")
    for name, err in errors.items():
        print(f"note: augurs {name} not measured on some series: {err}")
    print("(ms: ours is one whole `slo-agent forecast` process; augurs is fit + predict in this process."
          " RSS is the largest of any `slo-agent forecast` run so far in this script, in MiB)")


if __name__ == "__main__":
    main()
