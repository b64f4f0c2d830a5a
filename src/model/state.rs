//! The typed raw state every source produces (bundle now, live collectors
//! later): plain data, slim, no I/O. `None` always means *unknown* (the
//! source was missing), never "empty".

use super::capacity::{AmiFamily, MaxPodsSetting};
use super::env::{ConfigMaps, ContainerEnv};
use super::limits::InstanceLimits;
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    /// "Now" for every age and window: wall clock live, `capturedAt` for a bundle.
    pub now: Option<Timestamp>,
    pub cluster_name: Option<String>,
    pub region: Option<String>,
    pub nodes: Option<Vec<NodeState>>,
    /// What the view needs from the pods (kept up to date incrementally
    /// live: 150,000 pods are summarised, not stored).
    pub pods: Option<PodSummary>,
    /// `None`: DaemonSets unknown. `Some(None)`: known, no aws-node DaemonSet.
    pub aws_node: Option<Option<AwsNodeState>>,
    /// Env of the aws-node pod on each node (a pod that predates a settings
    /// change keeps the old values until it restarts). Empty when pods are unknown.
    /// Shared with the live collector's memo (a rebuild clones pointers).
    pub aws_node_pod_env: BTreeMap<String, Arc<ContainerEnv>>,
    /// `None`: Deployments unknown. `Some(None)`: known, no Karpenter controller.
    pub karpenter: Option<Option<KarpenterState>>,
    /// The ConfigMaps those envs name, as read (never Secrets).
    pub config_maps: ConfigMaps,
    /// IP-assignment sandbox failures from events.
    pub sandbox_failures: Option<Vec<SandboxFailure>>,
    /// The node monitoring agent's `NetworkingReady` events on nodes.
    pub networking_events: Option<Vec<NetworkingEvent>>,
    /// The VPC resource controller's branch-ENI and trunk-ENI failures.
    pub resource_controller_events: Option<Vec<ResourceControllerEvent>>,
    pub nodeclaims: Option<Vec<NodeClaimState>>,
    pub ec2nodeclasses: Option<Vec<NodeClassState>>,
    /// EKS Auto Mode NodeClasses (`eks.amazonaws.com/v1`).
    pub nodeclasses: Option<Vec<AutoNodeClassState>>,
    pub eniconfigs: Option<Vec<EniConfigState>>,
    pub instance_types: Option<Vec<InstanceLimits>>,
    pub subnets: Option<Vec<SubnetState>>,
    /// Shared with the live EC2 collector (a rebuild clones a pointer).
    pub network_interfaces: Option<Arc<Vec<NetworkInterfaceState>>>,
    pub api_calls: Option<ApiCallState>,
    /// Per node name: what that node's ipamd said (shared with the live
    /// agents collector: a rebuild clones pointers only).
    pub ipamd: BTreeMap<String, Arc<IpamdNodeState>>,
}

/// What EC2 should be asked about, derived from the state (live rounds and
/// `capture` alike).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Ec2Wants {
    pub(crate) instance_types: std::collections::BTreeSet<String>,
    pub(crate) instance_ids: std::collections::BTreeSet<String>,
    pub(crate) subnet_ids: std::collections::BTreeSet<String>,
    /// Some aws-node runs with subnet discovery (and without custom
    /// networking): also ask for the subnets of the node subnets' VPCs
    /// tagged `kubernetes.io/role/cni`, ipamd's candidates for new ENIs.
    pub(crate) tagged_subnets: bool,
    /// Auto Mode NodeClass subnet selector terms with tags (id terms are
    /// in `subnet_ids`): one `DescribeSubnets` each, as Karpenter asks.
    pub(crate) subnet_terms: std::collections::BTreeSet<BTreeMap<String, String>>,
}

impl ClusterState {
    /// Instance types and ids of the nodes; the subnets the EC2NodeClasses,
    /// ENIConfigs and ipamd's ENIs name; whether prefix delegation is on.
    pub(crate) fn ec2_wants(&self) -> Ec2Wants {
        let mut w = Ec2Wants::default();
        for n in self.nodes.iter().flatten() {
            w.instance_types.extend(n.instance_type.clone());
            w.instance_ids.extend(n.instance_id.clone());
        }
        for c in self.ec2nodeclasses.iter().flatten() {
            w.subnet_ids
                .extend(c.subnets.iter().map(|(id, _)| id.clone()));
        }
        for e in self.eniconfigs.iter().flatten() {
            w.subnet_ids.extend(e.subnet.clone());
        }
        for c in self.nodeclasses.iter().flatten() {
            for t in c.subnet_terms.iter().chain(&c.pod_subnet_terms) {
                match t {
                    SubnetSelectorTerm::Id(id) => {
                        w.subnet_ids.insert(id.clone());
                    }
                    SubnetSelectorTerm::Tags(tags) => {
                        w.subnet_terms.insert(tags.clone());
                    }
                }
            }
        }
        for i in self.ipamd.values() {
            for e in i.pool.iter().flat_map(|p| p.all_enis()) {
                w.subnet_ids.extend(e.subnet_id.clone());
            }
        }
        // The pods of one DaemonSet share one env: parse each distinct one once.
        let mut distinct: Vec<&super::env::ContainerEnv> = Vec::new();
        for env in self
            .aws_node
            .iter()
            .flatten()
            .map(|a| &a.daemonset_env)
            .chain(self.aws_node_pod_env.values().map(|e| &**e))
        {
            if !distinct.iter().any(|d| std::ptr::eq(*d, env) || *d == env) {
                distinct.push(env);
            }
        }
        let settings: Vec<super::cni::CniSettings> = distinct
            .into_iter()
            .map(|env| super::cni::CniSettings::from_container(env, &self.config_maps))
            .collect();
        w.tagged_subnets = settings
            .iter()
            .any(|s| s.subnet_discovery && !s.custom_networking);
        w
    }

