//! Prometheus exposition (`/metrics`), with the official `prometheus-client`.
//!
//! Metric names are `slo_agent_<noun>_<unit>`; label values come from bounded
//! sets (SLO names, window names, source names, reject reasons). The SLO
//! families are [`super::slo::families`], the ones OTLP sends too.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::sli::SloStatus;
use crate::sli::ring::Counts;
use crate::telemetry::{Kind, Labels, Telemetry};

type GaugeF = Gauge<f64, AtomicU64>;

/// Render the whole exposition: per-SLO figures from the latest evaluation,
/// cumulative counted events, `more` (the live signals' families), and the
/// agent's own telemetry.
/// `now_ms` is the clock's time, for the sources' lag.
pub fn render(
    statuses: &[SloStatus],
    counted: &[(String, Counts)],
    alerts: &[crate::alert::AlertRecord],
    more: Vec<crate::telemetry::FamilyView>,
    telemetry: &Telemetry,
    now_ms: i64,
) -> String {
    let mut reg = Registry::default();
    let slo = super::slo::families(statuses, counted, alerts);
    for family in slo.into_iter().chain(more).chain(telemetry.families()) {
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
