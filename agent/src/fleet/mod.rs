//! The fleet's figures for the deploy freeze (`freeze.source: prometheus`),
//! read from a Prometheus-compatible query API (Prometheus, Mimir, Thanos,
//! Amazon Managed Prometheus behind a SigV4 proxy) that scrapes every agent
//! and evaluates the rules `slo-agent rules` generates.
//!
//! [`run`] is a task on the async runtime: every `interval` it asks the
//! queries of [`crate::freeze::fleet::queries`] for the SLOs the state
//! thread last handed it, and publishes a [`Reading`] (the last good
//! figures, and the last error) on a watch channel. The state thread reads
//! the newest reading at every tick and decides from it; it never waits for
//! the network.
//!
//! Bounded: one reading (all its queries) within `timeout`, each answer at
//! most [`MAX_ANSWER_BYTES`], no redirects, no retries but the next reading.
//!
//! **Architecture invariant:** the client only reads figures; the freeze is
//! decided by `freeze::Freezer` on the state thread, as for local figures.

pub mod config;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::freeze::fleet::{Figures, Read, Sample, Target, assemble, parse_vector, queries};
use crate::telemetry::Telemetry;
use crate::telemetry::events as ev;

/// The largest answer to one query that is read.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;
/// The longest bearer token file read.
const MAX_TOKEN_BYTES: u64 = 64 << 10;

/// `freeze:` in agent.yaml.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FreezeConfig {
    pub source: FreezeSource,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub enum FreezeSource {
    /// This agent's own counts and alerts.
    #[default]
    Local,
    Prometheus(PrometheusConfig),
}

/// `freeze.prometheus`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// The query API base, without a trailing `/`; `/api/v1/query` is appended.
    pub url: String,
    /// Read again at every reading, so a rotated token is picked up.
    pub bearer_token_file: Option<PathBuf>,
    pub headers: Vec<(String, String)>,
    /// One reading, all its queries.
    pub timeout: Duration,
    pub interval: Duration,
}

impl PrometheusConfig {
    /// How often to read: `interval`, but never more often than the tick.
    pub fn every(&self, tick: Duration) -> Duration {
        self.interval.max(tick)
    }

    /// How old the last good figures may be before the answer is 503.
    pub fn stale_after(&self, tick: Duration) -> Duration {
        self.every(tick) * 3 + self.timeout
    }
}

/// A bearer token file's token.
fn read_token(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_BYTES).read_to_string(&mut text))
        .map_err(|e| format!("cannot read `{}` (the Prometheus bearer token): {e}", path.display()))?;
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("`{}` (the Prometheus bearer token) is empty", path.display()));
    }
    Ok(t.to_string())
}

/// Why a reading failed; `kind` is the metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("cannot reach {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP {status} from {url}: {text}")]
    Status { url: String, status: u16, text: String },
    #[error("bad answer to `{query}`: {why}")]
    BadAnswer { query: String, why: String },
    #[error("{0}")]
    Token(String),
}

impl ReadError {
    pub fn kind(&self) -> &'static str {
        match self {
            ReadError::Unreachable { .. } => "unreachable",
            ReadError::Timeout(_) => "timeout",
            ReadError::Status { .. } => "http_status",
            ReadError::BadAnswer { .. } => "bad_answer",
            ReadError::Token(_) => "token",
        }
    }
}

/// What the state thread reads at each tick.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// The last figures read in full.
    pub figures: Option<Arc<Figures>>,
    /// The last reading's error, while readings fail.
    pub error: Option<String>,
}

/// Asks a query API for the fleet's figures.
pub struct PrometheusReader {
    config: PrometheusConfig,
    endpoint: reqwest::Url,
    http: reqwest::Client,
}

impl PrometheusReader {
    pub fn new(config: PrometheusConfig) -> Result<PrometheusReader, String> {
        let endpoint = reqwest::Url::parse(&format!("{}/api/v1/query", config.url))
            .map_err(|e| format!("`freeze.prometheus.url`: {e}"))?;
        let http = reqwest::Client::builder()
            // A redirect could carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("slo-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| format!("the HTTP client: {e}"))?;
        Ok(PrometheusReader { config, endpoint, http })
    }

    /// Every target's figures, or the first failure; within `timeout`.
    pub async fn read(&self, targets: &[Target], read_at_ms: i64) -> Result<Figures, ReadError> {
        let timeout = self.config.timeout;
        tokio::time::timeout(timeout, self.read_all(targets, read_at_ms))
            .await
            .unwrap_or(Err(ReadError::Timeout(timeout)))
    }

    async fn read_all(&self, targets: &[Target], read_at_ms: i64) -> Result<Figures, ReadError> {
        let token = match &self.config.bearer_token_file {
            Some(p) => Some(read_token(p).map_err(ReadError::Token)?),
            None => None,
        };
        let mut answers: Vec<(Read, Vec<Sample>)> = Vec::new();
        for q in queries(targets) {
            answers.push((q.read, self.query(token.as_deref(), &q.promql).await?));
        }
        Ok(assemble(targets, &answers, read_at_ms))
    }

    /// One instant query, POSTed as a form (a thousand SLO ids do not fit a URL).
    async fn query(&self, token: Option<&str>, promql: &str) -> Result<Vec<Sample>, ReadError> {
        let url = self.endpoint.as_str().to_string();
        let mut form = reqwest::Url::parse("form:").expect("a static URL");
        form.query_pairs_mut().append_pair("query", promql);
        let mut req = self
            .http
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form.query().unwrap_or_default().to_string());
        for (k, v) in &self.config.headers {
            req = req.header(k, v);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| ReadError::Unreachable { url: url.clone(), why: e.without_url().to_string() })?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ReadError::Unreachable { url: url.clone(), why: e.without_url().to_string() })?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ReadError::BadAnswer {
                    query: short(promql),
                    why: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        // Prometheus answers bad queries with 400 and its JSON error: that says more.
        if !matches!(status, 200..=299 | 400 | 422) {
            let text = crate::untrusted::Escaped(&String::from_utf8_lossy(&body[..body.len().min(200)])).to_string();
            return Err(ReadError::Status { url, status, text });
        }
        parse_vector(&body).map_err(|why| ReadError::BadAnswer { query: short(promql), why })
    }
}

/// A query, cut for messages (the id selector can be long).
fn short(promql: &str) -> String {
    match promql.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &promql[..i]),
        None => promql.to_string(),
    }
}

/// Read the fleet's figures every `every` until the task is aborted: the
/// targets from `targets` (the state thread replaces them on reloads), the
/// readings into `out`.
pub async fn run(
    reader: PrometheusReader,
    every: Duration,
    mut targets: tokio::sync::watch::Receiver<Arc<Vec<Target>>>,
    out: tokio::sync::watch::Sender<Reading>,
    clock: Arc<dyn Clock>,
    telemetry: Arc<Telemetry>,
) {
    ev::FreezeSourceStarted.emit(&telemetry);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let t = targets.borrow_and_update().clone();
        let result = reader.read(&t, clock.now_ms()).await;
        out.send_modify(|r| match result {
            Ok(f) => {
                if r.error.take().is_some() {
                    tracing::info!(url = %reader.config.url, "the fleet's figures are read from Prometheus again");
                }
                r.figures = Some(Arc::new(f));
            }
            Err(e) => {
                let error = e.to_string();
                ev::FreezeSourceFailed { kind: e.kind(), url: &reader.config.url, error: &error }.emit(&telemetry);
                r.error = Some(error);
            }
        });
    }
}

#[cfg(test)]
mod tests;
