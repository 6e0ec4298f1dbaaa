//! Evaluation, as the state thread does it on every tick
//! ([`super::state::Core::evaluate`]): every SLO at the clock's time, the
//! alerts moved (their changes and outbox entries committed before the
//! in-memory alerts change), the snapshot published for the API. This file
//! holds what that leaves to say: how alert changes are logged.

use crate::alert::{Phase, Transition};

/// One log line per alert change.
pub fn log_transitions(transitions: &[Transition]) {
    for t in transitions {
        let r = &t.record;
        let trigger = r.trigger.as_ref();
        match t.to {
            Some(Phase::Firing) => tracing::warn!(
                slo = %t.slo, kind = t.kind.as_str(), episode = r.episode,
                windows = trigger.map_or("", |t| t.windows.as_str()),
                long_burn_rate = ?trigger.and_then(|t| t.long_burn_rate),
                budget_remaining = r.budget_remaining,
                "alert firing"
            ),
            Some(Phase::Resolved) => {
                tracing::info!(slo = %t.slo, kind = t.kind.as_str(), episode = r.episode, "alert resolved")
            }
            _ => tracing::debug!(slo = %t.slo, kind = t.kind.as_str(), from = ?t.from, to = ?t.to, "alert changed"),
        }
    }
}
