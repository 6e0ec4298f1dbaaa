//! `slo-agent demo`: a generated day of CloudFront traffic for a small shop,
//! written to rotating log files and read by a real agent (file tail →
//! decoder → engine → store → evaluator → HTTP API), with event time
//! accelerated by a manual clock. Shows a live terminal view of SLOs, burn
//! rates and alert conditions, and ends by itself with a summary.

pub mod api;
pub mod site;
pub mod traffic;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::AgentConfig;
use crate::decode::Format;
use crate::runtime::Runtime;
use crate::sli::report::{Report, render_table};
use crate::source::SourceConfig;
use crate::source::file::FileSourceConfig;
use crate::telemetry::Telemetry;
use crate::telemetry::events::{INGEST_BYTES, INGEST_LINES};
use crate::timefmt::rfc3339;
use traffic::{FIELDS_HEADER, Scenario, TrafficGenerator};

/// The demo's SLOs (also a worked example of the spec format).
pub const DEMO_SPECS: &str = include_str!("specs.yaml");

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Where to serve the API and /metrics while the demo runs (falls back
    /// to a free port if this one is taken).
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,
    /// How long the demo runs, in real seconds.
    #[arg(long, default_value_t = 40)]
    pub seconds: u64,
    /// Simulated hours of traffic.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// The simulated day (UTC), YYYY-MM-DD; default: yesterday.
    #[arg(long)]
    pub date: Option<String>,
    /// Print plain lines instead of a live view (automatic when stdout is not a terminal).
    #[arg(long)]
    pub plain: bool,
    /// Days of ordinary traffic written before the demo day, so the long
    /// windows have history.
    #[arg(long, default_value_t = 2)]
    pub history_days: u32,
    /// Keep the generated logs and state in this directory instead of a temporary one.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// One alert episode, for the summary.
#[derive(Debug, Clone)]
struct Episode {
    slo: String,
    severity: &'static str,
    windows: String,
    started_ms: i64,
    ended_ms: Option<i64>,
    peak_burn: f64,
}

const STEP_MINUTES: u32 = 5;

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let live = !args.plain && std::io::stdout().is_terminal();
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("slo-agent-demo-{}", std::process::id())), true),
    };
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let specs = dir.join("demo-slos.yaml");
    std::fs::write(&specs, DEMO_SPECS).with_context(|| format!("writing {}", specs.display()))?;
    let state = dir.join("state.redb");
    let _ = std::fs::remove_file(&state);

    let day_start = match &args.date {
        Some(d) => crate::timefmt::parse_rfc3339(&format!("{d}T00:00:00Z"))
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--date {d:?}"))?,
        None => (SystemClock.now_ms().div_euclid(86_400_000) - 1) * 86_400_000,
    };
    // Two ordinary days before the demo day, so the long windows have history.
    let history_days = args.history_days;
    let history_start = day_start - history_days as i64 * 86_400_000;
    if history_days > 0 {
        print!("writing {history_days} day(s) of ordinary traffic as history … ");
        let _ = std::io::stdout().flush();
    }
    let (history_lines, history_bytes) = write_history(&logs, history_start, history_days)?;
    if history_days > 0 {
        println!("done");
    }
    let clock = ManualClock::new(day_start - 1);
    let mut config = AgentConfig {
        specs: vec![specs.clone()],
        state: state.clone(),
        listen: args.listen,
        api: Default::default(),
        tick: Duration::from_secs(3600),
        poll_interval: Duration::from_millis(20),
        max_future: Duration::from_secs(300),
        push_timeout: Duration::from_secs(30),
        routes: Default::default(),
        alerts: Default::default(),
        notify: Default::default(),
        http: Default::default(),
        sources: vec![SourceConfig::File {
            file: FileSourceConfig {
                name: "cloudfront".into(),
                paths: vec![logs.join("*.log").display().to_string(), logs.join("*.log.gz").display().to_string()],
                format: Format::CloudFront,
                service: "shop".into(),
                max_batch_bytes: 16 << 20,
                fields: Vec::new(),
                fingerprint_bytes: crate::source::file::DEFAULT_FINGERPRINT_BYTES,
            },
        }],
        github: None,
        freeze: Default::default(),
        synthetic: Default::default(),
        export: Default::default(),
        signals: demo_signals(),
        outage: crate::outage::OutageConfig::default(),
        incidents_open_on: [crate::spec::model::Severity::Page].into(),
        status: None,
        status_push: None,
    };

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let listener = rt.block_on(async {
        match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => Ok(l),
            Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await,
        }
    })?;
    let addr = listener.local_addr()?;
    // The demo's own little site, probed hop by hop and walked by a checkout journey.
    let site = site::start(&rt)?;
    (config.synthetic, config.status) = site::checks(&site)?;
    let agent = Runtime::start(config, Arc::new(clock.clone()))?;
    let telemetry = agent.api.telemetry.clone();
    let server = rt.spawn({
        let app = crate::api::router(agent.api.clone());
        async move {
            let _ = axum::serve(listener, app).await;
        }
    });

    let steps = (args.hours * 60).div_ceil(STEP_MINUTES);
    let pause = Duration::from_millis(args.seconds.saturating_mul(1000) / steps.max(1) as u64);
    println!("slo-agent demo: {} h of shop traffic through the real pipeline in ~{} s", args.hours, args.seconds);
    println!("  API:     http://{addr}/api/v1/slos");
    println!("  metrics: http://{addr}/metrics");
    println!("  status:  http://{addr}/status");
    println!("  logs:    {}", logs.display());
    if !live {
        println!("  (plain output: alert changes as they happen, then a summary)");
    }
    std::thread::sleep(Duration::from_millis(if live { 1500 } else { 0 }));

    let mut generator = TrafficGenerator::new(Scenario::demo_day(), day_start);
    if history_days > 0 {
        print!("reading the history through the agent … ");
        let _ = std::io::stdout().flush();
        wait_for_ingest(&telemetry, history_bytes, Duration::from_secs(120));
        println!("done");
    }
    let mut written_bytes = history_bytes;
    let mut written_lines = 0u64;
    let mut current_hour: Option<u32> = None;
    let mut file: Option<std::fs::File> = None;
    let mut episodes: Vec<Episode> = Vec::new();
    let mut open: BTreeMap<(String, &'static str, String), usize> = BTreeMap::new();
    let mut log_lines: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    let mut deployed = 0usize;
    let mut seen = Checks::default();
    // The outage verdicts' changes, told as the timeline tells them.
    let mut verdicts = crate::timeline::changes::Tracker::default();
    let no_board = crate::freeze::Board::default();
    let started = Instant::now();

    for step in 0..steps {
        let step_started = Instant::now();
        for _ in 0..STEP_MINUTES {
            let hour = generator.minute() / 60;
            if current_hour != Some(hour) {
                let (date, _) = traffic::civil((day_start + hour as i64 * 3_600_000) / 1000);
                let name = logs.join(format!("E2DEMO1EXAMPLE.{date}-{:02}.shop.log", hour % 24));
                let mut f = std::fs::File::create(&name).with_context(|| format!("creating {}", name.display()))?;
                f.write_all(FIELDS_HEADER.as_bytes())?;
                written_bytes += FIELDS_HEADER.len() as u64;
                written_lines += 2;
                file = Some(f);
                current_hour = Some(hour);
            }
            buf.clear();
            written_lines += generator.next_minute(&mut buf) as u64;
            if let Some(f) = file.as_mut() {
                f.write_all(&buf)?;
            }
            written_bytes += buf.len() as u64;
        }
        site.faults.at_minute(generator.minute());
        clock.set(generator.now_ms() - 1);
        wait_for_ingest(&telemetry, written_bytes, Duration::from_secs(10));
        record_deploys(&agent.api, day_start, generator.minute(), &mut deployed);
        // The probe and the journey once a step (5 minutes of the day), at
        // the step's time: the same runs on any machine.
        rt.block_on(agent.check_once());
        let snap = agent.evaluate();
        let now_ms = snap.at_ms;
        // Alert transitions.
        let mut firing_now = BTreeMap::new();
        for s in &snap.statuses {
            // With the agent's low-traffic guard: what it pages on.
            let min_events = s.slo.alerting.min_events.unwrap_or(crate::alert::AlertPolicy::default().min_events);
            for c in s.conditions.iter().filter(|c| c.firing && c.long_events >= min_events) {
                let key = (
                    s.slo.name.clone(),
                    c.rule.severity.as_str(),
                    format!("{}/{}", c.rule.long_window, c.rule.short_window),
                );
                firing_now.insert(key, c.long_burn_rate.unwrap_or(0.0).max(c.short_burn_rate.unwrap_or(0.0)));
            }
        }
        for (key, burn) in &firing_now {
            match open.get(key) {
                Some(&i) => episodes[i].peak_burn = episodes[i].peak_burn.max(*burn),
                None => {
                    open.insert(key.clone(), episodes.len());
                    let msg = format!(
                        "{}  {} {} fires ({} burn {:.1})",
                        hhmm(now_ms),
                        key.1.to_uppercase(),
                        key.0,
                        key.2,
                        burn
                    );
                    if !live {
                        println!("{msg}");
                    }
                    log_lines.push(msg);
                    episodes.push(Episode {
                        slo: key.0.clone(),
                        severity: key.1,
                        windows: key.2.clone(),
                        started_ms: now_ms,
                        ended_ms: None,
                        peak_burn: *burn,
                    });
                }
            }
        }
        let ended: Vec<_> = open.keys().filter(|k| !firing_now.contains_key(*k)).cloned().collect();
        for key in ended {
            if let Some(i) = open.remove(&key) {
                episodes[i].ended_ms = Some(now_ms);
                let msg = format!("{}  {} {} resolved ({})", hhmm(now_ms), key.1.to_uppercase(), key.0, key.2);
                if !live {
                    println!("{msg}");
                }
                log_lines.push(msg);
            }
        }
        for c in verdicts.observe(now_ms, &no_board, &snap.outage, &[], &[], &[]) {
            let msg = format!("{}  OUTAGE {}", hhmm(now_ms), c.summary);
            if !live {
                println!("{msg}");
            }
            log_lines.push(msg);
        }
        let checks = Checks::now(&agent.api, now_ms);
        for msg in checks.changes(&seen, now_ms) {
            if !live {
                println!("{msg}");
            }
            log_lines.push(msg);
        }
        seen = checks;
        if live {
            draw(&snap.report(), &telemetry, addr, now_ms, &log_lines, step + 1, steps);
            print!("{}", seen.lines());
            let _ = std::io::stdout().flush();
        } else if (generator.minute()).is_multiple_of(180) {
            println!("{}  {}", hhmm(now_ms), one_line_status(&snap.report()));
        }
        if let Some(rest) = pause.checked_sub(step_started.elapsed()) {
            std::thread::sleep(rest);
        }
    }

    // Final state and summary.
    let lines_read = telemetry.sum(&INGEST_LINES, &[("source", "cloudfront")]) as u64;
    let api = agent.api.clone();
    agent.stop(Instant::now() + Duration::from_secs(10));
    server.abort();
    let snap = api.snapshot();
    let report = snap.report();
    println!();
    println!("── summary ─────────────────────────────────────────────────────────────");
    print!("{}", render_table(&report));
    println!();
    println!("alert episodes (simulated UTC time):");
    if episodes.is_empty() {
        println!("  none");
    }
    for e in &episodes {
        println!(
            "  {:<6} {:<26} {:<8} {} → {}  peak burn {:.1}",
            e.severity.to_uppercase(),
            e.slo,
            e.windows,
            hhmm(e.started_ms),
            e.ended_ms.map(hhmm).unwrap_or_else(|| "still firing".into()),
            e.peak_burn
        );
    }
    println!();
    println!("deploy freeze at the end of the day (GET /api/v1/freeze, `slo-agent freeze check`):");
    for sv in &snap.freeze.services {
        let feature = if sv.allows(crate::spec::policy::ChangeType::Feature) {
            "feature deploys allowed"
        } else {
            "feature deploys blocked"
        };
        println!("  {:<10} {:<17} {feature}", sv.service, sv.status.as_str());
        for r in &sv.reasons {
            println!("    - {}", r.message);
        }
    }
    println!();
    println!("anomalies of the day, live signals (GET /api/v1/anomalies, GET /api/v1/forecasts):");
    print!("{}", anomaly_lines(&snap.signals));
    println!();
    println!("probes and the checkout journey (GET /api/v1/hops?probe=storefront, GET /api/v1/journeys):");
    print!("{}", Checks::now(&api, snap.at_ms).lines());
    println!();
    println!("the public status page at the end of the day (GET /status, /status.json):");
    print!("{}", status_lines(&api));
    println!();
    println!("incidents, opened by the page alerts (GET /api/v1/incidents, `slo-agent incident list`):");
    {
        let incidents = api.incidents.read();
        let list = incidents.list(i64::MIN);
        if list.is_empty() {
            println!("  none");
        }
        for i in list {
            println!(
                "  {}  {} {}  {}  `slo-agent postmortem --incident {}` drafts its report",
                i.id,
                hhmm(i.started_at_ms),
                i.status.as_str(),
                i.title,
                i.id
            );
        }
    }
    println!();
    println!("deploys and what they cost (POST /api/v1/deploys, GET /api/v1/deploys):");
    if snap.deploys.is_empty() {
        println!("  none");
    }
    for d in snap.deploys.iter().rev() {
        let burn = |b: Option<f64>| b.map_or("-".to_string(), |b| format!("{b:.1}"));
        let worst = d.worst();
        println!(
            "  {}  {}; burn {} before → {} after{}",
            hhmm(d.started_at_ms),
            d.message(),
            worst.map_or("-".into(), |w| burn(w.before.burn_rate)),
            worst.map_or("-".into(), |w| burn(w.after.burn_rate)),
            if d.flagged { "  FLAGGED" } else { "" }
        );
    }
    println!();
    println!(
        "{} log lines written ({} of history, {} live), {} read by the agent, {} rejected; {:.1} s for {} h of traffic.",
        history_lines + written_lines,
        history_lines,
        written_lines,
        lines_read,
        report.rejected_lines,
        started.elapsed().as_secs_f64(),
        args.hours
    );
    println!("Try it on your own logs: slo-agent replay --specs slo-specs/ your-cloudfront-logs/*.gz");
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("logs and state kept in {}", dir.display());
    }
    Ok(())
}

