//! `notify:`: receivers and routes (`docs/notifications.md`).
//!
//! ```yaml
//! notify:
//!   external_url: https://slo-agent.internal     # links in notifications (default http://<listen>)
//!   max_outbox: 10000                            # alert changes kept per receiver
//!   receivers:
//!     - {name: oncall, type: pagerduty, routing_key_file: /etc/slo-agent/pagerduty-key}
//!     - {name: team, type: slack, webhook_url_env: SLACK_WEBHOOK_URL}
//!     - {name: hooks, type: webhook, url: "https://hooks.example/slo", secret_file: /etc/slo-agent/hook-secret}
//!     - {name: am, type: alertmanager, url: "http://alertmanager:9093"}
//!     - {name: og, type: opsgenie, api_key_env: OPSGENIE_API_KEY}
//!   routes:
//!     - receiver: oncall
//!       match: {severity: page}
//!       group_by: [service]
//!       group_wait: 0s
//!       group_interval: 5m
//!     - receiver: team
//! ```

use std::path::Path;
use std::time::Duration;

use crate::notify::routing::{DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, DEFAULT_MAX_OUTBOX, NotifyConfig, Route};
use crate::notify::{ReceiverConfig, ReceiverKind};
use crate::secret::Secret;
use crate::spec::glob::Glob;
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::values::{parse_duration, read_secret};
use crate::yaml::{Node, Value};

