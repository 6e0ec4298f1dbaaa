//! What a probe expects of the response, and the named reason for each
//! expectation that was not met.
//!
//! Regexes are `regex-lite` (the crate's regex engine: linear time, no
//! look-around, like Go's RE2 that blackbox_exporter uses). JSON values are
//! found by RFC 6901 JSON Pointer (`/items/0/status`) with
//! `serde_json::Value::pointer`, not a JSONPath engine: one value per check
//! is all an assertion needs.

use std::fmt;
use std::time::Duration;

/// A regex with the text it was written as (for the failure's wording).
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    pub regex: regex_lite::Regex,
}

impl Pattern {
    /// Patterns longer than 4 KiB are refused: a probe's regex is a few words.
    pub fn new(text: &str) -> Result<Pattern, String> {
        if text.len() > 4096 {
            return Err("regex longer than 4096 characters".into());
        }
        let regex = regex_lite::RegexBuilder::new(text)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("bad regex /{text}/: {e}"))?;
        Ok(Pattern { text: text.to_string(), regex })
    }
}

/// A header that must (or must not) match.
#[derive(Debug, Clone)]
pub struct HeaderMatch {
    pub name: String,
    pub pattern: Pattern,
    /// `true`: some value must match; `false`: no value may match.
    pub must_match: bool,
    /// A missing header passes (else it fails).
    pub allow_missing: bool,
}

/// A value in a JSON body that must equal an expected one.
#[derive(Debug, Clone)]
pub struct JsonValueCheck {
    /// RFC 6901, e.g. `/status` or `/checks/0/ok`.
    pub pointer: String,
    pub expected: serde_json::Value,
}

/// Whether the final request must (not) be over TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsExpectation {
    #[default]
    Any,
    Required,
    Forbidden,
}

/// Everything a probe expects. The default expects a 2xx status and nothing else.
#[derive(Debug, Clone, Default)]
pub struct Assertions {
    /// Empty: any 2xx.
    pub valid_status: Vec<u16>,
    pub body_must_match: Vec<Pattern>,
    pub body_must_not_match: Vec<Pattern>,
    pub headers: Vec<HeaderMatch>,
    pub json: Vec<JsonValueCheck>,
    /// Empty: any. Else e.g. `HTTP/1.1`, `HTTP/2.0`.
    pub http_versions: Vec<String>,
    pub tls: TlsExpectation,
    /// The attempt's whole duration must not exceed it.
    pub latency_budget: Option<Duration>,
}

impl Assertions {
    /// Whether the body must be kept to check it.
    pub fn needs_body(&self) -> bool {
        !self.body_must_match.is_empty() || !self.body_must_not_match.is_empty() || !self.json.is_empty()
    }
}

/// An expectation that was not met, worded for a person.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "assertion", rename_all = "snake_case")]
pub enum AssertionFailure {
    Status { status: u16, valid: Vec<u16> },
    BodyMatches { regex: String },
    BodyDoesNotMatch { regex: String },
    HeaderMissing { header: String },
    HeaderMatches { header: String, regex: String },
    HeaderDoesNotMatch { header: String, regex: String },
    JsonNotJson,
    JsonMissing { pointer: String },
    JsonValue { pointer: String, expected: String, found: String },
    HttpVersion { version: String, valid: Vec<String> },
    NotTls,
    Tls,
    Latency { took_ms: u128, budget_ms: u128 },
}

impl AssertionFailure {
    /// Over the latency budget: slow, not wrong.
    pub fn is_latency(&self) -> bool {
        matches!(self, AssertionFailure::Latency { .. })
    }

    /// A body or header regex (blackbox's `probe_failed_due_to_regex`).
    pub fn is_regex(&self) -> bool {
        matches!(
            self,
            AssertionFailure::BodyMatches { .. }
                | AssertionFailure::BodyDoesNotMatch { .. }
                | AssertionFailure::HeaderMissing { .. }
                | AssertionFailure::HeaderMatches { .. }
                | AssertionFailure::HeaderDoesNotMatch { .. }
        )
    }
}

