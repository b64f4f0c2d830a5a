//! Pods: the slim all-pods type, aws-node and node-agent pods, the interner.

use super::*;
// ---------- Pod ----------

#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KPod {
    #[serde(deserialize_with = "meta_labels")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: KPodSpec,
    #[serde(default)]
    pub(crate) status: KPodStatus,
}

#[derive(Deserialize, Serialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KPodSpec {
    #[serde(default)]
    pub(crate) node_name: Option<String>,
    #[serde(default)]
    pub(crate) host_network: Option<bool>,
    #[serde(default)]
    pub(crate) containers: Vec<KContainer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) init_containers: Vec<KContainer>,
}

#[derive(Deserialize, Serialize, Default, Clone, Debug)]
pub(crate) struct KPodStatus {
    #[serde(default)]
    pub(crate) phase: Option<String>,
    #[serde(default, rename = "podIP")]
    pub(crate) pod_ip: Option<String>,
    /// `PodScheduled` only (the scheduler's verdict).
    #[serde(
        default,
        deserialize_with = "scheduled_condition",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) conditions: Vec<KCondition>,
}

/// A pod without its containers (only those requesting a VPC resource,
/// and only that request): what the all-pods watch reads (150,000 pods
/// must fit comfortably, so no env, no labels, no annotations).
#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct KPodSlim {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: KPodSpecSlim,
    #[serde(default)]
    pub(crate) status: KPodStatus,
}

#[derive(Deserialize, Serialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KPodSpecSlim {
    #[serde(default)]
    pub(crate) node_name: Option<String>,
    #[serde(default)]
    pub(crate) host_network: Option<bool>,
    #[serde(
        default,
        deserialize_with = "vpc_containers",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) containers: Vec<KContainerRequests>,
    #[serde(
        default,
        deserialize_with = "vpc_containers",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) init_containers: Vec<KContainerRequests>,
}

/// Hands out one shared copy of each distinct value: strings (namespace and
/// node names repeat across 150,000 pods) or whole lists (the aws-node env
/// of a DaemonSet's pods). Values nobody uses any more are dropped by
/// [`Interner::sweep`].
pub(crate) struct Interner<T: ?Sized + Eq + std::hash::Hash = str> {
    strings: HashSet<Arc<T>>,
    swept_at: usize,
}

impl<T: ?Sized + Eq + std::hash::Hash> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            strings: HashSet::new(),
            swept_at: 0,
        }
    }
}

impl<T: ?Sized + Eq + std::hash::Hash> Interner<T> {
    pub(crate) fn get<Q: std::borrow::Borrow<T> + Into<Arc<T>>>(&mut self, v: Q) -> Arc<T> {
        if let Some(a) = self.strings.get(v.borrow()) {
            return a.clone();
        }
        let a: Arc<T> = v.into();
        self.strings.insert(a.clone());
        // Amortised: sweep when the set doubled since the last sweep.
        if self.strings.len() > 2 * self.swept_at + 1024 {
            self.sweep();
        }
        a
    }

    /// Forgets values held by nobody else.
    pub(crate) fn sweep(&mut self) {
        self.strings.retain(|a| Arc::strong_count(a) > 1);
        self.swept_at = self.strings.len();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.strings.len()
    }
}

pub(super) fn pod_state(
    meta: &ObjectMeta,
    node_name: Option<&String>,
    host_network: Option<bool>,
    status: &KPodStatus,
    vpc_requests: PerResource<Option<u32>>,
    interner: &mut Interner,
) -> PodState {
    PodState {
        vpc_requests,
        refused_for: refused_for(&status.conditions),
        namespace: interner.get(meta.namespace.as_deref().unwrap_or_default()),
        name: meta.name.as_deref().unwrap_or_default().into(),
        node_name: node_name
            .filter(|n| !n.is_empty())
            .map(|n| interner.get(n.as_str())),
        host_network: host_network.unwrap_or(false),
        phase: PodPhase::parse(status.phase.as_deref().unwrap_or("")),
        has_ip: status.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty()),
    }
}

impl KPodSlim {
    pub fn to_state(&self) -> PodState {
        self.to_state_interned(&mut Interner::default())
    }

    pub(crate) fn to_state_interned(&self, interner: &mut Interner) -> PodState {
        pod_state(
            &self.metadata,
            self.spec.node_name.as_ref(),
            self.spec.host_network,
            &self.status,
            pod_requests(&self.spec.containers, &self.spec.init_containers),
            interner,
        )
    }

    /// The pod's identity as a 128-bit key: its UID (a UUID) read as a
    /// number, so the cache does not keep 150,000 36-byte strings. Any other
    /// UID, or none, is hashed together with namespace and name.
    pub(crate) fn key(&self) -> u128 {
        pod_key(&self.metadata)
    }
}

/// See [`KPodSlim::key`].
pub(super) fn pod_key(m: &ObjectMeta) -> u128 {
    if let Some(k) = m.uid.as_deref().and_then(parse_uuid) {
        return k;
    }
    use std::hash::{Hash, Hasher};
    let half = |seed: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (seed, &m.uid, &m.namespace, &m.name).hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// A UUID read as a number (the `uuid` crate's parser); `None` for anything else.
pub(crate) fn parse_uuid(s: &str) -> Option<u128> {
    crate::model::state::uid_key(s)
}

/// Where a node agent serves: its pod's IP (the node's, hostNetwork) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentEndpoint {
    pub(crate) node: String,
    pub(crate) address: String,
}

