//! PagerDuty Events API v2: one alert event per notification.
//!
//! The group's `group_key` is the event's `dedup_key`, so every trigger of
//! one group episode updates one PagerDuty alert and the resolve closes it.
//! A trigger carries the whole group in `payload.custom_details`, one entry
//! per alert; a resolve carries only what PagerDuty needs to find the alert.

use serde_json::{Map, Value, json};

use super::{AlertNotice, HttpRequest, Notification, Status, post_json, rfc3339, text};
use crate::secret::Secret;

/// PagerDuty's limits (characters).
const MAX_SUMMARY: usize = 1024;
const MAX_DEDUP_KEY: usize = 255;

/// The event for `n`: `trigger` while the group fires, `resolve` when it
/// no longer does.
pub fn request(url: &str, routing_key: &Secret, n: &Notification) -> HttpRequest {
    let dedup_key = text::key_within(&n.group_key, MAX_DEDUP_KEY);
    let body = match n.status {
        Status::Resolved => json!({
            "routing_key": routing_key.expose(),
            "event_action": "resolve",
            "dedup_key": dedup_key,
        }),
        Status::Firing => trigger(routing_key, dedup_key, n),
    };
    post_json(url.to_string(), Vec::new(), &body)
}

fn trigger(routing_key: &Secret, dedup_key: String, n: &Notification) -> Value {
    let first = n.firing().next().or(n.alerts.first());
    let summary = match first {
        Some(a) => format!("{} | {}", n.title(), text::headline(a)),
        None => n.title(),
    };
    let severity = if n.firing().any(|a| a.severity == "page") { "critical" } else { "warning" };

    let mut payload = Map::new();
    payload.insert("summary".into(), text::truncate(&summary, MAX_SUMMARY).into());
    payload.insert("source".into(), "slo-agent".into());
    payload.insert("severity".into(), severity.into());
    payload.insert("timestamp".into(), rfc3339(n.created_ms).into());
    let services = distinct(n.alerts.iter().map(|a| a.service.as_str()));
    if !services.is_empty() {
        payload.insert("component".into(), services.into());
    }
    let group = n.group_labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    if !group.is_empty() {
        payload.insert("group".into(), group.into());
    }
    let kinds = distinct(n.alerts.iter().map(|a| a.kind.as_str()));
    if !kinds.is_empty() {
        payload.insert("class".into(), kinds.into());
    }
    let details: Map<String, Value> =
        n.alerts.iter().map(|a| (format!("{}/{}", a.slo, a.kind.as_str()), details(a))).collect();
    payload.insert("custom_details".into(), details.into());

    json!({
        "routing_key": routing_key.expose(),
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload,
        "links": links(n),
        "client": "slo-agent",
        "client_url": n.external_url,
    })
}

/// `a, b` from the values in first-seen order, without repeats.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(", ")
}

/// One alert's entry in `custom_details`: the shared facts under
/// snake_case names, the raw numbers, the evidence, the links.
fn details(a: &AlertNotice) -> Value {
    let mut d = Map::new();
    d.insert("summary".into(), text::headline(a).into());
    d.insert("status".into(), a.status.as_str().into());
    d.insert("slo".into(), a.slo.clone().into());
    if let Some(name) = &a.display_name {
        d.insert("display_name".into(), name.clone().into());
    }
    d.insert("kind".into(), a.kind.as_str().into());
    d.insert("severity".into(), a.severity.clone().into());
    if let Some(t) = &a.trigger {
        d.insert("windows".into(), t.windows.clone().into());
        for (key, v) in [
            ("long_burn_rate", t.long_burn_rate),
            ("short_burn_rate", t.short_burn_rate),
            ("threshold", t.threshold),
            ("hours_to_exhaustion", t.hours_to_exhaustion),
        ] {
            if let Some(v) = v {
                d.insert(key.into(), round(v));
            }
        }
    }
    d.insert("firing_since".into(), rfc3339(a.firing_since_ms).into());
    if let Some(r) = a.resolved_at_ms {
        d.insert("resolved_at".into(), rfc3339(r).into());
    }
    // `Status` in words is the three fields above.
    let facts = text::facts(a).into_iter().filter(|(name, _)| *name != "Status");
    for (name, value) in facts.chain(text::evidence_facts(&a.evidence)) {
        d.insert(snake(name), value.into());
    }
    if !a.evidence.samples.is_empty() {
        let samples: Vec<Value> = a.evidence.samples.iter().map(|s| text::sample_line(s).into()).collect();
        d.insert("samples".into(), samples.into());
    }
    if let Some(r) = &a.runbook {
        d.insert("runbook".into(), r.clone().into());
    }
    d.insert("api".into(), a.api_url.clone().into());
    d.into()
}

/// `Error budget left` → `error_budget_left`.
fn snake(name: &str) -> String {
    name.to_lowercase().replace(' ', "_")
}

/// Burn rates to 4 decimals: the details show 16.04, not 16.040000000000003.
fn round(v: f64) -> Value {
    let r = (v * 1e4).round() / 1e4;
    serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number)
}

/// The runbooks (each once), then each alert's SLO API page.
fn links(n: &Notification) -> Value {
    let mut links: Vec<Value> = Vec::new();
    let mut runbooks: Vec<&str> = Vec::new();
    for a in &n.alerts {
        if let Some(r) = a.runbook.as_deref().filter(|r| !runbooks.contains(r)) {
            runbooks.push(r);
            links.push(json!({ "href": r, "text": format!("Runbook: {}", a.slo) }));
        }
    }
    for a in &n.alerts {
        links.push(json!({ "href": a.api_url, "text": format!("SLO API: {}", a.slo) }));
    }
    links.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures::{assert_golden, sample_notification};

    fn body(r: &HttpRequest) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn trigger_event() {
        let n = sample_notification(Status::Firing);
        let r = request("https://events.pagerduty.com/v2/enqueue", &Secret::new("R0UT1NG".into()), &n);
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://events.pagerduty.com/v2/enqueue");
        assert_eq!(r.headers, vec![("content-type".to_string(), "application/json".to_string())]);
        assert_golden("pagerduty-trigger", &body(&r));
    }

    #[test]
    fn resolve_event_carries_only_the_key() {
        let n = sample_notification(Status::Resolved);
        let r = request("https://events.pagerduty.com/v2/enqueue", &Secret::new("R0UT1NG".into()), &n);
        assert_eq!(
            body(&r),
            json!({
                "routing_key": "R0UT1NG",
                "event_action": "resolve",
                "dedup_key": "slo-agent/oncall/service=checkout/3",
            })
        );
    }

    #[test]
    fn ticket_only_groups_are_warnings_and_long_text_is_cut() {
        let mut n = sample_notification(Status::Firing);
        n.alerts.remove(0);
        n.alerts[0].slo = "s".repeat(2000);
        n.group_key = "k".repeat(400);
        let v = body(&request("http://127.0.0.1/", &Secret::new("k".into()), &n));
        assert_eq!(v["payload"]["severity"], "warning");
        let summary = v["payload"]["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), MAX_SUMMARY);
        assert!(summary.ends_with('…'));
        assert_eq!(v["dedup_key"].as_str().unwrap().chars().count(), MAX_DEDUP_KEY);
    }
}
