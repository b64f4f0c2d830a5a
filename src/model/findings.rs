//! Diagnosis rules: the view's numbers -> findings with stable codes, a
//! one-line summary, the evidence used and the exact remediation.

use super::analysis::{Analysis, NodeAnalysis, SubnetAnalysis, ZoneAnalysis};
use super::cni::CniSettings;
use super::growth::GrowthOutcome;
use super::state::{ComputeType, VpcResource};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Thresholds the operator can tune (flags on `cluster` and `diagnose`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// No growth call for this long, with pods waiting and no free IP, is a stall.
    pub(crate) silence_window_seconds: u64,
    /// A subnet with fewer free IPs than this share of its size is "low".
    pub(crate) subnet_low_ratio: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            // CloudTrail delivers in ~5 min, sometimes 15: stay well above.
            silence_window_seconds: 20 * 60,
            subnet_low_ratio: 0.10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Stable finding codes (a contract: dashboards, alerts and users match on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub(crate) enum FindingCode {
    MinimumIpTargetWithoutWarmIpTarget,
    PodCapacityExceedsIpCapacity,
    KarpenterReservedEnisMissing,
    IpamdAllocationStalled,
    EniLimitReached,
    SubnetIpsLow,
    SubnetIpsExhausted,
    SubnetNoFreePrefix,
    ZonePodIpsLow,
    ZonePodIpsExhausted,
    EniConfigMissing,
    IpProvisioningDisabled,
    SettingUnresolved,
    BranchEniExhausted,
    WindowsPodIpsExhausted,
    AutoModeIpamUnhealthy,
}

/// Every finding code, in declaration order.
#[cfg(test)]
pub(crate) const ALL_CODES: &[FindingCode] = &[
    FindingCode::MinimumIpTargetWithoutWarmIpTarget,
    FindingCode::PodCapacityExceedsIpCapacity,
    FindingCode::KarpenterReservedEnisMissing,
    FindingCode::IpamdAllocationStalled,
    FindingCode::EniLimitReached,
    FindingCode::SubnetIpsLow,
    FindingCode::SubnetIpsExhausted,
    FindingCode::SubnetNoFreePrefix,
    FindingCode::ZonePodIpsLow,
    FindingCode::ZonePodIpsExhausted,
    FindingCode::EniConfigMissing,
    FindingCode::IpProvisioningDisabled,
    FindingCode::SettingUnresolved,
    FindingCode::BranchEniExhausted,
    FindingCode::WindowsPodIpsExhausted,
    FindingCode::AutoModeIpamUnhealthy,
];

impl FindingCode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FindingCode::MinimumIpTargetWithoutWarmIpTarget => "MinimumIpTargetWithoutWarmIpTarget",
            FindingCode::PodCapacityExceedsIpCapacity => "PodCapacityExceedsIpCapacity",
            FindingCode::KarpenterReservedEnisMissing => "KarpenterReservedEnisMissing",
            FindingCode::IpamdAllocationStalled => "IpamdAllocationStalled",
            FindingCode::EniLimitReached => "EniLimitReached",
            FindingCode::SubnetIpsLow => "SubnetIpsLow",
            FindingCode::SubnetIpsExhausted => "SubnetIpsExhausted",
            FindingCode::SubnetNoFreePrefix => "SubnetNoFreePrefix",
            FindingCode::ZonePodIpsLow => "ZonePodIpsLow",
            FindingCode::ZonePodIpsExhausted => "ZonePodIpsExhausted",
            FindingCode::EniConfigMissing => "EniConfigMissing",
            FindingCode::IpProvisioningDisabled => "IpProvisioningDisabled",
            FindingCode::SettingUnresolved => "SettingUnresolved",
            FindingCode::BranchEniExhausted => "BranchEniExhausted",
            FindingCode::WindowsPodIpsExhausted => "WindowsPodIpsExhausted",
            FindingCode::AutoModeIpamUnhealthy => "AutoModeIpamUnhealthy",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Finding {
    pub(crate) code: FindingCode,
    pub(crate) severity: Severity,
    /// Empty when the finding is cluster-wide.
    pub(crate) node: String,
    /// Empty when the finding is not about a subnet.
    pub(crate) subnet_id: String,
    /// Empty when the finding is not about a subnet or a zone.
    pub(crate) availability_zone: String,
    pub(crate) summary: String,
    pub(crate) remediation: String,
    /// The numbers the rule used.
    pub(crate) evidence: BTreeMap<String, Value>,
}

/// What the rules read: the analysis and the operator's thresholds.
struct Inputs<'a> {
    a: &'a Analysis,
    t: &'a Thresholds,
}

fn ev(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// `90s`, `45m`, `2h30m`, `3d4h`.
pub(crate) fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn list_preview(names: &[&str]) -> String {
    const MAX: usize = 5;
    let mut s = names
        .iter()
        .take(MAX)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX {
        s.push_str(&format!(" and {} more", names.len() - MAX));
    }
    s
}

const DRAIN_KARPENTER: &str = "Existing Karpenter nodes keep the max-pods they were launched with: \
replace them one at a time (`kubectl delete nodeclaim <name>`; Karpenter cordons, drains and replaces the node).";

/// Evaluates every rule; sorted critical first, then by code, node, subnet.
pub(crate) fn evaluate(a: &Analysis, t: &Thresholds) -> Vec<Finding> {
    let i = &Inputs { a, t };
    let mut out = Vec::new();
    minimum_ip_target_without_warm(i, &mut out);
    karpenter_reserved_enis(i, &mut out);
    provisioning_disabled(i, &mut out);
    setting_unresolved(i, &mut out);
    for n in &a.nodes {
        pod_capacity_exceeds_ip_capacity(i, n, &mut out);
        ipamd_allocation_stalled(i, n, &mut out);
        eni_limit_reached(i, n, &mut out);
        eni_config_missing(i, n, &mut out);
        auto_mode_ipam_unhealthy(i, n, &mut out);
    }
    for s in &a.subnets {
        subnet_ips(i, s, &mut out);
    }
    for z in &a.zones {
        zone_pod_ips(i, z, &mut out);
    }
    for r in VpcResource::ALL {
        vpc_resource_exhausted(i, r, &mut out);
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.code.cmp(&b.code))
            .then(a.node.cmp(&b.node))
            .then(a.subnet_id.cmp(&b.subnet_id))
            .then(a.availability_zone.cmp(&b.availability_zone))
    });
    out
}

fn blocked_now(n: &NodeAnalysis) -> bool {
    n.growth_at_zero_free == Some(GrowthOutcome::BlockedByTargets)
        && n.ips.is_some_and(|ips| ips.total == ips.assigned)
}

fn minimum_ip_target_without_warm(i: &Inputs<'_>, out: &mut Vec<Finding>) {
    // In IPv6 mode ipamd takes one /80 per node and the IP targets do not apply.
    let ds = i.a.cluster.aws_node_settings.as_ref().filter(|s| !s.ipv6);
    let affected: Vec<&NodeAnalysis> =
        i.a.nodes
            .iter()
            .filter(|n| {
                n.settings
                    .as_ref()
                    .is_some_and(CniSettings::minimum_without_warm)
            })
            .collect();
    if !ds.is_some_and(CniSettings::minimum_without_warm) && affected.is_empty() {
        return;
    }
    // A DaemonSet template no node runs (an Auto Mode or Windows-only
    // cluster) affects nothing.
    let ipamd_nodes =
        i.a.nodes
            .iter()
            .any(|n| n.compute_type == ComputeType::Ec2 && n.os == super::state::NodeOs::Linux);
    if affected.is_empty() && !ipamd_nodes {
        return;
    }
    let blocked: Vec<&str> = affected
        .iter()
        .filter(|n| blocked_now(n))
        .map(|n| n.name.as_str())
        .collect();
    let min = ds
        .filter(|s| s.minimum_without_warm())
        .map(|s| s.minimum_ip_target)
        .or_else(|| {
            affected
                .first()
                .and_then(|n| n.settings.as_ref())
                .map(|s| s.minimum_ip_target)
        })
        .unwrap_or(0);
    // Warning, as its alert: a node it has already stopped, with pods
    // waiting, pages on its own (IpamdAllocationStalled, critical).
    let severity = Severity::Warning;
    let tail = if blocked.is_empty() {
        format!("{} node(s) run with it; none is full yet", affected.len())
    } else {
        format!(
            "{} node(s) are full and stuck now: {}",
            blocked.len(),
            list_preview(&blocked)
        )
    };
    out.push(Finding {
        code: FindingCode::MinimumIpTargetWithoutWarmIpTarget,
        severity,
        node: String::new(),
        subnet_id: String::new(),
        availability_zone: String::new(),
        summary: format!(
            "aws-node has MINIMUM_IP_TARGET={min} without WARM_IP_TARGET: ipamd stops adding IPs once a node holds {min}, \
             even with zero free; {tail}"
        ),
        remediation: "Set WARM_IP_TARGET next to MINIMUM_IP_TARGET, e.g. `kubectl -n kube-system set env ds/aws-node WARM_IP_TARGET=10` \
             (EKS add-on: configuration values `{\"env\":{\"WARM_IP_TARGET\":\"10\"}}`), or remove MINIMUM_IP_TARGET to fall back to \
             WARM_ENI_TARGET. aws-node pods restart with the new value and ipamd resumes growing; no node replacement is needed. \
             Preview it on every node first: `eks-ipam-exporter plan --set WARM_IP_TARGET=10`."
            .to_string(),
        evidence: ev(&[
            ("minimum_ip_target", json!(min)),
            ("warm_ip_target", json!("unset (0)")),
            ("daemonset_has_it", json!(ds.map(CniSettings::minimum_without_warm))),
            ("nodes_running_with_it", json!(affected.len())),
            ("nodes_blocked", json!(blocked)),
        ]),
    });
}

/// RESERVED_ENIS Karpenter needs: 1 for custom networking, 1 more for the
/// security-groups-for-pods trunk ENI.
fn reserved_enis_needed(s: &CniSettings) -> u32 {
    u32::from(s.custom_networking) + u32::from(s.pod_eni)
}

