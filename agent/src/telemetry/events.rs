//! The agent's own telemetry as typed events. Each event is emitted where
//! the fact happens, writes at most one log line, and changes the metric of
//! its concept in the [`Telemetry`] registry. Hot paths emit per batch.
//!
//! Untrusted text in a log line (samples of rejected lines, receiver
//! answers) is escaped and cut ([`crate::untrusted`]).

use super::{Kind, Labels, Metric, Telemetry};
use crate::untrusted::Escaped;

/// `metric!(ID, "name", Counter|Gauge|…, "help")`: a `pub static` [`Metric`]
/// (the caller has `Metric` and `Kind` in scope). `export::slo` uses it too.
macro_rules! metric {
    ($id:ident, $name:literal, $kind:ident, $help:literal) => {
        pub static $id: Metric = Metric { name: $name, help: $help, kind: Kind::$kind };
    };
}
pub(crate) use metric;

metric!(INGEST_LINES, "slo_agent_ingest_lines", Counter, "Lines read per source");
metric!(INGEST_BYTES, "slo_agent_ingest_bytes", Counter, "Bytes read per source");
metric!(REJECTED_LINES, "slo_agent_rejected_lines", Counter, "Lines that could not be decoded, per source and reason");
metric!(
    INGEST_LAG,
    "slo_agent_ingest_lag_seconds",
    AgeOf,
    "Now minus the time of the newest event read from the source"
);
metric!(INGEST_BACKLOG, "slo_agent_ingest_backlog_bytes", Gauge, "Bytes waiting in the source's files, not read yet");
metric!(SOURCE_FILES, "slo_agent_source_files", Gauge, "Files the source currently follows");
metric!(
    SOURCE_ERRORS,
    "slo_agent_source_errors",
    Counter,
    "Failed calls of a pull source to what it reads (AWS APIs), per error kind; the source backs off after each"
);
metric!(
    PUSH_REQUESTS,
    "slo_agent_push_requests",
    Counter,
    "Push deliveries by result: counted, duplicate (already counted), or why they were refused"
);
metric!(
    UNROUTED_LOG_EVENTS,
    "slo_agent_unrouted_log_events",
    Counter,
    "CloudWatch Logs events of log groups no route of the source covers (counted, not decoded)"
);
metric!(EVENTS, "slo_agent_events", Counter, "Events decoded and handed to the SLI engine");
metric!(UNMATCHED_EVENTS, "slo_agent_unmatched_events", Counter, "Events no SLO counted");
metric!(
    TOO_OLD_EVENTS,
    "slo_agent_too_old_events",
    Counter,
    "Event/SLO pairs dropped because the event was older than the SLO keeps"
);
metric!(
    EXCLUDED_EVENTS,
    "slo_agent_excluded_events",
    Counter,
    "Event/SLO pairs not counted because the event fell in one of the SLO's exclusion windows"
);
metric!(
    FUTURE_EVENTS,
    "slo_agent_future_events",
    Counter,
    "Events dropped because their time was too far ahead of the clock"
);
metric!(STORE_COMMITS, "slo_agent_store_commits", Counter, "Store transactions committed");
metric!(
    TRACE_SPANS_EXPORTED,
    "slo_agent_trace_spans_exported",
    Counter,
    "Spans of the agent's own probes sent over OTLP"
);
metric!(
    TRACE_SPANS_DROPPED,
    "slo_agent_trace_spans_dropped",
    Counter,
    "Spans of the agent's own probes not sent: the queue was full or the export failed"
);
metric!(TRACE_EXPORT_FAILURES, "slo_agent_trace_export_failures", Counter, "OTLP trace exports that failed");
metric!(
    EXPORT_DATA_POINTS,
    "slo_agent_export_data_points",
    Counter,
    "Data points of the SLO figures an exporter delivered (CloudWatch: PutMetricData points or EMF values)"
);
metric!(
    EXPORT_FAILURES,
    "slo_agent_export_failures",
    Counter,
    "Exports of the SLO figures that failed, per exporter and error kind (otlp: unavailable — refused, unreachable or over its timeout; cloudwatch: the AWS error kinds, io, busy, timeout)"
);
metric!(
    SYNTHETIC_DROPPED,
    "slo_agent_synthetic_events_dropped",
    Counter,
    "Synthetic runs whose events were not counted because the state thread's queue was full"
);
metric!(
    STORE_COMMIT_FAILURES,
    "slo_agent_store_commit_failures",
    Counter,
    "Store transactions that failed; the store is reopened and the state read back from it"
);
metric!(STORE_REOPENS, "slo_agent_store_reopens", Counter, "Times the state file was reopened after a failed commit");
metric!(SPEC_RELOADS, "slo_agent_spec_reloads", Counter, "Successful spec reloads");
metric!(
    SPEC_RELOAD_FAILURES,
    "slo_agent_spec_reload_failures",
    Counter,
    "Spec reloads refused because the new specs did not validate"
);
metric!(SLOS, "slo_agent_slos", Gauge, "SLOs loaded");
metric!(EVALUATION_SECONDS, "slo_agent_evaluation_seconds", Gauge, "Time the last evaluation of every SLO took");
metric!(
    SILENCES,
    "slo_agent_silences",
    Gauge,
    "Silences by state: active (muting now), pending (starting later), expired (kept 7 days)"
);
metric!(OUTBOX_DEPTH, "slo_agent_notify_outbox_depth", Gauge, "Alert changes waiting in the outbox for the receiver");
metric!(
    NOTIFICATIONS,
    "slo_agent_notifications",
    Counter,
    "Notification attempts by result: sent, retried (failed, will retry), failed (refused for good), silenced"
);
metric!(
    NOTIFY_LATENCY,
    "slo_agent_notify_latency_seconds",
    Gauge,
    "Seconds from the alert change to the receiver accepting the notification (the last one)"
);
metric!(
    STATUS_PUSH_REQUESTS,
    "slo_agent_status_push_requests",
    Counter,
    "Status push entries by outcome: sent, retried (failed, will retry), failed (refused for good), coalesced (a newer state of the component superseded it), dropped (the queue was full)"
);
metric!(STATUS_PUSH_DEPTH, "slo_agent_status_push_queue_depth", Gauge, "Status push entries waiting in the outbox");
metric!(
    HTTP_REFUSED,
    "slo_agent_http_refused",
    Counter,
    "HTTP requests refused before a handler ran, by route class and reason (busy: too many in flight)"
);
metric!(
    GITHUB_REVIEWS,
    "slo_agent_github_reviews",
    Counter,
    "Reviews of GitHub deployment protection rules by state (approved, rejected) and result (sent, failed: not delivered)"
);
metric!(
    TLS_CERTIFICATE_EXPIRY,
    "slo_agent_tls_certificate_expiry_timestamp_seconds",
    Gauge,
    "When the certificate the API serves expires (its not-after), seconds since the epoch"
);
metric!(
    TLS_RELOADS,
    "slo_agent_tls_reloads",
    Counter,
    "Changed TLS certificate files read again, by result: ok (serving the new pair), error (the previous pair stays)"
);
metric!(
    TLS_HANDSHAKE_FAILURES,
    "slo_agent_tls_handshake_failures",
    Counter,
    "TLS handshakes on the API that failed, by reason: timeout (not done within http.header_read_timeout), error (refused: a plaintext request, no or a wrong client certificate, no common protocol version)"
);
metric!(
    SIGNAL_EVENTS,
    "slo_agent_signal_events_left_out",
    Counter,
    "Events the live signals left out, by reason: late (their minute had closed), service_dropped (beyond 256 services)"
);
metric!(SIGNAL_SERIES, "slo_agent_signal_series", Gauge, "Live signal series held (bounded by signals.max_series)");
metric!(
    SIGNAL_SERIES_DROPPED,
    "slo_agent_signal_series_dropped",
    Counter,
    "Minute values of series not created because signals.max_series was reached"
);
metric!(
    HOP_RECORDS,
    "slo_agent_hop_records",
    Counter,
    "Records of the hop decomposition by result: joined (gateway and Lambda pairs), unjoined_gateway, unjoined_lambda, too_old, service_dropped, route_folded"
);
metric!(
    FREEZE_SOURCE_ERRORS,
    "slo_agent_freeze_source_errors",
    Counter,
    "Readings of the fleet's figures from Prometheus (freeze.source: prometheus) that failed, by kind"
);

