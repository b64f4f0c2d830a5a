//! Renderers: Prometheus exposition, the CLI table and JSON, all from one view.

pub mod exposition;
pub mod json;
pub mod table;
