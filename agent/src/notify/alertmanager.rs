//! Alertmanager's v2 API: every alert of the notification, as Prometheus
//! would post it, so Alertmanager's own routing, grouping, silences and
//! inhibitions apply.
//!
//! An alert is identified by its labels, so the labels are the same for
//! the whole episode (the SLO's labels plus `slo`, `service`, `severity`,
//! `kind` and `alertname`); the status is in `endsAt`. A firing alert has
//! none: Alertmanager then resolves it by itself after its
//! `resolve_timeout` unless it is posted again, so firing alerts must be
//! re-posted while they fire (the dispatcher does, every minute). A
//! resolved alert ends when it resolved.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{AlertNotice, HttpRequest, Notification, Status, post_json, rfc3339, text};
use crate::alert::AlertKind;
use crate::secret::Secret;

/// `POST <url>/api/v2/alerts` with one entry per alert.
pub fn request(url: &str, bearer: Option<&Secret>, n: &Notification) -> HttpRequest {
    let alerts: Vec<Value> = n.alerts.iter().map(|a| alert(a, n.created_ms)).collect();
    let auth = bearer.map(|b| ("authorization".to_string(), format!("Bearer {}", b.expose())));
    post_json(format!("{}/api/v2/alerts", url.trim_end_matches('/')), auth.into_iter().collect(), &Value::from(alerts))
}

/// The `alertname` of each kind.
pub fn alertname(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Page | AlertKind::Ticket => "SLOBurnRate",
        AlertKind::BudgetExhausted => "SLOBudgetExhausted",
        AlertKind::TimeToExhaustion => "SLOTimeToExhaustion",
        AlertKind::CertificateTicket | AlertKind::CertificatePage => "TLSCertificate",
        AlertKind::AnomalyPage | AlertKind::AnomalyTicket => "SignalAnomaly",
        AlertKind::QuotaTicket => "QuotaForecast",
    }
}

fn alert(a: &AlertNotice, created_ms: i64) -> Value {
    let mut labels = BTreeMap::new();
    for (k, v) in &a.labels {
        // Alertmanager refuses the whole post for one bad label name, and
        // an empty value means no label.
        if let Some(k) = label_name(k).filter(|_| !v.is_empty()) {
            labels.entry(k).or_insert_with(|| v.clone());
        }
    }
    labels.insert("alertname".to_string(), alertname(a.kind).to_string());

    let mut annotations = BTreeMap::new();
    annotations.insert("summary", text::headline(a));
    annotations.insert("description", text::describe(a));
    if let Some(r) = &a.runbook {
        annotations.insert("runbook_url", r.clone());
    }
    annotations.insert("slo_api", a.api_url.clone());

    let mut v = json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(a.firing_since_ms),
        "generatorURL": a.api_url,
    });
    if a.status == Status::Resolved {
        v["endsAt"] = rfc3339(a.resolved_at_ms.unwrap_or(created_ms)).into();
    }
    v
}

/// A Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`): other characters
/// become `_`, a leading digit gets a `_` before it; `None` when empty.
fn label_name(k: &str) -> Option<String> {
    if k.is_empty() {
        return None;
    }
    let mut out: String = k.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures::{assert_golden, sample_notification};

    fn body(r: &HttpRequest) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn firing_alerts_have_no_end() {
        let n = sample_notification(Status::Firing);
        let r = request("http://127.0.0.1:9093/", None, &n);
        assert_eq!((r.method, r.url.as_str()), ("POST", "http://127.0.0.1:9093/api/v2/alerts"));
        assert_eq!(r.headers, vec![("content-type".to_string(), "application/json".to_string())]);
        assert_golden("alertmanager-firing", &body(&r));
    }

    #[test]
    fn resolved_alerts_end_when_they_resolved() {
        let n = sample_notification(Status::Resolved);
        let r = request("http://am:9093/prefix", Some(&Secret::new("t0k".into())), &n);
        assert_eq!(r.url, "http://am:9093/prefix/api/v2/alerts");
        assert_eq!(
            r.headers,
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("authorization".to_string(), "Bearer t0k".to_string()),
            ]
        );
        assert_golden("alertmanager-resolved", &body(&r));
    }

    #[test]
    fn a_group_with_one_alert_resolved_ends_only_that_one() {
        let mut n = sample_notification(Status::Firing);
        n.alerts[1].status = Status::Resolved;
        n.alerts[1].resolved_at_ms = None;
        let v = body(&request("http://am", None, &n));
        assert_eq!(v[0].get("endsAt"), None);
        assert_eq!(v[1]["endsAt"], "2024-05-01T12:01:00Z");
    }

    #[test]
    fn names_and_labels() {
        assert_eq!(alertname(AlertKind::Page), "SLOBurnRate");
        assert_eq!(alertname(AlertKind::Ticket), "SLOBurnRate");
        assert_eq!(alertname(AlertKind::BudgetExhausted), "SLOBudgetExhausted");
        assert_eq!(alertname(AlertKind::TimeToExhaustion), "SLOTimeToExhaustion");
        assert_eq!(label_name("team.name").as_deref(), Some("team_name"));
        assert_eq!(label_name("9lives").as_deref(), Some("_9lives"));
        assert_eq!(label_name(""), None);

        let mut n = sample_notification(Status::Firing);
        n.alerts[0].labels.insert("cost-center".into(), "42".into());
        n.alerts[0].labels.insert("empty".into(), String::new());
        n.alerts[0].labels.insert("alertname".into(), "Mine".into());
        let v = body(&request("http://am", None, &n));
        assert_eq!(v[0]["labels"]["cost_center"], "42");
        assert_eq!(v[0]["labels"].get("empty"), None);
        assert_eq!(v[0]["labels"]["alertname"], "SLOBurnRate");
    }
}
