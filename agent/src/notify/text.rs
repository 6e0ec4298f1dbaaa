//! The human text of a notification, in one place: every receiver shows the
//! same facts about an alert (burn rate, budget, evidence, samples, links),
//! worded the same way; each receiver only chooses the markup (plain text
//! for Opsgenie and Alertmanager, mrkdwn for Slack, a details object for
//! PagerDuty). Also the small pieces receivers' limits need: cutting text
//! on character boundaries and keys that must stay short but unique.

use sha2::{Digest, Sha256};

use super::{AlertNotice, Evidence, FailureSample, Status, rfc3339};

/// Appended to text that was cut.
pub const ELLIPSIS: char = '…';

/// At most `max` characters (Unicode scalar values, as the receivers
/// count) of `s`; text that was cut ends in `…`, counted in `max`.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some(_) if max == 0 => String::new(),
        Some(_) => {
            let end = s.char_indices().nth(max - 1).map_or(s.len(), |(i, _)| i);
            let mut out = String::with_capacity(end + ELLIPSIS.len_utf8());
            out.push_str(&s[..end]);
            out.push(ELLIPSIS);
            out
        }
    }
}

/// `key` when it has at most `max` characters, else a cut of it followed by
/// `~` and 16 hex digits of its SHA-256: still stable for the same key, and
/// two long keys that share a prefix stay apart.
pub fn key_within(key: &str, max: usize) -> String {
    if key.chars().count() <= max {
        return key.to_string();
    }
    let digest = hex(&Sha256::digest(key.as_bytes())[..8]);
    let keep = max.saturating_sub(digest.len() + 1);
    let end = key.char_indices().nth(keep).map_or(key.len(), |(i, _)| i);
    format!("{}~{digest}", &key[..end])
}

pub use crate::secret::hex;

/// A ratio as a percentage with at most two decimals: 0.62 → `62%`,
/// 0.999 → `99.9%`, 0.99951 → `99.95%`, -0.125 → `-12.5%`.
pub fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return format!("{ratio}");
    }
    let s = format!("{:.2}", ratio * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    let s = if s == "-0" { "0" } else { s };
    format!("{s}%")
}

/// A burn rate: `15.2×`.
pub fn rate(v: f64) -> String {
    format!("{v:.1}×")
}

/// [`AlertNotice::summary`] without its `[FIRING] ` / `[RESOLVED] `
/// prefix, for receivers that show the status on their own.
pub fn headline(a: &AlertNotice) -> String {
    let summary = a.summary();
    let prefix = format!("[{}] ", a.status.as_str().to_uppercase());
    match summary.strip_prefix(&prefix) {
        Some(rest) => rest.to_string(),
        None => summary,
    }
}

/// The SLO's name, with its display name when the spec gives one:
/// `Checkout availability (checkout-availability)`.
pub fn slo_name(a: &AlertNotice) -> String {
    match &a.display_name {
        Some(d) if !d.is_empty() && d != &a.slo => format!("{d} ({})", a.slo),
        _ => a.slo.clone(),
    }
}

/// How fast the budget burns, in words: `15.2× over 1h, 16.0× over 5m
/// (threshold 14.4×)`, or `budget gone in 3.5h at the 6h burn rate`.
/// `None` when the alert has no trigger or no rates (budget exhausted).
pub fn burn(a: &AlertNotice) -> Option<String> {
    let t = a.trigger.as_ref()?;
    if let Some(h) = t.hours_to_exhaustion {
        return Some(format!("budget gone in {h:.1}h at the 6h burn rate"));
    }
    let (long_w, short_w) = t.windows.split_once('/').unwrap_or((t.windows.as_str(), ""));
    let mut parts = Vec::new();
    if let Some(l) = t.long_burn_rate {
        parts.push(format!("{} over {long_w}", rate(l)));
    }
    if let (Some(s), false) = (t.short_burn_rate, short_w.is_empty()) {
        parts.push(format!("{} over {short_w}", rate(s)));
    }
    if parts.is_empty() {
        return None;
    }
    let mut s = parts.join(", ");
    if let Some(th) = t.threshold {
        s.push_str(&format!(" (threshold {})", rate(th)));
    }
    Some(s)
}

