//! One attempt of a probe: DNS, TCP connect, TLS handshake, the request and
//! the response on a connection opened for it, and again for each redirect.
//!
//! Every phase boundary is an instant taken here, around hyper's connection
//! API (`hyper::client::conn`) on a socket this module opens, so nothing is
//! pooled or reused and each instant is where blackbox_exporter's
//! `httptrace` hooks fire: `resolve` ends where Go's `ConnectStart` fires,
//! `connect` at `ConnectDone`, `tls` at the end of the handshake, the
//! connection is "ready" (Go's `GotConn`) then, `processing` ends when the
//! response head has been read and `transfer` when the body has.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http_body_util::BodyExt as _;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::{Host, Position, Url};

use super::dns::Resolver;
use super::tls::{Trust, version_name};
use super::{Attempt, HttpVersion, KeptResponse, ProbeSpec, RequestFailure, TlsInfo, assert};

/// Runs one attempt; never fails, the failure is in the [`Attempt`].
pub(super) async fn attempt(spec: &ProbeSpec, resolver: &Resolver, trust: &Trust) -> Attempt {
    let mut att = Attempt { content_length: -1, ..Attempt::default() };
    let mut phase = "resolve";
    let start = Instant::now();
    let result = tokio::time::timeout(spec.timeout, requests(spec, resolver, trust, &mut att, &mut phase)).await;
    att.duration = start.elapsed();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => att.failure = Some(failure),
        Err(_) => att.failure = Some(RequestFailure::Timeout { phase, timeout_ms: spec.timeout.as_millis() }),
    }
    if att.failure.is_none() {
        att.failed_assertions.extend(assert::check_connection(&spec.assertions, att.ssl, att.duration));
    }
    att
}

/// The requests of one attempt: the first, and one per redirect followed.
async fn requests(
    spec: &ProbeSpec,
    resolver: &Resolver,
    trust: &Trust,
    att: &mut Attempt,
    phase: &mut &'static str,
) -> Result<(), RequestFailure> {
    let mut url = spec.url.clone();
    let mut method = spec.method.clone();
    let mut body = spec.body.clone();
    let mut first = true;
    let first_host = spec.url.host().map(|h| h.to_owned());
    loop {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(RequestFailure::Url(format!("scheme `{other}` is not http or https"))),
        };
        let host = url.host().ok_or_else(|| RequestFailure::Url("no host".into()))?.to_owned();
        let port = url.port_or_known_default().ok_or_else(|| RequestFailure::Url("no port".into()))?;
        // A TLS server name or Host header set for the probe's host is not
        // sent to another host a redirect leads to.
        let same_host = first_host.as_ref() == Some(&host);

        *phase = "resolve";
        let t_start = Instant::now();
        let ip = match &host {
            Host::Domain(name) => {
                resolver.resolve(name, spec.preferred_ip, spec.ip_fallback).await.map_err(RequestFailure::Resolve)?
            }
            Host::Ipv4(a) => IpAddr::V4(*a),
            Host::Ipv6(a) => IpAddr::V6(*a),
        };
        let t_resolved = Instant::now();
        att.phases.resolve += t_resolved - t_start;
        if first {
            att.dns_lookup = t_resolved - t_start;
            att.ip = Some(ip);
        }

        *phase = "connect";
        let addr = SocketAddr::new(ip, port);
        let tcp = TcpStream::connect(addr).await.map_err(|e| RequestFailure::Connect(format!("{addr}: {e}")))?;
        let t_connected = Instant::now();
        att.phases.connect += t_connected - t_resolved;
        // The request goes out in one write; Nagle would hold a body back.
        let _ = tcp.set_nodelay(true);

        let mut alpn_h2 = false;
        let stream = if https {
            *phase = "tls";
            let (config, recorded) = trust.client_config(spec.http_version).map_err(RequestFailure::Tls)?;
            let name = match (trust.server_name().filter(|_| same_host), &host) {
                (Some(n), _) => rustls::pki_types::ServerName::try_from(n.to_string()),
                (None, Host::Domain(d)) => rustls::pki_types::ServerName::try_from(d.clone()),
                (None, _) => Ok(rustls::pki_types::ServerName::from(ip)),
            }
            .map_err(|e| RequestFailure::Tls(format!("server name: {e}")))?;
            let handshake = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await;
            att.phases.tls += Instant::now() - t_connected;
            let chain = recorded.take();
            match handshake {
                Ok(tls) => {
                    let conn = tls.get_ref().1;
                    alpn_h2 = conn.alpn_protocol() == Some(b"h2");
                    let (chain, verified, problems) = chain.unwrap_or_default();
                    att.tls = Some(TlsInfo {
                        version: conn.protocol_version().map(version_name).unwrap_or_default(),
                        cipher: conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default(),
                        alpn: conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
                        verified,
                        chain,
                        problems,
                    });
                    Stream::Tls(Box::new(tls))
                }
                Err(e) => {
                    if let Some((chain, verified, problems)) = chain {
                        let info = TlsInfo {
                            version: String::new(),
                            cipher: String::new(),
                            alpn: None,
                            verified,
                            chain,
                            problems,
                        };
                        att.tls = Some(info);
                    }
                    return Err(RequestFailure::Tls(e.to_string()));
                }
            }
        } else {
            att.tls = None;
            Stream::Plain(tcp)
        };
        att.ssl = https;

        *phase = "processing";
        let ready = Instant::now();
        let last_write = Arc::new(Mutex::new(None));
        let io = TokioIo::new(Marked { inner: stream, last_write: last_write.clone() });
        let h2 = match spec.http_version {
            HttpVersion::Http2 => true,
            HttpVersion::Http1 => false,
            HttpVersion::Auto => alpn_h2,
        };
        let request = build_request(spec, &url, &method, body.as_deref(), h2, same_host)?;
        let http_err = |e: hyper::Error| RequestFailure::Http(with_causes(&e));
        let (response, _conn) = if h2 {
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.map_err(http_err)?;
            let conn = AbortOnDrop(tokio::spawn(conn));
            (send.send_request(request).await.map_err(http_err)?, conn)
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.map_err(http_err)?;
            let conn = AbortOnDrop(tokio::spawn(conn));
            (send.send_request(request).await.map_err(http_err)?, conn)
        };
        let t_head = Instant::now();
        att.phases.processing += t_head - ready;
        att.request_written = last_write.lock().unwrap_or_else(|p| p.into_inner()).map(|w: Instant| w - ready);

        let status = response.status().as_u16();
        if spec.follow_redirects
            && matches!(status, 301 | 302 | 303 | 307 | 308)
            && let Some(location) = response.headers().get(hyper::header::LOCATION)
        {
            if att.redirects >= spec.max_redirects {
                return Err(RequestFailure::TooManyRedirects(spec.max_redirects));
            }
            let location = location.to_str().map_err(|_| RequestFailure::Http("Location is not text".into()))?;
            url = url.join(location).map_err(|e| RequestFailure::Http(format!("Location: {e}")))?;
            att.redirects += 1;
            if status == 303 || (matches!(status, 301 | 302) && method == "POST") {
                method = "GET".into();
                body = None;
            }
            first = false;
            continue;
        }

        let (parts, mut response_body) = response.into_parts();
        att.status = Some(status);
        att.http_version = Some(version_text(parts.version).to_string());
        att.content_length = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<i64>().ok())
            .unwrap_or(-1);
        att.last_modified = parts
            .headers
            .get(hyper::header::LAST_MODIFIED)
            .and_then(|v| jiff::fmt::rfc2822::parse(v.to_str().ok()?).ok())
            .map(|z| z.timestamp().as_second());

        *phase = "transfer";
        let keep = spec.assertions.needs_body() || spec.keep_response;
        let mut kept = Vec::new();
        let mut read: u64 = 0;
        while let Some(frame) = response_body.frame().await {
            let frame = frame.map_err(|e| RequestFailure::Http(format!("reading the body: {}", with_causes(&e))))?;
            if let Ok(data) = frame.into_data() {
                read += data.len() as u64;
                if read > spec.max_body_bytes {
                    return Err(RequestFailure::BodyTooLarge(spec.max_body_bytes));
                }
                if keep {
                    kept.extend_from_slice(&data);
                }
            }
        }
        att.phases.transfer += Instant::now() - t_head;
        att.body_bytes = read;
        let facts = assert::Response {
            status,
            headers: &parts.headers,
            body: &kept,
            http_version: version_text(parts.version),
        };
        att.failed_assertions = assert::check_response(&spec.assertions, &facts);
        if spec.keep_response {
            let headers = parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            att.response = Some(KeptResponse { url: url.to_string(), headers, body: kept });
        }
        return Ok(());
    }
}

