//! Forecasts and anomaly scores of time series: the algorithms behind
//! `slo-agent anomalies`, `slo-agent forecast` and the agent's live
//! detectors (issue 14). Pure computation on numbers and timestamps: no
//! I/O, no clock, no knowledge of SLOs — the layers above feed it series.
//!
//! | file | what |
//! | --- | --- |
//! | [`csv`] | `timestamp,value` rows read one at a time, errors by line |
//! | [`model`] | the forecaster: next H steps with a prediction interval |
//! | [`season`] | seasonal periods (detected or given) and their robust profiles |

pub mod csv;
pub mod model;
pub mod season;