fn karpenter_reserved_enis(i: &Inputs<'_>, out: &mut Vec<Finding>) {
    let (Some(k), Some(ds)) = (
        i.a.karpenter.as_ref(),
        i.a.cluster.aws_node_settings.as_ref(),
    ) else {
        return;
    };
    let Some(reserved) = k.reserved_enis else {
        return;
    };
    let needed = reserved_enis_needed(ds);
    // Auto Mode nodes have a NodePool too, but not this Karpenter's max pods.
    let karpenter_nodes: Vec<&NodeAnalysis> =
        i.a.nodes
            .iter()
            .filter(|n| n.nodepool.is_some() && n.compute_type == ComputeType::Ec2)
            .collect();
    if reserved >= needed || karpenter_nodes.is_empty() {
        return;
    }
    let over: Vec<&str> = karpenter_nodes
        .iter()
        .filter(|n| n.pod_ip_overcommit.is_some_and(|o| o > 0))
        .map(|n| n.name.as_str())
        .collect();
    let why = match (ds.custom_networking, ds.pod_eni) {
        (true, true) => "custom networking and security groups for pods are",
        (true, false) => "custom networking is",
        _ => "security groups for pods (ENABLE_POD_ENI) is",
    };
    out.push(Finding {
        code: FindingCode::KarpenterReservedEnisMissing,
        severity: Severity::Warning,
        node: String::new(),
        subnet_id: String::new(),
        availability_zone: String::new(),
        summary: format!(
            "Karpenter ({}) has RESERVED_ENIS={reserved} although {why} on: it sets max-pods as if every ENI carried pod IPs; \
             {} of {} Karpenter node(s) are overcommitted",
            k.namespace.clone() + "/" + &k.name,
            over.len(),
            karpenter_nodes.len()
        ),
        remediation: format!(
            "Set RESERVED_ENIS={needed}: Helm `--set settings.reservedENIs=\"{needed}\"` on the Karpenter chart (or env RESERVED_ENIS on \
             deployment {}/{}). New nodes then get the right max-pods. {DRAIN_KARPENTER}",
            k.namespace, k.name
        ),
        evidence: ev(&[
            ("reserved_enis", json!(reserved)),
            ("reserved_enis_needed", json!(needed)),
            ("custom_networking", json!(ds.custom_networking)),
            ("enable_pod_eni", json!(ds.pod_eni)),
            ("karpenter_nodes", json!(karpenter_nodes.len())),
            ("overcommitted_nodes", json!(over)),
        ]),
    });
}

const UNRESOLVED_FIX: &str = "The exporter resolves `valueFrom.configMapKeyRef` and `envFrom.configMapRef` as the kubelet \
does, from the ConfigMaps its Role may `get` (list their names in the Role's `resourceNames`: \
Role `eks-ipam-exporter-settings` in deploy/optional/settings-configmaps.yaml); it never reads Secrets. Until it can read the value, every number that \
depends on these settings is unknown (absent) rather than shown with a default. Grant `get` on the ConfigMap named in the \
reason, or set the value inline (`value:`) in the container's env.";

/// Settings the exporter could not read (docs/design.md section 8): one
/// cluster-level finding per workload whose template has them, and one per
/// node whose own aws-node pod has settings the template does not.
fn setting_unresolved(i: &Inputs<'_>, out: &mut Vec<Finding>) {
    let ds = &i.a.cluster.aws_node_unresolved;
    let mut push = |node: String, what: String, settings: Vec<String>| {
        out.push(Finding {
            code: FindingCode::SettingUnresolved,
            severity: Severity::Info,
            subnet_id: String::new(),
            availability_zone: String::new(),
            summary: format!(
                "{what}: the value of {} could not be read; the numbers that depend on it are unknown",
                settings.join(", ")
            ),
            remediation: UNRESOLVED_FIX.to_string(),
            evidence: ev(&[("unresolved_settings", json!(settings)), ("source", json!(what))]),
            node,
        });
    };
    if !ds.is_empty() {
        push(String::new(), "aws-node DaemonSet".into(), ds.clone());
    }
    for n in &i.a.nodes {
        if !n.settings_unresolved.is_empty() && n.settings_unresolved != *ds {
            push(
                n.name.clone(),
                format!("aws-node pod on {}", n.name),
                n.settings_unresolved.clone(),
            );
        }
    }
    if let Some(k) = &i.a.karpenter {
        if let Some(why) = &k.unresolved {
            push(
                String::new(),
                format!("Karpenter controller {}/{}", k.namespace, k.name),
                vec![format!("RESERVED_ENIS ({why})")],
            );
        }
    }
}

fn provisioning_disabled(i: &Inputs<'_>, out: &mut Vec<Finding>) {
    let Some(ds) = i.a.cluster.aws_node_settings.as_ref() else {
        return;
    };
    if !ds.provisioning_disabled() {
        return;
    }
    let var = if ds.disable_provisioning {
        "DISABLE_NETWORK_RESOURCE_PROVISIONING=true"
    } else {
        "ENABLE_IMDS_ONLY_MODE=true"
    };
    out.push(Finding {
        code: FindingCode::IpProvisioningDisabled,
        severity: Severity::Info,
        node: String::new(),
        subnet_id: String::new(),
        availability_zone: String::new(),
        summary: format!("aws-node has {var}: ipamd attaches no ENIs and assigns no IPs; nodes only use what something else attached"),
        remediation: "Intended when another tool manages ENIs. Otherwise remove the variable from the aws-node DaemonSet.".to_string(),
        evidence: ev(&[("setting", json!(var))]),
    });
}

fn pod_capacity_exceeds_ip_capacity(i: &Inputs<'_>, n: &NodeAnalysis, out: &mut Vec<Finding>) {
    let (Some(over), Some(max), Some(cap), Some(host)) = (
        n.pod_ip_overcommit,
        n.max_pods,
        n.pod_ip_capacity,
        n.pods_host_network,
    ) else {
        return;
    };
    if over <= 0 {
        return;
    }
    let right = cap + host;
    let custom = n.custom_networking.unwrap_or(false);
    let remediation = if n.nodepool.is_some() {
        let reserved = i.a.cluster.karpenter_reserved_enis;
        let fix = if custom && reserved == Some(0) {
            "Set Karpenter `settings.reservedENIs: \"1\"` (env RESERVED_ENIS=1) so it stops counting the primary ENI under custom networking \
             (preview: `eks-ipam-exporter plan --set RESERVED_ENIS=1`)"
                .to_string()
        } else {
            format!(
                "Set `spec.kubelet.maxPods: {right}` (or lower) on the EC2NodeClass \
                 (preview, NAME being the node's EC2NodeClass: `eks-ipam-exporter plan --set ec2nodeclass/NAME.maxPods={right}`)"
            )
        };
        format!("{fix}. {DRAIN_KARPENTER}")
    } else {
        format!(
            "Lower the node group's kubelet max-pods to {right} or less (max-pods-calculator.sh{} gives the right value; \
             AL2023 NodeConfig `kubelet.config.maxPods`), then replace the nodes.",
            if custom { " --cni-custom-networking-enabled" } else { "" }
        )
    };
    out.push(Finding {
        code: FindingCode::PodCapacityExceedsIpCapacity,
        severity: Severity::Warning,
        node: n.name.clone(),
        subnet_id: String::new(),
        availability_zone: String::new(),
        summary: format!(
            "{} ({}) accepts {max} pods but its CNI can serve {right} ({cap} pod IPs + {host} host-network pods): \
             {over} pod(s) can be scheduled that will never get an IP",
            n.name,
            n.instance_type.as_deref().unwrap_or("unknown type"),
        ),
        remediation,
        evidence: ev(&[
            ("max_pods", json!(max)),
            ("pod_ip_capacity", json!(cap)),
            ("host_network_pods", json!(host)),
            ("overcommit", json!(over)),
            ("custom_networking", json!(custom)),
            ("enis_max", json!(n.enis_max)),
            ("karpenter_expected_max_pods", json!(n.karpenter_expected_max_pods)),
            ("karpenter_reserved_enis", json!(i.a.cluster.karpenter_reserved_enis)),
        ]),
    });
}

fn ipamd_allocation_stalled(i: &Inputs<'_>, n: &NodeAnalysis, out: &mut Vec<Finding>) {
    let (Some(waiting), Some(ips)) = (n.pods_waiting_for_ip, n.ips) else {
        return;
    };
    if waiting == 0 || ips.total != ips.assigned {
        return;
    }
    // Below the node's maximum: ipamd could add IPs but does not.
    if n.pod_ip_capacity.is_none_or(|cap| ips.total >= cap)
        || n.growth_at_zero_free
            .is_some_and(|g| matches!(g, GrowthOutcome::AtCapacity | GrowthOutcome::AtMaxPods))
    {
        return;
    }
    let silence = n.allocation_silence().map(|s| (s.seconds, s.lower_bound));
    let window = i.t.silence_window_seconds as f64;
    let predicted_blocked = n.ip_growth_blocked == Some(true);
    let silent = match silence {
        Some((s, _)) => s >= window,
        None => false,
    };
    if !(silent || (!i.a.api_calls_known && predicted_blocked)) {
        return;
    }
    let why = match n.growth_at_zero_free {
        Some(GrowthOutcome::BlockedByTargets) => {
            "ipamd's targets are met (MINIMUM_IP_TARGET without WARM_IP_TARGET), so it asks EC2 for nothing"
        }
        Some(GrowthOutcome::ProvisioningDisabled) => "IP provisioning is disabled on this node",
        Some(GrowthOutcome::Cordoned) => "the node is cordoned and AWS_MANAGE_ENIS_NON_SCHEDULABLE=false",
        _ => "the settings say it should grow: look at ipamd's log on the node",
    };
    let silence_text = match silence {
        Some((s, lower)) => format!(
            "no AssignPrivateIpAddresses/CreateNetworkInterface for {}{}",
            if lower { "at least " } else { "" },
            human_duration(s)
        ),
        None => "CloudTrail not available".to_string(),
    };
    let remediation = match n.growth_at_zero_free {
        Some(GrowthOutcome::BlockedByTargets) => {
            "Set WARM_IP_TARGET (e.g. `kubectl -n kube-system set env ds/aws-node WARM_IP_TARGET=10`); the aws-node pod on \
             this node restarts and ipamd allocates within seconds (preview: `eks-ipam-exporter plan --set WARM_IP_TARGET=10`). \
             See MinimumIpTargetWithoutWarmIpTarget."
        }
        _ => "On the node: `curl -s 127.0.0.1:61679/v1/enis` and /var/log/aws-routed-eni/ipamd.log (look for \
              'Skipping ENI allocation' and EC2 errors); check eks_ipam_api_calls_total for errors and the aws-node pod's env.",
    };
    out.push(Finding {
        code: FindingCode::IpamdAllocationStalled,
        severity: Severity::Critical,
        node: n.name.clone(),
        subnet_id: String::new(),
        availability_zone: String::new(),
        summary: format!(
            "{}: {waiting} pod(s) wait for an IP, ipamd holds {} IPs all assigned (node could hold {}), {silence_text}: {why}",
            n.name,
            ips.total,
            n.pod_ip_capacity.unwrap_or(0)
        ),
        remediation: remediation.to_string(),
        evidence: ev(&[
            ("pods_waiting_for_ip", json!(waiting)),
            ("ips_total", json!(ips.total)),
            ("ips_assigned", json!(ips.assigned)),
            ("pod_ip_capacity", json!(n.pod_ip_capacity)),
            ("growth_at_zero_free", json!(n.growth_at_zero_free.map(GrowthOutcome::as_str))),
            ("silence_seconds", json!(silence.map(|s| s.0))),
            ("silence_is_lower_bound", json!(silence.map(|s| s.1))),
            ("silence_window_seconds", json!(i.t.silence_window_seconds)),
            ("minimum_ip_target", json!(n.minimum_ip_target)),
            ("warm_ip_target", json!(n.warm_ip_target)),
            ("ipamd_no_available_ip_total", json!(n.ipamd_no_available_ip_total)),
        ]),
    });
}

