//! slo-agent: service level indicators, error budgets, burn-rate alerts and
//! deploy freezes for CloudFront → API Gateway → Lambda stacks.
//!
//! See `docs/architecture.md` for the codemap and the invariants.

pub mod alert;
pub mod api;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crawlers;
pub mod decode;
pub mod demo;
pub mod dims;
pub mod event;
pub mod export;
pub mod fleet;
pub mod forecast;
pub mod freeze;
pub mod fsutil;
pub mod gate;
pub mod hops;
pub mod incident;
pub mod lambda_extension;
pub mod notify;
pub mod outage;
pub mod probe;
pub mod replay;
pub mod rules;
pub mod runtime;
pub mod secret;
pub mod signals;
pub mod sli;
pub mod source;
pub mod spec;
pub mod status;
pub mod store;
pub mod synthetic;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
pub mod timefmt;
pub mod timeline;
pub mod untrusted;
pub mod yaml;
