//! CloudWatch metrics as an SLI source: per-minute sums from GetMetricData,
//! turned into aggregate events (`EventSink::events(ev, n)`).
//!
//! Each configured query names the metrics that count requests (`total` or
//! `good`), failures (`errors`, or `error_rate_percent` of `total`) and
//! throttles. For every minute and query the source emits, with
//! `origin: cloudwatch` and the query's service, at the minute's start:
//!
//! | events | status | outcome |
//! | --- | --- | --- |
//! | good = `good`, or `total` − errors | 200 | `success` |
//! | errors = `errors`, or round(`total` × `error_rate_percent` / 100), at most `total` | 500 | `error` |
//! | throttles = `throttles` (not part of `total`, as Lambda counts them) | 429 | `throttled` |
//!
//! Datapoints arrive late: only minutes older than `settle` are read, and
//! each minute exactly once. The checkpoint is the first minute not read yet;
//! a poll reads whole minutes `[next, end)` and emits them only after every
//! page of the answer has arrived, so a failed poll emits nothing and moves
//! nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::event::{EventSink, Origin, Outcome, RequestEvent};
use crate::source::aws::config::{CloudWatchMetricsConfig, MetricRole};
use crate::source::aws::sdk::{self, Backoff, CallError, Sdk};
use crate::source::aws::{AwsSourceError, read_checkpoint};
use crate::source::{PollOutcome, Source};

const MINUTE_MS: i64 = 60_000;
/// Pages of one GetMetricData answer; a bounded range fits in one.
const MAX_PAGES: usize = 20;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MetricsCheckpoint {
    /// Start (ms) of the first minute not read yet.
    pub next_minute_ms: i64,
}

pub struct CloudWatchMetricsSource {
    cfg: CloudWatchMetricsConfig,
    state: MetricsCheckpoint,
    clock: Arc<dyn Clock>,
    sdk: Option<(Sdk, aws_sdk_cloudwatch::Client)>,
    backoff: Backoff,
    next_due: Option<Instant>,
    /// (query index, role) per GetMetricData query id `m{i}`.
    ids: Vec<(usize, MetricRole)>,
}

/// Per-minute values of one query's metrics.
#[derive(Debug, Default, Clone, Copy)]
struct Minute {
    total: Option<f64>,
    good: Option<f64>,
    errors: Option<f64>,
    rate: Option<f64>,
    throttles: Option<f64>,
}

/// Counts as whole events: metric sums are whole numbers, but a percentage
/// times a count is not.
fn count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 { v.round().min(u64::MAX as f64) as u64 } else { 0 }
}

impl Minute {
    fn set(&mut self, role: MetricRole, v: f64) {
        let slot = match role {
            MetricRole::Total => &mut self.total,
            MetricRole::Good => &mut self.good,
            MetricRole::Errors => &mut self.errors,
            MetricRole::ErrorRatePercent => &mut self.rate,
            MetricRole::Throttles => &mut self.throttles,
        };
        *slot = Some(slot.unwrap_or(0.0) + v);
    }

    /// (good, errors, throttles).
    fn split(&self) -> (u64, u64, u64) {
        let throttles = count(self.throttles.unwrap_or(0.0));
        match self.good {
            Some(g) => (count(g), count(self.errors.unwrap_or(0.0)), throttles),
            None => {
                let total = count(self.total.unwrap_or(0.0));
                let errors = match (self.errors, self.rate) {
                    (Some(e), _) => count(e),
                    (None, Some(r)) => count(total as f64 * r / 100.0),
                    (None, None) => 0,
                }
                .min(total);
                (total - errors, errors, throttles)
            }
        }
    }
}

impl CloudWatchMetricsSource {
    pub fn new(
        cfg: CloudWatchMetricsConfig,
        checkpoint: Option<&[u8]>,
        clock: Arc<dyn Clock>,
    ) -> Result<CloudWatchMetricsSource, AwsSourceError> {
        let state = match checkpoint {
            Some(_) => read_checkpoint::<MetricsCheckpoint>(&cfg.name, checkpoint)?,
            None => MetricsCheckpoint { next_minute_ms: floor_minute(clock.now_ms() - cfg.start.as_millis() as i64) },
        };
        let ids = cfg.queries.iter().enumerate().flat_map(|(i, q)| q.metrics().map(move |(r, _)| (i, r))).collect();
        let backoff = Backoff::new(sdk::jitter_seed(&cfg.name));
        Ok(CloudWatchMetricsSource { cfg, state, clock, sdk: None, backoff, next_due: None, ids })
    }

    pub fn state(&self) -> &MetricsCheckpoint {
        &self.state
    }

    fn queries(&self) -> Vec<MetricDataQuery> {
        let mut out = Vec::new();
        for (i, q) in self.cfg.queries.iter().enumerate() {
            for (role, metric_name) in q.metrics() {
                let dims = q.dimensions.iter().map(|(n, v)| Dimension::builder().name(n).value(v).build()).collect();
                let metric = Metric::builder()
                    .namespace(&q.namespace)
                    .metric_name(metric_name)
                    .set_dimensions(Some(dims))
                    .build();
                // A rate is averaged over the minute; counts are summed.
                let stat = if role == MetricRole::ErrorRatePercent { "Average" } else { "Sum" };
                let ms = MetricStat::builder().metric(metric).period(60).stat(stat).build();
                let id = format!("m{}", out.len());
                debug_assert_eq!(self.ids.get(out.len()), Some(&(i, role)));
                out.push(MetricDataQuery::builder().id(id).metric_stat(ms).return_data(true).build());
            }
        }
        out
    }

