//! `slo-agent backup` and `slo-agent restore`: the agent's state (SLI
//! counts, checkpoints, alert states, silences, freeze overrides and
//! bypasses, deploys, the notification outbox, the audit log) to a file and
//! back. The format and its checks are `store::backup`'s.
//!
//! `backup` asks a running agent (`GET /api/v1/backup`, a token with role
//! `admin`) or reads a stopped agent's state file (`--state`/`--config`).
//! It writes to a file, a directory, or (builds with the `aws` feature) an
//! S3 prefix; what it wrote is checked whole before it is put in place, so
//! an interrupted download never leaves a file that looks like a backup.
//!
//! `restore` puts a backup in place of a stopped agent's state file,
//! refusing a running agent's, and a newer one unless `--force`.
//!
//! Exit codes: 0 done, 1 refused (a damaged backup, newer state, a running
//! agent's state file, the agent said no), 2 could not be tried (usage,
//! unreadable files, an agent that cannot be reached).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::freeze::AgentArgs;
use crate::store::backup::{self, BackupError, Header};

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Where to write the backup: a file; a directory (an existing one, or a path ending in
    /// `/`), where it is named `slo-agent-<UTC time>.backup`; or, in builds with the `aws`
    /// feature, `s3://BUCKET/KEY` or `s3://BUCKET/PREFIX/`.
    #[arg(long)]
    pub out: String,
    /// Back up this state file of a stopped agent instead of asking a running agent.
    #[arg(long, conflicts_with = "config")]
    pub state: Option<PathBuf>,
    /// Back up the state file this (stopped) agent's config names.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup: a file or, in builds with the `aws` feature, `s3://BUCKET/KEY`.
    #[arg(long)]
    pub from: String,
    /// The state file to restore into (the agent must be stopped).
    #[arg(long, required_unless_present_any = ["config", "check"], conflicts_with = "config")]
    pub state: Option<PathBuf>,
    /// Restore into the state file this agent config names.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Replace a state file that is newer than the backup (or unreadable); it is kept as
    /// `<state>.pre-restore`.
    #[arg(long)]
    pub force: bool,
    /// Only check the backup (envelope, length, checksum) and print its header; change nothing.
    #[arg(long, conflicts_with_all = ["state", "config", "force"])]
    pub check: bool,
}

/// A failure, and the exit code it ends with.
struct Failed(u8, String);

impl From<BackupError> for Failed {
    fn from(e: BackupError) -> Failed {
        let code = match e {
            BackupError::Refused(_) | BackupError::Invalid(_) => 1,
            BackupError::Store(_) | BackupError::Io { .. } => 2,
        };
        Failed(code, e.to_string())
    }
}

fn usage(message: String) -> Failed {
    Failed(2, message)
}

fn finish(r: Result<(), Failed>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed(code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

pub fn run_backup(args: BackupArgs) -> ExitCode {
    finish(backup(args))
}

pub fn run_restore(args: RestoreArgs) -> ExitCode {
    finish(restore(args))
}

/// Where a backup goes.
enum Dest {
    File(PathBuf),
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    S3 {
        bucket: String,
        key: String,
    },
}

fn default_name() -> String {
    use crate::clock::Clock as _;
    format!("slo-agent-{}.{}", crate::timefmt::compact(crate::clock::SystemClock.now_ms()), backup::EXTENSION)
}

fn destination(out: &str) -> Result<Dest, Failed> {
    if let Some(rest) = out.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(usage(format!("--out {out:?}: name a bucket (s3://BUCKET/KEY or s3://BUCKET/PREFIX/)")));
        }
        let key = if key.is_empty() || key.ends_with('/') { format!("{key}{}", default_name()) } else { key.into() };
        return Ok(Dest::S3 { bucket: bucket.into(), key });
    }
    if out.is_empty() {
        return Err(usage("--out is empty".into()));
    }
    let p = PathBuf::from(out);
    if out.ends_with('/') || p.is_dir() {
        std::fs::create_dir_all(&p).map_err(|e| usage(format!("cannot create the directory {out}: {e}")))?;
        return Ok(Dest::File(p.join(default_name())));
    }
    Ok(Dest::File(p))
}

/// The staging file a backup is written to before it is checked: beside
/// the destination file, or in the temporary directory (`TMPDIR`) for S3.
fn staging(dest: &Dest) -> PathBuf {
    let suffix = &crate::secret::random_id()[..12];
    match dest {
        Dest::File(p) => {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            p.with_file_name(format!("{name}.partial-{suffix}"))
        }
        Dest::S3 { .. } => std::env::temp_dir().join(format!("slo-agent-backup.partial-{suffix}")),
    }
}

