//! `slo-agent incident timeline` and `slo-agent postmortem`: clients of a
//! running agent's `GET /api/v1/timeline` (and, for an incident,
//! `GET /api/v1/incidents/{id}` and `…/{id}/timeline`). The timeline is
//! printed as JSON, text or a Markdown table; the postmortem draft is
//! rendered here by [`crate::timeline::postmortem`] from the agent's answers.
//!
//! Exit codes: 0 done, 2 the agent could not be asked, refused, or the
//! output could not be written.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::freeze::{AgentArgs, ask};
use crate::clock::Clock;
use crate::timeline::Timeline;
use crate::timeline::postmortem::{Draft, render};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Text,
    Markdown,
}

/// `incident timeline`.
#[derive(Args, Debug)]
pub struct TimelineArgs {
    /// The service (as the SLO specs name it).
    #[arg(long)]
    pub service: String,
    /// Start, RFC 3339 (2026-11-20T12:00:00Z).
    #[arg(long)]
    pub from: String,
    /// End, RFC 3339; at most 31 days after --from.
    #[arg(long)]
    pub to: String,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// `postmortem`: of an incident, or of a service over a range.
#[derive(Args, Debug)]
pub struct PostmortemArgs {
    /// The incident's id.
    #[arg(long, required_unless_present = "service", conflicts_with_all = ["service", "from", "to"])]
    pub incident: Option<String>,
    /// The service, when there is no incident (with --from and --to).
    #[arg(long, requires_all = ["from", "to"])]
    pub service: Option<String>,
    #[arg(long)]
    pub from: Option<String>,
    #[arg(long)]
    pub to: Option<String>,
    /// Where to write the Markdown draft (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// The agent's JSON answer to a GET, or why there is none (a refusal quotes its `error`).
fn get(agent: &AgentArgs, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
    let a = ask(agent, path, query)?;
    if a.status != 200 {
        let why = a.body.get("error").and_then(Value::as_str).unwrap_or("no reason given");
        return Err(format!("{path} answered {}: {why}", a.status));
    }
    Ok(a.body)
}

fn timeline_of(v: Value) -> Result<Timeline, String> {
    serde_json::from_value(v).map_err(|e| format!("the agent's timeline makes no sense: {e}"))
}

/// The timeline of a service over a range, as the agent answers it.
pub fn fetch(agent: &AgentArgs, service: &str, from: &str, to: &str) -> Result<Timeline, String> {
    timeline_of(get(agent, "/api/v1/timeline", &[("service", service), ("from", from), ("to", to)])?)
}

/// One line per entry: time, kind, service, what happened.
pub fn text(t: &Timeline) -> String {
    let mut out = format!("timeline of {} from {} to {}\n", t.services.join(", "), t.from, t.to);
    for e in &t.entries {
        out.push_str(&format!("{:<24} {:<15} {:<12} {}\n", e.at, e.kind.as_str(), e.service, e.summary));
    }
    if t.truncated {
        out.push_str("(cut short: ask for a shorter range to see the rest)\n");
    }
    out
}

/// A Markdown table of the entries.
pub fn markdown(t: &Timeline) -> String {
    let mut out = format!(
        "## Timeline of {} from {} to {}\n\n| Time (UTC) | Kind | Service | What happened |\n|---|---|---|---|\n",
        t.services.join(", "),
        t.from,
        t.to
    );
    for e in &t.entries {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            e.at,
            e.kind.as_str(),
            e.service.replace('|', "\\|"),
            e.summary.replace(['\n', '\r'], " ").replace('|', "\\|")
        ));
    }
    out
}

pub fn run_timeline(args: TimelineArgs) -> ExitCode {
    match fetch(&args.agent, &args.service, &args.from, &args.to) {
        Ok(t) => {
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&t).unwrap_or_default()),
                Output::Text => print!("{}", text(&t)),
                Output::Markdown => print!("{}", markdown(&t)),
            }
            ExitCode::SUCCESS
        }
        Err(why) => fail(why),
    }
}