fn eni_limit_reached(_i: &Inputs<'_>, n: &NodeAnalysis, out: &mut Vec<Finding>) {
    let (Some(waiting), Some(ips), Some(enis), Some(max)) =
        (n.pods_waiting_for_ip, n.ips, n.enis, n.enis_max)
    else {
        return;
    };
    if waiting == 0
        || ips.total != ips.assigned
        || n.growth_at_zero_free != Some(GrowthOutcome::AtCapacity)
    {
        return;
    }
    out.push(Finding {
        code: FindingCode::EniLimitReached,
        // Pods wait on this node: EksIpamNodePodsWaitingForIp (critical) pages.
        severity: Severity::Critical,
        node: n.name.clone(),
        subnet_id: String::new(),
        availability_zone: String::new(),
        summary: format!(
            "{}: all {enis} of {max} ENIs attached and all {} pod IPs assigned; {waiting} pod(s) wait for an IP that cannot come",
            n.name, ips.total
        ),
        remediation: "The node is at its IP limit: the scheduler placed more pods than it can address. Fix max-pods \
             (see PodCapacityExceedsIpCapacity), enable prefix delegation (ENABLE_PREFIX_DELEGATION=true, Nitro only) for 16 IPs \
             per slot, raise MAX_ENI if it is set below the instance limit, or use larger instance types."
            .to_string(),
        evidence: ev(&[
            ("enis", json!(enis)),
            ("enis_max", json!(max)),
            ("ips_total", json!(ips.total)),
            ("ips_assigned", json!(ips.assigned)),
            ("pods_waiting_for_ip", json!(waiting)),
            ("max_pods", json!(n.max_pods)),
            ("pod_ip_capacity", json!(n.pod_ip_capacity)),
        ]),
    });
}

/// Scheduler-side exhaustion of a VPC extended resource (docs/design.md section
/// 8): a node whose every advertised unit is requested is a warning; pods
/// the scheduler refused for it make it critical (on the full nodes, or
/// cluster-wide when no node is full: none advertises the resource).
fn vpc_resource_exhausted(i: &Inputs<'_>, r: VpcResource, out: &mut Vec<Finding>) {
    let code = match r {
        VpcResource::PodEni => FindingCode::BranchEniExhausted,
        VpcResource::PrivateIpv4Address => FindingCode::WindowsPodIpsExhausted,
    };
    let what = match r {
        VpcResource::PodEni => "branch ENIs (security groups for pods)",
        VpcResource::PrivateIpv4Address => "Windows pod IPs",
    };
    let remediation = match r {
        VpcResource::PodEni => "Each pod that matches a SecurityGroupPolicy takes one branch ENI (vpc.amazonaws.com/pod-eni) of its node's trunk ENI, \
            and an instance type has a fixed number (e.g. m5.large 9; amazon-vpc-resource-controller-k8s pkg/aws/vpc/limits.go). \
            Add nodes or use instance types with more branch interfaces (only trunking-compatible Nitro types advertise any), \
            or narrow the SecurityGroupPolicy selectors so fewer pods need one.",
        VpcResource::PrivateIpv4Address => "Each Windows pod takes one vpc.amazonaws.com/PrivateIPv4Address, handed out by the VPC resource controller \
            (enable-windows-ipam in the amazon-vpc-cni ConfigMap). Add Windows nodes or use larger instance types, or enable \
            prefix delegation for Windows (enable-windows-prefix-delegation), which gives a node far more addresses.",
    };
    let refused = i.a.cluster.pods_unschedulable.map_or(0, |u| *u.get(r));
    let severity = if refused > 0 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut full = 0;
    let window = i.t.silence_window_seconds as f64;
    for n in &i.a.nodes {
        let u = n.vpc_resources.get(r);
        // The resource controller's failures on this node, while recent.
        let rc: Vec<&super::analysis::ResourceControllerSignal> =
            (n.resource_controller_signals.iter())
                .filter(|_| r == VpcResource::PodEni)
                .filter(|e| e.age_seconds.is_some_and(|a| a < window))
                .collect();
        let rc_evidence = json!(rc
            .iter()
            .map(|e| json!({"reason": e.reason, "pod": e.pod, "message": e.message, "age_seconds": e.age_seconds, "count": e.count}))
            .collect::<Vec<_>>());
        if !u.exhausted() {
            if let Some(f) = resource_controller_failure(n, &rc, refused, remediation) {
                full += 1;
                let mut f = f;
                f.evidence
                    .insert("resource_controller_events".into(), rc_evidence);
                f.evidence.insert(
                    "silence_window_seconds".into(),
                    json!(i.t.silence_window_seconds),
                );
                out.push(f);
            }
            continue;
        }
        full += 1;
        let (a, q) = (u.allocatable.unwrap_or(0), u.requested.unwrap_or(0));
        let refused_note = if refused > 0 {
            format!(
                "; {refused} pending pod(s) are refused by the scheduler for {}",
                r.name()
            )
        } else {
            String::new()
        };
        out.push(Finding {
            code,
            severity,
            node: n.name.clone(),
            subnet_id: String::new(),
            availability_zone: String::new(),
            summary: format!(
                "{}: all {a} {what} are requested ({q} requested of {a} allocatable){refused_note}",
                n.name
            ),
            remediation: remediation.to_string(),
            evidence: {
                let mut e = ev(&[
                    ("resource", json!(r.name())),
                    ("allocatable", json!(a)),
                    ("requested", json!(q)),
                    ("pods_unschedulable", json!(refused)),
                ]);
                if !rc.is_empty() {
                    e.insert("resource_controller_events".into(), rc_evidence);
                }
                e
            },
        });
    }
    if full == 0 && refused > 0 {
        let advertising =
            i.a.nodes
                .iter()
                .filter(|n| n.vpc_resources.get(r).allocatable.is_some_and(|a| a > 0))
                .count();
        out.push(Finding {
            code,
            severity: Severity::Critical,
            node: String::new(),
            subnet_id: String::new(),
            availability_zone: String::new(),
            summary: format!(
                "{refused} pending pod(s) are refused by the scheduler for {} (Insufficient {}); {advertising} node(s) advertise any",
                what,
                r.name()
            ),
            remediation: remediation.to_string(),
            evidence: ev(&[
                ("resource", json!(r.name())),
                ("pods_unschedulable", json!(refused)),
                ("nodes_advertising", json!(advertising)),
            ]),
        });
    }
}

/// `BranchEniExhausted` from the VPC resource controller's own events on a
/// node that is not full by its allocatable: its trunk ENI could not be
/// created (the node advertises no branch ENIs: warning, critical once pods
/// are refused or wait), or pods scheduled there got no branch ENI and
/// still wait for an IP (critical: pods are down).
fn resource_controller_failure(
    n: &NodeAnalysis,
    rc: &[&super::analysis::ResourceControllerSignal],
    refused: u32,
    remediation: &str,
) -> Option<Finding> {
    let trunk = rc.iter().find(|e| e.reason == "TrunkENICreationFailed");
    let branch: Vec<&&super::analysis::ResourceControllerSignal> = rc
        .iter()
        .filter(|e| e.reason == "BranchAllocationFailed")
        .collect();
    let advertises = n
        .vpc_resources
        .get(VpcResource::PodEni)
        .allocatable
        .is_some_and(|a| a > 0);
    let (severity, summary) = match (trunk.filter(|_| !advertises), branch.first()) {
        (Some(t), _) => (
            if refused > 0 || !branch.is_empty() { Severity::Critical } else { Severity::Warning },
            format!(
                "{}: the VPC resource controller could not create its trunk ENI ({}): it has no branch ENIs for pods with security groups",
                n.name, t.message
            ),
        ),
        (None, Some(b)) => (
            Severity::Critical,
            format!(
                "{}: {} pod(s) got no branch ENI from the VPC resource controller and wait for an IP ({}: {})",
                n.name,
                branch.len(),
                b.pod,
                b.message
            ),
        ),
        (None, None) => return None,
    };
    Some(Finding {
        code: FindingCode::BranchEniExhausted,
        severity,
        node: n.name.clone(),
        subnet_id: String::new(),
        availability_zone: String::new(),
        summary,
        remediation: format!(
            "{remediation} TrunkENICreationFailed \"Error Code: UnauthorizedOperation\": attach the AmazonEKSVPCResourceController \
             policy to the cluster IAM role; other codes: the instance type must support trunking (Nitro), and the node's subnet needs \
             a free IP for the trunk. BranchAllocationFailed: the message carries EC2's error (InsufficientFreeAddressesInSubnet: the \
             node's subnet is out of addresses, see the subnet findings)."
        ),
        evidence: ev(&[
            ("resource", json!(VpcResource::PodEni.name())),
            ("allocatable", json!(n.vpc_resources.get(VpcResource::PodEni).allocatable)),
            ("pods_unschedulable", json!(refused)),
        ]),
    })
}

/// Auto Mode runs its own IPAM (no aws-node to read): the EKS node
/// monitoring agent's signals are what says it is unwell (docs/design.md
/// section 8). A condition counts while it is set; an event while it is
/// younger than the silence window.
fn auto_mode_ipam_unhealthy(i: &Inputs<'_>, n: &NodeAnalysis, out: &mut Vec<Finding>) {
    if n.compute_type != ComputeType::Auto {
        return;
    }
    let window = i.t.silence_window_seconds as f64;
    let live: Vec<&super::analysis::IpamSignal> = n
        .ipam_signals
        .iter()
        .filter(|s| s.source == "condition" || s.age_seconds.is_some_and(|a| a < window))
        .collect();
    let Some(first) = live.first() else {
        return;
    };
    let mut issues: Vec<&str> = live.iter().map(|s| s.issue.as_str()).collect();
    issues.sort_unstable();
    issues.dedup();
    out.push(Finding {
        code: FindingCode::AutoModeIpamUnhealthy,
        severity: Severity::Critical,
        node: n.name.clone(),
        subnet_id: String::new(),
        availability_zone: String::new(),
        summary: format!(
            "{}: the EKS node monitoring agent reports {} ({}): pods on this Auto Mode node may not get IPs",
            n.name,
            issues.join(", "),
            first.message
        ),
        remediation: "Auto Mode manages the node's IPAM (aws-node settings do not apply). IPAMDNoIPs: the node's subnets \
            are out of addresses (see the zone and subnet findings; add subnets to the NodeClass podSubnetSelectorTerms/subnetSelectorTerms). \
            IPAMDNotReady/IPAMDNotRunning: a node condition; with node auto repair EKS replaces the node, otherwise cordon and delete \
            the NodeClaim (`kubectl delete nodeclaim <name>`) so Auto Mode replaces it."
            .to_string(),
        evidence: ev(&[
            ("issues", json!(issues)),
            (
                "signals",
                json!(live
                    .iter()
                    .map(|s| json!({"source": s.source, "issue": s.issue, "age_seconds": s.age_seconds, "count": s.count}))
                    .collect::<Vec<_>>()),
            ),
            ("silence_window_seconds", json!(i.t.silence_window_seconds)),
        ]),
    });
}

