//! EC2: instance-type limits (cached for hours, embedded table as fallback),
//! the subnets the cluster draws from, and the nodes' ENIs. Requests are
//! filtered, batched, and capped by a per-minute budget that does not grow
//! with scrapes; the SDK's adaptive retry slows down on RequestLimitExceeded
//! (ipamd on every node shares the same EC2 API buckets).

use super::agents::AgentsCollector;
use super::kube::KubeCollector;
use super::rate::RateLimiter;
use super::{Health, Source};
use crate::model::limits::InstanceLimits;
use crate::model::state::{ClusterState, NetworkInterfaceState, SubnetState};
use crate::sources::bundle::BundleOut;
use crate::sources::ec2::{self as wire, sdk};
use aws_sdk_ec2::types::Filter;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub(crate) struct Ec2Options {
    pub(crate) interval: Duration,
    pub(crate) instance_types_ttl: Duration,
    /// Most EC2 requests per minute, whatever the cluster size.
    pub(crate) max_requests_per_minute: u32,
    /// Also keep what EC2 said in its wire form, for `capture` (the live
    /// exporter keeps only the converted state: ENIs as text cost 4x).
    pub(crate) keep_for_capture: bool,
}

impl Default for Ec2Options {
    fn default() -> Self {
        Ec2Options {
            interval: Duration::from_secs(300),
            instance_types_ttl: Duration::from_secs(6 * 3600),
            max_requests_per_minute: 30,
            keep_for_capture: false,
        }
    }
}

/// Filter values per request (EC2 allows up to 200 per filter).
const BATCH: usize = 200;

#[derive(Default)]
struct Data {
    /// Last fully successful round: subnets and ENIs older than
    /// `stale_after` are shown as unknown.
    last_success: Option<Instant>,
    instance_types: BTreeMap<String, (InstanceLimits, Instant)>,
    subnets: Option<Vec<SubnetState>>,
    enis: Option<Arc<Vec<NetworkInterfaceState>>>,
    /// The last round's answers as the bundle holds them (capture only).
    wire: Option<Wire>,
}

/// EC2's answers in the bundle's wire form: only objects that converted,
/// so the bundle loads to the state the live view had.
#[derive(Default)]
struct Wire {
    instance_types: BTreeMap<String, wire::InstanceTypeInfo>,
    subnets: Vec<wire::Subnet>,
    enis: Vec<wire::NetworkInterface>,
    /// `None` when the reservations could not be read this round.
    cidr_reservations: Option<Vec<wire::SubnetCidrReservation>>,
}

pub(crate) struct Ec2Collector {
    data: Mutex<Data>,
    stale_after: Duration,
    requests: AtomicU64,
    synced: std::sync::atomic::AtomicBool,
    keep_for_capture: bool,
}

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

impl Ec2Collector {
    pub(crate) fn start(
        client: aws_sdk_ec2::Client,
        kube: Arc<KubeCollector>,
        agents: Arc<AgentsCollector>,
        opts: Ec2Options,
        health: Arc<Health>,
        changed: Arc<Notify>,
    ) -> Arc<Self> {
        health.register("ec2");
        let me = Arc::new(Ec2Collector {
            data: Mutex::new(Data::default()),
            // Three missed rounds, plus slack for a slow round.
            stale_after: opts.interval * 3 + Duration::from_secs(60),
            requests: AtomicU64::new(0),
            synced: false.into(),
            keep_for_capture: opts.keep_for_capture,
        });
        let this = me.clone();
        tokio::spawn(async move {
            let budget =
                RateLimiter::per_window(opts.max_requests_per_minute, Duration::from_secs(60));
            // What to ask is derived from Kubernetes and the node agents:
            // wait for their first reads (a minute at most; forbidden or
            // missing sources then give what they can).
            let waiting = Instant::now();
            while !(kube.synced() && agents.synced()) && waiting.elapsed() < Duration::from_secs(60)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let (health, interval) = (health.clone(), opts.interval);
            super::run_poller(
                "ec2",
                interval,
                health.clone(),
                changed,
                "keeping the previous data (instance limits fall back to the embedded table)",
                || this.round(&client, &kube, &agents, &opts, &budget, &health),
                |ok| {
                    if ok {
                        this.synced.store(true, Ordering::SeqCst);
                    }
                },
            )
            .await
        });
        me
    }

