//! Helpers for tests only (compiled under `cfg(test)`).

pub mod golden;
