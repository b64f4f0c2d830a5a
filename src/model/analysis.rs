//! Per-node, per-subnet and cluster analysis of a [`ClusterState`]: joins by
//! identity, effective settings, capacity and ipamd's growth decision. Pure
//! and threshold-free; the findings are evaluated on its result, and the
//! view that renderers read is the analysis plus the findings.

use super::capacity::{self, EniSlots, IpMode, KarpenterPodsInput};
use super::cni::CniSettings;
use super::growth::{self, GrowthOutcome, NodeFacts, PoolStats};
use super::holders::{self, EniOwner, SubnetHolders};
use super::limits::{self, InstanceLimits, LimitsSource};
use super::state::*;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Everything the findings and the renderers need, joined and computed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Analysis {
    /// RFC 3339 "now" of the data (bundle `capturedAt`, or wall clock live).
    pub(crate) generated_at: Option<String>,
    pub(crate) cluster: ClusterAnalysis,
    /// Sorted by name.
    pub(crate) nodes: Vec<NodeAnalysis>,
    /// Sorted by id.
    pub(crate) subnets: Vec<SubnetAnalysis>,
    /// Zones with known ENI subnet candidates, sorted by name.
    pub(crate) zones: Vec<ZoneAnalysis>,
    pub(crate) api_calls: Vec<ApiCallCount>,
    /// The Karpenter controller, when known and installed.
    pub(crate) karpenter: Option<KarpenterAnalysis>,
    /// ENIConfig names; `None` when ENIConfigs are unknown.
    pub(crate) eniconfig_names: Option<BTreeSet<String>>,
    /// Whether CloudTrail was read (API-call silence is known).
    pub(crate) api_calls_known: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ClusterAnalysis {
    pub(crate) name: Option<String>,
    pub(crate) region: Option<String>,
    /// From the aws-node DaemonSet template.
    pub(crate) custom_networking: Option<bool>,
    pub(crate) prefix_delegation: Option<bool>,
    /// `None` also when a setting could not be read (see `aws_node_unresolved`).
    pub(crate) aws_node_settings: Option<CniSettings>,
    /// DaemonSet settings whose value could not be known, each with why.
    pub(crate) aws_node_unresolved: Vec<String>,
    /// `None`: unknown; `Some(false)`: no Karpenter controller Deployment found.
    pub(crate) karpenter_installed: Option<bool>,
    pub(crate) karpenter_reserved_enis: Option<u32>,
    pub(crate) karpenter_deployment: Option<String>,
    pub(crate) cloudtrail_lag_seconds: Option<f64>,
    pub(crate) cloudtrail_coverage_start: Option<String>,
    /// Pending pods the scheduler refused for lack of each VPC resource;
    /// `None` when pods are unknown.
    pub(crate) pods_unschedulable: Option<PerResource<u32>>,
}

/// The Karpenter controller's RESERVED_ENIS as it runs with it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KarpenterAnalysis {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// `None`: unknown (unreadable, or a value the controller would not start with).
    pub(crate) reserved_enis: Option<u32>,
    /// Why RESERVED_ENIS could not be known, when it could not.
    pub(crate) unresolved: Option<String>,
}

/// RESERVED_ENIS from the controller's env (ConfigMaps resolved) and flags
/// (`--reserved-enis` wins over the env, so a flag keeps it known).
pub(crate) fn karpenter_analysis(
    k: &KarpenterState,
    cms: &super::env::ConfigMaps,
) -> KarpenterAnalysis {
    let env = super::env::resolve(&k.env, cms);
    let flag_set = k.args.iter().any(|a| {
        let f = a.trim_start_matches('-');
        f == "reserved-enis" || f.starts_with("reserved-enis=")
    });
    let (reserved_enis, unresolved) = match env.get("RESERVED_ENIS") {
        None => (capacity::karpenter_reserved_enis(None, &k.args), None),
        Some(Ok(v)) => (capacity::karpenter_reserved_enis(Some(v), &k.args), None),
        Some(Err(_)) if flag_set => (capacity::karpenter_reserved_enis(None, &k.args), None),
        Some(Err(why)) => (None, Some(why.to_string())),
    };
    KarpenterAnalysis {
        namespace: k.namespace.clone(),
        name: k.name.clone(),
        reserved_enis,
        unresolved,
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SettingsSource {
    /// The env of the aws-node pod running on the node.
    AwsNodePod,
    /// The DaemonSet template (no aws-node pod seen for the node).
    DaemonSet,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub(crate) struct NodeIps {
    pub(crate) total: u32,
    pub(crate) assigned: u32,
    /// Free now: total - assigned - cooldown.
    pub(crate) available: u32,
    pub(crate) cooldown: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ApiCallActivity {
    pub(crate) operation: &'static str,
    pub(crate) last_timestamp: Option<f64>,
    pub(crate) silence_seconds: Option<f64>,
    /// True when no call was seen and the silence is counted from the start
    /// of CloudTrail coverage: the real silence is at least this long.
    pub(crate) silence_is_lower_bound: bool,
}

/// How long ipamd has asked EC2 for no pod IP on a node: the time since the
/// latest IP-allocating call for its ENIs (`Operation::SILENCE_TRACKED`:
/// AssignPrivateIpAddresses, CreateNetworkInterface) in CloudTrail. The one
/// definition the finding, the page, `diagnose` and the recording rule
/// `eks_ipam:node_allocation_call_silence_seconds:min` share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AllocationSilence {
    pub(crate) seconds: f64,
    /// No allocating call was seen since CloudTrail coverage started: the
    /// real silence is at least `seconds`.
    pub(crate) lower_bound: bool,
}

/// An IPAM issue the EKS node monitoring agent reported on a node: its
/// `NetworkingReady` condition False with an `IPAMD*` reason, or one of its
/// `NetworkingReady` events whose message starts with an `IPAMD*` issue name
/// (aws/eks-node-monitoring-agent `docs/node-health-issues.adoc` at
/// 51af5494fde6: IPAMDInconsistentState, IPAMDNoIPs and
/// IPAMDRepeatedlyRestart are events; IPAMDNotReady and IPAMDNotRunning are
/// conditions).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct IpamSignal {
    /// `condition` or `event`.
    pub(crate) source: &'static str,
    pub(crate) issue: String,
    pub(crate) message: String,
    /// Seconds since the event was last seen (events only; `None` when unknown).
    pub(crate) age_seconds: Option<f64>,
    pub(crate) count: u32,
}

/// A VPC resource controller failure on a node: its trunk ENI could not
/// be created, or a pod of it still waiting for an IP got no branch ENI.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ResourceControllerSignal {
    /// `TrunkENICreationFailed` or `BranchAllocationFailed`.
    pub(crate) reason: &'static str,
    /// `namespace/pod` for branch failures, empty for the node's own.
    pub(crate) pod: String,
    pub(crate) message: String,
    /// Seconds since last seen (`None` when unknown).
    pub(crate) age_seconds: Option<f64>,
    pub(crate) count: u32,
}

/// The agent's issue names that concern ipamd.
fn ipam_issue(issue: &str) -> bool {
    issue.starts_with("IPAMD")
}

/// One VPC extended resource on one node, as the scheduler sees it.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub(crate) struct ResourceUse {
    /// `status.allocatable`; `None` when the node does not advertise it.
    pub(crate) allocatable: Option<u32>,
    /// Sum of the effective requests of the node's non-terminated pods;
    /// `None` when pods are unknown or a request is not a count.
    pub(crate) requested: Option<u32>,
}

impl ResourceUse {
    /// Every unit the node advertises is requested (the scheduler places no
    /// further pod that asks for one).
    pub(crate) fn exhausted(&self) -> bool {
        matches!((self.allocatable, self.requested), (Some(a), Some(r)) if a > 0 && r >= a)
    }
}

/// The node's pod IP family: IPv6 when ipamd runs with `ENABLE_IPv6` or its
/// pool holds IPv6 /80 prefixes.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IpFamily {
    Ipv4,
    Ipv6,
    /// No aws-node settings or pool to tell (also every non-ipamd node).
    Unknown,
}

impl IpFamily {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IpFamily::Ipv4 => "ipv4",
            IpFamily::Ipv6 => "ipv6",
            IpFamily::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct NodeAnalysis {
    pub(crate) name: String,
    pub(crate) instance_type: Option<String>,
    pub(crate) zone: Option<String>,
    pub(crate) instance_id: Option<String>,
    pub(crate) compute_type: ComputeType,
    pub(crate) os: NodeOs,
    pub(crate) ip_family: IpFamily,
    /// Karpenter NodePool; `None` for nodes Karpenter does not manage.
    pub(crate) nodepool: Option<String>,
    pub(crate) limits_source: Option<LimitsSource>,
    pub(crate) settings_source: Option<SettingsSource>,
    pub(crate) ip_mode: Option<IpMode>,
    pub(crate) custom_networking: Option<bool>,
    pub(crate) warm_ip_target: Option<u32>,
    pub(crate) minimum_ip_target: Option<u32>,
    pub(crate) warm_eni_target: Option<u32>,
    pub(crate) warm_prefix_target: Option<u32>,
    pub(crate) eni_config: Option<String>,
    /// Subnet of the node's primary ENI (ipamd's pool, else EC2).
    pub(crate) subnet_id: Option<String>,
    /// Where ipamd can create the node's next ENI, most free IPs first
    /// (see [`super::discovery`]); `None` when unknown, or not an IPv4
    /// ipamd node.
    pub(crate) eni_subnet_candidates: Option<Vec<String>>,
    /// IPs ipamd can hand to pods under the node's settings.
    pub(crate) pod_ip_capacity: Option<u32>,
    /// pod_ip_capacity + the 2 host-network pods the formulas assume.
    pub(crate) cni_max_pods: Option<u32>,
    /// `status.capacity.pods`: what kubelet, scheduler and Karpenter assume.
    pub(crate) max_pods: Option<u32>,
    pub(crate) karpenter_expected_max_pods: Option<u32>,
    /// max_pods - host-network pods - pod_ip_capacity; > 0 means pods will hang.
    pub(crate) pod_ip_overcommit: Option<i64>,
    pub(crate) pods_pod_network: Option<u32>,
    pub(crate) pods_host_network: Option<u32>,
    pub(crate) pods_waiting_for_ip: Option<u32>,
    pub(crate) ips: Option<NodeIps>,
    pub(crate) enis: Option<u32>,
    pub(crate) enis_max: Option<u32>,
    pub(crate) growth_at_zero_free: Option<GrowthOutcome>,
    pub(crate) ip_growth_blocked: Option<bool>,
    /// One entry per network card ipamd manages, card 0 first, when it
    /// manages more than one (ENABLE_MULTI_NIC); empty otherwise. The node
    /// figures above are then the totals (capacity, ips) or the node's
    /// outcome over its cards (growth); `enis`/`enis_max` stay card 0's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) network_cards: Vec<NetworkCardAnalysis>,
    pub(crate) ipamd_no_available_ip_total: Option<f64>,
    pub(crate) api_calls: Vec<ApiCallActivity>,
    /// The node monitoring agent's IPAM-related signals on the node (any
    /// compute type; the findings read them for Auto Mode nodes).
    pub(crate) ipam_signals: Vec<IpamSignal>,
    /// The VPC resource controller's trunk/branch failures here.
    pub(crate) resource_controller_signals: Vec<ResourceControllerSignal>,
    /// The VPC extended resources the node advertises and its pods request
    /// (security groups for pods, Windows IPs); scheduler-side, on every shape.
    pub(crate) vpc_resources: PerResource<ResourceUse>,
    /// The effective aws-node settings the numbers above were computed with
    /// (not serialised: the target fields above show them).
    #[serde(skip)]
    pub(crate) settings: Option<CniSettings>,
    /// Settings of this node's aws-node env that could not be read
    /// (`valueFrom`/`envFrom`); `settings` is `None` then.
    #[serde(skip)]
    pub(crate) settings_unresolved: Vec<String>,
}

impl NodeAnalysis {
    /// The smallest silence over the allocating calls (see
    /// [`AllocationSilence`]); `None` where CloudTrail was not read or ipamd
    /// does not run.
    pub(crate) fn allocation_silence(&self) -> Option<AllocationSilence> {
        self.api_calls
            .iter()
            .filter_map(|c| {
                c.silence_seconds.map(|seconds| AllocationSilence {
                    seconds,
                    lower_bound: c.silence_is_lower_bound,
                })
            })
            .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
    }
}

/// One network card's datastore under ENABLE_MULTI_NIC (amazon-vpc-cni-k8s
/// v1.23.1, b52188387f2e, `pkg/ipamd/ipamd.go`): its own pool, ENI slots
/// (`hasRoomForEni(networkCard)`: the same maxENI on every card, less that
/// card's unmanaged and excluded ENIs; the trunk slot and the primary ENI
/// only on card 0) and growth decision (`isDatastorePoolTooLow` returns one
/// decision per card; cards > 0 use WARM_IP_TARGET=1, MINIMUM_IP_TARGET=1).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub(crate) struct NetworkCardAnalysis {
    pub(crate) index: u32,
    pub(crate) pod_ip_capacity: Option<u32>,
    pub(crate) ips: NodeIps,
    pub(crate) enis: u32,
    pub(crate) growth_at_zero_free: Option<GrowthOutcome>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SubnetRole {
    Node,
    Pod,
}

impl SubnetRole {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SubnetRole::Node => "node",
            SubnetRole::Pod => "pod",
        }
    }
}