/// When the alert fired, and resolved: `firing since 2024-05-01T12:00:00Z`,
/// `resolved at 2024-05-01T12:30:00Z (fired at 2024-05-01T12:00:00Z)`.
pub fn when(a: &AlertNotice) -> String {
    match (a.status, a.resolved_at_ms) {
        (Status::Resolved, Some(r)) => {
            format!("resolved at {} (fired at {})", rfc3339(r), rfc3339(a.firing_since_ms))
        }
        (Status::Resolved, None) => format!("resolved (fired at {})", rfc3339(a.firing_since_ms)),
        (Status::Firing, _) => format!("firing since {}", rfc3339(a.firing_since_ms)),
    }
}

/// The facts about an alert, as (name, value), in the order every receiver
/// shows them.
pub fn facts(a: &AlertNotice) -> Vec<(&'static str, String)> {
    let mut out = vec![("Status", when(a))];
    if let Some(c) = &a.certificate {
        out.push(("Endpoint", format!("{} ({}, region {})", c.url, a.slo, c.region)));
        out.push(("Certificate", if c.subject.is_empty() { "-".to_string() } else { c.subject.clone() }));
        if let (Some(t), Some(d)) = (c.not_after_ms, c.days_left) {
            out.push(("Not after", format!("{} ({d:.1} days left; threshold {} days)", rfc3339(t), c.below_days)));
        }
        for p in &c.problems {
            out.push(("Chain problem", format!("{}: {}", p.kind, p.text)));
        }
        return out;
    }
    if let Some(g) = &a.signal {
        out.push(("Signal", g.description.clone()));
        if let Some(score) = g.score {
            out.push(("Anomaly score", format!("{score:.2}")));
        }
        if let (Some(limit), Some(t)) = (g.limit, g.reach_at_ms) {
            out.push(("Quota", format!("{limit} reached at {}", rfc3339(t))));
        }
        return out;
    }
    if let Some(b) = burn(a) {
        out.push(("Burn rate", b));
    }
    if let Some(t) = a.trigger.as_ref().filter(|t| t.long_window_events > 0) {
        let (long_w, _) = t.windows.split_once('/').unwrap_or((t.windows.as_str(), ""));
        out.push(("Events", format!("{} in the {long_w} window", t.long_window_events)));
    }
    out.push(("Error budget left", percent(a.budget_remaining)));
    out.push(("Objective", percent(a.objective)));
    out
}

/// `/cart/{id} (1203), /checkout (598)`.
pub fn top_list(items: &[(String, u64)]) -> String {
    items.iter().map(|(v, n)| format!("{v} ({n})")).collect::<Vec<_>>().join(", ")
}

/// What failed, as (name, value); empty lists are left out.
pub fn evidence_facts(e: &Evidence) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if e.failed > 0 {
        out.push(("Failures", format!("{} in the last {} min", e.failed, e.minutes)));
    }
    for (name, items) in [
        ("Top routes", &e.top_routes),
        ("Top edge locations", &e.top_edge_locations),
        ("Top status codes", &e.top_status_codes),
    ] {
        if !items.is_empty() {
            out.push((name, top_list(items)));
        }
    }
    out
}

/// One failing request on one line: `2024-05-01T11:58:01.250Z 503 POST
/// /cart/42 route=/cart/{id} edge=FRA56-P1 1234ms error=Timeout
/// request=abc trace=1-2-3`; what the log did not tell is left out.
pub fn sample_line(s: &FailureSample) -> String {
    let mut parts = vec![rfc3339(s.at_ms), format!("{:03}", s.status)];
    if !s.method.is_empty() {
        parts.push(s.method.clone());
    }
    if !s.path.is_empty() {
        parts.push(s.path.clone());
    }
    if !s.route.is_empty() && s.route != s.path {
        parts.push(format!("route={}", s.route));
    }
    if !s.edge_location.is_empty() {
        parts.push(format!("edge={}", s.edge_location));
    }
    if let Some(ms) = s.latency_ms {
        parts.push(format!("{ms:.0}ms"));
    }
    for (tag, v) in [("error", &s.error_type), ("request", &s.request_id), ("trace", &s.trace_id)] {
        if !v.is_empty() {
            parts.push(format!("{tag}={v}"));
        }
    }
    parts.join(" ")
}

