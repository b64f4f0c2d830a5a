//! Typed builders for model tests: a [`ClusterState`] is described in the
//! test that uses it (nodes, pods, ipamd pools, settings, API calls,
//! subnets), so each number a test asserts has its cause a few lines above.
//! Instance limits come from the embedded vpc-cni table.

use super::analysis::{self, Analysis};
use super::capacity::AmiFamily;
use super::env::{ConfigMapRead, ContainerEnv, EnvValue, EnvVar};
use super::findings::{self, Finding, FindingCode, Thresholds};
use super::state::*;
use jiff::Timestamp;
use std::sync::Arc;

/// "Now" of every fixture.
pub(crate) const NOW: &str = "2026-08-25T12:30:00Z";

pub(crate) fn ts(s: &str) -> Timestamp {
    s.parse().expect("fixture timestamp")
}

/// `NOW` minus `secs`.
pub(crate) fn ago(secs: i64) -> Timestamp {
    ts(NOW) - jiff::SignedDuration::from_secs(secs)
}

/// A cluster: aws-node known (default settings), no Karpenter, every other
/// source known and empty, unless a builder method says otherwise.
pub(crate) struct Cluster {
    pub(crate) state: ClusterState,
}

impl Cluster {
    pub(crate) fn new() -> Self {
        Cluster {
            state: ClusterState {
                now: Some(ts(NOW)),
                cluster_name: Some("demo".into()),
                region: Some("us-west-2".into()),
                nodes: Some(Vec::new()),
                pods: Some(PodSummary::default()),
                aws_node: Some(Some(AwsNodeState {
                    namespace: "kube-system".into(),
                    daemonset_env: ContainerEnv {
                        namespace: "kube-system".into(),
                        ..Default::default()
                    },
                })),
                karpenter: Some(None),
                sandbox_failures: Some(Vec::new()),
                networking_events: Some(Vec::new()),
                resource_controller_events: Some(Vec::new()),
                nodeclaims: Some(Vec::new()),
                ec2nodeclasses: Some(Vec::new()),
                eniconfigs: Some(Vec::new()),
                instance_types: Some(Vec::new()),
                subnets: Some(Vec::new()),
                network_interfaces: Some(Arc::new(Vec::new())),
                api_calls: Some(ApiCallState {
                    calls: Vec::new(),
                    coverage_start: Some(ago(3 * 3600)),
                }),
                ..Default::default()
            },
        }
    }

    /// Sets aws-node DaemonSet env entries (`NAME=value`).
    pub(crate) fn aws_node(mut self, env: &[(&str, &str)]) -> Self {
        let ds = self
            .state
            .aws_node
            .get_or_insert_with(|| Some(AwsNodeState::default()))
            .get_or_insert_with(AwsNodeState::default);
        ds.daemonset_env
            .env
            .extend(env.iter().map(|(k, v)| EnvVar::new(k, v)));
        self
    }

    /// Adds an aws-node DaemonSet env entry read from a ConfigMap key.
    pub(crate) fn aws_node_from_config_map(
        mut self,
        var: &str,
        config_map: &str,
        key: &str,
    ) -> Self {
        let ds = self
            .state
            .aws_node
            .get_or_insert_with(|| Some(AwsNodeState::default()))
            .get_or_insert_with(AwsNodeState::default);
        ds.daemonset_env.env.push(EnvVar {
            name: var.into(),
            value: EnvValue::ConfigMapKey {
                name: config_map.into(),
                key: key.into(),
                optional: false,
            },
        });
        self
    }