/// The public status page's components: state, uptime and today's worst.
fn status_lines(api: &crate::api::ApiState) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let Some(json) = crate::api::status::public_json(api) else {
        return "  not configured\n".into();
    };
    let page: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
    for c in page["components"].as_array().into_iter().flatten() {
        let today = c["days"].as_array().and_then(|d| d.last()).and_then(|d| d["worst"].as_str()).unwrap_or("-");
        let uptime = c["uptime_percent"].as_f64().map_or("-".to_string(), |u| format!("{u:.3} %"));
        let _ = writeln!(
            out,
            "  {:<12} {:<22} uptime {uptime:<10} worst today: {today}",
            c["name"].as_str().unwrap_or("?"),
            c["status"].as_str().unwrap_or("?")
        );
    }
    out
}

/// What the demo's probe and journey say at one moment.
#[derive(Debug, Default)]
struct Checks {
    /// The storefront probe's hops over the last hour against the three before.
    hops: Option<crate::hops::answer::HopsAnswer>,
    journey: Option<Arc<crate::synthetic::journey::JourneyRun>>,
}

impl Checks {
    fn now(api: &crate::api::ApiState, now_ms: i64) -> Checks {
        Checks {
            hops: api.probes.chain_answer("storefront", now_ms, 60, 180),
            journey: api.journeys.runs().into_iter().find(|r| r.name == "checkout"),
        }
    }

