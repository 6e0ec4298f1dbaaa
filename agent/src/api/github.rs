//! `POST /api/v1/github/webhook`: GitHub custom deployment protection rules
//! (`docs/deploy-gates.md`).
//!
//! No bearer token: a delivery is authenticated by its `X-Hub-Signature-256`
//! (HMAC-SHA256 of the raw body with the webhook secret, compared in
//! constant time); a missing or wrong one is 401 and audited. `ping` is
//! 200, other events 202 and ignored. A `deployment_protection_rule`
//! delivery (`action: requested`) is answered 202 at once; a task then
//! takes the freeze answer for the deployment's service and change type —
//! the same as `GET /api/v1/freeze?service=&change=`, from the last
//! evaluation — and delivers it as the App's review
//! ([`crate::gate::github::client`]). Every review is audited
//! (`github.protection_rule`) and counted (`slo_agent_github_reviews_total`).
//!
//! Failing closed: a service no SLO names is rejected, saying so; before the
//! agent's first evaluation a review waits for it (up to
//! [`FIRST_EVALUATION_WAIT`]) and is then rejected, asking for a re-run.
//!
//! Bounds: the body ([`MAX_WEBHOOK_BYTES`]), reviews accepted and not yet
//! delivered ([`crate::gate::github::client::MAX_PENDING`]; more are 503),
//! deliveries at once ([`crate::gate::github::client::MAX_SENDING`]), tries.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::{ANONYMOUS, AuditEntry, RemoteAddr};
use super::error;
use super::state::ApiState;
use crate::gate::github::{self, GithubApp, ProtectionRuleEvent};
use crate::spec::policy::ChangeType;
use crate::untrusted::Escaped;

/// The largest delivery read. GitHub's `deployment_protection_rule`
/// payloads are tens of kilobytes.
pub const MAX_WEBHOOK_BYTES: usize = 1 << 20;
/// How long a review waits for the agent's first evaluation.
pub const FIRST_EVALUATION_WAIT: Duration = Duration::from_secs(30);
/// The audit action of a review.
pub const REVIEW: &str = "github.protection_rule";
/// The audit action of a refused delivery.
pub const WEBHOOK: &str = "github.webhook";
/// Who the audit log names for GitHub's (signed) deliveries.
pub const GITHUB_ACTOR: &str = "github";

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/github/webhook", axum::routing::post(webhook))
}

