//! Certificate alerts: per probed TLS endpoint (one hop of one probe), a
//! ticket when the chain's earliest not-after is less than `ticket_below`
//! away (default 21 days) or the chain has a problem, and a page when it is
//! less than `page_below` away (default 3 days) or a certificate of the
//! chain has expired.
//!
//! The days are counted here, from the evaluation's time (the injected
//! clock), not in the probe: a paused clock moves the alerts. The chain's
//! problems are the probe's (`probe::ChainProblem`), read at the handshake.
//!
//! The lifecycle is the SLO alerts' ([`super::AlertPolicy`]: `pending_for`,
//! `resolve_after`), and so are the episodes, dedup keys, the store and the
//! outbox. An endpoint whose last probe saw no certificate (it could not
//! connect, or it is not https) keeps its alerts as they are; an endpoint
//! that is no longer configured has its firing alerts resolved.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AlertKind, AlertRecord, Alerts, Transition, advance, resolve_gone};

pub const DEFAULT_TICKET_BELOW: Duration = Duration::from_secs(21 * 86_400);
pub const DEFAULT_PAGE_BELOW: Duration = Duration::from_secs(3 * 86_400);
const DAY_MS: f64 = 86_400_000.0;

/// When an endpoint's certificates alert (`certificates:` in `agent.yaml`).
#[derive(Debug, Clone, PartialEq)]
pub struct CertificatePolicy {
    /// A ticket when the earliest not-after is less than this away.
    pub ticket_below: Duration,
    /// A page when the earliest not-after is less than this away.
    pub page_below: Duration,
    /// A self-signed leaf is expected: not a problem.
    pub self_signed: bool,
    /// A link for the notification.
    pub runbook: Option<String>,
}

impl Default for CertificatePolicy {
    fn default() -> Self {
        CertificatePolicy {
            ticket_below: DEFAULT_TICKET_BELOW,
            page_below: DEFAULT_PAGE_BELOW,
            self_signed: false,
            runbook: None,
        }
    }
}

/// One presented certificate, as the alert reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenCertificate {
    pub subject: String,
    /// `None` when the certificate could not be read.
    pub not_after_ms: Option<i64>,
}

/// A problem of the chain: the probe's kind (`expired`, `name_mismatch`, …) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: String,
    pub text: String,
}

/// What the last probe of one endpoint saw, and its policy.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointCertificates {
    pub probe: String,
    pub hop: String,
    pub region: String,
    pub service: String,
    pub url: String,
    pub policy: CertificatePolicy,
    /// The presented chain, leaf first.
    pub chain: Vec<SeenCertificate>,
    pub problems: Vec<Problem>,
}

impl EndpointCertificates {
    /// The alert's subject: `<probe>/<hop>`.
    pub fn key(&self) -> String {
        endpoint_key(&self.probe, &self.hop)
    }
}

/// The name certificate alerts of a probe's hop carry (in the `slo` field).
pub fn endpoint_key(probe: &str, hop: &str) -> String {
    format!("{probe}/{hop}")
}

/// What made a certificate alert active: on the alert record, in the API
/// and in its notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateTrigger {
    pub probe: String,
    pub hop: String,
    pub region: String,
    pub url: String,
    /// The subject of the certificate that expires first (leaf or intermediate).
    pub subject: String,
    /// Its not-after (ms since the epoch).
    pub not_after_ms: Option<i64>,
    /// Days from the evaluation to that not-after (negative once expired).
    pub days_left: Option<f64>,
    /// This alert's threshold in days (`ticket_below` or `page_below`).
    pub below_days: f64,
    /// The chain's problems that count (a self-signed leaf does not when it is expected).
    pub problems: Vec<Problem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
}

impl CertificateTrigger {
    /// `CN=shop expires 2026-11-21T00:00:00Z (2.0 days left, threshold 3 days); name_mismatch: …`.
    pub fn describe(&self) -> String {
        let mut s = match (self.not_after_ms, self.days_left) {
            (Some(t), Some(d)) => format!(
                "{} expires {} ({d:.1} days left, threshold {} days)",
                if self.subject.is_empty() { "the certificate" } else { &self.subject },
                crate::timefmt::rfc3339(t),
                self.below_days
            ),
            _ => "no readable certificate expiry".to_string(),
        };
        for p in &self.problems {
            s.push_str(&format!("; {}: {}", p.kind, p.text));
        }
        s
    }
}

