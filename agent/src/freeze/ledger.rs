//! What manual overrides and bypasses have in common: records with an id
//! that start and end at known times, kept newest first, restored from the
//! store's JSON, and forgotten some time after they end.

use serde::de::DeserializeOwned;

/// A record a [`Ledger`] keeps.
pub trait Entry: Clone + DeserializeOwned {
    fn id(&self) -> &str;
    fn service(&self) -> &str;
    fn created_at_ms(&self) -> i64;
    /// Its expiry, or when it was ended by hand.
    fn ends_at_ms(&self) -> i64;

    /// Counting at `now_ms`.
    fn open(&self, now_ms: i64) -> bool {
        self.created_at_ms() <= now_ms && now_ms < self.ends_at_ms()
    }
}

/// Every record (open, and ended within the retention), newest first.
#[derive(Debug, Clone)]
pub struct Ledger<T> {
    all: Vec<T>,
}

impl<T> Default for Ledger<T> {
    fn default() -> Self {
        Ledger { all: Vec::new() }
    }
}

impl<T: Entry> Ledger<T> {
    /// From stored `(id, json)` records; the ids of unreadable ones are
    /// returned to be named.
    pub fn restore(records: Vec<(String, Vec<u8>)>) -> (Ledger<T>, Vec<String>) {
        let mut l = Ledger::default();
        let mut bad = Vec::new();
        for (id, json) in records {
            match serde_json::from_slice::<T>(&json) {
                Ok(x) => l.all.push(x),
                Err(_) => bad.push(id),
            }
        }
        l.sort();
        (l, bad)
    }

    fn sort(&mut self) {
        self.all.sort_by(|a, b| b.created_at_ms().cmp(&a.created_at_ms()).then_with(|| b.id().cmp(a.id())));
    }

    /// Add a record, or replace the one with its id.
    pub fn put(&mut self, x: T) {
        self.all.retain(|o| o.id() != x.id());
        self.all.push(x);
        self.sort();
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.all.iter().find(|x| x.id() == id)
    }

    /// All of them (`open_only`: those open at `now_ms`), newest first.
    pub fn list(&self, now_ms: i64, open_only: bool) -> impl Iterator<Item = &T> {
        self.all.iter().filter(move |x| !open_only || x.open(now_ms))
    }

    /// The open records of a service, newest first.
    pub fn of(&self, service: &str, now_ms: i64) -> Vec<&T> {
        self.all.iter().filter(|x| x.service() == service && x.open(now_ms)).collect()
    }

    /// The ids of the oldest records beyond the newest `keep`.
    pub fn oldest_beyond(&self, keep: usize) -> Vec<String> {
        self.all.iter().skip(keep).map(|x| x.id().to_string()).collect()
    }

    /// Forget these records.
    pub fn remove(&mut self, ids: &[String]) {
        self.all.retain(|x| !ids.iter().any(|id| id == x.id()));
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Forget records that ended before `before_ms`; returns how many.
    pub fn prune(&mut self, before_ms: i64) -> usize {
        let n = self.all.len();
        self.all.retain(|x| x.ends_at_ms() >= before_ms);
        n - self.all.len()
    }
}
