//! Kubernetes objects (as `kubectl get X -o json` prints them, and as the API
//! returns them) -> slim state. Only the fields the view needs are read; the
//! rest is skipped during deserialisation.

use crate::model::capacity::{AmiFamily, MaxPodsSetting};
use crate::model::env::{ConfigMaps, ContainerEnv, EnvFrom, EnvVar};
use crate::model::state::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The metadata fields the exporter reads. Everything else (managedFields
/// above all) is skipped while deserialising, so caches stay slim.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct SlimMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    owner_references: Option<Vec<SlimOwner>>,
    #[serde(default)]
    creation_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    #[serde(default)]
    deletion_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

#[derive(Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct SlimOwner {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    uid: String,
}

impl SlimMeta {
    fn into_meta(self, keep_labels: bool, keep_annotations: bool) -> ObjectMeta {
        // Times only with labels: the 150,000 slim pods need neither.
        let (created, deleted) = if keep_labels {
            (self.creation_timestamp, self.deletion_timestamp)
        } else {
            (None, None)
        };
        ObjectMeta {
            creation_timestamp: created,
            deletion_timestamp: deleted,
            name: self.name,
            namespace: self.namespace,
            uid: self.uid,
            resource_version: self.resource_version,
            labels: self.labels.filter(|_| keep_labels),
            annotations: self.annotations.filter(|_| keep_annotations),
            owner_references: self.owner_references.map(|v| {
                v.into_iter()
                    .map(|o| OwnerReference {
                        api_version: o.api_version,
                        kind: o.kind,
                        name: o.name,
                        uid: o.uid,
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }
    }
}

/// Metadata with labels, without annotations (pod annotations can be large).
fn meta_labels<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    Ok(SlimMeta::deserialize(d)?.into_meta(true, false))
}

/// Identity only: name, namespace, uid, resourceVersion, owners.
fn meta_min<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    Ok(SlimMeta::deserialize(d)?.into_meta(false, false))
}

fn name_of(m: &ObjectMeta) -> String {
    m.name.clone().unwrap_or_default()
}

fn label<'a>(m: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    m.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// Implements `kube::Resource` for a slim type, so the live watchers
/// deserialise API objects straight into it (never into the full type).
macro_rules! slim_resource {
    ($ty:ty, $kind:literal, $group:literal, $version:literal, $plural:literal, $scope:ty) => {
        slim_resource!($ty, $kind, $group, $version, $plural, $scope, metadata);
    };
    ($ty:ty, $kind:literal, $group:literal, $version:literal, $plural:literal, $scope:ty, $($meta:tt).+) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;
            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.$($meta).+
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.$($meta).+
            }
        }
    };
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KEnv {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) value: Option<String>,
    #[serde(default)]
    pub(crate) value_from: Option<KEnvSource>,
}

/// `valueFrom`: only a ConfigMap key is kept; a Secret's name and key are
/// not even stored.
#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KEnvSource {
    #[serde(default)]
    pub(crate) config_map_key_ref: Option<KKeySelector>,
    #[serde(default)]
    pub(crate) secret_key_ref: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) field_ref: Option<IgnoredAny>,
    #[serde(default)]
    pub(crate) resource_field_ref: Option<IgnoredAny>,
}

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KKeySelector {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) optional: Option<bool>,
}

/// `envFrom[]`.
#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KEnvFrom {
    #[serde(default)]
    pub(crate) prefix: Option<String>,
    #[serde(default)]
    pub(crate) config_map_ref: Option<KNameRef>,
    /// Only whether it is optional: a Secret's name is not stored.
    #[serde(default)]
    pub(crate) secret_ref: Option<KOptional>,
}

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KOptional {
    #[serde(default)]
    pub(crate) optional: Option<bool>,
}

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KNameRef {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) optional: Option<bool>,
}

impl KEnv {
    fn to_env(&self) -> EnvVar {
        use crate::model::env::EnvValue;
        // The kubelet takes a non-empty `value` first; a plain entry
        // without `value` is the empty string.
        let value = match (&self.value, &self.value_from) {
            (Some(v), _) if !v.is_empty() => EnvValue::Literal(v.clone()),
            (_, None) => EnvValue::Literal(String::new()),
            (_, Some(src)) => {
                match (&src.config_map_key_ref, &src.secret_key_ref, &src.field_ref) {
                    (Some(k), _, _) => EnvValue::ConfigMapKey {
                        name: k.name.clone(),
                        key: k.key.clone(),
                        optional: k.optional.unwrap_or(false),
                    },
                    (None, Some(_), _) => EnvValue::Unread("secretKeyRef"),
                    (None, None, Some(_)) => EnvValue::Unread("fieldRef"),
                    (None, None, None) if src.resource_field_ref.is_some() => {
                        EnvValue::Unread("resourceFieldRef")
                    }
                    (None, None, None) => EnvValue::Unread("of an unknown kind"),
                }
            }
        };
        EnvVar {
            name: self.name.clone(),
            value,
        }
    }
}

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KContainer {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) image: Option<String>,
    #[serde(default)]
    pub(crate) args: Vec<String>,
    #[serde(default)]
    pub(crate) env: Vec<KEnv>,
    #[serde(default, rename = "envFrom")]
    pub(crate) env_from: Vec<KEnvFrom>,
    #[serde(default)]
    pub(crate) ports: Vec<KPort>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KPort {
    #[serde(default)]
    pub(crate) name: Option<String>,
    pub(crate) container_port: u16,
}

// ---------- Node ----------

