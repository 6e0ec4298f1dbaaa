//! Prometheus recording and alerting rules for SLOs, for users who evaluate
//! SLOs globally in Prometheus (or Amazon Managed Prometheus, Mimir, Thanos)
//! over the counters every agent exports.
//!
//! The rules use Sloth's names and labels (`slo:sli_error:ratio_rate5m`,
//! `slo:period_error_budget_remaining:ratio`, `sloth_id`, …) so Sloth's
//! Grafana dashboards work on them unchanged. Unlike Sloth, the ratio over
//! the SLO period is computed from counter increases over the whole period,
//! never by averaging short-window ratios: an hour with ten requests must not
//! weigh as much as an hour with a million.
//!
//! Only occurrences budgeting maps onto counters; timeslice SLOs are skipped
//! (see [`Skipped`]).
//!
//! **Architecture invariant:** generation is pure and deterministic: the same
//! SLOs give byte-identical rule files (the CLI writes them, `alerts/` is
//! checked against them in CI).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::spec::model::{ALERT_WINDOWS, Budgeting, BurnRateRule, Minutes, Severity, Slo, SloSet, SloWindow};

pub mod sloth;

#[cfg(test)]
mod tests;

/// The alert names, per severity; `sloth_slo` tells the SLOs apart. Two
/// names rather than one so a route, a silence or a `promtool` test can pick
/// pages without matching labels.
pub fn alert_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Page => "SloErrorBudgetBurnPage",
        Severity::Ticket => "SloErrorBudgetBurnTicket",
    }
}

/// Labels the generator sets itself; spec labels of these names are not copied.
const RESERVED_LABELS: [&str; 4] = ["severity", "alertname", "slo", "service"];

/// Where an SLO's error ratio over a window comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorRatio {
    /// The agent's `slo_agent_slo_events_total` / `slo_agent_slo_good_events_total`.
    AgentCounters,
    /// Two PromQL queries with `{{.window}}` where the range goes (Sloth `sli.events`).
    Events { error_query: String, total_query: String },
    /// One PromQL query giving the error ratio (Sloth `sli.raw.error_ratio_query`).
    Raw { error_ratio_query: String },
}

/// One SLO as the rules need it, whatever spec it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSlo {
    pub service: String,
    pub name: String,
    /// In (0, 1).
    pub objective: f64,
    /// The SLO period the budget is about.
    pub period: Minutes,
    pub error_ratio: ErrorRatio,
    /// The burn-rate conditions, thresholds already scaled to the period.
    pub rules: Vec<BurnRateRule>,
    pub page: AlertExtras,
    pub ticket: AlertExtras,
    /// Copied onto the alerts and the info series.
    pub labels: BTreeMap<String, String>,
    pub description: Option<String>,
    /// The file the SLO was read from, for the output file layout and messages.
    pub file: String,
}

impl RuleSlo {
    /// Sloth's SLO id: `<service>-<slo>`.
    pub fn id(&self) -> String {
        format!("{}-{}", self.service, self.name)
    }

    fn error_budget(&self) -> f64 {
        crate::spec::native::to_ratio(1.0 - self.objective)
    }
}

/// What a spec adds to the alerts of one severity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertExtras {
    /// Replaces [`alert_name`] (Sloth's `alerting.name`).
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Added after the generated `summary` and `description`, which they may replace.
    pub annotations: BTreeMap<String, String>,
}

/// An SLO left out of the rules, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub slo: String,
    pub file: String,
    pub reason: String,
}

/// A note about an SLO whose rules differ from what the agent evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub slo: String,
    pub message: String,
}

/// The rule files to write, keyed by file name, in name order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generated {
    pub files: BTreeMap<String, String>,
    /// Per file, the SLOs in it.
    pub slos_per_file: BTreeMap<String, Vec<String>>,
    pub skipped: Vec<Skipped>,
    pub notes: Vec<Note>,
}

/// The SLOs of a spec set that rules can express, and the ones they cannot.
pub fn from_slo_set(set: &SloSet) -> (Vec<RuleSlo>, Vec<Skipped>, Vec<Note>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut notes = Vec::new();
    for slo in &set.slos {
        match from_slo(slo) {
            Ok((r, note)) => {
                if let Some(message) = note {
                    notes.push(Note { slo: slo.name.clone(), message });
                }
                out.push(r);
            }
            Err(reason) => skipped.push(Skipped { slo: slo.name.clone(), file: slo.origin.file.clone(), reason }),
        }
    }
    (out, skipped, notes)
}

