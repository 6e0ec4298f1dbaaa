//! `github:`: answer GitHub custom deployment protection rules as a GitHub
//! App (`docs/deploy-gates.md`).
//!
//! ```yaml
//! github:
//!   app_id: 123456                                  # or the App's client id, Iv1.…
//!   private_key_file: /etc/slo-agent/github-app.pem # the key GitHub generated for the App
//!   webhook_secret_file: /etc/slo-agent/github-webhook-secret   # or webhook_secret_env: NAME
//!   api_url: https://api.github.com                 # GitHub Enterprise Server: https://HOST/api/v3
//!   services:                                       # first match wins; else the repository's name
//!     - {repository: shop/checkout-api, service: checkout}
//!     - {repository: shop/web, environment: "prod*", service: storefront}
//! ```

use std::path::Path;
use std::sync::Arc;

use super::{AppKey, DEFAULT_API_URL, GithubConfig, ServiceMapping};
use crate::spec::glob::Glob;
use crate::yaml::Node;
use crate::yaml::fields::Ctx;
use crate::yaml::values::{read_secret, resolve};

/// Shortest webhook secret accepted.
pub const MIN_SECRET_BYTES: usize = 16;

pub fn read_github(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<GithubConfig> {
    let keys = ["app_id", "private_key_file", "webhook_secret_file", "webhook_secret_env", "api_url", "services"];
    let f = cx.map(node, "github", &keys)?;
    let app_id = f.require(cx, "app_id").and_then(|n| {
        let t = cx.text(n, "github.app_id")?.trim();
        let valid = !t.is_empty()
            && t.len() <= 64
            && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            && t != "0";
        if !valid {
            cx.err(n.pos, format!("`github.app_id` must be the App's id (a number) or client id (Iv1.…), found `{t}`"));
        }
        valid.then(|| t.to_string())
    });
    let key = f.require(cx, "private_key_file").and_then(|n| {
        let path = resolve(base, cx.text(n, "github.private_key_file")?);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                cx.err(n.pos, format!("cannot read `{}` (the GitHub App's private key): {e}", path.display()));
                return None;
            }
        };
        match AppKey::from_pem(&text) {
            Ok(k) => Some((path, Arc::new(k))),
            Err(e) => {
                cx.err(n.pos, format!("`{}` is not the GitHub App's private key: {e}", path.display()));
                None
            }
        }
    });
    let secret = read_secret(cx, &f, base, "webhook_secret", "the GitHub webhook secret");
    let secret = match secret {
        Some(None) => {
            cx.err(node.pos, "`github` needs `webhook_secret_file` or `webhook_secret_env` (the App's webhook secret)");
            None
        }
        Some(Some(s)) if s.expose().len() < MIN_SECRET_BYTES => {
            let at = f.get("webhook_secret_file").or(f.get("webhook_secret_env")).map_or(node.pos, |n| n.pos);
            cx.err(
                at,
                format!(
                    "the GitHub webhook secret is shorter than {MIN_SECRET_BYTES} characters; make one with `openssl rand -hex 32`"
                ),
            );
            None
        }
        other => other.flatten(),
    };
    let api_url = match f.get("api_url") {
        None => Some(DEFAULT_API_URL.to_string()),
        Some(n) => cx.text(n, "github.api_url").and_then(|t| {
            let url = crate::yaml::values::base_url(t);
            if url.is_none() {
                cx.err(
                    n.pos,
                    format!(
                        "`github.api_url` must be an http(s) URL without user, query or fragment, such as {DEFAULT_API_URL} or https://github.example.com/api/v3, found `{}`",
                        t.trim().trim_end_matches('/')
                    ),
                );
            }
            url
        }),
    };
    let mut services = Vec::new();
    let mut ok = true;
    if let Some(n) = f.get("services") {
        for item in cx.list(n, "github.services").unwrap_or(&[]) {
            match read_mapping(cx, item) {
                Some(m) => services.push(m),
                None => ok = false,
            }
        }
    }
    let (private_key_file, key) = key?;
    if !ok {
        return None;
    }
    Some(GithubConfig { app_id: app_id?, private_key_file, key, webhook_secret: secret?, api_url: api_url?, services })
}

fn read_mapping(cx: &mut Ctx<'_>, node: &Node) -> Option<ServiceMapping> {
    let f = cx.map(node, "github.services[]", &["repository", "environment", "service"])?;
    let repository = f.require(cx, "repository").and_then(|n| {
        let t = cx.text(n, "repository")?.trim();
        let valid = t.split_once('/').is_some_and(|(o, r)| {
            let part =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            part(o) && part(r)
        });
        if !valid {
            cx.err(n.pos, format!("`repository` must be `owner/name` as GitHub shows it, found `{t}`"));
        }
        valid.then(|| t.to_string())
    });
    let environment = match f.get("environment") {
        None => Some(None),
        Some(n) => cx.text(n, "environment").and_then(|t| match Glob::new(t) {
            Ok(g) => Some(Some(g)),
            Err(e) => {
                cx.err(n.pos, format!("`environment`: {e}"));
                None
            }
        }),
    };
    let service = f.require(cx, "service").and_then(|n| {
        let t = cx.text(n, "service")?.trim();
        if t.is_empty() || t.chars().any(char::is_control) {
            cx.err(n.pos, "`service` must name a service of the SLO specs");
            return None;
        }
        Some(t.to_string())
    });
    Some(ServiceMapping { repository: repository?, environment: environment?, service: service? })
}