metric!(
    EXPORT_LAST_SUCCESS,
    "slo_agent_export_last_success_timestamp_seconds",
    Gauge,
    "When the exporter's receiver last accepted the SLO figures, seconds since the epoch (absent before the first)"
);

/// The agent started: its own counters start at zero, so a dashboard shows
/// "none" rather than "no data" for what has not happened yet.
pub struct AgentStarted;

impl AgentStarted {
    pub fn emit(&self, t: &Telemetry) {
        for m in [
            &EVENTS,
            &UNMATCHED_EVENTS,
            &TOO_OLD_EVENTS,
            &EXCLUDED_EVENTS,
            &FUTURE_EVENTS,
            &SYNTHETIC_DROPPED,
            &STORE_COMMITS,
            &STORE_COMMIT_FAILURES,
            &STORE_REOPENS,
            &SPEC_RELOADS,
            &SPEC_RELOAD_FAILURES,
        ] {
            t.add(m, vec![], 0);
        }
    }
}

fn source_labels(source: &str, kind: &str) -> Labels {
    vec![("source", source.to_string()), ("kind", kind.to_string())]
}

fn receiver_labels(receiver: &str, kind: &str) -> Labels {
    vec![("receiver", receiver.to_string()), ("kind", kind.to_string())]
}

/// A source was set up: its series start at zero, so dashboards see it
/// before it reads anything.
pub struct SourceStarted<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub push: bool,
    /// It reads CloudWatch Logs subscription payloads (unrouted log events
    /// are counted).
    pub subscriptions: bool,
}

