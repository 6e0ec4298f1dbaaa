//! A scripted incident, driven in-process on a paused clock: a bad deploy
//! of checkout, the page it sets off, a manual freeze, the rollback, and
//! recovery. The timeline the API answers and the postmortem draft made
//! from it are compared with golden files
//! (`tests/golden/timeline/`, `UPDATE_GOLDEN=1` rewrites them).

mod common;
#[path = "../src/testing/golden.rs"]
mod golden;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::call;
use serde_json::Value;
use slo_agent::clock::ManualClock;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
const MIN: i64 = 60_000;
const CI: &str = "timeline-test-deploy-token-0123456789";
const LEAD: &str = "timeline-test-approve-token-0123456789";
const SRE: &str = "timeline-test-admin-token-0123456789";

/// One checkout request a second over [from, to); every `bad_every`-th fails (0: none).
fn traffic(from: i64, to: i64, bad_every: i64) -> String {
    let mut out = String::new();
    let mut ts = from;
    while ts < to {
        let n = (ts - from) / 1000;
        let status = if bad_every > 0 && n % bad_every == 0 { 503 } else { 200 };
        out.push_str(&format!("{{\"ts\":{ts},\"service\":\"checkout\",\"status\":{status}}}\n"));
        ts += 1000;
    }
    out
}

/// Random ids (deploys, overrides) become `id-1`, `id-2`, … in order of appearance.
fn stable_ids(v: &mut Value, seen: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if matches!(k.as_str(), "id" | "target" | "bypass")
                    && let Value::String(s) = x
                {
                    let n = seen.len() + 1;
                    *s = seen.entry(s.clone()).or_insert_with(|| format!("id-{n}")).clone();
                } else {
                    stable_ids(x, seen);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| stable_ids(x, seen)),
        _ => {}
    }
}

