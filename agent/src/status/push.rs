//! Pushing the status page to an external one (`status.push`;
//! `docs/status-page.md`, "Pushing to an external status page"): what is
//! pushed ([`PushEntry`]: a component's new state, an incident opened or
//! updated) and the HTTP request each becomes, for Atlassian Statuspage or
//! a generic webhook.
//!
//! **Architecture invariant:** pure like the rest of `status`: entries and
//! requests are built from what they are given; the outbox, the remembered
//! Statuspage incident ids and the sending are `api::status_push` and
//! `runtime::status_push`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ComponentConfig, ComponentState};
use crate::incident::{Impact, Incident, Status};
use crate::notify::HttpRequest;
use crate::secret::Secret;
use crate::timefmt::rfc3339;

/// Entries waiting at most, by default.
pub const DEFAULT_MAX_QUEUE: usize = 1000;
/// Per-request timeout, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Statuspage's API, by default.
pub const STATUSPAGE_URL: &str = "https://api.statuspage.io";
/// The webhook body's schema version.
pub const WEBHOOK_VERSION: &str = "1";

/// `status.push` in agent.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusPushConfig {
    pub target: PushTarget,
    pub timeout: Duration,
    /// Entries the outbox holds at most; beyond it, superseded component
    /// states go first, then the oldest entries (counted as `dropped`).
    pub max_queue: usize,
}

/// Where the states and incidents go.
#[derive(Debug, Clone, PartialEq)]
pub enum PushTarget {
    /// Atlassian Statuspage's REST API.
    Statuspage {
        /// Without a trailing `/` (`https://api.statuspage.io`).
        url: String,
        page_id: String,
        api_key: Secret,
        /// Our component name → Statuspage's component id. Components not
        /// listed are not pushed.
        components: BTreeMap<String, String>,
    },
    /// Any HTTP endpoint: each entry as JSON, signed when a secret is set.
    Webhook { url: String, secret: Option<Secret> },
}

impl PushTarget {
    /// The `kind` label of the metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PushTarget::Statuspage { .. } => "statuspage",
            PushTarget::Webhook { .. } => "webhook",
        }
    }
}

/// One change the external page must hear about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PushEntry {
    /// A component's state changed (`status` is a [`ComponentState`] name).
    Component { component: String, status: String, at_ms: i64 },
    /// An incident was opened or updated.
    Incident(IncidentChange),
}

/// An incident as it stands after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentChange {
    pub id: String,
    pub title: String,
    pub status: Status,
    pub impact: Impact,
    /// The status page's components of its services (never the services:
    /// what the public page does not name is not pushed either).
    pub components: Vec<String>,
    /// The latest update's message.
    pub message: String,
    /// Updates so far (1: just opened).
    pub updates: usize,
    pub at_ms: i64,
}

impl PushEntry {
    pub fn component(component: &str, state: ComponentState, at_ms: i64) -> PushEntry {
        PushEntry::Component { component: component.to_string(), status: state.as_str().to_string(), at_ms }
    }

    /// The change `i` just went through; `components` are the page's.
    pub fn incident(i: &Incident, components: &[ComponentConfig]) -> PushEntry {
        let last = i.updates.last();
        PushEntry::Incident(IncidentChange {
            id: i.id.clone(),
            title: i.title.clone(),
            status: i.status,
            impact: i.impact,
            components: components.iter().filter(|c| i.services.contains(&c.service)).map(|c| c.name.clone()).collect(),
            message: last.map(|u| u.message.clone()).unwrap_or_default(),
            updates: i.updates.len(),
            at_ms: last.map_or(i.started_at_ms, |u| u.at_ms),
        })
    }

    /// Entries of one key supersede each other when the outbox is full:
    /// only a component's latest state matters; every incident change does.
    pub fn coalescing_key(&self) -> Option<String> {
        match self {
            PushEntry::Component { component, .. } => Some(component_key(component)),
            PushEntry::Incident(_) => None,
        }
    }

