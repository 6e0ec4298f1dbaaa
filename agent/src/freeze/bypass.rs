//! Bypasses: the gated way through a freeze. A requester (role `deploy`)
//! asks to deploy one change type of one service despite a freeze, with a
//! reason; it takes effect only once the number of distinct approvers the
//! service's policy names (`approvers`, default 2), none of them the
//! requester, have approved it. It expires, and can be revoked.
//!
//! Stored as JSON records by id (the store does not know this type) and
//! laid over the board when an answer is made, like manual overrides.

use serde::{Deserialize, Serialize};

use super::ledger::Entry as _;
use crate::spec::policy::ChangeType;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub at_ms: i64,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bypass {
    pub id: String,
    pub service: String,
    /// `feature`, `hotfix` or `rollback`.
    pub change: String,
    pub reason: String,
    pub requested_by: String,
    pub created_at_ms: i64,
    /// Its expiry, or when it was revoked.
    pub ends_at_ms: i64,
    /// Approvers it needs (the service's policy when it was asked for).
    pub needs: u32,
    pub approvals: Vec<Approval>,
    #[serde(default)]
    pub revoked_by: Option<String>,
}

/// Why an approval is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    #[error("the requester cannot approve their own bypass")]
    OwnRequest,
    #[error("{0} has already approved this bypass")]
    Again(String),
    #[error("the bypass has ended (expired or revoked)")]
    Ended,
}

impl Bypass {
    pub fn change_type(&self) -> Option<ChangeType> {
        ChangeType::parse(&self.change)
    }

    /// Open and approved by enough distinct approvers.
    pub fn effective(&self, now_ms: i64) -> bool {
        self.open(now_ms) && self.approvals.len() as u32 >= self.needs
    }

    /// `pending`, `approved`, or `ended`.
    pub fn state(&self, now_ms: i64) -> &'static str {
        if !self.open(now_ms) {
            "ended"
        } else if self.effective(now_ms) {
            "approved"
        } else {
            "pending"
        }
    }

    /// The bypass with `by`'s approval added.
    pub fn approved(&self, by: &str, at_ms: i64, comment: Option<String>) -> Result<Bypass, ApproveError> {
        if !self.open(at_ms) {
            return Err(ApproveError::Ended);
        }
        if by == self.requested_by {
            return Err(ApproveError::OwnRequest);
        }
        if self.approvals.iter().any(|a| a.by == by) {
            return Err(ApproveError::Again(by.to_string()));
        }
        let mut b = self.clone();
        b.approvals.push(Approval { by: by.to_string(), at_ms, comment });
        Ok(b)
    }
}

impl super::ledger::Entry for Bypass {
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

/// Every bypass the agent knows (open, and ended within a week), newest first.
pub type Bypasses = super::ledger::Ledger<Bypass>;

#[cfg(test)]
mod tests {
    use super::*;

    fn bypass(needs: u32) -> Bypass {
        Bypass {
            id: "b1".into(),
            service: "checkout".into(),
            change: "feature".into(),
            reason: "launch".into(),
            requested_by: "dev".into(),
            created_at_ms: 1_000,
            ends_at_ms: 10_000,
            needs,
            approvals: Vec::new(),
            revoked_by: None,
        }
    }

    #[test]
    fn a_bypass_takes_effect_after_enough_distinct_approvers_other_than_the_requester() {
        let b = bypass(2);
        assert_eq!(b.state(2_000), "pending");
        assert_eq!(b.approved("dev", 2_000, None), Err(ApproveError::OwnRequest));
        let b = b.approved("lead", 2_000, Some("ok".into())).unwrap();
        assert_eq!(b.approved("lead", 2_100, None), Err(ApproveError::Again("lead".into())));
        assert!(!b.effective(2_100), "one approval of two");
        let b = b.approved("sre", 2_200, None).unwrap();
        assert!(b.effective(2_200));
        assert_eq!(b.state(2_200), "approved");
        // It expires, and nothing more can be approved then.
        assert!(!b.effective(10_000));
        assert_eq!(b.state(10_000), "ended");
        assert_eq!(b.approved("cto", 10_000, None), Err(ApproveError::Ended));
    }
}
