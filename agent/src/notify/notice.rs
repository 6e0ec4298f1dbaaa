//! From alert transitions to outbox entries: what each receiver is told.

use std::collections::BTreeMap;

use super::outbox::OutboxEntry;
use super::routing::NotifyConfig;
use super::{AlertNotice, Evidence, Status};
use crate::alert::{AlertKind, Phase, Transition};
use crate::sli::SloStatus;

/// Values per dimension and sample requests a notification carries.
pub const EVIDENCE_TOP: usize = 5;

/// The outbox entries a batch of transitions causes: one per notifying
/// transition (firing, resolved) and route that takes it. `evidence(slo,
/// at_ms, minutes)` reads the engine's failure breakdown.
pub fn outbox_entries(
    config: &NotifyConfig,
    transitions: &[Transition],
    statuses: &[SloStatus],
    evidence: &mut dyn FnMut(&str, i64, i64) -> Evidence,
) -> Vec<OutboxEntry> {
    if config.routes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for t in transitions.iter().filter(|t| t.notifies()) {
        let status = statuses.iter().find(|s| s.slo.name == t.slo);
        let notice = notice(t, status, &config.external_url, evidence);
        for (route_index, route) in config.routes_for(&notice.labels) {
            out.push(OutboxEntry {
                seq: 0,
                receiver: route.receiver.clone(),
                route: route_index,
                group_labels: route.group_labels(&notice.labels),
                notice: notice.clone(),
            });
        }
    }
    out
}

/// The labels an alert carries: the SLO's own, then `slo`, `service`,
/// `severity` and `kind` (which win over SLO labels of the same names).
pub fn alert_labels(
    slo_labels: &BTreeMap<String, String>,
    slo: &str,
    service: &str,
    kind: AlertKind,
) -> BTreeMap<String, String> {
    let mut l = slo_labels.clone();
    l.insert("slo".into(), slo.to_string());
    l.insert("service".into(), service.to_string());
    l.insert("severity".into(), kind.severity().as_str().to_string());
    l.insert("kind".into(), kind.as_str().to_string());
    l
}

fn notice(
    t: &Transition,
    status: Option<&SloStatus>,
    external_url: &str,
    evidence: &mut dyn FnMut(&str, i64, i64) -> Evidence,
) -> AlertNotice {
    let r = &t.record;
    if let Some(c) = &r.certificate {
        return certificate_notice(t, c, external_url);
    }
    if let Some(g) = &r.signal {
        return signal_notice(t, g, external_url);
    }
    let slo = status.map(|s| s.slo.as_ref());
    let empty = BTreeMap::new();
    let labels = alert_labels(slo.map_or(&empty, |s| &s.labels), &r.slo, &r.service, r.kind);
    let runbook = slo.and_then(|s| match r.kind.severity() {
        crate::spec::model::Severity::Page => s.alerting.page.as_ref(),
        crate::spec::model::Severity::Ticket => s.alerting.ticket.as_ref(),
    });
    let runbook = runbook.and_then(|t| t.runbook.clone());
    let minutes = r.trigger.as_ref().map_or(60, |t| long_window_minutes(&t.windows));
    AlertNotice {
        slo: r.slo.clone(),
        display_name: slo.and_then(|s| s.display_name.clone()),
        service: r.service.clone(),
        severity: r.kind.severity().as_str().to_string(),
        kind: r.kind,
        status: if t.to == Some(Phase::Resolved) { Status::Resolved } else { Status::Firing },
        episode: r.episode,
        dedup_key: r.dedup_key(),
        labels,
        objective: slo.map_or(0.0, |s| s.objective),
        trigger: r.trigger.clone(),
        budget_remaining: r.budget_remaining,
        firing_since_ms: r.firing_since_ms.unwrap_or(t.at_ms),
        resolved_at_ms: r.resolved_at_ms,
        runbook,
        api_url: format!("{}/api/v1/slos/{}", external_url.trim_end_matches('/'), r.slo),
        evidence: evidence(&r.slo, t.at_ms, minutes),
        certificate: None,
        signal: None,
    }
}

/// The notice of a certificate alert: labelled with the endpoint (`probe`,
/// `hop`, `region`) besides `slo` (`<probe>/<hop>`), `service`, `severity`
/// and `kind`; its evidence is the certificate's, not the engine's.
fn certificate_notice(t: &Transition, c: &crate::alert::certs::CertificateTrigger, external_url: &str) -> AlertNotice {
    let mut labels = alert_labels(&BTreeMap::new(), &t.record.slo, &t.record.service, t.record.kind);
    labels.insert("probe".into(), c.probe.clone());
    labels.insert("hop".into(), c.hop.clone());
    labels.insert("region".into(), c.region.clone());
    let api_url = format!("{}/api/v1/alerts", external_url.trim_end_matches('/'));
    AlertNotice { certificate: Some(c.clone()), ..subject_notice(t, labels, c.runbook.clone(), api_url) }
}

/// The notice of a signal or quota alert: labelled with its subject
/// (`slo`), `service`, `severity` and `kind`; its evidence is in the API.
fn signal_notice(t: &Transition, g: &crate::alert::signals::SignalTrigger, external_url: &str) -> AlertNotice {
    let labels = alert_labels(&BTreeMap::new(), &t.record.slo, &t.record.service, t.record.kind);
    let api_url = format!("{}{}", external_url.trim_end_matches('/'), g.api_path);
    AlertNotice { signal: Some(g.clone()), ..subject_notice(t, labels, None, api_url) }
}

/// The notice of an alert that is not an SLO's: no objective, trigger or
/// engine evidence.
fn subject_notice(
    t: &Transition,
    labels: BTreeMap<String, String>,
    runbook: Option<String>,
    api_url: String,
) -> AlertNotice {
    let r = &t.record;
    AlertNotice {
        slo: r.slo.clone(),
        display_name: None,
        service: r.service.clone(),
        severity: r.kind.severity().as_str().to_string(),
        kind: r.kind,
        status: if t.to == Some(Phase::Resolved) { Status::Resolved } else { Status::Firing },
        episode: r.episode,
        dedup_key: r.dedup_key(),
        labels,
        objective: 0.0,
        trigger: None,
        budget_remaining: r.budget_remaining,
        firing_since_ms: r.firing_since_ms.unwrap_or(t.at_ms),
        resolved_at_ms: r.resolved_at_ms,
        runbook,
        api_url,
        evidence: Evidence::default(),
        certificate: None,
        signal: None,
    }
}

/// The long window of `1h/5m` (or `6h`) in minutes; an hour when unknown.
fn long_window_minutes(windows: &str) -> i64 {
    let long = windows.split('/').next().unwrap_or("");
    crate::spec::grammar::duration(long).map_or(60, |m| i64::from(m.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_windows_read_as_minutes() {
        assert_eq!(long_window_minutes("1h/5m"), 60);
        assert_eq!(long_window_minutes("3d/6h"), 4320);
        assert_eq!(long_window_minutes("30m/2m"), 30);
        assert_eq!(long_window_minutes("window"), 60);
    }

    #[test]
    fn alert_labels_name_the_alert_over_spec_labels() {
        let spec = BTreeMap::from([("team".to_string(), "payments".to_string()), ("slo".to_string(), "x".to_string())]);
        let l = alert_labels(&spec, "checkout-availability", "checkout", AlertKind::BudgetExhausted);
        assert_eq!(l["slo"], "checkout-availability");
        assert_eq!(l["team"], "payments");
        assert_eq!(l["severity"], "ticket");
        assert_eq!(l["kind"], "budget_exhausted");
    }
}
