//! Nodes: slim cache type and conversion to NodeState.

use super::*;
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
    /// `status.allocatable` of the VPC extended resources, as written.
    pub(crate) vpc_allocatable: KVpcQuantities,
    /// The node monitoring agent's `NetworkingReady` condition.
    pub(crate) networking_ready: Option<KCondition>,
}

#[derive(Deserialize)]
pub(super) struct KNodeWire {
    metadata: SlimMeta,
    #[serde(default)]
    spec: KNodeSpecWire,
    #[serde(default)]
    status: KNodeStatusWire,
}

#[derive(Deserialize, Default)]
pub(super) struct KNodeSpecWire {
    #[serde(default, rename = "providerID")]
    provider_id: Option<String>,
    #[serde(default)]
    unschedulable: Option<bool>,
    #[serde(default)]
    taints: Vec<KTaint>,
}

#[derive(Deserialize)]
pub(super) struct KTaint {
    #[serde(default)]
    key: String,
}

#[derive(Deserialize, Default)]
pub(super) struct KNodeStatusWire {
    #[serde(default)]
    capacity: KNodeCapacityWire,
    #[serde(default)]
    allocatable: KVpcQuantities,
    #[serde(default)]
    addresses: Vec<KAddress>,
    #[serde(default)]
    conditions: Vec<KCondition>,
}

#[derive(Deserialize, Default)]
pub(super) struct KNodeCapacityWire {
    #[serde(default)]
    pods: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct KAddress {
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
            vpc_allocatable: w.status.allocatable,
            networking_ready: w
                .status
                .conditions
                .into_iter()
                .find(|c| c.kind == NETWORKING_READY),
        }
    }
}

/// The node as the API would return it, with only the fields kept (the
/// inverse of the `KNodeWire` conversion; `capture` writes it).
impl Serialize for KNode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let map = |m: &CompactMap| -> serde_json::Map<String, Value> {
            m.iter()
                .map(|(k, v)| (k.to_string(), Value::from(v)))
                .collect()
        };
        let mut meta = serde_json::to_value(&self.metadata).map_err(serde::ser::Error::custom)?;
        if let Value::Object(m) = &mut meta {
            m.insert("labels".into(), Value::Object(map(&self.labels)));
            m.insert("annotations".into(), Value::Object(map(&self.annotations)));
        }
        let mut spec = serde_json::Map::new();
        if let Some(p) = &self.provider_id {
            spec.insert("providerID".into(), Value::from(&**p));
        }
        if self.unschedulable {
            spec.insert("unschedulable".into(), Value::from(true));
        }
        let mut status = serde_json::Map::new();
        if let Some(p) = &self.capacity_pods {
            status.insert("capacity".into(), serde_json::json!({ "pods": &**p }));
        }
        if !self.vpc_allocatable.is_empty() {
            status.insert(
                "allocatable".into(),
                serde_json::to_value(&self.vpc_allocatable).map_err(serde::ser::Error::custom)?,
            );
        }
        if let Some(c) = &self.networking_ready {
            status.insert(
                "conditions".into(),
                Value::Array(vec![
                    serde_json::to_value(c).map_err(serde::ser::Error::custom)?
                ]),
            );
        }
        if let Some(ip) = &self.internal_ip {
            status.insert(
                "addresses".into(),
                serde_json::json!([{ "type": "InternalIP", "address": &**ip }]),
            );
        }
        serde_json::json!({ "metadata": meta, "spec": spec, "status": status }).serialize(s)
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

pub(super) const ENI_CONFIG_KEYS: &[&str] = &[
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
            networking_ready: self.networking_ready.as_ref().map(|c| NodeCondition {
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            }),
            vpc_allocatable: PerResource::from_fn(|r| {
                self.vpc_allocatable.count(r).and_then(Result::ok)
            }),
            labels,
            annotations,
            name: name_of(&self.metadata),
        }
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
