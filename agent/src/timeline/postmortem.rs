//! A postmortem draft in Markdown, in the sections SRE teams use (what
//! happened, its impact, causes, detection, response, lessons, actions):
//! the agent fills in the times and figures it knows from a [`Timeline`]
//! and leaves judgement — causes, lessons, actions — to people, with the
//! evidence it has listed beside each blank.
//!
//! Pure: the caller passes the timeline and the date it calls today.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Entry, Kind, Timeline};
use crate::timefmt::rfc3339;

/// What the draft is about, beyond the timeline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Draft {
    /// The incident's id, when there is one.
    pub incident: Option<String>,
    /// The incident's title; else one is made from the services.
    pub title: Option<String>,
    /// The incident's status (`resolved`, …); `draft` when none.
    pub status: Option<String>,
    /// Who opened the incident; the draft's authors start with them.
    pub authors: Vec<String>,
    /// The impact the incident declares (`impact`), when it does.
    pub impact: Option<String>,
    /// When the draft was made (ms since the epoch).
    pub written_ms: i64,
}

/// What the agent measured, from the timeline alone.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    /// The first sign of trouble: the first alert going pending or firing,
    /// the first failed synthetic run, or the end of a flagged deploy,
    /// whichever came first.
    pub first_sign: Option<i64>,
    /// The first page-severity alert that fired.
    pub first_page: Option<(i64, String)>,
    /// The last alert that resolved after the first page.
    pub recovered: Option<i64>,
    /// Per SLO: the budget left at its first and its last alert entry.
    pub budget: BTreeMap<String, (f64, f64)>,
    /// Bad events counted after each flagged deploy: (deploy, SLO, bad, events, minutes).
    pub failed_after_deploys: Vec<(String, String, u64, u64, u64)>,
    /// Regions where synthetic runs failed.
    pub regions: Vec<String>,
    /// The worst outage verdict recorded (`partial`, `total`) and the
    /// largest share of the traffic failing.
    pub outage: Option<(String, f64)>,
    /// The slices the outage verdicts named, per kind (`regions`,
    /// `edge_locations`, `client_classes`, `routes`, `journey_steps`).
    pub outage_scope: BTreeMap<String, Vec<String>>,
    /// Per status page component that was not operational: its worst state
    /// (`partial_outage`, …), when it first left operational and when it
    /// was operational again (`None`: not in this timeline).
    pub status_page: BTreeMap<String, (String, i64, Option<i64>)>,
}

/// Status page states, best first.
const STATES: [&str; 5] =
    ["operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"];

fn str_of<'a>(e: &'a Entry, key: &str) -> Option<&'a str> {
    e.details.get(key).and_then(|v| v.as_str())
}

fn f64_of(e: &Entry, key: &str) -> Option<f64> {
    e.details.get(key).and_then(|v| v.as_f64())
}

fn u64_of(e: &Entry, key: &str) -> Option<u64> {
    e.details.get(key).and_then(|v| v.as_u64())
}

fn is_failure(e: &Entry) -> bool {
    matches!(e.kind, Kind::ProbeFailure | Kind::JourneyFailure)
}

fn flagged_deploy(e: &Entry) -> bool {
    e.kind == Kind::Deploy && e.details.get("flagged").and_then(|v| v.as_bool()) == Some(true)
}

