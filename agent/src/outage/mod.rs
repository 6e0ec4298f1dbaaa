//! "Is it partial or total?" (`docs/operations.md`): over the last
//! `outage.window` minutes, each slice of a service's traffic — edge
//! location, region, client class (the live signals), route (the hop
//! decomposition) and journey step (the synthetic journeys' last runs) — is
//! compared with its own baseline, and the failing ones make the verdict:
//! `none`, `partial` or `total`, with the share of the traffic they carry
//! and the hop to blame where the hops' own 5xx say so.
//!
//! | slice | success ratio | baseline |
//! | --- | --- | --- |
//! | edge location, region, client class | 1 − `error_ratio` of the front origin's series, weighted by `requests` | the same over `outage.baseline` before the window (else the detector's `expected`) |
//! | route | 5xx of the route's front hop (CloudFront, else API Gateway) | the same route over `outage.baseline` before the window |
//! | journey step | the journey's last run in the window: the failed step 0, the others 1 | none |
//! | probe hop (listed with the journey steps as `probe:NAME/HOP`) | each hop's last outcome | none |
//! | probe region | the synthetic checks that passed (journey runs in the window, probe hops) over all of them, per region they ran from | none |
//!
//! A slice fails when it has at least `outage.min_requests` requests and its
//! success ratio is below `outage.failing_success_ratio` or at least
//! `outage.drop_from_baseline` below its baseline. A kind of slice every
//! judged slice of which fails alike is not named when another kind tells
//! some failing slices from working ones (a route down makes every edge
//! location look worse by its share). The failing share is the failed
//! requests of the failing slices over the service's requests, the largest
//! over the kinds; `total` when it reaches `outage.total_share`, `partial`
//! when anything fails (a journey step alone included).
//!
//! **Blame.** From the hops' own 5xx of the failing routes (or of all routes
//! when only other slices fail): CloudFront answered 5xx the gateway did not
//! → `edge`; the gateway answered 5xx and the function failed at least half
//! as many invocations → `function`, else
//! `gateway` (counts: the function's invocations are those of every
//! route). A failing edge location or region while the gateway is fine
//! blames `edge` too. Else a failing probe blames the innermost failing hop
//! whose next hop inwards works. Without hop data: `null`.
//!
//! **Gauges.** Beside the verdict and the failing share, every judged slice's
//! success ratio and baseline (`slo_agent_outage_slice_success_ratio`,
//! `slo_agent_outage_slice_baseline_ratio`, labels `service`, `dimension`
//! — `edge_location`, `region`, `client_class`, `route` or `probe_region` — and `slice`),
//! at most [`MAX_SLICE_SERIES`] per service and dimension, the busiest first.
//!
//! **Architecture invariant:** pure: it reads the views it is given and the
//! time it is told; no clock, no I/O. Bounded: the slices are those the
//! signals and the hops already bound, at most [`MAX_ITEMS`] listed per kind
//! and [`MAX_SLICE_SERIES`] exported per kind.

pub mod config;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::hops::{HOP_EDGE, HOP_FUNCTION, HOP_GATEWAY, HopsView};
use crate::signals::{Dim, SeriesView, Signal, SignalsView};
pub use config::OutageConfig;

pub const MINUTE_MS: i64 = 60_000;
/// Failing slices listed per kind (the worst first).
pub const MAX_ITEMS: usize = 50;
/// Judged slices exported as gauges per service and dimension (the most requests first).
pub const MAX_SLICE_SERIES: usize = 20;
/// Front origins, most preferred first: a slice is judged on the first that has it.
const FRONT: [&str; 7] = ["cloudfront", "cloudfront-realtime", "apigateway", "lambda", "ndjson", "otlp", "cloudwatch"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    None,
    Partial,
    Total,
}

impl Verdict {
    /// The gauge's value: 0 none, 1 partial, 2 total.
    pub fn level(self) -> u8 {
        match self {
            Verdict::None => 0,
            Verdict::Partial => 1,
            Verdict::Total => 2,
        }
    }
}

