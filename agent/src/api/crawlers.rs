//! `GET /api/v1/crawlers?service=X` (`docs/api.md`, "Are the crawlers
//! getting our pages?"): per crawler, over the last day and week, the
//! success ratio, latency percentiles, 4xx and 5xx by path prefix against
//! the browsers', and the answers to `/robots.txt`; read off the view the
//! state thread published in the snapshot (`crate::crawlers`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error;
use super::state::ApiState;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/crawlers", get(crawlers))
}

/// The service asked about, or the 400's message.
fn ask(q: &HashMap<String, String>) -> Result<String, String> {
    if let Some(k) = q.keys().find(|k| k.as_str() != "service") {
        return Err(format!("unknown parameter `{k}`; use service"));
    }
    match q.get("service").filter(|v| !v.is_empty()) {
        Some(s) => Ok(s.clone()),
        None => Err("give `service`: /api/v1/crawlers?service=NAME".into()),
    }
}

async fn crawlers(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let service = match ask(&q) {
        Ok(s) => s,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let snap = s.snapshot();
    let known = snap.crawlers.service(&service).is_some() || snap.statuses.iter().any(|st| st.slo.service == service);
    if !known {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no service named {service:?} (no SLO, and no crawler or browser seen)"),
        );
    }
    let windows = match snap.crawlers.service(&service) {
        Some(c) => serde_json::to_value(&c.windows).unwrap_or_default(),
        // A service of the SLOs whose logs named no crawler or browser yet.
        None => serde_json::json!([
            {"window": "1d", "crawlers": [], "browsers": null},
            {"window": "7d", "crawlers": [], "browsers": null},
        ]),
    };
    let source = snap.crawlers.service(&service).map(|c| c.source);
    axum::Json(serde_json::json!({
        "service": service,
        "at": crate::timefmt::rfc3339(snap.at_ms),
        "source": source,
        "windows": windows,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_service_is_required_and_nothing_else_is_taken() {
        assert_eq!(ask(&q(&[("service", "shop")])), Ok("shop".to_string()));
        for bad in [q(&[]), q(&[("service", "")]), q(&[("service", "shop"), ("window", "1d")])] {
            assert!(ask(&bad).is_err(), "{bad:?}");
        }
    }
}
