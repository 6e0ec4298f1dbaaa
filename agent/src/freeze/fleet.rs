//! The fleet's figures (`freeze.source: prometheus`): what to ask a
//! Prometheus query API for, how to read its answers, and how they become
//! the same inputs [`super::Freezer::decide`] takes from the local engine —
//! so one policy code decides, with the same hysteresis, whatever the source.
//!
//! Several agents that each see part of the traffic export their counters
//! to one Prometheus-compatible store, which evaluates the rules
//! `slo-agent rules` generates (`crate::rules`). Per SLO (by its Sloth id,
//! [`crate::rules::RuleSlo::id`]) the fleet's figures are:
//!
//! | figure | series |
//! | --- | --- |
//! | budget remaining | `slo:period_error_budget_remaining:ratio` |
//! | error ratio per window (burn rates, the SLI) | `slo:sli_error:ratio_rate<W>` by `sloth_window` |
//! | error budget (the burn rates' divisor) | `slo:error_budget:ratio` |
//! | events in the SLO window (the `min_events` guard) | `sum by (slo) (increase(slo_agent_slo_events_total[<period>]))` |
//! | page and ticket alerts | `ALERTS{sloth_severity=~"page\|ticket"}` by `alertstate` |
//!
//! One query per figure for every SLO at once (a `sloth_id=~"…"` selector;
//! events: one per distinct SLO period), grouped by label afterwards: a
//! thousand SLOs are still a handful of requests. An SLO without series
//! has no events (it is not judged), which is not an error.
//!
//! **Architecture invariant:** pure: no I/O, no clock. The HTTP client that
//! asks the queries lives in `crate::fleet`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::alert::{AlertKind, AlertRecord, Phase};
use crate::sli::SloStatus;
use crate::sli::ring::Counts;
use crate::sli::series::{WindowStats, clean};
use crate::spec::model::{ALERT_WINDOWS, Minutes, SloSet};

/// An SLO the fleet's figures are read for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub slo: String,
    pub service: String,
    /// The Sloth id the generated rules label its series with (`sloth_id`).
    pub id: String,
    /// The period the rules compute the budget over (a calendar window's nominal length).
    pub period: Minutes,
}

/// The SLOs of `set` that the generated rules cover (timeslice SLOs have no
/// rules: they are never judged from the fleet's figures).
pub fn targets(set: &SloSet) -> Vec<Target> {
    let (rules, _skipped, _notes) = crate::rules::from_slo_set(set);
    rules
        .iter()
        .map(|r| Target { slo: r.name.clone(), service: r.service.clone(), id: r.id(), period: r.period })
        .collect()
}

/// What a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Remaining,
    ErrorRatios,
    ErrorBudget,
    /// Events over this period, of the SLOs with this period.
    Events(Minutes),
    Alerts,
}

/// One instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub read: Read,
    pub promql: String,
}

/// The queries that read every target's figures; none without targets.
pub fn queries(targets: &[Target]) -> Vec<Query> {
    if targets.is_empty() {
        return Vec::new();
    }
    let ids = alternatives(targets.iter().map(|t| t.id.as_str()));
    let sel = format!("sloth_id=~{}", crate::rules::prom_str(&ids));
    let mut out = vec![
        Query { read: Read::Remaining, promql: format!("slo:period_error_budget_remaining:ratio{{{sel}}}") },
        Query { read: Read::ErrorRatios, promql: format!("{{__name__=~\"slo:sli_error:ratio_rate.+\",{sel}}}") },
        Query { read: Read::ErrorBudget, promql: format!("slo:error_budget:ratio{{{sel}}}") },
    ];
    let periods: BTreeSet<Minutes> = targets.iter().map(|t| t.period).collect();
    for p in periods {
        let names = alternatives(targets.iter().filter(|t| t.period == p).map(|t| t.slo.as_str()));
        out.push(Query {
            read: Read::Events(p),
            promql: format!(
                "sum by (slo) (increase(slo_agent_slo_events_total{{slo=~{}}}[{p}]))",
                crate::rules::prom_str(&names)
            ),
        });
    }
    out.push(Query {
        read: Read::Alerts,
        promql: format!("ALERTS{{{sel},sloth_severity=~\"page|ticket\",alertstate=~\"firing|pending\"}}"),
    });
    out
}