/// One failing slice.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Item {
    pub name: String,
    /// `null` when none of its minutes had enough requests to tell.
    pub success_ratio: Option<f64>,
    pub baseline: Option<f64>,
    pub requests: u64,
    /// Of the service's requests in the window; `null` for journey steps.
    pub share: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Scope {
    pub edge_locations: Vec<Item>,
    pub regions: Vec<Item>,
    pub client_classes: Vec<Item>,
    pub routes: Vec<Item>,
    pub journey_steps: Vec<Item>,
    /// Regions the synthetic checks (journeys' last runs in the window,
    /// probes' hops) fail from: each region's checks that passed over all
    /// of them, failing below `outage.failing_success_ratio`.
    pub probe_regions: Vec<Item>,
}

/// The answer of `GET /api/v1/outage`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Assessment {
    pub service: String,
    /// RFC 3339: the window's end.
    pub at: String,
    pub window_minutes: i64,
    pub verdict: Verdict,
    pub failing_share: f64,
    pub scope: Scope,
    /// `edge`, `gateway` or `function`; `null` when the hops do not say.
    pub blame: Option<&'static str>,
    pub evidence: Vec<String>,
    /// Every judged slice, failing or not, for the gauges (not in the answer).
    #[serde(skip)]
    pub judged: Vec<Judged>,
}

/// A slice the verdict judged (enough requests, a known success ratio).
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// `edge_location`, `region`, `client_class`, `route` or `probe_region`.
    pub dimension: &'static str,
    pub name: String,
    pub success_ratio: f64,
    pub baseline: Option<f64>,
    pub requests: u64,
}

/// A journey's last run, as the verdict reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyCheck {
    pub journey: String,
    pub service: String,
    pub region: String,
    pub started_ms: i64,
    /// The step that failed, `None` when the run passed.
    pub failed_step: Option<String>,
    /// That step's HTTP status, if it got one.
    pub http_status: Option<u16>,
}

/// A probe's hops' last outcomes, in the chain's order (client inwards:
/// typically `edge`, `gateway`, `function`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeCheck {
    pub probe: String,
    pub service: String,
    pub region: String,
    /// (hop, succeeded, HTTP status).
    pub hops: Vec<(String, bool, Option<u16>)>,
}

/// The hop a probe's outcomes blame: the innermost failing hop whose next
/// hop inwards works, or the innermost when all fail; `None` when none
/// fails or the hop is not named `edge`, `gateway` or `function`.
fn probe_blame(p: &ProbeCheck) -> Option<&'static str> {
    let failing = |i: usize| p.hops.get(i).is_some_and(|h| !h.1);
    let i = (0..p.hops.len()).find(|&i| failing(i) && !failing(i + 1))?;
    ["edge", "gateway", "function"].into_iter().find(|h| *h == p.hops[i].0)
}

/// Whether anything is known of `service`.
pub fn knows(
    service: &str,
    signals: &SignalsView,
    hops: &HopsView,
    journeys: &[JourneyCheck],
    probes: &[ProbeCheck],
) -> bool {
    signals.series.iter().any(|s| &*s.key.service == service)
        || hops.has_service(service)
        || journeys.iter().any(|j| j.service == service)
        || probes.iter().any(|p| p.service == service)
}

/// A slice's figures over the window, and its baseline's.
#[derive(Debug, Clone, Default)]
struct Figures {
    requests: f64,
    /// Requests of minutes whose error ratio is known, and their 5xx.
    counted: f64,
    bad: f64,
    /// The same over the baseline minutes before the window.
    base_counted: f64,
    base_bad: f64,
    /// Requests of window minutes with an expected ratio, and the expected 5xx.
    expected_counted: f64,
    expected_bad: f64,
}

impl Figures {
    fn success(&self) -> Option<f64> {
        (self.counted > 0.0).then(|| clamp01(1.0 - self.bad / self.counted))
    }

    /// The minutes before the window; else the detector's expectation of
    /// the window's minutes (which follows an outage within minutes: its
    /// mean over a 10-minute outage of one edge location was 0.45).
    fn baseline(&self) -> Option<f64> {
        if self.base_counted > 0.0 {
            return Some(clamp01(1.0 - self.base_bad / self.base_counted));
        }
        (self.expected_counted > 0.0).then(|| clamp01(1.0 - self.expected_bad / self.expected_counted))
    }
}

