//! Sending a notifier's requests, and reading the receiver's answer.

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
    fn secrets_in_urls_are_not_shown() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(redact_url("http://user:pw@127.0.0.1:9093/api/v2/alerts?k=v"), "http://127.0.0.1:9093/api/…");
        assert_eq!(redact_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
