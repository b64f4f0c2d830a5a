//! The view that `/metrics`, the page and the CLI all render: the analysis
//! of a [`ClusterState`] plus the findings evaluated on it. Data flows one
//! way: state -> [`analysis::analyse`] -> [`findings::evaluate`] -> [`View`].

use super::analysis::{
    self, ApiCallCount, ClusterAnalysis, NodeAnalysis, SubnetAnalysis, ZoneAnalysis,
};
use super::findings::{self, Finding, Severity, Thresholds};
use super::state::ClusterState;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct View {
    /// RFC 3339 "now" of the data (bundle `capturedAt`, or wall clock live).
    pub(crate) generated_at: Option<String>,
    pub(crate) cluster: ClusterAnalysis,
    pub(crate) findings: Vec<Finding>,
    pub(crate) nodes: Vec<NodeAnalysis>,
    pub(crate) subnets: Vec<SubnetAnalysis>,
    pub(crate) zones: Vec<ZoneAnalysis>,
    pub(crate) api_calls: Vec<ApiCallCount>,
}

/// Builds the whole view. Pure: same state and thresholds, same view.
pub fn build(state: &ClusterState, thresholds: &Thresholds) -> View {
    let a = analysis::analyse(state);
    let findings = findings::evaluate(&a, thresholds);
    View {
        generated_at: a.generated_at,
        cluster: a.cluster,
        findings,
        nodes: a.nodes,
        subnets: a.subnets,
        zones: a.zones,
        api_calls: a.api_calls,
    }
}

impl View {
    /// The view limited to nodes whose name contains `node` (with the
    /// findings [`View::finding_in_scope`] keeps) and to findings of `min`
    /// severity or worse.
    pub(crate) fn filtered(mut self, node: Option<&str>, min: Severity) -> View {
        let findings = std::mem::take(&mut self.findings);
        self.findings = findings
            .into_iter()
            .filter(|f| f.severity >= min && self.finding_in_scope(f, node, None))
            .collect();
        self.nodes.retain(|n| node_in_scope(n, node, None));
        self
    }

    /// Whether a node filter (name contains `node`) and a zone filter keep a
    /// finding, the same on the page and in `diagnose --node`:
    /// - a node's finding: when its node matches both;
    /// - a subnet's or zone's finding: when it is in the zone filter's zone
    ///   and, under a node filter, in the zone of a matching node (what can
    ///   starve that node); kept when its zone is unknown;
    /// - a cluster-wide finding (no node, subnet or zone): always, since it is
    ///   often the cause of what the filtered nodes show.
    pub(crate) fn finding_in_scope(
        &self,
        f: &Finding,
        node: Option<&str>,
        zone: Option<&str>,
    ) -> bool {
        let node = node.filter(|s| !s.is_empty());
        let zone = zone.filter(|s| !s.is_empty());
        let matches = |n: &NodeAnalysis| node_in_scope(n, node, zone);
        if !f.node.is_empty() {
            return self.nodes.iter().any(|n| n.name == f.node && matches(n));
        }
        if f.subnet_id.is_empty() && f.availability_zone.is_empty() {
            return true;
        }
        let finding_zone = if f.availability_zone.is_empty() {
            self.subnets
                .iter()
                .find(|s| s.id == f.subnet_id)
                .and_then(|s| s.zone.as_deref())
        } else {
            Some(f.availability_zone.as_str())
        };
        let Some(fz) = finding_zone else {
            return true;
        };
        zone.is_none_or(|z| z == fz)
            && (node.is_none()
                || self
                    .nodes
                    .iter()
                    .any(|n| matches(n) && n.zone.as_deref() == Some(fz)))
    }
}

/// Whether a node passes a node filter (its name contains `node`) and a zone
/// filter; an empty filter passes everything.
pub(crate) fn node_in_scope(n: &NodeAnalysis, node: Option<&str>, zone: Option<&str>) -> bool {
    node.filter(|q| !q.is_empty())
        .is_none_or(|q| n.name.contains(q))
        && zone
            .filter(|z| !z.is_empty())
            .is_none_or(|z| n.zone.as_deref() == Some(z))
}