    async fn round(
        &self,
        client: &aws_sdk_ec2::Client,
        kube: &KubeCollector,
        agents: &AgentsCollector,
        opts: &Ec2Options,
        budget: &RateLimiter,
        health: &Health,
    ) -> Result<(), &'static str> {
        // Derived from the state the collectors hold, as `capture` derives it.
        let mut known = crate::model::state::ClusterState::default();
        kube.fill(&mut known);
        agents.fill(&mut known);
        let wanted = known.ec2_wants();
        let subnet_ids: BTreeSet<String> = wanted.subnet_ids.clone();

        // Instance types: only those in use and not cached recently.
        let stale: Vec<String> = {
            let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
            wanted
                .instance_types
                .iter()
                .filter(|t| {
                    d.instance_types
                        .get(*t)
                        .is_none_or(|(_, at)| at.elapsed() > opts.instance_types_ttl)
                })
                .cloned()
                .collect()
        };
        for batch in stale.chunks(100) {
            let mut token = None;
            loop {
                budget.acquire().await;
                self.requests.fetch_add(1, Ordering::Relaxed);
                health.request("ec2");
                let resp = client
                    .describe_instance_types()
                    .filters(filter("instance-type", batch))
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| super::aws_error_kind(&e))?;
                let mut d = self.data.lock().unwrap_or_else(|p| p.into_inner());
                for it in resp.instance_types().iter().filter_map(sdk::instance_type) {
                    let l = it.to_limits();
                    d.instance_types
                        .insert(l.instance_type.clone(), (l, Instant::now()));
                    if self.keep_for_capture {
                        d.wire
                            .get_or_insert_with(Wire::default)
                            .instance_types
                            .insert(it.instance_type.clone(), it);
                    }
                }
                token = resp.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }

