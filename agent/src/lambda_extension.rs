//! `slo-agent lambda-extension`: run as an AWS Lambda external extension.
//!
//! The agent registers with the Lambda Extensions API, starts its server,
//! subscribes to the Telemetry API with its `lambda-telemetry` source as the
//! destination, and then waits for lifecycle events. On `SHUTDOWN` it stops
//! gracefully: the counts of every batch the platform delivered are committed.
//!
//! The APIs live at `http://$AWS_LAMBDA_RUNTIME_API` (plain HTTP inside the
//! sandbox):
//!
//! 1. `POST /2020-01-01/extension/register` with `Lambda-Extension-Name` (the
//!    executable's file name) and `{"events": ["INVOKE", "SHUTDOWN"]}`; the
//!    answer's `Lambda-Extension-Identifier` header names this extension in
//!    every later call.
//! 2. `PUT /2022-07-01/telemetry` with the subscription: schema version
//!    `2022-12-13`, `platform` events, buffering, and an HTTP destination on
//!    `sandbox.localdomain`.
//! 3. `GET /2020-01-01/extension/event/next`, blocking until the next
//!    `INVOKE` or `SHUTDOWN`.
//!
//! A failure before the agent is ready is reported to
//! `POST /2020-01-01/extension/init/error`, so the function's init fails
//! with the reason instead of timing out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::clock::SystemClock;
use crate::config::AgentConfig;
use crate::source::SourceConfig;
use crate::source::push::PushKind;

/// Telemetry API schema version this agent reads.
pub const TELEMETRY_SCHEMA: &str = "2022-12-13";

/// Options of the extension mode.
#[derive(Debug, Clone)]
pub struct ExtensionOptions {
    /// `host:port` of the Runtime API (`$AWS_LAMBDA_RUNTIME_API`).
    pub runtime_api: String,
    /// The name to register under; Lambda requires the executable's file name.
    pub name: String,
    /// Host in the Telemetry API destination URI (`sandbox.localdomain` in Lambda).
    pub destination_host: String,
}

impl ExtensionOptions {
    /// Options from the environment Lambda gives extensions.
    pub fn from_env() -> anyhow::Result<ExtensionOptions> {
        let runtime_api = std::env::var("AWS_LAMBDA_RUNTIME_API")
            .context("AWS_LAMBDA_RUNTIME_API is not set: `lambda-extension` runs inside AWS Lambda")?;
        let name = std::env::args()
            .next()
            .as_deref()
            .and_then(|a| Path::new(a).file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "slo-agent".into());
        Ok(ExtensionOptions { runtime_api, name, destination_host: "sandbox.localdomain".into() })
    }
}

/// A response of the Runtime API.
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

/// One HTTP/1.1 call to the Runtime API. `timeout` bounds the whole call
/// (`None` for `event/next`, which blocks until Lambda has an event).
async fn call(
    api: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    timeout: Option<Duration>,
) -> anyhow::Result<Answer> {
    let work = async {
        let stream = tokio::net::TcpStream::connect(api).await.with_context(|| format!("connecting to {api}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        let conn = tokio::spawn(conn);
        let mut req = Request::builder().method(method.clone()).uri(path).header("host", api);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let resp = sender.send_request(req.body(Full::new(Bytes::from(body)))?).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        conn.abort();
        Ok::<_, anyhow::Error>(Answer { status: parts.status, headers: parts.headers, body })
    };
    let answer = match timeout {
        Some(t) => tokio::time::timeout(t, work).await.map_err(|_| anyhow::anyhow!("no answer within {t:?}"))??,
        None => work.await?,
    };
    Ok(answer)
}

/// The `lambda-telemetry` source the Telemetry API should deliver to.
fn telemetry_source(config: &AgentConfig) -> anyhow::Result<String> {
    let names: Vec<&str> = config
        .sources
        .iter()
        .filter_map(|s| match s {
            SourceConfig::Push { push } if push.kind == PushKind::LambdaTelemetry => Some(push.name.as_str()),
            _ => None,
        })
        .collect();
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!("lambda-extension needs exactly one source of type lambda-telemetry in the config; there is none"),
        _ => bail!("lambda-extension needs exactly one source of type lambda-telemetry; there are {}", names.len()),
    }
}

/// The Telemetry API subscription body.
pub fn subscription(destination: &str) -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": TELEMETRY_SCHEMA,
        "types": ["platform"],
        "buffering": {"maxItems": 1000, "maxBytes": 262_144, "timeoutMs": 100},
        "destination": {"protocol": "HTTP", "URI": destination},
    })
}

