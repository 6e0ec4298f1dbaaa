//! Forecasts over the live signals: "will we hit a quota?" for every
//! saturating series (Lambda concurrency per function and per account, API
//! Gateway requests per second per stage and per account, CloudFront
//! requests per second and bandwidth per distribution), against the
//! configured quotas (`signals.quotas`, default: the AWS default quotas),
//! through [`crate::forecast::quota::outlook`].
//!
//! A function without reserved concurrency (`signals.quotas.functions`)
//! is measured against its account's concurrency, which it shares; the
//! account's own series (`account/<id>`) adds every function's busy time
//! second by second. A stage without a configured throttle is measured
//! against the account's rate.

use super::config::Quotas;
use super::{Signal, SignalsView};
use crate::forecast::quota::{QuotaOutlook, outlook};

/// The service name of an account's aggregate series.
pub fn account_service(id: &str) -> String {
    format!("account/{id}")
}

/// One quota and its outlook.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaEntry {
    /// `lambda_concurrency`, `apigateway_rps`, `cloudfront_rps`, `cloudfront_bandwidth`.
    pub kind: &'static str,
    /// `function`, `account`, `stage`, `distribution`.
    pub scope: &'static str,
    /// The function, stage or distribution (the service), or the account id.
    pub name: String,
    /// The service whose deploys it concerns (the account's id for an account).
    pub service: String,
    /// Where the limit comes from: `aws_default` or `configured`.
    pub limit_source: &'static str,
    pub unit: &'static str,
    pub outlook: QuotaOutlook,
}

impl QuotaEntry {
    /// The alert subject and API key: `<kind>/<scope>/<name>`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.kind, self.scope, self.name)
    }
}

/// Every quota's outlook at `at_ms`.
pub fn quotas(view: &SignalsView, q: &Quotas, at_ms: i64) -> Vec<QuotaEntry> {
    let mut out = Vec::new();
    for s in view.series.iter().filter(|s| s.key.dim == super::Dim::All) {
        let service = &*s.key.service;
        let account = service.strip_prefix("account/");
        let (kind, scope, name, limit, source, unit) = match (&s.key.signal, s.key.origin, account) {
            (Signal::Concurrency, "lambda", Some(id)) => (
                "lambda_concurrency",
                "account",
                id,
                q.account_limits(id).0,
                default_or(q, id, true),
                "concurrent_executions",
            ),
            (Signal::Concurrency, "lambda", None) => match q.functions.get(service) {
                Some(&l) => ("lambda_concurrency", "function", service, l, "configured", "concurrent_executions"),
                None => {
                    let id = q.account_of(service);
                    let src = default_or(q, id, true);
                    ("lambda_concurrency", "function", service, q.account_limits(id).0, src, "concurrent_executions")
                }
            },
            (Signal::PeakRps, "apigateway", Some(id)) => (
                "apigateway_rps",
                "account",
                id,
                q.account_limits(id).1,
                default_or(q, id, false),
                "requests_per_second",
            ),
            (Signal::PeakRps, "apigateway", None) => match q.stages.get(service) {
                Some(&l) => ("apigateway_rps", "stage", service, l, "configured", "requests_per_second"),
                None => {
                    let id = q.account_of(service);
                    let src = default_or(q, id, false);
                    ("apigateway_rps", "stage", service, q.account_limits(id).1, src, "requests_per_second")
                }
            },
            (Signal::PeakRps, "cloudfront" | "cloudfront-realtime", None) => {
                let c = q.distributions.get(service).and_then(|d| d.0);
                let src = if c.is_some() || q.cloudfront_rps != super::config::AWS_CLOUDFRONT_RPS {
                    "configured"
                } else {
                    "aws_default"
                };
                ("cloudfront_rps", "distribution", service, c.unwrap_or(q.cloudfront_rps), src, "requests_per_second")
            }
            (Signal::PeakBandwidth, "cloudfront" | "cloudfront-realtime", None) => {
                let c = q.distributions.get(service).and_then(|d| d.1);
                let default = super::config::AWS_CLOUDFRONT_GBPS * 1e9;
                let src = if c.is_some() || q.cloudfront_bps != default { "configured" } else { "aws_default" };
                ("cloudfront_bandwidth", "distribution", service, c.unwrap_or(q.cloudfront_bps), src, "bits_per_second")
            }
            _ => continue,
        };
        let mut history: Vec<(i64, f64)> = s.hours.iter().map(|&(t, v)| (t, f64::from(v))).collect();
        if let Some((t, v, _)) = s.current_hour {
            history.push((t, v));
        }
        history.extend(s.recent.iter().map(|m| (m.minute_ms, f64::from(m.value))));
        out.push(QuotaEntry {
            kind,
            scope,
            name: name.to_string(),
            service: account.map_or_else(|| service.to_string(), str::to_string),
            limit_source: source,
            unit,
            outlook: outlook(&history, limit, at_ms, q.horizon_ms),
        });
    }
    out
}

