//! Events: FailedCreatePodSandBox IP-assignment failures, the node
//! monitoring agent's NetworkingReady events on nodes, and the VPC resource
//! controller's trunk and branch ENI failures.

use super::*;
// ---------- Events ----------

#[derive(Deserialize, Serialize, Clone, Debug)]
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
    #[serde(
        default,
        deserialize_with = "crate::sources::time::de_opt",
        serialize_with = "crate::sources::time::ser_opt"
    )]
    pub(crate) last_timestamp: Option<jiff::Timestamp>,
    #[serde(
        default,
        deserialize_with = "crate::sources::time::de_opt",
        serialize_with = "crate::sources::time::ser_opt"
    )]
    pub(crate) event_time: Option<jiff::Timestamp>,
    #[serde(default)]
    pub(crate) count: Option<u32>,
    /// `Normal` or `Warning`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) event_type: Option<String>,
}

#[derive(Deserialize, Serialize, Default, Clone, Debug)]
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

#[derive(Deserialize, Serialize, Default, Clone, Debug)]
pub(crate) struct KEventSource {
    #[serde(default)]
    pub(crate) host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) component: Option<String>,
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

/// The reason the node monitoring agent gives its networking events (the
/// condition type `NetworkingReady`, eks-node-monitoring-agent
/// `pkg/manager/node_exporter.go`).
pub(crate) const NETWORKING_READY: &str = "NetworkingReady";

impl KEvent {
    /// A `NetworkingReady` event on a Node, or `None`.
    pub(crate) fn networking_event(&self) -> Option<NetworkingEvent> {
        if self.reason.as_deref() != Some(NETWORKING_READY) {
            return None;
        }
        let o = &self.involved_object;
        if o.kind.as_deref() != Some("Node") {
            return None;
        }
        let message = self.message.clone().unwrap_or_default();
        let issue = message
            .split_once(':')
            .map(|(i, _)| i.trim().to_string())
            .filter(|i| !i.is_empty() && !i.contains(' '))?;
        Some(NetworkingEvent {
            node: o.name.clone().filter(|n| !n.is_empty())?,
            issue,
            message,
            last_seen: self.last_timestamp.or(self.event_time),
            count: self.count.unwrap_or(1),
        })
    }
}

/// The VPC resource controller's event source (`config.ControllerName`,
/// amazon-vpc-resource-controller-k8s `pkg/config/type.go` at b8d425119bdb).
pub(crate) const RESOURCE_CONTROLLER: &str = "vpc-resource-controller";

impl KEvent {
    /// A trunk or branch ENI failure of the VPC resource controller, or `None`.
    pub(crate) fn resource_controller_event(&self) -> Option<ResourceControllerEvent> {
        let from_controller =
            self.source.as_ref().and_then(|s| s.component.as_deref()) == Some(RESOURCE_CONTROLLER);
        if !from_controller || self.event_type.as_deref().is_some_and(|t| t != "Warning") {
            return None;
        }
        let o = &self.involved_object;
        let reason = match (self.reason.as_deref(), o.kind.as_deref()) {
            (Some("TrunkENICreationFailed"), Some("Node")) => RcEventReason::TrunkEniCreationFailed,
            (Some("BranchAllocationFailed"), Some("Pod")) => RcEventReason::BranchAllocationFailed,
            _ => return None,
        };
        Some(ResourceControllerEvent {
            reason,
            namespace: o.namespace.clone().unwrap_or_default(),
            object: o.name.clone().filter(|n| !n.is_empty())?,
            message: self.message.clone().unwrap_or_default(),
            last_seen: self.last_timestamp.or(self.event_time),
            count: self.count.unwrap_or(1),
        })
    }
}
