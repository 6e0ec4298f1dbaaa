//! Forecasts and anomaly scores of time series: the algorithms behind
//! `slo-agent anomalies`, `slo-agent forecast` and the agent's live
//! detectors (issue 14). Pure computation on numbers and timestamps: no
//! I/O, no clock, no knowledge of SLOs — the layers above feed it series.
//!
//! | file | what |
//! | --- | --- |
//! | [`anomaly`] | the streaming, causal anomaly detector of one series |
//! | [`csv`] | `timestamp,value` rows read one at a time, errors by line |

pub mod anomaly;
pub mod csv;
