//! `slo-agent audit verify`: check the audit log's hash chain in a state
//! file no agent has open (a stopped agent's, or a backup copy). A running
//! agent checks its own on `GET /api/v1/audit/verify`.
//!
//! Exit codes: 0 intact, 1 broken (the first broken entry is named), 2 the
//! file could not be read.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the audit hash chain of a state file. Exit 0 intact, 1 broken, 2 unreadable.
    Verify {
        /// The state file (`state:` in agent.yaml); the agent must be stopped, or give a copy.
        #[arg(long, required_unless_present = "config", conflicts_with = "config")]
        state: Option<PathBuf>,
        /// Read the state file's path from this agent config instead.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { state, config, json } => {
            let path = match (state, config) {
                (Some(p), _) => p,
                (None, Some(c)) => match crate::runtime::load_config(&c) {
                    Ok(cfg) => cfg.state,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        return ExitCode::from(2);
                    }
                },
                (None, None) => unreachable!("clap requires one"),
            };
            verify(&path, json)
        }
    }
}

fn verify(path: &std::path::Path, json: bool) -> ExitCode {
    if !path.is_file() {
        eprintln!("error: {} is not a file", path.display());
        return ExitCode::from(2);
    }
    let verdict = match crate::store::audit::verify_file(path) {
        Ok(v) => v,
        Err(crate::store::StoreError::Open { source: redb::DatabaseError::DatabaseAlreadyOpen, .. }) => {
            eprintln!(
                "error: {} is open in a running agent: check a copy of it, or ask the agent (GET /api/v1/audit/verify)",
                path.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&verdict).expect("verdicts serialize"));
    } else if let Some(b) = &verdict.first_broken {
        println!("BROKEN: {} entries checked in {}", verdict.entries, path.display());
        println!(
            "first broken entry: #{} (seq {}, {} {} by {}): {}",
            b.index,
            b.seq.map_or("?".into(), |s| s.to_string()),
            b.at.as_deref().unwrap_or("?"),
            b.action.as_deref().unwrap_or("?"),
            b.actor.as_deref().unwrap_or("?"),
            b.reason
        );
    } else {
        print!("intact: {} entries", verdict.entries);
        if verdict.unchained > 0 {
            print!(" ({} written before the chain existed)", verdict.unchained);
        }
        if verdict.pruned > 0 {
            print!(", {} older ones pruned", verdict.pruned);
        }
        println!();
        if let Some(h) = &verdict.head {
            println!("head: seq {} at {} hash {}", h.seq, h.at, h.hash);
        }
    }
    if verdict.intact { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