/// A node as cached: what [`KNode::to_state`] reads, nothing else. A Node is
/// ~8 KB of JSON (images, conditions, nodeInfo, managedFields); kept as
/// maps of labels, annotations, capacity and addresses it still held 6.2 KB
/// of heap, 31 MB at 5,000 nodes.
#[derive(Deserialize, Clone, Debug)]
#[serde(from = "KNodeWire")]
pub struct KNode {
    /// Name, uid and resourceVersion only (the reflector's key and resume point).
    pub(crate) metadata: ObjectMeta,
    /// All labels and annotations: the ENIConfig label and annotation keys
    /// are settings of aws-node (`ENI_CONFIG_LABEL_DEF`, ...), so any may matter.
    pub(crate) labels: CompactMap,
    pub(crate) annotations: CompactMap,
    /// `spec.providerID`.
    pub(crate) provider_id: Option<Box<str>>,
    /// `spec.unschedulable`, or the `node.kubernetes.io/unschedulable` taint.
    pub(crate) unschedulable: bool,
    /// `status.capacity.pods`, as written (a quantity is a string: any other
    /// type makes the node unreadable, as before slimming; bundles name the file).
    pub(crate) capacity_pods: Option<Box<str>>,
    /// The first `InternalIP` of `status.addresses`.
    pub(crate) internal_ip: Option<Box<str>>,
}

#[derive(Deserialize)]
struct KNodeWire {
    metadata: SlimMeta,
    #[serde(default)]
    spec: KNodeSpecWire,
    #[serde(default)]
    status: KNodeStatusWire,
}

#[derive(Deserialize, Default)]
struct KNodeSpecWire {
    #[serde(default, rename = "providerID")]
    provider_id: Option<String>,
    #[serde(default)]
    unschedulable: Option<bool>,
    #[serde(default)]
    taints: Vec<KTaint>,
}

#[derive(Deserialize)]
struct KTaint {
    #[serde(default)]
    key: String,
}

#[derive(Deserialize, Default)]
struct KNodeStatusWire {
    #[serde(default)]
    capacity: KNodeCapacityWire,
    #[serde(default)]
    addresses: Vec<KAddress>,
}

#[derive(Deserialize, Default)]
struct KNodeCapacityWire {
    #[serde(default)]
    pods: Option<String>,
}

#[derive(Deserialize)]
struct KAddress {
    #[serde(rename = "type")]
    kind: String,
    address: String,
}

impl From<KNodeWire> for KNode {
    fn from(mut w: KNodeWire) -> Self {
        let labels = CompactMap::from(w.metadata.labels.take().unwrap_or_default());
        let annotations = CompactMap::from(w.metadata.annotations.take().unwrap_or_default());
        KNode {
            metadata: w.metadata.into_meta(false, false),
            labels,
            annotations,
            provider_id: w.spec.provider_id.map(String::into_boxed_str),
            unschedulable: w.spec.unschedulable.unwrap_or(false)
                || w.spec
                    .taints
                    .iter()
                    .any(|t| t.key == "node.kubernetes.io/unschedulable"),
            capacity_pods: w.status.capacity.pods.map(String::into_boxed_str),
            internal_ip: w
                .status
                .addresses
                .into_iter()
                .find(|a| a.kind == "InternalIP")
                .map(|a| a.address.into_boxed_str()),
        }
    }
}

/// A string map in two heap blocks: keys and values back to back in one
/// string, and where each ends. As a `BTreeMap<String, String>`, a node's
/// 25 labels and annotations are ~50 blocks plus tree nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CompactMap {
    text: Box<str>,
    /// (end of key, end of value) in `text`, sorted by key.
    ends: Box<[(u32, u32)]>,
}

impl CompactMap {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        let (mut lo, mut hi) = (0, self.ends.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (k, v) = self.entry(mid);
            match k.cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(v),
            }
        }
        None
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.ends.len()).map(|i| self.entry(i))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn start_of(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1].1 as usize
        }
    }

    fn entry(&self, i: usize) -> (&str, &str) {
        let (k_end, v_end) = self.ends[i];
        (
            &self.text[self.start_of(i)..k_end as usize],
            &self.text[k_end as usize..v_end as usize],
        )
    }
}

