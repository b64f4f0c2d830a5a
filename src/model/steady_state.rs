//! The pool ipamd converges to under given settings (issue 18 item 2), for
//! `plan`: ipamd's pool manager run forward on network card 0 from the
//! node's current pool, its pods fixed, until the pool stops changing.
//!
//! One pass is `updateIPPoolIfRequired` (amazon-vpc-cni-k8s v1.23.1,
//! b52188387f2e2f10bf289ace929d6a63b176a4fa, `pkg/ipamd/ipamd.go`):
//! `isDatastorePoolTooLow` -> `increaseDatastorePool` (`tryAssignIPs` /
//! `tryAssignPrefixes` on the first ENI with room, else `tryAllocateENI` if
//! `hasRoomForEni`); otherwise `isDatastorePoolTooHigh` ->
//! `decreaseDatastorePool` (`tryUnassignCidrsFromAll`); then, whichever ran,
//! `shouldRemoveExtraENIs` (on the stats taken before the pass) ->
//! `tryFreeENI` (`RemoveUnusedENIFromStore` / `getDeletableENI`,
//! `pkg/ipamd/datastore/data_store.go`). The targets come from
//! [`datastore_target_state`] and [`is_pool_too_low`], not re-derived here.

use super::capacity::{IpMode, IPS_PER_PREFIX};
use super::cni::CniSettings;
use super::growth::{datastore_target_state, is_pool_too_low, PoolStats, TargetState};
use serde::Serialize;

/// What the model assumes beyond ipamd's code; `plan` prints these.
pub(crate) const ASSUMPTIONS: &[&str] = &[
    "pods are fixed at today's count and keep the IPs (and ENIs) they hold: no pod starts, stops or moves",
    "every ipamd timer has elapsed between passes (IP_COOLDOWN_PERIOD, 30 s between pool decreases, 1-minute minimum ENI age): timers delay the outcome, they are not modelled",
    "EC2 and the subnet grant every request in full (no InsufficientFreeAddressesInSubnet, no API error or throttling)",
    "network card 0 only; trunk, EFA-only and excluded ENIs are not in the pool (their slots are already taken out of the ENI limit)",
    "the node is schedulable and ipamd is not terminating (a cordon stops ENI attach/free and IP growth)",
    "ipamd walks its ENIs in Go map order (random): the model assigns on the first ENI with room (primary first) and releases IPs and frees ENIs newest first; when several ENIs qualify, the ENI count (and, if the freeable ENIs differ in size, the total) is one possible outcome",
    "the pool holds only secondary IPs or only /28 prefixes: after a change of ENABLE_PREFIX_DELEGATION that is true of a replaced node, not of a running one",
    "where ipamd never settles (e.g. WARM_ENI_TARGET=0 or WARM_PREFIX_TARGET=0 with every IP in use: it adds an ENI or a prefix, then frees it), the largest pool of the cycle is reported and converged is false",
];

/// Passes run at most; real runs settle in a handful.
const MAX_STEPS: u32 = 1000;

/// One ENI of card 0's datastore that can hold pod IPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SimEni {
    /// The instance's primary ENI: never freed; skipped for pod IPs under
    /// custom networking (`GetAllocatableENIs(.., skipPrimary)`).
    pub(crate) primary: bool,
    /// Secondary IPs (secondary-IP mode) or /28 prefixes (prefix mode).
    pub(crate) units: u32,
    /// Units holding at least one pod IP: `assigned_ips` in secondary-IP
    /// mode; in prefix mode `units - free prefixes` (ipamd only releases a
    /// /28 with no pod IP).
    pub(crate) used_units: u32,
    /// Pod IPs assigned on this ENI.
    pub(crate) assigned_ips: u32,
}

/// A node's card-0 pool and the limits ipamd works within.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimNode {
    pub(crate) mode: IpMode,
    /// ipamd's `maxIPsPerENI`: IPv4 per ENI - 1, x16 in prefix mode
    /// ([`super::capacity::ips_per_eni`]).
    pub(crate) max_ips_per_eni: u32,
    /// ENIs the datastore may hold before `hasRoomForEni` says no: MAX_ENI or
    /// the card-0 limit, less unmanaged, trunk (attached or reserved) and
    /// excluded ENIs. Includes the primary.
    pub(crate) max_enis: u32,
    /// The node's max pods: total IPs at or above it are never "too low".
    pub(crate) max_pods: Option<u32>,
    /// In attach order, the primary first.
    pub(crate) enis: Vec<SimEni>,
}