impl SourceStarted<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::info!(source = self.source, kind = self.kind, "source started");
        t.add(&INGEST_LINES, source_labels(self.source, self.kind), 0);
        t.add(&INGEST_BYTES, source_labels(self.source, self.kind), 0);
        if self.push {
            for result in ["counted", "duplicate"] {
                let mut l = source_labels(self.source, self.kind);
                l.push(("result", result.into()));
                t.add(&PUSH_REQUESTS, l, 0);
            }
        }
        if self.subscriptions {
            t.add(&UNROUTED_LOG_EVENTS, vec![("source", self.source.to_string())], 0);
        }
    }
}

/// Lines (records, spans) a source read. Hot path: no log line.
pub struct LinesRead<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub lines: u64,
}

impl LinesRead<'_> {
    pub fn emit(&self, t: &Telemetry) {
        t.add(&INGEST_LINES, source_labels(self.source, self.kind), self.lines);
    }
}

/// Bytes a source read. Hot path: no log line.
pub struct BytesRead<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub bytes: u64,
}

impl BytesRead<'_> {
    pub fn emit(&self, t: &Telemetry) {
        t.add(&INGEST_BYTES, source_labels(self.source, self.kind), self.bytes);
    }
}

/// Lines of one reason that could not be used, with samples (`(where,
/// line)`): one warning, the samples escaped and cut.
pub struct LinesRejected<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub reason: &'static str,
    pub count: u64,
    pub samples: &'a [(String, String)],
}

impl LinesRejected<'_> {
    pub fn emit(&self, t: &Telemetry) {
        if self.count == 0 {
            return;
        }
        let samples: Vec<String> =
            self.samples.iter().map(|(at, line)| format!("{} {}", Escaped(at), Escaped(line))).collect();
        tracing::warn!(
            source = self.source,
            reason = self.reason,
            count = self.count,
            samples = %samples.join(" | "),
            "rejected lines"
        );
        let mut l = source_labels(self.source, self.kind);
        l.push(("reason", self.reason.to_string()));
        t.add(&REJECTED_LINES, l, self.count);
    }
}

/// CloudWatch Logs events of log groups no route covers. The counter moves
/// on every delivery; a warning names each group the first time the source
/// sees it (the decoder remembers which it named), escaped and cut.
pub struct UnroutedLogEvents<'a> {
    pub source: &'a str,
    pub count: u64,
    pub new_groups: &'a [String],
}

