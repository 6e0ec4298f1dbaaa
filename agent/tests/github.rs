//! GitHub custom deployment protection rules end to end: the built agent
//! against a local server that implements GitHub's side as documented —
//! `POST /app/installations/{id}/access_tokens` checks the App's JWT (RS256
//! with the App's public key, `iss`, `iat`/`exp`) and issues a token;
//! `POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule`
//! checks that token and records the review. Webhooks are signed with the
//! webhook secret as GitHub signs them. The App's key pair is made here.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

const CHECKOUT: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-availability}\nspec:\n  service: checkout\n  objective: 99.9\n  window: 28d\n  indicator: {source: ndjson, filter: {service: checkout}, good: {status: \"< 500\"}}\n";
const STOREFRONT: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: storefront-availability}\nspec:\n  service: storefront\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, filter: {service: storefront}, good: {status: \"< 500\"}}\n";
const APP_ID: u64 = 424242;
const INSTALLATION: u64 = 77;
const SECRET: &str = "github-test-webhook-secret-0123456789";
const ADMIN: &str = "github-test-admin-token-0123456789";
const FIXTURE: &str = include_str!("fixtures/github/deployment_protection_rule.json");

fn now_ms() -> i64 {
    use slo_agent::clock::Clock;
    slo_agent::clock::SystemClock.now_ms()
}

/// What the GitHub stand-in saw.
#[derive(Default)]
struct Seen {
    /// Installation tokens issued.
    issued: Vec<String>,
    /// JWTs refused, with why.
    refused_jwts: Vec<String>,
    /// Reviews accepted: (owner/repo, run id, body).
    reviews: Vec<(String, u64, Value)>,
    /// Reviews refused, with why.
    refused_reviews: Vec<String>,
    /// Tries per run id (some runs fail their first try).
    tries: HashMap<u64, u32>,
    /// Requests anywhere else: (path, Authorization header).
    elsewhere: Vec<(String, String)>,
}

struct GitHub {
    public: rsa::RsaPublicKey,
    seen: Mutex<Seen>,
}

fn github_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"})))
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::to_string)
}

