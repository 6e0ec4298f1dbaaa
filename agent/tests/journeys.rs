//! Synthetic journeys against a shop written here (home, login, cart,
//! checkout, confirm on 127.0.0.1): the token and the session cookie are
//! carried from login to the later steps, secrets come from a file and the
//! environment, and a failure injected at each step is reported at that
//! step (later steps skipped), a slow step as degraded. Then through the
//! running binary: `GET /api/v1/journeys`, `/metrics`, and no secret in
//! the log or the answers.

mod common;

use std::io::Read as _;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use slo_agent::clock::SystemClock;
use slo_agent::synthetic::journey::{self, JourneyRun, Status};

const PASSWORD: &str = "pw-Zq8-very-secret";
const CARD: &str = "card-4242-secret-token";
const TOKEN: &str = "tok-issued-by-the-shop";
const SESSION: &str = "sess-77";

/// What the request asked the shop to get wrong (`x-fault`).
fn fault(h: &HeaderMap) -> &str {
    h.get("x-fault").and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The faults every step takes: 500, a wrong body, slow (1.5 s). `None`: carry on.
async fn common_fault(h: &HeaderMap) -> Option<Response> {
    match fault(h) {
        "500" => Some((StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()),
        "wrong-body" => Some((StatusCode::OK, "<html>maintenance</html>").into_response()),
        "slow" => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            None
        }
        _ => None,
    }
}

/// Why the request is not signed in (token and session cookie), if it is not.
fn refusal(h: &HeaderMap) -> Option<Response> {
    let bearer = h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"));
    let cookie = h
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.split("; ").any(|kv| kv == format!("session={SESSION}")));
    match (bearer, cookie) {
        (true, true) => None,
        (false, _) => Some((StatusCode::UNAUTHORIZED, "no bearer token").into_response()),
        (_, false) => Some((StatusCode::UNAUTHORIZED, "no session cookie").into_response()),
    }
}

/// The shop on a loopback port, on its own runtime.
fn shop() -> (u16, tokio::runtime::Runtime) {
    let app = axum::Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move {
                if let Some(r) = common_fault(&h).await {
                    return r;
                }
                (StatusCode::OK, "Welcome to the shop").into_response()
            }),
        )
        .route(
            "/api/login",
            post(|h: HeaderMap, body: String| async move {
                if let Some(r) = common_fault(&h).await {
                    return r;
                }
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let json = h.get("content-type").is_some_and(|c| c == "application/json");
                if !json || v["user"] != "synthetic" || v["password"] != PASSWORD {
                    return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
                }
                let mut r = axum::Json(serde_json::json!({"token": TOKEN})).into_response();
                if fault(&h) != "no-cookie" {
                    let c = format!("session={SESSION}; Path=/; HttpOnly");
                    r.headers_mut().insert("set-cookie", c.parse().unwrap());
                }
                r
            }),
        )
        .route(
            "/api/cart",
            post(|h: HeaderMap, body: String| async move {
                if let Some(r) = common_fault(&h).await {
                    return r;
                }
                if let Some(r) = refusal(&h) {
                    return r;
                }
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if v != serde_json::json!({"sku": "A1", "qty": 2}) {
                    return (StatusCode::BAD_REQUEST, "bad item").into_response();
                }
                (StatusCode::CREATED, axum::Json(serde_json::json!({"cart_id": "c-7"}))).into_response()
            }),
        )
        .route(
            "/api/checkout",
            post(
                |h: HeaderMap, q: axum::extract::Query<std::collections::HashMap<String, String>>, body: String| async move {
                    if let Some(r) = common_fault(&h).await {
                        return r;
                    }
                    if let Some(r) = refusal(&h) {
                        return r;
                    }
                    let form = h.get("content-type").is_some_and(|c| c == "application/x-www-form-urlencoded");
                    let fields: std::collections::HashMap<String, String> =
                        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                    let paid = fields.get("cart").map(String::as_str) == Some("c-7")
                        && fields.get("card").map(String::as_str) == Some(CARD);
                    if !form || !paid || q.get("currency").map(String::as_str) != Some("EUR") {
                        return (StatusCode::PAYMENT_REQUIRED, "payment refused").into_response();
                    }
                    axum::Json(serde_json::json!({"order": "ORD-123", "state": "placed"})).into_response()
                },
            ),
        )
        .route(
            "/api/orders/{id}/confirm",
            get(|h: HeaderMap, axum::extract::Path(id): axum::extract::Path<String>| async move {
                if let Some(r) = common_fault(&h).await {
                    return r;
                }
                if let Some(r) = refusal(&h) {
                    return r;
                }
                (StatusCode::OK, format!("Order {id} confirmed")).into_response()
            }),
        );
    common::serve_app(app)
}