impl From<BTreeMap<String, String>> for CompactMap {
    /// Keeps the map's (sorted) order. An object is at most ~1.5 MB (etcd's
    /// limit), far below the u32 offsets; entries past 4 GiB would be dropped.
    fn from(m: BTreeMap<String, String>) -> Self {
        let mut text = String::with_capacity(m.iter().map(|(k, v)| k.len() + v.len()).sum());
        let mut ends = Vec::with_capacity(m.len());
        for (k, v) in &m {
            let (Ok(k_end), Ok(v_end)) = (
                u32::try_from(text.len() + k.len()),
                u32::try_from(text.len() + k.len() + v.len()),
            ) else {
                break;
            };
            text.push_str(k);
            text.push_str(v);
            ends.push((k_end, v_end));
        }
        CompactMap {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

/// A Kubernetes quantity that should be a plain count ("17"). Anything else
/// is unknown rather than guessed.
pub(crate) fn parse_count(q: &str) -> Option<u32> {
    q.trim().parse::<u32>().ok()
}

/// `aws:///us-west-2a/i-0b2c3d4e5f6a78901` -> (zone, instance id).
pub(crate) fn parse_provider_id(p: &str) -> (Option<String>, Option<String>) {
    let rest = match p.strip_prefix("aws://") {
        Some(r) => r,
        None => return (None, None),
    };
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let instance = parts
        .last()
        .filter(|s| s.starts_with("i-"))
        .map(|s| s.to_string());
    let zone = (parts.len() >= 2).then(|| parts[parts.len() - 2].to_string());
    (zone, instance)
}

const ENI_CONFIG_KEYS: &[&str] = &[
    "vpc.amazonaws.com/externalEniConfig",
    "vpc.amazonaws.com/has-trunk-attached",
];

impl KNode {
    /// `label_keys` / `annotation_keys` are the names aws-node may use to
    /// pick the ENIConfig: only those labels/annotations are kept (plus the
    /// fixed keys ipamd reads).
    pub fn to_state(
        &self,
        label_keys: &HashSet<String>,
        annotation_keys: &HashSet<String>,
    ) -> NodeState {
        let l = &self.labels;
        let (pid_zone, instance_id) = self
            .provider_id
            .as_deref()
            .map(parse_provider_id)
            .unwrap_or((None, None));
        let zone = l
            .get("topology.kubernetes.io/zone")
            .or_else(|| l.get("failure-domain.beta.kubernetes.io/zone"))
            .map(str::to_string)
            .or(pid_zone);
        let instance_type = l
            .get("node.kubernetes.io/instance-type")
            .or_else(|| l.get("beta.kubernetes.io/instance-type"))
            .map(str::to_string);
        let keep_label = |k: &str| {
            label_keys.contains(k)
                || k == "k8s.amazonaws.com/eniConfig"
                || ENI_CONFIG_KEYS.contains(&k)
        };
        let labels = l
            .iter()
            .filter(|(k, _)| keep_label(k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let annotations = self
            .annotations
            .iter()
            .filter(|(k, _)| annotation_keys.contains(*k) || *k == "k8s.amazonaws.com/eniConfig")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NodeState {
            instance_type,
            zone,
            instance_id,
            nodepool: l.get("karpenter.sh/nodepool").map(str::to_string),
            nodeclass: l.get("karpenter.k8s.aws/ec2nodeclass").map(str::to_string),
            capacity_pods: self.capacity_pods.as_deref().and_then(parse_count),
            unschedulable: self.unschedulable,
            internal_ip: self.internal_ip.as_deref().map(str::to_string),
            compute_type: ComputeType::parse(l.get("eks.amazonaws.com/compute-type")),
            os: NodeOs::parse(l.get("kubernetes.io/os")),
            labels,
            annotations,
            name: name_of(&self.metadata),
        }
    }
}

// ---------- Pod ----------

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KPod {
    #[serde(deserialize_with = "meta_labels")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: KPodSpec,
    #[serde(default)]
    pub(crate) status: KPodStatus,
}

#[derive(Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KPodSpec {
    #[serde(default)]
    pub(crate) node_name: Option<String>,
    #[serde(default)]
    pub(crate) host_network: Option<bool>,
    #[serde(default)]
    pub(crate) containers: Vec<KContainer>,
}

#[derive(Deserialize, Default, Clone, Debug)]
pub(crate) struct KPodStatus {
    #[serde(default)]
    pub(crate) phase: Option<String>,
    #[serde(default, rename = "podIP")]
    pub(crate) pod_ip: Option<String>,
}

/// A pod without its containers: what the all-pods watch keeps (150,000
/// pods must fit comfortably, so no env, no labels, no annotations).
#[derive(Deserialize, Clone, Debug)]
pub struct KPodSlim {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: KPodSpecSlim,
    #[serde(default)]
    pub(crate) status: KPodStatus,
}

#[derive(Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KPodSpecSlim {
    #[serde(default)]
    pub(crate) node_name: Option<String>,
    #[serde(default)]
    pub(crate) host_network: Option<bool>,
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

fn pod_state(
    meta: &ObjectMeta,
    node_name: Option<&String>,
    host_network: Option<bool>,
    status: &KPodStatus,
    interner: &mut Interner,
) -> PodState {
    PodState {
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
fn pod_key(m: &ObjectMeta) -> u128 {
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

/// Whether a pod's labels match [`AGENT_SELECTOR`].
pub(crate) fn is_agent_pod(labels: Option<&BTreeMap<String, String>>) -> bool {
    AGENT_SELECTOR.split(',').all(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        labels.and_then(|l| l.get(k)).map(String::as_str) == Some(v)
    })
}
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
type AwsNodeRank = (bool, bool, Option<jiff::Timestamp>);

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

fn aws_node_container(containers: &[KContainer]) -> Option<&KContainer> {
    containers.iter().find(|c| c.name == "aws-node")
}

impl KContainer {
    /// The env spec as the model resolves it (references kept, not read).
    fn container_env(&self, namespace: &str) -> ContainerEnv {
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

// ---------- ConfigMap ----------

/// A ConfigMap named by a setting: `data` only (`binaryData` is not what
/// the kubelet reads for env).
#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KConfigMap {
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) data: BTreeMap<String, String>,
}

impl KConfigMap {
    /// (namespace, name).
    pub(crate) fn key(&self) -> (String, String) {
        (
            self.metadata.namespace.clone().unwrap_or_default(),
            self.metadata.name.clone().unwrap_or_default(),
        )
    }
}

// ---------- DaemonSet / Deployment ----------

#[derive(Deserialize, Clone, Debug)]
pub struct KWorkload {
    #[serde(deserialize_with = "meta_labels")]
    pub(crate) metadata: ObjectMeta,
    pub(crate) spec: KWorkloadSpec,
}

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KWorkloadSpec {
    pub(crate) template: KTemplate,
}

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KTemplate {
    #[serde(default)]
    pub(crate) metadata: Option<KTemplateMeta>,
    pub(crate) spec: KTemplateSpec,
}

#[derive(Deserialize, Default, Clone, Debug)]
pub(crate) struct KTemplateMeta {
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KTemplateSpec {
    #[serde(default)]
    pub(crate) containers: Vec<KContainer>,
}

/// The aws-node DaemonSet's `aws-node` container env, if the list has it
/// (kube-system first, as EKS installs it).
pub fn aws_node_daemonset_env<'a>(
    daemonsets: impl IntoIterator<Item = &'a KWorkload>,
) -> Option<(String, ContainerEnv)> {
    let mut candidates: Vec<&KWorkload> = daemonsets
        .into_iter()
        .filter(|d| d.metadata.name.as_deref() == Some("aws-node"))
        .collect();
    candidates.sort_by_key(|d| d.metadata.namespace.as_deref() != Some("kube-system"));
    let ds = candidates.first()?;
    let c = aws_node_container(&ds.spec.template.spec.containers)?;
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let env = c.container_env(&ns);
    Some((ns, env))
}

/// The Karpenter controller Deployment, found by label in any namespace.
pub(crate) fn karpenter_controller(deployments: &[KWorkload]) -> Option<KarpenterState> {
    let is_karpenter = |d: &&KWorkload| {
        let tmpl_labels = d.spec.template.metadata.as_ref().map(|m| &m.labels);
        label(&d.metadata, "app.kubernetes.io/name") == Some("karpenter")
            || tmpl_labels
                .and_then(|l| l.get("app.kubernetes.io/name"))
                .map(String::as_str)
                == Some("karpenter")
    };
    let d = deployments.iter().find(is_karpenter)?;
    let containers = &d.spec.template.spec.containers;
    let c = containers
        .iter()
        .find(|c| c.name == "controller")
        .or_else(|| {
            containers
                .iter()
                .find(|c| c.image.as_deref().is_some_and(|i| i.contains("karpenter")))
        })?;
    let namespace = d.metadata.namespace.clone().unwrap_or_default();
    Some(KarpenterState {
        env: c.container_env(&namespace),
        namespace,
        name: name_of(&d.metadata),
        args: c.args.clone(),
    })
}

// ---------- Events ----------

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KEvent {
    #[serde(deserialize_with = "meta_min", default)]
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) involved_object: KObjectRef,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) source: Option<KEventSource>,
    #[serde(default)]
    pub(crate) reporting_instance: Option<String>,
    #[serde(default, deserialize_with = "super::time::de_opt")]
    pub(crate) last_timestamp: Option<jiff::Timestamp>,
    #[serde(default, deserialize_with = "super::time::de_opt")]
    pub(crate) event_time: Option<jiff::Timestamp>,
    #[serde(default)]
    pub(crate) count: Option<u32>,
}

#[derive(Deserialize, Default, Clone, Debug)]
pub(crate) struct KObjectRef {
    #[serde(default)]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) uid: Option<String>,
}

#[derive(Deserialize, Default, Clone, Debug)]
pub(crate) struct KEventSource {
    #[serde(default)]
    pub(crate) host: Option<String>,
}

/// The CNI plugin's message when ipamd had no IP for the pod.
pub(crate) const IP_ASSIGN_FAILURE: &str = "failed to assign an IP address to container";

impl KEvent {
    /// A `FailedCreatePodSandBox` caused by IP exhaustion, or `None`.
    pub(crate) fn sandbox_ip_failure(&self) -> Option<SandboxFailure> {
        if self.reason.as_deref() != Some("FailedCreatePodSandBox") {
            return None;
        }
        if !self
            .message
            .as_deref()
            .is_some_and(|m| m.contains(IP_ASSIGN_FAILURE))
        {
            return None;
        }
        let o = &self.involved_object;
        if o.kind.as_deref().is_some_and(|k| k != "Pod") {
            return None;
        }
        Some(SandboxFailure {
            namespace: o.namespace.clone().unwrap_or_default(),
            pod: o.name.clone()?,
            pod_uid: o.uid.clone(),
            node: self
                .source
                .as_ref()
                .and_then(|s| s.host.clone())
                .or_else(|| self.reporting_instance.clone())
                .filter(|h| !h.is_empty()),
            last_seen: self.last_timestamp.or(self.event_time),
            count: self.count.unwrap_or(1),
        })
    }
}

// ---------- Karpenter and VPC CNI CRDs ----------

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KNodeClaim {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nodeclaim_spec")]
    pub(crate) spec: KNodeClaimSpec,
    #[serde(default, deserialize_with = "nodeclaim_status")]
    pub(crate) status: KNodeClaimStatus,
}

/// The NodeClaim fields the view uses; the rest (requirements, resources,
/// conditions: about 1 KB a claim) is dropped while parsing. Read through a
/// JSON value so that a field of an odd type is unknown, never an error
/// for the whole object.
#[derive(Default, Clone, Debug)]
pub(crate) struct KNodeClaimSpec {
    pub(crate) node_class: Option<String>,
}

#[derive(Default, Clone, Debug)]
pub(crate) struct KNodeClaimStatus {
    pub(crate) node_name: Option<String>,
    /// `status.capacity.pods`, as written.
    pub(crate) capacity_pods: Option<String>,
}

fn json_text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn nodeclaim_spec<'de, D: Deserializer<'de>>(d: D) -> Result<KNodeClaimSpec, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(KNodeClaimSpec {
        node_class: json_text(&v, "/nodeClassRef/name"),
    })
}

fn nodeclaim_status<'de, D: Deserializer<'de>>(d: D) -> Result<KNodeClaimStatus, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(KNodeClaimStatus {
        node_name: json_text(&v, "/nodeName"),
        capacity_pods: json_text(&v, "/capacity/pods"),
    })
}

impl KNodeClaim {
    pub(crate) fn to_state(&self) -> NodeClaimState {
        NodeClaimState {
            name: name_of(&self.metadata),
            node_name: self.status.node_name.clone(),
            nodeclass: self.spec.node_class.clone(),
            capacity_pods: self.status.capacity_pods.as_deref().and_then(parse_count),
        }
    }
}

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KNodeClass {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: Value,
    #[serde(default)]
    pub(crate) status: Value,
}

impl KNodeClass {
    pub(crate) fn to_state(&self) -> Result<NodeClassState, String> {
        let max_pods = match self.spec.pointer("/kubelet/maxPods") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(MaxPodsSetting::Fixed(
                n.as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| {
                        format!(
                            "EC2NodeClass {}: spec.kubelet.maxPods {n} is not a count",
                            name_of(&self.metadata)
                        )
                    })?,
            )),
            Some(Value::String(s)) => Some(match s.trim().parse::<u32>() {
                Ok(v) => MaxPodsSetting::Fixed(v),
                Err(_) => MaxPodsSetting::Expression(s.clone()),
            }),
            Some(other) => {
                return Err(format!(
                    "EC2NodeClass {}: spec.kubelet.maxPods must be a number or string, got {other}",
                    name_of(&self.metadata)
                ))
            }
        };
        let pods_per_core = self
            .spec
            .pointer("/kubelet/podsPerCore")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok());
        let family = self
            .spec
            .get("amiFamily")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                self.spec
                    .get("amiSelectorTerms")
                    .and_then(Value::as_array)
                    .and_then(|terms| {
                        terms
                            .iter()
                            .find_map(|t| t.get("alias").and_then(Value::as_str))
                    })
                    .map(str::to_string)
            });
        let efa_only_card0 = self
            .spec
            .get("networkInterfaces")
            .and_then(Value::as_array)
            .map(|nis| {
                nis.iter()
                    .filter(|ni| {
                        ni.get("networkCardIndex")
                            .and_then(Value::as_u64)
                            .unwrap_or(0)
                            == 0
                    })
                    .filter(|ni| {
                        ni.get("interfaceType").and_then(Value::as_str) == Some("efa-only")
                    })
                    .count() as u32
            })
            .unwrap_or(0);
        let subnets = self
            .status
            .get("subnets")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(|s| {
                        let id = s.get("id")?.as_str()?.to_string();
                        Some((
                            id,
                            s.get("zone").and_then(Value::as_str).map(str::to_string),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(NodeClassState {
            name: name_of(&self.metadata),
            max_pods,
            pods_per_core,
            ami_family: family
                .as_deref()
                .map(AmiFamily::parse)
                .unwrap_or(AmiFamily::Standard),
            efa_only_card0,
            subnets,
        })
    }
}

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KEniConfig {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: Value,
}

impl KEniConfig {
    pub(crate) fn to_state(&self) -> EniConfigState {
        EniConfigState {
            name: name_of(&self.metadata),
            subnet: self
                .spec
                .get("subnet")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

/// NodePools carry nothing the view uses yet; read to validate the file.
#[derive(Deserialize, Clone, Debug)]
pub(crate) struct KNodePool {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn karpenter_deployment(env: &str, args: &str) -> KWorkload {
        serde_json::from_str(&format!(
            r#"{{"metadata":{{"name":"karpenter","namespace":"kube-system",
               "labels":{{"app.kubernetes.io/name":"karpenter"}}}},
               "spec":{{"template":{{"spec":{{"containers":[{{"name":"controller",
               "image":"public.ecr.aws/karpenter/controller:1.14.1","args":[{args}],"env":[{env}]}}]}}}}}}}}"#
        ))
        .expect("deployment JSON")
    }

    fn aws_node_pod(name: &str, node: &str, phase: &str, created: &str, warm: &str) -> KPod {
        serde_json::from_str(&format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"kube-system","creationTimestamp":"{created}",
               "ownerReferences":[{{"apiVersion":"apps/v1","kind":"DaemonSet","name":"aws-node","uid":"x"}}]}},
               "spec":{{"nodeName":"{node}","containers":[{{"name":"aws-node","env":[
                 {{"name":"MINIMUM_IP_TARGET","value":"25"}},{{"name":"WARM_IP_TARGET","value":"{warm}"}}]}}]}},
               "status":{{"phase":"{phase}"}}}}"#
        ))
        .expect("pod JSON")
    }

    /// Issue 14 item 8: an evicted (Failed) aws-node pod listed after the
    /// running one used to give the node its old env.
    #[test]
    fn a_node_takes_its_running_aws_node_pod_never_a_terminated_one() {
        let running = aws_node_pod(
            "aws-node-new",
            "n1",
            "Running",
            "2026-08-25T10:00:00Z",
            "10",
        );
        let evicted = aws_node_pod("aws-node-old", "n1", "Failed", "2026-08-20T10:00:00Z", "0");
        for order in [[&running, &evicted], [&evicted, &running]] {
            let chosen = aws_node_pod_per_node(order.iter().copied());
            assert_eq!(chosen["n1"].metadata.name.as_deref(), Some("aws-node-new"));
        }
        // Two live pods (a rollout): the running one, then the newest.
        let pending = aws_node_pod(
            "aws-node-next",
            "n1",
            "Pending",
            "2026-08-25T11:00:00Z",
            "5",
        );
        let chosen = aws_node_pod_per_node([&pending, &running]);
        assert_eq!(chosen["n1"].metadata.name.as_deref(), Some("aws-node-new"));
        let newer = aws_node_pod(
            "aws-node-newer",
            "n1",
            "Running",
            "2026-08-25T12:00:00Z",
            "5",
        );
        let chosen = aws_node_pod_per_node([&newer, &running]);
        assert_eq!(
            chosen["n1"].metadata.name.as_deref(),
            Some("aws-node-newer")
        );
        // Only terminated pods: the node has no aws-node env of its own.
        assert!(aws_node_pod_per_node([&evicted]).is_empty());
    }

    /// Issue 14 item 11: Karpenter reads RESERVED_ENIS with strconv.Atoi,
    /// which does not trim: `" 1"` is invalid and Karpenter silently uses 0
    /// (we used to trim it and report 1, hiding incident 1).
    #[test]
    fn reserved_enis_is_read_as_karpenter_reads_it() {
        let k = |env: &str, args: &str| {
            let state = karpenter_controller(&[karpenter_deployment(env, args)]).unwrap();
            crate::model::analysis::karpenter_analysis(&state, &ConfigMaps::new()).reserved_enis
        };
        assert_eq!(k(r#"{"name":"RESERVED_ENIS","value":" 1"}"#, ""), Some(0));
        assert_eq!(k(r#"{"name":"RESERVED_ENIS","value":"1"}"#, ""), Some(1));
        assert_eq!(k("", ""), Some(0));
        assert_eq!(k(r#"{"name":"RESERVED_ENIS","value":"-1"}"#, ""), None);
        assert_eq!(
            k(
                r#"{"name":"RESERVED_ENIS","value":"0"}"#,
                r#""--reserved-enis=1""#
            ),
            Some(1)
        );
        let from =
            r#"{"name":"RESERVED_ENIS","valueFrom":{"configMapKeyRef":{"name":"k","key":"r"}}}"#;
        assert_eq!(k(from, ""), None, "not read: unknown");
        assert_eq!(k(from, r#""--reserved-enis=2""#), Some(2), "the flag wins");
    }

    /// The node's shape comes from its labels (design.md section 8).
    #[test]
    fn node_shape_from_labels() {
        let shape = |labels: serde_json::Value| {
            let n: KNode = serde_json::from_value(serde_json::json!({
                "metadata": {"name": "n", "labels": labels}, "status": {}
            }))
            .unwrap();
            let s = n.to_state(&HashSet::new(), &HashSet::new());
            (s.compute_type, s.os)
        };
        assert_eq!(
            shape(serde_json::json!({})),
            (ComputeType::Ec2, NodeOs::Linux)
        );
        assert_eq!(
            shape(
                serde_json::json!({"eks.amazonaws.com/compute-type": "auto", "kubernetes.io/os": "linux"})
            ),
            (ComputeType::Auto, NodeOs::Linux)
        );
        assert_eq!(
            shape(serde_json::json!({"eks.amazonaws.com/compute-type": "fargate"})).0,
            ComputeType::Fargate
        );
        assert_eq!(
            shape(serde_json::json!({"eks.amazonaws.com/compute-type": "hybrid"})).0,
            ComputeType::Hybrid
        );
        assert_eq!(
            shape(serde_json::json!({"kubernetes.io/os": "windows"})).1,
            NodeOs::Windows
        );
        assert_eq!(
            shape(serde_json::json!({"eks.amazonaws.com/compute-type": "x\u{1b}[31m"})).0,
            ComputeType::Other
        );
    }

    /// The wire forms of `valueFrom` and `envFrom` become the spec the
    /// model resolves; a Secret's name is not kept.
    #[test]
    fn env_references_are_kept_as_references() {
        use crate::model::env::EnvValue;
        let c: KContainer = serde_json::from_value(serde_json::json!({
            "name": "aws-node",
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a", "optional": true}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s3cr3t-name", "key": "b"}}},
                {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "D"},
                {"name": "E", "value": "5", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}}
            ],
            "envFrom": [
                {"configMapRef": {"name": "all"}, "prefix": "P_"},
                {"secretRef": {"name": "s3cr3t-name", "optional": true}}
            ]
        }))
        .unwrap();
        let e = c.container_env("kube-system");
        assert_eq!(
            e.env.iter().map(|v| v.value.clone()).collect::<Vec<_>>(),
            vec![
                EnvValue::ConfigMapKey {
                    name: "cm".into(),
                    key: "a".into(),
                    optional: true
                },
                EnvValue::Unread("secretKeyRef"),
                EnvValue::Unread("fieldRef"),
                EnvValue::Literal(String::new()),
                EnvValue::Literal("5".into()),
            ]
        );
        assert_eq!(
            e.env_from,
            vec![
                EnvFrom {
                    config_map: Some("all".into()),
                    prefix: "P_".into(),
                    optional: false
                },
                EnvFrom {
                    config_map: None,
                    prefix: String::new(),
                    optional: true
                },
            ]
        );
        assert!(!format!("{c:?}").contains("s3cr3t-name"), "{c:?}");
    }

    #[test]
    fn uuid_keys() {
        assert_eq!(
            parse_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
            Some(0x0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0)
        );
        assert_eq!(
            parse_uuid("0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"),
            Some(0x0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0)
        );
        for bad in [
            "",
            "not-a-uid",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f",
            "0f1e2d3c44b5a-6978-8796-a5b4c3d2e1f0",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1é",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
        let pod = |uid: Option<&str>, name: &str| -> KPodSlim {
            let mut v = serde_json::json!({"metadata": {"namespace": "ns", "name": name}});
            if let Some(u) = uid {
                v["metadata"]["uid"] = u.into();
            }
            serde_json::from_value(v).unwrap()
        };
        let a = pod(Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), "a");
        assert_eq!(a.key(), 0x0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0);
        // Without a UUID: stable per pod, distinct between pods.
        assert_eq!(pod(None, "a").key(), pod(None, "a").key());
        assert_ne!(pod(None, "a").key(), pod(None, "b").key());
        assert_ne!(pod(Some("x"), "a").key(), pod(Some("y"), "a").key());
    }

    #[test]
    fn interner_shares_and_forgets() {
        let mut i: Interner = Interner::default();
        let a = i.get("kube-system");
        let b = i.get("kube-system");
        assert!(Arc::ptr_eq(&a, &b));
        let c = i.get("default");
        assert_eq!(i.len(), 2);
        drop(c);
        i.sweep();
        assert_eq!(i.len(), 1, "unused strings are dropped");
        assert_eq!(&*i.get("kube-system"), "kube-system");
    }

    #[test]
    fn nodeclaim_keeps_three_fields_and_tolerates_odd_types() {
        let nc: KNodeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "default-x7k2p"},
            "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                     "requirements": [{"key": "a", "operator": "In", "values": ["b"]}]},
            "status": {"nodeName": "ip-10-0-1-2.ec2.internal", "capacity": {"cpu": "4", "pods": "58"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        })).unwrap();
        let st = nc.to_state();
        assert_eq!(st.name, "default-x7k2p");
        assert_eq!(st.nodeclass.as_deref(), Some("default"));
        assert_eq!(st.node_name.as_deref(), Some("ip-10-0-1-2.ec2.internal"));
        assert_eq!(st.capacity_pods, Some(58));
        // Odd types make a field unknown, not the object unreadable.
        let odd: KNodeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "odd"},
            "spec": {"nodeClassRef": "default"},
            "status": {"nodeName": 7, "capacity": {"pods": 58}}
        }))
        .unwrap();
        let st = odd.to_state();
        assert_eq!(
            (st.nodeclass, st.node_name, st.capacity_pods),
            (None, None, None)
        );
        let null: KNodeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"}, "spec": null, "status": null
        }))
        .unwrap();
        assert_eq!(null.to_state().capacity_pods, None);
    }

    #[test]
    fn compact_map_answers_like_the_btreemap_it_came_from() {
        let cases: Vec<BTreeMap<String, String>> = vec![
            BTreeMap::new(),
            [("", "")]
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            [
                ("a", "1"),
                ("ab", ""),
                ("a/b", "ü→"),
                ("topology.kubernetes.io/zone", "us-west-2a"),
                ("k8s.amazonaws.com/eniConfig", "us-west-2a-pods"),
                ("z", "last"),
            ]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
            (0..40)
                .map(|i| (format!("key-{i:02}"), "v".repeat(i)))
                .collect(),
        ];
        for m in cases {
            let c = CompactMap::from(m.clone());
            assert_eq!(c.len(), m.len());
            assert_eq!(c.is_empty(), m.is_empty());
            let back: Vec<(String, String)> = c.iter().map(|(k, v)| (k.into(), v.into())).collect();
            let want: Vec<(String, String)> = m.clone().into_iter().collect();
            assert_eq!(back, want);
            for (k, v) in &m {
                assert_eq!(c.get(k), Some(v.as_str()), "key {k:?}");
            }
            for miss in ["", "a/", "aa", "b", "key-40", "zz", "key-0"] {
                assert_eq!(
                    c.get(miss),
                    m.get(miss).map(String::as_str),
                    "miss {miss:?}"
                );
            }
        }
    }

    #[test]
    fn node_keeps_what_to_state_reads() {
        let n: KNode = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ip-10-0-1-2.us-west-2.compute.internal", "uid": "u1", "resourceVersion": "7",
                         "labels": {"node.kubernetes.io/instance-type": "m5.large", "topology.kubernetes.io/zone": "us-west-2a",
                                    "karpenter.sh/nodepool": "default", "team": "x"},
                         "annotations": {"k8s.amazonaws.com/eniConfig": "pods-a", "other": "y"},
                         "managedFields": [{"manager": "kubelet"}]},
            "spec": {"providerID": "aws:///us-west-2a/i-0b2c3d4e5f6a78901",
                     "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "2", "pods": "29"},
                       "addresses": [{"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "10.0.1.2"}],
                       "images": [{"names": ["a"], "sizeBytes": 1}]}
        }))
        .unwrap();
        assert_eq!(n.metadata.resource_version.as_deref(), Some("7"));
        assert!(n.metadata.labels.is_none() && n.metadata.annotations.is_none());
        let keys = HashSet::from(["team".to_string()]);
        let st = n.to_state(&keys, &HashSet::new());
        assert_eq!(st.name, "ip-10-0-1-2.us-west-2.compute.internal");
        assert_eq!(st.instance_type.as_deref(), Some("m5.large"));
        assert_eq!(st.zone.as_deref(), Some("us-west-2a"));
        assert_eq!(st.instance_id.as_deref(), Some("i-0b2c3d4e5f6a78901"));
        assert_eq!(st.nodepool.as_deref(), Some("default"));
        assert_eq!(st.capacity_pods, Some(29));
        assert!(st.unschedulable);
        assert_eq!(st.internal_ip.as_deref(), Some("10.0.1.2"));
        assert_eq!(st.labels.get("team").map(String::as_str), Some("x"));
        assert_eq!(st.labels.len(), 1);
        assert_eq!(
            st.annotations
                .get("k8s.amazonaws.com/eniConfig")
                .map(String::as_str),
            Some("pods-a")
        );
        assert_eq!(st.annotations.len(), 1);
        // A quantity of another type is an error (bundles name the file).
        let odd =
            serde_json::json!({"metadata": {"name": "odd"}, "status": {"capacity": {"pods": 29}}});
        assert!(serde_json::from_value::<KNode>(odd).is_err());
        let bare: KNode =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "bare"}})).unwrap();
        let st = bare.to_state(&HashSet::new(), &HashSet::new());
        assert_eq!(
            (st.capacity_pods, st.unschedulable, st.zone),
            (None, false, None)
        );
        // No metadata is not a node.
        assert!(serde_json::from_value::<KNode>(serde_json::json!({"spec": {}})).is_err());
    }

    #[test]
    fn provider_id_parsing() {
        assert_eq!(
            parse_provider_id("aws:///us-west-2a/i-0b2c3d4e5f6a78901"),
            (
                Some("us-west-2a".into()),
                Some("i-0b2c3d4e5f6a78901".into())
            )
        );
        assert_eq!(parse_provider_id("gce://p/z/n").1, None);
        assert_eq!(parse_provider_id("aws:///fargate-ip-1"), (None, None));
        assert_eq!(parse_provider_id(""), (None, None));
    }

    #[test]
    fn sandbox_failures_need_the_ip_message() {
        let ev = |reason: &str, msg: &str| -> KEvent {
            serde_json::from_value(serde_json::json!({
                "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1"},
                "reason": reason, "message": msg, "source": {"host": "node-a"},
                "lastTimestamp": "2026-08-25T12:25:00Z", "count": 3
            }))
            .unwrap()
        };
        let f = ev(
            "FailedCreatePodSandBox",
            "Failed to create pod sandbox: ... plugin type=\"aws-cni\" name=\"aws-cni\" failed (add): add cmd: failed to assign an IP address to container",
        )
        .sandbox_ip_failure()
        .unwrap();
        assert_eq!(
            (f.pod.as_str(), f.node.as_deref(), f.count),
            ("web-1", Some("node-a"), 3)
        );
        assert!(ev(
            "FailedCreatePodSandBox",
            "add cmd: Error received from AddNetwork gRPC call: connection refused"
        )
        .sandbox_ip_failure()
        .is_none());
        assert!(ev("FailedScheduling", IP_ASSIGN_FAILURE)
            .sandbox_ip_failure()
            .is_none());
    }

    #[test]
    fn node_class_max_pods_int_or_expression() {
        let nc = |kubelet: serde_json::Value| -> Result<NodeClassState, String> {
            serde_json::from_value::<KNodeClass>(serde_json::json!({
                "metadata": {"name": "default"},
                "spec": {"kubelet": kubelet, "amiSelectorTerms": [{"alias": "bottlerocket@latest"}]}
            }))
            .unwrap()
            .to_state()
        };
        assert_eq!(
            nc(serde_json::json!({"maxPods": 42})).unwrap().max_pods,
            Some(MaxPodsSetting::Fixed(42))
        );
        assert_eq!(
            nc(serde_json::json!({"maxPods": "vcpus * 8"}))
                .unwrap()
                .max_pods,
            Some(MaxPodsSetting::Expression("vcpus * 8".into()))
        );
        assert_eq!(
            nc(serde_json::json!({})).unwrap().ami_family,
            AmiFamily::Bottlerocket
        );
        assert!(nc(serde_json::json!({"maxPods": -1})).is_err());
        assert!(nc(serde_json::json!({"maxPods": [1]})).is_err());
    }
}