/// What the VPC CNI uses a subnet for (docs/design.md section 8: one value per
/// subnet, in this order of precedence).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CniUse {
    /// Tagged `kubernetes.io/role/cni=0`: ipamd creates no ENI in it.
    Excluded,
    /// Named by an ENIConfig (custom networking).
    Pod,
    /// A node's primary subnet (or an EC2NodeClass's).
    Node,
    /// Tagged `kubernetes.io/role/cni`: a discovered candidate for new ENIs.
    Discovered,
}

impl CniUse {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CniUse::Excluded => "excluded",
            CniUse::Pod => "pod",
            CniUse::Node => "node",
            CniUse::Discovered => "discovered",
        }
    }
}

/// The subnets of one zone that ipamd can draw new pod IPs from (the
/// union of its nodes' ENI subnet candidates), and their headroom.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ZoneAnalysis {
    pub(crate) zone: String,
    /// Candidate subnets, sorted by id.
    pub(crate) subnets: Vec<String>,
    pub(crate) available_ips: u64,
    /// `None` when a candidate's size is unknown.
    pub(crate) size_ips: Option<u64>,
    /// `None` when a candidate's free /28 count is unknown.
    pub(crate) free_prefixes: Option<u64>,
    /// Nodes whose next ENI can go to one of them (the group's nodes).
    pub(crate) nodes: u32,
    /// Distinct candidate sets among the zone's nodes (1 but for mixed
    /// node groups, e.g. custom networking next to Auto Mode).
    pub(crate) candidate_sets: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct SubnetAnalysis {
    pub(crate) id: String,
    pub(crate) zone: Option<String>,
    pub(crate) role: SubnetRole,
    pub(crate) cni_use: CniUse,
    /// Size of the smallest zone candidate set this subnet belongs to (0: it
    /// is no node's candidate for new ENIs). Above 1, the zone's headroom,
    /// not this subnet's, is what pods depend on.
    pub(crate) zone_candidates: u32,
    pub(crate) cidr: Option<String>,
    pub(crate) available_ips: u64,
    /// Usable addresses: CIDR size minus the 5 AWS reserves.
    pub(crate) size_ips: Option<u64>,
    /// Fully free, aligned /28 blocks (prefix delegation needs one per
    /// prefix), inside `prefix` CIDR reservations included, inside
    /// `explicit` ones not.
    pub(crate) free_prefixes: Option<u64>,
    /// Unused addresses of the subnet's `prefix` CIDR reservations: not in
    /// `available_ips` (EC2 leaves them out), yet prefix delegation draws
    /// /28s from them. `None` when the reservations are unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) prefix_reserved_free_ips: Option<u64>,
    /// Who holds the subnet's addresses (see [`super::holders`]); `None`
    /// without the subnet's CIDR, ENIs or reservations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) holders: Option<SubnetHolders>,
    pub(crate) nodes: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct ApiCallCount {
    pub(crate) operation: &'static str,
    pub(crate) error_code: &'static str,
    pub(crate) count: u64,
}

/// EC2 error codes worth their own label value; the rest become `other`.
const KNOWN_ERROR_CODES: &[&str] = &[
    "Client.InsufficientFreeAddressesInSubnet",
    "Client.InsufficientCidrBlocks",
    "Client.PrivateIpAddressLimitExceeded",
    "Client.AttachmentLimitExceeded",
    "Client.RequestLimitExceeded",
    "Client.UnauthorizedOperation",
    "Client.InvalidParameterValue",
    "Client.InvalidNetworkInterfaceID.NotFound",
    "Client.NetworkInterfaceLimitExceeded",
    "Server.InternalError",
    "Server.Unavailable",
];

/// Closed label set for `error_code`.
pub(crate) fn error_code_label(code: Option<&str>) -> &'static str {
    match code {
        None => "none",
        Some(c) => {
            // CloudTrail sometimes omits the `Client.` prefix.
            let wanted = if c.contains('.') {
                c.to_string()
            } else {
                format!("Client.{c}")
            };
            KNOWN_ERROR_CODES
                .iter()
                .find(|k| **k == wanted)
                .copied()
                .unwrap_or("other")
        }
    }
}

fn ts_secs(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// ENIConfig name selection (`eniconfig.GetNodeSpecificENIConfigName`).
pub(crate) fn eni_config_name(node: &NodeState, s: &CniSettings) -> String {
    if let Some(v) = node.labels.get("vpc.amazonaws.com/externalEniConfig") {
        return v.clone();
    }
    if let Some(v) = node.annotations.get(s.eni_config_annotation()) {
        return v.clone();
    }
    if let Some(v) = node.labels.get(s.eni_config_label()) {
        return v.clone();
    }
    "default".to_string()
}

/// ipamd's `GetIPStats("4")` plus cooldown, from `/v1/enis`.
pub fn pool_stats(
    pool: &IpamdPool,
    mode: IpMode,
    now: Option<Timestamp>,
    cooldown_s: u32,
) -> PoolStats {
    let mut st = PoolStats::default();
    for eni in pool.enis.iter().filter(|e| !e.excluded) {
        for cidr in &eni.cidrs {
            if cidr.prefix != (mode == IpMode::Prefix) {
                continue;
            }
            st.total_ips += if cidr.prefix {
                capacity::IPS_PER_PREFIX
            } else {
                1
            };
            let assigned = cidr.addresses.iter().filter(|a| a.assigned).count() as u32;
            st.assigned_ips += assigned;
            if cidr.prefix && assigned == 0 {
                st.free_prefixes += 1;
            }
            if let Some(now) = now {
                st.cooldown_ips += cidr
                    .addresses
                    .iter()
                    .filter(|a| !a.assigned)
                    .filter_map(|a| a.unassigned_at)
                    .filter(|t| {
                        let age = ts_secs(now) - ts_secs(*t);
                        (0.0..=f64::from(cooldown_s)).contains(&age)
                    })
                    .count() as u32;
            }
        }
    }
    st.assigned_ips = st.assigned_ips.min(st.total_ips);
    st.cooldown_ips = st.cooldown_ips.min(st.total_ips - st.assigned_ips);
    st
}

/// The API group of Auto Mode's NodeClass (`nodeClassRef.group`).
const AUTO_NODECLASS_GROUP: &str = "eks.amazonaws.com";

struct Lookups<'a> {
    limits_live: HashMap<&'a str, &'a InstanceLimits>,
    nodeclaim_by_node: HashMap<&'a str, &'a NodeClaimState>,
    nodeclass_by_name: HashMap<&'a str, &'a NodeClassState>,
    auto_nodeclass_by_name: HashMap<&'a str, &'a AutoNodeClassState>,
    eniconfig_names: Option<BTreeSet<&'a str>>,
    /// ENI id -> node name.
    eni_node: HashMap<&'a str, &'a str>,
    instance_node: HashMap<&'a str, &'a str>,
    /// EC2 ENIs attached to each instance; `None` when ENIs are unknown.
    enis_by_instance: Option<HashMap<&'a str, Vec<&'a NetworkInterfaceState>>>,
    /// Subnets tagged `kubernetes.io/role/cni=0`; `None` when subnets are unknown.
    excluded_subnets: Option<BTreeSet<&'a str>>,
}

fn limits_for<'a>(lk: &Lookups<'a>, t: &str) -> Option<(&'a InstanceLimits, LimitsSource)> {
    if let Some(l) = lk.limits_live.get(t) {
        return Some((l, LimitsSource::DescribeInstanceTypes));
    }
    limits::embedded(t).map(|l| (l, LimitsSource::EmbeddedTable))
}

