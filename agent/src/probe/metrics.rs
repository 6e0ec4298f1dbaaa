//! Probe results as Prometheus text, with blackbox_exporter's metric names,
//! help texts and labels, so its dashboards and alerts read ours unchanged.
//! Every series also carries `probe`, `hop` and `region`.
//!
//! The series of blackbox_exporter's HTTP prober (as of Debian's 0.23) are
//! all here, from the attempt that counts (the last). Two are ours, named
//! apart: `probe_tls_cipher_info{cipher}` (the negotiated cipher suite) and
//! `slo_agent_probe_attempts` (how many attempts the result took: retries
//! are visible, not hidden).
//!
//! Certificates, also ours: `slo_agent_cert_problem{problem}` (1 for each
//! [`ProblemKind`] the presented chain has, 0 for the others: a bounded
//! label) and, where a clock is given ([`render_all_at`]: the agent's
//! `/metrics`), `slo_agent_cert_expiry_remaining_seconds` (seconds until the earliest
//! not-after of the presented chain; negative once expired).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{IpFamily, Outcome, ProblemKind};

struct Series {
    labels: Vec<(&'static str, String)>,
    value: f64,
}

/// Gauge families: metric name → (help, series), rendered in name order,
/// each family once. Also used for the journeys' `slo_agent_journey_*`.
#[derive(Default)]
pub struct Families(BTreeMap<&'static str, (&'static str, Vec<Series>)>);

impl Families {
    pub fn add(&mut self, name: &'static str, help: &'static str, labels: Vec<(&'static str, String)>, value: f64) {
        self.0.entry(name).or_insert_with(|| (help, Vec::new())).1.push(Series { labels, value });
    }

    /// Prometheus text exposition (version 0.0.4; also valid OpenMetrics lines).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, (help, series)) in &self.0 {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for s in series {
                out.push_str(name);
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape(v));
                }
                let _ = writeln!(out, "}} {}", number(s.value));
            }
        }
        out
    }
}

/// One outcome as Prometheus text exposition (version 0.0.4).
pub fn render(outcome: &Outcome) -> String {
    render_all(std::slice::from_ref(outcome))
}

/// Several outcomes (probes, hops) in one exposition, each family once.
pub fn render_all(outcomes: &[Outcome]) -> String {
    render_families(outcomes, None)
}

/// [`render_all`], plus the days each endpoint's certificates have left at
/// `now_ms` (the agent's clock).
pub fn render_all_at(outcomes: &[Outcome], now_ms: i64) -> String {
    render_families(outcomes, Some(now_ms))
}

fn render_families(outcomes: &[Outcome], now_ms: Option<i64>) -> String {
    let mut f = Families::default();
    for o in outcomes {
        add_outcome(&mut f, o);
        if let (Some(now), Some(expiry)) = (now_ms, o.last().tls.as_ref().and_then(|t| t.earliest_expiry())) {
            f.add(
                "slo_agent_cert_expiry_remaining_seconds",
                "Seconds until the earliest not-after of the presented certificate chain (negative once expired)",
                vec![("probe", o.probe.clone()), ("hop", o.hop.clone()), ("region", o.region.clone())],
                (expiry * 1000 - now) as f64 / 1000.0,
            );
        }
    }
    f.render()
}

