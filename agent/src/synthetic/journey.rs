//! One run of a journey: its steps in order, what they carry from step to
//! step, and how each went.
//!
//! A run walks the steps with one cookie jar and one set of variables
//! (`${name}` in URLs, headers, query, form and JSON strings), filled by
//! what earlier steps extracted from their responses (JSON path, header,
//! pattern, cookie). Values read from files or the environment
//! (`<key>_file`, `<key>_env`) are read when the step is sent, never logged
//! and never kept: a step whose value cannot be read fails naming the key.
//! Each step is one request of the probe client ([`crate::probe::run`],
//! phase-timed, no retry: a checkout is not sent twice), checked with the
//! probe's assertions; the step is `ok`, `degraded` (every expectation held
//! but it took longer than its `latency` budget: slow is not failed) or
//! `failed` (naming the unmet expectation). The first failed step ends the
//! run; later steps are `skipped`. Think time is slept between steps.
//!
//! The cookie jar is deliberately small (a synthetic journey talks to one
//! site): cookies are kept per host by name, `Max-Age=0` or an `Expires` in
//! the past deletes one, and every cookie of a host is sent back to it;
//! paths, domains wider than the host and `Secure` are not modelled, and
//! only the final response of a redirected request sets cookies.
//!
//! **Architecture invariant:** a [`JourneyRun`] holds no response header or
//! body and no secret: the kept response is dropped once the step's
//! extractions and cookies are taken from it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Body, Extract, JourneyConfig, JsonTemplate, Step, Text};
use crate::clock::Clock;
use crate::probe::{AssertionFailure, KeptResponse, Outcome, ProbeSpec};

/// Variables of one run of a journey.
pub type Vars = BTreeMap<String, String>;

/// `template` with every `${name}` replaced; an unknown name is an error
/// (config validation makes it impossible, but a failed extraction leaves
/// a variable unset).
pub fn render(template: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| format!("`${{` without `}}` in `{template}`"))?;
        let name = &after[..end];
        out.push_str(vars.get(name).ok_or_else(|| format!("`${{{name}}}` has no value (its extraction failed)"))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A text value now: plain text rendered with the variables; files and
/// environment variables read as they are (never rendered, never logged).
pub fn text(t: &Text, vars: &Vars) -> Result<String, String> {
    match t {
        Text::Plain(s) => render(s, vars),
        secret => secret.value(),
    }
}

/// A JSON body now.
pub fn json(t: &JsonTemplate, vars: &Vars) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match t {
        JsonTemplate::Null => Value::Null,
        JsonTemplate::Bool(b) => Value::Bool(*b),
        JsonTemplate::Number(n) => Value::Number(n.clone()),
        JsonTemplate::Text(s) => Value::String(text(s, vars)?),
        JsonTemplate::Array(items) => Value::Array(items.iter().map(|i| json(i, vars)).collect::<Result<_, _>>()?),
        JsonTemplate::Object(entries) => {
            let mut m = serde_json::Map::new();
            for (k, v) in entries {
                m.insert(k.clone(), json(v, vars).map_err(|e| format!("{k}: {e}"))?);
            }
            Value::Object(m)
        }
    })
}

/// The value `e` takes from `r`, or why there is none.
pub fn extract(e: &Extract, r: &KeptResponse) -> Result<String, String> {
    match e {
        Extract::Json(path) => {
            let v: serde_json::Value =
                serde_json::from_slice(&r.body).map_err(|_| "the body is not JSON".to_string())?;
            match path.find(&v) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Null) | None => Err(format!("the body has nothing at {}", path.text)),
                Some(other) => Ok(other.to_string()),
            }
        }
        Extract::Header(name) => r.header(name).map(str::to_string).ok_or_else(|| format!("no `{name}` header")),
        Extract::Regex(pattern) => {
            // Checked at load; the size limit keeps a bad pattern from costing much.
            let re = regex_lite::RegexBuilder::new(pattern)
                .size_limit(64 * 1024)
                .build()
                .map_err(|e| format!("pattern: {e}"))?;
            let body = String::from_utf8_lossy(&r.body);
            let c = re.captures(&body).ok_or_else(|| format!("the body does not match /{pattern}/"))?;
            Ok(c.get(1).or_else(|| c.get(0)).map(|m| m.as_str().to_string()).unwrap_or_default())
        }
        Extract::Cookie(name) => r
            .headers_named("set-cookie")
            .filter_map(parse_set_cookie)
            .find(|c| c.name == *name)
            .map(|c| c.value)
            .ok_or_else(|| format!("no `{name}` cookie set")),
    }
}