/// Analyses the whole state. Pure: same state, same analysis.
pub(crate) fn analyse(state: &ClusterState) -> Analysis {
    let now = state.now;
    let ds_settings: Option<CniSettings> = state
        .aws_node
        .as_ref()
        .and_then(|a| a.as_ref())
        .map(|a| CniSettings::from_container(&a.daemonset_env, &state.config_maps));

    let mut lk = Lookups {
        limits_live: HashMap::new(),
        nodeclaim_by_node: HashMap::new(),
        nodeclass_by_name: HashMap::new(),
        auto_nodeclass_by_name: HashMap::new(),
        eniconfig_names: state
            .eniconfigs
            .as_ref()
            .map(|v| v.iter().map(|e| e.name.as_str()).collect()),
        eni_node: HashMap::new(),
        instance_node: HashMap::new(),
        enis_by_instance: state.network_interfaces.as_deref().map(|enis| {
            let mut m: HashMap<&str, Vec<&NetworkInterfaceState>> = HashMap::new();
            for e in enis {
                if let Some(i) = e.instance_id.as_deref() {
                    m.entry(i).or_default().push(e);
                }
            }
            m
        }),
        excluded_subnets: state.subnets.as_ref().map(|subnets| {
            subnets
                .iter()
                .filter(|s| super::discovery::excluded(&s.tags))
                .map(|s| s.id.as_str())
                .collect()
        }),
    };
    for l in state.instance_types.iter().flatten() {
        lk.limits_live.insert(l.instance_type.as_str(), l);
    }
    for nc in state.nodeclaims.iter().flatten() {
        if let Some(n) = &nc.node_name {
            lk.nodeclaim_by_node.insert(n.as_str(), nc);
        }
    }
    for c in state.ec2nodeclasses.iter().flatten() {
        lk.nodeclass_by_name.insert(c.name.as_str(), c);
    }
    for c in state.nodeclasses.iter().flatten() {
        lk.auto_nodeclass_by_name.insert(c.name.as_str(), c);
    }
    let nodes_in: &[NodeState] = state.nodes.as_deref().unwrap_or(&[]);
    for n in nodes_in {
        if let Some(i) = &n.instance_id {
            lk.instance_node.insert(i.as_str(), n.name.as_str());
        }
        if let Some(p) = state.ipamd.get(&n.name).and_then(|s| s.pool.as_ref()) {
            for e in p.all_enis() {
                lk.eni_node.insert(e.id.as_str(), n.name.as_str());
            }
        }
    }
    for eni in state.network_interfaces.as_deref().into_iter().flatten() {
        if let Some(&node) = eni
            .instance_id
            .as_deref()
            .and_then(|i| lk.instance_node.get(i))
        {
            lk.eni_node.entry(eni.id.as_str()).or_insert(node);
        }
    }

    // Pods per node, and pods waiting for an IP. A failure event names its
    // pod by UID: a pod recreated under the same name (a StatefulSet's, on
    // another node) is another pod and does not inherit it. Without a UID
    // the name counts only for a pod pending on the event's node.
    let failures: Option<FailureIndex> = state.sandbox_failures.as_ref().map(|f| {
        let mut ix = FailureIndex::default();
        for f in f {
            match f.pod_uid.as_deref().and_then(uid_key) {
                Some(uid) => {
                    ix.by_uid.insert(uid);
                }
                None => {
                    if let Some(node) = f.node.as_deref() {
                        ix.by_name_on_node
                            .insert((f.namespace.as_str(), f.pod.as_str(), node));
                    }
                }
            }
        }
        ix
    });
    let mut pod_counts: HashMap<&str, NodePodCounts> = HashMap::new();
    if let Some(pods) = &state.pods {
        for (node, c) in &pods.nodes {
            let e = pod_counts.entry(node).or_default();
            e.pod = c.pod_network;
            e.host = c.host_network;
        }
        for p in &pods.pending_without_ip {
            let failed = failures.as_ref().is_some_and(|f| {
                f.by_uid.contains(&p.key)
                    || f.by_name_on_node
                        .contains(&(&*p.namespace, &*p.name, &*p.node))
            });
            if failed {
                pod_counts.entry(&p.node).or_default().waiting += 1;
            }
        }
    }

    // API calls: last per (node, operation), and counts.
    let mut last_call: HashMap<(&str, Operation), Timestamp> = HashMap::new();
    let mut counts: BTreeMap<(Operation, &'static str), u64> = BTreeMap::new();
    let mut newest_event: Option<Timestamp> = None;
    if let Some(api) = &state.api_calls {
        for call in &api.calls {
            newest_event = newest_event.max(Some(call.time));
            let node = call
                .eni_id
                .as_deref()
                .and_then(|e| lk.eni_node.get(e))
                .or_else(|| {
                    call.instance_id
                        .as_deref()
                        .and_then(|i| lk.instance_node.get(i))
                });
            let Some(&node) = node else { continue };
            let e = last_call.entry((node, call.operation)).or_insert(call.time);
            *e = (*e).max(call.time);
            *counts
                .entry((call.operation, error_code_label(call.error_code.as_deref())))
                .or_default() += 1;
        }
    }

    let karpenter: Option<Option<KarpenterAnalysis>> = state.karpenter.as_ref().map(|k| {
        k.as_ref()
            .map(|k| karpenter_analysis(k, &state.config_maps))
    });
    let reserved_enis = karpenter.as_ref().and_then(|k| k.as_ref()?.reserved_enis);

    // Settings read from ConfigMaps/Secrets are unknown: so is every number
    // that depends on the settings (never the defaults in their place).
    let ds_resolved = ds_settings.as_ref().filter(|s| s.resolved());
    let mut pod_settings: HashMap<usize, CniSettings> = HashMap::new();
    for env in state.aws_node_pod_env.values() {
        pod_settings
            .entry(Arc::as_ptr(env) as usize)
            .or_insert_with(|| CniSettings::from_container(env, &state.config_maps));
    }
    let mut networking_events: HashMap<&str, Vec<&NetworkingEvent>> = HashMap::new();
    for e in state.networking_events.iter().flatten() {
        networking_events
            .entry(e.node.as_str())
            .or_default()
            .push(e);
    }
    // Resource controller events by node: a trunk failure names the Node;
    // a branch failure names a Pod, which counts only while it still waits
    // on a node without an IP (else it got its ENI, or is gone).
    let mut rc_events: HashMap<&str, Vec<&ResourceControllerEvent>> = HashMap::new();
    if let Some(evs) = &state.resource_controller_events {
        let waiting: HashMap<(&str, &str), &str> = (state.pods.iter())
            .flat_map(|p| &p.pending_without_ip)
            .map(|p| ((&*p.namespace, &*p.name), &*p.node))
            .collect();
        for e in evs {
            let node = match e.reason {
                RcEventReason::TrunkEniCreationFailed => Some(e.object.as_str()),
                RcEventReason::BranchAllocationFailed => waiting
                    .get(&(e.namespace.as_str(), e.object.as_str()))
                    .copied(),
            };
            if let Some(node) = node {
                rc_events.entry(node).or_default().push(e);
            }
        }
    }
    let joined = Joined {
        rc_events: &rc_events,
        networking_events: &networking_events,
        pod_settings: &pod_settings,
        state,
        lookups: &lk,
        daemonset_settings: ds_settings.as_ref(),
        pod_counts: &pod_counts,
        events_known: failures.is_some(),
        reserved_enis,
        last_call: &last_call,
    };
    let mut nodes: Vec<NodeAnalysis> = nodes_in.iter().map(|n| analyse_node(n, &joined)).collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));

    let mut subnets = analyse_subnets(state, &nodes, ds_settings.as_ref());
    let zones = analyse_zones(&nodes, &mut subnets);

    let cluster = ClusterAnalysis {
        name: state.cluster_name.clone(),
        region: state.region.clone(),
        custom_networking: ds_resolved.map(|s| s.custom_networking),
        prefix_delegation: ds_resolved.map(|s| s.prefix_delegation),
        aws_node_settings: ds_resolved.cloned(),
        aws_node_unresolved: ds_settings
            .as_ref()
            .map(|s| s.unresolved.clone())
            .unwrap_or_default(),
        karpenter_installed: karpenter.as_ref().map(|k| k.is_some()),
        karpenter_reserved_enis: reserved_enis,
        karpenter_deployment: karpenter
            .as_ref()
            .and_then(|k| k.as_ref())
            .map(|k| format!("{}/{}", k.namespace, k.name)),
        cloudtrail_lag_seconds: match (now, newest_event) {
            (Some(now), Some(newest)) => Some((ts_secs(now) - ts_secs(newest)).max(0.0)),
            _ => None,
        },
        cloudtrail_coverage_start: state
            .api_calls
            .as_ref()
            .and_then(|a| a.coverage_start)
            .map(|t| t.to_string()),
        pods_unschedulable: state.pods.as_ref().map(|p| p.unschedulable),
    };

    let api_calls = counts
        .into_iter()
        .map(|((op, code), count)| ApiCallCount {
            operation: op.as_str(),
            error_code: code,
            count,
        })
        .collect();

    Analysis {
        generated_at: now.map(|t| t.to_string()),
        cluster,
        nodes,
        subnets,
        zones,
        api_calls,
        karpenter: karpenter.flatten(),
        eniconfig_names: lk
            .eniconfig_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        api_calls_known: state.api_calls.is_some(),
    }
}

/// Sandbox failures by the pod they name.
#[derive(Default)]
struct FailureIndex<'a> {
    by_uid: HashSet<u128>,
    /// (namespace, pod, node) of failures whose event carries no UID.
    by_name_on_node: HashSet<(&'a str, &'a str, &'a str)>,
}

/// What every node's analysis reads besides the node itself: the state and
/// the joins built once for all nodes.
struct Joined<'a> {
    state: &'a ClusterState,
    lookups: &'a Lookups<'a>,
    daemonset_settings: Option<&'a CniSettings>,
    pod_counts: &'a HashMap<&'a str, NodePodCounts>,
    /// Whether sandbox-failure events are known (else waiting pods are unknown).
    events_known: bool,
    reserved_enis: Option<u32>,
    last_call: &'a HashMap<(&'a str, Operation), Timestamp>,
    /// Settings of each distinct aws-node pod env (by pointer: the pods of
    /// one DaemonSet share one), resolved once per analysis, not per node.
    pod_settings: &'a HashMap<usize, CniSettings>,
    /// The node monitoring agent's NetworkingReady events, by node name
    /// (a Node is named uniquely; its events carry no other key).
    networking_events: &'a HashMap<&'a str, Vec<&'a NetworkingEvent>>,
    /// The VPC resource controller's failures, by node.
    rc_events: &'a HashMap<&'a str, Vec<&'a ResourceControllerEvent>>,
}

fn effective_settings(
    n: &NodeState,
    state: &ClusterState,
    ds: Option<&CniSettings>,
    pod_settings: &HashMap<usize, CniSettings>,
) -> Option<(CniSettings, SettingsSource)> {
    if let Some(env) = state.aws_node_pod_env.get(&n.name) {
        let s = match pod_settings.get(&(Arc::as_ptr(env) as usize)) {
            Some(s) => s.clone(),
            None => CniSettings::from_container(env, &state.config_maps),
        };
        return Some((s, SettingsSource::AwsNodePod));
    }
    ds.map(|s| (s.clone(), SettingsSource::DaemonSet))
}

