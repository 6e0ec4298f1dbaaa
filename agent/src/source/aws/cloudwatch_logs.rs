//! CloudWatch Logs pull: FilterLogEvents over each configured log group, the
//! messages fed to that group's decoder with the log event's timestamp as
//! time hint (Lambda `REPORT` lines carry no time of their own).
//!
//! Each log group is read in **windows** of event time: `[start, end]`, both
//! in milliseconds and both inclusive (as FilterLogEvents treats them), with
//! `end` = now − `delay`, and the next window starting at `end + 1`. Windows
//! never overlap, so no event is read twice, and an event is read once its
//! window is read, provided it reached CloudWatch Logs within `delay` of its
//! own timestamp. A window is read page by page; the checkpoint records how
//! many events of the current window were consumed, so a poll that stops in
//! the middle (page limit, error, crash) goes on where it stopped: with the
//! page token in the same process, and after a restart by asking for the
//! window again and skipping what was consumed (a settled window's order is
//! fixed: by time, then stream). Page tokens are not kept in the checkpoint
//! because FilterLogEvents answers an expired token with an empty page, which
//! would silently end the window.
//!
//! Log groups fail independently: a missing group (ResourceNotFound) is
//! logged as an error and retried after a backoff; the others go on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::decode::{Decoder, MAX_LINE, feed_line};
use crate::event::{EventSink, Wanted};
use crate::source::aws::config::CloudWatchLogsConfig;
use crate::source::aws::sdk::{self, Backoff, CallError, Sdk};
use crate::source::aws::{AwsSourceError, read_checkpoint};
use crate::source::{PollOutcome, Source};