    /// The ConfigMaps the settings read (aws-node DaemonSet and pods,
    /// Karpenter controller), as (namespace, name): what the collectors
    /// and `capture` read, derived from the state only.
    pub(crate) fn config_map_refs(&self) -> std::collections::BTreeSet<(String, String)> {
        let cni = super::cni::KNOWN;
        let ds = self
            .aws_node
            .iter()
            .flatten()
            .map(|a| (&a.daemonset_env, cni));
        let pods = self.aws_node_pod_env.values().map(|e| (&**e, cni));
        let karpenter = (self.karpenter.iter().flatten()).map(|k| (&k.env, &["RESERVED_ENIS"][..]));
        ds.chain(pods)
            .chain(karpenter)
            .flat_map(|(e, wanted)| e.config_map_refs(wanted))
            .map(|(ns, n)| (ns.to_string(), n.to_string()))
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeState {
    pub(crate) name: String,
    pub(crate) instance_type: Option<String>,
    pub(crate) zone: Option<String>,
    pub(crate) instance_id: Option<String>,
    /// `karpenter.sh/nodepool`: present only on Karpenter nodes.
    pub(crate) nodepool: Option<String>,
    /// `karpenter.k8s.aws/ec2nodeclass`.
    pub(crate) nodeclass: Option<String>,
    /// `status.capacity.pods`.
    pub(crate) capacity_pods: Option<u32>,
    pub(crate) unschedulable: bool,
    pub(crate) internal_ip: Option<String>,
    /// `eks.amazonaws.com/compute-type` (docs/design.md section 8).
    pub(crate) compute_type: ComputeType,
    /// `kubernetes.io/os`.
    pub(crate) os: NodeOs,
    /// The node monitoring agent's `NetworkingReady` condition, when set.
    pub(crate) networking_ready: Option<NodeCondition>,
    /// `status.allocatable` of the VPC extended resources; `None` where the
    /// node does not advertise one (or its quantity is not a count).
    pub(crate) vpc_allocatable: PerResource<Option<u32>>,
    /// Only the labels/annotations ENIConfig selection can use.
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
}

/// Where a node's compute comes from, by its `eks.amazonaws.com/compute-type`
/// label: absent (or `ec2`) is an EC2 node. The values are the ones the VPC
/// CNI's own DaemonSet excludes from aws-node (`charts/aws-vpc-cni/values.yaml`
/// nodeAffinity `NotIn [fargate, hybrid, auto]`, amazon-vpc-cni-k8s
/// b52188387f2e): on those nodes ipamd does not run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ComputeType {
    #[default]
    Ec2,
    Auto,
    Hybrid,
    Fargate,
    /// A value this version does not know: no model is applied.
    Other,
}

impl ComputeType {
    pub(crate) fn parse(label: Option<&str>) -> Self {
        match label {
            None | Some("ec2") => ComputeType::Ec2,
            Some("auto") => ComputeType::Auto,
            Some("hybrid") => ComputeType::Hybrid,
            Some("fargate") => ComputeType::Fargate,
            Some(_) => ComputeType::Other,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ComputeType::Ec2 => "ec2",
            ComputeType::Auto => "auto",
            ComputeType::Hybrid => "hybrid",
            ComputeType::Fargate => "fargate",
            ComputeType::Other => "other",
        }
    }
}

/// `kubernetes.io/os` (the kubelet sets it; absent is taken as Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NodeOs {
    #[default]
    Linux,
    Windows,
    Other,
}

impl NodeOs {
    pub(crate) fn parse(label: Option<&str>) -> Self {
        match label {
            None | Some("linux") => NodeOs::Linux,
            Some("windows") => NodeOs::Windows,
            Some(_) => NodeOs::Other,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NodeOs::Linux => "linux",
            NodeOs::Windows => "windows",
            NodeOs::Other => "other",
        }
    }
}

/// The extended resources through which the VPC resource controller hands
/// out pod networking (amazon-vpc-resource-controller-k8s `pkg/config/type.go`
/// at b8d425119bdb: `ResourceNamePodENI`, `ResourceNameIPAddress`). Its
/// webhook adds a request of 1 to the first container of a pod that matches a
/// SecurityGroupPolicy (pod-eni) or of every Windows pod (PrivateIPv4Address,
/// `webhooks/core/pod_webhook.go`), and the scheduler refuses a pod when no
/// node has one left (`Insufficient <name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum VpcResource {
    /// Branch ENIs of security groups for pods.
    PodEni,
    /// Secondary IPv4 addresses of Windows pods.
    PrivateIpv4Address,
}