/// Check `X-Hub-Signature-256: sha256=<hex>` against the HMAC-SHA256 of the
/// raw body keyed with the webhook secret, in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&[u8]>) -> Result<(), &'static str> {
    use hmac::{Hmac, KeyInit, Mac};
    let given = header.ok_or("no X-Hub-Signature-256 header")?;
    let hex = given.trim_ascii().strip_prefix(b"sha256=").ok_or("X-Hub-Signature-256 is not `sha256=<hex>`")?;
    let mut signature = [0u8; 32];
    if hex.len() != 64 {
        return Err("X-Hub-Signature-256 is not `sha256=` and 64 hex digits");
    }
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => signature[i] = (h * 16 + l) as u8,
            _ => return Err("X-Hub-Signature-256 is not `sha256=` and 64 hex digits"),
        }
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| "X-Hub-Signature-256 does not match the body and the webhook secret")
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn webhook(
    State(s): State<Arc<ApiState>>,
    RemoteAddr(remote): RemoteAddr,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Some(app) = s.github.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "GitHub deployment protection rules are not set up (`github:` in agent.yaml)",
        );
    };
    let delivery = header_text(&headers, "x-github-delivery").to_string();
    let refuse = |status: StatusCode, outcome: String, message: &str| {
        let entry = AuditEntry::new(s.clock.now_ms(), ANONYMOUS, None, WEBHOOK, Some(&delivery), &outcome, remote);
        let s = s.clone();
        let r = error(status, message);
        async move {
            super::auth::record_async(s, entry).await;
            r
        }
    };
    let bytes = match super::silences::read_body_within(&headers, body, MAX_WEBHOOK_BYTES).await {
        Ok(b) => b,
        Err((status, m)) => return refuse(status, format!("invalid: {m}"), &m).await,
    };
    let secret = app.config.webhook_secret.expose().as_bytes();
    if let Err(why) = verify_signature(secret, &bytes, headers.get("x-hub-signature-256").map(HeaderValue::as_bytes)) {
        tracing::warn!(delivery = %Escaped(&delivery), remote = ?remote, why, "GitHub webhook refused");
        return refuse(StatusCode::UNAUTHORIZED, format!("unauthorized: {why}"), why).await;
    }
    let event = header_text(&headers, "x-github-event");
    match event {
        "ping" => return axum::Json(json!({"ok": true})).into_response(),
        "deployment_protection_rule" => {}
        other => {
            let ignored = format!("event {} is not deployment_protection_rule", github::one_line(other, 64));
            return (StatusCode::ACCEPTED, axum::Json(json!({"ignored": ignored}))).into_response();
        }
    }
    let ev: ProtectionRuleEvent = match serde_json::from_slice(&bytes) {
        Ok(ev) => ev,
        Err(e) => {
            let m = format!("not a deployment_protection_rule payload: {e}");
            tracing::warn!(delivery = %Escaped(&delivery), error = %Escaped(&m), "GitHub webhook not understood");
            return error(StatusCode::BAD_REQUEST, &m);
        }
    };
    if ev.action != "requested" {
        let ignored = format!("action {} is not requested", github::one_line(&ev.action, 64));
        return (StatusCode::ACCEPTED, axum::Json(json!({"ignored": ignored}))).into_response();
    }
    let Ok(permit) = app.pending.clone().try_acquire_owned() else {
        tracing::warn!(delivery = %Escaped(&delivery), "too many GitHub reviews waiting; asking for a redelivery");
        let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "too many reviews in progress; redeliver later");
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return r;
    };
    let service = app.config.service_for(&ev.repository.full_name, &ev.environment);
    let (change, odd_change) = github::change_of(ev.deployment.as_ref());
    let accepted = json!({
        "accepted": true,
        "service": service,
        "change": change.as_str(),
        "environment": ev.environment,
    });
    let note = odd_change.map(|c| format!("The deployment's payload names the change {c:?}, judged as feature."));
    let job = Job { service, change, note, event: ev, delivery, remote };
    tokio::spawn(async move {
        let _permit = permit;
        review(s, app, job).await;
    });
    (StatusCode::ACCEPTED, axum::Json(accepted)).into_response()
}

/// A review to make.
struct Job {
    service: String,
    change: ChangeType,
    note: Option<String>,
    event: ProtectionRuleEvent,
    delivery: String,
    remote: Option<std::net::SocketAddr>,
}

/// Decide, deliver, count and audit one review.
async fn review(s: Arc<ApiState>, app: Arc<GithubApp>, job: Job) {
    let (allowed, comment) = decide(&s, &job).await;
    let state = github::state(allowed);
    let ev = &job.event;
    let body = json!({"environment_name": ev.environment, "state": state, "comment": comment});
    let target = github::callback_target(&app.config.api_url, &ev.deployment_callback_url, &ev.repository.full_name);
    let (run, delivered) = match target {
        Err(why) => (None, Err(format!("not sent: {why}"))),
        Ok((url, run)) => {
            let _turn = app.sending.acquire().await;
            (Some(run), app.send_review(ev.installation.id, &url, &body).await.map_err(|e| e.to_string()))
        }
    };
    let result = if delivered.is_ok() { "sent" } else { "failed" };
    let what = format!(
        "{} {} to {} of {}{}{}",
        github::one_line(&job.service, 64),
        job.change.as_str(),
        github::one_line(&ev.environment, 64),
        github::one_line(&ev.repository.full_name, 100),
        run.map(|r| format!(", run {r}")).unwrap_or_default(),
        ev.sender.as_ref().map(|u| format!(", by {}", github::one_line(&u.login, 40))).unwrap_or_default(),
    );
    let outcome = match &delivered {
        Ok(tries) => format!("{state}, sent: {what} (try {tries})"),
        Err(why) => format!("{state}, failed: {what}: {}", github::one_line(why, 200)),
    };
    match &delivered {
        Ok(_) => tracing::info!(delivery = %Escaped(&job.delivery), service = %Escaped(&job.service),
            environment = %Escaped(&ev.environment), state, "GitHub deployment protection rule answered"),
        Err(why) => tracing::warn!(delivery = %Escaped(&job.delivery), service = %Escaped(&job.service),
            environment = %Escaped(&ev.environment), state, error = %Escaped(why),
            "GitHub deployment protection rule not answered"),
    }
    let entry = AuditEntry::new(s.clock.now_ms(), GITHUB_ACTOR, None, REVIEW, Some(&job.service), &outcome, job.remote);
    // Not `auth::record`: the delivery was signed, so it is not one of the
    // anonymous refusals that limiter is for.
    let store = s.store.clone();
    let _ = tokio::task::spawn_blocking(move || {
        super::auth::log(&entry);
        if let Err(e) = store.append_audit(&entry) {
            tracing::error!(target: "audit", error = %e, action = REVIEW, "could not append to the audit log");
        }
    })
    .await;
    // Counted once it is in the audit log: whoever sees the count finds the entry.
    crate::telemetry::events::GithubReviewed { state, result }.emit(&s.telemetry);
}

