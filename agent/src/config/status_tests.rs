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
