//! Deploy gates that answer through someone else's API: the agent is asked
//! by a webhook and gives its verdict by calling back.
//!
//! [`github`]: GitHub custom deployment protection rules, as a GitHub App.
//!
//! **Architecture invariant:** a gate never decides. The verdict is the
//! freeze answer of the last evaluation (`api::freeze`); a gate only says
//! which service and change a request is about, and delivers the answer.

pub mod github;