/// Deletes the staging file however the command ends.
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn backup(args: BackupArgs) -> Result<(), Failed> {
    let dest = destination(&args.out)?;
    #[cfg(not(feature = "aws"))]
    if matches!(dest, Dest::S3 { .. }) {
        return Err(usage(format!(
            "--out {}: this slo-agent was built without the `aws` feature, so it cannot write to S3 (the container \
             image has it; or write a file and copy it)",
            args.out
        )));
    }
    let stopped = match (&args.state, &args.config) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(c)) => Some(crate::runtime::load_config(c).map_err(|e| usage(format!("{e:#}")))?.state),
        (None, None) => None,
    };
    let staged = Staged(staging(&dest));
    match &stopped {
        Some(state) => {
            let dir = staged.0.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
            let taken = backup::backup_file(state, &dir)?;
            let mut f = std::fs::File::create(&staged.0)
                .map_err(|e| Failed(2, format!("cannot write {}: {e}", staged.0.display())))?;
            taken.write_to(&mut f).map_err(|e| Failed(2, format!("cannot write {}: {e}", staged.0.display())))?;
            f.sync_all().map_err(|e| Failed(2, format!("cannot write {}: {e}", staged.0.display())))?;
        }
        None => download(&args.agent, &staged.0)?,
    }
    // What was written is checked whole before it counts as a backup.
    let mut f = std::fs::File::open(&staged.0).map_err(|e| Failed(2, format!("{}: {e}", staged.0.display())))?;
    let header = backup::verify(&mut f, "the backup just written")?;
    drop(f);
    let place = match &dest {
        Dest::File(p) => {
            crate::fsutil::durable_rename(&staged.0, p)
                .map_err(|e| Failed(2, format!("cannot put the backup at {}: {e}", p.display())))?;
            p.display().to_string()
        }
        #[cfg(feature = "aws")]
        Dest::S3 { bucket, key } => s3::upload(&staged.0, bucket, key)?,
        #[cfg(not(feature = "aws"))]
        Dest::S3 { .. } => unreachable!("refused above"),
    };
    let from = match &stopped {
        Some(s) => format!("the state file {}", s.display()),
        None => "the agent".to_string(),
    };
    eprintln!("backed up {from}: {}", summary(&header));
    println!("{place}");
    Ok(())
}

/// One line about a backup: size, when, how new, what it holds.
fn summary(h: &Header) -> String {
    let rows = |t: &str| h.tables.get(t).copied().unwrap_or(0);
    format!(
        "{} bytes of state taken at {} (state {}…, write {}, last written {}); {} SLI buckets, {} alert states, {} \
         silences, {} freeze overrides, {} audit entries",
        h.payload_bytes,
        h.created,
        h.state_id.get(..8).unwrap_or(&h.state_id),
        h.write_seq,
        crate::timefmt::rfc3339(h.last_write_ms),
        rows("buckets"),
        rows("alerts"),
        rows("silences"),
        rows("freeze_overrides"),
        rows("audit_log"),
    )
}

/// `GET /api/v1/backup` into `to`.
fn download(agent: &AgentArgs, to: &Path) -> Result<(), Failed> {
    let (url, token) = super::freeze::target(agent, "/api/v1/backup", &[]).map_err(usage)?;
    // `--timeout` bounds the connection and each wait for bytes; the agent
    // copies the whole state before its first byte, so that wait gets room.
    let wait = Duration::from_secs(agent.timeout.max(1));
    let builder = reqwest::Client::builder().connect_timeout(wait).read_timeout(wait.max(Duration::from_secs(120)));
    let client = super::freeze::client_with(agent, builder).map_err(usage)?;
    let to = to.to_path_buf();
    let fetched = crate::runtime::block_on(async move {
        let mut req = client.get(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut resp =
            req.send().await.map_err(|e| Failed(2, format!("asking {url}: {}", super::freeze::with_causes(&e))))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| crate::untrusted::EscapedBytes(&body[..body.len().min(300)]).to_string());
            let hint = match status.as_u16() {
                401 => " (give a token with --token-file or SLO_AGENT_TOKEN)",
                403 => " (backups need a token with role admin)",
                _ => "",
            };
            return Err(Failed(1, format!("{url} answered {status}: {message}{hint}")));
        }
        let mut f = std::fs::File::create(&to).map_err(|e| Failed(2, format!("cannot write {}: {e}", to.display())))?;
        let mut got = 0u64;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    got += chunk.len() as u64;
                    f.write_all(&chunk).map_err(|e| Failed(2, format!("cannot write {}: {e}", to.display())))?;
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failed(
                        2,
                        format!(
                            "the backup from {url} broke off after {got} bytes: {}",
                            super::freeze::with_causes(&e)
                        ),
                    ));
                }
            }
        }
        f.sync_all().map_err(|e| Failed(2, format!("cannot write {}: {e}", to.display())))?;
        Ok(())
    });
    fetched.map_err(|e| Failed(2, format!("{e:#}")))?
}

