//! Collector health: what every source reports about itself, rendered as the
//! self-metrics of both roles. Plain data, so sources and renderers share it
//! without depending on each other.

/// Health of one collector (a source), for the self-metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorStatus {
    /// Closed set: `bundle`, `kubernetes`, `ec2`, `cloudtrail`, `ipamd`.
    pub(crate) collector: &'static str,
    pub(crate) up: bool,
    pub(crate) last_success_unix: Option<f64>,
    pub(crate) duration_seconds: f64,
    /// Errors since start by kind (a closed set per collector).
    pub(crate) errors: std::collections::BTreeMap<String, u64>,
    /// Requests sent to the source's API since start (AWS collectors).
    pub(crate) requests: u64,
}
