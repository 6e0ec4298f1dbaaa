//! `/api/v1/silences` (list, create, show, expire).
//!
//! Creating and expiring need the `silence` role;
//! reads need `read` only when `api.read_requires_token` is set. Every
//! create and expire is audited, refused ones too ([`super::auth`]). A
//! silence and the audit entry of the call that made it are stored in one
//! transaction before the caller hears of it; if the store refuses, the
//! in-memory set is put back and the caller gets a 500.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::auth::{self, Caller};
use super::state::{ApiState, Snapshot};
use super::{error, unavailable};
use crate::notify::silence::{self, Draft, MatchOp, Matcher, Silence, SilenceError, SilenceState};
use crate::timefmt::rfc3339;

/// Largest request body accepted when creating a silence.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a client may take to send it.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/silences", get(list).post(create))
        .route("/api/v1/silences/{id}", get(show).delete(expire))
}

/// A silence as the API shows it: the stored fields, its state, and its
/// times in RFC 3339.
#[derive(Serialize)]
struct SilenceView<'a> {
    #[serde(flatten)]
    silence: &'a Silence,
    state: SilenceState,
    starts_at: String,
    ends_at: String,
    created_at: String,
    updated_at: String,
    /// Matchers that name a label or value no current SLO has (a typo
    /// would otherwise silence nothing, quietly).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

fn view(s: &Silence, now_ms: i64, warnings: Vec<String>) -> SilenceView<'_> {
    SilenceView {
        silence: s,
        state: s.state(now_ms),
        starts_at: rfc3339(s.starts_at_ms),
        ends_at: rfc3339(s.ends_at_ms),
        created_at: rfc3339(s.created_at_ms),
        updated_at: rfc3339(s.updated_at_ms),
        warnings,
    }
}

/// `GET /api/v1/silences[?all=true]`: active and pending silences; with
/// `all`, the expired ones still kept too.
async fn list(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let all = match q.get("all").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(_) => return error(StatusCode::BAD_REQUEST, "`all` must be true or false"),
    };
    let now = s.clock.now_ms();
    let set = s.silences.read();
    let silences: Vec<SilenceView<'_>> = set.list(now, all).into_iter().map(|x| view(x, now, Vec::new())).collect();
    axum::Json(serde_json::json!({"at": rfc3339(now), "silences": silences})).into_response()
}

/// `GET /api/v1/silences/{id}`.
async fn show(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let now = s.clock.now_ms();
    let set = s.silences.read();
    match set.get(&id) {
        Some(x) => axum::Json(view(x, now, Vec::new())).into_response(),
        None => error(StatusCode::NOT_FOUND, &SilenceError::NotFound(id).to_string()),
    }
}

const CREATE: &str = "silence.create";
const EXPIRE: &str = "silence.expire";

