//! Are the search engines' crawlers getting our pages? (`GET /api/v1/crawlers`,
//! `docs/forecasts.md`, "Crawlers").
//!
//! Per service, hour, client and path prefix: requests, successes (2xx and
//! 3xx), 4xx and 5xx, the latency histogram of each client, and the statuses
//! `/robots.txt` was answered with. A client is a named crawler
//! ([`crawler_name`]: a small table of the engines that matter for search,
//! everything else `other_crawler`) or the browsers, which the crawlers are
//! compared with on the same path prefixes.
//!
//! Fed with every event the state thread counts (`runtime::state::LiveSink`)
//! and told the time only when asked for a view ([`Crawlers::view`]).
//!
//! **Architecture invariant:** pure given its events and the times it is
//! told: no clock, no I/O; nothing is persisted (a restart starts empty).
//! Memory is bounded: at most [`MAX_SERVICES`] books (a service as one
//! source logged it, see [`source_rank`]), each of at most [`HOURS`] hours
//! of [`CRAWLERS`]` + 1` clients × [`MAX_PREFIXES`]` + 1` prefixes, all
//! sparse (an hour, client or prefix with no request takes no room). An
//! hour with every cell filled takes about 15 × 17 × 48 bytes of counts,
//! 15 × 200 of latency histograms and 15 × 9 × 40 of `/robots.txt`
//! statuses, about 20 KB; a book with every hour so filled about 3.4 MB,
//! and all of them about 27 MB (the books are few so that a sidecar's
//! budget holds the worst case). A service with a handful of crawlers on a
//! dozen prefixes takes a few hundred KB a week.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::event::{ClientClass, Origin, RequestEvent};

#[cfg(test)]
mod tests;

pub const HOUR_MS: i64 = 3_600_000;
/// A week of hours: the longest window answered.
pub const HOURS: i64 = 7 * 24;
/// Books (service × source) kept; events of more are counted in
/// [`CrawlerStats::services_dropped`].
pub const MAX_SERVICES: usize = 8;
/// Path prefixes kept per service (first come); the rest fold into `other`.
pub const MAX_PREFIXES: usize = 16;
/// Longest path prefix kept as it is; longer ones fold into `other`.
pub const MAX_PREFIX_BYTES: usize = 48;
/// The user agent is looked at only this far: crawlers name themselves early.
const AGENT_PREFIX: usize = 512;
/// Distinct `/robots.txt` statuses kept per hour and client; the rest are `other`.
const MAX_ROBOTS_STATUSES: usize = 8;

/// The named crawlers: a token looked for in the user agent (ASCII case
/// ignored; none needs URL-decoding, so CloudFront's encoded agents match
/// as they are) and the name answered. The first token found wins, so the
/// more specific come first. Anything the decoders class as a crawler and
/// this table does not name is `other_crawler`.
///
/// A user agent can be forged: these are the names requests gave
/// themselves, not verified crawlers (that would take reverse DNS).
pub const CRAWLER_TABLE: [(&str, &str); 15] = [
    ("adsbot-google", "AdsBot-Google"),
    ("googlebot", "Googlebot"),
    ("google-inspectiontool", "Googlebot"),
    ("bingbot", "Bingbot"),
    ("adidxbot", "Bingbot"),
    ("duckduckbot", "DuckDuckBot"),
    ("yandex", "YandexBot"),
    ("baiduspider", "Baiduspider"),
    ("applebot", "Applebot"),
    ("slurp", "Yahoo! Slurp"),
    ("petalbot", "PetalBot"),
    ("seznambot", "SeznamBot"),
    ("facebookexternalhit", "facebookexternalhit"),
    ("gptbot", "GPTBot"),
    ("ahrefsbot", "AhrefsBot"),
];

/// The name of crawlers the table does not name.
pub const OTHER_CRAWLER: &str = "other_crawler";

/// Distinct crawler names: those of the table and [`OTHER_CRAWLER`].
pub const CRAWLERS: usize = 14;