/// Label and annotation keys that can select a node's ENIConfig under the
/// DaemonSet's and each aws-node pod's settings.
pub(crate) fn eni_config_keys(
    ds: Option<&AwsNodeState>,
    pod_env: &BTreeMap<String, Arc<ContainerEnv>>,
    cms: &ConfigMaps,
) -> (HashSet<String>, HashSet<String>) {
    use crate::model::cni::CniSettings;
    let ds = ds
        .map(|a| CniSettings::from_container(&a.daemonset_env, cms))
        .unwrap_or_default();
    let mut labels = HashSet::from([ds.eni_config_label().to_string()]);
    let mut annotations = HashSet::from([ds.eni_config_annotation().to_string()]);
    for env in pod_env.values() {
        let s = CniSettings::from_container(env, cms);
        labels.insert(s.eni_config_label().to_string());
        annotations.insert(s.eni_config_annotation().to_string());
    }
    (labels, annotations)
}

// ---------- kube::Resource for the slim types ----------

/// The aws-node DaemonSet, watched by name.
#[derive(Deserialize, Clone, Debug)]
#[serde(transparent)]
pub(crate) struct KDaemonSet(pub KWorkload);

/// Deployments, watched by the Karpenter label.
#[derive(Deserialize, Clone, Debug)]
#[serde(transparent)]
pub(crate) struct KDeployment(pub KWorkload);