fn add_outcome(f: &mut Families, o: &Outcome) {
    let base: Vec<(&'static str, String)> =
        vec![("probe", o.probe.clone()), ("hop", o.hop.clone()), ("region", o.region.clone())];
    let with = |extra: Vec<(&'static str, String)>| {
        let mut l = base.clone();
        l.extend(extra);
        l
    };
    let a = o.last();
    let b = |v: bool| if v { 1.0 } else { 0.0 };
    f.add("probe_success", "Displays whether or not the probe was a success", base.clone(), b(o.success));
    f.add(
        "probe_duration_seconds",
        "Returns how long the probe took to complete in seconds",
        base.clone(),
        a.duration.as_secs_f64(),
    );
    f.add(
        "probe_dns_lookup_time_seconds",
        "Returns the time taken for probe dns lookup in seconds",
        base.clone(),
        a.dns_lookup.as_secs_f64(),
    );
    f.add(
        "probe_ip_protocol",
        "Specifies whether probe ip protocol is IP4 or IP6",
        base.clone(),
        a.ip.map_or(0.0, |ip| f64::from(IpFamily::of(ip).number())),
    );
    if let Some(ip) = a.ip {
        f.add(
            "probe_ip_addr_hash",
            "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
            base.clone(),
            f64::from(ip_hash(ip)),
        );
    }
    for (phase, d) in a.phases.named() {
        f.add(
            "probe_http_duration_seconds",
            "Duration of http request by phase, summed over all redirects",
            with(vec![("phase", phase.to_string())]),
            d.as_secs_f64(),
        );
    }
    f.add("probe_http_status_code", "Response HTTP status code", base.clone(), a.status.map_or(0.0, f64::from));
    let version = a.http_version.as_deref().and_then(|v| v.strip_prefix("HTTP/")?.parse::<f64>().ok());
    f.add(
        "probe_http_version",
        "Returns the version of HTTP of the probe response",
        base.clone(),
        version.unwrap_or(0.0),
    );
    f.add("probe_http_content_length", "Length of http content response", base.clone(), a.content_length as f64);
    f.add(
        "probe_http_uncompressed_body_length",
        "Length of uncompressed response body",
        base.clone(),
        a.body_bytes as f64,
    );
    f.add("probe_http_redirects", "The number of redirects", base.clone(), f64::from(a.redirects));
    f.add("probe_http_ssl", "Indicates if SSL was used for the final redirect", base.clone(), b(a.ssl));
    f.add(
        "probe_failed_due_to_regex",
        "Indicates if probe failed due to regex",
        base.clone(),
        b(a.failed_due_to_regex()),
    );
    if let Some(t) = a.last_modified {
        f.add(
            "probe_http_last_modified_timestamp_seconds",
            "Returns the Last-Modified HTTP response header in unixtime",
            base.clone(),
            t as f64,
        );
    }
    if let Some(tls) = &a.tls {
        // Whenever a certificate was received, also when the handshake then failed.
        if let Some(expiry) = tls.earliest_expiry() {
            f.add(
                "probe_ssl_earliest_cert_expiry",
                "Returns earliest SSL cert expiry in unixtime",
                base.clone(),
                expiry as f64,
            );
        }
        if let Some(expiry) = tls.last_chain_expiry() {
            f.add(
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                "Returns last SSL chain expiry in timestamp seconds",
                base.clone(),
                expiry as f64,
            );
        }
        if let Some(leaf) = tls.chain.first() {
            f.add(
                "probe_ssl_last_chain_info",
                "Contains SSL leaf certificate information",
                with(vec![
                    ("fingerprint_sha256", leaf.fingerprint_sha256.clone()),
                    ("subject", leaf.subject.clone()),
                    ("issuer", leaf.issuer.clone()),
                    ("subjectalternative", leaf.subject_alternative.clone()),
                ]),
                1.0,
            );
        }
        for kind in ProblemKind::ALL {
            f.add(
                "slo_agent_cert_problem",
                "Whether the presented certificate chain has this problem (docs/probes.md#certificates)",
                with(vec![("problem", kind.as_str().to_string())]),
                b(tls.problems.iter().any(|p| p.kind == kind)),
            );
        }
        if !tls.version.is_empty() {
            f.add(
                "probe_tls_version_info",
                "Contains the TLS version used",
                with(vec![("version", tls.version.clone())]),
                1.0,
            );
        }
        if !tls.cipher.is_empty() {
            f.add(
                "probe_tls_cipher_info",
                "Contains the TLS cipher suite negotiated",
                with(vec![("cipher", tls.cipher.clone())]),
                1.0,
            );
        }
    }
    f.add(
        "slo_agent_probe_attempts",
        "Attempts this probe result took (1 + retries)",
        base.clone(),
        o.attempts.len() as f64,
    );
}

/// blackbox_exporter's `probe_ip_addr_hash`: FNV-1a (32 bits) of the
/// address's bytes (4 for IPv4, 16 for IPv6).
fn ip_hash(ip: std::net::IpAddr) -> u32 {
    match ip {
        std::net::IpAddr::V4(a) => fnv1a32(&a.octets()),
        std::net::IpAddr::V6(a) => fnv1a32(&a.octets()),
    }
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::probe::{Attempt, PeerCertificate, Phases, TlsInfo};

    fn outcome() -> Outcome {
        let failed = Attempt { failure: Some(crate::probe::RequestFailure::Connect("x".into())), ..Attempt::default() };
        let last = Attempt {
            duration: Duration::from_millis(250),
            phases: Phases {
                resolve: Duration::from_millis(1),
                connect: Duration::from_millis(2),
                tls: Duration::from_millis(3),
                processing: Duration::from_millis(200),
                transfer: Duration::from_millis(44),
            },
            dns_lookup: Duration::from_millis(1),
            ip: Some("127.0.0.1".parse().unwrap()),
            status: Some(200),
            http_version: Some("HTTP/2.0".into()),
            content_length: 12,
            body_bytes: 12,
            ssl: true,
            tls: Some(TlsInfo {
                version: "TLS 1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
                alpn: Some("h2".into()),
                verified: true,
                chain: vec![PeerCertificate {
                    subject: "CN=shop \"eu\"".into(),
                    issuer: "CN=ca".into(),
                    not_after: Some(1_893_456_000),
                    not_before: Some(1_700_000_000),
                    fingerprint_sha256: "ab".into(),
                    subject_alternative: "localhost".into(),
                }],
                problems: vec![super::super::ChainProblem {
                    kind: super::super::ProblemKind::NameMismatch,
                    text: "the leaf certificate is not valid for `shop.example`".into(),
                }],
            }),
            ..Attempt::default()
        };
        Outcome {
            probe: "checkout".into(),
            hop: "cloudfront".into(),
            region: "eu-west-1".into(),
            url: "https://shop.example/".into(),
            success: true,
            attempts: vec![failed, last],
        }
    }

    #[test]
    fn blackbox_names_with_probe_hop_region() {
        let text = render(&outcome());
        let l = r#"probe="checkout",hop="cloudfront",region="eu-west-1""#;
        for line in [
            format!("probe_success{{{l}}} 1"),
            format!("probe_duration_seconds{{{l}}} 0.25"),
            format!("probe_http_duration_seconds{{{l},phase=\"processing\"}} 0.2"),
            format!("probe_http_duration_seconds{{{l},phase=\"tls\"}} 0.003"),
            format!("probe_http_version{{{l}}} 2"),
            format!("probe_http_status_code{{{l}}} 200"),
            format!("probe_ssl_earliest_cert_expiry{{{l}}} 1893456000"),
            format!("probe_ssl_last_chain_expiry_timestamp_seconds{{{l}}} 1893456000"),
            format!("probe_tls_version_info{{{l},version=\"TLS 1.3\"}} 1"),
            format!("probe_ip_protocol{{{l}}} 4"),
            format!("probe_ip_addr_hash{{{l}}} 3668918509"),
            format!("slo_agent_probe_attempts{{{l}}} 2"),
            format!("slo_agent_cert_problem{{{l},problem=\"name_mismatch\"}} 1"),
            format!("slo_agent_cert_problem{{{l},problem=\"expired\"}} 0"),
        ] {
            assert!(text.lines().any(|x| x == line), "missing {line}\n{text}");
        }
        assert!(text.contains(r#"subject="CN=shop \"eu\"""#), "label values are escaped:\n{text}");
        assert_eq!(text.matches("# TYPE probe_http_duration_seconds gauge").count(), 1);
    }

    #[test]
    fn days_left_only_with_a_clock() {
        assert!(!render(&outcome()).contains("slo_agent_cert_expiry_remaining_seconds"));
        // 1_893_456_000 is 2030-01-01T00:00:00Z; 2.5 days before it.
        let text = render_all_at(&[outcome()], 1_893_456_000_000 - 216_000_000);
        let line =
            r#"slo_agent_cert_expiry_remaining_seconds{probe="checkout",hop="cloudfront",region="eu-west-1"} 216000"#;
        assert!(text.lines().any(|x| x == line), "{text}");
    }

    #[test]
    fn the_ip_hash_is_blackboxs() {
        // What blackbox_exporter 0.23 reported for 127.0.0.1.
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509);
    }
}