/// Every crawler name, in a fixed order (index = the client's number).
fn names() -> &'static [&'static str; CRAWLERS] {
    const N: [&str; CRAWLERS] = [
        "AdsBot-Google",
        "Googlebot",
        "Bingbot",
        "DuckDuckBot",
        "YandexBot",
        "Baiduspider",
        "Applebot",
        "Yahoo! Slurp",
        "PetalBot",
        "SeznamBot",
        "facebookexternalhit",
        "GPTBot",
        "AhrefsBot",
        OTHER_CRAWLER,
    ];
    &N
}

/// The client number of the browsers (after every crawler's).
const BROWSER: u8 = CRAWLERS as u8;

/// The crawler a user agent names, from [`CRAWLER_TABLE`]; `None` when it
/// names none of them.
pub fn crawler_name(user_agent: &str) -> Option<&'static str> {
    let ua = user_agent.as_bytes();
    let ua = &ua[..ua.len().min(AGENT_PREFIX)];
    CRAWLER_TABLE
        .iter()
        .find(|(token, _)| ua.windows(token.len()).any(|w| w.eq_ignore_ascii_case(token.as_bytes())))
        .map(|(_, name)| *name)
}

fn crawler_index(name: &str) -> u8 {
    names().iter().position(|n| *n == name).unwrap_or(CRAWLERS - 1) as u8
}

/// The client an event counts for: a crawler's number, [`BROWSER`], or
/// `None` (other clients, and events without a user agent or class). An
/// event the decoder did not class (an NDJSON record without `client`) is a
/// crawler when its agent names one of the table.
fn client_of(e: &RequestEvent<'_>) -> Option<u8> {
    match e.client {
        ClientClass::Crawler => Some(crawler_index(crawler_name(e.user_agent).unwrap_or(OTHER_CRAWLER))),
        ClientClass::Browser => Some(BROWSER),
        ClientClass::Unknown => crawler_name(e.user_agent).map(crawler_index),
        ClientClass::Other => None,
    }
}

/// The path prefix an event counts under: its first segment (`/products`
/// of `/products/42`, `/` for the root), or `None` when that is too long or
/// holds anything but letters, digits and `-._~` (a hostile or mangled path:
/// counted under `other`).
pub fn path_prefix(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let end = rest.find('/').unwrap_or(rest.len());
    let prefix = &path[..end + (path.len() - rest.len())];
    let segment = &rest[..end];
    if prefix.is_empty() {
        return Some("/");
    }
    let clean = segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    (clean && prefix.len() <= MAX_PREFIX_BYTES && path.starts_with('/')).then_some(prefix)
}

/// The name of the prefixes folded together.
pub const OTHER_PREFIX: &str = "other";

/// Where an event comes from, best first: one request is logged by several
/// hops (CloudFront, then API Gateway), so each service is answered from
/// the best source that has its clients, not from their sum. Origins that
/// do not see clients (Lambda, X-Ray, CloudWatch metrics, synthetic checks)
/// are not counted.
pub fn source_rank(origin: Option<Origin>) -> Option<usize> {
    match origin? {
        Origin::CloudFront | Origin::CloudFrontRealtime => Some(0),
        Origin::ApiGateway => Some(1),
        Origin::Ndjson | Origin::Otlp => Some(2),
        Origin::Lambda | Origin::XRay | Origin::CloudWatch | Origin::Synthetic => None,
    }
}

/// How many [`source_rank`]s there are.
pub const SOURCES: usize = 3;

/// Latency buckets: bucket `i` holds latencies up to `2^(i/3)` ms (about
/// 26 % apart), the last everything above 65 s.
const LATENCY_BUCKETS: usize = 49;

fn latency_bucket(ms: f64) -> usize {
    if ms.is_nan() || ms <= 1.0 {
        return 0;
    }
    ((ms.log2() * 3.0).ceil() as usize).min(LATENCY_BUCKETS - 1)
}

fn bucket_upper_ms(i: usize) -> f64 {
    2f64.powf(i as f64 / 3.0)
}

