use std::time::Duration;

use crate::synthetic::*;

const HEAD: &str = "specs: [slos]\nstate: s.redb\nsources: []\n";

fn parse(dir: &std::path::Path, body: &str) -> Result<crate::config::AgentConfig, Vec<String>> {
    crate::config::parse("agent.yaml", &format!("{HEAD}{body}"), dir)
        .map_err(|d| d.iter().map(|d| d.to_string()).collect())
}

/// The shape the issue fixes, as written there, reads whole.
#[test]
fn the_documented_shape_reads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "hunter2\n").unwrap();
    let body = r#"region: eu-west-1
probes:
  - name: storefront
    interval: 30s
    hops:
      - {name: edge, url: "https://www.shop.example.com/api/health"}
      - {name: gateway, url: "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/health"}
      - {name: function, url: "https://xyz.lambda-url.eu-west-1.on.aws/health"}
    expect: {status: [200], latency: 800ms}
journeys:
  - name: checkout
    interval: 1m
    steps:
      - {name: home, request: {method: GET, url: "https://www.shop.example.com/"}, expect: {status: [200]}}
      - name: login
        request: {method: POST, url: "https://www.shop.example.com/api/login", json: {user: "synthetic", password_file: pw}}
        extract: {token: {json: "$.token"}}
        expect: {status: [200]}
      - {name: cart, request: {method: POST, url: "https://www.shop.example.com/api/cart", headers: {authorization: "Bearer ${token}"}, json: {sku: "A1"}}, expect: {status: [200, 201]}}
"#;
    let c = parse(dir.path(), body).unwrap_or_else(|e| panic!("{e:#?}")).synthetic;
    assert_eq!(c.region, "eu-west-1");
    let p = &c.probes[0];
    assert_eq!(
        (p.name.as_str(), p.service.as_str(), p.interval, p.retries),
        ("storefront", "storefront", Duration::from_secs(30), 1)
    );
    assert_eq!(p.hops.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["edge", "gateway", "function"]);
    assert_eq!(p.hops[2].expect.status, StatusMatch::Codes(vec![200]));
    assert_eq!(p.hops[2].expect.latency, Some(Duration::from_millis(800)));
    assert_eq!(p.connection.timeout, Duration::from_secs(10));
    let j = &c.journeys[0];
    assert_eq!(j.steps.len(), 3);
    let login = &j.steps[1];
    let Some(Body::Json(JsonTemplate::Object(fields))) = &login.target.body else { panic!("{login:?}") };
    assert_eq!(fields[0], ("user".to_string(), JsonTemplate::Text(Text::Plain("synthetic".into()))));
    assert_eq!(fields[1].0, "password");
    let JsonTemplate::Text(secret) = &fields[1].1 else { panic!() };
    assert!(secret.is_secret());
    assert_eq!(secret.value().unwrap(), "hunter2");
    assert_eq!(login.extract[0].0, "token");
    let Extract::Json(path) = &login.extract[0].1 else { panic!() };
    assert_eq!(path.find(&serde_json::json!({"token": "abc"})), Some(&serde_json::json!("abc")));
    assert_eq!(j.steps[2].target.headers[0], ("authorization".to_string(), Text::Plain("Bearer ${token}".into())));
    // The secret's value is not in the config's debug output.
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn one_url_is_a_probe_of_one_hop_and_the_region_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let c = parse(dir.path(), "probes:\n  - {name: api, url: \"http://127.0.0.1:8080/health\", retries: 0, expect: {status: 2xx, body_matches: ok}}\n")
        .unwrap()
        .synthetic;
    assert_eq!(c.probes[0].hops[0].name, "target");
    assert_eq!(c.probes[0].retries, 0);
    assert!(c.probes[0].hops[0].expect.status.accepts(204));
    assert!(!c.probes[0].hops[0].expect.status.accepts(301));
    assert!(!c.region.is_empty());
}

#[test]
fn every_mistake_is_reported_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"region: "eu west"
probes:
  - name: a
    url: "ftp://x"
  - name: a
    url: "http://x/${v}"
  - name: b
    hops:
      - {name: edge, url: "http://x"}
      - {name: edge, url: "http://y"}
    expect: {status: [700], body_matches: "(", json: {"token": 1}}
    timeout: 5m
  - name: c
    url: "http://x"
    retires: 2
journeys:
  - name: j
    steps:
      - {name: s1, request: {url: "http://x/${token}"}}
      - {name: s2, request: {url: "http://x", json: {a: 1}, form: {b: c}, headers: {x_file: /nonexistent/secret}}, extract: {t: {json: "$.a", header: x}}}