        // Subnets: by id, as a filter so a deleted subnet is no error; then,
        // with subnet discovery, every subnet of those VPCs tagged
        // `kubernetes.io/role/cni` (any value: `0` excludes, and the
        // analysis must see it). ipamd asks for its VPC and zone
        // (`GetVpcSubnets`, pkg/awsutils/awsutils.go); one query per batch
        // of VPCs serves every zone.
        let ids: Vec<String> = subnet_ids.into_iter().collect();
        let mut by_id: BTreeMap<String, (SubnetState, wire::Subnet)> = BTreeMap::new();
        let mut queries: Vec<Vec<Filter>> = ids
            .chunks(BATCH)
            .map(|b| vec![filter("subnet-id", b)])
            .collect();
        // Auto Mode NodeClass tag terms, one query each as Karpenter's
        // `getFilterSets` builds them (karpenter-provider-aws
        // pkg/providers/subnet/subnet.go at 068749bd19f9).
        queries.extend(wanted.subnet_terms.iter().map(|tags| {
            tags.iter()
                .map(|(k, v)| {
                    if v == "*" {
                        filter("tag-key", std::slice::from_ref(k))
                    } else {
                        filter(&format!("tag:{k}"), std::slice::from_ref(v))
                    }
                })
                .collect()
        }));
        let mut tagged_asked = !wanted.tagged_subnets;
        while let Some(q) = queries.pop() {
            let mut token = None;
            loop {
                budget.acquire().await;
                self.requests.fetch_add(1, Ordering::Relaxed);
                health.request("ec2");
                let resp = client
                    .describe_subnets()
                    .set_filters(Some(q.clone()))
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| super::aws_error_kind(&e))?;
                for sn in resp.subnets().iter().filter_map(sdk::subnet) {
                    match sn.to_state() {
                        Ok(st) => {
                            by_id.insert(st.id.clone(), (st, sn));
                        }
                        Err(e) => invalid(health, &e),
                    }
                }
                token = resp
                    .next_token()
                    .map(str::to_string)
                    .filter(|t| !t.is_empty());
                if token.is_none() {
                    break;
                }
            }
            if queries.is_empty() && !tagged_asked {
                tagged_asked = true;
                let vpcs: Vec<String> = by_id
                    .values()
                    .filter_map(|(st, _)| st.vpc_id.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                queries.extend(vpcs.chunks(BATCH).map(|b| {
                    vec![
                        filter("vpc-id", b),
                        filter("tag-key", &[crate::model::discovery::CNI_TAG.to_string()]),
                    ]
                }));
            }
        }
        // The subnets the cluster draws from, candidates included: the
        // free-/28 count and the subnet holders need every ENI in them.
        let cluster_subnets: Vec<String> = by_id
            .values()
            .filter(|(st, _)| {
                ids.contains(&st.id)
                    || st
                        .tags
                        .get(crate::model::discovery::CNI_TAG)
                        .map(String::as_str)
                        != Some("0")
            })
            .map(|(st, _)| st.id.clone())
            .collect();
        // CIDR reservations, one request per subnet the cluster uses (the
        // API takes one SubnetId). Best effort: without
        // ec2:GetSubnetCidrReservations (a policy from before this call)
        // the reservations stay unknown and the rest of the round stands.
        let mut reservations: Option<Vec<wire::SubnetCidrReservation>> = Some(Vec::new());
        for id in &cluster_subnets {
            let mut token = None;
            let mut got: Vec<wire::SubnetCidrReservation> = Vec::new();
            let ok = loop {
                budget.acquire().await;
                self.requests.fetch_add(1, Ordering::Relaxed);
                health.request("ec2");
                let resp = match client
                    .get_subnet_cidr_reservations()
                    .subnet_id(id)
                    .set_next_token(token)
                    .send()
                    .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        let kind = super::aws_error_kind(&e);
                        health.count("ec2", kind);
                        tracing::warn!(subnet = %id, error = %kind, "GetSubnetCidrReservations failed: reservations unknown this round");
                        break false;
                    }
                };
                got.extend(
                    resp.subnet_ipv4_cidr_reservations()
                        .iter()
                        .filter_map(sdk::cidr_reservation),
                );
                token = resp
                    .next_token()
                    .map(str::to_string)
                    .filter(|t| !t.is_empty());
                if token.is_none() {
                    break true;
                }
            };
            match (ok, reservations.as_mut()) {
                (true, Some(all)) => all.extend(got),
                _ => {
                    reservations = None;
                    break;
                }
            }
        }
        // A reservation EC2 answered that the model cannot read leaves its
        // subnet's reservations unknown (never a partial list).
        let mut by_subnet: BTreeMap<&str, Option<Vec<crate::model::state::CidrReservation>>> =
            BTreeMap::new();
        for r in reservations.iter().flatten() {
            let entry = by_subnet
                .entry(r.subnet_id.as_str())
                .or_insert_with(|| Some(Vec::new()));
            match r.to_state() {
                Ok(st) => {
                    if let Some(v) = entry.as_mut() {
                        v.push(st);
                    }
                }
                Err(e) => {
                    invalid(health, &e);
                    *entry = None;
                }
            }
        }
        let by_subnet_unknown = by_subnet.values().filter(|v| v.is_none()).count();
        let mut subnets = Vec::new();
        let mut kept = Wire::default();
        for (mut st, sn) in by_id.into_values() {
            if reservations.is_some() && cluster_subnets.contains(&st.id) {
                st.cidr_reservations = by_subnet
                    .remove(st.id.as_str())
                    .unwrap_or_else(|| Some(Vec::new()));
            }
            subnets.push(st);
            if self.keep_for_capture {
                kept.subnets.push(sn);
            }
        }
        // A bundle cannot say "unknown for one subnet": with an unreadable
        // reservation the capture leaves the whole file out.
        kept.cidr_reservations = reservations.clone().filter(|_| by_subnet_unknown == 0);

        // ENIs: of the cluster's instances, and every ENI in the subnets the
        // cluster draws from (the free-/28 count and who holds a subnet's
        // addresses need them all: load balancers, endpoints, other clusters).
        let instances: Vec<String> = wanted.instance_ids.iter().cloned().collect();
        let mut enis: BTreeMap<String, NetworkInterfaceState> = BTreeMap::new();
        let mut kept_enis: BTreeMap<String, wire::NetworkInterface> = BTreeMap::new();
        let mut queries: Vec<Filter> = instances
            .chunks(BATCH)
            .map(|b| filter("attachment.instance-id", b))
            .collect();
        queries.extend(
            cluster_subnets
                .chunks(BATCH)
                .map(|b| filter("subnet-id", b)),
        );
        for f in queries {
            let mut token = None;
            loop {
                budget.acquire().await;
                self.requests.fetch_add(1, Ordering::Relaxed);
                health.request("ec2");
                let resp = client
                    .describe_network_interfaces()
                    .filters(f.clone())
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| super::aws_error_kind(&e))?;
                for n in resp
                    .network_interfaces()
                    .iter()
                    .filter_map(sdk::network_interface)
                {
                    match n.to_state() {
                        Ok(st) => {
                            enis.insert(st.id.clone(), st);
                            if self.keep_for_capture {
                                kept_enis.insert(n.network_interface_id.clone(), n);
                            }
                        }
                        Err(e) => invalid(health, &e),
                    }
                }
                token = resp
                    .next_token()
                    .map(str::to_string)
                    .filter(|t| !t.is_empty());
                if token.is_none() {
                    break;
                }
            }
        }
        let mut d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        d.subnets = Some(subnets);
        d.enis = Some(Arc::new(enis.into_values().collect()));
        if self.keep_for_capture {
            let w = d.wire.get_or_insert_with(Wire::default);
            w.subnets = kept.subnets;
            w.enis = kept_enis.into_values().collect();
            w.cidr_reservations = kept.cidr_reservations;
        }
        d.last_success = Some(Instant::now());
        Ok(())
    }
}

