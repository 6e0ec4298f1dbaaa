//! Log objects in S3 (CloudFront standard logs, or any line format the
//! decoders read): list the keys under a prefix, get each new object once,
//! decompress gzip, decode its lines.
//!
//! Which keys are done is remembered in two parts: a **watermark** (every
//! key that sorts at or before it is done) and the **recent** keys after the
//! watermark that are done, each with its `LastModified`. ListObjectsV2 lists
//! keys in order, so a sweep starts just after the watermark and walks
//! forward; the watermark moves over a key only while every key listed before
//! it in the sweep is done and the key is older than `late_arrival`. A log
//! file delivered late (CloudFront: usually within an hour, rarely up to a
//! day) sorts among older keys, after the watermark, and is still found. The
//! recent set stays bounded by the objects written in `late_arrival`.
//!
//! An object is read whole within one poll and marked done in the same
//! checkpoint that commits its counts: exactly once per object. A sweep's
//! listing position is kept in memory only; after a restart the sweep starts
//! again at the watermark and skips the recent keys.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::decode::{Decoder, GunzipError, MAX_LINE, feed_line, gunzip_bounded};
use crate::event::{EventSink, Wanted};
use crate::source::aws::config::S3Config;
use crate::source::aws::sdk::{self, Backoff, CallError, ErrorKind, Sdk};
use crate::source::aws::{AwsSourceError, read_checkpoint};
use crate::source::{PollOutcome, Source};

const POLL_BUDGET: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct S3Checkpoint {
    /// Every key at or before this one is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    /// Done keys after the watermark, with their `LastModified` (ms).
    #[serde(default)]
    pub recent: BTreeMap<String, i64>,
}

#[derive(Debug, Clone)]
struct Listed {
    key: String,
    size: u64,
    last_modified_ms: i64,
}

/// One walk over the keys after the watermark.
#[derive(Debug, Default)]
struct Sweep {
    /// Listed, not yet looked at.
    pending: VecDeque<Listed>,
    token: Option<String>,
    /// The listing has no more pages.
    listed_all: bool,
    /// Every key looked at so far in this sweep was done and settled, so
    /// the watermark may follow.
    contiguous: bool,
}

pub struct S3Source {
    cfg: S3Config,
    state: S3Checkpoint,
    clock: Arc<dyn Clock>,
    decoder: Box<dyn Decoder>,
    sdk: Option<(Sdk, aws_sdk_s3::Client)>,
    backoff: Backoff,
    sweep: Option<Sweep>,
    next_due: Option<Instant>,
}

impl S3Source {
    pub fn new(cfg: S3Config, checkpoint: Option<&[u8]>, clock: Arc<dyn Clock>) -> Result<S3Source, AwsSourceError> {
        let state = match checkpoint {
            Some(_) => read_checkpoint::<S3Checkpoint>(&cfg.name, checkpoint)?,
            None => S3Checkpoint { watermark: cfg.start_after.clone(), recent: BTreeMap::new() },
        };
        let decoder = cfg.format.decoder(&cfg.service).ok_or_else(|| AwsSourceError::Config {
            source_name: cfg.name.clone(),
            message: format!("format {:?} has no line decoder", cfg.format),
        })?;
        let backoff = Backoff::new(sdk::jitter_seed(&cfg.name));
        Ok(S3Source { cfg, state, clock, decoder, sdk: None, backoff, sweep: None, next_due: None })
    }

    pub fn state(&self) -> &S3Checkpoint {
        &self.state
    }

    fn is_done(&self, key: &str) -> bool {
        self.state.watermark.as_deref().is_some_and(|w| key <= w) || self.state.recent.contains_key(key)
    }

    /// Look at listed keys in order, reading the new ones, up to the object
    /// and time limits.
    pub fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome {
        let mut out = PollOutcome::default();
        if self.backoff.waiting() {
            return out;
        }
        if self.sweep.is_none() {
            if self.next_due.is_some_and(|d| Instant::now() < d) {
                return out;
            }
            self.sweep = Some(Sweep { contiguous: true, ..Sweep::default() });
        }
        if self.sdk.is_none() {
            match Sdk::new(&self.cfg.aws) {
                Ok(s) => {
                    let conf = aws_sdk_s3::config::Builder::from(&s.config)
                        .force_path_style(self.cfg.force_path_style)
                        .build();
                    self.sdk = Some((s, aws_sdk_s3::Client::from_conf(conf)));
                }
                Err(e) => {
                    let wait = self.backoff.failed();
                    tracing::error!(source = %self.cfg.name, error = %e, retry_in_s = wait.as_secs_f64(), "cannot start the AWS client runtime");
                    return out;
                }
            }
        }
        let deadline = Instant::now() + POLL_BUDGET;
        let settled_before = self.clock.now_ms() - self.cfg.late_arrival.as_millis() as i64;
        let mut objects = 0u32;
        loop {
            if Instant::now() >= deadline || objects >= self.cfg.max_objects_per_poll {
                out.more = true;
                break;
            }
            let sweep = self.sweep.as_mut().expect("sweep started above");
            let Some(item) = sweep.pending.pop_front() else {
                if sweep.listed_all {
                    self.sweep = None;
                    self.next_due = Some(Instant::now() + self.cfg.poll_interval);
                    break;
                }
                match self.list_page() {
                    Ok(()) => continue,
                    Err(e) => {
                        self.failed(&e, "ListObjectsV2", &mut out);
                        break;
                    }
                }
            };
            if !self.is_done(&item.key) {
                objects += 1;
                match self.read_object(&item, sink, &mut out) {
                    Ok(()) => {}
                    Err(e) if e.kind == ErrorKind::NotFound => {
                        // Deleted since it was listed: nothing to read, ever.
                        tracing::warn!(source = %self.cfg.name, key = %item.key, "object vanished after listing; skipped");
                        out.error(e.kind.as_str());
                        continue;
                    }
                    Err(e) if e.kind == ErrorKind::BadObject => {
                        // Marked done: reading it again would fail again.
                        tracing::error!(source = %self.cfg.name, key = %item.key, error = %e.message, "object skipped");
                        out.error(e.kind.as_str());
                    }
                    Err(e) => {
                        let sweep = self.sweep.as_mut().expect("sweep started above");
                        sweep.pending.push_front(item.clone());
                        self.failed(&e, &item.key, &mut out);
                        break;
                    }
                }
                self.state.recent.insert(item.key.clone(), item.last_modified_ms);
                out.advanced = true;
            }
            // Move the watermark over settled, contiguous, done keys.
            let sweep = self.sweep.as_mut().expect("sweep started above");
            if sweep.contiguous && item.last_modified_ms < settled_before {
                if self.state.watermark.as_deref().is_none_or(|w| item.key.as_str() > w) {
                    self.state.watermark = Some(item.key.clone());
                    out.advanced = true;
                }
                let w = item.key.clone();
                self.state.recent.retain(|k, _| k.as_str() > w.as_str());
            } else {
                sweep.contiguous = false;
            }
        }
        out.files = self.state.recent.len();
        if out.errors.is_empty() {
            self.backoff.succeeded();
        }
        out
    }

