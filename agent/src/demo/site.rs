//! The demo's own small site on loopback, for the agent's probes and its
//! checkout journey: an edge that calls a gateway that calls a function,
//! each a real HTTP server, and a cart the checkout journey fills. The demo
//! day's incidents reach it too ([`Faults::at_minute`]): the gateway slows
//! down in the afternoon, and the cart fails while the checkout release of
//! 10:12 is out, as the CloudFront logs show.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::synthetic::SyntheticConfig;

/// What each hop takes when nothing is wrong.
const EDGE_MS: u64 = 4;
const GATEWAY_MS: u64 = 8;
const FUNCTION_MS: u64 = 20;
/// What the gateway adds in the afternoon's incident.
const GATEWAY_SLOW_MS: u64 = 150;

/// The faults the demo day injects, by simulated minute.
#[derive(Debug, Default)]
pub struct Faults {
    gateway_extra_ms: AtomicU64,
    cart_fails: AtomicBool,
}

impl Faults {
    /// Set the faults of simulated minute `minute` of the demo day.
    pub fn at_minute(&self, minute: u32) {
        let slow = (14 * 60..16 * 60).contains(&minute);
        self.gateway_extra_ms.store(if slow { GATEWAY_SLOW_MS } else { 0 }, Ordering::Relaxed);
        // Checkout 1.4.2 (deployed 10:12–10:19) breaks the cart until 1.4.3 (11:05–11:09).
        self.cart_fails.store((10 * 60 + 19..11 * 60 + 9).contains(&minute), Ordering::Relaxed);
    }
}

/// The running site: its ports, and the faults to set.
pub struct Site {
    pub edge: u16,
    pub gateway: u16,
    pub function: u16,
    pub faults: Arc<Faults>,
}

async fn bind() -> std::io::Result<(tokio::net::TcpListener, u16)> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    Ok((l, port))
}

/// GET `url` and answer with its status (502 when it cannot be reached).
async fn forward(client: &reqwest::Client, url: &str) -> StatusCode {
    match client.get(url).send().await {
        Ok(r) => StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        Err(_) => StatusCode::BAD_GATEWAY,
    }
}

/// Start the three servers on `rt`.
pub fn start(rt: &tokio::runtime::Runtime) -> std::io::Result<Site> {
    let faults = Arc::new(Faults::default());
    let ((fl, function), (gl, gateway), (el, edge)) =
        rt.block_on(async { Ok::<_, std::io::Error>((bind().await?, bind().await?, bind().await?)) })?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().map_err(std::io::Error::other)?;

    let f = faults.clone();
    let function_app = axum::Router::new().route(
        "/health",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(FUNCTION_MS)).await;
            "ok"
        }),
    );
    let (c, f2) = (client.clone(), f.clone());
    let gateway_app = axum::Router::new().route(
        "/prod/health",
        get(move || {
            let (c, f) = (c.clone(), f2.clone());
            async move {
                let ms = GATEWAY_MS + f.gateway_extra_ms.load(Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                forward(&c, &format!("http://127.0.0.1:{function}/health")).await
            }
        }),
    );
    let c = client.clone();
    let edge_app = axum::Router::new()
        .route(
            "/api/health",
            get(move || {
                let c = c.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(EDGE_MS)).await;
                    forward(&c, &format!("http://127.0.0.1:{gateway}/prod/health")).await
                }
            }),
        )
        .route("/", get(|| async { "<html>the demo shop</html>" }))
        .route(
            "/api/cart",
            post(move || {
                let f = f.clone();
                async move {
                    if f.cart_fails.load(Ordering::Relaxed) {
                        (StatusCode::INTERNAL_SERVER_ERROR, "cart service error".to_string())
                    } else {
                        (StatusCode::OK, r#"{"cart": "c-1", "items": 1}"#.to_string())
                    }
                }
            }),
        )
        .route("/api/checkout", post(|| async { r#"{"order": "ORD-1", "state": "placed"}"# }));
    for (listener, app) in [(fl, function_app), (gl, gateway_app), (el, edge_app)] {
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    Ok(Site { edge, gateway, function, faults })
}

/// The demo's probe of the site's three hops and its checkout journey, and
/// its public status page, as a user would write them in `agent.yaml` (read
/// by the same parser).
pub fn checks(site: &Site) -> anyhow::Result<(SyntheticConfig, Option<crate::status::StatusConfig>)> {
    let (e, g, f) = (site.edge, site.gateway, site.function);
    let yaml = format!(
        r#"specs: [demo-slos.yaml]
state: state.redb
region: demo-local
probes:
  - name: storefront
    interval: 1s
    retries: 0
    hops:
      - {{name: edge, url: "http://127.0.0.1:{e}/api/health"}}
      - {{name: gateway, url: "http://127.0.0.1:{g}/prod/health"}}
      - {{name: function, url: "http://127.0.0.1:{f}/health"}}
    expect: {{status: [200], latency: 100ms}}
journeys:
  - name: checkout
    interval: 10s
    steps:
      - {{name: home, request: {{url: "http://127.0.0.1:{e}/"}}, expect: {{status: [200], body_matches: shop}}}}
      - name: cart
        request: {{method: POST, url: "http://127.0.0.1:{e}/api/cart", json: {{sku: A1}}}}
        extract: {{cart: {{json: "$.cart"}}}}
        expect: {{status: [200]}}
      - {{name: checkout, request: {{method: POST, url: "http://127.0.0.1:{e}/api/checkout", json: {{cart: "${{cart}}"}}}}, expect: {{status: [200], json: {{"$.state": placed}}}}}}
status:
  title: Demo shop status
  components:
    - {{name: Storefront, service: storefront}}
    - {{name: Checkout, service: checkout}}
    - {{name: Shop API, service: api}}
    - {{name: Buying, journey: checkout}}
"#
    );
    let config = crate::config::parse("demo checks", &yaml, std::path::Path::new("."))
        .map_err(|d| anyhow::anyhow!("the demo's checks: {d:?}"))?;
    // The demo runs them itself, once per step of its day (`Runtime::check_once`).
    let checks = config.synthetic;
    Ok((checks, config.status))
}