/// An object EC2 returned that the model cannot read (a CIDR or address
/// that does not parse): skipped live as the bundle loader would refuse it.
fn invalid(health: &Health, why: &str) {
    health.count("ec2", "invalid_object");
    tracing::debug!(error = why, "skipping an EC2 object");
}

impl Source for Ec2Collector {
    fn name(&self) -> &'static str {
        "EC2"
    }

    fn gates_first_view(&self) -> bool {
        false
    }

    fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    fn fill(&self, st: &mut ClusterState) {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        // Types not (yet) described fall back to the embedded table in the view.
        if !d.instance_types.is_empty() {
            st.instance_types = Some(d.instance_types.values().map(|(l, _)| l.clone()).collect());
        }
        // Instance limits are static facts and stay; subnet and ENI state ages.
        if d.last_success
            .is_some_and(|t| t.elapsed() <= self.stale_after)
        {
            st.subnets = d.subnets.clone();
            st.network_interfaces = d.enis.clone();
        }
    }

    /// What the last round held, as the bundle's `ec2/` files (absent
    /// before a first successful round, as live shows them unknown).
    fn capture(&self, out: &mut BundleOut) {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = &d.wire else {
            out.skip("ec2/", "no EC2 round succeeded before the capture");
            return;
        };
        // The same choices as `fill`.
        if !w.instance_types.is_empty() {
            let types: Vec<&wire::InstanceTypeInfo> = w.instance_types.values().collect();
            out.json(
                "ec2/instance-types.json",
                &serde_json::json!({ "InstanceTypes": types }),
            );
        }
        if d.last_success
            .is_some_and(|t| t.elapsed() <= self.stale_after)
        {
            out.json(
                "ec2/subnets.json",
                &serde_json::json!({ "Subnets": w.subnets }),
            );
            out.json(
                "ec2/network-interfaces.json",
                &serde_json::json!({ "NetworkInterfaces": w.enis }),
            );
            if let Some(r) = &w.cidr_reservations {
                out.json(
                    "ec2/subnet-cidr-reservations.json",
                    &serde_json::json!({ "SubnetIpv4CidrReservations": r }),
                );
            }
        }
    }
}
