//! Prometheus recording and alerting rules for SLOs, for users who evaluate
//! SLOs globally in Prometheus (or Amazon Managed Prometheus, Mimir, Thanos)
//! over the counters every agent exports.
//!
//! The rules use Sloth's names and label sets (`slo:sli_error:ratio_rate5m`,
//! `slo:period_error_budget_remaining:ratio`, `sloth_id`, `sloth_window`, the
//! spec's labels on every series, …) so Sloth's Grafana dashboards and
//! alert routes work on them unchanged. Unlike Sloth, the ratio over the SLO
//! period of a counter SLI is computed from counter increases over the whole
//! period, never by averaging short-window ratios: an hour with ten requests
//! must not weigh as much as an hour with a million. SLIs that are not
//! counters (Sloth `raw` queries, subqueries) average the 5-minute ratios
//! like Sloth, because their queries over the whole period would cost
//! tens of thousands of inner evaluations ([`PeriodRatio`]).
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

/// `sloth_version` on `sloth_slo_info`: what wrote the rules.
pub const GENERATOR_VERSION: &str = concat!("slo-agent-v", env!("CARGO_PKG_VERSION"));

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
    /// The objective in percent, as the spec gives it (`sloth_objective`).
    pub objective_percent: f64,
    /// The SLO period the budget is about.
    pub period: Minutes,
    pub error_ratio: ErrorRatio,
    /// The burn-rate conditions, thresholds already scaled to the period.
    pub rules: Vec<BurnRateRule>,
    pub page: AlertExtras,
    pub ticket: AlertExtras,
    /// Copied onto every recorded series and the alerts.
    pub labels: BTreeMap<String, String>,
    pub description: Option<String>,
    /// The file the SLO was read from, for the output file layout and messages.
    pub file: String,
    /// The spec format it was read from (`sloth_spec`): `slo-agent/v1`,
    /// `openslo/v1` or `prometheus/v1` (Sloth).
    pub spec: &'static str,
    /// Record the error ratio per `region` too, and the share of regions
    /// failing ("partial or total?"): SLOs on `source: synthetic`, whose
    /// events each agent measures from its own region.
    pub per_region: bool,
}

impl RuleSlo {
    /// Sloth's SLO id: `<service>-<slo>`.
    pub fn id(&self) -> String {
        format!("{}-{}", self.service, self.name)
    }

    /// Read from a Sloth spec. Those get Sloth's floating-point arithmetic,
    /// digit for digit, so an error ratio that lands exactly on a threshold
    /// fires on the same evaluation as Sloth's rules do (the agent's own specs
    /// get the rounded figures the agent evaluates with), and Sloth's default
    /// alert summary.
    fn is_sloth_spec(&self) -> bool {
        self.spec == sloth::VERSION
    }

    /// The error budget the alert thresholds multiply: Sloth's is
    /// `(100 − objective %) / 100`.
    fn alert_budget(&self) -> f64 {
        if self.is_sloth_spec() {
            (100.0 - self.objective_percent) / 100.0
        } else {
            crate::spec::native::to_ratio(1.0 - self.objective)
        }
    }

    /// The error budget of `slo:error_budget:ratio`, which the burn rates
    /// divide by: Sloth's is `1 − objective`.
    fn series_budget(&self) -> f64 {
        if self.is_sloth_spec() { 1.0 - self.objective } else { crate::spec::native::to_ratio(1.0 - self.objective) }
    }

    /// A number in an expression: exact (shortest round-trip digits) for
    /// Sloth arithmetic, else as a person writes it.
    fn num(&self, v: f64) -> String {
        if self.is_sloth_spec() { format!("{v}") } else { num(v) }
    }

    /// `sloth_mode`, as Sloth names its generators.
    fn mode(&self) -> &'static str {
        if self.spec == crate::spec::openslo::API_VERSION { "cli-gen-openslo" } else { "cli-gen-prom" }
    }

    fn extras(&self, severity: Severity) -> &AlertExtras {
        match severity {
            Severity::Page => &self.page,
            Severity::Ticket => &self.ticket,
        }
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
            objective_percent: slo.objective * 100.0,
            period: slo.window.nominal(),
            error_ratio: ErrorRatio::AgentCounters,
            rules: slo.alerting.rules.clone(),
            page: extras(&slo.alerting.page),
            ticket: extras(&slo.alerting.ticket),
            labels: slo.labels.clone(),
            description: slo.description.clone(),
            file: slo.origin.file.clone(),
            spec: slo.origin.api_version,
            per_region: slo.indicator.source == crate::event::Origin::Synthetic,
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

/// The windows the alerts need a ratio for: the alert windows the agent
/// reports and the windows of the SLO's own rules.
fn alert_windows(s: &RuleSlo) -> BTreeSet<Minutes> {
    let mut w: BTreeSet<Minutes> = ALERT_WINDOWS.iter().copied().collect();
    for r in &s.rules {
        w.insert(r.long_window);
        w.insert(r.short_window);
    }
    w
}

/// How the error ratio over the SLO period is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeriodRatio {
    /// From the SLI's own queries over the whole period, like every other
    /// window: exact, weighted by traffic. For counters.
    Exact,
    /// The average of the recorded 5-minute ratios over the period (Sloth's
    /// way). For SLIs that are not counters: a raw ratio query, or queries
    /// that take the window as a subquery range (`[{{.window}}:]`), which over
    /// a 30-day period would evaluate their inner query at every step of it.
    Averaged,
}

