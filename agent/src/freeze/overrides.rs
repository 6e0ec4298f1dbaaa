//! Manual freezes and unfreezes: an authorised person freezes a service
//! (a risky period the SLOs cannot see) or unfreezes it (an emergency that
//! must ship), with a reason and an expiry.
//!
//! While active, an override is shown in every freeze answer of its service
//! and decides `frozen` over the policy: the newest active override wins.
//! The policy's own `reasons` stay as they are (a manual freeze adds its
//! own, and makes the status `FROZEN`; an unfreeze leaves the status as the
//! policy says), so an answer always says what the SLOs say and who
//! overrode them.
//!
//! Overrides are stored as JSON records by id (the store does not know this
//! type) and laid over the board of the last evaluation when a request is
//! answered, so a new override counts from its 201 on.

use serde::{Deserialize, Serialize};

use super::{Reason, ServiceFreeze};

/// Longest an override may last.
pub const MAX_OVERRIDE_MS: i64 = 30 * 24 * 3_600_000;
/// Default length when the request names none.
pub const DEFAULT_OVERRIDE_MS: i64 = 4 * 3_600_000;
/// How long ended overrides stay listed (`?all=true`) before they are pruned.
pub const ENDED_RETENTION_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Freeze,
    Unfreeze,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Freeze => "freeze",
            Action::Unfreeze => "unfreeze",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub id: String,
    pub service: String,
    pub action: Action,
    pub reason: String,
    pub created_by: String,
    pub created_at_ms: i64,
    /// When it stops counting: its expiry, or when it was ended by hand.
    pub ends_at_ms: i64,
    /// Who ended it before its expiry, if anyone did.
    #[serde(default)]
    pub ended_by: Option<String>,
}

impl super::ledger::Entry for Override {
    fn id(&self) -> &str {
        &self.id
    }
    fn service(&self) -> &str {
        &self.service
    }
    fn created_at_ms(&self) -> i64 {
        self.created_at_ms
    }
    fn ends_at_ms(&self) -> i64 {
        self.ends_at_ms
    }
}

/// Every override the agent knows (active, and ended within
/// [`ENDED_RETENTION_MS`]), newest first.
pub type Overrides = super::ledger::Ledger<Override>;

/// Every service's decision of `board` with its active overrides at `now_ms`
/// laid over ([`overlay`]): what deploy tools are answered.
pub fn overlay_board(board: &super::Board, overrides: &Overrides, now_ms: i64) -> super::Board {
    super::Board {
        services: board.services.iter().map(|f| overlay(f, &overrides.of(&f.service, now_ms))).collect(),
        unavailable: board.unavailable.clone(),
        ..*board
    }
}

/// The decision with a service's active overrides laid over it: the newest
/// one decides `frozen`; a manual freeze adds a reason.
pub fn overlay(base: &ServiceFreeze, active: &[&Override]) -> ServiceFreeze {
    let mut out = base.clone();
    if let Some(newest) = active.first() {
        match newest.action {
            Action::Freeze => {
                out.frozen = true;
                out.status = super::Status::Frozen;
                out.reasons.insert(
                    0,
                    Reason {
                        kind: "manual_freeze",
                        slo: None,
                        measured: None,
                        threshold: None,
                        since_ms: newest.created_at_ms,
                        message: format!("frozen by {}: {} (override {})", newest.created_by, newest.reason, newest.id),
                    },
                );
            }
            Action::Unfreeze => out.frozen = false,
        }
    }
    out
}