"#;
    let errs = parse(dir.path(), body).unwrap_err();
    let want = [
        "agent.yaml:4:9: `region` must be",
        "agent.yaml:7:10: `probes[a].url` must be an http:// or https:// URL",
        "agent.yaml:8:5: duplicate probe or journey name `a`",
        "agent.yaml:9:10: `probes[a].url` uses `${v}`, but only journey steps have variables",
        "duplicate hop name `edge`",
        "`probes[b].expect.status` takes status codes (100 to 599) or `2xx`, found `700`",
        "`probes[b].expect.body_matches` is not a valid pattern",
        "`probes[b].expect.json`: `token` is not a JSON path",
        "`probes[b].timeout` must be a duration",
        "unknown field `retires` in `probes[]`; did you mean `retries`?",
        "`journeys[j].steps[s1]` uses `${token}`, but no earlier step extracts `token`",
        "has json and form: give one body",
        "`journeys[j].steps[s2].request.headers.x_file`: cannot read /nonexistent/secret",
        "`journeys[j].steps[s2].extract.t` takes exactly one of json, header, regex, cookie",
    ];
    for w in want {
        assert!(errs.iter().any(|e| e.contains(w)), "missing {w:?} in {errs:#?}");
    }
}

#[test]
fn json_paths_and_variables() {
    let p = config::json_path("$.items[1]['unit price']").unwrap();
    let v = serde_json::json!({"items": [{}, {"unit price": 3}]});
    assert_eq!(p.find(&v), Some(&serde_json::json!(3)));
    assert!(config::json_path("items").is_err());
    assert!(config::json_path("$.").is_err());
    assert_eq!(config::variables("a ${x} b ${y_2}").unwrap(), ["x", "y_2"]);
    assert!(config::variables("${x").is_err());
    assert!(config::variables("${a-b}").is_err());
}

mod journeys {
    use super::*;
    use crate::synthetic::journey::*;

    use crate::probe::{AssertionFailure, Attempt, KeptResponse, Outcome};