/// Everything about one alert as plain text: the [`headline`], one
/// `Name: value` line per fact (the first says firing or resolved), the
/// sample failing requests, the runbook and the API.
pub fn describe(a: &AlertNotice) -> String {
    let mut lines = vec![headline(a)];
    if a.display_name.is_some() {
        lines.push(format!("SLO: {}", slo_name(a)));
    }
    for (name, value) in facts(a).into_iter().chain(evidence_facts(&a.evidence)) {
        lines.push(format!("{name}: {value}"));
    }
    if !a.evidence.samples.is_empty() {
        lines.push("Sample failing requests:".to_string());
        lines.extend(a.evidence.samples.iter().map(|s| format!("  {}", sample_line(s))));
    }
    if let Some(r) = &a.runbook {
        lines.push(format!("Runbook: {r}"));
    }
    lines.push(format!("SLO API: {}", a.api_url));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures::sample_notification;

    #[test]
    fn truncate_cuts_on_characters_and_marks_the_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 4), "ééé…");
        assert_eq!(truncate("🚨🚨", 1), "…");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn long_keys_keep_a_digest_of_the_whole() {
        assert_eq!(key_within("short", 10), "short");
        let a = key_within(&format!("{}a", "x".repeat(300)), 255);
        let b = key_within(&format!("{}b", "x".repeat(300)), 255);
        assert_eq!(a.chars().count(), 255);
        assert_ne!(a, b);
        assert_eq!(a, key_within(&format!("{}a", "x".repeat(300)), 255));
        assert!(a.starts_with("xxx") && a.as_bytes()[238] == b'~', "{a}");
    }

    #[test]
    fn percents_and_rates() {
        assert_eq!(percent(0.62), "62%");
        assert_eq!(percent(0.999), "99.9%");
        assert_eq!(percent(0.99951), "99.95%");
        assert_eq!(percent(-0.125), "-12.5%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(-0.00001), "0%");
        assert_eq!(rate(15.24), "15.2×");
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn one_template_for_an_alert() {
        let n = sample_notification(Status::Firing);
        assert_eq!(
            describe(&n.alerts[0]),
            "checkout-availability (checkout): page, 1h/5m burn 15.2× (threshold 14.4), 62% budget left
SLO: Checkout availability (checkout-availability)
Status: firing since 2024-05-01T12:00:00Z
Burn rate: 15.2× over 1h, 16.0× over 5m (threshold 14.4×)
Events: 120000 in the 1h window
Error budget left: 62%
Objective: 99.9%
Failures: 1824 in the last 60 min
Top routes: /cart/{id} (1203), /checkout (598), /login (23)
Top edge locations: FRA56-P1 (1500), AMS1-C1 (324)
Top status codes: 503 (1650), 504 (150), 000 (24)
Sample failing requests:
  2024-05-01T11:58:01.250Z 503 POST /cart/42 route=/cart/{id} edge=FRA56-P1 1234ms error=LambdaTimeout request=req-1 trace=1-6632-a
  2024-05-01T11:58:02Z 503 GET /cart/7 route=/cart/{id} edge=FRA56-P1 request=req-2
  2024-05-01T11:58:03Z 504 POST /checkout edge=AMS1-C1 29000ms error=IntegrationTimeout request=req-3
  2024-05-01T11:58:04Z 000 GET /login edge=FRA56-P1
Runbook: https://runbooks.example.com/checkout#availability
SLO API: https://slo.example.com/api/v1/slos/checkout-availability"
        );
        let r = sample_notification(Status::Resolved);
        assert_eq!(
            describe(&r.alerts[1]),
            "checkout-latency (checkout): ticket, 1d/2h burn 3.1× (threshold 3), 91% budget left
Status: resolved at 2024-05-01T12:30:00Z (fired at 2024-05-01T11:00:00Z)
Burn rate: 3.1× over 1d, 3.4× over 2h (threshold 3.0×)
Events: 2400000 in the 1d window
Error budget left: 91%
Objective: 99%
Failures: 40 in the last 60 min
Top routes: /checkout (40)
SLO API: https://slo.example.com/api/v1/slos/checkout-latency"
        );
        assert_eq!(
            headline(&n.alerts[1]),
            "checkout-latency (checkout): ticket, 1d/2h burn 3.1× (threshold 3), 91% budget left"
        );
    }
}