slim_resource!(KNode, "Node", "", "v1", "nodes", ClusterResourceScope);
slim_resource!(KPod, "Pod", "", "v1", "pods", NamespaceResourceScope);
slim_resource!(KPodSlim, "Pod", "", "v1", "pods", NamespaceResourceScope);
slim_resource!(KEvent, "Event", "", "v1", "events", NamespaceResourceScope);
slim_resource!(
    KConfigMap,
    "ConfigMap",
    "",
    "v1",
    "configmaps",
    NamespaceResourceScope
);
slim_resource!(
    KDaemonSet,
    "DaemonSet",
    "apps",
    "v1",
    "daemonsets",
    NamespaceResourceScope,
    0.metadata
);
slim_resource!(
    KDeployment,
    "Deployment",
    "apps",
    "v1",
    "deployments",
    NamespaceResourceScope,
    0.metadata
);
slim_resource!(
    KNodeClaim,
    "NodeClaim",
    "karpenter.sh",
    "v1",
    "nodeclaims",
    ClusterResourceScope
);
slim_resource!(
    KNodePool,
    "NodePool",
    "karpenter.sh",
    "v1",
    "nodepools",
    ClusterResourceScope
);
slim_resource!(
    KNodeClass,
    "EC2NodeClass",
    "karpenter.k8s.aws",
    "v1",
    "ec2nodeclasses",
    ClusterResourceScope
);
slim_resource!(
    KEniConfig,
    "ENIConfig",
    "crd.k8s.amazonaws.com",
    "v1alpha1",
    "eniconfigs",
    ClusterResourceScope
);