fn from_slo(slo: &Slo) -> Result<(RuleSlo, Option<String>), String> {
    if let Budgeting::Timeslices { .. } | Budgeting::RatioTimeslices { .. } = slo.budgeting {
        // The agent exports events, not slices: a slice's verdict needs the
        // slice's own good/total, which counters scraped at arbitrary times
        // do not give exactly. Rules that approximate it would page on
        // different minutes than the agent does.
        return Err("timeslice budgeting: the exported counters count events, not slices; \
                    use the agent's own alerts (slo_agent_slo_alert_condition) for this SLO"
            .into());
    }
    let note = match &slo.window {
        SloWindow::Rolling(_) => None,
        SloWindow::Calendar { .. } => Some(format!(
            "calendar window `{}`: Prometheus rules use a rolling {} period instead",
            slo.window,
            slo.window.nominal()
        )),
    };
    let extras = |t: &Option<crate::spec::model::AlertTarget>| AlertExtras {
        annotations: t
            .as_ref()
            .and_then(|t| t.runbook.clone())
            .map(|r| BTreeMap::from([("runbook_url".to_string(), r)]))
            .unwrap_or_default(),
        ..AlertExtras::default()
    };
    Ok((
        RuleSlo {
            service: slo.service.clone(),
            name: slo.name.clone(),
            objective: slo.objective,
            period: slo.window.nominal(),
            error_ratio: ErrorRatio::AgentCounters,
            rules: slo.alerting.rules.clone(),
            page: extras(&slo.alerting.page),
            ticket: extras(&slo.alerting.ticket),
            labels: slo.labels.clone(),
            description: slo.description.clone(),
            file: slo.origin.file.clone(),
        },
        note,
    ))
}

/// Rule files for SLOs: one file per service, `<service>.rules.yaml`, one
/// rule group per SLO (so recordings, metadata and alerts of an SLO are
/// evaluated in order, at the same instant).
pub fn generate(slos: &[RuleSlo]) -> BTreeMap<String, String> {
    let mut by_service: BTreeMap<&str, Vec<&RuleSlo>> = BTreeMap::new();
    for s in slos {
        by_service.entry(&s.service).or_default().push(s);
    }
    by_service
        .into_iter()
        .map(|(service, mut slos)| {
            slos.sort_by(|a, b| a.name.cmp(&b.name));
            let mut text = String::new();
            text.push_str("# Generated by `slo-agent rules`. Do not edit: change the SLO specs and regenerate.\n");
            text.push_str("groups:\n");
            for s in slos {
                group(&mut text, s);
            }
            (format!("{service}.rules.yaml"), text)
        })
        .collect()
}

/// Generation for a loaded spec set: files, and what was left out.
pub fn generate_for_set(set: &SloSet) -> Generated {
    let (slos, skipped, notes) = from_slo_set(set);
    generate_with(slos, skipped, notes)
}

/// Generation for SLOs from any reader, with what the readers left out.
pub fn generate_with(slos: Vec<RuleSlo>, skipped: Vec<Skipped>, notes: Vec<Note>) -> Generated {
    let mut slos_per_file: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &slos {
        slos_per_file.entry(format!("{}.rules.yaml", s.service)).or_default().push(s.name.clone());
    }
    for v in slos_per_file.values_mut() {
        v.sort();
    }
    Generated { files: generate(&slos), slos_per_file, skipped, notes }
}

/// SLOs that share a Sloth id (`<service>-<slo>`), which would mix their
/// series: `(id, first file, second file)`.
pub fn duplicate_ids(slos: &[RuleSlo]) -> Vec<(String, String, String)> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut dups = Vec::new();
    for s in slos {
        match seen.get(&s.id()) {
            Some(first) => dups.push((s.id(), first.to_string(), s.file.clone())),
            None => {
                seen.insert(s.id(), &s.file);
            }
        }
    }
    dups
}