/// The checkout journey, with `x-fault: <kind>` on the steps named in `faults`.
fn journey_yaml(name: &str, port: u16, card: &str, faults: &[(&str, &str)]) -> String {
    let f = |step: &str| {
        faults.iter().find(|(s, _)| *s == step).map(|(_, k)| format!(", x-fault: \"{k}\"")).unwrap_or_default()
    };
    let base = format!("http://127.0.0.1:{port}");
    format!(
        r#"  - name: {name}
    interval: 10s
    timeout: 5s
    steps:
      - {{name: home, request: {{url: "{base}/", headers: {{x-step: home{home}}}}}, expect: {{status: [200], body_matches: Welcome, latency: 1s}}}}
      - name: login
        request: {{method: POST, url: "{base}/api/login", headers: {{x-step: login{login}}}, json: {{user: synthetic, password_file: pw}}}}
        extract: {{token: {{json: "$.token"}}, session: {{cookie: session}}}}
        expect: {{status: [200], latency: 1s}}
      - name: cart
        request: {{method: POST, url: "{base}/api/cart", headers: {{authorization: "Bearer ${{token}}", x-step: cart{cart}}}, json: {{sku: A1, qty: 2}}}}
        extract: {{cart: {{json: "$.cart_id"}}}}
        expect: {{status: [200, 201], latency: 1s}}
        think_time: 50ms
      - name: checkout
        request: {{method: POST, url: "{base}/api/checkout", query: {{currency: EUR}}, headers: {{authorization: "Bearer ${{token}}", x-step: checkout{checkout}}}, form: {{cart: "${{cart}}", {card}}}}}
        extract: {{order: {{regex: "(ORD-[0-9]+)"}}}}
        expect: {{status: [200], json: {{"$.state": placed}}, latency: 1s}}
      - name: confirm
        request: {{url: "{base}/api/orders/${{order}}/confirm", headers: {{authorization: "Bearer ${{token}}", x-step: confirm{confirm}}}}}
        expect: {{status: [200], body_matches: "ORD-123 confirmed", latency: 1s}}
"#,
        home = f("home"),
        login = f("login"),
        cart = f("cart"),
        checkout = f("checkout"),
        confirm = f("confirm"),
    )
}

/// A directory with the password and card files.
fn secrets() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(dir.path().join("card"), CARD).unwrap();
    dir
}

/// One run of the checkout journey with `faults`, in-process.
fn run_once(rt: &tokio::runtime::Runtime, dir: &std::path::Path, port: u16, faults: &[(&str, &str)]) -> JourneyRun {
    let yaml = format!(
        "specs: [slos]\nstate: s.redb\nsources: []\njourneys:\n{}",
        journey_yaml("checkout", port, "card_file: card", faults)
    );
    let config = slo_agent::config::parse("agent.yaml", &yaml, dir).unwrap_or_else(|e| panic!("{e:#?}"));
    let j = config.synthetic.journeys[0].clone();
    rt.block_on(journey::run(&j, "local", &SystemClock))
}

fn statuses(r: &JourneyRun) -> Vec<(&str, Status)> {
    r.steps.iter().map(|s| (s.name.as_str(), s.status)).collect()
}

