//! `plan`: what a settings change would do (docs/design.md section 9).
//!
//! Pure: today's [`ClusterState`] and a list of [`Change`]s give the state
//! once the change has reached every node ([`after_state`]), and two views
//! give the comparison ([`compare`]). The model runs unchanged on both: the
//! after-state is the state the cluster would report, not a formula.
//!
//! How a change reaches a node:
//! - aws-node settings: the DaemonSet template and every aws-node pod's env
//!   (a DaemonSet change rolls the pods; ipamd restarts with the new env);
//! - Karpenter's `RESERVED_ENIS` and an EC2NodeClass's `kubelet.maxPods`:
//!   Karpenter computes max pods when it launches a node, so a Karpenter
//!   node gets the new value only when replaced (`needs_replacement`); its
//!   `after` is the replacement's kubelet max pods (Karpenter's formula).

use super::capacity::MaxPodsSetting;
use super::env::{EnvValue, EnvVar};
use super::findings::{Finding, Severity};
use super::state::ClusterState;
use super::view::View;
use serde::Serialize;
use std::sync::Arc;

/// aws-node settings `plan` can change.
pub(crate) const AWS_NODE_SETTINGS: &[&str] = &[
    "WARM_IP_TARGET",
    "MINIMUM_IP_TARGET",
    "WARM_ENI_TARGET",
    "WARM_PREFIX_TARGET",
    "ENABLE_PREFIX_DELEGATION",
    "MAX_ENI",
];

/// One `--set NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// An aws-node env var (one of [`AWS_NODE_SETTINGS`]), value as written.
    AwsNode { name: &'static str, value: String },
    /// Karpenter's `RESERVED_ENIS`.
    ReservedEnis(u32),
    /// `--set ec2nodeclass/NAME.maxPods=N`.
    NodeClassMaxPods { nodeclass: String, max_pods: u32 },
}

impl Change {
    /// The name as the user wrote it, for `changes[].name`.
    pub(crate) fn name(&self) -> String {
        match self {
            Change::AwsNode { name, .. } => (*name).to_string(),
            Change::ReservedEnis(_) => "RESERVED_ENIS".into(),
            Change::NodeClassMaxPods { nodeclass, .. } => {
                format!("ec2nodeclass/{nodeclass}.maxPods")
            }
        }
    }

    pub(crate) fn value(&self) -> String {
        match self {
            Change::AwsNode { value, .. } => value.clone(),
            Change::ReservedEnis(n) => n.to_string(),
            Change::NodeClassMaxPods { max_pods, .. } => max_pods.to_string(),
        }
    }
}

/// Parses `NAME=VALUE`. Values are checked as strictly as the component that
/// reads them would need to act on them: a value ipamd or Karpenter would
/// silently read as 0 is refused here, not planned.
pub(crate) fn parse_set(arg: &str) -> Result<Change, String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("--set {arg:?}: expected NAME=VALUE"))?;
    let (name, value) = (name.trim(), value.trim());
    let count = |what: &str| -> Result<u32, String> {
        value
            .parse::<u32>()
            .map_err(|_| format!("--set {what}={value:?}: expected a whole number >= 0"))
    };
    if let Some(rest) = name.strip_prefix("ec2nodeclass/") {
        let nodeclass = rest
            .strip_suffix(".maxPods")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("--set {name}: expected ec2nodeclass/NAME.maxPods=N"))?;
        let max_pods = count(name)?;
        if max_pods == 0 {
            return Err(format!("--set {name}=0: maxPods must be at least 1"));
        }
        return Ok(Change::NodeClassMaxPods {
            nodeclass: nodeclass.to_string(),
            max_pods,
        });
    }
    if name == "RESERVED_ENIS" {
        return Ok(Change::ReservedEnis(count(name)?));
    }
    let Some(known) = AWS_NODE_SETTINGS.iter().find(|k| **k == name) else {
        return Err(format!(
            "--set {name}: not a setting plan can change (aws-node: {}; Karpenter: RESERVED_ENIS; EC2NodeClass: ec2nodeclass/NAME.maxPods)",
            AWS_NODE_SETTINGS.join(", ")
        ));
    };
    let value = match *known {
        "ENABLE_PREFIX_DELEGATION" => match value {
            "true" | "false" => value.to_string(),
            _ => return Err(format!("--set {name}={value:?}: expected true or false")),
        },
        // MAX_ENI: ipamd reads -1 as "no limit".
        "MAX_ENI" if value == "-1" => value.to_string(),
        _ => count(name)?.to_string(),
    };
    Ok(Change::AwsNode { name: known, value })
}