/// One client's requests under one prefix in one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cell {
    requests: u64,
    ok: u64,
    c4xx: u64,
    c5xx: u64,
}

impl Cell {
    fn add(&mut self, o: &Cell) {
        self.requests = self.requests.saturating_add(o.requests);
        self.ok = self.ok.saturating_add(o.ok);
        self.c4xx = self.c4xx.saturating_add(o.c4xx);
        self.c5xx = self.c5xx.saturating_add(o.c5xx);
    }
}

/// One hour of one service (from one source).
#[derive(Debug, Default, Clone)]
struct Hour {
    /// (client, prefix number) → counts.
    cells: BTreeMap<(u8, u8), Cell>,
    /// client → latency histogram.
    latency: BTreeMap<u8, Box<[u32; LATENCY_BUCKETS]>>,
    /// (client, status or `None` for the statuses past the limit) → answers to `/robots.txt`.
    robots: BTreeMap<(u8, Option<u16>), u64>,
}

/// One service as one source logged it.
#[derive(Debug, Default, Clone)]
struct Book {
    /// Prefixes in the order first seen; number = index, `MAX_PREFIXES` = `other`.
    prefixes: Vec<String>,
    hours: BTreeMap<i64, Hour>,
}

impl Book {
    fn prefix_number(&mut self, path: &str, n: u64, stats: &mut CrawlerStats) -> u8 {
        let Some(p) = path_prefix(path) else {
            stats.prefixes_folded = stats.prefixes_folded.saturating_add(n);
            return MAX_PREFIXES as u8;
        };
        if let Some(i) = self.prefixes.iter().position(|q| q == p) {
            return i as u8;
        }
        if self.prefixes.len() < MAX_PREFIXES {
            self.prefixes.push(p.to_string());
            return (self.prefixes.len() - 1) as u8;
        }
        stats.prefixes_folded = stats.prefixes_folded.saturating_add(n);
        MAX_PREFIXES as u8
    }

    fn prefix_name(&self, n: u8) -> &str {
        self.prefixes.get(n as usize).map_or(OTHER_PREFIX, String::as_str)
    }
}

/// What did not fit, since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CrawlerStats {
    /// Requests of services past [`MAX_SERVICES`].
    pub services_dropped: u64,
    /// Requests more than a week older than the newest one of their service.
    pub too_old: u64,
    /// Requests counted under `other` (a hostile path, or past [`MAX_PREFIXES`]).
    pub prefixes_folded: u64,
}

/// The crawlers' and browsers' hourly counts of every service.
#[derive(Debug, Default)]
pub struct Crawlers {
    /// service → its book from each source rank.
    books: BTreeMap<String, [Option<Book>; SOURCES]>,
    /// Books held (at most [`MAX_SERVICES`]).
    held: usize,
    pub stats: CrawlerStats,
    /// Counted since the last view.
    changed: bool,
}

impl Crawlers {
    /// What the decoders must fill: the client class and the user agent.
    pub const WANTED: crate::event::Wanted =
        crate::event::Wanted { client: true, requester: true, ..crate::event::Wanted::NONE };

    pub fn new() -> Crawlers {
        Crawlers::default()
    }

