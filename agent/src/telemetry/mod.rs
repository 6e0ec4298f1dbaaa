//! The agent's own telemetry: structured logs, and the metrics about the
//! agent itself (`slo_agent_ingest_*`, `slo_agent_store_*`, …).
//!
//! Every fact the agent reports about itself is a typed event
//! ([`events`]): a struct that, when emitted, writes one log line (or none,
//! on hot paths where the counter says it all) and changes one metric in the
//! [`Telemetry`] registry. The exporter renders the registry; the API and
//! the demo read values from it. Nothing else keeps figures of its own.
//!
//! Metric names are `slo_agent_<noun>_<unit>`; label values come from bounded
//! sets (source names, receiver names, reasons from fixed lists).
//!
//! **Architecture invariant:** a leaf: this module imports nothing of the
//! crate but other leaves (`untrusted`, `timefmt`).

pub mod events;

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The agent's logs: structured `tracing`, level from `SLO_AGENT_LOG`
/// (default `info`), to stderr.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLO_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // A log that cannot be written (a full disk under a log file) must
        // not take the agent down: tracing-subscriber would report it with
        // `eprintln!`, which panics when stderr fails.
        .log_internal_errors(false)
        .try_init();
}

/// What kind of value a metric holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Set to the latest value.
    Gauge,
    /// A gauge holding a time (ms since the epoch), exported as the seconds
    /// from it to now (a lag).
    AgeOf,
}

/// One metric: its name as exported (counters without `_total`) and help.
#[derive(Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

/// Label pairs, in the order they are exported.
pub type Labels = Vec<(&'static str, String)>;

/// The registry of the agent's own metrics. Cheap to update from any thread
/// (one short lock); updates are made per batch, never per event.
#[derive(Debug, Default)]
pub struct Telemetry {
    values: Mutex<BTreeMap<&'static str, Family>>,
}

#[derive(Debug)]
struct Family {
    metric: &'static Metric,
    series: BTreeMap<Labels, f64>,
}

/// Whether every pair of `want` is among the labels.
fn matches(labels: &Labels, want: &[(&'static str, &str)]) -> bool {
    want.iter().all(|(k, v)| labels.iter().any(|(k2, v2)| k == k2 && v == v2))
}

/// A metric's series, as the exporter reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyView {
    pub metric: &'static Metric,
    pub series: Vec<(Labels, f64)>,
}

impl Telemetry {
    fn with<R>(&self, metric: &'static Metric, labels: Labels, f: impl FnOnce(&mut f64) -> R) -> R {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let family = values.entry(metric.name).or_insert_with(|| Family { metric, series: BTreeMap::new() });
        f(family.series.entry(labels).or_insert(0.0))
    }

    /// Add to a counter (creating the series at 0 first).
    pub fn add(&self, metric: &'static Metric, labels: Labels, by: u64) {
        debug_assert_eq!(metric.kind, Kind::Counter, "{}", metric.name);
        self.with(metric, labels, |v| *v += by as f64);
    }

    /// Set a gauge.
    pub fn set(&self, metric: &'static Metric, labels: Labels, value: f64) {
        debug_assert_ne!(metric.kind, Kind::Counter, "{}", metric.name);
        self.with(metric, labels, |v| *v = value);
    }

    /// Set a gauge to the larger of its value and `value`.
    pub fn raise(&self, metric: &'static Metric, labels: Labels, value: f64) {
        self.with(metric, labels, |v| *v = v.max(value));
    }

    /// A series' value (0 when it was never touched).
    pub fn value(&self, metric: &'static Metric, labels: &[(&'static str, &str)]) -> f64 {
        self.fold(metric, |l| l.len() == labels.len() && matches(l, labels))
    }

    /// The sum of a metric's series whose labels include `filter`.
    pub fn sum(&self, metric: &'static Metric, filter: &[(&'static str, &str)]) -> f64 {
        self.fold(metric, |l| matches(l, filter))
    }

    fn fold(&self, metric: &'static Metric, keep: impl Fn(&Labels) -> bool) -> f64 {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let Some(family) = values.get(metric.name) else { return 0.0 };
        family.series.iter().filter(|(l, _)| keep(l)).map(|(_, v)| *v).sum()
    }

    /// Every family, in name order.
    pub fn families(&self) -> Vec<FamilyView> {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values
            .values()
            .map(|f| FamilyView { metric: f.metric, series: f.series.iter().map(|(l, v)| (l.clone(), *v)).collect() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static LINES: Metric = Metric { name: "t_lines", help: "Lines.", kind: Kind::Counter };
    static DEPTH: Metric = Metric { name: "t_depth", help: "Depth.", kind: Kind::Gauge };

    #[test]
    fn counters_add_gauges_set_and_reads_find_series() {
        let t = Telemetry::default();
        t.add(&LINES, vec![("source", "a".into())], 3);
        t.add(&LINES, vec![("source", "a".into())], 2);
        t.add(&LINES, vec![("source", "b".into())], 1);
        t.set(&DEPTH, vec![], 7.0);
        t.set(&DEPTH, vec![], 4.0);
        assert_eq!(t.value(&LINES, &[("source", "a")]), 5.0);
        assert_eq!(t.sum(&LINES, &[]), 6.0);
        assert_eq!(t.value(&DEPTH, &[]), 4.0);
        assert_eq!(t.value(&LINES, &[("source", "zzz")]), 0.0);
        let names: Vec<&str> = t.families().iter().map(|f| f.metric.name).collect();
        assert_eq!(names, ["t_depth", "t_lines"]);
    }
}