fn set_env(env: &mut Vec<EnvVar>, name: &str, value: &str) {
    // An `env` entry wins over `envFrom`, so replacing (or adding) the
    // literal is the whole change whatever the container read before.
    env.retain(|e| e.name != name);
    env.push(EnvVar {
        name: name.to_string(),
        value: EnvValue::Literal(value.to_string()),
    });
}

/// Today's value of a setting, as the spec says it (`None`: not set there).
pub(crate) fn current_value(state: &ClusterState, change: &Change) -> Option<String> {
    let literal = |env: &[EnvVar], name: &str| {
        env.iter()
            .rev()
            .find(|e| e.name == name)
            .map(|e| match &e.value {
                EnvValue::Literal(v) => v.clone(),
                EnvValue::ConfigMapKey { name, key, .. } => {
                    format!("<configMapKeyRef {name}/{key}>")
                }
                EnvValue::Unread(kind) => format!("<{kind}>"),
            })
    };
    match change {
        Change::AwsNode { name, .. } => state
            .aws_node
            .as_ref()?
            .as_ref()
            .and_then(|a| literal(&a.daemonset_env.env, name)),
        Change::ReservedEnis(_) => {
            let k = state.karpenter.as_ref()?.as_ref()?;
            k.args
                .iter()
                .find_map(|a| a.strip_prefix("--reserved-enis=").map(str::to_string))
                .or_else(|| literal(&k.env.env, "RESERVED_ENIS"))
        }
        Change::NodeClassMaxPods { nodeclass, .. } => state
            .ec2nodeclasses
            .as_ref()?
            .iter()
            .find(|c| &c.name == nodeclass)
            .and_then(|c| match &c.max_pods {
                Some(MaxPodsSetting::Fixed(n)) => Some(n.to_string()),
                Some(MaxPodsSetting::Expression(e)) => Some(e.clone()),
                None => None,
            }),
    }
}

/// Why a change cannot be planned on this state (the thing it changes is
/// not there).
pub(crate) fn check_applicable(state: &ClusterState, change: &Change) -> Result<(), String> {
    match change {
        Change::AwsNode { name, .. } => match &state.aws_node {
            Some(Some(_)) => Ok(()),
            _ => Err(format!(
                "--set {name}: the aws-node DaemonSet is unknown or absent"
            )),
        },
        Change::ReservedEnis(_) => match &state.karpenter {
            Some(Some(_)) => Ok(()),
            _ => Err("--set RESERVED_ENIS: no Karpenter controller found".into()),
        },
        Change::NodeClassMaxPods { nodeclass, .. } => {
            if state
                .ec2nodeclasses
                .iter()
                .flatten()
                .any(|c| &c.name == nodeclass)
            {
                Ok(())
            } else {
                Err(format!(
                    "--set ec2nodeclass/{nodeclass}.maxPods: no EC2NodeClass {nodeclass:?}"
                ))
            }
        }
    }
}

/// The state once every change has reached the configuration it changes
/// (the DaemonSet and every aws-node pod; Karpenter; the EC2NodeClass). Node
/// max pods and pools are adjusted by the caller from the model's answers
/// ([`with_replacements`], the pool simulation).
pub(crate) fn apply_settings(state: &ClusterState, changes: &[Change]) -> ClusterState {
    let mut after = state.clone();
    for c in changes {
        match c {
            Change::AwsNode { name, value } => {
                if let Some(Some(a)) = after.aws_node.as_mut() {
                    set_env(&mut a.daemonset_env.env, name, value);
                }
                for env in after.aws_node_pod_env.values_mut() {
                    set_env(&mut Arc::make_mut(env).env, name, value);
                }
            }
            Change::ReservedEnis(n) => {
                if let Some(Some(k)) = after.karpenter.as_mut() {
                    // The flag wins over the env (capacity::karpenter_reserved_enis).
                    k.args.retain(|a| !a.starts_with("--reserved-enis"));
                    set_env(&mut k.env.env, "RESERVED_ENIS", &n.to_string());
                }
            }
            Change::NodeClassMaxPods {
                nodeclass,
                max_pods,
            } => {
                for class in after.ec2nodeclasses.iter_mut().flatten() {
                    if &class.name == nodeclass {
                        class.max_pods = Some(MaxPodsSetting::Fixed(*max_pods));
                    }
                }
            }
        }
    }
    after
}

