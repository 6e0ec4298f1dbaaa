//! slo-agent: service level indicators, error budgets, burn-rate alerts and
//! deploy freezes for CloudFront → API Gateway → Lambda stacks.
//!
//! See `docs/architecture.md` for the codemap and the invariants.

pub mod decode;
pub mod event;
pub mod spec;
pub mod sli;
pub mod fsutil;
pub mod store;
pub mod source;
pub mod replay;
pub mod clock;
pub mod export;
