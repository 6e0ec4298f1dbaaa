//! Exporters: the agent's state as other systems read it.

pub mod prometheus;
pub mod slo;