/// The verdict and the comment: the freeze answer of the last evaluation;
/// a rejection for a service no SLO names, or when no evaluation came in
/// [`FIRST_EVALUATION_WAIT`].
async fn decide(s: &ApiState, job: &Job) -> (bool, String) {
    let give_up = tokio::time::Instant::now() + FIRST_EVALUATION_WAIT;
    loop {
        let snap = s.snapshot();
        if let Some(board) = super::freeze::evaluated(&snap) {
            if let Some(why) = &board.unavailable {
                return (false, github::refusal_comment(&format!("{why}; re-run the job once it can be read.")));
            }
            let Some(sv) = board.get(&job.service) else {
                let known: Vec<&str> = board.services.iter().map(|sv| sv.service.as_str()).collect();
                let why = format!(
                    "no SLO has the service {:?} (from the repository {} and environment {}; map them in `github.services`). Known services: {}.",
                    job.service,
                    job.event.repository.full_name,
                    job.event.environment,
                    known.join(", ")
                );
                return (false, github::refusal_comment(&why));
            };
            let (allowed, answer) = super::freeze::answer(s, sv, job.change, board.at_ms);
            return (allowed, github::comment(&answer, job.note.as_deref()));
        }
        if tokio::time::Instant::now() >= give_up {
            let why = "the agent has not evaluated its SLOs yet (it is starting); re-run the job to ask again.";
            return (false, github::refusal_comment(why));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // python3 -c 'import hmac,hashlib; print(hmac.new(b"It'"'"'s a Secret to Everybody", b"Hello, World!", hashlib.sha256).hexdigest())'
    // (GitHub's own example in "Validating webhook deliveries".)
    const GITHUB_EXAMPLE: &[u8] = b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn signatures_are_checked_against_the_raw_body() {
        let secret = b"It's a Secret to Everybody";
        assert_eq!(verify_signature(secret, b"Hello, World!", Some(GITHUB_EXAMPLE)), Ok(()));
        let upper = GITHUB_EXAMPLE.to_ascii_uppercase();
        let upper = [b"sha256=".as_slice(), &upper[7..]].concat();
        assert_eq!(verify_signature(secret, b"Hello, World!", Some(&upper)), Ok(()), "hex digits in either case");
        assert!(verify_signature(secret, b"Hello, World! ", Some(GITHUB_EXAMPLE)).is_err());
        assert!(verify_signature(b"another secret", b"Hello, World!", Some(GITHUB_EXAMPLE)).is_err());
        assert_eq!(verify_signature(secret, b"x", None), Err("no X-Hub-Signature-256 header"));
        for bad in [&b"sha1=757107ea"[..], b"sha256=", b"sha256=zz", &GITHUB_EXAMPLE[..70], b"\xff\xfe"] {
            assert!(verify_signature(secret, b"Hello, World!", Some(bad)).is_err(), "{bad:?}");
        }
        let non_hex = [&GITHUB_EXAMPLE[..69], b"g"].concat();
        assert!(verify_signature(secret, b"Hello, World!", Some(&non_hex)).is_err());
    }
}
