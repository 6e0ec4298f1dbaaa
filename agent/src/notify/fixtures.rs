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
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/notify").join(format!("{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let mut text = serde_json::to_string_pretty(got).expect("a JSON value serializes");
        text.push('\n');
        std::fs::create_dir_all(path.parent().expect("the golden file has a folder"))
            .expect("create the golden folder");
        std::fs::write(&path, text).expect("write the golden file");
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    let want: serde_json::Value = serde_json::from_str(&want).expect("the golden file is JSON");
    assert_eq!(
        got,
        &want,
        "payload differs from {} (UPDATE_GOLDEN=1 rewrites it):\n{}",
        path.display(),
        serde_json::to_string_pretty(got).unwrap_or_default()
    );
}
