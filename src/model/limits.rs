//! Instance-type network limits, from DescribeInstanceTypes.
//!
//! Only the **default network card** counts: the VPC CNI (without
//! ENABLE_MULTI_NIC) and Karpenter's max-pods formula both use
//! `NetworkCards[DefaultNetworkCardIndex].MaximumNetworkInterfaces`, never the
//! total over all cards (p5.48xlarge: 2 of 64).

use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hypervisor {
    Nitro,
    Xen,
    Unknown,
}

impl Hypervisor {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "nitro" => Hypervisor::Nitro,
            "xen" => Hypervisor::Xen,
            _ => Hypervisor::Unknown,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceLimits {
    pub instance_type: String,
    pub vcpus: u32,
    pub hypervisor: Hypervisor,
    pub bare_metal: bool,
    pub network_cards: u32,
    /// ENIs on the default network card: the only ones the CNI uses for pods.
    pub default_card_max_enis: u32,
    /// ENIs over all cards (informational only).
    pub max_enis_total: u32,
    pub ipv4_per_eni: u32,
}

impl InstanceLimits {
    /// ipamd's `IsPrefixDelegationSupported`: Nitro or bare metal.
    pub fn supports_prefix_delegation(&self) -> bool {
        self.hypervisor == Hypervisor::Nitro || self.bare_metal
    }
}

/// Where a node's limits came from, shown in evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitsSource {
    DescribeInstanceTypes,
    EmbeddedTable,
}

/// The embedded table, generated from real DescribeInstanceTypes data by
/// `tools/gen_instance_limits.py` (see its header line for the data version).
const EMBEDDED_CSV: &str = include_str!("instance_limits.csv");

/// Parses the embedded CSV. A malformed row is a build defect, caught by the
/// unit tests; at run time such a row is skipped rather than panicking.
pub fn parse_limits_csv(csv: &str) -> Result<Vec<InstanceLimits>, String> {
    let mut out = Vec::new();
    let mut header_seen = false;
    for (i, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header_seen {
            header_seen = true;
            if !line.starts_with("instance_type,") {
                return Err(format!("line {}: expected header, got {line:?}", i + 1));
            }
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 9 {
            return Err(format!(
                "line {}: expected 9 fields, got {}",
                i + 1,
                f.len()
            ));
        }
        let num = |idx: usize| -> Result<u32, String> {
            f[idx]
                .parse::<u32>()
                .map_err(|e| format!("line {}: field {}: {e}", i + 1, idx + 1))
        };
        out.push(InstanceLimits {
            instance_type: f[0].to_string(),
            vcpus: num(1)?,
            hypervisor: Hypervisor::parse(f[2]),
            bare_metal: f[3] == "true",
            network_cards: num(4)?,
            // f[5] is the default card index; the per-card count is already resolved.
            default_card_max_enis: num(6)?,
            max_enis_total: num(7)?,
            ipv4_per_eni: num(8)?,
        });
    }
    Ok(out)
}

fn embedded_table() -> &'static HashMap<String, InstanceLimits> {
    static TABLE: OnceLock<HashMap<String, InstanceLimits>> = OnceLock::new();
    TABLE.get_or_init(|| {
        parse_limits_csv(EMBEDDED_CSV)
            .unwrap_or_default()
            .into_iter()
            .map(|l| (l.instance_type.clone(), l))
            .collect()
    })
}

/// Limits of one type from the embedded table.
pub fn embedded(instance_type: &str) -> Option<&'static InstanceLimits> {
    embedded_table().get(instance_type)
}

/// Number of types in the embedded table.
pub fn embedded_len() -> usize {
    embedded_table().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_parses_completely() {
        let parsed = parse_limits_csv(EMBEDDED_CSV).expect("embedded CSV must parse");
        assert!(parsed.len() > 500, "only {} types", parsed.len());
        assert_eq!(parsed.len(), embedded_len(), "duplicate instance types");
    }

    #[test]
    fn known_instance_types_match_describe_instance_types() {
        // (type, vCPUs, ENIs on default card, IPv4 per ENI, total ENIs)
        let cases = [
            ("t4g.medium", 2, 3, 6, 3),
            ("t4g.large", 2, 3, 12, 3),
            ("m8g.4xlarge", 16, 8, 30, 8),
            ("m5.large", 2, 3, 10, 3),
            ("m5.4xlarge", 16, 8, 30, 8),
            ("p5.48xlarge", 192, 2, 50, 64),
            ("c6in.32xlarge", 128, 8, 50, 16),
        ];
        for (t, vcpus, enis, ips, total) in cases {
            let l = embedded(t).unwrap_or_else(|| panic!("{t} missing from embedded table"));
            assert_eq!(l.vcpus, vcpus, "{t} vcpus");
            assert_eq!(l.default_card_max_enis, enis, "{t} default-card ENIs");
            assert_eq!(l.ipv4_per_eni, ips, "{t} IPv4 per ENI");
            assert_eq!(l.max_enis_total, total, "{t} total ENIs");
        }
    }

    #[test]
    fn prefix_delegation_needs_nitro_or_metal() {
        assert!(embedded("m5.large").unwrap().supports_prefix_delegation());
        let xen = embedded("m4.large").expect("m4.large in table");
        assert_eq!(xen.hypervisor, Hypervisor::Xen);
        assert!(!xen.supports_prefix_delegation());
    }

    #[test]
    fn malformed_csv_is_an_error_not_a_panic() {
        assert!(parse_limits_csv("nonsense").is_err());
        let hdr = "instance_type,a,b,c,d,e,f,g,h\n";
        assert!(parse_limits_csv(&format!("{hdr}x.large,2,nitro,false,1,0,3")).is_err());
        assert!(parse_limits_csv(&format!("{hdr}x.large,two,nitro,false,1,0,3,3,6")).is_err());
    }
}