/// `POST /api/v1/silences`.
async fn create(
    State(s): State<Arc<ApiState>>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_body(&headers, body).await {
        Ok(b) => b,
        Err((status, message)) => return refuse(&s, &caller, CREATE, None, status, &message).await,
    };
    let draft = match parse_create(&bytes, s.clock.now_ms(), &caller.name) {
        Ok(d) => d,
        Err(message) => return refuse(&s, &caller, CREATE, None, StatusCode::BAD_REQUEST, &message).await,
    };
    let warnings = warnings(&s.snapshot(), &draft.matchers);
    let shared = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        // Writers take turns; readers (the dispatcher, GETs) never wait for the store.
        let _turn = shared.silences.writes.lock().unwrap_or_else(|e| e.into_inner());
        let now = shared.clock.now_ms();
        let checked = shared.silences.read().check(draft, now);
        let created = match checked {
            Ok(x) => x,
            Err(e) => {
                let message = e.to_string();
                auth::record(&shared, &caller.audit(now, CREATE, None, &format!("invalid: {message}")));
                return error(StatusCode::BAD_REQUEST, &message);
            }
        };
        let entry = caller.audit(now, CREATE, Some(&created.id), "ok");
        if let Err(e) = shared.store.put_silence(&created.id, &created.to_record(), &entry) {
            let message = format!("the silence could not be stored, so it was not made: {e}");
            auth::record(&shared, &caller.audit(now, CREATE, None, &format!("error: {message}")));
            return unavailable(&message);
        }
        shared.silences.write().put(created.clone());
        auth::log(&entry);
        tracing::info!(
            silence = %created.id,
            created_by = %crate::untrusted::Escaped(&created.created_by),
            matchers = %crate::untrusted::Escaped(&created.matchers.iter().map(Matcher::to_string).collect::<Vec<_>>().join(", ")),
            ends_at = %rfc3339(created.ends_at_ms),
            "silence created"
        );
        let mut r = (StatusCode::CREATED, axum::Json(view(&created, now, warnings))).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/silences/{}", created.id)) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    })
    .await;
    done.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// `DELETE /api/v1/silences/{id}`: expire it now (an expired one stays
/// listed with `?all=true` for 7 days).
async fn expire(
    State(s): State<Arc<ApiState>>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    Path(id): Path<String>,
) -> Response {
    let shared = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _turn = shared.silences.writes.lock().unwrap_or_else(|e| e.into_inner());
        let now = shared.clock.now_ms();
        let expired = shared.silences.read().expired(&id, now);
        let Ok(after) = expired else {
            auth::record(&shared, &caller.audit(now, EXPIRE, Some(&id), "not_found"));
            return error(StatusCode::NOT_FOUND, &SilenceError::NotFound(id).to_string());
        };
        let entry = caller.audit(now, EXPIRE, Some(&id), "ok");
        if let Err(e) = shared.store.put_silence(&after.id, &after.to_record(), &entry) {
            let message = format!("the silence could not be stored, so it still holds: {e}");
            auth::record(&shared, &caller.audit(now, EXPIRE, Some(&id), &format!("error: {message}")));
            return unavailable(&message);
        }
        shared.silences.write().put(after.clone());
        auth::log(&entry);
        tracing::info!(silence = %after.id, by = %caller.name, "silence expired");
        axum::Json(view(&after, now, Vec::new())).into_response()
    })
    .await;
    done.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// Answer a refused request of a known caller, and audit it.
pub(super) async fn refuse(
    s: &Arc<ApiState>,
    caller: &Caller,
    action: &str,
    target: Option<&str>,
    status: StatusCode,
    message: &str,
) -> Response {
    let entry = caller.audit(s.clock.now_ms(), action, target, &format!("invalid: {message}"));
    auth::record_async(s.clone(), entry).await;
    error(status, message)
}

/// The body, within [`MAX_BODY_BYTES`] and [`BODY_TIMEOUT`].
pub(super) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, (StatusCode, String)> {
    read_body_within(headers, body, MAX_BODY_BYTES).await
}

/// The body, within `limit` bytes and [`BODY_TIMEOUT`].
pub(super) async fn read_body_within(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, (StatusCode, String)> {
    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {limit} bytes"));
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
        Err(_) => {
            Err((StatusCode::REQUEST_TIMEOUT, format!("the body did not arrive within {} s", BODY_TIMEOUT.as_secs())))
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => Err((StatusCode::BAD_REQUEST, format!("reading the body: {e}"))),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// The body of `POST /api/v1/silences`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    matchers: Vec<MatcherInput>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    comment: String,
}

/// A matcher in a request: `"service=checkout"` or
/// `{"name": "service", "value": "checkout", "op": "="}` (`op` defaults to `=`).
struct MatcherInput(Matcher);

impl<'de> Deserialize<'de> for MatcherInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MatcherInput, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatcherInput;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a matcher: a string such as \"service=checkout\", or {\"name\", \"value\", \"op\"}")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<MatcherInput, E> {
                Matcher::parse(v).map(MatcherInput).map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MatcherInput, A::Error> {
                let (mut name, mut value, mut op) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => name = Some(map.next_value::<String>()?),
                        "value" => value = Some(map.next_value::<String>()?),
                        "op" => {
                            let t = map.next_value::<String>()?;
                            op = Some(MatchOp::parse(&t).ok_or_else(|| {
                                de::Error::custom(format!("unknown matcher op `{t}`; expected =, !=, =~ or !~"))
                            })?);
                        }
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown field `{other}` in a matcher; expected name, value, op"
                            )));
                        }
                    }
                }
                let name = name.ok_or_else(|| de::Error::custom("a matcher needs `name`"))?;
                let value = value.ok_or_else(|| de::Error::custom("a matcher needs `value`"))?;
                Matcher::new(name, value, op.unwrap_or(MatchOp::Eq)).map(MatcherInput).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Read a create request into a draft (its times resolved against `now_ms`).
