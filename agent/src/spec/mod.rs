//! SLO specs: the model, and the readers that build it from YAML.

pub mod glob;
pub mod model;
pub mod status;

// Placeholder until the readers land (branch `spec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}
impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}
pub fn load_paths(_paths: &[std::path::PathBuf]) -> Result<model::SloSet, Vec<Diagnostic>> {
    Err(vec![])
}
