//! PutMetricData with the AWS SDK: up to [`super::MAX_DATA_PER_CALL`] data
//! points and [`super::MAX_BYTES_PER_CALL`] (estimated) a call, an SLO's
//! points never split between two calls. The SDK
//! configuration is the AWS sources' (`source::aws::sdk`): the config's
//! region, endpoint, profile and credentials first, the standard chain for
//! the rest; no retries inside a call (the next export tries again).

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use super::{CloudWatchExportConfig, Export, Failure, Unit, dimension_value};
use crate::source::aws::CallError;
use crate::source::aws::config::AwsConnection;

pub struct PutSink {
    client: aws_sdk_cloudwatch::Client,
    timeout: std::time::Duration,
}

impl PutSink {
    pub async fn new(conn: &AwsConnection) -> PutSink {
        let config = crate::source::aws::sdk::load(conn).await;
        PutSink { client: aws_sdk_cloudwatch::Client::new(&config), timeout: conn.timeout }
    }

    /// One PutMetricData call with the data points of the SLOs `batch`
    /// indexes in `export`.
    pub async fn put(&self, cfg: &CloudWatchExportConfig, export: &Export, batch: &[usize]) -> Result<(), Failure> {
        let at = DateTime::from_millis(export.at_ms);
        let extra: Vec<Dimension> =
            cfg.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect();
        let mut data = Vec::new();
        for &i in batch {
            let s = &export.slos[i];
            let base = [
                Dimension::builder().name("Service").value(dimension_value(&s.service)).build(),
                Dimension::builder().name("SLO").value(dimension_value(&s.slo)).build(),
            ];
            for d in &s.data {
                let mut dims: Vec<Dimension> = base.to_vec();
                if let Some(w) = d.window {
                    dims.push(Dimension::builder().name("Window").value(w.to_string()).build());
                }
                dims.extend(extra.iter().cloned());
                data.push(
                    MetricDatum::builder()
                        .metric_name(d.metric)
                        .set_dimensions(Some(dims))
                        .timestamp(at)
                        .value(d.value)
                        .unit(match d.unit {
                            Unit::Count => StandardUnit::Count,
                            Unit::None => StandardUnit::None,
                        })
                        .build(),
                );
            }
        }
        let call = self.client.put_metric_data().namespace(&cfg.namespace).set_metric_data(Some(data)).send();
        // The SDK's own operation timeout should fire first; this one bounds it anyway.
        let e = match tokio::time::timeout(self.timeout + std::time::Duration::from_secs(1), call).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => CallError::from_sdk(&e),
            Err(_) => CallError::timed_out(),
        };
        Err(Failure { kind: e.kind.as_str(), message: e.message })
    }
}
