//! The route × role matrix, cell by cell, through the running binary: every
//! route of `slo_agent::api::access::ROUTES` called with no token, an
//! unknown token and a token of each role, with reads closed and open. A
//! cell is "let through" when the answer is neither 401, 403 nor 429 (the
//! handler then answers for itself: 200, 400 for the empty body, 404 for
//! the made-up id).

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use slo_agent::api::access::ROUTES;
use slo_agent::auth::Role;

/// What a route needs, as `docs/api.md` documents it.
#[derive(Debug, Clone, Copy)]
enum Need {
    Open,
    Read,
    Roles(&'static [Role]),
    /// A push source's key or GitHub's signature; API tokens grant nothing.
    Own,
}

use Need::{Own, Read as R};
const APPROVE: Need = Need::Roles(&[Role::Approve]);
const DEPLOY: Need = Need::Roles(&[Role::Deploy]);
const SILENCE: Need = Need::Roles(&[Role::Silence]);
const ADMIN: Need = Need::Roles(&[Role::Admin]);
const INCIDENT: Need = Need::Roles(&[Role::Incident]);

/// The documented matrix, written out independently of the agent's table.
const MATRIX: &[(&str, &str, Need)] = &[
    ("GET", "/healthz", Need::Open),
    ("GET", "/readyz", Need::Open),
    ("GET", "/metrics", R),
    ("GET", "/status", Need::Open),
    ("GET", "/status.json", Need::Open),
    ("GET", "/api/v1/slos", R),
    ("GET", "/api/v1/slos/{name}", R),
    ("GET", "/api/v1/alerts", R),
    ("GET", "/api/v1/notifications", R),
    ("GET", "/api/v1/freeze", R),
    ("GET", "/api/v1/freeze/verdict", R),
    ("POST", "/api/v1/freeze/flagger", R),
    ("GET", "/api/v1/freeze/overrides", R),
    ("POST", "/api/v1/freeze/overrides", APPROVE),
    ("GET", "/api/v1/freeze/overrides/{id}", R),
    ("DELETE", "/api/v1/freeze/overrides/{id}", APPROVE),
    ("GET", "/api/v1/freeze/bypasses", R),
    ("POST", "/api/v1/freeze/bypasses", DEPLOY),
    ("GET", "/api/v1/freeze/bypasses/{id}", R),
    ("DELETE", "/api/v1/freeze/bypasses/{id}", Need::Roles(&[Role::Approve, Role::Deploy])),
    ("POST", "/api/v1/freeze/bypasses/{id}/approve", APPROVE),
    ("GET", "/api/v1/deploys", R),
    ("POST", "/api/v1/deploys", DEPLOY),
    ("GET", "/api/v1/deploys/{id}", R),
    ("GET", "/api/v1/annotations", R),
    ("GET", "/api/v1/hops", R),
    ("GET", "/api/v1/crawlers", R),
    ("GET", "/api/v1/timeline", R),
    ("GET", "/api/v1/anomalies", R),
    ("GET", "/api/v1/forecasts", R),
    ("GET", "/api/v1/outage", R),
    ("GET", "/api/v1/journeys", R),
    ("GET", "/api/v1/journeys/{name}", R),
    ("GET", "/api/v1/status", R),
    ("GET", "/api/v1/silences", R),
    ("POST", "/api/v1/silences", SILENCE),
    ("GET", "/api/v1/silences/{id}", R),
    ("DELETE", "/api/v1/silences/{id}", SILENCE),
    ("GET", "/api/v1/incidents", R),
    ("POST", "/api/v1/incidents", INCIDENT),
    ("GET", "/api/v1/incidents/{id}", R),
    ("GET", "/api/v1/incidents/{id}/timeline", R),
    ("POST", "/api/v1/incidents/{id}/updates", INCIDENT),
    ("GET", "/api/v1/audit", ADMIN),
    ("GET", "/api/v1/audit/verify", ADMIN),
    ("GET", "/api/v1/backup", ADMIN),
    ("POST", "/api/v1/github/webhook", Own),
    ("POST", "/ingest/firehose/{source}", Own),
    ("POST", "/ingest/lambda-telemetry/{source}", Own),
    ("POST", "/ingest/otlp/{source}/v1/traces", Own),
    ("POST", "/v1/traces", Own),
];

const ROLES: [(Role, &str); 6] = [
    (Role::Read, "access-test-read-token-0123456789"),
    (Role::Silence, "access-test-silence-token-0123456789"),
    (Role::Deploy, "access-test-deploy-token-0123456789"),
    (Role::Approve, "access-test-approve-token-0123456789"),
    (Role::Admin, "access-test-admin-token-0123456789"),
    (Role::Incident, "access-test-incident-token-0123456789"),
];
const UNKNOWN: &str = "access-test-unknown-token-0123456789";

fn start(read_requires_token: bool) -> (std::process::Child, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("specs")).unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::write(
        dir.path().join("specs/slos.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-availability}\nspec:\n  service: checkout\n  objective: 99.9\n  window: 28d\n  indicator: {source: ndjson, filter: {service: checkout}, good: {status: \"< 500\"}}\n",
    )
    .unwrap();
    let mut tokens = String::new();
    for (role, value) in ROLES {
        let name = role.as_str();
        std::fs::write(dir.path().join(format!("{name}.token")), value).unwrap();
        tokens.push_str(&format!("    - {{name: {name}-bot, role: {name}, token_file: {name}.token}}\n"));
    }
    let port = common::free_port();
    let config = format!(
        "specs: [specs]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 100ms\napi:\n  read_requires_token: {read_requires_token}\n  tokens:\n{tokens}sources:\n  - name: app\n    type: file\n    paths: [\"logs/*.log\"]\n    format: ndjson\n"
    );
    std::fs::write(dir.path().join("agent.yaml"), config).unwrap();
    let child = common::start(&dir.path().join("agent.yaml"));
    let until = Instant::now() + Duration::from_secs(20);
    while call(port, "GET", "/readyz", None) != 200 {
        assert!(Instant::now() < until, "the agent did not get ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port, dir)
}

/// The status of one call with an empty JSON body.
fn call(port: u16, method: &str, path: &str, token: Option<&str>) -> u16 {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return 0 };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = if method == "GET" { "" } else { "{}" };
    let _ = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // Bytes: a backup's body is not text.
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// What a cell must answer: `None` let through, else the refusal's status.
fn expected(need: Need, reads_closed: bool, token: Option<Role>, known: bool) -> Option<u16> {
    match need {
        Need::Open => None,
        Need::Read if !reads_closed => None,
        Need::Read => (!known).then_some(401),
        Need::Roles(roles) => match token {
            _ if !known => Some(401),
            Some(r) if r == Role::Admin || roles.contains(&r) => None,
            _ => Some(403),
        },
        // API tokens grant nothing there; checked apart.
        Need::Own => None,
    }
}

fn matrix(reads_closed: bool) {
    let (mut child, port, _dir) = start(reads_closed);
    let mut wrong = Vec::new();
    let mut cells = 0;
    for &(method, pattern, need) in MATRIX {
        let path = pattern
            .replace("{name}", "no-such-thing")
            .replace("{id}", "no-such-id")
            .replace("{source}", "no-such-source");
        let mut cases: Vec<(String, Option<&str>, Option<Role>, bool)> =
            vec![("no token".into(), None, None, false), ("unknown token".into(), Some(UNKNOWN), None, false)];
        for (role, value) in ROLES {
            cases.push((format!("role {}", role.as_str()), Some(value), Some(role), true));
        }
        for (label, token, role, known) in cases {
            cells += 1;
            let got = call(port, method, &path, token);
            let ok = match (need, expected(need, reads_closed, role, known)) {
                // A push source's key or GitHub's signature: an API token never lets a call in.
                (Own, _) => got != 0 && !(200..300).contains(&got),
                // Let through: the handler answers (not a refusal, not a 5xx of a missing caller).
                (_, None) => (200..500).contains(&got) && !matches!(got, 401 | 403 | 429),
                (_, Some(want)) => got == want,
            };
            if !ok {
                let want = match expected(need, reads_closed, role, known) {
                    Some(w) => w.to_string(),
                    None => "let through".into(),
                };
                wrong.push(format!("{method} {pattern} with {label}: got {got}, want {want}"));
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(cells, MATRIX.len() * (2 + ROLES.len()));
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells wrong (reads closed: {reads_closed}):\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The matrix above names exactly the agent's routes.
#[test]
fn the_matrix_covers_every_route() {
    let table: std::collections::BTreeSet<(&str, &str)> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
    let here: std::collections::BTreeSet<(&str, &str)> = MATRIX.iter().map(|(m, p, _)| (*m, *p)).collect();
    assert_eq!(table, here);
}

#[test]
fn every_route_with_every_token_when_reads_need_a_token() {
    matrix(true);
}

#[test]
fn every_route_with_every_token_when_reads_are_open() {
    matrix(false);
}
