//! The least-privilege IAM policy of the configured AWS sources
//! (`slo-agent iam-policy --config agent.yaml`): exactly the actions each
//! source calls and, where the action takes one, the exact resource.
//!
//! | source | actions | resources |
//! | --- | --- | --- |
//! | `cloudwatch-logs` | `logs:FilterLogEvents` | each log group: `arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*` |
//! | `cloudwatch-metrics` | `cloudwatch:GetMetricData` | `*` (the action takes no resource, and IAM has no namespace condition for it) |
//! | `s3` | `s3:ListBucket` (condition `s3:prefix`), `s3:GetObject` | `arn:aws:s3:::BUCKET`, `arn:aws:s3:::BUCKET/PREFIX*` |
//! | `xray` | `xray:GetTraceSummaries`, `xray:BatchGetTraces` | `*` (neither takes a resource) |
//!
//! The region is the source's `region:` (`*` when it has none: the SDK's
//! chain picks it at run time); the account is `--account`, else `*`.
//! Pure: the policy is a value, the command prints it.

use serde_json::{Value, json};

use crate::source::SourceConfig;
use crate::source::aws::config::AwsSourceConfig;

/// One statement: its id, actions, resources and an optional condition.
pub fn statement(sid: &str, actions: &[&str], resources: Vec<String>, condition: Option<Value>) -> Value {
    let mut s = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": resources,
    });
    if let Some(c) = condition {
        s["Condition"] = c;
    }
    s
}

/// A statement id from a name: IAM allows only letters and digits.
pub fn sid(source: &str, what: &str) -> String {
    let name: String = source.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("{what}{name}")
}

/// The policy document for `sources` (the AWS ones; the others need no
/// permission), in config order. `account` fills the ARNs' account field.
pub fn policy(sources: &[SourceConfig], account: Option<&str>) -> Value {
    let account = account.unwrap_or("*");
    let mut statements = Vec::new();
    for s in sources {
        let SourceConfig::Aws(aws) = s else { continue };
        match aws.as_ref() {
            AwsSourceConfig::CloudWatchLogs(c) => {
                let region = c.aws.region.as_deref().unwrap_or("*");
                let groups = c
                    .log_groups
                    .iter()
                    .map(|g| format!("arn:aws:logs:{region}:{account}:log-group:{}:*", g.name))
                    .collect();
                statements.push(statement(&sid(&c.name, "Logs"), &["logs:FilterLogEvents"], groups, None));
            }
            AwsSourceConfig::CloudWatchMetrics(c) => {
                statements.push(statement(
                    &sid(&c.name, "Metrics"),
                    &["cloudwatch:GetMetricData"],
                    vec!["*".into()],
                    None,
                ));
            }
            AwsSourceConfig::S3(c) => {
                let condition =
                    (!c.prefix.is_empty()).then(|| json!({"StringLike": {"s3:prefix": [format!("{}*", c.prefix)]}}));
                statements.push(statement(
                    &sid(&c.name, "List"),
                    &["s3:ListBucket"],
                    vec![format!("arn:aws:s3:::{}", c.bucket)],
                    condition,
                ));
                statements.push(statement(
                    &sid(&c.name, "Read"),
                    &["s3:GetObject"],
                    vec![format!("arn:aws:s3:::{}/{}*", c.bucket, c.prefix)],
                    None,
                ));
            }
            AwsSourceConfig::XRay(c) => {
                statements.push(statement(
                    &sid(&c.name, "XRay"),
                    &["xray:GetTraceSummaries", "xray:BatchGetTraces"],
                    vec!["*".into()],
                    None,
                ));
            }
        }
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Every action `sources` need, sorted and once each.
pub fn actions(sources: &[SourceConfig]) -> Vec<String> {
    actions_in(&policy(sources, None))
}

/// Every action a policy document allows, sorted and once each.
pub fn actions_in(policy: &Value) -> Vec<String> {
    let mut out: Vec<String> = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["Action"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_string)))
        .collect();
    out.sort();
    out.dedup();
    out
}
