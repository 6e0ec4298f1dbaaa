//! GitHub custom deployment protection rules, answered as a GitHub App.
//!
//! GitHub sends the `deployment_protection_rule` webhook when a workflow job
//! reaches an environment that has the App's rule enabled; the App answers
//! by calling `POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule`
//! (the payload's `deployment_callback_url`) with an installation token.
//!
//! This module knows GitHub's shapes: the payload ([`ProtectionRuleEvent`]),
//! which service and change type it is about ([`GithubConfig::service_for`],
//! [`change_of`]), the review's comment ([`comment`]), where the token may
//! be sent ([`callback_target`]), the App's key and JWT ([`AppKey`]), and the
//! client that delivers the review ([`client::GithubApp`]). The route is
//! `api::github`.
//!
//! **Architecture invariant:** the installation token is only ever sent to
//! the configured `api_url`'s scheme, host and port, on the review endpoint
//! of the repository the webhook named: the callback URL comes from the
//! request body.

pub mod client;
pub mod config;

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use crate::secret::Secret;
use crate::spec::glob::Glob;
use crate::spec::policy::ChangeType;

pub use client::GithubApp;

/// GitHub's default REST API root.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// The longest comment GitHub takes on a review (characters).
pub const MAX_COMMENT_CHARS: usize = 1024;

/// `github:` in agent.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct GithubConfig {
    /// The App's id (digits) or client id (`Iv1.…`), the JWT's `iss`.
    pub app_id: String,
    /// Where the private key was read from (for messages).
    pub private_key_file: PathBuf,
    pub key: Arc<AppKey>,
    /// The webhook secret: `X-Hub-Signature-256` is keyed with it.
    pub webhook_secret: Secret,
    /// The REST API root, without a trailing `/`: `https://api.github.com`,
    /// or `https://HOST/api/v3` for GitHub Enterprise Server.
    pub api_url: String,
    /// Repository (and environment) → service, first match wins.
    pub services: Vec<ServiceMapping>,
}

/// One entry of `github.services`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMapping {
    /// `owner/name`, compared without regard to case (as GitHub does).
    pub repository: String,
    /// The environments it covers; all when absent.
    pub environment: Option<Glob>,
    pub service: String,
}

impl GithubConfig {
    /// The service a deployment of `repository` (`owner/name`) to
    /// `environment` is about: the first mapping that matches, else the
    /// repository's name.
    pub fn service_for(&self, repository: &str, environment: &str) -> String {
        self.services
            .iter()
            .find(|m| {
                m.repository.eq_ignore_ascii_case(repository)
                    && m.environment.as_ref().is_none_or(|g| g.matches(environment))
            })
            .map(|m| m.service.clone())
            .unwrap_or_else(|| repository.rsplit('/').next().unwrap_or(repository).to_string())
    }
}

/// The App's RSA private key, which signs its JWTs (RS256).
pub struct AppKey {
    pair: ring::signature::RsaKeyPair,
}

impl AppKey {
    /// A PEM key as GitHub hands it out (`BEGIN RSA PRIVATE KEY`, PKCS#1),
    /// or as PKCS#8 (`BEGIN PRIVATE KEY`).
    pub fn from_pem(text: &str) -> Result<AppKey, String> {
        let (label, der) = pem(text)?;
        let pair = match label.as_str() {
            "RSA PRIVATE KEY" => ring::signature::RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => ring::signature::RsaKeyPair::from_pkcs8(&der),
            other => {
                return Err(format!(
                    "a `{other}` PEM block is not an RSA private key (expected `BEGIN RSA PRIVATE KEY` or `BEGIN PRIVATE KEY`)"
                ));
            }
        };
        pair.map(|pair| AppKey { pair }).map_err(|e| format!("not an RSA private key of 2048 to 8192 bits: {e}"))
    }

