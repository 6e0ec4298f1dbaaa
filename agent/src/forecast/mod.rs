//! Forecasts and anomaly scores of time series: the algorithms behind
//! `slo-agent anomalies` and `slo-agent forecast`, and of the agent's live
//! detectors once they land (issue 14). Pure computation on numbers and timestamps: no
//! I/O, no clock, no knowledge of SLOs — the layers above feed it series.
//!
//! | file | what |
//! | --- | --- |
//! | [`anomaly`] | the streaming, causal anomaly detector of one series |
//! | [`csv`] | `timestamp,value` rows read one at a time, errors by line |
//! | [`model`] | the forecaster: next H steps with a prediction interval |
//! | [`outlook`] | one SLO's error-budget outlook: remaining, burn, exhaustion, at the window's end |
//! | [`quota`] | when a saturating quantity reaches its quota; per-second peaks, Little's law |
//! | [`season`] | seasonal periods (detected or given) and their robust profiles |

pub mod anomaly;
pub mod csv;
pub mod model;
pub mod outlook;
pub mod quota;
pub mod season;
