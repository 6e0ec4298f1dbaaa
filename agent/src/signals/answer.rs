//! The answer of `GET /api/v1/anomalies`: the live signals' anomalies with
//! the evidence behind each, "are we under attack?" per service, and the
//! business signals against the days before ("conversion dropped — since
//! when, and where?").
//!
//! An anomaly is a series whose score reached `signals.threshold`: open
//! while it does (and for [`super::EPISODE_QUIET`] minutes after), or the
//! last one that closed. Its evidence: the recent minutes with the
//! detector's expectation and band, the other dimensions of the same
//! service and signal that are anomalous too (where it is), and for the
//! signals of abuse the heavy hitters of its minutes.

use serde::Serialize;

use super::{Dim, Episode, HOUR_MS, MINUTE_MS, Minute, SeriesView, Signal, SignalsView};
use crate::timefmt::rfc3339;

/// Minutes of evidence per anomaly.
pub const EVIDENCE_MINUTES: usize = 30;
/// Anomalies listed at most (the highest scores first).
pub const MAX_ANOMALIES: usize = 200;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub service: Option<String>,
    pub signal: Option<String>,
    /// `all`, `edge_location`, `region`, `client_class`, `slo`.
    pub dimension: Option<String>,
    /// Only anomalies whose peak reached this (default: the threshold).
    pub min_score: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Answer {
    /// The end of the last closed minute.
    pub closed_until: Option<String>,
    pub threshold: f64,
    pub series: usize,
    pub anomalies: Vec<Anomaly>,
    pub attack: Vec<Attack>,
    pub business: Vec<Business>,
}

#[derive(Debug, Serialize)]
pub struct Anomaly {
    pub service: String,
    pub origin: String,
    pub signal: String,
    pub dimension: String,
    pub value: String,
    pub unit: String,
    /// Open (still anomalous, or within the quiet minutes after) or closed.
    pub open: bool,
    pub started_at: String,
    pub last_at: String,
    /// `up` (above what was expected) or `down`.
    pub direction: &'static str,
    pub peak_score: f64,
    pub peak_at: String,
    pub score_now: f64,
    pub value_now: Option<f64>,
    pub expected_now: Option<f64>,
    pub value_at_start: f64,
    pub expected_at_start: Option<f64>,
    /// value_now / expected_now − 1.
    pub change: Option<f64>,
    pub evidence: Evidence,
}

#[derive(Debug, Serialize)]
pub struct Evidence {
    pub minutes: Vec<MinuteOut>,
    /// Other slices of the same service and signal and what they scored
    /// during the anomaly (the highest first): where it is.
    pub slices: Vec<Slice>,
    /// Signals of abuse: who sent the anomaly's requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<Top>,
}

#[derive(Debug, Serialize)]
pub struct MinuteOut {
    pub at: String,
    pub value: f64,
    pub expected: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub score: f64,
}

#[derive(Debug, Serialize)]
pub struct Slice {
    pub dimension: String,
    pub value: String,
    pub peak_score: f64,
    pub change: Option<f64>,
}

#[derive(Debug, Serialize, Default)]
pub struct Top {
    pub from: String,
    pub to: String,
    pub requests: u64,
    pub client_addresses: Vec<Hitter>,
    pub user_agents: Vec<Hitter>,
    pub paths: Vec<Hitter>,
    pub asns: Vec<Hitter>,
}

#[derive(Debug, Serialize)]
pub struct Hitter {
    pub value: String,
    /// A lower bound (exact unless the minute had more distinct values than the table holds).
    pub requests: u64,
    pub share: f64,
}

#[derive(Debug, Serialize)]
pub struct Attack {
    pub service: String,
    /// Request rate, 4xx/403 share or client concentration anomalous now.
    pub suspected: bool,
    pub signals: Vec<AttackSignal>,
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<Top>,
}

#[derive(Debug, Serialize)]
pub struct AttackSignal {
    pub origin: String,
    pub signal: String,
    pub score: f64,
    pub value: f64,
    pub expected: Option<f64>,
    pub anomalous_since: Option<String>,
}

/// A business signal in one slice against the same hours of the days before.
#[derive(Debug, Serialize)]
pub struct Business {
    pub service: String,
    pub origin: String,
    pub signal: String,
    pub dimension: String,
    pub value: String,
    /// The last full hour and the median of the same hour on up to 7 days before.
    pub last_hour: Option<f64>,
    pub usual: Option<f64>,
    /// last_hour / usual − 1.
    pub change: Option<f64>,
    /// The first hour of the present run of hours more than 20 % below (or
    /// above) the usual, when the last hour is one.
    pub since: Option<String>,
    pub score_now: f64,
    pub anomaly_started_at: Option<String>,
}

fn finite(v: f32) -> Option<f64> {
    v.is_finite().then_some(f64::from(v))
}

