//! The notification every notifier test renders: a checkout group with a
//! page alert (full evidence, a runbook, a display name) and a ticket alert
//! (little evidence, no runbook). The same JSON files feed the integration
//! tests (`agent/tests/notifiers.rs`).

use super::{Notification, Status};

/// The fixture notification, firing (both alerts fire) or resolved (both
/// resolved at 12:30).
pub(crate) fn sample_notification(status: Status) -> Notification {
    let text = match status {
        Status::Firing => include_str!("../../tests/fixtures/notify/notification-firing.json"),
        Status::Resolved => include_str!("../../tests/fixtures/notify/notification-resolved.json"),
    };
    serde_json::from_str(text).expect("the notification fixture is a valid Notification")
}

/// Check `got` against `agent/tests/golden/notify/<name>.json`, the exact
/// payload a receiver gets (also what `agent/tests/notifiers.rs` checks on
/// the wire). `UPDATE_GOLDEN=1` rewrites the file: review the diff.
pub(crate) fn assert_golden(name: &str, got: &serde_json::Value) {
    crate::testing::golden::check_json(&format!("tests/golden/notify/{name}.json"), got);
}
