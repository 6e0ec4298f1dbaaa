//! OTLP metrics export (`export.otlp`): the SLO figures of `/metrics`
//! ([`crate::export::slo`]) pushed every `interval` to an OpenTelemetry
//! Collector or a vendor's OTLP endpoint, over OTLP/HTTP (protobuf) or
//! OTLP/gRPC, with cumulative or delta counters.
//!
//! The OpenTelemetry SDK does the encoding and the temporality: each SLO
//! family is an observable instrument (a monotonic counter for
//! `slo_agent_slo_events` and `slo_agent_slo_good_events`, a gauge for the
//! others) whose callback reads the figures this export took from the
//! published snapshot. A manual reader collects them, and this module's
//! task sends them on the agent's runtime: one export at a time, each
//! bounded by `timeout`, so a receiver that is down costs a counter
//! (`slo_agent_export_failures_total{exporter="otlp"}`) and a warning at
//! most every [`WARN_EVERY`], never memory or a blocked thread.
//!
//! Counters never go down, even when the engine's count does (an SLO whose
//! indicator changed starts again from zero): the exported value grows by
//! what the engine counted since the previous export ([`Monotonic`]), so
//! delta exports are never negative and cumulative ones never look like a
//! reset. With `temporality: delta` an export that fails loses its
//! increase; cumulative exports lose nothing.
//!
//! Request headers whose values come from a file or the environment are
//! read again at every export, so a rotated key is used at the next one.

pub mod config;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _, ObservableCounter, ObservableGauge};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter as _;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, SdkMeterProvider};

pub use self::config::{OtlpConfig, Protocol, Temporality};
use crate::clock::Clock;
use crate::synthetic::Text;
use crate::synthetic::trace::{OtlpHttpClient, SharedHeaders};
use crate::telemetry::events as ev;
use crate::telemetry::{FamilyView, Kind, Labels, Telemetry};

/// The `exporter` label of this exporter's own metrics.
pub const EXPORTER: &str = "otlp";
/// A receiver that stays down is reported at most this often (every failure is counted).
pub const WARN_EVERY: Duration = Duration::from_secs(300);
/// Series per instrument, at most (the SDK folds further ones into one
/// overflow series). The figures are bounded by the SLOs, not by traffic.
pub const MAX_SERIES: usize = 100_000;

/// Environment variables that name where the agent runs in Kubernetes (set
/// them from the downward API), and the resource attributes they become.
pub const K8S_ENV: [(&str, &str); 4] = [
    ("K8S_POD_NAME", "k8s.pod.name"),
    ("K8S_NAMESPACE_NAME", "k8s.namespace.name"),
    ("K8S_NODE_NAME", "k8s.node.name"),
    ("K8S_CLUSTER_NAME", "k8s.cluster.name"),
];

/// The SLO families of the latest evaluation (the runtime reads them from
/// the published snapshot).
pub type Figures = Arc<dyn Fn() -> Vec<FamilyView> + Send + Sync>;

/// The resource attributes, each source overriding the ones before it:
/// the agent's own (`service.name: slo-agent`, `service.version`,
/// `service.instance.id` from `K8S_POD_NAME` or `HOSTNAME`, `cloud.provider`
/// and `cloud.region` from `region`, `k8s.*` from [`K8S_ENV`]), then
/// `OTEL_RESOURCE_ATTRIBUTES`, then `OTEL_SERVICE_NAME`, then
/// `export.otlp.resource`. `env` reads an environment variable.
pub fn resource_attributes(
    config: &OtlpConfig,
    region: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let env = |k: &str| env(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    out.insert("service.name".into(), "slo-agent".into());
    out.insert("service.version".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(id) = env("K8S_POD_NAME").or_else(|| env("HOSTNAME")) {
        out.insert("service.instance.id".into(), id);
    }
    if let Some(r) = region {
        out.insert("cloud.provider".into(), "aws".into());
        out.insert("cloud.region".into(), r.to_string());
    }
    for (var, key) in K8S_ENV {
        if let Some(v) = env(var) {
            out.insert(key.into(), v);
        }
    }
    // `key=value,key=value`, values percent-encoded (the OpenTelemetry spec's format).
    for pair in env("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default().split(',') {
        if let Some((k, v)) = pair.split_once('=')
            && !k.trim().is_empty()
        {
            let v = percent_encoding::percent_decode_str(v.trim()).decode_utf8_lossy();
            out.insert(k.trim().to_string(), v.into_owned());
        }
    }
    if let Some(name) = env("OTEL_SERVICE_NAME") {
        out.insert("service.name".into(), name);
    }
    for (k, v) in &config.resource {
        out.insert(k.clone(), v.clone());
    }
    out.into_iter().collect()
}

/// Keeps exported counters monotonic when the engine's counts restart.
#[derive(Debug, Default)]
pub struct Monotonic {
    /// (family, labels) → (the engine's count last time, the value exported).
    seen: HashMap<(&'static str, Labels), (f64, f64)>,
}

impl Monotonic {
    /// Replace every counter's value with its exported value: the previous
    /// one plus the engine's increase (all of its count when the count went
    /// down, a restart from zero). Series that are gone are forgotten.
    pub fn apply(&mut self, families: &mut [FamilyView]) {
        let mut next = HashMap::with_capacity(self.seen.len());
        for f in families.iter_mut().filter(|f| f.metric.kind == Kind::Counter) {
            for (labels, v) in &mut f.series {
                let key = (f.metric.name, labels.clone());
                let (last, exported) = self.seen.get(&key).copied().unwrap_or((0.0, 0.0));
                let increase = if *v >= last { *v - last } else { *v };
                let out = exported + increase;
                next.insert(key, (*v, out));
                *v = out;
            }
        }
        self.seen = next;
    }
}

/// The manual reader, shared between the meter provider and the export loop.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> opentelemetry_sdk::metrics::Temporality {
        self.0.temporality(kind)
    }
}

/// Adds this export's headers to each gRPC request's metadata.
#[derive(Debug, Clone)]
struct Metadata(SharedHeaders);

impl tonic::service::Interceptor for Metadata {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut headers = std::mem::take(request.metadata_mut()).into_headers();
        for (k, v) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            headers.insert(k.clone(), v.clone());
        }
        *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(headers);
        Ok(request)
    }
}