fn period_ratio(s: &RuleSlo) -> PeriodRatio {
    let by_subquery = |q: &str| {
        ["{{.window}}", "{{ .window }}"]
            .iter()
            .any(|t| q.split(t).skip(1).any(|rest| rest.trim_start().starts_with(':')))
    };
    match &s.error_ratio {
        ErrorRatio::AgentCounters => PeriodRatio::Exact,
        ErrorRatio::Events { error_query, total_query } if !by_subquery(error_query) && !by_subquery(total_query) => {
            PeriodRatio::Exact
        }
        ErrorRatio::Events { .. } | ErrorRatio::Raw { .. } => PeriodRatio::Averaged,
    }
}

/// The labels every recorded series of the SLO carries, as Sloth's do: the
/// spec's labels, then `sloth_id`, `sloth_service` and `sloth_slo`.
fn series_labels(s: &RuleSlo) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = user_labels(&s.labels).map(|(k, v)| (k.clone(), v.clone())).collect();
    l.insert("sloth_id".into(), s.id());
    l.insert("sloth_service".into(), s.service.clone());
    l.insert("sloth_slo".into(), s.name.clone());
    l
}

/// `labels:` and one line per label, in name order.
fn write_labels(out: &mut String, labels: &BTreeMap<String, String>) {
    out.push_str("        labels:\n");
    for (k, v) in labels {
        let _ = writeln!(out, "          {k}: {}", yaml_str(v));
    }
}

fn group(out: &mut String, s: &RuleSlo) {
    let id = s.id();
    let sel = format!("{{sloth_id={}}}", prom_str(&id));
    let base = series_labels(s);
    let _ = writeln!(out, "  - name: {}", yaml_str(&format!("slo-agent-{id}")));
    out.push_str("    rules:\n");

    let alert_windows = alert_windows(s);
    let averaged_period = period_ratio(s) == PeriodRatio::Averaged && !alert_windows.contains(&s.period);
    let mut windows = alert_windows;
    windows.insert(s.period);
    for w in windows {
        let _ = writeln!(out, "      - record: slo:sli_error:ratio_rate{w}");
        if w == s.period && averaged_period {
            // Sum over count rather than avg_over_time: the same digits as Sloth's.
            let five = format!("slo:sli_error:ratio_rate{}{sel}[{w}]", Minutes(5));
            block(out, "        expr", &format!("sum_over_time({five})\n/\ncount_over_time({five})"));
        } else {
            block(out, "        expr", &error_ratio_expr(s, w));
        }
        let mut labels = base.clone();
        labels.insert("sloth_window".into(), w.to_string());
        write_labels(out, &labels);
    }

    // The burn rates keep the `sloth_window` of the ratio they divide, as
    // Sloth's do (its dashboards select on the series' labels).
    let budget = s.num(s.series_budget());
    let meta: [(&str, String); 6] = [
        ("slo:objective:ratio", format!("vector({})", s.num(s.objective))),
        ("slo:error_budget:ratio", format!("vector({budget})")),
        ("slo:time_period:days", format!("vector({})", num(s.period.0 as f64 / 1440.0))),
        ("slo:current_burn_rate:ratio", format!("slo:sli_error:ratio_rate{}{sel} / {budget}", Minutes(5))),
        ("slo:period_burn_rate:ratio", format!("slo:sli_error:ratio_rate{}{sel} / {budget}", s.period)),
        ("slo:period_error_budget_remaining:ratio", format!("1 - slo:period_burn_rate:ratio{sel}")),
    ];
    for (record, expr) in meta {
        let _ = writeln!(out, "      - record: {record}");
        let _ = writeln!(out, "        expr: {}", yaml_single(&expr));
        write_labels(out, &base);
    }
    out.push_str("      - record: sloth_slo_info\n");
    out.push_str("        expr: 'vector(1)'\n");
    let mut info = base.clone();
    info.insert("sloth_mode".into(), s.mode().into());
    info.insert("sloth_objective".into(), num(s.objective_percent));
    info.insert("sloth_spec".into(), s.spec.into());
    info.insert("sloth_version".into(), GENERATOR_VERSION.into());
    write_labels(out, &info);

    if s.per_region && s.error_ratio == ErrorRatio::AgentCounters {
        regions(out, s, &base, &sel);
    }

    for severity in [Severity::Page, Severity::Ticket] {
        let rules: Vec<&BurnRateRule> = s.rules.iter().filter(|r| r.severity == severity).collect();
        if rules.is_empty() {
            continue;
        }
        alert(out, s, severity, &rules, &sel);
    }
}

