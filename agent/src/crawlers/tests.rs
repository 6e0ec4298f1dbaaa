use super::*;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z, an hour start

const GOOGLE: &str = "Mozilla/5.0%20(compatible;%20Googlebot/2.1;%20+http://www.google.com/bot.html)";
const BING: &str = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0)";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";

fn ev<'a>(ts_ms: i64, ua: &'a str, path: &'a str, status: u16, latency: f64) -> RequestEvent<'a> {
    let client = match ua {
        FIREFOX => ClientClass::Browser,
        "" => ClientClass::Unknown,
        _ => ClientClass::Crawler,
    };
    RequestEvent {
        ts_ms,
        origin: Some(Origin::CloudFront),
        service: "shop",
        path,
        status,
        latency_ms: Some(latency),
        client,
        user_agent: ua,
        ..Default::default()
    }
}

fn window<'a>(v: &'a CrawlersView, service: &str, w: &str) -> &'a CrawlerWindow {
    v.service(service).unwrap().windows.iter().find(|x| x.window == w).unwrap()
}

fn crawler<'a>(w: &'a CrawlerWindow, name: &str) -> &'a ClientSummary {
    w.crawlers.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no {name} in {w:?}"))
}

#[test]
fn crawlers_are_named_from_their_user_agents() {
    let cases = [
        (GOOGLE, Some("Googlebot")),
        ("Googlebot-Image/1.0", Some("Googlebot")),
        ("Mozilla/5.0 (compatible; Google-InspectionTool/1.0)", Some("Googlebot")),
        ("AdsBot-Google (+http://www.google.com/adsbot.html)", Some("AdsBot-Google")),
        (BING, Some("Bingbot")),
        ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", Some("DuckDuckBot")),
        ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", Some("YandexBot")),
        ("Mozilla/5.0 (compatible; YandexImages/3.0)", Some("YandexBot")),
        ("Mozilla/5.0 (compatible; Baiduspider/2.0)", Some("Baiduspider")),
        ("Mozilla/5.0 (Macintosh) Version/13.1.1 Safari/605.1.15 (Applebot/0.1)", Some("Applebot")),
        ("Mozilla/5.0 (compatible; Yahoo! Slurp)", Some("Yahoo! Slurp")),
        ("MOZILLA/5.0 (COMPATIBLE; GOOGLEBOT/2.1)", Some("Googlebot")),
        ("SomeCrawler/1.0", None),
        (FIREFOX, None),
        ("", None),
    ];
    for (ua, want) in cases {
        assert_eq!(crawler_name(ua), want, "{ua}");
    }
    // Every name of the table is a client of its own.
    for (_, name) in CRAWLER_TABLE {
        assert!(names().contains(&name), "{name}");
    }
    // A name past the first 512 bytes is not looked for.
    let long = format!("{}Googlebot", "x".repeat(600));
    assert_eq!(crawler_name(&long), None);
}

#[test]
fn paths_fold_to_their_first_segment_and_hostile_ones_to_other() {
    let cases = [
        ("/products/42", Some("/products")),
        ("/products", Some("/products")),
        ("/", Some("/")),
        ("", Some("/")),
        ("/robots.txt", Some("/robots.txt")),
        ("/a-b_c.d~e/x", Some("/a-b_c.d~e")),
        ("//double", Some("/")),
        ("/é/x", None),
        ("/%00/x", None),
        ("/<script>/x", None),
        ("/ spaced", None),
        ("relative/x", None),
    ];
    for (path, want) in cases {
        assert_eq!(path_prefix(path), want, "{path:?}");
    }
    let long = format!("/{}", "a".repeat(MAX_PREFIX_BYTES));
    assert_eq!(path_prefix(&long), None);
    assert_eq!(path_prefix(&long[..MAX_PREFIX_BYTES]), Some(&long[..MAX_PREFIX_BYTES]));
}