/// An endpoint's figures at `at_ms` (threshold 0: [`CertificateTrigger::at`]
/// sets it), and the milliseconds left to the earliest not-after.
fn figures(e: &EndpointCertificates, at_ms: i64) -> (CertificateTrigger, Option<i64>) {
    let first = e.chain.iter().filter(|c| c.not_after_ms.is_some()).min_by_key(|c| c.not_after_ms);
    let not_after_ms = first.and_then(|c| c.not_after_ms);
    let left_ms = not_after_ms.map(|t| t - at_ms);
    let figures = CertificateTrigger {
        probe: e.probe.clone(),
        hop: e.hop.clone(),
        region: e.region.clone(),
        url: e.url.clone(),
        subject: first.map(|c| c.subject.clone()).unwrap_or_default(),
        not_after_ms,
        days_left: left_ms.map(|l| l as f64 / DAY_MS),
        below_days: 0.0,
        problems: e.problems.iter().filter(|p| !(e.policy.self_signed && p.kind == "self_signed")).cloned().collect(),
        runbook: e.policy.runbook.clone(),
    };
    (figures, left_ms)
}

impl CertificateTrigger {
    /// The same figures against the threshold `below`.
    fn at(&self, below: Duration) -> CertificateTrigger {
        CertificateTrigger { below_days: below.as_millis() as f64 / DAY_MS, ..self.clone() }
    }
}

/// The ticket and page triggers of one endpoint at `at_ms`, in
/// [`AlertKind::CERTIFICATE`] order: a ticket below `ticket_below` or on any
/// problem that counts, a page below `page_below` or when a certificate of
/// the chain has expired.
pub fn triggers(e: &EndpointCertificates, at_ms: i64) -> [Option<CertificateTrigger>; 2] {
    let (base, left_ms) = figures(e, at_ms);
    let below = |d: Duration| left_ms.is_some_and(|l| l < d.as_millis() as i64);
    let expired = base.problems.iter().any(|p| p.kind == "expired");
    let (ticket, page) = (e.policy.ticket_below, e.policy.page_below);
    [
        (below(ticket) || !base.problems.is_empty()).then(|| base.at(ticket)),
        (below(page) || expired).then(|| base.at(page)),
    ]
}

impl Alerts {
    /// Advance the certificate alerts with the endpoints' last probes.
    /// `configured` names every endpoint (`<probe>/<hop>`) still probed:
    /// alerts of others resolve (if firing) and are forgotten; configured
    /// endpoints missing from `seen` keep their alerts as they are.
    pub fn observe_certificates(
        &mut self,
        seen: &[EndpointCertificates],
        configured: &BTreeSet<String>,
        at_ms: i64,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let policy = self.policy;
        for e in seen {
            let key = e.key();
            let triggers = triggers(e, at_ms);
            if triggers.iter().all(Option::is_none) && !self.certificates.contains_key(&key) {
                continue;
            }
            let slots = self.certificates.entry(key.clone()).or_default();
            for (kind, trigger) in AlertKind::CERTIFICATE.into_iter().zip(triggers) {
                let active = trigger.is_some();
                let fresh = || AlertRecord::pending(&key, &e.service, kind, at_ms);
                // While clear, the record shows the renewed certificate.
                let current = trigger.unwrap_or_else(|| {
                    let below =
                        if kind == AlertKind::CertificatePage { e.policy.page_below } else { e.policy.ticket_below };
                    figures(e, at_ms).0.at(below)
                });
                let refresh = |r: &mut AlertRecord| r.certificate = Some(current);
                advance(policy, &mut slots[kind.index()], active, fresh, refresh, at_ms, &mut out);
            }
        }
        let gone: Vec<String> = self.certificates.keys().filter(|k| !configured.contains(*k)).cloned().collect();
        for key in gone {
            for r in self.certificates.remove(&key).into_iter().flatten().flatten() {
                resolve_gone(r, at_ms, &mut out);
            }
        }
        self.certificates.retain(|_, slots| slots.iter().any(Option::is_some));
        out
    }
}

#[cfg(test)]
mod tests;