fn parse_create(bytes: &[u8], now_ms: i64, created_by: &str) -> Result<Draft, String> {
    let b: CreateBody = serde_json::from_slice(bytes).map_err(|e| format!("the body is not a valid silence: {e}"))?;
    let time = |key: &str, t: &str| {
        t.trim()
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|_| format!("`{key}` must be an RFC 3339 time such as 2030-06-01T12:00:00Z, found `{}`", cut(t)))
    };
    let starts_at_ms = b.starts_at.as_deref().map(|t| time("starts_at", t)).transpose()?;
    let ends_at_ms = match (b.ends_at.as_deref(), b.duration.as_deref()) {
        (Some(_), Some(_)) => return Err("give `ends_at` or `duration`, not both".into()),
        (None, None) => return Err("give `ends_at` (an RFC 3339 time) or `duration` (such as 2h)".into()),
        (Some(t), None) => time("ends_at", t)?,
        (None, Some(d)) => {
            let ms = silence::parse_duration_ms(d).ok_or_else(|| {
                format!("`duration` must be a length such as 30m, 2h, 1h30m or 3d, found `{}`", cut(d))
            })?;
            // From when the silence will start: now for a start in the past.
            let from = starts_at_ms.map_or(now_ms, |s| s.max(now_ms));
            from.checked_add(ms)
                .ok_or_else(|| SilenceError::TooLong { max_days: silence::MAX_DURATION_MS / 86_400_000 }.to_string())?
        }
    };
    Ok(Draft {
        matchers: b.matchers.into_iter().map(|m| m.0).collect(),
        starts_at_ms,
        ends_at_ms,
        comment: b.comment,
        created_by: created_by.to_string(),
    })
}

fn cut(s: &str) -> String {
    if s.chars().count() <= 60 { s.to_string() } else { format!("{}…", s.chars().take(60).collect::<String>()) }
}

/// Matchers that can only match an alert through a missing label, because
/// no SLO has the label (or the value) they name: likely a typo.
fn warnings(snap: &Snapshot, matchers: &[Matcher]) -> Vec<String> {
    // Certificate alerts also carry probe, hop and region.
    let mut labels: BTreeSet<&str> = ["slo", "service", "severity", "kind", "probe", "hop", "region"].into();
    let mut slos: BTreeSet<&str> = BTreeSet::new();
    let mut services: BTreeSet<&str> = BTreeSet::new();
    for st in &snap.statuses {
        labels.extend(st.slo.labels.keys().map(String::as_str));
        slos.insert(&st.slo.name);
        services.insert(&st.slo.service);
    }
    let kinds: Vec<&str> =
        crate::alert::AlertKind::ALL.iter().chain(&crate::alert::AlertKind::CERTIFICATE).map(|k| k.as_str()).collect();
    let mut out = Vec::new();
    for m in matchers {
        if !labels.contains(m.name()) {
            out.push(format!(
                "no SLO has the label `{}`: alerts carry slo, service, severity, kind and their SLO's labels",
                m.name()
            ));
            continue;
        }
        if m.op() != MatchOp::Eq || snap.statuses.is_empty() {
            continue;
        }
        let known: Option<(&str, Vec<&str>)> = match m.name() {
            // A certificate alert's `slo` is `<probe>/<hop>`: not checked against the SLOs.
            "slo" if m.value().contains('/') => None,
            "slo" => Some(("SLO", slos.iter().copied().collect())),
            "service" => Some(("service", services.iter().copied().collect())),
            "severity" => Some(("severity", vec!["page", "ticket"])),
            "kind" => Some(("kind", kinds.clone())),
            _ => None,
        };
        if let Some((what, values)) = known
            && !values.contains(&m.value())
        {
            out.push(format!("no {what} is `{}` now", m.value()));
        }
    }
    out
}

