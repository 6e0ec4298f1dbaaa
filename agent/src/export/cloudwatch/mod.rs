//! CloudWatch export of every SLO's figures (`export.cloudwatch:`,
//! docs/cloudwatch.md), so that CloudWatch alarms and dashboards, and through
//! them an ECS deployment circuit breaker or CodeDeploy, can use them.
//!
//! | file | what it does |
//! | --- | --- |
//! | `mod.rs` | the figures an export carries ([`Figures`] → [`Export`]), what was sent ([`Sent`]), batching, the exporter task ([`run`]) |
//! | [`config`] | the `export.cloudwatch:` section |
//! | [`emf`] | Embedded Metric Format documents (stdout or a file; no AWS call) |
//! | `put.rs` | PutMetricData calls (the `aws` feature) |
//!
//! Metrics, in namespace `SloAgent` by default, each with the dimensions
//! `Service` and `SLO` (and the configured fixed ones):
//!
//! | metric | unit | value |
//! | --- | --- | --- |
//! | `SLI` | None | the SLI over the SLO window (0–1); absent while the window has no events |
//! | `ErrorBudgetRemaining` | None | error budget left in the SLO window (1 untouched, below 0 overspent) |
//! | `Events`, `GoodEvents`, `BadEvents` | Count | events counted since the previous export (sum them per period) |
//! | `BurnRate` (+ dimension `Window`: `5m`, `1h`, …) | None | burn rate over that alert window; absent while it has no events |
//!
//! **Architecture invariant:** the exporter reads the published figures (a
//! closure over the snapshot the runtime hands it), never the engine, and a
//! failing CloudWatch blocks nothing and grows nothing: an export that fails
//! is counted (`slo_agent_export_failures_total{exporter="cloudwatch"}`),
//! logged at most once per [`LOG_EVERY`], and its event counts are carried
//! into the next export (one [`Counts`] per SLO, however long the outage).
//! At most one write or call is in flight.

pub mod config;
pub mod emf;
#[cfg(feature = "aws")]
mod put;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use config::{CloudWatchExportConfig, CloudWatchMode};

use crate::sli::SloStatus;
use crate::sli::ring::Counts;
use crate::spec::model::Minutes;
use crate::telemetry::Telemetry;
use crate::telemetry::events::{ExportFailed, ExportRecovered, ExportSent};

/// The metric names, as CloudWatch shows them.
pub const SLI: &str = "SLI";
pub const ERROR_BUDGET_REMAINING: &str = "ErrorBudgetRemaining";
pub const EVENTS: &str = "Events";
pub const GOOD_EVENTS: &str = "GoodEvents";
pub const BAD_EVENTS: &str = "BadEvents";
pub const BURN_RATE: &str = "BurnRate";
pub const METRICS: [&str; 6] = [SLI, ERROR_BUDGET_REMAINING, EVENTS, GOOD_EVENTS, BAD_EVENTS, BURN_RATE];

/// PutMetricData takes at most this many data points per call …
pub const MAX_DATA_PER_CALL: usize = 1000;
/// … and at most 1 MB of request: half that, by a generous estimate.
pub const MAX_BYTES_PER_CALL: usize = 512 * 1024;
/// A failing exporter logs at most once per this time (every failure is counted).
pub const LOG_EVERY: Duration = Duration::from_secs(300);

/// The label of this exporter in the agent's own metrics.
const EXPORTER: &str = "cloudwatch";

/// One SLO's figures at one evaluation, as the exporter reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct SloFigures {
    pub slo: String,
    pub service: String,
    pub sli: Option<f64>,
    pub budget_remaining: f64,
    pub burn_rates: Vec<(Minutes, Option<f64>)>,
    /// Events counted for the SLO since the agent started (monotonic).
    pub counted: Counts,
}

/// Every SLO's figures at one evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// The evaluation's time: the data points' timestamp.
    pub at_ms: i64,
    pub slos: Vec<SloFigures>,
}

impl Figures {
    /// The figures of a published evaluation: its statuses and the events
    /// counted per SLO.
    pub fn of(at_ms: i64, statuses: &[SloStatus], counted: &[(String, Counts)]) -> Figures {
        let slos = statuses
            .iter()
            .map(|s| SloFigures {
                slo: s.slo.name.clone(),
                service: s.slo.service.clone(),
                sli: s.sli,
                budget_remaining: s.budget_remaining(),
                burn_rates: s.burn_rates.clone(),
                counted: counted.iter().find(|(n, _)| *n == s.slo.name).map(|(_, c)| *c).unwrap_or_default(),
            })
            .collect();
        Figures { at_ms, slos }
    }
}

/// The unit of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::None => "None",
        }
    }
}

/// One value of one metric of one SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub metric: &'static str,
    pub unit: Unit,
    pub value: f64,
    /// The `Window` dimension (burn rates only).
    pub window: Option<Minutes>,
}

