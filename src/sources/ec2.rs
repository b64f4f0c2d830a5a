//! EC2 payloads as the AWS CLI prints them (`--output json`, PascalCase).

use crate::model::limits::{Hypervisor, InstanceLimits};
use crate::model::state::{EniKind, NetworkInterfaceState, SubnetState};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeInstanceTypes {
    pub(crate) instance_types: Vec<InstanceTypeInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InstanceTypeInfo {
    pub(crate) instance_type: String,
    #[serde(default)]
    pub(crate) v_cpu_info: Option<VCpuInfo>,
    #[serde(default)]
    pub(crate) hypervisor: Option<String>,
    #[serde(default)]
    pub(crate) bare_metal: Option<bool>,
    pub(crate) network_info: NetworkInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct VCpuInfo {
    pub(crate) default_v_cpus: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkInfo {
    pub(crate) maximum_network_interfaces: u32,
    pub(crate) ipv4_addresses_per_interface: u32,
    #[serde(default)]
    pub(crate) maximum_network_cards: Option<u32>,
    #[serde(default)]
    pub(crate) default_network_card_index: Option<u32>,
    #[serde(default)]
    pub(crate) network_cards: Vec<NetworkCard>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkCard {
    pub(crate) network_card_index: u32,
    pub(crate) maximum_network_interfaces: u32,
}

impl InstanceTypeInfo {
    pub(crate) fn to_limits(&self) -> InstanceLimits {
        let ni = &self.network_info;
        let default_idx = ni.default_network_card_index.unwrap_or(0);
        let default_card = ni
            .network_cards
            .iter()
            .find(|c| c.network_card_index == default_idx)
            .map(|c| c.maximum_network_interfaces)
            .unwrap_or(ni.maximum_network_interfaces);
        InstanceLimits {
            instance_type: self.instance_type.clone(),
            vcpus: self.v_cpu_info.as_ref().map(|v| v.default_v_cpus),
            hypervisor: self
                .hypervisor
                .as_deref()
                .map(Hypervisor::parse)
                .unwrap_or(Hypervisor::Unknown),
            bare_metal: self.bare_metal.unwrap_or(false),
            network_cards: ni.maximum_network_cards.unwrap_or(1),
            default_card_max_enis: default_card,
            max_enis_total: ni.maximum_network_interfaces,
            ipv4_per_eni: ni.ipv4_addresses_per_interface,
            // DescribeInstanceTypes does not say whether a type can have a trunk ENI.
            trunking_compatible: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeSubnets {
    pub(crate) subnets: Vec<Subnet>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Tag {
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Subnet {
    pub(crate) subnet_id: String,
    #[serde(default)]
    pub(crate) availability_zone: Option<String>,
    #[serde(default)]
    pub(crate) cidr_block: Option<String>,
    pub(crate) available_ip_address_count: u64,
    #[serde(default)]
    pub(crate) tags: Vec<Tag>,
}

/// "10.0.32.0/19" -> (network, 19).
pub(crate) fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("CIDR {s:?} has no /length"))?;
    let ip: Ipv4Addr = ip.parse().map_err(|e| format!("CIDR {s:?}: {e}"))?;
    let len: u8 = len.parse().map_err(|e| format!("CIDR {s:?}: {e}"))?;
    if len > 32 {
        return Err(format!("CIDR {s:?}: prefix length over 32"));
    }
    Ok((ip, len))
}

impl Subnet {
    pub(crate) fn to_state(&self) -> Result<SubnetState, String> {
        Ok(SubnetState {
            id: self.subnet_id.clone(),
            zone: self.availability_zone.clone(),
            cidr: self.cidr_block.as_deref().map(parse_cidr).transpose()?,
            available_ips: self.available_ip_address_count,
            tags: self
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect::<BTreeMap<_, _>>(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeNetworkInterfaces {
    pub(crate) network_interfaces: Vec<NetworkInterface>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkInterface {
    pub(crate) network_interface_id: String,
    #[serde(default)]
    pub(crate) subnet_id: Option<String>,
    #[serde(default)]
    pub(crate) attachment: Option<Attachment>,
    #[serde(default)]
    pub(crate) private_ip_addresses: Vec<PrivateIp>,
    #[serde(default)]
    pub(crate) ipv4_prefixes: Vec<Ipv4Prefix>,
    #[serde(default)]
    pub(crate) interface_type: Option<String>,
    #[serde(default)]
    pub(crate) tag_set: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Attachment {
    #[serde(default)]
    pub(crate) instance_id: Option<String>,
    #[serde(default)]
    pub(crate) network_card_index: Option<u32>,
    #[serde(default)]
    pub(crate) device_index: Option<u32>,
}

/// The ENI tags ipamd reads (`setUnmanagedENIs`).
const TAG_NO_MANAGE: &str = "node.k8s.amazonaws.com/no_manage";
const TAG_INSTANCE_ID: &str = "node.k8s.amazonaws.com/instance_id";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PrivateIp {
    pub(crate) private_ip_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Ipv4Prefix {
    pub(crate) ipv4_prefix: String,
}

impl NetworkInterface {
    pub(crate) fn to_state(&self) -> Result<NetworkInterfaceState, String> {
        let private_ips = self
            .private_ip_addresses
            .iter()
            .map(|p| {
                p.private_ip_address.parse::<Ipv4Addr>().map_err(|e| {
                    format!(
                        "{}: PrivateIpAddress {:?}: {e}",
                        self.network_interface_id, p.private_ip_address
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let prefixes = self
            .ipv4_prefixes
            .iter()
            .map(|p| parse_cidr(&p.ipv4_prefix))
            .collect::<Result<_, _>>()?;
        let tag = |k: &str| {
            self.tag_set
                .iter()
                .rev()
                .find(|t| t.key == k)
                .map(|t| t.value.clone())
        };
        Ok(NetworkInterfaceState {
            id: self.network_interface_id.clone(),
            subnet_id: self.subnet_id.clone(),
            instance_id: self.attachment.as_ref().and_then(|a| a.instance_id.clone()),
            private_ips,
            prefixes,
            kind: EniKind::parse(self.interface_type.as_deref().unwrap_or("")),
            network_card_index: self
                .attachment
                .as_ref()
                .and_then(|a| a.network_card_index)
                .unwrap_or(0),
            primary: self.attachment.as_ref().and_then(|a| a.device_index) == Some(0),
            no_manage_tag: tag(TAG_NO_MANAGE),
            created_by_instance_tag: tag(TAG_INSTANCE_ID),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_network_card_only() {
        let json = r#"{"InstanceTypes":[{"InstanceType":"p5.48xlarge","VCpuInfo":{"DefaultVCpus":192},"Hypervisor":"nitro",
          "BareMetal":false,"NetworkInfo":{"MaximumNetworkInterfaces":64,"Ipv4AddressesPerInterface":50,
          "MaximumNetworkCards":32,"DefaultNetworkCardIndex":0,
          "NetworkCards":[{"NetworkCardIndex":0,"MaximumNetworkInterfaces":2},{"NetworkCardIndex":1,"MaximumNetworkInterfaces":2}]}}]}"#;
        let d: DescribeInstanceTypes = serde_json::from_str(json).unwrap();
        let l = d.instance_types[0].to_limits();
        assert_eq!(
            (l.default_card_max_enis, l.max_enis_total, l.ipv4_per_eni),
            (2, 64, 50)
        );
        assert_eq!(l.vcpus, Some(192));
        assert_eq!(l.trunking_compatible, None, "not in DescribeInstanceTypes");
    }

    #[test]
    fn missing_vcpu_info_is_unknown_not_zero() {
        let json = r#"{"InstanceTypes":[{"InstanceType":"x.large","NetworkInfo":
          {"MaximumNetworkInterfaces":3,"Ipv4AddressesPerInterface":10}}]}"#;
        let d: DescribeInstanceTypes = serde_json::from_str(json).unwrap();
        let l = d.instance_types[0].to_limits();
        assert_eq!(l.vcpus, None);
        assert_eq!((l.default_card_max_enis, l.network_cards), (3, 1));
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr("10.0.32.0/19").unwrap(),
            ("10.0.32.0".parse().unwrap(), 19)
        );
        assert!(parse_cidr("10.0.32.0").is_err());
        assert!(parse_cidr("10.0.32.0/33").is_err());
        assert!(parse_cidr("2600::/56").is_err());
    }
}

/// aws-sdk-ec2 types -> state: the same fields the AWS CLI prints.
pub(crate) mod sdk {
    use super::parse_cidr;
    use crate::model::limits::{Hypervisor, InstanceLimits};
    use crate::model::state::{EniKind, NetworkInterfaceState, SubnetState};
    use aws_sdk_ec2::types::{InstanceTypeInfo, NetworkInterface, Subnet};

    fn u(v: Option<i32>) -> u32 {
        v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
    }

    pub(crate) fn limits(i: &InstanceTypeInfo) -> Option<InstanceLimits> {
        let ni = i.network_info()?;
        let default_idx = ni.default_network_card_index().unwrap_or(0);
        let default_card = ni
            .network_cards()
            .iter()
            .find(|c| c.network_card_index().unwrap_or(0) == default_idx)
            .and_then(|c| c.maximum_network_interfaces())
            .or(ni.maximum_network_interfaces());
        Some(InstanceLimits {
            instance_type: i.instance_type()?.as_str().to_string(),
            vcpus: i
                .v_cpu_info()
                .and_then(|v| v.default_v_cpus())
                .and_then(|v| u32::try_from(v).ok()),
            hypervisor: i
                .hypervisor()
                .map(|h| Hypervisor::parse(h.as_str()))
                .unwrap_or(Hypervisor::Unknown),
            bare_metal: i.bare_metal().unwrap_or(false),
            network_cards: u(ni.maximum_network_cards()).max(1),
            default_card_max_enis: u(default_card),
            max_enis_total: u(ni.maximum_network_interfaces()),
            ipv4_per_eni: u(ni.ipv4_addresses_per_interface()),
            // DescribeInstanceTypes does not say whether a type can have a trunk ENI.
            trunking_compatible: None,
        })
    }

    pub(crate) fn subnet(s: &Subnet) -> Option<SubnetState> {
        Some(SubnetState {
            id: s.subnet_id()?.to_string(),
            zone: s.availability_zone().map(str::to_string),
            cidr: s.cidr_block().and_then(|c| parse_cidr(c).ok()),
            available_ips: u64::from(u(s.available_ip_address_count())),
            tags: s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect(),
        })
    }

    pub(crate) fn network_interface(n: &NetworkInterface) -> Option<NetworkInterfaceState> {
        let tag = |k: &str| {
            n.tag_set()
                .iter()
                .rev()
                .find(|t| t.key() == Some(k))
                .map(|t| t.value().unwrap_or("").to_string())
        };
        Some(NetworkInterfaceState {
            kind: EniKind::parse(n.interface_type().map(|t| t.as_str()).unwrap_or("")),
            network_card_index: n
                .attachment()
                .and_then(|a| a.network_card_index())
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or(0),
            primary: n.attachment().and_then(|a| a.device_index()) == Some(0),
            no_manage_tag: tag(super::TAG_NO_MANAGE),
            created_by_instance_tag: tag(super::TAG_INSTANCE_ID),
            id: n.network_interface_id()?.to_string(),
            subnet_id: n.subnet_id().map(str::to_string),
            instance_id: n
                .attachment()
                .and_then(|a| a.instance_id())
                .map(str::to_string),
            private_ips: n
                .private_ip_addresses()
                .iter()
                .filter_map(|p| p.private_ip_address()?.parse().ok())
                .collect(),
            prefixes: n
                .ipv4_prefixes()
                .iter()
                .filter_map(|p| parse_cidr(p.ipv4_prefix()?).ok())
                .collect(),
        })
    }
}
