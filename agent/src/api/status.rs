//! `GET /status` (HTML) and `GET /status.json`: the public status page,
//! open to anyone even when tokens are configured, read-only
//! ([`crate::status`] decides what it shows). `GET /api/v1/status`: the
//! same for operators (a read), each component with its internals — its
//! service, SLOs, firing alerts, journey runs and the crawler figures of its
//! service — which the public answers never carry.
//!
//! A request never reads the store: the components' minutes are kept in
//! memory ([`StatusBoard`]), counted by the state thread once per evaluated
//! minute ([`count`]) and written to the store's `status_days` table then.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::state::ApiState;
use crate::status::{ComponentAt, ComponentState, StatusConfig, Uptime};

/// The page's configuration and the components' minutes per state and day.
#[derive(Debug, Default)]
pub struct StatusBoard {
    pub config: Option<StatusConfig>,
    pub uptime: Mutex<Uptime>,
    /// The last rendering, while its inputs are the same.
    rendered: Mutex<Option<Rendered>>,
    /// Where component states and incidents are pushed (`status.push`).
    pub push: Option<Arc<super::status_push::StatusPusher>>,
}

/// One rendering and what it was made of: the snapshot's time, the
/// incidents' generation, the minute counted last, the journeys' runs kept.
#[derive(Debug, Clone)]
struct Rendered {
    key: (i64, u64, i64, u64),
    html: Bytes,
    json: Bytes,
}

impl StatusBoard {
    pub fn new(config: Option<StatusConfig>, uptime: Uptime) -> StatusBoard {
        StatusBoard { config, uptime: Mutex::new(uptime), rendered: Mutex::new(None), push: None }
    }

    pub fn with_push(mut self, push: Option<Arc<super::status_push::StatusPusher>>) -> StatusBoard {
        self.push = push;
        self
    }
}

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/status", get(page_html))
        .route("/status.json", get(page_json))
        .route("/api/v1/status", get(operators))
}

/// The recent runs of the journeys that components show, newest first.
fn journey_runs(s: &ApiState, cfg: &StatusConfig) -> crate::status::JourneyRuns {
    cfg.components
        .iter()
        .filter_map(|c| c.journey.as_ref())
        .map(|j| (j.clone(), s.journeys.recent(j).into_iter().map(|(_, st)| st).collect()))
        .collect()
}

/// The page at `now_ms` from `snap`, the incidents and the kept minutes.
fn build(
    s: &ApiState,
    cfg: &StatusConfig,
    snap: &crate::api::Snapshot,
    incidents: &crate::incident::Incidents,
    now_ms: i64,
) -> crate::status::Page {
    let list = incidents.list(now_ms - crate::incident::RECENT_MS);
    let journeys = journey_runs(s, cfg);
    let at = crate::status::Now {
        statuses: &snap.statuses,
        alerts: &snap.alerts,
        journeys: &journeys,
        outage: &snap.outage,
        now_ms,
    };
    let uptime = s.status.uptime.lock().unwrap_or_else(|e| e.into_inner());
    crate::status::page(cfg, &at, &list, &uptime)
}

/// The page's JSON, as `/status.json` answers it; `None` without `status:`.
pub fn public_json(s: &ApiState) -> Option<Bytes> {
    page(s).map(|(_, json)| json)
}

/// The page as HTML and JSON: the last rendering while nothing it shows
/// changed (a new evaluation, an incident change, a counted minute).
fn page(s: &ApiState) -> Option<(Bytes, Bytes)> {
    let cfg = s.status.config.as_ref()?;
    let snap = s.snapshot();
    let now = s.clock.now_ms();
    let incidents = s.incidents.read();
    let key = (snap.at_ms, incidents.generation(), now.div_euclid(60_000), s.journeys.generation());
    if let Some(r) = s.status.rendered.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        && r.key == key
    {
        return Some((r.html.clone(), r.json.clone()));
    }
    let p = build(s, cfg, &snap, &incidents, now);
    drop(incidents);
    // Bytes: every answer until the next change shares them, uncopied.
    let r = Rendered { key, html: Bytes::from(crate::status::html(&p)), json: Bytes::from(crate::status::json(&p)) };
    let out = (r.html.clone(), r.json.clone());
    *s.status.rendered.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    Some(out)
}

const NOT_CONFIGURED: &str = "no status page is configured (`status:` in agent.yaml; see docs/status-page.md)";

async fn page_html(State(s): State<Arc<ApiState>>) -> Response {
    match page(&s) {
        Some((html, _)) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'"),
            ],
            html,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], NOT_CONFIGURED)
            .into_response(),
    }
}

