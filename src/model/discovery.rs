//! Enhanced subnet discovery (VPC CNI >= 1.18, on by default): the subnets
//! ipamd may create a node's next ENI in, as amazon-vpc-cni-k8s v1.23.1
//! decides it (`createENI`, `GetVpcSubnets`, `isSubnetValidForENICreation`,
//! `ValidSubnetTagsMatchingClusterName`, `IsSubnetExcluded` in
//! `pkg/awsutils/awsutils.go` at b52188387f2e).
//!
//! - Custom networking: the node's ENIConfig subnet, no tag checks.
//! - Discovery on: every subnet of the node's VPC and zone that is valid:
//!   tag `kubernetes.io/role/cni=0` excludes (the node's own subnet too);
//!   the node's subnet without the tag is valid (backwards compatible);
//!   any other subnet needs the tag with another value; a tagged subnet
//!   that carries `cni.networking.k8s.aws/cluster/*` tags is valid only
//!   for the cluster named by aws-node's `CLUSTER_NAME` (no filter when it
//!   is unset). ipamd tries them most free IPs first.
//! - Discovery off: the node's subnet, unless tagged `0`.

use super::cni::CniSettings;
use super::state::{AutoNodeClassState, SubnetSelectorTerm, SubnetState};
use std::collections::BTreeMap;

/// The discovery tag (`subnetDiscoveryTagKey`).
pub(crate) const CNI_TAG: &str = "kubernetes.io/role/cni";
/// Prefix of the cluster-restriction tags (`clusterTagKeyPrefix`).
pub(crate) const CLUSTER_TAG_PREFIX: &str = "cni.networking.k8s.aws/cluster/";

/// `getTagValue`: a missing tag and an empty value are the same ("").
fn tag<'a>(tags: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    tags.get(key).map(String::as_str).unwrap_or("")
}

/// The subnet is tagged `kubernetes.io/role/cni=0` (`IsSubnetExcluded`).
pub(crate) fn excluded(tags: &BTreeMap<String, String>) -> bool {
    tag(tags, CNI_TAG) == "0"
}

/// `ValidSubnetTagsMatchingClusterName`.
pub(crate) fn matches_cluster(tags: &BTreeMap<String, String>, cluster_name: Option<&str>) -> bool {
    let Some(name) = cluster_name.filter(|n| !n.is_empty()) else {
        return true;
    };
    let mine = format!("{CLUSTER_TAG_PREFIX}{name}");
    let has_cluster_tags = tags.keys().any(|k| k.starts_with(CLUSTER_TAG_PREFIX));
    !has_cluster_tags || tags.contains_key(&mine)
}

/// `isSubnetValidForENICreation`.
pub(crate) fn valid_for_new_enis(
    tags: &BTreeMap<String, String>,
    is_node_subnet: bool,
    cluster_name: Option<&str>,
) -> bool {
    match tag(tags, CNI_TAG) {
        "0" => false,
        "" => is_node_subnet,
        _ => matches_cluster(tags, cluster_name),
    }
}

/// The subnets a node's next ENI can be created in, most free IPs first
/// (ipamd's order); `None` when that cannot be known (the node's subnet,
/// or under custom networking its ENIConfig's, is not known).
/// `eniconfig_subnet`: the subnet of the node's ENIConfig, if known.
pub(crate) fn candidate_subnets<'a>(
    node_subnet: &str,
    subnets: &'a [SubnetState],
    s: &CniSettings,
    eniconfig_subnet: Option<&str>,
) -> Option<Vec<&'a SubnetState>> {
    if s.custom_networking {
        let id = eniconfig_subnet?;
        return subnets.iter().find(|x| x.id == id).map(|x| vec![x]);
    }
    let own = subnets.iter().find(|x| x.id == node_subnet)?;
    if !s.subnet_discovery {
        return Some(if excluded(&own.tags) {
            vec![]
        } else {
            vec![own]
        });
    }
    // Without the VPC and zone the siblings cannot be known: the node's
    // own subnet only, as without discovery (never invented headroom).
    let (Some(vpc), Some(zone)) = (&own.vpc_id, &own.zone) else {
        return Some(if excluded(&own.tags) {
            vec![]
        } else {
            vec![own]
        });
    };
    let mut out: Vec<&SubnetState> = subnets
        .iter()
        .filter(|x| x.vpc_id.as_ref() == Some(vpc) && x.zone.as_ref() == Some(zone))
        .filter(|x| valid_for_new_enis(&x.tags, x.id == own.id, s.cluster_name.as_deref()))
        .collect();
    out.sort_by(|a, b| b.available_ips.cmp(&a.available_ips).then(a.id.cmp(&b.id)));
    out.dedup_by(|a, b| a.id == b.id);
    Some(out)
}