    /// Count `n` requests like `e`.
    pub fn observe(&mut self, e: &RequestEvent<'_>, n: u64) {
        let Some(rank) = source_rank(e.origin) else { return };
        let Some(client) = client_of(e) else { return };
        if e.service.is_empty() || n == 0 {
            return;
        }
        let held = self.held;
        let book = match self.books.get_mut(e.service).map(|b| &mut b[rank]) {
            Some(Some(book)) => book,
            slot if held >= MAX_SERVICES => {
                let _ = slot;
                self.stats.services_dropped = self.stats.services_dropped.saturating_add(n);
                return;
            }
            Some(slot) => {
                self.held += 1;
                slot.insert(Book::default())
            }
            None => {
                self.held += 1;
                let books = self.books.entry(e.service.to_string()).or_default();
                books[rank].insert(Book::default())
            }
        };
        let hour = hour_of(e.ts_ms);
        let newest = book.hours.keys().next_back().copied().unwrap_or(hour);
        if hour <= newest.saturating_sub(HOURS * HOUR_MS) {
            self.stats.too_old = self.stats.too_old.saturating_add(n);
            return;
        }
        let prefix = book.prefix_number(e.path, n, &mut self.stats);
        if hour > newest {
            // Keep a week before the newest hour.
            let keep = hour.saturating_sub((HOURS - 1) * HOUR_MS);
            book.hours = book.hours.split_off(&keep);
        }
        let h = book.hours.entry(hour).or_default();
        let one = Cell {
            requests: n,
            ok: if (200..=399).contains(&e.status) { n } else { 0 },
            c4xx: if (400..=499).contains(&e.status) { n } else { 0 },
            c5xx: if (500..=599).contains(&e.status) { n } else { 0 },
        };
        h.cells.entry((client, prefix)).or_default().add(&one);
        if let Some(ms) = e.latency_ms.filter(|m| m.is_finite() && *m >= 0.0) {
            let hist = h.latency.entry(client).or_insert_with(|| Box::new([0; LATENCY_BUCKETS]));
            let b = &mut hist[latency_bucket(ms)];
            *b = b.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        }
        if e.path == "/robots.txt" {
            let status = Some(e.status);
            let distinct = h.robots.keys().filter(|(c, s)| *c == client && s.is_some()).count();
            let key = if h.robots.contains_key(&(client, status)) || distinct < MAX_ROBOTS_STATUSES {
                (client, status)
            } else {
                (client, None)
            };
            let count = h.robots.entry(key).or_default();
            *count = count.saturating_add(n);
        }
        self.changed = true;
    }

    /// Whether anything was counted since the last view.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Every service's last day and last week as of `at_ms` (the hour
    /// holding `at_ms` and the 23 or 167 before it).
    pub fn view(&mut self, at_ms: i64) -> CrawlersView {
        self.changed = false;
        let mut services = Vec::new();
        for (service, books) in &self.books {
            // The best source with any of its clients.
            let Some((rank, book)) = books.iter().enumerate().find_map(|(r, b)| b.as_ref().map(|b| (r, b))) else {
                continue;
            };
            let windows = [("1d", 24), ("7d", HOURS)].map(|(name, hours)| window(book, name, hours, at_ms));
            services.push(ServiceCrawlers {
                service: service.clone(),
                source: ["cloudfront", "apigateway", "ndjson"].get(rank).copied().unwrap_or("other"),
                windows: windows.to_vec(),
            });
        }
        CrawlersView { at_ms, services, stats: self.stats }
    }
}

/// The sums of one window.
fn window(book: &Book, name: &'static str, hours: i64, at_ms: i64) -> CrawlerWindow {
    let last = hour_of(at_ms);
    let first = last.saturating_sub((hours - 1) * HOUR_MS);
    let mut cells: BTreeMap<(u8, u8), Cell> = BTreeMap::new();
    let mut latency: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
    let mut robots: BTreeMap<u8, BTreeMap<String, u64>> = BTreeMap::new();
    for h in book.hours.range(first..=last).map(|(_, h)| h) {
        for (k, c) in &h.cells {
            cells.entry(*k).or_default().add(c);
        }
        for (client, hist) in &h.latency {
            let sum = latency.entry(*client).or_insert_with(|| vec![0; LATENCY_BUCKETS]);
            for (s, v) in sum.iter_mut().zip(hist.iter()) {
                *s = s.saturating_add(u64::from(*v));
            }
        }
        for ((client, status), n) in &h.robots {
            let key = status.map_or_else(|| "other".to_string(), |s| s.to_string());
            let count = robots.entry(*client).or_default().entry(key).or_default();
            *count = count.saturating_add(*n);
        }
    }
    let browser_by_prefix: BTreeMap<u8, Cell> =
        cells.iter().filter(|((c, _), _)| *c == BROWSER).map(|((_, p), cell)| (*p, *cell)).collect();
    let summary = |client: u8, name: &str| -> Option<ClientSummary> {
        let mut total = Cell::default();
        let mut by_prefix = Vec::new();
        for ((_, p), c) in cells.range((client, 0)..=(client, u8::MAX)) {
            total.add(c);
            by_prefix.push(PrefixFigures {
                prefix: book.prefix_name(*p).to_string(),
                requests: c.requests,
                c4xx: c.c4xx,
                c5xx: c.c5xx,
                browser_success_ratio: browser_by_prefix.get(p).and_then(success_ratio),
            });
        }
        if total.requests == 0 {
            return None;
        }
        by_prefix.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.prefix.cmp(&b.prefix)));
        Some(ClientSummary {
            name: name.to_string(),
            requests: total.requests,
            success_ratio: success_ratio(&total),
            latency_ms: latency.get(&client).map(|h| Percentiles::of(h)).unwrap_or_default(),
            by_prefix,
            robots_txt: robots.get(&client).cloned().unwrap_or_default(),
        })
    };
    let mut crawlers: Vec<ClientSummary> =
        names().iter().enumerate().filter_map(|(i, n)| summary(i as u8, n)).collect();
    crawlers.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.name.cmp(&b.name)));
    CrawlerWindow { window: name, crawlers, browsers: summary(BROWSER, "browsers") }
}

