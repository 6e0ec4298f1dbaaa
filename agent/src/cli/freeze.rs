//! `slo-agent freeze check|status`: ask a running agent whether a service
//! may deploy, for pipelines (GitHub Actions, GitLab CI, any shell step).
//!
//! Exit codes of `check`: 0 the change may go ahead, 1 the service is frozen
//! for it, 2 the agent could not be asked or its answer made no sense. A
//! pipeline that must not stop when the agent is down passes `--fail-open`
//! (then 2 becomes 0, with a warning); the default fails closed.
//!
//! An agent served over TLS (`api.tls`) is asked at an `https://` URL;
//! `--ca-file` trusts a private CA, `--cert-file`/`--key-file` present a
//! client certificate to an agent that requires one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::spec::policy::ChangeType;

#[derive(Subcommand, Debug)]
pub enum FreezeCommand {
    /// May this service deploy this change now? Exit 0 yes, 1 frozen, 2 no answer.
    Check {
        /// The service (as the SLO specs name it).
        #[arg(long)]
        service: String,
        /// What the deploy changes: feature, hotfix or rollback.
        #[arg(long, default_value = "feature")]
        change: String,
        /// Answer 0 (with a warning) when the agent cannot be asked.
        #[arg(long)]
        fail_open: bool,
        /// Print the agent's JSON answer instead of the summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Freeze or unfreeze a service by hand (role approve), or end such an override.
    Override {
        /// The service to freeze or unfreeze.
        #[arg(long, required_unless_present = "end")]
        service: Option<String>,
        /// `freeze` or `unfreeze`.
        #[arg(long, required_unless_present = "end")]
        action: Option<String>,
        /// Why (shown in every answer while it lasts).
        #[arg(long, required_unless_present = "end")]
        reason: Option<String>,
        /// How long it lasts (default 4h, at most 30d).
        #[arg(long)]
        expires_in: Option<String>,
        /// End the override with this id now instead.
        #[arg(long, conflicts_with_all = ["service", "action", "reason", "expires_in"])]
        end: Option<String>,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Ask for a bypass of a freeze (role deploy), or revoke one.
    Bypass {
        #[arg(long, required_unless_present = "revoke")]
        service: Option<String>,
        /// feature, hotfix or rollback.
        #[arg(long, default_value = "feature")]
        change: String,
        #[arg(long, required_unless_present = "revoke")]
        reason: Option<String>,
        #[arg(long)]
        expires_in: Option<String>,
        /// Revoke the bypass with this id instead.
        #[arg(long, conflicts_with_all = ["service", "reason", "expires_in"])]
        revoke: Option<String>,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Approve a bypass (role approve; not your own, once).
    Approve {
        /// The bypass's id.
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// The active overrides and open bypasses.
    List {
        /// Also those that ended within the last 7 days.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Every known service's freeze state, as a table.
    Status {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        agent: AgentArgs,
    },
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The agent's base URL [env: SLO_AGENT_URL; default http://127.0.0.1:9464].
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// A file holding an API token (needed when the agent requires tokens for reads)
    /// [env: SLO_AGENT_TOKEN holds the token itself].
    #[arg(long)]
    pub(crate) token_file: Option<PathBuf>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 10)]
    pub(crate) timeout: u64,
    /// For an https URL: a PEM file of the CA that signed the agent's certificate, trusted
    /// besides the public roots [env: SLO_AGENT_CA_FILE].
    #[arg(long)]
    pub(crate) ca_file: Option<PathBuf>,
    /// A client certificate (PEM), for an agent that requires one (`api.tls.client_ca_file`)
    /// [env: SLO_AGENT_CERT_FILE]; needs --key-file.
    #[arg(long)]
    pub(crate) cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM) [env: SLO_AGENT_KEY_FILE].
    #[arg(long)]
    pub(crate) key_file: Option<PathBuf>,
}

/// An option's value, else its environment variable's (unless empty).
fn or_env(value: &Option<PathBuf>, var: &str) -> Option<PathBuf> {
    value.clone().or_else(|| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from))
}

fn read_file(what: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading the {what} {}: {e}", path.display()))
}

/// The HTTP client, trusting `--ca-file` and presenting `--cert-file` when given.
fn client(agent: &AgentArgs, timeout: Duration) -> Result<reqwest::Client, String> {
    client_with(agent, reqwest::Client::builder().timeout(timeout))
}

/// [`client`] from a builder the caller set timeouts on.
pub(crate) fn client_with(agent: &AgentArgs, mut b: reqwest::ClientBuilder) -> Result<reqwest::Client, String> {
    if let Some(path) = or_env(&agent.ca_file, "SLO_AGENT_CA_FILE") {
        let certs = reqwest::Certificate::from_pem_bundle(&read_file("CA file", &path)?)
            .map_err(|e| format!("the CA file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("the CA file {} holds no PEM certificate", path.display()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    match (or_env(&agent.cert_file, "SLO_AGENT_CERT_FILE"), or_env(&agent.key_file, "SLO_AGENT_KEY_FILE")) {
        (Some(cert), Some(key)) => {
            let mut pem = read_file("client certificate", &cert)?;
            pem.push(b'\n');
            pem.extend(read_file("client key", &key)?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("the client certificate {} and key {}: {e}", cert.display(), key.display()))?;
            b = b.identity(id);
        }
        (Some(_), None) => return Err("--cert-file needs --key-file (or SLO_AGENT_KEY_FILE)".into()),
        (None, Some(_)) => return Err("--key-file needs --cert-file (or SLO_AGENT_CERT_FILE)".into()),
        (None, None) => {}
    }
    b.build().map_err(|e| with_causes(&e))
}

/// An error with its causes: reqwest's own text alone does not say that a
/// certificate was refused, or why.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// The agent's answer, or why there is none.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

pub(crate) fn ask(agent: &AgentArgs, path: &str, query: &[(&str, &str)]) -> Result<Answer, String> {
    send(agent, reqwest::Method::GET, path, query, None)
}

/// The URL of `path` on the agent (`--url`, `SLO_AGENT_URL`, or the default
/// listen address) and the token to send (`--token-file`, `SLO_AGENT_TOKEN`).
pub(crate) fn target(
    agent: &AgentArgs,
    path: &str,
    query: &[(&str, &str)],
) -> Result<(String, Option<String>), String> {
    let base = agent
        .url
        .clone()
        .or_else(|| std::env::var("SLO_AGENT_URL").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("http://{}", crate::config::DEFAULT_LISTEN));
    let token = match &agent.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("reading the token file {}: {e}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => std::env::var("SLO_AGENT_TOKEN").ok().filter(|t| !t.is_empty()),
    };
    let mut url = reqwest::Url::parse(&base).map_err(|e| format!("the agent URL {base:?}: {e}"))?;
    url.set_path(&format!("{}{path}", url.path().trim_end_matches('/')));
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok((url.to_string(), token))
}

/// One request to the agent; the answer must be JSON.
pub(crate) fn send(
    agent: &AgentArgs,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
) -> Result<Answer, String> {
    let (url, token) = target(agent, path, query)?;
    let timeout = Duration::from_secs(agent.timeout.max(1));
    let client = client(agent, timeout)?;
    let fetched = crate::runtime::block_on(async move {
        let mut req = client.request(method, &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| format!("asking {url}: {}", with_causes(&e)))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| format!("reading the answer of {url}: {e}"))?;
        Ok::<_, String>((url, status, bytes))
    })
    .map_err(|e| format!("{e:#}"))??;
    let (url, status, bytes) = fetched;
    let body: Value = serde_json::from_slice(&bytes).map_err(|_| {
        format!(
            "{url} answered {status} with something that is not JSON: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    })?;
    Ok(Answer { status, body })
}

pub fn run(command: FreezeCommand) -> ExitCode {
    match command {
        FreezeCommand::Check { service, change, fail_open, json, agent } => {
            let Some(change) = ChangeType::parse(&change) else {
                eprintln!("error: --change must be feature, hotfix or rollback, not {change:?}");
                return ExitCode::from(2);
            };
            let query = [("service", service.as_str()), ("change", change.as_str())];
            match ask(&agent, "/api/v1/freeze", &query).and_then(|a| verdict(&a)) {
                Ok((allowed, body)) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
                    } else {
                        print!("{}", summary(&body, allowed));
                    }
                    ExitCode::from(if allowed { 0 } else { 1 })
                }
                Err(why) if fail_open => {
                    eprintln!("warning: no freeze answer ({why}); going ahead because of --fail-open");
                    ExitCode::SUCCESS
                }
                Err(why) => {
                    eprintln!("error: no freeze answer: {why}");
                    eprintln!("(failing closed; pass --fail-open to go ahead when the agent cannot be asked)");
                    ExitCode::from(2)
                }
            }
        }
        FreezeCommand::Override { service, action, reason, expires_in, end, agent } => {
            let answer = match end {
                Some(id) => send(&agent, reqwest::Method::DELETE, &format!("/api/v1/freeze/overrides/{id}"), &[], None),
                None => {
                    let body = serde_json::json!({"service": service, "action": action, "reason": reason, "expires_in": expires_in});
                    send(&agent, reqwest::Method::POST, "/api/v1/freeze/overrides", &[], Some(strip_nulls(body)))
                }
            };
            change_done(answer, |b| {
                format!(
                    "{} {} override {} by {} until {}: {}\n",
                    if b["ended_by"].is_null() { "made" } else { "ended" },
                    b["action"].as_str().unwrap_or("?"),
                    b["id"].as_str().unwrap_or("?"),
                    b["created_by"].as_str().unwrap_or("?"),
                    b["expires_at"].as_str().unwrap_or("?"),
                    b["reason"].as_str().unwrap_or("")
                )
            })
        }
        FreezeCommand::Bypass { service, change, reason, expires_in, revoke, agent } => {
            let answer = match revoke {
                Some(id) => send(&agent, reqwest::Method::DELETE, &format!("/api/v1/freeze/bypasses/{id}"), &[], None),
                None => {
                    let body = serde_json::json!({"service": service, "change": change, "reason": reason, "expires_in": expires_in});
                    send(&agent, reqwest::Method::POST, "/api/v1/freeze/bypasses", &[], Some(strip_nulls(body)))
                }
            };
            change_done(answer, bypass_line)
        }
        FreezeCommand::Approve { id, comment, agent } => {
            let body = strip_nulls(serde_json::json!({"comment": comment}));
            change_done(
                send(&agent, reqwest::Method::POST, &format!("/api/v1/freeze/bypasses/{id}/approve"), &[], Some(body)),
                bypass_line,
            )
        }
        FreezeCommand::List { all, agent } => {
            let query: &[(&str, &str)] = if all { &[("all", "true")] } else { &[] };
            let overrides = ask(&agent, "/api/v1/freeze/overrides", query);
            let bypasses = ask(&agent, "/api/v1/freeze/bypasses", query);
            match (overrides, bypasses) {
                (Ok(o), Ok(b)) if o.status == 200 && b.status == 200 => {
                    let mut out = String::new();
                    for x in o.body["overrides"].as_array().into_iter().flatten() {
                        out.push_str(&format!(
                            "{:<8} {:<12} {}  by {} until {}: {}\n",
                            x["action"].as_str().unwrap_or("?"),
                            x["service"].as_str().unwrap_or("?"),
                            x["id"].as_str().unwrap_or("?"),
                            x["created_by"].as_str().unwrap_or("?"),
                            x["expires_at"].as_str().unwrap_or("?"),
                            x["reason"].as_str().unwrap_or("")
                        ));
                    }
                    for x in b.body["bypasses"].as_array().into_iter().flatten() {
                        out.push_str(&bypass_line(x));
                    }
                    if out.is_empty() {
                        out.push_str("no overrides or bypasses\n");
                    }
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                (Ok(a), _) | (_, Ok(a)) if a.status != 200 => {
                    eprintln!("error: the agent answered {}: {}", a.status, error_text(&a.body));
                    ExitCode::from(2)
                }
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
                _ => ExitCode::from(2),
            }
        }
        FreezeCommand::Status { json, agent } => match ask(&agent, "/api/v1/freeze", &[]) {
            Ok(a) if a.status == 200 && a.body["services"].is_array() => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&a.body).unwrap_or_default());
                } else {
                    print!("{}", table(&a.body));
                }
                ExitCode::SUCCESS
            }
            Ok(a) => {
                eprintln!("error: the agent answered {}: {}", a.status, error_text(&a.body));
                ExitCode::from(2)
            }
            Err(why) => {
                eprintln!("error: {why}");
                ExitCode::from(2)
            }
        },
    }
}