fn default_or(q: &Quotas, account: &str, lambda: bool) -> &'static str {
    let configured = q.accounts.iter().any(|a| a.id == account)
        || if lambda {
            q.lambda_concurrency != super::config::AWS_LAMBDA_CONCURRENCY
        } else {
            q.apigateway_rps != super::config::AWS_APIGATEWAY_RPS
        };
    if configured { "configured" } else { "aws_default" }
}

/// One SLO's error-budget outlook ([`crate::forecast::outlook::budget`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetEntry {
    pub slo: String,
    pub service: String,
    pub objective: f64,
    pub outlook: crate::forecast::outlook::BudgetOutlook,
}

/// Every forecast the agent keeps current: quotas and budgets, as of `at_ms`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Forecasts {
    pub at_ms: i64,
    pub quotas: Vec<QuotaEntry>,
    pub budgets: Vec<BudgetEntry>,
}

/// `GET /api/v1/forecasts`: what was asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub service: Option<String>,
    pub signal: Option<String>,
    pub dimension: Option<String>,
    /// Hours of series forecast (default [`DEFAULT_HORIZON_HOURS`]).
    pub horizon_hours: Option<usize>,
}

pub const DEFAULT_HORIZON_HOURS: usize = 24;
pub const MAX_HORIZON_HOURS: usize = 7 * 24;
/// Series forecast in one answer at most.
pub const MAX_SERIES_FORECASTS: usize = 50;

#[derive(Debug, serde::Serialize)]
pub struct Answer {
    pub at: Option<String>,
    pub budgets: Vec<BudgetOut>,
    pub quotas: Vec<QuotaOut>,
    /// With `service`: each of its series' hourly forecast.
    pub series: Vec<SeriesForecast>,
}

#[derive(Debug, serde::Serialize)]
pub struct BudgetOut {
    pub slo: String,
    pub service: String,
    pub objective: f64,
    pub remaining_now: f64,
    pub forecast_burn_rate: f64,
    pub exhaustion_at: Option<String>,
    pub time_to_exhaustion_seconds: Option<f64>,
    pub window_end: String,
    pub expected_remaining_at_end: f64,
    pub basis: &'static str,
}

#[derive(Debug, serde::Serialize)]
pub struct QuotaOut {
    pub kind: &'static str,
    pub scope: &'static str,
    pub name: String,
    pub service: String,
    pub unit: &'static str,
    pub limit: f64,
    pub limit_source: &'static str,
    pub current: f64,
    pub utilisation: f64,
    pub peak_forecast: f64,
    pub growth_per_day: f64,
    pub reach_at: Option<String>,
    pub time_until_seconds: Option<f64>,
    pub reach_early_at: Option<String>,
    pub horizon_end: String,
    pub basis: &'static str,
}

