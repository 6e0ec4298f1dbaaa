//! `slo-agent probe URL`: one probe from the command line, its phases and
//! its result. Exit 0 when it succeeded, 1 when it failed (a request that
//! did not complete or an assertion not met), 2 for a usage error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::probe::assert::Pattern;
use crate::probe::{
    Assertions, HeaderMatch, HttpVersion, IpFamily, JsonValueCheck, Outcome, ProbeSpec, TlsExpectation, TlsOptions,
};
use crate::yaml::values::parse_duration;

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The URL to request (http or https).
    pub url: String,
    /// A valid status (repeatable); default any 2xx.
    #[arg(long = "expect-status", value_name = "CODE")]
    pub expect_status: Vec<u16>,
    /// A regex the body must match (repeatable).
    #[arg(long = "body-matches", value_name = "REGEX")]
    pub body_matches: Vec<String>,
    /// A regex the body must not match (repeatable).
    #[arg(long = "body-not-matches", value_name = "REGEX")]
    pub body_not_matches: Vec<String>,
    /// `NAME: REGEX`, a header some value of which must match (repeatable).
    #[arg(long = "header-matches", value_name = "NAME: REGEX")]
    pub header_matches: Vec<String>,
    /// `NAME: REGEX`, a header no value of which may match (repeatable).
    #[arg(long = "header-not-matches", value_name = "NAME: REGEX")]
    pub header_not_matches: Vec<String>,
    /// `POINTER=JSON`, a value in the JSON body, e.g. `/status="ok"` (repeatable).
    #[arg(long = "json-value", value_name = "POINTER=JSON")]
    pub json_value: Vec<String>,
    /// A valid HTTP version of the response, `HTTP/1.1` or `HTTP/2.0` (repeatable).
    #[arg(long = "expect-http-version", value_name = "VERSION")]
    pub expect_http_version: Vec<String>,
    /// Fail unless the final request was over TLS.
    #[arg(long, conflicts_with = "expect_plaintext")]
    pub expect_tls: bool,
    /// Fail if the final request was over TLS.
    #[arg(long)]
    pub expect_plaintext: bool,
    /// Fail if the attempt took longer, e.g. `800ms`.
    #[arg(long, value_name = "DURATION")]
    pub latency_budget: Option<String>,
    /// The HTTP versions offered.
    #[arg(long, value_enum, default_value_t = HttpArg::Auto)]
    pub http_version: HttpArg,
    /// The address family tried first.
    #[arg(long, value_enum, default_value_t = IpArg::Ip4)]
    pub ip: IpArg,
    /// Only the preferred family, no fallback to the other.
    #[arg(long)]
    pub no_ip_fallback: bool,
    /// The request method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// A request header `NAME: VALUE` (repeatable); values are never printed.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// A request body.
    #[arg(long)]
    pub body: Option<String>,
    /// A PEM file of CA certificates trusted besides the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (its expiry is still reported).
    #[arg(long)]
    pub insecure: bool,
    /// The TLS server name, when not the URL's host.
    #[arg(long)]
    pub server_name: Option<String>,
    /// The whole attempt, DNS to the end of the body.
    #[arg(long, default_value = "10s")]
    pub timeout: String,
    /// Attempts after a failed one before the probe counts as failed.
    #[arg(long, default_value_t = 1)]
    pub retries: u32,
    /// Do not follow redirects.
    #[arg(long)]
    pub no_follow: bool,
    /// Redirects followed at most.
    #[arg(long, default_value_t = 10)]
    pub max_redirects: u32,
    /// Body bytes read at most.
    #[arg(long, default_value_t = 10 << 20)]
    pub max_body_bytes: u64,
    /// The probe's name (label `probe`); default the URL's host.
    #[arg(long)]
    pub name: Option<String>,
    /// The hop's name (label `hop`).
    #[arg(long, default_value = "direct")]
    pub hop: String,
    /// The region label; default `AWS_REGION`, else `local`.
    #[arg(long)]
    pub region: Option<String>,
    /// Print the result as JSON.
    #[arg(long, conflicts_with = "metrics")]
    pub json: bool,
    /// Print the result as Prometheus metrics (blackbox_exporter's names).
    #[arg(long)]
    pub metrics: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum HttpArg {
    Auto,
    #[value(name = "1.1")]
    Http1,
    #[value(name = "2")]
    Http2,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum IpArg {
    Ip4,
    Ip6,
}

pub fn run(args: ProbeArgs) -> ExitCode {
    let spec = match spec_of(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match crate::runtime::block_on(crate::probe::run(&spec)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome).unwrap_or_default());
    } else if args.metrics {
        use crate::clock::Clock as _;
        let now = crate::clock::SystemClock.now_ms();
        print!("{}", crate::probe::metrics::render_all_at(std::slice::from_ref(&outcome), now));
    } else {
        print!("{}", human(&outcome));
    }
    if outcome.success { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn split_pair<'a>(text: &'a str, sep: char, what: &str) -> Result<(&'a str, &'a str), String> {
    let (a, b) = text.split_once(sep).ok_or_else(|| format!("{what} `{text}` has no `{sep}`"))?;
    Ok((a.trim(), b.trim()))
}

fn duration(text: &str, what: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| format!("{what} `{text}` is not a duration like 800ms, 5s, 1m"))
}