impl UnroutedLogEvents<'_> {
    pub fn emit(&self, t: &Telemetry) {
        if self.count == 0 {
            return;
        }
        if !self.new_groups.is_empty() {
            let groups: Vec<String> = self.new_groups.iter().map(|g| Escaped(g).to_string()).collect();
            tracing::warn!(
                source = self.source,
                count = self.count,
                log_groups = %groups.join(", "),
                "log events of log groups no route covers; add a `log_groups` route to read them"
            );
        }
        t.add(&UNROUTED_LOG_EVENTS, vec![("source", self.source.to_string())], self.count);
    }
}

/// The reject counts a source had before this run (from the store), so the
/// counter continues rather than starting at zero.
pub struct RejectsRestored<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub reason: &'a str,
    pub count: u64,
}

impl RejectsRestored<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let mut l = source_labels(self.source, self.kind);
        l.push(("reason", self.reason.to_string()));
        t.add(&REJECTED_LINES, l, self.count);
    }
}

/// Where a polled source stands: bytes known but not read, files followed.
pub struct SourceBacklog<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub backlog_bytes: u64,
    pub files: u64,
}

impl SourceBacklog<'_> {
    pub fn emit(&self, t: &Telemetry) {
        t.set(&INGEST_BACKLOG, source_labels(self.source, self.kind), self.backlog_bytes as f64);
        t.set(&SOURCE_FILES, source_labels(self.source, self.kind), self.files as f64);
    }
}

/// The newest event time a source delivered (its lag is measured from it).
pub struct NewestEvent<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub ts_ms: i64,
}

impl NewestEvent<'_> {
    pub fn emit(&self, t: &Telemetry) {
        t.raise(&INGEST_LAG, source_labels(self.source, self.kind), self.ts_ms as f64);
    }
}

/// Failed calls of a pull source (logged by the source with the cause).
pub struct SourceCallsFailed<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub error: &'static str,
    pub count: u64,
}

impl SourceCallsFailed<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let mut l = source_labels(self.source, self.kind);
        l.push(("error", self.error.to_string()));
        t.add(&SOURCE_ERRORS, l, self.count);
    }
}

/// A push request was answered: `counted`, `duplicate`, or a refusal reason.
pub struct PushAnswered<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub result: &'static str,
}

impl PushAnswered<'_> {
    pub fn emit(&self, t: &Telemetry) {
        if !matches!(self.result, "counted" | "duplicate") {
            tracing::debug!(source = %Escaped(self.source), result = self.result, "push request refused");
        }
        let mut l = source_labels(self.source, self.kind);
        l.push(("result", self.result.to_string()));
        t.add(&PUSH_REQUESTS, l, 1);
    }
}

/// What the engine did with the events it was handed, since the last report.
pub struct EngineCounted {
    pub events: u64,
    pub unmatched: u64,
    pub too_old: u64,
    pub excluded: u64,
}

impl EngineCounted {
    pub fn emit(&self, t: &Telemetry) {
        t.add(&EVENTS, vec![], self.events);
        t.add(&UNMATCHED_EVENTS, vec![], self.unmatched);
        t.add(&TOO_OLD_EVENTS, vec![], self.too_old);
        t.add(&EXCLUDED_EVENTS, vec![], self.excluded);
    }
}

/// What the hop decomposition joined and could not use, since the last
/// report (per evaluation). Label values from a fixed set.
pub struct HopRecords {
    pub joined: u64,
    pub unjoined_gateway: u64,
    pub unjoined_lambda: u64,
    pub too_old: u64,
    pub service_dropped: u64,
    pub route_folded: u64,
}

impl HopRecords {
    pub fn emit(&self, t: &Telemetry) {
        for (result, n) in [
            ("joined", self.joined),
            ("unjoined_gateway", self.unjoined_gateway),
            ("unjoined_lambda", self.unjoined_lambda),
            ("too_old", self.too_old),
            ("service_dropped", self.service_dropped),
            ("route_folded", self.route_folded),
        ] {
            t.add(&HOP_RECORDS, vec![("result", result.to_string())], n);
        }
    }
}

