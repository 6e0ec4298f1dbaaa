//! Sources that pull from AWS with the AWS SDK for Rust: CloudWatch Logs
//! (`cloudwatch_logs.rs`), CloudWatch metrics (`cloudwatch_metrics.rs`),
//! log objects in S3 (`s3.rs`) and X-Ray traces (`xray.rs`). This file holds what they share: the SDK
//! configuration (region, endpoint, credentials: the standard chain unless the
//! config overrides them), a small runtime of their own, error kinds and the
//! backoff after failures.
//!
//! The ingest thread is synchronous, so each source owns a current-thread
//! tokio runtime and blocks on it for the length of one bounded poll. The
//! runtime and the clients are made on the first poll, on the ingest thread,
//! never while the daemon's own runtime is starting.
//!
//! **Architecture invariant:** an AWS source never panics on what AWS answers
//! and never retries inside a poll: a failed call ends the poll with the
//! position where it was (so nothing is counted twice) and the source waits
//! out an exponential backoff with jitter before it calls again.
//!
//! Everything that needs the SDK is behind the `aws` cargo feature; without
//! it [`build`] refuses (and the config already did).

use std::sync::Arc;

use crate::clock::Clock;
use crate::source::Source;
use crate::source::aws::config::AwsSourceConfig;

#[cfg(feature = "aws")]
pub mod cloudwatch_logs;
#[cfg(feature = "aws")]
pub mod cloudwatch_metrics;
pub mod config;
pub mod iam;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "aws")]
pub(crate) mod sdk;
#[cfg(feature = "aws")]
pub mod xray;

#[cfg(feature = "aws")]
pub use sdk::{Backoff, CallError, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum AwsSourceError {
    #[error("source {source_name}: this build has no AWS support; build with --features aws")]
    NotBuilt { source_name: String },
    #[error("source {source_name}: corrupt checkpoint: {message}")]
    Checkpoint { source_name: String, message: String },
    #[error("source {source_name}: {message}")]
    Config { source_name: String, message: String },
}

/// The running source for an AWS source config, resumed from `checkpoint`.
/// `clock` is the agent's: it decides which minutes and windows are old
/// enough to read.
pub fn build(
    cfg: &AwsSourceConfig,
    checkpoint: Option<&[u8]>,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn Source>, AwsSourceError> {
    #[cfg(feature = "aws")]
    {
        Ok(match cfg {
            AwsSourceConfig::CloudWatchLogs(c) => {
                Box::new(cloudwatch_logs::CloudWatchLogsSource::new(c.clone(), checkpoint, clock)?)
            }
            AwsSourceConfig::CloudWatchMetrics(c) => {
                Box::new(cloudwatch_metrics::CloudWatchMetricsSource::new(c.clone(), checkpoint, clock)?)
            }
            AwsSourceConfig::S3(c) => Box::new(s3::S3Source::new(c.clone(), checkpoint, clock)?),
            AwsSourceConfig::XRay(c) => Box::new(xray::XRaySource::new(c.clone(), checkpoint, clock)?),
        })
    }
    #[cfg(not(feature = "aws"))]
    {
        let _ = (checkpoint, clock);
        Err(AwsSourceError::NotBuilt { source_name: cfg.name().to_string() })
    }
}

/// Parse a JSON checkpoint, or start from `T::default()` without one.
#[cfg(feature = "aws")]
pub(crate) fn read_checkpoint<T: serde::de::DeserializeOwned + Default>(
    name: &str,
    checkpoint: Option<&[u8]>,
) -> Result<T, AwsSourceError> {
    match checkpoint {
        None => Ok(T::default()),
        Some(bytes) => serde_json::from_slice(bytes)
            .map_err(|e| AwsSourceError::Checkpoint { source_name: name.to_string(), message: e.to_string() }),
    }
}