/// Karpenter nodes whose max pods would differ once replaced under the new
/// settings: (node, the replacement's max pods). `view` is the view of the
/// settings-applied state, where `karpenter_expected_max_pods` is what
/// Karpenter would now give a node of that type and class.
pub(crate) fn replacements(view: &View) -> Vec<(String, u32)> {
    view.nodes
        .iter()
        .filter_map(|n| {
            let expected = n.karpenter_expected_max_pods?;
            (n.max_pods != Some(expected)).then(|| (n.name.clone(), expected))
        })
        .collect()
}

/// `state` with each replaced node's kubelet max pods set to its
/// replacement's (the node as it will be once replaced).
pub(crate) fn with_replacements(state: &ClusterState, replaced: &[(String, u32)]) -> ClusterState {
    let mut after = state.clone();
    if let Some(nodes) = after.nodes.as_mut() {
        for n in nodes.iter_mut() {
            if let Some((_, pods)) = replaced.iter().find(|(name, _)| *name == n.name) {
                n.capacity_pods = Some(*pods);
            }
        }
    }
    after
}

/// A finding's identity across the two runs, and its severity.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FindingRef {
    pub(crate) code: &'static str,
    pub(crate) severity: Severity,
    pub(crate) node: String,
    pub(crate) subnet_id: String,
    pub(crate) availability_zone: String,
}

impl FindingRef {
    fn of(f: &Finding) -> Self {
        FindingRef {
            code: f.code.as_str(),
            severity: f.severity,
            node: f.node.clone(),
            subnet_id: f.subnet_id.clone(),
            availability_zone: f.availability_zone.clone(),
        }
    }

    fn key(&self) -> (&str, &str, &str, &str) {
        (
            self.code,
            &self.node,
            &self.subnet_id,
            &self.availability_zone,
        )
    }
}

/// (resolved, introduced): matched by (code, node, subnet, zone); a finding
/// whose severity rises is introduced at its new severity (section 9).
pub(crate) fn finding_changes(before: &View, after: &View) -> (Vec<FindingRef>, Vec<FindingRef>) {
    let b: Vec<FindingRef> = before.findings.iter().map(FindingRef::of).collect();
    let a: Vec<FindingRef> = after.findings.iter().map(FindingRef::of).collect();
    let resolved = b
        .iter()
        .filter(|f| !a.iter().any(|g| g.key() == f.key()))
        .cloned()
        .collect();
    let introduced = a
        .iter()
        .filter(|g| match b.iter().find(|f| f.key() == g.key()) {
            None => true,
            Some(f) => g.severity > f.severity,
        })
        .cloned()
        .collect();
    (resolved, introduced)
}

/// Exit code of `plan`: 1 when the change introduces a finding of warning or
/// worse, else 0.
pub(crate) fn exit_code(introduced: &[FindingRef]) -> u8 {
    u8::from(introduced.iter().any(|f| f.severity >= Severity::Warning))
}

/// What `plan` adds to the pool model's assumptions.
pub(crate) const PLAN_ASSUMPTIONS: &[&str] = &[
    "a changed aws-node setting reaches every node: the DaemonSet rolls its pods and ipamd restarts with the new env",
    "Karpenter's RESERVED_ENIS and an EC2NodeClass's maxPods reach a node only when Karpenter replaces it (max pods is fixed at launch): `after` is the replacement",
    "the IPs a node's pool gains or frees are drawn from or returned to its pod subnet (the ENIConfig's under custom networking); a subnet's available IPs change by that amount",
    "a node whose IP mode changes (ENABLE_PREFIX_DELEGATION) gets an unknown pool after the change: ipamd keeps the secondary IPs it holds",
];