    /// A ConfigMap in kube-system as read (`None`: forbidden).
    pub(crate) fn config_map(mut self, name: &str, data: Option<&[(&str, &str)]>) -> Self {
        let read = match data {
            Some(d) => ConfigMapRead::Data(
                d.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            None => ConfigMapRead::Unreadable("forbidden".into()),
        };
        self.state
            .config_maps
            .insert(("kube-system".into(), name.into()), read);
        self
    }

    /// The env of the aws-node pod on `node` (a pod that predates a change).
    pub(crate) fn aws_node_pod(mut self, node: &str, env: &[(&str, &str)]) -> Self {
        self.state.aws_node_pod_env.insert(
            node.into(),
            Arc::new(ContainerEnv {
                namespace: "kube-system".into(),
                env_from: Vec::new(),
                env: env.iter().map(|(k, v)| EnvVar::new(k, v)).collect(),
            }),
        );
        self
    }

    /// A Karpenter controller with this RESERVED_ENIS (`None`: a value
    /// the controller would not start with).
    pub(crate) fn karpenter(mut self, reserved_enis: Option<u32>) -> Self {
        let value = reserved_enis.map_or("-1".to_string(), |r| r.to_string());
        self.state.karpenter = Some(Some(KarpenterState {
            namespace: "kube-system".into(),
            name: "karpenter".into(),
            env: ContainerEnv {
                namespace: "kube-system".into(),
                env_from: Vec::new(),
                env: vec![EnvVar::new("RESERVED_ENIS", &value)],
            },
            args: Vec::new(),
        }));
        self
    }

    /// An EC2NodeClass with default kubelet settings.
    pub(crate) fn nodeclass(mut self, name: &str) -> Self {
        self.state
            .ec2nodeclasses
            .get_or_insert_with(Vec::new)
            .push(NodeClassState {
                name: name.into(),
                max_pods: None,
                pods_per_core: None,
                ami_family: AmiFamily::Standard,
                efa_only_card0: 0,
                subnets: Vec::new(),
            });
        self
    }

    /// An EKS Auto Mode NodeClass with these node and pod subnet terms.
    pub(crate) fn auto_nodeclass(
        mut self,
        name: &str,
        subnet_terms: Vec<SubnetSelectorTerm>,
        pod_subnet_terms: Vec<SubnetSelectorTerm>,
    ) -> Self {
        self.state
            .nodeclasses
            .get_or_insert_with(Vec::new)
            .push(AutoNodeClassState {
                name: name.into(),
                subnet_terms,
                pod_subnet_terms,
            });
        self
    }

    /// A NodeClaim for `node` whose `nodeClassRef` is `group`/`class`.
    pub(crate) fn nodeclaim(mut self, node: &str, group: &str, class: &str) -> Self {
        self.state
            .nodeclaims
            .get_or_insert_with(Vec::new)
            .push(NodeClaimState {
                name: format!("{node}-claim"),
                node_name: Some(node.into()),
                nodeclass: Some(class.into()),
                nodeclass_group: Some(group.into()),
                capacity_pods: None,
            });
        self
    }

    pub(crate) fn eniconfig(mut self, name: &str, subnet: &str) -> Self {
        self.state
            .eniconfigs
            .get_or_insert_with(Vec::new)
            .push(EniConfigState {
                name: name.into(),
                subnet: Some(subnet.into()),
            });
        self
    }

    pub(crate) fn node(mut self, n: Node) -> Self {
        let Node {
            state,
            pod_network,
            host_network,
            waiting,
            pool,
            vpc_requested,
        } = n;
        let name: Arc<str> = state.name.as_str().into();
        if let Some(pods) = self.state.pods.as_mut() {
            let c = pods.nodes.entry(name.clone()).or_default();
            c.pod_network += pod_network;
            c.host_network += host_network;
            for r in VpcResource::ALL {
                *c.vpc_requested.get_mut(r) += *vpc_requested.get(r);
            }
            for i in 0..waiting {
                let pod = format!("{}-waiting-{i}", state.name);
                let key = pod_uid(&pod);
                pods.pending_without_ip.push(PendingPod {
                    namespace: "default".into(),
                    name: pod.as_str().into(),
                    node: name.clone(),
                    key,
                });
                if let Some(f) = self.state.sandbox_failures.as_mut() {
                    f.push(SandboxFailure {
                        namespace: "default".into(),
                        pod,
                        pod_uid: Some(uuid::Uuid::from_u128(key).to_string()),
                        node: Some(state.name.clone()),
                        last_seen: Some(ago(60)),
                        count: 3,
                    });
                }
            }
        }
        if let Some(pool) = pool {
            self.state.ipamd.insert(
                state.name.clone(),
                Arc::new(IpamdNodeState {
                    pool: Some(pool),
                    metrics: None,
                }),
            );
        }
        self.state.nodes.get_or_insert_with(Vec::new).push(state);
        self
    }

    /// A successful call of `op` for the instance `instance_id`, `secs_ago`.
    pub(crate) fn api_call(mut self, instance_id: &str, op: Operation, secs_ago: i64) -> Self {
        if let Some(api) = self.state.api_calls.as_mut() {
            let n = api.calls.len();
            api.calls.push(ApiCall {
                event_id: format!("ev-{n}"),
                operation: op,
                time: ago(secs_ago),
                error_code: None,
                eni_id: None,
                instance_id: Some(instance_id.into()),
            });
        }
        self
    }

    /// A subnet with `cidr` and `available` free IPs, used by nodes in `zone`.
    pub(crate) fn subnet(mut self, id: &str, zone: &str, cidr: &str, available: u64) -> Self {
        let (net, len) = cidr.split_once('/').expect("cidr");
        self.state
            .subnets
            .get_or_insert_with(Vec::new)
            .push(SubnetState {
                id: id.into(),
                zone: Some(zone.into()),
                vpc_id: Some("vpc-0demo".into()),
                cidr: Some((net.parse().expect("ipv4"), len.parse().expect("len"))),
                available_ips: available,
                tags: [(
                    String::from("kubernetes.io/cluster/demo"),
                    String::from("owned"),
                )]
                .into_iter()
                .collect(),
                cidr_reservations: Some(Vec::new()),
            });
        self
    }

    /// Adds tags to a subnet added with [`Cluster::subnet`].
    pub(crate) fn subnet_tags(mut self, id: &str, tags: &[(&str, &str)]) -> Self {
        let s = self
            .state
            .subnets
            .iter_mut()
            .flatten()
            .find(|s| s.id == id)
            .expect("subnet added first");
        s.tags
            .extend(tags.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// A CIDR reservation (`GetSubnetCidrReservations`) on a subnet added
    /// with [`Cluster::subnet`] (which starts with none).
    pub(crate) fn subnet_reservation(
        mut self,
        id: &str,
        cidr: &str,
        kind: ReservationKind,
    ) -> Self {
        let (net, len) = cidr.split_once('/').expect("cidr");
        self.state
            .subnets
            .iter_mut()
            .flatten()
            .find(|s| s.id == id)
            .expect("subnet added first")
            .cidr_reservations
            .get_or_insert_with(Vec::new)
            .push(CidrReservation {
                cidr: (net.parse().expect("ipv4"), len.parse().expect("len")),
                kind,
            });
        self
    }

    /// An EC2 ENI attached to `instance` (`DescribeNetworkInterfaces`),
    /// as `f` shapes it (kind, tags, primary).
    pub(crate) fn ec2_eni(
        mut self,
        instance: &str,
        f: impl FnOnce(&mut NetworkInterfaceState),
    ) -> Self {
        let enis = self
            .state
            .network_interfaces
            .get_or_insert_with(|| Arc::new(Vec::new()));
        let mut e = NetworkInterfaceState {
            id: format!("eni-ec2-{}", enis.len()),
            instance_id: Some(instance.into()),
            ..Default::default()
        };
        f(&mut e);
        Arc::make_mut(enis).push(e);
        self
    }

    /// Changes the state directly: a source unknown (`None`), as when its
    /// file or API is missing, or a field no builder sets.
    /// A VPC resource controller event: `TrunkENICreationFailed` on the
    /// node `object`, or `BranchAllocationFailed` on the pod `default/object`.
    pub(crate) fn rc_event(
        mut self,
        reason: RcEventReason,
        object: &str,
        message: &str,
        secs_ago: Option<i64>,
    ) -> Self {
        if let Some(e) = self.state.resource_controller_events.as_mut() {
            e.push(ResourceControllerEvent {
                reason,
                namespace: match reason {
                    RcEventReason::TrunkEniCreationFailed => String::new(),
                    RcEventReason::BranchAllocationFailed => "default".into(),
                },
                object: object.into(),
                message: message.into(),
                last_seen: secs_ago.map(ago),
                count: 2,
            });
        }
        self
    }

    /// A node monitoring agent event on `node`: `"<issue>: ..."`, last seen `secs_ago`.
    pub(crate) fn networking_event(mut self, node: &str, issue: &str, secs_ago: i64) -> Self {
        if let Some(e) = self.state.networking_events.as_mut() {
            e.push(NetworkingEvent {
                node: node.into(),
                issue: issue.into(),
                message: format!("{issue}: reported by the fixture"),
                last_seen: Some(ago(secs_ago)),
                count: 1,
            });
        }
        self
    }

    /// `n` pending pods on no node that the scheduler refused for `r`.
    pub(crate) fn unschedulable(mut self, r: VpcResource, n: u32) -> Self {
        if let Some(p) = self.state.pods.as_mut() {
            *p.unschedulable.get_mut(r) += n;
        }
        self
    }

    pub(crate) fn with_state(mut self, f: impl FnOnce(&mut ClusterState)) -> Self {
        f(&mut self.state);
        self
    }

    pub(crate) fn analyse(&self) -> Analysis {
        analysis::analyse(&self.state)
    }

    pub(crate) fn findings(&self) -> Vec<Finding> {
        findings::evaluate(&self.analyse(), &Thresholds::default())
    }
}

/// One node and what runs on it.
pub(crate) struct Node {
    state: NodeState,
    pod_network: u32,
    host_network: u32,
    waiting: u32,
    pool: Option<IpamdPool>,
    vpc_requested: PerResource<u32>,
}

impl Node {
    /// A schedulable EC2 node of `instance_type` in us-west-2a, max pods as
    /// the node's `status.capacity.pods`, 2 host-network pods (aws-node,
    /// kube-proxy), no pool known.
    pub(crate) fn new(name: &str, instance_type: &str, max_pods: u32) -> Self {
        Node {
            state: NodeState {
                name: name.into(),
                instance_type: Some(instance_type.into()),
                zone: Some("us-west-2a".into()),
                instance_id: Some(format!("i-{name}")),
                capacity_pods: Some(max_pods),
                ..Default::default()
            },
            pod_network: 0,
            host_network: 2,
            waiting: 0,
            pool: None,
            vpc_requested: PerResource::default(),
        }
    }

    /// Managed by Karpenter (NodePool `general`, EC2NodeClass `class`).
    pub(crate) fn karpenter(mut self, class: &str) -> Self {
        self.state.nodepool = Some("general".into());
        self.state.nodeclass = Some(class.into());
        self
    }

    /// In availability zone `zone` instead of us-west-2a.
    pub(crate) fn zone(mut self, zone: &str) -> Self {
        self.state.zone = Some(zone.into());
        self
    }

    pub(crate) fn cordoned(mut self) -> Self {
        self.state.unschedulable = true;
        self
    }

    /// `eks.amazonaws.com/compute-type` and `kubernetes.io/os` as parsed.
    pub(crate) fn shape(mut self, compute_type: Option<&str>, os: Option<&str>) -> Self {
        self.state.compute_type = ComputeType::parse(compute_type);
        self.state.os = NodeOs::parse(os);
        self
    }

    pub(crate) fn label(mut self, k: &str, v: &str) -> Self {
        self.state.labels.insert(k.into(), v.into());
        self
    }

    /// Running pod-network pods (each holds one assigned pool IP).
    pub(crate) fn pods(mut self, n: u32) -> Self {
        self.pod_network = n;
        self
    }

    /// Pending pods whose sandbox failed to get an IP (one event each).
    pub(crate) fn waiting(mut self, n: u32) -> Self {
        self.waiting = n;
        self.pod_network += n;
        self
    }

    /// The node monitoring agent's `NetworkingReady` condition.
    pub(crate) fn networking_ready(mut self, status: &str, reason: &str) -> Self {
        self.state.networking_ready = Some(NodeCondition {
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(format!("{reason} (fixture)")),
        });
        self
    }

    /// The node advertises `allocatable` of `r` and its pods request `requested`.
    pub(crate) fn vpc(mut self, r: VpcResource, allocatable: u32, requested: u32) -> Self {
        *self.state.vpc_allocatable.get_mut(r) = Some(allocatable);
        *self.vpc_requested.get_mut(r) = requested;
        self
    }

    pub(crate) fn pool(mut self, p: Pool) -> Self {
        self.pool = Some(p.0);
        self
    }
}

/// An ipamd pool (`/v1/enis` as parsed).
pub(crate) struct Pool(IpamdPool);

impl Pool {
    pub(crate) fn new() -> Self {
        Pool(IpamdPool::default())
    }

    /// An ENI holding `ips` secondary /32s of which `assigned` are assigned.
    pub(crate) fn eni(self, primary: bool, ips: u32, assigned: u32) -> Self {
        self.eni_with(Eni::new(primary).ips(ips, assigned))
    }

    pub(crate) fn eni_with(mut self, e: Eni) -> Self {
        let mut eni = e.0;
        eni.id = format!("eni-{}", self.0.enis.len());
        self.0.enis.push(eni);
        self
    }

    pub(crate) fn build(self) -> IpamdPool {
        self.0
    }

    /// Network card `index`'s datastore (ENABLE_MULTI_NIC), its ENIs
    /// renamed `eni-c<index>-<n>`.
    pub(crate) fn card(mut self, index: u32, p: Pool) -> Self {
        let mut pool = p.0;
        for (i, e) in pool.enis.iter_mut().enumerate() {
            e.id = format!("eni-c{index}-{i}");
        }
        self.0.other_cards.push(NetworkCardPool { index, pool });
        self
    }
}

/// One ENI of a pool.
pub(crate) struct Eni(IpamdEni);

impl Eni {
    pub(crate) fn new(primary: bool) -> Self {
        Eni(IpamdEni {
            primary,
            ..Default::default()
        })
    }

    pub(crate) fn trunk(mut self) -> Self {
        self.0.trunk = true;
        self
    }

    pub(crate) fn excluded(mut self) -> Self {
        self.0.excluded = true;
        self
    }

    pub(crate) fn subnet(mut self, id: &str) -> Self {
        self.0.subnet_id = Some(id.into());
        self
    }

    /// `n` secondary /32s, the first `assigned` of them assigned.
    pub(crate) fn ips(mut self, n: u32, assigned: u32) -> Self {
        for i in 0..n {
            self.0.cidrs.push(IpamdCidr {
                prefix: false,
                addresses: smallvec::smallvec![IpamdAddress {
                    assigned: i < assigned,
                    unassigned_at: None,
                }],
            });
        }
        self
    }

    /// `n` /28 prefixes with `assigned` addresses in use over all of them
    /// (filled prefix by prefix).
    pub(crate) fn prefixes(mut self, n: u32, mut assigned: u32) -> Self {
        for _ in 0..n {
            let here = assigned.min(16);
            assigned -= here;
            self.0.cidrs.push(IpamdCidr {
                prefix: true,
                addresses: (0..here)
                    .map(|_| IpamdAddress {
                        assigned: true,
                        unassigned_at: None,
                    })
                    .collect(),
            });
        }
        self
    }
}

/// A stable made-up UID key for a fixture pod name.
/// A selector term of these tags (all must match).
pub(crate) fn tags_term(pairs: &[(&str, &str)]) -> SubnetSelectorTerm {
    SubnetSelectorTerm::Tags(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

pub(crate) fn pod_uid(name: &str) -> u128 {
    name.bytes().fold(0x9e37_79b9_7f4a_7c15_u128, |h, b| {
        h.rotate_left(7) ^ u128::from(b)
    })
}

/// The codes of `findings`, in order.
pub(crate) fn codes(findings: &[Finding]) -> Vec<FindingCode> {
    findings.iter().map(|f| f.code).collect()
}

/// The one finding with `code` (panics when there are none or several).
pub(crate) fn only(findings: &[Finding], code: FindingCode) -> &Finding {
    let mut it = findings.iter().filter(|f| f.code == code);
    let f = it
        .next()
        .unwrap_or_else(|| panic!("no {code:?} in {:?}", codes(findings)));
    assert!(it.next().is_none(), "several {code:?}");
    f
}