#[derive(Debug, serde::Serialize)]
pub struct SeriesForecast {
    pub service: String,
    pub origin: String,
    pub signal: String,
    pub dimension: String,
    pub value: String,
    pub unit: &'static str,
    /// Hours of history the forecast read.
    pub history_hours: usize,
    pub seasons: Vec<usize>,
    pub points: Vec<Point>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Point {
    pub at: String,
    pub forecast: f64,
    pub lo: f64,
    pub hi: f64,
}

pub fn answer(view: &SignalsView, f: &Forecasts, q: &Query) -> Answer {
    use crate::timefmt::rfc3339;
    let at = f.at_ms;
    let keep = |service: &str| q.service.as_deref().is_none_or(|s| s == service);
    let budgets = f
        .budgets
        .iter()
        .filter(|b| keep(&b.service))
        .map(|b| {
            let o = &b.outlook;
            BudgetOut {
                slo: b.slo.clone(),
                service: b.service.clone(),
                objective: b.objective,
                remaining_now: o.remaining_now,
                forecast_burn_rate: o.forecast_burn_rate,
                exhaustion_at: o.exhaustion_at_ms.map(rfc3339),
                time_to_exhaustion_seconds: o.exhaustion_at_ms.map(|t| ((t - at) as f64 / 1000.0).max(0.0)),
                window_end: rfc3339(o.end_ms),
                expected_remaining_at_end: o.expected_remaining_at_end,
                basis: o.basis,
            }
        })
        .collect();
    let quotas = f
        .quotas
        .iter()
        .filter(|e| keep(&e.service) || keep(&e.name))
        .map(|e| {
            let o = &e.outlook;
            QuotaOut {
                kind: e.kind,
                scope: e.scope,
                name: e.name.clone(),
                service: e.service.clone(),
                unit: e.unit,
                limit: o.limit,
                limit_source: e.limit_source,
                current: o.current,
                utilisation: o.utilisation,
                peak_forecast: o.peak,
                growth_per_day: o.growth_per_day,
                reach_at: o.reach_at_ms.map(rfc3339),
                time_until_seconds: o.reach_at_ms.map(|t| ((t - at) as f64 / 1000.0).max(0.0)),
                reach_early_at: o.reach_early_at_ms.map(rfc3339),
                horizon_end: rfc3339(o.horizon_end_ms),
                basis: o.basis,
            }
        })
        .collect();
    let mut series = Vec::new();
    if let Some(service) = &q.service {
        let horizon = q.horizon_hours.unwrap_or(DEFAULT_HORIZON_HOURS).clamp(1, MAX_HORIZON_HOURS);
        for s in view.series.iter().filter(|s| {
            &*s.key.service == service
                && q.signal.as_deref().is_none_or(|x| s.signal == x)
                && q.dimension.as_deref().is_none_or(|x| s.key.dim.dimension() == x)
        }) {
            if series.len() >= MAX_SERIES_FORECASTS {
                break;
            }
            let rows: Vec<(i64, f64)> = s.hours.iter().map(|&(t, v)| (t, f64::from(v))).collect();
            let opts = crate::forecast::model::Options { horizon, ..Default::default() };
            let (points, seasons, error) = match crate::forecast::model::forecast(&rows, &opts) {
                Ok(fc) => (
                    fc.points
                        .iter()
                        .map(|p| Point { at: rfc3339(p.ts_ms), forecast: p.forecast, lo: p.lo, hi: p.hi })
                        .collect(),
                    fc.seasons,
                    None,
                ),
                Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
            };
            series.push(SeriesForecast {
                service: s.key.service.to_string(),
                origin: s.key.origin.to_string(),
                signal: s.signal.clone(),
                dimension: s.key.dim.dimension().into(),
                value: s.key.dim.value().into(),
                unit: s.key.signal.unit(),
                history_hours: rows.len(),
                seasons,
                points,
                error,
            });
        }
    }
    Answer { at: (at > 0).then(|| rfc3339(at)), budgets, quotas, series }
}
