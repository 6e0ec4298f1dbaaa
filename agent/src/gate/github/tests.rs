use std::path::Path;

use serde_json::json;

use super::*;

fn frozen_answer() -> Value {
    json!({
        "service": "checkout", "change": "feature", "allowed": false, "frozen": true, "status": "FROZEN",
        "policy": "default",
        "reasons": [{"kind": "budget", "slo": "checkout-availability",
                     "message": "checkout-availability: error budget spent (-60.0 % remaining of 28d)"}],
        "never_block": ["hotfix", "rollback"], "overrides": [],
    })
}

#[test]
fn the_comment_says_the_verdict_and_every_reason_on_its_own_line() {
    assert_eq!(
        comment(&frozen_answer(), None),
        "slo-agent: checkout may not deploy a feature change (status FROZEN, policy default).\n\
         - budget: checkout-availability: error budget spent (-60.0 % remaining of 28d)"
    );
    let mut hotfix = frozen_answer();
    hotfix["change"] = "hotfix".into();
    hotfix["allowed"] = true.into();
    assert_eq!(
        comment(&hotfix, None).lines().next().unwrap(),
        "slo-agent: checkout may deploy a hotfix change (status FROZEN, policy default). The service is frozen, but hotfix changes are not blocked."
    );
    let ok = json!({"service": "storefront", "change": "feature", "allowed": true, "frozen": false,
                    "status": "OK", "policy": "default", "reasons": [], "never_block": [], "overrides": []});
    assert_eq!(comment(&ok, None), "slo-agent: storefront may deploy a feature change (status OK, policy default).");
    let mut overridden = frozen_answer();
    overridden["allowed"] = true.into();
    overridden["overrides"] = json!([
        {"action": "unfreeze", "created_by": "alice", "reason": "INC-42 fix\nmust ship"},
        {"action": "bypass", "change": "feature", "state": "approved", "requested_by": "ci", "reason": "launch"},
    ]);
    let text = comment(&overridden, Some("a note"));
    assert!(text.contains("\n- manual unfreeze by alice: INC-42 fix must ship\n"), "{text}");
    assert!(text.contains("\n- bypass of feature changes (approved) by ci: launch\n"), "{text}");
    assert!(text.ends_with("\na note"), "{text}");
}

#[test]
fn the_comment_fits_githubs_limit_and_hostile_text_stays_on_its_line() {
    let mut long = frozen_answer();
    let reason = json!({"kind": "alert", "message": format!("{}\r\n- forged: line", "x".repeat(400))});
    long["reasons"] = Value::Array(vec![reason; 10]);
    let text = comment(&long, None);
    assert_eq!(text.chars().count(), MAX_COMMENT_CHARS);
    assert!(text.ends_with('…'));
    assert!(!text.contains("\n- forged"), "{text}");
    assert!(refusal_comment(&"y".repeat(5000)).chars().count() <= MAX_COMMENT_CHARS);
    assert_eq!(one_line("a\u{1b}[2Jb", 10), "a [2Jb");
    assert_eq!(one_line("abcdef", 4), "abc…");
    assert_eq!(one_line("abcd", 4), "abcd");
}

fn deployment(payload: Value) -> Deployment {
    Deployment { id: Some(1), sha: None, git_ref: None, payload }
}

#[test]
fn the_change_type_comes_from_the_deployment_payload_and_fails_closed() {
    assert_eq!(change_of(None), (ChangeType::Feature, None));
    assert_eq!(change_of(Some(&deployment(json!({})))), (ChangeType::Feature, None));
    assert_eq!(change_of(Some(&deployment(json!("")))), (ChangeType::Feature, None));
    assert_eq!(change_of(Some(&deployment(json!({"change": "hotfix"})))), (ChangeType::Hotfix, None));
    assert_eq!(change_of(Some(&deployment(json!("{\"change\":\"rollback\"}")))), (ChangeType::Rollback, None));
    assert_eq!(change_of(Some(&deployment(json!({"change": "yolo"})))), (ChangeType::Feature, Some("yolo".into())));
    assert_eq!(change_of(Some(&deployment(json!({"change": 3})))), (ChangeType::Feature, Some("3".into())));
    assert_eq!(change_of(Some(&deployment(json!("{not json")))), (ChangeType::Feature, None));
}