/// A region's error ratio above this counts it as failing in
/// `slo:regions_failing:ratio`: most of what its agents checked failed.
pub const REGION_FAILING_RATIO: f64 = 0.5;

/// Per region (the `region` label the agents' scrape or remote write
/// gives their series): the 5-minute error ratio, and the share of regions
/// failing. 0: up everywhere; 1: down everywhere (total); in between: partial.
fn regions(out: &mut String, s: &RuleSlo, base: &BTreeMap<String, String>, sel: &str) {
    let m = format!("{{slo={},service={}}}", prom_str(&s.name), prom_str(&s.service));
    let w = Minutes(5);
    let _ = writeln!(out, "      - record: slo:sli_error_by_region:ratio_rate{w}");
    block(
        out,
        "        expr",
        &format!(
            "1 - (\n  sum by (region) (increase(slo_agent_slo_good_events_total{m}[{w}]))\n  /\n  \
             sum by (region) (increase(slo_agent_slo_events_total{m}[{w}]))\n)"
        ),
    );
    let mut labels = base.clone();
    labels.insert("sloth_window".into(), w.to_string());
    write_labels(out, &labels);
    let by_region = format!("slo:sli_error_by_region:ratio_rate{w}{sel}");
    let _ = writeln!(out, "      - record: slo:regions_failing:ratio");
    block(
        out,
        "        expr",
        &format!("(count({by_region} > {}) or vector(0))\n/\ncount({by_region})", num(REGION_FAILING_RATIO)),
    );
    write_labels(out, base);
}

/// The labels of an alert: the SLO's labels (which the expression's result
/// carries too), the spec's alert labels over them, then `sloth_severity`
/// and the ids, which are the generator's. `severity` is the spec's when it
/// sets one anywhere, else `page` / `ticket`: a label the SRE wrote wins.
pub fn alert_labels(s: &RuleSlo, severity: Severity) -> BTreeMap<String, String> {
    let extras = s.extras(severity);
    let mut labels: BTreeMap<String, String> = user_labels(&s.labels).map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.extend(user_labels(&extras.labels).map(|(k, v)| (k.clone(), v.clone())));
    labels.entry("severity".into()).or_insert_with(|| severity.as_str().into());
    labels.insert("sloth_severity".into(), severity.as_str().into());
    // Also in the expression's result; static here so each alert rule is
    // unique by name and labels (`promtool check rules` lints duplicates).
    labels.insert("sloth_id".into(), s.id());
    labels.insert("sloth_service".into(), s.service.clone());
    labels.insert("sloth_slo".into(), s.name.clone());
    labels
}

fn alert(out: &mut String, s: &RuleSlo, severity: Severity, rules: &[&BurnRateRule], sel: &str) {
    let budget = s.num(s.alert_budget());
    let conditions: Vec<String> = rules
        .iter()
        .map(|r| {
            let over = |w: Minutes| {
                format!(
                    "max without (sloth_window) (slo:sli_error:ratio_rate{w}{sel} > ({} * {budget}))",
                    s.num(r.burn_rate_threshold)
                )
            };
            format!("(\n  {}\n  and\n  {}\n)", over(r.long_window), over(r.short_window))
        })
        .collect();
    let sev = severity.as_str();
    let extras = s.extras(severity);
    let name = extras.name.as_deref().unwrap_or(alert_name(severity));
    let _ = writeln!(out, "      - alert: {}", yaml_str(name));
    block(out, "        expr", &conditions.join("\nor\n"));
    write_labels(out, &alert_labels(s, severity));
    let why: Vec<String> = rules
        .iter()
        .map(|r| format!("{}× over {} and {}", num(r.burn_rate_threshold), r.long_window, r.short_window))
        .collect();
    let mut description =
        format!("Burn rate above {} (objective {}% over {}).", why.join(", or "), num(s.objective_percent), s.period);
    if let Some(d) = &s.description {
        description = format!("{}. {description}", d.trim_end_matches('.'));
    }
    // Sloth specs keep Sloth's default summary, for receivers templated on it.
    let summary = if s.is_sloth_spec() {
        "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected.".to_string()
    } else {
        format!("{} ({}) is burning its error budget too fast", s.name, s.service)
    };
    let mut annotations: BTreeMap<String, String> = BTreeMap::from([
        ("summary".to_string(), summary),
        ("description".to_string(), description),
        // Sloth's title annotation, for receivers templated on it.
        (
            "title".to_string(),
            format!(
                "({sev}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error budget burn rate is too fast."
            ),
        ),
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

/// The spec's labels that can be Prometheus labels here: valid label names,
/// not reserved by Prometheus (`__*`, `alertname`) and not the generator's
/// own (`sloth_*`).
fn user_labels(labels: &BTreeMap<String, String>) -> impl Iterator<Item = (&String, &String)> {
    labels.iter().filter(|(k, _)| {
        is_label_name(k) && !k.starts_with("__") && !k.starts_with("sloth_") && k.as_str() != "alertname"
    })
}

/// A valid Prometheus label name.
pub fn is_label_name(k: &str) -> bool {
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
pub fn prom_str(s: &str) -> String {
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