use super::capacity::IpMode;
use super::findings::Thresholds;
use super::state::{IpamdAddress, IpamdCidr, IpamdEni, IpamdNodeState, IpamdPool};
use super::steady_state::{self, SimEni, SimNode, SteadyPool};
use super::view::{self as view_mod};

fn units_of(eni: &IpamdEni, mode: IpMode) -> SimEni {
    let mut e = SimEni {
        primary: eni.primary,
        units: 0,
        used_units: 0,
        assigned_ips: 0,
    };
    for c in eni
        .cidrs
        .iter()
        .filter(|c| c.prefix == (mode == IpMode::Prefix))
    {
        e.units += 1;
        let assigned = c.addresses.iter().filter(|a| a.assigned).count() as u32;
        e.assigned_ips += assigned;
        if assigned > 0 {
            e.used_units += 1;
        }
    }
    e
}

/// Whether an ENI is outside ipamd's pod-IP pool (see steady_state's
/// assumptions): its slot counts, its IPs do not.
fn outside_pool(eni: &IpamdEni) -> bool {
    eni.trunk || eni.efa || eni.excluded
}

/// Card 0's pool rebuilt from the simulated layout: the pool ENIs in order
/// (today's ids where the ENI existed), each with its pod IPs and its free
/// IPs or prefixes; ENIs outside the pool and other cards unchanged.
fn pool_from_layout(
    before: &IpamdPool,
    mode: IpMode,
    layout: &[SimEni],
    subnet: Option<&str>,
) -> IpamdPool {
    let pool_enis: Vec<&IpamdEni> = before.enis.iter().filter(|e| !outside_pool(e)).collect();
    let mut enis: Vec<IpamdEni> = before
        .enis
        .iter()
        .filter(|e| outside_pool(e))
        .cloned()
        .collect();
    let assigned = || IpamdAddress {
        assigned: true,
        unassigned_at: None,
    };
    for (i, sim) in layout.iter().enumerate() {
        let template = pool_enis.get(i);
        let mut eni = IpamdEni {
            id: template.map_or_else(|| format!("eni-plan-{i}"), |t| t.id.clone()),
            primary: sim.primary,
            subnet_id: template
                .and_then(|t| t.subnet_id.clone())
                .or_else(|| subnet.map(str::to_string)),
            ipv6_prefixes: template.map_or(0, |t| t.ipv6_prefixes),
            ..Default::default()
        };
        // The other mode's CIDRs (none in a pure pool) stay as they were.
        if let Some(t) = template {
            eni.cidrs.extend(
                t.cidrs
                    .iter()
                    .filter(|c| c.prefix != (mode == IpMode::Prefix))
                    .cloned(),
            );
        }
        match mode {
            IpMode::SecondaryIp => {
                for k in 0..sim.units {
                    let mut c = IpamdCidr::default();
                    if k < sim.assigned_ips {
                        c.addresses.push(assigned());
                    }
                    eni.cidrs.push(c);
                }
            }
            IpMode::Prefix => {
                let mut left = sim.assigned_ips;
                for k in 0..sim.units {
                    let mut c = IpamdCidr {
                        prefix: true,
                        ..Default::default()
                    };
                    if k < sim.used_units {
                        // Every used prefix holds at least one pod IP; the
                        // rest fill the first ones (16 at most each).
                        let here = if k + 1 == sim.used_units {
                            left
                        } else {
                            left.saturating_sub(sim.used_units - k - 1)
                                .clamp(1, super::capacity::IPS_PER_PREFIX)
                        };
                        for _ in 0..here {
                            c.addresses.push(assigned());
                        }
                        left -= here.min(left);
                    }
                    eni.cidrs.push(c);
                }
            }
        }
        enis.push(eni);
    }
    IpamdPool {
        raw_total_ips: 0,
        raw_assigned_ips: 0,
        duplicate_cidrs: 0,
        enis,
        other_cards: before.other_cards.clone(),
    }
}

/// One node's simulated pool under the after-view's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct NodePool {
    pub(crate) node: String,
    pub(crate) total_ips_before: u32,
    #[serde(flatten)]
    pub(crate) after: SteadyPool,
}

