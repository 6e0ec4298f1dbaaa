//! The journeys' last runs as Prometheus gauges (`docs/probes.md`,
//! "Journey metrics"). Labels are the configured journey and step names,
//! the journey's service and the fixed status words, so the series are
//! bounded by the config.

use std::sync::Arc;

use super::journey::{JourneyRun, Status};
use crate::probe::metrics::Families;

const RUN_STATUSES: [Status; 3] = [Status::Ok, Status::Degraded, Status::Failed];
const STEP_STATUSES: [Status; 4] = [Status::Ok, Status::Degraded, Status::Failed, Status::Skipped];

/// What the scheduler did for each kind of check (`probe`, `journey`):
/// runs started and skipped since the start, and how late runs started
/// (over the newest 65,536 starts).
pub fn render_schedule(kinds: &[(&str, &super::schedule::Stats)]) -> String {
    use std::sync::atomic::Ordering;
    let mut f = Families::default();
    for (kind, stats) in kinds {
        let started = stats.started.load(Ordering::Relaxed);
        if started == 0 {
            continue;
        }
        let k = || vec![("kind", kind.to_string())];
        f.add("slo_agent_check_runs_started", "Check runs started since the agent started", k(), started as f64);
        f.add(
            "slo_agent_check_runs_skipped",
            "Check runs not started because the check's previous run was still going",
            k(),
            stats.skipped.load(Ordering::Relaxed) as f64,
        );
        let series = [
            (
                "slo_agent_check_start_lateness_p50_seconds",
                "Median lateness of check run starts against their schedule",
            ),
            (
                "slo_agent_check_start_lateness_p99_seconds",
                "99th percentile lateness of check run starts against their schedule",
            ),
            (
                "slo_agent_check_start_lateness_max_seconds",
                "Largest lateness of check run starts against their schedule",
            ),
        ];
        let quantiles = stats.lateness_quantiles_ms(&[0.5, 0.99, 1.0]);
        for ((name, help), ms) in series.into_iter().zip(quantiles) {
            if let Some(ms) = ms {
                f.add(name, help, k(), ms / 1000.0);
            }
        }
    }
    f.render()
}

/// Every journey's last run, each family once.
pub fn render(runs: &[Arc<JourneyRun>]) -> String {
    let mut f = Families::default();
    let one = |b: bool| if b { 1.0 } else { 0.0 };
    for r in runs {
        let journey = || vec![("journey", r.name.clone()), ("service", r.service.clone())];
        f.add(
            "slo_agent_journey_success",
            "Whether the journey's last run completed (1: ok or degraded, 0: a step failed)",
            journey(),
            one(r.status != Status::Failed),
        );
        for s in RUN_STATUSES {
            let mut labels = journey();
            labels.push(("status", s.as_str().to_string()));
            f.add(
                "slo_agent_journey_status",
                "The journey's last run's status (1 for the one it had)",
                labels,
                one(r.status == s),
            );
        }
        f.add(
            "slo_agent_journey_duration_seconds",
            "How long the journey's last run took, think time included",
            journey(),
            r.duration.as_secs_f64(),
        );
        f.add(
            "slo_agent_journey_last_run_timestamp_seconds",
            "When the journey's last run started, in unixtime",
            journey(),
            r.started_ms as f64 / 1000.0,
        );
        for step in &r.steps {
            let labels = || {
                let mut l = journey();
                l.push(("step", step.name.clone()));
                l
            };
            f.add(
                "slo_agent_journey_step_duration_seconds",
                "How long the step's request took in the journey's last run (0 when not sent)",
                labels(),
                step.duration.as_secs_f64(),
            );
            f.add(
                "slo_agent_journey_step_http_status_code",
                "The step's response status in the journey's last run (0 when none came)",
                labels(),
                step.http_status.map_or(0.0, f64::from),
            );
            for s in STEP_STATUSES {
                let mut l = labels();
                l.push(("status", s.as_str().to_string()));
                f.add(
                    "slo_agent_journey_step_status",
                    "The step's status in the journey's last run (1 for the one it had)",
                    l,
                    one(step.status == s),
                );
            }
        }
    }
    f.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_per_journey_step_and_status_word() {
        let run = crate::synthetic::journey::example_run();
        let text = render(&[Arc::new(run)]);
        for line in [
            "slo_agent_journey_success{journey=\"checkout\",service=\"shop\"} 0",
            "slo_agent_journey_status{journey=\"checkout\",service=\"shop\",status=\"failed\"} 1",
            "slo_agent_journey_status{journey=\"checkout\",service=\"shop\",status=\"ok\"} 0",
            "slo_agent_journey_duration_seconds{journey=\"checkout\",service=\"shop\"} 1.25",
            "slo_agent_journey_last_run_timestamp_seconds{journey=\"checkout\",service=\"shop\"} 1800000000.5",
            "slo_agent_journey_step_duration_seconds{journey=\"checkout\",service=\"shop\",step=\"login\"} 0.25",
            "slo_agent_journey_step_http_status_code{journey=\"checkout\",service=\"shop\",step=\"cart\"} 503",
            "slo_agent_journey_step_status{journey=\"checkout\",service=\"shop\",step=\"cart\",status=\"failed\"} 1",
            "slo_agent_journey_step_status{journey=\"checkout\",service=\"shop\",step=\"cart\",status=\"skipped\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert_eq!(text.matches("# TYPE slo_agent_journey_step_status gauge").count(), 1);
        // Three steps × four status words, no more.
        assert_eq!(text.lines().filter(|l| l.starts_with("slo_agent_journey_step_status{")).count(), 12);
    }
}
