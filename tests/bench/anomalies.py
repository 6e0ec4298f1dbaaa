#!/usr/bin/env python3
"""The anomaly detector measured: synthetic series with known injected
anomalies, scored by `slo-agent anomalies` and by baselines, judged the way
the Numenta Anomaly Benchmark (NAB) judges detectors.

    python3 tests/bench/anomalies.py [--bin target/release/slo-agent] [--series 60] [--seed 1]

Series (pure Python, seeded, so every run is the same): 1,000 to 25,000 rows
at 1-minute, 5-minute or 1-hour steps, with a level, a trend, daily and
weekly seasonality, Gaussian or heavy-tailed noise, integer quantisation,
flat stretches and missing rows (scattered and a gap); after the first 15 %
(NAB's probationary period) one to three anomalies of one kind each: a spike,
a dip, a level shift, a variance increase, a broken daily pattern, a slow
ramp (trend change).

Scoring, as NAB's: a window of 10 % of the series / number of anomalies
centred on each anomaly's start; the first detection in a window earns
sigmoid credit (earlier is more), a window without one costs 1, a detection
outside every window costs 0.11 (less soon after a window); rows in the
probationary period do not count. One threshold per detector, the best over
the whole corpus; the NAB score is normalised (0 = detect nothing, 100 =
perfect). Also window precision/recall/F1 at that threshold (precision
counts detections outside windows, one per row, each an alarm).

Baselines, run in the same go on the same rows: a rolling z-score (the last
100 rows' mean and standard deviation) and an EWMA z-score (alpha 0.05), both
causal. When the `augurs` Python bindings import (`pip install augurs`), a
third: augurs MSTL with its AutoETS trend (`MSTL.ets`), refitted once a day
of steps (from the end of the probation) on the trailing 14 days (4 days at
1-minute steps, to bound the fit) of rows put on the step grid (gaps interpolated), at the daily period (plus the week when
the window holds two; else the periods `augurs.seasonalities` finds there,
else period 2), forecasting each step up to the next refit; the score of a
row is its distance from that forecast in standard deviations of the
forecast's own 95 % interval (half-width / 1.96). Causal: a row is scored by a model fitted on earlier rows
only. augurs 0.8.0's Python bindings hold no changepoint or outlier detector
(`augurs-changepoint` and `augurs-outlier` are Rust-only) and no model that
takes one more row without a refit; a refit every row (or every few rows) of
400,000 would take hours, hence once a day.
"""

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import benchlib  # noqa: E402

KINDS = ["spike", "dip", "level_shift", "variance", "pattern_break", "ramp"]
START = datetime(2026, 1, 5, tzinfo=timezone.utc)


