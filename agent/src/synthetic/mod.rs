//! Synthetic checks: hop probes (`probes:`) and multi-step journeys
//! (`journeys:`), as `agent.yaml` declares them.
//!
//! This module holds what the user wrote, checked whole at load with every
//! problem at its `file:line:col` ([`config`]): probe names, intervals,
//! hops, expectations, journey steps with their requests, extractions and
//! `${variables}` (each used variable must be extracted by an earlier step),
//! and values read from files or the environment (`<key>_file`,
//! `<key>_env`, read at each run so a rotated secret is picked up; a
//! missing file or variable at load is an error). Values read that way are
//! [`Text::File`] / [`Text::Env`]: never logged, never exported. The
//! tests read whole `agent.yaml` files, so they live in `config`.
//!
//! And running them: [`run`] schedules probes and journeys ([`schedule`]),
//! [`journey`] walks one journey run, [`metrics`] renders the journeys'
//! last runs (`docs/probes.md`, "Journeys").

pub mod config;
pub mod events;
pub mod journey;
pub mod metrics;
pub mod run;
pub mod schedule;
pub mod trace;

use std::path::PathBuf;
use std::time::Duration;

/// A string the user wrote, or one read at run time (a secret).
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    Plain(String),
    /// Read from this file at each run (trimmed).
    File(PathBuf),
    /// Read from this environment variable at each run.
    Env(String),
}

impl Text {
    /// Whether the value is a secret that must not be logged.
    pub fn is_secret(&self) -> bool {
        !matches!(self, Text::Plain(_))
    }

    /// The value now. Files and variables are read again each time.
    pub fn value(&self) -> Result<String, String> {
        match self {
            Text::Plain(s) => Ok(s.clone()),
            Text::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("cannot read {}: {e}", p.display())),
            Text::Env(v) => std::env::var(v).map_err(|_| format!("environment variable {v} is not set")),
        }
    }
}

/// A JSON body with strings that may come from files, the environment, or
/// `${variables}`.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Text(Text),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

/// Which status codes pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusMatch {
    /// 200–299 (the default, as blackbox_exporter's).
    Success,
    Codes(Vec<u16>),
}

impl StatusMatch {
    pub fn accepts(&self, code: u16) -> bool {
        match self {
            StatusMatch::Success => (200..300).contains(&code),
            StatusMatch::Codes(c) => c.contains(&code),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    Http1,
    Http2,
}

/// A JSON path of the supported subset: `$`, `.key`, `['key']`, `[index]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    pub text: String,
    pub steps: Vec<PathStep>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// The value at this path in `v`, if there is one.
    pub fn find<'v>(&self, v: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        let mut at = v;
        for s in &self.steps {
            at = match s {
                PathStep::Key(k) => at.get(k.as_str())?,
                PathStep::Index(i) => at.get(*i)?,
            };
        }
        Some(at)
    }
}

/// What a response must be.
#[derive(Debug, Clone)]
pub struct Expect {
    pub status: StatusMatch,
    /// The whole request (all phases) within this long; over it the result
    /// is `degraded` for journeys and a failed assertion for probes.
    pub latency: Option<Duration>,
    pub body_matches: Vec<regex_lite::Regex>,
    pub body_not_matches: Vec<regex_lite::Regex>,
    /// Header name (lower case) → a pattern its value must match.
    pub headers: Vec<(String, regex_lite::Regex)>,
    /// JSON path → the value it must hold.
    pub json: Vec<(JsonPath, serde_json::Value)>,
    pub http_version: Option<HttpVersion>,
    /// Must (true) or must not (false) be TLS.
    pub tls: Option<bool>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            status: StatusMatch::Success,
            latency: None,
            body_matches: Vec::new(),
            body_not_matches: Vec::new(),
            headers: Vec::new(),
            json: Vec::new(),
            http_version: None,
            tls: None,
        }
    }
}

impl PartialEq for Expect {
    fn eq(&self, o: &Expect) -> bool {
        let pats = |v: &[regex_lite::Regex]| v.iter().map(|r| r.as_str().to_string()).collect::<Vec<_>>();
        let hdrs = |v: &[(String, regex_lite::Regex)]| {
            v.iter().map(|(k, r)| (k.clone(), r.as_str().to_string())).collect::<Vec<_>>()
        };
        self.status == o.status
            && self.latency == o.latency
            && pats(&self.body_matches) == pats(&o.body_matches)
            && pats(&self.body_not_matches) == pats(&o.body_not_matches)
            && hdrs(&self.headers) == hdrs(&o.headers)
            && self.json == o.json
            && self.http_version == o.http_version
            && self.tls == o.tls
    }
}

/// Which address family to try first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    Ip4,
    Ip6,
}

/// How to reach and check one URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    /// A URL template (may hold `${variables}` in journeys).
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, Text)>,
    pub body: Option<Body>,
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(JsonTemplate),
    Form(Vec<(String, Text)>),
    Raw(Text),
}

/// Connection settings of a probe or journey.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub ip_family: IpFamily,
    /// Try the other family when the preferred one has no address.
    pub ip_fallback: bool,
    pub follow_redirects: bool,
    pub http_version: Option<HttpVersion>,
}

/// `probes[]`: one logical endpoint probed through its hops.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    pub name: String,
    /// The service its results count for (default: the probe's name).
    pub service: String,
    pub interval: Duration,
    /// Tries before a failure counts (1 + retries).
    pub retries: u32,
    pub connection: Connection,
    /// In order from the client inwards (edge, gateway, function).
    pub hops: Vec<Target>,
    /// When its https hops' certificates alert (`certificates:`, else the
    /// top-level `certificates:`, else 21 days for a ticket, 3 for a page).
    pub certificates: crate::alert::certs::CertificatePolicy,
}

/// `journeys[].steps[].extract`: where a variable's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Extract {
    Json(JsonPath),
    Header(String),
    /// The first capture group, else the whole match.
    Regex(String),
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub target: Target,
    pub query: Vec<(String, Text)>,
    pub extract: Vec<(String, Extract)>,
    /// Pause after this step (not after the last one, nor after a failure).
    pub think_time: Duration,
    /// This step's whole request at most; default the journey's `timeout`.
    pub timeout: Option<Duration>,
}

/// `journeys[]`: a multi-step walk through the site.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyConfig {
    pub name: String,
    pub service: String,
    pub interval: Duration,
    pub connection: Connection,
    pub steps: Vec<Step>,
}

/// The `probes:` and `journeys:` of `agent.yaml`, and the region this
/// agent labels its results with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyntheticConfig {
    /// `region:`, else `AWS_REGION` / `AWS_DEFAULT_REGION`, else `local`.
    pub region: String,
    pub probes: Vec<ProbeConfig>,
    pub journeys: Vec<JourneyConfig>,
    /// `traces:`: where the probes' and journeys' traces go; none when unset.
    pub traces: Option<trace::TraceConfig>,
}