/// The pool ipamd settles at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SteadyPool {
    /// IPs in the pool (prefixes x16 in prefix mode).
    pub(crate) total_ips: u32,
    pub(crate) assigned_ips: u32,
    /// ENIs in the pool, the primary included.
    pub(crate) enis: u32,
    /// Passes that changed the pool.
    pub(crate) steps: u32,
    /// False when ipamd cycles (the largest pool of the cycle is reported)
    /// or the pass limit was hit.
    pub(crate) converged: bool,
    /// The ENIs of that pool, in attach order (for `plan`'s after-state).
    #[serde(skip)]
    pub(crate) layout: Vec<SimEni>,
}

/// The pool ipamd reaches from `node` under `s`. Pods are fixed and every
/// timer is taken as elapsed (see [`ASSUMPTIONS`]).
pub(crate) fn converge(s: &CniSettings, node: &SimNode) -> SteadyPool {
    let mode = node.mode;
    let mut enis: Vec<SimEni> = node.enis.iter().map(|e| normalised(mode, *e)).collect();
    // StartNodeIPPoolManager skips updateIPPoolIfRequired altogether.
    if s.provisioning_disabled() {
        return steady(mode, &enis, 0, true);
    }
    let mut seen = vec![enis.clone()];
    for pass in 1..=MAX_STEPS {
        let next = step(s, node, &enis);
        if next == enis {
            return steady(mode, &enis, pass - 1, true);
        }
        if let Some(start) = seen.iter().position(|p| *p == next) {
            let peak = seen[start..]
                .iter()
                .max_by_key(|p| stats(mode, p.as_slice()).total_ips)
                .unwrap_or(&next);
            return steady(mode, peak, pass, false);
        }
        seen.push(next.clone());
        enis = next;
    }
    steady(mode, &enis, MAX_STEPS, false)
}

fn steady(mode: IpMode, enis: &[SimEni], steps: u32, converged: bool) -> SteadyPool {
    let st = stats(mode, enis);
    SteadyPool {
        total_ips: st.total_ips,
        assigned_ips: st.assigned_ips,
        enis: enis.len() as u32,
        steps,
        converged,
        layout: enis.to_vec(),
    }
}

/// Makes the counts consistent (assigned within the units, used units
/// within what the assigned IPs can occupy) so the passes never underflow.
fn normalised(mode: IpMode, e: SimEni) -> SimEni {
    let per = unit_ips(mode);
    let assigned = e.assigned_ips.min(e.units.saturating_mul(per));
    let used = match mode {
        IpMode::SecondaryIp => assigned,
        IpMode::Prefix => e
            .used_units
            .max(assigned.div_ceil(per))
            .min(e.units.min(assigned)),
    };
    SimEni {
        primary: e.primary,
        units: e.units,
        used_units: used,
        assigned_ips: assigned,
    }
}

fn unit_ips(mode: IpMode) -> u32 {
    match mode {
        IpMode::SecondaryIp => 1,
        IpMode::Prefix => IPS_PER_PREFIX,
    }
}

/// Units one ENI holds at most: `maxIPsPerENI` or `maxPrefixesPerENI`.
fn unit_limit(node: &SimNode) -> u32 {
    match node.mode {
        IpMode::SecondaryIp => node.max_ips_per_eni,
        IpMode::Prefix => node.max_ips_per_eni / IPS_PER_PREFIX,
    }
}

fn free_ips(e: &SimEni, per: u32) -> u32 {
    e.units.saturating_mul(per).saturating_sub(e.assigned_ips)
}

/// `GetIPStats("4")` and `GetFreePrefixes` of the simulated pool.
fn stats(mode: IpMode, enis: &[SimEni]) -> PoolStats {
    let (mut units, mut assigned, mut free_units) = (0u32, 0u32, 0u32);
    for e in enis {
        units = units.saturating_add(e.units);
        assigned = assigned.saturating_add(e.assigned_ips);
        free_units = free_units.saturating_add(e.units.saturating_sub(e.used_units));
    }
    PoolStats {
        total_ips: units.saturating_mul(unit_ips(mode)),
        assigned_ips: assigned,
        cooldown_ips: 0,
        free_prefixes: match mode {
            IpMode::SecondaryIp => 0,
            IpMode::Prefix => free_units,
        },
    }
}

