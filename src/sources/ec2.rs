//! EC2 payloads as the AWS CLI prints them (`--output json`, PascalCase).

use crate::model::limits::{Hypervisor, InstanceLimits};
use crate::model::state::{
    CidrReservation, EniKind, NetworkInterfaceState, ReservationKind, SubnetState,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeInstanceTypes {
    pub(crate) instance_types: Vec<InstanceTypeInfo>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InstanceTypeInfo {
    pub(crate) instance_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) v_cpu_info: Option<VCpuInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hypervisor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) bare_metal: Option<bool>,
    pub(crate) network_info: NetworkInfo,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct VCpuInfo {
    pub(crate) default_v_cpus: u32,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkInfo {
    pub(crate) maximum_network_interfaces: u32,
    pub(crate) ipv4_addresses_per_interface: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) maximum_network_cards: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) default_network_card_index: Option<u32>,
    #[serde(default)]
    pub(crate) network_cards: Vec<NetworkCard>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
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

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeSubnets {
    pub(crate) subnets: Vec<Subnet>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Tag {
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) value: String,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Subnet {
    pub(crate) subnet_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) availability_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cidr_block: Option<String>,
    pub(crate) available_ip_address_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) vpc_id: Option<String>,
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
            vpc_id: self.vpc_id.clone(),
            cidr: self.cidr_block.as_deref().map(parse_cidr).transpose()?,
            available_ips: self.available_ip_address_count,
            tags: self
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect::<BTreeMap<_, _>>(),
            cidr_reservations: None,
        })
    }
}

/// `aws ec2 get-subnet-cidr-reservations --subnet-id ...` answers, one list
/// for every subnet in the bundle (each entry names its subnet).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct GetSubnetCidrReservations {
    #[serde(default)]
    pub(crate) subnet_ipv4_cidr_reservations: Vec<SubnetCidrReservation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) subnet_ipv6_cidr_reservations: Vec<SubnetCidrReservation>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SubnetCidrReservation {
    pub(crate) subnet_id: String,
    pub(crate) cidr: String,
    /// `prefix` or `explicit`.
    pub(crate) reservation_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) subnet_cidr_reservation_id: Option<String>,
}

impl SubnetCidrReservation {
    pub(crate) fn to_state(&self) -> Result<CidrReservation, String> {
        let kind = match self.reservation_type.as_str() {
            "prefix" => ReservationKind::Prefix,
            "explicit" => ReservationKind::Explicit,
            other => {
                return Err(format!(
                    "{}: ReservationType {other:?} is neither prefix nor explicit",
                    self.subnet_id
                ))
            }
        };
        Ok(CidrReservation {
            cidr: parse_cidr(&self.cidr)?,
            kind,
        })
    }
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DescribeNetworkInterfaces {
    pub(crate) network_interfaces: Vec<NetworkInterface>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkInterface {
    pub(crate) network_interface_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) attachment: Option<Attachment>,
    #[serde(default)]
    pub(crate) private_ip_addresses: Vec<PrivateIp>,
    #[serde(default)]
    pub(crate) ipv4_prefixes: Vec<Ipv4Prefix>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) interface_type: Option<String>,
    #[serde(default)]
    pub(crate) tag_set: Vec<Tag>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Attachment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) network_card_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device_index: Option<u32>,
}

/// The ENI tags ipamd reads (`setUnmanagedENIs`).
const TAG_NO_MANAGE: &str = "node.k8s.amazonaws.com/no_manage";
const TAG_INSTANCE_ID: &str = "node.k8s.amazonaws.com/instance_id";
/// `VPCRCClusterNameTagKeyFormat` (amazon-vpc-resource-controller-k8s
/// b8d425119bdb, pkg/config/type.go): on every ENI the controller creates.
const TAG_CLUSTER_PREFIX: &str = "kubernetes.io/cluster/";

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PrivateIp {
    pub(crate) private_ip_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) primary: Option<bool>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
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
            primary_ip: self
                .private_ip_addresses
                .iter()
                .find(|p| p.primary == Some(true))
                .and_then(|p| p.private_ip_address.parse().ok()),
            cluster_tag: self
                .tag_set
                .iter()
                .find_map(|t| t.key.strip_prefix(TAG_CLUSTER_PREFIX))
                .map(str::to_string),
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

