//! `GET /api/v1/anomalies` and `GET /api/v1/forecasts` (`docs/api.md`,
//! "Anomalies and forecasts"): the live signals the state thread published
//! with the last closed minute, answered on a blocking thread.
//!
//! `/api/v1/anomalies?[service=][&signal=][&dimension=][&min_score=]`:
//! anomalies with their evidence, "are we under attack?" per service, and
//! the business signals against the days before.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error;
use super::state::ApiState;
use crate::signals::answer;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/anomalies", get(anomalies))
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

async fn anomalies(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let query = match ask(&q) {
        Ok(q) => q,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let view = s.snapshot().signals.clone();
    match tokio::task::spawn_blocking(move || answer::anomalies(&view, &query)).await {
        Ok(a) => axum::Json(a).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
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
    }
}
