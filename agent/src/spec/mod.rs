//! SLO specs: the model, and the readers that build it from YAML.

pub mod glob;
pub mod model;
pub mod status;
pub mod yaml;