/// One SLO's data points of one export. They go out together (never split
/// between two calls), so that its counts are either sent or carried over.
#[derive(Debug, Clone, PartialEq)]
pub struct SloExport {
    pub slo: String,
    pub service: String,
    pub data: Vec<Datum>,
    /// The SLO's counted events once these data points are sent.
    pub counted: Counts,
}

/// What one export sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub at_ms: i64,
    pub slos: Vec<SloExport>,
}

impl Export {
    pub fn data_points(&self) -> usize {
        self.slos.iter().map(|s| s.data.len()).sum()
    }

    /// The SLOs in groups of at most `max_points` data points and about
    /// `max_bytes` of request each (an SLO over either alone), in order;
    /// indexes into `slos`. `extra_bytes`: the fixed dimensions' names and
    /// values, which every data point carries.
    pub fn batches(&self, max_points: usize, max_bytes: usize, extra_bytes: usize) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = Vec::new();
        let (mut points, mut bytes) = (0, 0);
        for (i, s) in self.slos.iter().enumerate() {
            let n = s.data.len();
            let b = s.size_estimate(extra_bytes);
            match out.last_mut() {
                Some(batch) if points + n <= max_points && bytes + b <= max_bytes => {
                    batch.push(i);
                    points += n;
                    bytes += b;
                }
                _ => {
                    out.push(vec![i]);
                    (points, bytes) = (n, b);
                }
            }
        }
        out
    }
}

impl SloExport {
    /// A generous estimate of the bytes this SLO's data points take in a
    /// PutMetricData request: names, dimension names and values, and 64
    /// bytes of value, timestamp, unit and framing each.
    pub fn size_estimate(&self, extra_bytes: usize) -> usize {
        let dims = "ServiceSLOWindow".len() + self.service.len() + self.slo.len() + "3d".len() + extra_bytes;
        self.data.iter().map(|d| 64 + d.metric.len() + dims).sum()
    }
}

/// What has been sent of each SLO's counted events: an export sends the
/// difference, and a failed export leaves it to the next one.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sent(BTreeMap<String, Counts>);

impl Sent {
    /// The events counted since the last sent figure. A count below what was
    /// sent (an SLO reset by a spec change) starts again from zero.
    pub fn delta(&self, slo: &str, now: Counts) -> Counts {
        match self.0.get(slo) {
            Some(s) if s.total <= now.total && s.good <= now.good => {
                Counts { good: now.good - s.good, total: now.total - s.total }
            }
            _ => now,
        }
    }

    pub fn commit(&mut self, slo: &str, counted: Counts) {
        self.0.insert(slo.to_string(), counted);
    }

    /// Forget SLOs that are gone (bounded by the SLOs loaded).
    pub fn retain(&mut self, figures: &Figures) {
        self.0.retain(|name, _| figures.slos.iter().any(|s| s.slo == *name));
    }
}

/// The data points of one export: per SLO its SLI, budget, event counts
/// since `sent`, and the configured windows' burn rates. Values CloudWatch
/// would refuse (NaN, infinities) are left out, and so are figures without
/// data (an SLI or burn rate over an empty window).
pub fn export(figures: &Figures, cfg: &CloudWatchExportConfig, sent: &Sent) -> Export {
    let slos = figures
        .slos
        .iter()
        .map(|s| {
            let d = |metric, unit, value: f64, window| Datum { metric, unit, value, window };
            let mut data = Vec::with_capacity(5 + cfg.windows.len());
            if let Some(v) = s.sli {
                data.push(d(SLI, Unit::None, v, None));
            }
            data.push(d(ERROR_BUDGET_REMAINING, Unit::None, s.budget_remaining, None));
            let new = sent.delta(&s.slo, s.counted);
            data.push(d(EVENTS, Unit::Count, new.total as f64, None));
            data.push(d(GOOD_EVENTS, Unit::Count, new.good as f64, None));
            data.push(d(BAD_EVENTS, Unit::Count, new.bad() as f64, None));
            for w in &cfg.windows {
                if let Some((_, Some(b))) = s.burn_rates.iter().find(|(m, _)| m == w) {
                    data.push(d(BURN_RATE, Unit::None, *b, Some(*w)));
                }
            }
            data.retain(|x| x.value.is_finite());
            SloExport { slo: s.slo.clone(), service: s.service.clone(), data, counted: s.counted }
        })
        .collect();
    Export { at_ms: figures.at_ms, slos }
}

/// A dimension value CloudWatch accepts: printable ASCII, 1 to 1024
/// characters. Other characters become `_` (SLO and service names are
/// free text; CloudWatch refuses a whole call over one bad value).
pub fn dimension_value(s: &str) -> Cow<'_, str> {
    let ok = |c: char| c.is_ascii_graphic() || c == ' ';
    if !s.is_empty() && s.len() <= 1024 && s.chars().all(ok) && !s.trim().is_empty() {
        return Cow::Borrowed(s);
    }
    let mut out: String = s.chars().take(1024).map(|c| if ok(c) { c } else { '_' }).collect();
    if out.trim().is_empty() {
        out = "_".into();
    }
    Cow::Owned(out)
}