impl fmt::Display for AssertionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use AssertionFailure::*;
        match self {
            Status { status, valid } if valid.is_empty() => write!(f, "status {status} not 2xx"),
            Status { status, valid } => write!(f, "status {status} not in {valid:?}"),
            BodyMatches { regex } => write!(f, "body matches /{regex}/"),
            BodyDoesNotMatch { regex } => write!(f, "body does not match /{regex}/"),
            HeaderMissing { header } => write!(f, "header {header} missing"),
            HeaderMatches { header, regex } => write!(f, "header {header} matches /{regex}/"),
            HeaderDoesNotMatch { header, regex } => write!(f, "header {header} does not match /{regex}/"),
            JsonNotJson => write!(f, "body is not JSON"),
            JsonMissing { pointer } => write!(f, "JSON {pointer} missing"),
            JsonValue { pointer, expected, found } => write!(f, "JSON {pointer} is {found}, expected {expected}"),
            HttpVersion { version, valid } => write!(f, "HTTP version {version} not in {valid:?}"),
            NotTls => write!(f, "not TLS, TLS required"),
            Tls => write!(f, "TLS, plaintext required"),
            Latency { took_ms, budget_ms } => write!(f, "latency {took_ms}ms over budget {budget_ms}ms"),
        }
    }
}

/// The final response, as the checks see it.
pub struct Response<'a> {
    pub status: u16,
    pub headers: &'a hyper::HeaderMap,
    /// Empty unless [`Assertions::needs_body`].
    pub body: &'a [u8],
    pub http_version: &'a str,
}

/// The checks of the final response, every one that fails.
pub fn check_response(a: &Assertions, r: &Response<'_>) -> Vec<AssertionFailure> {
    let mut out = Vec::new();
    let status_ok =
        if a.valid_status.is_empty() { (200..300).contains(&r.status) } else { a.valid_status.contains(&r.status) };
    if !status_ok {
        out.push(AssertionFailure::Status { status: r.status, valid: a.valid_status.clone() });
    }
    for h in &a.headers {
        let values: Vec<&str> = r.headers.get_all(h.name.as_str()).iter().filter_map(|v| v.to_str().ok()).collect();
        if values.is_empty() {
            if !h.allow_missing {
                out.push(AssertionFailure::HeaderMissing { header: h.name.clone() });
            }
            continue;
        }
        let any = values.iter().any(|v| h.pattern.regex.is_match(v));
        let (header, regex) = (h.name.clone(), h.pattern.text.clone());
        if h.must_match && !any {
            out.push(AssertionFailure::HeaderDoesNotMatch { header, regex });
        } else if !h.must_match && any {
            out.push(AssertionFailure::HeaderMatches { header, regex });
        }
    }
    if !a.body_must_match.is_empty() || !a.body_must_not_match.is_empty() {
        let body = String::from_utf8_lossy(r.body);
        for p in &a.body_must_match {
            if !p.regex.is_match(&body) {
                out.push(AssertionFailure::BodyDoesNotMatch { regex: p.text.clone() });
            }
        }
        for p in &a.body_must_not_match {
            if p.regex.is_match(&body) {
                out.push(AssertionFailure::BodyMatches { regex: p.text.clone() });
            }
        }
    }
    if !a.json.is_empty() {
        match serde_json::from_slice::<serde_json::Value>(r.body) {
            Err(_) => out.push(AssertionFailure::JsonNotJson),
            Ok(doc) => {
                for c in &a.json {
                    match doc.pointer(&c.pointer) {
                        None => out.push(AssertionFailure::JsonMissing { pointer: c.pointer.clone() }),
                        Some(v) if *v == c.expected => {}
                        Some(v) => {
                            let mut found = v.to_string();
                            if found.len() > 64 {
                                let cut = (0..=64).rev().find(|i| found.is_char_boundary(*i)).unwrap_or(0);
                                found.truncate(cut);
                                found.push('…');
                            }
                            out.push(AssertionFailure::JsonValue {
                                pointer: c.pointer.clone(),
                                expected: c.expected.to_string(),
                                found,
                            })
                        }
                    }
                }
            }
        }
    }
    if !a.http_versions.is_empty() && !a.http_versions.iter().any(|v| v == r.http_version) {
        out.push(AssertionFailure::HttpVersion { version: r.http_version.into(), valid: a.http_versions.clone() });
    }
    out
}

