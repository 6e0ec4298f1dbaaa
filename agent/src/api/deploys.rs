//! Deploy events: `POST /api/v1/deploys` (role `deploy`) records one,
//! `GET /api/v1/deploys[/{id}]` lists them with what they cost
//! ([`crate::freeze::deploys`]), and `GET /api/v1/annotations` shows them
//! as Grafana annotations (a JSON array with `time`, `timeEnd`, `title`,
//! `text`, `tags`, which the Infinity and JSON API data sources read).
//!
//! A deploy is stored with the audit entry of the call that recorded it in
//! one transaction, then put in the book; its cost appears from the next
//! evaluation tick on (`impact: null` until then).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::auth;
use super::error;
use super::freeze::{commit, evaluated, not_evaluated, unknown_service};
use super::state::ApiState;
use crate::freeze::deploys::{DEPLOY_RETENTION_MS, Deploy, Impact, MAX_DEPLOYS, Outcome, Period};
use crate::store::Kept;
use crate::timefmt::{parse_rfc3339, rfc3339};

const RECORD: &str = "deploy.record";
/// Longest `version`, `actor`, `service`; `commit` is at most 64.
const MAX_FIELD_CHARS: usize = 200;
/// How far in the future a deploy's times may be (clock skew of a runner).
const MAX_FUTURE_MS: i64 = 5 * 60_000;
/// Items one list or annotation answer holds at most.
const MAX_LIMIT: usize = 1000;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/deploys", get(list).post(record))
        .route("/api/v1/deploys/{id}", get(show))
        .route("/api/v1/annotations", get(annotations))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordBody {
    service: String,
    version: String,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
}

fn field(name: &str, value: &str, max: usize) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(format!("`{name}` must be non-empty, on one line, at most {max} characters"));
    }
    Ok(v.to_string())
}

/// The body checked and completed: times default to now (a pipeline
/// records the deploy as it finishes).
fn validate(b: RecordBody, caller: &str, now: i64) -> Result<Deploy, String> {
    let service = field("service", &b.service, MAX_FIELD_CHARS)?;
    let version = field("version", &b.version, MAX_FIELD_CHARS)?;
    let commit = b.commit.as_deref().map(|c| field("commit", c, 64)).transpose()?;
    let actor = match b.actor.as_deref() {
        Some(a) => field("actor", a, MAX_FIELD_CHARS)?,
        None => caller.to_string(),
    };
    let time = |name: &str, v: Option<&str>| -> Result<Option<i64>, String> {
        v.map(|t| parse_rfc3339(t).map_err(|e| format!("`{name}`: {e}"))).transpose()
    };
    let finished = time("finished_at", b.finished_at.as_deref())?;
    let started = time("started_at", b.started_at.as_deref())?;
    let finished_at_ms = finished.unwrap_or(now);
    let started_at_ms = started.unwrap_or(finished_at_ms.min(now));
    if started_at_ms > finished_at_ms {
        return Err("`started_at` must not be after `finished_at`".into());
    }
    if finished_at_ms > now + MAX_FUTURE_MS {
        return Err("`finished_at` is in the future".into());
    }
    if started_at_ms < now - DEPLOY_RETENTION_MS {
        return Err("`started_at` is older than the 90 days deploys are kept".into());
    }
    let outcome = match b.outcome.as_deref() {
        None => Outcome::Success,
        Some(o) => {
            Outcome::parse(o).ok_or_else(|| format!("`outcome` must be success, failure or rolled_back, not {o:?}"))?
        }
    };
    Ok(Deploy {
        id: crate::secret::random_id(),
        service,
        version,
        commit,
        actor,
        started_at_ms,
        finished_at_ms,
        outcome,
        recorded_by: caller.to_string(),
        recorded_at_ms: now,
    })
}

