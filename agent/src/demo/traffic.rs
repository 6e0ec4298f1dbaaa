//! A deterministic generator of realistic CloudFront standard log traffic for
//! a small online shop: diurnal load, several edge locations, browsers and
//! crawlers, cache hits and misses, and scripted incidents (a burst of 5xx on
//! checkout, a latency regression on the API).
//!
//! Used by `slo-agent demo`, by `slo-agent generate`, by benchmarks and by
//! end-to-end tests. Same seed, same bytes.

use std::io::Write;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub const FIELDS_HEADER: &str = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n";

pub const HOST: &str = "shop.example.com";

/// A window of trouble, in minutes since the start of the generated day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Incident {
    pub start_minute: u32,
    pub end_minute: u32,
    pub kind: IncidentKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IncidentKind {
    /// This fraction of checkout and cart requests fail with 502/503/504.
    CheckoutErrors { fraction: f64 },
    /// API latency is multiplied by this factor.
    ApiSlowdown { factor: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub seed: u64,
    /// Requests per minute at the daily peak.
    pub peak_per_minute: u32,
    pub incidents: Vec<Incident>,
}

impl Scenario {
    /// Requests per minute at a minute of the day: low at night (UTC), a
    /// peak in the European evening / American afternoon.
    pub fn requests_per_minute(&self, minute: u32) -> f64 {
        let h = (minute % 1440) as f64 / 60.0;
        let wave = (std::f64::consts::TAU * (h - 9.0) / 24.0).sin(); // peak near 15:00 UTC
        let shape = 0.18 + 0.82 * (1.0 + wave) / 2.0;
        self.peak_per_minute as f64 * shape
    }

    fn active(&self, minute: u32) -> impl Iterator<Item = IncidentKind> + '_ {
        let m = minute % 1440;
        self.incidents.iter().filter(move |i| m >= i.start_minute && m < i.end_minute).map(|i| i.kind)
    }

    /// The fraction of checkout requests failing at this minute, if any.
    pub fn checkout_failure(&self, minute: u32) -> Option<f64> {
        self.active(minute).find_map(|k| match k {
            IncidentKind::CheckoutErrors { fraction } => Some(fraction),
            _ => None,
        })
    }

    /// The factor API latency is multiplied by at this minute (1 when normal).
    pub fn api_slowdown(&self, minute: u32) -> f64 {
        self.active(minute)
            .find_map(|k| match k {
                IncidentKind::ApiSlowdown { factor } => Some(factor),
                _ => None,
            })
            .unwrap_or(1.0)
    }

    /// The demo's day: a 5xx burst on checkout mid-morning and an API latency
    /// regression in the afternoon (UTC).
    /// Ordinary days: the same traffic without incidents.
    pub fn quiet() -> Scenario {
        Scenario { incidents: Vec::new(), seed: 7, ..Scenario::demo_day() }
    }

    pub fn demo_day() -> Scenario {
        Scenario {
            seed: 20261120,
            peak_per_minute: 250,
            incidents: vec![
                Incident {
                    start_minute: 10 * 60 + 20,
                    end_minute: 10 * 60 + 55,
                    kind: IncidentKind::CheckoutErrors { fraction: 0.15 },
                },
                Incident {
                    start_minute: 15 * 60,
                    end_minute: 17 * 60 + 30,
                    kind: IncidentKind::ApiSlowdown { factor: 2.5 },
                },
            ],
        }
    }
}

const EDGES: [(&str, u32); 8] = [
    ("IAD89-C1", 26),
    ("JFK50-P3", 14),
    ("SFO5-C1", 12),
    ("FRA56-P2", 16),
    ("LHR61-C2", 12),
    ("NRT57-C3", 8),
    ("GRU1-C1", 6),
    ("SYD1-C2", 6),
];

const BROWSERS: [&str; 4] = [
    "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/131.0.0.0%20Safari/537.36",
    "Mozilla/5.0%20(Macintosh;%20Intel%20Mac%20OS%20X%2014_7)%20AppleWebKit/605.1.15%20(KHTML,%20like%20Gecko)%20Version/18.1%20Safari/605.1.15",
    "Mozilla/5.0%20(iPhone;%20CPU%20iPhone%20OS%2018_1%20like%20Mac%20OS%20X)%20AppleWebKit/605.1.15%20(KHTML,%20like%20Gecko)%20Version/18.1%20Mobile/15E148%20Safari/604.1",
    "Mozilla/5.0%20(X11;%20Linux%20x86_64;%20rv:133.0)%20Gecko/20100101%20Firefox/133.0",
];
const GOOGLEBOT: &str = "Mozilla/5.0%20(compatible;%20Googlebot/2.1;%20+http://www.google.com/bot.html)";
const BINGBOT: &str = "Mozilla/5.0%20(compatible;%20bingbot/2.0;%20+http://www.bing.com/bingbot.htm)";
const OTHER_UA: [&str; 2] = ["curl/8.5.0", "python-requests/2.32.3"];