impl VpcResource {
    pub(crate) const ALL: [VpcResource; 2] = [VpcResource::PodEni, VpcResource::PrivateIpv4Address];

    /// The resource name, as in pod requests, node allocatable and the
    /// scheduler's message.
    pub(crate) fn name(self) -> &'static str {
        match self {
            VpcResource::PodEni => "vpc.amazonaws.com/pod-eni",
            VpcResource::PrivateIpv4Address => "vpc.amazonaws.com/PrivateIPv4Address",
        }
    }
}

/// One value per [`VpcResource`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub(crate) struct PerResource<T> {
    pub(crate) pod_eni: T,
    pub(crate) private_ipv4: T,
}

impl<T> PerResource<T> {
    pub(crate) fn get(&self, r: VpcResource) -> &T {
        match r {
            VpcResource::PodEni => &self.pod_eni,
            VpcResource::PrivateIpv4Address => &self.private_ipv4,
        }
    }

    pub(crate) fn get_mut(&mut self, r: VpcResource) -> &mut T {
        match r {
            VpcResource::PodEni => &mut self.pod_eni,
            VpcResource::PrivateIpv4Address => &mut self.private_ipv4,
        }
    }

    pub(crate) fn from_fn(mut f: impl FnMut(VpcResource) -> T) -> Self {
        PerResource {
            pod_eni: f(VpcResource::PodEni),
            private_ipv4: f(VpcResource::PrivateIpv4Address),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl PodPhase {
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "Pending" => PodPhase::Pending,
            "Running" => PodPhase::Running,
            "Succeeded" => PodPhase::Succeeded,
            "Failed" => PodPhase::Failed,
            _ => PodPhase::Unknown,
        }
    }

    /// Terminated pods hold no pod slot and no IP.
    pub(crate) fn terminated(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

/// One pod, as the view needs it (live, pods are only passed through on
/// their way into a [`LivePodSummary`]; namespace and node names are shared).
#[derive(Debug, Clone, PartialEq)]
pub struct PodState {
    pub(crate) namespace: Arc<str>,
    pub name: Box<str>,
    pub node_name: Option<Arc<str>>,
    pub(crate) host_network: bool,
    pub phase: PodPhase,
    pub has_ip: bool,
    /// The pod's effective request of each VPC resource (the scheduler's
    /// rule, see `sources::kube::pod`); `None`: a quantity that is not a count.
    pub(crate) vpc_requests: PerResource<Option<u32>>,
    /// `PodScheduled` is False with reason `Unschedulable` and the message
    /// names `Insufficient <resource>`.
    pub(crate) refused_for: PerResource<bool>,
}

/// Non-terminated pods on one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PodCounts {
    pub(crate) pod_network: u32,
    pub(crate) host_network: u32,
    /// Sum of the pods' VPC resource requests (the scheduler's "requested").
    pub(crate) vpc_requested: PerResource<u32>,
    /// Pods whose request of the resource is not a count: the sum is unknown.
    pub(crate) vpc_requests_unknown: PerResource<u32>,
}

/// A Kubernetes UID (a UUID) read as a number: the identity key of pods,
/// and how sandbox-failure events name the pod they are about.
pub(crate) fn uid_key(s: &str) -> Option<u128> {
    uuid::Uuid::try_parse(s).ok().map(|u| u.as_u128())
}

/// A pod-network pod in `Pending` without an IP: it may be waiting for one
/// (the view checks it against the sandbox failures).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PendingPod {
    pub(crate) namespace: Arc<str>,
    pub(crate) name: Box<str>,
    pub(crate) node: Arc<str>,
    /// The pod's identity key (its UID read as a number, see
    /// `KPodSlim::key`): events are joined to pods by it.
    pub(crate) key: u128,
}

/// What the view needs from the pods: counts per node and the pending pods
/// without an IP. Terminated pods and pods on no node are not counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodSummary {
    pub(crate) nodes: HashMap<Arc<str>, PodCounts>,
    pub(crate) pending_without_ip: Vec<PendingPod>,
    /// Pending pods on no node that the scheduler refused for lack of the
    /// resource (docs/design.md section 8: `eks_ipam_pods_unschedulable`).
    pub(crate) unschedulable: PerResource<u32>,
}

/// How one pod enters a [`PodSummary`]; kept per pod by the live summary
/// so an update or delete can take the old contribution back out (24 bytes
/// a pod: the node name is shared, the requests packed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PodContribution {
    /// Terminated, or on no node and not refused by the scheduler.
    Nothing,
    HostNetwork(Arc<str>, PackedRequests),
    PodNetwork(Arc<str>, PackedRequests),
    /// Pod network, and pending without an IP.
    PendingPodNetwork(Arc<str>, PackedRequests),
    /// Pending on no node, refused for these resources.
    Refused(PerResource<bool>),
}

/// A pod's VPC resource requests in 4 bytes; `u16::MAX` is unknown (no pod
/// requests 65,535 branch ENIs or addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedRequests([u16; 2]);

