//! The freeze's and the deploys' gauges, made at each `/metrics` scrape
//! from the last board with the active overrides laid over it (as the
//! freeze answers are) and the recorded deploys:
//!
//! | metric | labels | value |
//! | --- | --- | --- |
//! | `slo_agent_freeze_frozen` | `service` | 1 while frozen (by the policy or a manual freeze), else 0; absent while the fleet's figures cannot be read |
//! | `slo_agent_deploy_last_timestamp_seconds` | `service` | the start of the service's newest recorded deploy, 0 while none is kept |
//!
//! One series per service the board knows (the services of the SLOs), so
//! both exist from the first evaluation on and Grafana's `changes()` sees
//! the first freeze and the first deploy too.
//!
//! **Architecture invariant:** pure: reads what it is given; one pass over
//! the deploys.

use std::collections::HashMap;

use super::Board;
use super::deploys::Deploys;
use super::ledger::Entry as _;
use super::overrides::Overrides;
use crate::telemetry::events::metric;
use crate::telemetry::{FamilyView, Kind, Metric};

metric!(
    FREEZE_FROZEN,
    "slo_agent_freeze_frozen",
    Gauge,
    "1 while deploys of the service are frozen (by its error-budget policy or a manual freeze), else 0"
);
metric!(
    DEPLOY_LAST,
    "slo_agent_deploy_last_timestamp_seconds",
    Gauge,
    "When the service's newest recorded deploy started; 0 while none is kept"
);

pub static FAMILIES: [&Metric; 2] = [&FREEZE_FROZEN, &DEPLOY_LAST];