/// Every window the SLO needs a ratio for: the alert windows the agent
/// reports, the windows of its own rules, and the period.
fn windows(s: &RuleSlo) -> Vec<Minutes> {
    let mut w: BTreeSet<Minutes> = ALERT_WINDOWS.iter().copied().collect();
    for r in &s.rules {
        w.insert(r.long_window);
        w.insert(r.short_window);
    }
    w.insert(s.period);
    w.into_iter().collect()
}

fn group(out: &mut String, s: &RuleSlo) {
    let id = s.id();
    let sel = format!("{{sloth_id={}}}", prom_str(&id));
    let ids = |out: &mut String, indent: &str| {
        let _ = writeln!(out, "{indent}sloth_id: {}", yaml_str(&id));
        let _ = writeln!(out, "{indent}sloth_service: {}", yaml_str(&s.service));
        let _ = writeln!(out, "{indent}sloth_slo: {}", yaml_str(&s.name));
    };
    let _ = writeln!(out, "  - name: {}", yaml_str(&format!("slo-agent-{id}")));
    out.push_str("    rules:\n");

    for w in windows(s) {
        let _ = writeln!(out, "      - record: slo:sli_error:ratio_rate{w}");
        block(out, "        expr", &error_ratio_expr(s, w));
        out.push_str("        labels:\n");
        ids(out, "          ");
        let _ = writeln!(out, "          sloth_window: {}", yaml_str(&w.to_string()));
    }

    let budget = num(s.error_budget());
    let meta: [(&str, String); 6] = [
        ("slo:objective:ratio", format!("vector({})", num(s.objective))),
        ("slo:error_budget:ratio", format!("vector({budget})")),
        ("slo:time_period:days", format!("vector({})", num(s.period.0 as f64 / 1440.0))),
        (
            "slo:current_burn_rate:ratio",
            format!("max without (sloth_window) (slo:sli_error:ratio_rate{}{sel}) / {budget}", Minutes(5)),
        ),
        (
            "slo:period_burn_rate:ratio",
            format!("max without (sloth_window) (slo:sli_error:ratio_rate{}{sel}) / {budget}", s.period),
        ),
        ("slo:period_error_budget_remaining:ratio", format!("1 - slo:period_burn_rate:ratio{sel}")),
    ];
    for (record, expr) in meta {
        let _ = writeln!(out, "      - record: {record}");
        let _ = writeln!(out, "        expr: {}", yaml_single(&expr));
        out.push_str("        labels:\n");
        ids(out, "          ");
    }
    out.push_str("      - record: sloth_slo_info\n");
    out.push_str("        expr: 'vector(1)'\n");
    out.push_str("        labels:\n");
    ids(out, "          ");
    out.push_str("          sloth_mode: \"cli-gen-prom\"\n");
    let _ = writeln!(out, "          sloth_objective: {}", yaml_str(&num(s.objective * 100.0)));
    for (k, v) in extra_labels(&s.labels) {
        let _ = writeln!(out, "          {k}: {}", yaml_str(v));
    }

    for severity in [Severity::Page, Severity::Ticket] {
        let rules: Vec<&BurnRateRule> = s.rules.iter().filter(|r| r.severity == severity).collect();
        if rules.is_empty() {
            continue;
        }
        alert(out, s, severity, &rules, &sel, &budget);
    }
}