impl PackedRequests {
    fn pack(r: PerResource<Option<u32>>) -> Self {
        let one = |q: Option<u32>| {
            q.and_then(|q| u16::try_from(q).ok())
                .map_or(u16::MAX, |q| q.min(u16::MAX - 1))
        };
        PackedRequests([one(r.pod_eni), one(r.private_ipv4)])
    }

    fn get(self, r: VpcResource) -> Option<u32> {
        let q = match r {
            VpcResource::PodEni => self.0[0],
            VpcResource::PrivateIpv4Address => self.0[1],
        };
        (q != u16::MAX).then_some(u32::from(q))
    }
}

impl PodState {
    pub(crate) fn contribution(&self) -> PodContribution {
        if self.phase.terminated() {
            return PodContribution::Nothing;
        }
        let Some(node) = self.node_name.clone() else {
            let refused = self.refused_for;
            return if self.phase == PodPhase::Pending && refused != PerResource::default() {
                PodContribution::Refused(refused)
            } else {
                PodContribution::Nothing
            };
        };
        let req = PackedRequests::pack(self.vpc_requests);
        if self.host_network {
            PodContribution::HostNetwork(node, req)
        } else if self.phase == PodPhase::Pending && !self.has_ip {
            PodContribution::PendingPodNetwork(node, req)
        } else {
            PodContribution::PodNetwork(node, req)
        }
    }

    fn pending(&self, node: &Arc<str>, key: u128) -> PendingPod {
        PendingPod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            node: node.clone(),
            key,
        }
    }
}

impl PodSummary {
    /// Summary of pods keyed by their identity (UID) keys.
    pub(crate) fn from_keyed_pods<'a>(
        pods: impl IntoIterator<Item = (u128, &'a PodState)>,
    ) -> Self {
        let mut live = LivePodSummary::default();
        for (key, p) in pods {
            live.apply(key, p);
        }
        live.summary()
    }

    /// Summary of pods without identities (keys by position; tests).
    pub fn from_pods<'a>(pods: impl IntoIterator<Item = &'a PodState>) -> Self {
        Self::from_keyed_pods(pods.into_iter().enumerate().map(|(i, p)| (i as u128, p)))
    }
}

/// A [`PodSummary`] kept up to date pod by pod: each pod's contribution is
/// remembered (a 16-byte key and a shared node name, not the pod), so an
/// update or a delete takes the old one back out.
#[derive(Debug, Default)]
pub struct LivePodSummary {
    pods: HashMap<u128, PodContribution>,
    nodes: HashMap<Arc<str>, PodCounts>,
    pending: HashMap<u128, PendingPod>,
    unschedulable: PerResource<u32>,
}

impl LivePodSummary {
    /// Sets pod `key` to `pod` (a new pod, or an update).
    pub fn apply(&mut self, key: u128, pod: &PodState) {
        let c = pod.contribution();
        if self.pods.get(&key) == Some(&c) {
            return;
        }
        self.remove(key);
        let (node, req) = match &c {
            PodContribution::Nothing => return self.remember(key, c),
            PodContribution::Refused(r) => {
                for res in VpcResource::ALL {
                    *self.unschedulable.get_mut(res) += u32::from(*r.get(res));
                }
                return self.remember(key, c);
            }
            PodContribution::HostNetwork(n, req) => {
                self.counts(n).host_network += 1;
                (n, *req)
            }
            PodContribution::PodNetwork(n, req) => {
                self.counts(n).pod_network += 1;
                (n, *req)
            }
            PodContribution::PendingPodNetwork(n, req) => {
                self.counts(n).pod_network += 1;
                self.pending.insert(key, pod.pending(n, key));
                (n, *req)
            }
        };
        let counts = self.counts(node);
        for res in VpcResource::ALL {
            match req.get(res) {
                Some(q) => *counts.vpc_requested.get_mut(res) += q,
                None => *counts.vpc_requests_unknown.get_mut(res) += 1,
            }
        }
        self.remember(key, c);
    }

    fn remember(&mut self, key: u128, c: PodContribution) {
        self.pods.insert(key, c);
    }

    pub(crate) fn remove(&mut self, key: u128) {
        let Some(old) = self.pods.remove(&key) else {
            return;
        };
        let (n, req, pod_network) = match &old {
            PodContribution::Nothing => return,
            PodContribution::Refused(r) => {
                for res in VpcResource::ALL {
                    let u = self.unschedulable.get_mut(res);
                    *u = u.saturating_sub(u32::from(*r.get(res)));
                }
                return;
            }
            PodContribution::HostNetwork(n, req) => (n, *req, false),
            PodContribution::PodNetwork(n, req) => (n, *req, true),
            PodContribution::PendingPodNetwork(n, req) => {
                self.pending.remove(&key);
                (n, *req, true)
            }
        };
        let Some(c) = self.nodes.get_mut(n) else {
            return;
        };
        let f = if pod_network {
            &mut c.pod_network
        } else {
            &mut c.host_network
        };
        *f = f.saturating_sub(1);
        for res in VpcResource::ALL {
            let f = match req.get(res) {
                Some(q) => (c.vpc_requested.get_mut(res), q),
                None => (c.vpc_requests_unknown.get_mut(res), 1),
            };
            *f.0 = f.0.saturating_sub(f.1);
        }
        if *c == PodCounts::default() {
            self.nodes.remove(n);
        }
    }

