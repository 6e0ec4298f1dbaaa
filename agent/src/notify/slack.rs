//! Slack incoming webhook: one message per notification, in Block Kit.
//!
//! The message is a header (the group's title), then per alert a divider,
//! a section with the facts and links, a context line with what failed
//! and one with up to three sample failing requests. `text` repeats the
//! title for notifications and clients that do not show blocks. Slack's
//! limits are kept: alerts that do not fit in 50 blocks are counted in a
//! last line instead.

use serde_json::{Value, json};

use super::{AlertNotice, HttpRequest, Notification, Status, post_json, text};
use crate::secret::Secret;

/// Slack's limits (blocks, characters).
const MAX_BLOCKS: usize = 50;
const MAX_HEADER: usize = 150;
const MAX_SECTION: usize = 3_000;
/// A context element may hold more, but a longer line is not read anyway.
const MAX_CONTEXT: usize = 2_000;
/// Sample failing requests shown per alert.
const SAMPLES: usize = 3;

/// The message for `n`, posted to the webhook URL (which is the secret).
pub fn request(webhook_url: &Secret, n: &Notification) -> HttpRequest {
    let title = n.title();
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": text::truncate(&title, MAX_HEADER) },
    })];
    for (i, a) in n.alerts.iter().enumerate() {
        let these = alert_blocks(a);
        // Keep one block free for the line that says what did not fit.
        let room = if i + 1 == n.alerts.len() { MAX_BLOCKS } else { MAX_BLOCKS - 1 };
        if blocks.len() + these.len() > room {
            let more = n.alerts.len() - i;
            let line = format!(
                "…and {more} more alert{}: <{}|see slo-agent>",
                if more == 1 { "" } else { "s" },
                link_target(&n.external_url)
            );
            blocks.push(context(vec![line]));
            break;
        }
        blocks.extend(these);
    }
    post_json(webhook_url.expose().to_string(), Vec::new(), &json!({ "text": title, "blocks": blocks }))
}

fn alert_blocks(a: &AlertNotice) -> Vec<Value> {
    let icon = match a.status {
        Status::Firing => ":red_circle:",
        Status::Resolved => ":large_green_circle:",
    };
    let mut s = format!("{icon} *{}*\n", escape(&text::headline(a)));
    if a.display_name.is_some() {
        s.push_str(&format!("*SLO:* {}\n", escape(&text::slo_name(a))));
    }
    for (name, value) in text::facts(a) {
        s.push_str(&format!("*{name}:* {}\n", escape(&value)));
    }
    let mut links = Vec::new();
    if let Some(r) = &a.runbook {
        links.push(format!("<{}|Runbook>", link_target(r)));
    }
    links.push(format!("<{}|SLO API>", link_target(&a.api_url)));
    s.push_str(&links.join(" · "));

    let mut blocks = vec![
        json!({ "type": "divider" }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": text::truncate(&s, MAX_SECTION) } }),
    ];
    let evidence = text::evidence_facts(&a.evidence);
    if !evidence.is_empty() {
        blocks.push(context(evidence.iter().map(|(name, value)| format!("*{name}:* {}", escape(value))).collect()));
    }
    if !a.evidence.samples.is_empty() {
        let samples = a.evidence.samples.iter().take(SAMPLES);
        // Backticks would end the code span early.
        blocks
            .push(context(samples.map(|s| format!("`{}`", escape(&text::sample_line(s)).replace('`', "'"))).collect()));
    }
    blocks
}

/// A context block with one mrkdwn element per line (at most 10 elements,
/// as Slack allows; callers pass fewer).
fn context(lines: Vec<String>) -> Value {
    let elements: Vec<Value> =
        lines.iter().map(|l| json!({ "type": "mrkdwn", "text": text::truncate(l, MAX_CONTEXT) })).collect();
    json!({ "type": "context", "elements": elements })
}

/// Slack's mrkdwn escapes: `&`, `<` and `>` are control characters.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A URL inside `<url|text>`: `|` and `>` would end it early.
fn link_target(url: &str) -> String {
    url.replace('|', "%7C").replace('>', "%3E").replace('<', "%3C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures::{assert_golden, sample_notification};

    const HOOK: &str = "https://hooks.slack.com/services/T000/B000/XXXX";

    fn body(r: &HttpRequest) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn firing_message() {
        let n = sample_notification(Status::Firing);
        let r = request(&Secret::new(HOOK.into()), &n);
        assert_eq!((r.method, r.url.as_str()), ("POST", HOOK));
        assert_eq!(r.headers, vec![("content-type".to_string(), "application/json".to_string())]);
        assert_golden("slack-firing", &body(&r));
    }

    #[test]
    fn resolved_message() {
        let n = sample_notification(Status::Resolved);
        assert_golden("slack-resolved", &body(&request(&Secret::new(HOOK.into()), &n)));
    }

    #[test]
    fn many_alerts_stay_within_slack_limits() {
        let mut n = sample_notification(Status::Firing);
        let first = n.alerts[0].clone();
        for i in 0..40 {
            let mut a = first.clone();
            a.slo = format!("slo-{i}-{}", "x".repeat(4000));
            n.alerts.push(a);
        }
        let v = body(&request(&Secret::new(HOOK.into()), &n));
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS, "{}", blocks.len());
        assert_eq!(blocks[0]["text"]["text"].as_str().unwrap().chars().count(), MAX_HEADER);
        for b in blocks {
            if b["type"] == "section" {
                assert!(b["text"]["text"].as_str().unwrap().chars().count() <= MAX_SECTION);
            }
        }
        // The header, 4 + 3 blocks for the first two alerts, then 4 per alert:
        // 10 more fit in 49 blocks, and the 50th says what did not.
        assert_eq!(blocks.len(), 49);
        let last = blocks.last().unwrap()["elements"][0]["text"].as_str().unwrap();
        assert_eq!(last, "…and 30 more alerts: <https://slo.example.com|see slo-agent>");
    }

    #[test]
    fn mrkdwn_is_escaped() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(link_target("https://x/a|b>c"), "https://x/a%7Cb%3Ec");
    }
}
