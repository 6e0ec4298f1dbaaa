//! X-Ray traces as a source: each sampled request decomposed into its hops
//! (`hops::xray`), emitted as one event with `origin: xray`.
//!
//! The source reads time ranges `[next, end)` of trace start times, with
//! `end` at most `now − delay` and `max_range_per_poll` after `next`.
//! GetTraceSummaries (every page, with the configured filter expression)
//! lists a range's ids, at most `max_traces_per_poll` of them; the list
//! goes into the checkpoint. BatchGetTraces then fetches them, at most
//! [`BATCH`] ids per call (the API's limit), every page, each call's
//! requests emitted as it returns and counted in the checkpoint, for as
//! long as the poll's budget ([`POLL_BUDGET`]) lasts; the next poll goes on
//! where it stopped, after a restart too. When every id of the range is
//! fetched, the checkpoint moves to `end`. Whether X-Ray's ranges include
//! their ends is not documented (and trace ids carry whole seconds): each
//! range is asked from 1 s before its start, and the ids of the previous
//! range's last seconds (kept in the checkpoint) are left out, so a trace on
//! a boundary is read once either way. A failed call emits nothing of
//! its batch and moves nothing, and the source backs off. Each range is
//! read once: a trace whose segments reach X-Ray more than `delay` after
//! the trace began is read as far as it had arrived.
//!
//! [`XRaySource::fetch_traces`] decomposes the traces of given ids (API
//! Gateway's `xrayTraceId`, a probe's own `X-Amzn-Trace-Id` root): the same
//! batching, without the time ranges.
//!
//! The event of a request (see `hops::xray::TracedRequest`): time = the
//! stage segment's start; `latency_ms` = the stage segment (API Gateway's
//! response latency; without a gateway, the Lambda service segment);
//! `upstream_latency_ms` = the stage's Lambda call; `lambda_overhead_ms`,
//! `invocation_ms`, `init_ms` from the Lambda segments; path without the
//! stage, method, status, host; `request_id` = API Gateway's,
//! `upstream_request_id` = the invocation's, `trace_id`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_xray::primitives::DateTime;
use aws_sdk_xray::types::TimeRangeType;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::decode::RejectReason;
use crate::event::{EventSink, Origin, Outcome, RequestEvent};
use crate::hops::xray::{TraceError, TracedRequest, decompose};
use crate::source::aws::config::XRayConfig;
use crate::source::aws::sdk::{self, Backoff, CallError, ErrorKind, Sdk};
use crate::source::aws::{AwsSourceError, read_checkpoint};
use crate::source::{PollOutcome, Source};

/// BatchGetTraces takes at most this many ids per call.
pub const BATCH: usize = 5;
/// Pages of one GetTraceSummaries range, or of one BatchGetTraces call.
const MAX_PAGES: usize = 100;
/// A poll starts no BatchGetTraces call after this long.
pub const POLL_BUDGET: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct XRayCheckpoint {
    /// Start (ms) of the first time range not read yet.
    pub next_ms: i64,
    /// The range being read: its ids are listed, some fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeInProgress>,
    /// Ids of the last range's final seconds, read already: the next range
    /// (asked from 1 s earlier) leaves them out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<String>,
}

/// Seconds of overlap between ranges (see the module docs).
const OVERLAP_MS: i64 = 1000;

/// A range `[next_ms, end_ms)` whose ids are listed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RangeInProgress {
    pub end_ms: i64,
    pub ids: Vec<String>,
    /// How many of `ids` are fetched and emitted.
    pub fetched: usize,
}

/// What a source could not use, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XRayStats {
    /// Traces beyond `max_traces_per_poll` in one range: not fetched.
    pub skipped: u64,
    /// Ids BatchGetTraces did not return (unknown, expired, or not processed yet).
    pub unprocessed: u64,
    /// Traces that could not be decomposed (no gateway or Lambda segment, bad documents).
    pub undecomposed: u64,
}

/// Traces fetched and decomposed, and what could not be.
#[derive(Debug, Default)]
pub struct Fetched {
    pub requests: Vec<TracedRequest>,
    pub unprocessed: Vec<String>,
    pub errors: Vec<TraceError>,
}

pub struct XRaySource {
    cfg: XRayConfig,
    state: XRayCheckpoint,
    clock: Arc<dyn Clock>,
    sdk: Option<(Sdk, aws_sdk_xray::Client)>,
    backoff: Backoff,
    next_due: Option<Instant>,
    stats: XRayStats,
}

impl XRaySource {
    pub fn new(
        cfg: XRayConfig,
        checkpoint: Option<&[u8]>,
        clock: Arc<dyn Clock>,
    ) -> Result<XRaySource, AwsSourceError> {
        let state = match checkpoint {
            Some(_) => read_checkpoint::<XRayCheckpoint>(&cfg.name, checkpoint)?,
            // Whole seconds: what GetTraceSummaries reads.
            None => XRayCheckpoint {
                next_ms: (clock.now_ms() - cfg.start.as_millis() as i64).div_euclid(1000) * 1000,
                ..XRayCheckpoint::default()
            },
        };
        let backoff = Backoff::new(sdk::jitter_seed(&cfg.name));
        Ok(XRaySource { cfg, state, clock, sdk: None, backoff, next_due: None, stats: XRayStats::default() })
    }

