//! The one list of every metric family both roles export: name, type, help
//! and label names (kube-state-metrics keeps one such list per resource).
//! The exposition writers take their families from here, and a test checks
//! the README's metrics table and the design contract's names against it.

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// Which process exports the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `cluster` (and `demo`).
    Cluster,
    /// `node`, the per-node agent.
    Node,
    /// Both roles.
    Both,
}

/// One metric family.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MetricDef {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) help: &'static str,
    /// Label names, in the order samples write them.
    pub(crate) labels: &'static [&'static str],
    pub(crate) role: Role,
}

macro_rules! metrics {
    ($($id:ident: $name:literal, $kind:ident, $role:ident, [$($label:literal),*], $help:literal;)*) => {
        $(
            pub(crate) const $id: MetricDef = MetricDef {
                name: $name,
                kind: Kind::$kind,
                help: $help,
                labels: &[$($label),*],
                role: Role::$role,
            };
        )*
        /// Every family, in exposition order.
        #[cfg(test)]
        pub(crate) const ALL: &[&MetricDef] = &[$(&$id),*];
    };
}

metrics! {
    NODE_INFO: "eks_ipam_node_info", Gauge, Cluster,
        ["node", "instance_type", "zone", "nodepool", "compute_type", "os", "ip_family"],
        "Node metadata; always 1. nodepool is empty for nodes Karpenter does not manage; compute_type ec2|auto|hybrid|fargate|other, os linux|windows|other, ip_family ipv4|ipv6|unknown (unknown on nodes without aws-node's ipamd).";
    NODE_POD_IP_CAPACITY: "eks_ipam_node_pod_ip_capacity", Gauge, Cluster, ["node"],
        "IPs ipamd can hand to pods on the node under its effective aws-node settings (summed over network cards under ENABLE_MULTI_NIC).";
    NODE_MAX_PODS: "eks_ipam_node_max_pods", Gauge, Cluster, ["node"],
        "Pods the kubelet accepts (status.capacity.pods): what the scheduler and Karpenter assume.";
    NODE_KARPENTER_EXPECTED_MAX_PODS: "eks_ipam_node_karpenter_expected_max_pods", Gauge, Cluster, ["node"],
        "Max pods Karpenter's own formula gives for this node with the cluster's RESERVED_ENIS and the EC2NodeClass kubelet settings.";
    NODE_POD_IP_OVERCOMMIT: "eks_ipam_node_pod_ip_overcommit", Gauge, Cluster, ["node"],
        "max_pods minus host-network pods minus pod-IP capacity; above 0, pods can be scheduled that never get an IP.";
    NODE_PODS: "eks_ipam_node_pods", Gauge, Cluster, ["node", "network"],
        "Non-terminated pods on the node by network (pod = needs a pod IP, host = hostNetwork).";
    NODE_PODS_WAITING_FOR_IP: "eks_ipam_node_pods_waiting_for_ip", Gauge, Cluster, ["node"],
        "Pending pods on the node whose sandbox failed with 'failed to assign an IP address to container'.";
    NODE_IPS: "eks_ipam_node_ips", Gauge, Cluster, ["node", "state"],
        "ipamd's pool by state (over every network card it manages); the three states sum to the pool. available excludes IPs in IP_COOLDOWN_PERIOD.";
    NODE_ENIS: "eks_ipam_node_enis", Gauge, Cluster, ["node"],
        "ENIs ipamd manages on the node (network card 0).";
    NODE_ENIS_MAX: "eks_ipam_node_enis_max", Gauge, Cluster, ["node"],
        "ENIs ipamd may attach: min(MAX_ENI, the default network card's limit).";
    NODE_IP_GROWTH_BLOCKED: "eks_ipam_node_ip_growth_blocked", Gauge, Cluster, ["node"],
        "1 when ipamd would add no IP even at zero free IPs although the node is below its maximum (predictive; under ENABLE_MULTI_NIC, on no network card).";
    NODE_NETWORK_CARD_POD_IP_CAPACITY: "eks_ipam_node_network_card_pod_ip_capacity", Gauge, Cluster, ["node", "network_card"],
        "Pod-IP capacity of one network card (ENABLE_MULTI_NIC; only on nodes where ipamd manages more than one card). eks_ipam_node_pod_ip_capacity is their sum.";
    NODE_NETWORK_CARD_IPS: "eks_ipam_node_network_card_ips", Gauge, Cluster, ["node", "network_card", "state"],
        "ipamd's pool of one network card by state (only on nodes where ipamd manages more than one card); eks_ipam_node_ips is their sum.";
    NODE_NETWORK_CARD_IP_GROWTH_BLOCKED: "eks_ipam_node_network_card_ip_growth_blocked", Gauge, Cluster, ["node", "network_card"],
        "1 if ipamd would add no IP on this network card at zero free (cards > 0 always use WARM_IP_TARGET=1, MINIMUM_IP_TARGET=1).";
    NODE_CNI_TARGET: "eks_ipam_node_cni_target", Gauge, Cluster, ["node", "target"],
        "Effective ipamd warm/minimum targets on the node; 0 means unset.";
    NODE_RESOURCE: "eks_ipam_node_resource", Gauge, Cluster, ["node", "resource", "state"],
        "VPC extended resources on the node (vpc.amazonaws.com/pod-eni: security groups for pods; vpc.amazonaws.com/PrivateIPv4Address: Windows pod IPs): allocatable as advertised, requested by its non-terminated pods. Only for nodes that advertise or request the resource.";
    API_CALL_LAST_TIMESTAMP: "eks_ipam_api_call_last_timestamp_seconds", Gauge, Cluster, ["operation", "node"],
        "Time of the newest CloudTrail event of this operation attributed to the node.";
    API_CALL_SILENCE: "eks_ipam_api_call_silence_seconds", Gauge, Cluster, ["operation", "node"],
        "Seconds since the node's last call of this operation; counted from the start of CloudTrail coverage (a lower bound) when none was seen.";
    PODS_UNSCHEDULABLE: "eks_ipam_pods_unschedulable", Gauge, Cluster, ["resource"],
        "Pending pods the scheduler refused (PodScheduled False, Unschedulable) naming 'Insufficient <resource>' for this VPC resource.";
    KARPENTER_RESERVED_ENIS: "eks_ipam_karpenter_reserved_enis", Gauge, Cluster, [],
        "Karpenter controller's RESERVED_ENIS setting.";
    CNI_CUSTOM_NETWORKING: "eks_ipam_cni_custom_networking_enabled", Gauge, Cluster, [],
        "1 when the aws-node DaemonSet has AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true.";
    CNI_PREFIX_DELEGATION: "eks_ipam_cni_prefix_delegation_enabled", Gauge, Cluster, [],
        "1 when the aws-node DaemonSet has ENABLE_PREFIX_DELEGATION=true.";
    API_CALLS: "eks_ipam_api_calls_total", Counter, Cluster, ["operation", "error_code"],
        "ENI/IP API calls seen in CloudTrail for the cluster's nodes, by operation and error code (none = success).";
    CLOUDTRAIL_LAG: "eks_ipam_cloudtrail_lag_seconds", Gauge, Cluster, [],
        "Age of the newest CloudTrail event read: how far behind the API-call view may be.";
    SUBNET_AVAILABLE_IPS: "eks_ipam_subnet_available_ips", Gauge, Cluster, ["subnet_id", "availability_zone", "role"],
        "Free IPv4 addresses in the subnet (AvailableIpAddressCount).";
    SUBNET_SIZE_IPS: "eks_ipam_subnet_size_ips", Gauge, Cluster, ["subnet_id", "availability_zone", "role"],
        "Usable IPv4 addresses in the subnet: CIDR size minus the 5 AWS reserves.";
    SUBNET_FREE_PREFIXES: "eks_ipam_subnet_free_prefixes", Gauge, Cluster, ["subnet_id", "availability_zone", "role"],
        "Fully free aligned /28 blocks in the subnet (prefix delegation needs one per prefix).";
    SUBNET_INFO: "eks_ipam_subnet_info", Gauge, Cluster, ["subnet_id", "availability_zone", "cni_use"],
        "Subnet metadata; always 1. cni_use: excluded (tagged kubernetes.io/role/cni=0), pod (an ENIConfig's or an Auto Mode NodeClass's podSubnetSelectorTerms), node (a node's primary subnet), discovered (a tagged candidate for new ENIs).";
    SUBNET_ZONE_CANDIDATES: "eks_ipam_subnet_zone_candidates", Gauge, Cluster, ["subnet_id", "availability_zone"],
        "Subnets in the smallest zone candidate set this subnet belongs to (0: no node's next ENI can go here). Above 1, watch the zone's headroom, not this subnet's.";
    SUBNET_IPS: "eks_ipam_subnet_ips", Gauge, Cluster, ["subnet_id", "holder"],
        "A subnet's addresses by holder: pod (assigned to the cluster's pods), warm (on the cluster's node ENIs, unassigned), eni_primary, other (everyone else's, and addresses EC2 counts as used that no visible ENI holds), reserved (AWS's 5 and unused CIDR reservations), free; they sum to the subnet's size. pod and warm are absent while a node ENI in the subnet has no ipamd pool.";
    SUBNET_PREFIX_RESERVED_FREE_IPS: "eks_ipam_subnet_prefix_reserved_free_ips", Gauge, Cluster, ["subnet_id"],
        "Unused addresses in the subnet's prefix CIDR reservations: not in eks_ipam_subnet_available_ips (EC2 leaves them out), yet EC2 places /28 prefixes there.";
    ZONE_POD_IPS_AVAILABLE: "eks_ipam_zone_pod_ips_available", Gauge, Cluster, ["availability_zone"],
        "Free IPs over the subnets ipamd (or Auto Mode) can draw the zone's nodes' new pod IPs from (node subnets, tagged kubernetes.io/role/cni subnets, ENIConfig subnets, or an Auto Mode NodeClass's subnets); where the zone's nodes have different candidate sets, the most constrained set with two or more subnets (else the most constrained one).";
    ZONE_POD_IPS_SIZE: "eks_ipam_zone_pod_ips_size", Gauge, Cluster, ["availability_zone"],
        "Usable IPs over the same subnets as eks_ipam_zone_pod_ips_available.";
    ZONE_POD_IP_SUBNETS: "eks_ipam_zone_pod_ip_subnets", Gauge, Cluster, ["availability_zone"],
        "Subnets in the zone's candidate set (the one eks_ipam_zone_pod_ips_available counts).";
    ZONE_FREE_PREFIXES: "eks_ipam_zone_free_prefixes", Gauge, Cluster, ["availability_zone"],
        "Fully free aligned /28 blocks over the zone's candidate subnets (prefix delegation).";
    FINDING: "eks_ipam_finding", Gauge, Cluster, ["code", "severity", "node", "subnet_id", "availability_zone"],
        "Active diagnosis findings; always 1. node, subnet_id and availability_zone are empty when they do not apply.";
    IPAMD_UP: "eks_ipam_ipamd_up", Gauge, Node, ["node"],
        "1 when ipamd's /v1/enis answered with a pool this agent could read.";
    IPAMD_IPS: "eks_ipam_ipamd_ips", Gauge, Node, ["node", "state"],
        "ipamd's pool on this node by state (every network card it manages); available excludes IPs in cooldown.";
    IPAMD_ENIS: "eks_ipam_ipamd_enis", Gauge, Node, ["node"],
        "ENIs ipamd manages on this node (every network card it manages).";
    IPAMD_ENI_IPS: "eks_ipam_ipamd_eni_ips", Gauge, Node, ["node", "eni", "primary"],
        "IPs ipamd holds on each ENI (a /28 prefix counts 16).";
    IPAMD_PREFIXES: "eks_ipam_ipamd_prefixes", Gauge, Node, ["node"],
        "/28 prefixes ipamd holds on this node.";
    IPAMD_DUPLICATE_ADDRESSES: "eks_ipam_ipamd_duplicate_addresses", Gauge, Node, ["node"],
        "Addresses ipamd's /v1/enis lists on more than one ENI (seen while it moves one); counted once in the pool.";
    IPAMD_NO_AVAILABLE_IP: "eks_ipam_ipamd_no_available_ip_total", Counter, Node, ["node"],
        "ipamd's awscni_no_available_ip_addresses: pod IP requests it could not serve.";
    COLLECTOR_UP: "eks_ipam_collector_up", Gauge, Both, ["collector"],
        "1 when the collector's last run succeeded.";
    COLLECTOR_LAST_SUCCESS: "eks_ipam_collector_last_success_timestamp_seconds", Gauge, Both, ["collector"],
        "Unix time of the collector's last successful run.";
    COLLECTOR_DURATION: "eks_ipam_collector_duration_seconds", Gauge, Both, ["collector"],
        "Duration of the collector's last run.";
    COLLECTOR_ERRORS: "eks_ipam_collector_errors_total", Counter, Both, ["collector", "kind"],
        "Collector errors since start, by kind (e.g. forbidden, not_found, throttled, timeout).";
    COLLECTOR_REQUESTS: "eks_ipam_collector_requests_total", Counter, Cluster, ["collector"],
        "API requests the collector sent since start (EC2, CloudTrail): flat however often /metrics is scraped.";
    BUILD_INFO: "eks_ipam_build_info", Gauge, Both, ["version"],
        "Build of the exporter; always 1.";
    HTTP_REQUESTS: "eks_ipam_http_requests_total", Counter, Cluster, ["handler"],
        "HTTP requests served, by handler.";
}

