//! Delivering the status push outbox (`status.push`): one task sends the
//! waiting entries one at a time, oldest first, and deletes each once the
//! external page accepted it — so a Statuspage incident is created before
//! it is updated, and a component's states arrive in the order they
//! happened.
//!
//! - **At least once.** An entry leaves the outbox only after the page
//!   accepted it (or refused it for good); a crash in between sends it
//!   again. Component states and incident updates are idempotent on
//!   Statuspage (PATCH of a state); a webhook gets the same
//!   `x-slo-agent-push-id` every time.
//! - **Statuspage incidents.** The id Statuspage answers a created incident
//!   with is remembered in the transaction that deletes the entry; later
//!   changes of the incident PATCH it.
//! - **Retries.** The notifications' backoff (1 s doubling to 5 min, with
//!   jitter), for as long as it takes; a refusal (4xx but 408/420/429) drops
//!   the entry, logged and counted as `failed`.
//! - **Pace.** Statuspage takes 1 request a second per key over a rolling
//!   minute: at most 60 requests go in any minute.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::api::status_push::StatusPusher;
use crate::notify::SendError;
use crate::notify::dispatch::backoff;
use crate::status::push::{PushEntry, PushTarget, created_incident_id, incident_key, request};
use crate::store::Store;
use crate::telemetry::Telemetry;
use crate::telemetry::events::{StatusPushDepth, StatusPushOutcome};

/// How often the outbox is read without being woken.
const RECHECK: Duration = Duration::from_secs(5);
/// Bytes of Statuspage's answer read for the created incident's id.
const ANSWER_BYTES: usize = 64 * 1024;
/// Statuspage takes 1 request a second per API key over a rolling minute:
/// at most this many requests in any minute.
const STATUSPAGE_PER_MINUTE: usize = 60;

/// Requests sent within the last minute, to stay within a rolling-minute limit.
struct Pace {
    per_minute: usize,
    sent: std::collections::VecDeque<tokio::time::Instant>,
}

impl Pace {
    /// Wait until one more request fits, and count it.
    async fn turn(&mut self) {
        let minute = Duration::from_secs(60);
        while let Some(first) = self.sent.front() {
            if first.elapsed() >= minute {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        if self.sent.len() >= self.per_minute
            && let Some(first) = self.sent.pop_front()
        {
            tokio::time::sleep_until(first + minute).await;
        }
        self.sent.push_back(tokio::time::Instant::now());
    }
}

/// Send until `stop` is set.
pub async fn run(pusher: Arc<StatusPusher>, store: Arc<Store>, telemetry: Arc<Telemetry>, stop: Arc<AtomicBool>) {
    let client = crate::notify::http::client();
    let kind = pusher.kind();
    let seed = u64::from(std::process::id()) ^ 0x5354_4154_5553;
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut attempts: u32 = 0;
    let mut last_seq: Option<u64> = None;
    let per_minute = match pusher.config.target {
        PushTarget::Statuspage { .. } => STATUSPAGE_PER_MINUTE,
        PushTarget::Webhook { .. } => usize::MAX,
    };
    let mut pace = Pace { per_minute, sent: std::collections::VecDeque::new() };
    while !stop.load(Ordering::SeqCst) {
        let s = store.clone();
        let (first, depth) = match tokio::task::spawn_blocking(move || s.status_push_first()).await {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the status push outbox");
                tokio::time::sleep(RECHECK).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the status push outbox");
                tokio::time::sleep(RECHECK).await;
                continue;
            }
        };
        StatusPushDepth { kind, depth }.emit(&telemetry);
        let Some(head) = first else {
            tokio::select! {
                _ = pusher.wake.notified() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
            continue;
        };
        if last_seq != Some(head.seq) {
            (attempts, last_seq) = (0, Some(head.seq));
        }
        let entry = match serde_json::from_slice::<PushEntry>(&head.json) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(seq = head.seq, error = %e, "skipping an unreadable status push entry");
                done(&store, head.seq, Vec::new()).await;
                continue;
            }
        };
        let remote = match (&pusher.config.target, &entry) {
            (PushTarget::Statuspage { .. }, PushEntry::Incident(c)) => {
                let (s, key) = (store.clone(), incident_key(&c.id));
                match tokio::task::spawn_blocking(move || s.status_push_value(&key)).await {
                    Ok(Ok(v)) => v,
                    _ => {
                        tokio::time::sleep(RECHECK).await;
                        continue;
                    }
                }
            }
            _ => None,
        };
        let Some(req) = request(&pusher.config.target, head.seq, &entry, remote.as_deref()) else {
            // Nothing this page takes (a component it has no id for).
            done(&store, head.seq, Vec::new()).await;
            continue;
        };
        let creates = req.method == "POST" && matches!(pusher.config.target, PushTarget::Statuspage { .. });
        let keep = if creates { ANSWER_BYTES } else { 0 };
        if per_minute != usize::MAX {
            pace.turn().await;
        }
        match crate::notify::http::send_reading(&client, &req, pusher.config.timeout, keep).await {
            Ok(answer) => {
                let mut values = Vec::new();
                if let (true, PushEntry::Incident(c)) = (creates, &entry) {
                    match created_incident_id(&answer) {
                        Some(id) => values.push((incident_key(&c.id), id)),
                        None => tracing::warn!(
                            incident = %c.id,
                            "Statuspage created the incident but its answer has no id: its updates will open new ones"
                        ),
                    }
                }
                done(&store, head.seq, values).await;
                tracing::info!(
                    seq = head.seq,
                    entry = entry.kind(),
                    attempts = attempts + 1,
                    "pushed to the external status page"
                );
                StatusPushOutcome { kind, outcome: "sent", count: 1 }.emit(&telemetry);
            }
            Err(SendError::Retryable(why)) => {
                attempts += 1;
                let wait = backoff(attempts, &mut rng);
                tracing::warn!(seq = head.seq, entry = entry.kind(), attempt = attempts, retry_in = ?wait, error = %why, "the external status page did not take an entry");
                StatusPushOutcome { kind, outcome: "retried", count: 1 }.emit(&telemetry);
                let until = tokio::time::Instant::now() + wait;
                while tokio::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    tokio::time::sleep_until(until.min(tokio::time::Instant::now() + Duration::from_millis(500))).await;
                }
            }
            Err(SendError::Permanent(why)) => {
                tracing::error!(seq = head.seq, entry = entry.kind(), error = %why, "the external status page refused an entry; it is dropped");
                done(&store, head.seq, Vec::new()).await;
                StatusPushOutcome { kind, outcome: "failed", count: 1 }.emit(&telemetry);
            }
        }
    }
}

/// The entry leaves the outbox, with the values to remember. When the
/// store cannot take it, the entry stays (it is sent again) after a pause.
async fn done(store: &Arc<Store>, seq: u64, values: Vec<(String, String)>) {
    let s = store.clone();
    let error = match tokio::task::spawn_blocking(move || s.status_push_done(seq, &values)).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    tracing::error!(seq, error = %error, "pushed, but cannot record it; it will be sent again");
    tokio::time::sleep(RECHECK).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_most_the_limit_goes_in_any_minute() {
        let mut pace = Pace { per_minute: 3, sent: std::collections::VecDeque::new() };
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            pace.turn().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "a burst within the limit waits for nothing");
        tokio::time::sleep(Duration::from_secs(10)).await;
        pace.turn().await;
        assert_eq!(start.elapsed(), Duration::from_secs(60), "the fourth waits for the first to be a minute old");
        pace.turn().await;
        pace.turn().await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        pace.turn().await;
        assert_eq!(start.elapsed(), Duration::from_secs(120));
    }
}