/// aws-sdk-ec2 types -> the wire types above, the one conversion the live
/// collector makes: from there live and bundle share `to_limits`/`to_state`,
/// and `capture` writes exactly what the collector converted.
pub(crate) mod sdk {
    use super::*;
    use aws_sdk_ec2::types as t;

    fn u(v: Option<i32>) -> Option<u32> {
        v.and_then(|v| u32::try_from(v).ok())
    }

    fn tags(v: &[t::Tag]) -> Vec<Tag> {
        v.iter()
            .filter_map(|t| {
                Some(Tag {
                    key: t.key()?.to_string(),
                    value: t.value().unwrap_or("").to_string(),
                })
            })
            .collect()
    }

    /// `None` without a type name or network info (nothing to model).
    pub(crate) fn instance_type(i: &t::InstanceTypeInfo) -> Option<InstanceTypeInfo> {
        let ni = i.network_info()?;
        Some(InstanceTypeInfo {
            instance_type: i.instance_type()?.as_str().to_string(),
            v_cpu_info: u(i.v_cpu_info().and_then(|v| v.default_v_cpus()))
                .map(|default_v_cpus| VCpuInfo { default_v_cpus }),
            hypervisor: i.hypervisor().map(|h| h.as_str().to_string()),
            bare_metal: i.bare_metal(),
            network_info: NetworkInfo {
                maximum_network_interfaces: u(ni.maximum_network_interfaces()).unwrap_or(0),
                ipv4_addresses_per_interface: u(ni.ipv4_addresses_per_interface()).unwrap_or(0),
                maximum_network_cards: u(ni.maximum_network_cards()),
                default_network_card_index: u(ni.default_network_card_index()),
                network_cards: ni
                    .network_cards()
                    .iter()
                    .filter_map(|c| {
                        Some(NetworkCard {
                            network_card_index: u(c.network_card_index())?,
                            maximum_network_interfaces: u(c.maximum_network_interfaces())?,
                        })
                    })
                    .collect(),
            },
        })
    }

    /// `None` without an id or a count (a subnet the view cannot use).
    pub(crate) fn subnet(s: &t::Subnet) -> Option<Subnet> {
        Some(Subnet {
            subnet_id: s.subnet_id()?.to_string(),
            availability_zone: s.availability_zone().map(str::to_string),
            cidr_block: s.cidr_block().map(str::to_string),
            available_ip_address_count: u64::from(u(s.available_ip_address_count())?),
            vpc_id: s.vpc_id().map(str::to_string),
            tags: tags(s.tags()),
        })
    }

    /// `None` without a subnet, CIDR or type.
    pub(crate) fn cidr_reservation(r: &t::SubnetCidrReservation) -> Option<SubnetCidrReservation> {
        Some(SubnetCidrReservation {
            subnet_id: r.subnet_id()?.to_string(),
            cidr: r.cidr()?.to_string(),
            reservation_type: r.reservation_type()?.as_str().to_string(),
            subnet_cidr_reservation_id: r.subnet_cidr_reservation_id().map(str::to_string),
        })
    }

