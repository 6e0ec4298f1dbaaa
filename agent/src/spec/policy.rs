//! Error-budget policies: `apiVersion: slo-agent/v1`, `kind: FreezePolicy`.
//!
//! A policy says when the services it covers are frozen for deploys: the
//! conditions that freeze, the margins by which they must clear before the
//! service thaws (so the answer does not flap), the margins within which it
//! warns, the change types a freeze never blocks, calendar freezes, and how
//! many approvers a bypass needs. Without any policy document the built-in
//! [`FreezePolicy::builtin`] covers every service.
//!
//! ```yaml
//! apiVersion: slo-agent/v1
//! kind: FreezePolicy
//! metadata: {name: checkout}
//! spec:
//!   services: [checkout, "checkout-*"]
//!   freeze_when:
//!     budget_remaining_at_most: 0.1
//!     alerts: [page]
//!     burn_rate: [{window: 1h, above: 14.4}]
//!     exhaustion_within: 2d
//!     anomalies: [page]          # a live-signal anomaly alert (signals.alerts) of the service fires
//!     quotas: true               # a quota alert of the service fires
//!   calendar:
//!     - {weekly: {day: friday, start: "16:00", duration: 64h, timezone: Europe/Berlin}, reason: weekend}
//! ```
//!
//! **Architecture invariant:** like SLOs, a policy only exists once all of
//! it validated; every problem is reported at `file:line:col`.

use crate::spec::glob::Glob;
use crate::spec::model::{ALERT_WINDOWS, Exclusion, Minutes, SpecOrigin};
use crate::spec::native;
use crate::yaml::fields::Ctx;
use crate::yaml::{Node, Pos};

/// What a deploy changes; a freeze may let some kinds through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeType {
    Feature,
    Hotfix,
    Rollback,
}

impl ChangeType {
    pub const ALL: [ChangeType; 3] = [ChangeType::Feature, ChangeType::Hotfix, ChangeType::Rollback];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Feature => "feature",
            ChangeType::Hotfix => "hotfix",
            ChangeType::Rollback => "rollback",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeType> {
        ChangeType::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// Which alerts freeze while they fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertSeverity {
    Page,
    Ticket,
}

impl AlertSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Page => "page",
            AlertSeverity::Ticket => "ticket",
        }
    }
}

/// A burn rate over one of the windows the engine computes, above a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnCondition {
    pub window: Minutes,
    pub above: f64,
}

/// The conditions that freeze a service; any one of them is enough, for any
/// of the service's SLOs with enough events.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeConditions {
    /// Freeze when the SLO window's budget remaining is at most this
    /// fraction (0: spent).
    pub budget_remaining_at_most: Option<f64>,
    pub alerts: Vec<AlertSeverity>,
    pub burn_rates: Vec<BurnCondition>,
    /// Freeze when, at the current 6h burn rate, the budget is gone within this.
    pub exhaustion_within: Option<Minutes>,
    /// Freeze while a live-signal anomaly alert of the service (`signals.alerts`
    /// in agent.yaml) of these severities fires.
    pub anomalies: Vec<AlertSeverity>,
    /// Freeze while a quota alert of the service fires (a quota reached
    /// within `signals.quotas.alert_within` at the forecast growth).
    pub quotas: bool,
}

/// Hysteresis: a condition that froze a service must clear by these margins
/// before the service thaws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Margins {
    /// Budget remaining must be above the threshold plus this.
    pub budget_margin: f64,
    /// Burn rates must be below the threshold times this (and time to
    /// exhaustion above the threshold divided by it).
    pub burn_factor: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsufficientData {
    /// No SLO with enough events: the answer is `INSUFFICIENT_DATA`, allowed.
    Allow,
    /// No SLO with enough events: frozen.
    Freeze,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FreezePolicy {
    pub name: String,
    /// Globs over service names; the most specific match across policies wins.
    pub services: Vec<Glob>,
    /// Events an SLO's window must hold to be judged; default: the SLO's
    /// alerting `min_events`, else the agent's `alerts.min_events`.
    pub min_events: Option<u64>,
    pub freeze_when: FreezeConditions,
    /// How far a freezing condition must clear before the service thaws.
    pub thaw: Margins,
    /// Within how far of a freeze the answer is `WARNING`.
    pub warning: Margins,
    pub never_block: Vec<ChangeType>,
    /// Times when the covered services are frozen whatever their SLOs say.
    pub calendar: Vec<Exclusion>,
    /// Distinct approvers (other than the requester) a bypass needs.
    pub approvers: u32,
    pub insufficient_data: InsufficientData,
    /// How deploys of the covered services are judged.
    pub deploys: DeployJudging,
    pub origin: SpecOrigin,
}

/// How a deploy's cost is measured: the budget its service's SLOs spent
/// from its start to `window` after it finished, against the `window`
/// before it started; more than `flag_budget_consumed` of an SLO window's
/// error budget flags it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeployJudging {
    pub window: Minutes,
    /// A fraction of the SLO window's error budget (0.2: a fifth).
    pub flag_budget_consumed: f64,
}

