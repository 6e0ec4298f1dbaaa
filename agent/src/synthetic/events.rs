//! Synthetic results as [`RequestEvent`]s (origin `synthetic`), so SLOs,
//! burn rates, alerts and the freeze policy work on probes and journeys
//! exactly as on the logs.
//!
//! | event field | hop probe | journey step | whole journey |
//! | --- | --- | --- | --- |
//! | `service` | the probe's name | the journey's name | the journey's name |
//! | `hop` | the hop's name | the step's name | `journey` ([`JOURNEY_HOP`]) |
//! | `route` | | | the failed step (null when none failed) |
//! | `host`, `path`, `method` | the hop's URL | the step's request | |
//! | `edge_location` | the agent's `region` | the agent's `region` | the agent's `region` |
//! | `status` | the final response's status, 0 without one | the same | the last status seen |
//! | `latency_ms` | the counted attempt, DNS to the end of the body | the step | the whole run |
//! | `outcome` | `success`, `timeout`, `error` | the same | the same |
//!
//! `outcome` is `success` when every check but the latency budget held: a
//! slow but correct answer counts as good for an availability SLO and as
//! bad for a latency SLO with that threshold (a journey's *degraded*). Any
//! other failure (no answer, a wrong status, a body or header check) makes
//! the event `error` (`timeout` when the request timed out), and the engine
//! counts such a synthetic event as bad whatever the SLO's `good` says.
//!
//! The region is the edge location, so `region: [europe]` selects what the
//! agents in `eu-*` measured (`dims::edge_region` knows AWS region codes).
//! Only the attempt that counts becomes an event: a retry that succeeded is
//! one good event.

use super::journey::{JourneyRun, Status};
use crate::event::{EventBatch, EventSink, Origin, Outcome, RequestEvent};
use crate::probe;

/// The `hop` of the event that stands for a whole journey run.
pub const JOURNEY_HOP: &str = "journey";

/// What a probe's outcome tells an SLO: `success` unless a check other than
/// the latency budget failed.
pub fn outcome_of(o: &probe::Outcome) -> Outcome {
    let last = o.last();
    match &last.failure {
        Some(probe::RequestFailure::Timeout { .. }) => Outcome::Timeout,
        Some(_) => Outcome::Error,
        None if last.failed_assertions.iter().all(probe::AssertionFailure::is_latency) => Outcome::Success,
        None => Outcome::Error,
    }
}

/// One event for the counted attempt of a probe (or a journey step),
/// measured at `ts_ms` (wall clock).
pub fn push_outcome(batch: &mut EventBatch, o: &probe::Outcome, service: &str, method: &str, ts_ms: i64) {
    push(batch, o, service, method, ts_ms, outcome_of(o));
}

fn push(batch: &mut EventBatch, o: &probe::Outcome, service: &str, method: &str, ts_ms: i64, outcome: Outcome) {
    let last = o.last();
    let url = url::Url::parse(&o.url).ok();
    batch.event(&RequestEvent {
        ts_ms,
        origin: Some(Origin::Synthetic),
        service,
        host: url.as_ref().and_then(|u| u.host_str()).unwrap_or(""),
        path: url.as_ref().map(|u| u.path()).unwrap_or(""),
        method,
        status: last.status.unwrap_or(0),
        latency_ms: Some(last.duration.as_secs_f64() * 1e3),
        edge_location: &o.region,
        bytes: last.body_bytes,
        outcome,
        hop: &o.hop,
        ..Default::default()
    });
}

