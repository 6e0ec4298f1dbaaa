//! `slo-agent outage --service NAME [--output text|json]`: ask a running
//! agent "is it partial or total?" (`GET /api/v1/outage`, `docs/operations.md`).
//!
//! Exit codes: 0 no outage, 1 a partial or total outage, 2 the agent could
//! not be asked or did not answer (an unknown service included).

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::freeze::{AgentArgs, ask, error_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct OutageArgs {
    /// The service (as the logs, journeys and SLO specs name it).
    #[arg(long)]
    pub service: String,
    /// `text` (a summary) or `json` (the agent's answer as it came).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub agent: AgentArgs,
}

pub fn run(args: OutageArgs) -> ExitCode {
    let answer = match ask(&args.agent, "/api/v1/outage", &[("service", args.service.as_str())]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if answer.status != 200 {
        eprintln!("error: the agent answered {}: {}", answer.status, error_text(&answer.body));
        return ExitCode::from(2);
    }
    let verdict = answer.body["verdict"].as_str().unwrap_or("");
    let code = match verdict {
        "none" => ExitCode::SUCCESS,
        "partial" | "total" => ExitCode::from(1),
        _ => {
            eprintln!("error: the agent's answer holds no verdict: {}", answer.body);
            return ExitCode::from(2);
        }
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&answer.body).unwrap_or_default()),
        Output::Text => print!("{}", text(&answer.body)),
    }
    code
}

fn pct(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".to_string(), |x| format!("{:.1}%", x * 100.0))
}

/// The answer as a summary: the verdict, the failing slices, the evidence.
pub fn text(b: &Value) -> String {
    let mut out = String::new();
    let verdict = b["verdict"].as_str().unwrap_or("?");
    let headline = match verdict {
        "none" => "no outage".to_string(),
        v => format!("{v} outage, {} of requests failing", pct(&b["failing_share"])),
    };
    out.push_str(&format!(
        "{}: {headline} (last {} minutes to {})\n",
        b["service"].as_str().unwrap_or("?"),
        b["window_minutes"],
        b["at"].as_str().unwrap_or("?")
    ));
    if let Some(hop) = b["blame"].as_str() {
        out.push_str(&format!("blame: {hop}\n"));
    }
    for (key, label) in [
        ("edge_locations", "edge location"),
        ("regions", "region"),
        ("client_classes", "client class"),
        ("routes", "route"),
        ("journey_steps", "journey step"),
        ("probe_regions", "probe region"),
    ] {
        for item in b["scope"][key].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  {label:<14} {:<24} success {:>6} (baseline {:>6})  {:>8} requests  {:>6} of traffic\n",
                item["name"].as_str().unwrap_or("?"),
                pct(&item["success_ratio"]),
                pct(&item["baseline"]),
                item["requests"].as_u64().map_or_else(|| "-".to_string(), |n| n.to_string()),
                pct(&item["share"]),
            ));
        }
    }
    for e in b["evidence"].as_array().into_iter().flatten() {
        out.push_str(&format!("- {}\n", e.as_str().unwrap_or("")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_verdict_the_scope_and_the_blame() {
        let body = serde_json::json!({
            "service": "shop", "at": "2026-11-20T01:27:00Z", "window_minutes": 10,
            "verdict": "partial", "failing_share": 0.2,
            "scope": {"edge_locations": [{"name": "FRA56-P1", "success_ratio": 0.0, "baseline": 0.9667,
                      "requests": 400, "share": 0.2}], "regions": [], "client_classes": [], "routes": [],
                      "journey_steps": [{"name": "checkout/payment", "success_ratio": 0.0, "baseline": null,
                      "requests": 1, "share": null}]},
            "blame": "edge", "evidence": ["edge location FRA56-P1: 0.0% success of 400 requests"]
        });
        let t = text(&body);
        assert!(t.starts_with("shop: partial outage, 20.0% of requests failing (last 10 minutes to 2026-11-20T01:27:00Z)\nblame: edge\n"), "{t}");
        assert!(t.contains("edge location  FRA56-P1                 success   0.0% (baseline  96.7%)       400 requests   20.0% of traffic"), "{t}");
        assert!(t.contains("journey step   checkout/payment         success   0.0% (baseline      -)         1 requests       - of traffic"), "{t}");
        assert!(t.ends_with("- edge location FRA56-P1: 0.0% success of 400 requests\n"), "{t}");
        let none = serde_json::json!({"service": "shop", "verdict": "none", "window_minutes": 10, "at": "x", "scope": {}, "evidence": []});
        assert_eq!(text(&none), "shop: no outage (last 10 minutes to x)\n");
    }
}