/// The live signals closed minutes (per evaluation that closed any).
pub struct SignalsAdvanced {
    pub series: usize,
    pub late: u64,
    pub series_dropped: u64,
    pub services_dropped: u64,
}

impl SignalsAdvanced {
    pub fn emit(&self, t: &Telemetry) {
        t.set(&SIGNAL_SERIES, vec![], self.series as f64);
        t.add(&SIGNAL_EVENTS, vec![("reason", "late".to_string())], self.late);
        t.add(&SIGNAL_EVENTS, vec![("reason", "service_dropped".to_string())], self.services_dropped);
        t.add(&SIGNAL_SERIES_DROPPED, vec![], self.series_dropped);
        if self.series_dropped > 0 {
            tracing::warn!(dropped = self.series_dropped, "live signal series not created: signals.max_series reached");
        }
    }
}

/// Events dropped because their time was too far ahead of the clock.
pub struct FutureEventsDropped<'a> {
    pub source: &'a str,
    pub count: u64,
}

impl FutureEventsDropped<'_> {
    pub fn emit(&self, t: &Telemetry) {
        if self.count > 0 {
            tracing::debug!(source = self.source, count = self.count, "events from the future dropped");
            t.add(&FUTURE_EVENTS, vec![], self.count);
        }
    }
}

/// A synthetic run's events found the state thread's queue full (or the
/// state thread gone) and were not counted.
pub struct SyntheticEventsDropped<'a> {
    pub check: &'a str,
}

impl SyntheticEventsDropped<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::warn!(
            check = self.check,
            "a synthetic run's events were not counted: the state thread's queue is full"
        );
        t.add(&SYNTHETIC_DROPPED, vec![], 1);
    }
}

/// An exporter delivered the SLO figures (all of them, or some before a failure).
pub struct ExportSent {
    pub exporter: &'static str,
    pub data_points: u64,
}

impl ExportSent {
    pub fn emit(&self, t: &Telemetry) {
        t.add(&EXPORT_DATA_POINTS, vec![("exporter", self.exporter.into())], self.data_points);
    }
}

/// An export of the SLO figures failed. Always counted; logged only when
/// `logged` says how many failures went unlogged before it (a failing
/// exporter logs once per few minutes, not once per export).
pub struct ExportFailed<'a> {
    pub exporter: &'static str,
    /// From a bounded set: the AWS error kinds, `io`, `busy`, `timeout`.
    pub kind: &'static str,
    pub error: &'a str,
    pub failures_in_a_row: u64,
    pub logged: Option<u64>,
}

impl ExportFailed<'_> {
    pub fn emit(&self, t: &Telemetry) {
        if let Some(suppressed) = self.logged {
            tracing::warn!(
                exporter = self.exporter,
                kind = self.kind,
                error = %Escaped(self.error),
                failures_in_a_row = self.failures_in_a_row,
                not_logged_since_last = suppressed,
                "exporting the SLO figures failed; their event counts go with the next export"
            );
        }
        t.add(&EXPORT_FAILURES, vec![("exporter", self.exporter.into()), ("error", self.kind.into())], 1);
    }
}

/// An exporter works again after failures.
pub struct ExportRecovered {
    pub exporter: &'static str,
    pub after_failures: u64,
}

impl ExportRecovered {
    pub fn emit(&self, _t: &Telemetry) {
        tracing::info!(
            exporter = self.exporter,
            after_failures = self.after_failures,
            "exporting the SLO figures works again"
        );
    }
}

/// Spans of the agent's own probes sent, dropped, or a failed export.
pub struct TraceSpans {
    pub exported: u64,
    pub dropped: u64,
    pub failed: bool,
}

impl TraceSpans {
    pub fn emit(&self, t: &Telemetry) {
        t.add(&TRACE_SPANS_EXPORTED, vec![], self.exported);
        t.add(&TRACE_SPANS_DROPPED, vec![], self.dropped);
        if self.failed {
            t.add(&TRACE_EXPORT_FAILURES, vec![], 1);
        }
    }
}

/// A store transaction committed. Hot path: no log line.
pub struct StoreCommitted;

impl StoreCommitted {
    pub fn emit(&self, t: &Telemetry) {
        t.add(&STORE_COMMITS, vec![], 1);
    }
}