pub const RECEIVER_TYPES: &str = "pagerduty, opsgenie, slack, webhook, alertmanager";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn read_notify(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<NotifyConfig> {
    let f = cx.map(node, "notify", &["external_url", "receivers", "routes", "max_outbox"])?;
    let external_url = match f.get("external_url") {
        None => Some(String::new()),
        Some(n) => cx.text(n, "external_url").and_then(|t| {
            let t = t.trim_end_matches('/');
            if t.starts_with("http://") || t.starts_with("https://") {
                Some(t.to_string())
            } else {
                cx.err(n.pos, format!("`external_url` must start with http:// or https://, found `{t}`"));
                None
            }
        }),
    };
    let max_outbox = match f.get("max_outbox") {
        None => Some(DEFAULT_MAX_OUTBOX),
        Some(n) => cx.number(n, "max_outbox").and_then(|v| {
            if (10.0..=10_000_000.0).contains(&v) && v.fract() == 0.0 {
                Some(v as usize)
            } else {
                cx.err(n.pos, "`max_outbox` must be a whole number from 10 to 10000000");
                None
            }
        }),
    };
    let mut ok = true;
    let mut receivers: Vec<ReceiverConfig> = Vec::new();
    if let Some(n) = f.get("receivers") {
        for item in cx.list(n, "receivers").unwrap_or(&[]) {
            match read_receiver(cx, item, base) {
                Some(r) => {
                    if receivers.iter().any(|x| x.name == r.name) {
                        cx.err(item.pos, format!("duplicate receiver name `{}`", r.name));
                        ok = false;
                    }
                    receivers.push(r);
                }
                None => ok = false,
            }
        }
    }
    let mut routes = Vec::new();
    if let Some(n) = f.get("routes") {
        for item in cx.list(n, "routes").unwrap_or(&[]) {
            match read_route(cx, item, &receivers) {
                Some(r) => routes.push(r),
                None => ok = false,
            }
        }
    }
    if !ok {
        return None;
    }
    Some(NotifyConfig { external_url: external_url?, receivers, routes, max_outbox: max_outbox? })
}

fn read_receiver(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<ReceiverConfig> {
    let kind = match &node.value {
        Value::Map(entries) => entries.iter().find(|(k, _)| k.text == "type").and_then(|(_, v)| match &v.value {
            Value::Scalar(s) => Some(s.text.clone()),
            _ => None,
        }),
        _ => None,
    };
    let specific: &[&str] = match kind.as_deref() {
        Some("pagerduty") => &["url", "routing_key_file", "routing_key_env"],
        Some("opsgenie") => &["url", "api_key_file", "api_key_env"],
        Some("slack") => &["webhook_url_file", "webhook_url_env"],
        Some("webhook") => &["url", "secret_file", "secret_env"],
        Some("alertmanager") => &["url", "bearer_token_file", "bearer_token_env"],
        _ => &[],
    };
    let mut allowed = vec!["name", "type", "timeout"];
    allowed.extend_from_slice(specific);
    let f = cx.map(node, "receivers[]", &allowed)?;
    let name = f.require(cx, "name").and_then(|n| cx.text(n, "name")).and_then(|t| {
        let valid = !t.is_empty()
            && t.len() <= 64
            && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            cx.err(f.node.pos, format!("receiver name `{t}` must be 1–64 letters, digits, `-`, `_` or `.`"));
        }
        valid.then(|| t.to_string())
    });
    let type_node = f.require(cx, "type")?;
    let t = cx.text(type_node, "type")?;
    let timeout = match f.get("timeout") {
        None => Some(DEFAULT_TIMEOUT),
        Some(n) => cx.text(n, "timeout").and_then(|t| match parse_duration(t) {
            Some(d) if !d.is_zero() && d <= Duration::from_secs(300) => Some(d),
            _ => {
                cx.err(n.pos, format!("`timeout` must be a duration from 1ms to 5m, found `{t}`"));
                None
            }
        }),
    };
    let kind = match t {
        "pagerduty" => {
            let url = url_field(cx, &f, Some("https://events.pagerduty.com/v2/enqueue"));
            let key = required_secret(cx, &f, base, "routing_key", "the PagerDuty integration's routing key");
            ReceiverKind::PagerDuty { url: url?, routing_key: key? }
        }
        "opsgenie" => {
            let url = url_field(cx, &f, Some("https://api.opsgenie.com"));
            let key = required_secret(cx, &f, base, "api_key", "the Opsgenie API key");
            ReceiverKind::Opsgenie { url: url?, api_key: key? }
        }
        "slack" => {
            let url = required_secret(cx, &f, base, "webhook_url", "the Slack incoming webhook URL")?;
            // Slack's incoming webhooks are https only; an http:// URL would
            // send the message (and the URL's secret part) in the clear.
            if !url.expose().starts_with("https://") {
                cx.err(f.node.pos, "the Slack webhook URL must start with https://");
                return None;
            }
            ReceiverKind::Slack { webhook_url: url }
        }
        "webhook" => {
            let url = url_field(cx, &f, None);
            let secret = read_secret(cx, &f, base, "secret", "the webhook's signing secret");
            ReceiverKind::Webhook { url: url?, secret: secret? }
        }
        "alertmanager" => {
            let url = url_field(cx, &f, None);
            let token = read_secret(cx, &f, base, "bearer_token", "the Alertmanager bearer token");
            ReceiverKind::Alertmanager { url: url?, bearer_token: token? }
        }
        other => {
            cx.err(type_node.pos, format!("unknown receiver type `{other}`; expected one of {RECEIVER_TYPES}"));
            return None;
        }
    };
    Some(ReceiverConfig { name: name?, kind, timeout: timeout? })
}

fn url_field(cx: &mut Ctx<'_>, f: &Fields<'_>, default: Option<&str>) -> Option<String> {
    match (f.get("url"), default) {
        (None, Some(d)) => Some(d.to_string()),
        (None, None) => {
            f.require(cx, "url");
            None
        }
        (Some(n), _) => {
            let t = cx.text(n, "url")?;
            if t.starts_with("http://") || t.starts_with("https://") {
                Some(t.to_string())
            } else {
                cx.err(n.pos, format!("`url` must start with http:// or https://, found `{t}`"));
                None
            }
        }
    }
}

fn required_secret(cx: &mut Ctx<'_>, f: &Fields<'_>, base: &Path, key: &str, what: &str) -> Option<Secret> {
    match read_secret(cx, f, base, key, what)? {
        Some(s) => Some(s),
        None => {
            cx.err(f.node.pos, format!("set `{key}_file` or `{key}_env` ({what})"));
            None
        }
    }
}

fn read_route(cx: &mut Ctx<'_>, node: &Node, receivers: &[ReceiverConfig]) -> Option<Route> {
    let f = cx.map(
        node,
        "routes[]",
        &["receiver", "match", "group_by", "group_wait", "group_interval", "repeat_interval", "continue"],
    )?;
    let rnode = f.require(cx, "receiver")?;
    let receiver = cx.text(rnode, "receiver")?.to_string();
    let Some(rcfg) = receivers.iter().find(|r| r.name == receiver) else {
        let known: Vec<&str> = receivers.iter().map(|r| r.name.as_str()).collect();
        cx.err(rnode.pos, format!("no receiver named `{receiver}` (receivers: {})", known.join(", ")));
        return None;
    };
    let mut ok = true;
    let mut matchers = Vec::new();
    if let Some(m) = f.get("match") {
        match &m.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    let Some(t) = cx.text(v, &k.text) else {
                        ok = false;
                        continue;
                    };
                    match Glob::new(t) {
                        Ok(g) => matchers.push((k.text.clone(), g)),
                        Err(e) => {
                            cx.err(v.pos, format!("`match.{}`: {e}", k.text));
                            ok = false;
                        }
                    }
                }
            }
            _ => {
                cx.err(m.pos, format!("`match` must be a map of label: pattern, found {}", m.kind_name()));
                ok = false;
            }
        }
    }
    let group_by = match f.get("group_by") {
        None => vec!["service".to_string()],
        Some(n) => {
            let mut out = Vec::new();
            for item in cx.one_or_many(n, "group_by") {
                match cx.text(item, "group_by") {
                    Some(t) => out.push(t.to_string()),
                    None => ok = false,
                }
            }
            out
        }
    };
    let mut duration = |key: &str, default: Option<Duration>| -> Option<Option<Duration>> {
        match f.get(key) {
            None => Some(default),
            Some(n) => {
                let t = cx.text(n, key)?;
                let parsed = if t.trim() == "0" { Some(Duration::ZERO) } else { parse_duration(t) };
                match parsed {
                    Some(d) if d <= Duration::from_secs(7 * 86_400) => Some(Some(d)),
                    _ => {
                        cx.err(n.pos, format!("`{key}` must be a duration such as 0s, 30s, 5m or 4h, found `{t}`"));
                        None
                    }
                }
            }
        }
    };
    let group_wait = duration("group_wait", Some(DEFAULT_GROUP_WAIT));
    let group_interval = duration("group_interval", Some(DEFAULT_GROUP_INTERVAL));
    let default_repeat = matches!(rcfg.kind, ReceiverKind::Alertmanager { .. }).then(|| Duration::from_secs(60));
    let repeat_interval = duration("repeat_interval", default_repeat);
    let continue_matching = match f.get("continue") {
        None => Some(false),
        Some(n) => cx.boolean(n, "continue"),
    };
    if !ok {
        return None;
    }
    let repeat_interval = repeat_interval?.filter(|d| !d.is_zero());
    if let (Some(r), ReceiverKind::Alertmanager { .. }) = (repeat_interval, &rcfg.kind)
        && r > Duration::from_secs(240)
    {
        cx.err(
            f.node.pos,
            "routes to Alertmanager need `repeat_interval` of at most 4m: Alertmanager resolves alerts not re-sent within its resolve_timeout (5m by default)",
        );
        return None;
    }
    Some(Route {
        receiver,
        matchers,
        group_by,
        group_wait: group_wait??,
        group_interval: group_interval??,
        repeat_interval,
        continue_matching: continue_matching?,
    })
}
