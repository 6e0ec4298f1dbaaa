//! Housekeeping beside the counting: pruning what the store no longer
//! needs (hourly, on its own thread, in short transactions), and watching
//! the spec files for changes (and SIGHUP). Neither holds anything the state
//! thread needs: pruning works from the retention the last snapshot
//! published; a reload is read and validated here and handed over whole.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::state::Control;
use crate::api::state::ApiState;
use crate::spec;
use crate::telemetry::events::SpecReloadRefused;

/// How often the store is pruned at least.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often the retention is looked at between prunes.
const CHECK_EVERY: Duration = Duration::from_secs(10);
/// Buckets a ring's oldest kept bucket may move (6 hours of minute buckets)
/// before the store is pruned early: a catch-up of weeks of logs moves the
/// rings by days in seconds, and each day left in the file costs 1,440 rows
/// per counter (a 30-day catch-up with 60 counters left 2.7 M rows, 260 MiB,
/// where 0.4 M were kept).
const PRUNE_AFTER_BUCKETS: i64 = 360;

/// Prune now, then every [`PRUNE_EVERY`], or sooner once the engine's
/// retention moved by [`PRUNE_AFTER_BUCKETS`], until `stop` says so.
pub fn run_pruning(api: Arc<ApiState>, stop: Receiver<()>) {
    let mut pruned_at = std::time::Instant::now();
    let mut pruned_from = prune_once(&api);
    loop {
        match stop.recv_timeout(CHECK_EVERY) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let moved = retention_moved(&pruned_from, &api.snapshot().retention);
        if moved || pruned_at.elapsed() >= PRUNE_EVERY {
            pruned_at = std::time::Instant::now();
            pruned_from = prune_once(&api);
        }
    }
}

/// The oldest kept bucket of each SLO's rings.
type RingsFrom = std::collections::HashMap<(String, crate::sli::series::RingId), i64>;

fn rings_from(retention: &[crate::sli::Retention]) -> RingsFrom {
    retention.iter().flat_map(|r| r.rings.iter().map(|&(ring, from)| ((r.slo.clone(), ring), from))).collect()
}

/// Whether a ring's oldest kept bucket moved by [`PRUNE_AFTER_BUCKETS`]
/// since the last prune (one that was not kept then counts as moved).
fn retention_moved(before: &RingsFrom, now: &[crate::sli::Retention]) -> bool {
    now.iter().any(|r| {
        r.rings.iter().any(|&(ring, from)| {
            before.get(&(r.slo.clone(), ring)).is_none_or(|&was| from.saturating_sub(was) >= PRUNE_AFTER_BUCKETS)
        })
    })
}

/// One round of pruning (blocking). Returns the retention it pruned to
/// (empty before the first evaluation: nothing to go by yet).
pub fn prune_once(api: &ApiState) -> RingsFrom {
    crate::api::silences::prune(api);
    crate::api::freeze::prune(api);
    crate::api::deploys::prune(api);
    crate::api::incidents::prune(api);
    let store = &api.store;
    let now = api.clock.now_ms();
    let snap = api.snapshot();
    // Retention comes from an evaluation; before the first one there is
    // nothing to go by (and every SLO would look gone).
    let mut pruned_from = RingsFrom::new();
    if snap.at_ms > 0 {
        match store.prune(&snap.retention, now) {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(rows = n, "pruned expired buckets from the store");
                }
                pruned_from = rings_from(&snap.retention);
            }
            Err(e) => tracing::warn!(error = %e, "pruning the store failed"),
        }
    }
    let steps: [(&str, Result<u64, crate::store::StoreError>); 4] = [
        ("remembered delivery ids", store.prune_deliveries(now - crate::store::DELIVERY_MEMORY_MS)),
        ("the alert history", store.prune_alert_history(now - crate::store::ALERT_HISTORY_MS)),
        ("failed notifications", store.prune_failed_notifications(now - crate::store::outbox::FAILED_KEEP_MS)),
        ("refused calls in the audit log", store.prune_anonymous_audit(crate::store::MAX_ANONYMOUS_AUDIT_ENTRIES)),
    ];
    for (what, r) in steps {
        if let Err(e) = r {
            tracing::warn!(error = %e, "pruning {what} failed");
        }
    }
    pruned_from
}