/// How a step or a whole run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Correct, but over its latency budget.
    Degraded,
    Failed,
    /// A step not sent because an earlier one failed (never a run's status).
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// A step's status from its probe outcome: `failed` (with every reason)
/// when an expectation was not met or the request did not complete, else
/// `degraded` (with the reason) when it took longer than `budget`, else `ok`.
pub fn judge(outcome: &Outcome, budget: Option<Duration>) -> (Status, Option<String>) {
    let a = outcome.last();
    if !outcome.success {
        return (Status::Failed, Some(a.reasons().join("; ")));
    }
    match budget {
        Some(b) if a.duration > b => {
            let over = AssertionFailure::Latency { took_ms: a.duration.as_millis(), budget_ms: b.as_millis() };
            (Status::Degraded, Some(over.to_string()))
        }
        _ => (Status::Ok, None),
    }
}

/// A run's status from its steps': failed if one failed, degraded if one
/// was slow, else ok (skipped steps follow a failed one).
pub fn overall(steps: &[Status]) -> Status {
    steps.iter().copied().filter(|s| *s != Status::Skipped).max().unwrap_or(Status::Ok)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SetCookie {
    name: String,
    value: String,
    /// `Max-Age=0` or less, or an `Expires` in the past.
    delete: bool,
}

fn parse_set_cookie(header: &str) -> Option<SetCookie> {
    parse_set_cookie_at(header, i64::MIN)
}

/// A `Set-Cookie` value as of `now_ms` (an `Expires` at or before it deletes).
fn parse_set_cookie_at(header: &str, now_ms: i64) -> Option<SetCookie> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut delete = false;
    for attr in parts {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "max-age" => delete |= v.trim().parse::<i64>().is_ok_and(|s| s <= 0),
            "expires" => {
                // An HTTP date (`Thu, 01 Jan 1970 00:00:00 GMT`); one in the past deletes the cookie.
                delete |= jiff::fmt::rfc2822::parse(v.trim()).is_ok_and(|t| t.timestamp().as_millisecond() <= now_ms);
            }
            _ => {}
        }
    }
    Some(SetCookie { name: name.to_string(), value: value.trim().trim_matches('"').to_string(), delete })
}

/// Cookies per host across the steps of one run.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    by_host: BTreeMap<String, BTreeMap<String, String>>,
}

/// Cookies kept per host at most (a hostile site cannot grow the jar).
const MAX_COOKIES_PER_HOST: usize = 64;

impl CookieJar {
    /// Take the `Set-Cookie` headers of a response from `host` at `now_ms`.
    pub fn store(&mut self, host: &str, r: &KeptResponse, now_ms: i64) {
        let jar = self.by_host.entry(host.to_ascii_lowercase()).or_default();
        for v in r.headers_named("set-cookie") {
            let Some(c) = parse_set_cookie_at(v, now_ms) else { continue };
            if c.delete {
                jar.remove(&c.name);
            } else if jar.len() < MAX_COOKIES_PER_HOST || jar.contains_key(&c.name) {
                jar.insert(c.name, c.value);
            }
        }
    }