/// One `updateIPPoolIfRequired` pass on card 0.
fn step(s: &CniSettings, node: &SimNode, enis: &[SimEni]) -> Vec<SimEni> {
    let mut next = enis.to_vec();
    let st = stats(node.mode, enis);
    if is_pool_too_low(s, &st, node.mode, node.max_ips_per_eni, node.max_pods) {
        increase(s, node, &mut next);
    } else if is_pool_too_high(s, &st, node.mode) {
        decrease(s, node.mode, &mut next);
    }
    if should_remove_extra_enis(s, node, &st, &next) {
        if let Some(i) = deletable_eni(s, node.mode, &next) {
            next.remove(i);
        }
    }
    next
}

/// `getPrefixesNeeded`: at least one /28; the IP targets' shortage when
/// set, else WARM_PREFIX_TARGET's (`datastorePrefixTargetState`).
fn prefixes_needed(s: &CniSettings, st: &PoolStats, target: TargetState) -> u32 {
    let short = if target.defined {
        target.short
    } else {
        s.warm_prefix_target.saturating_sub(st.free_prefixes)
    };
    short.max(1)
}

/// `increaseDatastorePool`: units on the first allocatable ENI with room,
/// else a new ENI carrying `GetENIResourcesToAllocate` units.
fn increase(s: &CniSettings, node: &SimNode, enis: &mut Vec<SimEni>) {
    let st = stats(node.mode, enis);
    let target = datastore_target_state(s, &st, node.mode);
    let limit = unit_limit(node);
    // (tryAssignIPs/tryAssignPrefixes request, new ENI's units). Without IP
    // targets secondary-IP mode asks for a whole ENI's worth.
    let (assign, new_eni) = match node.mode {
        IpMode::SecondaryIp if target.defined => (target.short, target.short.min(limit)),
        IpMode::SecondaryIp => (limit, limit),
        IpMode::Prefix => {
            let needed = prefixes_needed(s, &st, target);
            (needed, needed.min(limit))
        }
    };
    // tryAssignIPs returns early when the IP targets are met.
    if assign > 0 {
        let skip_primary = s.custom_networking;
        let room = enis
            .iter_mut()
            .find(|e| !(skip_primary && e.primary) && e.units < limit);
        if let Some(e) = room {
            e.units += (limit - e.units).min(assign);
            return;
        }
    }
    if (enis.len() as u32) < node.max_enis && new_eni > 0 {
        enis.push(SimEni {
            primary: false,
            units: new_eni,
            used_units: 0,
            assigned_ips: 0,
        });
    }
}

/// `isDatastorePoolTooHigh`: with IP targets, anything over them; in prefix
/// mode without them, more free /28s than WARM_PREFIX_TARGET; never in
/// secondary-IP mode without IP targets (WARM_ENI_TARGET frees whole ENIs only).
fn is_pool_too_high(s: &CniSettings, st: &PoolStats, mode: IpMode) -> bool {
    let target = datastore_target_state(s, st, mode);
    if target.defined {
        return target.over > 0;
    }
    match mode {
        IpMode::SecondaryIp => false,
        IpMode::Prefix => st.free_prefixes > s.warm_prefix_target,
    }
}

/// `tryUnassignCidrsFromAll`: releases `over` unused units
/// (`FindFreeableCidrs`: no pod IP in them), ENI by ENI, newest first.
fn decrease(s: &CniSettings, mode: IpMode, enis: &mut [SimEni]) {
    let st = stats(mode, enis);
    let target = datastore_target_state(s, &st, mode);
    let mut over = if target.defined {
        target.over
    } else {
        // computeExtraPrefixesOverWarmTarget: 0 outside prefix mode.
        match mode {
            IpMode::SecondaryIp => 0,
            IpMode::Prefix => st.free_prefixes.saturating_sub(s.warm_prefix_target),
        }
    };
    for e in enis.iter_mut().rev() {
        if over == 0 {
            break;
        }
        let n = over.min(e.units.saturating_sub(e.used_units));
        e.units -= n;
        over -= n;
    }
}

/// `CheckFreeableENIexists`: a secondary ENI with no pod IP.
fn freeable_eni_exists(enis: &[SimEni]) -> bool {
    enis.iter().any(|e| !e.primary && e.assigned_ips == 0)
}