fn analyse_node(n: &NodeState, j: &Joined<'_>) -> NodeAnalysis {
    let Joined {
        state,
        lookups: lk,
        daemonset_settings: ds,
        events_known,
        reserved_enis,
        last_call,
        ..
    } = *j;
    let pods = j.pod_counts.get(n.name.as_str());
    let now = state.now;
    // aws-node's ipamd serves pod IPs only on Linux EC2 nodes (docs/design.md
    // section 8): on Auto Mode, hybrid, Fargate and Windows nodes neither
    // its settings nor the IPv4 pool model apply, and the numbers that
    // depend on them are unknown, never computed with the wrong model.
    let ipamd_node = n.compute_type == ComputeType::Ec2 && n.os == NodeOs::Linux;
    let settings = effective_settings(n, state, ds, j.pod_settings).filter(|_| ipamd_node);
    let limits = n.instance_type.as_deref().and_then(|t| limits_for(lk, t));
    let ipamd = state.ipamd.get(&n.name).filter(|_| ipamd_node);
    let pool = ipamd.and_then(|i| i.pool.as_ref());

    let unresolved: Vec<String> = settings
        .as_ref()
        .map(|(s, _)| s.unresolved.clone())
        .unwrap_or_default();
    let resolved = settings.as_ref().map(|(s, _)| s).filter(|s| s.resolved());
    let pool_ipv6 = pool.is_some_and(|p| p.enis.iter().any(|e| e.ipv6_prefixes > 0));
    let ip_family = match (ipamd_node, resolved.map(|s| s.ipv6)) {
        (false, _) => IpFamily::Unknown,
        (true, Some(true)) => IpFamily::Ipv6,
        _ if pool_ipv6 => IpFamily::Ipv6,
        (true, Some(false)) => IpFamily::Ipv4,
        (true, None) => IpFamily::Unknown,
    };
    // IPv6 nodes get a /80 per node: no IPv4 capacity, pool or growth.
    let s = resolved.filter(|_| ip_family == IpFamily::Ipv4);
    let mode = match (s, limits) {
        (Some(s), Some((l, _))) => Some(capacity::ip_mode(s, l)),
        _ => None,
    };
    let slots = match (s, limits) {
        (Some(s), Some((l, _))) => eni_slots(n, ipamd, lk, s, l),
        _ => None,
    };
    let pod_ip_capacity = match (s, limits, &slots) {
        (Some(s), Some((l, _)), Some(slots)) => Some(capacity::pod_ip_capacity(s, l, slots)),
        _ => None,
    };
    let enis_max = match (s, limits) {
        (Some(s), Some((l, _))) => Some(capacity::max_enis(s, l)),
        _ => None,
    };
    let subnet_id = pool
        .and_then(|p| p.enis.iter().find(|e| e.primary))
        .and_then(|e| e.subnet_id.clone())
        .or_else(|| {
            let by_instance = lk.enis_by_instance.as_ref()?;
            by_instance
                .get(n.instance_id.as_deref()?)?
                .iter()
                .find(|e| e.primary)
                .and_then(|e| e.subnet_id.clone())
        })
        .filter(|_| ipamd_node);
    let eni_subnet_candidates = match (s, &state.subnets) {
        (Some(s), Some(subnets)) => {
            let eniconfig_subnet =
                s.custom_networking
                    .then(|| eni_config_name(n, s))
                    .and_then(|name| {
                        state
                            .eniconfigs
                            .iter()
                            .flatten()
                            .find(|e| e.name == name)
                            .and_then(|e| e.subnet.as_deref())
                    });
            super::discovery::candidate_subnets(
                subnet_id.as_deref().unwrap_or_default(),
                subnets,
                s,
                eniconfig_subnet,
            )
            .map(|v| v.into_iter().map(|x| x.id.clone()).collect())
        }
        // Auto Mode: the subnets its NodeClass selects (the NodeClaim
        // names it: `spec.nodeClassRef`, group `eks.amazonaws.com`).
        (None, Some(subnets)) if n.compute_type == ComputeType::Auto => lk
            .nodeclaim_by_node
            .get(n.name.as_str())
            .filter(|c| c.nodeclass_group.as_deref() == Some(AUTO_NODECLASS_GROUP))
            .and_then(|c| c.nodeclass.as_deref())
            .and_then(|name| lk.auto_nodeclass_by_name.get(name))
            .and_then(|class| {
                super::discovery::auto_mode_candidates(class, n.zone.as_deref(), subnets)
            })
            .map(|v| v.into_iter().map(|x| x.id.clone()).collect()),
        _ => None,
    };

    let mut ipam_signals: Vec<IpamSignal> = Vec::new();
    if let Some(c) = n.networking_ready.as_ref().filter(|c| c.status == "False") {
        let issue = c.reason.clone().unwrap_or_default();
        if ipam_issue(&issue) {
            ipam_signals.push(IpamSignal {
                source: "condition",
                issue,
                message: c.message.clone().unwrap_or_default(),
                age_seconds: None,
                count: 1,
            });
        }
    }
    for e in j
        .networking_events
        .get(n.name.as_str())
        .into_iter()
        .flatten()
    {
        if ipam_issue(&e.issue) {
            ipam_signals.push(IpamSignal {
                source: "event",
                issue: e.issue.clone(),
                message: e.message.clone(),
                age_seconds: match (now, e.last_seen) {
                    (Some(now), Some(t)) => Some((ts_secs(now) - ts_secs(t)).max(0.0)),
                    _ => None,
                },
                count: e.count,
            });
        }
    }
    let resource_controller_signals: Vec<ResourceControllerSignal> = (j
        .rc_events
        .get(n.name.as_str()))
    .into_iter()
    .flatten()
    .map(|e| ResourceControllerSignal {
        reason: e.reason.as_str(),
        pod: match e.reason {
            RcEventReason::TrunkEniCreationFailed => String::new(),
            RcEventReason::BranchAllocationFailed => format!("{}/{}", e.namespace, e.object),
        },
        message: e.message.clone(),
        age_seconds: match (now, e.last_seen) {
            (Some(now), Some(t)) => Some((ts_secs(now) - ts_secs(t)).max(0.0)),
            _ => None,
        },
        count: e.count,
    })
    .collect();
    let vpc_resources = PerResource::from_fn(|r| ResourceUse {
        allocatable: *n.vpc_allocatable.get(r),
        requested: state
            .pods
            .as_ref()
            .and_then(|p| match p.nodes.get(n.name.as_str()) {
                None => Some(0),
                Some(c) => (*c.vpc_requests_unknown.get(r) == 0).then_some(*c.vpc_requested.get(r)),
            }),
    });
    let (pods_pod, pods_host, waiting) = if state.pods.is_some() {
        let (p, h, w) = pods
            .map(|c| (c.pod, c.host, c.waiting))
            .unwrap_or((0, 0, 0));
        (Some(p), Some(h), events_known.then_some(w))
    } else {
        (None, None, None)
    };

    let overcommit = match (n.capacity_pods, pods_host, pod_ip_capacity) {
        (Some(max), Some(host), Some(cap)) => Some(capacity::overcommit(max, host, cap)),
        _ => None,
    };

    // Auto Mode nodes carry `karpenter.sh/nodepool` too, but EKS (not the
    // cluster's Karpenter and its RESERVED_ENIS) sets their max pods.
    let karpenter_nodepool = n
        .nodepool
        .as_ref()
        .filter(|_| n.compute_type == ComputeType::Ec2);
    let karpenter_expected = match (karpenter_nodepool, reserved_enis, limits) {
        (Some(_), Some(reserved), Some((l, _))) => {
            let class_name = n.nodeclass.as_deref().or_else(|| {
                lk.nodeclaim_by_node
                    .get(n.name.as_str())
                    .and_then(|c| c.nodeclass.as_deref())
            });
            let class = class_name.and_then(|c| lk.nodeclass_by_name.get(c));
            // Without the EC2NodeClass we cannot know its kubelet overrides.
            class.and_then(|c| {
                capacity::karpenter_expected_max_pods(
                    l,
                    &KarpenterPodsInput {
                        reserved_enis: reserved,
                        max_pods: c.max_pods.clone(),
                        pods_per_core: c.pods_per_core,
                        ami_family: c.ami_family,
                        efa_only_card0: c.efa_only_card0,
                    },
                )
            })
        }
        _ => None,
    };

    let (ips, enis, growth) = match (pool, s, mode, limits) {
        (Some(pool), Some(s), Some(mode), Some((l, _))) if slots.is_some() => {
            let slots = slots.unwrap_or_default();
            let st = pool_stats(pool, mode, now, s.ip_cooldown_seconds);
            let ips = NodeIps {
                total: st.total_ips,
                assigned: st.assigned_ips,
                cooldown: st.cooldown_ips,
                available: st.total_ips - st.assigned_ips - st.cooldown_ips,
            };
            let enis = pool.enis.len() as u32;
            let facts = NodeFacts {
                mode,
                max_ips_per_eni: capacity::ips_per_eni(mode, l),
                max_pods: n.capacity_pods,
                eni_slots_free: eni_slots_free(pool, s, &slots, enis_max.unwrap_or(0)),
                room_on_attached_enis: room_on_attached_enis(pool, s, l),
                cordoned: n.unschedulable,
            };
            (Some(ips), Some(enis), Some(growth::predict(s, &st, &facts)))
        }
        (Some(pool), _, _, _) => (None, Some(pool.enis.len() as u32), None),
        _ => (None, None, None),
    };
    // Without the slot count the pool numbers stand, the growth is unknown.
    let (ips, growth) = match (pool, s, mode, limits) {
        (Some(pool), Some(s), Some(mode), Some(_)) if ips.is_none() => {
            let st = pool_stats(pool, mode, now, s.ip_cooldown_seconds);
            (Some(NodeIps::from(st)), None)
        }
        _ => (ips, growth),
    };

    // ENABLE_MULTI_NIC: cards 1.. each have a pool, capacity and growth
    // rule; the node's figures become totals over its cards.
    let network_cards = match (pool, s, mode, limits, ips) {
        (Some(pool), Some(s), Some(mode), Some((l, _)), Some(ips0))
            if !pool.other_cards.is_empty() =>
        {
            let mut cards = vec![NetworkCardAnalysis {
                index: 0,
                pod_ip_capacity,
                ips: ips0,
                enis: pool.enis.len() as u32,
                growth_at_zero_free: growth,
            }];
            for c in &pool.other_cards {
                cards.push(secondary_card(n, c, ipamd, lk, s, mode, l, now, enis_max));
            }
            cards
        }
        _ => Vec::new(),
    };
    let (pod_ip_capacity, ips, growth) = if network_cards.is_empty() {
        // Without /v1/enis the managed cards are unknown (a card holding only
        // an EFA-only ENI is skipped, `markUnmanagedNetworkCards`): card 0's
        // capacity alone would understate the node.
        let more_cards = s.is_some_and(|s| s.multi_nic)
            && limits.is_some_and(|(l, _)| l.network_cards > 1)
            && pool.is_none();
        (pod_ip_capacity.filter(|_| !more_cards), ips, growth)
    } else {
        let capacity: Option<u32> = network_cards.iter().map(|c| c.pod_ip_capacity).sum();
        let total = network_cards
            .iter()
            .fold(NodeIps::default(), |t, c| NodeIps {
                total: t.total + c.ips.total,
                assigned: t.assigned + c.ips.assigned,
                cooldown: t.cooldown + c.ips.cooldown,
                available: t.available + c.ips.available,
            });
        (capacity, Some(total), node_growth(&network_cards))
    };

    // aws-node's allocation calls: their silence means nothing where ipamd
    // does not run (the VPC resource controller or EKS assigns those IPs).
    let api_calls = if state.api_calls.is_some() && n.instance_id.is_some() && ipamd_node {
        let coverage = state.api_calls.as_ref().and_then(|a| a.coverage_start);
        Operation::SILENCE_TRACKED
            .iter()
            .map(|op| {
                let last = last_call.get(&(n.name.as_str(), *op)).copied();
                let (silence, lower) = match (now, last, coverage) {
                    (Some(now), Some(last), _) => {
                        (Some((ts_secs(now) - ts_secs(last)).max(0.0)), false)
                    }
                    (Some(now), None, Some(start)) => {
                        (Some((ts_secs(now) - ts_secs(start)).max(0.0)), true)
                    }
                    _ => (None, false),
                };
                ApiCallActivity {
                    operation: op.as_str(),
                    last_timestamp: last.map(ts_secs),
                    silence_seconds: silence,
                    silence_is_lower_bound: lower,
                }
            })
            .collect()
    } else {
        Vec::new()
    };

    NodeAnalysis {
        name: n.name.clone(),
        instance_type: n.instance_type.clone(),
        zone: n.zone.clone(),
        instance_id: n.instance_id.clone(),
        compute_type: n.compute_type,
        os: n.os,
        ip_family,
        nodepool: n.nodepool.clone(),
        limits_source: limits.map(|(_, src)| src),
        settings_source: settings.as_ref().map(|(_, src)| *src),
        ip_mode: mode,
        custom_networking: resolved.map(|s| s.custom_networking),
        warm_ip_target: s.map(|s| s.warm_ip_target),
        minimum_ip_target: s.map(|s| s.minimum_ip_target),
        warm_eni_target: s.map(|s| s.warm_eni_target),
        warm_prefix_target: s.map(|s| s.warm_prefix_target),
        eni_config: s
            .filter(|s| s.custom_networking)
            .map(|s| eni_config_name(n, s)),
        subnet_id,
        eni_subnet_candidates,
        pod_ip_capacity,
        cni_max_pods: pod_ip_capacity.map(|c| c + capacity::FORMULA_HOST_NETWORK_PODS),
        max_pods: n.capacity_pods,
        karpenter_expected_max_pods: karpenter_expected,
        pod_ip_overcommit: overcommit,
        pods_pod_network: pods_pod,
        pods_host_network: pods_host,
        pods_waiting_for_ip: waiting,
        ips,
        enis,
        enis_max,
        growth_at_zero_free: growth,
        ip_growth_blocked: growth.map(GrowthOutcome::blocked),
        network_cards,
        ipamd_no_available_ip_total: ipamd
            .and_then(|i| i.metrics.as_ref())
            .and_then(|m| m.no_available_ip_addresses),
        api_calls,
        ipam_signals,
        resource_controller_signals,
        vpc_resources,
        // Only where the IPv4 pool model applies (the findings read it).
        settings: s.cloned(),
        settings_unresolved: unresolved,
    }
}

/// A network card other than 0: its unmanaged ENIs come from EC2 (per
/// card), or from ipamd's node-wide `awscni_eni_max` when that says there
/// are none at all; otherwise its capacity and growth are unknown.
#[allow(clippy::too_many_arguments)]
fn secondary_card(
    n: &NodeState,
    card: &NetworkCardPool,
    ipamd: Option<&Arc<IpamdNodeState>>,
    lk: &Lookups<'_>,
    s: &CniSettings,
    mode: IpMode,
    l: &InstanceLimits,
    now: Option<Timestamp>,
    enis_max: Option<u32>,
) -> NetworkCardAnalysis {
    let card_s = s.for_secondary_card();
    let st = pool_stats(&card.pool, mode, now, s.ip_cooldown_seconds);
    let enis = card.pool.enis.len() as u32;
    let unmanaged = unmanaged_on_card(n, ipamd, lk, s, l, card.index);
    let excluded = card.pool.enis.iter().filter(|e| e.excluded).count() as u32;
    let (capacity, growth) = match (unmanaged, enis_max) {
        (Some(unmanaged), Some(max)) => {
            let usable = max.saturating_sub(unmanaged).saturating_sub(excluded);
            let facts = NodeFacts {
                mode,
                max_ips_per_eni: capacity::ips_per_eni(mode, l),
                max_pods: n.capacity_pods,
                eni_slots_free: max.saturating_sub(enis).saturating_sub(unmanaged),
                room_on_attached_enis: room_on_attached_enis(&card.pool, &card_s, l),
                cordoned: n.unschedulable,
            };
            (
                Some(usable.saturating_mul(capacity::ips_per_eni(mode, l))),
                Some(growth::predict(&card_s, &st, &facts)),
            )
        }
        _ => (None, None),
    };
    NetworkCardAnalysis {
        index: card.index,
        pod_ip_capacity: capacity,
        ips: NodeIps::from(st),
        enis,
        growth_at_zero_free: growth,
    }
}

