//! Renderers: Prometheus exposition, the HTML page, the CLI table and JSON,
//! all from one view.

pub(crate) mod catalogue;
pub mod exposition;
pub mod html;
pub mod json;
pub mod table;
