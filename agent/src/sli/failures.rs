//! What failed, per SLO: the top failing routes, edge locations and status
//! codes over the last hours, and a few sample failing requests. It is the
//! evidence a notification carries ("which routes? which POPs? which
//! codes?"), and the source of `slo_agent_slo_top_failures`.
//!
//! Memory is bounded per SLO: 5-minute buckets for [`KEEP_MINUTES`] (72
//! buckets), each with at most [`TOP_K`] values per dimension, counted with
//! the space-saving algorithm (a new value takes the place of the smallest
//! and inherits its count, so heavy hitters are never missed; counts of
//! rare values may be overestimated by at most the smallest count), and the
//! newest [`SAMPLES`] failing requests. Only bad events touch it. It is not
//! persisted: after a restart the evidence covers what was seen since.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::event::RequestEvent;
use crate::spec::model::MINUTE_MS;

/// Minutes per bucket.
pub const BUCKET_MINUTES: i64 = 5;
/// How far back the breakdown reaches (6 hours: the longest page window).
pub const KEEP_MINUTES: i64 = 360;
/// Values kept per dimension and bucket.
pub const TOP_K: usize = 8;
/// Sample failing requests kept.
pub const SAMPLES: usize = 5;
/// Least event time between two samples.
const SAMPLE_EVERY_MS: i64 = 1000;
/// How old the last hour's breakdown may get while failures keep coming,
/// and when nothing new failed.
const REFRESH_MS: i64 = 30_000;
const REFRESH_QUIET_MS: i64 = 60_000;
/// Longest value kept (paths, routes): longer ones are cut.
const MAX_VALUE_BYTES: usize = 160;

/// Counts of the most frequent values, space-saving style.
#[derive(Debug, Clone, Default, PartialEq)]
struct TopK {
    entries: Vec<(Box<str>, u64)>,
}

impl TopK {
    fn add(&mut self, value: &str, n: u64) {
        if let Some(e) = self.entries.iter_mut().find(|(v, _)| &**v == value) {
            e.1 += n;
            return;
        }
        let value: Box<str> = cut(value).into();
        if self.entries.len() < TOP_K {
            self.entries.push((value, n));
            return;
        }
        let (i, min) =
            self.entries.iter().enumerate().min_by_key(|(_, (_, c))| *c).map(|(i, (_, c))| (i, *c)).expect("TOP_K > 0");
        self.entries[i] = (value, min + n);
    }
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_VALUE_BYTES {
        return s;
    }
    let mut end = MAX_VALUE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Bucket {
    /// First minute (since the epoch) of the bucket.
    start_minute: i64,
    failed: u64,
    routes: TopK,
    edge_locations: TopK,
    status_codes: TopK,
}

/// One failing request, as far as the log told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureSample {
    pub at_ms: i64,
    pub status: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub route: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub edge_location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
}

/// The breakdown of failures over a stretch of time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// How many minutes back it covers (capped at [`KEEP_MINUTES`]).
    pub minutes: i64,
    /// Bad events counted in that time.
    pub failed: u64,
    /// `(value, bad events)`, most first. Routes are templates
    /// (`/cart/{id}`) where the hop or the route templates give one, else paths.
    pub top_routes: Vec<(String, u64)>,
    pub top_edge_locations: Vec<(String, u64)>,
    /// Status codes as text (`503`, `000` for no response).
    pub top_status_codes: Vec<(String, u64)>,
    pub samples: Vec<FailureSample>,
}

impl Evidence {
    pub fn is_empty(&self) -> bool {
        self.failed == 0 && self.samples.is_empty()
    }
}

/// One SLO's failure breakdown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Failures {
    buckets: VecDeque<Bucket>,
    samples: VecDeque<FailureSample>,
    /// Bumped by every [`Failures::record`].
    version: u64,
    /// The last hour's top values, as of (time, version): evaluation asks
    /// every tick, and the answer only changes with a new minute or new failures.
    last_hour: Option<(i64, u64, std::sync::Arc<Evidence>)>,
}