#[test]
fn the_token_goes_only_to_the_review_endpoint_of_the_api_host() {
    let ok = callback_target(
        "https://api.github.com",
        "https://api.github.com/repos/shop/web/actions/runs/42/deployment_protection_rule",
        "shop/web",
    );
    assert_eq!(ok.map(|(_, run)| run), Ok(42));
    let ghes = callback_target(
        "https://ghe.example.com/api/v3",
        "https://GHE.example.com:443/api/v3/repos/Shop/Web/actions/runs/7/deployment_protection_rule",
        "shop/web",
    );
    assert_eq!(ghes.map(|(_, run)| run), Ok(7));
    for (callback, why) in [
        ("https://evil.example/repos/shop/web/actions/runs/42/deployment_protection_rule", "not on"),
        ("http://api.github.com/repos/shop/web/actions/runs/42/deployment_protection_rule", "not on"),
        ("https://api.github.com:8443/repos/shop/web/actions/runs/42/deployment_protection_rule", "not on"),
        ("https://x@api.github.com/repos/shop/web/actions/runs/42/deployment_protection_rule", "not on"),
        ("https://api.github.com.evil.example/repos/shop/web/actions/runs/42/deployment_protection_rule", "not on"),
        ("https://api.github.com/repos/shop/other/actions/runs/42/deployment_protection_rule", "is not `"),
        ("https://api.github.com/repos/shop/web/actions/runs/42/pending_deployments", "is not `"),
        ("https://api.github.com/repos/shop/web/actions/runs/x/deployment_protection_rule", "is not `"),
        ("https://api.github.com/user/repos", "is not `"),
        ("https://api.github.com/repos/shop/web/actions/runs/42/deployment_protection_rule?x=1", "query"),
        ("not a url", "not a URL"),
    ] {
        let e = callback_target("https://api.github.com", callback, "shop/web").unwrap_err();
        assert!(e.contains(why), "{callback}: {e}");
    }
    let e = callback_target(
        "https://ghe.example.com/api/v3",
        "https://ghe.example.com/repos/shop/web/actions/runs/7/deployment_protection_rule",
        "shop/web",
    )
    .unwrap_err();
    assert!(e.contains("path"), "{e}");
}

fn parse_config(github: &str) -> Result<GithubConfig, Vec<String>> {
    let mut diags = Vec::new();
    let parsed = crate::yaml::parse(github);
    let root = parsed.documents[0].root.clone().unwrap();
    let mut cx = crate::yaml::fields::Ctx { file: "agent.yaml", diags: &mut diags };
    let c = config::read_github(&mut cx, &root, Path::new("/nonexistent"));
    if diags.is_empty() { Ok(c.unwrap()) } else { Err(diags.iter().map(|d| d.to_string()).collect()) }
}

