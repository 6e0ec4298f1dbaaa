//! `slo-agent incident list|show|open|update`: incidents of a running agent
//! through its API (`docs/status-page.md`). Opening and updating need a
//! token with role `incident`.
//!
//! Exit codes: 0 done, 1 refused by the agent (400, 403, 404, 409), 2 the
//! agent could not be asked.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};

use super::freeze::{AgentArgs, change_done, send};

#[derive(Subcommand, Debug)]
pub enum IncidentCommand {
    /// One ordered timeline of alerts, deploys, freezes, overrides, bypasses, silences, failed
    /// journeys and audited changes of a service between two times. Exit 0 shown, 2 failed.
    Timeline(Box<super::timeline::TimelineArgs>),
    /// Open incidents, then those resolved within --days (default 7).
    List {
        #[arg(long)]
        days: Option<u32>,
        /// Print the agent's JSON instead of the table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// One incident with its updates.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Open an incident (role incident).
    Open {
        /// What users see as the headline.
        #[arg(long)]
        title: String,
        /// An affected service (repeat for several).
        #[arg(long = "service", required = true)]
        services: Vec<String>,
        /// none, minor, major or critical.
        #[arg(long, default_value = "minor")]
        impact: String,
        /// investigating, identified or monitoring.
        #[arg(long, default_value = "investigating")]
        status: String,
        /// The first update's text.
        #[arg(long)]
        message: String,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Post an update (role incident); --status resolved closes the incident.
    Update {
        id: String,
        /// investigating, identified, monitoring or resolved.
        #[arg(long)]
        status: String,
        #[arg(long)]
        message: String,
        /// Change the impact too: none, minor, major or critical.
        #[arg(long)]
        impact: Option<String>,
        #[command(flatten)]
        agent: AgentArgs,
    },
}

pub fn run(command: IncidentCommand) -> ExitCode {
    match command {
        IncidentCommand::Timeline(args) => super::timeline::run_timeline(*args),
        IncidentCommand::List { days, json, agent } => {
            let d = days.map(|d| d.to_string());
            let query: Vec<(&str, &str)> = d.as_deref().map(|d| ("days", d)).into_iter().collect();
            let answer = send(&agent, reqwest::Method::GET, "/api/v1/incidents", &query, None);
            change_done(answer, |b| if json { format!("{b:#}\n") } else { table(b) })
        }
        IncidentCommand::Show { id, json, agent } => {
            let path = format!("/api/v1/incidents/{}", segment(&id));
            let answer = send(&agent, reqwest::Method::GET, &path, &[], None);
            change_done(answer, |b| if json { format!("{b:#}\n") } else { detail(b) })
        }
        IncidentCommand::Open { title, services, impact, status, message, agent } => {
            let body =
                json!({"title": title, "services": services, "impact": impact, "status": status, "message": message});
            let answer = send(&agent, reqwest::Method::POST, "/api/v1/incidents", &[], Some(body));
            change_done(answer, |b| format!("opened {}\n", b["id"].as_str().unwrap_or("?")))
        }
        IncidentCommand::Update { id, status, message, impact, agent } => {
            let mut body = json!({"status": status, "message": message});
            if let Some(i) = impact {
                body["impact"] = Value::String(i);
            }
            let path = format!("/api/v1/incidents/{}/updates", segment(&id));
            let answer = send(&agent, reqwest::Method::POST, &path, &[], Some(body));
            change_done(answer, |b| {
                format!("{} is now {}\n", b["id"].as_str().unwrap_or("?"), b["status"].as_str().unwrap_or("?"))
            })
        }
    }
}

/// An id as one path segment (ids are `inc-…`; anything else is encoded).
fn segment(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Text from the agent made safe for a terminal (no escape sequences).
fn plain(v: &Value) -> String {
    v.as_str().unwrap_or("").chars().map(|c| if c.is_control() && c != '\n' { '\u{fffd}' } else { c }).collect()
}

fn table(body: &Value) -> String {
    let list = body["incidents"].as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return "no incidents\n".into();
    }
    let mut out =
        format!("{:<18} {:<13} {:<8} {:<20} {:<20} {}\n", "ID", "STATUS", "IMPACT", "STARTED", "RESOLVED", "TITLE");
    for i in list {
        let services: Vec<String> = i["services"].as_array().into_iter().flatten().map(plain).collect();
        out.push_str(&format!(
            "{:<18} {:<13} {:<8} {:<20} {:<20} {} [{}]\n",
            plain(&i["id"]),
            plain(&i["status"]),
            plain(&i["impact"]),
            plain(&i["started_at"]),
            i["resolved_at"].as_str().map_or("-".to_string(), |_| plain(&i["resolved_at"])),
            plain(&i["title"]),
            services.join(", ")
        ));
    }
    out
}

fn detail(i: &Value) -> String {
    let services: Vec<String> = i["services"].as_array().into_iter().flatten().map(plain).collect();
    let mut out = format!(
        "{}  {}\nstatus {} · impact {} · services {}\nstarted {} · resolved {} · opened by {}\n",
        plain(&i["id"]),
        plain(&i["title"]),
        plain(&i["status"]),
        plain(&i["impact"]),
        services.join(", "),
        plain(&i["started_at"]),
        i["resolved_at"].as_str().map_or("-".to_string(), |_| plain(&i["resolved_at"])),
        plain(&i["opened_by"]),
    );
    for u in i["updates"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n{} {} ({})\n  {}\n",
            plain(&u["at"]),
            plain(&u["status"]),
            plain(&u["by"]),
            plain(&u["message"]).replace('\n', "\n  ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_incidents_and_strip_terminal_escapes() {
        let body = json!({"incidents": [{
            "id": "inc-20261205-001", "title": "Checkout \u{1b}[31mslow", "services": ["checkout"],
            "status": "identified", "impact": "major", "started_at": "2026-12-05T10:00:00Z", "resolved_at": null,
            "opened_by": "user:oncall",
            "updates": [{"at": "2026-12-05T10:00:00Z", "status": "identified", "message": "bad deploy\nrolling back", "by": "user:oncall"}],
        }]});
        let t = table(&body);
        assert!(t.contains("inc-20261205-001   identified    major"), "{t}");
        assert!(!t.contains('\u{1b}'));
        let d = detail(&body["incidents"][0]);
        assert!(d.contains("  bad deploy\n  rolling back"), "{d}");
        assert_eq!(table(&json!({"incidents": []})), "no incidents\n");
        assert_eq!(segment("inc-1/../x"), "inc-1%2F%2E%2E%2Fx");
    }
}
