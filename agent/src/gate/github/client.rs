//! Delivering a review to GitHub as the App: a JWT signed with the App's
//! key buys an installation token (`POST {api_url}/app/installations/{id}/access_tokens`),
//! kept until shortly before it expires; the token authenticates the review
//! (`POST` to the callback URL). Network errors, timeouts, 408, 429 and 5xx
//! are retried with backoff, [`MAX_ATTEMPTS`] tries in all; a 401 of the
//! review drops the cached token first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::GithubConfig;
use crate::clock::Clock;
use crate::secret::Secret;

/// Tries of one review, token exchange included.
pub const MAX_ATTEMPTS: u32 = 5;
/// Reviews accepted and not yet delivered; more webhooks are answered 503.
pub const MAX_PENDING: usize = 64;
/// Reviews being delivered at once.
pub const MAX_SENDING: usize = 4;
/// One request to GitHub.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A token is not used in its last five minutes.
const TOKEN_MARGIN_MS: i64 = 5 * 60_000;
/// Installations whose token is kept.
const MAX_CACHED_TOKENS: usize = 256;
/// GitHub's REST API version the requests are written for.
pub const API_VERSION: &str = "2022-11-28";

/// Why a review was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Not worth trying again (a 4xx, an unknown installation).
    #[error("{0}")]
    Refused(String),
    /// Every try failed on something passing (the last one's reason).
    #[error("gave up after {MAX_ATTEMPTS} tries: {0}")]
    GaveUp(String),
}

/// The App, as the agent runs it: its config, an HTTP client, the
/// installation tokens it holds, and the bounds on reviews in flight.
pub struct GithubApp {
    pub config: GithubConfig,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    tokens: Mutex<HashMap<u64, (Secret, i64)>>,
    /// Permits for accepted reviews ([`MAX_PENDING`]).
    pub pending: Arc<tokio::sync::Semaphore>,
    /// Permits for deliveries in progress ([`MAX_SENDING`]).
    pub sending: tokio::sync::Semaphore,
    /// The first retry's wait; doubled at each retry.
    pub backoff: Duration,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp").field("app_id", &self.config.app_id).field("api_url", &self.config.api_url).finish()
    }
}

/// One failed try.
enum Try {
    Again(String),
    Stop(String),
}

impl GithubApp {
    pub fn new(config: GithubConfig, clock: Arc<dyn Clock>) -> GithubApp {
        let http = reqwest::Client::builder()
            // A redirect could carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("slo-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("the HTTP client builds with static settings");
        GithubApp {
            config,
            clock,
            http,
            tokens: Mutex::default(),
            pending: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING)),
            sending: tokio::sync::Semaphore::new(MAX_SENDING),
            backoff: Duration::from_secs(1),
        }
    }

    /// Post `body` (`{environment_name, state, comment}`) to the review URL
    /// (checked with [`super::callback_target`]) for `installation`.
    /// Returns the tries it took.
    pub async fn send_review(
        &self,
        installation: u64,
        url: &reqwest::Url,
        body: &serde_json::Value,
    ) -> Result<u32, ReviewError> {
        let mut wait = self.backoff;
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            match self.try_review(installation, url, body).await {
                Ok(()) => return Ok(attempt),
                Err(Try::Stop(why)) => return Err(ReviewError::Refused(why)),
                Err(Try::Again(why)) => {
                    tracing::debug!(installation, attempt, error = %why, "GitHub review not delivered; trying again");
                    last = why;
                }
            }
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
        Err(ReviewError::GaveUp(last))
    }

    async fn try_review(&self, installation: u64, url: &reqwest::Url, body: &serde_json::Value) -> Result<(), Try> {
        let token = self.installation_token(installation).await?;
        let resp = self
            .http
            .post(url.clone())
            .timeout(REQUEST_TIMEOUT)
            .bearer_auth(token.expose())
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .json(body)
            .send()
            .await
            .map_err(|e| Try::Again(format!("the review: {}", e.without_url())))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let text = answer_text(resp).await;
        if status == 401 {
            // Revoked or expired early: a new token may do.
            self.tokens.lock().unwrap_or_else(|e| e.into_inner()).remove(&installation);
            return Err(Try::Again(format!("the review: HTTP 401 {text}")));
        }
        Err(classify(status, format!("the review: HTTP {status} {text}")))
    }

    /// The installation's token: the cached one, or a new one for a JWT.
    async fn installation_token(&self, installation: u64) -> Result<Secret, Try> {
        let now = self.clock.now_ms();
        if let Some((token, until)) = self.tokens.lock().unwrap_or_else(|e| e.into_inner()).get(&installation)
            && *until > now
        {
            return Ok(token.clone());
        }
        let jwt = self.config.key.jwt(&self.config.app_id, now);
        let url = format!("{}/app/installations/{installation}/access_tokens", self.config.api_url);
        let resp = self
            .http
            .post(url)
            .timeout(REQUEST_TIMEOUT)
            .bearer_auth(jwt)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .send()
            .await
            .map_err(|e| Try::Again(format!("the installation token: {}", e.without_url())))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let text = answer_text(resp).await;
            return Err(classify(status, format!("the installation token: HTTP {status} {text}")));
        }
        #[derive(serde::Deserialize)]
        struct Issued {
            token: String,
            #[serde(default)]
            expires_at: Option<String>,
        }
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT, resp.bytes())
            .await
            .map_err(|_| Try::Again("the installation token: the answer timed out".into()))?
            .map_err(|e| Try::Again(format!("the installation token: {}", e.without_url())))?;
        let issued: Issued = serde_json::from_slice(&bytes)
            .map_err(|e| Try::Stop(format!("the installation token: not GitHub's answer: {e}")))?;
        let token = Secret::new(issued.token);
        let expires = issued.expires_at.and_then(|t| t.parse::<jiff::Timestamp>().ok()).map(|t| t.as_millisecond());
        if let Some(until) = expires.map(|e| e - TOKEN_MARGIN_MS).filter(|u| *u > now) {
            let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if tokens.len() >= MAX_CACHED_TOKENS {
                tokens.retain(|_, (_, u)| *u > now);
                if tokens.len() >= MAX_CACHED_TOKENS {
                    tokens.clear();
                }
            }
            tokens.insert(installation, (token.clone(), until));
        }
        Ok(token)
    }
}

/// 408, 429 and 5xx may pass; any other status will not.
fn classify(status: u16, message: String) -> Try {
    if status == 408 || status == 429 || status >= 500 { Try::Again(message) } else { Try::Stop(message) }
}

/// At most 200 characters of GitHub's answer, on one line (GitHub explains
/// its refusals in `message`).
async fn answer_text(resp: reqwest::Response) -> String {
    let body = tokio::time::timeout(REQUEST_TIMEOUT, resp.bytes()).await.ok().and_then(Result::ok).unwrap_or_default();
    super::one_line(&String::from_utf8_lossy(&body), 200)
}