    fn response(_status: u16, headers: &[(&str, &str)], body: &str, _ms: u64) -> KeptResponse {
        KeptResponse {
            url: "https://shop.example.com/".into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn variables_render_and_a_missing_one_is_an_error() {
        let vars = Vars::from([("token".to_string(), "abc".to_string())]);
        assert_eq!(render("Bearer ${token}!", &vars).unwrap(), "Bearer abc!");
        assert!(render("${nope}", &vars).unwrap_err().contains("nope"));
        let t = JsonTemplate::Object(vec![
            ("sku".into(), JsonTemplate::Text(Text::Plain("A1-${token}".into()))),
            ("n".into(), JsonTemplate::Number(2.into())),
        ]);
        assert_eq!(json(&t, &vars).unwrap(), serde_json::json!({"sku": "A1-abc", "n": 2}));
    }

    #[test]
    fn extraction_from_json_headers_patterns_and_cookies() {
        let r = response(
            200,
            &[("x-request-id", "r-1"), ("set-cookie", "session=s3cr3t; Path=/; HttpOnly")],
            r#"{"token": "t-9", "cart": {"id": 42}} order ORD-77"#,
            10,
        );
        let path = config::json_path("$.cart.id").unwrap();
        assert!(extract(&Extract::Json(path), &r).is_err(), "the body is not pure JSON");
        let r2 = response(200, &[], r#"{"token": "t-9", "cart": {"id": 42}}"#, 10);
        assert_eq!(extract(&Extract::Json(config::json_path("$.token").unwrap()), &r2).unwrap(), "t-9");
        assert_eq!(extract(&Extract::Json(config::json_path("$.cart.id").unwrap()), &r2).unwrap(), "42");
        assert!(extract(&Extract::Json(config::json_path("$.missing").unwrap()), &r2).is_err());
        assert_eq!(extract(&Extract::Header("x-request-id".into()), &r).unwrap(), "r-1");
        assert_eq!(extract(&Extract::Regex("ORD-(\\d+)".into()), &r).unwrap(), "77");
        assert_eq!(extract(&Extract::Cookie("session".into()), &r).unwrap(), "s3cr3t");
        assert!(extract(&Extract::Cookie("other".into()), &r).is_err());
    }

    #[test]
    fn the_cookie_jar_keeps_per_host_and_forgets_deleted_cookies() {
        let mut jar = CookieJar::default();
        jar.store(
            "shop.example.com",
            &response(200, &[("set-cookie", "session=a"), ("set-cookie", "cart=1")], "", 1),
            0,
        );
        assert_eq!(jar.header("SHOP.example.com").as_deref(), Some("cart=1; session=a"));
        assert_eq!(jar.header("other.example.com"), None);
        jar.store("shop.example.com", &response(200, &[("set-cookie", "cart=; Max-Age=0")], "", 1), 0);
        jar.store(
            "shop.example.com",
            &response(200, &[("set-cookie", "session=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT")], "", 1),
            1_800_000_000_000,
        );
        assert_eq!(jar.header("shop.example.com"), None);
    }

    fn outcome(ms: u64, failed: Vec<AssertionFailure>) -> Outcome {
        let attempt = Attempt {
            duration: Duration::from_millis(ms),
            status: Some(200),
            failed_assertions: failed.clone(),
            ..Attempt::default()
        };
        Outcome {
            probe: "checkout".into(),
            hop: "cart".into(),
            region: "local".into(),
            url: "https://shop.example.com/cart".into(),
            success: failed.is_empty(),
            attempts: vec![attempt],
        }
    }

    #[test]
    fn slow_but_correct_is_degraded_and_unmet_expectations_are_named() {
        let budget = Some(Duration::from_millis(100));
        assert_eq!(judge(&outcome(50, vec![]), budget), (Status::Ok, None));
        assert_eq!(judge(&outcome(250, vec![]), None), (Status::Ok, None));
        let (s, why) = judge(&outcome(250, vec![]), budget);
        assert_eq!((s, why.unwrap()), (Status::Degraded, "latency 250ms over budget 100ms".to_string()));
        let failed = vec![
            AssertionFailure::Status { status: 503, valid: vec![200] },
            AssertionFailure::BodyDoesNotMatch { regex: "ok".into() },
        ];
        let (s, why) = judge(&outcome(250, failed), budget);
        assert_eq!(
            (s, why.unwrap()),
            (Status::Failed, "status 503 not in [200]; body does not match /ok/".to_string())
        );
        assert_eq!(overall(&[Status::Ok, Status::Degraded, Status::Ok]), Status::Degraded);
        assert_eq!(overall(&[Status::Degraded, Status::Failed, Status::Skipped]), Status::Failed);
        assert_eq!(overall(&[]), Status::Ok);
    }
}

/// An agent that only probes needs no `sources:`; one that does neither is told.
#[test]
fn sources_are_optional_for_an_agent_that_probes() {
    let dir = tempfile::tempdir().unwrap();
    let probes = "probes:\n  - name: p\n    hops: [{name: edge, url: \"https://example.com/\"}]\n";
    let c = crate::config::parse("agent.yaml", &format!("specs: [slos]\nstate: s.redb\n{probes}"), dir.path())
        .unwrap_or_else(|d| panic!("{d:?}"));
    assert!(c.sources.is_empty());
    assert_eq!(c.synthetic.probes.len(), 1);
    let e = crate::config::parse("agent.yaml", "specs: [slos]\nstate: s.redb\n", dir.path()).unwrap_err();
    assert!(e.iter().any(|d| d.message.contains("missing required field `sources`")), "{e:?}");
}

#[test]
fn certificate_thresholds_default_to_21_and_3_days_and_are_set_per_probe_or_for_all() {
    let dir = tempfile::tempdir().unwrap();
    let day = |n: u64| Duration::from_secs(n * 86_400);
    let c = parse(dir.path(), "probes:\n  - {name: a, url: \"https://a.example/\"}\n").unwrap().synthetic;
    let p = &c.probes[0].certificates;
    assert_eq!((p.ticket_below, p.page_below, p.self_signed, p.runbook.as_deref()), (day(21), day(3), false, None));
    let body = "certificates: {ticket_below: 30d, runbook: \"https://rb.example/tls\"}\nprobes:\n  - {name: a, url: \"https://a.example/\"}\n  - {name: b, url: \"https://b.example/\", certificates: {page_below: 7d, self_signed: true}}\n";
    let c = parse(dir.path(), body).unwrap_or_else(|e| panic!("{e:#?}")).synthetic;
    let (a, b) = (&c.probes[0].certificates, &c.probes[1].certificates);
    assert_eq!((a.ticket_below, a.page_below, a.self_signed), (day(30), day(3), false));
    assert_eq!((b.ticket_below, b.page_below, b.self_signed), (day(30), day(7), true));
    assert_eq!(b.runbook.as_deref(), Some("https://rb.example/tls"));
}

#[test]
fn certificate_mistakes_are_positioned() {
    let dir = tempfile::tempdir().unwrap();
    let body = "certificates: {ticket_below: soon}\nprobes:\n  - name: a\n    url: \"https://a.example/\"\n    certificates: {page_below: 30d, self_signed: maybe, grace: 1d}\n  - name: b\n    url: \"https://b.example/\"\n    certificates: {ticket_below: 2d, page_below: 5d}\n";
    let errors = parse(dir.path(), body).unwrap_err();
    let text = errors.join("\n");
    assert!(
        text.contains("agent.yaml:4:30") && text.contains("`certificates.ticket_below` must be a duration"),
        "{text}"
    );
    assert!(text.contains("agent.yaml:8:57: unknown field `grace` in `probes[a].certificates`"), "{text}");
    assert!(text.contains("agent.yaml:8:50: `probes[a].certificates.self_signed` must be true or false"), "{text}");
    assert!(
        text.contains(
            "agent.yaml:11:50: `probes[b].certificates`: `page_below` (5d) must not be longer than `ticket_below` (2d)"
        ),
        "{text}"
    );
}
