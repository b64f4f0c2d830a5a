//! `plan`'s output: JSON as docs/design.md section 9 says, and a table.

use crate::model::plan::{FindingRef, Outcome, Recommendation, PLAN_ASSUMPTIONS};
use crate::model::steady_state::ASSUMPTIONS as POOL_ASSUMPTIONS;
use serde::Serialize;
use std::fmt::Write;

#[derive(Serialize)]
struct ChangeRow<'a> {
    name: &'a str,
    before: Option<&'a str>,
    after: &'a str,
}

#[derive(Serialize)]
struct NodeRow<'a, N: Serialize> {
    name: &'a str,
    before: &'a N,
    after: &'a N,
    needs_replacement: bool,
}

#[derive(Serialize)]
struct SubnetRow<'a, S: Serialize> {
    subnet_id: &'a str,
    before: &'a S,
    after: &'a S,
}

#[derive(Serialize)]
struct Document<'a, N: Serialize, S: Serialize, P: Serialize> {
    changes: Vec<ChangeRow<'a>>,
    nodes: Vec<NodeRow<'a, N>>,
    subnets: Vec<SubnetRow<'a, S>>,
    findings_resolved: &'a [FindingRef],
    findings_introduced: &'a [FindingRef],
    /// Per node: the pool ipamd settles at under the new settings.
    pools: &'a [P],
    assumptions: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recommendation: Option<&'a Recommendation>,
}

fn assumptions() -> Vec<&'static str> {
    PLAN_ASSUMPTIONS
        .iter()
        .chain(POOL_ASSUMPTIONS.iter())
        .copied()
        .collect()
}

pub(crate) fn json(o: &Outcome) -> String {
    json_with(o, None)
}

/// As [`json`], with `plan --recommend`'s proposal and reasons.
pub(crate) fn json_with(o: &Outcome, rec: Option<&Recommendation>) -> String {
    let doc = Document {
        recommendation: rec,
        changes: o
            .changes
            .iter()
            .map(|(name, before, after)| ChangeRow {
                name,
                before: before.as_deref(),
                after,
            })
            .collect(),
        nodes: o
            .before
            .nodes
            .iter()
            .filter_map(|b| {
                let a = o.after.nodes.iter().find(|a| a.name == b.name)?;
                Some(NodeRow {
                    name: &b.name,
                    before: b,
                    after: a,
                    needs_replacement: o.replaced.iter().any(|(n, _)| *n == b.name),
                })
            })
            .collect(),
        subnets: o
            .before
            .subnets
            .iter()
            .filter_map(|b| {
                let a = o.after.subnets.iter().find(|a| a.id == b.id)?;
                Some(SubnetRow {
                    subnet_id: &b.id,
                    before: b,
                    after: a,
                })
            })
            .collect(),
        findings_resolved: &o.resolved,
        findings_introduced: &o.introduced,
        pools: &o.pools,
        assumptions: assumptions(),
    };
    let mut s = serde_json::to_string_pretty(&doc)
        .unwrap_or_else(|e| format!("{{\"error\":\"serialization failed: {e}\"}}"));
    s.push('\n');
    s
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "?".to_string(), |v| v.to_string())
}

/// `a -> b`, or `a` when unchanged.
fn arrow(a: String, b: String) -> String {
    if a == b {
        a
    } else {
        format!("{a} -> {b}")
    }
}