/// What a request is for; decides cacheability, latency and failure modes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Static,
    Page,
    Product,
    Search,
    ApiProduct,
    ApiCart,
    Checkout,
    CheckoutPay,
    Missing,
}

const MIX: [(Kind, u32); 9] = [
    (Kind::Static, 38),
    (Kind::Page, 12),
    (Kind::Product, 16),
    (Kind::Search, 6),
    (Kind::ApiProduct, 12),
    (Kind::ApiCart, 8),
    (Kind::Checkout, 4),
    (Kind::CheckoutPay, 2),
    (Kind::Missing, 2),
];

pub struct TrafficGenerator {
    scenario: Scenario,
    rng: SmallRng,
    /// Epoch ms of minute 0.
    day_start_ms: i64,
    minute: u32,
    request_seq: u64,
    lines: MinuteLines,
}

impl TrafficGenerator {
    /// `day_start_ms` should be a UTC midnight for the diurnal curve to make sense.
    pub fn new(scenario: Scenario, day_start_ms: i64) -> TrafficGenerator {
        let rng = SmallRng::seed_from_u64(scenario.seed);
        TrafficGenerator { scenario, rng, day_start_ms, minute: 0, request_seq: 0, lines: MinuteLines::default() }
    }

    pub fn minute(&self) -> u32 {
        self.minute
    }

    /// Epoch ms of the end of the last generated minute.
    pub fn now_ms(&self) -> i64 {
        self.day_start_ms + self.minute as i64 * 60_000
    }

    /// Append one minute of log lines (sorted by time) to `out`; returns how many.
    pub fn next_minute(&mut self, out: &mut Vec<u8>) -> usize {
        let plan = self.scenario.plan(&mut self.rng, self.day_start_ms, self.minute);
        self.minute += 1;
        let mut lines = std::mem::take(&mut self.lines);
        for _ in 0..plan.requests {
            let off = self.rng.random_range(0..60_000u32);
            let mut line = Vec::new();
            self.write_request(&mut line, plan.start_ms + off as i64, plan.checkout_failure, plan.api_slowdown);
            lines.push(off, line);
        }
        lines.append_sorted(out);
        self.lines = lines;
        plan.requests
    }