/// The events of a journey run: one per step that was sent (or failed
/// before it could be), `hop` the step's name, and one for the whole run
/// (`hop` [`JOURNEY_HOP`], `route` the failed step). A step's `outcome` is
/// its status's: `success` for ok and degraded, else `error` (`timeout`
/// when its request timed out); skipped steps give no event.
pub fn push_journey(batch: &mut EventBatch, run: &JourneyRun) {
    let mut last_status = 0;
    for step in &run.steps {
        if step.status == Status::Skipped {
            continue;
        }
        let failed = step.status == Status::Failed;
        match &step.outcome {
            Some(o) => {
                let outcome = match outcome_of(o) {
                    Outcome::Timeout if failed => Outcome::Timeout,
                    _ if failed => Outcome::Error,
                    _ => Outcome::Success,
                };
                push(batch, o, &run.service, &step.method, run.started_ms + step.offset.as_millis() as i64, outcome);
                last_status = step.http_status.unwrap_or(last_status);
            }
            None => batch.event(&RequestEvent {
                ts_ms: run.started_ms + step.offset.as_millis() as i64,
                origin: Some(Origin::Synthetic),
                service: &run.service,
                method: &step.method,
                edge_location: &run.region,
                outcome: Outcome::Error,
                hop: &step.name,
                ..Default::default()
            }),
        }
    }
    batch.event(&RequestEvent {
        ts_ms: run.started_ms,
        origin: Some(Origin::Synthetic),
        service: &run.service,
        status: last_status,
        latency_ms: Some(run.duration.as_secs_f64() * 1e3),
        edge_location: &run.region,
        outcome: if run.status == Status::Failed { Outcome::Error } else { Outcome::Success },
        route: run.failed_step.as_deref().unwrap_or(""),
        hop: JOURNEY_HOP,
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outcome(
        status: Option<u16>,
        failure: Option<probe::RequestFailure>,
        failed: Vec<probe::AssertionFailure>,
    ) -> probe::Outcome {
        probe::Outcome {
            probe: "storefront".into(),
            hop: "gateway".into(),
            region: "eu-west-1".into(),
            url: "https://abc.example.com/prod/health?x=1".into(),
            success: failure.is_none() && failed.is_empty(),
            attempts: vec![probe::Attempt {
                duration: Duration::from_millis(120),
                status,
                failure,
                failed_assertions: failed,
                ..Default::default()
            }],
        }
    }

    /// The event of an outcome, in words: service hop host path status latency outcome region.
    fn event(o: &probe::Outcome) -> String {
        let mut b = EventBatch::new();
        push_outcome(&mut b, o, &o.probe, "GET", 1_000);
        let mut out = Vec::new();
        b.replay(&mut |e: &RequestEvent<'_>| {
            assert_eq!((e.ts_ms, e.origin, e.method), (1_000, Some(Origin::Synthetic), "GET"));
            out.push(format!(
                "{} {} {} {} {} {:?} {} {}",
                e.service,
                e.hop,
                e.host,
                e.path,
                e.status,
                e.latency_ms,
                e.outcome.as_str(),
                e.edge_location
            ));
        });
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    #[test]
    fn a_probe_outcome_is_one_event_with_hop_and_region() {
        assert_eq!(
            event(&outcome(Some(200), None, vec![])),
            "storefront gateway abc.example.com /prod/health 200 Some(120.0) success eu-west-1"
        );
    }

    #[test]
    fn slow_but_correct_is_a_success_and_anything_else_is_not() {
        let slow = probe::AssertionFailure::Latency { took_ms: 900, budget_ms: 800 };
        assert_eq!(outcome_of(&outcome(Some(200), None, vec![slow.clone()])), Outcome::Success);
        let status = probe::AssertionFailure::Status { status: 503, valid: vec![] };
        assert_eq!(outcome_of(&outcome(Some(503), None, vec![status, slow])), Outcome::Error);
        let timeout = probe::RequestFailure::Timeout { phase: "processing", timeout_ms: 10_000 };
        assert_eq!(outcome_of(&outcome(None, Some(timeout), vec![])), Outcome::Timeout);
        let refused = probe::RequestFailure::Connect("127.0.0.1:1: refused".into());
        assert!(event(&outcome(None, Some(refused), vec![])).contains(" 0 Some(120.0) error "));
    }

    #[test]
    fn a_journey_run_is_an_event_per_sent_step_and_one_for_the_run() {
        let run = crate::synthetic::journey::example_run();
        let mut b = EventBatch::new();
        push_journey(&mut b, &run);
        let mut out = Vec::new();
        b.replay(&mut |e: &RequestEvent<'_>| {
            assert_eq!((e.origin, e.service, e.edge_location), (Some(Origin::Synthetic), "shop", "eu-west-1"));
            out.push(format!(
                "{} {} {} {} {:?} {}",
                e.ts_ms,
                e.hop,
                e.route,
                e.status,
                e.latency_ms,
                e.outcome.as_str()
            ));
        });
        assert_eq!(
            out,
            [
                "1800000000500 login  200 Some(250.0) success",
                "1800000000750 cart  503 Some(1000.0) error",
                // The whole run: the failed step as its route; confirm was skipped.
                "1800000000500 journey cart 503 Some(1250.0) error",
            ]
        );
    }
}
