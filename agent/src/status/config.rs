//! The `status:` section of agent.yaml.

use crate::yaml::Node;
use crate::yaml::fields::Ctx;

use super::{ComponentConfig, MAX_COMPONENTS, StatusConfig};

/// `status: {title, components: [{name, service, slos}]}`.
pub fn read(cx: &mut Ctx<'_>, node: &Node) -> Option<StatusConfig> {
    let f = cx.map(node, "status", &["title", "components", "push"])?;
    let title = match f.get("title") {
        None => Some("Service status".to_string()),
        Some(n) => line(cx, n, "title"),
    };
    let mut components = Vec::new();
    let mut ok = true;
    if let Some(n) = f.require(cx, "components")
        && let Some(items) = cx.list(n, "components")
    {
        if items.is_empty() || items.len() > MAX_COMPONENTS {
            cx.err(n.pos, format!("`components` must list 1 to {MAX_COMPONENTS} components"));
            ok = false;
        }
        for item in items {
            let Some(c) = cx.map(item, "components", &["name", "service", "slos"]) else {
                ok = false;
                continue;
            };
            let name = c.require(cx, "name").and_then(|n| line(cx, n, "name"));
            let service = c.require(cx, "service").and_then(|n| line(cx, n, "service"));
            let mut slos = Vec::new();
            if let Some(n) = c.get("slos") {
                for s in cx.one_or_many(n, "slos") {
                    match line(cx, s, "slos") {
                        Some(t) => slos.push(t),
                        None => ok = false,
                    }
                }
            }
            match (name, service) {
                (Some(name), Some(service)) => {
                    if components.iter().any(|x: &ComponentConfig| x.name == name) {
                        cx.err(item.pos, format!("two components are named `{name}`"));
                        ok = false;
                    }
                    components.push(ComponentConfig { name, service, slos });
                }
                _ => ok = false,
            }
        }
    } else {
        ok = false;
    }
    let title = title?;
    ok.then_some(StatusConfig { title, components })
}

fn line(cx: &mut Ctx<'_>, n: &Node, what: &str) -> Option<String> {
    let t = cx.text(n, what)?.trim();
    if t.is_empty() || t.chars().count() > 200 || t.chars().any(char::is_control) {
        cx.err(n.pos, format!("`{what}` must be non-empty, on one line, at most 200 characters"));
        return None;
    }
    Some(t.to_string())
}