fn minute_out(m: &Minute) -> MinuteOut {
    MinuteOut {
        at: rfc3339(m.minute_ms),
        value: f64::from(m.value),
        expected: finite(m.expected),
        lo: finite(m.lo),
        hi: finite(m.hi),
        score: f64::from(m.score),
    }
}

fn matches(s: &SeriesView, q: &Query) -> bool {
    q.service.as_deref().is_none_or(|x| &*s.key.service == x)
        && q.signal.as_deref().is_none_or(|x| s.signal == x)
        && q.dimension.as_deref().is_none_or(|x| s.key.dim.dimension() == x)
}

pub fn anomalies(view: &SignalsView, q: &Query) -> Answer {
    let min = q.min_score.unwrap_or(view.threshold);
    let mut anomalies: Vec<Anomaly> = Vec::new();
    for s in view.series.iter().filter(|s| matches(s, q)) {
        let (episode, open) = match (s.episode, s.last_episode) {
            (Some(e), _) => (e, true),
            (None, Some(e)) => (e, false),
            (None, None) => continue,
        };
        if episode.peak_score < min {
            continue;
        }
        anomalies.push(anomaly(view, s, &episode, open));
    }
    anomalies.sort_by(|a, b| b.open.cmp(&a.open).then(b.peak_score.total_cmp(&a.peak_score)));
    anomalies.truncate(MAX_ANOMALIES);
    Answer {
        closed_until: (view.closed_until_ms > 0).then(|| rfc3339(view.closed_until_ms)),
        threshold: view.threshold,
        series: view.series.len(),
        anomalies,
        attack: attack(view, q),
        business: business(view, q),
    }
}

fn anomaly(view: &SignalsView, s: &SeriesView, e: &Episode, open: bool) -> Anomaly {
    let last = s.last();
    let from = e.start_ms;
    let to = e.last_ms + MINUTE_MS;
    let minutes: Vec<MinuteOut> = {
        let n = s.recent.len();
        s.recent.range(n.saturating_sub(EVIDENCE_MINUTES)..).map(minute_out).collect()
    };
    let mut slices: Vec<Slice> = view
        .series
        .iter()
        .filter(|o| o.key.service == s.key.service && o.key.signal == s.key.signal && o.key.dim != s.key.dim)
        .filter(|o| o.key.origin == s.key.origin || matches!(o.key.dim, Dim::Slo(_)))
        .filter_map(|o| {
            let during: Vec<&Minute> = o.recent.iter().filter(|m| m.minute_ms >= from && m.minute_ms < to).collect();
            let peak = during.iter().map(|m| f64::from(m.score)).fold(0.0, f64::max);
            if peak < view.threshold {
                return None;
            }
            let change = during.last().and_then(|m| change(m));
            Some(Slice {
                dimension: o.key.dim.dimension().into(),
                value: o.key.dim.value().into(),
                peak_score: peak,
                change,
            })
        })
        .collect();
    slices.sort_by(|a, b| b.peak_score.total_cmp(&a.peak_score));
    slices.truncate(20);
    let top = s.key.signal.is_attack().then(|| top(view, &s.key.service, from, to.max(from + MINUTE_MS))).flatten();
    Anomaly {
        service: s.key.service.to_string(),
        origin: s.key.origin.to_string(),
        signal: s.signal.clone(),
        dimension: s.key.dim.dimension().into(),
        value: s.key.dim.value().into(),
        unit: s.key.signal.unit().into(),
        open,
        started_at: rfc3339(e.start_ms),
        last_at: rfc3339(e.last_ms),
        direction: if e.direction >= 0 { "up" } else { "down" },
        peak_score: e.peak_score,
        peak_at: rfc3339(e.peak_ms),
        score_now: last.map_or(0.0, |m| f64::from(m.score)),
        value_now: last.map(|m| f64::from(m.value)),
        expected_now: last.and_then(|m| finite(m.expected)),
        value_at_start: e.value_at_start,
        expected_at_start: e.expected_at_start.is_finite().then_some(e.expected_at_start),
        change: last.and_then(change),
        evidence: Evidence { minutes, slices, top },
    }
}

fn change(m: &Minute) -> Option<f64> {
    let e = f64::from(m.expected);
    (e.is_finite() && e.abs() > 1e-9).then(|| f64::from(m.value) / e - 1.0)
}

fn hitters(t: &super::topk::TopK, k: usize, total: u64) -> Vec<Hitter> {
    t.top(k)
        .into_iter()
        .map(|(value, requests)| Hitter {
            value: crate::untrusted::Escaped(&percent_decoded(&value)).to_string(),
            requests,
            share: if total > 0 { requests as f64 / total as f64 } else { 0.0 },
        })
        .collect()
}