    fn failed(&mut self, e: &CallError, what: &str, out: &mut PollOutcome) {
        out.error(e.kind.as_str());
        let wait = self.backoff.failed();
        let what = format!("s3://{}/{what}", self.cfg.bucket);
        sdk::log_failure(&self.cfg.name, &what, e, wait, self.backoff.failures());
        if e.kind == ErrorKind::NotFound || e.kind == ErrorKind::AccessDenied {
            // Start over when it comes back.
            self.sweep = None;
        }
    }

    fn list_page(&mut self) -> Result<(), CallError> {
        let (sdk, client) = self.sdk.as_ref().expect("client made before listing");
        let sweep = self.sweep.as_mut().expect("sweep started");
        let mut req = client.list_objects_v2().bucket(&self.cfg.bucket).max_keys(1000);
        if !self.cfg.prefix.is_empty() {
            req = req.prefix(&self.cfg.prefix);
        }
        req = match &sweep.token {
            Some(t) => req.continuation_token(t),
            None => req.set_start_after(self.state.watermark.clone()),
        };
        let resp = match sdk.call(req.send()) {
            None => return Err(CallError::timed_out()),
            Some(r) => r.map_err(|e| CallError::from_sdk(&e))?,
        };
        for o in resp.contents() {
            let Some(key) = o.key() else { continue };
            let last_modified_ms = o.last_modified().and_then(|t| t.to_millis().ok()).unwrap_or(i64::MAX);
            sweep.pending.push_back(Listed {
                key: key.to_string(),
                size: o.size().unwrap_or(0).max(0) as u64,
                last_modified_ms,
            });
        }
        sweep.token = resp.next_continuation_token().map(str::to_string);
        sweep.listed_all = sweep.token.is_none() || !resp.is_truncated().unwrap_or(false);
        Ok(())
    }

    fn read_object(&mut self, item: &Listed, sink: &mut dyn EventSink, out: &mut PollOutcome) -> Result<(), CallError> {
        if item.size > self.cfg.max_object_bytes {
            return Err(CallError {
                kind: ErrorKind::BadObject,
                message: format!("{} bytes; max_object_bytes is {}", item.size, self.cfg.max_object_bytes),
            });
        }
        let (sdk, client) = self.sdk.as_ref().expect("client made before reading");
        let req = client.get_object().bucket(&self.cfg.bucket).key(&item.key);
        let body = match sdk.call(async {
            let resp = req.send().await.map_err(|e| CallError::from_sdk(&e))?;
            resp.body
                .collect()
                .await
                .map(|b| b.into_bytes())
                .map_err(|e| CallError { kind: ErrorKind::Connection, message: format!("reading the body: {e}") })
        }) {
            None => return Err(CallError::timed_out()),
            Some(r) => r?,
        };
        let data = if body.starts_with(&[0x1f, 0x8b]) {
            let limit = self.cfg.max_object_bytes;
            gunzip_bounded(&body, limit).map_err(|e| match e {
                GunzipError::Corrupt(e) => CallError { kind: ErrorKind::BadObject, message: format!("gzip: {e}") },
                GunzipError::TooLarge => CallError {
                    kind: ErrorKind::BadObject,
                    message: format!("decompresses to more than max_object_bytes ({limit})"),
                },
            })?
        } else {
            body.to_vec()
        };
        // Each object is a file of its own: its own header.
        self.decoder.reset();
        let decoder = self.decoder.as_mut();
        let key = item.key.as_str();
        let lines = crate::source::lines::split_slice(&data, |l| {
            let bytes = &l.bytes[..l.bytes.len().min(MAX_LINE)];
            let place = || format!("s3://{}/{key}:{}", self.cfg.bucket, l.number);
            feed_line(decoder, bytes, l.overlong, sink, &mut out.rejects, place);
        });
        out.lines += lines;
        out.bytes += body.len() as u64;
        Ok(())
    }

    pub fn checkpoint(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).expect("checkpoint serializes")
    }
}

impl Source for S3Source {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn kind(&self) -> &'static str {
        "s3"
    }

    fn set_wanted(&mut self, wanted: Wanted) {
        self.decoder.want(wanted);
    }

    fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome {
        S3Source::poll(self, sink)
    }

    fn checkpoint(&self) -> Vec<u8> {
        S3Source::checkpoint(self)
    }
}