    pub fn state(&self) -> &XRayCheckpoint {
        &self.state
    }

    pub fn stats(&self) -> XRayStats {
        self.stats
    }

    fn client(&mut self) -> Result<(), CallError> {
        if self.sdk.is_none() {
            let s = Sdk::new(&self.cfg.aws).map_err(|e| CallError {
                kind: ErrorKind::Other,
                message: format!("cannot start the AWS client runtime: {e}"),
            })?;
            let c = aws_sdk_xray::Client::new(&s.config);
            self.sdk = Some((s, c));
        }
        Ok(())
    }

    /// Read on (see the module docs) and emit the requests fetched.
    pub fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome {
        let mut out = PollOutcome { files: 1, ..PollOutcome::default() };
        if self.next_due.is_some_and(|d| Instant::now() < d) || self.backoff.waiting() {
            return out;
        }
        let deadline = Instant::now() + POLL_BUDGET;
        let newest_end = self.clock.now_ms() - self.cfg.delay.as_millis() as i64;
        if let Err(e) = self.read(newest_end, deadline, sink, &mut out) {
            out.error(e.kind.as_str());
            let wait = self.backoff.failed();
            sdk::log_failure(&self.cfg.name, "X-Ray", &e, wait, self.backoff.failures());
        }
        out.more = out.errors.is_empty() && (self.state.range.is_some() || self.state.next_ms + 1000 <= newest_end);
        self.next_due = if out.more { None } else { Some(Instant::now() + self.cfg.poll_interval) };
        out
    }

    fn read(
        &mut self,
        newest_end: i64,
        deadline: Instant,
        sink: &mut dyn EventSink,
        out: &mut PollOutcome,
    ) -> Result<(), CallError> {
        if self.state.range.is_none() {
            let start = self.state.next_ms;
            let end = newest_end.min(start + self.cfg.max_range_per_poll.as_millis() as i64);
            // GetTraceSummaries takes whole seconds: a range shorter than one waits.
            if end - start < 1000 {
                return Ok(());
            }
            let end = start + (end - start) / 1000 * 1000;
            self.client()?;
            let ids = self.list(start - OVERLAP_MS, end)?;
            self.backoff.succeeded();
            self.state.range = Some(RangeInProgress { end_ms: end, ids, fetched: 0 });
            out.advanced = true;
        }
        let range = self.state.range.as_ref().expect("a range is set above");
        let (end, mut fetched, ids) = (range.end_ms, range.fetched, range.ids.clone());
        while fetched < ids.len() && Instant::now() < deadline {
            let chunk = &ids[fetched..(fetched + BATCH).min(ids.len())];
            self.client()?;
            let got = self.batch_get(chunk)?;
            self.backoff.succeeded();
            self.emit(&got, sink, out);
            fetched += chunk.len();
            if let Some(r) = self.state.range.as_mut() {
                r.fetched = fetched;
            }
            out.advanced = true;
        }
        if fetched >= ids.len() {
            // Ids of the range's last two seconds (or of no readable second).
            let recent = ids
                .into_iter()
                .filter(|id| trace_second(id).is_none_or(|s| s * 1000 >= end - 2 * OVERLAP_MS))
                .collect();
            self.state = XRayCheckpoint { next_ms: end, range: None, recent };
            out.advanced = true;
        }
        Ok(())
    }

    /// The ids of the traces that started in `[start, end)`, at most `max_traces_per_poll`.
    fn list(&mut self, start: i64, end: i64) -> Result<Vec<String>, CallError> {
        let mut ids = self.trace_ids(start, end)?;
        ids.retain(|id| !self.state.recent.contains(id));
        let cap = self.cfg.max_traces_per_poll as usize;
        if ids.len() > cap {
            let skipped = ids.len() - cap;
            self.stats.skipped += skipped as u64;
            tracing::warn!(
                source = %self.cfg.name,
                skipped,
                kept = cap,
                "more traces in one range than max_traces_per_poll; the rest are skipped (lower max_range_per_poll or raise the cap)"
            );
        }
        Ok(ids.into_iter().take(cap).collect())
    }