impl Failures {
    /// Count `n` bad events like `ev`. `route` is the route template when
    /// known (else empty: the path is used).
    #[inline(never)]
    pub fn record(&mut self, ev: &RequestEvent<'_>, route: &str, n: u64) {
        self.version += 1;
        let start_minute = ev.ts_ms.div_euclid(MINUTE_MS).div_euclid(BUCKET_MINUTES) * BUCKET_MINUTES;
        // In-order streams hit the newest bucket: look from the back.
        let bucket = match self.buckets.iter().rposition(|b| b.start_minute == start_minute) {
            Some(i) => &mut self.buckets[i],
            None => {
                let newest = self.buckets.back().map_or(start_minute, |b| b.start_minute);
                if start_minute <= newest - KEEP_MINUTES {
                    return; // older than anything kept
                }
                let at = self.buckets.iter().position(|b| b.start_minute > start_minute).unwrap_or(self.buckets.len());
                self.buckets.insert(at, Bucket { start_minute, ..Default::default() });
                let newest = self.buckets.back().map_or(start_minute, |b| b.start_minute);
                while self.buckets.front().is_some_and(|b| b.start_minute <= newest - KEEP_MINUTES) {
                    self.buckets.pop_front();
                }
                match self.buckets.iter().position(|b| b.start_minute == start_minute) {
                    Some(i) => &mut self.buckets[i],
                    None => return,
                }
            }
        };
        bucket.failed += n;
        let route = if route.is_empty() { ev.path } else { route };
        if !route.is_empty() {
            bucket.routes.add(route, n);
        }
        if !ev.edge_location.is_empty() {
            bucket.edge_locations.add(ev.edge_location, n);
        }
        let mut digits = [b'0'; 5];
        bucket.status_codes.add(status_text(ev.status, &mut digits), n);
        // At most one sample per second of event time: an incident fails
        // thousands of requests a second, and a few recent ones tell enough.
        if self.samples.back().is_some_and(|s| (ev.ts_ms - s.at_ms).abs() < SAMPLE_EVERY_MS) {
            return;
        }
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(FailureSample {
            at_ms: ev.ts_ms,
            status: ev.status,
            method: cut(ev.method).to_string(),
            path: cut(ev.path).to_string(),
            route: cut(route).to_string(),
            edge_location: cut(ev.edge_location).to_string(),
            latency_ms: ev.latency_ms,
            error_type: cut(ev.error_type).to_string(),
            request_id: cut(ev.request_id).to_string(),
            trace_id: cut(ev.trace_id).to_string(),
        });
    }

    /// Failures in the `minutes` before `at_ms` (at most [`KEEP_MINUTES`]),
    /// with the top `top` values per dimension.
    pub fn evidence(&self, at_ms: i64, minutes: i64, top: usize) -> Evidence {
        self.breakdown(at_ms, minutes, top, true)
    }

    fn breakdown(&self, at_ms: i64, minutes: i64, top: usize, with_samples: bool) -> Evidence {
        let minutes = minutes.clamp(BUCKET_MINUTES, KEEP_MINUTES);
        let now_minute = at_ms.div_euclid(MINUTE_MS);
        let from = now_minute - minutes;
        let mut failed = 0;
        // Merged by reference; only the top values become Strings.
        let mut routes: Vec<(&str, u64)> = Vec::new();
        let mut edges: Vec<(&str, u64)> = Vec::new();
        let mut codes: Vec<(&str, u64)> = Vec::new();
        // A bucket counts when any of it lies inside (from, now].
        for b in self.buckets.iter().filter(|b| b.start_minute + BUCKET_MINUTES > from && b.start_minute <= now_minute)
        {
            failed += b.failed;
            merge(&mut routes, &b.routes);
            merge(&mut edges, &b.edge_locations);
            merge(&mut codes, &b.status_codes);
        }
        let from_ms = from * MINUTE_MS;
        let samples = if with_samples {
            self.samples.iter().rev().filter(|s| s.at_ms > from_ms && s.at_ms <= at_ms).cloned().collect()
        } else {
            Vec::new()
        };
        Evidence {
            minutes,
            failed,
            top_routes: top_n(routes, top),
            top_edge_locations: top_n(edges, top),
            top_status_codes: top_n(codes, top),
            samples,
        }
    }