fn clamp01(x: f64) -> f64 {
    if x.is_finite() { x.clamp(0.0, 1.0) } else { 0.0 }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The figures of one slice from its `requests` and `error_ratio` series:
/// the window `[from_ms, to_ms)` and the baseline `[base_ms, from_ms)`.
fn figures(
    requests: Option<&SeriesView>,
    errors: Option<&SeriesView>,
    base_ms: i64,
    from_ms: i64,
    to_ms: i64,
) -> Figures {
    let mut f = Figures::default();
    let Some(req) = requests else { return f };
    let ratios: Vec<&crate::signals::Minute> = errors
        .map(|e| e.recent.iter().filter(|m| m.minute_ms >= base_ms && m.minute_ms < to_ms).collect())
        .unwrap_or_default();
    for m in req.recent.iter().filter(|m| m.minute_ms >= base_ms && m.minute_ms < to_ms) {
        let n = f64::from(m.value).max(0.0);
        let window = m.minute_ms >= from_ms;
        if window {
            f.requests += n;
        }
        let Some(r) = ratios.iter().find(|r| r.minute_ms == m.minute_ms).filter(|r| r.value.is_finite()) else {
            continue;
        };
        let bad = n * f64::from(r.value).clamp(0.0, 1.0);
        if !window {
            f.base_counted += n;
            f.base_bad += bad;
            continue;
        }
        f.counted += n;
        f.bad += bad;
        if r.expected.is_finite() {
            f.expected_counted += n;
            f.expected_bad += n * f64::from(r.expected).clamp(0.0, 1.0);
        }
    }
    f
}

/// Whether a slice fails, and why (for the evidence).
fn failing(cfg: &OutageConfig, requests: f64, success: Option<f64>, baseline: Option<f64>) -> Option<String> {
    if requests < cfg.min_requests as f64 {
        return None;
    }
    let s = success?;
    if s < cfg.failing_success_ratio {
        return Some(format!("{:.1}% success", s * 100.0));
    }
    match baseline {
        Some(b) if b - s >= cfg.drop_from_baseline => {
            Some(format!("{:.1}% success against {:.1}% usually", s * 100.0, b * 100.0))
        }
        _ => None,
    }
}

/// A slice's name, its `requests` series and its `error_ratio` series.
type Slice<'a> = (String, &'a SeriesView, Option<&'a SeriesView>);

/// The service's series of the live signals, by dimension kind, on the
/// first front origin that has that kind.
struct ServiceSeries<'a> {
    origin: Option<&'static str>,
    all: Option<(&'a SeriesView, Option<&'a SeriesView>)>,
    slices: BTreeMap<&'static str, Vec<Slice<'a>>>,
}

fn service_series<'a>(view: &'a SignalsView, service: &str) -> ServiceSeries<'a> {
    let mine: Vec<&SeriesView> = view
        .series
        .iter()
        .filter(|s| &*s.key.service == service && matches!(s.key.signal, Signal::Requests | Signal::ErrorRatio))
        .collect();
    let error_of = |origin: &str, dim: &Dim| {
        mine.iter().find(|s| s.key.origin == origin && s.key.signal == Signal::ErrorRatio && &s.key.dim == dim).copied()
    };
    let mut out = ServiceSeries { origin: None, all: None, slices: BTreeMap::new() };
    for kind in ["all", "edge_location", "region", "client_class"] {
        for origin in FRONT {
            let reqs: Vec<&SeriesView> = mine
                .iter()
                .filter(|s| s.key.origin == origin && s.key.signal == Signal::Requests && s.key.dim.dimension() == kind)
                .copied()
                .collect();
            if reqs.is_empty() {
                continue;
            }
            if kind == "all" {
                out.origin = Some(FRONT.iter().copied().find(|o| *o == origin).unwrap_or("?"));
                out.all = Some((reqs[0], error_of(origin, &reqs[0].key.dim)));
            } else {
                let list = reqs
                    .into_iter()
                    .map(|r| (r.key.dim.value().to_string(), r, error_of(origin, &r.key.dim)))
                    .collect();
                out.slices.insert(kind, list);
            }
            break;
        }
    }
    out
}

/// Route figures from the hops: per hop, requests and 5xx.
#[derive(Debug, Clone, Copy, Default)]
struct HopCounts {
    requests: [u64; 3],
    errors: [u64; 3],
}

impl HopCounts {
    fn add(&mut self, c: &crate::hops::Cell) {
        for i in 0..3 {
            self.requests[i] += c.requests[i];
            self.errors[i] += c.errors[i];
        }
    }