/// The figures of a timeline.
pub fn figures(t: &Timeline) -> Figures {
    let mut f = Figures::default();
    let mut sign = |at: i64| f.first_sign = Some(f.first_sign.map_or(at, |s: i64| s.min(at)));
    for e in &t.entries {
        let to = str_of(e, "to");
        let outage = e.kind == Kind::Outage && matches!(str_of(e, "verdict"), Some("partial" | "total"));
        if e.kind == Kind::Alert && matches!(to, Some("pending" | "firing")) || is_failure(e) || outage {
            sign(e.at_ms);
        }
        if flagged_deploy(e) {
            let end = str_of(e, "finished_at").and_then(|s| crate::timefmt::parse_rfc3339(s).ok());
            sign(end.unwrap_or(e.at_ms));
        }
    }
    for e in &t.entries {
        match e.kind {
            Kind::Alert => {
                let to = str_of(e, "to");
                if f.first_page.is_none() && to == Some("firing") && str_of(e, "severity") == Some("page") {
                    let name = format!("{} {}", str_of(e, "slo").unwrap_or("?"), str_of(e, "alert").unwrap_or("?"));
                    f.first_page = Some((e.at_ms, name));
                }
                if to == Some("resolved") && f.first_page.is_some() {
                    f.recovered = Some(e.at_ms);
                }
                if let (Some(slo), Some(left)) = (str_of(e, "slo"), f64_of(e, "budget_remaining")) {
                    f.budget.entry(slo.to_string()).and_modify(|(_, last)| *last = left).or_insert((left, left));
                }
            }
            Kind::Deploy if flagged_deploy(e) => {
                if let (Some(bad), Some(events)) = (u64_of(e, "bad_after"), u64_of(e, "events_after")) {
                    f.failed_after_deploys.push((
                        format!("{} {}", e.service, str_of(e, "version").unwrap_or("?")),
                        str_of(e, "slo").unwrap_or("?").to_string(),
                        bad,
                        events,
                        u64_of(e, "window_minutes").unwrap_or(0),
                    ));
                }
            }
            Kind::Outage => {
                let (Some(verdict), Some(share)) = (str_of(e, "verdict"), f64_of(e, "failing_share")) else {
                    continue;
                };
                if verdict == "none" {
                    continue;
                }
                let worse = match &f.outage {
                    None => true,
                    Some((v, s)) => (verdict == "total" && v != "total") || (verdict == v && share > *s),
                };
                if worse {
                    f.outage = Some((verdict.to_string(), share));
                } else if let Some((_, s)) = &mut f.outage {
                    *s = s.max(share);
                }
                let scope = e.details.get("scope").and_then(|v| v.as_object());
                for (kind, items) in scope.into_iter().flatten() {
                    let named = f.outage_scope.entry(kind.clone()).or_default();
                    for name in items.as_array().into_iter().flatten().filter_map(|i| i.get("name")?.as_str()) {
                        if !named.iter().any(|n| n == name) && named.len() < 20 {
                            named.push(name.to_string());
                        }
                    }
                }
                f.outage_scope.retain(|_, v| !v.is_empty());
            }
            Kind::StatusPage => {
                let (Some(c), Some(state)) = (str_of(e, "component"), str_of(e, "status")) else { continue };
                let rank = |s: &str| STATES.iter().position(|x| *x == s).unwrap_or(0);
                match f.status_page.get_mut(c) {
                    None if state != "operational" => {
                        f.status_page.insert(c.to_string(), (state.to_string(), e.at_ms, None));
                    }
                    None => {}
                    Some((worst, _, back)) => {
                        if state == "operational" {
                            *back = Some(e.at_ms);
                        } else {
                            *back = None;
                            if rank(state) > rank(worst) {
                                *worst = state.to_string();
                            }
                        }
                    }
                }
            }
            Kind::ProbeFailure | Kind::JourneyFailure => {
                if let Some(r) = str_of(e, "region")
                    && !f.regions.iter().any(|x| x == r)
                {
                    f.regions.push(r.to_string());
                }
            }
            _ => {}
        }
    }
    f
}

/// "1 h 05 min", "12 min", "40 s".
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m) = (s / 3600, (s % 3600) / 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, m) => format!("{m} min"),
        (h, m) => format!("{h} h {m:02} min"),
    }
}

/// Markdown text of a table cell: no line breaks, no column separators.
fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('|', "\\|")
}

const FILL: &str = "_(to be written)_";

