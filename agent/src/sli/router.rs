//! Which SLOs count an event.
//!
//! Each SLO's filter is a conjunction of clauses (one per filter field); a
//! clause is a disjunction of globs or values. Identical clauses are shared
//! between SLOs and evaluated at most once per event, lazily, so ten SLOs on
//! the same host compare the host once.

use crate::event::{Origin, RequestEvent};
use crate::spec::glob::{Glob, any_matches};
use crate::spec::model::{Filter, Slo};
use crate::spec::status::StatusSet;

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    Service(Vec<Glob>),
    Host(Vec<Glob>),
    Path(Vec<Glob>),
    Method(Vec<String>),
    Edge(Vec<Glob>),
    Status(StatusSet),
}

impl Clause {
    #[inline]
    fn holds(&self, ev: &RequestEvent<'_>) -> bool {
        match self {
            Clause::Service(g) => any_matches(g, ev.service),
            Clause::Host(g) => any_matches(g, ev.host),
            Clause::Path(g) => any_matches(g, ev.path),
            Clause::Method(m) => m.iter().any(|m| m.eq_ignore_ascii_case(ev.method)),
            Clause::Edge(g) => any_matches(g, ev.edge_location),
            Clause::Status(s) => s.contains(ev.status),
        }
    }
}

const UNKNOWN: u8 = 2;

#[derive(Debug, Clone, Default)]
pub struct Router {
    clauses: Vec<Clause>,
    /// Per SLO (engine order): its clause indexes, cheapest first.
    slo_clauses: Vec<Vec<u16>>,
    /// Per origin: the SLOs that read it.
    by_origin: Vec<Vec<usize>>,
    memo: Vec<u8>,
}

impl Router {
    pub fn new<'a>(slos: impl Iterator<Item = &'a Slo>) -> Router {
        let mut r = Router { by_origin: vec![Vec::new(); Origin::ALL.len()], ..Router::default() };
        for (i, slo) in slos.enumerate() {
            let ind = &slo.indicator;
            let mut idx = Vec::new();
            for c in clauses_of(&ind.filter) {
                let at = match r.clauses.iter().position(|x| *x == c) {
                    Some(at) => at,
                    None => {
                        r.clauses.push(c);
                        r.clauses.len() - 1
                    }
                };
                idx.push(at as u16);
            }
            r.slo_clauses.push(idx);
            r.by_origin[ind.source.index()].push(i);
        }
        r.memo = vec![UNKNOWN; r.clauses.len()];
        r
    }

    /// Call `f(slo_index)` for every SLO that counts `ev`.
    #[inline]
    pub fn route(&mut self, origin: Origin, ev: &RequestEvent<'_>, mut f: impl FnMut(usize)) {
        let slos = &self.by_origin[origin.index()];
        if slos.is_empty() {
            return;
        }
        self.memo.fill(UNKNOWN);
        'slo: for &i in slos {
            for &c in &self.slo_clauses[i] {
                let c = c as usize;
                let m = self.memo[c];
                let ok = if m == UNKNOWN {
                    let ok = self.clauses[c].holds(ev);
                    self.memo[c] = ok as u8;
                    ok
                } else {
                    m == 1
                };
                if !ok {
                    continue 'slo;
                }
            }
            f(i);
        }
    }
}

/// A filter's clauses, cheapest to check first.
fn clauses_of(f: &Filter) -> Vec<Clause> {
    let mut out = Vec::new();
    if let Some(s) = &f.status {
        out.push(Clause::Status(s.clone()));
    }
    if let Some(m) = &f.method {
        out.push(Clause::Method(m.clone()));
    }
    if let Some(g) = &f.host {
        out.push(Clause::Host(g.clone()));
    }
    if let Some(g) = &f.service {
        out.push(Clause::Service(g.clone()));
    }
    if let Some(g) = &f.edge_location {
        out.push(Clause::Edge(g.clone()));
    }
    if let Some(g) = &f.path {
        out.push(Clause::Path(g.clone()));
    }
    out
}