#[test]
fn googlebot_failing_where_browsers_succeed_shows_by_prefix() {
    let mut c = Crawlers::new();
    for i in 0..10 {
        let ts = T0 + i * 1000;
        c.observe(&ev(ts, GOOGLE, "/products/1", 503, 900.0), 1);
        c.observe(&ev(ts, FIREFOX, "/products/1", 200, 40.0), 3);
        c.observe(&ev(ts, GOOGLE, "/about", 200, 50.0), 1);
    }
    c.observe(&ev(T0, GOOGLE, "/robots.txt", 200, 5.0), 2);
    c.observe(&ev(T0, GOOGLE, "/robots.txt", 503, 5.0), 1);
    c.observe(&ev(T0, BING, "/products/2", 404, 30.0), 1);
    assert!(c.changed());
    let v = c.view(T0 + 30 * 60_000);
    assert!(!c.changed());
    let day = window(&v, "shop", "1d");
    assert_eq!(day.crawlers[0].name, "Googlebot");
    let g = crawler(day, "Googlebot");
    assert_eq!(g.requests, 23);
    assert_eq!(g.success_ratio, Some(12.0 / 23.0));
    let products = g.by_prefix.iter().find(|p| p.prefix == "/products").unwrap();
    assert_eq!((products.requests, products.c4xx, products.c5xx), (10, 0, 10));
    assert_eq!(products.browser_success_ratio, Some(1.0));
    let about = g.by_prefix.iter().find(|p| p.prefix == "/about").unwrap();
    assert_eq!((about.requests, about.c5xx, about.browser_success_ratio), (10, 0, None));
    assert_eq!(g.robots_txt, BTreeMap::from([("200".to_string(), 2), ("503".to_string(), 1)]));
    // Half its requests took 900 ms: the p95 is in that bucket (upper bound within 26 %).
    let p95 = g.latency_ms.p95.unwrap();
    assert!((900.0..=900.0 * 1.26).contains(&p95), "{p95}");
    assert!(g.latency_ms.p50.unwrap() <= 64.0, "{:?}", g.latency_ms);
    let b = crawler(day, "Bingbot");
    assert_eq!((b.requests, b.by_prefix[0].c4xx, b.success_ratio), (1, 1, Some(0.0)));
    let browsers = day.browsers.as_ref().unwrap();
    assert_eq!((browsers.name.as_str(), browsers.requests, browsers.success_ratio), ("browsers", 30, Some(1.0)));
    // The JSON names.
    let json = serde_json::to_value(day).unwrap();
    let p = &json["crawlers"][0]["by_prefix"][0];
    assert!(p.get("4xx").is_some() && p.get("5xx").is_some() && p.get("browser_success_ratio").is_some(), "{p}");
    assert!(json["crawlers"][0]["latency_ms"]["p99"].is_number());
}

#[test]
fn the_day_and_the_week_are_windows_of_hours_before_the_time_asked() {
    let mut c = Crawlers::new();
    // One request every 12 hours for 8 days.
    for k in 0..16 {
        c.observe(&ev(T0 + k * 12 * HOUR_MS, GOOGLE, "/p", 200, 10.0), 1);
    }
    let at = T0 + 15 * 12 * HOUR_MS + 5 * 60_000;
    let v = c.view(at);
    assert_eq!(crawler(window(&v, "shop", "1d"), "Googlebot").requests, 2);
    // The week: the hour of `at` and the 167 before it (the 8th day's first is out).
    assert_eq!(crawler(window(&v, "shop", "7d"), "Googlebot").requests, 14);
    // Asked later, the day holds nothing.
    let later = c.view(at + 2 * 86_400_000);
    assert!(window(&later, "shop", "1d").crawlers.is_empty());
    // Events more than a week before the newest are too old.
    c.observe(&ev(T0, GOOGLE, "/p", 200, 10.0), 4);
    assert_eq!(c.stats.too_old, 4);
}

#[test]
fn only_a_week_of_hours_is_kept() {
    let mut c = Crawlers::new();
    for h in 0..(3 * HOURS) {
        c.observe(&ev(T0 + h * HOUR_MS, GOOGLE, "/p", 200, 10.0), 1);
    }
    let book = c.books["shop"][0].as_ref().unwrap();
    assert_eq!(book.hours.len(), HOURS as usize);
}

#[test]
fn prefixes_services_and_robots_statuses_are_bounded() {
    let mut c = Crawlers::new();
    let paths: Vec<String> = (0..100).map(|i| format!("/p{i}/x")).collect();
    for p in &paths {
        c.observe(&ev(T0, GOOGLE, p, 200, 10.0), 1);
    }
    c.observe(&ev(T0, GOOGLE, "/\u{0}\u{1b}[31m/evil", 500, 10.0), 1);
    for s in 0..20 {
        c.observe(&ev(T0, GOOGLE, "/robots.txt", 200 + s * 10, 1.0), 1);
    }
    let v = c.view(T0);
    let g = crawler(window(&v, "shop", "1d"), "Googlebot");
    assert!(g.by_prefix.len() <= MAX_PREFIXES + 1, "{}", g.by_prefix.len());
    let other = g.by_prefix.iter().find(|p| p.prefix == OTHER_PREFIX).unwrap();
    assert_eq!((other.requests, other.c5xx), (100 - MAX_PREFIXES as u64 + 1 + 20, 1));
    assert_eq!(g.robots_txt.len(), MAX_ROBOTS_STATUSES + 1);
    assert_eq!(g.robots_txt["other"], 20 - MAX_ROBOTS_STATUSES as u64);
    assert!(c.stats.prefixes_folded > 0);

    let names: Vec<String> = (0..MAX_SERVICES + 10).map(|i| format!("svc{i}")).collect();
    for n in &names {
        c.observe(&RequestEvent { service: n, ..ev(T0, GOOGLE, "/p", 200, 1.0) }, 1);
    }
    assert_eq!(c.view(T0).services.len(), MAX_SERVICES);
    assert_eq!(c.stats.services_dropped, 11);
}