/// Register, serve, subscribe, and run until Lambda sends `SHUTDOWN`.
pub async fn run(config: AgentConfig, opts: ExtensionOptions) -> anyhow::Result<()> {
    let api = opts.runtime_api.clone();
    let reg = call(
        &api,
        Method::POST,
        "/2020-01-01/extension/register",
        &[("Lambda-Extension-Name", opts.name.as_str())],
        br#"{"events":["INVOKE","SHUTDOWN"]}"#.to_vec(),
        Some(Duration::from_secs(10)),
    )
    .await
    .context("registering with the Lambda Extensions API")?;
    if reg.status != StatusCode::OK {
        bail!("the Extensions API refused the registration: {} {}", reg.status, String::from_utf8_lossy(&reg.body));
    }
    let id = reg
        .headers
        .get("Lambda-Extension-Identifier")
        .and_then(|v| v.to_str().ok())
        .context("the registration answer has no Lambda-Extension-Identifier")?
        .to_string();
    tracing::info!(name = %opts.name, "registered as a Lambda extension");

    // From here on, a failure is reported to Lambda as an init error.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = async {
        let source = telemetry_source(&config)?;
        let port = config.listen.port();
        let server = tokio::spawn(crate::runtime::run(config, Arc::new(SystemClock), async move {
            let _ = stopped.await;
        }));
        // Wait until the server answers before asking Lambda to send to it.
        let local = format!("127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..200 {
            if server.is_finished() {
                break;
            }
            if let Ok(a) = call(&local, Method::GET, "/readyz", &[], Vec::new(), Some(Duration::from_secs(1))).await
                && a.status == StatusCode::OK
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if !ready {
            if server.is_finished() {
                return match server.await {
                    Ok(Err(e)) => Err(e),
                    _ => Err(anyhow::anyhow!("the agent stopped while starting")),
                };
            }
            bail!("the agent did not become ready within 5 s");
        }
        let destination = format!("http://{}:{port}/ingest/lambda-telemetry/{source}", opts.destination_host);
        let sub = call(
            &api,
            Method::PUT,
            "/2022-07-01/telemetry",
            &[("Lambda-Extension-Identifier", id.as_str())],
            subscription(&destination).to_string().into_bytes(),
            Some(Duration::from_secs(10)),
        )
        .await
        .context("subscribing to the Telemetry API")?;
        if sub.status != StatusCode::OK {
            bail!("the Telemetry API refused the subscription: {} {}", sub.status, String::from_utf8_lossy(&sub.body));
        }
        tracing::info!(%destination, "subscribed to the Lambda Telemetry API");
        Ok::<_, anyhow::Error>(server)
    }
    .await;
    let server = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = call(
                &api,
                Method::POST,
                "/2020-01-01/extension/init/error",
                &[
                    ("Lambda-Extension-Identifier", id.as_str()),
                    ("Lambda-Extension-Function-Error-Type", "Extension.Init"),
                ],
                serde_json::json!({"errorMessage": format!("{e:#}"), "errorType": "Extension.Init"})
                    .to_string()
                    .into_bytes(),
                Some(Duration::from_secs(5)),
            )
            .await;
            return Err(e);
        }
    };

    loop {
        let next = call(
            &api,
            Method::GET,
            "/2020-01-01/extension/event/next",
            &[("Lambda-Extension-Identifier", id.as_str())],
            Vec::new(),
            None,
        )
        .await;
        let event = match next {
            Ok(a) if a.status == StatusCode::OK => a,
            Ok(a) => {
                tracing::error!(status = %a.status, "event/next failed; stopping");
                break;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "event/next failed; stopping");
                break;
            }
        };
        let v: serde_json::Value = serde_json::from_slice(&event.body).unwrap_or_default();
        match v.get("eventType").and_then(|t| t.as_str()) {
            Some("SHUTDOWN") => {
                tracing::info!(reason = ?v.get("shutdownReason"), "Lambda is shutting the environment down");
                break;
            }
            Some(_) => {}
            None => tracing::warn!("event/next answered without an eventType"),
        }
    }
    let _ = stop.send(());
    server.await.context("the agent task")??;
    Ok(())
}

/// `slo-agent lambda-extension --config FILE`.
pub fn run_from_file(path: &Path) -> anyhow::Result<()> {
    crate::telemetry::init_logging();
    let config = crate::runtime::load_config(path)?;
    let opts = ExtensionOptions::from_env()?;
    crate::runtime::block_on(run(config, opts))?
}