/// An error and its causes (hyper's own text is often just "http2 error").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// blackbox's spelling (Go's `resp.Proto`).
fn version_text(v: hyper::Version) -> &'static str {
    match v {
        hyper::Version::HTTP_09 => "HTTP/0.9",
        hyper::Version::HTTP_10 => "HTTP/1.0",
        hyper::Version::HTTP_11 => "HTTP/1.1",
        hyper::Version::HTTP_2 => "HTTP/2.0",
        hyper::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

fn build_request(
    spec: &ProbeSpec,
    url: &Url,
    method: &str,
    body: Option<&str>,
    h2: bool,
    same_host: bool,
) -> Result<hyper::Request<http_body_util::Full<Bytes>>, RequestFailure> {
    // HTTP/1.1 takes the origin form and a Host header; HTTP/2 the absolute
    // form, from which hyper makes `:scheme` and `:authority`.
    let target = if h2 { &url[..Position::AfterQuery] } else { &url[Position::BeforePath..Position::AfterQuery] };
    let mut builder = hyper::Request::builder().method(method).uri(target).version(if h2 {
        hyper::Version::HTTP_2
    } else {
        hyper::Version::HTTP_11
    });
    let is_host = |name: &str| name.eq_ignore_ascii_case("host");
    let has = |name: &str| spec.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let own_host = same_host && has("host");
    if !h2 && !own_host {
        builder = builder.header(hyper::header::HOST, &url[Position::BeforeHost..Position::AfterPort]);
    }
    if !has("user-agent") {
        builder = builder.header(hyper::header::USER_AGENT, concat!("slo-agent/", env!("CARGO_PKG_VERSION")));
    }
    for (name, value) in &spec.headers {
        if is_host(name) && (h2 || !same_host) {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = Bytes::from(body.unwrap_or_default().to_owned());
    // The error names the part that is wrong, never a header's value.
    builder.body(http_body_util::Full::new(body)).map_err(|e| RequestFailure::Http(format!("the request: {e}")))
}

/// The connection's task, ended with the request (the connection is the probe's alone).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// The connection, noting when the request's last bytes were handed to it.
struct Marked {
    inner: Stream,
    last_write: Arc<Mutex<Option<Instant>>>,
}

impl Marked {
    fn mark(&self) {
        *self.last_write.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }
}

impl AsyncRead for Marked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.inner {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Marked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = match &mut self.inner {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.mark();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = match &mut self.inner {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.mark();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = match &mut self.inner {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        if matches!(polled, Poll::Ready(Ok(()))) && matches!(self.inner, Stream::Tls(_)) {
            // rustls hands bytes to the socket on flush.
            self.mark();
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.inner {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