#[test]
fn every_config_problem_is_reported_at_its_place() {
    let e = parse_config(
        "app_id: \"12 34\"\nprivate_key_file: key.pem\nwebhook_secret_env: SLO_AGENT_TEST_NO_SUCH_VAR\napi_url: ftp://x\nservices:\n  - {repository: checkout, service: checkout}\n  - {repository: a/b, environment: \"[x\", service: c, extra: 1}\nsecret: x\n",
    )
    .unwrap_err();
    let has = |prefix: &str, text: &str| e.iter().any(|m| m.starts_with(prefix) && m.contains(text));
    assert!(has("agent.yaml:1:9: ", "`github.app_id` must be"), "{e:?}");
    assert!(has("agent.yaml:2:19: ", "cannot read `/nonexistent/key.pem` (the GitHub App's private key)"), "{e:?}");
    assert!(has("agent.yaml:3:21: ", "SLO_AGENT_TEST_NO_SUCH_VAR"), "{e:?}");
    assert!(has("agent.yaml:4:10: ", "`github.api_url` must be"), "{e:?}");
    assert!(has("agent.yaml:6:18: ", "`repository` must be `owner/name`"), "{e:?}");
    assert!(has("agent.yaml:7:36: ", "`environment`"), "{e:?}");
    assert!(has("agent.yaml:7:54: ", "unknown field `extra`"), "{e:?}");
    assert!(has("agent.yaml:8:1: ", "unknown field `secret` in `github`"), "{e:?}");
}

#[test]
fn a_key_that_is_not_an_rsa_key_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("cert.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        .unwrap();
    std::fs::write(dir.path().join("secret"), "0123456789abcdef0123").unwrap();
    let yaml = |key: &str| {
        format!(
            "app_id: 1\nprivate_key_file: {}\nwebhook_secret_file: {}\n",
            dir.path().join(key).display(),
            dir.path().join("secret").display()
        )
    };
    let e = parse_config(&yaml("key.pem")).unwrap_err();
    assert!(
        e[0].starts_with("agent.yaml:2:19: ") && e[0].contains("key.pem` is not the GitHub App's private key"),
        "{e:?}"
    );
    let e = parse_config(&yaml("cert.pem")).unwrap_err();
    assert!(e[0].contains("a `CERTIFICATE` PEM block is not an RSA private key"), "{e:?}");
    assert!(AppKey::from_pem("nothing here").unwrap_err().contains("not a PEM file"));
}

/// A 2048-bit key made now (never committed), as PKCS#1 PEM.
pub(crate) fn test_key() -> (String, rsa::RsaPublicKey) {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap().to_string();
    (pem, key.to_public_key())
}

#[test]
fn the_app_jwt_is_rs256_with_githubs_claims() {
    use base64::Engine as _;
    use rsa::signature::Verifier as _;
    let (pem, public) = test_key();
    let key = AppKey::from_pem(&pem).unwrap();
    let now_ms = 1_780_000_000_500;
    let jwt = key.jwt("123456", now_ms);
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims, json!({"iat": 1_780_000_000 - 60, "exp": 1_780_000_000 + 540, "iss": 123456}));
    let signature = rsa::pkcs1v15::Signature::try_from(b64.decode(parts[2]).unwrap().as_slice()).unwrap();
    let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public);
    verifier.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).unwrap();
    let claims = key.jwt("Iv1.abc", now_ms);
    let claims: Value = serde_json::from_slice(&b64.decode(claims.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["iss"], "Iv1.abc", "a client id stays a string");
}

#[test]
fn unmapped_repositories_are_their_own_service() {
    let (pem, _) = test_key();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), pem).unwrap();
    std::fs::write(dir.path().join("secret"), "0123456789abcdef0123").unwrap();
    let c = parse_config(&format!(
        "app_id: 1\nprivate_key_file: {}\nwebhook_secret_file: {}\nservices:\n  - {{repository: shop/web, environment: \"prod*\", service: storefront}}\n  - {{repository: shop/api, service: checkout}}\n",
        dir.path().join("key.pem").display(),
        dir.path().join("secret").display()
    ))
    .unwrap();
    assert_eq!(c.api_url, DEFAULT_API_URL);
    assert_eq!(c.service_for("Shop/Web", "production"), "storefront");
    assert_eq!(c.service_for("shop/web", "staging"), "web");
    assert_eq!(c.service_for("shop/api", "anything"), "checkout");
    assert_eq!(c.service_for("shop/search", "production"), "search");
    assert!(!format!("{c:?}").contains("0123456789abcdef"), "the secret is not printed");
}
