//! Opsgenie Alert API: create an alert while the group fires, close it
//! when the group resolves.
//!
//! The group's `group_key` is the alert's `alias`: Opsgenie keeps one open
//! alert per alias, so re-sending a firing group adds to that alert's count
//! instead of opening another, and the close finds it by alias.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{HttpRequest, Notification, Status, post_json, text};
use crate::secret::Secret;

/// Opsgenie's limits (characters, or items).
const MAX_MESSAGE: usize = 130;
const MAX_ALIAS: usize = 512;
const MAX_DESCRIPTION: usize = 15_000;
const MAX_NOTE: usize = 25_000;
const MAX_ENTITY: usize = 512;
const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 50;
/// The details map, keys and values together.
const MAX_DETAILS: usize = 8_000;

/// Create (firing) or close (resolved) the group's alert.
pub fn request(url: &str, api_key: &Secret, n: &Notification) -> HttpRequest {
    let base = url.trim_end_matches('/');
    let alias = text::key_within(&n.group_key, MAX_ALIAS);
    let auth = vec![("authorization".to_string(), format!("GenieKey {}", api_key.expose()))];
    match n.status {
        Status::Firing => post_json(format!("{base}/v2/alerts"), auth, &create(alias, n)),
        Status::Resolved => {
            let note = std::iter::once(n.title()).chain(n.alerts.iter().map(|a| a.summary())).collect::<Vec<_>>();
            let body = json!({
                "source": "slo-agent",
                "note": text::truncate(&note.join("\n"), MAX_NOTE),
            });
            post_json(format!("{base}/v2/alerts/{}/close?identifierType=alias", encode_segment(&alias)), auth, &body)
        }
    }
}

fn create(alias: String, n: &Notification) -> Value {
    let description = n.alerts.iter().map(text::describe).collect::<Vec<_>>().join("\n\n");
    let priority = if n.firing().any(|a| a.severity == "page") { "P1" } else { "P3" };
    let mut services: Vec<&str> = Vec::new();
    for a in &n.alerts {
        if !services.contains(&a.service.as_str()) {
            services.push(&a.service);
        }
    }
    json!({
        "message": text::truncate(&n.title(), MAX_MESSAGE),
        "alias": alias,
        "description": text::truncate(&description, MAX_DESCRIPTION),
        "tags": tags(n),
        "details": details(n),
        "entity": text::truncate(&services.join(", "), MAX_ENTITY),
        "source": "slo-agent",
        "priority": priority,
    })
}

/// `slo-agent`, the group labels as `name:value`, then each alert's SLO,
/// kind and severity; each once, at most 20 of 50 characters.
fn tags(n: &Notification) -> Vec<String> {
    let mut tags = vec!["slo-agent".to_string()];
    let group = n.group_labels.iter().map(|(k, v)| format!("{k}:{v}"));
    let alerts = n.alerts.iter().flat_map(|a| {
        [format!("slo:{}", a.slo), format!("kind:{}", a.kind.as_str()), format!("severity:{}", a.severity)]
    });
    for tag in group.chain(alerts).map(|t| text::truncate(&t, MAX_TAG)) {
        if tags.len() == MAX_TAGS {
            break;
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

/// The group labels, the notification id, then one line per alert, while
/// they fit in Opsgenie's size for details.
fn details(n: &Notification) -> BTreeMap<String, String> {
    let mut entries: Vec<(String, String)> = n.group_labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    entries.push(("notification_id".into(), n.id.clone()));
    entries.push(("slo_agent".into(), n.external_url.clone()));
    for a in &n.alerts {
        entries.push((format!("{}/{}", a.slo, a.kind.as_str()), text::headline(a)));
    }
    let mut out = BTreeMap::new();
    let mut size = 0;
    for (k, v) in entries {
        let len = k.chars().count() + v.chars().count();
        if size + len > MAX_DETAILS {
            continue;
        }
        size += len;
        out.insert(k, v);
    }
    out
}

/// Percent-encode everything but RFC 3986's unreserved characters, for one
/// path segment (`/` in an alias must not split the path).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures::{assert_golden, sample_notification};

    fn body(r: &HttpRequest) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    fn headers() -> Vec<(String, String)> {
        vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("authorization".to_string(), "GenieKey k3y".to_string()),
        ]
    }

    #[test]
    fn firing_creates_an_alert() {
        let n = sample_notification(Status::Firing);
        let r = request("https://api.opsgenie.com/", &Secret::new("k3y".into()), &n);
        assert_eq!((r.method, r.url.as_str()), ("POST", "https://api.opsgenie.com/v2/alerts"));
        assert_eq!(r.headers, headers());
        assert_golden("opsgenie-create", &body(&r));
    }

    #[test]
    fn resolved_closes_it_by_alias() {
        let n = sample_notification(Status::Resolved);
        let r = request("https://api.eu.opsgenie.com", &Secret::new("k3y".into()), &n);
        assert_eq!(
            (r.method, r.url.as_str()),
            (
                "POST",
                "https://api.eu.opsgenie.com/v2/alerts/slo-agent%2Foncall%2Fservice%3Dcheckout%2F3/close?identifierType=alias"
            )
        );
        assert_eq!(r.headers, headers());
        assert_golden("opsgenie-close", &body(&r));
    }

    #[test]
    fn limits_hold() {
        let mut n = sample_notification(Status::Firing);
        let long = "x".repeat(20_000);
        n.alerts[1].slo = long.clone();
        n.group_labels.insert("team".into(), long.clone());
        for i in 0..30 {
            let mut a = n.alerts[0].clone();
            a.slo = format!("slo-{i}");
            n.alerts.push(a);
        }
        let v = body(&request("http://127.0.0.1", &Secret::new("k".into()), &n));
        assert_eq!(v["message"].as_str().unwrap().chars().count(), MAX_MESSAGE);
        assert_eq!(v["description"].as_str().unwrap().chars().count(), MAX_DESCRIPTION);
        let tags = v["tags"].as_array().unwrap();
        assert_eq!(tags.len(), MAX_TAGS);
        assert!(tags.iter().all(|t| t.as_str().unwrap().chars().count() <= MAX_TAG));
        let size: usize =
            v["details"].as_object().unwrap().iter().map(|(k, v)| k.chars().count() + v.as_str().unwrap().len()).sum();
        assert!(size <= MAX_DETAILS, "{size}");
        assert_eq!(v["details"]["service"], "checkout");
    }
}