/// Unmanaged ENIs (EFA-only, `no_manage`) on one network card.
fn unmanaged_on_card(
    n: &NodeState,
    ipamd: Option<&Arc<IpamdNodeState>>,
    lk: &Lookups<'_>,
    s: &CniSettings,
    l: &InstanceLimits,
    card: u32,
) -> Option<u32> {
    let instance = n.instance_id.as_deref();
    if let (Some(m), Some(i)) = (&lk.enis_by_instance, instance) {
        return Some(
            m.get(i)
                .into_iter()
                .flatten()
                .filter(|e| e.network_card_index == card && e.kind != EniKind::Branch)
                .filter(|e| unmanaged_eni(e, s, i))
                .count() as u32,
        );
    }
    let total = unmanaged_from_metric(ipamd, s, l)?;
    (total == 0).then_some(0)
}

/// Unmanaged ENIs over every card ipamd manages, from its `awscni_eni_max`
/// (`maxENI - unmanaged`, `updateIPStats`).
fn unmanaged_from_metric(
    ipamd: Option<&Arc<IpamdNodeState>>,
    s: &CniSettings,
    l: &InstanceLimits,
) -> Option<u32> {
    ipamd
        .and_then(|i| i.metrics.as_ref())
        .and_then(|m| m.eni_max)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|eni_max| capacity::max_enis(s, l).saturating_sub(eni_max as u32))
}

/// The node's outcome over its cards: a pod that needs one IP takes it
/// from card 0, else from the next card with one (`AddNetwork`,
/// pkg/ipamd/rpc_handler.go, v1.23.1), so the node grows while any card
/// grows; otherwise card 0's outcome stands.
fn node_growth(cards: &[NetworkCardAnalysis]) -> Option<GrowthOutcome> {
    let grows = |g: &Option<GrowthOutcome>| {
        matches!(
            g,
            Some(GrowthOutcome::AssignsIps | GrowthOutcome::AttachesEni)
        )
    };
    let card0 = cards.first()?.growth_at_zero_free;
    if grows(&card0) {
        return card0;
    }
    if let Some(c) = cards.iter().skip(1).find(|c| grows(&c.growth_at_zero_free)) {
        return c.growth_at_zero_free;
    }
    // Unknown on a card that might grow: the node's outcome is unknown.
    if cards.iter().any(|c| c.growth_at_zero_free.is_none()) {
        return None;
    }
    card0
}

/// How the node's default-card ENI slots are used besides by pod ENIs.
/// `None` (unknown) unless the unmanaged ENIs can be counted (ipamd's own
/// `awscni_eni_max`, or the instance's EC2 ENIs) and the excluded ones too
/// (the pool's flags, or EC2 ENIs and subnet tags).
fn eni_slots(
    n: &NodeState,
    ipamd: Option<&Arc<IpamdNodeState>>,
    lk: &Lookups<'_>,
    s: &CniSettings,
    l: &InstanceLimits,
) -> Option<EniSlots> {
    let pool = ipamd.and_then(|i| i.pool.as_ref());
    let instance = n.instance_id.as_deref();
    let ec2: Option<Vec<&NetworkInterfaceState>> = match (&lk.enis_by_instance, instance) {
        (Some(m), Some(i)) => Some(
            m.get(i)
                .into_iter()
                .flatten()
                .copied()
                .filter(|e| e.network_card_index == 0 && e.kind != EniKind::Branch)
                .collect(),
        ),
        _ => None,
    };
    // ipamd's metric is `maxENI - unmanaged` over the cards it manages
    // (`updateIPStats`): exact and as fresh as the pool. EC2 otherwise.
    let from_metric = unmanaged_from_metric(ipamd, s, l)
        // Node-wide over the managed cards: card 0's own only with one card
        // (or when there are none at all).
        .filter(|u| *u == 0 || pool.is_none_or(|p| p.other_cards.is_empty()));
    let unmanaged = from_metric.or_else(|| {
        let ec2 = ec2.as_ref()?;
        let instance = instance?;
        Some(ec2.iter().filter(|e| unmanaged_eni(e, s, instance)).count() as u32)
    })?;
    let trunk_attached = pool.is_some_and(|p| p.enis.iter().any(|e| e.trunk))
        || ec2.iter().flatten().any(|e| e.kind == EniKind::Trunk)
        || n.labels
            .get("vpc.amazonaws.com/has-trunk-attached")
            .map(String::as_str)
            == Some("true");
    let (excluded_secondary, primary_excluded) = match (pool, &ec2, &lk.excluded_subnets) {
        (Some(p), _, _) => (
            p.enis.iter().filter(|e| e.excluded && !e.primary).count() as u32,
            p.enis.iter().any(|e| e.excluded && e.primary),
        ),
        (None, Some(enis), Some(excluded)) => {
            let instance = instance.unwrap_or_default();
            let managed_in_excluded = |e: &&&NetworkInterfaceState| {
                !unmanaged_eni(e, s, instance)
                    && e.subnet_id
                        .as_deref()
                        .is_some_and(|id| excluded.contains(id))
            };
            (
                enis.iter()
                    .filter(managed_in_excluded)
                    .filter(|e| !e.primary)
                    .count() as u32,
                enis.iter().filter(managed_in_excluded).any(|e| e.primary),
            )
        }
        (None, None, Some(excluded)) if excluded.is_empty() => (0, false),
        _ => return None,
    };
    Some(EniSlots {
        unmanaged,
        trunk_attached,
        trunking_compatible: trunking_compatible(l),
        excluded_secondary,
        primary_excluded,
    })
}

/// ipamd's `setUnmanagedENIs` + `filterUnmanagedENIs`: EFA-only ENIs, and
/// non-primary ENIs tagged `no_manage=true` (or, with
/// MANAGE_UNTAGGED_ENI=false, not created by this instance's ipamd).
fn unmanaged_eni(e: &NetworkInterfaceState, s: &CniSettings, instance: &str) -> bool {
    if e.kind == EniKind::EfaOnly {
        return true;
    }
    if e.primary || e.kind == EniKind::Trunk {
        return false;
    }
    match e.no_manage_tag.as_deref() {
        Some(v) => v == "true",
        None => e.created_by_instance_tag.as_deref() != Some(instance) && !s.manage_untagged_eni,
    }
}

/// The VPC resource controller's trunking flag for the type; ipamd's
/// `IsTrunkingCompatible` answers yes for a type it does not know.
fn trunking_compatible(l: &InstanceLimits) -> bool {
    l.trunking_compatible
        .or_else(|| limits::embedded(&l.instance_type).and_then(|e| e.trunking_compatible))
        .unwrap_or(true)
}

/// `hasRoomForEni`: ENIs in the datastore (trunk and excluded included)
/// plus unmanaged ones plus a reserved trunk slot must stay below maxENI.
fn eni_slots_free(pool: &IpamdPool, s: &CniSettings, slots: &EniSlots, max_enis: u32) -> u32 {
    let trunk_in_pool = pool.enis.iter().any(|e| e.trunk);
    let trunk_reserved = s.pod_eni && slots.trunking_compatible && !trunk_in_pool;
    max_enis
        .saturating_sub(pool.enis.len() as u32)
        .saturating_sub(slots.unmanaged)
        .saturating_sub(u32::from(trunk_reserved))
}

/// `GetAllocatableENIs` (datastore/data_store.go): not the trunk, not
/// excluded, not the primary under custom networking, and fewer CIDRs than
/// the per-ENI limit, counting **every** IPv4 CIDR (/32s and /28s share the
/// ENI's IPv4 slots, so leftovers of the other mode count too).
fn room_on_attached_enis(pool: &IpamdPool, s: &CniSettings, l: &InstanceLimits) -> bool {
    let per_eni = l.ipv4_per_eni.saturating_sub(1) as usize;
    pool.enis
        .iter()
        .filter(|e| !(e.trunk || e.excluded || (s.custom_networking && e.primary)))
        .any(|e| e.cidrs.len() < per_eni)
}

impl From<PoolStats> for NodeIps {
    fn from(st: PoolStats) -> Self {
        NodeIps {
            total: st.total_ips,
            assigned: st.assigned_ips,
            cooldown: st.cooldown_ips,
            available: st.total_ips - st.assigned_ips - st.cooldown_ips,
        }
    }
}

/// Non-terminated pods on one node, and those waiting for an IP.
#[derive(Default)]
struct NodePodCounts {
    pod: u32,
    host: u32,
    waiting: u32,
}

fn parse_cidr_size(cidr: (Ipv4Addr, u8)) -> u64 {
    let len = cidr.1.min(32);
    (1u64 << (32 - u32::from(len))).saturating_sub(5)
}

/// Largest subnet AWS allows (a VPC's CIDR blocks are /16 to /28).
const LARGEST_SUBNET_PREFIX: u8 = 16;

/// Free aligned /28 blocks: no used address inside and none of the 4 first /
/// 1 last addresses AWS reserves. Only exact when `used` holds every address
/// in use in the subnet (DescribeNetworkInterfaces over the whole subnet).
/// `None` for a CIDR larger than AWS allows (at most 4,096 blocks are walked).
pub(crate) fn free_prefixes(cidr: (Ipv4Addr, u8), used: &[(u32, u32)]) -> Option<u64> {
    let (net, len) = cidr;
    if len < LARGEST_SUBNET_PREFIX {
        return None;
    }
    if len > 28 {
        return Some(0);
    }
    let start = u32::from(net) & (u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0));
    let size: u64 = 1u64 << (32 - u32::from(len));
    let end = u64::from(start) + size; // exclusive
    let reserved = [(start, start + 3), ((end - 1) as u32, (end - 1) as u32)];
    let mut ranges: Vec<(u32, u32)> = used.iter().copied().chain(reserved).collect();
    ranges.sort_unstable();
    let mut free = 0u64;
    let mut block = u64::from(start);
    let mut i = 0usize;
    while block < end {
        let b_lo = block as u32;
        let b_hi = (block + 15) as u32;
        while i < ranges.len() && ranges[i].1 < b_lo {
            i += 1;
        }
        let overlaps = ranges[i..]
            .iter()
            .take_while(|r| r.0 <= b_hi)
            .any(|r| r.1 >= b_lo);
        if !overlaps {
            free += 1;
        }
        block += 16;
    }
    Some(free)
}

