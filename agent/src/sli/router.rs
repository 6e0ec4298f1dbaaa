//! Which SLOs count an event.
//!
//! Each SLO's filter is a conjunction of clauses (one per filter field); a
//! clause is a disjunction of globs or values. Clauses are deduplicated per
//! event origin and evaluated eagerly, grouped by field, into a bitset (one
//! predictable loop per field instead of a dispatch per clause); an SLO
//! matches when every bit it requires is set. Ten SLOs on the same host
//! compare the host once.

use crate::dims::{Region, edge_region};
use crate::event::{CacheResult, ClientClass, Origin, Outcome, Protocol, RequestEvent, TlsVersion};
use crate::spec::glob::{Glob, HeadFilter, Then, bytes_eq, head8};
use crate::spec::model::{Filter, Slo};
use crate::spec::status::StatusSet;

/// The distinct clauses of one field, each with its bit.
#[derive(Debug, Clone)]
struct Group<T> {
    items: Vec<(T, usize)>,
}

impl<T> Default for Group<T> {
    fn default() -> Self {
        Group { items: Vec::new() }
    }
}

impl<T: PartialEq + Clone> Group<T> {
    fn bit_for(&mut self, value: &T, next_bit: &mut usize) -> usize {
        if let Some((_, b)) = self.items.iter().find(|(v, _)| v == value) {
            return *b;
        }
        let b = *next_bit;
        *next_bit += 1;
        self.items.push((value.clone(), b));
        b
    }
}

#[inline]
fn set(bits: &mut [u64], b: usize) {
    bits[b / 64] |= 1 << (b % 64);
}

/// The distinct globs of one field, each with the bits of every clause it
/// appears in: a match sets them all, so a glob shared by several clauses is
/// compared once, and the loop has no nested iterator to call.
#[derive(Debug, Clone, Default)]
struct GlobField {
    clauses: Group<Vec<Glob>>,
    globs: Vec<Glob>,
    /// Each glob's head filter, dense, for the first rejection.
    heads: Vec<HeadFilter>,
    /// `words` bit words per glob.
    masks: Vec<u64>,
}

impl GlobField {
    fn finish(&mut self, words: usize) {
        self.globs.clear();
        self.masks.clear();
        self.heads.clear();
        for (list, bit) in &self.clauses.items {
            for g in list {
                let at = match self.globs.iter().position(|x| x == g) {
                    Some(at) => at,
                    None => {
                        self.globs.push(g.clone());
                        self.heads.push(g.head_filter());
                        self.masks.extend(std::iter::repeat_n(0, words));
                        self.globs.len() - 1
                    }
                };
                set(&mut self.masks[at * words..(at + 1) * words], *bit);
            }
        }
    }

    #[inline]
    fn eval(&self, text: &str, truth: &mut [u64]) {
        if self.globs.is_empty() {
            return;
        }
        let head = head8(text.as_bytes());
        let words = truth.len();
        if words == 1 {
            let mut t = 0;
            for (k, f) in self.heads.iter().enumerate() {
                if head & f.mask != f.value {
                    continue;
                }
                let hit = match f.then {
                    Then::Match => true,
                    Then::Length(n) => text.len() == n,
                    Then::Check => self.globs[k].matches_after_head(text),
                };
                if hit {
                    t |= self.masks[k];
                }
            }
            truth[0] |= t;
            return;
        }
        for (k, g) in self.globs.iter().enumerate() {
            if g.matches_with_head(text, head) {
                for (t, m) in truth.iter_mut().zip(&self.masks[k * words..(k + 1) * words]) {
                    *t |= m;
                }
            }
        }
    }
}

/// The SLOs of one origin and the clauses they use.
#[derive(Debug, Clone, Default)]
struct OriginRoutes {
    services: GlobField,
    hosts: GlobField,
    paths: GlobField,
    methods: Group<Vec<String>>,
    edges: GlobField,
    routes: GlobField,
    hops: GlobField,
    statuses: Group<StatusSet>,
    regions: Group<Vec<Region>>,
    clients: Group<Vec<ClientClass>>,
    outcomes: Group<Vec<Outcome>>,
    caches: Group<Vec<CacheResult>>,
    protocols: Group<Vec<Protocol>>,
    tls_versions: Group<Vec<TlsVersion>>,
    /// `(slo index, required bits)`, the bits stored flat in `required`.
    slos: Vec<usize>,
    required: Vec<u64>,
    words: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    origins: Vec<OriginRoutes>,
    truth: Vec<u64>,
}

