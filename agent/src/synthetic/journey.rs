//! What a journey carries from step to step, apart from the network: its
//! variables (`${name}` in URLs, headers, query, form and JSON strings),
//! what a step extracts into them from a response (JSON path, header,
//! pattern, cookie), the cookie jar, and how a step's result is judged:
//! `ok`, `degraded` (correct but over its latency budget: slow is not
//! failed) or `failed` (naming the expectation that was not met).
//!
//! The cookie jar is deliberately small (a synthetic journey talks to one
//! site): cookies are kept per host by name, `Max-Age=0` or an `Expires` in
//! the past deletes one, and every cookie of a host is sent back to it;
//! paths, domains wider than the host and `Secure` are not modelled.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Expect, Extract, HttpVersion, JsonTemplate, Text};

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
                m.insert(k.clone(), json(v, vars)?);
            }
            Value::Object(m)
        }
    })
}

/// What a step's checks need of a response.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    /// Names lower case, in the order received (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// At most the client's body limit.
    pub body: Vec<u8>,
    pub version: Option<HttpVersion>,
    pub tls: bool,
    /// The whole request, all phases.
    pub elapsed: Duration,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// The value `e` takes from `r`, or why there is none.
pub fn extract(e: &Extract, r: &Response) -> Result<String, String> {
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
            let body = r.body_text();
            let c = re.captures(&body).ok_or_else(|| format!("the body does not match /{pattern}/"))?;
            Ok(c.get(1).or_else(|| c.get(0)).map(|m| m.as_str().to_string()).unwrap_or_default())
        }
        Extract::Cookie(name) => r
            .headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .filter_map(|(_, v)| parse_set_cookie(v))
            .find(|c| c.name == *name)
            .map(|c| c.value)
            .ok_or_else(|| format!("no `{name}` cookie set")),
    }
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    /// Correct, but over its latency budget.
    Degraded,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Failed => "failed",
        }
    }
}

/// Judge a response against a step's expectations: the first unmet one
/// fails it (named); over the latency budget only degrades it.
pub fn judge(expect: &Expect, r: &Response) -> (Status, Option<String>) {
    if !expect.status.accepts(r.status) {
        return (Status::Failed, Some(format!("status {} not expected", r.status)));
    }
    if let Some(want) = expect.tls
        && want != r.tls
    {
        return (
            Status::Failed,
            Some(if want { "not TLS".into() } else { "TLS where plain HTTP was expected".into() }),
        );
    }
    if let Some(v) = expect.http_version
        && r.version != Some(v)
    {
        return (Status::Failed, Some(format!("HTTP version {:?}, expected {v:?}", r.version)));
    }
    let body = r.body_text();
    if let Some(re) = expect.body_matches.iter().find(|re| !re.is_match(&body)) {
        return (Status::Failed, Some(format!("the body does not match /{}/", re.as_str())));
    }
    if let Some(re) = expect.body_not_matches.iter().find(|re| re.is_match(&body)) {
        return (Status::Failed, Some(format!("the body matches /{}/", re.as_str())));
    }
    for (name, re) in &expect.headers {
        match r.header(name) {
            Some(v) if re.is_match(v) => {}
            Some(v) => return (Status::Failed, Some(format!("header `{name}: {v}` does not match /{}/", re.as_str()))),
            None => return (Status::Failed, Some(format!("no `{name}` header"))),
        }
    }
    if !expect.json.is_empty() {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.body) else {
            return (Status::Failed, Some("the body is not JSON".into()));
        };
        for (path, want) in &expect.json {
            match path.find(&v) {
                Some(got) if got == want => {}
                Some(got) => return (Status::Failed, Some(format!("{} is {got}, expected {want}", path.text))),
                None => return (Status::Failed, Some(format!("the body has nothing at {}", path.text))),
            }
        }
    }
    if let Some(budget) = expect.latency
        && r.elapsed > budget
    {
        return (
            Status::Degraded,
            Some(format!("took {} ms, budget {} ms", r.elapsed.as_millis(), budget.as_millis())),
        );
    }
    (Status::Ok, None)
}

/// A journey's status from its steps': failed if one failed, degraded if
/// one was slow, else ok.
pub fn overall(steps: &[Status]) -> Status {
    steps.iter().copied().max().unwrap_or(Status::Ok)
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
    pub fn store(&mut self, host: &str, r: &Response, now_ms: i64) {
        let jar = self.by_host.entry(host.to_ascii_lowercase()).or_default();
        for (_, v) in r.headers.iter().filter(|(k, _)| k == "set-cookie") {
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
