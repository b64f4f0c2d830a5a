//! Renderers: Prometheus exposition, the HTML page, the CLI table and JSON,
//! all from one view.

pub(crate) mod catalogue;
pub mod exposition;
pub mod html;
pub mod json;
pub(crate) mod plan;
pub mod table;

/// An evidence number as a person reads it: durations (`*_seconds`) as
/// `2h30m`, ratios (`*_ratio`) as percentages, whole numbers without `.0`.
/// The page and `diagnose` both use it; JSON keeps the raw number.
pub(crate) fn evidence_number(key: &str, x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if key.ends_with("_seconds") {
        crate::model::findings::human_duration(x)
    } else if key.ends_with("_ratio") {
        format!("{:.1}%", x * 100.0)
    } else {
        plain_number(x)
    }
}

/// An evidence key without the unit suffix its value is shown with
/// (`silence_seconds` -> `silence`, `low_ratio` -> `low`).
pub(crate) fn evidence_base(key: &str) -> &str {
    key.strip_suffix("_seconds")
        .or_else(|| key.strip_suffix("_ratio"))
        .unwrap_or(key)
}

/// `9023` for 9023.0, `0.25` for 0.25.
pub(crate) fn plain_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// An allocation silence as the page and `diagnose` show it: `2h30m`, or
/// `> 6h19m` for a lower bound.
pub(crate) fn silence_text(s: &crate::model::analysis::AllocationSilence) -> String {
    format!(
        "{}{}",
        if s.lower_bound { "> " } else { "" },
        crate::model::findings::human_duration(s.seconds)
    )
}