/// Time one poll may spend calling AWS before it hands back what it has.
const POLL_BUDGET: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LogsCheckpoint {
    /// Per log group name.
    pub groups: BTreeMap<String, GroupPosition>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GroupPosition {
    /// Every event with a timestamp before this (ms) has been read.
    pub next_start_ms: i64,
    /// The window being read, when a poll stopped before its last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Window {
    pub start_ms: i64,
    /// Inclusive.
    pub end_ms: i64,
    /// Events of this window already handed to the sink.
    pub consumed: u64,
}

struct Group {
    decoder: Box<dyn Decoder>,
    backoff: Backoff,
    /// The next page of the current window, valid in this process only.
    token: Option<String>,
    /// Without a token, the current window is read from its first page and
    /// this many events (already consumed) are passed over, across polls.
    skip: u64,
}

pub struct CloudWatchLogsSource {
    cfg: CloudWatchLogsConfig,
    state: LogsCheckpoint,
    groups: BTreeMap<String, Group>,
    clock: Arc<dyn Clock>,
    sdk: Option<(Sdk, aws_sdk_cloudwatchlogs::Client)>,
    setup: Backoff,
    next_due: Option<Instant>,
}

impl CloudWatchLogsSource {
    pub fn new(
        cfg: CloudWatchLogsConfig,
        checkpoint: Option<&[u8]>,
        clock: Arc<dyn Clock>,
    ) -> Result<CloudWatchLogsSource, AwsSourceError> {
        let mut state: LogsCheckpoint = read_checkpoint(&cfg.name, checkpoint)?;
        let fresh_start = clock.now_ms() - cfg.start.as_millis() as i64;
        let mut groups = BTreeMap::new();
        for g in &cfg.log_groups {
            let decoder = g.format.decoder(&g.service).ok_or_else(|| AwsSourceError::Config {
                source_name: cfg.name.clone(),
                message: format!("format {:?} has no line decoder", g.format),
            })?;
            let seed = sdk::jitter_seed(&format!("{}/{}", cfg.name, g.name));
            let pos = state
                .groups
                .entry(g.name.clone())
                .or_insert_with(|| GroupPosition { next_start_ms: fresh_start, window: None });
            let skip = pos.window.map_or(0, |w| w.consumed);
            groups.insert(g.name.clone(), Group { decoder, backoff: Backoff::new(seed), token: None, skip });
        }
        // Groups no longer configured are forgotten.
        state.groups.retain(|k, _| groups.contains_key(k));
        let setup = Backoff::new(sdk::jitter_seed(&cfg.name));
        Ok(CloudWatchLogsSource { cfg, state, groups, clock, sdk: None, setup, next_due: None })
    }

    pub fn state(&self) -> &LogsCheckpoint {
        &self.state
    }

    fn client(&mut self) -> Option<&aws_sdk_cloudwatchlogs::Client> {
        if self.sdk.is_none() {
            if self.setup.waiting() {
                return None;
            }
            match Sdk::new(&self.cfg.aws) {
                Ok(s) => {
                    let client = aws_sdk_cloudwatchlogs::Client::new(&s.config);
                    self.sdk = Some((s, client));
                }
                Err(e) => {
                    let wait = self.setup.failed();
                    tracing::error!(source = %self.cfg.name, error = %e, retry_in_s = wait.as_secs_f64(), "cannot start the AWS client runtime");
                    return None;
                }
            }
        }
        self.sdk.as_ref().map(|(_, c)| c)
    }

    /// Read pages of each group's window, up to the page and time limits.
    pub fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome {
        let mut out = PollOutcome { files: self.cfg.log_groups.len(), ..PollOutcome::default() };
        if self.next_due.is_some_and(|d| Instant::now() < d) {
            return out;
        }
        if self.client().is_none() {
            return out;
        }
        let deadline = Instant::now() + POLL_BUDGET;
        let now_ms = self.clock.now_ms();
        let names: Vec<String> = self.cfg.log_groups.iter().map(|g| g.name.clone()).collect();
        for name in names {
            if Instant::now() >= deadline {
                out.more = true;
                break;
            }
            self.poll_group(&name, now_ms, deadline, sink, &mut out);
        }
        self.next_due = if out.more { None } else { Some(Instant::now() + self.cfg.poll_interval) };
        out
    }

    fn poll_group(
        &mut self,
        name: &str,
        now_ms: i64,
        deadline: Instant,
        sink: &mut dyn EventSink,
        out: &mut PollOutcome,
    ) {
        let Some((sdk, client)) = self.sdk.as_ref() else { return };
        let (Some(group), Some(pos)) = (self.groups.get_mut(name), self.state.groups.get_mut(name)) else { return };
        if group.backoff.waiting() {
            return;
        }
        let newest_end = now_ms - self.cfg.delay.as_millis() as i64;
        for _ in 0..self.cfg.max_pages_per_poll {
            if Instant::now() >= deadline {
                out.more = true;
                return;
            }
            let w = match pos.window {
                Some(w) => w,
                None => {
                    if newest_end < pos.next_start_ms {
                        return; // nothing settled yet
                    }
                    let w = Window { start_ms: pos.next_start_ms, end_ms: newest_end, consumed: 0 };
                    pos.window = Some(w);
                    w
                }
            };
            let req = client
                .filter_log_events()
                .log_group_name(name)
                .start_time(w.start_ms)
                .end_time(w.end_ms)
                .limit(self.cfg.page_size as i32)
                .set_next_token(group.token.clone());
            let result = match sdk.call(req.send()) {
                None => Err(CallError::timed_out()),
                Some(r) => r.map_err(|e| CallError::from_sdk(&e)),
            };
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    out.error(e.kind.as_str());
                    let wait = group.backoff.failed();
                    sdk::log_failure(&self.cfg.name, name, &e, wait, group.backoff.failures());
                    // A token may be what failed; the window is resumed by count.
                    group.token = None;
                    group.skip = pos.window.map_or(0, |w| w.consumed);
                    return;
                }
            };
            group.backoff.succeeded();
            let events = resp.events();
            let skipped = group.skip.min(events.len() as u64) as usize;
            group.skip -= skipped as u64;
            let decoder = group.decoder.as_mut();
            for ev in &events[skipped..] {
                let (Some(ts), Some(message)) = (ev.timestamp(), ev.message()) else { continue };
                decoder.set_time_hint(Some(ts));
                let stream = ev.log_stream_name().unwrap_or("");
                for line in message.as_bytes().split(|&b| b == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line.is_empty() {
                        continue;
                    }
                    out.lines += 1;
                    let overlong = line.len() > MAX_LINE;
                    let place = || format!("{name} {stream}");
                    feed_line(decoder, &line[..line.len().min(MAX_LINE)], overlong, sink, &mut out.rejects, place);
                }
                out.bytes += message.len() as u64;
            }
            decoder.set_time_hint(None);
            let consumed = w.consumed + (events.len() - skipped) as u64;
            match resp.next_token() {
                Some(t) if events.is_empty() && group.token.as_deref() == Some(t) => {
                    // The same token again and nothing read: try later.
                    return;
                }
                Some(t) => {
                    group.token = Some(t.to_string());
                    pos.window = Some(Window { consumed, ..w });
                    out.advanced = true;
                }
                None => {
                    // Window done. (Skipped events beyond its end would mean
                    // events were deleted since: nothing more to read then.)
                    group.token = None;
                    group.skip = 0;
                    pos.window = None;
                    pos.next_start_ms = w.end_ms + 1;
                    out.advanced = true;
                    if pos.next_start_ms > newest_end {
                        return;
                    }
                }
            }
        }
        // Page limit hit with more to read.
        out.more = true;
    }

    pub fn checkpoint(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).expect("checkpoint serializes")
    }
}

impl Source for CloudWatchLogsSource {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn kind(&self) -> &'static str {
        "cloudwatch-logs"
    }

    fn set_wanted(&mut self, wanted: Wanted) {
        for g in self.groups.values_mut() {
            g.decoder.want(wanted);
        }
    }

    fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome {
        CloudWatchLogsSource::poll(self, sink)
    }

    fn checkpoint(&self) -> Vec<u8> {
        CloudWatchLogsSource::checkpoint(self)
    }
}
