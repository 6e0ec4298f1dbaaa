//! CloudWatch Embedded Metric Format: one JSON document per line, which
//! CloudWatch Logs turns into metrics when the line reaches a log group
//! (the CloudWatch agent, Fluent Bit, the ECS awslogs / FireLens drivers and
//! Lambda all deliver stdout there). No AWS call and no permission here.
//!
//! Per SLO, one document with `SLI`, `ErrorBudgetRemaining` and the event
//! counts over the dimensions `[Service, SLO]`, and one document per window
//! with its `BurnRate` over `[Service, SLO, Window]` (a document holds one
//! value per dimension, so each window needs its own). Configured fixed
//! dimensions join every dimension set.
//!
//! ```json
//! {"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"SloAgent",
//!   "Dimensions":[["Service","SLO"]],"Metrics":[{"Name":"SLI","Unit":"None"}, …]}]},
//!  "Service":"shop","SLO":"checkout-availability","SLI":0.9991, …}
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{CloudWatchExportConfig, Datum, Export, Failure, SloExport, dimension_value};

/// The documents of one export, one JSON line each.
pub fn lines(export: &Export, cfg: &CloudWatchExportConfig) -> String {
    let mut out = String::new();
    for doc in documents(export, cfg) {
        out.push_str(&doc.to_string());
        out.push('\n');
    }
    out
}

/// The documents of one export.
pub fn documents(export: &Export, cfg: &CloudWatchExportConfig) -> Vec<Value> {
    let mut docs = Vec::new();
    for s in &export.slos {
        let plain: Vec<&Datum> = s.data.iter().filter(|d| d.window.is_none()).collect();
        if !plain.is_empty() {
            docs.push(document(export.at_ms, cfg, s, None, &plain));
        }
        for d in s.data.iter().filter(|d| d.window.is_some()) {
            docs.push(document(export.at_ms, cfg, s, d.window.map(|w| w.to_string()), &[d]));
        }
    }
    docs
}

fn document(at_ms: i64, cfg: &CloudWatchExportConfig, s: &SloExport, window: Option<String>, data: &[&Datum]) -> Value {
    let mut dims = vec!["Service", "SLO"];
    if window.is_some() {
        dims.push("Window");
    }
    dims.extend(cfg.dimensions.iter().map(|(k, _)| k.as_str()));
    let metrics: Vec<Value> = data.iter().map(|d| json!({"Name": d.metric, "Unit": d.unit.as_str()})).collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{"Namespace": cfg.namespace, "Dimensions": [dims], "Metrics": metrics}],
        }),
    );
    root.insert("Service".into(), json!(dimension_value(&s.service)));
    root.insert("SLO".into(), json!(dimension_value(&s.slo)));
    if let Some(w) = window {
        root.insert("Window".into(), json!(w));
    }
    for (k, v) in &cfg.dimensions {
        root.insert(k.clone(), json!(v));
    }
    for d in data {
        root.insert(d.metric.into(), json!(d.value));
    }
    Value::Object(root)
}

/// Writes the lines to stdout or appends them to a file, on a blocking
/// thread, one write at a time.
pub struct EmfSink {
    file: Option<PathBuf>,
    /// A write is in progress (it may outlive its export's timeout).
    busy: Arc<AtomicBool>,
}

impl EmfSink {
    pub fn new(file: Option<PathBuf>) -> EmfSink {
        EmfSink { file, busy: Arc::new(AtomicBool::new(false)) }
    }

    /// Whether a write is in progress.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// Write `text`, or fail after `timeout` (the write goes on; the next
    /// export fails as busy until it ends). The file is opened for each
    /// write, so a rotated file is followed by a new one.
    pub async fn write(&self, text: String, timeout: Duration) -> Result<(), Failure> {
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(Failure { kind: "busy", message: "the previous write has not finished".into() });
        }
        let busy = self.busy.clone();
        let file = self.file.clone();
        let task = tokio::task::spawn_blocking(move || {
            let r = match &file {
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes()).and_then(|()| out.flush())
                }
                Some(p) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .and_then(|mut f| f.write_all(text.as_bytes())),
            };
            busy.store(false, Ordering::SeqCst);
            r
        });
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(Failure { kind: "io", message: e.to_string() }),
            Ok(Err(e)) => {
                self.busy.store(false, Ordering::SeqCst);
                Err(Failure { kind: "io", message: format!("the write task failed: {e}") })
            }
            Err(_) => Err(Failure { kind: "timeout", message: format!("the write took more than {timeout:?}") }),
        }
    }
}
