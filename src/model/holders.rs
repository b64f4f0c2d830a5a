//! Who holds a subnet's addresses (docs/design.md section 8,
//! `eks_ipam_subnet_ips{holder}`): every ENI in the subnet
//! (`DescribeNetworkInterfaces` by subnet), joined with the ipamd pools,
//! the subnet's CIDR reservations (`GetSubnetCidrReservations`) and the 5
//! addresses AWS keeps in every subnet.
//!
//! EC2 facts this rests on:
//! - AWS reserves the first four addresses and the last of every subnet
//!   (Amazon VPC User Guide, "Subnet CIDR blocks").
//! - A `prefix` reservation is where EC2 places /28 prefixes; its unused
//!   addresses are not in the subnet's `AvailableIpAddressCount` (AWS's EKS
//!   scale tests reserve only half of a subnet for prefixes because "if we
//!   reserve full /12 for prefix, AvailableIpAddressCount will become 0 and
//!   IPAMD will skip it", awslabs/eks-perf-tests#511; moto 5.2.1 models the
//!   same, `moto/ec2/models/subnets.py` `create_cidr_reservation`). An
//!   `explicit` reservation is never assigned by EC2 on its own (VPC User
//!   Guide, "Subnet CIDR reservations").
//!
//! The holders always add up to the subnet's size. `free` is the smaller of
//! the free addresses the visible ENIs and reservations leave and EC2's
//! own `AvailableIpAddressCount`: addresses EC2 counts as used that no
//! visible ENI holds (ENIs of other accounts in a shared VPC, or a change
//! between the two calls) are `other`.

use super::state::{
    CidrReservation, EniKind, IpamdPool, NetworkInterfaceState, ReservationKind, SubnetState,
};
use serde::Serialize;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Addresses AWS reserves in every subnet.
pub(crate) const AWS_RESERVED: u64 = 5;

/// A subnet's addresses by holder. `pod` and `warm` are `None` when an ENI
/// of a cluster node sits in the subnet without that node's ipamd pool
/// (agent down, Windows, Auto Mode): how its secondary addresses split
/// between pods and the warm pool is unknown.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(crate) struct SubnetHolders {
    /// Assigned to pods: ipamd's assigned addresses on the cluster's node
    /// ENIs, and the cluster's branch ENIs (security groups for pods).
    pub(crate) pod: Option<u64>,
    /// On the cluster's node ENIs (secondary IPs and prefix addresses) and
    /// not assigned to a pod: ipamd's warm pool.
    pub(crate) warm: Option<u64>,
    /// Primary addresses of the cluster's node ENIs (trunk included).
    pub(crate) eni_primary: u64,
    /// Everyone else's: load balancers, endpoints, other clusters, leaked
    /// ENIs, ENIs not visible to this account.
    pub(crate) other: u64,
    /// AWS's 5 and the unused addresses of CIDR reservations.
    pub(crate) reserved: u64,
    pub(crate) free: u64,
    /// Of `reserved`: unused addresses in `prefix` reservations, which EC2
    /// hands out as /28 prefixes although `AvailableIpAddressCount` leaves
    /// them out.
    pub(crate) prefix_reserved_free: u64,
    /// Of `other`: addresses EC2 counts as used that no visible ENI holds.
    pub(crate) other_not_visible: u64,
}

impl SubnetHolders {
    /// `(holder, value)` in exposition order; unknown ones are left out.
    pub(crate) fn samples(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("pod", self.pod),
            ("warm", self.warm),
            ("eni_primary", Some(self.eni_primary)),
            ("other", Some(self.other)),
            ("reserved", Some(self.reserved)),
            ("free", Some(self.free)),
        ]
        .into_iter()
        .filter_map(|(h, v)| v.map(|v| (h, v)))
    }
}

/// Whose an ENI in the subnet is.
pub(crate) enum EniOwner<'a> {
    /// Attached to one of the cluster's nodes; the node's ipamd pool when
    /// known.
    Node(Option<&'a IpamdPool>),
    /// Not a cluster node's.
    Other,
}