    pub(crate) fn network_interface(n: &t::NetworkInterface) -> Option<NetworkInterface> {
        Some(NetworkInterface {
            network_interface_id: n.network_interface_id()?.to_string(),
            subnet_id: n.subnet_id().map(str::to_string),
            attachment: n.attachment().map(|a| Attachment {
                instance_id: a.instance_id().map(str::to_string),
                network_card_index: u(a.network_card_index()),
                device_index: u(a.device_index()),
            }),
            private_ip_addresses: n
                .private_ip_addresses()
                .iter()
                .filter_map(|p| {
                    Some(PrivateIp {
                        private_ip_address: p.private_ip_address()?.to_string(),
                        primary: p.primary(),
                    })
                })
                .collect(),
            ipv4_prefixes: n
                .ipv4_prefixes()
                .iter()
                .filter_map(|p| {
                    Some(Ipv4Prefix {
                        ipv4_prefix: p.ipv4_prefix()?.to_string(),
                    })
                })
                .collect(),
            interface_type: n.interface_type().map(|t| t.as_str().to_string()),
            tag_set: tags(n.tag_set()),
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// What the SDK hands the collector converts to the wire type the
        /// bundle holds, and that wire type survives a JSON round trip: so
        /// a capture diagnoses as the live view did.
        #[test]
        fn sdk_objects_become_the_bundle_wire_types() {
            let eni = t::NetworkInterface::builder()
                .network_interface_id("eni-1")
                .subnet_id("subnet-1")
                .interface_type(t::NetworkInterfaceType::Interface)
                .attachment(
                    t::NetworkInterfaceAttachment::builder()
                        .instance_id("i-0abc")
                        .device_index(0)
                        .network_card_index(1)
                        .build(),
                )
                .private_ip_addresses(
                    t::NetworkInterfacePrivateIpAddress::builder()
                        .private_ip_address("10.0.0.5")
                        .build(),
                )
                .ipv4_prefixes(
                    t::Ipv4PrefixSpecification::builder()
                        .ipv4_prefix("10.0.1.0/28")
                        .build(),
                )
                .tag_set(
                    t::Tag::builder()
                        .key("node.k8s.amazonaws.com/no_manage")
                        .value("true")
                        .build(),
                )
                .build();
            let wire = network_interface(&eni).unwrap();
            let st = wire.to_state().unwrap();
            assert_eq!(st.network_card_index, 1);
            assert!(st.primary);
            assert_eq!(st.no_manage_tag.as_deref(), Some("true"));
            assert_eq!(st.prefixes, vec![("10.0.1.0".parse().unwrap(), 28)]);
            let back: NetworkInterface =
                serde_json::from_value(serde_json::to_value(&wire).unwrap()).unwrap();
            assert_eq!(back, wire);

            let sn = t::Subnet::builder()
                .subnet_id("subnet-1")
                .availability_zone("us-west-2a")
                .cidr_block("10.0.0.0/24")
                .available_ip_address_count(17)
                .vpc_id("vpc-1")
                .tags(
                    t::Tag::builder()
                        .key("kubernetes.io/role/cni")
                        .value("1")
                        .build(),
                )
                .build();
            let wire = subnet(&sn).unwrap();
            assert_eq!(wire.to_state().unwrap().available_ips, 17);
            let back: Subnet =
                serde_json::from_value(serde_json::to_value(&wire).unwrap()).unwrap();
            assert_eq!(back, wire);
            // No count: not a subnet the view can use (never 0).
            let no_count = t::Subnet::builder().subnet_id("subnet-2").build();
            assert!(subnet(&no_count).is_none());

            let it = t::InstanceTypeInfo::builder()
                .instance_type(t::InstanceType::M5Large)
                .v_cpu_info(t::VCpuInfo::builder().default_v_cpus(2).build())
                .network_info(
                    t::NetworkInfo::builder()
                        .maximum_network_interfaces(3)
                        .ipv4_addresses_per_interface(10)
                        .build(),
                )
                .build();
            let wire = instance_type(&it).unwrap();
            let l = wire.to_limits();
            assert_eq!(
                (
                    l.vcpus,
                    l.default_card_max_enis,
                    l.ipv4_per_eni,
                    l.network_cards
                ),
                (Some(2), 3, 10, 1)
            );
            let back: InstanceTypeInfo =
                serde_json::from_value(serde_json::to_value(&wire).unwrap()).unwrap();
            assert_eq!(back, wire);
        }
    }
}