/// `a|b|c` with every name matched literally.
fn alternatives<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, n) in names.enumerate() {
        if i > 0 {
            out.push('|');
        }
        for c in n.chars() {
            if "\\.+*?()|[]{}^$".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    /// NaN when the series' value is NaN (a window without events).
    pub value: f64,
}

/// The answer of `/api/v1/query`, read as an instant vector.
pub fn parse_vector(body: &[u8]) -> Result<Vec<Sample>, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        status: String,
        #[serde(default)]
        data: Option<Data>,
        #[serde(default)]
        error: Option<String>,
        #[serde(default, rename = "errorType")]
        error_type: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(rename = "resultType")]
        result_type: String,
        result: Vec<Series>,
    }
    #[derive(serde::Deserialize)]
    struct Series {
        #[serde(default)]
        metric: BTreeMap<String, String>,
        value: (serde_json::Value, String),
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| format!("not a Prometheus query answer: {e}"))?;
    if a.status != "success" {
        return Err(format!(
            "the query failed ({}): {}",
            a.error_type.as_deref().unwrap_or("error"),
            a.error.as_deref().unwrap_or("no reason given")
        ));
    }
    let data = a.data.ok_or("a successful answer without `data`")?;
    if data.result_type != "vector" {
        return Err(format!("expected an instant vector, got a {}", data.result_type));
    }
    data.result
        .into_iter()
        .map(|s| {
            let value = parse_value(&s.value.1).ok_or_else(|| format!("`{}` is not a sample value", s.value.1))?;
            Ok(Sample { labels: s.metric, value })
        })
        .collect()
}

/// Prometheus writes sample values as strings: `0.5`, `NaN`, `+Inf`, `-Inf`.
fn parse_value(t: &str) -> Option<f64> {
    match t {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

/// One SLO's figures as the fleet's store has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SloFigures {
    pub budget_remaining: Option<f64>,
    pub error_budget: Option<f64>,
    /// Error ratio per window (`5m` … the period), as `sloth_window` names it.
    pub error_ratios: BTreeMap<String, f64>,
    pub events: f64,
    pub page: Option<Phase>,
    pub ticket: Option<Phase>,
}

/// Every target's figures at one reading, by SLO name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// When they were read (the agent's clock).
    pub read_at_ms: i64,
    pub slos: BTreeMap<String, SloFigures>,
}

/// Group the answers by SLO. Series of SLOs that are not targets (another
/// team's rules in the same store) are left out.
pub fn assemble(targets: &[Target], answers: &[(Read, Vec<Sample>)], read_at_ms: i64) -> Figures {
    let by_id: BTreeMap<&str, &Target> = targets.iter().map(|t| (t.id.as_str(), t)).collect();
    let by_name: BTreeMap<(&str, Minutes), &Target> = targets.iter().map(|t| ((t.slo.as_str(), t.period), t)).collect();
    let mut slos: BTreeMap<String, SloFigures> =
        targets.iter().map(|t| (t.slo.clone(), SloFigures::default())).collect();
    let label = |s: &Sample, k: &str| s.labels.get(k).cloned().unwrap_or_default();
    for (read, samples) in answers {
        for s in samples {
            let target = match read {
                Read::Events(p) => by_name.get(&(label(s, "slo").as_str(), *p)).copied(),
                _ => by_id.get(label(s, "sloth_id").as_str()).copied(),
            };
            let Some(f) = target.and_then(|t| slos.get_mut(&t.slo)) else {
                continue;
            };
            match read {
                Read::Remaining => f.budget_remaining = Some(s.value),
                Read::ErrorBudget => f.error_budget = Some(s.value),
                Read::ErrorRatios => {
                    f.error_ratios.insert(label(s, "sloth_window"), s.value);
                }
                Read::Events(_) => f.events += s.value,
                Read::Alerts => {
                    let phase = match label(s, "alertstate").as_str() {
                        "firing" => Phase::Firing,
                        "pending" => Phase::Pending,
                        _ => continue,
                    };
                    let slot = match label(s, "sloth_severity").as_str() {
                        "page" => &mut f.page,
                        "ticket" => &mut f.ticket,
                        _ => continue,
                    };
                    // Firing wins over pending when both are there.
                    if *slot != Some(Phase::Firing) {
                        *slot = Some(phase);
                    }
                }
            }
        }
    }
    Figures { read_at_ms, slos }
}

