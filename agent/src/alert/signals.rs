//! Alerts on the live signals and the quota forecasts.
//!
//! - `anomaly_page` / `anomaly_ticket`: a `signals.alerts` rule holds — the
//!   named signal of a service (dimension `all`) has an open anomaly whose
//!   peak score reached the rule's `score`, and it has lasted the rule's
//!   `for` (from its first to its latest minute at or above
//!   `signals.threshold`), so a one-minute blip does not page. Subject:
//!   `<service>/<origin>/<signal>`.
//! - `quota_ticket`: a quota is reached within `signals.quotas.alert_within`
//!   at the forecast growth (the point forecast, not the early bound).
//!   Subject: `<kind>/<scope>/<name>`.
//!
//! The lifecycle, episodes, dedup keys, store and outbox are the SLO
//! alerts'. A subject that is no longer watched (its rule removed, its
//! series gone) has its firing alerts resolved.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{AlertKind, AlertRecord, Alerts, Transition, advance, resolve_gone};
use crate::signals::config::{Severity, SignalsConfig};
use crate::signals::forecasts::QuotaEntry;
use crate::signals::{Dim, SignalsView};
use crate::timefmt::rfc3339;

/// What made a signal or quota alert active: on the record, in the API and
/// in its notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalTrigger {
    /// The alert's subject (also in the record's `slo` field).
    pub subject: String,
    /// One line for people.
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach_at_ms: Option<i64>,
    /// Where the evidence is: `/api/v1/anomalies?…` or `/api/v1/forecasts`.
    pub api_path: String,
}

/// One active signal or quota condition.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalCondition {
    pub subject: String,
    pub service: String,
    pub kind: AlertKind,
    pub trigger: SignalTrigger,
}

/// The active conditions at `at_ms`, and every subject still watched.
pub fn conditions(
    view: &SignalsView,
    cfg: &SignalsConfig,
    quotas: &[QuotaEntry],
    at_ms: i64,
) -> (Vec<SignalCondition>, BTreeSet<String>) {
    let mut active = Vec::new();
    let mut watched = BTreeSet::new();
    for rule in &cfg.alerts {
        let kind = match rule.severity {
            Severity::Page => AlertKind::AnomalyPage,
            Severity::Ticket => AlertKind::AnomalyTicket,
        };
        for s in view.series.iter().filter(|s| s.key.dim == Dim::All && s.signal == rule.signal) {
            if rule.service.as_deref().is_some_and(|x| x != &*s.key.service) || s.key.service.starts_with("account/") {
                continue;
            }
            let subject = format!("{}/{}/{}", s.key.service, s.key.origin, s.signal);
            watched.insert(subject.clone());
            let Some(e) = s.episode else { continue };
            if e.peak_score < rule.score || e.last_ms - e.start_ms < rule.for_ms {
                continue;
            }
            let last = s.last();
            let value = last.map(|m| f64::from(m.value));
            let expected = last.map(|m| f64::from(m.expected)).filter(|x| x.is_finite());
            let direction = if e.direction >= 0 { "above" } else { "below" };
            let description = format!(
                "{} of {} ({}) {direction} its forecast since {} (peak score {:.2}; now {} against {} expected)",
                s.signal,
                s.key.service,
                s.key.origin,
                rfc3339(e.start_ms),
                e.peak_score,
                value.map_or("-".into(), |v| format!("{v:.4}")),
                expected.map_or("-".into(), |v| format!("{v:.4}")),
            );
            active.push(SignalCondition {
                subject: subject.clone(),
                service: s.key.service.to_string(),
                kind,
                trigger: SignalTrigger {
                    subject,
                    description,
                    score: Some(e.peak_score),
                    value,
                    expected,
                    started_ms: Some(e.start_ms),
                    limit: None,
                    reach_at_ms: None,
                    api_path: format!("/api/v1/anomalies?service={}&signal={}", s.key.service, s.signal),
                },
            });
        }
    }
    for q in quotas {
        let subject = q.key();
        watched.insert(subject.clone());
        let Some(reach) = q.outlook.reach_at_ms else { continue };
        if reach - at_ms > cfg.quotas.alert_within_ms {
            continue;
        }
        let description = format!(
            "{} of {} {} reaches its quota of {} {} at {} at the forecast growth (now {:.1}, {:.0} % of it; {:+.2} a day)",
            q.kind,
            q.scope,
            q.name,
            q.outlook.limit,
            q.unit,
            rfc3339(reach),
            q.outlook.current,
            q.outlook.utilisation * 100.0,
            q.outlook.growth_per_day
        );
        active.push(SignalCondition {
            subject: subject.clone(),
            service: q.service.clone(),
            kind: AlertKind::QuotaTicket,
            trigger: SignalTrigger {
                subject,
                description,
                score: None,
                value: Some(q.outlook.current),
                expected: Some(q.outlook.peak),
                started_ms: None,
                limit: Some(q.outlook.limit),
                reach_at_ms: Some(reach),
                api_path: "/api/v1/forecasts".into(),
            },
        });
    }
    (active, watched)
}

