//! The AWS SDK plumbing the pull sources share: configuration, a runtime to
//! block on, error kinds, backoff.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::source::aws::config::AwsConnection;

/// A runtime of the source's own and the SDK configuration it made.
pub(crate) struct Sdk {
    rt: tokio::runtime::Runtime,
    pub config: SdkConfig,
    timeout: Duration,
}

impl Sdk {
    /// Resolve region, endpoint and credentials provider: the config's
    /// overrides first, the standard AWS chain for the rest. Credentials
    /// themselves are fetched (and refreshed) lazily by the first call.
    pub fn new(conn: &AwsConnection) -> std::io::Result<Sdk> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let config = rt.block_on(load(conn));
        Ok(Sdk { rt, config, timeout: conn.timeout })
    }

    /// Run one SDK call to completion, or give up after the call timeout
    /// (plus a second, should the SDK's own timeout not fire).
    pub fn call<F: Future>(&self, f: F) -> Option<F::Output> {
        self.rt.block_on(async { tokio::time::timeout(self.timeout + Duration::from_secs(1), f).await.ok() })
    }
}

/// The SDK configuration for `conn`: the config's overrides first, the
/// standard AWS chain for the rest. Credentials themselves are fetched (and
/// refreshed) lazily by the first call. No retries inside a call: the
/// caller backs off between calls (a source between polls, an exporter
/// until its next interval), so one call stays short and a throttled API
/// gets room.
pub(crate) async fn load(conn: &AwsConnection) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(conn.timeout.min(Duration::from_secs(3)))
        .operation_timeout(conn.timeout)
        .build();
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::disabled()).timeout_config(timeouts);
    if let Some(r) = &conn.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(u) = &conn.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    if let Some(p) = &conn.profile {
        loader = loader.profile_name(p);
    }
    if let Some(c) = &conn.credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            c.session_token.clone(),
            None,
            "slo-agent config",
        ));
    }
    loader.load().await
}

/// What went wrong with a call, from a bounded set (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    Throttled,
    NotFound,
    AccessDenied,
    Timeout,
    Connection,
    /// The request was refused as malformed (a bug, or a bad config value).
    Invalid,
    /// An object too large to read, or a body that would not decompress.
    BadObject,
    Other,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::Invalid => "invalid",
            ErrorKind::BadObject => "bad_object",
            ErrorKind::Other => "other",
        }
    }

    fn of_code(code: &str) -> ErrorKind {
        match code {
            "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "SlowDown"
            | "LimitExceededException"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "RequestThrottled" => ErrorKind::Throttled,
            "ResourceNotFoundException" | "ResourceNotFound" | "NoSuchBucket" | "NoSuchKey" | "NotFound" => {
                ErrorKind::NotFound
            }
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "MissingAuthenticationToken" => ErrorKind::AccessDenied,
            "InvalidParameterException"
            | "InvalidParameterValue"
            | "InvalidParameterCombination"
            | "ValidationError"
            | "ValidationException"
            | "InvalidArgument"
            | "MissingParameter" => ErrorKind::Invalid,
            _ => ErrorKind::Other,
        }
    }
}

/// A failed call: its kind and the whole error chain as text.
#[derive(Debug, Clone)]
pub struct CallError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CallError {
    pub fn timed_out() -> CallError {
        CallError { kind: ErrorKind::Timeout, message: "the call did not finish in time".into() }
    }