/// The fleet's figures as SLO statuses at `at_ms`, one per SLO of `set`
/// (an SLO without figures has no events), for [`super::Freezer::decide`].
pub fn statuses(set: &SloSet, figures: &Figures, at_ms: i64) -> Vec<SloStatus> {
    let none = SloFigures::default();
    set.slos
        .iter()
        .map(|slo| {
            let f = figures.slos.get(&slo.name).unwrap_or(&none);
            let period = slo.window.nominal();
            let budget =
                f.error_budget.filter(|b| b.is_finite() && *b > 0.0).unwrap_or_else(|| slo.error_budget_ratio());
            let total = if f.events.is_finite() && f.events > 0.0 { f.events.round() as u64 } else { 0 };
            let ratio = |w: Minutes| f.error_ratios.get(&w.to_string()).copied().filter(|r| r.is_finite());
            let sli = ratio(period).filter(|_| total > 0).map(|r| 1.0 - r);
            let remaining = f.budget_remaining.filter(|r| r.is_finite()).filter(|_| total > 0);
            let budget_consumed = match (remaining, sli) {
                (Some(r), _) => clean(1.0 - r),
                (None, Some(s)) => clean((1.0 - s) / budget),
                (None, None) => 0.0,
            };
            let good = sli.map_or(total, |s| (total as f64 * s).round().clamp(0.0, total as f64) as u64);
            SloStatus {
                slo: slo.clone(),
                at_ms,
                window_start_ms: at_ms - i64::from(period.0) * 60_000,
                window: WindowStats {
                    events: Counts { good, total },
                    units_good: good as f64,
                    units_total: total as f64,
                },
                sli,
                budget_consumed,
                burn_rates: ALERT_WINDOWS.iter().map(|&w| (w, ratio(w).map(|r| clean(r / budget)))).collect(),
                latency: None,
                conditions: Vec::new(),
                top_failures: Arc::default(),
            }
        })
        .collect()
}

