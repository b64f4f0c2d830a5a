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
use crate::sources::ec2::sdk;
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
}

impl Default for Ec2Options {
    fn default() -> Self {
        Ec2Options {
            interval: Duration::from_secs(300),
            instance_types_ttl: Duration::from_secs(6 * 3600),
            max_requests_per_minute: 30,
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
}

pub(crate) struct Ec2Collector {
    data: Mutex<Data>,
    stale_after: Duration,
    requests: AtomicU64,
    synced: std::sync::atomic::AtomicBool,
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
        });
        let this = me.clone();
        tokio::spawn(async move {
            let budget =
                RateLimiter::per_window(opts.max_requests_per_minute, Duration::from_secs(60));
            // Let the first Kubernetes lists land so the first round knows what to ask.
            tokio::time::sleep(Duration::from_secs(2)).await;
            loop {
                let started = Instant::now();
                let result = this
                    .round(&client, &kube, &agents, &opts, &budget, &health)
                    .await;
                let on_failure =
                    "keeping the previous data (instance limits fall back to the embedded table)";
                if super::report_round(
                    &health,
                    &changed,
                    "ec2",
                    started.elapsed(),
                    result,
                    on_failure,
                ) {
                    this.synced.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(opts.interval).await;
            }
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
                for it in resp.instance_types() {
                    if let Some(l) = sdk::limits(it) {
                        d.instance_types
                            .insert(l.instance_type.clone(), (l, Instant::now()));
                    }
                }
                token = resp.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }

        // Subnets: by id, as a filter so a deleted subnet is no error.
        let ids: Vec<String> = subnet_ids.into_iter().collect();
        let mut subnets = Vec::new();
        for batch in ids.chunks(BATCH) {
            budget.acquire().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            health.request("ec2");
            let resp = client
                .describe_subnets()
                .filters(filter("subnet-id", batch))
                .send()
                .await
                .map_err(|e| super::aws_error_kind(&e))?;
            subnets.extend(resp.subnets().iter().filter_map(sdk::subnet));
        }

        // ENIs: of the cluster's instances; in prefix mode also every ENI in
        // those subnets, which the free-/28 count needs.
        let instances: Vec<String> = wanted.instance_ids.iter().cloned().collect();
        let mut enis: BTreeMap<String, NetworkInterfaceState> = BTreeMap::new();
        let mut queries: Vec<Filter> = instances
            .chunks(BATCH)
            .map(|b| filter("attachment.instance-id", b))
            .collect();
        if wanted.prefix_mode {
            queries.extend(ids.chunks(BATCH).map(|b| filter("subnet-id", b)));
        }
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
                for n in resp.network_interfaces() {
                    if let Some(s) = sdk::network_interface(n) {
                        enis.insert(s.id.clone(), s);
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
        d.last_success = Some(Instant::now());
        Ok(())
    }
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
}