/// `shouldRemoveExtraENIs`, on the stats taken before the pass: always with
/// IP targets; else when a whole ENI's worth of IPs is free beyond
/// WARM_ENI_TARGET (WARM_PREFIX_TARGET in prefix mode), or, in prefix mode,
/// when some secondary ENI holds no pod.
fn should_remove_extra_enis(
    s: &CniSettings,
    node: &SimNode,
    st: &PoolStats,
    enis: &[SimEni],
) -> bool {
    if s.ip_targets_defined() {
        return true;
    }
    let warm = match node.mode {
        IpMode::SecondaryIp => s.warm_eni_target,
        IpMode::Prefix => s.warm_prefix_target,
    };
    let extra =
        u64::from(st.available()) >= (u64::from(warm) + 1) * u64::from(node.max_ips_per_eni);
    extra || (node.mode == IpMode::Prefix && freeable_eni_exists(enis))
}

fn others(enis: &[SimEni], i: usize) -> impl Iterator<Item = &SimEni> {
    enis.iter()
        .enumerate()
        .filter(move |&(j, _)| j != i)
        .map(|(_, e)| e)
}

/// `getDeletableENI`, newest first: not the primary, no pod IP, and the
/// other ENIs alone still meet WARM_IP_TARGET and MINIMUM_IP_TARGET (rounded
/// up to whole /28s in prefix mode) and, in prefix mode, WARM_PREFIX_TARGET.
fn deletable_eni(s: &CniSettings, mode: IpMode, enis: &[SimEni]) -> Option<usize> {
    let per = unit_ips(mode);
    let rounded = |target: u32| -> u64 {
        let t = u64::from(target);
        match mode {
            IpMode::SecondaryIp => t,
            IpMode::Prefix => t.div_ceil(u64::from(per)) * u64::from(per),
        }
    };
    let required = |i: usize| {
        let free: u64 = others(enis, i).map(|o| u64::from(free_ips(o, per))).sum();
        let total: u64 = others(enis, i)
            .map(|o| u64::from(o.units) * u64::from(per))
            .sum();
        let free_prefixes: u64 = others(enis, i)
            .map(|o| u64::from(o.units.saturating_sub(o.used_units)))
            .sum();
        (s.warm_ip_target != 0 && free < rounded(s.warm_ip_target))
            || (s.minimum_ip_target != 0 && total < rounded(s.minimum_ip_target))
            || (mode == IpMode::Prefix
                && s.warm_prefix_target != 0
                && free_prefixes < u64::from(s.warm_prefix_target))
    };
    (0..enis.len())
        .rev()
        .find(|&i| !enis[i].primary && enis[i].assigned_ips == 0 && !required(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cni::EnvVar;

    fn settings(pairs: &[(&str, &str)]) -> CniSettings {
        let env: Vec<EnvVar> = pairs.iter().map(|(n, v)| EnvVar::new(n, v)).collect();
        CniSettings::from_env(&env)
    }

    /// Secondary-IP mode ENI: `units` IPs, `assigned` of them used by pods.
    fn eni(units: u32, assigned: u32) -> SimEni {
        SimEni {
            primary: false,
            units,
            used_units: assigned,
            assigned_ips: assigned,
        }
    }

    fn primary(units: u32, assigned: u32) -> SimEni {
        SimEni {
            primary: true,
            ..eni(units, assigned)
        }
    }

    /// Prefix-mode primary ENI: `prefixes` /28s, `used` of them with pods.
    fn primary_prefixes(prefixes: u32, used: u32, assigned: u32) -> SimEni {
        SimEni {
            primary: true,
            units: prefixes,
            used_units: used,
            assigned_ips: assigned,
        }
    }

    fn node(mode: IpMode, max_ips: u32, max_enis: u32, max_pods: u32, enis: &[SimEni]) -> SimNode {
        SimNode {
            mode,
            max_ips_per_eni: max_ips,
            max_enis,
            max_pods: Some(max_pods),
            enis: enis.to_vec(),
        }
    }

    /// m5.large: 3 ENIs x 10 IPv4 -> 9 pod IPs an ENI, max pods 29.
    fn m5_large(enis: &[SimEni]) -> SimNode {
        node(IpMode::SecondaryIp, 9, 3, 29, enis)
    }

    /// m5.4xlarge: 8 ENIs x 30 IPv4 -> 29 pod IPs an ENI, max pods 234.
    fn m5_4xlarge(enis: &[SimEni]) -> SimNode {
        node(IpMode::SecondaryIp, 29, 8, 234, enis)
    }

    /// m5.large in prefix mode: 9 /28s an ENI (144 IPs), max pods 110.
    fn m5_large_pd(enis: &[SimEni]) -> SimNode {
        node(IpMode::Prefix, 144, 3, 110, enis)
    }

    /// (total IPs, ENIs, passes that changed the pool, converged).
    fn run(s: &CniSettings, n: &SimNode) -> (u32, u32, u32, bool) {
        let p = converge(s, n);
        assert_eq!(
            p.assigned_ips,
            n.enis.iter().map(|e| e.assigned_ips).sum::<u32>()
        );
        (p.total_ips, p.enis, p.steps, p.converged)
    }

    // ---- upstream tables (amazon-vpc-cni-k8s v1.23.1,
    // b52188387f2e2f10bf289ace929d6a63b176a4fa) ----

    /// `testIncreaseIPPool` via `TestIncreaseIPPoolDefault` /
    /// `TestIncreaseIPPoolSubnetDiscoveryUnfilledENI`, pkg/ipamd/ipamd_test.go
    /// L546-556, L583-755 (with `assertAllocationExternalCalls`):
    /// maxIPsPerENI 14, maxENI 4, WARM_ENI_TARGET 1. An empty datastore gets
    /// `AllocENI(.., 14)`; with an empty primary ENI the first request is
    /// `AllocIPAddresses(primary, 14)` (upstream then fails it on the
    /// subnet, which the model assumes never happens).
    #[test]
    fn upstream_increase_ip_pool() {
        let s = settings(&[("WARM_ENI_TARGET", "1")]);
        let empty = node(IpMode::SecondaryIp, 14, 4, 500, &[]);
        assert_eq!(step(&s, &empty, &[]), vec![eni(14, 0)]);
        let unfilled = node(IpMode::SecondaryIp, 14, 4, 500, &[primary(0, 0)]);
        assert_eq!(step(&s, &unfilled, &unfilled.enis), vec![primary(14, 0)]);
    }

    /// `testIncreasePrefixPool` via `TestIncreasePrefixPoolDefault` /
    /// `...SubnetDiscoveryUnfilledENI`, same file, L757-924: prefix mode,
    /// maxPrefixesPerENI 16 (maxIPsPerENI 256), maxENI 4, WARM_PREFIX_TARGET
    /// 1: `AllocENI(.., 1)` on an empty datastore, `AllocIPAddresses(primary,
    /// 1)` (one /28) with an empty primary.
    #[test]
    fn upstream_increase_prefix_pool() {
        let s = settings(&[
            ("ENABLE_PREFIX_DELEGATION", "true"),
            ("WARM_PREFIX_TARGET", "1"),
        ]);
        let empty = node(IpMode::Prefix, 256, 4, 500, &[]);
        let one_prefix = SimEni {
            primary: false,
            units: 1,
            used_units: 0,
            assigned_ips: 0,
        };
        assert_eq!(step(&s, &empty, &[]), vec![one_prefix]);
        let unfilled = node(IpMode::Prefix, 256, 4, 500, &[primary_prefixes(0, 0, 0)]);
        assert_eq!(
            step(&s, &unfilled, &unfilled.enis),
            vec![primary_prefixes(1, 0, 0)]
        );
    }

    /// `TestTryAddIPToENI`, same file, L1067-1146: WARM_IP_TARGET 3,
    /// maxIPsPerENI 14, maxENI 4, empty datastore -> `AllocENI(.., 3)`.
    #[test]
    fn upstream_try_add_ip_to_eni() {
        let s = settings(&[("WARM_IP_TARGET", "3")]);
        let empty = node(IpMode::SecondaryIp, 14, 4, 500, &[]);
        assert_eq!(step(&s, &empty, &[]), vec![eni(3, 0)]);
    }

    /// `TestDecreaseIPPool`, same file, L929-979: WARM_IP_TARGET 1, two ENIs
    /// (both added as primary upstream) with 2 IPs and 1 pod each: over 1;
    /// one decrease releases one IP (one `DeallocIPAddresses`), after which
    /// over is 0 and another decrease releases nothing.
    #[test]
    fn upstream_decrease_ip_pool() {
        let s = settings(&[("WARM_IP_TARGET", "1")]);
        let n = node(
            IpMode::SecondaryIp,
            14,
            4,
            500,
            &[primary(2, 1), primary(2, 1)],
        );
        let st = |enis: &[SimEni]| {
            let t = datastore_target_state(&s, &stats(n.mode, enis), n.mode);
            (t.short, t.over, t.defined)
        };
        assert_eq!(st(&n.enis), (0, 1, true));
        let once = step(&s, &n, &n.enis);
        assert_eq!(stats(n.mode, &once).total_ips, 3);
        assert_eq!(st(&once), (0, 0, true));
        assert_eq!(step(&s, &n, &once), once);
    }

    /// `TestWarmENIInteractions`, pkg/ipamd/datastore/data_store_test.go
    /// L1174-1274, the rows without trunk/EFA ENIs (not modelled):
    /// eni-1 primary 2 IPs 2 pods, eni-2 2 IPs, eni-3 1 IP.
    #[test]
    fn upstream_warm_eni_interactions() {
        let targets = |warm: &str, min: &str| {
            settings(&[("WARM_IP_TARGET", warm), ("MINIMUM_IP_TARGET", min)])
        };
        let three = [primary(2, 2), eni(2, 0), eni(1, 0)];
        let mode = IpMode::SecondaryIp;
        assert_eq!(deletable_eni(&targets("3", "1"), mode, &three), None);
        assert_eq!(deletable_eni(&targets("1", "5"), mode, &three), None);
        // Only 2 free IPs are needed, which eni-2 has: eni-3 goes.
        assert_eq!(deletable_eni(&targets("2", "4"), mode, &three), Some(2));
        let two = &three[..2];
        assert_eq!(deletable_eni(&targets("0", "3"), mode, two), None);
        assert_eq!(deletable_eni(&targets("0", "2"), mode, two), Some(1));
    }

    /// `TestDataStore_CheckFreeableENIexists`, same file, L2287-2302 (trunk
    /// and EFA rows not modelled).
    #[test]
    fn upstream_check_freeable_eni_exists() {
        assert!(!freeable_eni_exists(&[]));
        assert!(!freeable_eni_exists(&[primary(0, 0)]));
        assert!(freeable_eni_exists(&[primary(0, 0), eni(0, 0)]));
    }

    /// `TestGetWarmIPTargetStateWithPDenabled`, pkg/ipamd/ipamd_test.go
    /// L1444-1489: two free /28s with WARM_IP_TARGET 5 are over by one
    /// prefix; the pass releases exactly that one.
    #[test]
    fn upstream_prefix_over_warm_ip_target() {
        let s = settings(&[
            ("ENABLE_PREFIX_DELEGATION", "true"),
            ("WARM_IP_TARGET", "5"),
        ]);
        let n = m5_large_pd(&[primary_prefixes(2, 0, 0)]);
        let st = stats(n.mode, &n.enis);
        assert!(is_pool_too_high(&s, &st, n.mode));
        assert_eq!(step(&s, &n, &n.enis), vec![primary_prefixes(1, 0, 0)]);
    }

    // ---- hand-worked convergence ----

    /// docs/design.md incident 2, on the incident's one-ENI m5.4xlarge
    /// (29 IPs an ENI). MINIMUM_IP_TARGET=25 alone, 25 of 25 used: short =
    /// max(0 - 0, 25 - 25) = 0, over = 0 -> nothing ever happens.
    /// WARM_IP_TARGET=10 added: short 10 -> +min(29-25, 10) = 4 (29); short
    /// 10-4 = 6, no room -> new ENI with min(6, 29) = 6 (35); available 10 =
    /// warm, over min(0, 35-25) = 0; the new ENI is required (others' free
    /// 4 < 10). Steady 35 on 2 ENIs.
    #[test]
    fn incident_two_minimum_alone_never_grows() {
        let n = m5_4xlarge(&[primary(25, 25)]);
        let stalled = settings(&[("MINIMUM_IP_TARGET", "25"), ("WARM_ENI_TARGET", "1")]);
        assert_eq!(run(&stalled, &n), (25, 1, 0, true));
        let fixed = settings(&[("MINIMUM_IP_TARGET", "25"), ("WARM_IP_TARGET", "10")]);
        assert_eq!(run(&fixed, &n), (35, 2, 2, true));
    }

    /// The same settings on m5.large (9 IPs an ENI, 3 ENIs): 25 pods fill
    /// 9 + 9 + 7. WARM_IP_TARGET=10: +2 on the third ENI (27), then no room
    /// and no ENI slot: stuck at 27, 2 short of warm.
    #[test]
    fn incident_two_on_m5_large_runs_out_of_enis() {
        let n = m5_large(&[primary(9, 9), eni(9, 9), eni(7, 7)]);
        let stalled = settings(&[("MINIMUM_IP_TARGET", "25")]);
        assert_eq!(run(&stalled, &n), (25, 3, 0, true));
        let fixed = settings(&[("MINIMUM_IP_TARGET", "25"), ("WARM_IP_TARGET", "10")]);
        assert_eq!(run(&fixed, &n), (27, 3, 1, true));
    }

    /// Default WARM_ENI_TARGET=1 on m5.large: grow while available < 1 x 9,
    /// a whole ENI (9 IPs) at a time; free an empty ENI when available >=
    /// (1 + 1) x 9 = 18.
    #[test]
    fn default_warm_eni_target_keeps_one_enis_worth_free() {
        let s = settings(&[]);
        // 5 pods: available 4 < 9 -> second ENI (18); available 13: stays.
        assert_eq!(run(&s, &m5_large(&[primary(9, 5)])), (18, 2, 1, true));
        // Fresh node, no pods: the primary filled (9 free) is the spare.
        assert_eq!(run(&s, &m5_large(&[primary(0, 0)])), (9, 1, 1, true));
        // 14 pods: available 4 -> third ENI (27), available 13.
        let n = m5_large(&[primary(9, 9), eni(9, 5)]);
        assert_eq!(run(&s, &n), (27, 3, 1, true));
        // 23 pods: available 4 < 9 but all 3 ENIs attached: capped at 27.
        let n = m5_large(&[primary(9, 9), eni(9, 9), eni(9, 5)]);
        assert_eq!(run(&s, &n), (27, 3, 0, true));
        // 5 pods on 3 full ENIs: available 22 >= 18 -> newest empty ENI
        // freed (18, available 13 < 18): stays.
        let n = m5_large(&[primary(9, 5), eni(9, 0), eni(9, 0)]);
        assert_eq!(run(&s, &n), (18, 2, 1, true));
    }

    /// WARM_IP_TARGET lowered on an m5.4xlarge holding 58 IPs (2 ENIs).
    #[test]
    fn lowered_warm_ip_target_releases_down_to_target() {
        // 12 pods, WARM_IP_TARGET=5: over = 46 - 5 = 41; the second ENI's
        // 29 and 12 of the primary's go (17); the empty ENI is not needed
        // (others' free 5 >= 5) and is freed. Steady 12 + 5 = 17.
        let n = m5_4xlarge(&[primary(29, 12), eni(29, 0)]);
        let warm = settings(&[("WARM_IP_TARGET", "5")]);
        assert_eq!(run(&warm, &n), (17, 1, 1, true));
        // + MINIMUM_IP_TARGET=20: over = min(41, 58 - 20) = 38 -> 20 left;
        // then over = min(8 - 5, 20 - 20) = 0. Never below the minimum.
        let min = settings(&[("WARM_IP_TARGET", "5"), ("MINIMUM_IP_TARGET", "20")]);
        assert_eq!(run(&min, &n), (20, 1, 1, true));
        // Pods on both ENIs (20 + 3), WARM_IP_TARGET=2: over = 35 - 2 = 33:
        // 26 unused off the second ENI, 7 off the primary; assigned IPs
        // stay, and the second ENI (3 pods) is kept. Steady 23 + 2 = 25.
        let spread = m5_4xlarge(&[primary(29, 20), eni(29, 3)]);
        let two = settings(&[("WARM_IP_TARGET", "2")]);
        assert_eq!(run(&two, &spread), (25, 2, 1, true));
        let p = converge(&two, &spread);
        assert_eq!(p.assigned_ips, 23);
    }

    /// Prefix mode on m5.large (9 /28s an ENI, 144 IPs).
    #[test]
    fn prefix_mode_targets_move_whole_prefixes() {
        let wpt = settings(&[
            ("ENABLE_PREFIX_DELEGATION", "true"),
            ("WARM_PREFIX_TARGET", "1"),
        ]);
        // 10 pods in one /28: available 6 < 16 x 1 -> +max(1, 1 - 0) = 1
        // prefix (32); then 1 free prefix, not > 1: stays.
        let n = m5_large_pd(&[primary_prefixes(1, 1, 10)]);
        assert_eq!(run(&wpt, &n), (32, 1, 1, true));
        // 5 /28s, 10 pods in one: 4 free > 1 -> release 4 - 1 = 3 (32).
        let n = m5_large_pd(&[primary_prefixes(5, 1, 10)]);
        assert_eq!(run(&wpt, &n), (32, 1, 1, true));
        // t3.small (3 ENIs x 4 IPv4 -> 3 /28s an ENI, max pods 110), primary
        // full (48 pods): new ENI with min(1, 3) = 1 prefix (64). The empty
        // ENI is freeable (CheckFreeableENIexists) but required for
        // WARM_PREFIX_TARGET (others' free /28s 0 < 1).
        let n = node(IpMode::Prefix, 48, 3, 110, &[primary_prefixes(3, 3, 48)]);
        assert_eq!(run(&wpt, &n), (64, 2, 1, true));

        let warm = settings(&[
            ("ENABLE_PREFIX_DELEGATION", "true"),
            ("WARM_IP_TARGET", "5"),
        ]);
        // 14 pods in one /28: short = 5 - 2 = 3 IPs -> ceil(3/16) = 1
        // prefix (32); available 18, over = floor(13/16) = 0.
        let n = m5_large_pd(&[primary_prefixes(1, 1, 14)]);
        assert_eq!(run(&warm, &n), (32, 1, 1, true));
        // 4 /28s, 14 pods in one: over = floor((50 - 5)/16) = 2 -> 32.
        let n = m5_large_pd(&[primary_prefixes(4, 1, 14)]);
        assert_eq!(run(&warm, &n), (32, 1, 1, true));
    }

    /// Max pods: total >= max pods is never too low, but a step may
    /// overshoot it (a whole ENI or `short` IPs at once).
    #[test]
    fn max_pods_stops_growth() {
        let s = settings(&[]);
        // m5.large, max pods 17, primary full: 9 < 17 -> ENI of 9 (18).
        let n = node(IpMode::SecondaryIp, 9, 3, 17, &[primary(9, 9)]);
        assert_eq!(run(&s, &n), (18, 2, 1, true));
        // Max pods 9: already there, nothing happens.
        let n = node(IpMode::SecondaryIp, 9, 3, 9, &[primary(9, 9)]);
        assert_eq!(run(&s, &n), (9, 1, 0, true));
        // Incident 2 fixed, max pods 29: +4 (29 >= 29) and no second ENI.
        let warm = settings(&[("MINIMUM_IP_TARGET", "25"), ("WARM_IP_TARGET", "10")]);
        let n = node(IpMode::SecondaryIp, 29, 8, 29, &[primary(25, 25)]);
        assert_eq!(run(&warm, &n), (29, 1, 1, true));
    }

    /// MAX_ENI=1: the primary fills (+min(9 - 5, 9) = 4) and stays at 9,
    /// still "too low" (available 4 < 9) with no ENI slot.
    #[test]
    fn one_eni_stops_at_the_primarys_room() {
        let s = settings(&[("MAX_ENI", "1")]);
        let n = node(IpMode::SecondaryIp, 9, 1, 29, &[primary(5, 5)]);
        assert_eq!(run(&s, &n), (9, 1, 1, true));
    }

    /// Custom networking: the primary takes no pod IPs, so the first pass
    /// attaches an ENI (9); available 9 = 1 x 9: stays.
    #[test]
    fn custom_networking_skips_the_primary() {
        let s = settings(&[("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true")]);
        assert_eq!(run(&s, &m5_large(&[primary(0, 0)])), (9, 2, 1, true));
    }

    /// WARM_ENI_TARGET=0 with every IP used: too low at available 0 ->
    /// ENI of 9 (18); then available 9 >= (0 + 1) x 9 -> the empty ENI is
    /// freed, and again. Reported: the peak (18), not converged.
    #[test]
    fn zero_warm_targets_with_a_full_pool_cycle() {
        let s = settings(&[("WARM_ENI_TARGET", "0")]);
        assert_eq!(run(&s, &m5_large(&[primary(9, 9)])), (18, 2, 2, false));
        // Prefix mode, WARM_PREFIX_TARGET unset (0): +1 /28, then 1 free >
        // 0 -> released, and again.
        let pd = settings(&[("ENABLE_PREFIX_DELEGATION", "true")]);
        let n = m5_large_pd(&[primary_prefixes(1, 1, 16)]);
        assert_eq!(run(&pd, &n), (32, 1, 2, false));
    }

    #[test]
    fn provisioning_disabled_keeps_the_pool() {
        let s = settings(&[("DISABLE_NETWORK_RESOURCE_PROVISIONING", "true")]);
        assert_eq!(run(&s, &m5_large(&[primary(9, 9)])), (9, 1, 0, true));
    }
}
