//! The answer of `GET /api/v1/hops`: per hop its percentiles over a window,
//! what it adds, what it added before (the baseline), and which hop to
//! blame. The type is the one answer for hops however they were measured:
//! from the logs (`source: "logs"`, [`from_logs`]) and, later, from probe
//! chains (`source: "probe"`), which fill the same [`HopFigures`] and call
//! the same [`blame`].
//!
//! **Blame.** A hop's contribution jumped when, over the window, it adds
//! more than [`BLAME_RATIO`] × what it added over the baseline and more than
//! [`BLAME_MIN_MS`] ms more. Of the hops that jumped, the one that added the
//! most milliseconds is blamed — unless the other hops together rose by at
//! least half its factor: then everything slowed together (the clients, the
//! network before the edge, something every hop shares, or simply more
//! traffic), no single hop is to blame, and `blame` is null with that
//! reason. A hop without a baseline (no data before the window) is never
//! blamed.

use serde::Serialize;

use super::{HopsView, Merged};
use crate::hops::sketch::Sketch;

/// A hop's window contribution must exceed its baseline this many times…
pub const BLAME_RATIO: f64 = 2.0;
/// …and by this many milliseconds.
pub const BLAME_MIN_MS: f64 = 20.0;

/// One hop over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopFigures {
    /// `edge`, `gateway`, `lambda_overhead`, `function`, `cold_start` (logs);
    /// step names (probes).
    pub name: String,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// What the hop adds to a typical request over the window: its median;
    /// for `cold_start`, the share of cold invocations × their median init time.
    pub adds_ms: f64,
    /// The same over the baseline; null when the baseline has no data.
    pub baseline_adds_ms: Option<f64>,
    /// Requests (or invocations) the figures come from.
    pub count: u64,
    /// `measured` (one record gives it), `joined` (two records joined by
    /// request id), `traced` (each request's X-Ray trace: exact, but only
    /// the sampled requests), `statistical` (quantiles of two hops' records
    /// subtracted, or the function's figures over all its routes).
    pub basis: &'static str,
    /// `cold_start` only: the fraction of invocations that had an init.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// Probe chains only: runs of the window in which this hop failed (a
    /// hop that failed every run has `count` 0 and no percentiles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<u64>,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopsAnswer {
    /// `logs` or `probe`.
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The route asked for; null: all routes together.
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// RFC 3339 of the evaluation the answer comes from.
    pub at: String,
    /// The window and the baseline before it, as durations (`15m`, `3h`).
    pub window: String,
    pub baseline: String,
    pub hops: Vec<HopFigures>,
    /// The hop whose contribution jumped, or null.
    pub blame: Option<String>,
    /// Why that hop, or why none.
    pub blame_reason: String,
    /// Joins and what could not be used since the agent started (logs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joins: Option<super::HopStats>,
}

/// Figures of one hop: quantiles and what it adds.
struct Figures {
    p: [f64; 3],
    adds: f64,
    count: u64,
    basis: &'static str,
    share: Option<f64>,
}

fn quantiles(s: &Sketch) -> Option<[f64; 3]> {
    Some([s.quantile(0.5)?, s.quantile(0.9)?, s.quantile(0.99)?])
}

fn measured(s: &Sketch, basis: &'static str) -> Option<Figures> {
    let p = quantiles(s)?;
    Some(Figures { p, adds: p[0], count: s.len(), basis, share: None })
}

/// Every hop of a merged window, in request order.
fn hops_of(m: &Merged) -> Vec<(&'static str, Figures)> {
    let mut out = Vec::new();
    let r = &m.route;
    if let Some(f) = measured(&r.edge, "measured") {
        out.push(("edge", f));
    }
    let none = super::Traced::default();
    let t = r.traced.as_deref().unwrap_or(&none);
    if let Some(f) = measured(&r.gateway, "measured").or_else(|| measured(&t.gateway, "traced")) {
        out.push(("gateway", f));
    }
    // Joined where ids allowed it; else traced; else the function's
    // invocations over all its routes.
    let joined = !r.lambda_overhead.is_empty();
    if !joined && t.invocations > 0 {
        out.extend(measured(&t.lambda_overhead, "traced").map(|f| ("lambda_overhead", f)));
        out.extend(measured(&t.function, "traced").map(|f| ("function", f)));
        out.push(("cold_start", cold_start(t.invocations, t.cold, &t.init, "traced")));
        return out;
    }
    let function = if joined { r } else { &m.function };
    if joined {
        out.extend(measured(&r.lambda_overhead, "joined").map(|f| ("lambda_overhead", f)));
    } else if let Some(f) = measured(&t.lambda_overhead, "traced") {
        out.push(("lambda_overhead", f));
    } else if let (Some(i), Some(d)) = (quantiles(&r.integration), quantiles(&m.function.function)) {
        let p = [0, 1, 2].map(|k| (i[k] - d[k]).max(0.0));
        out.push((
            "lambda_overhead",
            Figures { p, adds: p[0], count: r.integration.len(), basis: "statistical", share: None },
        ));
    }
    let basis = if joined { "joined" } else { "statistical" };
    if let Some(f) = measured(&function.function, basis) {
        out.push(("function", f));
    }
    if function.invocations > 0 {
        out.push(("cold_start", cold_start(function.invocations, function.cold, &function.init, basis)));
    }
    out
}

