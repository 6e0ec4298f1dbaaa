//! The viewer's protocol and TLS version as filters and good criteria:
//! specs that read them count the right events, through the engine and
//! through `slo-agent replay` over a CloudFront standard log whose right
//! answers are known by construction (`fixtures/cloudfront/protocol-tls.log`).

use std::path::Path;
use std::process::Command;

use slo_agent::event::{Origin, Protocol, RequestEvent, TlsVersion};
use slo_agent::sli::{Engine, definition_key};
use slo_agent::spec::load_str;

fn slo(name: &str, source: &str, filter: &str, good: &str) -> String {
    format!(
        "---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: {name}}}\nspec:\n  service: storefront\n  objective: 99.9\n  window: 7d\n  indicator:\n    source: {source}\n    filter: {filter}\n    good: {good}\n"
    )
}

/// The fixture's SLOs, and for each the (good, total) the fixture gives it.
fn specs() -> (String, Vec<(&'static str, u64, u64)>) {
    let text = [
        // "Share of requests on modern TLS" on the shop's encrypted traffic.
        slo(
            "modern-tls",
            "cloudfront",
            "{host: shop.example.com, protocol: [https, wss]}",
            "{tls_version: [TLSv1.2, TLSv1.3]}",
        ),
        // The old-TLS clients, and how well they are served.
        slo("old-tls", "cloudfront", "{tls_version: [SSLv3, TLSv1.0, tlsv1.1]}", "{status: \"< 500\"}"),
        slo("plain", "cloudfront", "{protocol: [HTTP, ws]}", "{status: 2xx}"),
        slo("no-tls", "cloudfront", "{tls_version: none}", "{status: \"< 500\"}"),
        slo("static-hits", "cloudfront", "{path: \"/static/*\"}", "{cache: hit}"),
    ]
    .concat();
    (text, vec![("modern-tls", 5, 8), ("old-tls", 2, 3), ("plain", 1, 3), ("no-tls", 3, 3), ("static-hits", 2, 3)])
}

#[test]
fn replay_counts_by_protocol_and_tls_version() {
    let dir = tempfile::tempdir().unwrap();
    let (text, want) = specs();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, text).unwrap();
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudfront/protocol-tls.log");
    let out = Command::new(env!("CARGO_BIN_EXE_slo-agent"))
        .args(["replay", "--specs"])
        .arg(&spec)
        .args(["--output", "json", "--format", "cloudfront", "--service", "storefront"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rejected_lines"], 0);
    for (name, good, total) in want {
        let s = v["slos"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap();
        assert_eq!((s["events"]["good"].as_u64(), s["events"]["total"].as_u64()), (Some(good), Some(total)), "{name}");
    }
}

#[test]
fn the_engine_asks_for_the_fields_and_other_origins_are_unknown() {
    let (text, _) = specs();
    let set = load_str("s.yaml", &text).unwrap_or_else(|d| panic!("{d:?}"));
    let w = Engine::new(&set, false).wanted();
    assert!(w.protocol && w.tls_version && w.cache);
    // A good criterion alone asks for its field, and only for it.
    let only_good = load_str("g.yaml", &slo("g", "cloudfront", "{}", "{tls_version: TLSv1.3}")).unwrap();
    let w = Engine::new(&only_good, false).wanted();
    assert!(w.tls_version && !w.protocol && !w.cache);
    let plain = load_str("p.yaml", &slo("p", "cloudfront", "{}", "{status: 2xx}")).unwrap();
    let w = Engine::new(&plain, false).wanted();
    assert!(!w.tls_version && !w.protocol);

    // Events of a source that logs no protocol are `unknown`.
    let text = [
        slo("https-only", "apigateway", "{protocol: https}", "{status: 2xx}"),
        slo("unknown", "apigateway", "{protocol: unknown, tls_version: unknown}", "{status: 2xx}"),
        slo("tls-good", "apigateway", "{}", "{tls_version: [TLSv1.2, TLSv1.3]}"),
    ]
    .concat();
    let set = load_str("a.yaml", &text).unwrap();
    let mut e = Engine::new(&set, false);
    let t0 = 1_795_176_000_000;
    let ev = RequestEvent { ts_ms: t0, origin: Some(Origin::ApiGateway), status: 200, ..Default::default() };
    for _ in 0..4 {
        e.observe(&ev);
    }
    let tls12 = RequestEvent { protocol: Protocol::Https, tls_version: TlsVersion::Tls1_2, ..ev };
    e.observe(&tls12);
    let s = e.evaluate(t0 + 60_000);
    let counts: Vec<(u64, u64)> = s.iter().map(|s| (s.window.events.good, s.window.events.total)).collect();
    assert_eq!(counts, [(1, 1), (4, 4), (1, 5)]);
}

#[test]
fn the_definition_key_grows_only_for_specs_that_use_the_fields() {
    let key = |filter: &str, good: &str| {
        let set = load_str("k.yaml", &slo("k", "cloudfront", filter, good)).unwrap();
        definition_key(&set.slos[0])
    };
    let plain = key("{host: a}", "{status: 2xx}");
    assert!(!plain.contains("proto") && !plain.contains("tls"), "{plain}");
    assert_eq!(plain, key("{host: a}", "{status: 2xx}"));
    let keys = [
        plain,
        key("{host: a, protocol: https}", "{status: 2xx}"),
        key("{host: a, protocol: [https, wss]}", "{status: 2xx}"),
        key("{host: a, tls_version: TLSv1}", "{status: 2xx}"),
        key("{host: a}", "{status: 2xx, protocol: https}"),
        key("{host: a}", "{status: 2xx, tls_version: TLSv1.3}"),
        key("{host: a}", "{status: 2xx, tls_version: [TLSv1.2, TLSv1.3]}"),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Spellings of one version are one indicator.
    assert_eq!(key("{tls_version: TLSv1.0}", "{status: 2xx}"), key("{tls_version: tlsv1}", "{status: 2xx}"));
}