/// A store transaction failed.
pub struct StoreCommitFailed<'a> {
    pub what: &'a str,
    pub error: &'a str,
}

impl StoreCommitFailed<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::error!(
            what = self.what,
            error = self.error,
            "store commit failed; not ready until the store is reopened"
        );
        t.add(&STORE_COMMIT_FAILURES, vec![], 1);
    }
}

/// The state file was reopened and the state read back from it.
pub struct StoreReopened<'a> {
    pub path: &'a str,
}

impl StoreReopened<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::warn!(state = %Escaped(self.path), "state file reopened; counting goes on from what it holds");
        t.add(&STORE_REOPENS, vec![], 1);
    }
}

/// The specs were reloaded.
pub struct SpecsReloaded<'a> {
    pub slos: usize,
    /// SLOs whose indicator or budgeting changed (their counts start afresh).
    pub reset: &'a [String],
}

impl SpecsReloaded<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::info!(slos = self.slos, reset = ?self.reset, "specs reloaded");
        t.add(&SPEC_RELOADS, vec![], 1);
    }
}

/// New specs did not validate; the previous ones stay.
pub struct SpecReloadRefused<'a> {
    pub problems: &'a [String],
}

impl SpecReloadRefused<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::error!(problems = %self.problems.join("; "), "spec reload refused; keeping the previous specs");
        t.add(&SPEC_RELOAD_FAILURES, vec![], 1);
    }
}

/// Every SLO was evaluated.
pub struct Evaluated {
    pub slos: usize,
    pub seconds: f64,
}

impl Evaluated {
    pub fn emit(&self, t: &Telemetry) {
        t.set(&SLOS, vec![], self.slos as f64);
        t.set(&EVALUATION_SECONDS, vec![], self.seconds);
    }
}

/// Silences per state.
pub struct SilencesCounted {
    pub by_state: [(&'static str, u64); 3],
}

impl SilencesCounted {
    pub fn emit(&self, t: &Telemetry) {
        for (state, n) in self.by_state.iter().filter(|(s, _)| !s.is_empty()) {
            t.set(&SILENCES, vec![("state", state.to_string())], *n as f64);
        }
    }
}

/// A receiver was set up: its series start at zero.
pub struct ReceiverStarted<'a> {
    pub receiver: &'a str,
    pub kind: &'a str,
}

impl ReceiverStarted<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::info!(receiver = self.receiver, kind = self.kind, "notifications enabled");
        t.set(&OUTBOX_DEPTH, receiver_labels(self.receiver, self.kind), 0.0);
        for result in ["sent", "retried", "failed", "silenced"] {
            let mut l = receiver_labels(self.receiver, self.kind);
            l.push(("result", result.into()));
            t.add(&NOTIFICATIONS, l, 0);
        }
    }
}

/// Alert changes waiting for a receiver.
pub struct OutboxDepth<'a> {
    pub receiver: &'a str,
    pub kind: &'a str,
    pub depth: u64,
}

impl OutboxDepth<'_> {
    pub fn emit(&self, t: &Telemetry) {
        t.set(&OUTBOX_DEPTH, receiver_labels(self.receiver, self.kind), self.depth as f64);
    }
}

/// What became of a notification attempt (`sent`, `retried`, `failed`,
/// `silenced`; logged by the dispatcher, which knows the details).
pub struct NotificationOutcome<'a> {
    pub receiver: &'a str,
    pub kind: &'a str,
    pub result: &'static str,
    pub count: u64,
    /// For `sent`: seconds from the alert change to the receiver's acceptance.
    pub latency_seconds: Option<f64>,
}

impl NotificationOutcome<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let mut l = receiver_labels(self.receiver, self.kind);
        l.push(("result", self.result.to_string()));
        t.add(&NOTIFICATIONS, l, self.count);
        if let Some(s) = self.latency_seconds {
            t.set(&NOTIFY_LATENCY, receiver_labels(self.receiver, self.kind), s);
        }
    }
}

/// The status push is configured: its series start at zero.
pub struct StatusPushStarted<'a> {
    pub kind: &'a str,
    pub depth: u64,
}