/// GitHub's check of an App JWT: RS256 by the App's key, `iss` the App,
/// issued in the past, expiring in the future and at most ten minutes on.
fn check_jwt(public: &rsa::RsaPublicKey, jwt: &str) -> Result<(), String> {
    use rsa::signature::Verifier as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts.as_slice() else { return Err("not three parts".into()) };
    let header: Value =
        serde_json::from_slice(&b64.decode(h).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let signature = rsa::pkcs1v15::Signature::try_from(b64.decode(s).map_err(|e| e.to_string())?.as_slice())
        .map_err(|e| e.to_string())?;
    rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public.clone())
        .verify(format!("{h}.{c}").as_bytes(), &signature)
        .map_err(|_| "bad signature".to_string())?;
    let claims: Value =
        serde_json::from_slice(&b64.decode(c).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let now = now_ms() / 1000;
    let (iat, exp) = (claims["iat"].as_i64().unwrap_or(i64::MAX), claims["exp"].as_i64().unwrap_or(0));
    if claims["iss"] != json!(APP_ID) && claims["iss"] != json!(APP_ID.to_string()) {
        return Err(format!("iss {}", claims["iss"]));
    }
    if iat > now || exp <= now || exp > now + 600 || exp - iat > 660 {
        return Err(format!("iat {iat} exp {exp} now {now}"));
    }
    Ok(())
}

async fn access_tokens(State(g): State<Arc<GitHub>>, Path(id): Path<u64>, headers: HeaderMap) -> Response {
    let mut seen = g.seen.lock().unwrap();
    let jwt = bearer(&headers).unwrap_or_default();
    if let Err(why) = check_jwt(&g.public, &jwt) {
        seen.refused_jwts.push(why);
        return github_error(StatusCode::UNAUTHORIZED, "A JSON web token could not be decoded");
    }
    if id != INSTALLATION {
        return github_error(StatusCode::NOT_FOUND, "Not Found");
    }
    let token = format!("ghs_{}", slo_agent::secret::random_id());
    seen.issued.push(token.clone());
    let expires = jiff::Timestamp::from_millisecond(now_ms() + 3_600_000).unwrap();
    let body = json!({
        "token": token,
        "expires_at": format!("{expires:.0}"),
        "permissions": {"actions": "read", "deployments": "write"},
        "repository_selection": "selected",
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn review(
    State(g): State<Arc<GitHub>>,
    Path((owner, repo, run)): Path<(String, String, u64)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut seen = g.seen.lock().unwrap();
    let token = bearer(&headers).unwrap_or_default();
    if !seen.issued.contains(&token) {
        seen.refused_reviews.push(format!("token {token:?}"));
        return github_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    if headers.get("accept").is_none_or(|v| v != "application/vnd.github+json")
        || headers.get("x-github-api-version").is_none_or(|v| v != "2022-11-28")
    {
        seen.refused_reviews.push(format!("headers {headers:?}"));
        return github_error(StatusCode::BAD_REQUEST, "headers");
    }
    let tries = seen.tries.entry(run).or_default();
    *tries += 1;
    if run >= 9000 && *tries == 1 {
        return github_error(StatusCode::BAD_GATEWAY, "Server Error");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return github_error(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let valid = v["environment_name"].is_string()
        && matches!(v["state"].as_str(), Some("approved" | "rejected"))
        && v["comment"].as_str().is_some_and(|c| c.chars().count() <= 1024)
        && v.as_object().is_some_and(|o| o.len() == 3);
    if !valid {
        seen.refused_reviews.push(format!("body {v}"));
        return github_error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    }
    seen.reviews.push((format!("{owner}/{repo}"), run, v));
    StatusCode::NO_CONTENT.into_response()
}

async fn elsewhere(State(g): State<Arc<GitHub>>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    g.seen.lock().unwrap().elsewhere.push((uri.to_string(), auth));
    github_error(StatusCode::NOT_FOUND, "Not Found")
}

/// A GitHub stand-in on a loopback port.
async fn serve_github(public: rsa::RsaPublicKey) -> (Arc<GitHub>, u16) {
    let g = Arc::new(GitHub { public, seen: Mutex::default() });
    let app = axum::Router::new()
        .route("/app/installations/{id}/access_tokens", axum::routing::post(access_tokens))
        .route("/repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule", axum::routing::post(review))
        .fallback(elsewhere)
        .with_state(g.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (g, port)
}

/// The agent, its port, and its directory.
struct Agent {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent over a log in which checkout failed 5 % of 2,000 requests (its
/// budget spent: FROZEN) and storefront none (OK), answering for the App.
fn start_agent(github_port: u16, private_pem: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("specs")).unwrap();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(d.join("specs/slos.yaml"), format!("{CHECKOUT}---\n{STOREFRONT}")).unwrap();
    std::fs::write(d.join("app.pem"), private_pem).unwrap();
    std::fs::write(d.join("webhook.secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(d.join("admin.token"), ADMIN).unwrap();
    let t = now_ms() - 60_000;
    let mut log = String::new();
    for i in 0..2_000 {
        let status = if i % 20 == 0 { 503 } else { 200 };
        log.push_str(&format!("{{\"ts\":{},\"service\":\"checkout\",\"path\":\"/pay\",\"status\":{status}}}\n", t + i));
        log.push_str(&format!("{{\"ts\":{},\"service\":\"storefront\",\"path\":\"/\",\"status\":200}}\n", t + i));
    }
    std::fs::write(d.join("logs/app.log"), log).unwrap();
    let port = common::free_port();
    let config = format!(
        "specs: [specs]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 100ms\n\
         api:\n  tokens:\n    - {{name: ops, role: admin, token_file: admin.token}}\n\
         github:\n  app_id: {APP_ID}\n  private_key_file: app.pem\n  webhook_secret_file: webhook.secret\n  api_url: http://127.0.0.1:{github_port}/\n  services:\n    - {{repository: shop/checkout-api, service: checkout}}\n    - {{repository: shop/web, environment: \"prod*\", service: storefront}}\n\
         sources:\n  - name: app\n    type: file\n    paths: [\"logs/*.log\"]\n    format: ndjson\n"
    );
    std::fs::write(d.join("agent.yaml"), config).unwrap();
    let child = common::start(&d.join("agent.yaml"));
    Agent { child, port, _dir: dir }
}

/// A `deployment_protection_rule` delivery in GitHub's shape.
fn delivery(repository: &str, environment: &str, callback: &str, payload: &str) -> String {
    FIXTURE
        .replace("CALLBACK_URL", callback)
        .replace("REPO_NAME", repository.split('/').nth(1).unwrap())
        .replace("REPOSITORY", repository)
        .replace("ENVIRONMENT", environment)
        .replace("PAYLOAD", payload)
        .replace("INSTALLATION_ID", &INSTALLATION.to_string())
}

fn sign(secret: &str, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn post_webhook(port: u16, event: &str, body: &str, signature: Option<&str>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("http://127.0.0.1:{port}/api/v1/github/webhook"))
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/a1b2c3d")
        .header("x-github-event", event)
        .header("x-github-delivery", slo_agent::secret::random_id())
        .header("x-github-hook-id", "123456789")
        .header("x-github-hook-installation-target-type", "integration")
        .header("x-github-hook-installation-target-id", APP_ID.to_string())
        .body(body.to_string());
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut req = reqwest::Client::new().get(format!("http://127.0.0.1:{port}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.ok()?;
    Some((resp.status().as_u16(), resp.text().await.ok()?))
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The review of run `run`, once it has come.
async fn review_of(g: &GitHub, run: u64) -> (String, Value) {
    let mut found = None;
    wait_for(&format!("the review of run {run}"), || {
        found = g
            .seen
            .lock()
            .unwrap()
            .reviews
            .iter()
            .find(|(_, r, _)| *r == run)
            .map(|(repo, _, v)| (repo.clone(), v.clone()));
        found.is_some()
    })
    .await;
    found.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protection_rules_are_answered_from_the_freeze_as_the_app() {
    let (private_pem, public) = {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        (key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap().to_string(), key.to_public_key())
    };
    let (g, gh_port) = serve_github(public).await;
    let (elsewhere, other_port) =
        serve_github(rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap().to_public_key()).await;
    let agent = start_agent(gh_port, &private_pem);
    let port = agent.port;
    // Ready once checkout is frozen over all its events.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((423, body)) = get(port, "/api/v1/freeze?service=checkout", None).await
            && serde_json::from_str::<Value>(&body).unwrap()["slos"][0]["events"] == 2_000
        {
            break;
        }
        assert!(Instant::now() < until, "the agent did not evaluate the log");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let callback = |repo: &str, run: u64| {
        format!("http://127.0.0.1:{gh_port}/repos/{repo}/actions/runs/{run}/deployment_protection_rule")
    };

    // GitHub's ping when the webhook is set up.
    let ping = r#"{"zen":"Design for failure.","hook_id":123456789,"hook":{"type":"App","events":["deployment_protection_rule"]}}"#;
    assert_eq!(post_webhook(port, "ping", ping, Some(&sign(SECRET, ping))).await.0, 200);

    // A frozen service: rejected, with the reasons, for its environment.
    let body = delivery("shop/checkout-api", "production", &callback("shop/checkout-api", 1001), "{}");
    let (status, accepted) = post_webhook(port, "deployment_protection_rule", &body, Some(&sign(SECRET, &body))).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["service"], "checkout");
    let (repo, r) = review_of(&g, 1001).await;
    assert_eq!(repo, "shop/checkout-api");
    assert_eq!(r["environment_name"], "production");
    assert_eq!(r["state"], "rejected");
    let comment = r["comment"].as_str().unwrap();
    assert!(
        comment.starts_with("slo-agent: checkout may not deploy a feature change (status FROZEN, policy default)."),
        "{comment}"
    );
    assert!(comment.contains("\n- budget: checkout-availability: error budget spent"), "{comment}");

    // A service within its budget: approved (environment from the glob).
    let body = delivery("shop/web", "production-eu", &callback("shop/web", 1002), "\"\"");
    assert_eq!(post_webhook(port, "deployment_protection_rule", &body, Some(&sign(SECRET, &body))).await.0, 202);
    let (_, r) = review_of(&g, 1002).await;
    assert_eq!((r["state"].as_str(), r["environment_name"].as_str()), (Some("approved"), Some("production-eu")));
    assert!(r["comment"].as_str().unwrap().contains("storefront may deploy a feature change (status OK"), "{r}");

    // A hotfix named in the deployment's payload goes through the freeze.
    let body =
        delivery("shop/checkout-api", "production", &callback("shop/checkout-api", 1003), r#"{"change":"hotfix"}"#);
    assert_eq!(post_webhook(port, "deployment_protection_rule", &body, Some(&sign(SECRET, &body))).await.0, 202);
    let (_, r) = review_of(&g, 1003).await;
    assert_eq!(r["state"], "approved", "{r}");
    assert!(r["comment"].as_str().unwrap().contains("hotfix changes are not blocked"), "{r}");

    // A repository no mapping names is its own service; no SLO has it: rejected.
    let body = delivery("shop/search", "production", &callback("shop/search", 1004), "{}");
    assert_eq!(post_webhook(port, "deployment_protection_rule", &body, Some(&sign(SECRET, &body))).await.0, 202);
    let (_, r) = review_of(&g, 1004).await;
    assert_eq!(r["state"], "rejected");
    assert!(r["comment"].as_str().unwrap().contains("no SLO has the service \"search\""), "{r}");

    // GitHub failing for a moment: the review is tried again.
    let body = delivery("shop/web", "production", &callback("shop/web", 9001), "{}");
    assert_eq!(post_webhook(port, "deployment_protection_rule", &body, Some(&sign(SECRET, &body))).await.0, 202);
    let (_, r) = review_of(&g, 9001).await;
    assert_eq!(r["state"], "approved");
    assert_eq!(g.seen.lock().unwrap().tries[&9001], 2);

    // Bad and missing signatures: 401, and nothing is reviewed.
    let before = g.seen.lock().unwrap().reviews.len();
    let body = delivery("shop/web", "production", &callback("shop/web", 1005), "{}");
    let (status, e) =
        post_webhook(port, "deployment_protection_rule", &body, Some(&sign("not-the-secret", &body))).await;
    assert_eq!(status, 401, "{e}");
    let tampered = body.replace("production", "staging");
    assert_eq!(post_webhook(port, "deployment_protection_rule", &tampered, Some(&sign(SECRET, &body))).await.0, 401);
    assert_eq!(post_webhook(port, "deployment_protection_rule", &body, None).await.0, 401);
    assert_eq!(post_webhook(port, "deployment_protection_rule", &body, Some("sha256=zz")).await.0, 401);

    // A callback URL on another host: the token is not sent there.
    let body = delivery(
        "shop/web",
        "production",
        &format!("http://127.0.0.1:{other_port}/repos/shop/web/actions/runs/1006/deployment_protection_rule"),
        "{}",
    );
    assert_eq!(post_webhook(port, "deployment_protection_rule", &body, Some(&sign(SECRET, &body))).await.0, 202);

    // Other events and actions are acknowledged and ignored.
    let push = r#"{"ref":"refs/heads/main"}"#;
    assert_eq!(post_webhook(port, "push", push, Some(&sign(SECRET, push))).await.0, 202);

    // Every review is audited and counted; the one not sent too.
    let mut metrics = String::new();
    wait_for("the refused review to be counted", || {
        metrics =
            std::thread::scope(|s| s.spawn(|| common::http_get(port, "/metrics").unwrap_or_default()).join().unwrap());
        common::metric(&metrics, "slo_agent_github_reviews_total{state=\"approved\",result=\"failed\"}") == Some(1.0)
    })
    .await;
    assert_eq!(
        common::metric(&metrics, "slo_agent_github_reviews_total{state=\"approved\",result=\"sent\"}"),
        Some(3.0)
    );
    assert_eq!(
        common::metric(&metrics, "slo_agent_github_reviews_total{state=\"rejected\",result=\"sent\"}"),
        Some(2.0)
    );
    assert_eq!(
        common::metric(&metrics, "slo_agent_github_reviews_total{state=\"rejected\",result=\"failed\"}"),
        Some(0.0)
    );
    {
        let seen = elsewhere.seen.lock().unwrap();
        assert!(seen.elsewhere.is_empty() && seen.issued.is_empty(), "{:?}", seen.elsewhere);
    }
    {
        let seen = g.seen.lock().unwrap();
        assert_eq!(seen.reviews.len(), before, "no review after a bad signature or to another host");
        assert_eq!(seen.issued.len(), 1, "the installation token is kept and used again");
        assert!(
            seen.refused_jwts.is_empty() && seen.refused_reviews.is_empty(),
            "{:?} {:?}",
            seen.refused_jwts,
            seen.refused_reviews
        );
        assert!(seen.elsewhere.is_empty(), "{:?}", seen.elsewhere);
    }
    let (status, audit) = get(port, "/api/v1/audit?limit=50", Some(ADMIN)).await.unwrap();
    assert_eq!(status, 200, "{audit}");
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let entries = audit["entries"].as_array().or(audit.as_array()).cloned().unwrap_or_default();
    let outcomes: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (s("action"), s("target"), s("outcome"))
        })
        .collect();
    let has = |action: &str, target: &str, start: &str| {
        outcomes.iter().any(|(a, t, o)| a == action && t == target && o.starts_with(start))
    };
    assert!(
        has(
            "github.protection_rule",
            "checkout",
            "rejected, sent: checkout feature to production of shop/checkout-api, run 1001, by octocat"
        ),
        "{outcomes:?}"
    );
    assert!(
        has("github.protection_rule", "storefront", "approved, sent: storefront feature to production-eu"),
        "{outcomes:?}"
    );
    assert!(
        has(
            "github.protection_rule",
            "storefront",
            "approved, failed: storefront feature to production of shop/web, by octocat: not sent: the callback URL is not on http://127.0.0.1:"
        ),
        "{outcomes:?}"
    );
    let unauthorized =
        outcomes.iter().filter(|(a, _, o)| a == "github.webhook" && o.starts_with("unauthorized")).count();
    assert_eq!(unauthorized, 4, "{outcomes:?}");
}