def make_series(rng, index):
    """(rows as (timestamp text, value), anomaly start row indexes, kind, description)."""
    step_s = rng.choice([60, 300, 300, 300, 3600])
    n = {60: rng.randint(8000, 25000), 300: rng.randint(2500, 8000), 3600: rng.randint(1000, 4000)}[step_s]
    kind = KINDS[index % len(KINDS)]
    level = rng.choice([0.0, 5.0, 50.0, 1000.0]) + rng.random() * 10
    noise = max(0.5, level * rng.uniform(0.01, 0.08))
    daily = noise * rng.choice([0, 3, 6, 10])
    weekly = noise * rng.choice([0, 0, 2, 4])
    trend = noise * rng.choice([0, 0, 1, -1]) * 2 / n
    heavy = rng.random() < 0.3
    quantise = rng.random() < 0.3 and level >= 50
    flat = rng.random() < 0.2
    n_anom = rng.randint(1, 3)
    prob = int(0.15 * n)
    gap = n // n_anom
    starts = sorted(prob + 200 + i * (n - prob - 200) // n_anom + rng.randint(0, max(1, gap // 4)) for i in range(n_anom))
    starts = [min(s, n - 50) for s in starts]
    values = []
    shift = 0.0
    ramp = 0.0
    for t in range(n):
        ts = START + timedelta(seconds=t * step_s)
        hour = ts.hour + ts.minute / 60
        dow = ts.weekday()
        season = daily * math.sin(2 * math.pi * (hour - 6) / 24) + weekly * (1.0 if dow < 5 else -1.5)
        e = rng.gauss(0, noise)
        if heavy and rng.random() < 0.02:
            e *= 3
        v = level + trend * t + season
        scale_noise = 1.0
        for s in starts:
            if kind == "level_shift" and t == s:
                shift += rng.choice([-1, 1]) * noise * rng.uniform(4, 8)
            if kind == "variance" and s <= t < s + 300:
                scale_noise = 4.0
            if kind == "pattern_break" and s <= t < s + max(24, 86400 // step_s):
                season = 0.0
                v = level + trend * t
            if kind == "ramp" and s <= t < s + 200:
                ramp += noise * 0.06
        v += shift + ramp + e * scale_noise
        for s in starts:
            if kind == "spike" and t == s:
                v += noise * rng.uniform(6, 12)
            if kind == "dip" and t == s:
                v -= noise * rng.uniform(6, 12)
        if flat and n // 3 <= t < n // 3 + n // 20:
            v = level
        if quantise:
            v = round(v)
        values.append((t, ts, v))
    if kind == "pattern_break" and daily == 0:
        # A pattern break needs a pattern.
        return make_series(rng, index + len(KINDS))
    # Missing rows: 2 % scattered and one gap of 1 % (never an anomaly's row).
    keep = set(starts)
    gap_at = rng.randint(prob, n - n // 100 - 1)
    rows, idx, kept = [], [], {}
    for t, ts, v in values:
        if t not in keep and (rng.random() < 0.02 or gap_at <= t < gap_at + n // 100):
            continue
        kept[t] = len(rows)
        fmt = "%Y-%m-%dT%H:%M:%SZ" if index % 2 else "%Y-%m-%d %H:%M:%S"
        rows.append((ts.strftime(fmt), v))
    idx = [kept[s] for s in starts]
    desc = f"{kind} step={step_s}s n={len(rows)} daily={daily > 0} weekly={weekly > 0} trend={trend != 0} heavy={heavy} flat={flat}"
    return rows, idx, kind, desc


def rolling_z(values, w=100):
    out, buf, s, s2 = [], [], 0.0, 0.0
    for v in values:
        if len(buf) >= 10:
            m = s / len(buf)
            sd = math.sqrt(max(s2 / len(buf) - m * m, 1e-12))
            out.append(abs(v - m) / sd)
        else:
            out.append(0.0)
        buf.append(v)
        s += v
        s2 += v * v
        if len(buf) > w:
            o = buf.pop(0)
            s -= o
            s2 -= o * o
    return out


def ewma_z(values, a=0.05):
    out, m, var, n = [], None, 0.0, 0
    for v in values:
        n += 1
        if m is None:
            m = v
            out.append(0.0)
            continue
        d = v - m
        out.append(abs(d) / math.sqrt(var) if n > 10 and var > 0 else 0.0)
        m += a * d
        var = (1 - a) * (var + a * d * d)
    return out


def parse_ts(text):
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    raise ValueError(text)


def augurs_mstl_scores(augurs, rows, notes, refit_days=1.0):
    """Causal: MSTL+AutoETS refitted every `refit_days` of steps on a trailing
    window (rows up to the fit only: 14 days, or 4 days when 14 would exceed
    4,032 steps), forecasting up to the next refit;
    the score of a row is |value - forecast| over the standard deviation implied
    by augurs' 95 % interval at that step. Rows before the first fit (the probation) score 0."""
    import numpy as np

    secs = [parse_ts(ts).timestamp() for ts, _ in rows]
    step = min(b - a for a, b in zip(secs[:50], secs[1:51]))
    idx = [round((t - secs[0]) / step) for t in secs]
    n, prob = len(rows), int(0.15 * len(rows))
    grid = [None] * (idx[-1] + 1)
    for i, (_, v) in enumerate(rows):
        grid[idx[i]] = v
    known = [i for i, v in enumerate(grid) if v is not None]
    for a, b in zip(known, known[1:]):  # a fit window ends on a row, so this never looks past it
        for j in range(a + 1, b):
            grid[j] = grid[a] + (grid[b] - grid[a]) * (j - a) / (b - a)
    day = int(86400 // step)
    every, window = max(1, int(day * refit_days)), max(4 * day, min(14 * day, 4032))
    fits, nxt = [], idx[prob - 1]
    for i in range(prob - 1, n):
        if idx[i] >= nxt:
            fits.append(i)
            nxt = idx[i] + every
    out = [0.0] * n
    for k, i in enumerate(fits):
        g0 = idx[i]
        y = np.array(grid[max(0, g0 + 1 - window):g0 + 1], dtype=float)
        periods = [p for p in (day, 7 * day) if len(y) >= 2 * p]
        if not periods:
            periods = [int(p) for p in augurs.seasonalities(y)[:2] if len(y) >= 2 * p] or [2]
        notes[tuple(periods)] = notes.get(tuple(periods), 0) + 1
        model = augurs.MSTL.ets(periods)
        model.fit(y)
        end = fits[k + 1] if k + 1 < len(fits) else n - 1
        if idx[end] <= g0:
            continue
        fc = model.predict(idx[end] - g0, 0.95)
        point, lower, upper = (np.asarray(x) for x in (fc.point(), fc.lower(), fc.upper()))
        for r in range(i + 1, end + 1):
            j = idx[r] - g0 - 1
            sd = max(float(upper[j] - lower[j]) / (2 * 1.96), 1e-9)
            out[r] = abs(rows[r][1] - float(point[j])) / sd
    return out


def sigmoid(y):
    return 2 / (1 + math.exp(5 * y)) - 1


def windows_of(n, starts):
    w = max(1, int(0.1 * n / len(starts)))
    return [(max(0, s - w // 2), min(n - 1, s + w // 2)) for s in starts]


def nab_raw(scores, starts, threshold):
    """NAB standard profile raw score and counts for one series."""
    n = len(scores)
    prob = int(0.15 * n)
    wins = windows_of(n, starts)
    raw, tp, fn, fp = 0.0, 0, 0, 0
    for a, b in wins:
        hit = next((i for i in range(a, b + 1) if scores[i] >= threshold), None)
        if hit is None:
            raw -= 1.0
            fn += 1
        else:
            y = -(b - hit) / (b - a + 1)
            raw += sigmoid(y)
            tp += 1
    inside = [False] * n
    for a, b in wins:
        for i in range(a, b + 1):
            inside[i] = True
    last_end = None
    wlen = wins[0][1] - wins[0][0] + 1
    for i in range(prob, n):
        if inside[i]:
            last_end = i
            continue
        if scores[i] >= threshold:
            fp += 1
            if last_end is None:
                raw += 0.11 * -1.0
            else:
                raw += 0.11 * sigmoid((i - last_end) / wlen)
    return raw, tp, fn, fp


def evaluate(name, corpus, scores_of):
    pooled = sorted(s for sc in scores_of for s in sc)
    cands = sorted({pooled[min(len(pooled) - 1, int(q * len(pooled)))] for q in
                    [1 - 10 ** (-k / 8) for k in range(8, 49)]} | {pooled[-1]})
    best = None
    for th in cands:
        if th <= 0:
            continue
        tot, tp, fn, fp = 0.0, 0, 0, 0
        for (rows, starts, kind, _), sc in zip(corpus, scores_of):
            r, a, b, c = nab_raw(sc, starts, th)
            tot, tp, fn, fp = tot + r, tp + a, fn + b, fp + c
        if best is None or tot > best[1]:
            best = (th, tot, tp, fn, fp)
    th, tot, tp, fn, fp = best
    nwin = sum(len(c[1]) for c in corpus)
    perfect = sum(sigmoid(-(windows_of(len(c[0]), c[1])[0][1] - windows_of(len(c[0]), c[1])[0][0])
                          / (windows_of(len(c[0]), c[1])[0][1] - windows_of(len(c[0]), c[1])[0][0] + 1))
                  for c in corpus for _ in c[1])
    null = -nwin
    nab = 100 * (tot - null) / (perfect - null)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / nwin
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    per_kind = {}
    for (rows, starts, kind, _), sc in zip(corpus, scores_of):
        _, a, _, _ = nab_raw(sc, starts, th)
        k = per_kind.setdefault(kind, [0, 0])
        k[0] += a
        k[1] += len(starts)
    return {"name": name, "threshold": th, "nab": nab, "tp": tp, "fn": fn, "fp": fp, "precision": prec,
            "recall": rec, "f1": f1, "per_kind": per_kind}


def run_agent(binary, rows, tmp):
    inp = Path(tmp) / "in.csv"
    out = Path(tmp) / "out.csv"
    with open(inp, "w") as f:
        f.write("timestamp,value\n")
        for ts, v in rows:
            f.write(f"{ts},{v!r}\n")
    t0 = time.perf_counter()
    subprocess.run([binary, "anomalies", "--input", str(inp), "--output", str(out)], check=True)
    dt = time.perf_counter() - t0
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score", lines[0]
    scores = [float(line.rsplit(",", 1)[1]) for line in lines[1:]]
    assert len(scores) == len(rows), (len(scores), len(rows))
    assert all(0.0 <= s <= 1.0 for s in scores)
    return scores, dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--series", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--no-augurs", action="store_true", help="skip the augurs baseline")
    args = ap.parse_args()
    binary = benchlib.release_binary(args.bin)
    rng = random.Random(args.seed)
    corpus = [make_series(rng, i) for i in range(args.series)]
    total_rows = sum(len(c[0]) for c in corpus)
    print(f"{len(corpus)} series, {total_rows} rows, {sum(len(c[1]) for c in corpus)} anomalies")
    agent, secs = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for rows, starts, kind, desc in corpus:
            sc, dt = run_agent(binary, rows, tmp)
            agent.append(sc)
            secs += dt
            if args.verbose:
                w = windows_of(len(rows), starts)
                ins = [max(sc[a:b + 1]) for a, b in w]
                prob = int(0.15 * len(rows))
                outside = [s for i, s in enumerate(sc) if i >= prob and not any(a <= i <= b for a, b in w)]
                print(f"  {desc}: in-window max {[round(x, 3) for x in ins]}, outside max {max(outside):.3f}")
    results = [
        evaluate("slo-agent anomalies", corpus, agent),
        evaluate("rolling z-score (100 rows)", corpus, [rolling_z([v for _, v in c[0]]) for c in corpus]),
        evaluate("EWMA z-score (alpha 0.05)", corpus, [ewma_z([v for _, v in c[0]]) for c in corpus]),
    ]
    notes = {}
    try:
        import augurs
    except ImportError as e:
        augurs = None
        print(f"note: augurs baseline skipped ({e}); `pip install augurs` to run it")
    if augurs is not None and not args.no_augurs:
        t0 = time.perf_counter()
        sc = [augurs_mstl_scores(augurs, c[0], notes) for c in corpus]
        aug_secs = time.perf_counter() - t0
        results.append(evaluate("augurs MSTL+AutoETS, refit daily", corpus, sc))
    print(f"\n| detector | NAB standard | windows found | false-positive rows | precision | recall | F1 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['name']} | {r['nab']:.1f} | {r['tp']}/{r['tp'] + r['fn']} | {r['fp']} | {r['precision']:.2f} | "
              f"{r['recall']:.2f} | {r['f1']:.2f} |")
    print("\nwindows found per kind at each detector's best threshold:")
    for r in results:
        print(f"  {r['name']}: " + ", ".join(f"{k} {a}/{b}" for k, (a, b) in sorted(r["per_kind"].items())))
    print(f"\nslo-agent anomalies: {total_rows} rows in {secs:.2f} s wall (process start, CSV in and out "
          f"included): {total_rows / secs:,.0f} rows/s")
    if notes:
        from importlib.metadata import version
        print(f"augurs {version('augurs')}: {aug_secs:.1f} s for {sum(notes.values())} fits and forecasts over "
              f"{len(corpus)} series; MSTL periods "
              f"(steps) used: " + ", ".join(f"{list(p)} x{k}" for p, k in sorted(notes.items())))


if __name__ == "__main__":
    main()
