//! `GET /api/v1/anomalies` and `GET /api/v1/forecasts` (`docs/api.md`,
//! "Anomalies and forecasts"): the live signals the state thread published
//! with the last closed minute, answered on a blocking thread.
//!
//! `/api/v1/anomalies?[service=][&signal=][&dimension=][&min_score=]`:
//! anomalies with their evidence, "are we under attack?" per service, and
//! the business signals against the days before.
//!
//! `/api/v1/forecasts?[service=][&signal=][&dimension=][&horizon=24h]`: the
//! quota outlooks and each SLO's budget outlook the state thread renews
//! every five minutes; with `service`, each of its series' hourly forecast
//! over `horizon` (at most 7 days) from its hourly history.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::error;
use super::state::ApiState;
use crate::signals::{answer, forecasts};

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/anomalies", get(anomalies)).route("/api/v1/forecasts", get(forecasts))
}

const DIMENSIONS: [&str; 5] = ["all", "edge_location", "region", "client_class", "slo"];

/// The question, or the 400's message.
fn ask(q: &HashMap<String, String>) -> Result<answer::Query, String> {
    if let Some(k) = q.keys().find(|k| !["service", "signal", "dimension", "min_score"].contains(&k.as_str())) {
        return Err(format!("unknown parameter `{k}`; use service, signal, dimension, min_score"));
    }
    let text = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let dimension = text("dimension");
    if let Some(d) = &dimension
        && !DIMENSIONS.contains(&d.as_str())
    {
        return Err(format!("`dimension` is one of {} (got {d:?})", DIMENSIONS.join(", ")));
    }
    let min_score = match text("min_score") {
        None => None,
        Some(v) => match v.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Some(x),
            _ => return Err(format!("`min_score` is a number from 0 to 1 (got {v:?})")),
        },
    };
    Ok(answer::Query { service: text("service"), signal: text("signal"), dimension, min_score })
}

fn ask_forecasts(q: &HashMap<String, String>) -> Result<forecasts::Query, String> {
    if let Some(k) = q.keys().find(|k| !["service", "signal", "dimension", "horizon"].contains(&k.as_str())) {
        return Err(format!("unknown parameter `{k}`; use service, signal, dimension, horizon"));
    }
    let text = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let horizon_hours = match text("horizon") {
        None => None,
        Some(v) => match crate::yaml::values::parse_duration(&v) {
            Some(d) if d.as_secs() % 3600 == 0 && d.as_secs() >= 3600 && d.as_secs() <= 7 * 86_400 => {
                Some((d.as_secs() / 3600) as usize)
            }
            _ => return Err(format!("`horizon` is whole hours up to 7d, like 24h or 3d (got {v:?})")),
        },
    };
    if (q.contains_key("signal") || q.contains_key("dimension")) && text("service").is_none() {
        return Err("`signal` and `dimension` choose among a service's series: give `service` too".into());
    }
    Ok(forecasts::Query {
        service: text("service"),
        signal: text("signal"),
        dimension: text("dimension"),
        horizon_hours,
    })
}

async fn forecasts(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let query = match ask_forecasts(&q) {
        Ok(q) => q,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let snap = s.snapshot();
    let (view, f) = (snap.signals.clone(), snap.forecasts.clone());
    super::answered_blocking(move || forecasts::answer(&view, &f, &query)).await
}

async fn anomalies(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let query = match ask(&q) {
        Ok(q) => q,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let view = s.snapshot().signals.clone();
    super::answered_blocking(move || answer::anomalies(&view, &query)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn questions_and_their_refusals() {
        assert_eq!(ask(&q(&[])), Ok(answer::Query::default()));
        let a = ask(&q(&[("service", "shop"), ("dimension", "region"), ("min_score", "0.3")])).unwrap();
        assert_eq!(a.service.as_deref(), Some("shop"));
        assert_eq!(a.min_score, Some(0.3));
        for bad in [q(&[("dimension", "country")]), q(&[("min_score", "2")]), q(&[("servce", "x")])] {
            assert!(ask(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(ask_forecasts(&q(&[("service", "shop"), ("horizon", "3d")])).unwrap().horizon_hours, Some(72));
        for bad in [q(&[("horizon", "90m")]), q(&[("horizon", "8d")]), q(&[("signal", "requests")]), q(&[("x", "1")])] {
            assert!(ask_forecasts(&bad).is_err(), "{bad:?}");
        }
    }
}
