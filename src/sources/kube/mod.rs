//! Kubernetes objects (as `kubectl get X -o json` prints them, and as the API
//! returns them) -> slim state. Only the fields the view needs are read; the
//! rest is skipped during deserialisation.
//!
//! One file per job: the shared slim metadata and the `kube::Resource`
//! impls here; `node`, `pod` (all pods, aws-node and agent pods), `env`
//! (container env and ports), `workload` (aws-node DaemonSet, Karpenter
//! Deployment, ConfigMaps), `event`, `crd` (NodeClaims, EC2NodeClasses, Auto Mode NodeClasses,
//! ENIConfigs).

use crate::model::capacity::{AmiFamily, MaxPodsSetting};
use crate::model::env::{ConfigMaps, ContainerEnv, EnvFrom, EnvVar};
use crate::model::state::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

mod crd;
mod env;
mod event;
mod node;
mod pod;
mod resources;
#[cfg(test)]
mod tests;
mod workload;

pub(crate) use crd::*;
pub(crate) use env::*;
pub(crate) use event::*;
pub use node::*;
pub use pod::*;
pub(crate) use resources::*;
pub use workload::*;

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

// ---------- kube::Resource for the slim types ----------

/// The aws-node DaemonSet, watched by name.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(transparent)]
pub(crate) struct KDaemonSet(pub KWorkload);

/// Deployments, watched by the Karpenter label.
#[derive(Deserialize, Serialize, Clone, Debug)]
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
    KAutoNodeClass,
    "NodeClass",
    "eks.amazonaws.com",
    "v1",
    "nodeclasses",
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
