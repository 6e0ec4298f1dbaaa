//! Sending a notifier's requests, and reading the receiver's answer.

use std::time::Duration;

use super::{HttpRequest, SendError};

/// The client every receiver shares: rustls with the Mozilla roots, HTTP
/// proxies from the usual environment variables, no redirects (a webhook
/// that redirects is misconfigured, and following it could leak the body).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("slo-agent/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("the HTTP client builds with static settings")
}

/// Send one request and classify the answer: 2xx is delivered; 408, 420,
/// 429 and 5xx, timeouts and connection errors are worth retrying; any other
/// status means the receiver refused the message itself. Error texts never
/// hold the URL (it may be the secret) or a header.
pub async fn send(client: &reqwest::Client, req: &HttpRequest, timeout: Duration) -> Result<(), SendError> {
    send_reading(client, req, timeout, 0).await.map(|_| ())
}

/// [`send`], keeping up to `keep` bytes of a successful answer (an id the
/// receiver gave what it created); an answer cut short keeps what came.
pub async fn send_reading(
    client: &reqwest::Client,
    req: &HttpRequest,
    timeout: Duration,
    keep: usize,
) -> Result<Vec<u8>, SendError> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| SendError::Permanent(e.to_string()))?;
    let mut b = client.request(method, &req.url).timeout(timeout).body(req.body.clone());
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let resp = match b.send().await {
        Ok(r) => r,
        Err(e) => {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else if e.is_builder() {
                return Err(SendError::Permanent(format!("bad request: {}", e.without_url())));
            } else {
                "request failed"
            };
            return Err(SendError::Retryable(format!("{kind}: {}", e.without_url())));
        }
    };
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        let mut out = Vec::new();
        let mut resp = resp;
        while out.len() < keep {
            match tokio::time::timeout(timeout, resp.chunk()).await {
                Ok(Ok(Some(c))) => out.extend_from_slice(&c[..c.len().min(keep - out.len())]),
                _ => break,
            }
        }
        return Ok(out);
    }
    // A little of the answer helps (PagerDuty and Opsgenie explain refusals).
    let body = tokio::time::timeout(timeout, resp.bytes()).await.ok().and_then(Result::ok).unwrap_or_default();
    let text = snippet(&body);
    let msg = if text.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {text}") };
    Err(classify(status, msg))
}

/// Which failures are worth retrying. 420 is a rate limit too (Atlassian
/// Statuspage answers it, as Twitter's API once did).
pub fn classify(status: u16, message: String) -> SendError {
    if status == 408 || status == 420 || status == 429 || status >= 500 {
        SendError::Retryable(message)
    } else {
        SendError::Permanent(message)
    }
}

/// At most 200 characters of a response body, on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
    one_line.trim().to_string()
}

/// A URL with its query and any user info removed, and its path cut to the
/// first segment, for logs: Slack webhook URLs carry their secret in the path.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let first = path.split('/').nth(1).unwrap_or("");
    let more = path.split('/').count() > 2;
    let path = match (first.is_empty(), more) {
        (true, _) => String::new(),
        (false, false) => format!("/{first}"),
        (false, true) => format!("/{first}/…"),
    };
    if scheme.is_empty() { format!("{host}{path}") } else { format!("{scheme}://{host}{path}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_outages_are_told_apart() {
        assert!(matches!(classify(503, String::new()), SendError::Retryable(_)));
        assert!(matches!(classify(429, String::new()), SendError::Retryable(_)));
        assert!(matches!(classify(408, String::new()), SendError::Retryable(_)));
        assert!(matches!(classify(420, String::new()), SendError::Retryable(_)));
        assert!(matches!(classify(400, String::new()), SendError::Permanent(_)));
        assert!(matches!(classify(403, String::new()), SendError::Permanent(_)));
        assert_eq!(snippet(b"{\"error\":\n\"bad\"}"), "{\"error\": \"bad\"}");
    }

    #[test]
    fn secrets_in_urls_are_not_shown() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(redact_url("http://user:pw@127.0.0.1:9093/api/v2/alerts?k=v"), "http://127.0.0.1:9093/api/…");
        assert_eq!(redact_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