    pub fn from_sdk<E>(e: &SdkError<E, HttpResponse>) -> CallError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let kind = match e {
            SdkError::TimeoutError(_) => ErrorKind::Timeout,
            SdkError::DispatchFailure(d) if d.is_timeout() => ErrorKind::Timeout,
            SdkError::DispatchFailure(_) => ErrorKind::Connection,
            SdkError::ConstructionFailure(_) => ErrorKind::Invalid,
            // An answer without a code the SDK could read (a proxy's or an
            // emulator's page): its HTTP status still says what happened.
            _ => match (e.code(), e.raw_response().map(|r| r.status().as_u16())) {
                (Some(code), _) => ErrorKind::of_code(code),
                (None, Some(401 | 403)) => ErrorKind::AccessDenied,
                (None, Some(429)) => ErrorKind::Throttled,
                (None, Some(404)) => ErrorKind::NotFound,
                (None, _) => ErrorKind::Other,
            },
        };
        CallError { kind, message: DisplayErrorContext(e).to_string() }
    }
}

/// Exponential backoff with jitter after failed calls: 1 s, 2 s, 4 s, … up
/// to 5 minutes, each drawn from the upper half of its interval so that
/// agents started together do not call together.
#[derive(Debug)]
pub struct Backoff {
    failures: u32,
    until: Option<Instant>,
    rng: SmallRng,
}

const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

impl Backoff {
    pub fn new(seed: u64) -> Backoff {
        Backoff { failures: 0, until: None, rng: SmallRng::seed_from_u64(seed) }
    }

    /// Whether the source must not call yet.
    pub fn waiting(&self) -> bool {
        self.until.is_some_and(|u| Instant::now() < u)
    }

    /// Record a failure; returns how long to wait.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = BACKOFF_BASE.saturating_mul(1u32 << (self.failures - 1).min(16)).min(BACKOFF_MAX);
        let ms = exp.as_millis() as u64;
        let wait = Duration::from_millis(self.rng.random_range(ms / 2..=ms));
        self.until = Some(Instant::now() + wait);
        wait
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.until = None;
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// A seed for a source's backoff jitter: differs between sources and runs.
pub(crate) fn jitter_seed(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ (std::process::id() as u64).rotate_left(32)
}

/// Log a failed call once, with what the source will do next.
pub(crate) fn log_failure(source: &str, what: &str, e: &CallError, wait: Duration, failures: u32) {
    let wait_s = wait.as_secs_f64();
    match e.kind {
        ErrorKind::NotFound | ErrorKind::AccessDenied | ErrorKind::Invalid => tracing::error!(
            source,
            target_resource = what,
            kind = e.kind.as_str(),
            error = %e.message,
            retry_in_s = wait_s,
            failures,
            "AWS call failed; the source keeps its position and tries again after a backoff"
        ),
        _ => tracing::warn!(
            source,
            target_resource = what,
            kind = e.kind.as_str(),
            error = %e.message,
            retry_in_s = wait_s,
            failures,
            "AWS call failed; backing off"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_resets() {
        let mut b = Backoff::new(7);
        let waits: Vec<Duration> = (0..12).map(|_| b.failed()).collect();
        assert!(b.waiting());
        assert!(waits[0] >= Duration::from_millis(500) && waits[0] <= Duration::from_secs(1), "{waits:?}");
        assert!(waits[3] >= Duration::from_secs(4) && waits[3] <= Duration::from_secs(8), "{waits:?}");
        assert!(waits.iter().all(|w| *w <= BACKOFF_MAX), "{waits:?}");
        assert!(waits[11] >= BACKOFF_MAX / 2, "{waits:?}");
        b.succeeded();
        assert!(!b.waiting());
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn error_codes_fold_into_kinds() {
        assert_eq!(ErrorKind::of_code("ThrottlingException"), ErrorKind::Throttled);
        assert_eq!(ErrorKind::of_code("SlowDown"), ErrorKind::Throttled);
        assert_eq!(ErrorKind::of_code("NoSuchBucket"), ErrorKind::NotFound);
        assert_eq!(ErrorKind::of_code("ResourceNotFoundException"), ErrorKind::NotFound);
        assert_eq!(ErrorKind::of_code("AccessDeniedException"), ErrorKind::AccessDenied);
        assert_eq!(ErrorKind::of_code("SomethingNew"), ErrorKind::Other);
    }
}