    fn front(&self) -> Option<usize> {
        [HOP_EDGE, HOP_GATEWAY].into_iter().find(|&h| self.requests[h] > 0)
    }

    fn error_ratio(&self, hop: usize) -> Option<f64> {
        (self.requests[hop] > 0).then(|| self.errors[hop] as f64 / self.requests[hop] as f64)
    }
}

/// The hop to blame for 5xx seen in `c` (the routes that fail) given the
/// function's own invocations `f` (every route's); `None` when the hops do not say.
fn blame_of(cfg: &OutageConfig, c: &HopCounts, f: &HopCounts) -> Option<(&'static str, String)> {
    let bad = 1.0 - cfg.failing_success_ratio;
    let edge = c.error_ratio(HOP_EDGE);
    let gateway = c.error_ratio(HOP_GATEWAY);
    let function = f.error_ratio(HOP_FUNCTION);
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    match (edge, gateway) {
        (Some(e), Some(g)) if e >= bad && g < e / 2.0 => {
            Some(("edge", format!("CloudFront answered {} 5xx, API Gateway {}", pct(e), pct(g))))
        }
        // Counts, not ratios: the function's invocations are those of every route.
        (_, Some(g)) if g >= bad => match function {
            Some(x) if 2 * f.errors[HOP_FUNCTION] >= c.errors[HOP_GATEWAY] => {
                Some(("function", format!("API Gateway answered {} 5xx, the function failed {}", pct(g), pct(x))))
            }
            Some(x) => Some((
                "gateway",
                format!("API Gateway answered {} 5xx while the function failed only {}", pct(g), pct(x)),
            )),
            None => None,
        },
        _ => None,
    }
}

/// One kind of slice, judged.
#[derive(Debug, Default)]
struct SliceKind {
    /// Failing slices, with the evidence line of each.
    failing: Vec<(Item, String)>,
    /// Slices with enough requests to be judged.
    judged: usize,
    /// Failed requests of the failing slices.
    failed_requests: f64,
    /// Every judged slice: (name, success ratio, baseline, requests).
    figures: Vec<(String, f64, Option<f64>, f64)>,
}

impl SliceKind {
    fn judge(
        &mut self,
        cfg: &OutageConfig,
        label: &str,
        name: &str,
        requests: f64,
        (s, b): (Option<f64>, Option<f64>),
        total: f64,
    ) {
        let Some(success) = s.filter(|_| requests >= cfg.min_requests as f64) else {
            return;
        };
        self.judged += 1;
        self.figures.push((name.to_string(), success, b, requests));
        if let Some(why) = failing(cfg, requests, s, b) {
            let share = if total > 0.0 { (requests / total).min(1.0) } else { 0.0 };
            self.failed_requests += requests * (1.0 - s.unwrap_or(1.0));
            let line = format!("{label} {name}: {why} of {} requests", requests as u64);
            let item = Item {
                name: name.to_string(),
                success_ratio: s.map(round4),
                baseline: b.map(round4),
                requests: requests as u64,
                share: Some(round4(share)),
            };
            self.failing.push((item, line));
        }
    }

    /// Some slices fail and others, judged, do not: the failure follows this kind.
    fn localized(&self) -> bool {
        !self.failing.is_empty() && self.failing.len() < self.judged
    }

    /// Every judged slice fails alike.
    fn uniform(&self) -> bool {
        self.judged > 1 && self.failing.len() == self.judged
    }
}

