//! `GET /api/v1/hops`: where a request's time goes, hop by hop, and which
//! hop to blame when the site seems slow (`docs/api.md`, "When the site
//! seems slow").
//!
//! `?service=NAME[&route=/cart/{id}][&window=15m][&baseline=3h]` answers from
//! the logs: the decomposition the state thread published with the last
//! evaluation ([`crate::hops::HopsView`], shared minutes, no copy), merged
//! here on a blocking thread. `?probe=NAME[&window=…][&baseline=…]` is the
//! same answer for a configured probe's hop chain
//! ([`crate::hops::chain::ProbeChain`]), up to the agent's clock; 404 for a
//! probe that has not run.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error;
use super::state::ApiState;
use crate::hops::KEEP_MINUTES;
use crate::hops::answer::{from_logs, minutes_text};

/// The window's default, and its baseline's.
pub const DEFAULT_WINDOW_MINUTES: i64 = 15;
pub const DEFAULT_BASELINE_MINUTES: i64 = 180;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/hops", get(hops))
}

/// What was asked, checked.
#[derive(Debug, PartialEq)]
enum Ask {
    Logs { service: String, route: Option<String>, window: i64, baseline: i64 },
    Probe { name: String, window: i64, baseline: i64 },
}

/// The question, or the 400's message.
fn ask(q: &HashMap<String, String>) -> Result<Ask, String> {
    if let Some(k) = q.keys().find(|k| !["service", "route", "window", "baseline", "probe"].contains(&k.as_str())) {
        return Err(format!("unknown parameter `{k}`; use service, route, window, baseline (or probe)"));
    }
    let minutes = |key: &str, default: i64| -> Result<i64, String> {
        let Some(v) = q.get(key) else { return Ok(default) };
        match crate::yaml::values::parse_duration(v) {
            Some(d) if d.as_secs() % 60 == 0 && d.as_secs() >= 60 => Ok((d.as_secs() / 60) as i64),
            _ => Err(format!("`{key}` must be whole minutes, like 15m or 3h (got {v:?})")),
        }
    };
    let (window, baseline) =
        (minutes("window", DEFAULT_WINDOW_MINUTES)?, minutes("baseline", DEFAULT_BASELINE_MINUTES)?);
    if window + baseline > KEEP_MINUTES {
        return Err(format!(
            "`window` and `baseline` together reach back at most {} (the minutes kept); asked {} + {}",
            minutes_text(KEEP_MINUTES),
            minutes_text(window),
            minutes_text(baseline)
        ));
    }
    match (q.get("service").filter(|s| !s.is_empty()), q.get("probe").filter(|p| !p.is_empty())) {
        (Some(_), Some(_)) => Err("ask for either `service` (from the logs) or `probe`, not both".into()),
        (None, Some(p)) if q.contains_key("route") => {
            Err(format!("`route` is for the logs; a probe's chain ({p:?}) is one endpoint"))
        }
        (None, Some(p)) => Ok(Ask::Probe { name: p.clone(), window, baseline }),
        (None, None) => Err("`service` is required (or `probe`)".into()),
        (Some(service), None) => {
            let route = q.get("route").filter(|r| !r.is_empty()).cloned();
            Ok(Ask::Logs { service: service.clone(), route, window, baseline })
        }
    }
}

async fn hops(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (service, route, window, baseline) = match ask(&q) {
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        Ok(Ask::Probe { name, window, baseline }) => {
            let now = s.clock.now_ms();
            return match s.probes.chain_answer(&name, now, window, baseline) {
                Some(a) => axum::Json(a).into_response(),
                None => {
                    let known = s.probes.chain_names();
                    let known = if known.is_empty() {
                        "this agent has run no probe yet (`probes:` in agent.yaml)".to_string()
                    } else {
                        format!("probes: {}", known.join(", "))
                    };
                    error(StatusCode::NOT_FOUND, &format!("no probe hop chain named {name:?}; {known}"))
                }
            };
        }
        Ok(Ask::Logs { service, route, window, baseline }) => (service, route, window, baseline),
    };
    let view = s.snapshot().hops.clone();
    if !view.has_service(&service) {
        return error(
            StatusCode::NOT_FOUND,
            &format!(
                "no hop data for service {service:?} in the last {}: no CloudFront, API Gateway or Lambda record of it with the timings the decomposition needs",
                minutes_text(KEEP_MINUTES)
            ),
        );
    }
    super::answered_blocking(move || from_logs(&view, &service, route.as_deref(), window, baseline)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn questions_and_their_refusals() {
        assert_eq!(
            ask(&q(&[("service", "shop")])),
            Ok(Ask::Logs { service: "shop".into(), route: None, window: 15, baseline: 180 })
        );
        assert_eq!(
            ask(&q(&[("service", "shop"), ("route", "/cart/{id}"), ("window", "5m"), ("baseline", "1h")])),
            Ok(Ask::Logs { service: "shop".into(), route: Some("/cart/{id}".into()), window: 5, baseline: 60 })
        );
        assert_eq!(
            ask(&q(&[("probe", "checkout")])),
            Ok(Ask::Probe { name: "checkout".into(), window: 15, baseline: 180 })
        );
        assert_eq!(
            ask(&q(&[("probe", "checkout"), ("window", "5m"), ("baseline", "1h")])),
            Ok(Ask::Probe { name: "checkout".into(), window: 5, baseline: 60 })
        );
        for bad in [
            q(&[]),
            q(&[("route", "/a")]),
            q(&[("service", "s"), ("probe", "p")]),
            q(&[("probe", "p"), ("route", "/a")]),
            q(&[("probe", "p"), ("baseline", "6h")]),
            q(&[("service", "s"), ("window", "90s")]),
            q(&[("service", "s"), ("window", "soon")]),
            q(&[("service", "s"), ("baseline", "6h")]),
            q(&[("service", "s"), ("servce", "x")]),
        ] {
            assert!(ask(&bad).is_err(), "{bad:?}");
        }
    }
}