/// The start of the hour holding `ts_ms` (saturating at the far past).
pub fn hour_of(ts_ms: i64) -> i64 {
    ts_ms.saturating_sub(ts_ms.rem_euclid(HOUR_MS))
}

fn success_ratio(c: &Cell) -> Option<f64> {
    (c.requests > 0).then(|| c.ok as f64 / c.requests as f64)
}

/// Latency percentiles in milliseconds: each the upper bound of the
/// histogram bucket holding it (within 26 % above the true value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of(hist: &[u64]) -> Percentiles {
        let total = hist.iter().fold(0u64, |a, n| a.saturating_add(*n));
        let at = |q: f64| -> Option<f64> {
            if total == 0 {
                return None;
            }
            let rank = ((q * total as f64).ceil() as u64).max(1);
            let mut seen = 0u64;
            for (i, n) in hist.iter().enumerate() {
                seen = seen.saturating_add(*n);
                if seen >= rank {
                    return Some((bucket_upper_ms(i) * 10.0).round() / 10.0);
                }
            }
            None
        };
        Percentiles { p50: at(0.5), p95: at(0.95), p99: at(0.99) }
    }
}

/// One client's 4xx and 5xx under one path prefix, against the browsers'.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefixFigures {
    pub prefix: String,
    pub requests: u64,
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    #[serde(rename = "5xx")]
    pub c5xx: u64,
    /// The browsers' success ratio under the same prefix (`null` when no browser asked).
    pub browser_success_ratio: Option<f64>,
}

/// One crawler's (or the browsers') figures over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientSummary {
    pub name: String,
    pub requests: u64,
    /// 2xx and 3xx among the requests.
    pub success_ratio: Option<f64>,
    pub latency_ms: Percentiles,
    pub by_prefix: Vec<PrefixFigures>,
    /// `/robots.txt` answers by status.
    pub robots_txt: BTreeMap<String, u64>,
}

/// One window of a service: its crawlers, busiest first, and the browsers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrawlerWindow {
    pub window: &'static str,
    pub crawlers: Vec<ClientSummary>,
    pub browsers: Option<ClientSummary>,
}

/// One service's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceCrawlers {
    pub service: String,
    /// The source counted (see [`source_rank`]).
    pub source: &'static str,
    pub windows: Vec<CrawlerWindow>,
}

/// What the state thread publishes in the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CrawlersView {
    pub at_ms: i64,
    pub services: Vec<ServiceCrawlers>,
    pub stats: CrawlerStats,
}

impl CrawlersView {
    pub fn service(&self, name: &str) -> Option<&ServiceCrawlers> {
        self.services.iter().find(|s| s.service == name)
    }
}