/// What an incident (`GET /api/v1/incidents/{id}`) tells the draft.
pub fn draft_of_incident(incident: &Value, written_ms: i64) -> Draft {
    let s = |k: &str| incident.get(k).and_then(Value::as_str).map(str::to_string);
    Draft {
        incident: s("id"),
        title: s("title"),
        status: s("status"),
        authors: s("opened_by").into_iter().collect(),
        impact: s("impact"),
        written_ms,
    }
}

/// The Markdown draft the arguments ask for, made at `now_ms`.
pub fn postmortem(args: &PostmortemArgs, now_ms: i64) -> Result<String, String> {
    match (&args.incident, &args.service, &args.from, &args.to) {
        (Some(id), _, _, _) => {
            let incident = get(&args.agent, &format!("/api/v1/incidents/{id}"), &[])?;
            let t = timeline_of(get(&args.agent, &format!("/api/v1/incidents/{id}/timeline"), &[])?)?;
            Ok(render(&draft_of_incident(&incident, now_ms), &t))
        }
        (None, Some(service), Some(from), Some(to)) => {
            let t = fetch(&args.agent, service, from, to)?;
            Ok(render(&Draft { written_ms: now_ms, ..Draft::default() }, &t))
        }
        _ => Err("give --incident ID, or --service with --from and --to".into()),
    }
}

pub fn run_postmortem(args: PostmortemArgs) -> ExitCode {
    let md = match postmortem(&args, crate::clock::SystemClock.now_ms()) {
        Ok(md) => md,
        Err(why) => return fail(why),
    };
    match &args.out {
        None => {
            print!("{md}");
            ExitCode::SUCCESS
        }
        Some(path) => match crate::fsutil::write_atomic(path, md.as_bytes()) {
            Ok(()) => {
                eprintln!("wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("writing {}: {e}", path.display())),
        },
    }
}

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{Inputs, Query, StatusUpdate, build};

    fn example() -> Timeline {
        let q = Query::new(vec!["checkout".into()], 0, 60_000, 60_000).unwrap();
        let updates = vec![StatusUpdate {
            at_ms: 1_000,
            status: "investigating".into(),
            message: "5xx | on checkout".into(),
            by: "oncall".into(),
        }];
        build(&q, &Inputs { updates: &updates, ..Inputs::default() })
    }

    #[test]
    fn a_timeline_prints_as_text_lines_and_as_a_markdown_table() {
        let t = example();
        assert_eq!(
            text(&t),
            "timeline of checkout from 1970-01-01T00:00:00Z to 1970-01-01T00:01:00Z\n\
             1970-01-01T00:00:01Z     status_update                investigating (oncall): 5xx | on checkout\n"
        );
        assert!(
            markdown(&t).ends_with(
                "| 1970-01-01T00:00:01Z | status_update |  | investigating (oncall): 5xx \\| on checkout |\n"
            )
        );
    }

    #[test]
    fn an_incident_gives_the_draft_its_title_status_author_and_impact() {
        let incident = serde_json::json!({"id": "INC-7", "title": "Checkout errors", "services": ["checkout"],
            "status": "resolved", "impact": "major", "opened_by": "alice", "started_at": "2026-11-20T00:00:00Z"});
        let d = draft_of_incident(&incident, 5);
        assert_eq!(
            d,
            Draft {
                incident: Some("INC-7".into()),
                title: Some("Checkout errors".into()),
                status: Some("resolved".into()),
                authors: vec!["alice".into()],
                impact: Some("major".into()),
                written_ms: 5,
            }
        );
        let md = render(&d, &example());
        assert!(md.starts_with("# Postmortem: Checkout errors\n"), "{md}");
        assert!(md.contains("| Incident | INC-7 |\n") && md.contains("| Status | resolved |\n"), "{md}");
    }
}
