//! The agent's own logs: structured `tracing`, level from `SLO_AGENT_LOG`
//! (default `info`), to stderr.

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLO_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