    /// Bad events of the 60 minutes before `at_ms`, top `top` values per
    /// dimension, without samples. Worked out again when the last answer is
    /// 30 s old and failures were recorded since (at once when it showed
    /// none), or 60 s old (the hour slid): a gauge of the last hour may lag by that much, and evaluating
    /// 1,000 SLOs in an incident does not rebuild 1,000 breakdowns a tick.
    pub fn last_hour(&mut self, at_ms: i64, top: usize) -> std::sync::Arc<Evidence> {
        if let Some((t, v, e)) = &self.last_hour
            && (0..REFRESH_QUIET_MS).contains(&(at_ms - t))
            && (*v == self.version || (at_ms - t < REFRESH_MS && e.failed > 0))
        {
            return e.clone();
        }
        let e = if self.buckets.is_empty() {
            Evidence { minutes: 60, ..Evidence::default() }
        } else {
            self.breakdown(at_ms, 60, top, false)
        };
        let e = std::sync::Arc::new(e);
        self.last_hour = Some((at_ms, self.version, e.clone()));
        e
    }

    /// Bytes held (an estimate, for the memory figures).
    pub fn memory_bytes(&self) -> usize {
        let b: usize = self
            .buckets
            .iter()
            .map(|b| {
                std::mem::size_of::<Bucket>()
                    + [&b.routes, &b.edge_locations, &b.status_codes]
                        .iter()
                        .flat_map(|t| t.entries.iter())
                        .map(|(v, _)| v.len() + 24)
                        .sum::<usize>()
            })
            .sum();
        b + self.samples.len() * std::mem::size_of::<FailureSample>()
    }
}

/// A status as at least three digits (`000`, `503`), without allocating.
fn status_text(status: u16, buf: &mut [u8; 5]) -> &str {
    let mut v = status;
    let mut i = buf.len();
    while v > 0 || buf.len() - i < 3 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    std::str::from_utf8(&buf[i..]).expect("ASCII digits")
}

fn merge<'a>(into: &mut Vec<(&'a str, u64)>, from: &'a TopK) {
    for (v, n) in &from.entries {
        match into.iter_mut().find(|(x, _)| *x == &**v) {
            Some(e) => e.1 += n,
            None => into.push((v, *n)),
        }
    }
}