/// Runs ipamd's rule forward on every node whose pool, settings and limits
/// are known, and writes the pools it settles at into `state` (with each
/// pod subnet's available IPs moved by what the pools took or freed).
fn settle_pools(state: &mut ClusterState, before: &View, settled: &View) -> Vec<NodePool> {
    let mut out = Vec::new();
    let mut subnet_delta: std::collections::BTreeMap<String, i64> = Default::default();
    for n in &settled.nodes {
        let old = before.nodes.iter().find(|b| b.name == n.name);
        let (Some(settings), Some(mode), Some(itype)) =
            (&n.settings, n.ip_mode, n.instance_type.as_deref())
        else {
            continue;
        };
        let Some(ipamd) = state.ipamd.get(&n.name).cloned() else {
            continue;
        };
        let Some(pool) = ipamd.pool.as_ref() else {
            continue;
        };
        if old.and_then(|o| o.ip_mode) != Some(mode) {
            let mut st = (*ipamd).clone();
            st.pool = None;
            state.ipamd.insert(n.name.clone(), Arc::new(st));
            continue;
        }
        let limits = state
            .instance_types
            .iter()
            .flatten()
            .find(|l| l.instance_type == itype)
            .or_else(|| super::limits::embedded(itype));
        let (Some(limits), Some(enis_max)) = (limits, n.enis_max) else {
            continue;
        };
        let outside = pool.enis.iter().filter(|e| outside_pool(e)).count() as u32;
        let sim = SimNode {
            mode,
            max_ips_per_eni: super::capacity::ips_per_eni(mode, limits),
            max_enis: enis_max.saturating_sub(outside),
            max_pods: n.max_pods,
            enis: pool
                .enis
                .iter()
                .filter(|e| !outside_pool(e))
                .map(|e| units_of(e, mode))
                .collect(),
        };
        let before_total: u32 = sim.enis.iter().map(|e| e.units).sum::<u32>()
            * if mode == IpMode::Prefix {
                super::capacity::IPS_PER_PREFIX
            } else {
                1
            };
        let after = steady_state::converge(settings, &sim);
        if let Some(subnet) = &n.subnet_id {
            *subnet_delta.entry(subnet.clone()).or_default() +=
                i64::from(before_total) - i64::from(after.total_ips);
        }
        let new_pool = pool_from_layout(pool, mode, &after.layout, n.subnet_id.as_deref());
        state.ipamd.insert(
            n.name.clone(),
            Arc::new(IpamdNodeState {
                pool: Some(new_pool),
                metrics: ipamd.metrics.clone(),
            }),
        );
        out.push(NodePool {
            node: n.name.clone(),
            total_ips_before: before_total,
            after,
        });
    }
    if let Some(subnets) = state.subnets.as_mut() {
        for s in subnets.iter_mut() {
            if let Some(d) = subnet_delta.get(&s.id) {
                s.available_ips = u64::try_from(
                    i64::try_from(s.available_ips)
                        .unwrap_or(i64::MAX)
                        .saturating_add(*d),
                )
                .unwrap_or(0);
            }
        }
    }
    out
}

/// Both views and what changed between them.
pub(crate) struct Outcome {
    pub(crate) changes: Vec<(String, Option<String>, String)>,
    pub(crate) before: View,
    pub(crate) after: View,
    /// Nodes that get the new value only when replaced: (node, replacement's max pods).
    pub(crate) replaced: Vec<(String, u32)>,
    pub(crate) pools: Vec<NodePool>,
    pub(crate) resolved: Vec<FindingRef>,
    pub(crate) introduced: Vec<FindingRef>,
}

/// The plan for `changes` on `state`. Errors: a change that has nothing to
/// act on here.
pub(crate) fn run(
    state: &ClusterState,
    changes: &[Change],
    t: &Thresholds,
) -> Result<Outcome, String> {
    for c in changes {
        check_applicable(state, c)?;
    }
    let before = view_mod::build(state, t);
    let settled_state = apply_settings(state, changes);
    let settled = view_mod::build(&settled_state, t);
    // Only nodes whose Karpenter max pods this change moves.
    let replaced: Vec<(String, u32)> = replacements(&settled)
        .into_iter()
        .filter(|(name, pods)| {
            before
                .nodes
                .iter()
                .find(|b| &b.name == name)
                .is_some_and(|b| b.karpenter_expected_max_pods != Some(*pods))
        })
        .collect();
    let mut after_state = with_replacements(&settled_state, &replaced);
    let replaced_view = view_mod::build(&after_state, t);
    let pools = settle_pools(&mut after_state, &before, &replaced_view);
    let after = view_mod::build(&after_state, t);
    let (resolved, introduced) = finding_changes(&before, &after);
    Ok(Outcome {
        changes: changes
            .iter()
            .map(|c| (c.name(), current_value(state, c), c.value()))
            .collect(),
        before,
        after,
        replaced,
        pools,
        resolved,
        introduced,
    })
}