fn finding_line(out: &mut String, f: &FindingRef) {
    let scope = [
        f.node.as_str(),
        f.subnet_id.as_str(),
        f.availability_zone.as_str(),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    let scope = if scope.is_empty() {
        "cluster".into()
    } else {
        scope
    };
    let _ = writeln!(out, "  {:<8} {} {}", f.severity.as_str(), f.code, scope);
}

/// The table: changes, nodes, subnets, findings, assumptions. Terminal
/// control characters in names are shown escaped, never sent raw.
pub(crate) fn table(o: &Outcome) -> String {
    table_with(o, None)
}

/// As [`table`], led by `plan --recommend`'s proposal and its reasons.
pub(crate) fn table_with(o: &Outcome, rec: Option<&Recommendation>) -> String {
    let clean = |s: &str| s.escape_debug().to_string();
    let mut out = String::new();
    if let Some(r) = rec {
        let _ = writeln!(
            out,
            "RECOMMENDATION ({} settings searched; goals: no blocked growth, no overcommit, {} free IPs per node with room)",
            r.searched, r.headroom
        );
        if !r.meets_goals {
            out.push_str("  no setting of the searched space meets every goal; the closest:\n");
        }
        for line in &r.reasons {
            let _ = writeln!(out, "  {}", clean(line));
        }
        let _ = writeln!(
            out,
            "  idle IPs over the nodes' pools: {} -> {}",
            r.idle_ips_before, r.idle_ips_after
        );
        for u in &r.unmet {
            let _ = writeln!(out, "  unmet: {}", clean(u));
        }
        out.push('\n');
    }
    out.push_str("CHANGES\n");
    for (name, before, after) in &o.changes {
        let _ = writeln!(
            out,
            "  {} {} -> {}",
            clean(name),
            before.as_deref().map_or("(unset)".to_string(), clean),
            clean(after)
        );
    }
    out.push_str("\nNODES (before -> after; * = only once Karpenter replaces the node)\n");
    let _ = writeln!(
        out,
        "  {:<44} {:>10} {:>10} {:>12} {:>10} {:>12} {:<26} {:<12}",
        "NODE",
        "CAPACITY",
        "MAX-PODS",
        "OVERCOMMIT",
        "WARM-IPS",
        "POOL-IPS",
        "GROWTH-AT-0-FREE",
        "BLOCKED"
    );
    for b in &o.before.nodes {
        let Some(a) = o.after.nodes.iter().find(|a| a.name == b.name) else {
            continue;
        };
        let star = if o.replaced.iter().any(|(n, _)| *n == b.name) {
            " *"
        } else {
            ""
        };
        let warm = |n: &crate::model::analysis::NodeAnalysis| {
            opt(n.ips.as_ref().map(|i| i.total - i.assigned))
        };
        let _ = writeln!(
            out,
            "  {:<44} {:>10} {:>10} {:>12} {:>10} {:>12} {:<26} {:<12}{star}",
            clean(&b.name),
            arrow(opt(b.pod_ip_capacity), opt(a.pod_ip_capacity)),
            arrow(opt(b.max_pods), opt(a.max_pods)),
            arrow(opt(b.pod_ip_overcommit), opt(a.pod_ip_overcommit)),
            arrow(warm(b), warm(a)),
            arrow(
                opt(b.ips.as_ref().map(|i| i.total)),
                opt(a.ips.as_ref().map(|i| i.total))
            ),
            arrow(
                opt(b.growth_at_zero_free.map(|g| g.as_str())),
                opt(a.growth_at_zero_free.map(|g| g.as_str()))
            ),
            arrow(opt(b.ip_growth_blocked), opt(a.ip_growth_blocked)),
        );
    }
    if !o.before.subnets.is_empty() {
        out.push_str(
            "\nSUBNETS (available IPs before -> after; + freed, - taken by the warm pools)\n",
        );
        for b in &o.before.subnets {
            let Some(a) = o.after.subnets.iter().find(|a| a.id == b.id) else {
                continue;
            };
            let delta = i128::from(a.available_ips) - i128::from(b.available_ips);
            let _ = writeln!(
                out,
                "  {:<26} {:<12} {:>18} ({delta:+})",
                clean(&b.id),
                b.zone.as_deref().map_or("?".to_string(), clean),
                arrow(b.available_ips.to_string(), a.available_ips.to_string()),
            );
        }
    }
    out.push_str("\nFINDINGS RESOLVED\n");
    if o.resolved.is_empty() {
        out.push_str("  none\n");
    }
    for f in &o.resolved {
        finding_line(&mut out, f);
    }
    out.push_str("\nFINDINGS INTRODUCED\n");
    if o.introduced.is_empty() {
        out.push_str("  none\n");
    }
    for f in &o.introduced {
        finding_line(&mut out, f);
    }
    out.push_str("\nASSUMPTIONS\n");
    for a in assumptions() {
        let _ = writeln!(out, "  - {a}");
    }
    out
}