/// The family called `name`, if the catalogue has it.
#[cfg(test)]
pub(crate) fn find(name: &str) -> Option<&'static MetricDef> {
    ALL.iter().copied().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_prefixed_and_follow_the_conventions() {
        let mut seen = BTreeSet::new();
        for d in ALL {
            assert!(seen.insert(d.name), "{} listed twice", d.name);
            assert!(d.name.starts_with("eks_ipam_"), "{}", d.name);
            assert_eq!(
                d.kind == Kind::Counter,
                d.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                d.name
            );
            assert!(!d.help.is_empty() && !d.help.contains('\n'), "{}", d.name);
            let labels: BTreeSet<_> = d.labels.iter().collect();
            assert_eq!(labels.len(), d.labels.len(), "{}: duplicate label", d.name);
        }
        assert_eq!(find("eks_ipam_finding"), Some(&FINDING));
        assert_eq!(find("eks_ipam_nope"), None);
    }
    /// Metric names (`eks_ipam_...`) mentioned in `text`.
    fn names_in(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = text;
        while let Some(i) = rest.find("eks_ipam_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            if name.len() > "eks_ipam_".len() {
                out.insert(name.to_string());
            }
            rest = &tail[end..];
        }
        out
    }

    /// The lines of a Markdown file from the heading `start` to the next
    /// heading of the same level.
    fn section<'a>(text: &'a str, start: &str) -> &'a str {
        let level = start.split(' ').next().unwrap_or("#");
        let from = text
            .find(&format!("\n{start}"))
            .unwrap_or_else(|| panic!("no section {start:?}"));
        let body = &text[from + 1..];
        let after_heading = body.find('\n').map_or(body.len(), |i| i + 1);
        let end = body[after_heading..]
            .find(&format!("\n{level} "))
            .map_or(body.len(), |i| after_heading + i);
        &body[..end]
    }

    fn catalogue_names() -> BTreeSet<String> {
        ALL.iter().map(|d| d.name.to_string()).collect()
    }

    #[test]
    fn readme_metrics_section_lists_exactly_the_catalogue() {
        let readme = include_str!("../../README.md");
        let documented = names_in(section(readme, "## Metrics"));
        let cat = catalogue_names();
        let undocumented: Vec<_> = cat.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&cat).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "README ## Metrics and src/render/catalogue.rs disagree:\n  exported but not in the README: {undocumented:?}\n  in the README but not exported: {unknown:?}"
        );
    }

    /// Contract names (design sections 5 and 8) the exporter does not export
    /// yet; each entry must go when its family lands in the catalogue.
    const CONTRACT_NOT_YET_EXPORTED: &[&str] = &[];

    #[test]
    fn design_contract_names_are_exported_or_listed_as_pending() {
        // docs/design.md is the repository's copy of the design contract
        // (kept equal to shared/design.md by `design_copy_is_current`).
        let design = include_str!("../../docs/design.md");
        let mut contract = names_in(section(design, "## 5."));
        contract.extend(names_in(section(design, "## 8.")));
        let cat = catalogue_names();
        let pending: BTreeSet<String> = CONTRACT_NOT_YET_EXPORTED
            .iter()
            .map(|s| s.to_string())
            .collect();
        for p in &pending {
            assert!(
                !cat.contains(p),
                "{p} is exported now: remove it from CONTRACT_NOT_YET_EXPORTED"
            );
            assert!(contract.contains(p), "{p} is not a contract name");
        }
        let missing: Vec<_> = contract
            .iter()
            .filter(|n| !cat.contains(*n) && !pending.contains(*n))
            .collect();
        assert!(
            missing.is_empty(),
            "contract names neither exported nor pending: {missing:?}"
        );
    }

    #[test]
    fn names_in_finds_whole_names_only() {
        let found =
            names_in("`eks_ipam_node_info{node}` and eks_ipam_finding, not eks_ipam_ alone");
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["eks_ipam_finding", "eks_ipam_node_info"]
        );
    }

    /// The copy in docs/ equals the maintainers' shared/design.md when that
    /// lies beside the repository (it does on the developers' machines and
    /// in CI); elsewhere (a crates.io build) there is nothing to compare.
    #[test]
    fn design_copy_is_current() {
        let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/design.md");
        let Ok(upstream) = std::fs::read_to_string(&shared) else {
            eprintln!("no {}: nothing to compare", shared.display());
            return;
        };
        assert!(
            upstream == include_str!("../../docs/design.md"),
            "docs/design.md differs from {}: copy it over (cp ../shared/design.md docs/design.md)",
            shared.display()
        );
    }
}