    /// A JWT that authenticates as the App (`iss`) from `now_ms` on: `iat`
    /// a minute in the past (GitHub's advice against clock drift), `exp` nine
    /// minutes ahead (GitHub takes at most ten).
    pub fn jwt(&self, iss: &str, now_ms: i64) -> String {
        let now = now_ms.div_euclid(1000);
        // An App id is a number in the JWT; a client id is a string.
        let iss = match iss.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::from(iss),
        };
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        let claims = serde_json::json!({"iat": now - 60, "exp": now + 9 * 60, "iss": iss});
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signing_input = format!("{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()));
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            // ring fails only on a wrong signature length (sized above) or a
            // broken random source (the OS's; PKCS#1 v1.5 does not use it).
            .expect("RS256 signing with a buffer of the modulus length");
        format!("{signing_input}.{}", b64.encode(signature))
    }

    fn modulus_bits(&self) -> usize {
        self.pair.public().modulus_len() * 8
    }
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppKey(RSA {} bits)", self.modulus_bits())
    }
}

impl PartialEq for AppKey {
    fn eq(&self, other: &AppKey) -> bool {
        self.pair.public().as_ref() == other.pair.public().as_ref()
    }
}

/// The label and bytes of the first PEM block of `text`.
fn pem(text: &str) -> Result<(String, Vec<u8>), String> {
    let start = text.find("-----BEGIN ").ok_or("no `-----BEGIN …-----` line: not a PEM file")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or("a broken `-----BEGIN` line")?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body.find(&end_marker).ok_or_else(|| format!("no `{end_marker}` line"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if b64.contains(':') {
        return Err("the key is encrypted (PEM headers); GitHub's keys are not: use the file GitHub gave".into());
    }
    let der = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("the PEM body: {e}"))?;
    Ok((label, der))
}

/// The `deployment_protection_rule` webhook's payload, as far as the agent
/// reads it (GitHub sends more).
#[derive(Debug, Clone, Deserialize)]
pub struct ProtectionRuleEvent {
    pub action: String,
    pub environment: String,
    /// What triggered the run (`push`, `workflow_dispatch`, …).
    #[serde(default)]
    pub event: Option<String>,
    pub deployment_callback_url: String,
    #[serde(default)]
    pub deployment: Option<Deployment>,
    pub repository: Repository,
    pub installation: Installation,
    #[serde(default)]
    pub sender: Option<Sender>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// What the deployment's creator attached: an object, a JSON string, or
    /// nothing.
    #[serde(default)]
    pub payload: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    pub id: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Sender {
    pub login: String,
}

/// The change type of a deployment: its payload's `change` (`feature`,
/// `hotfix`, `rollback`), else `feature`. An unknown value is judged as
/// `feature` too, the type a freeze blocks: failing closed. The second value
/// says what was not understood.
pub fn change_of(deployment: Option<&Deployment>) -> (ChangeType, Option<String>) {
    let payload = deployment.map(|d| &d.payload);
    // GitHub keeps the payload as the creator gave it: often a JSON string.
    let parsed;
    let object = match payload {
        Some(Value::Object(_)) => payload,
        Some(Value::String(s)) if s.trim_start().starts_with('{') => {
            parsed = serde_json::from_str::<Value>(s).ok();
            parsed.as_ref()
        }
        _ => None,
    };
    match object.and_then(|o| o.get("change")) {
        None | Some(Value::Null) => (ChangeType::Feature, None),
        Some(Value::String(c)) => match ChangeType::parse(c) {
            Some(t) => (t, None),
            None => (ChangeType::Feature, Some(one_line(c, 40))),
        },
        Some(other) => (ChangeType::Feature, Some(one_line(&other.to_string(), 40))),
    }
}

/// Text for a comment: control characters become spaces, at most `max`
/// characters (an ellipsis marks a cut).
pub fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(max + 1).collect();
    if out.chars().count() > max {
        out = out.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
    }
    out
}

/// Whether a freeze answer lets the deployment go: `approved` or `rejected`.
pub fn state(allowed: bool) -> &'static str {
    if allowed { "approved" } else { "rejected" }
}