#[test]
fn other_clients_and_sources_are_not_counted_and_the_best_source_answers() {
    let mut c = Crawlers::new();
    let other = RequestEvent { client: ClientClass::Other, ..ev(T0, "curl/8.0", "/p", 200, 1.0) };
    let lambda = RequestEvent { origin: Some(Origin::Lambda), ..ev(T0, GOOGLE, "/p", 200, 1.0) };
    let synthetic = RequestEvent { origin: Some(Origin::Synthetic), ..ev(T0, GOOGLE, "/p", 200, 1.0) };
    let no_service = RequestEvent { service: "", ..ev(T0, GOOGLE, "/p", 200, 1.0) };
    for e in [other, lambda, synthetic, no_service] {
        c.observe(&e, 1);
    }
    assert!(c.view(T0).services.is_empty());
    // An unclassed event whose agent names a crawler counts; a crawler the
    // table does not name is `other_crawler`.
    c.observe(&RequestEvent { origin: Some(Origin::ApiGateway), ..ev(T0, "", "/p", 200, 1.0) }, 1);
    assert!(c.view(T0).services.is_empty(), "no agent, no class: not counted");
    c.observe(
        &RequestEvent {
            client: ClientClass::Unknown,
            origin: Some(Origin::ApiGateway),
            ..ev(T0, GOOGLE, "/p", 200, 1.0)
        },
        1,
    );
    c.observe(&RequestEvent { origin: Some(Origin::ApiGateway), ..ev(T0, "SomeCrawler/1.0", "/p", 200, 1.0) }, 1);
    let v = c.view(T0);
    assert_eq!(v.service("shop").unwrap().source, "apigateway");
    let day = window(&v, "shop", "1d");
    assert_eq!(crawler(day, "Googlebot").requests, 1);
    assert_eq!(crawler(day, OTHER_CRAWLER).requests, 1);
    // CloudFront logged the same requests: it answers, not the sum.
    c.observe(&ev(T0, GOOGLE, "/p", 200, 1.0), 1);
    let v = c.view(T0);
    assert_eq!(v.service("shop").unwrap().source, "cloudfront");
    assert_eq!(window(&v, "shop", "1d").crawlers.len(), 1);
}

#[test]
fn hostile_values_do_not_panic() {
    let mut c = Crawlers::new();
    let huge = "G".repeat(100_000);
    let weird = ["\u{0}", "%", "/\u{fffd}\u{202e}", &huge, "////", "/..", "/robots.txt/"];
    for (i, s) in weird.iter().enumerate() {
        for latency in [f64::NAN, f64::INFINITY, -1.0, 0.0, 1e300] {
            let e = RequestEvent { ts_ms: i64::MIN + i as i64, ..ev(T0, s, s, u16::MAX, latency) };
            c.observe(&e, u64::MAX / 4);
            c.observe(&ev(T0, s, s, 0, latency), 1);
            c.observe(&ev(i64::MAX, s, s, 0, latency), 1);
        }
    }
    let v = c.view(T0);
    let _ = serde_json::to_string(&v).unwrap();
    let _ = c.view(i64::MIN);
    let _ = c.view(i64::MAX);
}

/// `cargo test -p slo-agent --lib crawlers::tests::a_full_book -- --ignored --nocapture`:
/// how long the view of one service with every crawler on every prefix
/// for a week takes (about 21 ms in a debug build).
#[test]
#[ignore]
fn a_full_book_view_time() {
    let mut c = Crawlers::new();
    let uas = [
        GOOGLE,
        BING,
        "DuckDuckBot/1.1",
        "YandexBot",
        "Baiduspider",
        "Applebot",
        "Slurp",
        "PetalBot",
        "SeznamBot",
        "facebookexternalhit",
        "GPTBot",
        "AhrefsBot",
        "AdsBot-Google",
        "xcrawler",
        FIREFOX,
    ];
    let paths: Vec<String> = (0..17).map(|i| format!("/p{i}/x")).collect();
    for h in 0..HOURS {
        for ua in uas {
            for p in &paths {
                c.observe(&ev(T0 + h * HOUR_MS, ua, p, 200, (h % 40) as f64 * 30.0), 1);
            }
            c.observe(&ev(T0 + h * HOUR_MS, ua, "/robots.txt", 200, 1.0), 1);
        }
    }
    let t = std::time::Instant::now();
    let v = c.view(T0 + HOURS * HOUR_MS - 1);
    eprintln!("view of a full book: {:?}, {} crawlers", t.elapsed(), v.services[0].windows[1].crawlers.len());
}