/// The gauges at `now_ms`; nothing before the first evaluation (an empty board).
pub fn families(board: &Board, overrides: &Overrides, deploys: &Deploys, now_ms: i64) -> Vec<FamilyView> {
    let mut out: Vec<FamilyView> = FAMILIES.iter().map(|m| FamilyView { metric: m, series: Vec::new() }).collect();
    let mut last: HashMap<&str, i64> = board.services.iter().map(|s| (s.service.as_str(), 0)).collect();
    let mut missing = last.len();
    // Newest first: the first deploy of a service is its newest.
    for d in deploys.list(now_ms, false) {
        if missing == 0 {
            break;
        }
        if let Some(t) = last.get_mut(d.service())
            && *t == 0
        {
            *t = d.created_at_ms();
            missing -= 1;
        }
    }
    let answered = super::overrides::overlay_board(board, overrides, now_ms);
    for s in &answered.services {
        let labels = vec![("service", s.service.clone())];
        if board.unavailable.is_none() {
            out[0].series.push((labels.clone(), if s.frozen { 1.0 } else { 0.0 }));
        }
        let t = last.get(s.service.as_str()).copied().unwrap_or(0);
        out[1].series.push((labels, t as f64 / 1000.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freeze::deploys::{Deploy, Outcome};
    use crate::freeze::overrides::{Action, Override};
    use crate::freeze::{ServiceFreeze, Source, Status};

    const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
    const MIN: i64 = 60_000;

    fn service(name: &str, frozen: bool) -> ServiceFreeze {
        ServiceFreeze {
            service: name.into(),
            source: Source::Local,
            policy: "default".into(),
            status: if frozen { Status::Frozen } else { Status::Ok },
            frozen,
            reasons: Vec::new(),
            never_block: Vec::new(),
            approvers: 1,
            slos: Vec::new(),
        }
    }

    fn deploy(id: &str, service: &str, started_at_ms: i64) -> Deploy {
        Deploy {
            id: id.into(),
            service: service.into(),
            version: "1.0".into(),
            commit: None,
            actor: "ci".into(),
            started_at_ms,
            finished_at_ms: started_at_ms + 5 * MIN,
            outcome: Outcome::Success,
            recorded_by: "ci".into(),
            recorded_at_ms: started_at_ms + 5 * MIN,
        }
    }

    fn manual(id: &str, service: &str, action: Action, from: i64, to: i64) -> Override {
        Override {
            id: id.into(),
            service: service.into(),
            action,
            reason: "test".into(),
            created_by: "ops".into(),
            created_at_ms: from,
            ends_at_ms: to,
            ended_by: None,
        }
    }

    /// `name{labels} value` lines of every family.
    fn lines(families: &[FamilyView]) -> Vec<String> {
        families
            .iter()
            .flat_map(|f| {
                f.series.iter().map(|(l, v)| {
                    let l: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                    format!("{}{{{}}} {v}", f.metric.name, l.join(","))
                })
            })
            .collect()
    }

    #[test]
    fn frozen_and_last_deploy_per_service_with_the_overrides_laid_over() {
        let board = Board {
            at_ms: T0,
            services: vec![service("cart", false), service("checkout", true), service("search", false)],
            source: Source::Local,
            unavailable: None,
        };
        let mut overrides = Overrides::default();
        // The newest active override decides: search frozen by hand, checkout unfrozen.
        overrides.put(manual("o1", "search", Action::Freeze, T0 - 10 * MIN, T0 + 60 * MIN));
        overrides.put(manual("o2", "checkout", Action::Freeze, T0 - 30 * MIN, T0 + 60 * MIN));
        overrides.put(manual("o3", "checkout", Action::Unfreeze, T0 - 20 * MIN, T0 + 60 * MIN));
        // An ended one counts for nothing.
        overrides.put(manual("o4", "cart", Action::Freeze, T0 - 90 * MIN, T0 - 60 * MIN));
        let mut deploys = Deploys::default();
        deploys.put(deploy("d1", "checkout", T0 - 120 * MIN));
        deploys.put(deploy("d2", "checkout", T0 - 30 * MIN));
        deploys.put(deploy("d3", "search", T0 - 200 * MIN));
        // Deploys of services the board does not know are not exported.
        deploys.put(deploy("d4", "gone", T0 - 10 * MIN));
        let got = lines(&families(&board, &overrides, &deploys, T0));
        let at = |ms: i64| (ms / 1000) as f64;
        assert_eq!(
            got,
            [
                r#"slo_agent_freeze_frozen{service="cart"} 0"#.to_string(),
                r#"slo_agent_freeze_frozen{service="checkout"} 0"#.to_string(),
                r#"slo_agent_freeze_frozen{service="search"} 1"#.to_string(),
                r#"slo_agent_deploy_last_timestamp_seconds{service="cart"} 0"#.to_string(),
                format!(r#"slo_agent_deploy_last_timestamp_seconds{{service="checkout"}} {}"#, at(T0 - 30 * MIN)),
                format!(r#"slo_agent_deploy_last_timestamp_seconds{{service="search"}} {}"#, at(T0 - 200 * MIN)),
            ]
        );
        // The overrides expired: the policy's decision again.
        let later = lines(&families(&board, &overrides, &deploys, T0 + 61 * MIN));
        assert!(later.contains(&r#"slo_agent_freeze_frozen{service="checkout"} 1"#.to_string()), "{later:#?}");
        assert!(later.contains(&r#"slo_agent_freeze_frozen{service="search"} 0"#.to_string()), "{later:#?}");
    }

    #[test]
    fn no_frozen_series_while_the_fleet_cannot_be_read_and_none_before_an_evaluation() {
        let board = Board {
            at_ms: T0,
            services: vec![service("checkout", true)],
            source: Source::Prometheus,
            unavailable: Some("the query API does not answer".into()),
        };
        let got = lines(&families(&board, &Overrides::default(), &Deploys::default(), T0));
        assert_eq!(got, [r#"slo_agent_deploy_last_timestamp_seconds{service="checkout"} 0"#]);
        let none = families(&Board::default(), &Overrides::default(), &Deploys::default(), T0);
        assert!(lines(&none).is_empty());
    }
}