fn spec_of(a: &ProbeArgs) -> Result<ProbeSpec, String> {
    let url = url::Url::parse(&a.url).map_err(|e| format!("URL `{}`: {e}", a.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("URL `{}`: only http and https are probed", a.url));
    }
    let mut spec = ProbeSpec::new(url);
    if let Some(n) = &a.name {
        spec.name = n.clone();
    }
    spec.hop = a.hop.clone();
    spec.region = a.region.clone().or_else(|| std::env::var("AWS_REGION").ok()).unwrap_or_else(|| "local".into());
    spec.method = a.method.to_ascii_uppercase();
    for h in &a.headers {
        let (n, v) = split_pair(h, ':', "--header")?;
        spec.headers.push((n.to_string(), v.to_string()));
    }
    spec.body = a.body.clone();
    spec.http_version = match a.http_version {
        HttpArg::Auto => HttpVersion::Auto,
        HttpArg::Http1 => HttpVersion::Http1,
        HttpArg::Http2 => HttpVersion::Http2,
    };
    spec.preferred_ip = match a.ip {
        IpArg::Ip4 => IpFamily::Ip4,
        IpArg::Ip6 => IpFamily::Ip6,
    };
    spec.ip_fallback = !a.no_ip_fallback;
    spec.timeout = duration(&a.timeout, "--timeout")?;
    spec.retries = a.retries;
    spec.follow_redirects = !a.no_follow;
    spec.max_redirects = a.max_redirects;
    spec.max_body_bytes = a.max_body_bytes;
    spec.tls =
        TlsOptions { ca_file: a.ca_file.clone(), insecure_skip_verify: a.insecure, server_name: a.server_name.clone() };
    let mut asserts = Assertions { valid_status: a.expect_status.clone(), ..Assertions::default() };
    for r in &a.body_matches {
        asserts.body_must_match.push(Pattern::new(r)?);
    }
    for r in &a.body_not_matches {
        asserts.body_must_not_match.push(Pattern::new(r)?);
    }
    for (list, must_match) in [(&a.header_matches, true), (&a.header_not_matches, false)] {
        for h in list {
            let (name, re) = split_pair(h, ':', "header match")?;
            asserts.headers.push(HeaderMatch {
                name: name.to_ascii_lowercase(),
                pattern: Pattern::new(re)?,
                must_match,
                allow_missing: !must_match,
            });
        }
    }
    for j in &a.json_value {
        let (pointer, value) = split_pair(j, '=', "--json-value")?;
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(format!("--json-value `{j}`: the pointer starts with `/` (RFC 6901)"));
        }
        let expected =
            serde_json::from_str(value).map_err(|e| format!("--json-value `{j}`: the value is not JSON: {e}"))?;
        asserts.json.push(JsonValueCheck { pointer: pointer.to_string(), expected });
    }
    asserts.http_versions = a.expect_http_version.clone();
    asserts.tls = if a.expect_tls {
        TlsExpectation::Required
    } else if a.expect_plaintext {
        TlsExpectation::Forbidden
    } else {
        TlsExpectation::Any
    };
    if let Some(b) = &a.latency_budget {
        asserts.latency_budget = Some(duration(b, "--latency-budget")?);
    }
    spec.assertions = asserts;
    Ok(spec)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// The result for a person: each attempt's phases, TLS, and why it failed.
fn human(o: &Outcome) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "probe {} (hop {}, region {}): {}", o.probe, o.hop, o.region, o.url);
    for (i, a) in o.attempts.iter().enumerate() {
        let label = if i == 0 { "attempt 1".to_string() } else { format!("attempt {} (retry {i})", i + 1) };
        let _ = writeln!(s, "{label}: {}", if a.success() { "ok" } else { "FAILED" });
        if let Some(ip) = a.ip {
            let _ = writeln!(s, "  address      {ip}");
        }
        for (phase, d) in a.phases.named() {
            let _ = writeln!(s, "  {phase:<12} {}", ms(d));
        }
        if let Some(w) = a.request_written {
            let _ = writeln!(s, "  (request written after {} of processing)", ms(w));
        }
        let _ = writeln!(s, "  total        {}", ms(a.duration));
        if let Some(status) = a.status {
            let version = a.http_version.as_deref().unwrap_or("?");
            let _ = writeln!(
                s,
                "  response     {status} {version}, {} body bytes, {} redirect(s)",
                a.body_bytes, a.redirects
            );
        }
        if let Some(t) = &a.tls {
            if !t.version.is_empty() {
                let alpn = t.alpn.as_deref().unwrap_or("-");
                let _ = writeln!(s, "  tls          {} {} (ALPN {alpn})", t.version, t.cipher);
            }
            if let Some(exp) = t.earliest_expiry() {
                let when = jiff::Timestamp::from_second(exp).map(|t| t.to_string()).unwrap_or_else(|_| exp.to_string());
                let verified = if t.verified { "verified" } else { "not verified" };
                let _ = writeln!(s, "  certificate  earliest expiry {when} ({} in chain, {verified})", t.chain.len());
            }
            for p in &t.problems {
                let _ = writeln!(s, "  certificate  {}: {}", p.kind.as_str(), p.text);
            }
        }
        for reason in a.reasons() {
            let _ = writeln!(s, "  failed:      {reason}");
        }
    }
    let verdict = if o.success { "success" } else { "FAILURE" };
    let _ = writeln!(s, "result: {verdict} after {} attempt(s)", o.attempts.len());
    s
}