/// CloudFront writes user agents URL-encoded; shown decoded (then escaped).
fn percent_decoded(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = ((b[i + 1] as char).to_digit(16), (b[i + 2] as char).to_digit(16))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn top(view: &SignalsView, service: &str, from: i64, to: i64) -> Option<Top> {
    let (requests, h) = view.hitters_between(service, from, to);
    if h.addresses.seen() == 0 && h.user_agents.seen() == 0 {
        return None;
    }
    let k = view.top;
    Some(Top {
        from: rfc3339(from),
        to: rfc3339(to),
        requests,
        client_addresses: hitters(&h.addresses, k, requests.max(h.addresses.seen())),
        user_agents: hitters(&h.user_agents, k, requests.max(h.user_agents.seen())),
        paths: hitters(&h.paths, k, requests.max(h.paths.seen())),
        asns: hitters(&h.asns, k, requests.max(h.asns.seen())),
    })
}

fn attack(view: &SignalsView, q: &Query) -> Vec<Attack> {
    let mut services: Vec<&str> = view
        .series
        .iter()
        .filter(|s| s.key.dim == Dim::All && s.key.signal == Signal::Requests && s.key.origin != "slo")
        .filter(|s| q.service.as_deref().is_none_or(|x| &*s.key.service == x))
        .map(|s| &*s.key.service)
        .collect();
    services.dedup();
    let mut out = Vec::new();
    for service in services {
        let mut signals = Vec::new();
        let mut since: Option<i64> = None;
        for s in view.series.iter().filter(|s| &*s.key.service == service && s.key.dim == Dim::All) {
            if !s.key.signal.is_attack() {
                continue;
            }
            let Some(m) = s.last() else { continue };
            // Fewer requests than expected is an outage, not an attack.
            let rising = s.episode.is_some_and(|e| e.direction > 0);
            let anomalous = s.episode.is_some() && rising;
            if anomalous {
                let start = s.episode.map(|e| e.start_ms);
                since = match (since, start) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            signals.push(AttackSignal {
                origin: s.key.origin.to_string(),
                signal: s.signal.clone(),
                score: f64::from(m.score),
                value: f64::from(m.value),
                expected: finite(m.expected),
                anomalous_since: s.episode.filter(|_| anomalous).map(|e| rfc3339(e.start_ms)),
            });
        }
        let suspected = signals.iter().any(|s| s.anomalous_since.is_some());
        let top = if suspected {
            since.and_then(|from| top(view, service, from, view.closed_until_ms.max(from + MINUTE_MS)))
        } else {
            None
        };
        out.push(Attack { service: service.to_string(), suspected, signals, since: since.map(rfc3339), top });
    }
    out
}

/// How far from the usual an hour must be to count in `since`.
const BUSINESS_CHANGE: f64 = 0.2;

fn business(view: &SignalsView, q: &Query) -> Vec<Business> {
    let mut out = Vec::new();
    for s in view.series.iter().filter(|s| matches!(s.key.signal, Signal::Business(_)) && matches(s, q)) {
        let hours: Vec<(i64, f64)> = s.hours.iter().map(|&(t, v)| (t, f64::from(v))).collect();
        let usual_of = |t: i64| -> Option<f64> {
            let mut v: Vec<f64> = (1..=7)
                .filter_map(|d| {
                    let h = t - d * 24 * HOUR_MS;
                    hours.binary_search_by_key(&h, |x| x.0).ok().map(|i| hours[i].1)
                })
                .collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            Some(v[v.len() / 2])
        };
        let last = hours.last().copied();
        let usual = last.and_then(|(t, _)| usual_of(t));
        let change = match (last, usual) {
            (Some((_, v)), Some(u)) if u > 0.0 => Some(v / u - 1.0),
            _ => None,
        };
        let since = change.filter(|c| c.abs() >= BUSINESS_CHANGE).map(|c| {
            let mut first = last.map_or(0, |l| l.0);
            for &(t, v) in hours.iter().rev() {
                match usual_of(t) {
                    Some(u) if u > 0.0 && (v / u - 1.0) * c.signum() >= BUSINESS_CHANGE => first = t,
                    _ => break,
                }
            }
            rfc3339(first)
        });
        out.push(Business {
            service: s.key.service.to_string(),
            origin: s.key.origin.to_string(),
            signal: s.signal.clone(),
            dimension: s.key.dim.dimension().into(),
            value: s.key.dim.value().into(),
            last_hour: last.map(|l| l.1),
            usual,
            change,
            since,
            score_now: s.last().map_or(0.0, |m| f64::from(m.score)),
            anomaly_started_at: s.episode.or(s.last_episode).map(|e| rfc3339(e.start_ms)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_shown_decoded() {
        assert_eq!(percent_decoded("Mozilla/5.0%20(X11)"), "Mozilla/5.0 (X11)");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%zz%4"), "%zz%4");
    }
}