#[test]
fn a_healthy_checkout_carries_token_cookie_and_secrets_through_every_step() {
    let (port, _shop) = shop();
    let dir = secrets();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = run_once(&rt, dir.path(), port, &[]);
    assert_eq!(r.status, Status::Ok, "{:#?}", r.steps);
    assert_eq!(r.failed_step, None);
    assert_eq!(r.steps.len(), 5);
    assert!(r.steps.iter().all(|s| s.status == Status::Ok && s.error.is_none()), "{:#?}", r.steps);
    let http: Vec<_> = r.steps.iter().map(|s| s.http_status).collect();
    assert_eq!(http, [Some(200), Some(200), Some(201), Some(200), Some(200)]);
    // Phases of every step are there; no response was kept.
    for s in &r.steps {
        let o = s.outcome.as_ref().expect("every step was sent");
        assert!(o.last().phases.processing > Duration::ZERO, "{}", s.name);
        assert!(o.last().response.is_none(), "{}: the run keeps no response", s.name);
    }
    // Nothing of the secrets or the token is in the run.
    let debug = format!("{r:?}");
    for secret in [PASSWORD, CARD, TOKEN, SESSION] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[test]
fn a_failure_at_each_step_is_named_and_later_steps_are_skipped() {
    let (port, _shop) = shop();
    let dir = secrets();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let steps = ["home", "login", "cart", "checkout", "confirm"];
    // (step, fault, the step reported failed, words its error has)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("home", "500", "home", "status 500 not in [200]"),
        ("home", "wrong-body", "home", "body does not match /Welcome/"),
        ("login", "500", "login", "status 500"),
        ("login", "wrong-body", "login", "extract token: the body is not JSON"),
        // No session cookie: the login step's cookie extraction names it.
        ("login", "no-cookie", "login", "extract session: no `session` cookie set"),
        ("cart", "500", "cart", "status 500"),
        ("cart", "wrong-body", "cart", "extract cart: the body is not JSON"),
        ("checkout", "500", "checkout", "status 500"),
        ("checkout", "wrong-body", "checkout", "body is not JSON"),
        ("confirm", "500", "confirm", "status 500"),
        ("confirm", "wrong-body", "confirm", "body does not match /ORD-123 confirmed/"),
    ];
    for (step, kind, failed, words) in cases {
        let r = run_once(&rt, dir.path(), port, &[(step, kind)]);
        let why = format!("{kind} at {step}: {:#?}", statuses(&r));
        assert_eq!(r.status, Status::Failed, "{why}");
        assert_eq!(r.failed_step.as_deref(), Some(*failed), "{why}");
        let at = steps.iter().position(|s| s == failed).unwrap();
        for (i, s) in r.steps.iter().enumerate() {
            let want = match i.cmp(&at) {
                std::cmp::Ordering::Less => Status::Ok,
                std::cmp::Ordering::Equal => Status::Failed,
                std::cmp::Ordering::Greater => Status::Skipped,
            };
            assert_eq!(s.status, want, "step {} {why}", s.name);
            if want == Status::Skipped {
                assert!(s.outcome.is_none() && s.duration.is_zero(), "a skipped step is not sent");
            }
        }
        let error = r.steps[at].error.as_deref().unwrap_or_default();
        assert!(error.contains(words), "{kind} at {step}: error {error:?} should say {words:?}");
    }
}

#[test]
fn a_slow_step_degrades_the_journey_without_failing_it() {
    let (port, _shop) = shop();
    let dir = secrets();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = run_once(&rt, dir.path(), port, &[("cart", "slow")]);
    assert_eq!(r.status, Status::Degraded, "{:#?}", r.steps);
    assert_eq!(r.failed_step, None);
    let cart = &r.steps[2];
    assert_eq!(cart.status, Status::Degraded);
    assert!(cart.duration >= Duration::from_millis(1500));
    assert!(cart.error.is_none());
    assert!(cart.degraded.as_deref().unwrap().contains("over budget 1000ms"), "{:?}", cart.degraded);
    // The steps after a slow one still run.
    assert_eq!(r.steps[4].status, Status::Ok, "{:#?}", statuses(&r));
}

#[test]
fn a_secret_that_cannot_be_read_fails_its_step_naming_the_key() {
    let (port, _shop) = shop();
    let dir = secrets();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let yaml = format!(
        "specs: [slos]\nstate: s.redb\nsources: []\njourneys:\n{}",
        journey_yaml("checkout", port, "card_file: card", &[])
    );
    let config = slo_agent::config::parse("agent.yaml", &yaml, dir.path()).unwrap();
    // Read at each run: removed after the load, it is missed at the run.
    std::fs::remove_file(dir.path().join("card")).unwrap();
    let r = rt.block_on(journey::run(&config.synthetic.journeys[0], "local", &SystemClock));
    assert_eq!(r.failed_step.as_deref(), Some("checkout"));
    let error = r.steps[3].error.clone().unwrap();
    assert!(error.starts_with("form card: cannot read "), "{error}");
    assert!(r.steps[3].outcome.is_none(), "nothing was sent");
    assert_eq!(r.steps[4].status, Status::Skipped);
}