    fn blame(&self) -> Option<&str> {
        self.hops.as_ref().and_then(|h| h.blame.as_deref())
    }

    fn journey_status(&self) -> Option<(&'static str, Option<&str>)> {
        self.journey.as_ref().map(|j| (j.status.as_str(), j.failed_step.as_deref()))
    }

    /// What changed since `before`, as lines for the alert log.
    fn changes(&self, before: &Checks, now_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        match (self.blame(), before.blame(), &self.hops) {
            (Some(hop), b, Some(h)) if Some(hop) != b => {
                out.push(format!("{}  PROBE storefront: `{hop}` is slow ({})", hhmm(now_ms), h.blame_reason));
            }
            (None, Some(hop), _) => {
                out.push(format!("{}  PROBE storefront: `{hop}` is back within its baseline", hhmm(now_ms)));
            }
            _ => {}
        }
        if let (Some((status, step)), Some(run)) = (self.journey_status(), &self.journey)
            && before.journey_status().is_some_and(|b| b != (status, step))
        {
            let at = hhmm(run.started_ms);
            out.push(match step {
                Some(step) => format!("{}  JOURNEY checkout {status} at step `{step}` (run of {at})", hhmm(now_ms)),
                None => format!("{}  JOURNEY checkout {status} (run of {at})", hhmm(now_ms)),
            });
        }
        out
    }