    /// Read the settled minutes since the checkpoint (at most
    /// `max_minutes_per_poll`) and emit their counts.
    pub fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome {
        let mut out = PollOutcome { files: self.cfg.queries.len(), ..PollOutcome::default() };
        if self.next_due.is_some_and(|d| Instant::now() < d) || self.backoff.waiting() {
            return out;
        }
        let now = self.clock.now_ms();
        let settled_end = floor_minute(now - self.cfg.settle.as_millis() as i64);
        let start = self.state.next_minute_ms;
        let end = settled_end.min(start + self.cfg.max_minutes_per_poll as i64 * MINUTE_MS);
        if end <= start {
            self.next_due = Some(Instant::now() + self.cfg.poll_interval);
            return out;
        }
        if self.sdk.is_none() {
            match Sdk::new(&self.cfg.aws) {
                Ok(s) => {
                    let c = aws_sdk_cloudwatch::Client::new(&s.config);
                    self.sdk = Some((s, c));
                }
                Err(e) => {
                    let wait = self.backoff.failed();
                    tracing::error!(source = %self.cfg.name, error = %e, retry_in_s = wait.as_secs_f64(), "cannot start the AWS client runtime");
                    return out;
                }
            }
        }
        match self.fetch(start, end) {
            Ok(minutes) => {
                self.backoff.succeeded();
                self.emit(&minutes, sink, &mut out);
                self.state.next_minute_ms = end;
                out.advanced = true;
                out.more = end < settled_end;
            }
            Err(e) => {
                out.error(e.kind.as_str());
                let wait = self.backoff.failed();
                sdk::log_failure(&self.cfg.name, "GetMetricData", &e, wait, self.backoff.failures());
            }
        }
        self.next_due = if out.more { None } else { Some(Instant::now() + self.cfg.poll_interval) };
        out
    }

    /// Every datapoint of `[start, end)`, by (query, minute).
    fn fetch(&self, start: i64, end: i64) -> Result<BTreeMap<(usize, i64), Minute>, CallError> {
        let (sdk, client) = self.sdk.as_ref().expect("client made before fetch");
        let queries = self.queries();
        let mut minutes: BTreeMap<(usize, i64), Minute> = BTreeMap::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let req = client
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(DateTime::from_millis(start))
                .end_time(DateTime::from_millis(end))
                .set_next_token(token.clone());
            let resp = match sdk.call(req.send()) {
                None => return Err(CallError::timed_out()),
                Some(r) => r.map_err(|e| CallError::from_sdk(&e))?,
            };
            for r in resp.metric_data_results() {
                let Some(&(qi, role)) =
                    r.id().and_then(|id| id.strip_prefix('m')?.parse::<usize>().ok()).and_then(|i| self.ids.get(i))
                else {
                    continue;
                };
                for (ts, v) in r.timestamps().iter().zip(r.values()) {
                    let Ok(ms) = ts.to_millis() else { continue };
                    // Only whole minutes inside the range, whatever the server's idea of its ends.
                    if ms < start || ms >= end {
                        continue;
                    }
                    minutes.entry((qi, floor_minute(ms))).or_default().set(role, *v);
                }
            }
            match resp.next_token() {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(minutes),
            }
        }
        Err(CallError {
            kind: sdk::ErrorKind::Other,
            message: format!("GetMetricData still had pages after {MAX_PAGES}; lower max_minutes_per_poll"),
        })
    }

    fn emit(&self, minutes: &BTreeMap<(usize, i64), Minute>, sink: &mut dyn EventSink, out: &mut PollOutcome) {
        for (&(qi, minute), m) in minutes {
            let q = &self.cfg.queries[qi];
            let service = q.service.as_deref().unwrap_or(&self.cfg.service);
            let (good, errors, throttles) = m.split();
            let base = RequestEvent { ts_ms: minute, origin: Some(Origin::CloudWatch), service, ..Default::default() };
            for (n, status, outcome) in
                [(good, 200, Outcome::Success), (errors, 500, Outcome::Error), (throttles, 429, Outcome::Throttled)]
            {
                if n > 0 {
                    sink.events(&RequestEvent { status, outcome, ..base }, n);
                }
            }
            out.lines += 1;
        }
    }

    pub fn checkpoint(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).expect("checkpoint serializes")
    }
}

fn floor_minute(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

impl Source for CloudWatchMetricsSource {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn kind(&self) -> &'static str {
        "cloudwatch-metrics"
    }

    fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome {
        CloudWatchMetricsSource::poll(self, sink)
    }

    fn checkpoint(&self) -> Vec<u8> {
        CloudWatchMetricsSource::checkpoint(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_split_into_good_errors_and_throttles() {
        let m = Minute { total: Some(100.0), errors: Some(3.0), throttles: Some(2.0), ..Default::default() };
        assert_eq!(m.split(), (97, 3, 2));
        // CloudFront: a percentage of the requests, rounded half away from zero (2.5 → 3).
        let m = Minute { total: Some(1000.0), rate: Some(0.25), ..Default::default() };
        assert_eq!(m.split(), (997, 3, 0));
        let m = Minute { total: Some(1000.0), rate: Some(0.24), ..Default::default() };
        assert_eq!(m.split(), (998, 2, 0));
        // More errors than requests (datapoints of different ages): capped.
        let m = Minute { total: Some(5.0), errors: Some(9.0), ..Default::default() };
        assert_eq!(m.split(), (0, 5, 0));
        let m = Minute { good: Some(40.0), errors: Some(1.0), ..Default::default() };
        assert_eq!(m.split(), (40, 1, 0));
        let m = Minute { total: Some(f64::NAN), errors: Some(-1.0), ..Default::default() };
        assert_eq!(m.split(), (0, 0, 0));
    }

    #[test]
    fn minutes_floor_before_the_epoch_too() {
        assert_eq!(floor_minute(119_999), 60_000);
        assert_eq!(floor_minute(-1), -60_000);
    }
}