    fn counts(&mut self, node: &Arc<str>) -> &mut PodCounts {
        self.nodes.entry(node.clone()).or_default()
    }

    /// Pods known (terminated ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pods.len()
    }

    /// The summary as of now.
    pub fn summary(&self) -> PodSummary {
        let mut pending_without_ip: Vec<PendingPod> = self.pending.values().cloned().collect();
        pending_without_ip.sort_unstable();
        PodSummary {
            nodes: self.nodes.clone(),
            pending_without_ip,
            unschedulable: self.unschedulable,
        }
    }
}

/// The aws-node DaemonSet template's configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsNodeState {
    pub namespace: String,
    pub daemonset_env: ContainerEnv,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KarpenterState {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// The controller container's env (RESERVED_ENIS) and args (`--reserved-enis`).
    pub(crate) env: ContainerEnv,
    pub(crate) args: Vec<String>,
}

/// A node condition as written (`status.conditions[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeCondition {
    pub(crate) status: String,
    pub(crate) reason: Option<String>,
    pub(crate) message: Option<String>,
}

/// An event of the EKS node monitoring agent about a node's networking:
/// reason `NetworkingReady` (the condition type), message
/// `"<issue>: <text>"` (aws/eks-node-monitoring-agent
/// `pkg/manager/node_exporter.go` at 51af5494fde6: `Info`/`Warning` record
/// `fmt.Sprintf("%s: %s", c.Reason, c.Message)` on the Node).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkingEvent {
    pub(crate) node: String,
    /// The issue name before the colon, e.g. `IPAMDNoIPs`.
    pub(crate) issue: String,
    pub(crate) message: String,
    pub(crate) last_seen: Option<Timestamp>,
    pub(crate) count: u32,
}