/// Waits for `/api/v1/journeys` to show both journeys with a status.
fn journeys_answer(port: u16) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(body) = common::http_get(port, "/api/v1/journeys") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if v["journeys"].as_array().is_some_and(|a| a.len() == 2) {
                return v;
            }
        }
        assert!(Instant::now() < until, "no journey runs on /api/v1/journeys");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_running_agent_serves_the_last_runs_and_never_shows_a_secret() {
    let (shop_port, _shop) = shop();
    let dir = secrets();
    let d = dir.path();
    let port = common::free_port();
    let rest = format!(
        "sources: []\njourneys:\n{}{}",
        journey_yaml("checkout", shop_port, "card_env: SHOP_TEST_CARD", &[]),
        journey_yaml("broken-checkout", shop_port, "card_env: SHOP_TEST_CARD", &[("checkout", "500")]),
    );
    let config = common::write_agent_config(d, port, &rest);
    // SLOs on the journeys' events: the whole broken run, and one of its steps that works.
    let mut slos = std::fs::read_to_string(d.join("slos.yaml")).unwrap();
    for (name, service, hop) in
        [("checkout-journey", "broken-checkout", "journey"), ("cart-step", "broken-checkout", "cart")]
    {
        slos += &format!(
            "---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: {name}}}\nspec:\n  service: {service}\n  objective: 99\n  window: 28d\n  indicator: {{source: synthetic, filter: {{service: {service}, hop: {hop}}}, good: {{status: 2xx}}}}\n"
        );
    }
    std::fs::write(d.join("slos.yaml"), slos).unwrap();
    let log = std::fs::File::create(d.join("agent.log")).unwrap();
    let mut child = std::process::Command::new(common::bin())
        .args(["run", "--config"])
        .arg(&config)
        .env("SLO_AGENT_LOG", "debug")
        .env("SHOP_TEST_CARD", CARD)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let answer = journeys_answer(port);
    let one = common::http_get(port, "/api/v1/journeys/broken-checkout");
    // The journey's SLO burns, its step's does not, and the evidence names the failing step.
    let until = Instant::now() + Duration::from_secs(30);
    let (totals, metrics) = loop {
        let (_, report) = common::call(port, "GET", "/api/v1/slos", None, "");
        let t = common::totals(&report);
        let metrics = common::http_get(port, "/metrics").unwrap_or_default();
        let total = |n: &str| t.iter().find(|(x, ..)| x == n).map_or(0, |(_, total, _)| *total);
        if total("checkout-journey") >= 1 && total("cart-step") >= 1 && metrics.contains("dimension=\"route\"") {
            break (t, metrics);
        }
        assert!(Instant::now() < until, "the journey SLOs counted nothing: {t:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();

    let journeys = answer["journeys"].as_array().unwrap();
    let by_name = |n: &str| journeys.iter().find(|j| j["name"] == n).unwrap_or_else(|| panic!("{n} in {answer}"));
    let ok = by_name("checkout");
    assert_eq!(ok["status"], "ok", "{ok:#}");
    assert_eq!(ok["failed_step"], serde_json::Value::Null);
    assert!(slo_agent::timefmt::parse_rfc3339(ok["last_run"].as_str().unwrap()).is_ok(), "{ok:#}");
    let steps = ok["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    for s in steps {
        assert_eq!(s["status"], "ok", "{s:#}");
        assert!(s["duration_ms"].is_u64() && s["error"].is_null(), "{s:#}");
        assert!(s["name"].is_string());
    }
    let broken = by_name("broken-checkout");
    assert_eq!(broken["status"], "failed", "{broken:#}");
    assert_eq!(broken["failed_step"], "checkout");
    let names_and_statuses: Vec<(String, String)> = broken["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        names_and_statuses,
        [("home", "ok"), ("login", "ok"), ("cart", "ok"), ("checkout", "failed"), ("confirm", "skipped")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(broken["steps"][3]["error"].as_str().unwrap().contains("status 500"), "{broken:#}");
    let one: serde_json::Value = serde_json::from_str(&one.expect("GET /api/v1/journeys/broken-checkout")).unwrap();
    assert_eq!(one["failed_step"], "checkout");

    // Metrics, one series per journey and step.
    let line = |prefix: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
            .to_string()
    };
    assert!(line("slo_agent_journey_success{journey=\"checkout\",service=\"checkout\"}").ends_with(" 1"));
    assert!(line("slo_agent_journey_success{journey=\"broken-checkout\",service=\"broken-checkout\"}").ends_with(" 0"));
    assert!(
        line("slo_agent_journey_status{journey=\"broken-checkout\",service=\"broken-checkout\",status=\"failed\"}")
            .ends_with(" 1")
    );
    line("slo_agent_journey_step_duration_seconds{journey=\"checkout\",service=\"checkout\",step=\"cart\"}");
    assert!(
        line("slo_agent_journey_step_status{journey=\"broken-checkout\",service=\"broken-checkout\",step=\"confirm\",status=\"skipped\"}")
            .ends_with(" 1")
    );

    for (name, total, good) in &totals {
        match name.as_str() {
            "checkout-journey" => assert_eq!(*good, 0, "{totals:?}"),
            "cart-step" => assert_eq!(good, total, "{totals:?}"),
            _ => {}
        }
    }
    assert!(
        metrics.lines().any(|l| l.starts_with("slo_agent_slo_top_failures{")
            && l.contains("slo=\"checkout-journey\"")
            && l.contains("dimension=\"route\"")
            && l.contains("value=\"checkout\"")),
        "the failing step is not in the evidence:\n{metrics}"
    );

    // No secret anywhere: not in the answers, the metrics, or the log.
    let mut log = String::new();
    std::fs::File::open(d.join("agent.log")).unwrap().read_to_string(&mut log).unwrap();
    assert!(log.contains("journey"), "the debug log speaks of the failed journey:\n{log}");
    let answers = format!("{answer}{one}{metrics}");
    for secret in [PASSWORD, CARD, TOKEN, SESSION] {
        assert!(!answers.contains(secret), "{secret} in an answer");
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

/// `Runtime::check_once` (what the demo runs once per step of its day): each
/// call runs the journey exactly once at the agent's clock, and the next
/// evaluation counts that run — however fast the machine is.
#[test]
fn each_check_once_is_one_run_counted_by_the_next_evaluation() {
    let (shop_port, shop_rt) = shop();
    let dir = secrets();
    let d = dir.path();
    let t0 = 1_795_132_800_000i64; // 2026-11-20T00:00:00Z
    let slo = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-journey}\nspec:\n  service: broken-checkout\n  objective: 99\n  window: 28d\n  indicator: {source: synthetic, filter: {service: broken-checkout, hop: journey}, good: {status: 2xx}}\n";
    std::fs::write(d.join("slos.yaml"), slo).unwrap();
    let yaml = format!(
        "specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:0\ntick: 1h\nsources: []\njourneys:\n{}",
        journey_yaml("broken-checkout", shop_port, "card_file: card", &[("checkout", "500")])
    );
    let config = slo_agent::config::parse("agent.yaml", &yaml, d).unwrap_or_else(|e| panic!("{e:#?}"));
    let clock = slo_agent::clock::ManualClock::new(t0);
    let served = common::in_process(config, std::sync::Arc::new(clock.clone()));
    let total = |snap: &slo_agent::api::state::Snapshot| {
        snap.statuses.iter().find(|s| s.slo.name == "checkout-journey").map_or(0, |s| s.window.events.total)
    };
    for n in 1..=3u64 {
        clock.set(t0 + n as i64 * 300_000);
        shop_rt.block_on(served.agent.check_once());
        let snap = served.agent.evaluate();
        assert_eq!(total(&snap), n, "after {n} runs");
    }
    let recent = served.agent.api.journeys.recent("broken-checkout");
    let starts: Vec<i64> = recent.iter().map(|(at, _)| (at - t0) / 300_000).collect();
    assert_eq!(starts, [3, 2, 1], "one run per call, at the agent's clock, newest first");
    assert!(recent.iter().all(|(_, s)| *s == Status::Failed));
}