fn alert(out: &mut String, s: &RuleSlo, severity: Severity, rules: &[&BurnRateRule], sel: &str, budget: &str) {
    let conditions: Vec<String> = rules
        .iter()
        .map(|r| {
            let over = |w: Minutes| {
                format!(
                    "max without (sloth_window) (slo:sli_error:ratio_rate{w}{sel} > ({} * {budget}))",
                    num(r.burn_rate_threshold)
                )
            };
            format!("(\n  {}\n  and\n  {}\n)", over(r.long_window), over(r.short_window))
        })
        .collect();
    let sev = severity.as_str();
    let extras = match severity {
        Severity::Page => &s.page,
        Severity::Ticket => &s.ticket,
    };
    let name = extras.name.as_deref().unwrap_or(alert_name(severity));
    let _ = writeln!(out, "      - alert: {}", yaml_str(name));
    block(out, "        expr", &conditions.join("\nor\n"));
    // Generated labels first; a spec's own labels never replace them.
    let mut labels: Vec<(String, String)> = vec![
        ("severity".into(), sev.into()),
        ("sloth_severity".into(), sev.into()),
        // Also in the expression's result; static here so each alert rule is
        // unique by name and labels (`promtool check rules` lints duplicates).
        ("sloth_id".into(), s.id()),
        ("sloth_service".into(), s.service.clone()),
        ("sloth_slo".into(), s.name.clone()),
    ];
    for (k, v) in extra_labels(&s.labels).chain(extra_labels(&extras.labels)) {
        if !labels.iter().any(|(l, _)| l == k) {
            labels.push((k.clone(), v.clone()));
        }
    }
    out.push_str("        labels:\n");
    for (k, v) in &labels {
        let _ = writeln!(out, "          {k}: {}", yaml_str(v));
    }
    let why: Vec<String> = rules
        .iter()
        .map(|r| format!("{}× over {} and {}", num(r.burn_rate_threshold), r.long_window, r.short_window))
        .collect();
    let mut description =
        format!("Burn rate above {} (objective {}% over {}).", why.join(", or "), num(s.objective * 100.0), s.period);
    if let Some(d) = &s.description {
        description = format!("{}. {description}", d.trim_end_matches('.'));
    }
    let mut annotations: BTreeMap<String, String> = BTreeMap::from([
        ("summary".to_string(), format!("{} ({}) is burning its error budget too fast", s.name, s.service)),
        ("description".to_string(), description),
    ]);
    for (k, v) in &extras.annotations {
        annotations.insert(k.clone(), v.clone());
    }
    out.push_str("        annotations:\n");
    for (k, v) in &annotations {
        if is_label_name(k) {
            let _ = writeln!(out, "          {k}: {}", yaml_str(v));
        }
    }
}

/// The spec's labels that are valid Prometheus label names and not set by the generator.
fn extra_labels(labels: &BTreeMap<String, String>) -> impl Iterator<Item = (&String, &String)> {
    labels.iter().filter(|(k, _)| {
        is_label_name(k) && !k.starts_with("__") && !k.starts_with("sloth_") && !RESERVED_LABELS.contains(&k.as_str())
    })
}

fn is_label_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The error ratio of an SLO over one window, as PromQL.
fn error_ratio_expr(s: &RuleSlo, w: Minutes) -> String {
    match &s.error_ratio {
        ErrorRatio::AgentCounters => {
            // Summed over every agent (instance) that counts this SLO, then divided:
            // the ratio of the sums, weighted by traffic.
            let m = format!("{{slo={},service={}}}", prom_str(&s.name), prom_str(&s.service));
            format!(
                "1 - (\n  sum(increase(slo_agent_slo_good_events_total{m}[{w}]))\n  /\n  \
                 sum(increase(slo_agent_slo_events_total{m}[{w}]))\n)"
            )
        }
        ErrorRatio::Events { error_query, total_query } => format!(
            "(\n{}\n)\n/\n(\n{}\n)",
            indent(&window_template(error_query, w), "  "),
            indent(&window_template(total_query, w), "  ")
        ),
        ErrorRatio::Raw { error_ratio_query } => window_template(error_ratio_query, w),
    }
}

/// Replaces Sloth's `{{.window}}` (with or without inner spaces) by the window.
fn window_template(q: &str, w: Minutes) -> String {
    let w = w.to_string();
    q.replace("{{.window}}", &w).replace("{{ .window }}", &w).trim().to_string()
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| if l.is_empty() { String::new() } else { format!("{by}{l}") }).collect::<Vec<_>>().join("\n")
}

/// `key: |-` and the text indented under it.
fn block(out: &mut String, key: &str, text: &str) {
    let pad = " ".repeat(key.len() - key.trim_start().len() + 2);
    let _ = writeln!(out, "{key}: |-");
    for line in text.lines() {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{pad}{}", line.trim_end());
        }
    }
}

/// A YAML double-quoted scalar (JSON strings are valid YAML).
fn yaml_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A YAML single-quoted scalar: PromQL's double quotes stay readable.
fn yaml_single(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A PromQL double-quoted string.
fn prom_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A number as written by a person: 0.001, 13.44, 28 (no float dust).
fn num(v: f64) -> String {
    let r = (v * 1e9).round() / 1e9;
    format!("{r}")
}
