//! `status.push` in agent.yaml: where component states and incidents are
//! pushed (`docs/status-page.md`, "Pushing to an external status page").
//!
//! ```yaml
//! status:
//!   components:
//!     - {name: Checkout, service: checkout}
//!   push:
//!     kind: statuspage                 # or webhook
//!     page_id: kctbh9vrtdwd
//!     api_key_file: /etc/slo-agent/statuspage-key   # or api_key_env
//!     components: {Checkout: 8kbf7d35c070}
//!     # url: https://api.statuspage.io, timeout: 10s, max_queue: 1000
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::push::{DEFAULT_MAX_QUEUE, DEFAULT_TIMEOUT, PushTarget, STATUSPAGE_URL, StatusPushConfig};
use crate::yaml::fields::Ctx;
use crate::yaml::values::{base_url, parse_duration, read_secret};
use crate::yaml::{Node, Value};

pub const KINDS: &str = "statuspage, webhook";

/// The `push` node of `status:`; `components` are the names `status.components` lists.
pub fn read(cx: &mut Ctx<'_>, node: &Node, base: &Path, components: &[&str]) -> Option<StatusPushConfig> {
    let kind = match &node.value {
        Value::Map(entries) => entries.iter().find(|(k, _)| k.text == "kind").and_then(|(_, v)| match &v.value {
            Value::Scalar(s) => Some(s.text.clone()),
            _ => None,
        }),
        _ => None,
    };
    let specific: &[&str] = match kind.as_deref() {
        Some("statuspage") => &["url", "page_id", "api_key_file", "api_key_env", "components"],
        Some("webhook") => &["url", "secret_file", "secret_env"],
        _ => &[],
    };
    let mut allowed = vec!["kind", "timeout", "max_queue"];
    allowed.extend_from_slice(specific);
    let f = cx.map(node, "push", &allowed)?;
    let kind_node = f.require(cx, "kind")?;
    let kind = cx.text(kind_node, "kind")?;
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
    let max_queue = match f.get("max_queue") {
        None => Some(DEFAULT_MAX_QUEUE),
        Some(n) => cx.number(n, "max_queue").and_then(|v| {
            if (10.0..=1_000_000.0).contains(&v) && v.fract() == 0.0 {
                Some(v as usize)
            } else {
                cx.err(n.pos, "`max_queue` must be a whole number from 10 to 1000000");
                None
            }
        }),
    };
    let url = |cx: &mut Ctx<'_>, default: Option<&str>| match (f.get("url"), default) {
        (None, Some(d)) => Some(d.to_string()),
        (None, None) => {
            f.require(cx, "url");
            None
        }
        (Some(n), _) => {
            let t = cx.text(n, "url")?;
            let u = base_url(t);
            if u.is_none() {
                cx.err(
                    n.pos,
                    format!("`url` must be an http:// or https:// URL without user, query or fragment, found `{t}`"),
                );
            }
            u
        }
    };
    let target = match kind {
        "statuspage" => {
            let url = url(cx, Some(STATUSPAGE_URL));
            let page_id = f.require(cx, "page_id").and_then(|n| remote_id(cx, n, "page_id"));
            let api_key = match read_secret(cx, &f, base, "api_key", "the Statuspage API key") {
                Some(Some(k)) => Some(k),
                Some(None) => {
                    cx.err(f.node.pos, "set `api_key_file` or `api_key_env` (the Statuspage API key)");
                    None
                }
                None => None,
            };
            let mapped = f.require(cx, "components").and_then(|n| read_components(cx, n, components));
            PushTarget::Statuspage { url: url?, page_id: page_id?, api_key: api_key?, components: mapped? }
        }
        "webhook" => {
            let url = url(cx, None);
            let secret = read_secret(cx, &f, base, "secret", "the status webhook's signing secret");
            PushTarget::Webhook { url: url?, secret: secret? }
        }
        other => {
            cx.err(kind_node.pos, format!("unknown push kind `{other}`; expected one of {KINDS}"));
            return None;
        }
    };
    Some(StatusPushConfig { target, timeout: timeout?, max_queue: max_queue? })
}

/// `components: {<our component>: <Statuspage component id>}`.
fn read_components(cx: &mut Ctx<'_>, node: &Node, known: &[&str]) -> Option<BTreeMap<String, String>> {
    let Value::Map(entries) = &node.value else {
        cx.err(node.pos, "`components` must map component names to Statuspage component ids");
        return None;
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in entries {
        if !known.contains(&k.text.as_str()) {
            cx.err(k.pos, format!("`{}` is not a component of `status.components` ({})", k.text, known.join(", ")));
            ok = false;
            continue;
        }
        match remote_id(cx, v, "components") {
            Some(id) => {
                out.insert(k.text.clone(), id);
            }
            None => ok = false,
        }
    }
    if ok && out.is_empty() {
        cx.err(node.pos, "`components` must map at least one component to its Statuspage id");
        ok = false;
    }
    ok.then_some(out)
}

/// A Statuspage id: letters and digits (they go into URL paths).
fn remote_id(cx: &mut Ctx<'_>, n: &Node, what: &str) -> Option<String> {
    let t = cx.text(n, what)?.trim();
    if t.is_empty() || t.len() > 64 || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        cx.err(n.pos, format!("`{what}` must be a Statuspage id (letters and digits), found `{t}`"));
        return None;
    }
    Some(t.to_string())
}