/// The verdict for `service` over the `cfg.window_minutes` before `at_ms`.
pub fn assess(
    cfg: &OutageConfig,
    service: &str,
    at_ms: i64,
    signals: &SignalsView,
    hops: &HopsView,
    journeys: &[JourneyCheck],
    probes: &[ProbeCheck],
) -> Assessment {
    let window_ms = cfg.window_minutes.max(1) * MINUTE_MS;
    // Signals' minutes are judged once closed: the window ends at the last closed minute.
    let to_ms = if signals.closed_until_ms > 0 { signals.closed_until_ms.min(at_ms) } else { at_ms };
    let from_ms = to_ms.saturating_sub(window_ms);
    let mut evidence = Vec::new();
    // edge_location, region, client_class, routes, all (the whole service).
    let mut kinds: BTreeMap<&'static str, SliceKind> = BTreeMap::new();

    // Edge locations, regions, client classes.
    let ss = service_series(signals, service);
    let base_ms = from_ms.saturating_sub(cfg.baseline_minutes * MINUTE_MS);
    let all = ss.all.map(|(r, e)| figures(Some(r), e, base_ms, from_ms, to_ms)).unwrap_or_default();
    for (kind, list) in &ss.slices {
        let k = kinds.entry(kind).or_default();
        let label = kind.replace('_', " ");
        for (name, r, e) in list {
            let f = figures(Some(r), *e, base_ms, from_ms, to_ms);
            k.judge(cfg, &label, name, f.requests, (f.success(), f.baseline()), all.requests);
        }
    }

    // Routes, from the hops.
    let (first, last) = (from_ms.div_euclid(MINUTE_MS), (to_ms - 1).div_euclid(MINUTE_MS));
    let base_first = first - cfg.baseline_minutes;
    let mut route_totals: Vec<(String, HopCounts, HopCounts)> = Vec::new();
    let mut total_requests = 0u64;
    for r in hops.routes(service).iter().take(crate::hops::MAX_ROUTES_PER_SERVICE + 1) {
        let mut now = HopCounts::default();
        now.add(&hops.merged(service, Some(r), first, last).route);
        let mut before = HopCounts::default();
        before.add(&hops.merged(service, Some(r), base_first, first - 1).route);
        if let Some(h) = now.front() {
            total_requests += now.requests[h];
        }
        route_totals.push((r.to_string(), now, before));
    }
    let mut function = HopCounts::default();
    function.add(&hops.merged(service, None, first, last).function);
    let mut all_hops = HopCounts::default();
    let mut route_counts: Vec<(String, HopCounts)> = Vec::new();
    for (name, now, before) in &route_totals {
        all_hops.add_counts(now);
        let Some(h) = now.front() else { continue };
        let s = now.error_ratio(h).map(|e| 1.0 - e);
        let b = before.error_ratio(h).filter(|_| before.requests[h] >= cfg.min_requests).map(|e| 1.0 - e);
        let k = kinds.entry("routes").or_default();
        k.judge(cfg, "route", name, now.requests[h] as f64, (s, b), total_requests as f64);
        route_counts.push((name.clone(), *now));
    }
    // The whole service, when no slice tells more.
    if kinds.is_empty() {
        let k = kinds.entry("all").or_default();
        let label = format!("all requests ({})", ss.origin.unwrap_or("?"));
        k.judge(cfg, &label, "", all.requests, (all.success(), all.baseline()), all.requests);
    }

    // A kind every slice of which fails alike says nothing of where, when
    // another kind does: a route down makes every edge location look worse.
    if kinds.values().any(SliceKind::localized) {
        for (name, k) in kinds.iter_mut() {
            if k.uniform() {
                evidence.push(format!(
                    "every {} fails alike: not one of them",
                    name.trim_end_matches('s').replace('_', " ")
                ));
                k.failing.clear();
                k.failed_requests = 0.0;
            }
        }
    }
    let denominator = |kind: &str| if kind == "routes" { total_requests as f64 } else { all.requests };
    let failing_share = round4(
        kinds
            .iter()
            .map(|(name, k)| {
                let d = denominator(name);
                if d > 0.0 { (k.failed_requests / d).min(1.0) } else { 0.0 }
            })
            .fold(0.0, f64::max),
    );
    let mut scope = Scope::default();
    let mut failing_hops = HopCounts::default();
    for (name, k) in kinds.iter_mut() {
        let mut failing = std::mem::take(&mut k.failing);
        failing.sort_by(|a, b| b.0.share.partial_cmp(&a.0.share).unwrap_or(std::cmp::Ordering::Equal));
        failing.truncate(MAX_ITEMS);
        if *name == "routes" {
            for (item, _) in &failing {
                if let Some((_, c)) = route_counts.iter().find(|(n, _)| *n == item.name) {
                    failing_hops.add_counts(c);
                }
            }
        }
        evidence.extend(failing.iter().map(|(_, line)| line.clone()));
        let items: Vec<Item> = failing.into_iter().map(|(i, _)| i).collect();
        match *name {
            "edge_location" => scope.edge_locations = items,
            "region" => scope.regions = items,
            "client_class" => scope.client_classes = items,
            "routes" => scope.routes = items,
            _ => {}
        }
    }
    let whole_fails = kinds.get("all").is_some_and(|k| k.failed_requests > 0.0);
    let mut judged = judged_slices(&mut kinds);
    // Per region the synthetic checks ran from: (passed, all).
    let mut by_region: BTreeMap<&str, (u64, u64)> = BTreeMap::new();

    // Journey steps: each journey's last run, if it started in the window.
    for j in journeys.iter().filter(|j| j.service == service && j.started_ms >= from_ms && j.started_ms <= at_ms) {
        let r = by_region.entry(j.region.as_str()).or_default();
        r.0 += u64::from(j.failed_step.is_none());
        r.1 += 1;
        if let Some(step) = &j.failed_step {
            let status = j.http_status.map_or_else(|| "no response".to_string(), |c| format!("HTTP {c}"));
            evidence.push(format!("journey {} from {}: step {step} failed ({status})", j.journey, j.region));
            if scope.journey_steps.len() < MAX_ITEMS {
                scope.journey_steps.push(Item {
                    name: format!("{}/{step}", j.journey),
                    success_ratio: Some(0.0),
                    baseline: None,
                    requests: 1,
                    share: None,
                });
            }
        }
    }

    // Probes: each hop's last outcome, from this agent's region.
    let mut probe_blamed = None;
    for p in probes.iter().filter(|p| p.service == service) {
        let r = by_region.entry(p.region.as_str()).or_default();
        r.0 += p.hops.iter().filter(|h| h.1).count() as u64;
        r.1 += p.hops.len() as u64;
        for (hop, ok, status) in &p.hops {
            if *ok || scope.journey_steps.len() >= MAX_ITEMS {
                continue;
            }
            let status = status.map_or_else(|| "no response".to_string(), |c| format!("HTTP {c}"));
            evidence.push(format!("probe {} from {}: hop {hop} failed ({status})", p.probe, p.region));
            scope.journey_steps.push(Item {
                name: format!("probe:{}/{hop}", p.probe),
                success_ratio: Some(0.0),
                baseline: None,
                requests: 1,
                share: None,
            });
        }
        probe_blamed = probe_blamed.or_else(|| probe_blame(p));
    }

    // Probe regions: every synthetic check by the region it ran from.
    for (region, (ok, all)) in by_region.into_iter().filter(|(_, (_, all))| *all > 0) {
        let success = ok as f64 / all as f64;
        if judged.iter().filter(|j| j.dimension == "probe_region").count() < MAX_SLICE_SERIES {
            judged.push(Judged {
                dimension: "probe_region",
                name: region.to_string(),
                success_ratio: round4(success),
                baseline: None,
                requests: all,
            });
        }
        if success < cfg.failing_success_ratio && scope.probe_regions.len() < MAX_ITEMS {
            evidence.push(format!("synthetic checks from {region}: {ok} of {all} passed"));
            scope.probe_regions.push(Item {
                name: region.to_string(),
                success_ratio: Some(round4(success)),
                baseline: None,
                requests: all,
                share: None,
            });
        }
    }

    let anything = whole_fails
        || !scope.journey_steps.is_empty()
        || !scope.edge_locations.is_empty()
        || !scope.regions.is_empty()
        || !scope.client_classes.is_empty()
        || !scope.routes.is_empty();
    let verdict = if anything && failing_share >= cfg.total_share {
        Verdict::Total
    } else if anything {
        Verdict::Partial
    } else {
        Verdict::None
    };

    // Blame.
    let mut blame = None;
    if verdict != Verdict::None {
        let basis = if scope.routes.is_empty() { &all_hops } else { &failing_hops };
        if let Some((hop, why)) = blame_of(cfg, basis, &function) {
            blame = Some(hop);
            evidence.push(why);
        } else if let Some(hop) = probe_blamed {
            blame = Some(hop);
            evidence.push(format!("the probes fail from the {hop} inwards, not beyond it"));
        } else if !(scope.edge_locations.is_empty() && scope.regions.is_empty())
            && scope.routes.is_empty()
            && verdict == Verdict::Partial
            && all_hops.error_ratio(HOP_GATEWAY).is_some_and(|g| g < 1.0 - cfg.failing_success_ratio)
        {
            blame = Some("edge");
            evidence.push("only some edge locations fail while API Gateway answers normally".into());
        }
    } else {
        evidence.push(format!("no slice failing in the last {} minutes", cfg.window_minutes));
    }
    evidence.truncate(2 * MAX_ITEMS);
    Assessment {
        service: service.to_string(),
        at: crate::timefmt::rfc3339(to_ms),
        window_minutes: cfg.window_minutes,
        verdict,
        failing_share,
        scope,
        blame,
        evidence,
        judged,
    }
}