fn eni_config_missing(i: &Inputs<'_>, n: &NodeAnalysis, out: &mut Vec<Finding>) {
    let (Some(names), Some(want)) = (i.a.eniconfig_names.as_ref(), n.eni_config.as_deref()) else {
        return;
    };
    if names.contains(want) {
        return;
    }
    out.push(Finding {
        code: FindingCode::EniConfigMissing,
        severity: Severity::Critical,
        node: n.name.clone(),
        subnet_id: String::new(),
        availability_zone: String::new(),
        summary: format!(
            "{}: custom networking selects ENIConfig {want:?}, which does not exist: ipamd cannot attach pod ENIs",
            n.name
        ),
        remediation: format!(
            "Create ENIConfig {want:?} (crd.k8s.amazonaws.com/v1alpha1, spec.subnet = a pod subnet in the node's zone), or fix the \
             node label/annotation or ENI_CONFIG_LABEL_DEF that selects it."
        ),
        evidence: ev(&[
            ("eniconfig", json!(want)),
            ("existing_eniconfigs", json!(names.iter().collect::<Vec<_>>())),
        ]),
    });
}

/// Free IPs below which a subnet is low whatever its size.
pub(crate) const SUBNET_LOW_MIN_IPS: f64 = 32.0;

/// The "low" rule of subnets and zones (and of their alerts): under the
/// ratio of the size, or under [`SUBNET_LOW_MIN_IPS`] in any case.
fn below_low_line(available: u64, size: u64, t: &Thresholds) -> bool {
    (available as f64) < (size as f64 * t.subnet_low_ratio).max(SUBNET_LOW_MIN_IPS)
}

fn subnet_ips(i: &Inputs<'_>, s: &SubnetAnalysis, out: &mut Vec<Finding>) {
    let base = ev(&[
        ("available_ips", json!(s.available_ips)),
        ("size_ips", json!(s.size_ips)),
        ("role", json!(s.role.as_str())),
        ("availability_zone", json!(s.zone)),
        ("nodes_using_it", json!(s.nodes)),
        ("low_ratio", json!(i.t.subnet_low_ratio)),
        ("low_min_ips", json!(SUBNET_LOW_MIN_IPS)),
    ]);
    let mut base = base;
    if let Some(v) = s.prefix_reserved_free_ips.filter(|v| *v > 0) {
        base.insert("prefix_reserved_free_ips".into(), json!(v));
    }
    let add_ips = "Add room: a new subnet (or a secondary VPC CIDR) in that zone, referenced by the EC2NodeClass \
                   subnetSelectorTerms, an Auto Mode NodeClass's podSubnetSelectorTerms or a new ENIConfig; hold fewer idle IPs per node (WARM_IP_TARGET/MINIMUM_IP_TARGET together \
                   instead of a whole warm ENI); delete leaked ENIs (`aws ec2 describe-network-interfaces --filters \
                   Name=status,Values=available`).";
    // A subnet with sibling candidates in its zone: ipamd puts the next ENI
    // in whichever has the most free IPs, so the zone's headroom is what
    // pods depend on (ZonePodIps*), not this subnet's.
    let has_siblings = s.zone_candidates > 1;
    let zone =
        i.a.zones
            .iter()
            .find(|z| s.zone.as_deref() == Some(z.zone.as_str()));
    if s.available_ips == 0 && !has_siblings {
        out.push(Finding {
            code: FindingCode::SubnetIpsExhausted,
            severity: Severity::Critical,
            node: String::new(),
            subnet_id: s.id.clone(),
            availability_zone: s.zone.clone().unwrap_or_default(),
            summary: match s.prefix_reserved_free_ips.filter(|v| *v >= 16) {
                // EC2 still places /28 prefixes in its prefix reservations,
                // but every new ENI and node needs an address outside them.
                Some(v) => format!(
                    "{} subnet {} has no free IP outside its prefix reservations: no new node or ENI can come from it \
                     ({v} reserved addresses remain for /28 prefixes on attached ENIs)",
                    s.role.as_str(),
                    s.id
                ),
                None => format!(
                    "{} subnet {} has no free IP: no node or pod IP can come from it",
                    s.role.as_str(),
                    s.id
                ),
            },
            remediation: add_ips.to_string(),
            evidence: base.clone(),
        });
    } else if let (Some(size), false) = (s.size_ips, has_siblings) {
        // Same rule as the EksIpamSubnetIpsLow alert: under the ratio, or under
        // 32 free IPs (about one warm ENI) in any case.
        if below_low_line(s.available_ips, size, i.t) {
            out.push(Finding {
                code: FindingCode::SubnetIpsLow,
                severity: Severity::Warning,
                node: String::new(),
                subnet_id: s.id.clone(),
                availability_zone: s.zone.clone().unwrap_or_default(),
                summary: format!(
                    "{} subnet {} ({}) has {} of {size} IPs free ({:.1}%)",
                    s.role.as_str(),
                    s.id,
                    s.zone.as_deref().unwrap_or("unknown zone"),
                    s.available_ips,
                    100.0 * s.available_ips as f64 / size.max(1) as f64
                ),
                remediation: add_ips.to_string(),
                evidence: base.clone(),
            });
        }
    }
    let prefix_mode = i.a.cluster.prefix_delegation == Some(true);
    // A sibling with free /28s takes the next prefixes' ENI.
    let siblings_have_prefixes = has_siblings && zone.is_some_and(|z| z.free_prefixes > Some(0));
    if prefix_mode && s.available_ips > 0 && s.free_prefixes == Some(0) && !siblings_have_prefixes {
        let mut evidence = base;
        evidence.insert("free_prefixes".into(), json!(0));
        out.push(Finding {
            code: FindingCode::SubnetNoFreePrefix,
            severity: Severity::Warning,
            node: String::new(),
            subnet_id: s.id.clone(),
            availability_zone: s.zone.clone().unwrap_or_default(),
            summary: format!(
                "subnet {} has {} free IPs but no free aligned /28: prefix delegation fails with InsufficientCidrBlocks",
                s.id, s.available_ips
            ),
            remediation: "Reserve /28-aligned space for prefixes with a subnet CIDR reservation (`aws ec2 create-subnet-cidr-reservation \
                 --reservation-type prefix`), or add a fresh subnet for pods."
                .to_string(),
            evidence,
        });
    }
}

/// The zone rule: the thresholds of [`subnet_ips`] applied to the total of
/// the zone's candidate subnets, when there is more than one (with one,
/// the subnet's own findings say it).
fn zone_pod_ips(i: &Inputs<'_>, z: &ZoneAnalysis, out: &mut Vec<Finding>) {
    if z.subnets.len() < 2 {
        return;
    }
    let per_subnet: Vec<Value> = z
        .subnets
        .iter()
        .filter_map(|id| i.a.subnets.iter().find(|s| &s.id == id))
        .map(|s| json!({"subnet_id": s.id, "available_ips": s.available_ips, "size_ips": s.size_ips, "cni_use": s.cni_use.as_str()}))
        .collect();
    let evidence = ev(&[
        ("available_ips", json!(z.available_ips)),
        ("size_ips", json!(z.size_ips)),
        ("free_prefixes", json!(z.free_prefixes)),
        ("candidate_subnets", json!(per_subnet)),
        ("nodes", json!(z.nodes)),
        ("candidate_sets_in_zone", json!(z.candidate_sets)),
        ("low_ratio", json!(i.t.subnet_low_ratio)),
        ("low_min_ips", json!(SUBNET_LOW_MIN_IPS)),
    ]);
    let remediation = "Add room in this zone: tag another subnet of the VPC and zone `kubernetes.io/role/cni=1` \
                       (ipamd picks it up for new ENIs, VPC CNI >= 1.18 with ENABLE_SUBNET_DISCOVERY), or add a secondary \
                       VPC CIDR with such a subnet; hold fewer idle IPs per node (WARM_IP_TARGET/MINIMUM_IP_TARGET); delete \
                       leaked ENIs (`aws ec2 describe-network-interfaces --filters Name=status,Values=available`).";
    let finding = |code, severity, summary| Finding {
        code,
        severity,
        node: String::new(),
        subnet_id: String::new(),
        availability_zone: z.zone.clone(),
        summary,
        remediation: remediation.to_string(),
        evidence: evidence.clone(),
    };
    if z.available_ips == 0 {
        out.push(finding(
            FindingCode::ZonePodIpsExhausted,
            Severity::Critical,
            format!(
                "zone {}: none of its {} candidate subnets has a free IP: no node there can add pod IPs",
                z.zone,
                z.subnets.len()
            ),
        ));
    } else if let Some(size) = z.size_ips {
        if below_low_line(z.available_ips, size, i.t) {
            out.push(finding(
                FindingCode::ZonePodIpsLow,
                Severity::Warning,
                format!(
                    "zone {} has {} of {size} IPs free over its {} candidate subnets ({:.1}%)",
                    z.zone,
                    z.available_ips,
                    z.subnets.len(),
                    100.0 * z.available_ips as f64 / size.max(1) as f64
                ),
            ));
        }
    }
}

/// One table per finding code: the case that fires, the cases that stay
/// quiet (boundaries included), and the case that escalates where the code
/// has two severities. Built with [`super::fixtures`].
#[cfg(test)]
mod tests {
    use super::FindingCode::*;
    use super::*;
    use crate::model::analysis::Analysis;
    use crate::model::fixtures::*;
    use crate::model::state::{ComputeType, Operation};

    const CUSTOM: (&str, &str) = ("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true");

    fn has(c: &Cluster, code: FindingCode) -> bool {
        codes(&c.findings()).contains(&code)
    }

    /// Incident 2's node: m5.4xlarge (8 ENIs x 29), MINIMUM_IP_TARGET=25,
    /// one ENI holding 25 IPs of which `assigned` are in use.
    fn min_ip_cluster(env: &[(&str, &str)], assigned: u32, waiting: u32) -> Cluster {
        Cluster::new().aws_node(env).node(
            Node::new("n1", "m5.4xlarge", 234)
                .pods(assigned.saturating_sub(waiting))
                .waiting(waiting)
                .pool(Pool::new().eni(true, 25, assigned)),
        )
    }