impl StatusPushStarted<'_> {
    pub const OUTCOMES: [&'static str; 5] = ["sent", "retried", "failed", "coalesced", "dropped"];

    pub fn emit(&self, t: &Telemetry) {
        t.set(&STATUS_PUSH_DEPTH, vec![("kind", self.kind.to_string())], self.depth as f64);
        for outcome in Self::OUTCOMES {
            t.add(&STATUS_PUSH_REQUESTS, vec![("kind", self.kind.to_string()), ("outcome", outcome.to_string())], 0);
        }
    }
}

/// What became of status push entries (logged where the details are known).
pub struct StatusPushOutcome<'a> {
    pub kind: &'a str,
    pub outcome: &'static str,
    pub count: u64,
}

impl StatusPushOutcome<'_> {
    pub fn emit(&self, t: &Telemetry) {
        t.add(
            &STATUS_PUSH_REQUESTS,
            vec![("kind", self.kind.to_string()), ("outcome", self.outcome.to_string())],
            self.count,
        );
    }
}

/// Status push entries waiting.
pub struct StatusPushDepth<'a> {
    pub kind: &'a str,
    pub depth: u64,
}

impl StatusPushDepth<'_> {
    pub fn emit(&self, t: &Telemetry) {
        t.set(&STATUS_PUSH_DEPTH, vec![("kind", self.kind.to_string())], self.depth as f64);
    }
}

/// A request refused before its handler ran.
pub struct HttpRefused {
    pub class: &'static str,
    pub reason: &'static str,
}

impl HttpRefused {
    pub fn emit(&self, t: &Telemetry) {
        tracing::debug!(class = self.class, reason = self.reason, "HTTP request refused");
        t.add(&HTTP_REFUSED, vec![("class", self.class.to_string()), ("reason", self.reason.to_string())], 1);
    }
}

/// GitHub deployment protection rules are answered: the review series
/// start at zero.
pub struct GithubReviewsStarted;

impl GithubReviewsStarted {
    pub fn emit(&self, t: &Telemetry) {
        for state in ["approved", "rejected"] {
            for result in ["sent", "failed"] {
                t.add(&GITHUB_REVIEWS, vec![("state", state.into()), ("result", result.into())], 0);
            }
        }
    }
}

/// The API serves a certificate: at start (`reloaded: false`), or after its
/// files changed. `not_after_ms` is `None` when the certificate's validity
/// could not be read (the gauge keeps its value then).
pub struct TlsCertificateServed<'a> {
    pub reloaded: bool,
    pub cert_file: &'a str,
    pub not_after_ms: Option<i64>,
}

impl TlsCertificateServed<'_> {
    pub fn emit(&self, t: &Telemetry) {
        let not_after = self.not_after_ms.map(crate::timefmt::rfc3339).unwrap_or_else(|| "unknown".into());
        if self.reloaded {
            tracing::info!(cert_file = %Escaped(self.cert_file), not_after = %not_after, "TLS certificate reloaded; new connections get it");
            t.add(&TLS_RELOADS, vec![("result", "ok".into())], 1);
        } else {
            tracing::info!(cert_file = %Escaped(self.cert_file), not_after = %not_after, "serving the API over TLS");
            for result in ["ok", "error"] {
                t.add(&TLS_RELOADS, vec![("result", result.into())], 0);
            }
            for reason in ["timeout", "error"] {
                t.add(&TLS_HANDSHAKE_FAILURES, vec![("reason", reason.into())], 0);
            }
        }
        if let Some(ms) = self.not_after_ms {
            t.set(&TLS_CERTIFICATE_EXPIRY, vec![], ms as f64 / 1000.0);
        }
    }
}

/// A review of a GitHub deployment protection rule was delivered (`sent`)
/// or not (`failed`); the handler logs the details.
pub struct GithubReviewed {
    pub state: &'static str,
    pub result: &'static str,
}

impl GithubReviewed {
    pub fn emit(&self, t: &Telemetry) {
        t.add(&GITHUB_REVIEWS, vec![("state", self.state.into()), ("result", self.result.into())], 1);
    }
}

