//! The node agent's `/v1/pool` wire format: written by the `node` role,
//! read by the `cluster` role's agent collector.

use serde::{Deserialize, Serialize};

/// What `/v1/pool` returns. `enis` is ipamd's `/v1/enis` JSON, byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PoolSnapshot {
    pub(crate) node: String,
    pub(crate) fetched_at: Option<String>,
    pub(crate) enis: Option<Box<serde_json::value::RawValue>>,
    pub(crate) eni_config: Option<String>,
    /// ipamd's metrics, `awscni_*` lines only.
    pub(crate) metrics: Option<String>,
    /// Per endpoint (`enis`, `eni_configs`, `metrics`), why the last read failed.
    #[serde(default)]
    pub(crate) errors: std::collections::BTreeMap<String, String>,
}
