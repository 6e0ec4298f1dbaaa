//! Sources: they only move bytes and remember where they are (a checkpoint).

pub mod file;
pub mod lines;
