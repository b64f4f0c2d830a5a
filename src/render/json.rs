//! The diagnosis as JSON: one serializer for `diagnose --output json` and
//! `/api/v1/diagnosis`.

use crate::model::findings::Severity;
use crate::model::view::View;
use serde::Serialize;

#[derive(Serialize)]
struct Summary {
    critical: usize,
    warning: usize,
    info: usize,
}

#[derive(Serialize)]
struct Document<'a> {
    summary: Summary,
    #[serde(flatten)]
    view: &'a View,
}

pub fn render(view: &View) -> String {
    let count = |s: Severity| view.findings.iter().filter(|f| f.severity == s).count();
    let doc = Document {
        summary: Summary {
            critical: count(Severity::Critical),
            warning: count(Severity::Warning),
            info: count(Severity::Info),
        },
        view,
    };
    let mut s = serde_json::to_string_pretty(&doc)
        .unwrap_or_else(|e| format!("{{\"error\":\"serialization failed: {e}\"}}"));
    s.push('\n');
    s
}