impl Router {
    pub fn new<'a>(slos: impl Iterator<Item = &'a Slo>) -> Router {
        let mut origins = vec![OriginRoutes::default(); Origin::ALL.len()];
        let mut bits_per_slo: Vec<Vec<Vec<usize>>> = vec![Vec::new(); Origin::ALL.len()];
        let mut next_bit = vec![0usize; Origin::ALL.len()];
        for (i, slo) in slos.enumerate() {
            let o = slo.indicator.source.index();
            let r = &mut origins[o];
            let nb = &mut next_bit[o];
            let f: &Filter = &slo.indicator.filter;
            let mut bits = Vec::new();
            if let Some(v) = &f.service {
                bits.push(r.services.clauses.bit_for(v, nb));
            }
            if let Some(v) = &f.host {
                bits.push(r.hosts.clauses.bit_for(v, nb));
            }
            if let Some(v) = &f.path {
                bits.push(r.paths.clauses.bit_for(v, nb));
            }
            if let Some(v) = &f.method {
                bits.push(r.methods.bit_for(v, nb));
            }
            if let Some(v) = &f.edge_location {
                bits.push(r.edges.clauses.bit_for(v, nb));
            }
            if let Some(v) = &f.status {
                bits.push(r.statuses.bit_for(v, nb));
            }
            if let Some(v) = &f.route {
                bits.push(r.routes.clauses.bit_for(v, nb));
            }
            if let Some(v) = &f.hop {
                bits.push(r.hops.clauses.bit_for(v, nb));
            }
            if let Some(v) = &f.region {
                bits.push(r.regions.bit_for(v, nb));
            }
            if let Some(v) = &f.client {
                bits.push(r.clients.bit_for(v, nb));
            }
            if let Some(v) = &f.outcome {
                bits.push(r.outcomes.bit_for(v, nb));
            }
            if let Some(v) = &f.cache {
                bits.push(r.caches.bit_for(v, nb));
            }
            if let Some(v) = &f.protocol {
                bits.push(r.protocols.bit_for(v, nb));
            }
            if let Some(v) = &f.tls_version {
                bits.push(r.tls_versions.bit_for(v, nb));
            }
            r.slos.push(i);
            bits_per_slo[o].push(bits);
        }
        let mut max_words = 1;
        for (o, r) in origins.iter_mut().enumerate() {
            r.words = next_bit[o].div_ceil(64).max(1);
            max_words = max_words.max(r.words);
            r.required = vec![0; r.words * r.slos.len()];
            let words = r.words;
            for g in [&mut r.services, &mut r.hosts, &mut r.paths, &mut r.edges, &mut r.routes, &mut r.hops] {
                g.finish(words);
            }
            for (k, bits) in bits_per_slo[o].iter().enumerate() {
                for &b in bits {
                    set(&mut r.required[k * r.words..(k + 1) * r.words], b);
                }
            }
        }
        Router { origins, truth: vec![0; max_words] }
    }

    /// True when some SLO filters on the client class (so decoders must classify it).
    pub fn reads_client(&self) -> bool {
        self.origins.iter().any(|o| !o.clients.items.is_empty())
    }

    /// True when some SLO filters on the cache result.
    pub fn reads_cache(&self) -> bool {
        self.origins.iter().any(|o| !o.caches.items.is_empty())
    }

    /// True when some SLO filters on the viewer's protocol.
    pub fn reads_protocol(&self) -> bool {
        self.origins.iter().any(|o| !o.protocols.items.is_empty())
    }

    /// True when some SLO filters on the viewer's TLS version.
    pub fn reads_tls_version(&self) -> bool {
        self.origins.iter().any(|o| !o.tls_versions.items.is_empty())
    }

    /// True when some SLO of `origin` filters on the route.
    #[inline]
    pub fn reads_route(&self, origin: Origin) -> bool {
        !self.origins[origin.index()].routes.globs.is_empty()
    }

    /// Call `f(slo_index)` for every SLO that counts `ev`.
    #[inline]
    pub fn route(&mut self, origin: Origin, ev: &RequestEvent<'_>, mut f: impl FnMut(usize)) {
        let r = &self.origins[origin.index()];
        if r.slos.is_empty() {
            return;
        }
        let truth = &mut self.truth[..r.words];
        truth.fill(0);
        r.hosts.eval(ev.host, truth);
        r.paths.eval(ev.path, truth);
        for (m, b) in &r.methods.items {
            // Logs write methods in capitals: try the exact comparison first.
            if m.iter().any(|m| bytes_eq(m.as_bytes(), ev.method.as_bytes()))
                || m.iter().any(|m| m.eq_ignore_ascii_case(ev.method))
            {
                set(truth, *b);
            }
        }
        r.services.eval(ev.service, truth);
        r.edges.eval(ev.edge_location, truth);
        r.routes.eval(ev.route, truth);
        r.hops.eval(ev.hop, truth);
        for (s, b) in &r.statuses.items {
            if s.contains(ev.status) {
                set(truth, *b);
            }
        }
        if !r.regions.items.is_empty() {
            let region = edge_region(ev.edge_location);
            for (v, b) in &r.regions.items {
                if v.contains(&region) {
                    set(truth, *b);
                }
            }
        }
        for (v, b) in &r.clients.items {
            if v.contains(&ev.client) {
                set(truth, *b);
            }
        }
        for (v, b) in &r.caches.items {
            if v.contains(&ev.cache) {
                set(truth, *b);
            }
        }
        for (v, b) in &r.protocols.items {
            if v.contains(&ev.protocol) {
                set(truth, *b);
            }
        }
        for (v, b) in &r.tls_versions.items {
            if v.contains(&ev.tls_version) {
                set(truth, *b);
            }
        }
        for (v, b) in &r.outcomes.items {
            if v.contains(&ev.outcome) {
                set(truth, *b);
            }
        }
        if r.words == 1 {
            let t = truth[0];
            for (k, &i) in r.slos.iter().enumerate() {
                if r.required[k] & !t == 0 {
                    f(i);
                }
            }
        } else {
            for (k, &i) in r.slos.iter().enumerate() {
                let req = &r.required[k * r.words..(k + 1) * r.words];
                if req.iter().zip(truth.iter()).all(|(q, t)| q & !t == 0) {
                    f(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::load_str;

    fn spec(name: &str, filter: &str) -> String {
        format!(
            "---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: {name}}}\nspec:\n  service: s\n  objective: 99\n  window: 1d\n  indicator:\n    source: ndjson\n    filter: {filter}\n    good: {{status: \"< 500\"}}\n"
        )
    }

    #[test]
    fn routes_by_every_field_and_shares_clauses() {
        let mut text = String::new();
        text += &spec("a", "{host: shop.example.com, path: \"/api/*\"}");
        text += &spec("b", "{host: shop.example.com, method: [POST]}");
        text += &spec("c", "{host: other.example.com}");
        text += &spec("d", "{status: \"5xx\", edge_location: \"FRA*\"}");
        text += &spec("e", "{service: checkout}");
        // More distinct clauses than one 64-bit word holds.
        for i in 0..70 {
            text += &spec(&format!("p{i}"), &format!("{{path: \"/p{i}\"}}"));
        }
        let set = load_str("t.yaml", &text).unwrap();
        let mut r = Router::new(set.slos.iter().map(|s| s.as_ref()));
        let names: Vec<&str> = set.slos.iter().map(|s| s.name.as_str()).collect();
        let mut hit = |ev: &RequestEvent<'_>| {
            let mut v = Vec::new();
            r.route(Origin::Ndjson, ev, |i| v.push(names[i]));
            v
        };
        let ev = RequestEvent {
            host: "shop.example.com",
            path: "/api/cart",
            method: "POST",
            status: 503,
            edge_location: "FRA56-P2",
            service: "checkout",
            ..Default::default()
        };
        assert_eq!(hit(&ev), vec!["a", "b", "d", "e"]);
        let ev = RequestEvent { host: "other.example.com", path: "/p69", method: "get", status: 200, ..ev };
        assert_eq!(hit(&ev), vec!["c", "e", "p69"]);
        assert!(r.origins[Origin::CloudFront.index()].slos.is_empty());
    }

    #[test]
    fn routes_by_region_client_outcome_and_route() {
        let mut text = String::new();
        text += &spec("eu", "{region: [europe]}");
        text += &spec("bots", "{client: crawler}");
        text += &spec("throttles", "{outcome: [throttled, integration_error]}");
        text += &spec("cart", "{route: \"/cart/*\"}");
        let set = load_str("t.yaml", &text).unwrap();
        let mut r = Router::new(set.slos.iter().map(|s| s.as_ref()));
        assert!(r.reads_client());
        let names: Vec<&str> = set.slos.iter().map(|s| s.name.as_str()).collect();
        let mut hit = |ev: &RequestEvent<'_>| {
            let mut v = Vec::new();
            r.route(Origin::Ndjson, ev, |i| v.push(names[i]));
            v
        };
        let ev = RequestEvent {
            edge_location: "FRA56-P2",
            client: ClientClass::Crawler,
            outcome: Outcome::Throttled,
            route: "/cart/{id}",
            ..Default::default()
        };
        assert_eq!(hit(&ev), vec!["eu", "bots", "throttles", "cart"]);
        let ev = RequestEvent {
            edge_location: "IAD89-C1",
            client: ClientClass::Browser,
            outcome: Outcome::Success,
            route: "/x",
            ..ev
        };
        assert!(hit(&ev).is_empty());
    }
}