/// A Warning event of the VPC resource controller (event source
/// `vpc-resource-controller`, `pkg/config/type.go` `ControllerName`), as
/// amazon-vpc-resource-controller-k8s b8d425119bdb writes them in
/// `pkg/provider/branch/provider.go`: `TrunkENICreationFailed` on the Node
/// ("Failed to create trunk interface: Error Code: <code>"),
/// `BranchAllocationFailed` on the Pod ("failed to allocate branch ENI to
/// pod: <err>").
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceControllerEvent {
    pub(crate) reason: RcEventReason,
    pub(crate) namespace: String,
    /// The Node's name, or the Pod's.
    pub(crate) object: String,
    pub(crate) message: String,
    pub(crate) last_seen: Option<Timestamp>,
    pub(crate) count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RcEventReason {
    TrunkEniCreationFailed,
    BranchAllocationFailed,
}

impl RcEventReason {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            RcEventReason::TrunkEniCreationFailed => "TrunkENICreationFailed",
            RcEventReason::BranchAllocationFailed => "BranchAllocationFailed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SandboxFailure {
    pub(crate) namespace: String,
    pub(crate) pod: String,
    pub(crate) pod_uid: Option<String>,
    pub(crate) node: Option<String>,
    pub(crate) last_seen: Option<Timestamp>,
    pub(crate) count: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeClaimState {
    pub(crate) name: String,
    pub(crate) node_name: Option<String>,
    pub(crate) nodeclass: Option<String>,
    /// `spec.nodeClassRef.group`: `karpenter.k8s.aws` (EC2NodeClass) or
    /// `eks.amazonaws.com` (an Auto Mode NodeClass).
    pub(crate) nodeclass_group: Option<String>,
    pub(crate) capacity_pods: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeClassState {
    pub(crate) name: String,
    pub(crate) max_pods: Option<MaxPodsSetting>,
    pub(crate) pods_per_core: Option<u32>,
    pub(crate) ami_family: AmiFamily,
    pub(crate) efa_only_card0: u32,
    /// `status.subnets[]`: (subnet id, zone).
    pub(crate) subnets: Vec<(String, Option<String>)>,
}

/// An EKS Auto Mode NodeClass (`eks.amazonaws.com/v1`, EKS user guide
/// `latest/ug/automode/create-node-class.adoc` at 013856044148): the subnets
/// its nodes (`subnetSelectorTerms`) and, when set, their pods
/// (`podSubnetSelectorTerms`) draw addresses from. Auto Mode's IPAM is not
/// open source: the terms are read as Karpenter reads the same terms on an
/// EC2NodeClass (Auto Mode is built on it).
#[derive(Debug, Clone, PartialEq)]
pub struct AutoNodeClassState {
    pub(crate) name: String,
    pub(crate) subnet_terms: Vec<SubnetSelectorTerm>,
    pub(crate) pod_subnet_terms: Vec<SubnetSelectorTerm>,
}

/// One selector term: an id, or tags that must all match. Terms are ORed
/// (karpenter-provider-aws `pkg/providers/subnet/subnet.go`
/// `getFilterSets` at 068749bd19f9: one DescribeSubnets per tag term, all
/// id terms in one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SubnetSelectorTerm {
    Id(String),
    /// Tag key -> value; value `*` means "has the key" (`tag-key` filter).
    Tags(BTreeMap<String, String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EniConfigState {
    pub(crate) name: String,
    pub(crate) subnet: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubnetState {
    pub(crate) id: String,
    pub(crate) zone: Option<String>,
    pub(crate) vpc_id: Option<String>,
    pub(crate) cidr: Option<(Ipv4Addr, u8)>,
    pub(crate) available_ips: u64,
    pub(crate) tags: BTreeMap<String, String>,
    /// IPv4 CIDR reservations (`GetSubnetCidrReservations`); `None` when not
    /// read (no permission, an older bundle).
    pub(crate) cidr_reservations: Option<Vec<CidrReservation>>,
}

/// A subnet CIDR reservation: `prefix` ranges are where EC2 places /28
/// prefixes (and, unused, are not in `AvailableIpAddressCount`); `explicit`
/// ranges EC2 never assigns by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CidrReservation {
    pub(crate) cidr: (Ipv4Addr, u8),
    pub(crate) kind: ReservationKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReservationKind {
    Prefix,
    Explicit,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkInterfaceState {
    pub(crate) id: String,
    pub(crate) subnet_id: Option<String>,
    pub(crate) instance_id: Option<String>,
    pub(crate) private_ips: Vec<Ipv4Addr>,
    /// IPv4 prefixes as (network, prefix length).
    pub(crate) prefixes: Vec<(Ipv4Addr, u8)>,
    /// EC2 `InterfaceType`.
    pub(crate) kind: EniKind,
    /// `Attachment.NetworkCardIndex` (absent: card 0).
    pub(crate) network_card_index: u32,
    /// `Attachment.DeviceIndex` 0: the instance's primary ENI.
    pub(crate) primary: bool,
    /// Tag `node.k8s.amazonaws.com/no_manage`, when present.
    pub(crate) no_manage_tag: Option<String>,
    /// Tag `node.k8s.amazonaws.com/instance_id` (set by the ipamd that created it).
    pub(crate) created_by_instance_tag: Option<String>,
    /// The ENI's primary private IP (`PrivateIpAddresses[].Primary`).
    pub(crate) primary_ip: Option<Ipv4Addr>,
    /// `<name>` of a `kubernetes.io/cluster/<name>` tag: the VPC resource
    /// controller tags its branch ENIs so (`VPCRCClusterNameTagKeyFormat`).
    pub(crate) cluster_tag: Option<String>,
}

/// EC2 `InterfaceType` as far as ipamd cares (`DescribeAllENIs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum EniKind {
    #[default]
    Interface,
    /// EFA with IP: managed by ipamd like any ENI.
    Efa,
    /// EFA-only: no IP, unmanaged, but it takes an ENI slot.
    EfaOnly,
    Trunk,
    /// Security-groups-for-pods branch ENI (not attached to the instance).
    Branch,
    Other,
}

impl EniKind {
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "interface" | "" => EniKind::Interface,
            "efa" => EniKind::Efa,
            "efa-only" => EniKind::EfaOnly,
            "trunk" => EniKind::Trunk,
            "branch" => EniKind::Branch,
            _ => EniKind::Other,
        }
    }
}

/// ENI/IP API calls from CloudTrail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiCallState {
    pub(crate) calls: Vec<ApiCall>,
    /// Start of the period CloudTrail was read for: silence is only known
    /// from here on.
    pub(crate) coverage_start: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Operation {
    AssignPrivateIpAddresses,
    UnassignPrivateIpAddresses,
    AssignIpv4Prefixes,
    UnassignIpv4Prefixes,
    CreateNetworkInterface,
    AttachNetworkInterface,
    DetachNetworkInterface,
    DeleteNetworkInterface,
}

impl Operation {
    pub(crate) const ALL: [Operation; 8] = [
        Operation::AssignPrivateIpAddresses,
        Operation::UnassignPrivateIpAddresses,
        Operation::AssignIpv4Prefixes,
        Operation::UnassignIpv4Prefixes,
        Operation::CreateNetworkInterface,
        Operation::AttachNetworkInterface,
        Operation::DetachNetworkInterface,
        Operation::DeleteNetworkInterface,
    ];

    /// The calls ipamd makes to add pod IPs (prefix mode also uses
    /// AssignPrivateIpAddresses; AttachNetworkInterface always follows
    /// CreateNetworkInterface): their absence is "silence".
    pub(crate) const SILENCE_TRACKED: [Operation; 2] = [
        Operation::AssignPrivateIpAddresses,
        Operation::CreateNetworkInterface,
    ];

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Operation::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::AssignPrivateIpAddresses => "AssignPrivateIpAddresses",
            Operation::UnassignPrivateIpAddresses => "UnassignPrivateIpAddresses",
            Operation::AssignIpv4Prefixes => "AssignIpv4Prefixes",
            Operation::UnassignIpv4Prefixes => "UnassignIpv4Prefixes",
            Operation::CreateNetworkInterface => "CreateNetworkInterface",
            Operation::AttachNetworkInterface => "AttachNetworkInterface",
            Operation::DetachNetworkInterface => "DetachNetworkInterface",
            Operation::DeleteNetworkInterface => "DeleteNetworkInterface",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    pub(crate) event_id: String,
    pub(crate) operation: Operation,
    pub(crate) time: Timestamp,
    /// e.g. `Client.InsufficientFreeAddressesInSubnet`; `None` on success.
    pub(crate) error_code: Option<String>,
    pub(crate) eni_id: Option<String>,
    /// From the session name / Username (`i-...`), `instanceId` or the
    /// `aws-K8S-i-...` description.
    pub(crate) instance_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpamdNodeState {
    pub pool: Option<IpamdPool>,
    pub metrics: Option<IpamdMetrics>,
}

/// `/v1/enis` as parsed: network card 0's datastore, and the other cards
/// ipamd manages (ENABLE_MULTI_NIC, VPC CNI >= 1.20; empty otherwise).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpamdPool {
    /// ipamd's raw counters (every CIDR counted); informational.
    pub(crate) raw_total_ips: u32,
    pub(crate) raw_assigned_ips: u32,
    /// CIDRs `/v1/enis` listed on more than one ENI (counted once, where assigned).
    pub(crate) duplicate_cidrs: u32,
    pub enis: Vec<IpamdEni>,
    /// Cards 1.. in ascending order; their own `other_cards` stay empty.
    pub(crate) other_cards: Vec<NetworkCardPool>,
}

impl IpamdPool {
    /// ENIs of every card ipamd manages.
    pub(crate) fn all_enis(&self) -> impl Iterator<Item = &IpamdEni> {
        self.enis
            .iter()
            .chain(self.other_cards.iter().flat_map(|c| c.pool.enis.iter()))
    }
}

/// A network card's datastore other than card 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct NetworkCardPool {
    pub(crate) index: u32,
    pub(crate) pool: IpamdPool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpamdEni {
    pub(crate) id: String,
    pub(crate) primary: bool,
    pub(crate) trunk: bool,
    pub(crate) efa: bool,
    pub(crate) excluded: bool,
    pub(crate) subnet_id: Option<String>,
    pub cidrs: Vec<IpamdCidr>,
    /// `IPv6Cidrs` entries (/80 prefixes): non-zero on IPv6 nodes.
    pub(crate) ipv6_prefixes: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpamdCidr {
    pub(crate) prefix: bool,
    /// Addresses ipamd has seen in this CIDR. Never-used ones are absent.
    /// Inline for one: in secondary-IP mode every CIDR is a /32, and a heap
    /// block per address was 10 MB at 5,000 nodes.
    pub(crate) addresses: smallvec::SmallVec<[IpamdAddress; 1]>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct IpamdAddress {
    pub(crate) assigned: bool,
    /// Set when released; used for IP_COOLDOWN_PERIOD.
    pub(crate) unassigned_at: Option<Timestamp>,
}

/// The few ipamd (`:61678/metrics`) samples the diagnosis uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpamdMetrics {
    pub(crate) no_available_ip_addresses: Option<f64>,
    pub(crate) eni_max: Option<f64>,
    pub(crate) eni_allocated: Option<f64>,
    pub(crate) ip_max: Option<f64>,
    pub(crate) total_ip_addresses: Option<f64>,
    pub(crate) assigned_ip_addresses: Option<f64>,
    pub(crate) version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per pod (150,000) and per pod IP (about as many) at 5,000 nodes, a
    /// field that grows these records shows up in RSS.
    #[test]
    fn per_pod_and_per_ip_records_stay_small() {
        // PodState is transient live (each pod becomes a 24-byte
        // PodContribution); 72 since it carries the VPC requests.
        assert!(
            std::mem::size_of::<PodState>() <= 72,
            "{}",
            std::mem::size_of::<PodState>()
        );
        assert!(
            std::mem::size_of::<IpamdCidr>() <= 48,
            "{}",
            std::mem::size_of::<IpamdCidr>()
        );
        let inline: IpamdCidr = IpamdCidr {
            prefix: false,
            addresses: smallvec::smallvec![IpamdAddress::default()],
        };
        assert!(
            !inline.addresses.spilled(),
            "a /32's one address lives inline"
        );
        assert!(std::mem::size_of::<PodContribution>() <= 24);
    }

    fn pod(
        ns: &str,
        name: &str,
        node: Option<&str>,
        host: bool,
        phase: PodPhase,
        ip: bool,
    ) -> PodState {
        PodState {
            namespace: ns.into(),
            name: name.into(),
            node_name: node.map(Into::into),
            host_network: host,
            phase,
            has_ip: ip,
            vpc_requests: PerResource {
                pod_eni: Some(0),
                private_ipv4: Some(0),
            },
            refused_for: PerResource::default(),
        }
    }

    #[test]
    fn summary_counts_what_the_view_needs() {
        let pods = [
            pod("a", "web-1", Some("n1"), false, PodPhase::Running, true),
            pod("a", "web-2", Some("n1"), false, PodPhase::Pending, false),
            pod(
                "kube-system",
                "aws-node-x",
                Some("n1"),
                true,
                PodPhase::Running,
                true,
            ),
            pod("a", "done", Some("n1"), false, PodPhase::Succeeded, false),
            pod("a", "failed", Some("n2"), false, PodPhase::Failed, true),
            pod("a", "unscheduled", None, false, PodPhase::Pending, false),
            pod("a", "starting", Some("n2"), false, PodPhase::Pending, true),
        ];
        let s = PodSummary::from_pods(&pods);
        let n1 = s.nodes.get("n1").copied().unwrap();
        assert_eq!((n1.pod_network, n1.host_network), (2, 1));
        let n2 = s.nodes.get("n2").copied().unwrap();
        assert_eq!((n2.pod_network, n2.host_network), (1, 0));
        assert_eq!(s.pending_without_ip.len(), 1);
        assert_eq!(&*s.pending_without_ip[0].name, "web-2");
        assert_eq!(&*s.pending_without_ip[0].node, "n1");
    }

    /// Any sequence of adds, updates and deletes gives the summary computed
    /// from scratch over the pods that remain.
    #[test]
    fn live_summary_matches_a_recount_after_churn() {
        let mut live = LivePodSummary::default();
        let mut truth: BTreeMap<u128, PodState> = BTreeMap::new();
        // A small deterministic generator (no rand dependency).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let phases = [
            PodPhase::Pending,
            PodPhase::Running,
            PodPhase::Succeeded,
            PodPhase::Failed,
            PodPhase::Unknown,
        ];
        for step in 0..20_000 {
            let key = u128::from(next(300));
            if next(4) == 0 {
                live.remove(key);
                truth.remove(&key);
            } else {
                let node = match next(5) {
                    0 => None,
                    n => Some(format!("node-{n}")),
                };
                let mut p = pod(
                    "ns",
                    &format!("pod-{key}"),
                    node.as_deref(),
                    next(6) == 0,
                    phases[next(5) as usize],
                    next(2) == 0,
                );
                // VPC requests (0-2, sometimes not a count) and refusals.
                let mut req = || match next(7) {
                    0 => None,
                    n => Some(u32::try_from(n % 3).unwrap_or(0)),
                };
                p.vpc_requests = PerResource {
                    pod_eni: req(),
                    private_ipv4: req(),
                };
                p.refused_for = PerResource {
                    pod_eni: next(3) == 0,
                    private_ipv4: next(4) == 0,
                };
                live.apply(key, &p);
                truth.insert(key, p);
            }
            if step % 997 == 0 || step == 19_999 {
                assert_eq!(
                    live.summary(),
                    PodSummary::from_keyed_pods(truth.iter().map(|(k, p)| (*k, p))),
                    "step {step}"
                );
                assert_eq!(live.len(), truth.len());
            }
        }
    }

    #[test]
    fn summary_sums_vpc_requests_and_counts_refusals() {
        let with = |mut p: PodState, eni: Option<u32>, refused: bool| {
            p.vpc_requests.pod_eni = eni;
            p.refused_for.pod_eni = refused;
            p
        };
        let pods = [
            with(
                pod("a", "sgp-1", Some("n1"), false, PodPhase::Running, true),
                Some(1),
                false,
            ),
            with(
                pod("a", "sgp-2", Some("n1"), false, PodPhase::Pending, false),
                Some(1),
                false,
            ),
            // Terminated pods hold nothing.
            with(
                pod(
                    "a",
                    "sgp-done",
                    Some("n1"),
                    false,
                    PodPhase::Succeeded,
                    false,
                ),
                Some(1),
                false,
            ),
            // Refused: pending on no node; counted once per resource it names.
            with(
                pod("a", "sgp-3", None, false, PodPhase::Pending, false),
                Some(1),
                true,
            ),
            // A refusal on a pod that is no longer pending (or not on a node) does not count.
            with(
                pod("a", "old", None, false, PodPhase::Failed, false),
                Some(1),
                true,
            ),
            with(
                pod("a", "odd", Some("n2"), false, PodPhase::Running, true),
                None,
                false,
            ),
        ];
        let s = PodSummary::from_pods(&pods);
        let n1 = s.nodes.get("n1").copied().unwrap();
        assert_eq!(n1.vpc_requested.pod_eni, 2);
        assert_eq!(n1.vpc_requests_unknown.pod_eni, 0);
        let n2 = s.nodes.get("n2").copied().unwrap();
        assert_eq!(n2.vpc_requests_unknown.pod_eni, 1);
        assert_eq!(
            s.unschedulable,
            PerResource {
                pod_eni: 1,
                private_ipv4: 0
            }
        );
        // A scheduled pod leaves the refused count and adds its request.
        let mut live = LivePodSummary::default();
        let refused = with(
            pod("a", "p", None, false, PodPhase::Pending, false),
            Some(1),
            true,
        );
        live.apply(7, &refused);
        assert_eq!(live.summary().unschedulable.pod_eni, 1);
        live.apply(
            7,
            &with(
                pod("a", "p", Some("n1"), false, PodPhase::Pending, false),
                Some(1),
                false,
            ),
        );
        let s = live.summary();
        assert_eq!(s.unschedulable.pod_eni, 0);
        assert_eq!(s.nodes["n1"].vpc_requested.pod_eni, 1);
        live.remove(7);
        assert!(live.summary().nodes.is_empty());
    }
}