    /// GetTraceSummaries over `[start, end)`, every page; ids in the order X-Ray gives them, once each.
    fn trace_ids(&self, start: i64, end: i64) -> Result<Vec<String>, CallError> {
        let (sdk, client) = self.sdk.as_ref().expect("client made before the calls");
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let req = client
                .get_trace_summaries()
                .start_time(DateTime::from_millis(start))
                .end_time(DateTime::from_millis(end))
                .time_range_type(TimeRangeType::TraceId)
                .set_filter_expression(self.cfg.filter.clone())
                .set_next_token(token.clone());
            let resp = match sdk.call(req.send()) {
                None => return Err(CallError::timed_out()),
                Some(r) => r.map_err(|e| CallError::from_sdk(&e))?,
            };
            for s in resp.trace_summaries() {
                if let Some(id) = s.id()
                    && seen.insert(id.to_string())
                {
                    ids.push(id.to_string());
                }
            }
            match resp.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(ids),
            }
        }
        Err(CallError {
            kind: ErrorKind::Other,
            message: format!("GetTraceSummaries still had pages after {MAX_PAGES}; lower max_range_per_poll"),
        })
    }

    /// BatchGetTraces in calls of at most [`BATCH`] ids, each paged through, and decompose.
    fn batch_get(&mut self, ids: &[String]) -> Result<Fetched, CallError> {
        let (sdk, client) = self.sdk.as_ref().expect("client made before the calls");
        let mut out = Fetched::default();
        for chunk in ids.chunks(BATCH) {
            let mut token: Option<String> = None;
            let mut returned = HashSet::new();
            for page in 0.. {
                if page == MAX_PAGES {
                    return Err(CallError {
                        kind: ErrorKind::Other,
                        message: format!("BatchGetTraces still had pages after {MAX_PAGES}"),
                    });
                }
                let req = client.batch_get_traces().set_trace_ids(Some(chunk.to_vec())).set_next_token(token.clone());
                let resp = match sdk.call(req.send()) {
                    None => return Err(CallError::timed_out()),
                    Some(r) => r.map_err(|e| CallError::from_sdk(&e))?,
                };
                for trace in resp.traces() {
                    let Some(id) = trace.id() else { continue };
                    if !returned.insert(id.to_string()) {
                        continue;
                    }
                    let docs: Vec<&str> = trace.segments().iter().filter_map(|s| s.document()).collect();
                    match decompose(id, &docs) {
                        Ok(t) => out.requests.push(t),
                        Err(e) => out.errors.push(e),
                    }
                }
                out.unprocessed.extend(resp.unprocessed_trace_ids().iter().cloned());
                match resp.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    /// Fetch and decompose the traces of `ids` (API Gateway's `xrayTraceId`,
    /// a probe's `X-Amzn-Trace-Id` root; see `hops::xray::root_trace_id`),
    /// at most `max_traces_per_poll` of them, once each. Errors are the
    /// first failed call's; nothing is retried.
    pub fn fetch_traces<I, S>(&mut self, ids: I) -> Result<Fetched, CallError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut seen = HashSet::new();
        let ids: Vec<String> = ids
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .filter(|s| seen.insert(s.clone()))
            .take(self.cfg.max_traces_per_poll as usize)
            .collect();
        self.client()?;
        self.batch_get(&ids)
    }

    fn emit(&mut self, fetched: &Fetched, sink: &mut dyn EventSink, out: &mut PollOutcome) {
        for t in &fetched.requests {
            let service = if !self.cfg.service.is_empty() {
                self.cfg.service.as_str()
            } else if !t.api.is_empty() {
                t.api.split('/').next().unwrap_or("")
            } else {
                t.function.as_str()
            };
            sink.event(&event_of(t, service));
            out.lines += 1;
        }
        self.stats.unprocessed += fetched.unprocessed.len() as u64;
        for e in &fetched.errors {
            self.stats.undecomposed += 1;
            let (reason, id) = match e {
                TraceError::TooLarge { trace_id, .. } => (RejectReason::TooLong, trace_id),
                TraceError::NotASegment { trace_id, .. } => (RejectReason::BadJson, trace_id),
                TraceError::NothingToDecompose { trace_id } => (RejectReason::MissingField, trace_id),
            };
            out.rejects.record(reason, || format!("{}:{id}", self.cfg.name), e.to_string().as_bytes());
        }
    }

    pub fn checkpoint(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).expect("checkpoint serializes")
    }
}

/// The epoch second a trace id carries (`1-5759e988-…`).
fn trace_second(id: &str) -> Option<i64> {
    let hex = id.strip_prefix("1-")?.get(..8)?;
    i64::from_str_radix(hex, 16).ok()
}

/// The event of one traced request (see the module docs).
pub fn event_of<'a>(t: &'a TracedRequest, service: &'a str) -> RequestEvent<'a> {
    let outcome = match t.status {
        0 => Outcome::Unknown,
        429 => Outcome::Throttled,
        500.. => Outcome::Error,
        _ => Outcome::Success,
    };
    RequestEvent {
        ts_ms: t.start_ms,
        origin: Some(Origin::XRay),
        service,
        host: &t.host,
        path: &t.path,
        method: &t.method,
        status: t.status,
        latency_ms: t.response_ms.or(t.lambda_ms),
        upstream_latency_ms: if t.response_ms.is_some() { t.integration_ms } else { None },
        request_id: &t.request_id,
        trace_id: &t.trace_id,
        upstream_request_id: &t.lambda_request_id,
        outcome,
        init_ms: t.init_ms,
        lambda_overhead_ms: t.lambda_overhead_ms,
        invocation_ms: t.invocation_ms,
        ..Default::default()
    }
}

impl Source for XRaySource {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn kind(&self) -> &'static str {
        "xray"
    }

    fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome {
        XRaySource::poll(self, sink)
    }

    fn checkpoint(&self) -> Vec<u8> {
        XRaySource::checkpoint(self)
    }
}
