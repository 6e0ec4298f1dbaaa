//! The deploy freeze through the running binary: `GET /api/v1/freeze` and
//! `slo-agent freeze check|status`, on logs where one service has spent its
//! error budget and another has not, and a policy reload.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::call;
use serde_json::Value;

const CHECKOUT: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-availability}\nspec:\n  service: checkout\n  objective: 99.9\n  window: 28d\n  indicator: {source: ndjson, filter: {service: checkout}, good: {status: \"< 500\"}}\n";
const SEARCH: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: search-availability}\nspec:\n  service: search\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, filter: {service: search}, good: {status: \"< 500\"}}\n";
const TOKEN: &str = "freeze-test-read-token-0123456789";

struct Agent {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_ms() -> i64 {
    use slo_agent::clock::Clock;
    slo_agent::clock::SystemClock.now_ms()
}

/// An agent over a log in which checkout failed 5 % of 2,000 requests (its
/// 0.1 % budget is spent many times over) and search failed none.
fn start(api: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("specs")).unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::write(dir.path().join("specs/slos.yaml"), format!("{CHECKOUT}---\n{SEARCH}")).unwrap();
    std::fs::write(dir.path().join("read.token"), TOKEN).unwrap();
    std::fs::write(dir.path().join("admin.token"), "freeze-test-admin-token-0123456789").unwrap();
    std::fs::write(dir.path().join("approver.token"), "freeze-test-approver-token-0123456789").unwrap();
    std::fs::write(dir.path().join("deployer.token"), "freeze-test-deployer-token-0123456789").unwrap();
    let t = now_ms() - 60_000;
    let mut log = String::new();
    for i in 0..2_000 {
        let status = if i % 20 == 0 { 503 } else { 200 };
        log.push_str(&format!("{{\"ts\":{},\"service\":\"checkout\",\"path\":\"/pay\",\"status\":{status}}}\n", t + i));
        log.push_str(&format!("{{\"ts\":{},\"service\":\"search\",\"path\":\"/q\",\"status\":200}}\n", t + i));
    }
    std::fs::write(dir.path().join("logs/app.log"), log).unwrap();
    let port = common::free_port();
    let config = format!(
        "specs: [specs]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 100ms\n{api}sources:\n  - name: app\n    type: file\n    paths: [\"logs/*.log\"]\n    format: ndjson\n"
    );
    std::fs::write(dir.path().join("agent.yaml"), config).unwrap();
    let child = common::start(&dir.path().join("agent.yaml"));
    let a = Agent { child, port, dir };
    let token = (!api.is_empty()).then_some(TOKEN);
    wait(|| {
        get(a.port, "/api/v1/freeze?service=checkout", token)
            .is_some_and(|(s, b)| s == 423 && b["slos"][0]["events"] == 2_000)
    });
    a
}

fn wait(mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < until, "timed out");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET path`: (status, JSON body).
fn get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, Value)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// `POST path` with a JSON body: (status, JSON body).
fn post(port: u16, path: &str, body: &str) -> (u16, Value) {
    call(port, "POST", path, None, body)
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .args(args)
        .env_remove("SLO_AGENT_URL")
        .env_remove("SLO_AGENT_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_freeze_answer_and_the_cli_follow_the_budget() {
    let a = start("");
    let (status, c) = get(a.port, "/api/v1/freeze?service=checkout", None).unwrap();
    assert_eq!(status, 423, "{c}");
    assert_eq!(c["service"], "checkout");
    assert_eq!(c["change"], "feature");
    assert_eq!((c["allowed"].as_bool(), c["frozen"].as_bool()), (Some(false), Some(true)));
    assert_eq!(c["status"], "FROZEN");
    assert_eq!(c["policy"], "default");
    let reason = &c["reasons"][0];
    assert_eq!(reason["kind"], "budget");
    assert_eq!(reason["slo"], "checkout-availability");
    assert!(reason["measured"].as_f64().unwrap() < 0.0, "{reason}");
    assert_eq!(reason["threshold"], 0.0);
    assert!(reason["since"].as_str().unwrap().ends_with('Z'));
    assert!(reason["message"].as_str().unwrap().contains("error budget spent"), "{reason}");
    assert_eq!(c["slos"][0]["name"], "checkout-availability");
    assert!(c["slos"][0]["budget_remaining"].as_f64().unwrap() < -40.0, "{c}");
    assert!(c["slos"][0]["burn_rates"]["5m"].as_f64().is_some());
    assert_eq!(c["overrides"], Value::Array(vec![]));
    assert!(c["evaluated_at"].as_str().unwrap().ends_with('Z'));

    // Hotfixes and rollbacks go through a frozen service: 200, still frozen.
    for change in ["hotfix", "rollback"] {
        let (status, h) = get(a.port, &format!("/api/v1/freeze?service=checkout&change={change}"), None).unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            (h["allowed"].as_bool(), h["frozen"].as_bool(), h["change"].as_str()),
            (Some(true), Some(true), Some(change))
        );
    }
    // Argo Rollouts' `web` provider needs a 200 to read a verdict at all.
    let (status, v) = get(a.port, "/api/v1/freeze/verdict?service=checkout", None).unwrap();
    assert_eq!((status, v["allowed"].as_bool(), v["status"].as_str()), (200, Some(false), Some("FROZEN")));
    assert_eq!(get(a.port, "/api/v1/freeze/verdict?service=cart", None).unwrap().0, 404);

    // Flagger's gate webhook: 200 go, 403 halt; the service from the
    // metadata, else the canary's name.
    let payload = |name: &str, metadata: &str| {
        format!(
            r#"{{"name":"{name}","namespace":"shop","phase":"Progressing","checksum":"85d557f47b","metadata":{metadata}}}"#
        )
    };
    let (status, f) = post(a.port, "/api/v1/freeze/flagger", &payload("checkout", "{}"));
    assert_eq!((status, f["allowed"].as_bool(), f["reasons"][0]["kind"].as_str()), (403, Some(false), Some("budget")));
    assert_eq!(f["flagger"]["namespace"], "shop");
    let (status, _) = post(a.port, "/api/v1/freeze/flagger", &payload("podinfo", r#"{"service":"search"}"#));
    assert_eq!(status, 200);
    let (status, f) =
        post(a.port, "/api/v1/freeze/flagger", &payload("podinfo", r#"{"service":"checkout","change":"hotfix"}"#));
    assert_eq!((status, f["frozen"].as_bool()), (200, Some(true)));
    assert_eq!(post(a.port, "/api/v1/freeze/flagger", &payload("podinfo", "{}")).0, 404);
    assert_eq!(post(a.port, "/api/v1/freeze/flagger", "not json").0, 400);

    let (status, s) = get(a.port, "/api/v1/freeze?service=search", None).unwrap();
    assert_eq!((status, s["status"].as_str(), s["allowed"].as_bool()), (200, Some("OK"), Some(true)));
    assert_eq!(s["reasons"], Value::Array(vec![]));

    let (status, all) = get(a.port, "/api/v1/freeze", None).unwrap();
    assert_eq!(status, 200);
    let names: Vec<&str> = all["services"].as_array().unwrap().iter().map(|s| s["service"].as_str().unwrap()).collect();
    assert_eq!(names, ["checkout", "search"]);

    let (status, unknown) = get(a.port, "/api/v1/freeze?service=cart", None).unwrap();
    assert_eq!(status, 404);
    assert_eq!(unknown["known_services"], serde_json::json!(["checkout", "search"]));
    assert_eq!(get(a.port, "/api/v1/freeze?service=checkout&change=yolo", None).unwrap().0, 400);

    // The CLI: 1 frozen, 0 allowed, 2 no answer (unless --fail-open).
    let url = format!("http://127.0.0.1:{}", a.port);
    let (code, out, _) = cli(&["freeze", "check", "--service", "checkout", "--url", &url]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("FROZEN: checkout may not deploy a feature change (status FROZEN, policy default)"),
        "{out}"
    );
    assert!(out.contains("budget: checkout-availability: error budget spent"), "{out}");
    assert!(out.contains("(hotfix and rollback changes are not blocked)"), "{out}");
    let (code, out, _) = cli(&["freeze", "check", "--service", "checkout", "--change", "hotfix", "--url", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ALLOWED: checkout may deploy a hotfix change"), "{out}");
    assert_eq!(cli(&["freeze", "check", "--service", "search", "--url", &url]).0, 0);
    let (code, _, err) = cli(&["freeze", "check", "--service", "cart", "--url", &url]);
    assert_eq!(code, 2);
    assert!(err.contains("known services: checkout, search"), "{err}");
    let (code, out, _) = cli(&["freeze", "status", "--url", &url]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("SERVICE"), "{out}");
    assert!(lines[1].starts_with("checkout") && lines[1].contains("FROZEN"), "{out}");
    assert!(lines[2].starts_with("search") && lines[2].contains("OK"), "{out}");

    let nobody = format!("http://127.0.0.1:{}", common::free_port());
    let (code, _, err) = cli(&["freeze", "check", "--service", "checkout", "--url", &nobody, "--timeout", "2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("failing closed"), "{err}");
    let (code, _, err) = cli(&["freeze", "check", "--service", "checkout", "--url", &nobody, "--fail-open"]);
    assert_eq!(code, 0);
    assert!(err.contains("--fail-open"), "{err}");

    // A policy document reloads with the specs: a one-off calendar freeze
    // covering now freezes search too.
    let start = jiff::Timestamp::from_millisecond(now_ms() - 3_600_000).unwrap();
    let end = jiff::Timestamp::from_millisecond(now_ms() + 3_600_000).unwrap();
    let policy = format!(
        "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {{name: search-release}}\nspec:\n  services: [search]\n  calendar:\n    - {{start: \"{start}\", end: \"{end}\", reason: release weekend}}\n  never_block: []\n"
    );
    std::fs::write(a.dir.path().join("specs/policy.yaml"), policy).unwrap();
    wait(|| get(a.port, "/api/v1/freeze?service=search", None).is_some_and(|(s, _)| s == 423));
    let (_, s) = get(a.port, "/api/v1/freeze?service=search&change=hotfix", None).unwrap();
    assert_eq!((s["policy"].as_str(), s["allowed"].as_bool()), (Some("search-release"), Some(false)), "{s}");
    assert_eq!(s["reasons"][0]["kind"], "calendar");
    assert_eq!(s["reasons"][0]["message"], "calendar freeze: release weekend");
    let since: jiff::Timestamp = s["reasons"][0]["since"].as_str().unwrap().parse().unwrap();
    assert_eq!(since, start);
}

#[test]
fn reading_the_freeze_needs_a_token_when_reads_are_closed() {
    // The config holds only the token's SHA-256.
    use sha2::Digest as _;
    let hash: String = sha2::Sha256::digest(TOKEN.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let a = start(&format!(
        "api:\n  read_requires_token: true\n  tokens:\n    - {{name: ci, role: read, token_sha256: {hash}}}\n    - {{name: ops, role: admin, token_file: {}}}\n",
        Path::new("admin.token").display()
    ));
    assert_eq!(get(a.port, "/api/v1/freeze?service=checkout", None).unwrap().0, 401);
    assert_eq!(get(a.port, "/api/v1/freeze?service=checkout", Some("wrong-token-0123456789")).unwrap().0, 401);
    assert_eq!(get(a.port, "/api/v1/freeze?service=checkout", Some(TOKEN)).unwrap().0, 423);
    assert_eq!(post(a.port, "/api/v1/freeze/flagger", r#"{"name":"checkout"}"#).0, 401);
    let url = format!("http://127.0.0.1:{}", a.port);
    assert_eq!(cli(&["freeze", "check", "--service", "checkout", "--url", &url]).0, 2);
    let token_file = a.dir.path().join("read.token");
    let (code, out, _) =
        cli(&["freeze", "check", "--service", "checkout", "--url", &url, "--token-file", token_file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
}

/// Manual freezes and unfreezes: made and ended by the `approve` role only,
/// shown in every answer while active, deciding `frozen` over the policy,
/// audited, and kept across a restart.
#[test]
fn manual_freezes_and_unfreezes_override_the_policy_and_survive_a_restart() {
    const APPROVER: &str = "freeze-test-approver-token-0123456789";
    const DEPLOYER: &str = "freeze-test-deployer-token-0123456789";
    const ADMIN: &str = "freeze-test-admin-token-0123456789";
    let mut a = start(
        "api:\n  tokens:\n    - {name: lead, roles: [approve, deploy], token_file: approver.token}\n    - {name: pipeline, role: deploy, token_file: deployer.token}\n    - {name: ops, role: admin, token_file: admin.token}\n",
    );
    let restart = |a: &mut Agent| {
        let _ = a.child.kill();
        let _ = a.child.wait();
        a.child = common::start(&a.dir.path().join("agent.yaml"));
    };
    let path = "/api/v1/freeze/overrides";
    let freeze_search = r#"{"service":"search","action":"freeze","reason":"database migration","expires_in":"2h"}"#;
    assert_eq!(call(a.port, "POST", path, None, freeze_search).0, 401);
    let (status, refused) = call(a.port, "POST", path, Some(DEPLOYER), freeze_search);
    assert_eq!(status, 403, "{refused}");
    assert_eq!(
        call(a.port, "POST", path, Some(APPROVER), r#"{"service":"search","action":"melt","reason":"x"}"#).0,
        400
    );
    assert_eq!(
        call(a.port, "POST", path, Some(APPROVER), r#"{"service":"search","action":"freeze","reason":" "}"#).0,
        400
    );
    assert_eq!(
        call(
            a.port,
            "POST",
            path,
            Some(APPROVER),
            r#"{"service":"search","action":"freeze","reason":"x","expires_in":"90d"}"#
        )
        .0,
        400
    );
    let (status, unknown) =
        call(a.port, "POST", path, Some(APPROVER), r#"{"service":"cart","action":"freeze","reason":"x"}"#);
    assert_eq!(status, 404, "{unknown}");

    let (status, made) = call(a.port, "POST", path, Some(APPROVER), freeze_search);
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (made["service"].as_str(), made["action"].as_str(), made["created_by"].as_str()),
        (Some("search"), Some("freeze"), Some("lead"))
    );
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    // At once, not at the next tick.
    let (status, s) = get(a.port, "/api/v1/freeze?service=search", None).unwrap();
    assert_eq!((status, s["status"].as_str(), s["frozen"].as_bool()), (423, Some("FROZEN"), Some(true)), "{s}");
    assert_eq!(s["reasons"][0]["kind"], "manual_freeze");
    assert_eq!(s["reasons"][0]["message"], format!("frozen by lead: database migration (override {id})"));
    assert_eq!(s["overrides"][0]["id"], id.as_str());
    assert_eq!(s["overrides"][0]["reason"], "database migration");

    // An emergency unfreeze of checkout: allowed though its budget is spent.
    let (status, unfreeze) = call(
        a.port,
        "POST",
        path,
        Some(APPROVER),
        r#"{"service":"checkout","action":"unfreeze","reason":"INC-42 fix must ship"}"#,
    );
    assert_eq!(status, 201, "{unfreeze}");
    let (status, c) = get(a.port, "/api/v1/freeze?service=checkout", None).unwrap();
    assert_eq!((status, c["allowed"].as_bool(), c["frozen"].as_bool()), (200, Some(true), Some(false)), "{c}");
    assert_eq!(c["status"], "FROZEN", "the policy's own verdict stays visible");
    assert_eq!(c["reasons"][0]["kind"], "budget");
    assert_eq!(c["overrides"][0]["action"], "unfreeze");

    let (status, list) = get(a.port, path, None).unwrap();
    assert_eq!(status, 200);
    assert_eq!(list["overrides"].as_array().unwrap().len(), 2);

    // Ending the freeze: search is open again; ending it twice is 404.
    assert_eq!(call(a.port, "DELETE", &format!("{path}/{id}"), Some(DEPLOYER), "").0, 403);
    let (status, ended) = call(a.port, "DELETE", &format!("{path}/{id}"), Some(APPROVER), "");
    assert_eq!((status, ended["ended_by"].as_str()), (200, Some("lead")), "{ended}");
    assert_eq!(get(a.port, "/api/v1/freeze?service=search", None).unwrap().0, 200);
    assert_eq!(call(a.port, "DELETE", &format!("{path}/{id}"), Some(APPROVER), "").0, 404);
    assert_eq!(get(a.port, path, None).unwrap().1["overrides"].as_array().unwrap().len(), 1);
    assert_eq!(get(a.port, &format!("{path}?all=true"), None).unwrap().1["overrides"].as_array().unwrap().len(), 2);

    // Every change, and the refusals, are in the audit log.
    let (_, audit) = get(a.port, "/api/v1/audit", Some(ADMIN)).unwrap();
    let actions: Vec<String> = audit["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{audit}"))
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["action"].as_str().unwrap_or("?"),
                e["actor"].as_str().unwrap_or("?"),
                e["outcome"].as_str().unwrap_or("?")
            )
        })
        .collect();
    for want in [
        "freeze.override.create lead ok: freeze search",
        "freeze.override.end lead ok",
        "freeze.override.create pipeline forbidden",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want}: {actions:#?}");
    }

    // A restart keeps the unfreeze.
    restart(&mut a);
    wait(|| {
        get(a.port, "/api/v1/freeze?service=checkout", None)
            .is_some_and(|(s, b)| s == 200 && b["slos"][0]["events"] == 2_000)
    });
    let (_, c) = get(a.port, "/api/v1/freeze?service=checkout", None).unwrap();
    assert_eq!(c["overrides"][0]["reason"], "INC-42 fix must ship");
}

/// A hotfix bypass of a feature freeze: asked for by a deploy token, taking
/// effect only after two approvers other than the requester; the
/// requester's own approval and a second one by the same approver are 409
/// and do not count; it can be revoked; it survives a restart.
#[test]
fn a_bypass_needs_two_other_approvers_and_can_be_revoked() {
    const LEAD: &str = "freeze-test-approver-token-0123456789";
    const DEV: &str = "freeze-test-deployer-token-0123456789";
    const SRE: &str = "freeze-test-admin-token-0123456789";
    let mut a = start(
        "api:\n  tokens:\n    - {name: lead, roles: [approve, deploy], token_file: approver.token}\n    - {name: dev, roles: [deploy, approve], token_file: deployer.token}\n    - {name: sre, role: approve, token_file: admin.token}\n",
    );
    let path = "/api/v1/freeze/bypasses";
    let ask = r#"{"service":"checkout","change":"feature","reason":"launch of the new basket","expires_in":"1h"}"#;
    assert_eq!(call(a.port, "POST", path, Some(SRE), ask).0, 403, "approve alone cannot request");
    let (status, b) = call(a.port, "POST", path, Some(DEV), ask);
    assert_eq!(status, 201, "{b}");
    assert_eq!(
        (b["state"].as_str(), b["approvers_needed"].as_u64(), b["requested_by"].as_str()),
        (Some("pending"), Some(2), Some("dev"))
    );
    let id = b["id"].as_str().unwrap().to_string();
    let approve = format!("{path}/{id}/approve");

    // Pending: still locked, and listed in the answer.
    let (status, c) = get(a.port, "/api/v1/freeze?service=checkout", None).unwrap();
    assert_eq!(status, 423);
    assert_eq!(
        (c["overrides"][0]["action"].as_str(), c["overrides"][0]["state"].as_str()),
        (Some("bypass"), Some("pending"))
    );

    let (status, own) = call(a.port, "POST", &approve, Some(DEV), "");
    assert_eq!(status, 409, "the requester's own approval: {own}");
    let (status, one) = call(a.port, "POST", &approve, Some(LEAD), r#"{"comment":"reviewed the diff"}"#);
    assert_eq!((status, one["approvals"].as_array().map(Vec::len)), (200, Some(1)), "{one}");
    assert_eq!(call(a.port, "POST", &approve, Some(LEAD), "").0, 409, "twice by the same approver");
    assert_eq!(get(a.port, "/api/v1/freeze?service=checkout", None).unwrap().0, 423, "one approval of two");
    let (status, two) = call(a.port, "POST", &approve, Some(SRE), "");
    assert_eq!((status, two["state"].as_str()), (200, Some("approved")), "{two}");

    // In effect for its change type only.
    let (status, c) = get(a.port, "/api/v1/freeze?service=checkout&change=feature", None).unwrap();
    assert_eq!((status, c["allowed"].as_bool(), c["frozen"].as_bool()), (200, Some(true), Some(true)), "{c}");
    assert_eq!(c["overrides"][0]["approvals"][0]["comment"], "reviewed the diff");
    assert_eq!(get(a.port, "/api/v1/freeze?service=search", None).unwrap().0, 200);

    // A restart keeps it.
    let _ = a.child.kill();
    let _ = a.child.wait();
    a.child = common::start(&a.dir.path().join("agent.yaml"));
    let port = a.port;
    wait(|| {
        get(port, "/api/v1/freeze?service=checkout", None)
            .is_some_and(|(s, b)| s == 200 && b["slos"][0]["events"] == 2_000)
    });

    // Revoked: locked again; approving a revoked bypass is 410.
    let (status, r) = call(a.port, "DELETE", &format!("{path}/{id}"), Some(SRE), "");
    assert_eq!((status, r["revoked_by"].as_str(), r["state"].as_str()), (200, Some("sre"), Some("ended")), "{r}");
    assert_eq!(get(a.port, "/api/v1/freeze?service=checkout", None).unwrap().0, 423);
    assert_eq!(call(a.port, "POST", &approve, Some(LEAD), "").0, 410);
    assert_eq!(get(a.port, path, None).unwrap().1["bypasses"].as_array().unwrap().len(), 0);
    assert_eq!(get(a.port, &format!("{path}?all=true"), None).unwrap().1["bypasses"].as_array().unwrap().len(), 1);

    // The same through the CLI.
    let url = format!("http://127.0.0.1:{}", a.port);
    let dev = a.dir.path().join("deployer.token");
    let lead = a.dir.path().join("approver.token");
    let as_ = |token: &Path, args: &[&str]| {
        let mut all: Vec<&str> = vec!["freeze"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &url, "--token-file", token.to_str().unwrap()]);
        cli(&all)
    };
    let (code, out, err) = as_(&dev, &["bypass", "--service", "checkout", "--change", "hotfix", "--reason", "fix"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("bypass   checkout") && out.contains("pending hotfix by dev, 0 of 2 approvals"), "{out}");
    let id = out.split_whitespace().nth(2).unwrap().to_string();
    let (code, _, err) = as_(&dev, &["approve", &id]);
    assert_eq!(code, 1, "the requester's own approval is refused");
    assert!(err.starts_with("refused (409)"), "{err}");
    let (code, out, _) = as_(&lead, &["approve", &id, "--comment", "ok"]);
    assert_eq!(code, 0);
    assert!(out.contains("1 of 2 approvals (lead)"), "{out}");
    let (code, out, err) =
        as_(&lead, &["override", "--service", "search", "--action", "freeze", "--reason", "migration"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("made freeze override "), "{out}");
    let oid = out.split_whitespace().nth(3).unwrap().to_string();
    let (code, out, _) = as_(&lead, &["list"]);
    assert_eq!(code, 0);
    assert!(out.contains("freeze   search") && out.contains("bypass   checkout"), "{out}");
    let (code, out, _) = as_(&lead, &["override", "--end", &oid]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ended freeze override"), "{out}");
    let (code, _, _) = as_(&dev, &["bypass", "--revoke", &id]);
    assert_eq!(code, 0, "the requester may revoke its own bypass");
}

/// Each token has its own rate limit (`api.rate_limit` a second, bursts of
/// twice that): over it, 429 with Retry-After; a refused change is audited.
#[test]
fn a_token_over_its_rate_limit_gets_429() {
    let a = start(
        "api:\n  read_requires_token: true\n  rate_limit: 1\n  tokens:\n    - {name: ci, role: read, token_file: read.token}\n    - {name: ops, role: admin, token_file: admin.token}\n",
    );
    // `start` has used some of the bucket already; drain it.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(a.port, "/api/v1/freeze?service=search", Some(TOKEN)).unwrap().0);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let (status, body) = get(a.port, "/api/v1/freeze?service=search", Some(TOKEN)).unwrap();
    assert_eq!(status, 429);
    assert!(body["error"].as_str().unwrap().contains("over its 1 requests a second"), "{body}");
    // Another token is not held back; after a second the first may go again.
    assert_eq!(
        get(a.port, "/api/v1/freeze?service=search", Some("freeze-test-admin-token-0123456789")).unwrap().0,
        200
    );
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(get(a.port, "/api/v1/freeze?service=search", Some(TOKEN)).unwrap().0, 200);
}

/// The audit log is a hash chain over every change (overrides, bypasses,
/// approvals, spec reloads): the live agent verifies it for admins; a
/// stopped agent's state file verifies with `slo-agent audit verify`, and a
/// copy with one entry changed names that entry.
#[test]
fn the_audit_chain_covers_every_change_and_names_a_tampered_entry() {
    const LEAD: &str = "freeze-test-approver-token-0123456789";
    const DEV: &str = "freeze-test-deployer-token-0123456789";
    const SRE: &str = "freeze-test-admin-token-0123456789";
    let mut a = start(
        "api:\n  tokens:\n    - {name: lead, role: approve, token_file: approver.token}\n    - {name: dev, role: deploy, token_file: deployer.token}\n    - {name: sre, role: admin, token_file: admin.token}\n",
    );
    let made = call(
        a.port,
        "POST",
        "/api/v1/freeze/overrides",
        Some(LEAD),
        r#"{"service":"search","action":"freeze","reason":"migration"}"#,
    );
    assert_eq!(made.0, 201, "{}", made.1);
    let (status, bypass) = call(
        a.port,
        "POST",
        "/api/v1/freeze/bypasses",
        Some(DEV),
        r#"{"service":"checkout","change":"feature","reason":"fix"}"#,
    );
    assert_eq!(status, 201, "{bypass}");
    let id = bypass["id"].as_str().unwrap();
    assert_eq!(call(a.port, "POST", &format!("/api/v1/freeze/bypasses/{id}/approve"), Some(LEAD), "{}").0, 200);
    // A spec reload is audited too.
    let specs = a.dir.path().join("specs/slos.yaml");
    let text = std::fs::read_to_string(&specs).unwrap();
    std::fs::write(&specs, format!("# reviewed\n{text}")).unwrap();
    wait(|| {
        get(a.port, "/api/v1/audit", Some(SRE)).is_some_and(|(_, b)| {
            b["entries"].as_array().is_some_and(|e| e.iter().any(|e| e["action"] == "specs.reload"))
        })
    });

    assert_eq!(get(a.port, "/api/v1/audit/verify", Some(LEAD)).unwrap().0, 403);
    assert_eq!(get(a.port, "/api/v1/audit/verify", None).unwrap().0, 401);
    let (status, v) = get(a.port, "/api/v1/audit/verify", Some(SRE)).unwrap();
    assert_eq!(status, 200);
    assert_eq!(v["intact"], true, "{v}");
    assert_eq!(v["first_broken"], Value::Null);
    let entries = v["entries"].as_u64().unwrap();
    assert!(entries >= 4, "{v}");

    // Stop it cleanly, then check the file and a tampered copy.
    let _ = Command::new("kill").args(["-TERM", &a.child.id().to_string()]).status();
    let _ = a.child.wait();
    let state = a.dir.path().join("state.redb");
    let path = state.to_str().unwrap();
    let (code, out, err) = cli(&["audit", "verify", "--state", path]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with(&format!("intact: {entries} entries")), "{out}");
    let (code, json, _) = cli(&["audit", "verify", "--state", path, "--json"]);
    assert_eq!(code, 0);
    let head = serde_json::from_str::<Value>(&json).unwrap()["head"]["hash"].clone();
    assert_eq!(head, v["head"]["hash"]);

    let copy = a.dir.path().join("copy.redb");
    std::fs::copy(&state, &copy).unwrap();
    let broken: usize;
    {
        let db = redb::Database::open(&copy).unwrap();
        let table: redb::TableDefinition<(i64, u64), &[u8]> = redb::TableDefinition::new("audit_log");
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(table).unwrap();
            // The bypass's entry (an incident a page alert opened may come before it).
            let (index, key, value) = {
                use redb::ReadableTable;
                t.iter()
                    .unwrap()
                    .map(|row| row.unwrap())
                    .map(|row| (row.0.value(), String::from_utf8(row.1.value().to_vec()).unwrap()))
                    .enumerate()
                    .find(|(_, (_, v))| v.contains("\"action\":\"freeze.bypass.create\""))
                    .map(|(i, (k, v))| (i, k, v))
                    .expect("the bypass's audit entry")
            };
            broken = index;
            // Someone makes the bypass look like it was asked for by another.
            let forged = value.replacen("\"actor\":\"dev\"", "\"actor\":\"sre\"", 1);
            assert_ne!(forged, value, "{value}");
            t.insert(key, forged.as_bytes()).unwrap();
        }
        tx.commit().unwrap();
    }
    let copy = copy.to_str().unwrap();
    let (code, out, _) = cli(&["audit", "verify", "--state", copy]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("first broken entry: #{broken} (seq ")), "{out}");
    assert!(out.contains("freeze.bypass.create"), "{out}");
    let (_, json, _) = cli(&["audit", "verify", "--state", copy, "--json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["intact"].as_bool(), v["first_broken"]["index"].as_u64()), (Some(false), Some(broken as u64)));
    // Nothing there: exit 2.
    assert_eq!(cli(&["audit", "verify", "--state", "/nonexistent/state.redb"]).0, 2);
}

/// Deploy events: recorded by the `deploy` role, measured at the next tick
/// (budget spent after versus before), the costly one named among the
/// freeze reasons, listed, shown as Grafana annotations, audited, and kept
/// across a restart.
#[test]
fn deploys_are_measured_named_in_the_freeze_annotated_and_kept() {
    const DEV: &str = "freeze-test-deployer-token-0123456789";
    const SRE: &str = "freeze-test-admin-token-0123456789";
    let mut a = start(
        "api:\n  tokens:\n    - {name: pipeline, role: deploy, token_file: deployer.token}\n    - {name: sre, role: admin, token_file: admin.token}\n    - {name: viewer, role: read, token_file: read.token}\n",
    );
    let at = |ms: i64| slo_agent::timefmt::rfc3339(ms);
    let now = now_ms();
    // The failures of the log are at now-60s: a deploy just before them.
    let costly = format!(
        r#"{{"service":"checkout","version":"1.4.2","commit":"9fceb02","actor":"alice","started_at":"{}","finished_at":"{}","outcome":"success"}}"#,
        at(now - 120_000),
        at(now - 90_000)
    );
    assert_eq!(call(a.port, "POST", "/api/v1/deploys", None, &costly).0, 401);
    assert_eq!(call(a.port, "POST", "/api/v1/deploys", Some(TOKEN), &costly).0, 403);
    let (status, unknown) = call(a.port, "POST", "/api/v1/deploys", Some(DEV), r#"{"service":"cart","version":"1"}"#);
    assert_eq!(status, 404, "{unknown}");
    assert_eq!(unknown["known_services"], serde_json::json!(["checkout", "search"]));
    for bad in [
        r#"{"service":"checkout"}"#,
        r#"{"service":"checkout","version":"1","outcome":"meh"}"#,
        r#"{"service":"checkout","version":"1","started_at":"yesterday"}"#,
        r#"{"service":"checkout","version":"1","started_at":"2999-01-01T00:00:00Z","finished_at":"2999-01-01T00:00:00Z"}"#,
        r#"{"service":"checkout","version":"1","surprise":true}"#,
    ] {
        assert_eq!(call(a.port, "POST", "/api/v1/deploys", Some(DEV), bad).0, 400, "{bad}");
    }
    let (status, made) = call(a.port, "POST", "/api/v1/deploys", Some(DEV), &costly);
    assert_eq!(status, 201, "{made}");
    assert_eq!((made["actor"].as_str(), made["recorded_by"].as_str()), (Some("alice"), Some("pipeline")));
    assert_eq!(made["impact"], Value::Null);
    let id = made["id"].as_str().unwrap().to_string();
    let (status, quiet) =
        call(a.port, "POST", "/api/v1/deploys", Some(DEV), r#"{"service":"search","version":"7.0.0"}"#);
    assert_eq!(status, 201, "{quiet}");
    assert_eq!(quiet["actor"], "pipeline");

    // Measured at the next tick.
    wait(|| get(a.port, &format!("/api/v1/deploys/{id}"), None).is_some_and(|(_, d)| !d["impact"].is_null()));
    let (_, d) = get(a.port, &format!("/api/v1/deploys/{id}"), None).unwrap();
    let impact = &d["impact"];
    assert_eq!(impact["flagged"], true, "{d}");
    assert_eq!(impact["window"], "1h");
    let cost = &impact["slos"][0];
    assert_eq!(cost["slo"], "checkout-availability");
    assert_eq!((cost["after"]["events"].as_u64(), cost["after"]["bad"].as_u64()), (Some(2_000), Some(100)));
    assert_eq!(cost["before"]["events"], 0);
    assert_eq!(cost["before"]["burn_rate"], Value::Null);
    // Every bad event of the window came after it: it spent all of the budget consumed.
    let consumed = cost["budget_consumed"].as_f64().unwrap();
    assert!((consumed - 50.0).abs() < 1e-6, "{cost}");
    assert_eq!(impact["message"], "checkout 1.4.2 consumed 5000 % of the 28d error budget of checkout-availability");

    // The freeze answer names it.
    let (status, c) = get(a.port, "/api/v1/freeze?service=checkout", None).unwrap();
    assert_eq!(status, 423);
    let reason =
        c["reasons"].as_array().unwrap().iter().find(|r| r["kind"] == "deploy").unwrap_or_else(|| panic!("{c}"));
    assert_eq!(reason["slo"], "checkout-availability");
    assert_eq!(reason["threshold"], 0.2);
    assert!(reason["message"].as_str().unwrap().starts_with("checkout 1.4.2 consumed 5000 %"), "{reason}");

    // Listing: newest first, filters.
    let (_, list) = get(a.port, "/api/v1/deploys", None).unwrap();
    assert_eq!(list["deploys"].as_array().unwrap().len(), 2);
    assert_eq!(list["deploys"][0]["service"], "search");
    let (_, flagged) = get(a.port, "/api/v1/deploys?flagged=true", None).unwrap();
    assert_eq!(flagged["deploys"].as_array().unwrap().len(), 1);
    assert_eq!(get(a.port, "/api/v1/deploys?service=search", None).unwrap().1["deploys"][0]["version"], "7.0.0");
    assert_eq!(get(a.port, "/api/v1/deploys?limit=0", None).unwrap().0, 400);
    assert_eq!(get(a.port, "/api/v1/deploys/nope", None).unwrap().0, 404);

    // Grafana annotations: the Infinity data source's columns.
    let (status, notes) = get(
        a.port,
        &format!("/api/v1/annotations?slo=checkout-availability&from={}&to={}", now - 3_600_000, now),
        None,
    )
    .unwrap();
    assert_eq!(status, 200);
    let notes = notes.as_array().unwrap_or_else(|| panic!("{notes}"));
    assert_eq!(notes.len(), 1);
    let n = &notes[0];
    assert_eq!((n["time"].as_i64(), n["timeEnd"].as_i64()), (Some(now - 120_000), Some(now - 90_000)));
    assert_eq!(n["title"], "checkout 1.4.2 deployed (costly)");
    assert_eq!(n["tags"], "deploy,checkout,success,flagged");
    assert!(
        n["text"]
            .as_str()
            .unwrap()
            .starts_with("checkout 1.4.2 by alice (commit 9fceb02), success; checkout-availability: 5000.0 %"),
        "{n}"
    );
    let (_, outside) = get(a.port, &format!("/api/v1/annotations?to={}", now - 3_600_000), None).unwrap();
    assert_eq!(outside, serde_json::json!([]));
    assert_eq!(get(a.port, "/api/v1/annotations?from=soon", None).unwrap().0, 400);
    assert_eq!(get(a.port, "/api/v1/annotations?slo=nope", None).unwrap().0, 404);

    // Audited; kept across a restart.
    let (_, audit) = get(a.port, "/api/v1/audit", Some(SRE)).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["action"] == "deploy.record" && e["outcome"] == "ok: checkout 1.4.2 success"),
        "{audit}"
    );
    assert!(entries.iter().any(|e| e["action"] == "deploy.record" && e["outcome"] == "forbidden"), "{audit}");
    let _ = a.child.kill();
    let _ = a.child.wait();
    a.child = common::start(&a.dir.path().join("agent.yaml"));
    wait(|| get(a.port, &format!("/api/v1/deploys/{id}"), None).is_some_and(|(_, d)| d["impact"]["flagged"] == true));
    assert_eq!(get(a.port, "/api/v1/deploys", None).unwrap().1["deploys"].as_array().unwrap().len(), 2);
}
