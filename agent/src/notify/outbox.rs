//! What the outbox holds: alert changes waiting for a receiver, and each
//! group's delivery state. Both live in the store (`store/outbox.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AlertNotice;

/// One alert change a receiver must hear about, written in the same
/// transaction as the alert transition that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Assigned by the store; increases across receivers and restarts.
    pub seq: u64,
    pub receiver: String,
    /// The index of the route that sent it here (for its grouping timers).
    pub route: usize,
    pub group_labels: BTreeMap<String, String>,
    pub notice: AlertNotice,
}

impl OutboxEntry {
    pub fn group_id(&self) -> String {
        super::routing::group_id(self.route, &self.group_labels)
    }

    /// When the alert changed.
    pub fn at_ms(&self) -> i64 {
        self.notice.resolved_at_ms.unwrap_or(self.notice.firing_since_ms)
    }
}

/// A group's delivery state: what its receiver was told.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupState {
    pub receiver: String,
    pub route: usize,
    pub group_labels: BTreeMap<String, String>,
    /// Firing episodes of the group (its `group_key` ends with it).
    pub episode: u64,
    /// When the receiver last accepted a notification of the group.
    pub last_sent_ms: Option<i64>,
    /// Alerts the receiver was told fire, by dedup key.
    pub firing: BTreeMap<String, AlertNotice>,
    /// Firing alerts held back by a silence, by dedup key: told when the
    /// silence ends while they still fire.
    pub suppressed: BTreeMap<String, AlertNotice>,
}

impl GroupState {
    pub fn id(&self) -> String {
        super::routing::group_id(self.route, &self.group_labels)
    }
}

/// A notification the receiver refused for good (or that the outbox had to
/// drop), kept for a human to look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedEntry {
    pub at_ms: i64,
    pub reason: String,
    pub entry: OutboxEntry,
}
