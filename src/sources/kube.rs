//! Kubernetes objects (as `kubectl get X -o json` prints them, and as the API
//! returns them) -> slim state. Only the fields the view needs are read; the
//! rest is skipped during deserialisation.

use crate::model::capacity::{AmiFamily, MaxPodsSetting};
use crate::model::cni::EnvVar;
use crate::model::state::*;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A `kind: List` (or any `*List`) as kubectl prints it.
#[derive(Deserialize)]
pub struct List<T> {
    pub items: Vec<T>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub owner_references: Vec<OwnerRef>,
}

#[derive(Deserialize, Default)]
pub struct OwnerRef {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KEnv {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub value_from: Option<IgnoredAny>,
}

impl KEnv {
    fn to_env(&self) -> EnvVar {
        EnvVar {
            name: self.name.clone(),
            // A plain entry without `value` is the empty string in Kubernetes.
            value: match self.value_from {
                Some(_) => None,
                None => Some(self.value.clone().unwrap_or_default()),
            },
        }
    }
}

#[derive(Deserialize)]
pub struct KContainer {
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub env: Vec<KEnv>,
}

// ---------- Node ----------

#[derive(Deserialize)]
pub struct KNode {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: KNodeSpec,
    #[serde(default)]
    pub status: KNodeStatus,
}

#[derive(Deserialize, Default)]
pub struct KNodeSpec {
    #[serde(default, rename = "providerID")]
    pub provider_id: Option<String>,
    #[serde(default)]
    pub unschedulable: Option<bool>,
    #[serde(default)]
    pub taints: Vec<KTaint>,
}

#[derive(Deserialize)]
pub struct KTaint {
    #[serde(default)]
    pub key: String,
}

#[derive(Deserialize, Default)]
pub struct KNodeStatus {
    #[serde(default)]
    pub capacity: BTreeMap<String, String>,
    #[serde(default)]
    pub addresses: Vec<KAddress>,
}

#[derive(Deserialize)]
pub struct KAddress {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}

/// A Kubernetes quantity that should be a plain count ("17"). Anything else
/// is unknown rather than guessed.
pub fn parse_count(q: &str) -> Option<u32> {
    q.trim().parse::<u32>().ok()
}

/// `aws:///us-west-2a/i-0b2c3d4e5f6a78901` -> (zone, instance id).
pub fn parse_provider_id(p: &str) -> (Option<String>, Option<String>) {
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
    /// `eni_config_label` / `eni_config_annotation` are the names aws-node
    /// uses to pick the ENIConfig: only those labels/annotations are kept
    /// (plus the fixed keys ipamd reads).
    pub fn into_state(self, eni_config_label: &str, eni_config_annotation: &str) -> NodeState {
        let l = &self.metadata.labels;
        let (pid_zone, instance_id) = self
            .spec
            .provider_id
            .as_deref()
            .map(parse_provider_id)
            .unwrap_or((None, None));
        let zone = l
            .get("topology.kubernetes.io/zone")
            .or_else(|| l.get("failure-domain.beta.kubernetes.io/zone"))
            .cloned()
            .or(pid_zone);
        let instance_type = l
            .get("node.kubernetes.io/instance-type")
            .or_else(|| l.get("beta.kubernetes.io/instance-type"))
            .cloned();
        let keep_label = |k: &str| {
            k == eni_config_label
                || k == "k8s.amazonaws.com/eniConfig"
                || ENI_CONFIG_KEYS.contains(&k)
        };
        let labels = l
            .iter()
            .filter(|(k, _)| keep_label(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let annotations = self
            .metadata
            .annotations
            .iter()
            .filter(|(k, _)| *k == eni_config_annotation || *k == "k8s.amazonaws.com/eniConfig")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let unschedulable = self.spec.unschedulable.unwrap_or(false)
            || self
                .spec
                .taints
                .iter()
                .any(|t| t.key == "node.kubernetes.io/unschedulable");
        NodeState {
            instance_type,
            zone,
            instance_id,
            nodepool: l.get("karpenter.sh/nodepool").cloned(),
            nodeclass: l.get("karpenter.k8s.aws/ec2nodeclass").cloned(),
            capacity_pods: self
                .status
                .capacity
                .get("pods")
                .and_then(|q| parse_count(q)),
            unschedulable,
            internal_ip: self
                .status
                .addresses
                .iter()
                .find(|a| a.kind == "InternalIP")
                .map(|a| a.address.clone()),
            labels,
            annotations,
            name: self.metadata.name,
        }
    }
}

// ---------- Pod ----------

#[derive(Deserialize)]
pub struct KPod {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: KPodSpec,
    #[serde(default)]
    pub status: KPodStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct KPodSpec {
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub host_network: Option<bool>,
    #[serde(default)]
    pub containers: Vec<KContainer>,
}

#[derive(Deserialize, Default)]
pub struct KPodStatus {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default, rename = "podIP")]
    pub pod_ip: Option<String>,
}

impl KPod {
    /// An aws-node pod: owned by the `aws-node` DaemonSet, or labelled like one.
    pub fn is_aws_node(&self) -> bool {
        self.metadata
            .owner_references
            .iter()
            .any(|o| o.kind == "DaemonSet" && o.name == "aws-node")
            || self.metadata.labels.get("k8s-app").map(String::as_str) == Some("aws-node")
    }

    /// The env of the `aws-node` container, if this is an aws-node pod.
    pub fn aws_node_env(&self) -> Option<Vec<EnvVar>> {
        if !self.is_aws_node() {
            return None;
        }
        aws_node_container(&self.spec.containers).map(|c| c.env.iter().map(KEnv::to_env).collect())
    }

    pub fn to_state(&self) -> PodState {
        PodState {
            namespace: self.metadata.namespace.clone().unwrap_or_default(),
            name: self.metadata.name.clone(),
            uid: self.metadata.uid.clone(),
            node_name: self.spec.node_name.clone().filter(|n| !n.is_empty()),
            host_network: self.spec.host_network.unwrap_or(false),
            phase: PodPhase::parse(self.status.phase.as_deref().unwrap_or("")),
            has_ip: self
                .status
                .pod_ip
                .as_deref()
                .is_some_and(|ip| !ip.is_empty()),
        }
    }
}

fn aws_node_container(containers: &[KContainer]) -> Option<&KContainer> {
    containers.iter().find(|c| c.name == "aws-node")
}

// ---------- DaemonSet / Deployment ----------

#[derive(Deserialize)]
pub struct KWorkload {
    pub metadata: Meta,
    pub spec: KWorkloadSpec,
}

#[derive(Deserialize)]
pub struct KWorkloadSpec {
    pub template: KTemplate,
}

#[derive(Deserialize)]
pub struct KTemplate {
    #[serde(default)]
    pub metadata: Option<KTemplateMeta>,
    pub spec: KTemplateSpec,
}

#[derive(Deserialize, Default)]
pub struct KTemplateMeta {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
pub struct KTemplateSpec {
    #[serde(default)]
    pub containers: Vec<KContainer>,
}

/// The aws-node DaemonSet's `aws-node` container env, if the list has it
/// (kube-system first, as EKS installs it).
pub fn aws_node_daemonset_env(daemonsets: &[KWorkload]) -> Option<(String, Vec<EnvVar>)> {
    let mut candidates: Vec<&KWorkload> = daemonsets
        .iter()
        .filter(|d| d.metadata.name == "aws-node")
        .collect();
    candidates.sort_by_key(|d| d.metadata.namespace.as_deref() != Some("kube-system"));
    let ds = candidates.first()?;
    let c = aws_node_container(&ds.spec.template.spec.containers)?;
    Some((
        ds.metadata.namespace.clone().unwrap_or_default(),
        c.env.iter().map(KEnv::to_env).collect(),
    ))
}

/// The Karpenter controller Deployment, found by label in any namespace.
pub fn karpenter_controller(deployments: &[KWorkload]) -> Option<KarpenterState> {
    let is_karpenter = |d: &&KWorkload| {
        let tmpl_labels = d.spec.template.metadata.as_ref().map(|m| &m.labels);
        d.metadata
            .labels
            .get("app.kubernetes.io/name")
            .map(String::as_str)
            == Some("karpenter")
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
    let env = c.env.iter().rev().find(|e| e.name == "RESERVED_ENIS");
    let (reserved_enis, raw) = match env {
        // Karpenter's default when the variable is absent.
        None => (Some(0), None),
        Some(e) if e.value_from.is_some() => (None, Some("(valueFrom)".to_string())),
        Some(e) => {
            let raw = e.value.clone().unwrap_or_default();
            (raw.trim().parse::<u32>().ok(), Some(raw))
        }
    };
    Some(KarpenterState {
        namespace: d.metadata.namespace.clone().unwrap_or_default(),
        name: d.metadata.name.clone(),
        reserved_enis,
        reserved_enis_raw: raw,
    })
}

// ---------- Events ----------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KEvent {
    #[serde(default)]
    pub involved_object: KObjectRef,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub source: Option<KEventSource>,
    #[serde(default)]
    pub reporting_instance: Option<String>,
    #[serde(default, deserialize_with = "super::time::de_opt")]
    pub last_timestamp: Option<jiff::Timestamp>,
    #[serde(default, deserialize_with = "super::time::de_opt")]
    pub event_time: Option<jiff::Timestamp>,
    #[serde(default)]
    pub count: Option<u32>,
}

#[derive(Deserialize, Default)]
pub struct KObjectRef {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct KEventSource {
    #[serde(default)]
    pub host: Option<String>,
}

/// The CNI plugin's message when ipamd had no IP for the pod.
pub const IP_ASSIGN_FAILURE: &str = "failed to assign an IP address to container";

impl KEvent {
    /// A `FailedCreatePodSandBox` caused by IP exhaustion, or `None`.
    pub fn sandbox_ip_failure(&self) -> Option<SandboxFailure> {
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

#[derive(Deserialize)]
pub struct KNodeClaim {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: Value,
    #[serde(default)]
    pub status: Value,
}

impl KNodeClaim {
    pub fn to_state(&self) -> NodeClaimState {
        NodeClaimState {
            name: self.metadata.name.clone(),
            node_name: self
                .status
                .get("nodeName")
                .and_then(Value::as_str)
                .map(str::to_string),
            nodeclass: self
                .spec
                .pointer("/nodeClassRef/name")
                .and_then(Value::as_str)
                .map(str::to_string),
            capacity_pods: self
                .status
                .pointer("/capacity/pods")
                .and_then(Value::as_str)
                .and_then(parse_count),
        }
    }
}

#[derive(Deserialize)]
pub struct KNodeClass {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: Value,
    #[serde(default)]
    pub status: Value,
}

impl KNodeClass {
    pub fn to_state(&self) -> Result<NodeClassState, String> {
        let max_pods = match self.spec.pointer("/kubelet/maxPods") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(MaxPodsSetting::Fixed(
                n.as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| {
                        format!(
                            "EC2NodeClass {}: spec.kubelet.maxPods {n} is not a count",
                            self.metadata.name
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
                    self.metadata.name
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
            name: self.metadata.name.clone(),
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

#[derive(Deserialize)]
pub struct KEniConfig {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: Value,
}

impl KEniConfig {
    pub fn to_state(&self) -> EniConfigState {
        EniConfigState {
            name: self.metadata.name.clone(),
            subnet: self
                .spec
                .get("subnet")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

/// NodePools carry nothing the view uses yet; read to validate the file.
#[derive(Deserialize)]
pub struct KNodePool {
    pub metadata: Meta,
}

#[cfg(test)]
mod tests {
    use super::*;

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