/// Forget silences that ended more than 7 days ago and audit entries older
/// than a year (anonymous refusals: beyond the newest
/// [`crate::store::MAX_ANONYMOUS_AUDIT_ENTRIES`]). Blocking; the runtime's
/// maintenance calls it hourly.
pub fn prune(state: &ApiState) {
    let now = state.clock.now_ms();
    let before = now - silence::EXPIRED_RETENTION_MS;
    let gone = {
        let _turn = state.silences.writes.lock().unwrap_or_else(|e| e.into_inner());
        state.silences.write().prune(before).len()
    };
    match state.store.prune_silences(before) {
        Ok(n) if n > 0 || gone > 0 => tracing::info!(silences = n.max(gone as u64), "pruned expired silences"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "pruning expired silences failed"),
    }
    if let Err(e) = state.store.prune_audit(now - crate::store::AUDIT_LOG_MS) {
        tracing::warn!(error = %e, "pruning the audit log failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn parse(body: &str) -> Result<Draft, String> {
        parse_create(body.as_bytes(), NOW, "oncall-bot")
    }

    #[test]
    fn create_bodies() {
        let d = parse(
            r#"{"matchers": ["service=checkout", {"name": "slo", "value": "checkout-.*", "op": "=~"}, {"name": "severity", "value": "page"}],
                "duration": "2h", "comment": "CHG-1"}"#,
        )
        .unwrap();
        let m: Vec<String> = d.matchers.iter().map(Matcher::to_string).collect();
        assert_eq!(m, [r#"service="checkout""#, r#"slo=~"checkout-.*""#, r#"severity="page""#]);
        assert_eq!((d.starts_at_ms, d.ends_at_ms), (None, NOW + 7_200_000));
        assert_eq!(d.created_by, "oncall-bot");

        let d = parse(
            r#"{"matchers": ["service=checkout"], "starts_at": "2027-01-15T08:00:00Z", "ends_at": "2027-01-15T10:00:00+01:00", "comment": "x"}"#,
        )
        .unwrap();
        let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        assert_eq!(d.starts_at_ms, Some(at("2027-01-15T08:00:00Z")));
        assert_eq!(d.ends_at_ms - d.starts_at_ms.unwrap(), 3_600_000);
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let cases = [
            ("", "the body is not a valid silence: EOF while parsing a value at line 1 column 0"),
            ("not json", "the body is not a valid silence: expected ident at line 1 column 2"),
            (r#"{"matchers": ["service=x"], "duration": "2h", "comment": "c", "extra": 1}"#, "unknown field `extra`"),
            (r#"{"matchers": ["service"], "duration": "2h", "comment": "c"}"#, "`service` is not a matcher"),
            (r#"{"matchers": [{"name": "s", "value": "x", "op": "~"}], "duration": "2h"}"#, "unknown matcher op `~`"),
            (
                r#"{"matchers": [{"name": "s", "value": "x", "o": "="}], "duration": "2h"}"#,
                "unknown field `o` in a matcher",
            ),
            (r#"{"matchers": [{"value": "x"}], "duration": "2h"}"#, "a matcher needs `name`"),
            (r#"{"matchers": [["service=x"]], "duration": "2h"}"#, "invalid type: sequence, expected a matcher"),
            (r#"{"matchers": [7], "duration": "2h"}"#, "invalid type: integer `7`, expected a matcher"),
            (r#"{"matchers": ["slo=~("], "duration": "2h"}"#, "the regex of matcher `slo` does not compile"),
            (
                r#"{"matchers": ["service=x"], "duration": "2h", "ends_at": "2030-01-01T00:00:00Z"}"#,
                "give `ends_at` or `duration`, not both",
            ),
            (r#"{"matchers": ["service=x"]}"#, "give `ends_at` (an RFC 3339 time) or `duration` (such as 2h)"),
            (r#"{"matchers": ["service=x"], "duration": "2 hours"}"#, "`duration` must be a length such as 30m"),
            (r#"{"matchers": ["service=x"], "ends_at": "tomorrow"}"#, "`ends_at` must be an RFC 3339 time"),
            (r#"{"matchers": ["service=x"], "ends_at": "2030-01-01T00:00:00"}"#, "`ends_at` must be an RFC 3339 time"),
            (r#"{"matchers": ["service=x"], "duration": "9999999999999999w"}"#, "`duration` must be a length"),
        ];
        for (body, want) in cases {
            let got = parse(body).err().unwrap_or_else(|| panic!("{body} was accepted"));
            assert!(got.contains(want), "{body}\n got: {got}\nwant: {want}");
        }
        let deep = format!("{{\"matchers\": {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep).is_err());
        let deep = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        assert!(parse(&deep).is_err());
    }
}
