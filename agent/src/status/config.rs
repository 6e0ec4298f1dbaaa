//! The `status:` section of agent.yaml.

use crate::yaml::Node;
use crate::yaml::fields::Ctx;

use super::{ComponentConfig, MAX_COMPONENTS, StatusConfig};

/// `status: {title, components: [{name, service, slos} | {name, journey}], push}`.
/// `journeys`: the configured journeys' `(name, service)`, to check a
/// `journey:` against; `None` when `journeys:` had errors of its own.
pub fn read(cx: &mut Ctx<'_>, node: &Node, journeys: Option<&[(&str, &str)]>) -> Option<StatusConfig> {
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
            let Some(c) = cx.map(item, "components", &["name", "service", "slos", "journey"]) else {
                ok = false;
                continue;
            };
            let name = c.require(cx, "name").and_then(|n| line(cx, n, "name"));
            let (service, journey) = match (c.get("service"), c.get("journey")) {
                (Some(_), Some(j)) => {
                    cx.err(j.pos, "a component has `service` or `journey`, not both");
                    (None, None)
                }
                (None, None) => {
                    cx.err(item.pos, "a component needs `service` (its SLOs decide) or `journey` (its runs decide)");
                    (None, None)
                }
                (Some(n), None) => (line(cx, n, "service"), None),
                (None, Some(n)) => match line(cx, n, "journey") {
                    None => (None, None),
                    Some(j) => {
                        if let Some(s) = c.get("slos") {
                            cx.err(s.pos, "`slos` is for service components; a journey's runs decide its state");
                            ok = false;
                        }
                        match journeys.map(|js| js.iter().find(|(name, _)| *name == j)) {
                            // `journeys:` has errors of its own; they are reported.
                            None => (None, None),
                            Some(Some((_, service))) => (Some(service.to_string()), Some(j)),
                            Some(None) => {
                                let known: Vec<&str> = journeys.unwrap_or_default().iter().map(|(n, _)| *n).collect();
                                let hint = if known.is_empty() {
                                    "`journeys:` lists none".to_string()
                                } else {
                                    format!("`journeys:` has {}", known.join(", "))
                                };
                                cx.err(n.pos, format!("no journey named `{j}` ({hint})"));
                                (None, None)
                            }
                        }
                    }
                },
            };
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
                    components.push(ComponentConfig { name, service, slos, journey });
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
