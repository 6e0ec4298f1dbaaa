//! The report of an SLO: the JSON shape shared by `replay --output json`,
//! `GET /api/v1/slos` and the demo, and its table rendering.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::timefmt::rfc3339;

use crate::sli::SloStatus;
use crate::sli::latency::Percentiles;
use crate::spec::model::{Budgeting, SloWindow};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub at: String,
    pub rejected_lines: u64,
    pub slos: Vec<SloReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SloReport {
    pub name: String,
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub objective: f64,
    pub window: String,
    pub window_start: String,
    pub budgeting: String,
    pub events: EventCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slices: Option<SliceCounts>,
    pub sli: Option<f64>,
    pub error_budget: ErrorBudget,
    pub burn_rates: BTreeMap<String, Option<f64>>,
    pub latency_ms: Option<Percentiles>,
    pub alerts: Vec<AlertReport>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct EventCounts {
    pub total: u64,
    pub good: u64,
    pub bad: u64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct SliceCounts {
    pub total: u64,
    /// Timeslices: slices that met the target. RatioTimeslices: the sum of the slices' ratios.
    pub good: f64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ErrorBudget {
    pub consumed: f64,
    pub remaining: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertReport {
    pub severity: &'static str,
    pub long_window: String,
    pub short_window: String,
    pub burn_rate_threshold: f64,
    pub long_burn_rate: Option<f64>,
    pub short_burn_rate: Option<f64>,
    pub firing: bool,
}

/// Round for reports: ratios and rates to 9 significant decimals, so JSON
/// shows 2.0 rather than 1.9999999999999998.
fn r(v: f64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    let scale = 1e9;
    (v * scale).round() / scale
}

impl SloReport {
    pub fn from_status(s: &SloStatus) -> SloReport {
        let slo = &s.slo;
        let w = &s.window;
        let slices = match slo.budgeting {
            Budgeting::Occurrences => None,
            _ => Some(SliceCounts { total: w.units_total as u64, good: r(w.units_good) }),
        };
        SloReport {
            name: slo.name.clone(),
            service: slo.service.clone(),
            description: slo.description.clone(),
            labels: slo.labels.clone(),
            objective: slo.objective,
            window: match &slo.window {
                SloWindow::Rolling(m) => m.to_string(),
                other => other.to_string(),
            },
            window_start: rfc3339(s.window_start_ms),
            budgeting: match slo.budgeting {
                Budgeting::Occurrences => "occurrences".into(),
                Budgeting::Timeslices { slice, good_ratio_at_least } => {
                    format!("timeslices ({slice} slices, good when ratio >= {good_ratio_at_least})")
                }
                Budgeting::RatioTimeslices { slice } => format!("ratio_timeslices ({slice} slices)"),
            },
            events: EventCounts { total: w.events.total, good: w.events.good, bad: w.events.bad() },
            slices,
            sli: s.sli.map(r),
            error_budget: ErrorBudget { consumed: r(s.budget_consumed), remaining: r(s.budget_remaining()) },
            burn_rates: s.burn_rates.iter().map(|(m, b)| (m.to_string(), b.map(r))).collect(),
            latency_ms: s.latency,
            alerts: s
                .conditions
                .iter()
                .map(|c| AlertReport {
                    severity: c.rule.severity.as_str(),
                    long_window: c.rule.long_window.to_string(),
                    short_window: c.rule.short_window.to_string(),
                    burn_rate_threshold: c.rule.burn_rate_threshold,
                    long_burn_rate: c.long_burn_rate.map(r),
                    short_burn_rate: c.short_burn_rate.map(r),
                    firing: c.firing,
                })
                .collect(),
        }
    }
}

/// Render reports as a fixed-width table for terminals.
pub fn render_table(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "SLOs as of {}  (rejected lines: {})", report.at, report.rejected_lines);
    let _ = writeln!(
        out,
        "{:<28} {:>8} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}  ALERTS",
        "SLO", "OBJ", "EVENTS", "SLI", "BUDGET", "BURN5m", "BURN1h", "BURN6h", "BURN1d", "p99ms"
    );
    for s in &report.slos {
        let pct = |v: Option<f64>| v.map(|v| format!("{:.3}%", v * 100.0)).unwrap_or_else(|| "-".into());
        let burn =
            |w: &str| s.burn_rates.get(w).copied().flatten().map(|b| format!("{b:.2}")).unwrap_or_else(|| "-".into());
        let firing: Vec<String> = s
            .alerts
            .iter()
            .filter(|a| a.firing)
            .map(|a| format!("{}({}/{})", a.severity.to_uppercase(), a.long_window, a.short_window))
            .collect();
        let _ = writeln!(
            out,
            "{:<28} {:>8} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}  {}",
            truncate(&s.name, 28),
            format!("{}%", r(s.objective * 100.0)),
            s.events.total,
            pct(s.sli),
            format!("{:.1}%", s.error_budget.remaining * 100.0),
            burn("5m"),
            burn("1h"),
            burn("6h"),
            burn("1d"),
            s.latency_ms.map(|l| format!("{:.0}", l.p99)).unwrap_or_else(|| "-".into()),
            if firing.is_empty() { "ok".to_string() } else { firing.join(" ") },
        );
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