    #[test]
    fn minimum_ip_target_without_warm_ip_target() {
        let min_only = [("MINIMUM_IP_TARGET", "25")];
        // Fires as a warning while the node still has free IPs.
        let f = min_ip_cluster(&min_only, 20, 0).findings();
        let w = only(&f, MinimumIpTargetWithoutWarmIpTarget);
        assert_eq!(w.severity, Severity::Warning);
        assert_eq!(w.evidence["minimum_ip_target"], json!(25));
        // Escalates once a node is full and ipamd's targets keep it there:
        // the finding names the stuck node, and the node itself gets the
        // critical stall (the cluster-wide finding keeps its alert's warning).
        let f = min_ip_cluster(&min_only, 25, 1).findings();
        let c = only(&f, MinimumIpTargetWithoutWarmIpTarget);
        assert_eq!(c.severity, Severity::Warning);
        assert_eq!(c.evidence["nodes_blocked"], json!(["n1"]));
        assert!(
            c.summary.contains("full and stuck now: n1"),
            "{}",
            c.summary
        );
        let stall = only(&f, IpamdAllocationStalled);
        assert_eq!(
            (stall.severity, stall.node.as_str()),
            (Severity::Critical, "n1")
        );
        // WARM_IP_TARGET=0 is ipamd's "unset": still fires.
        assert!(has(
            &min_ip_cluster(
                &[("MINIMUM_IP_TARGET", "25"), ("WARM_IP_TARGET", "0")],
                20,
                0
            ),
            MinimumIpTargetWithoutWarmIpTarget
        ));
        // Quiet with WARM_IP_TARGET set, or without MINIMUM_IP_TARGET.
        let both = [("MINIMUM_IP_TARGET", "25"), ("WARM_IP_TARGET", "10")];
        assert!(!has(
            &min_ip_cluster(&both, 25, 1),
            MinimumIpTargetWithoutWarmIpTarget
        ));
        assert!(!has(
            &min_ip_cluster(&[], 25, 0),
            MinimumIpTargetWithoutWarmIpTarget
        ));
        // A node whose aws-node pod predates the fix still runs the old env.
        let c = min_ip_cluster(&both, 25, 1).aws_node_pod("n1", &min_only);
        let f = c.findings();
        let stale = only(&f, MinimumIpTargetWithoutWarmIpTarget);
        assert_eq!(stale.evidence["nodes_blocked"], json!(["n1"]));
        assert_eq!(stale.evidence["daemonset_has_it"], json!(false));
    }

    /// t4g.medium: 3 ENIs x 6 IPv4. Custom networking: (3-1)*(6-1) = 10 pod
    /// IPs, + 2 host-network pods = 12 pods really served.
    fn t4g_medium(env: &[(&str, &str)], max_pods: u32) -> Cluster {
        Cluster::new()
            .aws_node(env)
            .node(Node::new("n1", "t4g.medium", max_pods))
    }

    #[test]
    fn pod_capacity_exceeds_ip_capacity() {
        let f = t4g_medium(&[CUSTOM], 17).findings();
        let over = only(&f, PodCapacityExceedsIpCapacity);
        assert_eq!(over.severity, Severity::Warning);
        assert_eq!(over.evidence["overcommit"], json!(5));
        assert_eq!(over.evidence["pod_ip_capacity"], json!(10));
        // Boundary: 12 is exactly right, 13 is one too many.
        assert!(!has(
            &t4g_medium(&[CUSTOM], 12),
            PodCapacityExceedsIpCapacity
        ));
        let f = t4g_medium(&[CUSTOM], 13).findings();
        assert_eq!(
            only(&f, PodCapacityExceedsIpCapacity).evidence["overcommit"],
            json!(1)
        );
        // Without custom networking 17 is right: 3*(6-1) + 2.
        assert!(!has(&t4g_medium(&[], 17), PodCapacityExceedsIpCapacity));
        // Unknown host-network pods: overcommit unknown, no finding.
        let unknown = t4g_medium(&[CUSTOM], 17).with_state(|s| s.pods = None);
        assert!(!has(&unknown, PodCapacityExceedsIpCapacity));
    }

    fn karpenter_cluster(
        env: &[(&str, &str)],
        reserved: Option<u32>,
        karpenter_nodes: bool,
    ) -> Cluster {
        let node = Node::new("n1", "t4g.medium", 17);
        let node = if karpenter_nodes {
            node.karpenter("default")
        } else {
            node
        };
        Cluster::new()
            .aws_node(env)
            .karpenter(reserved)
            .nodeclass("default")
            .node(node)
    }

    #[test]
    fn karpenter_reserved_enis_missing() {
        let f = karpenter_cluster(&[CUSTOM], Some(0), true).findings();
        let k = only(&f, KarpenterReservedEnisMissing);
        assert_eq!(k.severity, Severity::Warning);
        assert_eq!(k.evidence["reserved_enis_needed"], json!(1));
        assert_eq!(k.evidence["overcommitted_nodes"], json!(["n1"]));
        // Custom networking and security groups for pods need 2.
        let both = [CUSTOM, ("ENABLE_POD_ENI", "true")];
        let f = karpenter_cluster(&both, Some(1), true).findings();
        assert_eq!(
            only(&f, KarpenterReservedEnisMissing).evidence["reserved_enis_needed"],
            json!(2)
        );
        // Quiet: enough reserved, no Karpenter nodes, no custom networking,
        // or RESERVED_ENIS unknown (nothing can be said).
        assert!(!has(
            &karpenter_cluster(&[CUSTOM], Some(1), true),
            KarpenterReservedEnisMissing
        ));
        assert!(!has(
            &karpenter_cluster(&both, Some(2), true),
            KarpenterReservedEnisMissing
        ));
        assert!(!has(
            &karpenter_cluster(&[CUSTOM], Some(0), false),
            KarpenterReservedEnisMissing
        ));
        assert!(!has(
            &karpenter_cluster(&[], Some(0), true),
            KarpenterReservedEnisMissing
        ));
        assert!(!has(
            &karpenter_cluster(&[CUSTOM], None, true),
            KarpenterReservedEnisMissing
        ));
    }

    #[test]
    fn ipamd_allocation_stalled() {
        let min_only = [("MINIMUM_IP_TARGET", "25")];
        // Pods wait, the pool is full, no call since coverage began (3 h).
        let f = min_ip_cluster(&min_only, 25, 2).findings();
        let s = only(&f, IpamdAllocationStalled);
        assert_eq!(s.severity, Severity::Critical);
        assert_eq!(s.evidence["silence_is_lower_bound"], json!(true));
        assert_eq!(
            s.evidence["growth_at_zero_free"],
            json!("blocked_by_targets")
        );
        // The silence window is inclusive: 1200 s fires, 1199 s does not.
        let at = |secs| {
            min_ip_cluster(&min_only, 25, 2).api_call(
                "i-n1",
                Operation::AssignPrivateIpAddresses,
                secs,
            )
        };
        assert!(has(&at(1200), IpamdAllocationStalled));
        assert!(!has(&at(1199), IpamdAllocationStalled));
        // A recent CreateNetworkInterface counts as growth too.
        let created = min_ip_cluster(&min_only, 25, 2).api_call(
            "i-n1",
            Operation::CreateNetworkInterface,
            60,
        );
        assert!(!has(&created, IpamdAllocationStalled));
        // Quiet with a free IP, or with no pod waiting.
        assert!(!has(
            &min_ip_cluster(&min_only, 24, 1),
            IpamdAllocationStalled
        ));
        assert!(!has(
            &min_ip_cluster(&min_only, 25, 0),
            IpamdAllocationStalled
        ));
        // Without CloudTrail, ipamd's own rule decides: blocked -> fires.
        let no_trail = min_ip_cluster(&min_only, 25, 2).with_state(|s| s.api_calls = None);
        assert!(has(&no_trail, IpamdAllocationStalled));
        // ... and growth expected -> quiet (WARM_IP_TARGET set).
        let healthy = min_ip_cluster(
            &[("MINIMUM_IP_TARGET", "25"), ("WARM_IP_TARGET", "10")],
            25,
            2,
        )
        .with_state(|s| s.api_calls = None);
        assert!(!has(&healthy, IpamdAllocationStalled));
        // Without events, waiting pods are unknown: nothing fires.
        let no_events = min_ip_cluster(&min_only, 25, 2).with_state(|s| s.sandbox_failures = None);
        assert!(!has(&no_events, IpamdAllocationStalled));
    }

    /// t4g.medium without custom networking, every ENI attached and full.
    fn full_t4g(assigned_on_last: u32, waiting: u32) -> Cluster {
        Cluster::new().node(
            Node::new("n1", "t4g.medium", 17)
                .pods(10 + assigned_on_last - waiting)
                .waiting(waiting)
                .pool(
                    Pool::new()
                        .eni(true, 5, 5)
                        .eni(false, 5, 5)
                        .eni(false, 5, assigned_on_last),
                ),
        )
    }