/// `POST /api/v1/deploys` (role `deploy`): 201 with the deploy and its id.
async fn record(
    State(s): State<Arc<ApiState>>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let bytes = match super::silences::read_body(&headers, body).await {
        Ok(b) => b,
        Err((status, message)) => return super::silences::refuse(&s, &caller, RECORD, None, status, &message).await,
    };
    let now = s.clock.now_ms();
    let parsed = serde_json::from_slice::<RecordBody>(&bytes)
        .map_err(|e| {
            format!(
                "the body must be {{\"service\", \"version\", \"commit\", \"actor\", \"started_at\", \"finished_at\", \"outcome\"}}: {e}"
            )
        })
        .and_then(|b| validate(b, &caller.name, now));
    let deploy = match parsed {
        Ok(d) => d,
        Err(m) => return super::silences::refuse(&s, &caller, RECORD, None, StatusCode::BAD_REQUEST, &m).await,
    };
    let snap = s.snapshot();
    let Some(board) = evaluated(&snap) else {
        return not_evaluated();
    };
    if board.get(&deploy.service).is_none() {
        let m = format!(
            "no SLO has the service {:?}; known services: {}",
            deploy.service,
            super::freeze::known_services(board).join(", ")
        );
        let entry = caller.audit(now, RECORD, Some(&deploy.service), "not_found");
        auth::record_async(s.clone(), entry).await;
        return unknown_service(board, m);
    }
    let shared = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _turn = shared.deploys.writes.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = format!("ok: {} {} {}", deploy.service, deploy.version, deploy.outcome.as_str());
        let entry = caller.audit(now, RECORD, Some(&deploy.id), &outcome);
        if let Some(r) = commit(&shared, Kept::Deploys, &deploy.id, &deploy, &entry, "the deploy was not recorded") {
            return r;
        }
        let overflow = {
            let mut book = shared.deploys.write();
            book.put(deploy.clone());
            book.oldest_beyond(MAX_DEPLOYS)
        };
        if !overflow.is_empty() {
            let entry = caller.audit(
                now,
                "deploy.forget",
                None,
                &format!("ok: {} oldest beyond {MAX_DEPLOYS}", overflow.len()),
            );
            match shared.store.delete_kept(Kept::Deploys, &overflow, &entry) {
                Ok(()) => {
                    shared.deploys.write().remove(&overflow);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "forgetting the oldest deploys failed; tried again at the next one")
                }
            }
        }
        tracing::info!(
            service = %crate::untrusted::Escaped(&deploy.service),
            version = %crate::untrusted::Escaped(&deploy.version),
            outcome = deploy.outcome.as_str(),
            by = %caller.name,
            "deploy recorded"
        );
        (StatusCode::CREATED, axum::Json(deploy_json(&deploy, None))).into_response()
    })
    .await;
    done.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

fn period_json(p: &Period) -> Value {
    json!({
        "from": rfc3339(p.from_ms), "to": rfc3339(p.to_ms),
        "events": p.events, "bad": p.bad, "burn_rate": p.burn_rate,
    })
}

fn impact_json(i: &Impact) -> Value {
    let slos: Vec<Value> = i
        .slos
        .iter()
        .map(|c| {
            json!({
                "slo": c.slo, "window": c.window, "budget_consumed": c.budget_consumed, "flagged": c.flagged,
                "before": period_json(&c.before), "after": period_json(&c.after),
            })
        })
        .collect();
    json!({
        "assessed_at": rfc3339(i.assessed_at_ms),
        "final": i.final_figures,
        "flagged": i.flagged,
        "flag_budget_consumed": i.flag_budget_consumed,
        "window": crate::spec::model::Minutes(i.window_minutes).to_string(),
        "message": i.message(),
        "slos": slos,
    })
}

fn deploy_json(d: &Deploy, impact: Option<&Impact>) -> Value {
    json!({
        "id": d.id,
        "service": d.service,
        "version": d.version,
        "commit": d.commit,
        "actor": d.actor,
        "started_at": rfc3339(d.started_at_ms),
        "finished_at": rfc3339(d.finished_at_ms),
        "outcome": d.outcome.as_str(),
        "recorded_by": d.recorded_by,
        "recorded_at": rfc3339(d.recorded_at_ms),
        "impact": impact.map(impact_json),
    })
}

/// A whole number parameter from 1 to [`MAX_LIMIT`].
fn limit(q: &HashMap<String, String>, default: usize) -> Result<usize, String> {
    match q.get("limit").map(|v| v.parse::<usize>()) {
        None => Ok(default),
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(format!("`limit` must be a whole number from 1 to {MAX_LIMIT}")),
    }
}

fn flag(q: &HashMap<String, String>, name: &str) -> Result<bool, String> {
    match q.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(format!("`{name}` must be true or false")),
    }
}

fn unknown_param(q: &HashMap<String, String>, known: &[&str]) -> Option<Response> {
    q.keys()
        .find(|k| !known.contains(&k.as_str()))
        .map(|k| error(StatusCode::BAD_REQUEST, &format!("unknown parameter `{k}`; use {}", known.join(", "))))
}

/// `GET /api/v1/deploys?service=&flagged=true&limit=N`: newest first
/// (default 100).
async fn list(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = unknown_param(&q, &["service", "flagged", "limit"]) {
        return r;
    }
    let (limit, flagged) = match (limit(&q, 100), flag(&q, "flagged")) {
        (Ok(l), Ok(f)) => (l, f),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let snap = s.snapshot();
    let impacts: HashMap<&str, &Impact> = snap.deploys.iter().map(|i| (i.id.as_str(), i)).collect();
    let now = s.clock.now_ms();
    let book = s.deploys.read();
    let list: Vec<Value> = book
        .list(now, false)
        .filter(|d| q.get("service").is_none_or(|sv| *sv == d.service))
        .map(|d| (d, impacts.get(d.id.as_str()).copied()))
        .filter(|(_, i)| !flagged || i.is_some_and(|i| i.flagged))
        .take(limit)
        .map(|(d, i)| deploy_json(d, i))
        .collect();
    axum::Json(json!({"deploys": list})).into_response()
}

async fn show(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let snap = s.snapshot();
    match s.deploys.read().get(&id) {
        Some(d) => axum::Json(deploy_json(d, snap.deploys.iter().find(|i| i.id == id))).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("no deploy with id {:?}", crate::untrusted::Escaped(&id))),
    }
}