impl Alerts {
    /// Advance the signal and quota alerts with one evaluation: `active`
    /// conditions hold, `watched` are the subjects still looked at.
    pub fn observe_signals(
        &mut self,
        active: &[SignalCondition],
        watched: &BTreeSet<String>,
        at_ms: i64,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let policy = self.policy;
        let mut subjects: BTreeSet<&str> = active.iter().map(|c| c.subject.as_str()).collect();
        subjects.extend(self.signals.keys().map(String::as_str));
        let subjects: Vec<String> = subjects.into_iter().map(str::to_string).collect();
        for subject in subjects {
            if !watched.contains(&subject) {
                continue;
            }
            let service = active
                .iter()
                .find(|c| c.subject == subject)
                .map(|c| c.service.clone())
                .or_else(|| {
                    self.signals.get(&subject).and_then(|s| s.iter().flatten().next()).map(|r| r.service.clone())
                })
                .unwrap_or_default();
            let slots = self.signals.entry(subject.clone()).or_default();
            for kind in AlertKind::SIGNAL {
                let cond = active.iter().find(|c| c.subject == subject && c.kind == kind);
                let fresh = || AlertRecord::pending(&subject, &service, kind, at_ms);
                let refresh = |r: &mut AlertRecord| {
                    if let Some(c) = cond {
                        r.signal = Some(c.trigger.clone());
                    }
                };
                advance(policy, &mut slots[kind.index()], cond.is_some(), fresh, refresh, at_ms, &mut out);
            }
        }
        let gone: Vec<String> = self.signals.keys().filter(|k| !watched.contains(*k)).cloned().collect();
        for key in gone {
            for r in self.signals.remove(&key).into_iter().flatten().flatten() {
                resolve_gone(r, at_ms, &mut out);
            }
        }
        self.signals.retain(|_, slots| slots.iter().any(Option::is_some));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertPolicy, Phase};

    fn cond(subject: &str, kind: AlertKind) -> SignalCondition {
        SignalCondition {
            subject: subject.into(),
            service: "shop".into(),
            kind,
            trigger: SignalTrigger {
                subject: subject.into(),
                description: "x".into(),
                score: Some(0.9),
                value: None,
                expected: None,
                started_ms: Some(0),
                limit: None,
                reach_at_ms: None,
                api_path: "/api/v1/anomalies".into(),
            },
        }
    }

    #[test]
    fn a_signal_alert_fires_resolves_and_goes_with_its_subject() {
        let mut a = Alerts::new(AlertPolicy::default());
        let subject = "shop/cloudfront/forbidden_share";
        let watched: BTreeSet<String> = [subject.to_string()].into();
        let t = a.observe_signals(&[cond(subject, AlertKind::AnomalyTicket)], &watched, 1_000);
        assert!(t.iter().any(|t| t.to == Some(Phase::Firing) && t.kind == AlertKind::AnomalyTicket));
        let r = a.records().find(|r| r.kind == AlertKind::AnomalyTicket).unwrap();
        assert_eq!(r.signal.as_ref().unwrap().subject, subject);
        assert_eq!(r.service, "shop");
        // Clear for resolve_after (5 min): resolved.
        assert!(a.observe_signals(&[], &watched, 2_000).is_empty());
        let t = a.observe_signals(&[], &watched, 2_000 + 300_000);
        assert!(t.iter().any(|t| t.to == Some(Phase::Resolved)), "{t:?}");
        // Fires again, then its rule goes: resolved at once.
        a.observe_signals(&[cond(subject, AlertKind::AnomalyTicket)], &watched, 400_000);
        let t = a.observe_signals(&[], &BTreeSet::new(), 401_000);
        assert!(t.iter().any(|t| t.to == Some(Phase::Resolved)));
        assert_eq!(a.records().count(), 0);
        // Records come back from the store into the signal slots.
        let mut b = Alerts::new(AlertPolicy::default());
        let mut r = cond(subject, AlertKind::QuotaTicket);
        r.subject = "lambda_concurrency/account/default".into();
        let watched: BTreeSet<String> = [r.subject.clone()].into();
        a.observe_signals(std::slice::from_ref(&r), &watched, 500_000);
        b.restore(a.records().cloned());
        assert_eq!(b.records().count(), 1);
        assert!(b.observe_signals(std::slice::from_ref(&r), &watched, 501_000).is_empty());
    }
}