async fn page_json(State(s): State<Arc<ApiState>>) -> Response {
    match page(&s) {
        Some((_, json)) => {
            ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-cache")], json).into_response()
        }
        None => super::error(StatusCode::NOT_FOUND, NOT_CONFIGURED),
    }
}

/// `GET /api/v1/status`: the public page's JSON, each component with an
/// `internal` object (`docs/status-page.md`, "For operators").
async fn operators(State(s): State<Arc<ApiState>>) -> Response {
    let Some(cfg) = s.status.config.as_ref() else {
        return super::error(StatusCode::NOT_FOUND, NOT_CONFIGURED);
    };
    let snap = s.snapshot();
    let p = build(&s, cfg, &snap, &s.incidents.read(), s.clock.now_ms());
    let mut v = serde_json::to_value(&p).unwrap_or_default();
    if let Some(list) = v.get_mut("components").and_then(|c| c.as_array_mut()) {
        for (view, c) in list.iter_mut().zip(&cfg.components) {
            if let Some(o) = view.as_object_mut() {
                o.insert("internal".into(), internal(&s, &snap, c));
            }
        }
    }
    axum::Json(v).into_response()
}

/// What operators see of one component beyond the public page.
fn internal(s: &ApiState, snap: &crate::api::Snapshot, c: &crate::status::ComponentConfig) -> serde_json::Value {
    use serde_json::json;
    let slos: Vec<&str> = snap.statuses.iter().filter(|st| c.decides(&st.slo)).map(|st| st.slo.name.as_str()).collect();
    let firing: Vec<serde_json::Value> = snap
        .alerts
        .iter()
        .filter(|a| a.phase == crate::alert::Phase::Firing && slos.contains(&a.slo.as_str()))
        .map(|a| json!({"slo": a.slo, "severity": a.kind.as_str()}))
        .collect();
    let crawlers = snap.crawlers.service(&c.service).map(|cr| json!({"source": cr.source, "windows": cr.windows}));
    let runs = c.journey.as_ref().map(|j| {
        s.journeys
            .recent(j)
            .into_iter()
            .map(|(at, st)| json!({"started_at": crate::timefmt::rfc3339(at), "status": st.as_str()}))
            .collect::<Vec<_>>()
    });
    json!({
        "kind": if c.journey.is_some() { "journey" } else { "service" },
        "service": c.service,
        "journey": c.journey,
        "slos": slos,
        "firing_alerts": firing,
        "journey_runs": runs,
        "crawlers": crawlers,
    })
}

/// Every component's state at `snap` (the state thread's evaluation);
/// empty without `status:`.
pub fn component_states(s: &ApiState, snap: &crate::api::Snapshot) -> Vec<ComponentAt> {
    let Some(cfg) = &s.status.config else { return Vec::new() };
    let journeys = journey_runs(s, cfg);
    let now = crate::status::Now {
        statuses: &snap.statuses,
        alerts: &snap.alerts,
        journeys: &journeys,
        outage: &snap.outage,
        now_ms: snap.at_ms,
    };
    crate::status::component_states(cfg, &now)
}

/// Count the evaluated minute of every component (`components`, from
/// [`component_states`] of `snap`; once per minute) and store the changed
/// days; prune days older than 90 at the first minute of a day. Queue the
/// components' changed states for `status.push`. Blocking; the state thread
/// calls it after each evaluation.
pub fn count(s: &ApiState, snap: &crate::api::Snapshot, components: &[ComponentAt]) {
    if s.status.config.is_none() {
        return;
    }
    let states: Vec<(&str, ComponentState)> =
        components.iter().filter(|c| c.counted).map(|c| (c.name.as_str(), c.state)).collect();
    if let Some(p) = &s.status.push {
        p.on_evaluation(&s.store, &s.telemetry, &states, snap.at_ms);
    }
    let rows = {
        let mut u = s.status.uptime.lock().unwrap_or_else(|e| e.into_inner());
        let rows = u.count(&states, snap.at_ms);
        if !rows.is_empty() && snap.at_ms.rem_euclid(86_400_000) < 60_000 {
            u.prune(snap.at_ms.div_euclid(86_400_000) - crate::status::DAYS);
        }
        rows
    };
    if rows.is_empty() {
        return;
    }
    let before_day = snap.at_ms.div_euclid(86_400_000) - crate::status::DAYS;
    if let Err(e) = s.store.put_status_days(&rows, before_day) {
        tracing::warn!(error = %e, "the status page's minutes could not be stored; kept in memory");
    }
}
