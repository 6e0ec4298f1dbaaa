//! The live signals as metric families: per series its last closed
//! minute's anomaly score, value and the detector's band. Label values come
//! from bounded sets: services (at most 256), origins, signal names,
//! dimensions and their values (edge locations capped per service by
//! `signals.max_edge_locations`, regions, client classes, SLO names); the
//! number of series is capped by `signals.max_series`.

use super::SignalsView;
use super::forecasts::Forecasts;
use crate::telemetry::events::metric;
use crate::telemetry::{FamilyView, Kind, Labels, Metric};

metric!(
    ANOMALY_SCORE,
    "slo_agent_anomaly_score",
    Gauge,
    "Anomaly score in [0, 1] of the signal's last closed minute (0 ordinary; at or above signals.threshold an anomaly)"
);
metric!(
    SIGNAL_VALUE,
    "slo_agent_signal_value",
    Gauge,
    "The signal's value in its last closed minute (unit in the `unit` label)"
);
metric!(
    SIGNAL_EXPECTED,
    "slo_agent_signal_expected",
    Gauge,
    "What the detector expected for the last closed minute, before it saw it (the forecast)"
);
metric!(
    SIGNAL_LOWER,
    "slo_agent_signal_lower",
    Gauge,
    "Lower edge of the forecast band (expected − 3 sd) of the last closed minute"
);
metric!(
    SIGNAL_UPPER,
    "slo_agent_signal_upper",
    Gauge,
    "Upper edge of the forecast band (expected + 3 sd) of the last closed minute"
);
metric!(
    ANOMALY_SINCE,
    "slo_agent_anomaly_started_timestamp_seconds",
    Gauge,
    "When the signal's open anomaly started (present only while one is open)"
);

metric!(QUOTA_LIMIT, "slo_agent_quota_limit", Gauge, "The quota (AWS default or configured), in the quota's unit");
metric!(
    QUOTA_USAGE,
    "slo_agent_quota_usage",
    Gauge,
    "The recent peak of what the quota limits (the highest hourly peak of the last 24 hours)"
);
metric!(QUOTA_UTILISATION, "slo_agent_quota_utilisation_ratio", Gauge, "The recent peak over the quota");
metric!(
    QUOTA_TIME_UNTIL,
    "slo_agent_quota_time_until_seconds",
    Gauge,
    "Time until the quota is reached at the forecast growth (absent when not within signals.quotas.horizon)"
);
metric!(
    QUOTA_GROWTH,
    "slo_agent_quota_growth_per_day",
    Gauge,
    "The trend of the daily peaks, in the quota's unit per day"
);
metric!(
    BUDGET_EXHAUSTION,
    "slo_agent_slo_budget_exhaustion_forecast_seconds",
    Gauge,
    "Time until the error budget is spent at the forecast burn (absent when it is not within a window)"
);
metric!(
    BUDGET_AT_END,
    "slo_agent_slo_budget_expected_at_end_ratio",
    Gauge,
    "The error budget expected at the end of the window (calendar) or one window from now (rolling), at the forecast burn"
);
metric!(
    FORECAST_BURN,
    "slo_agent_slo_forecast_burn_rate_ratio",
    Gauge,
    "The forecast burn rate: the forecast bad ratio over the allowed one"
);

pub static FAMILIES: [&Metric; 14] = [
    &ANOMALY_SCORE,
    &SIGNAL_VALUE,
    &SIGNAL_EXPECTED,
    &SIGNAL_LOWER,
    &SIGNAL_UPPER,
    &ANOMALY_SINCE,
    &QUOTA_LIMIT,
    &QUOTA_USAGE,
    &QUOTA_UTILISATION,
    &QUOTA_TIME_UNTIL,
    &QUOTA_GROWTH,
    &BUDGET_EXHAUSTION,
    &BUDGET_AT_END,
    &FORECAST_BURN,
];

/// The families of one view and the forecasts, in the order of [`FAMILIES`].
pub fn families(view: &SignalsView, forecasts: &Forecasts) -> Vec<FamilyView> {
    let mut out: Vec<FamilyView> = FAMILIES.iter().map(|m| FamilyView { metric: m, series: Vec::new() }).collect();
    for s in &view.series {
        let Some(m) = s.last() else { continue };
        let labels: Labels = vec![
            ("service", s.key.service.to_string()),
            ("origin", s.key.origin.to_string()),
            ("signal", s.signal.clone()),
            ("dimension", s.key.dim.dimension().to_string()),
            ("value", s.key.dim.value().to_string()),
        ];
        out[0].series.push((labels.clone(), f64::from(m.score)));
        let mut with_unit = labels.clone();
        with_unit.push(("unit", s.key.signal.unit().to_string()));
        out[1].series.push((with_unit, f64::from(m.value)));
        if m.expected.is_finite() {
            out[2].series.push((labels.clone(), f64::from(m.expected)));
            out[3].series.push((labels.clone(), f64::from(m.lo)));
            out[4].series.push((labels.clone(), f64::from(m.hi)));
        }
        if let Some(e) = &s.episode {
            out[5].series.push((labels, e.start_ms as f64 / 1000.0));
        }
    }
    for q in &forecasts.quotas {
        let labels: Labels =
            vec![("kind", q.kind.to_string()), ("scope", q.scope.to_string()), ("name", q.name.clone())];
        let o = &q.outlook;
        out[6].series.push((labels.clone(), o.limit));
        out[7].series.push((labels.clone(), o.current));
        out[8].series.push((labels.clone(), o.utilisation));
        if let Some(t) = o.reach_at_ms {
            out[9].series.push((labels.clone(), ((t - forecasts.at_ms) as f64 / 1000.0).max(0.0)));
        }
        out[10].series.push((labels, o.growth_per_day));
    }
    for b in &forecasts.budgets {
        let labels: Labels = vec![("slo", b.slo.clone()), ("service", b.service.clone())];
        let o = &b.outlook;
        if let Some(t) = o.exhaustion_at_ms {
            out[11].series.push((labels.clone(), ((t - forecasts.at_ms) as f64 / 1000.0).max(0.0)));
        }
        out[12].series.push((labels.clone(), o.expected_remaining_at_end));
        out[13].series.push((labels, o.forecast_burn_rate));
    }
    out
}

/// The SLOs' budget outlook families (`slo_agent_slo_*`), which the OTLP
/// exporter sends after `export::slo::FAMILIES`, in this order.
pub static BUDGET_FAMILIES: [&Metric; 3] = [&BUDGET_EXHAUSTION, &BUDGET_AT_END, &FORECAST_BURN];

/// Only the families of [`BUDGET_FAMILIES`], in its order.
pub fn budget_families(forecasts: &Forecasts) -> Vec<FamilyView> {
    let view = SignalsView::default();
    families(&view, forecasts)
        .into_iter()
        .filter(|f| BUDGET_FAMILIES.iter().any(|m| std::ptr::eq(*m, f.metric)))
        .collect()
}