fn restore(args: RestoreArgs) -> Result<(), Failed> {
    // A backup fetched from S3 lives in a staging file until the restore ends.
    let mut _fetched: Option<Staged> = None;
    let from: PathBuf = if args.from.starts_with("s3://") {
        #[cfg(feature = "aws")]
        {
            let staged = Staged(
                std::env::temp_dir().join(format!("slo-agent-restore.partial-{}", &crate::secret::random_id()[..12])),
            );
            s3::download(&args.from, &staged.0)?;
            let path = staged.0.clone();
            _fetched = Some(staged);
            path
        }
        #[cfg(not(feature = "aws"))]
        return Err(usage(format!(
            "--from {}: this slo-agent was built without the `aws` feature, so it cannot read S3",
            args.from
        )));
    } else {
        PathBuf::from(&args.from)
    };
    if args.check {
        let mut f = std::fs::File::open(&from).map_err(|e| Failed(2, format!("{}: {e}", from.display())))?;
        let header = backup::verify(&mut f, &args.from)?;
        eprintln!("{} is a whole backup: {}", args.from, summary(&header));
        println!("{}", serde_json::to_string_pretty(&header).unwrap_or_default());
        return Ok(());
    }
    let state = match (&args.state, &args.config) {
        (Some(p), _) => p.clone(),
        (None, Some(c)) => crate::runtime::load_config(c).map_err(|e| usage(format!("{e:#}")))?.state,
        (None, None) => return Err(usage("name the state file: --state PATH or --config agent.yaml".into())),
    };
    let r = backup::restore(&from, &state, args.force)?;
    if let Some(kept) = &r.kept {
        eprintln!("the state it replaced is kept as {}", kept.display());
    }
    if !r.audit_intact {
        eprintln!("warning: the restored audit log's hash chain is broken (as it was in the backed-up state)");
    }
    eprintln!("restored {} from {}: {}", state.display(), args.from, summary(&r.header));
    Ok(())
}

/// Backups to and from S3 (`s3://bucket/key`), with the standard AWS
/// credential chain (IRSA, EKS Pod Identity, instance roles, env).
/// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) points it at an
/// S3-compatible store, addressed path-style.
#[cfg(feature = "aws")]
mod s3 {
    use std::path::Path;

    use aws_sdk_s3::error::DisplayErrorContext;

    use super::Failed;

    fn client() -> Result<(tokio::runtime::Runtime, aws_sdk_s3::Client), Failed> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failed(2, format!("starting the async runtime: {e}")))?;
        let conf = rt.block_on(aws_config::defaults(aws_config::BehaviorVersion::latest()).load());
        let custom =
            ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"].iter().any(|v| std::env::var(v).is_ok_and(|u| !u.is_empty()));
        let s3 = aws_sdk_s3::config::Builder::from(&conf).force_path_style(custom).build();
        Ok((rt, aws_sdk_s3::Client::from_conf(s3)))
    }

    /// Upload the checked backup; returns its `s3://` URL.
    pub(super) fn upload(file: &Path, bucket: &str, key: &str) -> Result<String, Failed> {
        let (rt, client) = client()?;
        let url = format!("s3://{bucket}/{key}");
        rt.block_on(async {
            let body = aws_sdk_s3::primitives::ByteStream::from_path(file)
                .await
                .map_err(|e| Failed(2, format!("reading {}: {e}", file.display())))?;
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type("application/octet-stream")
                .body(body)
                .send()
                .await
                .map_err(|e| Failed(2, format!("uploading the backup to {url}: {}", DisplayErrorContext(&e))))?;
            Ok(url)
        })
    }

    /// Download `s3://bucket/key` to `to`.
    pub(super) fn download(from: &str, to: &Path) -> Result<(), Failed> {
        let rest = from.strip_prefix("s3://").unwrap_or(from);
        let Some((bucket, key)) = rest.split_once('/').filter(|(b, k)| !b.is_empty() && !k.is_empty()) else {
            return Err(Failed(2, format!("--from {from:?}: expected s3://BUCKET/KEY")));
        };
        let (rt, client) = client()?;
        rt.block_on(async {
            let got = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| Failed(2, format!("downloading {from}: {}", DisplayErrorContext(&e))))?;
            let mut reader = got.body.into_async_read();
            let mut f = tokio::fs::File::create(to)
                .await
                .map_err(|e| Failed(2, format!("cannot write {}: {e}", to.display())))?;
            tokio::io::copy(&mut reader, &mut f).await.map_err(|e| Failed(2, format!("downloading {from}: {e}")))?;
            f.sync_all().await.map_err(|e| Failed(2, format!("cannot write {}: {e}", to.display())))?;
            Ok(())
        })
    }
}