fn analyse_subnets(
    state: &ClusterState,
    nodes: &[NodeAnalysis],
    ds: Option<&CniSettings>,
) -> Vec<SubnetAnalysis> {
    let Some(subnets) = &state.subnets else {
        return Vec::new();
    };
    let custom = ds.is_some_and(|s| s.custom_networking);
    let node_names: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    // subnet id -> (role, nodes using it)
    type Roles = BTreeMap<String, (SubnetRole, BTreeSet<String>)>;
    let mut roles: Roles = BTreeMap::new();
    fn mark(roles: &mut Roles, id: &str, role: SubnetRole, node: Option<&str>) {
        let e = roles
            .entry(id.to_string())
            .or_insert_with(|| (role, BTreeSet::new()));
        // A subnet nodes live in stays a node subnet even if pods use it too.
        e.0 = e.0.min(role);
        if let Some(n) = node {
            e.1.insert(n.to_string());
        }
    }
    for c in state.ec2nodeclasses.iter().flatten() {
        for (id, _) in &c.subnets {
            mark(&mut roles, id, SubnetRole::Node, None);
        }
    }
    // Auto Mode NodeClasses: node subnets and pod subnets by their terms.
    let auto_pod_subnets: BTreeSet<&str> =
        subnets
            .iter()
            .filter(|x| {
                state.nodeclasses.iter().flatten().any(|c| {
                    (c.pod_subnet_terms.iter()).any(|t| super::discovery::term_selects(t, x))
                })
            })
            .map(|x| x.id.as_str())
            .collect();
    for x in subnets {
        if state
            .nodeclasses
            .iter()
            .flatten()
            .any(|c| (c.subnet_terms.iter()).any(|t| super::discovery::term_selects(t, x)))
        {
            mark(&mut roles, &x.id, SubnetRole::Node, None);
        }
    }
    for id in &auto_pod_subnets {
        mark(&mut roles, id, SubnetRole::Pod, None);
    }
    if custom {
        for e in state.eniconfigs.iter().flatten() {
            if let Some(s) = &e.subnet {
                mark(&mut roles, s, SubnetRole::Pod, None);
            }
        }
    }
    for (node, ipamd) in &state.ipamd {
        if !node_names.contains(node.as_str()) {
            continue;
        }
        for eni in ipamd.pool.iter().flat_map(|p| p.all_enis()) {
            if let Some(s) = &eni.subnet_id {
                // Secondary ENIs sit in pod subnets (an ENIConfig's, or a
                // discovered one); in the node's own subnet it stays "node".
                let role = if eni.primary {
                    SubnetRole::Node
                } else {
                    SubnetRole::Pod
                };
                mark(&mut roles, s, role, Some(node));
            }
        }
    }
    let instance_node: HashMap<&str, &str> = nodes
        .iter()
        .filter_map(|n| n.instance_id.as_deref().map(|i| (i, n.name.as_str())))
        .collect();
    for eni in state.network_interfaces.as_deref().into_iter().flatten() {
        if let (Some(s), Some(node)) = (
            &eni.subnet_id,
            eni.instance_id
                .as_deref()
                .and_then(|i| instance_node.get(i)),
        ) {
            let role = if eni.primary {
                SubnetRole::Node
            } else {
                SubnetRole::Pod
            };
            mark(&mut roles, s, role, Some(node));
        }
    }
    // Where nodes' next ENIs can go: pod subnets unless nodes live there.
    for n in nodes {
        for id in n.eni_subnet_candidates.iter().flatten() {
            mark(&mut roles, id, SubnetRole::Pod, None);
        }
    }
    // Subnets an ENIConfig or an Auto Mode NodeClass names for pods.
    let mut named_pod_subnets: BTreeSet<&str> = if custom {
        state
            .eniconfigs
            .iter()
            .flatten()
            .filter_map(|e| e.subnet.as_deref())
            .collect()
    } else {
        BTreeSet::new()
    };
    named_pod_subnets.extend(auto_pod_subnets);
    if let Some(cluster) = &state.cluster_name {
        let tag = format!("kubernetes.io/cluster/{cluster}");
        for s in subnets {
            // The cluster tag says "ours", not "nodes live here": keep a known role.
            if s.tags.contains_key(&tag) && !roles.contains_key(&s.id) {
                mark(&mut roles, &s.id, SubnetRole::Node, None);
            }
        }
    }

    let enis_in: Option<HashMap<&str, Vec<&NetworkInterfaceState>>> = state
        .network_interfaces
        .as_deref()
        .map(|e| holders::enis_by_subnet(e));
    let owner = |e: &NetworkInterfaceState| match e
        .instance_id
        .as_deref()
        .and_then(|i| instance_node.get(i))
    {
        Some(node) => EniOwner::Node(state.ipamd.get(*node).and_then(|i| i.pool.as_ref())),
        None => EniOwner::Other,
    };
    let mut out: Vec<SubnetAnalysis> = subnets
        .iter()
        .filter_map(|s| {
            let (role, users) = roles.get(&s.id)?;
            let enis: &[&NetworkInterfaceState] = enis_in
                .as_ref()
                .and_then(|m| m.get(s.id.as_str()))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            // Every address the subnet's ENIs hold (all of them when EC2's
            // ENI listing is known: it covers the whole subnet).
            let held = enis_in
                .as_ref()
                .map(|_| holders::held_ranges(enis.iter().copied()));
            let subnet_holders = held.as_deref().and_then(|held| {
                holders::subnet_holders(s, enis, held, owner, state.cluster_name.as_deref())
            });
            let prefix_reserved_free = subnet_holders.map(|h| h.prefix_reserved_free);
            let free = match (s.cidr, &held) {
                (Some(c), Some(held)) => {
                    // EC2 places no prefix in an explicit reservation.
                    let mut used = held.clone();
                    used.extend(
                        s.cidr_reservations
                            .iter()
                            .flatten()
                            .filter(|r| r.kind == ReservationKind::Explicit)
                            .map(|r| holders::cidr_range(r.cidr)),
                    );
                    // Never claim more free /28s than free IPs allow (EC2's
                    // count leaves unused prefix reservations out).
                    free_prefixes(c, &used)
                        .map(|f| f.min((s.available_ips + prefix_reserved_free.unwrap_or(0)) / 16))
                }
                _ => None,
            };
            let cni_use = if super::discovery::excluded(&s.tags) {
                CniUse::Excluded
            } else if named_pod_subnets.contains(s.id.as_str()) {
                CniUse::Pod
            } else if *role == SubnetRole::Node {
                CniUse::Node
            } else {
                CniUse::Discovered
            };
            Some(SubnetAnalysis {
                id: s.id.clone(),
                zone: s.zone.clone(),
                role: *role,
                cni_use,
                zone_candidates: 0,
                cidr: s.cidr.map(|(ip, len)| format!("{ip}/{len}")),
                available_ips: s.available_ips,
                size_ips: s.cidr.map(parse_cidr_size),
                free_prefixes: free,
                prefix_reserved_free_ips: prefix_reserved_free,
                holders: subnet_holders,
                nodes: users.len() as u32,
            })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Per zone, the headroom of its most constrained group of nodes: nodes
/// with the same ENI subnet candidates form a group (EC2 nodes under custom
/// networking and Auto Mode nodes in one zone draw from different subnets,
/// and one group's free IPs are no help to the other). The zone shows the
/// group with the fewest free IPs among those with several candidates (a
/// single-candidate group pages through its subnet), else the one with the
/// fewest. Each subnet is marked with the smallest group it belongs to, so
/// it leaves its paging to the zone only when every group using it has
/// siblings.
fn analyse_zones(nodes: &[NodeAnalysis], subnets: &mut [SubnetAnalysis]) -> Vec<ZoneAnalysis> {
    let index: HashMap<String, usize> = subnets
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    // zone -> candidate set -> nodes
    type Groups<'n> = BTreeMap<String, BTreeMap<BTreeSet<usize>, BTreeSet<&'n str>>>;
    let mut zones: Groups<'_> = BTreeMap::new();
    for n in nodes {
        let mut by_zone: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for id in n.eni_subnet_candidates.iter().flatten() {
            let Some(&i) = index.get(id) else { continue };
            let Some(zone) = subnets[i].zone.clone() else {
                continue;
            };
            by_zone.entry(zone).or_default().insert(i);
        }
        for (zone, set) in by_zone {
            let groups = zones.entry(zone).or_default();
            groups.entry(set).or_default().insert(n.name.as_str());
        }
    }
    zones
        .into_iter()
        .filter_map(|(zone, groups)| {
            for set in groups.keys() {
                for &i in set {
                    let c = &mut subnets[i].zone_candidates;
                    *c = if *c == 0 {
                        set.len() as u32
                    } else {
                        (*c).min(set.len() as u32)
                    };
                }
            }
            let candidate_sets = groups.len() as u32;
            let available = |set: &BTreeSet<usize>| -> u64 {
                set.iter().map(|&i| subnets[i].available_ips).sum()
            };
            let (set, users) = groups
                .iter()
                .min_by_key(|(set, _)| (set.len() < 2, available(set), set.len()))?;
            let m: Vec<&SubnetAnalysis> = set.iter().map(|&i| &subnets[i]).collect();
            let mut ids: Vec<String> = m.iter().map(|s| s.id.clone()).collect();
            ids.sort();
            Some(ZoneAnalysis {
                zone,
                subnets: ids,
                available_ips: m.iter().map(|s| s.available_ips).sum(),
                size_ips: m.iter().map(|s| s.size_ips).sum(),
                free_prefixes: m.iter().map(|s| s.free_prefixes).sum(),
                nodes: users.len() as u32,
                candidate_sets,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_prefixes_counts_aligned_blocks() {
        let net: Ipv4Addr = "10.0.0.0".parse().unwrap();
        // /24 = 16 blocks; first block holds the 4 reserved, last block the broadcast.
        assert_eq!(free_prefixes((net, 24), &[]), Some(14));
        let ip = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
        // One IP in the middle of block 5 kills that block only.
        assert_eq!(
            free_prefixes((net, 24), &[(ip("10.0.0.85"), ip("10.0.0.85"))]),
            Some(13)
        );
        // Scattered single IPs (fragmentation) kill many blocks.
        let scattered: Vec<(u32, u32)> = (1..15)
            .map(|b| (ip("10.0.0.0") + b * 16 + 7, ip("10.0.0.0") + b * 16 + 7))
            .collect();
        assert_eq!(free_prefixes((net, 24), &scattered), Some(0));
        // A /28 subnet has its reserved addresses inside its only block.
        assert_eq!(free_prefixes((net, 28), &[]), Some(0));
        assert_eq!(free_prefixes((net, 29), &[]), Some(0));
        // Issue 14 item 17: bad input larger than any AWS subnet is
        // unknown at once (a /0 walked 268 million blocks before).
        assert_eq!(free_prefixes(("0.0.0.0".parse().unwrap(), 0), &[]), None);
        assert_eq!(free_prefixes((net, 15), &[]), None);
        // The largest real subnet, a /16: 4,096 blocks, first and last reserved.
        assert_eq!(free_prefixes((net, 16), &[]), Some(4094));
    }

    #[test]
    fn error_codes_map_to_a_closed_set() {
        assert_eq!(error_code_label(None), "none");
        assert_eq!(
            error_code_label(Some("Client.InsufficientFreeAddressesInSubnet")),
            "Client.InsufficientFreeAddressesInSubnet"
        );
        assert_eq!(
            error_code_label(Some("RequestLimitExceeded")),
            "Client.RequestLimitExceeded"
        );
        assert_eq!(error_code_label(Some("Client.Something\"odd\n")), "other");
    }

    #[test]
    fn cooldown_needs_now_and_period() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let pool = IpamdPool {
            enis: vec![IpamdEni {
                id: "eni-1".into(),
                cidrs: vec![
                    IpamdCidr {
                        prefix: false,
                        addresses: smallvec::smallvec![IpamdAddress {
                            assigned: true,
                            unassigned_at: None,
                        }],
                    },
                    IpamdCidr {
                        prefix: false,
                        addresses: smallvec::smallvec![IpamdAddress {
                            assigned: false,
                            unassigned_at: Some(t("2026-08-25T12:30:09Z")),
                        }],
                    },
                    IpamdCidr {
                        prefix: false,
                        addresses: smallvec::smallvec![IpamdAddress {
                            assigned: false,
                            unassigned_at: Some(t("2026-08-25T09:58:41Z")),
                        }],
                    },
                    IpamdCidr {
                        prefix: false,
                        addresses: smallvec::smallvec![],
                    },
                    // A prefix in secondary-IP mode is not counted (GetIPStats).
                    IpamdCidr {
                        prefix: true,
                        addresses: smallvec::smallvec![],
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let st = pool_stats(
            &pool,
            IpMode::SecondaryIp,
            Some(t("2026-08-25T12:30:21Z")),
            30,
        );
        assert_eq!((st.total_ips, st.assigned_ips, st.cooldown_ips), (4, 1, 1));
        let st = pool_stats(&pool, IpMode::SecondaryIp, None, 30);
        assert_eq!(st.cooldown_ips, 0);
        let st = pool_stats(&pool, IpMode::Prefix, None, 30);
        assert_eq!((st.total_ips, st.free_prefixes), (16, 1));
    }
    use crate::model::findings::FindingCode;
    use crate::model::fixtures::*;

    fn node<'a>(a: &'a Analysis, name: &str) -> &'a NodeAnalysis {
        a.nodes.iter().find(|n| n.name == name).expect("node")
    }

    const CUSTOM: (&str, &str) = ("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true");

    /// Issue 14 item 1. g4dn.8xlarge (4 ENIs x 15) launched by Karpenter
    /// with an EFA-only interface; custom networking, RESERVED_ENIS=0:
    /// ipamd serves (4 - 1 EFA-only - 1 primary) x 14 = 28 pod IPs, Karpenter
    /// assumes (4 - 0 - 1) x 14 + 2 = 44 pods: 14 overcommitted.
    /// Issue 15 (docs/design.md section 8): the same overcommitted t4g.medium
    /// (17 max pods, 10 pod IPs under custom networking) under each shape.
    /// Only a Linux EC2 node in an IPv4 cluster gets the ipamd model; the
    /// others are unknown, with no IPv4-pool finding, and Auto Mode nodes are
    /// not counted as this Karpenter's.
    #[test]
    fn the_ipamd_model_applies_to_linux_ec2_ipv4_nodes_only() {
        // (compute-type label, os label, extra aws-node env, model applies, ip_family)
        type Row<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Option<(&'a str, &'a str)>,
            bool,
            IpFamily,
        );
        let rows: &[Row] = &[
            (None, Some("linux"), None, true, IpFamily::Ipv4),
            (Some("ec2"), None, None, true, IpFamily::Ipv4),
            (Some("auto"), Some("linux"), None, false, IpFamily::Unknown),
            (
                Some("hybrid"),
                Some("linux"),
                None,
                false,
                IpFamily::Unknown,
            ),
            (
                Some("fargate"),
                Some("linux"),
                None,
                false,
                IpFamily::Unknown,
            ),
            (
                Some("mystery"),
                Some("linux"),
                None,
                false,
                IpFamily::Unknown,
            ),
            (None, Some("windows"), None, false, IpFamily::Unknown),
            (
                None,
                Some("linux"),
                Some(("ENABLE_IPv6", "true")),
                false,
                IpFamily::Ipv6,
            ),
        ];
        for (compute, os, extra, applies, family) in rows {
            let mut env = vec![CUSTOM, ("MINIMUM_IP_TARGET", "5")];
            env.extend(*extra);
            let c = Cluster::new()
                .aws_node(&env)
                .karpenter(Some(0))
                .nodeclass("default")
                .node(
                    Node::new("n1", "t4g.medium", 17)
                        .karpenter("default")
                        .shape(*compute, *os)
                        .pods(10)
                        .pool(
                            Pool::new()
                                .eni(true, 0, 0)
                                .eni(false, 5, 5)
                                .eni(false, 5, 5),
                        ),
                );
            let a = c.analyse();
            let n = node(&a, "n1");
            let what = format!("{compute:?}/{os:?}/{extra:?}");
            assert_eq!(n.ip_family, *family, "{what}");
            assert_eq!(n.pod_ip_capacity.is_some(), *applies, "{what}");
            assert_eq!(n.pod_ip_overcommit, applies.then_some(5), "{what}");
            assert_eq!(n.ip_growth_blocked.is_some(), *applies, "{what}");
            assert_eq!(n.ips.is_some(), *applies, "{what}");
            let f = codes(&c.findings());
            for code in [
                FindingCode::PodCapacityExceedsIpCapacity,
                FindingCode::MinimumIpTargetWithoutWarmIpTarget,
            ] {
                assert_eq!(f.contains(&code), *applies, "{what}: {code:?} in {f:?}");
            }
            // aws-node's call silence only where ipamd makes those calls.
            let ipamd_runs = compute.is_none_or(|c| c == "ec2") && os.is_none_or(|o| o == "linux");
            assert_eq!(!n.api_calls.is_empty(), ipamd_runs, "{what}: api calls");
            // Karpenter's expectation is for its own (EC2) nodes only.
            let karpenter_ec2 = compute.is_none_or(|c| c == "ec2");
            assert_eq!(
                n.karpenter_expected_max_pods.is_some(),
                karpenter_ec2,
                "{what}"
            );
        }
    }

    /// ENABLE_MULTI_NIC on a c6in.32xlarge (2 network cards, 8 ENIs per
    /// card, 50 IPv4 per ENI: 49 pod IPs each; vpc_ip_resource_limit.go,
    /// amazon-vpc-cni-k8s b52188387f2e). Card 0 holds one ENI with 49 IPs,
    /// 10 assigned; card 1 one ENI with 1 IP, none assigned (its own targets:
    /// WARM_IP_TARGET=1, MINIMUM_IP_TARGET=1). Upstream has no ipamd test
    /// with more than one card; the rules are read off `hasRoomForEni`,
    /// `datastoreTargetState` and `AddNetwork` (rpc_handler.go, whose
    /// `TestServer_AddNetwork` row "failed allocating IPv4Address from first
    /// datastore but second datastore has IPs" is the fallback node_growth
    /// relies on).
    #[test]
    fn multi_nic_cards_have_their_own_pool_capacity_and_growth() {
        type Row = (
            &'static str,
            &'static [(&'static str, &'static str)],
            fn(Cluster) -> Cluster,
            Option<u32>,
            &'static [(u32, Option<u32>, Option<GrowthOutcome>)],
            Option<GrowthOutcome>,
        );
        let none = |c: Cluster| c;
        let rows: &[Row] = &[
            (
                "defaults: 8 x 49 per card",
                &[],
                none,
                Some(784),
                &[
                    (0, Some(392), Some(GrowthOutcome::AttachesEni)),
                    (1, Some(392), Some(GrowthOutcome::AssignsIps)),
                ],
                Some(GrowthOutcome::AttachesEni),
            ),
            (
                // Card 0 is blocked by its targets; card 1 still adds one IP
                // at a time and ordinary pods fall back to it.
                "MINIMUM_IP_TARGET without WARM_IP_TARGET: card 0 blocked, node not",
                &[("MINIMUM_IP_TARGET", "25")],
                none,
                Some(784),
                &[
                    (0, Some(392), Some(GrowthOutcome::BlockedByTargets)),
                    (1, Some(392), Some(GrowthOutcome::AssignsIps)),
                ],
                Some(GrowthOutcome::AssignsIps),
            ),
            (
                "an EFA-only ENI on card 1 takes one of its slots",
                &[],
                |c| {
                    c.ec2_eni("i-n1", |e| {
                        e.kind = EniKind::EfaOnly;
                        e.network_card_index = 1;
                    })
                },
                Some(392 + 343),
                &[
                    (0, Some(392), Some(GrowthOutcome::AttachesEni)),
                    (1, Some(343), Some(GrowthOutcome::AssignsIps)),
                ],
                Some(GrowthOutcome::AttachesEni),
            ),
            (
                // No EC2 ENIs, and ipamd's node-wide awscni_eni_max (16 - 1)
                // says one ENI is unmanaged somewhere: which card is unknown.
                "unmanaged ENI on an unknown card: capacity unknown",
                &[],
                |c| {
                    c.with_state(|st| {
                        st.network_interfaces = None;
                        let i = st.ipamd.get_mut("n1").expect("pool");
                        Arc::make_mut(i).metrics = Some(IpamdMetrics {
                            eni_max: Some(7.0),
                            ..Default::default()
                        });
                    })
                },
                None,
                &[(0, None, None), (1, None, None)],
                None,
            ),
            (
                "DISABLE_NETWORK_RESOURCE_PROVISIONING holds on every card",
                &[("DISABLE_NETWORK_RESOURCE_PROVISIONING", "true")],
                none,
                Some(784),
                &[
                    (0, Some(392), Some(GrowthOutcome::ProvisioningDisabled)),
                    (1, Some(392), Some(GrowthOutcome::ProvisioningDisabled)),
                ],
                Some(GrowthOutcome::ProvisioningDisabled),
            ),
        ];
        for (what, env, shape, capacity, cards, growth) in rows {
            let mut env = env.to_vec();
            env.push(("ENABLE_MULTI_NIC", "true"));
            let c = shape(
                Cluster::new().aws_node(&env).node(
                    Node::new("n1", "c6in.32xlarge", 345).pods(10).pool(
                        Pool::new()
                            .eni(true, 49, 10)
                            .card(1, Pool::new().eni(false, 1, 0)),
                    ),
                ),
            );
            let a = c.analyse();
            let n = node(&a, "n1");
            assert_eq!(n.pod_ip_capacity, *capacity, "{what}");
            let got: Vec<(u32, Option<u32>, Option<GrowthOutcome>)> = n
                .network_cards
                .iter()
                .map(|c| (c.index, c.pod_ip_capacity, c.growth_at_zero_free))
                .collect();
            assert_eq!(got, *cards, "{what}");
            assert_eq!(n.growth_at_zero_free, *growth, "{what}");
            let ips = n.ips.expect("ips");
            assert_eq!((ips.total, ips.assigned), (50, 10), "{what}: node totals");
            assert_eq!(n.enis, Some(1), "{what}: enis stays card 0's");
        }
    }

    /// Without `/v1/enis` the managed cards are unknown, so a multi-card
    /// type's capacity is too; one card or ENABLE_MULTI_NIC off: card 0.
    #[test]
    fn multi_nic_without_the_pool_is_unknown_on_multi_card_types() {
        for (multi, itype, want) in [
            ("true", "c6in.32xlarge", None),
            ("false", "c6in.32xlarge", Some(392)),
            ("true", "m5.large", Some(27)),
        ] {
            let c = Cluster::new()
                .aws_node(&[("ENABLE_MULTI_NIC", multi)])
                .node(Node::new("n1", itype, 29));
            let a = c.analyse();
            let n = node(&a, "n1");
            assert_eq!(n.pod_ip_capacity, want, "{multi} {itype}");
            assert!(n.network_cards.is_empty());
        }
        // ipamd listing card 0 alone is authoritative (the other cards are
        // skipped, e.g. EFA-only): card 0's capacity.
        let c = Cluster::new()
            .aws_node(&[("ENABLE_MULTI_NIC", "true")])
            .node(Node::new("n1", "c6in.32xlarge", 345).pool(Pool::new().eni(true, 49, 10)));
        assert_eq!(node(&c.analyse(), "n1").pod_ip_capacity, Some(392));
    }

    /// Prefix delegation in a /24 whose upper half is a subnet CIDR
    /// reservation. The lower half's ENIs hold .4-.107, so EC2 reports 20
    /// available IPs: its count leaves the unused reservation out. Aligned
    /// free /28s: .112/28 below and 7 above (.240/28 holds AWS's .255). A
    /// `prefix` reservation is where EC2 puts prefixes, so all 8 are free
    /// /28s (the old clamp to available/16 said 1); an `explicit` one EC2
    /// never uses, so only .112/28 is.
    #[test]
    fn prefix_reservations_count_for_prefixes_explicit_ones_do_not() {
        for (kind, free28, reserved_free) in [
            (ReservationKind::Prefix, Some(8), Some(127)),
            (ReservationKind::Explicit, Some(1), Some(0)),
        ] {
            let c = Cluster::new()
                .aws_node(&[("ENABLE_PREFIX_DELEGATION", "true")])
                .node(Node::new("n1", "m5.large", 110))
                .subnet("subnet-a", "us-west-2a", "10.0.1.0/24", 20)
                .subnet_reservation("subnet-a", "10.0.1.128/25", kind)
                .ec2_eni("i-other", |e| {
                    e.subnet_id = Some("subnet-a".into());
                    e.primary = true;
                    e.private_ips = (4..108u32)
                        .map(|i| Ipv4Addr::from(0x0a00_0100 + i))
                        .collect();
                });
            let a = c.analyse();
            let s = a
                .subnets
                .iter()
                .find(|s| s.id == "subnet-a")
                .expect("subnet");
            assert_eq!(s.free_prefixes, free28, "{kind:?}");
            assert_eq!(s.prefix_reserved_free_ips, reserved_free, "{kind:?}");
            let h = s.holders.expect("holders");
            assert_eq!(
                (h.other, h.reserved, h.free),
                (104, 5 + 127, 20),
                "{kind:?}: the foreign ENI is other, the unused reservation reserved"
            );
        }
    }

    #[test]
    fn efa_only_eni_takes_a_slot_and_karpenter_overcommits() {
        let c = Cluster::new()
            .aws_node(&[CUSTOM])
            .karpenter(Some(0))
            .nodeclass("gpu")
            .with_state(|s| s.ec2nodeclasses.as_mut().unwrap()[0].efa_only_card0 = 1)
            .node(Node::new("gpu-1", "g4dn.8xlarge", 44).karpenter("gpu"))
            .ec2_eni("i-gpu-1", |e| e.primary = true)
            .ec2_eni("i-gpu-1", |e| e.kind = EniKind::EfaOnly);
        let a = c.analyse();
        let n = node(&a, "gpu-1");
        assert_eq!(n.pod_ip_capacity, Some(28));
        assert_eq!(n.karpenter_expected_max_pods, Some(44));
        assert_eq!(n.pod_ip_overcommit, Some(14));
        assert!(codes(&c.findings()).contains(&FindingCode::PodCapacityExceedsIpCapacity));
        // The same ENI on network card 1 does not take a default-card slot.
        let card1 = Cluster::new()
            .aws_node(&[CUSTOM])
            .node(Node::new("gpu-1", "g4dn.8xlarge", 44))
            .ec2_eni("i-gpu-1", |e| {
                e.kind = EniKind::EfaOnly;
                e.network_card_index = 1;
            });
        assert_eq!(node(&card1.analyse(), "gpu-1").pod_ip_capacity, Some(42));
    }

    /// Unmanaged ENIs cannot be counted without EC2's ENIs or ipamd's own
    /// `awscni_eni_max`: capacity and growth are unknown, not guessed.
    #[test]
    fn unmanaged_enis_unknown_means_capacity_unknown() {
        let c = Cluster::new()
            .node(Node::new("n1", "m5.large", 29).pool(Pool::new().eni(true, 9, 3)))
            .with_state(|s| s.network_interfaces = None);
        let a = c.analyse();
        let n = node(&a, "n1");
        assert_eq!(n.pod_ip_capacity, None);
        assert_eq!(n.pod_ip_overcommit, None);
        assert_eq!(n.growth_at_zero_free, None);
        assert_eq!(
            n.ips.map(|i| i.total),
            Some(9),
            "the pool itself is still known"
        );
        // ipamd's metric says maxENI - unmanaged = 2: one unmanaged ENI.
        let with_metric = c.with_state(|s| {
            let st = Arc::make_mut(s.ipamd.get_mut("n1").unwrap());
            st.metrics = Some(IpamdMetrics {
                eni_max: Some(2.0),
                ..Default::default()
            });
        });
        assert_eq!(node(&with_metric.analyse(), "n1").pod_ip_capacity, Some(18));
    }

    /// ENIs tagged `node.k8s.amazonaws.com/no_manage=true` take a slot
    /// (ipamd's `setUnmanagedENIs`); `false` keeps them managed; with
    /// MANAGE_UNTAGGED_ENI=false an ENI another instance's ipamd created is
    /// unmanaged too.
    #[test]
    fn no_manage_tags_and_untagged_enis() {
        let c = |env: &[(&str, &str)], tag: Option<&str>, creator: Option<&str>| {
            let (tag, creator) = (tag.map(str::to_string), creator.map(str::to_string));
            let c = Cluster::new()
                .aws_node(env)
                .node(Node::new("n1", "m5.large", 29))
                .ec2_eni("i-n1", |e| e.primary = true)
                .ec2_eni("i-n1", |e| {
                    e.no_manage_tag = tag;
                    e.created_by_instance_tag = creator;
                });
            node(&c.analyse(), "n1").pod_ip_capacity
        };
        assert_eq!(c(&[], Some("true"), None), Some(18));
        assert_eq!(c(&[], Some("false"), None), Some(27));
        assert_eq!(
            c(&[], None, None),
            Some(27),
            "untagged is managed by default"
        );
        let strict = [("MANAGE_UNTAGGED_ENI", "false")];
        assert_eq!(c(&strict, None, None), Some(18));
        assert_eq!(
            c(&strict, None, Some("i-n1")),
            Some(27),
            "created by this node's ipamd"
        );
        assert_eq!(c(&strict, None, Some("i-other")), Some(18));
    }

    /// Issue 14 item 2. m5.large with ENABLE_POD_ENI=true and no trunk yet:
    /// `hasRoomForEni` keeps the third slot for the trunk, so two full ENIs
    /// are the node's capacity (18), not 27, and ipamd attaches no ENI.
    #[test]
    fn trunk_slot_is_reserved_before_the_trunk_exists() {
        let c = Cluster::new().aws_node(&[("ENABLE_POD_ENI", "true")]).node(
            Node::new("n1", "m5.large", 29)
                .pods(16)
                .waiting(2)
                .pool(Pool::new().eni(true, 9, 9).eni(false, 9, 9)),
        );
        let a = c.analyse();
        let n = node(&a, "n1");
        assert_eq!(n.pod_ip_capacity, Some(18));
        assert_eq!(n.growth_at_zero_free, Some(GrowthOutcome::AtCapacity));
        let f = codes(&c.findings());
        assert!(f.contains(&FindingCode::EniLimitReached), "{f:?}");
        assert!(!f.contains(&FindingCode::IpamdAllocationStalled), "{f:?}");
        // Once attached the trunk holds that slot: same numbers.
        let attached = Cluster::new().aws_node(&[("ENABLE_POD_ENI", "true")]).node(
            Node::new("n1", "m5.large", 29).pool(
                Pool::new()
                    .eni(true, 9, 9)
                    .eni(false, 9, 9)
                    .eni_with(Eni::new(false).trunk()),
            ),
        );
        let a = attached.analyse();
        assert_eq!(node(&a, "n1").pod_ip_capacity, Some(18));
        assert_eq!(
            node(&a, "n1").growth_at_zero_free,
            Some(GrowthOutcome::AtCapacity)
        );
        // t4g types are not trunking compatible: nothing is reserved.
        let t4g = Cluster::new()
            .aws_node(&[("ENABLE_POD_ENI", "true")])
            .node(Node::new("n1", "t4g.medium", 17).pool(Pool::new().eni(true, 5, 5)));
        let a = t4g.analyse();
        assert_eq!(node(&a, "n1").pod_ip_capacity, Some(15));
        assert_eq!(
            node(&a, "n1").growth_at_zero_free,
            Some(GrowthOutcome::AttachesEni)
        );
    }

    /// Issue 14 item 3. An ENI in a subnet tagged `kubernetes.io/role/cni=0`
    /// stays in ipamd's datastore (a slot) but gets no pod IPs.
    #[test]
    fn excluded_enis_take_a_slot_without_pod_ips() {
        let c = Cluster::new().node(
            Node::new("n1", "m5.large", 29).pool(
                Pool::new()
                    .eni(true, 9, 9)
                    .eni_with(Eni::new(false).excluded()),
            ),
        );
        let a = c.analyse();
        let n = node(&a, "n1");
        assert_eq!(n.pod_ip_capacity, Some(18));
        assert_eq!(n.ips.map(|i| i.total), Some(9));
        assert_eq!(n.growth_at_zero_free, Some(GrowthOutcome::AttachesEni));
        // Without the pool: from EC2 ENIs and the subnet's tag.
        let from_ec2 = Cluster::new()
            .subnet("subnet-x", "us-west-2a", "10.0.8.0/24", 200)
            .with_state(|s| {
                s.subnets.as_mut().unwrap()[0]
                    .tags
                    .insert("kubernetes.io/role/cni".into(), "0".into());
            })
            .node(Node::new("n1", "m5.large", 29))
            .ec2_eni("i-n1", |e| e.primary = true)
            .ec2_eni("i-n1", |e| e.subnet_id = Some("subnet-x".into()));
        assert_eq!(node(&from_ec2.analyse(), "n1").pod_ip_capacity, Some(18));
    }

    /// Issue 14 item 4. After turning prefix delegation on, an ENI still
    /// holding /32s has those in its IPv4 slots: `GetAllocatableENIs` counts
    /// every CIDR. m5.large with MAX_ENI=1: 5 /32s + 4 /28s fill the 9 slots.
    #[test]
    fn leftover_secondary_ips_fill_slots_in_prefix_mode() {
        let c = Cluster::new()
            .aws_node(&[("ENABLE_PREFIX_DELEGATION", "true"), ("MAX_ENI", "1")])
            .node(
                Node::new("n1", "m5.large", 110)
                    .pods(64)
                    .pool(Pool::new().eni_with(Eni::new(true).ips(5, 5).prefixes(4, 64))),
            );
        let a = c.analyse();
        let n = node(&a, "n1");
        assert_eq!(n.ips.map(|i| (i.total, i.assigned)), Some((64, 64)));
        assert_eq!(n.growth_at_zero_free, Some(GrowthOutcome::AtCapacity));
    }

    /// Issue 14 item 5 end to end: a cordoned node at MINIMUM_IP_TARGET is
    /// blocked by its targets (it was reported as `cordoned`, not blocked).
    #[test]
    fn cordoned_node_at_its_minimum_is_blocked_by_targets() {
        let c = Cluster::new()
            .aws_node(&[("MINIMUM_IP_TARGET", "25")])
            .node(
                Node::new("n1", "m5.4xlarge", 234)
                    .cordoned()
                    .pods(25)
                    .pool(Pool::new().eni(true, 25, 25)),
            );
        let a = c.analyse();
        assert_eq!(
            node(&a, "n1").growth_at_zero_free,
            Some(GrowthOutcome::BlockedByTargets)
        );
        assert_eq!(node(&a, "n1").ip_growth_blocked, Some(true));
    }
    /// Issue 14 item 7: a StatefulSet pod recreated with a new UID on
    /// another node does not inherit the old pod's sandbox failure.
    #[test]
    fn sandbox_failures_join_pods_by_uid() {
        let old_uid = pod_uid("web-0 (old)");
        let new_uid = pod_uid("web-0 (new)");
        let failure = |uid: Option<u128>, node: &str| SandboxFailure {
            namespace: "default".into(),
            pod: "web-0".into(),
            pod_uid: uid.map(|u| uuid::Uuid::from_u128(u).to_string()),
            node: Some(node.into()),
            last_seen: Some(ago(60)),
            count: 4,
        };
        let waiting_on_n2 = |f: SandboxFailure| {
            let c = Cluster::new()
                .node(Node::new("n1", "m5.large", 29))
                .node(Node::new("n2", "m5.large", 29))
                .with_state(|s| {
                    let pods = s.pods.as_mut().unwrap();
                    pods.nodes.entry("n2".into()).or_default().pod_network += 1;
                    pods.pending_without_ip.push(PendingPod {
                        namespace: "default".into(),
                        name: "web-0".into(),
                        node: "n2".into(),
                        key: new_uid,
                    });
                    s.sandbox_failures = Some(vec![f]);
                });
            node(&c.analyse(), "n2").pods_waiting_for_ip
        };
        assert_eq!(
            waiting_on_n2(failure(Some(old_uid), "n1")),
            Some(0),
            "the old pod's event"
        );
        assert_eq!(waiting_on_n2(failure(Some(new_uid), "n2")), Some(1));
        // Without a UID, the name counts only on the event's own node.
        assert_eq!(waiting_on_n2(failure(None, "n1")), Some(0));
        assert_eq!(waiting_on_n2(failure(None, "n2")), Some(1));
    }

    /// A pending pod without an IP is only "waiting for an IP" with a
    /// sandbox failure of its own (issue 13 item 8: no test had a pending
    /// pod without one, so "every pending pod waits" would have passed).
    #[test]
    fn a_pending_pod_without_a_failure_event_is_not_waiting_for_an_ip() {
        let c = Cluster::new()
            .node(Node::new("n1", "m5.large", 29).waiting(1))
            .with_state(|s| {
                s.pods
                    .as_mut()
                    .unwrap()
                    .pending_without_ip
                    .push(PendingPod {
                        namespace: "default".into(),
                        name: "just-scheduled".into(),
                        node: "n1".into(),
                        key: pod_uid("just-scheduled"),
                    });
            });
        assert_eq!(node(&c.analyse(), "n1").pods_waiting_for_ip, Some(1));
    }
}