/// Label selector of the node-agent DaemonSet's pods (deploy/daemonset.yaml;
/// tests/deploy_contract.rs keeps the two equal).
pub const AGENT_SELECTOR: &str =
    "app.kubernetes.io/name=eks-ipam-exporter,app.kubernetes.io/component=node";

/// Port name of the node agent's HTTP endpoint.
pub const AGENT_PORT_NAME: &str = "http-metrics";

impl KPod {
    /// An aws-node pod: owned by the `aws-node` DaemonSet, or labelled like one.
    pub(crate) fn is_aws_node(&self) -> bool {
        self.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "DaemonSet" && o.name == "aws-node")
            || label(&self.metadata, "k8s-app") == Some("aws-node")
    }

    /// The env of the `aws-node` container, if this is an aws-node pod.
    pub(crate) fn aws_node_env(&self) -> Option<ContainerEnv> {
        if !self.is_aws_node() {
            return None;
        }
        let ns = self.metadata.namespace.as_deref().unwrap_or_default();
        aws_node_container(&self.spec.containers).map(|c| c.container_env(ns))
    }

    /// How well this aws-node pod speaks for its node's settings: `None`
    /// for a terminated pod (Succeeded/Failed: an evicted pod keeps its old
    /// env), else running before not-running, not-terminating before
    /// terminating, then the newest.
    fn aws_node_rank(&self) -> Option<AwsNodeRank> {
        let phase = PodPhase::parse(self.status.phase.as_deref().unwrap_or(""));
        if phase.terminated() {
            return None;
        }
        Some((
            phase == PodPhase::Running,
            self.metadata.deletion_timestamp.is_none(),
            self.metadata.creation_timestamp.as_ref().map(|t| t.0),
        ))
    }
}

/// (running, not terminating, created): larger is a better aws-node pod.
pub(super) type AwsNodeRank = (bool, bool, Option<jiff::Timestamp>);

/// Per node, the aws-node pod whose env is the node's effective settings:
/// its running (else newest non-terminated) aws-node pod; terminated pods
/// never. Ties go to the pod name that sorts last, so the choice does not
/// depend on list order.
pub(crate) fn aws_node_pod_per_node<'a>(
    pods: impl IntoIterator<Item = &'a KPod>,
) -> BTreeMap<&'a str, &'a KPod> {
    let mut best: BTreeMap<&str, (&KPod, AwsNodeRank)> = BTreeMap::new();
    for p in pods {
        let (Some(node), true) = (p.spec.node_name.as_deref(), p.is_aws_node()) else {
            continue;
        };
        let Some(rank) = p.aws_node_rank() else {
            continue;
        };
        let better = match best.get(node) {
            None => true,
            Some((q, r)) => (rank, p.metadata.name.as_deref()) > (*r, q.metadata.name.as_deref()),
        };
        if better {
            best.insert(node, (p, rank));
        }
    }
    best.into_iter().map(|(n, (p, _))| (n, p)).collect()
}

impl KPod {
    /// The pod's identity key, as [`KPodSlim::key`].
    pub(crate) fn key(&self) -> u128 {
        pod_key(&self.metadata)
    }

    pub(crate) fn to_state(&self) -> PodState {
        pod_state(
            &self.metadata,
            self.spec.node_name.as_ref(),
            self.spec.host_network,
            &self.status,
            pod_requests(&self.spec.containers, &self.spec.init_containers),
            &mut Interner::default(),
        )
    }

    /// The node agent endpoint this pod serves, if it is a running agent pod.
    pub(crate) fn agent_endpoint(&self) -> Option<AgentEndpoint> {
        if self.status.phase.as_deref() != Some("Running") {
            return None;
        }
        let node = self.spec.node_name.clone().filter(|n| !n.is_empty())?;
        let ip = self.status.pod_ip.clone().filter(|ip| !ip.is_empty())?;
        let port = self
            .spec
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .find(|p| p.name.as_deref() == Some(AGENT_PORT_NAME))?
            .container_port;
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip
        };
        Some(AgentEndpoint {
            node,
            address: format!("{host}:{port}"),
        })
    }
}

pub(super) fn aws_node_container(containers: &[KContainer]) -> Option<&KContainer> {
    containers.iter().find(|c| c.name == "aws-node")
}

impl KContainer {
    /// The env spec as the model resolves it (references kept, not read).
    pub(super) fn container_env(&self, namespace: &str) -> ContainerEnv {
        ContainerEnv {
            namespace: namespace.to_string(),
            env_from: self
                .env_from
                .iter()
                .map(|f| {
                    let cm = f.config_map_ref.as_ref();
                    EnvFrom {
                        config_map: cm.map(|c| c.name.clone()),
                        prefix: f.prefix.clone().unwrap_or_default(),
                        optional: cm
                            .and_then(|r| r.optional)
                            .or(f.secret_ref.as_ref().and_then(|r| r.optional))
                            .unwrap_or(false),
                    }
                })
                .collect(),
            env: self.env.iter().map(KEnv::to_env).collect(),
        }
    }
}