    /// The `Cookie` header for a request to `host`, if any.
    pub fn header(&self, host: &str) -> Option<String> {
        let jar = self.by_host.get(&host.to_ascii_lowercase()).filter(|j| !j.is_empty())?;
        Some(jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }
}

/// How one step of a run went.
#[derive(Debug, Clone)]
pub struct StepRun {
    pub name: String,
    pub status: Status,
    /// The request, DNS to the end of the body; zero when none was sent.
    pub duration: Duration,
    /// The final response's status, when one came.
    pub http_status: Option<u16>,
    /// Why the step failed: the unmet expectations, the extraction that
    /// found nothing, or the value that could not be read (named by its
    /// key, never its value). `None` unless failed.
    pub error: Option<String>,
    /// Why the step is degraded (over its latency budget). `None` unless degraded.
    pub degraded: Option<String>,
    /// The probe client's outcome (phases, TLS, status), with no response
    /// kept; `None` when no request was sent (skipped, or it could not be built).
    pub outcome: Option<Outcome>,
    /// The request's method.
    pub method: String,
    /// When the step started, from the start of the run.
    pub offset: Duration,
    /// The step's client span in the run's trace (its `X-Amzn-Trace-Id` parent).
    pub span: [u8; 8],
}

impl StepRun {
    fn unsent(name: &str, status: Status, error: Option<String>) -> StepRun {
        StepRun {
            name: name.to_string(),
            status,
            duration: Duration::ZERO,
            http_status: None,
            error,
            degraded: None,
            outcome: None,
            method: String::new(),
            offset: Duration::ZERO,
            span: [0; 8],
        }
    }
}

/// One run of a journey: what the API shows, what metrics and events are
/// made of.
#[derive(Debug, Clone)]
pub struct JourneyRun {
    pub name: String,
    /// The service its results count for (`journeys[].service`).
    pub service: String,
    pub region: String,
    /// When the run started, wall clock, milliseconds since the epoch.
    pub started_ms: i64,
    /// The whole run, think time included.
    pub duration: Duration,
    /// `ok`, `degraded` or `failed`, never `skipped`.
    pub status: Status,
    /// The step that failed, if one did.
    pub failed_step: Option<String>,
    /// Every configured step, in order.
    pub steps: Vec<StepRun>,
    /// The run's trace: every step's request carried its `X-Amzn-Trace-Id`.
    pub trace: super::trace::RunTrace,
}

/// A failed run for tests: `login` ok (250 ms, 200), `cart` failed
/// (1 s, 503), `confirm` skipped.
#[cfg(test)]
pub(crate) fn example_run() -> JourneyRun {
    let step = |name: &str, status: Status, ms: u64, http: Option<u16>| {
        let outcome = http.map(|code| Outcome {
            probe: "checkout".into(),
            hop: name.into(),
            region: "eu-west-1".into(),
            url: format!("https://shop.example.com/api/{name}"),
            success: status != Status::Failed,
            attempts: vec![crate::probe::Attempt {
                duration: Duration::from_millis(ms),
                status: Some(code),
                ..Default::default()
            }],
        });
        StepRun {
            name: name.into(),
            status,
            duration: Duration::from_millis(ms),
            http_status: http,
            error: (status == Status::Failed).then(|| format!("status {} not in [200]", http.unwrap_or(0))),
            degraded: None,
            outcome,
            method: "POST".into(),
            offset: Duration::from_millis(if name == "login" { 0 } else { 250 }),
            span: [7; 8],
        }
    };
    JourneyRun {
        name: "checkout".into(),
        service: "shop".into(),
        region: "eu-west-1".into(),
        started_ms: 1_800_000_000_500,
        duration: Duration::from_millis(1250),
        status: Status::Failed,
        failed_step: Some("cart".into()),
        steps: vec![
            step("login", Status::Ok, 250, Some(200)),
            step("cart", Status::Failed, 1000, Some(503)),
            step("confirm", Status::Skipped, 0, None),
        ],
        trace: super::trace::RunTrace::new(1_800_000_000_500),
    }
}

/// Runs `j` once: its steps in order, stopping at the first failed one.
pub async fn run(j: &JourneyConfig, region: &str, clock: &dyn Clock) -> JourneyRun {
    let started_ms = clock.now_ms();
    let trace = super::trace::RunTrace::new(started_ms);
    let start = tokio::time::Instant::now();
    let mut vars = Vars::new();
    let mut jar = CookieJar::default();
    let mut steps: Vec<StepRun> = Vec::with_capacity(j.steps.len());
    let mut failed_step = None;
    for (i, step) in j.steps.iter().enumerate() {
        if failed_step.is_some() {
            steps.push(StepRun::unsent(&step.target.name, Status::Skipped, None));
            continue;
        }
        let offset = start.elapsed();
        let mut done = run_step(j, step, region, &mut vars, &mut jar, clock, &trace).await;
        done.offset = offset;
        if done.status == Status::Failed {
            failed_step = Some(done.name.clone());
        } else if i + 1 < j.steps.len() && !step.think_time.is_zero() {
            tokio::time::sleep(step.think_time).await;
        }
        steps.push(done);
    }
    let status = overall(&steps.iter().map(|s| s.status).collect::<Vec<_>>());
    JourneyRun {
        name: j.name.clone(),
        service: j.service.clone(),
        region: region.to_string(),
        started_ms,
        duration: start.elapsed(),
        status,
        failed_step,
        steps,
        trace,
    }
}

async fn run_step(
    j: &JourneyConfig,
    step: &Step,
    region: &str,
    vars: &mut Vars,
    jar: &mut CookieJar,
    clock: &dyn Clock,
    trace: &super::trace::RunTrace,
) -> StepRun {
    let name = &step.target.name;
    let span = trace.span();
    let mut spec = match request(j, step, region, vars, jar) {
        Ok(s) => s,
        Err(why) => {
            return StepRun { method: step.target.method.clone(), ..StepRun::unsent(name, Status::Failed, Some(why)) };
        }
    };
    if !spec.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(super::trace::HEADER)) {
        spec.headers.push((super::trace::HEADER.to_string(), trace.header(span)));
    }
    let mut outcome = crate::probe::run(&spec).await;
    // Taken out at once: the outcome kept in the run holds no header or body.
    let response = outcome.attempts.last_mut().and_then(|a| a.response.take());
    let (mut status, why) = judge(&outcome, step.target.expect.latency);
    let (mut error, mut degraded) = match status {
        Status::Degraded => (None, why),
        _ => (why, None),
    };
    if let Some(r) = &response
        && let Some(host) = url::Url::parse(&r.url).ok().as_ref().and_then(|u| u.host_str())
    {
        jar.store(host, r, clock.now_ms());
    }
    if status != Status::Failed {
        for (var, e) in &step.extract {
            let value = match &response {
                Some(r) => extract(e, r),
                None => Err("no response".to_string()),
            };
            match value {
                Ok(v) => {
                    vars.insert(var.clone(), v);
                }
                Err(why) => {
                    (status, error, degraded) = (Status::Failed, Some(format!("extract {var}: {why}")), None);
                    break;
                }
            }
        }
    }
    let a = outcome.last();
    StepRun {
        name: name.clone(),
        status,
        duration: a.duration,
        http_status: a.status,
        error,
        degraded,
        outcome: Some(outcome),
        method: step.target.method.clone(),
        offset: Duration::ZERO,
        span,
    }
}

