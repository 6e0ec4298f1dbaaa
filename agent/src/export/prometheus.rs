//! Prometheus exposition (`/metrics`), with the official `prometheus-client`.
//!
//! Metric names are `slo_agent_<noun>_<unit>`; label values come from bounded
//! sets (SLO names, window names, source names, reject reasons).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::sli::SloStatus;
use crate::sli::ring::Counts;

type Labels = Vec<(&'static str, String)>;
type GaugeF = Gauge<f64, AtomicU64>;

/// Ingest figures of one source, as the daemon keeps them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceFigures {
    pub name: String,
    pub kind: &'static str,
    pub lines: u64,
    pub bytes: u64,
    /// Rejected lines per reason.
    pub rejects: Vec<(&'static str, u64)>,
    /// Time of the newest event seen from this source (ms since the epoch).
    pub newest_event_ms: Option<i64>,
    /// Bytes present in files but not read yet.
    pub backlog_bytes: u64,
    pub files: u64,
    /// Failed calls to what the source reads from, per error kind.
    pub errors: Vec<(&'static str, u64)>,
    /// Push sources: deliveries counted, deliveries recognised as already
    /// counted, and requests refused per reason (unauthorized, too_large, …).
    pub deliveries: u64,
    pub duplicate_deliveries: u64,
    pub refused: Vec<(&'static str, u64)>,
}

/// Add one to a per-reason counter list.
pub fn bump(list: &mut Vec<(&'static str, u64)>, reason: &'static str) {
    match list.iter_mut().find(|(r, _)| *r == reason) {
        Some(e) => e.1 += 1,
        None => list.push((reason, 1)),
    }
}

/// Figures of the agent itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentFigures {
    pub events: u64,
    pub unmatched_events: u64,
    pub too_old_events: u64,
    pub excluded_events: u64,
    pub future_events: u64,
    pub commits: u64,
    pub commit_failures: u64,
    /// Silences per state (active, pending, expired and still kept).
    pub silences: [(&'static str, u64); 3],
    pub spec_reloads: u64,
    pub spec_reload_failures: u64,
    pub slos: u64,
    pub evaluation_seconds: f64,
    /// Notification receivers: outbox depth and delivery outcomes.
    pub receivers: Vec<crate::notify::dispatch::ReceiverFigures>,
}

/// Render the whole exposition: per-SLO figures from the latest evaluation,
/// cumulative counted events, and the agent's own telemetry.
/// `now_ms` is the clock's time, for the sources' lag.
pub fn render(
    statuses: &[SloStatus],
    counted: &[(String, Counts)],
    alerts: &[crate::alert::AlertRecord],
    sources: &[SourceFigures],
    agent: &AgentFigures,
    now_ms: i64,
) -> String {
    let mut reg = Registry::default();

    let events_total = Family::<Labels, Counter>::default();
    let good_total = Family::<Labels, Counter>::default();
    for (name, c) in counted {
        let service = statuses.iter().find(|s| &s.slo.name == name).map(|s| s.slo.service.clone()).unwrap_or_default();
        let l = vec![("slo", name.clone()), ("service", service)];
        events_total.get_or_create(&l).inc_by(c.total);
        good_total.get_or_create(&l).inc_by(c.good);
    }
    reg.register(
        "slo_agent_slo_events",
        "Events counted for the SLO since the agent started (or since its state was restored)",
        events_total,
    );
    reg.register("slo_agent_slo_good_events", "Good events counted for the SLO since the agent started", good_total);

    let objective = Family::<Labels, GaugeF>::default();
    let window_events = Family::<Labels, GaugeF>::default();
    let sli = Family::<Labels, GaugeF>::default();
    let remaining = Family::<Labels, GaugeF>::default();
    let burn = Family::<Labels, GaugeF>::default();
    let condition = Family::<Labels, GaugeF>::default();
    let threshold = Family::<Labels, GaugeF>::default();
    let latency = Family::<Labels, GaugeF>::default();
    for s in statuses {
        let base = || vec![("slo", s.slo.name.clone()), ("service", s.slo.service.clone())];
        objective.get_or_create(&base()).set(s.slo.objective);
        let mut l = base();
        l.push(("kind", "total".into()));
        window_events.get_or_create(&l).set(s.window.events.total as f64);
        let mut l = base();
        l.push(("kind", "good".into()));
        window_events.get_or_create(&l).set(s.window.events.good as f64);
        if let Some(v) = s.sli {
            sli.get_or_create(&base()).set(v);
        }
        remaining.get_or_create(&base()).set(s.budget_remaining());
        for (w, b) in &s.burn_rates {
            if let Some(b) = b {
                let mut l = base();
                l.push(("window", w.to_string()));
                burn.get_or_create(&l).set(*b);
            }
        }
        for c in &s.conditions {
            let mut l = base();
            l.push(("severity", c.rule.severity.as_str().into()));
            l.push(("long_window", c.rule.long_window.to_string()));
            l.push(("short_window", c.rule.short_window.to_string()));
            condition.get_or_create(&l).set(if c.firing { 1.0 } else { 0.0 });
            threshold.get_or_create(&l).set(c.rule.burn_rate_threshold);
        }
        if let Some(p) = s.latency {
            for (q, v) in [("p50", p.p50), ("p90", p.p90), ("p99", p.p99)] {
                let mut l = base();
                l.push(("percentile", q.into()));
                latency.get_or_create(&l).set(v / 1000.0);
            }
        }
    }
    reg.register("slo_agent_slo_objective_ratio", "The SLO's objective as a ratio (0.999 for 99.9%)", objective);
    reg.register(
        "slo_agent_slo_window_events",
        "Events in the current SLO window, by kind (good, total)",
        window_events,
    );
    reg.register("slo_agent_slo_sli_ratio", "The SLI over the SLO window (absent when the window has no events)", sli);
    reg.register(
        "slo_agent_slo_error_budget_remaining_ratio",
        "Error budget left in the SLO window (1 = untouched, below 0 = overspent)",
        remaining,
    );
    reg.register(
        "slo_agent_slo_burn_rate_ratio",
        "Burn rate per alert window: bad fraction divided by the allowed bad fraction",
        burn,
    );
    reg.register("slo_agent_slo_alert_condition", "1 while a multiwindow burn-rate condition holds, else 0", condition);
    reg.register(
        "slo_agent_slo_alert_burn_rate_threshold_ratio",
        "The burn-rate threshold of each condition",
        threshold,
    );
    reg.register(
        "slo_agent_slo_latency_seconds",
        "Latency percentiles over the SLO window (day granularity at the old edge)",
        latency,
    );

    let top = Family::<Labels, GaugeF>::default();
    for s in statuses {
        let e = &s.top_failures;
        for (dimension, values) in
            [("route", &e.top_routes), ("edge_location", &e.top_edge_locations), ("status_code", &e.top_status_codes)]
        {
            for (value, n) in values {
                let l = vec![
                    ("slo", s.slo.name.clone()),
                    ("service", s.slo.service.clone()),
                    ("dimension", dimension.to_string()),
                    ("value", value.clone()),
                ];
                top.get_or_create(&l).set(*n as f64);
            }
        }
    }
    reg.register(
        "slo_agent_slo_top_failures",
        "Bad events of the last hour by route, edge location and status code (the top 5 values of each)",
        top,
    );

    let firing = Family::<Labels, GaugeF>::default();
    for s in statuses {
        for kind in crate::alert::AlertKind::ALL {
            let on =
                alerts.iter().any(|a| a.slo == s.slo.name && a.kind == kind && a.phase == crate::alert::Phase::Firing);
            let l =
                vec![("slo", s.slo.name.clone()), ("service", s.slo.service.clone()), ("kind", kind.as_str().into())];
            firing.get_or_create(&l).set(if on { 1.0 } else { 0.0 });
        }
    }
    reg.register(
        "slo_agent_alert_firing",
        "1 while the SLO's alert of this kind (page, ticket, budget_exhausted) is firing, else 0",
        firing,
    );

    let silences = Family::<Labels, GaugeF>::default();
    for (state, n) in agent.silences.into_iter().filter(|(state, _)| !state.is_empty()) {
        silences.get_or_create(&vec![("state", state.to_string())]).set(n as f64);
    }
    reg.register(
        "slo_agent_silences",
        "Silences by state: active (muting now), pending (starting later), expired (kept 7 days)",
        silences,
    );

    let lines = Family::<Labels, Counter>::default();
    let bytes = Family::<Labels, Counter>::default();
    let rejected = Family::<Labels, Counter>::default();
    let lag = Family::<Labels, GaugeF>::default();
    let backlog = Family::<Labels, GaugeF>::default();
    let files = Family::<Labels, GaugeF>::default();
    let errors = Family::<Labels, Counter>::default();
    let requests = Family::<Labels, Counter>::default();
    for s in sources {
        if matches!(s.kind, "firehose" | "lambda-telemetry" | "otlp") {
            for (result, n) in [("counted", s.deliveries), ("duplicate", s.duplicate_deliveries)]
                .into_iter()
                .chain(s.refused.iter().copied())
            {
                let l = vec![("source", s.name.clone()), ("kind", s.kind.to_string()), ("result", result.to_string())];
                requests.get_or_create(&l).inc_by(n);
            }
        }
        let base = || vec![("source", s.name.clone()), ("kind", s.kind.to_string())];
        lines.get_or_create(&base()).inc_by(s.lines);
        bytes.get_or_create(&base()).inc_by(s.bytes);
        for (reason, n) in &s.rejects {
            let mut l = base();
            l.push(("reason", reason.to_string()));
            rejected.get_or_create(&l).inc_by(*n);
        }
        if let Some(newest) = s.newest_event_ms {
            lag.get_or_create(&base()).set(((now_ms - newest) as f64 / 1000.0).max(0.0));
        }
        backlog.get_or_create(&base()).set(s.backlog_bytes as f64);
        files.get_or_create(&base()).set(s.files as f64);
        for (kind, n) in &s.errors {
            let mut l = base();
            l.push(("error", kind.to_string()));
            errors.get_or_create(&l).inc_by(*n);
        }
    }
    reg.register("slo_agent_ingest_lines", "Lines read per source", lines);
    reg.register("slo_agent_ingest_bytes", "Bytes read per source", bytes);
    reg.register("slo_agent_rejected_lines", "Lines that could not be decoded, per source and reason", rejected);
    reg.register("slo_agent_ingest_lag_seconds", "Now minus the time of the newest event read from the source", lag);
    reg.register("slo_agent_ingest_backlog_bytes", "Bytes waiting in the source's files, not read yet", backlog);
    reg.register("slo_agent_source_files", "Files the source currently follows", files);
    reg.register(
        "slo_agent_source_errors",
        "Failed calls of a pull source to what it reads (AWS APIs), per error kind; the source backs off after each",
        errors,
    );
    reg.register(
        "slo_agent_push_requests",
        "Push deliveries by result: counted, duplicate (already counted), or why they were refused",
        requests,
    );

    let c = |reg: &mut Registry, name: &str, help: &str, v: u64| {
        let m = Counter::<u64>::default();
        m.inc_by(v);
        reg.register(name, help, m);
    };
    c(&mut reg, "slo_agent_events", "Events decoded and handed to the SLI engine", agent.events);
    c(&mut reg, "slo_agent_unmatched_events", "Events no SLO counted", agent.unmatched_events);
    c(
        &mut reg,
        "slo_agent_too_old_events",
        "Event/SLO pairs dropped because the event was older than the SLO keeps",
        agent.too_old_events,
    );
    c(
        &mut reg,
        "slo_agent_excluded_events",
        "Event/SLO pairs not counted because the event fell in one of the SLO's exclusion windows",
        agent.excluded_events,
    );
    c(
        &mut reg,
        "slo_agent_future_events",
        "Events dropped because their time was too far ahead of the clock",
        agent.future_events,
    );
    c(&mut reg, "slo_agent_store_commits", "Store transactions committed", agent.commits);
    c(&mut reg, "slo_agent_store_commit_failures", "Store transactions that failed (retried)", agent.commit_failures);
    c(&mut reg, "slo_agent_spec_reloads", "Successful spec reloads", agent.spec_reloads);
    c(
        &mut reg,
        "slo_agent_spec_reload_failures",
        "Spec reloads refused because the new specs did not validate",
        agent.spec_reload_failures,
    );
    let g = GaugeF::default();
    g.set(agent.slos as f64);
    reg.register("slo_agent_slos", "SLOs loaded", g);
    let g = GaugeF::default();
    g.set(agent.evaluation_seconds);
    reg.register("slo_agent_evaluation_seconds", "Time the last evaluation of every SLO took", g);

    let depth = Family::<Labels, GaugeF>::default();
    let notifications = Family::<Labels, Counter>::default();
    let latency = Family::<Labels, GaugeF>::default();
    for r in &agent.receivers {
        let base = || vec![("receiver", r.name.clone()), ("kind", r.kind.to_string())];
        depth.get_or_create(&base()).set(r.outbox_depth as f64);
        for (result, n) in [("sent", r.sent), ("retried", r.retried), ("failed", r.failed), ("silenced", r.silenced)] {
            let mut l = base();
            l.push(("result", result.to_string()));
            notifications.get_or_create(&l).inc_by(n);
        }
        if let Some(s) = r.last_latency_seconds {
            latency.get_or_create(&base()).set(s);
        }
    }
    reg.register("slo_agent_notify_outbox_depth", "Alert changes waiting in the outbox for the receiver", depth);
    reg.register(
        "slo_agent_notifications",
        "Notification attempts by result: sent, retried (failed, will retry), failed (refused for good), silenced",
        notifications,
    );
    reg.register(
        "slo_agent_notify_latency_seconds",
        "Seconds from the alert change to the receiver accepting the notification (the last one)",
        latency,
    );

    let mut out = String::new();
    encode(&mut out, &reg).expect("writing to a String cannot fail");
    out
}

/// The classic Prometheus text format (0.0.4) of an OpenMetrics exposition,
/// for scrapers and tools that do not ask for OpenMetrics: counter families
/// are named by their samples (`x_total`), and there is no `# EOF`.
pub fn to_classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut counters: Vec<&str> = Vec::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            counters.push(name);
        }
    }
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters.contains(&name).then(|| format!("{p}{name}_total {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_by_their_samples() {
        let om = "# HELP a_events Events.\n# TYPE a_events counter\na_events_total 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1.5\n# EOF\n";
        assert_eq!(
            to_classic_text(om),
            "# HELP a_events_total Events.\n# TYPE a_events_total counter\na_events_total 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1.5\n"
        );
    }
}