/// What `plan --recommend` proposes and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Recommendation {
    pub(crate) headroom: u32,
    /// Candidates tried.
    pub(crate) searched: usize,
    /// Whether the proposal meets every goal (else: the closest one).
    pub(crate) meets_goals: bool,
    /// Idle IPs (pool - assigned) over every node with a known pool.
    pub(crate) idle_ips_before: u64,
    pub(crate) idle_ips_after: u64,
    /// One line per proposed setting.
    pub(crate) reasons: Vec<String>,
    /// Nodes that miss a goal under the proposal (and which goal).
    pub(crate) unmet: Vec<String>,
}

fn idle_ips(v: &View) -> u64 {
    v.nodes
        .iter()
        .filter_map(|n| n.ips.as_ref())
        .map(|i| u64::from(i.total.saturating_sub(i.assigned)))
        .sum()
}

/// The goals a node misses in `after`: blocked growth, overcommit, fewer
/// than `headroom` free IPs (or than its room, when it cannot hold more).
fn unmet_goals(after: &View, headroom: u32) -> Vec<String> {
    let mut out = Vec::new();
    for n in &after.nodes {
        if n.ip_growth_blocked == Some(true) {
            out.push(format!("{}: IP growth blocked", n.name));
        }
        if n.pod_ip_overcommit.is_some_and(|o| o > 0) {
            out.push(format!("{}: more pods than pod IPs", n.name));
        }
        if let (Some(ips), Some(cap)) = (&n.ips, n.pod_ip_capacity) {
            let room = cap.saturating_sub(ips.assigned);
            let free = ips.total.saturating_sub(ips.assigned);
            if free < headroom.min(room) {
                out.push(format!(
                    "{}: {free} free IPs, fewer than {}",
                    n.name,
                    headroom.min(room)
                ));
            }
        }
    }
    out
}

