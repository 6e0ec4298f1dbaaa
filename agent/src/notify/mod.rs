//! Notifications: what a human is told when an alert fires or resolves,
//! where it goes, and delivery that loses nothing.
//!
//! - [`Notification`] is one message to one receiver: a group of alert
//!   changes (grouped by route, see [`routing`]) with the evidence for each.
//! - Each receiver kind has one file that turns a notification into HTTP
//!   requests ([`pagerduty`], [`opsgenie`], [`slack`], [`webhook`],
//!   [`alertmanager`]); [`http`] sends them and classifies the answer.
//! - The outbox (`store`, table `notify_outbox`) holds every alert change a
//!   receiver must hear about, written in the same transaction as the alert
//!   transition; the dispatcher ([`dispatch`]) groups, sends, retries with
//!   backoff and jitter, and deletes what the receiver accepted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::{AlertKind, Trigger};
use crate::secret::Secret;
pub use crate::sli::failures::{Evidence, FailureSample};
/// Milliseconds since the epoch as RFC 3339 (UTC).
pub use crate::timefmt::rfc3339;

pub mod alertmanager;
pub mod config;
pub mod dispatch;
pub mod http;
pub mod notice;
pub mod opsgenie;
pub mod outbox;
pub mod pagerduty;
pub mod routing;
pub mod silence;
pub mod slack;
pub mod text;
pub mod webhook;

#[cfg(test)]
pub(crate) mod fixtures;

/// Whether an alert (or a whole notification) is firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert's change, with everything the human needs to act on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNotice {
    pub slo: String,
    /// `metadata.displayName` when the spec gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub service: String,
    /// `page` or `ticket`.
    pub severity: String,
    pub kind: AlertKind,
    pub status: Status,
    pub episode: u64,
    /// Stable for one firing episode of one alert: `slo-agent/<slo>/<kind>/<episode>`.
    pub dedup_key: String,
    /// The SLO's labels plus `slo`, `service`, `severity` and `kind`.
    pub labels: BTreeMap<String, String>,
    /// The objective as a ratio (0.999).
    pub objective: f64,
    /// Which window pair tripped, and the burn rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// Fraction of the error budget left (may be negative).
    pub budget_remaining: f64,
    /// When this episode started firing (ms since the epoch).
    pub firing_since_ms: i64,
    /// When it resolved, for resolved alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// The agent's API for this SLO (`<external_url>/api/v1/slos/<slo>`).
    pub api_url: String,
    /// Top failing routes, edge locations and status codes, and sample
    /// failing requests, from when the alert changed.
    pub evidence: Evidence,
    /// Certificate alerts: the endpoint, the certificate that expires first,
    /// its not-after, the days left and the chain's problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<crate::alert::certs::CertificateTrigger>,
    /// Signal and quota alerts: what the signal or the quota forecast shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<crate::alert::signals::SignalTrigger>,
}

impl AlertNotice {
    /// A one-line human summary: `[FIRING] checkout-availability (checkout): page, 1h/5m burn 15.2× (threshold 14.4), 62% budget left`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "[{}] {} ({}): {}",
            self.status.as_str().to_uppercase(),
            self.slo,
            self.service,
            self.kind.as_str()
        );
        if let Some(c) = &self.certificate {
            s.push_str(&format!(", {} ({})", c.describe(), c.url));
            return s;
        }
        if let Some(g) = &self.signal {
            s.push_str(&format!(", {}", g.description));
            return s;
        }
        if let Some(t) = &self.trigger {
            if let Some(h) = t.hours_to_exhaustion {
                s.push_str(&format!(", budget gone in {h:.1}h at the 6h burn"));
            } else if let (Some(b), Some(th)) = (t.long_burn_rate, t.threshold) {
                s.push_str(&format!(", {} burn {b:.1}× (threshold {th})", t.windows));
            }
        }
        s.push_str(&format!(", {:.0}% budget left", self.budget_remaining * 100.0));
        s
    }
}

/// One message to one receiver: the changes of one group since the last
/// notification of that group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per message and the same on every retry of it: receivers that
    /// keep it can drop a redelivery (`<receiver>/<sequence>`).
    pub id: String,
    pub receiver: String,
    /// The values of the route's `group_by` labels, e.g. `{service: checkout}`.
    pub group_labels: BTreeMap<String, String>,
    /// Stable for one firing episode of the group (PagerDuty `dedup_key`,
    /// Opsgenie `alias`): `slo-agent/<receiver>/<group>/<episode>`.
    pub group_key: String,
    /// Firing while any alert of the group fires; resolved when none does.
    pub status: Status,
    /// Every alert of the group that fires now, and those that resolved
    /// since the last notification, oldest change first.
    pub alerts: Vec<AlertNotice>,
    /// When the notification was made (ms since the epoch).
    pub created_ms: i64,
    /// The agent's base URL for links.
    pub external_url: String,
}