/// Inclusive address ranges, merged.
fn merge(mut r: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    r.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if u64::from(lo) <= u64::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn span(lo: u32, hi: u32) -> u64 {
    u64::from(hi) - u64::from(lo) + 1
}

/// Addresses of `[lo, hi]` inside the merged `ranges`.
fn covered(ranges: &[(u32, u32)], lo: u32, hi: u32) -> u64 {
    ranges
        .iter()
        .filter(|r| r.0 <= hi && r.1 >= lo)
        .map(|r| span(r.0.max(lo), r.1.min(hi)))
        .sum()
}

pub(crate) fn cidr_range((net, len): (Ipv4Addr, u8)) -> (u32, u32) {
    let len = u32::from(len.min(32));
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    let lo = u32::from(net) & mask;
    (lo, lo | !mask)
}

/// Address count of an ENI: its private IPs and every prefix's addresses.
fn addresses(e: &NetworkInterfaceState) -> u64 {
    e.private_ips.len() as u64
        + e.prefixes
            .iter()
            .map(|p| {
                let (lo, hi) = cidr_range(*p);
                span(lo, hi)
            })
            .sum::<u64>()
}

/// Unused addresses of the subnet's reservations of `kind` (reservations
/// clipped to the subnet; AWS's own 5 are not a reservation's to count).
fn reserved_unused(
    subnet: (u32, u32),
    reservations: &[CidrReservation],
    held: &[(u32, u32)],
    kind: Option<ReservationKind>,
) -> u64 {
    let mut taken = held.to_vec();
    taken.extend([
        (subnet.0, subnet.0.saturating_add(3).min(subnet.1)),
        (subnet.1, subnet.1),
    ]);
    let held = merge(taken);
    let r = merge(
        reservations
            .iter()
            .filter(|r| kind.is_none_or(|k| r.kind == k))
            .map(|r| cidr_range(r.cidr))
            .filter(|r| r.0 <= subnet.1 && r.1 >= subnet.0)
            .map(|r| (r.0.max(subnet.0), r.1.min(subnet.1)))
            .collect(),
    );
    r.iter()
        .map(|&(lo, hi)| span(lo, hi) - covered(&held, lo, hi))
        .sum()
}

/// The address ranges the ENIs hold (private IPs and prefixes).
pub(crate) fn held_ranges<'a>(
    enis: impl Iterator<Item = &'a NetworkInterfaceState>,
) -> Vec<(u32, u32)> {
    let mut r = Vec::new();
    for e in enis {
        r.extend(
            e.private_ips
                .iter()
                .map(|ip| (u32::from(*ip), u32::from(*ip))),
        );
        r.extend(e.prefixes.iter().map(|p| cidr_range(*p)));
    }
    merge(r)
}

/// `held` is [`held_ranges`] of `enis`. `None` without the subnet's CIDR
/// or its reservations.
pub(crate) fn subnet_holders<'a>(
    subnet: &SubnetState,
    enis: &[&NetworkInterfaceState],
    held: &[(u32, u32)],
    owner: impl Fn(&NetworkInterfaceState) -> EniOwner<'a>,
    cluster_name: Option<&str>,
) -> Option<SubnetHolders> {
    let cidr = subnet.cidr?;
    let reservations = subnet.cidr_reservations.as_deref()?;
    let range = cidr_range(cidr);
    let size = span(range.0, range.1);
    let held_total = held
        .iter()
        .map(|&(lo, hi)| covered(&[(lo, hi)], range.0, range.1))
        .sum::<u64>();

    let mut pod = Some(0u64);
    let mut warm = Some(0u64);
    let mut eni_primary = 0u64;
    let mut other_visible = 0u64;
    for e in enis {
        let n = addresses(e);
        match owner(e) {
            EniOwner::Node(pool) => {
                let primary = u64::from(n > 0);
                eni_primary += primary;
                let secondary = n - primary;
                match pool {
                    Some(p) => match p.all_enis().find(|x| x.id == e.id) {
                        Some(x) => {
                            let assigned = x
                                .cidrs
                                .iter()
                                .flat_map(|c| &c.addresses)
                                .filter(|a| a.assigned)
                                .count() as u64;
                            let assigned = assigned.min(secondary);
                            pod = pod.map(|v| v + assigned);
                            warm = warm.map(|v| v + secondary - assigned);
                        }
                        // Attached but not ipamd's (tagged no_manage, or not
                        // yet in its datastore): not pods'.
                        None => other_visible += secondary,
                    },
                    None if secondary > 0 => {
                        pod = None;
                        warm = None;
                    }
                    None => {}
                }
            }
            EniOwner::Other => {
                // The VPC resource controller's branch ENIs of this cluster:
                // each one is a pod's (its address is the pod IP).
                let ours = e.kind == EniKind::Branch
                    && cluster_name.is_some_and(|c| e.cluster_tag.as_deref() == Some(c));
                if ours {
                    pod = pod.map(|v| v + n);
                } else {
                    other_visible += n;
                }
            }
        }
    }
    let unused_reserved = reserved_unused(range, reservations, held, None);
    let prefix_reserved_free =
        reserved_unused(range, reservations, held, Some(ReservationKind::Prefix));
    let reserved = AWS_RESERVED.min(size) + unused_reserved;
    let geometric_free = size.saturating_sub(reserved).saturating_sub(held_total);
    let free = geometric_free.min(subnet.available_ips);
    let not_visible = geometric_free - free;
    Some(SubnetHolders {
        pod,
        warm,
        eni_primary,
        other: other_visible + not_visible,
        reserved,
        free,
        prefix_reserved_free,
        other_not_visible: not_visible,
    })
}

