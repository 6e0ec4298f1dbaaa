//! The `notify:` section read as part of `agent.yaml` (defaults that depend
//! on the rest of the file, such as `external_url`).

use std::path::Path;

fn parse(notify: &str) -> Result<crate::config::AgentConfig, Vec<String>> {
    let text = format!("specs: [s]\nstate: st\nlisten: 127.0.0.1:9464\nsources: []\n{notify}");
    crate::config::parse("agent.yaml", &text, Path::new("/tmp")).map_err(|d| d.iter().map(|d| d.to_string()).collect())
}

#[test]
#[allow(unsafe_code)] // each `unsafe` inside carries its SAFETY comment
fn receivers_and_routes_are_read_with_defaults() {
    // SAFETY: the variable name is unique to this test.
    unsafe { std::env::set_var("SLO_AGENT_TEST_OG_KEY", "k-123") };
    let c = parse(
        "notify:\n  receivers:\n    - {name: og, type: opsgenie, api_key_env: SLO_AGENT_TEST_OG_KEY}\n    - {name: am, type: alertmanager, url: \"http://am:9093\"}\n  routes:\n    - {receiver: og, match: {severity: page, service: \"check*\"}, continue: true}\n    - {receiver: am, group_by: [slo, kind], group_interval: 30s}\n",
    )
    .unwrap();
    let n = &c.notify;
    assert_eq!(n.external_url, "http://127.0.0.1:9464");
    assert_eq!(n.receivers[0].kind.as_str(), "opsgenie");
    assert!(
        matches!(&n.receivers[0].kind, crate::notify::ReceiverKind::Opsgenie { url, api_key } if url == "https://api.opsgenie.com" && api_key.expose() == "k-123")
    );
    assert!(!format!("{:?}", n.receivers[0]).contains("k-123"), "secrets never print");
    assert_eq!(n.routes[0].group_by, ["service"]);
    assert!(n.routes[0].continue_matching);
    assert_eq!(n.routes[0].repeat_interval, None);
    assert_eq!(n.routes[1].group_interval, std::time::Duration::from_secs(30));
    assert_eq!(n.routes[1].repeat_interval, Some(std::time::Duration::from_secs(60)), "Alertmanager is re-sent");
}

#[test]
fn mistakes_are_reported_where_they_are() {
    let e = parse("notify:\n  receivers:\n    - {name: x, type: teams, url: \"http://x\"}\n").unwrap_err();
    assert!(e.iter().any(|m| m.starts_with("agent.yaml:7:") && m.contains("unknown receiver type `teams`")), "{e:?}");
    let e = parse(
        "notify:\n  receivers:\n    - {name: x, type: webhook, url: \"http://x\"}\n  routes:\n    - {receiver: y}\n",
    )
    .unwrap_err();
    assert!(
        e.iter().any(|m| m.contains("agent.yaml:9:") && m.contains("no receiver named `y` (receivers: x)")),
        "{e:?}"
    );
    let e = parse("notify:\n  receivers:\n    - {name: p, type: pagerduty}\n").unwrap_err();
    assert!(e.iter().any(|m| m.contains("set `routing_key_file` or `routing_key_env`")), "{e:?}");
    let e =
        parse("notify:\n  receivers:\n    - {name: w, type: webhook, url: \"ftp://x\", secret_file: /nonexistent/s}\n")
            .unwrap_err();
    assert!(e.iter().any(|m| m.contains("`url` must start with http://")), "{e:?}");
    assert!(e.iter().any(|m| m.contains("cannot read `/nonexistent/s`")), "{e:?}");
    let e = parse(
        "notify:\n  receivers:\n    - {name: am, type: alertmanager, url: \"http://am\"}\n  routes:\n    - {receiver: am, repeat_interval: 10m}\n",
    )
    .unwrap_err();
    assert!(e.iter().any(|m| m.contains("at most 4m")), "{e:?}");
}
