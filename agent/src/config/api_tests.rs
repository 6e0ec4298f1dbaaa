//! The `api:` section read as part of `agent.yaml`.

use crate::auth::Role;
use std::path::Path;

const HEAD: &str = "specs: [a]\nstate: s\nsources: []\n";

fn parse(dir: &Path, api: &str) -> Result<crate::auth::ApiConfig, Vec<String>> {
    crate::config::parse("agent.yaml", &format!("{HEAD}{api}"), dir)
        .map(|c| c.api)
        .map_err(|d| d.iter().map(|d| d.to_string()).collect())
}

#[test]
#[allow(unsafe_code)] // each `unsafe` inside carries its SAFETY comment
fn tokens_with_roles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("oncall"), "0123456789abcdef0123\n").unwrap();
    // SAFETY: only this test reads this variable.
    unsafe { std::env::set_var("SLO_AGENT_TEST_API_ADMIN_TOKEN", "admin-0123456789abcdef") };
    let api = parse(
        dir.path(),
        "api:\n  read_requires_token: true\n  tokens:\n    - {name: oncall-bot, role: silence, token_file: oncall}\n    - {name: ops, role: admin, token_env: SLO_AGENT_TEST_API_ADMIN_TOKEN}\n",
    )
    .unwrap();
    assert!(api.read_requires_token);
    let got: Vec<(&str, Role)> = api.tokens.iter().map(|t| (t.name.as_str(), t.roles[0])).collect();
    assert_eq!(got, [("oncall-bot", Role::Silence), ("ops", Role::Admin)]);
    assert!(api.tokens[0].token.matches(b"0123456789abcdef0123"));
    assert_eq!(parse(dir.path(), "").unwrap(), Default::default());
}

#[test]
fn every_problem_with_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t1"), "0123456789abcdef0123").unwrap();
    std::fs::write(dir.path().join("short"), "abc").unwrap();
    let e = parse(
        dir.path(),
        "api:\n  tokens:\n    - {name: a, role: read, token_file: t1}\n    - {name: a, role: admin, token_file: t1}\n    - {name: \"b c\", role: root, token_file: missing}\n    - {name: d, role: read, token_file: short}\n    - {name: e, role: read}\n  read_only: true\n",
    )
    .unwrap_err();
    let has = |prefix: &str| assert!(e.iter().any(|m| m.starts_with(prefix)), "{prefix}: {e:#?}");
    has("agent.yaml:7:7: duplicate API token name `a` (first at line 6)");
    has("agent.yaml:8:14: API token name `b c`");
    has("agent.yaml:8:27: unknown role `root`");
    has("agent.yaml:8:45: cannot read");
    has("agent.yaml:9:41: API token `d` is shorter than 16 characters");
    has("agent.yaml:10:7: an API token needs `token_file` or `token_env`");
    has("agent.yaml:11:3: unknown field `read_only`");
    let e = parse(dir.path(), "api: {read_requires_token: true}\n").unwrap_err();
    assert!(e[0].contains("needs at least one token"), "{e:?}");
    let e = parse(
        dir.path(),
        "api:\n  tokens:\n    - {name: a, role: read, token_file: t1}\n    - {name: b, role: admin, token_file: t1}\n",
    )
    .unwrap_err();
    assert!(e[0].starts_with("agent.yaml:7:7: API token `b` has the same value as `a` (line 6)"), "{e:?}");
}

/// `token_sha256`: the config holds only the token's hash; the token
/// itself is accepted, anything else is not; a malformed hash, or a hash
/// beside a token file, is refused; a hash of a token already listed is a
/// duplicate.
#[test]
fn tokens_given_by_their_sha256() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let token = "deploy-pipeline-token-0123456789";
    let hex: String = sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let api =
        parse(dir.path(), &format!("api:\n  tokens:\n    - {{name: ci, role: read, token_sha256: {hex}}}\n")).unwrap();
    assert!(api.tokens[0].token.matches(token.as_bytes()));
    assert!(!api.tokens[0].token.matches(b"deploy-pipeline-token-012345678X"));
    assert!(!api.tokens[0].token.matches(hex.as_bytes()), "the hash itself is not a token");
    assert_eq!(format!("{:?}", api.tokens[0].token), "TokenValue(sha256)");

    std::fs::write(dir.path().join("t"), token).unwrap();
    let e = parse(
        dir.path(),
        &format!(
            "api:\n  tokens:\n    - {{name: a, role: read, token_file: t}}\n    - {{name: b, role: admin, token_sha256: {hex}}}\n    - {{name: c, role: read, token_sha256: abc}}\n    - {{name: d, role: read, token_sha256: {hex}, token_env: X}}\n"
        ),
    )
    .unwrap_err();
    let has = |prefix: &str| assert!(e.iter().any(|m| m.starts_with(prefix)), "{prefix}: {e:#?}");
    has("agent.yaml:7:7: API token `b` has the same value as `a` (line 6)");
    has("agent.yaml:8:43: `token_sha256` must be 64 hex digits");
    has("agent.yaml:9:120: give the token as `token_sha256` or as `token_file` / `token_env`, not both");
}

