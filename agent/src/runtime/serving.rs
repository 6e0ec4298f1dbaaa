//! The HTTP server: hyper connections with a header-read timeout (which also
//! closes keep-alive connections that stay idle that long), a cap on open
//! connections, a cap on requests in flight per route class, and a graceful
//! shutdown the runtime bounds in time; with `api.tls`, a TLS handshake
//! first ([`super::tls`]), in the connection's own task and within the
//! header-read timeout, so a slow client holds one connection slot and never
//! the accept loop.
//!
//! Route classes: `probe` (`/healthz`, `/readyz`: never capped, so a probe
//! gets through a flood), `push` (`/ingest/…`, `/v1/traces`), `metrics`
//! (`/metrics`) and `api` (everything else). A request over its class's cap
//! is answered 503 with `Retry-After` before any handler runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

pub use crate::config::HttpLimits;
use crate::telemetry::Telemetry;
use crate::telemetry::events::{HttpRefused, TlsHandshakeFailed};

use super::tls::ServerTls;

/// The class of a request path.
pub fn class_of(path: &str) -> &'static str {
    match path {
        "/healthz" | "/readyz" => "probe",
        "/metrics" => "metrics",
        "/v1/traces" => "push",
        p if p.starts_with("/ingest/") => "push",
        _ => "api",
    }
}

/// Per-class caps on requests in flight.
#[derive(Debug, Clone)]
pub struct ClassLimits {
    api: Arc<Semaphore>,
    metrics: Arc<Semaphore>,
    push: Arc<Semaphore>,
    telemetry: Arc<Telemetry>,
}

impl ClassLimits {
    pub fn new(limits: &HttpLimits, telemetry: Arc<Telemetry>) -> ClassLimits {
        ClassLimits {
            api: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            metrics: Arc::new(Semaphore::new((limits.max_in_flight / 4).max(2))),
            push: Arc::new(Semaphore::new((limits.max_push_in_flight * 4).max(4))),
            telemetry,
        }
    }
}

fn busy(class: &'static str) -> Response {
    let mut r = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({"error": format!("too many {class} requests in flight; retry shortly")})),
    )
        .into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Middleware: a permit of the request's class, or 503.
pub async fn limit_in_flight(
    axum::extract::State(limits): axum::extract::State<ClassLimits>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let class = class_of(req.uri().path());
    let sem = match class {
        "probe" => return next.run(req).await,
        "metrics" => &limits.metrics,
        "push" => &limits.push,
        _ => &limits.api,
    };
    let Ok(_permit) = sem.clone().try_acquire_owned() else {
        HttpRefused { class, reason: "busy" }.emit(&limits.telemetry);
        return busy(class);
    };
    next.run(req).await
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Serve `app` on `listener` until `stop` turns true; then stop accepting,
/// ask every connection to finish its request and close, and return when
/// they all did. The caller bounds the wait (and drops this future to close
/// what is left). With `tls`, every connection is TLS: one whose handshake
/// fails or takes longer than the header-read timeout is closed unanswered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: HttpLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
    telemetry: Arc<Telemetry>,
    tls: Option<ServerTls>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut open = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = open.join_next(), if !open.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    HttpRefused { class: "connection", reason: "too_many_connections" }.emit(&telemetry);
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone().layer(axum::Extension(ConnectInfo::<SocketAddr>(peer)));
                let mut stopping = stop.clone();
                // The configuration current now: a reload serves the next connection.
                let acceptor = tls.as_ref().map(ServerTls::acceptor);
                let telemetry = telemetry.clone();
                open.spawn(async move {
                    let _permit = permit;
                    let Some(acceptor) = acceptor else {
                        return serve_connection(TokioIo::new(stream), app, limits, stopping).await;
                    };
                    let stream = tokio::select! {
                        s = handshake(acceptor, stream, limits.header_read_timeout, &telemetry) => s,
                        _ = stopped(&mut stopping) => return,
                    };
                    let Some(stream) = stream else { return };
                    serve_connection(TokioIo::new(stream), app, limits, stopping).await
                });
            }
        }
    }
    drop(listener);
    while open.join_next().await.is_some() {}
}

/// The TLS handshake of one connection, within `timeout`; `None` (counted)
/// when it failed or took too long: the connection is then closed unanswered.
async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    timeout: Duration,
    telemetry: &Telemetry,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            TlsHandshakeFailed { reason: "error", error: &e.to_string() }.emit(telemetry);
            None
        }
        Err(_) => {
            TlsHandshakeFailed { reason: "timeout", error: "not done within http.header_read_timeout" }.emit(telemetry);
            None
        }
    }
}

/// HTTP/1.1 on one connection (plain or after the TLS handshake) until it
/// closes, or until `stopping`: then its request in progress finishes and
/// the connection closes.
async fn serve_connection<I>(
    io: TokioIo<I>,
    app: Router,
    limits: HttpLimits,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(&mut stopping) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fall_into_classes() {
        for (path, class) in [
            ("/healthz", "probe"),
            ("/readyz", "probe"),
            ("/metrics", "metrics"),
            ("/ingest/firehose/edge", "push"),
            ("/v1/traces", "push"),
            ("/api/v1/slos", "api"),
            ("/nope", "api"),
        ] {
            assert_eq!(class_of(path), class, "{path}");
        }
    }
}
