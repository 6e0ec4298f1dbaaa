//! The SLO figures every exporter sends, as metric families: one list built
//! from an evaluation, so `/metrics` and OTLP carry the same names, labels
//! and values.
//!
//! Names are `slo_agent_slo_<noun>_<unit>` (counters without `_total`, which
//! the Prometheus exposition and the Collector's Prometheus exporters add);
//! label values come from bounded sets (SLO names, window names, severities,
//! the top 5 failing values per dimension).

use crate::alert::{AlertKind, AlertRecord, Phase};
use crate::sli::SloStatus;
use crate::sli::ring::Counts;
use crate::telemetry::events::metric;
use crate::telemetry::{FamilyView, Kind, Labels, Metric};

metric!(
    EVENTS,
    "slo_agent_slo_events",
    Counter,
    "Events counted for the SLO since the agent started (or since its state was restored)"
);
metric!(GOOD_EVENTS, "slo_agent_slo_good_events", Counter, "Good events counted for the SLO since the agent started");
metric!(OBJECTIVE, "slo_agent_slo_objective_ratio", Gauge, "The SLO's objective as a ratio (0.999 for 99.9%)");
metric!(WINDOW_EVENTS, "slo_agent_slo_window_events", Gauge, "Events in the current SLO window, by kind (good, total)");
metric!(SLI, "slo_agent_slo_sli_ratio", Gauge, "The SLI over the SLO window (absent when the window has no events)");
metric!(
    BUDGET_REMAINING,
    "slo_agent_slo_error_budget_remaining_ratio",
    Gauge,
    "Error budget left in the SLO window (1 = untouched, below 0 = overspent)"
);
metric!(
    BURN_RATE,
    "slo_agent_slo_burn_rate_ratio",
    Gauge,
    "Burn rate per alert window: bad fraction divided by the allowed bad fraction"
);
metric!(
    ALERT_CONDITION,
    "slo_agent_slo_alert_condition",
    Gauge,
    "1 while a multiwindow burn-rate condition holds, else 0"
);
metric!(
    ALERT_THRESHOLD,
    "slo_agent_slo_alert_burn_rate_threshold_ratio",
    Gauge,
    "The burn-rate threshold of each condition"
);
metric!(
    LATENCY,
    "slo_agent_slo_latency_seconds",
    Gauge,
    "Latency percentiles over the SLO window (day granularity at the old edge)"
);
metric!(
    TOP_FAILURES,
    "slo_agent_slo_top_failures",
    Gauge,
    "Bad events of the last hour by route, edge location and status code (the top 5 values of each)"
);
metric!(
    ALERT_FIRING,
    "slo_agent_alert_firing",
    Gauge,
    "1 while the SLO's alert of this kind (page, ticket, budget_exhausted) is firing, else 0"
);

/// Every SLO family, in the order [`families`] returns them.
pub static FAMILIES: [&Metric; 12] = [
    &EVENTS,
    &GOOD_EVENTS,
    &OBJECTIVE,
    &WINDOW_EVENTS,
    &SLI,
    &BUDGET_REMAINING,
    &BURN_RATE,
    &ALERT_CONDITION,
    &ALERT_THRESHOLD,
    &LATENCY,
    &TOP_FAILURES,
    &ALERT_FIRING,
];

/// The SLO families of one evaluation, in the order of [`FAMILIES`] (each
/// there, perhaps without series). `counted` is the events counted per SLO
/// since the agent started.
pub fn families(statuses: &[SloStatus], counted: &[(String, Counts)], alerts: &[AlertRecord]) -> Vec<FamilyView> {
    let mut out: Vec<FamilyView> = FAMILIES.iter().map(|m| FamilyView { metric: m, series: Vec::new() }).collect();
    let mut push = |m: &'static Metric, labels: Labels, v: f64| {
        let i = FAMILIES.iter().position(|f| std::ptr::eq(*f, m)).expect("every SLO metric is in FAMILIES");
        out[i].series.push((labels, v));
    };
    for (name, c) in counted {
        let service = statuses.iter().find(|s| &s.slo.name == name).map(|s| s.slo.service.clone()).unwrap_or_default();
        let l = vec![("slo", name.clone()), ("service", service)];
        push(&EVENTS, l.clone(), c.total as f64);
        push(&GOOD_EVENTS, l, c.good as f64);
    }
    for s in statuses {
        let base = || vec![("slo", s.slo.name.clone()), ("service", s.slo.service.clone())];
        let with = |extra: &[(&'static str, String)]| {
            let mut l = base();
            l.extend_from_slice(extra);
            l
        };
        push(&OBJECTIVE, base(), s.slo.objective);
        push(&WINDOW_EVENTS, with(&[("kind", "total".into())]), s.window.events.total as f64);
        push(&WINDOW_EVENTS, with(&[("kind", "good".into())]), s.window.events.good as f64);
        if let Some(v) = s.sli {
            push(&SLI, base(), v);
        }
        push(&BUDGET_REMAINING, base(), s.budget_remaining());
        for (w, b) in &s.burn_rates {
            if let Some(b) = b {
                push(&BURN_RATE, with(&[("window", w.to_string())]), *b);
            }
        }
        for c in &s.conditions {
            let l = with(&[
                ("severity", c.rule.severity.as_str().into()),
                ("long_window", c.rule.long_window.to_string()),
                ("short_window", c.rule.short_window.to_string()),
            ]);
            push(&ALERT_CONDITION, l.clone(), if c.firing { 1.0 } else { 0.0 });
            push(&ALERT_THRESHOLD, l, c.rule.burn_rate_threshold);
        }
        if let Some(p) = s.latency {
            for (q, v) in [("p50", p.p50), ("p90", p.p90), ("p99", p.p99)] {
                push(&LATENCY, with(&[("percentile", q.into())]), v / 1000.0);
            }
        }
        let e = &s.top_failures;
        for (dimension, values) in
            [("route", &e.top_routes), ("edge_location", &e.top_edge_locations), ("status_code", &e.top_status_codes)]
        {
            for (value, n) in values {
                push(&TOP_FAILURES, with(&[("dimension", dimension.to_string()), ("value", value.clone())]), *n as f64);
            }
        }
        for kind in AlertKind::ALL {
            let on = alerts.iter().any(|a| a.slo == s.slo.name && a.kind == kind && a.phase == Phase::Firing);
            push(&ALERT_FIRING, with(&[("kind", kind.as_str().into())]), if on { 1.0 } else { 0.0 });
        }
    }
    out
}