    #[test]
    fn eni_limit_reached() {
        let f = full_t4g(5, 2).findings();
        let e = only(&f, EniLimitReached);
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.evidence["enis"], json!(3));
        assert_eq!(e.evidence["enis_max"], json!(3));
        // At capacity is not a stall: no IpamdAllocationStalled alongside.
        assert!(!codes(&f).contains(&IpamdAllocationStalled));
        // One free IP, or nobody waiting: quiet.
        assert!(!has(&full_t4g(4, 1), EniLimitReached));
        assert!(!has(&full_t4g(5, 0), EniLimitReached));
    }

    fn subnet_cluster(cidr: &str, available: u64, env: &[(&str, &str)]) -> Cluster {
        Cluster::new()
            .aws_node(env)
            .subnet("subnet-a", "us-west-2a", cidr, available)
    }

    #[test]
    fn subnet_ips_low_and_exhausted() {
        // /24: 251 usable, 10 % is 25.1, so the 32-IP floor decides.
        let f = subnet_cluster("10.0.0.0/24", 31, &[]).findings();
        assert_eq!(only(&f, SubnetIpsLow).severity, Severity::Warning);
        assert!(!has(&subnet_cluster("10.0.0.0/24", 32, &[]), SubnetIpsLow));
        // /20: 4091 usable, the ratio decides (409.1).
        assert!(has(&subnet_cluster("10.0.0.0/20", 409, &[]), SubnetIpsLow));
        assert!(!has(&subnet_cluster("10.0.0.0/20", 410, &[]), SubnetIpsLow));
        // Zero escalates to exhausted (and is not also reported as low).
        let f = subnet_cluster("10.0.0.0/24", 0, &[]).findings();
        assert_eq!(only(&f, SubnetIpsExhausted).severity, Severity::Critical);
        assert!(!codes(&f).contains(&SubnetIpsLow));
        assert!(!has(
            &subnet_cluster("10.0.0.0/24", 1, &[]),
            SubnetIpsExhausted
        ));
    }

    /// Enhanced subnet discovery: node n1 lives in subnet-node (a /24, 251
    /// usable); subnet-cni (a /20, 4,091 usable) in the same VPC and zone
    /// is tagged `kubernetes.io/role/cni=1`, so ipamd's next ENI can go there.
    fn discovery_cluster(own_free: u64, sibling_free: u64, env: &[(&str, &str)]) -> Cluster {
        Cluster::new()
            .aws_node(env)
            .subnet("subnet-node", "us-west-2a", "10.0.0.0/24", own_free)
            .subnet("subnet-cni", "us-west-2a", "10.0.16.0/20", sibling_free)
            .subnet_tags("subnet-cni", &[("kubernetes.io/role/cni", "1")])
            .node(
                Node::new("n1", "m5.large", 29)
                    .pool(Pool::new().eni_with(Eni::new(true).subnet("subnet-node").ips(9, 9))),
            )
    }

    /// An Auto Mode node `a1` in us-west-2a whose NodeClass `default`
    /// selects node subnets `Name=auto-*` and pod subnets
    /// `kubernetes.io/role/pod=1`; the pod subnet in its zone has `pod_free`.
    fn auto_mode_cluster(pod_free: u64) -> Cluster {
        Cluster::new()
            .subnet("subnet-auto-node", "us-west-2a", "10.1.0.0/24", 200)
            .subnet_tags("subnet-auto-node", &[("Name", "auto-node-a")])
            .subnet("subnet-pod-a", "us-west-2a", "10.2.0.0/20", pod_free)
            .subnet_tags("subnet-pod-a", &[("kubernetes.io/role/pod", "1")])
            .subnet("subnet-pod-b", "us-west-2b", "10.3.0.0/20", 4000)
            .subnet_tags("subnet-pod-b", &[("kubernetes.io/role/pod", "1")])
            .auto_nodeclass(
                "default",
                vec![tags_term(&[("Name", "auto-*")])],
                vec![tags_term(&[("kubernetes.io/role/pod", "1")])],
            )
            .nodeclaim("a1", "eks.amazonaws.com", "default")
            .node(Node::new("a1", "m5.large", 110).shape(Some("auto"), None))
    }

    fn candidates<'a>(a: &'a Analysis, node: &str) -> Option<Vec<&'a str>> {
        let n = a.nodes.iter().find(|n| n.name == node).unwrap();
        (n.eni_subnet_candidates.as_ref()).map(|v| v.iter().map(String::as_str).collect())
    }

    #[test]
    fn auto_mode_pods_draw_from_their_nodeclass_pod_subnets() {
        let a = auto_mode_cluster(0).analyse();
        assert_eq!(
            candidates(&a, "a1"),
            Some(vec!["subnet-pod-a"]),
            "its zone only"
        );
        let uses: Vec<(&str, &str)> = (a.subnets.iter())
            .map(|s| (s.id.as_str(), s.cni_use.as_str()))
            .collect();
        assert_eq!(
            uses,
            [
                ("subnet-auto-node", "node"),
                ("subnet-pod-a", "pod"),
                ("subnet-pod-b", "pod")
            ]
        );
        // The one pod subnet of the zone is out: it pages, as a subnet.
        let f = auto_mode_cluster(0).findings();
        assert_eq!(only(&f, SubnetIpsExhausted).subnet_id, "subnet-pod-a");
        assert!(!has(&auto_mode_cluster(3000), SubnetIpsExhausted));
        // A second pod subnet in the zone: the zone's headroom decides.
        let two = auto_mode_cluster(0)
            .subnet("subnet-pod-a2", "us-west-2a", "10.4.0.0/20", 3000)
            .subnet_tags("subnet-pod-a2", &[("kubernetes.io/role/pod", "1")]);
        let a = two.analyse();
        assert_eq!(
            candidates(&a, "a1"),
            Some(vec!["subnet-pod-a2", "subnet-pod-a"])
        );
        assert_eq!(
            (a.zones[0].zone.as_str(), a.zones[0].available_ips),
            ("us-west-2a", 3000)
        );
        assert!(!codes(&two.findings())
            .iter()
            .any(|c| matches!(c, SubnetIpsExhausted | ZonePodIpsExhausted | ZonePodIpsLow)));
        let both_out = two.with_state(|st| {
            for s in st.subnets.as_mut().unwrap() {
                if s.zone.as_deref() == Some("us-west-2a") && s.id.starts_with("subnet-pod") {
                    s.available_ips = 0;
                }
            }
        });
        assert!(has(&both_out, ZonePodIpsExhausted));
    }

    /// An EC2 node whose one candidate is full, next to an Auto Mode node
    /// with two roomy node subnets in the same zone: the Auto Mode subnets
    /// are no help to the EC2 node, so its subnet still pages (the zone
    /// union hid it).
    #[test]
    fn one_node_groups_room_does_not_hide_anothers_full_subnet() {
        let mixed = auto_mode_cluster(3000)
            .with_state(|st| st.nodeclasses.as_mut().unwrap()[0].pod_subnet_terms.clear())
            .subnet("subnet-auto-node2", "us-west-2a", "10.5.0.0/24", 150)
            .subnet_tags("subnet-auto-node2", &[("Name", "auto-node-a2")])
            .aws_node(&[])
            .subnet("subnet-ec2", "us-west-2a", "10.0.0.0/24", 0)
            .node(
                Node::new("n1", "m5.large", 29)
                    .pool(Pool::new().eni_with(Eni::new(true).subnet("subnet-ec2").ips(9, 9))),
            );
        let a = mixed.analyse();
        assert_eq!(candidates(&a, "n1"), Some(vec!["subnet-ec2"]));
        assert_eq!(
            candidates(&a, "a1"),
            Some(vec!["subnet-auto-node", "subnet-auto-node2"])
        );
        let z = &a.zones[0];
        assert_eq!(
            (z.subnets.len(), z.available_ips, z.nodes, z.candidate_sets),
            (2, 350, 1, 2),
            "the zone shows the multi-subnet group"
        );
        let ec2 = a.subnets.iter().find(|s| s.id == "subnet-ec2").unwrap();
        assert_eq!(ec2.zone_candidates, 1);
        let f = mixed.findings();
        assert_eq!(only(&f, SubnetIpsExhausted).subnet_id, "subnet-ec2");
        // The Auto Mode group running low pages as a zone.
        let low = mixed.with_state(|st| {
            for s in st.subnets.as_mut().unwrap() {
                if s.id.starts_with("subnet-auto") {
                    s.available_ips = 10;
                }
            }
        });
        let f = low.findings();
        let z = only(&f, ZonePodIpsLow);
        assert_eq!(z.evidence["available_ips"], json!(20));
        assert_eq!(z.evidence["candidate_sets_in_zone"], json!(2));
    }

    #[test]
    fn auto_mode_without_pod_subnets_uses_the_node_subnets_and_unknowns_stay_unknown() {
        let no_pod_terms = auto_mode_cluster(0).with_state(|st| {
            st.nodeclasses.as_mut().unwrap()[0].pod_subnet_terms.clear();
        });
        let a = no_pod_terms.analyse();
        assert_eq!(candidates(&a, "a1"), Some(vec!["subnet-auto-node"]));
        // Which NodeClass, which zone, which subnets: each unknown is unknown.
        let no_claim = auto_mode_cluster(0).with_state(|st| st.nodeclaims = Some(Vec::new()));
        assert_eq!(candidates(&no_claim.analyse(), "a1"), None);
        let karpenter_class = auto_mode_cluster(0).with_state(|st| {
            st.nodeclaims.as_mut().unwrap()[0].nodeclass_group = Some("karpenter.k8s.aws".into());
        });
        assert_eq!(candidates(&karpenter_class.analyse(), "a1"), None);
        let no_zone =
            auto_mode_cluster(0).with_state(|st| st.nodes.as_mut().unwrap()[0].zone = None);
        assert_eq!(candidates(&no_zone.analyse(), "a1"), None);
        let unread = auto_mode_cluster(0).with_state(|st| {
            st.subnets
                .as_mut()
                .unwrap()
                .retain(|s| !s.id.starts_with("subnet-pod"));
        });
        assert_eq!(
            candidates(&unread.analyse(), "a1"),
            None,
            "never an empty set"
        );
        assert!(!has(&unread, ZonePodIpsExhausted));
        // An EC2 node is not given a NodeClass's subnets.
        let ec2 = auto_mode_cluster(0).with_state(|st| {
            st.nodes.as_mut().unwrap()[0].compute_type = ComputeType::Ec2;
        });
        assert_eq!(candidates(&ec2.analyse(), "a1"), None);
    }

    #[test]
    fn a_full_node_subnet_with_a_discovered_sibling_does_not_page() {
        let f = discovery_cluster(0, 3000, &[]).findings();
        assert!(
            !codes(&f).iter().any(|c| matches!(
                c,
                SubnetIpsExhausted | SubnetIpsLow | ZonePodIpsLow | ZonePodIpsExhausted
            )),
            "{:?}",
            codes(&f)
        );
        let a = discovery_cluster(0, 3000, &[]).analyse();
        let z = &a.zones[0];
        assert_eq!(
            (z.zone.as_str(), z.available_ips, z.size_ips),
            ("us-west-2a", 3000, Some(4342))
        );
        assert_eq!(z.subnets, ["subnet-cni", "subnet-node"]);
    }

    #[test]
    fn zone_pod_ips_low_and_exhausted() {
        // 4,342 usable over both: 10 % is 434.2.
        let f = discovery_cluster(0, 434, &[]).findings();
        let low = only(&f, ZonePodIpsLow);
        assert_eq!(
            (low.severity, low.availability_zone.as_str()),
            (Severity::Warning, "us-west-2a")
        );
        assert_eq!(low.evidence["available_ips"], json!(434));
        assert!(!has(&discovery_cluster(0, 435, &[]), ZonePodIpsLow));
        assert!(!has(&discovery_cluster(200, 235, &[]), ZonePodIpsLow));
        // Zero everywhere escalates (and is neither low nor a subnet page).
        let f = discovery_cluster(0, 0, &[]).findings();
        assert_eq!(only(&f, ZonePodIpsExhausted).severity, Severity::Critical);
        assert!(!codes(&f)
            .iter()
            .any(|c| matches!(c, ZonePodIpsLow | SubnetIpsExhausted)));
        assert!(!has(&discovery_cluster(1, 0, &[]), ZonePodIpsExhausted));
    }

    /// Where the sibling is no candidate, the node subnet's own findings
    /// stand, as before subnet discovery.
    #[test]
    fn without_a_candidate_sibling_the_subnet_pages_as_before() {
        let off = [("ENABLE_SUBNET_DISCOVERY", "false")];
        let f = discovery_cluster(0, 3000, &off).findings();
        assert_eq!(only(&f, SubnetIpsExhausted).subnet_id, "subnet-node");
        assert!(!codes(&f)
            .iter()
            .any(|c| matches!(c, ZonePodIpsLow | ZonePodIpsExhausted)));
        // Sibling tagged 0; or reserved for another cluster by name.
        let excluded = discovery_cluster(0, 3000, &[])
            .subnet_tags("subnet-cni", &[("kubernetes.io/role/cni", "0")]);
        assert!(has(&excluded, SubnetIpsExhausted));
        let other = discovery_cluster(0, 3000, &[("CLUSTER_NAME", "green")]).subnet_tags(
            "subnet-cni",
            &[("cni.networking.k8s.aws/cluster/blue", "shared")],
        );
        assert!(has(&other, SubnetIpsExhausted));
        let mine = discovery_cluster(0, 3000, &[("CLUSTER_NAME", "blue")]).subnet_tags(
            "subnet-cni",
            &[("cni.networking.k8s.aws/cluster/blue", "shared")],
        );
        assert!(!has(&mine, SubnetIpsExhausted));
        // A sibling in another zone is no candidate either.
        let elsewhere = discovery_cluster(0, 3000, &[]).with_state(|st| {
            st.subnets.as_mut().unwrap()[1].zone = Some("us-west-2b".into());
        });
        assert!(has(&elsewhere, SubnetIpsExhausted));
    }

    #[test]
    fn subnets_say_what_the_cni_uses_them_for() {
        let a = discovery_cluster(10, 3000, &[])
            .subnet("subnet-off", "us-west-2a", "10.0.1.0/24", 100)
            .subnet_tags("subnet-off", &[("kubernetes.io/role/cni", "0")])
            .node(
                Node::new("n2", "m5.large", 29)
                    .pool(Pool::new().eni_with(Eni::new(true).subnet("subnet-off").ips(9, 9))),
            )
            .analyse();
        let uses: Vec<(&str, &str, u32)> = a
            .subnets
            .iter()
            .map(|s| (s.id.as_str(), s.cni_use.as_str(), s.zone_candidates))
            .collect();
        // n2's own subnet is excluded: subnet-cni is its only candidate, so
        // subnet-cni has no sibling for n2 (the smallest set it is in).
        assert_eq!(
            uses,
            [
                ("subnet-cni", "discovered", 1),
                ("subnet-node", "node", 2),
                ("subnet-off", "excluded", 0)
            ]
        );
        let n1 = a.nodes.iter().find(|n| n.name == "n1").unwrap();
        assert_eq!(
            n1.eni_subnet_candidates.as_deref(),
            Some(&["subnet-cni".to_string(), "subnet-node".to_string()][..]),
            "most free IPs first, as ipamd tries them"
        );
        let n2 = a.nodes.iter().find(|n| n.name == "n2").unwrap();
        assert_eq!(n2.subnet_id.as_deref(), Some("subnet-off"));
        assert_eq!(
            n2.eni_subnet_candidates.as_deref(),
            Some(&["subnet-cni".to_string()][..])
        );
    }

    #[test]
    fn prefix_findings_defer_to_a_sibling_with_free_prefixes() {
        let pd = [("ENABLE_PREFIX_DELEGATION", "true")];
        // subnet-node has 11 free IPs but no free /28; subnet-cni is empty
        // of ENIs, so all its aligned blocks but the reserved ones are free.
        let c = || {
            Cluster::new()
                .aws_node(&pd)
                .subnet("subnet-node", "us-west-2a", "10.0.0.0/28", 11)
                .subnet("subnet-cni", "us-west-2a", "10.0.16.0/24", 251)
                .subnet_tags("subnet-cni", &[("kubernetes.io/role/cni", "1")])
                .node(Node::new("n1", "m5.large", 29).pool(
                    Pool::new().eni_with(Eni::new(true).subnet("subnet-node").prefixes(1, 1)),
                ))
        };
        assert!(!has(&c(), SubnetNoFreePrefix));
        let lone = c().subnet_tags("subnet-cni", &[("kubernetes.io/role/cni", "0")]);
        assert!(has(&lone, SubnetNoFreePrefix));
    }

    #[test]
    fn subnet_no_free_prefix() {
        let pd = [("ENABLE_PREFIX_DELEGATION", "true")];
        // A /28's only block holds AWS's reserved addresses: no free /28.
        let f = subnet_cluster("10.0.0.0/28", 11, &pd).findings();
        assert_eq!(only(&f, SubnetNoFreePrefix).severity, Severity::Warning);
        // An empty /24 has 14 aligned free /28s.
        assert!(!has(
            &subnet_cluster("10.0.0.0/24", 251, &pd),
            SubnetNoFreePrefix
        ));
        // Secondary-IP mode needs no /28.
        assert!(!has(
            &subnet_cluster("10.0.0.0/28", 11, &[]),
            SubnetNoFreePrefix
        ));
        // Exhausted is reported as such, not as "no free prefix".
        assert!(!has(
            &subnet_cluster("10.0.0.0/28", 0, &pd),
            SubnetNoFreePrefix
        ));
        // Unknown ENIs: free prefixes unknown, no finding.
        let unknown =
            subnet_cluster("10.0.0.0/28", 11, &pd).with_state(|s| s.network_interfaces = None);
        assert!(!has(&unknown, SubnetNoFreePrefix));
    }

    #[test]
    fn eni_config_missing() {
        let c = |label: &str| {
            Cluster::new()
                .aws_node(&[CUSTOM])
                .eniconfig("us-west-2a", "subnet-pods-a")
                .node(Node::new("n1", "t4g.medium", 12).label("k8s.amazonaws.com/eniConfig", label))
        };
        let f = c("us-west-2b").findings();
        let m = only(&f, EniConfigMissing);
        assert_eq!(m.severity, Severity::Critical);
        assert_eq!(m.evidence["eniconfig"], json!("us-west-2b"));
        assert!(!has(&c("us-west-2a"), EniConfigMissing));
        // ENIConfigs unknown: nothing can be said.
        assert!(!has(
            &c("us-west-2b").with_state(|s| s.eniconfigs = None),
            EniConfigMissing
        ));
        // Without custom networking no ENIConfig is used.
        let plain = Cluster::new()
            .node(Node::new("n1", "t4g.medium", 17).label("k8s.amazonaws.com/eniConfig", "nope"));
        assert!(!has(&plain, EniConfigMissing));
    }

    #[test]
    fn ip_provisioning_disabled() {
        let c = |env: &[(&str, &str)]| Cluster::new().aws_node(env);
        let f = c(&[("DISABLE_NETWORK_RESOURCE_PROVISIONING", "true")]).findings();
        assert_eq!(only(&f, IpProvisioningDisabled).severity, Severity::Info);
        assert!(has(
            &c(&[("ENABLE_IMDS_ONLY_MODE", "true")]),
            IpProvisioningDisabled
        ));
        assert!(!has(
            &c(&[("DISABLE_NETWORK_RESOURCE_PROVISIONING", "false")]),
            IpProvisioningDisabled
        ));
        assert!(!has(&c(&[]), IpProvisioningDisabled));
    }

    #[test]
    fn findings_sort_critical_first() {
        let f = min_ip_cluster(&[("MINIMUM_IP_TARGET", "25")], 25, 2)
            .subnet("subnet-a", "us-west-2a", "10.0.0.0/24", 31)
            .findings();
        let sev: Vec<Severity> = f.iter().map(|f| f.severity).collect();
        let mut sorted = sev.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(sev, sorted);
        assert_eq!(f.last().map(|f| f.code), Some(SubnetIpsLow));
    }

    /// Issue 14 item 12: a setting from `valueFrom` or `envFrom` used to be
    /// shown as unset (WARM_IP_TARGET=0 -> a false
    /// MinimumIpTargetWithoutWarmIpTarget). Now a readable ConfigMap gives
    /// the value; otherwise the dependent numbers are unknown and
    /// SettingUnresolved says which setting and why.
    #[test]
    fn setting_unresolved() {
        use crate::model::env::{EnvFrom, EnvValue, EnvVar};
        let from_configmap = |cm: Option<&[(&str, &str)]>| {
            Cluster::new()
                .aws_node(&[("MINIMUM_IP_TARGET", "25")])
                .aws_node_from_config_map("WARM_IP_TARGET", "cni-settings", "warm-ip-target")
                .config_map("cni-settings", cm)
                .node(
                    Node::new("n1", "m5.4xlarge", 234)
                        .pods(25)
                        .pool(Pool::new().eni(true, 25, 25)),
                )
        };
        // Forbidden: unknown, with the reason.
        let forbidden = from_configmap(None);
        let a = forbidden.analyse();
        assert_eq!(a.nodes[0].warm_ip_target, None);
        assert_eq!(a.nodes[0].pod_ip_capacity, None);
        assert_eq!(a.nodes[0].ip_growth_blocked, None);
        assert_eq!(a.cluster.custom_networking, None);
        let f = forbidden.findings();
        let u = only(&f, SettingUnresolved);
        assert_eq!(u.severity, Severity::Info);
        assert_eq!(u.node, "");
        assert_eq!(
            u.evidence["unresolved_settings"],
            json!(["WARM_IP_TARGET (ConfigMap kube-system/cni-settings: forbidden)"])
        );
        assert!(
            !codes(&f).contains(&MinimumIpTargetWithoutWarmIpTarget),
            "{:?}",
            codes(&f)
        );
        // Readable: the value is used, nothing is unresolved.
        let readable = from_configmap(Some(&[("warm-ip-target", "10")]));
        assert_eq!(readable.analyse().nodes[0].warm_ip_target, Some(10));
        assert!(!has(&readable, SettingUnresolved));
        // Readable but the key is missing: the pods cannot start; unknown.
        let no_key = from_configmap(Some(&[("other", "1")]));
        assert!(only(&no_key.findings(), SettingUnresolved)
            .summary
            .contains("cannot start"));
        // The ConfigMap holds the misconfiguration of incident 2: it fires.
        let zero = Cluster::new()
            .aws_node_from_config_map("MINIMUM_IP_TARGET", "cni-settings", "min")
            .config_map("cni-settings", Some(&[("min", "25")]));
        assert_eq!(
            zero.analyse()
                .cluster
                .aws_node_settings
                .map(|s| s.minimum_ip_target),
            Some(25)
        );
        // envFrom of an unreadable ConfigMap: every setting the env list does not name is unknown.
        let env_from = Cluster::new().config_map("all", None).with_state(|s| {
            let ds = s.aws_node.as_mut().unwrap().as_mut().unwrap();
            ds.daemonset_env.env_from.push(EnvFrom {
                config_map: Some("all".into()),
                prefix: String::new(),
                optional: false,
            });
        });
        let u = only(&env_from.findings(), SettingUnresolved)
            .summary
            .clone();
        assert!(
            u.contains("WARM_IP_TARGET (envFrom ConfigMap kube-system/all: forbidden)"),
            "{u}"
        );
        // One node's own aws-node pod, from a Secret (never read): a node-level finding.
        let pod_env = Cluster::new()
            .node(Node::new("n1", "m5.large", 29))
            .aws_node_pod("n1", &[])
            .with_state(|s| {
                let mut env = (*s.aws_node_pod_env["n1"]).clone();
                env.env.push(EnvVar {
                    name: "MAX_ENI".into(),
                    value: EnvValue::Unread("secretKeyRef"),
                });
                s.aws_node_pod_env
                    .insert("n1".into(), std::sync::Arc::new(env));
            });
        let f = pod_env.findings();
        assert_eq!(only(&f, SettingUnresolved).node, "n1");
        // Karpenter's RESERVED_ENIS from a ConfigMap: known when readable.
        let karpenter = |cm: Option<&[(&str, &str)]>| {
            Cluster::new()
                .karpenter(Some(0))
                .config_map("karpenter-env", cm)
                .with_state(|s| {
                    let k = s.karpenter.as_mut().unwrap().as_mut().unwrap();
                    k.env.env[0].value = EnvValue::ConfigMapKey {
                        name: "karpenter-env".into(),
                        key: "reserved".into(),
                        optional: false,
                    };
                })
        };
        let unreadable = karpenter(None);
        assert_eq!(unreadable.analyse().cluster.karpenter_reserved_enis, None);
        assert!(only(&unreadable.findings(), SettingUnresolved)
            .summary
            .contains("RESERVED_ENIS"));
        let readable = karpenter(Some(&[("reserved", "1")]));
        assert_eq!(readable.analyse().cluster.karpenter_reserved_enis, Some(1));
        assert!(!has(&readable, SettingUnresolved));
        // Quiet when everything is inline.
        assert!(!has(
            &min_ip_cluster(&[("MINIMUM_IP_TARGET", "25")], 20, 0),
            SettingUnresolved
        ));
    }

    /// m5.large: 9 branch ENIs (resource controller limits.go); Windows
    /// m5.large: 9 secondary IPv4 addresses per ENI, less the primary.
    #[test]
    fn vpc_resources_exhausted_on_the_scheduler_side() {
        use crate::model::state::VpcResource::*;
        for (r, code, os) in [
            (PodEni, BranchEniExhausted, None),
            (PrivateIpv4Address, WindowsPodIpsExhausted, Some("windows")),
        ] {
            let node = |name: &str, alloc: u32, req: u32| {
                Node::new(name, "m5.large", 29)
                    .shape(None, os)
                    .vpc(r, alloc, req)
            };
            // Quiet below the line: 8 of 9 requested.
            let c = Cluster::new().node(node("n1", 9, 8));
            assert!(!has(&c, code), "{code:?} 8/9");
            // Fires as a warning at exactly 9 of 9, on that node only.
            let c = Cluster::new().node(node("n1", 9, 9)).node(node("n2", 9, 3));
            let f = c.findings();
            let w = only(&f, code);
            assert_eq!((w.severity, w.node.as_str()), (Severity::Warning, "n1"));
            assert_eq!(w.evidence["allocatable"], json!(9));
            assert_eq!(w.evidence["requested"], json!(9));
            // Escalates once the scheduler refuses pods for it.
            let f = Cluster::new()
                .node(node("n1", 9, 9))
                .unschedulable(r, 2)
                .findings();
            let c = only(&f, code);
            assert_eq!(c.severity, Severity::Critical);
            assert_eq!(c.evidence["pods_unschedulable"], json!(2));
            // Refused with no full node (no node advertises it): cluster-wide critical.
            let f = Cluster::new()
                .node(Node::new("n1", "m5.large", 29).shape(None, os))
                .unschedulable(r, 3)
                .findings();
            let c = only(&f, code);
            assert_eq!((c.severity, c.node.as_str()), (Severity::Critical, ""));
            assert_eq!(c.evidence["nodes_advertising"], json!(0));
            // A node advertising 0 (trunk not attached, IPAM off) is not "full".
            assert!(!has(&Cluster::new().node(node("n1", 0, 0)), code));
            // Unknown pods: requested unknown, nothing said.
            let unknown = Cluster::new()
                .node(node("n1", 9, 9))
                .with_state(|s| s.pods = None);
            assert!(!has(&unknown, code));
            // Refusals of the other resource do not count.
            let other = if r == PodEni {
                PrivateIpv4Address
            } else {
                PodEni
            };
            let f = Cluster::new()
                .node(node("n1", 9, 9))
                .unschedulable(other, 5)
                .findings();
            assert_eq!(only(&f, code).severity, Severity::Warning);
        }
    }

    /// The VPC resource controller's own events (amazon-vpc-resource-controller-k8s
    /// b8d425119bdb, pkg/provider/branch/provider.go messages).
    #[test]
    fn branch_eni_exhausted_from_the_resource_controllers_events() {
        use crate::model::state::RcEventReason::*;
        use crate::model::state::VpcResource::PodEni;
        const TRUNK: &str = "Failed to create trunk interface: Error Code: UnauthorizedOperation: \
                             Please verify the cluster IAM role has AmazonEKSVPCResourceController policy";
        const BRANCH: &str =
            "failed to allocate branch ENI to pod: InsufficientFreeAddressesInSubnet";
        let w = Thresholds::default().silence_window_seconds as i64;
        let trunk = |secs: Option<i64>| {
            Cluster::new()
                .node(Node::new("n1", "m5.large", 29))
                .node(Node::new("n2", "m5.large", 29).vpc(PodEni, 9, 1))
                .rc_event(TrunkEniCreationFailed, "n1", TRUNK, secs)
        };
        // Fires on the node whose trunk failed, as a warning.
        let f = trunk(Some(60)).findings();
        let b = only(&f, BranchEniExhausted);
        assert_eq!((b.severity, b.node.as_str()), (Severity::Warning, "n1"));
        assert!(b.summary.contains("UnauthorizedOperation"), "{}", b.summary);
        assert_eq!(
            b.evidence["resource_controller_events"][0]["reason"],
            json!("TrunkENICreationFailed")
        );
        // Escalates when pods are refused for pod-eni, with no second, cluster-wide finding.
        let f = trunk(Some(60)).unschedulable(PodEni, 2).findings();
        assert_eq!(only(&f, BranchEniExhausted).severity, Severity::Critical);
        assert_eq!(only(&f, BranchEniExhausted).node, "n1");
        // Quiet once old, of unknown age, or when the node advertises branch ENIs after all.
        assert!(!has(&trunk(Some(w)), BranchEniExhausted));
        assert!(!has(&trunk(None), BranchEniExhausted));
        let recovered = trunk(Some(60)).with_state(|st| {
            *st.nodes.as_mut().unwrap()[0]
                .vpc_allocatable
                .get_mut(PodEni) = Some(9);
        });
        assert!(!has(&recovered, BranchEniExhausted));
        // A pod that got no branch ENI and still waits for an IP: critical on its node.
        let branch = |pod: &str| {
            Cluster::new()
                .node(Node::new("n1", "m5.large", 29).vpc(PodEni, 9, 3).waiting(1))
                .rc_event(BranchAllocationFailed, pod, BRANCH, Some(30))
        };
        let f = branch("n1-waiting-0").findings();
        let b = only(&f, BranchEniExhausted);
        assert_eq!((b.severity, b.node.as_str()), (Severity::Critical, "n1"));
        assert!(b.summary.contains("default/n1-waiting-0"), "{}", b.summary);
        // The pod has its IP by now (or is gone): nothing to say.
        assert!(!has(&branch("other-pod"), BranchEniExhausted));
        // A full node keeps its finding and carries the events as evidence.
        let f = Cluster::new()
            .node(Node::new("n1", "m5.large", 29).vpc(PodEni, 9, 9).waiting(1))
            .rc_event(BranchAllocationFailed, "n1-waiting-0", BRANCH, Some(30))
            .findings();
        let b = only(&f, BranchEniExhausted);
        assert_eq!(b.severity, Severity::Warning);
        assert_eq!(
            b.evidence["resource_controller_events"][0]["pod"],
            json!("default/n1-waiting-0")
        );
        // Windows IPs are not the resource controller's branch ENIs.
        let f = trunk(Some(60)).findings();
        assert!(!codes(&f).contains(&WindowsPodIpsExhausted));
    }

    #[test]
    fn auto_mode_ipam_unhealthy_from_the_node_monitoring_agent() {
        let auto = |name: &str| Node::new(name, "m5.large", 29).shape(Some("auto"), None);
        // Fires on a recent IPAMDNoIPs event (an agent "Event" issue).
        let f = Cluster::new()
            .node(auto("a1"))
            .networking_event("a1", "IPAMDNoIPs", 300)
            .findings();
        let u = only(&f, AutoModeIpamUnhealthy);
        assert_eq!((u.severity, u.node.as_str()), (Severity::Critical, "a1"));
        assert_eq!(u.evidence["issues"], json!(["IPAMDNoIPs"]));
        // The same issue from the condition and an event is named once.
        let f = Cluster::new()
            .node(auto("a1").networking_ready("False", "IPAMDNotReady"))
            .networking_event("a1", "IPAMDNoIPs", 60)
            .networking_event("a1", "IPAMDNotReady", 60)
            .findings();
        assert_eq!(
            only(&f, AutoModeIpamUnhealthy).evidence["issues"],
            json!(["IPAMDNoIPs", "IPAMDNotReady"])
        );
        // Fires on the condition (an agent "Condition" issue), whatever its age.
        let c = Cluster::new().node(auto("a1").networking_ready("False", "IPAMDNotRunning"));
        assert!(has(&c, AutoModeIpamUnhealthy));
        // Boundary: an event just inside the window counts, one at the window does not.
        let w = Thresholds::default().silence_window_seconds as i64;
        let at = |secs| {
            Cluster::new()
                .node(auto("a1"))
                .networking_event("a1", "IPAMDNoIPs", secs)
        };
        assert!(has(&at(w - 1), AutoModeIpamUnhealthy));
        assert!(!has(&at(w), AutoModeIpamUnhealthy));
        // Quiet: condition True, a non-IPAMD issue, another node's event, an EC2 node.
        let quiet = [
            Cluster::new().node(auto("a1").networking_ready("True", "NetworkingIsReady")),
            Cluster::new().node(auto("a1").networking_ready("False", "InterfaceNotUp")),
            Cluster::new()
                .node(auto("a1"))
                .networking_event("other", "IPAMDNoIPs", 60),
            Cluster::new()
                .node(Node::new("e1", "m5.large", 29))
                .networking_event("e1", "IPAMDNoIPs", 60),
        ];
        for c in &quiet {
            assert!(!has(c, AutoModeIpamUnhealthy));
        }
    }

    /// The fix the findings give for a missing WARM_IP_TARGET is the one the
    /// README and the runbook give (they once said 5 where the findings said 10).
    #[test]
    fn docs_give_the_findings_warm_ip_target_fix() {
        const FIX: &str = "kubectl -n kube-system set env ds/aws-node WARM_IP_TARGET=10";
        let f = min_ip_cluster(&[("MINIMUM_IP_TARGET", "25")], 25, 1).findings();
        assert!(only(&f, MinimumIpTargetWithoutWarmIpTarget)
            .remediation
            .contains(FIX));
        for (doc, text) in [
            ("README.md", include_str!("../../README.md")),
            ("docs/runbook.md", include_str!("../../docs/runbook.md")),
        ] {
            let commands: Vec<&str> = text
                .match_indices("set env ")
                .filter_map(|(at, _)| text[at..].split('`').next())
                .filter(|c| c.contains("WARM_IP_TARGET="))
                .collect();
            assert!(!commands.is_empty(), "{doc}: no WARM_IP_TARGET fix");
            for c in commands {
                assert!(
                    FIX.ends_with(c),
                    "{doc}: `{c}` differs from the findings' `{FIX}`"
                );
            }
        }
    }
}