pub const DEFAULT_DEPLOY_JUDGING: DeployJudging = DeployJudging { window: Minutes(60), flag_budget_consumed: 0.2 };

pub const DEFAULT_THAW: Margins = Margins { budget_margin: 0.05, burn_factor: 0.8 };
pub const DEFAULT_WARNING: Margins = Margins { budget_margin: 0.1, burn_factor: 0.8 };
pub const DEFAULT_APPROVERS: u32 = 2;

impl FreezeConditions {
    /// Budget spent, or a page alert firing.
    pub fn builtin() -> FreezeConditions {
        FreezeConditions {
            budget_remaining_at_most: Some(0.0),
            alerts: vec![AlertSeverity::Page],
            burn_rates: Vec::new(),
            exhaustion_within: None,
            anomalies: Vec::new(),
            quotas: false,
        }
    }
}

impl FreezePolicy {
    /// The policy of every service no policy document covers.
    pub fn builtin() -> FreezePolicy {
        FreezePolicy {
            name: "default".into(),
            services: vec![Glob::new("*").expect("a valid glob")],
            min_events: None,
            freeze_when: FreezeConditions::builtin(),
            thaw: DEFAULT_THAW,
            warning: DEFAULT_WARNING,
            never_block: vec![ChangeType::Hotfix, ChangeType::Rollback],
            calendar: Vec::new(),
            approvers: DEFAULT_APPROVERS,
            insufficient_data: InsufficientData::Allow,
            deploys: DEFAULT_DEPLOY_JUDGING,
            origin: SpecOrigin { file: "(built in)".into(), line: 0, api_version: native::API_VERSION },
        }
    }

    /// How specifically this policy names `service`: `None` when it does not
    /// cover it; an exact name beats any glob, and a glob with more literal
    /// characters beats one with fewer.
    pub fn specificity(&self, service: &str) -> Option<usize> {
        self.services
            .iter()
            .filter(|g| g.matches(service))
            .map(|g| {
                let p = g.as_str();
                if p.contains(['*', '?']) { p.chars().filter(|c| !matches!(c, '*' | '?')).count() } else { usize::MAX }
            })
            .max()
    }

    pub fn blocks(&self, change: ChangeType) -> bool {
        !self.never_block.contains(&change)
    }
}

/// The policy that governs `service`: the most specific match, the first of
/// equally specific ones, else the built-in one.
pub fn policy_for<'p>(
    policies: &'p [std::sync::Arc<FreezePolicy>],
    builtin: &'p FreezePolicy,
    service: &str,
) -> &'p FreezePolicy {
    let mut best: Option<(usize, &FreezePolicy)> = None;
    for p in policies {
        if let Some(s) = p.specificity(service)
            && best.is_none_or(|(b, _)| s > b)
        {
            best = Some((s, p));
        }
    }
    best.map_or(builtin, |(_, p)| p)
}

/// A read policy with the position of its name, for duplicate-name messages.
pub struct ReadPolicy {
    pub policy: FreezePolicy,
    pub name_pos: Pos,
}

const TOP: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
const SPEC: &[&str] = &[
    "services",
    "min_events",
    "freeze_when",
    "thaw",
    "warning",
    "never_block",
    "calendar",
    "approvers",
    "insufficient_data",
    "deploys",
];