fn top_n(mut v: Vec<(&str, u64)>, n: usize) -> Vec<(String, u64)> {
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.into_iter().take(n).map(|(s, c)| (s.to_string(), c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Origin;

    fn ev<'a>(ts_ms: i64, path: &'a str, edge: &'a str, status: u16) -> RequestEvent<'a> {
        RequestEvent {
            ts_ms,
            origin: Some(Origin::CloudFront),
            path,
            edge_location: edge,
            status,
            ..RequestEvent::default()
        }
    }

    #[test]
    fn top_values_and_samples_cover_the_asked_minutes() {
        let mut f = Failures::default();
        let t0 = 1_700_000_000_000 / 300_000 * 300_000;
        // Two hours earlier: only in the 6h breakdown.
        f.record(&ev(t0 - 7_200_000, "/old", "NRT57-C3", 500), "", 5);
        for i in 0..30 {
            f.record(&ev(t0 + i * 1000, "/cart", "IAD89-C1", 503), "", 1);
        }
        for i in 0..10 {
            f.record(&ev(t0 + i * 1000, "/pay", "FRA56-P2", 502), "", 1);
        }
        let e = f.evidence(t0 + 60_000, 60, 5);
        assert_eq!(e.failed, 40);
        assert_eq!(e.top_routes, vec![("/cart".to_string(), 30), ("/pay".to_string(), 10)]);
        assert_eq!(e.top_edge_locations[0], ("IAD89-C1".to_string(), 30));
        assert_eq!(e.top_status_codes, vec![("503".to_string(), 30), ("502".to_string(), 10)]);
        assert_eq!(e.samples.len(), SAMPLES);
        assert_eq!(e.samples[0].path, "/pay", "newest first");
        let wide = f.evidence(t0 + 60_000, 360, 5);
        assert_eq!(wide.failed, 45);
        assert!(wide.top_routes.iter().any(|(r, n)| r == "/old" && *n == 5));
    }

    #[test]
    fn a_route_template_wins_over_the_path_and_status_0_reads_000() {
        let mut f = Failures::default();
        f.record(&ev(600_000, "/cart/123", "", 0), "/cart/{id}", 2);
        let e = f.evidence(600_000, 60, 5);
        assert_eq!(e.top_routes, vec![("/cart/{id}".to_string(), 2)]);
        assert_eq!(e.top_status_codes, vec![("000".to_string(), 2)]);
        assert!(e.top_edge_locations.is_empty());
    }

    #[test]
    fn memory_is_bounded_however_many_distinct_values_fail() {
        let mut f = Failures::default();
        let mut bytes = 0;
        for i in 0..200_000i64 {
            let path = format!("/p/{i}/{}", "x".repeat((i % 400) as usize));
            f.record(&ev(i * 1000, &path, &format!("E{i}"), (500 + i % 100) as u16), "", 1);
            if i == 100_000 {
                bytes = f.memory_bytes();
            }
        }
        assert!(f.buckets.len() as i64 <= KEEP_MINUTES / BUCKET_MINUTES);
        assert!(f.buckets.iter().all(|b| b.routes.entries.len() <= TOP_K));
        assert!(f.memory_bytes() <= bytes * 2, "{} vs {bytes}", f.memory_bytes());
        assert!(f.memory_bytes() < 200_000, "{}", f.memory_bytes());
    }

    #[test]
    fn a_heavy_hitter_is_found_among_many_rare_values() {
        let mut f = Failures::default();
        for i in 0..1000 {
            f.record(&ev(1000, &format!("/rare/{i}"), "", 500), "", 1);
            if i % 4 == 0 {
                f.record(&ev(1000, "/hot", "", 500), "", 1);
            }
        }
        let e = f.evidence(60_000, 5, 1);
        assert_eq!(e.top_routes[0].0, "/hot");
    }

    #[test]
    fn the_last_hour_is_worked_out_again_only_when_it_can_differ() {
        let mut f = Failures::default();
        let t = 10 * 3_600_000;
        assert_eq!(f.last_hour(t - 1000, 5).failed, 0);
        f.record(&ev(t, "/a", "", 500), "", 1);
        let first = f.last_hour(t + 1000, 5);
        assert_eq!(first.failed, 1, "the first failures show at once");
        assert_eq!(first.failed, 1);
        assert!(std::sync::Arc::ptr_eq(&first, &f.last_hour(t + 2000, 5)), "no news: cached");
        f.record(&ev(t + 3000, "/b", "", 500), "", 1);
        assert_eq!(f.last_hour(t + 3000, 5).failed, 1, "new failures show within 30 s");
        assert_eq!(f.last_hour(t + 31_000, 5).failed, 2, "new failures");
        assert!(std::sync::Arc::ptr_eq(&f.last_hour(t + 61_000, 5), &f.last_hour(t + 62_000, 5)));
        assert_eq!(f.last_hour(t + 2 * 3_600_000, 5).failed, 0, "an hour later");
        assert!(f.last_hour(t, 5).samples.is_empty());
    }

    #[test]
    fn status_codes_read_as_three_digits_or_more() {
        let mut b = [b'0'; 5];
        assert_eq!(status_text(0, &mut b), "000");
        let mut b = [b'0'; 5];
        assert_eq!(status_text(503, &mut b), "503");
        let mut b = [b'0'; 5];
        assert_eq!(status_text(42, &mut b), "042");
        let mut b = [b'0'; 5];
        assert_eq!(status_text(65535, &mut b), "65535");
    }

    #[test]
    fn samples_are_kept_at_most_once_a_second() {
        let mut f = Failures::default();
        for i in 0..1000 {
            f.record(&ev(5_000 + i, "/a", "", 500), "", 1);
        }
        assert_eq!(f.samples.len(), 1);
        f.record(&ev(6_000, "/b", "", 502), "", 1);
        assert_eq!(f.evidence(60_000, 5, 5).samples[0].path, "/b");
        assert_eq!(f.evidence(60_000, 5, 5).failed, 1001);
    }

    #[test]
    fn events_older_than_the_kept_hours_are_ignored() {
        let mut f = Failures::default();
        f.record(&ev(KEEP_MINUTES * 2 * MINUTE_MS, "/now", "", 500), "", 1);
        f.record(&ev(0, "/ancient", "", 500), "", 1);
        assert_eq!(f.buckets.len(), 1);
    }
}