/// A time parameter: ms since the epoch (what Grafana's `${__from}` gives)
/// or RFC 3339.
fn time_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, String> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .or_else(|_| parse_rfc3339(v))
            .map(Some)
            .map_err(|_| format!("`{name}` must be ms since the epoch or an RFC 3339 time")),
    }
}

/// `GET /api/v1/annotations?service=&slo=&from=&to=&flagged=true&limit=N`:
/// deploys overlapping `[from, to]` as Grafana annotations, newest first
/// (default 500): `time`, `timeEnd` (ms), `title`, `text`, `tags` (comma
/// separated: `deploy`, the service, the outcome, `flagged`), and `id`,
/// `service`, `version`, `budget_consumed`.
async fn annotations(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = unknown_param(&q, &["service", "slo", "from", "to", "flagged", "limit"]) {
        return r;
    }
    let parsed = (limit(&q, 500), flag(&q, "flagged"), time_param(&q, "from"), time_param(&q, "to"));
    let (limit, flagged, from, to) = match parsed {
        (Ok(l), Ok(f), Ok(a), Ok(b)) => (l, f, a.unwrap_or(i64::MIN), b.unwrap_or(i64::MAX)),
        (Err(m), ..) | (_, Err(m), ..) | (_, _, Err(m), _) | (.., Err(m)) => {
            return error(StatusCode::BAD_REQUEST, &m);
        }
    };
    let snap = s.snapshot();
    if evaluated(&snap).is_none() {
        return not_evaluated();
    }
    // An SLO names its service; its deploys are the service's.
    let slo_service = match q.get("slo") {
        None => None,
        Some(name) => match snap.statuses.iter().find(|st| st.slo.name == *name) {
            Some(st) => Some(st.slo.service.clone()),
            None => {
                return error(StatusCode::NOT_FOUND, &format!("no SLO named {:?}", crate::untrusted::Escaped(name)));
            }
        },
    };
    let impacts: HashMap<&str, &Impact> = snap.deploys.iter().map(|i| (i.id.as_str(), i)).collect();
    let now = s.clock.now_ms();
    let book = s.deploys.read();
    let out: Vec<Value> = book
        .list(now, false)
        .filter(|d| d.started_at_ms <= to && d.finished_at_ms >= from)
        .filter(|d| q.get("service").is_none_or(|sv| *sv == d.service))
        .filter(|d| slo_service.as_ref().is_none_or(|sv| *sv == d.service))
        .map(|d| (d, impacts.get(d.id.as_str()).copied()))
        .filter(|(_, i)| !flagged || i.is_some_and(|i| i.flagged))
        .take(limit)
        .map(|(d, i)| annotation(d, i, q.get("slo").map(String::as_str)))
        .collect();
    axum::Json(Value::Array(out)).into_response()
}

fn annotation(d: &Deploy, impact: Option<&Impact>, slo: Option<&str>) -> Value {
    let cost = impact.and_then(|i| match slo {
        Some(name) => i.slos.iter().find(|c| c.slo == name),
        None => i.worst(),
    });
    let mut text = format!("{} {} by {}", d.service, d.version, d.actor);
    if let Some(c) = &d.commit {
        text.push_str(&format!(" (commit {c})"));
    }
    text.push_str(&format!(", {}", d.outcome.as_str()));
    if let Some(c) = cost {
        let burn = |b: Option<f64>| b.map_or("-".to_string(), |b| format!("{b:.2}"));
        text.push_str(&format!(
            "; {}: {:.1} % of the {} error budget, burn {} before → {} after",
            c.slo,
            c.budget_consumed * 100.0,
            c.window,
            burn(c.before.burn_rate),
            burn(c.after.burn_rate)
        ));
    }
    let flagged = cost.is_some_and(|c| c.flagged);
    let mut tags = vec!["deploy", d.service.as_str(), d.outcome.as_str()];
    if flagged {
        tags.push("flagged");
    }
    json!({
        "time": d.started_at_ms,
        "timeEnd": d.finished_at_ms,
        "title": format!("{} {} deployed{}", d.service, d.version, if flagged { " (costly)" } else { "" }),
        "text": text,
        "tags": tags.join(","),
        "id": d.id,
        "service": d.service,
        "version": d.version,
        "budget_consumed": cost.map(|c| c.budget_consumed),
    })
}

/// Forget deploys that finished more than 90 days ago. Blocking; the
/// runtime's maintenance calls it hourly.
pub fn prune(state: &ApiState) {
    let before = state.clock.now_ms() - DEPLOY_RETENTION_MS;
    let _turn = state.deploys.writes.lock().unwrap_or_else(|e| e.into_inner());
    let gone = state.deploys.write().prune(before);
    match state.store.prune_kept(Kept::Deploys, before) {
        Ok(n) if n > 0 || gone > 0 => tracing::info!(pruned = n, "pruned deploys older than 90 days"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "pruning old deploys failed"),
    }
}