/// The header values of the next export; a file or variable that cannot
/// be read, or a value that cannot be a header, fails the export.
fn read_headers(headers: &[(String, Text)]) -> Result<http::HeaderMap, String> {
    let mut out = http::HeaderMap::new();
    for (name, text) in headers {
        let value = text.value().map_err(|e| format!("header {name}: {e}"))?;
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name}: {e}"))?;
        let mut value = http::HeaderValue::from_str(&value)
            .map_err(|_| format!("header {name}: the value is not a valid header value"))?;
        value.set_sensitive(text.is_secret());
        out.insert(name, value);
    }
    Ok(out)
}

/// A running OTLP exporter: build it with [`OtlpExporter::build`] on the
/// agent's runtime, then drive it with [`OtlpExporter::run`].
pub struct OtlpExporter {
    config: OtlpConfig,
    figures: Figures,
    telemetry: Arc<Telemetry>,
    clock: Arc<dyn Clock>,
    exporter: opentelemetry_otlp::MetricExporter,
    reader: SharedReader,
    /// Keeps the instruments' callbacks registered.
    _provider: SdkMeterProvider,
    _instruments: (Vec<ObservableCounter<u64>>, Vec<ObservableGauge<f64>>),
    /// The figures the callbacks observe during a collection.
    current: Arc<Mutex<Arc<Vec<FamilyView>>>>,
    headers: SharedHeaders,
    monotonic: Monotonic,
    rm: ResourceMetrics,
    /// Failed exports since the receiver last accepted one.
    failing: u64,
    warned_at: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter").field("config", &self.config).finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// The exporter for `config`, sending `figures` with the resource of
    /// [`resource_attributes`]. Must be called inside the tokio runtime it
    /// will run on (the gRPC channel starts its worker there).
    pub fn build(
        config: &OtlpConfig,
        region: Option<&str>,
        figures: Figures,
        telemetry: Arc<Telemetry>,
        clock: Arc<dyn Clock>,
    ) -> Result<OtlpExporter, String> {
        use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
        let headers: SharedHeaders = Arc::default();
        let exporter = match config.protocol {
            Protocol::Http => {
                // As the notifiers' client: rustls, proxies from the environment, no redirects.
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("slo-agent/", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(config.timeout.min(Duration::from_secs(5)))
                    .timeout(config.timeout)
                    .build()
                    .map_err(|e| format!("export.otlp: {e}"))?;
                let mut b = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_http_client(OtlpHttpClient { client, headers: Some(headers.clone()) })
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(config.endpoint.clone())
                    .with_timeout(config.timeout);
                if config.gzip {
                    b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                b.build()
            }
            Protocol::Grpc => {
                let mut b = opentelemetry_otlp::MetricExporter::builder()
                    .with_tonic()
                    .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                    .with_endpoint(config.endpoint.clone())
                    .with_timeout(config.timeout)
                    .with_interceptor(Metadata(headers.clone()));
                if config.gzip {
                    b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                if config.endpoint.starts_with("https:") {
                    use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
                    b = b.with_tls_config(ClientTlsConfig::new().with_native_roots());
                }
                b.build()
            }
        }
        .map_err(|e| format!("export.otlp: {e}"))?;
        let temporality = match config.temporality {
            Temporality::Cumulative => opentelemetry_sdk::metrics::Temporality::Cumulative,
            Temporality::Delta => opentelemetry_sdk::metrics::Temporality::Delta,
        };
        let reader = SharedReader(Arc::new(ManualReader::builder().with_temporality(temporality).build()));
        let attributes = resource_attributes(config, region, &|k| std::env::var(k).ok());
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_detectors(&[Box::new(opentelemetry_sdk::resource::TelemetryResourceDetector)])
            .with_attributes(attributes.into_iter().map(|(k, v)| KeyValue::new(k, v)))
            .build();
        let provider = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(reader.clone())
            .with_view(|_: &opentelemetry_sdk::metrics::Instrument| {
                opentelemetry_sdk::metrics::Stream::builder().with_cardinality_limit(MAX_SERIES).build().ok()
            })
            .build();
        let meter = provider.meter("slo-agent");
        let current: Arc<Mutex<Arc<Vec<FamilyView>>>> = Arc::default();
        let instruments = instruments(&meter, &current);
        Ok(OtlpExporter {
            config: config.clone(),
            figures,
            telemetry,
            clock,
            exporter,
            reader,
            _provider: provider,
            _instruments: instruments,
            current,
            headers,
            monotonic: Monotonic::default(),
            rm: ResourceMetrics::default(),
            failing: 0,
            warned_at: None,
        })
    }

    /// Export every `interval` (the first one interval after the start)
    /// until `stop` turns true.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let origin =
            url::Url::parse(&self.config.endpoint).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        ev::ExporterStarted { exporter: EXPORTER, origin: &origin, every_seconds: self.config.interval.as_secs_f64() }
            .emit(&self.telemetry);
        let every = self.config.interval;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        // A slow export delays the next one; exports never pile up.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                r = stop.changed() => if r.is_err() || *stop.borrow() { return },
            }
            let result = self.export_once().await;
            self.report(result);
        }
    }