/// The cold-start hop: the share of cold invocations × their median init.
fn cold_start(invocations: u64, cold: u64, init: &Sketch, basis: &'static str) -> Figures {
    let share = cold as f64 / invocations as f64;
    let p = quantiles(init).unwrap_or([0.0; 3]);
    Figures { p, adds: share * p[0], count: invocations, basis, share: Some(share) }
}

/// The decomposition of `service` (one route, or all) over the `window`
/// minutes ending with the minute of `view.at_ms`, against the `baseline`
/// minutes before it.
pub fn from_logs(
    view: &HopsView,
    service: &str,
    route: Option<&str>,
    window_minutes: i64,
    baseline_minutes: i64,
) -> HopsAnswer {
    let last = view.at_ms.div_euclid(super::MINUTE_MS);
    let window = hops_of(&view.merged(service, route, last - window_minutes + 1, last));
    let before =
        hops_of(&view.merged(service, route, last - window_minutes - baseline_minutes + 1, last - window_minutes));
    let hops: Vec<HopFigures> = window
        .into_iter()
        .map(|(name, f)| HopFigures {
            name: name.to_string(),
            p50_ms: round(f.p[0]),
            p90_ms: round(f.p[1]),
            p99_ms: round(f.p[2]),
            adds_ms: round(f.adds),
            baseline_adds_ms: before.iter().find(|(n, _)| *n == name).map(|(_, b)| round(b.adds)),
            count: f.count,
            basis: f.basis,
            share: f.share.map(|s| (s * 1e4).round() / 1e4),
            failures: None,
        })
        .collect();
    let (blame, blame_reason) = blame(&hops);
    HopsAnswer {
        source: "logs",
        service: Some(service.to_string()),
        route: route.map(str::to_string),
        probe: None,
        at: crate::timefmt::rfc3339(view.at_ms),
        window: minutes_text(window_minutes),
        baseline: minutes_text(baseline_minutes),
        hops,
        blame,
        blame_reason,
        joins: Some(view.stats),
    }
}

/// Which hop's contribution jumped against its baseline, and why (see the module docs).
pub fn blame(hops: &[HopFigures]) -> (Option<String>, String) {
    let jumped = |h: &HopFigures| {
        h.baseline_adds_ms.is_some_and(|b| h.adds_ms > BLAME_RATIO * b && h.adds_ms - b > BLAME_MIN_MS)
    };
    let rise = |h: &HopFigures| h.adds_ms - h.baseline_adds_ms.unwrap_or(h.adds_ms);
    let Some(top) = hops.iter().filter(|h| jumped(h)).max_by(|a, b| rise(a).total_cmp(&rise(b))) else {
        return (None, format!("no hop adds more than {BLAME_RATIO}× its baseline and {BLAME_MIN_MS} ms more"));
    };
    let base = top.baseline_adds_ms.unwrap_or(0.0);
    let factor = if base > 0.0 { top.adds_ms / base } else { f64::INFINITY };
    let others: Vec<&HopFigures> = hops.iter().filter(|h| h.name != top.name && h.baseline_adds_ms.is_some()).collect();
    let (now, before): (f64, f64) =
        others.iter().fold((0.0, 0.0), |(n, b), h| (n + h.adds_ms, b + h.baseline_adds_ms.unwrap_or(0.0)));
    if !others.is_empty() && before > 0.0 && now - before > BLAME_MIN_MS {
        let others_factor = now / before;
        if others_factor >= factor / 2.0 {
            return (
                None,
                format!(
                    "every hop rose together (`{}` ×{:.1}, the others ×{:.1}): look before the edge or at what the hops share",
                    top.name, factor, others_factor
                ),
            );
        }
    }
    let reason = if factor.is_finite() {
        format!("`{}` adds {} ms, {factor:.1}× its baseline of {} ms", top.name, round(top.adds_ms), round(base))
    } else {
        format!("`{}` adds {} ms; over the baseline it added nothing", top.name, round(top.adds_ms))
    };
    (Some(top.name.clone()), reason)
}

pub(crate) fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

/// `15m`, `3h`, `1h30m`.
pub fn minutes_text(m: i64) -> String {
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}