/// Drop null fields (options not given) from a request body.
fn strip_nulls(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
    }
    v
}

fn bypass_line(b: &Value) -> String {
    let approvals: Vec<&str> =
        b["approvals"].as_array().into_iter().flatten().filter_map(|a| a["by"].as_str()).collect();
    format!(
        "bypass   {:<12} {}  {} {} by {}, {} of {} approvals ({}) until {}: {}\n",
        b["service"].as_str().unwrap_or("?"),
        b["id"].as_str().unwrap_or("?"),
        b["state"].as_str().unwrap_or("?"),
        b["change"].as_str().unwrap_or("?"),
        b["requested_by"].as_str().unwrap_or("?"),
        approvals.len(),
        b["approvers_needed"].as_u64().unwrap_or(0),
        if approvals.is_empty() { "none".to_string() } else { approvals.join(", ") },
        b["expires_at"].as_str().unwrap_or("?"),
        b["reason"].as_str().unwrap_or("")
    )
}

/// The outcome of a change: 0 and a line when the agent made it (200/201),
/// 1 when it refused it for what it is (403, 404, 409, 410, 400), 2 when it
/// could not be asked.
pub(crate) fn change_done(answer: Result<Answer, String>, line: impl Fn(&Value) -> String) -> ExitCode {
    match answer {
        Ok(a) if a.status == 200 || a.status == 201 => {
            print!("{}", line(&a.body));
            ExitCode::SUCCESS
        }
        Ok(a) if (400..500).contains(&a.status) => {
            eprintln!("refused ({}): {}", a.status, error_text(&a.body));
            ExitCode::from(1)
        }
        Ok(a) => {
            eprintln!("error: the agent answered {}: {}", a.status, error_text(&a.body));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The verdict of a freeze answer: `allowed` must agree with the status
/// code (200 allowed, 423 not); anything else is no answer.
fn verdict(a: &Answer) -> Result<(bool, Value), String> {
    let allowed = a.body["allowed"].as_bool();
    match (a.status, allowed) {
        (200, Some(true)) => Ok((true, a.body.clone())),
        (423, Some(false)) => Ok((false, a.body.clone())),
        (200 | 423, _) => Err(format!("the agent answered {} with `allowed` {:?}", a.status, a.body["allowed"])),
        (status, _) => Err(format!("the agent answered {status}: {}", error_text(&a.body))),
    }
}

pub(crate) fn error_text(body: &Value) -> String {
    let mut s = body["error"].as_str().unwrap_or("(no error message)").to_string();
    if let Some(known) = body["known_services"].as_array() {
        let names: Vec<&str> = known.iter().filter_map(Value::as_str).collect();
        s.push_str(&format!("; known services: {}", names.join(", ")));
    }
    s
}

fn summary(body: &Value, allowed: bool) -> String {
    let service = body["service"].as_str().unwrap_or("?");
    let change = body["change"].as_str().unwrap_or("?");
    let status = body["status"].as_str().unwrap_or("?");
    let mut out = if allowed {
        format!("ALLOWED: {service} may deploy a {change} change (status {status}")
    } else {
        format!("FROZEN: {service} may not deploy a {change} change (status {status}")
    };
    out.push_str(&format!(", policy {})\n", body["policy"].as_str().unwrap_or("?")));
    for r in body["reasons"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  - {}: {} (since {})\n",
            r["kind"].as_str().unwrap_or("?"),
            r["message"].as_str().unwrap_or(""),
            r["since"].as_str().unwrap_or("?")
        ));
    }
    if !allowed {
        let through: Vec<&str> =
            body["never_block"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if !through.is_empty() {
            out.push_str(&format!("  ({} changes are not blocked)\n", through.join(" and ")));
        }
    }
    out
}

fn table(body: &Value) -> String {
    let mut rows = vec![["SERVICE".to_string(), "STATUS".into(), "FROZEN".into(), "POLICY".into(), "WHY".into()]];
    for s in body["services"].as_array().into_iter().flatten() {
        let why: Vec<&str> =
            s["reasons"].as_array().into_iter().flatten().filter_map(|r| r["message"].as_str()).collect();
        rows.push([
            s["service"].as_str().unwrap_or("?").to_string(),
            s["status"].as_str().unwrap_or("?").to_string(),
            if s["frozen"].as_bool() == Some(true) { "yes".into() } else { "no".into() },
            s["policy"].as_str().unwrap_or("?").to_string(),
            why.join("; "),
        ]);
    }
    let widths: Vec<usize> = (0..4).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", r[i], w = *w));
        }
        out.push_str(&r[4]);
        out.push('\n');
    }
    out.push_str(&format!("evaluated at {}", body["evaluated_at"].as_str().unwrap_or("?")));
    // The fleet's answer (`freeze.source: prometheus`) says so; this agent's own does not need to.
    if let Some(source) = body["source"].as_str().filter(|s| *s != "local") {
        out.push_str(&format!(" from the fleet's figures ({source})"));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_needs_the_status_code_and_the_body_to_agree() {
        let a = |status, body: &str| Answer { status, body: serde_json::from_str(body).unwrap() };
        assert!(verdict(&a(200, r#"{"allowed": true}"#)).unwrap().0);
        assert!(!verdict(&a(423, r#"{"allowed": false}"#)).unwrap().0);
        assert!(verdict(&a(200, r#"{"allowed": false}"#)).is_err());
        assert!(verdict(&a(423, r#"{}"#)).is_err());
        let e =
            verdict(&a(404, r#"{"error": "no SLO has the service \"x\"", "known_services": ["a", "b"]}"#)).unwrap_err();
        assert_eq!(e, "the agent answered 404: no SLO has the service \"x\"; known services: a, b");
    }

    #[test]
    fn the_status_table_says_when_the_answer_is_the_fleets() {
        let body = |source: &str| {
            serde_json::json!({"evaluated_at": "2026-12-04T16:00:00Z", "source": source, "services": [
                {"service": "checkout", "status": "FROZEN", "allowed": false, "frozen": true, "reasons": []}
            ]})
        };
        let fleet = table(&body("prometheus"));
        assert!(fleet.contains("checkout"), "{fleet}");
        assert!(
            fleet.ends_with("evaluated at 2026-12-04T16:00:00Z from the fleet's figures (prometheus)\n"),
            "{fleet}"
        );
        assert!(table(&body("local")).ends_with("evaluated at 2026-12-04T16:00:00Z\n"));
    }
}