    fn lines(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        match &self.hops {
            Some(h) if !h.hops.is_empty() => {
                let hops: Vec<String> = h
                    .hops
                    .iter()
                    .map(|f| {
                        if f.count == 0 {
                            format!("{} failing", f.name)
                        } else {
                            format!("{} p50 {:.0} ms (adds {:.0})", f.name, f.p50_ms, f.adds_ms)
                        }
                    })
                    .collect();
                let blame = h.blame.as_deref().map(|b| format!("  blame: {b}")).unwrap_or_default();
                let _ = writeln!(out, "  probe storefront: {}{blame}", hops.join(" · "));
            }
            _ => {
                let _ = writeln!(out, "  probe storefront: no run yet");
            }
        }
        match &self.journey {
            Some(j) => {
                let steps: Vec<String> = j.steps.iter().map(|s| format!("{} {}", s.name, s.status.as_str())).collect();
                let _ = writeln!(
                    out,
                    "  journey checkout: {} at {} ({})",
                    j.status.as_str(),
                    hhmm(j.started_ms),
                    steps.join(", ")
                );
            }
            None => {
                let _ = writeln!(out, "  journey checkout: no run yet");
            }
        }
        out
    }
}

fn wait_for_ingest(telemetry: &Telemetry, written: u64, limit: Duration) {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        let read = telemetry.sum(&INGEST_BYTES, &[]) as u64;
        if read >= written {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The demo day's deploys: (service, version, commit, actor, start minute, end minute).
/// Checkout 1.4.2 goes out just before the checkout errors of 10:20.
const DEMO_DEPLOYS: [(&str, &str, &str, &str, u32, u32); 3] = [
    ("storefront", "2.8.0", "4be1c9a", "maria", 8 * 60 + 30, 8 * 60 + 36),
    ("checkout", "1.4.2", "9fceb02", "alice", 10 * 60 + 12, 10 * 60 + 19),
    ("checkout", "1.4.3", "c0ffee1", "alice", 11 * 60 + 5, 11 * 60 + 9),
];

/// Record the demo deploys that have finished by `minute`, as a pipeline
/// would with `POST /api/v1/deploys` (stored with an audit entry).
fn record_deploys(api: &crate::api::ApiState, day_start: i64, minute: u32, done: &mut usize) {
    while let Some(&(service, version, commit, actor, start, end)) = DEMO_DEPLOYS.get(*done) {
        if end > minute {
            return;
        }
        let at = |m: u32| day_start + i64::from(m) * 60_000;
        let d = crate::freeze::deploys::Deploy {
            id: crate::secret::random_id(),
            service: service.into(),
            version: version.into(),
            commit: Some(commit.into()),
            actor: actor.into(),
            started_at_ms: at(start),
            finished_at_ms: at(end),
            outcome: crate::freeze::deploys::Outcome::Success,
            recorded_by: "demo-pipeline".into(),
            recorded_at_ms: at(end),
        };
        let entry = crate::auth::AuditEntry::new(
            at(end),
            "demo-pipeline",
            Some(crate::auth::Role::Deploy),
            "deploy.record",
            Some(&d.id),
            &format!("ok: {service} {version} success"),
            None,
        );
        let json = serde_json::to_vec(&d).expect("deploys serialize");
        if let Err(e) = api.store.put_kept(crate::store::Kept::Deploys, &d.id, &json, &entry) {
            tracing::warn!(error = %e, "the demo deploy was not recorded");
        }
        api.deploys.write().put(d);
        *done += 1;
    }
}

fn hhmm(ms: i64) -> String {
    // Evaluations happen at the last millisecond of a minute: show the minute that ends.
    let t = rfc3339(ms + 1);
    t.get(11..16).unwrap_or(&t).to_string()
}

fn one_line_status(r: &Report) -> String {
    r.slos
        .iter()
        .map(|s| {
            let firing = s.alerts.iter().any(|a| a.firing);
            format!(
                "{} {}{}",
                s.name,
                s.sli.map(|v| format!("{:.2}%", v * 100.0)).unwrap_or_else(|| "-".into()),
                if firing { " [FIRING]" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn bar(remaining: f64, width: usize) -> String {
    let filled = ((remaining.clamp(0.0, 1.0)) * width as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

fn draw(
    report: &Report,
    telemetry: &Telemetry,
    addr: std::net::SocketAddr,
    now_ms: i64,
    log_lines: &[String],
    step: u32,
    steps: u32,
) {
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = write!(out, "\x1b[2J\x1b[H");
    let _ = writeln!(
        out,
        "\x1b[1mslo-agent demo\x1b[0m  simulated time {} UTC  ({}/{})   API http://{addr}/api/v1/slos   metrics http://{addr}/metrics",
        rfc3339(now_ms + 1).get(..16).unwrap_or_default().replace('T', " "),
        step,
        steps
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "\x1b[1m{:<25} {:>7} {:>10} {:>9}  {:<22} {:>7} {:>7} {:>7} {:>7} {:>8}  ALERT\x1b[0m",
        "SLO", "OBJ", "EVENTS", "SLI", "ERROR BUDGET LEFT", "5m", "1h", "6h", "1d", "p99 ms"
    );
    for s in &report.slos {
        let burn =
            |w: &str| s.burn_rates.get(w).copied().flatten().map(|b| format!("{b:.1}")).unwrap_or_else(|| "-".into());
        let page = s.alerts.iter().any(|a| a.firing && a.severity == "page");
        let ticket = s.alerts.iter().any(|a| a.firing && a.severity == "ticket");
        let alert = if page {
            "\x1b[41;97m PAGE \x1b[0m".to_string()
        } else if ticket {
            "\x1b[43;30m TICKET \x1b[0m".to_string()
        } else {
            "\x1b[32mok\x1b[0m".to_string()
        };
        let rem = s.error_budget.remaining;
        let color = if rem < 0.25 {
            "\x1b[31m"
        } else if rem < 0.75 {
            "\x1b[33m"
        } else {
            "\x1b[32m"
        };
        let _ = writeln!(
            out,
            "{:<25} {:>7} {:>10} {:>9}  {color}{}\x1b[0m {:>6} {:>7} {:>7} {:>7} {:>7} {:>8}  {}",
            s.name,
            format!("{}%", (s.objective * 1000.0).round() / 10.0),
            s.events.total,
            s.sli.map(|v| format!("{:.3}%", v * 100.0)).unwrap_or_else(|| "-".into()),
            bar(rem, 15),
            format!("{:.0}%", rem * 100.0),
            burn("5m"),
            burn("1h"),
            burn("6h"),
            burn("1d"),
            s.latency_ms.map(|l| format!("{:.0}", l.p99)).unwrap_or_else(|| "-".into()),
            alert
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "\x1b[1malert changes\x1b[0m");
    let recent = &log_lines[log_lines.len().saturating_sub(8)..];
    if recent.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for l in recent {
        let _ = writeln!(out, "  {l}");
    }
    let lines = telemetry.sum(&INGEST_LINES, &[]) as u64;
    let _ = writeln!(out);
    let _ = writeln!(out, "ingested {lines} log lines, rejected {}", report.rejected_lines);
    print!("{out}");
    let _ = std::io::stdout().flush();
}

/// Write quiet days as one gzip file per day; returns the lines and the
/// uncompressed bytes written.
fn write_history(dir: &Path, start_ms: i64, days: u32) -> anyhow::Result<(u64, u64)> {
    let mut g = TrafficGenerator::new(Scenario::quiet(), start_ms);
    let mut total = 0u64;
    let mut lines = 2 * days as u64; // the headers
    let mut buf = Vec::new();
    for d in 0..days {
        let (date, _) = traffic::civil((start_ms + d as i64 * 86_400_000) / 1000);
        let path = dir.join(format!("E2DEMO1EXAMPLE.{date}.history.log.gz"));
        let f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::fast());
        gz.write_all(FIELDS_HEADER.as_bytes())?;
        total += FIELDS_HEADER.len() as u64;
        for _ in 0..1440 {
            buf.clear();
            lines += g.next_minute(&mut buf) as u64;
            gz.write_all(&buf)?;
            total += buf.len() as u64;
        }
        gz.finish()?.flush()?;
    }
    Ok((lines, total))
}

/// Write `minutes` of demo traffic as CloudFront log files (one per hour) in `dir`.
pub fn write_logs(dir: &Path, day_start_ms: i64, minutes: u32, scenario: Scenario) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut g = TrafficGenerator::new(scenario, day_start_ms);
    let mut lines = 0u64;
    let mut buf = Vec::new();
    let mut f: Option<std::fs::File> = None;
    for m in 0..minutes {
        if m % 60 == 0 {
            let (date, _) = traffic::civil((day_start_ms + m as i64 * 60_000) / 1000);
            let mut file = std::fs::File::create(dir.join(format!("E2DEMO1EXAMPLE.{date}-{:02}.log", (m / 60) % 24)))?;
            file.write_all(FIELDS_HEADER.as_bytes())?;
            f = Some(file);
        }
        buf.clear();
        lines += g.next_minute(&mut buf) as u64;
        if let Some(file) = f.as_mut() {
            file.write_all(&buf)?;
        }
    }
    Ok(lines)
}

/// The logs `slo-agent generate` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratedLog {
    /// CloudFront standard log lines (33 fields, after a `#Fields` header).
    Cloudfront,
    /// API Gateway (HTTP API) JSON access log records.
    Apigateway,
    /// Lambda `REPORT` lines as a CloudWatch Logs export writes them.
    Lambda,
}

/// Write exactly `lines` request lines of demo traffic (CloudFront: after
/// one header), starting at `day_start_ms` and going on through as many days
/// as it takes.
pub fn generate(w: &mut dyn Write, log: GeneratedLog, day_start_ms: i64, lines: u64) -> std::io::Result<()> {
    enum Generator {
        Edge(TrafficGenerator),
        Api(api::ApiTrafficGenerator),
    }
    let mut generator = match log {
        GeneratedLog::Cloudfront => {
            w.write_all(FIELDS_HEADER.as_bytes())?;
            Generator::Edge(TrafficGenerator::new(Scenario::demo_day(), day_start_ms))
        }
        GeneratedLog::Apigateway | GeneratedLog::Lambda => {
            let hop = if log == GeneratedLog::Lambda { api::ApiLog::Lambda } else { api::ApiLog::ApiGateway };
            Generator::Api(api::ApiTrafficGenerator::new(Scenario::demo_day(), hop, day_start_ms))
        }
    };
    let mut buf = Vec::new();
    let mut written = 0u64;
    while written < lines {
        buf.clear();
        match &mut generator {
            Generator::Edge(g) => g.next_minute(&mut buf),
            Generator::Api(g) => g.next_minute(&mut buf),
        };
        for line in buf.split_inclusive(|&b| b == b'\n') {
            if written == lines {
                break;
            }
            w.write_all(line)?;
            written += 1;
        }
    }
    Ok(())
}

/// The demo's signals: paid checkouts as a business signal (they drop when
/// checkout fails), and a ticket when they drop for 10 minutes.
fn demo_signals() -> crate::signals::config::SignalsConfig {
    use crate::signals::config::{AnomalyAlert, BusinessSignal, PathMatch, Severity, SignalsConfig};
    SignalsConfig {
        // The demo's logs are written in order, without delivery delay.
        lateness_ms: 60_000,
        business: vec![BusinessSignal {
            name: "checkout_paid".into(),
            service: None,
            method: Some("POST".into()),
            path: PathMatch::Exact("/checkout/pay".into()),
            status: vec![(200, 299)],
        }],
        alerts: vec![AnomalyAlert {
            signal: "business:checkout_paid".into(),
            service: None,
            score: 0.7,
            for_ms: 600_000,
            severity: Severity::Ticket,
        }],
        ..SignalsConfig::default()
    }
}

/// The day's strongest anomalies over whole services (dimension `all`), at most 6.
fn anomaly_lines(view: &crate::signals::SignalsView) -> String {
    let mut found: Vec<(&crate::signals::SeriesView, crate::signals::Episode)> = view
        .series
        .iter()
        .filter(|s| s.key.dim == crate::signals::Dim::All && !s.key.service.starts_with("account/"))
        .filter_map(|s| s.episode.or(s.last_episode).map(|e| (s, e)))
        .filter(|(_, e)| e.peak_score >= view.threshold)
        .collect();
    found.sort_by(|a, b| b.1.peak_score.total_cmp(&a.1.peak_score));
    if found.is_empty() {
        return "  none\n".into();
    }
    let mut out = String::new();
    for (s, e) in found.into_iter().take(6) {
        out.push_str(&format!(
            "  {:<8} {:<28} {:<5} from {}  peak score {:.2}\n",
            s.key.service,
            format!("{} {}", s.key.origin, s.signal),
            if e.direction >= 0 { "up" } else { "down" },
            hhmm(e.start_ms),
            e.peak_score
        ));
    }
    out
}