/// The judged slices of every kind but the whole service, at most
/// [`MAX_SLICE_SERIES`] per kind (the most requests first), in kind and name order.
fn judged_slices(kinds: &mut BTreeMap<&'static str, SliceKind>) -> Vec<Judged> {
    let mut out = Vec::new();
    for (kind, k) in kinds.iter_mut() {
        let dimension = match *kind {
            "edge_location" => "edge_location",
            "region" => "region",
            "client_class" => "client_class",
            "routes" => "route",
            _ => continue,
        };
        let mut figures = std::mem::take(&mut k.figures);
        figures.sort_by(|a, b| b.3.total_cmp(&a.3).then_with(|| a.0.cmp(&b.0)));
        figures.truncate(MAX_SLICE_SERIES);
        figures.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(figures.into_iter().map(|(name, s, b, requests)| Judged {
            dimension,
            name,
            success_ratio: round4(s),
            baseline: b.map(round4),
            requests: requests as u64,
        }));
    }
    out
}

impl HopCounts {
    fn add_counts(&mut self, o: &HopCounts) {
        for i in 0..3 {
            self.requests[i] += o.requests[i];
            self.errors[i] += o.errors[i];
        }
    }
}

/// Every service the signals, hops or journeys know, for the gauges
/// (`slo_agent_outage_verdict`, `slo_agent_outage_failing_share`).
pub fn services(signals: &SignalsView, journeys: &[JourneyCheck], probes: &[ProbeCheck]) -> Vec<String> {
    let mut s: Vec<String> = signals
        .series
        .iter()
        .filter(|s| s.key.origin != "slo")
        .map(|s| s.key.service.to_string())
        .chain(journeys.iter().map(|j| j.service.clone()))
        .chain(probes.iter().map(|p| p.service.clone()))
        .collect();
    s.sort_unstable();
    s.dedup();
    s.truncate(crate::signals::MAX_SERVICES);
    s
}