    fn pick<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        pick(&mut self.rng, items)
    }

    fn latency(&mut self, median_ms: f64, spread: f64) -> f64 {
        latency_seconds(&mut self.rng, median_ms, spread)
    }

    fn write_request(&mut self, out: &mut Vec<u8>, ts_ms: i64, checkout_fail: Option<f64>, slow: f64) {
        self.request_seq += 1;
        let edge = self.pick(&EDGES);
        let ua_roll = self.rng.random::<f64>();
        let (ua, crawler) = if ua_roll < 0.05 {
            (GOOGLEBOT, true)
        } else if ua_roll < 0.07 {
            (BINGBOT, true)
        } else if ua_roll < 0.13 {
            (OTHER_UA[self.rng.random_range(0..OTHER_UA.len())], false)
        } else {
            (BROWSERS[self.rng.random_range(0..BROWSERS.len())], false)
        };
        let mut kind = self.pick(&MIX);
        if crawler && matches!(kind, Kind::ApiCart | Kind::Checkout | Kind::CheckoutPay) {
            kind = Kind::Product;
        }
        let id = self.rng.random_range(1000..99999u32);
        let (method, path, query): (&str, String, String) = match kind {
            Kind::Static => {
                let files = ["/static/app.js", "/static/app.css", "/static/vendor.js", "/img/logo.svg"];
                let f = files[self.rng.random_range(0..files.len())];
                if self.rng.random::<f64>() < 0.5 {
                    ("GET", format!("/img/products/{id}.webp"), "-".into())
                } else {
                    ("GET", f.to_string(), "v=7f3a2c".into())
                }
            }
            Kind::Page => {
                let pages = ["/", "/about", "/category/shoes", "/category/bags", "/category/sale%20items"];
                ("GET", pages[self.rng.random_range(0..pages.len())].to_string(), "-".into())
            }
            Kind::Product => ("GET", format!("/products/{id}"), "-".into()),
            Kind::Search => {
                let q = ["red%2520shoes", "bag", "gift%2520card", "sneakers"];
                ("GET", "/search".into(), format!("q={}", q[self.rng.random_range(0..q.len())]))
            }
            Kind::ApiProduct => ("GET", format!("/api/products/{id}"), "-".into()),
            Kind::ApiCart => {
                let m = if self.rng.random::<f64>() < 0.6 { "GET" } else { "POST" };
                (m, format!("/api/cart/{}", id % 5000), "-".into())
            }
            Kind::Checkout => ("GET", "/checkout".into(), "-".into()),
            Kind::CheckoutPay => ("POST", "/checkout/pay".into(), "-".into()),
            Kind::Missing => ("GET", format!("/old-page-{id}.html"), "-".into()),
        };
        // Outcome and latency.
        let cacheable = matches!(kind, Kind::Static | Kind::Page | Kind::Product);
        let hit = cacheable && self.rng.random::<f64>() < if kind == Kind::Static { 0.93 } else { 0.7 };
        let mut status: u16 = if method == "POST" { 201 } else { 200 };
        let mut time_taken = if hit { self.latency(8.0, 0.5) } else { 0.0 };
        if !hit {
            let median = match kind {
                Kind::Static | Kind::Page => 60.0,
                Kind::Product => 110.0,
                Kind::Search => 180.0,
                Kind::ApiProduct => 120.0 * slow,
                Kind::ApiCart => 140.0 * slow,
                Kind::Checkout => 220.0,
                Kind::CheckoutPay => 450.0 * slow.sqrt(),
                Kind::Missing => 40.0,
            };
            time_taken = self.latency(median, 0.45);
        }
        let roll = self.rng.random::<f64>();
        if kind == Kind::Missing {
            status = 404;
        } else if matches!(kind, Kind::Checkout | Kind::CheckoutPay | Kind::ApiCart)
            && checkout_fail.is_some_and(|f| roll < f)
        {
            status = [502, 503, 504][self.rng.random_range(0..3)];
            if status == 504 {
                time_taken = 30.0 + self.rng.random::<f64>();
            }
        } else if roll < 0.0001 {
            status = 500;
        } else if roll < 0.0007 {
            status = 0; // viewer went away
        } else if roll < 0.004 && method == "POST" {
            status = 400;
        } else if roll < 0.005 {
            status = 304;
        }
        if status >= 500 || status == 0 {
            time_taken = time_taken.max(0.05);
        }
        let result = if status >= 500 {
            "Error"
        } else if hit {
            "Hit"
        } else {
            "Miss"
        };
        let bytes = match kind {
            Kind::Static => self.rng.random_range(2_000..180_000u32),
            Kind::ApiProduct | Kind::ApiCart => self.rng.random_range(300..4_000),
            _ => self.rng.random_range(8_000..60_000),
        };
        let secs = ts_ms.div_euclid(1000);
        let (date, time) = civil(secs);
        let ip = client_ip(&mut self.rng);
        let status_text = if status == 0 { "000".to_string() } else { status.to_string() };
        let content_type = match kind {
            Kind::Static if path.ends_with(".js") => "application/javascript",
            Kind::Static if path.ends_with(".css") => "text/css",
            Kind::Static => "image/webp",
            Kind::ApiProduct | Kind::ApiCart | Kind::CheckoutPay => "application/json",
            _ => "text/html",
        };
        let ttfb = (time_taken * 0.8).max(0.001);
        let _ = writeln!(
            out,
            "{date}\t{time}\t{edge}\t{bytes}\t{ip}\t{method}\td111111abcdef8.cloudfront.net\t{path}\t{status_text}\t-\t{ua}\t{query}\t-\t{result}\t{rid}\t{HOST}\thttps\t{cs_bytes}\t{time_taken:.3}\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\t{result}\tHTTP/2.0\t-\t-\t{port}\t{ttfb:.3}\t{result}\t{content_type}\t{bytes}\t-\t-",
            rid = request_id(self.request_seq, self.scenario.seed),
            cs_bytes = 180 + (self.request_seq % 400),
            port = 30000 + (self.request_seq % 30000),
        );
    }
}

/// One minute of traffic: how many requests, and the incidents in force.
pub(crate) struct MinutePlan {
    pub requests: usize,
    /// Epoch ms of the minute's start.
    pub start_ms: i64,
    pub checkout_failure: Option<f64>,
    pub api_slowdown: f64,
}

impl Scenario {
    /// Draw the number of requests of `minute` (counted from the day at
    /// `day_start_ms`), around the diurnal curve.
    pub(crate) fn plan(&self, rng: &mut SmallRng, day_start_ms: i64, minute: u32) -> MinutePlan {
        MinutePlan {
            requests: requests_in_minute(rng, self.requests_per_minute(minute)),
            start_ms: day_start_ms + minute as i64 * 60_000,
            checkout_failure: self.checkout_failure(minute),
            api_slowdown: self.api_slowdown(minute),
        }
    }
}

