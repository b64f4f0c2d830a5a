//! The node agent's `/v1/pool` wire format: written by the `node` role,
//! read by the `cluster` role's agent collector.

use serde::{Deserialize, Serialize};

/// What `/v1/pool` returns. `enis` is ipamd's `/v1/enis` JSON, byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PoolSnapshot {
    pub node: String,
    pub fetched_at: Option<String>,
    pub enis: Option<Box<serde_json::value::RawValue>>,
    pub eni_config: Option<String>,
    /// ipamd's metrics, `awscni_*` lines only.
    pub metrics: Option<String>,
    /// Per endpoint (`enis`, `eni_configs`, `metrics`), why the last read failed.
    #[serde(default)]
    pub errors: std::collections::BTreeMap<String, String>,
}
