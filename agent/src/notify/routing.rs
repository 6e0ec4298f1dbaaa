//! Which receivers hear about an alert, and how changes are grouped.
//!
//! Routes are tried in order; the first whose `match` holds takes the alert
//! (and the next ones too when it says `continue: true`). An alert no route
//! takes goes nowhere but the API and `/metrics`. Each route groups alerts
//! by the values of its `group_by` labels (`service` by default): one
//! notification per group and `group_interval`, however many SLOs of the
//! group change.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::spec::glob::Glob;

use super::ReceiverConfig;

/// `agent.yaml` `notify:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotifyConfig {
    /// The agent's base URL as humans reach it, for links in notifications.
    pub external_url: String,
    pub receivers: Vec<ReceiverConfig>,
    pub routes: Vec<Route>,
    /// Alert changes kept per receiver before the oldest move to the
    /// failed table (a receiver down for days).
    pub max_outbox: usize,
}

pub const DEFAULT_MAX_OUTBOX: usize = 10_000;

/// One route: which alerts, to which receiver, grouped how.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub receiver: String,
    /// Label name → pattern (`*` globs); all must match.
    pub matchers: Vec<(String, Glob)>,
    pub group_by: Vec<String>,
    /// How long the first change of a new group waits for others to join.
    pub group_wait: Duration,
    /// The least time between two notifications of one group.
    pub group_interval: Duration,
    /// Re-send a group that still fires this often (`None`: never). Alertmanager
    /// receivers default to one minute: Alertmanager forgets alerts that are
    /// not re-sent.
    pub repeat_interval: Option<Duration>,
    /// Go on to the next routes after this one matched.
    pub continue_matching: bool,
}

impl Route {
    /// Every alert to `receiver`, grouped by service, with the default timers.
    pub fn defaults(receiver: &str) -> Route {
        Route {
            receiver: receiver.to_string(),
            matchers: Vec::new(),
            group_by: vec!["service".into()],
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: None,
            continue_matching: false,
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|(name, g)| g.matches(labels.get(name).map_or("", String::as_str)))
    }

    /// The group an alert with these labels belongs to: the `group_by`
    /// labels' values (missing ones read as empty).
    pub fn group_labels(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        self.group_by.iter().map(|k| (k.clone(), labels.get(k).cloned().unwrap_or_default())).collect()
    }
}

pub const DEFAULT_GROUP_WAIT: Duration = Duration::ZERO;
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);

impl NotifyConfig {
    /// The (route index, receiver) pairs that take an alert with `labels`.
    pub fn routes_for(&self, labels: &BTreeMap<String, String>) -> Vec<(usize, &Route)> {
        let mut out = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            if r.matches(labels) {
                out.push((i, r));
                if !r.continue_matching {
                    break;
                }
            }
        }
        out
    }

    pub fn receiver(&self, name: &str) -> Option<&ReceiverConfig> {
        self.receivers.iter().find(|r| r.name == name)
    }
}

/// A group's identity inside a receiver: `route index|k=v,k=v`.
pub fn group_id(route: usize, labels: &BTreeMap<String, String>) -> String {
    let mut s = format!("{route}|");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(receiver: &str, m: &[(&str, &str)], cont: bool) -> Route {
        Route {
            receiver: receiver.into(),
            matchers: m.iter().map(|(k, v)| (k.to_string(), Glob::new(v).unwrap())).collect(),
            group_by: vec!["service".into()],
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: None,
            continue_matching: cont,
        }
    }

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn first_match_wins_unless_it_continues() {
        let cfg = NotifyConfig {
            routes: vec![
                route("audit", &[], true),
                route("pager", &[("severity", "page")], false),
                route("tickets", &[("service", "check*")], false),
                route("never", &[], false),
            ],
            ..Default::default()
        };
        let names = |l: &BTreeMap<String, String>| {
            cfg.routes_for(l).iter().map(|(_, r)| r.receiver.clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(&labels(&[("severity", "page"), ("service", "checkout")])), ["audit", "pager"]);
        assert_eq!(names(&labels(&[("severity", "ticket"), ("service", "checkout")])), ["audit", "tickets"]);
        assert_eq!(names(&labels(&[("severity", "ticket"), ("service", "search")])), ["audit", "never"]);
    }

    #[test]
    fn groups_are_the_group_by_values() {
        let r = route("x", &[], false);
        let g = r.group_labels(&labels(&[("service", "checkout"), ("slo", "a")]));
        assert_eq!(group_id(2, &g), "2|service=checkout");
        assert_eq!(group_id(0, &r.group_labels(&labels(&[]))), "0|service=");
    }
}