/// A fingerprint of the spec files (paths, sizes, mtimes) to notice edits.
pub fn specs_signature(paths: &[PathBuf]) -> Vec<(PathBuf, u64, i128)> {
    let mut out = Vec::new();
    fn walk(p: &Path, out: &mut Vec<(PathBuf, u64, i128)>) {
        let Ok(meta) = std::fs::metadata(p) else { return };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
                entries.sort();
                for e in entries {
                    walk(&e, out);
                }
            }
        } else {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            out.push((p.to_path_buf(), meta.len(), mtime));
        }
    }
    for p in paths {
        walk(p, &mut out);
    }
    out
}

/// Reload the specs when their files change (checked every 2 s) or on
/// SIGHUP. Specs that do not validate are refused, and the old ones stay.
pub async fn watch_specs(paths: Vec<PathBuf>, control: tokio::sync::mpsc::Sender<Control>, api: Arc<ApiState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    let mut sig = specs_signature(&paths);
    let mut iv = tokio::time::interval(Duration::from_secs(2));
    loop {
        let by_signal = tokio::select! {
            _ = hup.recv() => true,
            _ = iv.tick() => false,
        };
        let p = paths.clone();
        let now = tokio::task::spawn_blocking(move || specs_signature(&p)).await.unwrap_or_default();
        if !by_signal && now == sig {
            continue;
        }
        sig = now;
        let p = paths.clone();
        let loaded = tokio::task::spawn_blocking(move || spec::load_paths(&p)).await;
        let trigger = if by_signal { "sighup" } else { "file-change" };
        match loaded {
            Ok(Ok(set)) => {
                let outcome = format!("ok: {} SLOs, {} freeze policies", set.slos.len(), set.policies.len());
                let (reply, answer) = tokio::sync::oneshot::channel();
                if control.send(Control::Reload(Arc::new(set), reply)).await.is_err() {
                    return;
                }
                let outcome = match answer.await {
                    Ok(reset) if !reset.is_empty() => format!("{outcome}; counting afresh: {}", reset.join(", ")),
                    _ => outcome,
                };
                audit_reload(&api, trigger, &outcome).await;
            }
            Ok(Err(diags)) => {
                let problems: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
                SpecReloadRefused { problems: &problems }.emit(&api.telemetry);
                audit_reload(&api, trigger, &format!("refused: {}", problems.join("; "))).await;
            }
            Err(_) => return,
        }
    }
}

/// The actor of the agent's own audit entries.
pub const AGENT_ACTOR: &str = "slo-agent";

/// A spec reload, accepted or refused, goes into the audit chain like an
/// API change (`specs.reload`, target `sighup` or `file-change`).
async fn audit_reload(api: &Arc<ApiState>, trigger: &str, outcome: &str) {
    let entry = crate::auth::AuditEntry::new(
        api.clock.now_ms(),
        AGENT_ACTOR,
        None,
        "specs.reload",
        Some(trigger),
        outcome,
        None,
    );
    crate::auth::log(&entry);
    let store = api.store.clone();
    match tokio::task::spawn_blocking(move || store.append_audit(&entry)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(target: "audit", error = %e, "could not append the reload to the audit log"),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sli::Retention;
    use crate::sli::series::RingId;

    fn retention(fine: i64, coarse: i64) -> Vec<Retention> {
        vec![Retention {
            slo: "checkout".into(),
            rings: vec![(RingId::Fine, fine), (RingId::Coarse, coarse)],
            oldest_latency_day: None,
        }]
    }

    #[test]
    fn the_store_is_pruned_early_once_a_ring_moved_six_hours_of_buckets() {
        let before = rings_from(&retention(1_000, 100));
        assert!(!retention_moved(&before, &retention(1_000, 100)));
        assert!(!retention_moved(&before, &retention(1_000 + PRUNE_AFTER_BUCKETS - 1, 101)));
        assert!(retention_moved(&before, &retention(1_000 + PRUNE_AFTER_BUCKETS, 100)));
        assert!(retention_moved(&before, &retention(1_000, 100 + PRUNE_AFTER_BUCKETS)));
        // A ring the last prune did not see (a new SLO, or none before the
        // first evaluation) counts as moved; a ring that moved back does not.
        assert!(retention_moved(&RingsFrom::new(), &retention(1_000, 100)));
        assert!(!retention_moved(&before, &retention(0, 0)));
        assert!(!retention_moved(&before, &[]));
    }
}
