//! The live signals as metric families: per series its last closed
//! minute's anomaly score, value and the detector's band. Label values come
//! from bounded sets: services (at most 256), origins, signal names,
//! dimensions and their values (edge locations capped per service by
//! `signals.max_edge_locations`, regions, client classes, SLO names); the
//! number of series is capped by `signals.max_series`.

use super::SignalsView;
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

pub static FAMILIES: [&Metric; 6] =
    [&ANOMALY_SCORE, &SIGNAL_VALUE, &SIGNAL_EXPECTED, &SIGNAL_LOWER, &SIGNAL_UPPER, &ANOMALY_SINCE];

/// The families of one view, in the order of [`FAMILIES`].
pub fn families(view: &SignalsView) -> Vec<FamilyView> {
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
    out
}