/// Why a write or call failed, from a bounded set (a metric label), and what was said.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: &'static str,
    pub message: String,
}

/// What one export achieved: the SLOs whose data points were delivered, and
/// the failure that stopped the rest.
#[derive(Debug, Default)]
struct Outcome {
    delivered: Vec<usize>,
    failure: Option<Failure>,
}

/// Where the data points go.
enum Sink {
    Emf(emf::EmfSink),
    #[cfg(feature = "aws")]
    Put(put::PutSink),
}

impl Sink {
    async fn new(cfg: &CloudWatchExportConfig) -> Sink {
        match &cfg.mode {
            CloudWatchMode::Emf { file } => Sink::Emf(emf::EmfSink::new(file.clone())),
            #[cfg(feature = "aws")]
            CloudWatchMode::PutMetricData(conn) => Sink::Put(put::PutSink::new(conn).await),
            #[cfg(not(feature = "aws"))]
            CloudWatchMode::PutMetricData(_) => {
                // The config refuses it in such a build; a hand-made config falls back.
                tracing::error!("export.cloudwatch: this build has no AWS support; writing EMF to stdout instead");
                Sink::Emf(emf::EmfSink::new(None))
            }
        }
    }

    async fn send(&self, cfg: &CloudWatchExportConfig, export: &Export) -> Outcome {
        match self {
            Sink::Emf(s) => {
                let text = emf::lines(export, cfg);
                match s.write(text, cfg.interval.min(Duration::from_secs(10))).await {
                    Ok(()) => Outcome { delivered: (0..export.slos.len()).collect(), failure: None },
                    Err(f) => Outcome { delivered: Vec::new(), failure: Some(f) },
                }
            }
            #[cfg(feature = "aws")]
            Sink::Put(s) => {
                let mut out = Outcome::default();
                let extra: usize = cfg.dimensions.iter().map(|(k, v)| k.len() + v.len()).sum();
                for batch in export.batches(MAX_DATA_PER_CALL, MAX_BYTES_PER_CALL, extra) {
                    match s.put(cfg, export, &batch).await {
                        Ok(()) => out.delivered.extend(batch),
                        Err(f) => {
                            // The rest waits for the next export: one failing
                            // call per interval, not one per batch.
                            out.failure = Some(f);
                            break;
                        }
                    }
                }
                out
            }
        }
    }
}

/// Logs a failing exporter at most once per [`LOG_EVERY`], and its recovery.
#[derive(Debug, Default)]
struct FailureLog {
    in_a_row: u64,
    suppressed: u64,
    last_logged: Option<tokio::time::Instant>,
}

impl FailureLog {
    /// Whether to log this failure, and how many were not logged before it.
    fn failed(&mut self, now: tokio::time::Instant) -> Option<u64> {
        self.in_a_row += 1;
        if self.last_logged.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Failures in a row before this success (0: none).
    fn succeeded(&mut self) -> u64 {
        self.suppressed = 0;
        self.last_logged = None;
        std::mem::take(&mut self.in_a_row)
    }
}

/// The exporter: every `interval`, the latest figures `read` returns (none
/// before the first evaluation) go to CloudWatch. Runs until aborted.
pub async fn run<F>(cfg: CloudWatchExportConfig, read: F, telemetry: Arc<Telemetry>)
where
    F: Fn() -> Option<Figures> + Send + 'static,
{
    let sink = Sink::new(&cfg).await;
    tracing::info!(
        mode = cfg.mode.as_str(),
        namespace = %cfg.namespace,
        interval_s = cfg.interval.as_secs_f64(),
        "exporting SLO figures to CloudWatch"
    );
    let mut sent = Sent::default();
    let mut log = FailureLog::default();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + cfg.interval, cfg.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(figures) = read() else { continue };
        sent.retain(&figures);
        let export = export(&figures, &cfg, &sent);
        let outcome = sink.send(&cfg, &export).await;
        let mut points = 0;
        for &i in &outcome.delivered {
            let s = &export.slos[i];
            sent.commit(&s.slo, s.counted);
            points += s.data.len();
        }
        ExportSent { exporter: EXPORTER, data_points: points as u64 }.emit(&telemetry);
        match outcome.failure {
            Some(f) => {
                let log_it = log.failed(tokio::time::Instant::now());
                ExportFailed {
                    exporter: EXPORTER,
                    kind: f.kind,
                    error: &f.message,
                    failures_in_a_row: log.in_a_row,
                    logged: log_it,
                }
                .emit(&telemetry);
            }
            None => {
                let after = log.succeeded();
                if after > 0 {
                    ExportRecovered { exporter: EXPORTER, after_failures: after }.emit(&telemetry);
                }
            }
        }
    }
}
