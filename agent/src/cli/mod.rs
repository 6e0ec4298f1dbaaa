//! The command line: `validate`, `replay`, `run`, `rules`, `demo`, `freeze`, `outage`, `probe`, `backup`, `restore`, `anomalies`, `forecast`, `incident timeline`, `postmortem`, …

pub mod anomalies;
pub mod audit;
pub mod backup;
pub mod forecast;
pub mod freeze;
pub mod incident;
pub mod outage;
pub mod probe;
pub mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::Write as _;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::decode::Format;
use crate::replay::{ReplayFormat, ReplayOptions, replay};
use crate::sli::report::render_table;
use crate::spec;

#[derive(Parser, Debug)]
#[command(
    name = "slo-agent",
    version,
    about = "SLIs, error budgets and burn-rate alerts for CloudFront → API Gateway → Lambda"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check SLO spec files (or directories of them); print every problem as file:line:col.
    Validate {
        /// Spec files or directories (searched recursively for *.yaml / *.yml).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Compute every SLO from log files (plain or .gz), in event time. A file that cannot be
    /// read or whose format cannot be told is named on stderr and skipped; the others are
    /// replayed and reported. Exit 0 done, 1 spec problems, 2 a file skipped or another error.
    Replay {
        /// Spec files or directories.
        #[arg(long, required = true)]
        specs: Vec<PathBuf>,
        /// Evaluate as of this time (RFC 3339); default: the newest event seen.
        #[arg(long)]
        at: Option<String>,
        /// Log format of the files: a line format, `cloudwatch-logs` (saved CloudWatch Logs
        /// subscription payloads) or `lambda-telemetry` (saved Telemetry API batches). For
        /// CloudWatch Logs exports (console or Logs Insights CSV, `aws logs get-log-events`
        /// JSON, always detected) a line format names what their messages are.
        #[arg(long, default_value = "auto")]
        format: String,
        /// The distribution's real-time log field list (`--format cloudfront-realtime`),
        /// comma-separated, in any order.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// `GLOB=FORMAT`: the log events of log groups matching GLOB are in FORMAT
        /// (`--format cloudwatch-logs`, and CloudWatch Logs exports that name log groups;
        /// repeatable, first match wins; default `/aws/lambda/*=lambda`).
        #[arg(long = "log-group", value_name = "GLOB=FORMAT")]
        log_groups: Vec<String>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Service name for records that carry none (CloudFront logs).
        #[arg(long, default_value = "")]
        service: String,
        /// Worker threads: plain log files are cut into parts at line boundaries and read in
        /// parallel, the counts merged (the report is the same as with one). Default: one per core.
        #[arg(long)]
        threads: Option<usize>,
        /// The least size in bytes of a part of a file (tests cut small files with it).
        #[arg(long, hide = true, default_value_t = crate::replay::MIN_PART_BYTES)]
        min_part_bytes: usize,
        /// Log files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the agent: tail sources, evaluate SLOs, serve the API and /metrics.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run as an AWS Lambda extension: register, subscribe to the Telemetry
    /// API, count what it delivers, stop on SHUTDOWN.
    LambdaExtension {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Write Prometheus recording and alerting rules (Sloth's names and labels) over the
    /// counters the agent exports (and for Sloth `prometheus/v1` specs): one
    /// `<service>.rules.yaml` per service.
    Rules {
        /// Spec files or directories.
        #[arg(long, required_unless_present = "sloth")]
        specs: Vec<PathBuf>,
        /// Sloth `prometheus/v1` spec files or directories; their queries become the SLIs.
        #[arg(long)]
        sloth: Vec<PathBuf>,
        /// The SLO period of Sloth specs (they do not say).
        #[arg(long, default_value = "30d")]
        sloth_period: String,
        /// A label for every generated series and alert, `KEY=VALUE` (repeatable, like
        /// Sloth's); a spec's own label of the same name wins.
        #[arg(long = "extra-labels", short = 'l', value_name = "KEY=VALUE")]
        extra_labels: Vec<String>,
        /// Directory to write the rule files to (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the least-privilege IAM policy (JSON) the configured AWS sources and the
    /// CloudWatch exporter need: exact actions and, where AWS allows, exact resources.
    IamPolicy {
        #[arg(long, short)]
        config: PathBuf,
        /// The AWS account id in the ARNs (default `*`).
        #[arg(long)]
        account: Option<String>,
    },
    /// Ask a running agent whether a service may deploy now (for pipelines).
    Freeze {
        #[command(subcommand)]
        command: freeze::FreezeCommand,
    },
    /// Ask a running agent whether a service's outage is partial or total: which edge
    /// locations, regions, routes and journey steps fail, and which hop to blame.
    /// Exit 0 no outage, 1 partial or total, 2 no answer.
    Outage(Box<outage::OutageArgs>),
    /// Back up the agent's state: through a running agent's API (a token with role admin),
    /// or a stopped agent's state file (--state / --config). Exit 0 done, 1 refused, 2 failed.
    Backup(Box<backup::BackupArgs>),
    /// Restore a backup into a stopped agent's state file; a newer state is replaced only with
    /// --force. Exit 0 done, 1 refused (damaged backup, newer or running state), 2 failed.
    Restore(backup::RestoreArgs),
    /// Incidents of a running agent: list, show, open, update (role incident to change), and
    /// the timeline of what the agent knows about a service between two times.
    Incident {
        #[command(subcommand)]
        command: incident::IncidentCommand,
    },
    /// Write a Markdown postmortem draft of an incident (or of a service between two times),
    /// with the times and figures the agent knows filled in. Exit 0 written, 2 failed.
    Postmortem(Box<timeline::PostmortemArgs>),
    /// Check the audit log's hash chain in a state file.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Probe a URL once (retried once on failure): DNS, connect, TLS, processing and transfer
    /// times, TLS and certificate expiry, assertions. Exit 0 success, 1 failure, 2 usage.
    Probe(Box<probe::ProbeArgs>),
    /// Score every row of a `timestamp,value` CSV series for anomalies (streaming and causal:
    /// a row's score uses only the rows before it). Exit 2 on a malformed row.
    Anomalies(anomalies::AnomaliesArgs),
    /// Forecast a `timestamp,value` series: write `timestamp,forecast,lo,hi` for the next
    /// --horizon steps with a prediction interval. Exit 0 written, 2 bad input.
    Forecast(forecast::ForecastArgs),
    /// Show SLOs, burn rates and alerts on a generated day of shop traffic.
    Demo(crate::demo::DemoArgs),
    /// Write realistic generated log lines of a small shop's traffic (for trying specs and benchmarks).
    Generate {
        /// Which log: CloudFront standard log, API Gateway JSON access log, or Lambda REPORT lines.
        #[arg(long, value_enum, default_value_t = crate::demo::GeneratedLog::Cloudfront)]
        format: crate::demo::GeneratedLog,
        /// How many request lines to write.
        #[arg(long, default_value_t = 1_000_000)]
        lines: u64,
        /// The first simulated day (UTC), YYYY-MM-DD.
        #[arg(long, default_value = "2026-11-20")]
        date: String,
        /// Output file ("-" for stdout).
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

pub fn main() -> ExitCode {
    // One TLS crypto provider for the whole process: ring, which the agent's
    // own TLS code names explicitly. Builds with the `aws` feature also link
    // aws-lc-rs (through the AWS SDK), and a library that asks rustls for
    // "the" default would otherwise find two and panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { paths } => Ok(validate(&paths)),
        Command::Replay { specs, at, format, fields, log_groups, output, service, threads, min_part_bytes, files } => {
            let slos = match spec::load_paths(&specs) {
                Ok(s) => s,
                Err(diags) => {
                    for d in &diags {
                        eprintln!("{d}");
                    }
                    return Ok(ExitCode::from(1));
                }
            };
            let Some(format) = ReplayFormat::parse(&format) else {
                bail!("unknown --format {format:?}; expected one of {}", ReplayFormat::NAMES);
            };
            let fields: Vec<String> = fields.iter().map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect();
            match format {
                ReplayFormat::Lines(Format::CloudFrontRealtime) => {
                    if fields.is_empty() {
                        bail!(
                            "--format cloudfront-realtime needs --fields, the distribution's real-time log field list"
                        );
                    }
                    let names: Vec<&str> = fields.iter().map(String::as_str).collect();
                    if let Err(e) = Format::CloudFrontRealtime.decoder_with_fields("", &names) {
                        bail!("--fields: {e}");
                    }
                }
                _ if !fields.is_empty() => bail!("--fields is only for --format cloudfront-realtime"),
                _ => {}
            }
            let routes = log_groups.iter().map(|r| parse_route(r)).collect::<anyhow::Result<Vec<_>>>()?;
            let at_ms = match at {
                Some(a) => Some(parse_rfc3339(&a).with_context(|| format!("--at {a:?}"))?),
                None => None,
            };
            if threads == Some(0) {
                bail!("--threads must be at least 1");
            }
            let opts = ReplayOptions {
                at_ms,
                format,
                service,
                fields,
                routes,
                progress: output == Output::Table,
                threads: threads.unwrap_or(0),
                min_part_bytes,
            };
            let outcome = replay(&slos, &files, &opts);
            match output {
                Output::Json => {
                    let mut v = serde_json::to_value(&outcome.report)?;
                    v["rejects"] = rejects_json(&outcome.rejects);
                    v["lines"] = outcome.lines.into();
                    v["events"] = outcome.events.into();
                    v["events_after_at"] = outcome.after_at.into();
                    if outcome.unrouted_log_events > 0 {
                        v["unrouted_log_events"] = outcome.unrouted_log_events.into();
                        v["unrouted_log_groups"] = outcome.unrouted_groups.clone().into();
                    }
                    if !outcome.failed.is_empty() {
                        v["failed_files"] = outcome
                            .failed
                            .iter()
                            .map(
                                |e| serde_json::json!({"path": e.path().display().to_string(), "error": e.to_string()}),
                            )
                            .collect();
                    }
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                Output::Table => {
                    print!("{}", render_table(&outcome.report));
                    for (reason, s) in &outcome.rejects.by_reason {
                        eprintln!("rejected {} lines: {reason}", s.count);
                        for (place, sample) in &s.samples {
                            eprintln!("  {place}: {sample}");
                        }
                    }
                }
            }
            if outcome.unrouted_log_events > 0 {
                let groups: Vec<String> =
                    outcome.unrouted_groups.iter().map(|g| crate::untrusted::Escaped(g).to_string()).collect();
                eprintln!(
                    "{} log events of log groups no --log-group route covers, or whose format could not be told: {}",
                    outcome.unrouted_log_events,
                    groups.join(", ")
                );
            }
            for e in &outcome.failed {
                eprintln!("error: {e} (file skipped)");
            }
            if !outcome.failed.is_empty() {
                if outcome.failed.len() == outcome.files {
                    eprintln!("no file could be replayed");
                } else {
                    eprintln!(
                        "{} of {} files skipped; the report covers the others",
                        outcome.failed.len(),
                        outcome.files
                    );
                }
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config } => crate::runtime::run_from_file(&config).map(|_| ExitCode::SUCCESS),
        Command::LambdaExtension { config } => {
            crate::lambda_extension::run_from_file(&config).map(|_| ExitCode::SUCCESS)
        }
        Command::Rules { specs, sloth, sloth_period, extra_labels, out } => {
            rules(&specs, &sloth, &sloth_period, &extra_labels, &out)
        }
        Command::IamPolicy { config, account } => iam_policy(&config, account.as_deref()),
        Command::Freeze { command } => Ok(freeze::run(command)),
        Command::Outage(args) => Ok(outage::run(*args)),
        Command::Backup(args) => Ok(backup::run_backup(*args)),
        Command::Restore(args) => Ok(backup::run_restore(args)),
        Command::Audit { command } => Ok(audit::run(command)),
        Command::Incident { command } => Ok(incident::run(command)),
        Command::Postmortem(args) => Ok(timeline::run_postmortem(*args)),
        Command::Probe(args) => Ok(probe::run(*args)),
        Command::Anomalies(args) => Ok(anomalies::run(args)),
        Command::Forecast(args) => Ok(forecast::run(args)),
        Command::Demo(args) => crate::demo::run(args).map(|_| ExitCode::SUCCESS),
        Command::Generate { format, lines, date, out } => {
            let start = parse_rfc3339(&format!("{date}T00:00:00Z")).with_context(|| format!("--date {date:?}"))?;
            let mut w: Box<dyn std::io::Write> = if out.as_os_str() == "-" {
                Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
            } else {
                Box::new(std::io::BufWriter::new(
                    std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?,
                ))
            };
            crate::demo::generate(&mut w, format, start, lines)?;
            w.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    match spec::load_paths(paths) {
        Ok(set) => {
            println!("{} SLOs valid", set.slos.len());
            for s in &set.slos {
                println!("  {} ({}:{})", s.name, s.origin.file, s.origin.line);
            }
            if !set.policies.is_empty() {
                println!("{} freeze policies valid", set.policies.len());
                for p in &set.policies {
                    println!("  {} ({}:{})", p.name, p.origin.file, p.origin.line);
                }
            }
            ExitCode::SUCCESS
        }
        Err(diags) => {
            for d in &diags {
                println!("{d}");
            }
            eprintln!("{} problem(s) found", diags.len());
            ExitCode::from(1)
        }
    }
}

fn rules(
    specs: &[PathBuf],
    sloth: &[PathBuf],
    sloth_period: &str,
    extra_labels: &[String],
    out: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let period = spec::grammar::duration(sloth_period)
        .map_err(|e| anyhow::anyhow!("--sloth-period {sloth_period:?}: {}", e.message))?;
    let mut extra = std::collections::BTreeMap::new();
    for kv in extra_labels {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow::anyhow!("--extra-labels {kv:?}: expected KEY=VALUE"))?;
        anyhow::ensure!(
            crate::rules::is_label_name(k) && !k.starts_with("__") && !k.starts_with("sloth_"),
            "--extra-labels {kv:?}: `{k}` is not a label name the rules can set \
             (letters, digits and _, not starting with a digit, `__` or `sloth_`)"
        );
        extra.insert(k.to_string(), v.to_string());
    }
    let (mut slos, skipped, notes) = if specs.is_empty() {
        Default::default()
    } else {
        match spec::load_paths(specs) {
            Ok(set) => crate::rules::from_slo_set(&set),
            Err(diags) => {
                for d in &diags {
                    eprintln!("{d}");
                }
                return Ok(ExitCode::from(1));
            }
        }
    };
    let mut failed = false;
    let mut sloth_files = Vec::new();
    for p in sloth {
        if p.is_dir() {
            spec::collect_dir(p, &mut sloth_files).with_context(|| format!("reading directory {}", p.display()))?;
        } else {
            sloth_files.push(p.clone());
        }
    }
    for f in &sloth_files {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {name}"))?;
        match crate::rules::sloth::read(&name, &text, period) {
            Ok(s) => slos.extend(s),
            Err(diags) => {
                failed = true;
                for d in &diags {
                    eprintln!("{d}");
                }
            }
        }
    }
    for (id, first, second) in crate::rules::duplicate_ids(&slos) {
        failed = true;
        eprintln!("{second}: SLO id `{id}` (service-slo) is also defined in {first}");
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    for s in &mut slos {
        for (k, v) in &extra {
            s.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let generated = crate::rules::generate_with(slos, skipped, notes);
    for s in &generated.skipped {
        eprintln!("warning: {} ({}): skipped: {}", s.slo, s.file, s.reason);
    }
    for n in &generated.notes {
        eprintln!("warning: {}: {}", n.slo, n.message);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, text) in &generated.files {
        let path = out.join(name);
        crate::fsutil::write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        let slos = generated.slos_per_file.get(name).map(|v| v.join(", ")).unwrap_or_default();
        println!("wrote {} ({slos})", path.display());
    }
    let written: usize = generated.slos_per_file.values().map(Vec::len).sum();
    println!("{written} SLOs in {} rule files, {} skipped", generated.files.len(), generated.skipped.len());
    Ok(ExitCode::SUCCESS)
}

pub fn parse_rfc3339(s: &str) -> anyhow::Result<i64> {
    crate::timefmt::parse_rfc3339(s).map_err(anyhow::Error::msg)
}

pub fn rejects_json(r: &crate::decode::Rejects) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (reason, s) in &r.by_reason {
        m.insert(
            reason.as_str().to_string(),
            serde_json::json!({
                "count": s.count,
                "samples": s.samples.iter().map(|(place, line)| serde_json::json!({"at": place, "line": line})).collect::<Vec<_>>(),
            }),
        );
    }
    serde_json::Value::Object(m)
}

/// `--log-group GLOB=FORMAT` of `replay`.
fn parse_route(arg: &str) -> anyhow::Result<crate::decode::cloudwatch_logs::LogGroupRoute> {
    let Some((glob, format)) = arg.rsplit_once('=') else {
        bail!("--log-group {arg:?}: expected GLOB=FORMAT, e.g. /aws/apigateway/*=apigateway");
    };
    let log_group =
        crate::spec::glob::Glob::new(glob).map_err(|e| anyhow::anyhow!("--log-group {arg:?}: bad pattern: {e}"))?;
    let format = match Format::parse(format) {
        Some(Format::Auto | Format::CloudFrontRealtime) | None => bail!(
            "--log-group {arg:?}: the format must be one of apigateway, lambda, ndjson, cloudfront, cloudfront-v2, otlp-json"
        ),
        Some(f) => f,
    };
    Ok(crate::decode::cloudwatch_logs::LogGroupRoute { log_group, format, service: None })
}

/// `iam-policy`: the policy on stdout; config problems as file:line:col (exit 2).
fn iam_policy(config: &std::path::Path, account: Option<&str>) -> anyhow::Result<ExitCode> {
    if let Some(a) = account
        && (a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        eprintln!("error: --account must be a 12-digit AWS account id, found {a:?}");
        return Ok(ExitCode::from(2));
    }
    let cfg = match crate::config::load(config) {
        Ok(c) => c,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let policy = crate::export::iam_policy(&cfg.sources, &cfg.export, account);
    if policy["Statement"].as_array().is_none_or(|s| s.is_empty()) {
        eprintln!(
            "note: no AWS source and no PutMetricData export in {}: the agent needs no AWS permission",
            config.display()
        );
    }
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(ExitCode::SUCCESS)
}