/// Reads one `kind: FreezePolicy` document.
pub fn read(cx: &mut Ctx<'_>, root: &Node) -> Option<ReadPolicy> {
    let top = cx.map(root, "document", TOP)?;
    let meta = top.require(cx, "metadata").and_then(|m| native::metadata(cx, m, "metadata"));
    let spec = top.require(cx, "spec").and_then(|s| cx.map(s, "spec", SPEC))?;

    let services = spec.require(cx, "services").and_then(|n| services(cx, n, "spec.services"));
    let min_events = match spec.get("min_events") {
        None => Some(None),
        Some(n) => whole(cx, n, "spec.min_events", 0.0, 1e12).map(|v| Some(v as u64)),
    };
    let freeze_when = match spec.get("freeze_when") {
        None => Some(FreezeConditions::builtin()),
        Some(n) => conditions(cx, n, "spec.freeze_when"),
    };
    let thaw = match spec.get("thaw") {
        None => Some(DEFAULT_THAW),
        Some(n) => margins(cx, n, "spec.thaw", DEFAULT_THAW),
    };
    let warning = match spec.get("warning") {
        None => Some(DEFAULT_WARNING),
        Some(n) => margins(cx, n, "spec.warning", DEFAULT_WARNING),
    };
    let never_block = match spec.get("never_block") {
        None => Some(vec![ChangeType::Hotfix, ChangeType::Rollback]),
        Some(n) => change_types(cx, n, "spec.never_block"),
    };
    let calendar = match spec.get("calendar") {
        None => Some(Vec::new()),
        Some(n) => cx.list(n, "spec.calendar").and_then(|items| {
            let mut out = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match native::exclusion(cx, item, &format!("spec.calendar[{i}]")) {
                    Some(e) => out.push(e),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }),
    };
    let approvers = match spec.get("approvers") {
        None => Some(DEFAULT_APPROVERS),
        Some(n) => whole(cx, n, "spec.approvers", 1.0, 20.0).map(|v| v as u32),
    };
    let insufficient_data = match spec.get("insufficient_data") {
        None => Some(InsufficientData::Allow),
        Some(n) => match cx.text(n, "spec.insufficient_data") {
            Some("allow") => Some(InsufficientData::Allow),
            Some("freeze") => Some(InsufficientData::Freeze),
            Some(other) => {
                cx.err(n.pos, format!("`spec.insufficient_data` must be `allow` or `freeze`, found `{other}`"));
                None
            }
            None => None,
        },
    };
    let deploys = match spec.get("deploys") {
        None => Some(DEFAULT_DEPLOY_JUDGING),
        Some(n) => deploy_judging(cx, n, "spec.deploys"),
    };
    let meta = meta?;
    Some(ReadPolicy {
        policy: FreezePolicy {
            name: meta.name?,
            services: services?,
            min_events: min_events?,
            freeze_when: freeze_when?,
            thaw: thaw?,
            warning: warning?,
            never_block: never_block?,
            calendar: calendar?,
            approvers: approvers?,
            insufficient_data: insufficient_data?,
            deploys: deploys?,
            origin: SpecOrigin { file: cx.file.to_string(), line: root.pos.line, api_version: native::API_VERSION },
        },
        name_pos: meta.name_pos,
    })
}

fn whole(cx: &mut Ctx<'_>, node: &Node, what: &str, min: f64, max: f64) -> Option<f64> {
    let v = cx.number(node, what)?;
    if v.fract() != 0.0 || v < min || v > max {
        cx.err(node.pos, format!("`{what}` must be a whole number from {min} to {max}, found {v}"));
        return None;
    }
    Some(v)
}

fn services(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<Glob>> {
    let empty = matches!(&node.value, crate::yaml::Value::Seq(v) if v.is_empty());
    let items = if empty { Vec::new() } else { cx.one_or_many(node, what) };
    if items.is_empty() {
        cx.err(node.pos, format!("`{what}` must name at least one service (a name or a glob such as `checkout-*`)"));
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, n) in items.iter().enumerate() {
        let Some(text) = cx.text(n, &format!("{what}[{i}]")) else {
            ok = false;
            continue;
        };
        match Glob::new(text) {
            Ok(g) if !text.trim().is_empty() => out.push(g),
            Ok(_) => {
                cx.err(n.pos, format!("`{what}[{i}]` must not be empty"));
                ok = false;
            }
            Err(e) => {
                cx.err(n.pos, format!("`{what}[{i}]`: {e}"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn fraction(cx: &mut Ctx<'_>, node: &Node, what: &str, min: f64, max: f64) -> Option<f64> {
    let v = cx.number(node, what)?;
    if !(min..=max).contains(&v) {
        cx.err(node.pos, format!("`{what}` must be from {min} to {max}, found {v}"));
        return None;
    }
    Some(v)
}

fn conditions(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<FreezeConditions> {
    let m = cx.map(
        node,
        what,
        &["budget_remaining_at_most", "alerts", "burn_rate", "exhaustion_within", "anomalies", "quotas"],
    )?;
    let budget = match m.get("budget_remaining_at_most") {
        None => Some(None),
        Some(n) => fraction(cx, n, &m.path("budget_remaining_at_most"), -10.0, 1.0).map(Some),
    };
    let severities = |cx: &mut Ctx<'_>, key: &str| match m.get(key) {
        None => Some(Vec::new()),
        Some(n) => {
            let path = m.path(key);
            let mut out = Vec::new();
            let mut ok = true;
            for item in cx.one_or_many(n, &path) {
                match cx.text(item, &path) {
                    Some("page") => out.push(AlertSeverity::Page),
                    Some("ticket") => out.push(AlertSeverity::Ticket),
                    Some(other) => {
                        cx.err(item.pos, format!("`{path}` takes `page` and `ticket`, found `{other}`"));
                        ok = false;
                    }
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
    };
    let alerts = severities(cx, "alerts");
    let anomalies = severities(cx, "anomalies");
    let quotas = match m.get("quotas") {
        None => Some(false),
        Some(n) => cx.boolean(n, &m.path("quotas")),
    };
    let burn_rates = match m.get("burn_rate") {
        None => Some(Vec::new()),
        Some(n) => {
            let path = m.path("burn_rate");
            let mut out = Vec::new();
            let mut ok = true;
            for (i, item) in cx.one_or_many(n, &path).into_iter().enumerate() {
                match burn_condition(cx, item, &format!("{path}[{i}]")) {
                    Some(b) => out.push(b),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
    };
    let exhaustion_within = match m.get("exhaustion_within") {
        None => Some(None),
        Some(n) => native::duration_in(cx, n, &m.path("exhaustion_within"), Minutes(60), Minutes(366 * 1440)).map(Some),
    };
    let c = FreezeConditions {
        budget_remaining_at_most: budget?,
        alerts: alerts?,
        burn_rates: burn_rates?,
        exhaustion_within: exhaustion_within?,
        anomalies: anomalies?,
        quotas: quotas?,
    };
    if c.budget_remaining_at_most.is_none()
        && c.alerts.is_empty()
        && c.burn_rates.is_empty()
        && c.exhaustion_within.is_none()
        && c.anomalies.is_empty()
        && !c.quotas
    {
        cx.err(
            node.pos,
            format!(
                "`{what}` names no condition; give at least one of budget_remaining_at_most, alerts, burn_rate, exhaustion_within, anomalies, quotas (or leave it out for the default: budget spent or a page firing)"
            ),
        );
        return None;
    }
    Some(c)
}

fn deploy_judging(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<DeployJudging> {
    let m = cx.map(node, what, &["window", "flag_budget_consumed"])?;
    let window = match m.get("window") {
        None => Some(DEFAULT_DEPLOY_JUDGING.window),
        Some(n) => native::duration_in(cx, n, &m.path("window"), Minutes(5), Minutes(24 * 60)),
    };
    let flag = match m.get("flag_budget_consumed") {
        None => Some(DEFAULT_DEPLOY_JUDGING.flag_budget_consumed),
        Some(n) => fraction(cx, n, &m.path("flag_budget_consumed"), 0.001, 10.0),
    };
    Some(DeployJudging { window: window?, flag_budget_consumed: flag? })
}

fn burn_condition(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<BurnCondition> {
    let m = cx.map(node, what, &["window", "above"])?;
    let window = m.require(cx, "window").and_then(|n| {
        let w = native::duration_in(cx, n, &m.path("window"), Minutes(1), Minutes(366 * 1440))?;
        if ALERT_WINDOWS.contains(&w) {
            Some(w)
        } else {
            let known: Vec<String> = ALERT_WINDOWS.iter().map(|w| w.to_string()).collect();
            cx.err(n.pos, format!("`{}` must be one of {}, found {w}", m.path("window"), known.join(", ")));
            None
        }
    });
    let above = m.require(cx, "above").and_then(|n| {
        let v = cx.number(n, &m.path("above"))?;
        if v > 0.0 && v.is_finite() {
            Some(v)
        } else {
            cx.err(n.pos, format!("`{}` must be a burn rate above 0, found {v}", m.path("above")));
            None
        }
    });
    Some(BurnCondition { window: window?, above: above? })
}

fn margins(cx: &mut Ctx<'_>, node: &Node, what: &str, default: Margins) -> Option<Margins> {
    let m = cx.map(node, what, &["budget_margin", "burn_factor"])?;
    let budget_margin = match m.get("budget_margin") {
        None => Some(default.budget_margin),
        Some(n) => fraction(cx, n, &m.path("budget_margin"), 0.0, 1.0),
    };
    let burn_factor = match m.get("burn_factor") {
        None => Some(default.burn_factor),
        Some(n) => {
            let v = cx.number(n, &m.path("burn_factor"))?;
            if v > 0.0 && v <= 1.0 {
                Some(v)
            } else {
                cx.err(n.pos, format!("`{}` must be above 0 and at most 1, found {v}", m.path("burn_factor")));
                None
            }
        }
    };
    Some(Margins { budget_margin: budget_margin?, burn_factor: burn_factor? })
}

fn change_types(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<ChangeType>> {
    if matches!(&node.value, crate::yaml::Value::Seq(v) if v.is_empty()) {
        // `never_block: []`: a freeze blocks every change.
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    let mut ok = true;
    for item in cx.one_or_many(node, what) {
        match cx.text(item, what) {
            Some(t) => match ChangeType::parse(t) {
                Some(c) => out.push(c),
                None => {
                    cx.err(item.pos, format!("`{what}` takes `feature`, `hotfix` and `rollback`, found `{t}`"));
                    ok = false;
                }
            },
            None => ok = false,
        }
    }
    ok.then_some(out)
}