#[test]
fn a_bad_deploy_page_freeze_rollback_and_recovery_make_one_timeline_and_a_postmortem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(
        d.join("slos.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-availability}\nspec:\n  service: checkout\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, filter: {service: checkout}, good: {status: \"< 500\"}}\n",
    )
    .unwrap();
    std::fs::write(d.join("ci.token"), CI).unwrap();
    std::fs::write(d.join("lead.token"), LEAD).unwrap();
    std::fs::write(d.join("sre.token"), SRE).unwrap();
    let log = d.join("logs/app.log");
    // A busy day before (200 requests a minute, 30 to 25 hours ago, all good) gives the
    // 99 % objective a budget of about 640 bad requests; then a quiet hour.
    let mut history = String::new();
    for minute in 0..300 {
        for i in 0..200 {
            let ts = T0 - 30 * 60 * MIN + minute * MIN + i * 250;
            history.push_str(&format!("{{\"ts\":{ts},\"service\":\"checkout\",\"status\":200}}\n"));
        }
    }
    std::fs::write(&log, history + &traffic(T0 - 10 * MIN, T0, 0)).unwrap();
    let yaml = "specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:0\ntick: 1h\npoll_interval: 20ms\napi:\n  tokens:\n    - {name: ci, role: deploy, token_file: ci.token}\n    - {name: lead, role: approve, token_file: lead.token}\n    - {name: sre, role: admin, token_file: sre.token}\nsources:\n  - {name: app, type: file, paths: [\"logs/*.log\"], format: ndjson}\n";
    let config = slo_agent::config::parse("agent.yaml", yaml, d).unwrap_or_else(|e| panic!("{e:?}"));
    let clock = ManualClock::new(T0);
    let served = common::in_process(config, Arc::new(clock.clone()));
    let (agent, port) = (&served.agent, served.port);
    // The tick is an hour: evaluate by hand until `events` are counted.
    let counted = |events: u64| {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let snap = agent.evaluate();
            if snap.reports.first().is_some_and(|r| r.events.total >= events) {
                return snap;
            }
            assert!(Instant::now() < until, "the log was not read");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let append = |text: String| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    counted(60_600);

    // 00:00 checkout 1.4.2 goes out; from then on every fourth request fails.
    let (status, b) = call(
        port,
        "POST",
        "/api/v1/deploys",
        Some(CI),
        r#"{"service":"checkout","version":"1.4.2","actor":"alice","started_at":"2026-11-20T00:00:00Z","finished_at":"2026-11-20T00:01:00Z"}"#,
    );
    assert_eq!(status, 201, "{b}");
    clock.set(T0 + 10 * MIN);
    append(traffic(T0, T0 + 10 * MIN, 4));
    let snap = counted(61_200);
    assert!(snap.alerts.iter().any(|a| a.kind.as_str() == "page" && a.phase.as_str() == "firing"), "{:?}", snap.alerts);

    // 00:12 the lead freezes checkout; 00:15 the on-call rolls back to 1.4.1.
    clock.set(T0 + 12 * MIN);
    let (status, o) = call(
        port,
        "POST",
        "/api/v1/freeze/overrides",
        Some(LEAD),
        r#"{"service":"checkout","action":"freeze","reason":"INC-1: checkout 5xx after 1.4.2","expires_in":"4h"}"#,
    );
    assert_eq!(status, 201, "{o}");
    let override_id = o["id"].as_str().unwrap().to_string();
    clock.set(T0 + 15 * MIN);
    append(traffic(T0 + 10 * MIN, T0 + 15 * MIN, 4));
    counted(61_500);
    let (status, b) = call(
        port,
        "POST",
        "/api/v1/deploys",
        Some(CI),
        r#"{"service":"checkout","version":"1.4.1","actor":"bob","started_at":"2026-11-20T00:15:00Z","finished_at":"2026-11-20T00:16:00Z"}"#,
    );
    assert_eq!(status, 201, "{b}");

    // Healthy again from 00:16. The page clears once its short windows (5m, 30m) hold no
    // failure, and resolves five minutes later.
    clock.set(T0 + 22 * MIN);
    append(traffic(T0 + 15 * MIN, T0 + 16 * MIN, 4) + &traffic(T0 + 16 * MIN, T0 + 22 * MIN, 0));
    counted(61_920);
    clock.set(T0 + 50 * MIN);
    append(traffic(T0 + 22 * MIN, T0 + 50 * MIN, 0));
    counted(63_600);
    clock.set(T0 + 56 * MIN);
    append(traffic(T0 + 50 * MIN, T0 + 56 * MIN, 0));
    let snap = counted(63_960);
    assert!(
        snap.alerts.iter().all(|a| a.kind.as_str() != "page" || a.phase.as_str() == "resolved"),
        "{:?}",
        snap.alerts
    );

    // 00:57 the lead ends the freeze.
    clock.set(T0 + 57 * MIN);
    let (status, e) = call(port, "DELETE", &format!("/api/v1/freeze/overrides/{override_id}"), Some(LEAD), "");
    assert_eq!(status, 200, "{e}");
    clock.set(T0 + 60 * MIN);

    let path = "/api/v1/timeline?service=checkout&from=2026-11-19T23:30:00Z&to=2026-11-20T01:00:00Z";
    // Who did what (the audit log) is for admins only; the rest for every reader.
    let (status, public) = call(port, "GET", path, None, "");
    assert_eq!(status, 200, "{public}");
    assert!(public["entries"].as_array().unwrap().iter().all(|e| e["kind"] != "audit"), "{public}");
    let (status, mut timeline) = call(port, "GET", path, Some(SRE), "");
    assert_eq!(status, 200, "{timeline}");
    let kinds: Vec<&str> = timeline["entries"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["deploy", "alert", "override", "audit", "slo_status"] {
        assert!(kinds.contains(&kind), "no {kind} entry: {kinds:?}");
    }
    let parsed: slo_agent::timeline::Timeline = serde_json::from_value(timeline.clone()).unwrap();
    let md = slo_agent::timeline::postmortem::render(
        &slo_agent::timeline::postmortem::Draft { written_ms: T0 + 60 * MIN, ..Default::default() },
        &parsed,
    );
    let mut seen = BTreeMap::new();
    stable_ids(&mut timeline.clone(), &mut seen);
    // Ids are also named in summaries (the audit entries').
    let mut text = timeline.to_string();
    for (id, name) in &seen {
        text = text.replace(id.as_str(), name);
    }
    timeline = serde_json::from_str(&text).unwrap();
    golden::check_json("tests/golden/timeline/incident-timeline.json", &timeline);
    let mut md_stable = md.clone();
    for (id, name) in &seen {
        md_stable = md_stable.replace(id.as_str(), name);
    }
    golden::check_text("tests/golden/timeline/incident-postmortem.md", &md_stable);

    // The command line says the same: the draft through `slo-agent postmortem` (its date is
    // the real clock's), and the timeline through `slo-agent incident timeline`.
    let url = format!("http://127.0.0.1:{port}");
    let token = d.join("sre.token");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::bin()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let range = ["--service", "checkout", "--from", "2026-11-19T23:30:00Z", "--to", "2026-11-20T01:00:00Z"];
    let mut args = vec!["postmortem"];
    args.extend(range);
    args.extend(["--url", &url, "--token-file", token.to_str().unwrap()]);
    let undated = |text: &str| -> String {
        text.lines()
            .filter(|l| !l.starts_with("| Date |") && !l.starts_with("- Figures computed"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(undated(&run(&args)), undated(&md));
    let mut args = vec!["incident", "timeline", "--output", "json"];
    args.extend(range);
    args.extend(["--url", &url, "--token-file", token.to_str().unwrap()]);
    let shown: slo_agent::timeline::Timeline = serde_json::from_str(&run(&args)).unwrap();
    assert_eq!(shown, parsed);
    args[3] = "text";
    let text = run(&args);
    assert_eq!(text.lines().count(), parsed.entries.len() + 1, "{text}");
    assert!(text.contains("deploy          checkout     alice deployed checkout 1.4.2"), "{text}");

    // An incident of checkout opened at the page and resolved at recovery: its timeline starts
    // an hour before the page (so it shows the deploy) and holds its status updates.
    let updates = [slo_agent::timeline::StatusUpdate {
        at_ms: T0 + 11 * MIN,
        status: "identified".into(),
        message: "5xx since 1.4.2; rolling back".into(),
        by: "oncall".into(),
    }];
    let inc = slo_agent::api::timeline::incident_timeline(
        &agent.api,
        vec!["checkout".into()],
        T0 + 10 * MIN,
        Some(T0 + 56 * MIN),
        &updates,
        false,
    )
    .unwrap();
    assert_eq!((inc.from.as_str(), inc.to.as_str()), ("2026-11-19T23:10:00Z", "2026-11-20T00:56:00Z"));
    let first_deploy = inc.entries.iter().position(|e| e.kind == slo_agent::timeline::Kind::Deploy);
    let update = inc.entries.iter().position(|e| e.kind == slo_agent::timeline::Kind::StatusUpdate);
    assert!(first_deploy.is_some_and(|d| update.is_some_and(|u| d < u)), "{inc:?}");
    assert_eq!(inc.entries[update.unwrap()].summary, "identified (oncall): 5xx since 1.4.2; rolling back");
    assert!(inc.entries.iter().all(|e| e.kind != slo_agent::timeline::Kind::Audit));

    // The page opened an incident of checkout by itself (`incidents.open_on`): its timeline
    // through the API, and its postmortem draft through `slo-agent postmortem --incident`.
    let (status, list) = call(port, "GET", "/api/v1/incidents", Some(SRE), "");
    assert_eq!(status, 200, "{list}");
    let opened: Vec<&Value> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["services"].as_array().unwrap().iter().any(|s| s == "checkout"))
        .collect();
    assert_eq!(opened.len(), 1, "{list}");
    let id = opened[0]["id"].as_str().unwrap().to_string();
    let (status, t) = call(port, "GET", &format!("/api/v1/incidents/{id}/timeline"), Some(SRE), "");
    assert_eq!(status, 200, "{t}");
    let kinds: Vec<&str> = t["entries"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["deploy", "alert", "status_update"] {
        assert!(kinds.contains(&kind), "no {kind} entry in the incident's timeline: {kinds:?}");
    }
    let (status, e) = call(port, "GET", "/api/v1/incidents/inc-19700101-999/timeline", Some(SRE), "");
    assert_eq!(status, 404, "{e}");
    let draft = run(&["postmortem", "--incident", &id, "--url", &url, "--token-file", token.to_str().unwrap()]);
    assert!(draft.contains(opened[0]["title"].as_str().unwrap()), "{draft}");
    assert!(draft.contains("1.4.2"), "the deploy before it is in the evidence: {draft}");

    // Bad requests are refused.
    for bad in [
        "/api/v1/timeline?service=checkout&from=yesterday&to=2026-11-20T00:30:00Z",
        "/api/v1/timeline?service=checkout&from=2026-11-20T00:30:00Z&to=2026-11-20T00:00:00Z",
        "/api/v1/timeline?service=checkout&from=2026-01-01T00:00:00Z&to=2026-11-20T00:00:00Z",
        "/api/v1/timeline?from=2026-11-20T00:00:00Z&to=2026-11-20T00:30:00Z",
        "/api/v1/timeline?service=checkout&from=2026-11-20T00:00:00Z&to=2026-11-20T00:30:00Z&limit=3",
    ] {
        let (status, body) = call(port, "GET", bad, None, "");
        assert_eq!(status, 400, "{bad}: {body}");
    }
    served.agent.stop(Instant::now() + Duration::from_secs(5));
}
