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
use crate::telemetry::{Kind, Telemetry};

type Labels = Vec<(&'static str, String)>;
type GaugeF = Gauge<f64, AtomicU64>;

/// Render the whole exposition: per-SLO figures from the latest evaluation,
/// cumulative counted events, and the agent's own telemetry.
/// `now_ms` is the clock's time, for the sources' lag.
pub fn render(
    statuses: &[SloStatus],
    counted: &[(String, Counts)],
    alerts: &[crate::alert::AlertRecord],
    telemetry: &Telemetry,
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

    for family in telemetry.families() {
        let m = family.metric;
        match m.kind {
            Kind::Counter => {
                let f = Family::<Labels, Counter>::default();
                for (labels, v) in &family.series {
                    f.get_or_create(labels).inc_by(*v as u64);
                }
                reg.register(m.name, m.help, f);
            }
            Kind::Gauge | Kind::AgeOf => {
                let f = Family::<Labels, GaugeF>::default();
                for (labels, v) in &family.series {
                    if m.kind == Kind::AgeOf {
                        if *v > 0.0 {
                            f.get_or_create(labels).set(((now_ms as f64 - v) / 1000.0).max(0.0));
                        }
                    } else {
                        f.get_or_create(labels).set(*v);
                    }
                }
                reg.register(m.name, m.help, f);
            }
        }
    }

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