/// Searches WARM_IP_TARGET (0: none, 1..=32) x MINIMUM_IP_TARGET (0, or
/// today's) and, with Karpenter, RESERVED_ENIS (today's, 1) for the
/// settings that meet the goals (no blocked growth, no overcommit, at
/// least `headroom` free IPs per node that has room, no new finding of
/// warning or worse) and hold the fewest idle IPs; ties go to fewer changes.
pub(crate) fn recommend(
    state: &ClusterState,
    headroom: u32,
    t: &Thresholds,
) -> Result<(Vec<Change>, Outcome, Recommendation), String> {
    let ds = state
        .aws_node
        .as_ref()
        .and_then(|a| a.as_ref())
        .map(|a| super::cni::CniSettings::from_container(&a.daemonset_env, &state.config_maps))
        .ok_or("--recommend: the aws-node DaemonSet is unknown or absent")?;
    let karpenter = matches!(&state.karpenter, Some(Some(_)));
    let mut mins = vec![0];
    if ds.minimum_ip_target > 0 {
        mins.push(ds.minimum_ip_target);
    }
    let reserved: Vec<Option<u32>> = if karpenter {
        vec![None, Some(1)]
    } else {
        vec![None]
    };
    let mut best: Option<(bool, usize, u64, usize, Vec<Change>, Outcome)> = None;
    let mut searched = 0;
    for warm in 0..=32u32 {
        for &min in &mins {
            for r in &reserved {
                let mut changes = Vec::new();
                if warm != ds.warm_ip_target {
                    changes.push(Change::AwsNode {
                        name: "WARM_IP_TARGET",
                        value: warm.to_string(),
                    });
                }
                if min != ds.minimum_ip_target {
                    changes.push(Change::AwsNode {
                        name: "MINIMUM_IP_TARGET",
                        value: min.to_string(),
                    });
                }
                if let Some(r) = r {
                    changes.push(Change::ReservedEnis(*r));
                }
                searched += 1;
                let o = run(state, &changes, t)?;
                let unmet = unmet_goals(&o.after, headroom).len()
                    + usize::from(exit_code(&o.introduced) > 0);
                let idle = idle_ips(&o.after);
                // Meets the goals first, then fewest misses, idle IPs, changes.
                let key = (unmet == 0, unmet, idle, changes.len());
                let better = match &best {
                    None => true,
                    Some((ok, n, i, c, _, _)) => {
                        (key.0 && !ok) || (key.0 == *ok && (key.1, key.2, key.3) < (*n, *i, *c))
                    }
                };
                if better {
                    best = Some((key.0, key.1, key.2, key.3, changes, o));
                }
            }
        }
    }
    let (meets, _, idle_after, _, changes, o) = best.ok_or("--recommend: nothing to search")?;
    let idle_before = idle_ips(&o.before);
    let mut reasons = Vec::new();
    for c in &changes {
        reasons.push(match c {
            Change::AwsNode { name: "WARM_IP_TARGET", value } if value == "0" => {
                "WARM_IP_TARGET=0 (none): whole spare ENIs (WARM_ENI_TARGET) meet the goals with the fewest idle IPs".to_string()
            }
            Change::AwsNode { name: "WARM_IP_TARGET", value } => format!(
                "WARM_IP_TARGET={value}: the warm pool that keeps at least {headroom} free IPs on every node with room, with the fewest idle IPs \
                 (a lower target means more EC2 calls when pods churn: raise --headroom for bursts)"
            ),
            Change::AwsNode { name: "MINIMUM_IP_TARGET", value } if value == "0" => {
                "MINIMUM_IP_TARGET=0 (none): a floor is not needed for the goals and holds idle IPs".to_string()
            }
            Change::AwsNode { name, value } => format!("{name}={value}: part of the least idle setting that meets the goals"),
            Change::ReservedEnis(n) => format!(
                "RESERVED_ENIS={n}: Karpenter stops counting an ENI its nodes cannot use for pods (no more pods than pod IPs once the nodes are replaced)"
            ),
            Change::NodeClassMaxPods { .. } => c.name(),
        });
    }
    if changes.is_empty() {
        reasons.push("today's settings already meet the goals with the fewest idle IPs of the searched space".into());
    }
    let unmet = unmet_goals(&o.after, headroom);
    Ok((
        changes,
        o,
        Recommendation {
            headroom,
            searched,
            meets_goals: meets,
            idle_ips_before: idle_before,
            idle_ips_after: idle_after,
            reasons,
            unmet,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_arguments_parse_or_say_why_not() {
        assert_eq!(
            parse_set("WARM_IP_TARGET=10"),
            Ok(Change::AwsNode {
                name: "WARM_IP_TARGET",
                value: "10".into()
            })
        );
        assert_eq!(parse_set("RESERVED_ENIS=1"), Ok(Change::ReservedEnis(1)));
        assert_eq!(
            parse_set("ec2nodeclass/default.maxPods=58"),
            Ok(Change::NodeClassMaxPods {
                nodeclass: "default".into(),
                max_pods: 58
            })
        );
        assert_eq!(
            parse_set("MAX_ENI=-1"),
            Ok(Change::AwsNode {
                name: "MAX_ENI",
                value: "-1".into()
            })
        );
        for (arg, says) in [
            ("WARM_IP_TARGET", "expected NAME=VALUE"),
            ("WARM_IP_TARGET=ten", "whole number"),
            // ipamd would read " 1" or "-3" as something else: refused.
            ("MINIMUM_IP_TARGET=-3", "whole number"),
            ("ENABLE_PREFIX_DELEGATION=yes", "true or false"),
            ("WARM_IP_TARGT=1", "not a setting"),
            ("RESERVED_ENIS=x", "whole number"),
            ("ec2nodeclass/.maxPods=5", "ec2nodeclass/NAME.maxPods"),
            ("ec2nodeclass/a.maxPods=0", "at least 1"),
        ] {
            let e = parse_set(arg).unwrap_err();
            assert!(e.contains(says), "{arg}: {e}");
        }
    }
}