/// The Markdown draft.
pub fn render(d: &Draft, t: &Timeline) -> String {
    let f = figures(t);
    let services = t.services.join(", ");
    let title = d.title.clone().unwrap_or_else(|| format!("Degradation of {services}"));
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Postmortem: {}\n", cell(&title));
    let date = rfc3339(d.written_ms);
    let _ = writeln!(w, "| | |\n|---|---|");
    if let Some(id) = &d.incident {
        let _ = writeln!(w, "| Incident | {} |", cell(id));
    }
    let _ = writeln!(w, "| Date | {} |", date.get(..10).unwrap_or(&date));
    let authors = if d.authors.is_empty() { FILL.to_string() } else { cell(&d.authors.join(", ")) };
    let _ = writeln!(w, "| Authors | {authors} |");
    let _ = writeln!(w, "| Status | {} |", cell(d.status.as_deref().unwrap_or("draft")));
    let _ = writeln!(w, "| Services | {} |", cell(&services));
    let _ = writeln!(w, "| Covers | {} to {} |\n", t.from, t.to);
    let _ = writeln!(
        w,
        "A draft by slo-agent: the times and figures are the agent's; every {FILL} is for people to write.\n"
    );

    let _ = writeln!(w, "## Summary\n\n{FILL}\n");

    let _ = writeln!(w, "## Impact\n");
    if let Some(i) = &d.impact {
        let _ = writeln!(w, "- Impact declared on the incident: {}", cell(i.trim()));
    }
    match (f.first_sign, f.recovered) {
        (Some(s), Some(r)) => {
            let _ =
                writeln!(w, "- Duration: {} (first sign {} to recovery {})", duration(r - s), rfc3339(s), rfc3339(r));
        }
        (Some(s), None) => {
            let _ = writeln!(w, "- Duration: from {} on; no recovery in this timeline", rfc3339(s));
        }
        _ => {
            let _ = writeln!(w, "- Duration: no sign of trouble in this timeline");
        }
    }
    if f.failed_after_deploys.is_empty() {
        let _ = writeln!(w, "- Requests failed: not measured by the agent; {FILL}");
    }
    for (deploy, slo, bad, events, minutes) in &f.failed_after_deploys {
        let _ = writeln!(
            w,
            "- Requests failed: {bad} of {events} counted by {slo} in the {minutes} min after deploy {}",
            cell(deploy)
        );
    }
    for (slo, (first, last)) in &f.budget {
        let _ = writeln!(
            w,
            "- Budget: {slo} had {:.1} % of its error budget left at its first alert and {:.1} % at its last ({:.1} points spent)",
            first * 100.0,
            last * 100.0,
            (first - last) * 100.0
        );
    }
    for e in t.entries.iter().filter(|e| flagged_deploy(e)) {
        if let Some(c) = f64_of(e, "budget_consumed") {
            let _ = writeln!(
                w,
                "- Deploy {} {} consumed {:.1} % of the error budget of {}",
                e.service,
                str_of(e, "version").unwrap_or("?"),
                c * 100.0,
                str_of(e, "slo").unwrap_or("?")
            );
        }
    }
    if let Some((verdict, share)) = &f.outage {
        let scope: Vec<String> =
            f.outage_scope.iter().map(|(k, v)| format!("{} {}", k.replace('_', " "), v.join(", "))).collect();
        let scope = if scope.is_empty() { String::new() } else { format!("; failing: {}", scope.join("; ")) };
        let _ = writeln!(
            w,
            "- Outage: {verdict} at worst, up to {:.1} % of the traffic failing{}",
            share * 100.0,
            cell(&scope)
        );
    }
    for (component, (worst, from, back)) in &f.status_page {
        let until = match back {
            Some(b) => format!("to {} ({})", rfc3339(*b), duration(b - from)),
            None => "on, not operational again in this timeline".to_string(),
        };
        let _ = writeln!(
            w,
            "- Status page: {} showed {} at worst, from {} {until}",
            cell(component),
            worst.replace('_', " "),
            rfc3339(*from)
        );
    }
    if f.regions.is_empty() {
        let _ = writeln!(w, "- Users and regions affected: {FILL}\n");
    } else {
        let _ =
            writeln!(w, "- Regions where synthetic checks failed: {}; users affected: {FILL}\n", f.regions.join(", "));
    }

    let _ = writeln!(w, "## Root causes\n\n{FILL}\n");
    let _ = writeln!(w, "## Trigger\n\n{FILL}\n\nEvidence the agent has:\n");
    let mut evidence = 0;
    let before: Vec<&Entry> =
        t.entries.iter().filter(|e| e.kind == Kind::Deploy && f.first_sign.is_none_or(|s| e.at_ms <= s)).collect();
    if let Some(last) = before.last() {
        let _ = writeln!(w, "- The last deploy before the first sign: {} — {}", last.at, cell(&last.summary));
        evidence += 1;
    }
    for e in t.entries.iter().filter(|e| flagged_deploy(e) && !before.last().is_some_and(|l| l == e)) {
        let _ = writeln!(w, "- A flagged deploy: {} — {}", e.at, cell(&e.summary));
        evidence += 1;
    }
    let mut failing: Vec<String> = Vec::new();
    for e in t.entries.iter().filter(|e| is_failure(e)) {
        let what = format!("{} at {}", str_of(e, "name").unwrap_or("?"), str_of(e, "part").unwrap_or("?"));
        if !failing.contains(&what) {
            let part = if e.kind == Kind::JourneyFailure { "journey step" } else { "probe hop" };
            let _ = writeln!(w, "- A failing {part}: {} — {}", e.at, cell(&e.summary));
            failing.push(what);
            evidence += 1;
        }
    }
    if let Some(first) = t.entries.iter().find(|e| e.kind == Kind::Alert && str_of(e, "to") == Some("firing")) {
        let _ = writeln!(w, "- The first alert that fired: {} — {}", first.at, cell(&first.summary));
        evidence += 1;
    }
    if evidence == 0 {
        let _ = writeln!(w, "- none in this timeline");
    }

    let _ = writeln!(w, "\n## Detection\n");
    match (f.first_sign, &f.first_page) {
        (Some(s), Some((p, name))) => {
            let _ = writeln!(
                w,
                "- Time to detect: {} (first sign {} to the first page {})\n- Paged by: {}",
                duration(p - s),
                rfc3339(s),
                rfc3339(*p),
                cell(name)
            );
        }
        (_, None) => {
            let _ = writeln!(w, "- No page-severity alert fired in this timeline.");
        }
        (None, Some((p, name))) => {
            let _ = writeln!(w, "- First page: {} ({})", rfc3339(*p), cell(name));
        }
    }
    if let (Some((p, _)), Some(r)) = (&f.first_page, f.recovered) {
        let _ = writeln!(w, "- Time to recover after the page: {}", duration(r - p));
    }

    let _ = writeln!(w, "\n## Response and recovery\n");
    let _ = writeln!(w, "| Time (UTC) | Kind | Service | What happened |\n|---|---|---|---|");
    for e in &t.entries {
        let _ = writeln!(w, "| {} | {} | {} | {} |", e.at, e.kind.as_str(), cell(&e.service), cell(&e.summary));
    }
    if t.truncated {
        let _ = writeln!(
            w,
            "\nThe timeline was cut at {} entries; ask for a shorter range to see the rest.",
            t.entries.len()
        );
    }

    let _ = writeln!(w, "\n## Lessons learned\n");
    let _ = writeln!(w, "### What went well\n\n{FILL}\n");
    let _ = writeln!(w, "### What went wrong\n\n{FILL}\n");
    let _ = writeln!(w, "### Where we got lucky\n\n{FILL}\n");

    let _ = writeln!(w, "## Action items\n");
    let _ = writeln!(w, "| Action | Type (prevent, mitigate, detect) | Owner | Issue |\n|---|---|---|---|");
    for _ in 0..3 {
        let _ = writeln!(w, "| | | | |");
    }

    let _ = writeln!(w, "\n## Supporting information\n");
    let mut sources: Vec<&str> = t.entries.iter().map(|e| e.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let _ = writeln!(
        w,
        "- Timeline of {services} from {} to {}: {} entries from {}.",
        t.from,
        t.to,
        t.entries.len(),
        if sources.is_empty() { "nothing".to_string() } else { sources.join(", ") }
    );
    let _ = writeln!(
        w,
        "- Figures computed by slo-agent at {}; dashboards, logs and traces: {FILL}",
        rfc3339(d.written_ms)
    );
    out
}