/// Per subnet id, the ENIs in it.
pub(crate) fn enis_by_subnet(
    enis: &[NetworkInterfaceState],
) -> HashMap<&str, Vec<&NetworkInterfaceState>> {
    let mut m: HashMap<&str, Vec<&NetworkInterfaceState>> = HashMap::new();
    for e in enis {
        if let Some(s) = e.subnet_id.as_deref() {
            m.entry(s).or_default().push(e);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{Eni, Pool};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// An ENI in subnet-a with consecutive private IPs from `first` (the
    /// first one primary) and the given /28 prefixes.
    fn eni(id: &str, first: &str, ips: u32, prefixes: &[&str]) -> NetworkInterfaceState {
        let start = u32::from(ip(first));
        NetworkInterfaceState {
            id: id.into(),
            subnet_id: Some("subnet-a".into()),
            private_ips: (0..ips).map(|i| Ipv4Addr::from(start + i)).collect(),
            primary_ip: (ips > 0).then(|| ip(first)),
            prefixes: prefixes.iter().map(|p| (ip(p), 28)).collect(),
            ..Default::default()
        }
    }

    fn subnet(available: u64, reservations: Option<&[(&str, u8, ReservationKind)]>) -> SubnetState {
        SubnetState {
            id: "subnet-a".into(),
            zone: Some("us-west-2a".into()),
            vpc_id: None,
            cidr: Some((ip("10.0.0.0"), 24)),
            available_ips: available,
            tags: Default::default(),
            cidr_reservations: reservations.map(|r| {
                r.iter()
                    .map(|(net, len, kind)| CidrReservation {
                        cidr: (ip(net), *len),
                        kind: *kind,
                    })
                    .collect()
            }),
        }
    }

    /// A /24 (256 addresses) with: node ENI `eni-0` (primary .10 and 9
    /// secondaries, 4 assigned per ipamd), an ELB ENI (.50), a branch ENI
    /// of this cluster (.60) and one of another cluster (.61); a prefix
    /// reservation .128/26 (64, unused) and an explicit one .240/29 (8).
    /// Held 13, reserved 5 + 72 = 77, so 166 free by geometry. EC2's
    /// AvailableIpAddressCount leaves unused prefix reservations out, not
    /// explicit ones: 256 - 5 - 13 - 64 = 174 (moto 5.2.1 computes the same).
    #[test]
    fn holders_table() {
        use ReservationKind::*;
        let pool = Pool::new().eni(false, 9, 4).build();
        let reservations: &[(&str, u8, ReservationKind)] =
            &[("10.0.0.128", 26, Prefix), ("10.0.0.240", 29, Explicit)];
        let node_eni = eni("eni-0", "10.0.0.10", 10, &[]);
        let elb = eni("eni-elb", "10.0.0.50", 1, &[]);
        let mut branch = eni("eni-branch", "10.0.0.60", 1, &[]);
        branch.kind = EniKind::Branch;
        branch.cluster_tag = Some("demo".into());
        let mut foreign_branch = eni("eni-branch-x", "10.0.0.61", 1, &[]);
        foreign_branch.kind = EniKind::Branch;
        foreign_branch.cluster_tag = Some("other".into());
        let all = [&node_eni, &elb, &branch, &foreign_branch];
        // (what, available, reservations, node pool known, node ENI in pool,
        //  want (pod, warm, eni_primary, other, reserved, free, prefix_reserved_free, not_visible))
        type Want = (Option<u64>, Option<u64>, u64, u64, u64, u64, u64, u64);
        type Reservations<'a> = Option<&'a [(&'a str, u8, ReservationKind)]>;
        type Row<'a> = (&'a str, u64, Reservations<'a>, bool, bool, Option<Want>);
        let rows: &[Row] = &[
            (
                "every holder",
                174,
                Some(reservations),
                true,
                true,
                Some((Some(5), Some(5), 1, 2, 77, 166, 64, 0)),
            ),
            // 10 addresses EC2 counts as used that no visible ENI holds.
            (
                "ENIs this account cannot see",
                156,
                Some(reservations),
                true,
                true,
                Some((Some(5), Some(5), 1, 12, 77, 156, 64, 10)),
            ),
            (
                "no reservations: AWS's 5 only",
                238,
                Some(&[]),
                true,
                true,
                Some((Some(5), Some(5), 1, 2, 5, 238, 0, 0)),
            ),
            (
                "node without its ipamd pool: pod and warm unknown",
                174,
                Some(reservations),
                false,
                true,
                Some((None, None, 1, 2, 77, 166, 64, 0)),
            ),
            (
                "attached ENI ipamd does not manage: not pods'",
                174,
                Some(reservations),
                true,
                false,
                Some((Some(1), Some(0), 1, 11, 77, 166, 64, 0)),
            ),
            ("reservations unknown", 174, None, true, true, None),
        ];
        // The same ENI as ipamd knows it, or an ipamd that knows other ENIs.
        let mut elsewhere = pool.clone();
        elsewhere.enis[0].id = "eni-elsewhere".into();
        for (what, available, res, pool_known, in_pool, want) in rows {
            let s = subnet(*available, *res);
            let node_pool = if *in_pool { &pool } else { &elsewhere };
            let owner = |e: &NetworkInterfaceState| {
                if e.id == "eni-0" {
                    EniOwner::Node(pool_known.then_some(node_pool))
                } else {
                    EniOwner::Other
                }
            };
            let held = held_ranges(all.iter().copied());
            let got = subnet_holders(&s, &all, &held, owner, Some("demo")).map(|h| {
                if h.pod.is_some() {
                    let sum: u64 = h.samples().map(|(_, v)| v).sum();
                    assert_eq!(sum, 256, "{what}: holders add up to the size");
                }
                (
                    h.pod,
                    h.warm,
                    h.eni_primary,
                    h.other,
                    h.reserved,
                    h.free,
                    h.prefix_reserved_free,
                    h.other_not_visible,
                )
            });
            assert_eq!(got, *want, "{what}");
        }
    }

    /// A prefix on an ENI inside a prefix reservation uses it; the AWS 5
    /// are never a reservation's.
    #[test]
    fn prefixes_inside_reservations_and_aws_addresses() {
        use ReservationKind::*;
        let e = eni("eni-0", "10.0.0.10", 1, &["10.0.0.128"]);
        let s = subnet(
            300,
            Some(&[("10.0.0.128", 26, Prefix), ("10.0.0.0", 30, Explicit)]),
        );
        let pool = Pool::new().eni_with(Eni::new(true).prefixes(1, 3)).build();
        let mut pool = pool;
        pool.enis[0].id = "eni-0".into();
        let held = held_ranges([&e].into_iter());
        let h = subnet_holders(&s, &[&e], &held, |_| EniOwner::Node(Some(&pool)), None).unwrap();
        // 48 of the reservation unused; the explicit /30 is AWS's own .0-.3.
        assert_eq!((h.prefix_reserved_free, h.reserved), (48, 5 + 48));
        assert_eq!((h.pod, h.warm, h.eni_primary), (Some(3), Some(13), 1));
        // EC2 said 300 free: more than geometry allows, geometry wins.
        assert_eq!(h.free, 256 - 53 - 17);
        assert_eq!(h.other_not_visible, 0);
    }
}