/// How much trouble the node is in: nodes with pods waiting for an IP first
/// (most pods in trouble now or soon: waiting + overcommit), then
/// overcommitted nodes, then nodes whose growth is blocked.
fn risk(n: &NodeAnalysis) -> (bool, u64, i64, bool) {
    let waiting = n.pods_waiting_for_ip.unwrap_or(0);
    let over = n.pod_ip_overcommit.unwrap_or(0);
    (
        waiting > 0,
        u64::from(waiting) + over.max(0) as u64,
        over,
        n.ip_growth_blocked.unwrap_or(false),
    )
}

/// Nodes riskiest first, ties by name.
pub(crate) fn by_risk<'a>(
    nodes: impl IntoIterator<Item = &'a NodeAnalysis>,
) -> Vec<&'a NodeAnalysis> {
    let mut v: Vec<&NodeAnalysis> = nodes.into_iter().collect();
    v.sort_by(|a, b| risk(b).cmp(&risk(a)).then_with(|| a.name.cmp(&b.name)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::findings::FindingCode;

    fn finding(node: &str, subnet: &str, zone: &str) -> Finding {
        Finding {
            code: FindingCode::SubnetIpsLow,
            severity: Severity::Warning,
            node: node.into(),
            subnet_id: subnet.into(),
            availability_zone: zone.into(),
            summary: String::new(),
            remediation: String::new(),
            evidence: Default::default(),
        }
    }

    fn view() -> View {
        use crate::model::fixtures::{Cluster, Node};
        let c = Cluster::new()
            .subnet("subnet-a", "us-west-2a", "10.0.0.0/24", 100)
            .subnet("subnet-b", "us-west-2b", "10.0.1.0/24", 100)
            .node(Node::new("n-a", "m5.large", 29).zone("us-west-2a"))
            .node(Node::new("n-b", "m5.large", 29).zone("us-west-2b"));
        build(&c.state, &Thresholds::default())
    }

    /// The page's and `diagnose --node`'s filter: cluster causes stay, other
    /// nodes' findings go, subnet/zone findings follow the node's zone.
    #[test]
    fn filters_keep_cluster_causes_and_what_the_node_draws_from() {
        let v = view();
        let keep =
            |f: &Finding, node: Option<&str>, zone: Option<&str>| v.finding_in_scope(f, node, zone);
        let cluster = finding("", "", "");
        for (node, zone) in [
            (Some("n-a"), None),
            (None, Some("us-west-2b")),
            (Some("n-a"), Some("us-west-2b")),
        ] {
            assert!(keep(&cluster, node, zone), "{node:?} {zone:?}");
        }
        assert!(keep(&finding("n-a", "", ""), Some("n-a"), None));
        assert!(!keep(&finding("n-b", "", ""), Some("n-a"), None));
        assert!(!keep(&finding("n-a", "", ""), None, Some("us-west-2b")));
        // A subnet finding: by its subnet's zone.
        assert!(keep(&finding("", "subnet-a", ""), Some("n-a"), None));
        assert!(!keep(&finding("", "subnet-b", ""), Some("n-a"), None));
        assert!(keep(&finding("", "subnet-b", ""), None, Some("us-west-2b")));
        // A zone finding: by its zone.
        assert!(keep(&finding("", "", "us-west-2a"), Some("n-a"), None));
        assert!(!keep(&finding("", "", "us-west-2a"), Some("n-b"), None));
        // Unfiltered: everything.
        assert!(
            keep(&finding("n-b", "", ""), None, None)
                && keep(&finding("", "subnet-b", ""), Some(""), None)
        );
        // An unknown subnet's zone is unknown: kept rather than hidden.
        assert!(keep(&finding("", "subnet-zz", ""), Some("n-a"), None));
        // diagnose --node filters the same way.
        let mut all = view();
        all.findings = vec![
            cluster.clone(),
            finding("n-b", "", ""),
            finding("", "subnet-a", ""),
        ];
        let f = all.filtered(Some("n-a"), Severity::Info);
        assert_eq!(f.findings.len(), 2);
        assert_eq!(f.nodes.len(), 1);
    }
}