/// The checks of the attempt as a whole: TLS or not, and the latency budget.
pub fn check_connection(a: &Assertions, ssl: bool, took: Duration) -> Vec<AssertionFailure> {
    let mut out = Vec::new();
    match a.tls {
        TlsExpectation::Required if !ssl => out.push(AssertionFailure::NotTls),
        TlsExpectation::Forbidden if ssl => out.push(AssertionFailure::Tls),
        _ => {}
    }
    if let Some(budget) = a.latency_budget
        && took > budget
    {
        out.push(AssertionFailure::Latency { took_ms: took.as_millis(), budget_ms: budget.as_millis() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, hyper::header::HeaderValue::from_static(v));
        }
        h
    }

    fn check(a: &Assertions, status: u16, hdrs: &[(&'static str, &'static str)], body: &str) -> Vec<String> {
        let h = headers(hdrs);
        let r = Response { status, headers: &h, body: body.as_bytes(), http_version: "HTTP/1.1" };
        check_response(a, &r).iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn status_defaults_to_2xx_and_names_the_valid_set() {
        let mut a = Assertions::default();
        assert!(check(&a, 204, &[], "").is_empty());
        assert_eq!(check(&a, 503, &[], ""), ["status 503 not 2xx"]);
        a.valid_status = vec![200];
        assert_eq!(check(&a, 503, &[], ""), ["status 503 not in [200]"]);
        a.valid_status = vec![301, 302];
        assert!(check(&a, 302, &[], "").is_empty());
    }

    #[test]
    fn body_regexes_must_and_must_not_match() {
        let a = Assertions {
            body_must_match: vec![Pattern::new("ok|healthy").unwrap()],
            body_must_not_match: vec![Pattern::new("(?i)error").unwrap()],
            ..Assertions::default()
        };
        assert!(check(&a, 200, &[], "all healthy").is_empty());
        assert_eq!(
            check(&a, 200, &[], "Error: down"),
            ["body does not match /ok|healthy/", "body matches /(?i)error/"]
        );
    }

    #[test]
    fn headers_match_by_any_value_and_missing_headers_are_named() {
        let hm = |name: &str, re: &str, must, allow| HeaderMatch {
            name: name.into(),
            pattern: Pattern::new(re).unwrap(),
            must_match: must,
            allow_missing: allow,
        };
        let a = Assertions {
            headers: vec![
                hm("x-cache", "^Hit from cloudfront$", true, false),
                hm("server", "nginx", false, true),
                hm("x-amz-cf-id", ".", true, false),
            ],
            ..Assertions::default()
        };
        let got = check(&a, 200, &[("x-cache", "Miss from cloudfront"), ("server", "nginx/1.2")], "");
        assert_eq!(
            got,
            [
                "header x-cache does not match /^Hit from cloudfront$/",
                "header server matches /nginx/",
                "header x-amz-cf-id missing"
            ]
        );
        let ok = check(&a, 200, &[("x-cache", "Hit from cloudfront"), ("x-amz-cf-id", "abc")], "");
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn json_values_by_pointer() {
        let a = Assertions {
            json: vec![
                JsonValueCheck { pointer: "/status".into(), expected: serde_json::json!("ok") },
                JsonValueCheck { pointer: "/checks/0/up".into(), expected: serde_json::json!(true) },
            ],
            ..Assertions::default()
        };
        assert!(check(&a, 200, &[], r#"{"status":"ok","checks":[{"up":true}]}"#).is_empty());
        assert_eq!(
            check(&a, 200, &[], r#"{"status":"degraded","checks":[]}"#),
            [r#"JSON /status is "degraded", expected "ok""#, "JSON /checks/0/up missing"]
        );
        assert_eq!(check(&a, 200, &[], "<html>"), ["body is not JSON"]);
    }

    #[test]
    fn http_version_tls_and_latency() {
        let a = Assertions {
            http_versions: vec!["HTTP/2.0".into()],
            tls: TlsExpectation::Required,
            latency_budget: Some(Duration::from_millis(800)),
            ..Assertions::default()
        };
        assert_eq!(check(&a, 200, &[], ""), ["HTTP version HTTP/1.1 not in [\"HTTP/2.0\"]"]);
        let got: Vec<String> =
            check_connection(&a, false, Duration::from_millis(912)).iter().map(|f| f.to_string()).collect();
        assert_eq!(got, ["not TLS, TLS required", "latency 912ms over budget 800ms"]);
        let forbid = Assertions { tls: TlsExpectation::Forbidden, ..Assertions::default() };
        assert_eq!(check_connection(&forbid, true, Duration::ZERO), [AssertionFailure::Tls]);
    }

    #[test]
    fn only_body_and_header_checks_count_as_regex() {
        assert!(AssertionFailure::BodyMatches { regex: "x".into() }.is_regex());
        assert!(!AssertionFailure::Status { status: 500, valid: vec![] }.is_regex());
    }
}
