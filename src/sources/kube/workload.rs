//! ConfigMaps, the aws-node DaemonSet and the Karpenter Deployment.

use super::*;
// ---------- ConfigMap ----------

/// A ConfigMap named by a setting: `data` only (`binaryData` is not what
/// the kubelet reads for env).
#[derive(Deserialize, Serialize, Clone, Debug)]
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

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct KWorkload {
    #[serde(deserialize_with = "meta_labels")]
    pub(crate) metadata: ObjectMeta,
    pub(crate) spec: KWorkloadSpec,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KWorkloadSpec {
    pub(crate) template: KTemplate,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KTemplate {
    #[serde(default)]
    pub(crate) metadata: Option<KTemplateMeta>,
    pub(crate) spec: KTemplateSpec,
}

#[derive(Deserialize, Serialize, Default, Clone, Debug)]
pub(crate) struct KTemplateMeta {
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
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