/// How many requests arrive in a minute whose mean is `mean`: a normal
/// approximation of Poisson noise, never negative.
fn requests_in_minute(rng: &mut SmallRng, mean: f64) -> usize {
    let noise: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
    (mean + noise * mean.sqrt() * 0.9).round().max(0.0) as usize
}

/// One of `items`, with probability proportional to its weight.
pub(crate) fn pick<T: Copy>(rng: &mut SmallRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut r = rng.random_range(0..total);
    for &(it, w) in items {
        if r < w {
            return it;
        }
        r -= w;
    }
    items[items.len() - 1].0
}

/// Log-normal-ish latency around a median, in seconds, with a rare long tail.
pub(crate) fn latency_seconds(rng: &mut SmallRng, median_ms: f64, spread: f64) -> f64 {
    let z: f64 = (0..6).map(|_| rng.random::<f64>()).sum::<f64>() - 3.0;
    let ms = median_ms * (z * spread).exp();
    let tail = if rng.random::<f64>() < 0.004 { rng.random_range(3.0..12.0) } else { 1.0 };
    (ms * tail).max(1.0) / 1000.0
}

/// The lines of one minute, generated in random order and written out
/// sorted by their time, as a log file holds them.
#[derive(Debug, Default)]
pub(crate) struct MinuteLines {
    /// (ms offset in the minute, line) pairs.
    lines: Vec<(u32, Vec<u8>)>,
}

impl MinuteLines {
    pub(crate) fn push(&mut self, offset_ms: u32, line: Vec<u8>) {
        self.lines.push((offset_ms, line));
    }

    /// Append the lines to `out` in time order and start a new minute.
    pub(crate) fn append_sorted(&mut self, out: &mut Vec<u8>) {
        self.lines.sort_by_key(|(o, _)| *o);
        for (_, l) in self.lines.drain(..) {
            out.extend_from_slice(&l);
        }
    }
}

/// A client address from the public ranges the generated shoppers use.
pub(crate) fn client_ip(rng: &mut SmallRng) -> String {
    format!(
        "{}.{}.{}.{}",
        23 + rng.random_range(0..180u32),
        rng.random_range(0..255u32),
        rng.random_range(0..255u32),
        rng.random_range(1..254u32)
    )
}

/// A CloudFront-looking request id (base64url alphabet, 56 chars), derived
/// from a counter so it is unique and deterministic.
fn request_id(seq: u64, seed: u64) -> String {
    const ALPHA: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
    let mut s = String::with_capacity(56);
    for i in 0..56 {
        if i % 10 == 0 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407 ^ seq);
        }
        s.push(ALPHA[((x >> ((i % 10) * 6)) & 63) as usize] as char);
    }
    s
}

/// `YYYY-MM-DD` and `HH:MM:SS` for epoch seconds (UTC).
pub fn civil(secs: i64) -> (String, String) {
    let (y, m, d, hh, mm, ss) = civil_parts(secs);
    (format!("{y:04}-{m:02}-{d:02}"), format!("{hh:02}:{mm:02}:{ss:02}"))
}

/// Year, month, day, hour, minute and second of epoch seconds (UTC).
pub fn civil_parts(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_a_diurnal_curve() {
        let start = 1_763_596_800_000; // 2025-11-20T00:00:00Z
        let mut a = TrafficGenerator::new(Scenario::demo_day(), start);
        let mut b = TrafficGenerator::new(Scenario::demo_day(), start);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            a.next_minute(&mut x);
            b.next_minute(&mut y);
        }
        assert_eq!(x, y);
        let mut night = Vec::new();
        let mut g = TrafficGenerator::new(Scenario::demo_day(), start);
        let n_night: usize = (0..60).map(|_| g.next_minute(&mut night)).sum();
        let mut g = TrafficGenerator::new(Scenario::demo_day(), start);
        let mut sink = Vec::new();
        for _ in 0..(15 * 60) {
            g.next_minute(&mut sink);
            sink.clear();
        }
        let n_peak: usize = (0..60).map(|_| g.next_minute(&mut sink)).sum();
        assert!(n_peak > 3 * n_night, "peak {n_peak} night {n_night}");
        let first = std::str::from_utf8(&x).unwrap().lines().next().unwrap();
        assert_eq!(first.split('\t').count(), 33);
        assert!(first.starts_with("2025-11-20\t00:00:"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), ("1970-01-01".into(), "00:00:00".into()));
        assert_eq!(civil(951_782_400), ("2000-02-29".into(), "00:00:00".into()));
        assert_eq!(civil(1_798_761_599), ("2026-12-31".into(), "23:59:59".into()));
    }
}
