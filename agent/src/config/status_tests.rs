//! The `status:` and `incidents:` sections read as part of `agent.yaml`.

use crate::spec::model::Severity;
use crate::status::{ComponentConfig, StatusConfig};

const HEAD: &str = "specs: [a]\nstate: s\nsources: []\n";

fn parse(rest: &str) -> Result<crate::config::AgentConfig, Vec<String>> {
    crate::config::parse("agent.yaml", &format!("{HEAD}{rest}"), std::path::Path::new("/"))
        .map_err(|d| d.iter().map(|d| d.to_string()).collect())
}

#[test]
fn status_and_incidents_are_read_with_defaults() {
    let c = parse("").unwrap();
    assert_eq!((c.status, c.incidents_open_on), (None, [Severity::Page].into()));
    let c = parse(
        "status:\n  title: Acme status\n  components:\n    - {name: Checkout, service: checkout, slos: [co-avail, co-latency]}\n    - {name: Search, service: search}\nincidents: {open_on: [page, ticket]}\n",
    )
    .unwrap();
    assert_eq!(
        c.status,
        Some(StatusConfig {
            title: "Acme status".into(),
            components: vec![
                ComponentConfig {
                    name: "Checkout".into(),
                    service: "checkout".into(),
                    slos: vec!["co-avail".into(), "co-latency".into()],
                    journey: None,
                },
                ComponentConfig { name: "Search".into(), service: "search".into(), slos: vec![], journey: None },
            ],
        })
    );
    assert_eq!(c.incidents_open_on, [Severity::Page, Severity::Ticket].into());
    assert!(parse("incidents: {open_on: []}\n").unwrap().incidents_open_on.is_empty());
}

#[test]
fn mistakes_are_reported_where_they_are() {
    let cases = [
        ("status: {components: []}\n", "agent.yaml:4:", "`components` must list 1 to 200"),
        ("status:\n  components:\n    - {name: A}\n", "agent.yaml:6:7", "needs `service`"),
        (
            "status:\n  components:\n    - {name: A, service: a, journey: buy}\n",
            "agent.yaml:6:38",
            "`service` or `journey`, not both",
        ),
        ("status:\n  components:\n    - {name: A, journey: buy}\n", "agent.yaml:6:26", "no journey named `buy`"),
        ("status:\n  components:\n    - {name: A, service: a, route: /x}\n", "agent.yaml:6:", "unknown field `route`"),
        (
            "status:\n  components:\n    - {name: A, service: a}\n    - {name: A, service: b}\n",
            "agent.yaml:7:",
            "two components are named `A`",
        ),
        ("status: {titel: x, components: [{name: A, service: a}]}\n", "agent.yaml:4:", "unknown field `titel`"),
        ("incidents: {open_on: [pager]}\n", "agent.yaml:4:", "page or ticket, found `pager`"),
    ];
    for (text, at, want) in cases {
        let errs = parse(text).unwrap_err();
        assert!(errs.iter().any(|e| e.contains(want) && e.starts_with(at)), "{text}\n{errs:?}");
    }
}

#[test]
fn status_push_is_read_with_its_secret_and_defaults() {
    use crate::status::push::{PushTarget, StatusPushConfig};
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("sp.key");
    std::fs::write(&key, "sp-key-1\n").unwrap();
    let page =
        "status:\n  components:\n    - {name: Checkout, service: checkout}\n    - {name: Search, service: search}\n";
    let c = parse(&format!(
        "{page}  push:\n    kind: statuspage\n    page_id: kctbh9vrtdwd\n    api_key_file: {}\n    components: {{Checkout: 8kbf7d35c070}}\n",
        key.display()
    ))
    .unwrap();
    let Some(StatusPushConfig {
        target: PushTarget::Statuspage { url, page_id, api_key, components },
        timeout,
        max_queue,
    }) = c.status_push
    else {
        panic!("a Statuspage push");
    };
    assert_eq!(
        (url.as_str(), page_id.as_str(), api_key.expose()),
        ("https://api.statuspage.io", "kctbh9vrtdwd", "sp-key-1")
    );
    assert_eq!(components.into_iter().collect::<Vec<_>>(), [("Checkout".to_string(), "8kbf7d35c070".to_string())]);
    assert_eq!((timeout, max_queue), (std::time::Duration::from_secs(10), 1000));
    let c = parse(&format!(
        "{page}  push: {{kind: webhook, url: \"http://127.0.0.1:9000/status\", timeout: 2s, max_queue: 50}}\n"
    ))
    .unwrap();
    let p = c.status_push.unwrap();
    assert_eq!(p.target, PushTarget::Webhook { url: "http://127.0.0.1:9000/status".into(), secret: None });
    assert_eq!((p.timeout, p.max_queue), (std::time::Duration::from_secs(2), 50));
    assert_eq!(parse(page).unwrap().status_push, None);
}