    /// Collect the latest figures and send them, within `timeout`.
    pub async fn export_once(&mut self) -> Result<(), String> {
        // Headers first: an export that cannot be sent must not take a delta's increase.
        *self.headers.lock().unwrap_or_else(|e| e.into_inner()) = read_headers(&self.config.headers)?;
        let mut families = (self.figures)();
        self.monotonic.apply(&mut families);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(families);
        let collected = self.reader.collect(&mut self.rm).map_err(|e| format!("collecting the figures: {e}"));
        // The figures stay only as long as the collection needs them.
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::default();
        collected?;
        match tokio::time::timeout(self.config.timeout, self.exporter.export(&self.rm)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.config.timeout)),
        }
    }

    fn report(&mut self, result: Result<(), String>) {
        match result {
            Ok(()) => {
                ev::ExportSucceeded { exporter: EXPORTER, at_ms: self.clock.now_ms(), after_failures: self.failing }
                    .emit(&self.telemetry);
                self.failing = 0;
                self.warned_at = None;
            }
            Err(error) => {
                self.failing += 1;
                let now = tokio::time::Instant::now();
                let log = self.warned_at.is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
                if log {
                    self.warned_at = Some(now);
                }
                ev::PushFailed { exporter: EXPORTER, error: &error, log, failing: self.failing }.emit(&self.telemetry);
            }
        }
    }
}

/// One observable instrument per SLO family (the budget outlooks' after the
/// others), each observing its family in the figures of the collection under way.
fn instruments(
    meter: &Meter,
    current: &Arc<Mutex<Arc<Vec<FamilyView>>>>,
) -> (Vec<ObservableCounter<u64>>, Vec<ObservableGauge<f64>>) {
    let mut counters = Vec::new();
    let mut gauges = Vec::new();
    let families = crate::export::slo::FAMILIES.iter().chain(crate::signals::metrics::BUDGET_FAMILIES.iter());
    for (i, m) in families.enumerate() {
        let current = current.clone();
        let series = move || -> Vec<(Vec<KeyValue>, f64)> {
            let figures = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let Some(f) = figures.get(i) else { return Vec::new() };
            f.series
                .iter()
                .map(|(labels, v)| (labels.iter().map(|(k, v)| KeyValue::new(*k, v.clone())).collect(), *v))
                .collect()
        };
        match m.kind {
            Kind::Counter => counters.push(
                meter
                    .u64_observable_counter(m.name)
                    .with_description(m.help)
                    .with_callback(move |o| {
                        for (attributes, v) in series() {
                            o.observe(v as u64, &attributes);
                        }
                    })
                    .build(),
            ),
            Kind::Gauge | Kind::AgeOf => gauges.push(
                meter
                    .f64_observable_gauge(m.name)
                    .with_description(m.help)
                    .with_callback(move |o| {
                        for (attributes, v) in series() {
                            o.observe(v, &attributes);
                        }
                    })
                    .build(),
            ),
        }
    }
    (counters, gauges)
}

#[cfg(test)]
mod tests;