impl Notification {
    pub fn firing(&self) -> impl Iterator<Item = &AlertNotice> {
        self.alerts.iter().filter(|a| a.status == Status::Firing)
    }

    pub fn resolved(&self) -> impl Iterator<Item = &AlertNotice> {
        self.alerts.iter().filter(|a| a.status == Status::Resolved)
    }

    /// A title for the whole group: `[FIRING:2] checkout: checkout-availability, checkout-latency`.
    pub fn title(&self) -> String {
        let n = match self.status {
            Status::Firing => self.firing().count(),
            Status::Resolved => self.alerts.len(),
        };
        let mut names: Vec<&str> = Vec::new();
        for a in &self.alerts {
            if (self.status == Status::Resolved || a.status == Status::Firing) && !names.contains(&a.slo.as_str()) {
                names.push(&a.slo);
            }
        }
        let group = self.group_labels.values().cloned().collect::<Vec<_>>().join(" ");
        let group = if group.is_empty() { String::new() } else { format!(" {group}:") };
        format!("[{}:{n}]{group} {}", self.status.as_str().to_uppercase(), names.join(", "))
    }
}

/// A receiver: where notifications go, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConfig {
    pub name: String,
    pub kind: ReceiverKind,
    /// Per-request timeout.
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverKind {
    /// PagerDuty Events API v2. `url` defaults to
    /// `https://events.pagerduty.com/v2/enqueue`.
    PagerDuty { url: String, routing_key: Secret },
    /// Opsgenie Alert API. `url` defaults to `https://api.opsgenie.com`
    /// (EU accounts: `https://api.eu.opsgenie.com`).
    Opsgenie { url: String, api_key: Secret },
    /// Slack incoming webhook; the URL is the secret.
    Slack { webhook_url: Secret },
    /// Any HTTP endpoint: the notification as JSON, signed with HMAC-SHA256
    /// when a secret is set.
    Webhook { url: String, secret: Option<Secret> },
    /// Alertmanager's v2 API (`POST <url>/api/v2/alerts`).
    Alertmanager { url: String, bearer_token: Option<Secret> },
}

impl ReceiverKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReceiverKind::PagerDuty { .. } => "pagerduty",
            ReceiverKind::Opsgenie { .. } => "opsgenie",
            ReceiverKind::Slack { .. } => "slack",
            ReceiverKind::Webhook { .. } => "webhook",
            ReceiverKind::Alertmanager { .. } => "alertmanager",
        }
    }
}

/// One HTTP request a notifier wants sent.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpRequest {
    /// Never prints the URL's query, header values or the body: they may
    /// hold secrets (a Slack webhook URL, an Opsgenie key).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &http::redact_url(&self.url))
            .field("headers", &self.headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: a connection error, a timeout, 408, 429, 5xx.
    #[error("{0} (will retry)")]
    Retryable(String),
    /// The receiver refused the message itself (400, 401, 403, 404, …):
    /// retrying the same bytes will not help.
    #[error("{0} (refused)")]
    Permanent(String),
}

/// The requests that deliver `n` to `receiver`, in the order they must be sent.
pub fn requests(receiver: &ReceiverConfig, n: &Notification) -> Vec<HttpRequest> {
    match &receiver.kind {
        ReceiverKind::PagerDuty { url, routing_key } => vec![pagerduty::request(url, routing_key, n)],
        ReceiverKind::Opsgenie { url, api_key } => vec![opsgenie::request(url, api_key, n)],
        ReceiverKind::Slack { webhook_url } => vec![slack::request(webhook_url, n)],
        ReceiverKind::Webhook { url, secret } => vec![webhook::request(url, secret.as_ref(), n)],
        ReceiverKind::Alertmanager { url, bearer_token } => vec![alertmanager::request(url, bearer_token.as_ref(), n)],
    }
}

/// A `POST` of `body` as JSON, with `headers` after the content type.
fn post_json(url: String, headers: Vec<(String, String)>, body: &serde_json::Value) -> HttpRequest {
    let mut all = vec![("content-type".to_string(), "application/json".to_string())];
    all.extend(headers);
    HttpRequest {
        method: "POST",
        url,
        headers: all,
        // A `Value` has string keys and finite numbers only: it always serializes.
        body: serde_json::to_vec(body).expect("a JSON value serializes"),
    }
}