/// A token may hold several roles: `roles: [deploy, approve]`; `role:`
/// still works; not both.
#[test]
fn tokens_with_several_roles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t1"), "0123456789abcdef0123").unwrap();
    std::fs::write(dir.path().join("t2"), "0123456789abcdef0124").unwrap();
    let api = parse(
        dir.path(),
        "api:\n  tokens:\n    - {name: release, roles: [deploy, approve], token_file: t1}\n    - {name: ci, roles: deploy, token_file: t2}\n",
    )
    .unwrap();
    assert_eq!(api.tokens[0].roles, [Role::Deploy, Role::Approve]);
    assert_eq!(api.tokens[1].roles, [Role::Deploy]);
    let e = parse(
        dir.path(),
        "api:\n  tokens:\n    - {name: a, role: read, roles: [deploy], token_file: t1}\n    - {name: b, roles: [deploy, boss], token_file: t2}\n    - {name: c, token_file: t2}\n",
    )
    .unwrap_err();
    let has = |prefix: &str| assert!(e.iter().any(|m| m.starts_with(prefix)), "{prefix}: {e:#?}");
    has("agent.yaml:6:36: give `role` or `roles`, not both");
    has("agent.yaml:7:33: unknown role `boss`; expected read, silence, deploy, approve, incident or admin");
    has("agent.yaml:8:7: an API token needs a `role`");
}

#[test]
fn the_rate_limit_per_token() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(parse(dir.path(), "").unwrap().rate_limit, crate::auth::DEFAULT_RATE_LIMIT);
    assert_eq!(parse(dir.path(), "api: {rate_limit: 500}\n").unwrap().rate_limit, 500);
    let e = parse(dir.path(), "api: {rate_limit: 0.5}\n").unwrap_err();
    assert!(e[0].starts_with("agent.yaml:4:19: `api.rate_limit` must be whole requests per second"), "{e:?}");
}

/// `api.tls`: paths relative to the config's directory, a 30 s reload by
/// default, an optional client CA; the files are not read at load (the
/// agent reads them when it starts, and on every reload).
#[test]
fn tls_keys() {
    use crate::auth::TlsConfig;
    use std::time::Duration;
    let dir = Path::new("/etc/slo-agent");
    let api = parse(dir, "api:\n  tls:\n    cert_file: tls/tls.crt\n    key_file: /secrets/tls.key\n").unwrap();
    assert_eq!(
        api.tls,
        Some(TlsConfig {
            cert_file: "/etc/slo-agent/tls/tls.crt".into(),
            key_file: "/secrets/tls.key".into(),
            client_ca_file: None,
            reload_interval: Duration::from_secs(30),
        })
    );
    let api = parse(
        dir,
        "api:\n  tls: {cert_file: c.pem, key_file: k.pem, client_ca_file: ca.pem, reload_interval: 500ms}\n",
    )
    .unwrap();
    let tls = api.tls.unwrap();
    assert_eq!(tls.client_ca_file, Some("/etc/slo-agent/ca.pem".into()));
    assert_eq!(tls.reload_interval, Duration::from_millis(500));
    assert_eq!(parse(dir, "").unwrap().tls, None);

    // Links in notifications follow the scheme the API is served with.
    let c = crate::config::parse("agent.yaml", &format!("{HEAD}api:\n  tls: {{cert_file: c, key_file: k}}\n"), dir)
        .unwrap();
    assert_eq!(c.notify.external_url, "https://127.0.0.1:9464");
    let c = crate::config::parse("agent.yaml", HEAD, dir).unwrap();
    assert_eq!(c.notify.external_url, "http://127.0.0.1:9464");
}

#[test]
fn tls_problems_with_position() {
    let dir = Path::new("/etc/slo-agent");
    let e = parse(
        dir,
        "api:\n  tls:\n    cert_file: c.pem\n    keyfile: k.pem\n    reload_interval: 10ms\n    ca_file: x\n",
    )
    .unwrap_err();
    let has = |prefix: &str| assert!(e.iter().any(|m| m.starts_with(prefix)), "{prefix}: {e:#?}");
    has("agent.yaml:7:5: unknown field `keyfile` in `api.tls`; did you mean `key_file`?");
    has("agent.yaml:8:22: `api.tls.reload_interval` must be a duration of at least 100ms");
    has("agent.yaml:9:5: unknown field `ca_file` in `api.tls`");
    // The misspelt key already says what is wrong; no second message for it.
    assert!(!e.iter().any(|m| m.contains("missing required field `key_file`")), "{e:#?}");

    let e = parse(dir, "api:\n  tls: {key_file: k.pem, cert_file: \"\"}\n").unwrap_err();
    assert_eq!(e, ["agent.yaml:5:37: `api.tls.cert_file` must be a path to a PEM file"]);
    let e = parse(dir, "api:\n  tls: {cert_file: c.pem}\n").unwrap_err();
    assert_eq!(e, ["agent.yaml:5:8: `api.tls` is missing required field `key_file`"]);
    let e = parse(dir, "api:\n  tls: on\n").unwrap_err();
    assert!(e[0].starts_with("agent.yaml:5:8: `api.tls` must be a map"), "{e:?}");
}
