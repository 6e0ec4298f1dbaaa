use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::incident::Update;

fn statuspage() -> PushTarget {
    PushTarget::Statuspage {
        url: "https://api.statuspage.io".into(),
        page_id: "kctbh9vrtdwd".into(),
        api_key: Secret::new("sp-key-1".into()),
        components: BTreeMap::from([("Checkout".into(), "8kbf7d35c070".into())]),
    }
}

fn components() -> Vec<ComponentConfig> {
    vec![
        ComponentConfig { name: "Checkout".into(), service: "checkout".into(), slos: vec![], journey: None },
        ComponentConfig { name: "Search".into(), service: "search".into(), slos: vec![], journey: None },
    ]
}

fn incident(updates: &[(Status, &str)]) -> Incident {
    Incident {
        id: "inc-20240501-001".into(),
        title: "Checkout errors".into(),
        services: vec!["checkout".into(), "search".into()],
        status: updates.last().unwrap().0,
        impact: Impact::Major,
        started_at_ms: 1_714_564_800_000,
        resolved_at_ms: None,
        opened_by: "user:oncall".into(),
        updates: updates
            .iter()
            .enumerate()
            .map(|(n, (s, m))| Update {
                at_ms: 1_714_564_800_000 + n as i64 * 60_000,
                status: *s,
                message: m.to_string(),
                by: "user:oncall".into(),
            })
            .collect(),
    }
}

fn body(r: &HttpRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn header<'a>(r: &'a HttpRequest, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn a_component_state_patches_its_statuspage_component() {
    let e = PushEntry::component("Checkout", ComponentState::PartialOutage, 1_714_564_860_000);
    let r = request(&statuspage(), 7, &e, None).unwrap();
    assert_eq!(
        (r.method, r.url.as_str()),
        ("PATCH", "https://api.statuspage.io/v1/pages/kctbh9vrtdwd/components/8kbf7d35c070")
    );
    assert_eq!(header(&r, "authorization"), Some("OAuth sp-key-1"));
    assert_eq!(body(&r), json!({"component": {"status": "partial_outage"}}));
    // The key never shows in the request's Debug (logs).
    assert!(!format!("{r:?}").contains("sp-key-1"));
    // A component Statuspage has no id for is not pushed.
    let other = PushEntry::component("Search", ComponentState::MajorOutage, 0);
    assert!(request(&statuspage(), 8, &other, None).is_none());
    assert_eq!(e.coalescing_key().as_deref(), Some("component/Checkout"));
}

#[test]
fn an_incident_is_created_then_patched() {
    let opened = PushEntry::incident(&incident(&[(Status::Investigating, "Looking.")]), &components());
    assert_eq!(opened.coalescing_key(), None, "incident changes are never superseded");
    let r = request(&statuspage(), 1, &opened, None).unwrap();
    assert_eq!((r.method, r.url.as_str()), ("POST", "https://api.statuspage.io/v1/pages/kctbh9vrtdwd/incidents"));
    assert_eq!(
        body(&r),
        json!({"incident": {
            "name": "Checkout errors", "status": "investigating", "body": "Looking.",
            "impact_override": "major", "component_ids": ["8kbf7d35c070"],
        }})
    );
    let updated = PushEntry::incident(
        &incident(&[(Status::Investigating, "Looking."), (Status::Identified, "A bad deploy.")]),
        &components(),
    );
    let r = request(&statuspage(), 2, &updated, Some("p31zjtct2jer")).unwrap();
    assert_eq!(
        (r.method, r.url.as_str()),
        ("PATCH", "https://api.statuspage.io/v1/pages/kctbh9vrtdwd/incidents/p31zjtct2jer")
    );
    assert_eq!(body(&r)["incident"]["status"], "identified");
    assert_eq!(body(&r)["incident"]["body"], "A bad deploy.");
    assert_eq!(header(&r, "authorization"), Some("OAuth sp-key-1"));
    // Statuspage's answer names the incident it created.
    assert_eq!(created_incident_id(br#"{"id": "p31zjtct2jer", "name": "x"}"#).as_deref(), Some("p31zjtct2jer"));
    assert_eq!(created_incident_id(br#"{"id": "../admin"}"#), None);
    assert_eq!(created_incident_id(b"<html>"), None);
}

#[test]
fn the_webhook_gets_json_with_an_id_stable_across_retries() {
    let secret = Secret::new("s3cret".into());
    let hook = PushTarget::Webhook { url: "https://hooks.example/status".into(), secret: Some(secret.clone()) };
    let e = PushEntry::component("Checkout", ComponentState::MajorOutage, 1_714_564_860_000);
    let r = request(&hook, 42, &e, None).unwrap();
    assert_eq!((r.method, r.url.as_str()), ("POST", "https://hooks.example/status"));
    assert_eq!(
        body(&r),
        json!({"version": "1", "id": "status-push/42", "type": "component", "component": "Checkout",
               "status": "major_outage", "at": "2024-05-01T12:01:00Z"})
    );
    assert_eq!(header(&r, "x-slo-agent-push-id"), Some("status-push/42"));
    assert_eq!(header(&r, "x-slo-agent-timestamp"), Some("1714564860"));
    let sig = crate::notify::webhook::signature(&secret, "1714564860", &r.body);
    assert_eq!(header(&r, "x-slo-agent-signature"), Some(sig.as_str()));
    assert_eq!(request(&hook, 42, &e, None), Some(r), "a retry sends the same bytes");

    let i = PushEntry::incident(&incident(&[(Status::Investigating, "Looking.")]), &components());
    let b = body(&request(&hook, 43, &i, None).unwrap());
    assert_eq!((b["type"].as_str(), b["id"].as_str()), (Some("incident"), Some("status-push/43")));
    assert_eq!(b["incident"]["id"], "inc-20240501-001");
    assert_eq!(b["incident"]["components"], json!(["Checkout", "Search"]));
    assert_eq!(b["incident"]["updates"], 1);
    let unsigned = PushTarget::Webhook { url: "http://127.0.0.1:9/".into(), secret: None };
    assert_eq!(header(&request(&unsigned, 1, &i, None).unwrap(), "x-slo-agent-signature"), None);
}

#[test]
fn entries_survive_the_outbox_as_json() {
    for e in [
        PushEntry::component("Checkout", ComponentState::UnderMaintenance, 5),
        PushEntry::incident(&incident(&[(Status::Resolved, "Fixed.")]), &components()),
    ] {
        assert_eq!(serde_json::from_slice::<PushEntry>(&e.to_json()).unwrap(), e);
    }
}

#[test]
fn ids_are_escaped_in_paths() {
    assert_eq!(path_segment("ab-1_C"), "ab-1_C");
    assert_eq!(path_segment("a/../b?c"), "a%2F%2E%2E%2Fb%3Fc");
}