#[test]
fn status_push_mistakes_are_reported_where_they_are() {
    let page = "status:\n  components:\n    - {name: Checkout, service: checkout}\n  push:\n";
    let cases = [
        (
            "    kind: pagerduty\n",
            "agent.yaml:8:11",
            "unknown push kind `pagerduty`; expected one of statuspage, webhook",
        ),
        ("    kind: webhook\n", "agent.yaml:8:", "`url`"),
        ("    {kind: webhook, url: \"ftp://x\"}\n", "agent.yaml:8:", "`url` must be an http:// or https:// URL"),
        ("    {kind: webhook, url: \"http://x\", page_id: a}\n", "agent.yaml:8:", "unknown field `page_id`"),
        (
            "    {kind: statuspage, page_id: a, components: {Checkout: b}}\n",
            "agent.yaml:8:",
            "set `api_key_file` or `api_key_env`",
        ),
        (
            "    {kind: statuspage, page_id: a, api_key_env: SLO_AGENT_TEST_UNSET_KEY_7, components: {Checkout: b}}\n",
            "agent.yaml:8:",
            "`SLO_AGENT_TEST_UNSET_KEY_7` (the Statuspage API key) is not set",
        ),
        (
            "    {kind: statuspage, page_id: a, api_key_file: /nonexistent/k, components: {Chekout: b}}\n",
            "agent.yaml:8:",
            "`Chekout` is not a component of `status.components` (Checkout)",
        ),
        (
            "    {kind: statuspage, page_id: \"a/b\", api_key_file: /nonexistent/k, components: {Checkout: b}}\n",
            "agent.yaml:8:",
            "`page_id` must be a Statuspage id",
        ),
        (
            "    {kind: webhook, url: \"http://x\", max_queue: 5}\n",
            "agent.yaml:8:",
            "`max_queue` must be a whole number from 10",
        ),
        ("    {kind: webhook, url: \"http://x\", timeout: 0s}\n", "agent.yaml:8:", "`timeout` must be a duration"),
    ];
    for (text, at, want) in cases {
        let errs = parse(&format!("{page}{text}")).unwrap_err();
        assert!(errs.iter().any(|e| e.contains(want) && e.starts_with(at)), "{text}\n{errs:?}");
    }
}

const JOURNEY: &str = "journeys:\n  - name: buy\n    service: checkout\n    interval: 1m\n    steps:\n      - {name: home, request: {method: GET, url: \"http://127.0.0.1:1/\"}}\n";

#[test]
fn a_journey_component_takes_its_journeys_service() {
    let c = parse(&format!("{JOURNEY}status:\n  components:\n    - {{name: Buying, journey: buy}}\n")).unwrap();
    let want = ComponentConfig {
        name: "Buying".into(),
        service: "checkout".into(),
        slos: vec![],
        journey: Some("buy".into()),
    };
    assert_eq!(c.status.unwrap().components, [want]);
    let cases = [
        ("    - {name: Buying, journey: sell}\n", ":12:31", "no journey named `sell` (`journeys:` has buy)"),
        ("    - {name: Buying, journey: buy, slos: [x]}\n", ":12:42", "`slos` is for service components"),
    ];
    for (item, at, want) in cases {
        let errs = parse(&format!("{JOURNEY}status:\n  components:\n{item}")).unwrap_err();
        assert!(errs.iter().any(|e| e.contains(want) && e.starts_with(&format!("agent.yaml{at}"))), "{item}\n{errs:?}");
    }
}
