//! `GET /api/v1/outage?service=NAME`: "is it partial or total?"
//! (`docs/operations.md`, "Is it partial or total?"): the verdict of [`crate::outage::assess`] over the
//! snapshot's live signals and hop minutes and the journeys' last runs, up
//! to the agent's clock; 400 without a service, 404 for a service the agent
//! knows nothing of. The gauges `slo_agent_outage_verdict` and
//! `slo_agent_outage_failing_share` come from the same assessment, made by
//! the runtime at each evaluation (`Snapshot::outage`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::error;
use super::state::ApiState;
use crate::outage::{self, JourneyCheck, ProbeCheck};
use crate::synthetic::journey::JourneyRun;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/outage", get(answer))
}

/// The longest service name asked about (names the agent keeps are shorter).
const MAX_SERVICE_LEN: usize = 256;

/// The service asked about, or the 400's message.
fn ask(q: &HashMap<String, String>) -> Result<String, String> {
    if let Some(k) = q.keys().find(|k| k.as_str() != "service") {
        return Err(format!("unknown parameter `{}`; use service", crate::untrusted::Escaped(k)));
    }
    match q.get("service").filter(|s| !s.is_empty()) {
        None => Err("`service` is required: /api/v1/outage?service=NAME".into()),
        Some(s) if s.len() > MAX_SERVICE_LEN || s.chars().any(char::is_control) => {
            Err(format!("`service` is a name of at most {MAX_SERVICE_LEN} characters without control characters"))
        }
        Some(s) => Ok(s.clone()),
    }
}

/// A journey's last run as the verdict reads it.
pub fn journey_check(r: &JourneyRun) -> JourneyCheck {
    let failed = r.failed_step.as_ref().and_then(|name| r.steps.iter().find(|s| &s.name == name));
    JourneyCheck {
        journey: r.name.clone(),
        service: r.service.clone(),
        region: r.region.clone(),
        started_ms: r.started_ms,
        failed_step: r.failed_step.clone(),
        http_status: failed.and_then(|s| s.http_status),
    }
}

/// The configured probes' last outcomes, hop by hop in each chain's order.
pub fn probe_checks(s: &ApiState) -> Vec<ProbeCheck> {
    let outcomes = s.probes.outcomes();
    s.probe_chains
        .iter()
        .filter_map(|(probe, service, hops)| {
            let mut region = String::new();
            let hops: Vec<(String, bool, Option<u16>)> = hops
                .iter()
                .filter_map(|hop| {
                    let o = outcomes.iter().find(|o| &o.probe == probe && &o.hop == hop)?;
                    region.clone_from(&o.region);
                    Some((hop.clone(), o.success, o.last().status))
                })
                .collect();
            (!hops.is_empty()).then(|| ProbeCheck { probe: probe.clone(), service: service.clone(), region, hops })
        })
        .collect()
}

async fn answer(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let service = match ask(&q) {
        Ok(service) => service,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let snap = s.snapshot();
    let (journeys, probes) = s.synthetic_checks();
    if !outage::knows(&service, &snap.signals, &snap.hops, &journeys, &probes) {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no traffic, hop data or journey of service {service:?} is known to this agent"),
        );
    }
    let (cfg, now) = (s.outage.clone(), s.clock.now_ms());
    super::answered_blocking(move || outage::assess(&cfg, &service, now, &snap.signals, &snap.hops, &journeys, &probes))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn questions_and_their_refusals() {
        assert_eq!(ask(&q(&[("service", "shop")])), Ok("shop".into()));
        let long = "x".repeat(MAX_SERVICE_LEN + 1);
        for bad in [
            q(&[]),
            q(&[("service", "")]),
            q(&[("servce", "shop")]),
            q(&[("service", "shop"), ("window", "5m")]),
            q(&[("service", "a\nb")]),
            q(&[("service", "\u{0}")]),
            q(&[("service", long.as_str())]),
        ] {
            assert!(ask(&bad).is_err(), "{bad:?}");
        }
    }
}