/// The page and ticket alerts Prometheus has firing or pending, as the
/// records [`super::Freezer::decide`] reads.
pub fn alerts(set: &SloSet, figures: &Figures, at_ms: i64) -> Vec<AlertRecord> {
    let mut out = Vec::new();
    for slo in &set.slos {
        let Some(f) = figures.slos.get(&slo.name) else { continue };
        for (kind, phase) in [(AlertKind::Page, f.page), (AlertKind::Ticket, f.ticket)] {
            let Some(phase) = phase else { continue };
            out.push(AlertRecord {
                slo: slo.name.clone(),
                service: slo.service.clone(),
                kind,
                phase,
                episode: 0,
                since_ms: at_ms,
                // Prometheus's `activeAt` is not in the ALERTS series: the
                // reason's `since` is when this agent first saw it.
                firing_since_ms: None,
                resolved_at_ms: None,
                clear_since_ms: None,
                trigger: None,
                budget_remaining: f.budget_remaining.unwrap_or(1.0),
                certificate: None,
                signal: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freeze::{Freezer, Source, Status};
    use crate::spec::load_str;

    const T0: i64 = 1_795_132_800_000;

    fn set() -> SloSet {
        let slo = |name: &str, service: &str| {
            format!(
                "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: {name}}}\nspec:\n  service: {service}\n  objective: 99\n  window: 28d\n  indicator:\n    source: ndjson\n    filter: {{service: {service}}}\n    good: {{status: \"< 500\"}}\n---\n"
            )
        };
        load_str(
            "specs.yaml",
            &format!("{}{}", slo("checkout-availability", "checkout"), slo("search-availability", "search")),
        )
        .unwrap_or_else(|d| panic!("{d:?}"))
    }

    /// A `/api/v1/query` answer with these series (labels, value).
    fn answer(series: &[(&[(&str, &str)], &str)]) -> Vec<u8> {
        let result: Vec<serde_json::Value> = series
            .iter()
            .map(|(labels, v)| {
                let metric: serde_json::Map<String, serde_json::Value> =
                    labels.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect();
                serde_json::json!({"metric": metric, "value": [1795132800.123, v]})
            })
            .collect();
        serde_json::to_vec(
            &serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}}),
        )
        .unwrap()
    }

    fn read(targets: &[Target], answers: Vec<(Read, Vec<u8>)>) -> Figures {
        let parsed: Vec<(Read, Vec<Sample>)> =
            answers.into_iter().map(|(r, body)| (r, parse_vector(&body).unwrap())).collect();
        assemble(targets, &parsed, T0)
    }

    #[test]
    fn targets_use_the_rules_ids_and_periods() {
        let t = targets(&set());
        assert_eq!(
            t,
            [
                Target {
                    slo: "checkout-availability".into(),
                    service: "checkout".into(),
                    id: "checkout-checkout-availability".into(),
                    period: Minutes(28 * 1440)
                },
                Target {
                    slo: "search-availability".into(),
                    service: "search".into(),
                    id: "search-search-availability".into(),
                    period: Minutes(28 * 1440)
                },
            ]
        );
    }

    #[test]
    fn one_query_per_figure_for_every_slo() {
        let q = queries(&targets(&set()));
        let text: Vec<&str> = q.iter().map(|q| q.promql.as_str()).collect();
        let ids = r#"sloth_id=~"checkout-checkout-availability|search-search-availability""#;
        assert_eq!(
            text,
            [
                format!("slo:period_error_budget_remaining:ratio{{{ids}}}"),
                format!("{{__name__=~\"slo:sli_error:ratio_rate.+\",{ids}}}"),
                format!("slo:error_budget:ratio{{{ids}}}"),
                r#"sum by (slo) (increase(slo_agent_slo_events_total{slo=~"checkout-availability|search-availability"}[28d]))"#.into(),
                format!("ALERTS{{{ids},sloth_severity=~\"page|ticket\",alertstate=~\"firing|pending\"}}"),
            ]
        );
        assert!(queries(&[]).is_empty());
        // Names are matched literally, in a valid PromQL string.
        assert_eq!(alternatives(["a.b", "c|d", r"e\f"].into_iter()), r"a\.b|c\|d|e\\f");
        assert_eq!(crate::rules::prom_str(r"a\.b"), r#""a\\.b""#);
    }

    #[test]
    fn answers_are_read_strictly() {
        assert!(parse_vector(&answer(&[(&[("a", "b")], "NaN")])).unwrap()[0].value.is_nan());
        assert_eq!(parse_vector(&answer(&[(&[], "+Inf")])).unwrap()[0].value, f64::INFINITY);
        assert_eq!(parse_vector(&answer(&[])).unwrap(), []);
        let err = |body: &str| parse_vector(body.as_bytes()).unwrap_err();
        assert_eq!(
            err(r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#),
            "the query failed (bad_data): parse error at char 3"
        );
        assert!(err("<html>502 Bad Gateway</html>").starts_with("not a Prometheus query answer"));
        assert_eq!(
            err(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#),
            "expected an instant vector, got a matrix"
        );
        assert_eq!(
            err(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#),
            "`x` is not a sample value"
        );
    }

    /// The fleet's numbers for checkout: 2,400 events at 10 % errors
    /// against a 1 % budget (spent nine times over), a page firing; search
    /// clean. Series of another team's SLO are ignored.
    fn fleet_answers() -> Vec<(Read, Vec<u8>)> {
        let ck = "checkout-checkout-availability";
        let se = "search-search-availability";
        vec![
            (
                Read::Remaining,
                answer(&[
                    (&[("sloth_id", ck), ("sloth_window", "28d")], "-9"),
                    (&[("sloth_id", se), ("sloth_window", "28d")], "1"),
                    (&[("sloth_id", "other-team-slo")], "-100"),
                ]),
            ),
            (
                Read::ErrorRatios,
                answer(&[
                    (&[("sloth_id", ck), ("sloth_window", "5m")], "0.1"),
                    (&[("sloth_id", ck), ("sloth_window", "1h")], "0.1"),
                    (&[("sloth_id", ck), ("sloth_window", "3d")], "NaN"),
                    (&[("sloth_id", ck), ("sloth_window", "28d")], "0.1"),
                    (&[("sloth_id", se), ("sloth_window", "5m")], "0"),
                    (&[("sloth_id", se), ("sloth_window", "28d")], "0"),
                ]),
            ),
            (Read::ErrorBudget, answer(&[(&[("sloth_id", ck)], "0.01"), (&[("sloth_id", se)], "0.01")])),
            (
                Read::Events(Minutes(28 * 1440)),
                answer(&[(&[("slo", "checkout-availability")], "2400.4"), (&[("slo", "search-availability")], "5000")]),
            ),
            (
                Read::Alerts,
                answer(&[
                    (&[("sloth_id", ck), ("sloth_severity", "page"), ("alertstate", "firing")], "1"),
                    (&[("sloth_id", ck), ("sloth_severity", "ticket"), ("alertstate", "pending")], "1"),
                ]),
            ),
        ]
    }

    #[test]
    fn answers_become_figures_then_statuses_and_alerts() {
        let set = set();
        let f = read(&targets(&set), fleet_answers());
        assert_eq!(f.slos.len(), 2, "another team's SLO is not read");
        let ck = &f.slos["checkout-availability"];
        assert_eq!((ck.budget_remaining, ck.error_budget, ck.events), (Some(-9.0), Some(0.01), 2400.4));
        assert_eq!((ck.page, ck.ticket), (Some(Phase::Firing), Some(Phase::Pending)));

        let st = statuses(&set, &f, T0);
        let c = &st[0];
        assert_eq!(c.slo.name, "checkout-availability");
        assert_eq!((c.window.events.total, c.window.events.good), (2400, 2160));
        assert!((c.budget_remaining() + 9.0).abs() < 1e-9);
        assert!((c.sli.unwrap() - 0.9).abs() < 1e-9);
        assert_eq!(c.window_start_ms, T0 - 28 * 86_400_000);
        let burn: BTreeMap<String, Option<f64>> =
            c.burn_rates.iter().map(|(w, b)| (w.to_string(), b.map(|b| (b * 1e6).round() / 1e6))).collect();
        assert_eq!(burn["5m"], Some(10.0));
        assert_eq!(burn["1h"], Some(10.0));
        assert_eq!(burn["3d"], None, "NaN: no events in the window");
        assert_eq!(burn["6h"], None, "no series");
        let s = &st[1];
        assert_eq!((s.window.events.total, s.budget_remaining(), s.sli), (5000, 1.0, Some(1.0)));

        let a = alerts(&set, &f, T0);
        let got: Vec<(&str, AlertKind, Phase)> = a.iter().map(|a| (a.slo.as_str(), a.kind, a.phase)).collect();
        assert_eq!(
            got,
            [
                ("checkout-availability", AlertKind::Page, Phase::Firing),
                ("checkout-availability", AlertKind::Ticket, Phase::Pending)
            ]
        );
    }

    /// The same policy code decides: checkout FROZEN on its budget and the
    /// page, search OK, every answer saying where its figures came from.
    #[test]
    fn the_fleet_figures_freeze_through_the_same_policy() {
        let set = set();
        let f = read(&targets(&set), fleet_answers());
        let mut freezer = Freezer::for_source(Source::Prometheus);
        let board = freezer.decide(&set, &statuses(&set, &f, T0), &alerts(&set, &f, T0), &[], 100, T0);
        assert_eq!(board.source, Source::Prometheus);
        let ck = board.get("checkout").unwrap();
        assert_eq!((ck.status, ck.frozen, ck.source), (Status::Frozen, true, Source::Prometheus));
        let kinds: Vec<(&str, Option<&str>)> = ck.reasons.iter().map(|r| (r.kind, r.slo.as_deref())).collect();
        assert_eq!(kinds, [("budget", Some("checkout-availability")), ("alert", Some("checkout-availability"))]);
        assert_eq!(ck.reasons[0].message, "checkout-availability: error budget spent (-900.0 % remaining of 28d)");
        assert_eq!(ck.slos[0].events, 2400);
        assert!(ck.slos[0].judged);
        let se = board.get("search").unwrap();
        assert_eq!((se.status, se.frozen), (Status::Ok, false));
    }

    /// Each agent alone saw too few events: the fleet's sum decides. With
    /// fewer than `min_events` fleet-wide, the budget does not count (the
    /// page still would), and an SLO with no series at all has no events.
    #[test]
    fn the_min_events_guard_counts_the_fleets_events() {
        let set = set();
        let t = targets(&set);
        let mut answers = fleet_answers();
        answers.retain(|(r, _)| !matches!(r, Read::Alerts));
        answers[3].1 = answer(&[(&[("slo", "checkout-availability")], "60")]);
        let f = read(&t, answers);
        let board = Freezer::for_source(Source::Prometheus).decide(&set, &statuses(&set, &f, T0), &[], &[], 100, T0);
        let ck = board.get("checkout").unwrap();
        assert_eq!((ck.status, ck.frozen), (Status::InsufficientData, false));
        assert_eq!(board.get("search").unwrap().status, Status::InsufficientData, "no events series");

        let empty = read(&t, Vec::new());
        let board =
            Freezer::for_source(Source::Prometheus).decide(&set, &statuses(&set, &empty, T0), &[], &[], 100, T0);
        for sv in &board.services {
            assert_eq!((sv.status, sv.frozen), (Status::InsufficientData, false), "{}", sv.service);
            assert_eq!(sv.slos[0].events, 0);
        }
    }

    /// Hysteresis works on the fleet's figures as on local ones: frozen at
    /// -9, still frozen just above the threshold, thawed past the margin.
    #[test]
    fn hysteresis_holds_on_fleet_figures() {
        let set = set();
        let t = targets(&set);
        let mut freezer = Freezer::for_source(Source::Prometheus);
        let mut at = T0;
        let mut status_with = |remaining: &str| {
            let mut answers = fleet_answers();
            answers.retain(|(r, _)| !matches!(r, Read::Alerts));
            answers[0].1 = answer(&[(&[("sloth_id", "checkout-checkout-availability")], remaining)]);
            let f = read(&t, answers);
            at += 60_000;
            freezer.decide(&set, &statuses(&set, &f, at), &[], &[], 100, at).get("checkout").unwrap().status
        };
        assert_eq!(status_with("-9"), Status::Frozen);
        assert_eq!(status_with("0.01"), Status::Frozen, "not past the thaw margin (0.05) yet");
        assert_eq!(status_with("0.2"), Status::Ok);
    }
}