/// The review's comment for a freeze answer (the JSON of
/// `GET /api/v1/freeze?service=&change=`): the verdict with status and
/// policy on the first line, then one line per reason and per override,
/// at most [`MAX_COMMENT_CHARS`].
pub fn comment(answer: &Value, note: Option<&str>) -> String {
    let text = |k: &str| answer[k].as_str().unwrap_or("?");
    let allowed = answer["allowed"].as_bool() == Some(true);
    let (service, change) = (text("service"), text("change"));
    let verdict = if allowed { "may deploy" } else { "may not deploy" };
    let mut out = format!(
        "slo-agent: {service} {verdict} a {change} change (status {}, policy {}).",
        text("status"),
        text("policy")
    );
    let frozen = answer["frozen"].as_bool() == Some(true);
    let never_block: Vec<&str> =
        answer["never_block"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if frozen && allowed && never_block.contains(&change) {
        out.push_str(&format!(" The service is frozen, but {change} changes are not blocked."));
    }
    for r in answer["reasons"].as_array().into_iter().flatten() {
        let kind = r["kind"].as_str().unwrap_or("?");
        out.push_str(&format!("\n- {kind}: {}", one_line(r["message"].as_str().unwrap_or(""), 300)));
    }
    for o in answer["overrides"].as_array().into_iter().flatten() {
        let who = o["created_by"].as_str().or(o["requested_by"].as_str()).unwrap_or("?");
        let what = match o["action"].as_str() {
            Some("bypass") => format!(
                "bypass of {} changes ({})",
                o["change"].as_str().unwrap_or("?"),
                o["state"].as_str().unwrap_or("?")
            ),
            Some(a) => format!("manual {a}"),
            None => "override".into(),
        };
        let reason = one_line(o["reason"].as_str().unwrap_or(""), 200);
        out.push_str(&format!("\n- {what} by {}: {reason}", one_line(who, 64)));
    }
    if let Some(n) = note {
        out.push_str(&format!("\n{}", one_line(n, 300)));
    }
    cut_chars(&out, MAX_COMMENT_CHARS)
}

/// The comment when the agent gives no freeze answer (an unknown service,
/// no evaluation yet): a rejection, saying why.
pub fn refusal_comment(why: &str) -> String {
    cut_chars(&format!("slo-agent: rejected: {why}"), MAX_COMMENT_CHARS)
}

/// `text` cut to `max` characters (an ellipsis marks a cut), newlines kept.
fn cut_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The review endpoint a webhook's `deployment_callback_url` names, if the
/// installation token may be sent there: the same scheme, host and port as
/// `api_url`, under its path, and exactly
/// `/repos/{repository}/actions/runs/{run_id}/deployment_protection_rule`
/// for the webhook's repository. Returns the URL and the run id.
pub fn callback_target(api_url: &str, callback: &str, repository: &str) -> Result<(reqwest::Url, u64), String> {
    let api = reqwest::Url::parse(api_url).map_err(|e| format!("`api_url` is not a URL: {e}"))?;
    let url = reqwest::Url::parse(callback).map_err(|_| "the callback URL is not a URL".to_string())?;
    let origin_matches = url.scheme() == api.scheme()
        && url.host_str() == api.host_str()
        && url.port_or_known_default() == api.port_or_known_default();
    if !origin_matches || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "the callback URL is not on {}://{}:{}; the installation token is only sent to `github.api_url`",
            api.scheme(),
            api.host_str().unwrap_or("?"),
            api.port_or_known_default().unwrap_or(0)
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the callback URL has a query or fragment".into());
    }
    let base = api.path().trim_end_matches('/');
    let rest = url.path().strip_prefix(base).ok_or("the callback URL is not under `github.api_url`'s path")?;
    let shape = || {
        format!("the callback URL is not `{base}/repos/{repository}/actions/runs/<run id>/deployment_protection_rule`")
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let [empty, "repos", owner, name, "actions", "runs", run, "deployment_protection_rule"] = parts.as_slice() else {
        return Err(shape());
    };
    let same_repo = format!("{owner}/{name}").eq_ignore_ascii_case(repository);
    let run = run.parse::<u64>().ok().filter(|_| empty.is_empty() && same_repo).ok_or_else(shape)?;
    Ok((url, run))
}

#[cfg(test)]
mod tests;