use crate::telemetry::events::metric;
use crate::telemetry::{FamilyView, Kind, Metric};

metric!(
    OUTAGE_VERDICT,
    "slo_agent_outage_verdict",
    Gauge,
    "The outage verdict of the service over outage.window: 0 none, 1 partial, 2 total"
);
metric!(
    OUTAGE_FAILING_SHARE,
    "slo_agent_outage_failing_share",
    Gauge,
    "The share of the service's requests that failed in its failing slices over outage.window"
);

metric!(
    OUTAGE_SLICE_SUCCESS,
    "slo_agent_outage_slice_success_ratio",
    Gauge,
    "The success ratio of one judged slice of the service (edge location, region, client class, route) over outage.window"
);
metric!(
    OUTAGE_SLICE_BASELINE,
    "slo_agent_outage_slice_baseline_ratio",
    Gauge,
    "The success ratio the slice is judged against: the same slice over outage.baseline before the window"
);

pub static FAMILIES: [&Metric; 4] =
    [&OUTAGE_VERDICT, &OUTAGE_FAILING_SHARE, &OUTAGE_SLICE_SUCCESS, &OUTAGE_SLICE_BASELINE];

/// The gauges of some assessments: one series per service (services are
/// bounded by the signals' `MAX_SERVICES`), and per judged slice (at most
/// [`MAX_SLICE_SERIES`] per service and dimension).
pub fn families(assessments: &[Assessment]) -> Vec<FamilyView> {
    let mut out: Vec<FamilyView> = FAMILIES.iter().map(|m| FamilyView { metric: m, series: Vec::new() }).collect();
    for a in assessments {
        let labels = vec![("service", a.service.clone())];
        out[0].series.push((labels.clone(), f64::from(a.verdict.level())));
        out[1].series.push((labels, a.failing_share));
        for j in &a.judged {
            let labels =
                vec![("service", a.service.clone()), ("dimension", j.dimension.to_string()), ("slice", j.name.clone())];
            out[2].series.push((labels.clone(), j.success_ratio));
            if let Some(b) = j.baseline {
                out[3].series.push((labels, b));
            }
        }
    }
    out
}