/// Changed TLS files could not be used (unreadable, not PEM, a key that
/// does not match the certificate); the previous pair keeps serving. Emitted
/// once per change of the files, not on every check.
pub struct TlsReloadRefused<'a> {
    pub error: &'a str,
}

impl TlsReloadRefused<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::error!(error = %self.error, "TLS files changed but cannot be used; still serving the previous certificate");
        t.add(&TLS_RELOADS, vec![("result", "error".into())], 1);
    }
}

/// A TLS handshake on the API failed (`timeout` or `error`). Per connection,
/// so a debug line only: the counter says it.
pub struct TlsHandshakeFailed<'a> {
    pub reason: &'static str,
    pub error: &'a str,
}

impl TlsHandshakeFailed<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::debug!(reason = self.reason, error = %Escaped(self.error), "TLS handshake failed");
        t.add(&TLS_HANDSHAKE_FAILURES, vec![("reason", self.reason.into())], 1);
    }
}

/// Kinds of failed readings of the fleet's figures (`crate::fleet::ReadError::kind`).
pub const FREEZE_SOURCE_ERROR_KINDS: [&str; 5] = ["unreachable", "timeout", "http_status", "bad_answer", "token"];

/// The fleet's figures are read from Prometheus: the error series start at zero.
pub struct FreezeSourceStarted;

impl FreezeSourceStarted {
    pub fn emit(&self, t: &Telemetry) {
        for kind in FREEZE_SOURCE_ERROR_KINDS {
            t.add(&FREEZE_SOURCE_ERRORS, vec![("kind", kind.into())], 0);
        }
    }
}

/// A reading of the fleet's figures failed; the last good figures are
/// answered from until they are too old.
pub struct FreezeSourceFailed<'a> {
    pub kind: &'static str,
    pub url: &'a str,
    pub error: &'a str,
}

impl FreezeSourceFailed<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::warn!(kind = self.kind, url = %Escaped(self.url), error = %Escaped(self.error), "the fleet's figures cannot be read from Prometheus");
        t.add(&FREEZE_SOURCE_ERRORS, vec![("kind", self.kind.into())], 1);
    }
}

/// A pushing exporter started: its failure count starts at zero.
pub struct ExporterStarted<'a> {
    pub exporter: &'static str,
    /// Where it pushes: scheme, host and port only.
    pub origin: &'a str,
    pub every_seconds: f64,
}

impl ExporterStarted<'_> {
    pub fn emit(&self, t: &Telemetry) {
        tracing::info!(exporter = self.exporter, origin = %Escaped(self.origin), every_seconds = self.every_seconds, "exporting the SLO figures");
        t.add(&EXPORT_FAILURES, vec![("exporter", self.exporter.into()), ("error", "unavailable".into())], 0);
    }
}

/// The receiver accepted an export; `after_failures` exports had failed
/// since the last one it accepted.
pub struct ExportSucceeded {
    pub exporter: &'static str,
    pub at_ms: i64,
    pub after_failures: u64,
}

impl ExportSucceeded {
    pub fn emit(&self, t: &Telemetry) {
        if self.after_failures > 0 {
            tracing::info!(
                exporter = self.exporter,
                failed = self.after_failures,
                "the receiver accepts the SLO figures again"
            );
        }
        t.set(&EXPORT_LAST_SUCCESS, vec![("exporter", self.exporter.into())], self.at_ms as f64 / 1000.0);
    }
}

/// A push of the SLO figures (OTLP) failed. Logged only when `log` (the exporter rate-limits its
/// warnings); always counted.
pub struct PushFailed<'a> {
    pub exporter: &'static str,
    pub error: &'a str,
    pub log: bool,
    /// Exports that failed since the receiver last accepted one, this one included.
    pub failing: u64,
}

impl PushFailed<'_> {
    pub fn emit(&self, t: &Telemetry) {
        if self.log {
            tracing::warn!(
                exporter = self.exporter,
                failing = self.failing,
                error = %Escaped(self.error),
                "pushing the SLO figures failed; trying again at the next interval"
            );
        }
        t.add(&EXPORT_FAILURES, vec![("exporter", self.exporter.into()), ("error", "unavailable".into())], 1);
    }
}
