//! The `resolve` phase: a name to one address of the preferred family.
//!
//! hickory reads `/etc/resolv.conf` and `/etc/hosts` (so `localhost` and
//! names pinned in the hosts file work as they do for every other program).
//! Where there is no usable `resolv.conf` (some minimal containers), the
//! system's resolver (`getaddrinfo` through tokio) answers instead. An IP
//! literal is not looked up at all. Answers are not cached between lookups.

use std::net::IpAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;

use super::IpFamily;

pub(super) enum Resolver {
    Hickory(Box<TokioResolver>),
    /// No usable `/etc/resolv.conf`: the C library's resolver.
    System,
}

impl Resolver {
    pub(super) fn system() -> Resolver {
        let built = TokioResolver::builder_tokio().and_then(|mut b| {
            // Both families at once; the preference is applied to the answer,
            // so a fallback costs no second round trip.
            b.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
            // No answer cache: every lookup asks the servers, as blackbox's
            // does, so `resolve` measures DNS and not a cache.
            b.options_mut().cache_size = 0;
            b.build()
        });
        match built {
            Ok(r) => Resolver::Hickory(Box::new(r)),
            Err(e) => {
                tracing::debug!(error = %e, "probe DNS: no usable resolv.conf; using the system resolver");
                Resolver::System
            }
        }
    }

    /// The address to connect to: the first of the preferred family, else
    /// (with `fallback`) the first of the other.
    pub(super) async fn resolve(&self, host: &str, preferred: IpFamily, fallback: bool) -> Result<IpAddr, String> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(ip);
        }
        let addrs: Vec<IpAddr> = match self {
            Resolver::Hickory(r) => r.lookup_ip(host).await.map_err(|e| e.to_string())?.iter().collect(),
            Resolver::System => {
                tokio::net::lookup_host((host, 0)).await.map_err(|e| e.to_string())?.map(|a| a.ip()).collect()
            }
        };
        choose(&addrs, preferred, fallback).ok_or_else(|| {
            if addrs.is_empty() {
                format!("{host} has no address")
            } else {
                format!("{host} has no IPv{} address", preferred.number())
            }
        })
    }
}

fn choose(addrs: &[IpAddr], preferred: IpFamily, fallback: bool) -> Option<IpAddr> {
    let first_of = |fam: IpFamily| addrs.iter().copied().find(|a| IpFamily::of(*a) == fam);
    first_of(preferred).or_else(|| if fallback { addrs.first().copied() } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_family_wins_and_the_other_is_a_fallback() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(choose(&[v6, v4], IpFamily::Ip4, true), Some(v4));
        assert_eq!(choose(&[v4, v6], IpFamily::Ip6, true), Some(v6));
        assert_eq!(choose(&[v4], IpFamily::Ip6, true), Some(v4));
        assert_eq!(choose(&[v4], IpFamily::Ip6, false), None);
        assert_eq!(choose(&[], IpFamily::Ip4, true), None);
    }

    #[tokio::test]
    async fn literals_skip_dns_and_localhost_resolves() {
        let r = Resolver::system();
        assert_eq!(r.resolve("[::1]", IpFamily::Ip4, true).await.unwrap(), "::1".parse::<IpAddr>().unwrap());
        assert_eq!(r.resolve("127.0.0.1", IpFamily::Ip6, false).await.unwrap(), "127.0.0.1".parse::<IpAddr>().unwrap());
        let local = r.resolve("localhost", IpFamily::Ip4, true).await.unwrap();
        assert!(local.is_loopback(), "{local}");
    }
}