/// An EC2 filter value: `*` any run of characters, `?` one (the EC2 API
/// reference, "Filters"); case-sensitive, as tag values are.
fn ec2_filter_matches(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // Classic two-pointer glob with one backtrack point: linear enough for tags.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(si) = star {
            i = si + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// The subnet is one a selector term selects, as the term's
/// `DescribeSubnets` would return it (Karpenter's `getFilterSets`: `*`
/// alone becomes a `tag-key` filter, any other value a `tag:<key>` filter,
/// and the filters of one term are ANDed).
pub(crate) fn term_selects(term: &SubnetSelectorTerm, subnet: &SubnetState) -> bool {
    match term {
        SubnetSelectorTerm::Id(id) => *id == subnet.id,
        SubnetSelectorTerm::Tags(want) => want.iter().all(|(k, v)| match subnet.tags.get(k) {
            None => false,
            Some(_) if v == "*" => true,
            Some(have) => ec2_filter_matches(v, have),
        }),
    }
}

/// The subnets an Auto Mode node's pods draw addresses from, most free IPs
/// first; `None` when that cannot be known (no zone, no selector terms, or
/// no known subnet in the zone that they select: a node runs there, so the
/// subnets were not read, e.g. a bundle's partial `subnets.json`).
///
/// EKS user guide at 013856044148 (`latest/ug/automode/create-node-class.adoc`,
/// `auto-networking.adoc`): with `podSubnetSelectorTerms`, pods get IPs from
/// the pod subnets, which "must be in the same AZ as the node subnet AZ",
/// and "the primary network interface of the node is in the node subnet,
/// and can't be used for Pods"; without them, prefixes come from the node's
/// subnet and secondary ENIs go to "the other subnets in the same AZ"
/// selected by `subnetSelectorTerms`, chosen "based on the number of
/// available IP addresses in each subnet".
pub(crate) fn auto_mode_candidates<'a>(
    class: &AutoNodeClassState,
    node_zone: Option<&str>,
    subnets: &'a [SubnetState],
) -> Option<Vec<&'a SubnetState>> {
    let zone = node_zone?;
    let terms = if class.pod_subnet_terms.is_empty() {
        &class.subnet_terms
    } else {
        &class.pod_subnet_terms
    };
    if terms.is_empty() {
        return None;
    }
    let mut out: Vec<&SubnetState> = subnets
        .iter()
        .filter(|x| x.zone.as_deref() == Some(zone))
        .filter(|x| terms.iter().any(|t| term_selects(t, x)))
        .collect();
    out.sort_by(|a, b| b.available_ips.cmp(&a.available_ips).then(a.id.cmp(&b.id)));
    out.dedup_by(|a, b| a.id == b.id);
    Some(out).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cni::EnvVar;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// (case, tags, is the node's subnet, valid)
    type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool, bool);

    /// amazon-vpc-cni-k8s `pkg/awsutils/awsutils_test.go` at b52188387f2e,
    /// `TestValidTagWithClusterSpecificTags` (CLUSTER_NAME=my-example-cluster)
    /// and the table after it that calls `isSubnetValidForENICreation`
    /// (no cluster tags; a nil tag value reads as "").
    #[test]
    fn validity_matches_ipamd() {
        const C: &str = "cni.networking.k8s.aws/cluster/";
        let mine = format!("{C}my-example-cluster");
        let other = format!("{C}some-other-cluster");
        let cluster = Some("my-example-cluster");
        #[rustfmt::skip]
        let rows: Vec<Row<'_>> = vec![
            ("CNI tag, no cluster tag", vec![(CNI_TAG, "1")], false, true),
            ("CNI tag and another cluster's tag", vec![(CNI_TAG, "1"), (&other, "shared")], false, false),
            ("CNI tag and both cluster tags", vec![(CNI_TAG, "1"), (&mine, "shared"), (&other, "shared")], false, true),
            ("cluster tag, no CNI tag", vec![(&mine, "shared")], false, false),
            ("primary, CNI tag, own cluster tag (value ignored)", vec![(CNI_TAG, "1"), (&mine, "not-shared")], true, true),
            ("primary, no CNI tag, other cluster tag", vec![(&other, "shared")], true, true),
            ("primary, no CNI tag, own cluster tag", vec![(&mine, "shared")], true, true),
            ("primary, no tags", vec![], true, true),
            ("primary tagged 0", vec![(CNI_TAG, "0")], true, false),
            ("primary tagged 1", vec![(CNI_TAG, "1")], true, true),
            ("primary, empty value", vec![(CNI_TAG, "")], true, true),
            ("primary, other tag only", vec![("some-other-tag", "value")], true, true),
            ("secondary without the tag", vec![("some-other-tag", "value")], false, false),
            ("secondary tagged 0", vec![(CNI_TAG, "0")], false, false),
            ("secondary tagged 1", vec![(CNI_TAG, "1")], false, true),
            ("secondary tagged true", vec![(CNI_TAG, "true")], false, true),
        ];
        for (name, t, primary, want) in rows {
            assert_eq!(
                valid_for_new_enis(&tags(&t), primary, cluster),
                want,
                "{name}"
            );
        }
    }

    /// (case, CLUSTER_NAME, tags, matches)
    type ClusterRow<'a> = (&'a str, Option<&'a str>, Vec<(String, &'a str)>, bool);

    /// `TestValidSubnetTagsMatchingClusterName`, same file and commit.
    #[test]
    fn cluster_tags_match_like_ipamd() {
        const C: &str = "cni.networking.k8s.aws/cluster/";
        #[rustfmt::skip]
        let rows: Vec<ClusterRow<'_>> = vec![
            ("empty CLUSTER_NAME", None, vec![(format!("{C}some-cluster"), "shared")], true),
            ("empty CLUSTER_NAME string", Some(""), vec![(format!("{C}some-cluster"), "shared")], true),
            ("no cluster tags", Some("my-cluster"), vec![(CNI_TAG.into(), "1")], true),
            ("matching cluster tag", Some("my-cluster"), vec![(format!("{C}my-cluster"), "shared")], true),
            ("different cluster tag", Some("my-cluster"), vec![(format!("{C}other-cluster"), "shared")], false),
            ("both tags", Some("my-cluster"), vec![(format!("{C}my-cluster"), "shared"), (format!("{C}other-cluster"), "shared")], true),
        ];
        for (name, cluster, t, want) in rows {
            let t: BTreeMap<String, String> =
                t.into_iter().map(|(k, v)| (k, v.to_string())).collect();
            assert_eq!(matches_cluster(&t, cluster), want, "{name}");
        }
    }

    fn subnet(id: &str, vpc: &str, zone: &str, free: u64, t: &[(&str, &str)]) -> SubnetState {
        SubnetState {
            id: id.into(),
            zone: Some(zone.into()),
            vpc_id: Some(vpc.into()),
            cidr: Some(("10.0.0.0".parse().unwrap(), 24)),
            available_ips: free,
            tags: tags(t),
            cidr_reservations: None,
        }
    }

    fn settings(env: &[(&str, &str)]) -> CniSettings {
        CniSettings::from_env(
            &env.iter()
                .map(|(k, v)| EnvVar::new(k, v))
                .collect::<Vec<_>>(),
        )
    }

    fn ids(v: Option<Vec<&SubnetState>>) -> Option<Vec<&str>> {
        v.map(|v| v.into_iter().map(|s| s.id.as_str()).collect())
    }

    /// (case, term, subnet id, subnet tags, selected). Semantics of
    /// karpenter-provider-aws `getFilterSets` (pkg/providers/subnet/subnet.go
    /// at 068749bd19f9) run through EC2's filter rules (`*`/`?` wildcards).
    type TermRow<'a> = (
        &'a str,
        SubnetSelectorTerm,
        &'a str,
        Vec<(&'a str, &'a str)>,
        bool,
    );

    #[test]
    fn selector_terms_select_like_describe_subnets() {
        let t = |pairs: &[(&str, &str)]| {
            SubnetSelectorTerm::Tags(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let id = |s: &str| SubnetSelectorTerm::Id(s.into());
        #[rustfmt::skip]
        let rows: Vec<TermRow<'_>> = vec![
            ("id matches", id("subnet-1"), "subnet-1", vec![], true),
            ("id differs", id("subnet-1"), "subnet-2", vec![("Name", "x")], false),
            ("one tag", t(&[("Name", "pods")]), "s", vec![("Name", "pods")], true),
            ("value differs", t(&[("Name", "pods")]), "s", vec![("Name", "pods-2")], false),
            ("case matters", t(&[("Name", "pods")]), "s", vec![("Name", "Pods")], false),
            ("all tags of a term (AND)", t(&[("a", "1"), ("b", "2")]), "s", vec![("a", "1")], false),
            ("all tags present", t(&[("a", "1"), ("b", "2")]), "s", vec![("a", "1"), ("b", "2"), ("c", "3")], true),
            ("* alone: the key exists (tag-key)", t(&[("kubernetes.io/role/pod", "*")]), "s", vec![("kubernetes.io/role/pod", "")], true),
            ("* alone, key missing", t(&[("kubernetes.io/role/pod", "*")]), "s", vec![], false),
            ("EC2 wildcard *", t(&[("Name", "pod-*-a")]), "s", vec![("Name", "pod-us-west-2-a")], true),
            ("EC2 wildcard * no match", t(&[("Name", "pod-*-a")]), "s", vec![("Name", "pod-us-west-2-b")], false),
            ("EC2 wildcard ?", t(&[("Name", "pod-?")]), "s", vec![("Name", "pod-1")], true),
            ("? is one character", t(&[("Name", "pod-?")]), "s", vec![("Name", "pod-12")], false),
            ("empty value matches only empty", t(&[("k", "")]), "s", vec![("k", "")], true),
            ("empty value, other value", t(&[("k", "")]), "s", vec![("k", "v")], false),
        ];
        for (name, term, sid, tg, want) in rows {
            let mut s = subnet(sid, "vpc-1", "a", 1, &tg);
            s.id = sid.into();
            assert_eq!(term_selects(&term, &s), want, "{name}");
        }
    }

    #[test]
    fn candidates_per_mode() {
        let all = vec![
            subnet("node", "vpc-1", "a", 0, &[]),
            subnet("cni-big", "vpc-1", "a", 4000, &[(CNI_TAG, "1")]),
            subnet("cni-small", "vpc-1", "a", 100, &[(CNI_TAG, "1")]),
            subnet("cni-off", "vpc-1", "a", 9000, &[(CNI_TAG, "0")]),
            subnet("other-zone", "vpc-1", "b", 9000, &[(CNI_TAG, "1")]),
            subnet("other-vpc", "vpc-2", "a", 9000, &[(CNI_TAG, "1")]),
            subnet("untagged", "vpc-1", "a", 9000, &[]),
            subnet(
                "other-cluster",
                "vpc-1",
                "a",
                9000,
                &[(CNI_TAG, "1"), ("cni.networking.k8s.aws/cluster/blue", "x")],
            ),
            subnet("eniconfig", "vpc-1", "a", 50, &[(CNI_TAG, "0")]),
        ];
        let on = settings(&[]);
        assert_eq!(
            ids(candidate_subnets("node", &all, &on, None)),
            Some(vec!["other-cluster", "cni-big", "cni-small", "node"]),
            "discovery is on by default; no CLUSTER_NAME: no cluster filter; most free first"
        );
        let named = settings(&[("CLUSTER_NAME", "green")]);
        assert_eq!(
            ids(candidate_subnets("node", &all, &named, None)),
            Some(vec!["cni-big", "cni-small", "node"])
        );
        let off = settings(&[("ENABLE_SUBNET_DISCOVERY", "false")]);
        assert_eq!(
            ids(candidate_subnets("node", &all, &off, None)),
            Some(vec!["node"])
        );
        let invalid = settings(&[("ENABLE_SUBNET_DISCOVERY", "nope")]);
        assert!(
            invalid.subnet_discovery,
            "ParseBool error: the default (true)"
        );
        // The node's own subnet tagged 0 is excluded, with or without discovery.
        let mut own_off = all.clone();
        own_off[0].tags = tags(&[(CNI_TAG, "0")]);
        assert_eq!(
            ids(candidate_subnets("node", &own_off, &named, None)),
            Some(vec!["cni-big", "cni-small"])
        );
        assert_eq!(
            ids(candidate_subnets("node", &own_off, &off, None)),
            Some(vec![])
        );
        // Custom networking: the ENIConfig subnet, tags not checked.
        let custom = settings(&[("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true")]);
        assert_eq!(
            ids(candidate_subnets("node", &all, &custom, Some("eniconfig"))),
            Some(vec!["eniconfig"])
        );
        assert_eq!(ids(candidate_subnets("node", &all, &custom, None)), None);
        // Unknown node subnet, or one without VPC: unknown / own only.
        assert_eq!(ids(candidate_subnets("gone", &all, &on, None)), None);
        let mut no_vpc = all.clone();
        no_vpc[0].vpc_id = None;
        assert_eq!(
            ids(candidate_subnets("node", &no_vpc, &on, None)),
            Some(vec!["node"])
        );
    }
}