    pub fn at_ms(&self) -> i64 {
        match self {
            PushEntry::Component { at_ms, .. } => *at_ms,
            PushEntry::Incident(c) => c.at_ms,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            PushEntry::Component { .. } => "component",
            PushEntry::Incident(_) => "incident",
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a push entry serializes")
    }
}

/// The remembered-values key of a component's last queued state.
pub fn component_key(component: &str) -> String {
    format!("component/{component}")
}

/// The remembered-values key of an incident's Statuspage id.
pub fn incident_key(id: &str) -> String {
    format!("statuspage-incident/{id}")
}

/// The request that delivers entry number `seq`, or `None` when this target
/// takes nothing of it (a component Statuspage has no id for). For
/// Statuspage, `remote` is the Statuspage id of the entry's incident when
/// one was created: the change updates it rather than opening another.
pub fn request(target: &PushTarget, seq: u64, entry: &PushEntry, remote: Option<&str>) -> Option<HttpRequest> {
    match target {
        PushTarget::Statuspage { url, page_id, api_key, components } => {
            let headers = vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("authorization".to_string(), format!("OAuth {}", api_key.expose())),
            ];
            let page = format!("{url}/v1/pages/{}", path_segment(page_id));
            let (method, url, body) = match entry {
                PushEntry::Component { component, status, .. } => {
                    let id = components.get(component)?;
                    let body = serde_json::json!({"component": {"status": status}});
                    ("PATCH", format!("{page}/components/{}", path_segment(id)), body)
                }
                PushEntry::Incident(c) => {
                    let ids: Vec<&String> = c.components.iter().filter_map(|n| components.get(n)).collect();
                    match remote {
                        None => {
                            let body = serde_json::json!({"incident": {
                                "name": c.title,
                                "status": c.status,
                                "body": c.message,
                                "impact_override": c.impact,
                                "component_ids": ids,
                            }});
                            ("POST", format!("{page}/incidents"), body)
                        }
                        Some(r) => {
                            let body = serde_json::json!({"incident": {
                                "status": c.status,
                                "body": c.message,
                                "impact_override": c.impact,
                                "component_ids": ids,
                            }});
                            ("PATCH", format!("{page}/incidents/{}", path_segment(r)), body)
                        }
                    }
                }
            };
            let body = serde_json::to_vec(&body).expect("a JSON value serializes");
            Some(HttpRequest { method, url, headers, body })
        }
        PushTarget::Webhook { url, secret } => {
            let id = webhook_id(seq);
            let mut body = match entry {
                PushEntry::Component { component, status, at_ms } => serde_json::json!({
                    "component": component, "status": status, "at": rfc3339(*at_ms),
                }),
                PushEntry::Incident(c) => serde_json::json!({"incident": {
                    "id": c.id, "title": c.title, "status": c.status, "impact": c.impact,
                    "components": c.components, "message": c.message,
                    "updates": c.updates, "at": rfc3339(c.at_ms),
                }}),
            };
            if let Some(o) = body.as_object_mut() {
                o.insert("version".into(), WEBHOOK_VERSION.into());
                o.insert("id".into(), id.clone().into());
                o.insert("type".into(), entry.kind().into());
            }
            let body = serde_json::to_vec(&body).expect("a JSON value serializes");
            // The entry's own time: a retry carries the same signature.
            let timestamp = entry.at_ms().div_euclid(1000).to_string();
            let mut headers = vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("x-slo-agent-push-id".to_string(), id),
                ("x-slo-agent-timestamp".to_string(), timestamp.clone()),
            ];
            if let Some(s) = secret {
                headers.push((
                    "x-slo-agent-signature".to_string(),
                    crate::notify::webhook::signature(s, &timestamp, &body),
                ));
            }
            Some(HttpRequest { method: "POST", url: url.clone(), headers, body })
        }
    }
}

/// The webhook's id of entry `seq`: the same on every retry and after a
/// restart, so a receiver can drop a redelivery.
pub fn webhook_id(seq: u64) -> String {
    format!("status-push/{seq}")
}

/// The id Statuspage gave an incident it created, from its answer.
pub fn created_incident_id(answer: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let id = v.get("id")?.as_str()?;
    (!id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .then(|| id.to_string())
}

/// Ids in a URL path: anything but letters, digits, `-` and `_` escaped.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