/// The probe client's request for a step: variables filled in, values read
/// from files and the environment now, the jar's cookies, the body with its
/// content type. Errors name the key, never a value.
fn request(j: &JourneyConfig, step: &Step, region: &str, vars: &Vars, jar: &CookieJar) -> Result<ProbeSpec, String> {
    let t = &step.target;
    // The rendered URL may hold an extracted token: its parse error does not quote it.
    let mut url = url::Url::parse(&render(&t.url, vars)?).map_err(|e| format!("URL: {e}"))?;
    if !step.query.is_empty() {
        let mut values = Vec::with_capacity(step.query.len());
        for (k, v) in &step.query {
            values.push((k, text(v, vars).map_err(|e| format!("query {k}: {e}"))?));
        }
        url.query_pairs_mut().extend_pairs(values);
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let mut spec = ProbeSpec::new(url);
    spec.name = j.name.clone();
    spec.hop = t.name.clone();
    spec.region = region.to_string();
    spec.method = t.method.clone();
    for (k, v) in &t.headers {
        spec.headers.push((k.clone(), text(v, vars).map_err(|e| format!("header {k}: {e}"))?));
    }
    let has = |headers: &[(String, String)], name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has(&spec.headers, "cookie")
        && let Some(c) = jar.header(&host)
    {
        spec.headers.push(("cookie".into(), c));
    }
    let (body, content_type) = match &t.body {
        None => (None, None),
        Some(Body::Json(tpl)) => {
            let v = json(tpl, vars).map_err(|e| format!("json {e}"))?;
            (Some(v.to_string()), Some("application/json"))
        }
        Some(Body::Form(fields)) => {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields {
                form.append_pair(k, &text(v, vars).map_err(|e| format!("form {k}: {e}"))?);
            }
            (Some(form.finish()), Some("application/x-www-form-urlencoded"))
        }
        Some(Body::Raw(v)) => (Some(text(v, vars).map_err(|e| format!("body: {e}"))?), None),
    };
    if let Some(ct) = content_type
        && !has(&spec.headers, "content-type")
    {
        spec.headers.push(("content-type".into(), ct.into()));
    }
    spec.body = body;
    super::run::connect_as(&mut spec, &j.connection);
    spec.timeout = step.timeout.unwrap_or(j.connection.timeout);
    spec.assertions = super::run::assertions(&t.expect)?;
    // Over the budget degrades a step (judged here), it does not fail it.
    spec.assertions.latency_budget = None;
    // A checkout is not sent twice: a failed step is the journey's result.
    spec.retries = 0;
    spec.keep_response = true;
    Ok(spec)
}
