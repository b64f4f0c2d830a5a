//! Kubernetes: reflector-backed watches into slim types (no managedFields,
//! no pod env except aws-node's, no pod labels), one per resource, each
//! with its own sync state. A forbidden resource or a missing CRD is
//! reported once, counted, shown as unknown, and retried with a slow backoff.

use super::{Health, Source};
use crate::model::env::{ConfigMapRead, ConfigMaps, ContainerEnv};
use crate::model::state::ClusterState;
use crate::model::state::{LivePodSummary, PodSummary};
use crate::sources::bundle::BundleOut;
use crate::sources::kube::*;
use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Closed set of watch failure kinds, for logs and `eks_ipam_collector_errors_total`.
pub(crate) fn classify(e: &watcher::Error) -> &'static str {
    let api_code = |ke: &kube::Error| match ke {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    };
    let code = match e {
        watcher::Error::InitialListFailed(ke)
        | watcher::Error::WatchStartFailed(ke)
        | watcher::Error::WatchFailed(ke) => api_code(ke),
        watcher::Error::WatchError(status) => Some(status.code),
        _ => None,
    };
    match code {
        Some(401) => "unauthorized",
        Some(403) => "forbidden",
        Some(404) => "not_found",
        Some(410) => "gone",
        Some(429) => "throttled",
        Some(c) if c >= 500 => "server_error",
        Some(_) => "api_error",
        None => "connect",
    }
}

/// The apiserver's own message for API errors (the full `Status` debug
/// output is noise in logs), the error otherwise.
fn short(e: &watcher::Error) -> String {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => format!("{} ({})", s.message, s.code),
        watcher::Error::WatchError(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

/// Sync and error state of one watched resource.
#[derive(Default)]
struct ResourceState {
    synced: AtomicBool,
    /// Since when every watch attempt failed (None while healthy).
    failing_since: Mutex<Option<std::time::Instant>>,
    /// Error kinds already logged at warn level (report once, then debug).
    reported: Mutex<HashSet<&'static str>>,
}

/// Doubling delay from `min` to `max`.
#[derive(Debug, Clone)]
pub(crate) struct DoublingBackoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl DoublingBackoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        DoublingBackoff {
            min,
            max,
            next: min,
        }
    }
}

impl Iterator for DoublingBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        Some(d)
    }
}

impl kube::runtime::utils::Backoff for DoublingBackoff {
    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Data arrived: the watch is healthy again.
fn healthy(
    st: &ResourceState,
    delay: &mut DoublingBackoff,
    api_failing_since: &mut Option<std::time::Instant>,
) {
    use kube::runtime::utils::Backoff;
    delay.reset();
    *api_failing_since = None;
    *st.failing_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Where a watch's events go: kube's reflector store, or a slimmer cache.
trait Cache<K>: Send + 'static {
    fn apply(&mut self, ev: &watcher::Event<K>);
}

impl<K> Cache<K> for reflector::store::Writer<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    fn apply(&mut self, ev: &watcher::Event<K>) {
        self.apply_watcher_event(ev)
    }
}

/// All pods, summarised as the view needs them: per pod only its
/// contribution (a 16-byte uid key and the shared node name), per node the
/// counts, and the few pending pods without an IP. 150,000 pods cost about
/// 7 MB, and a rebuild copies 5,000 counts, not 150,000 pods.
#[derive(Default)]
pub(crate) struct PodCache {
    live: Mutex<LivePodSummary>,
    /// The slim pods themselves, kept for `capture` only.
    kept: Option<Mutex<HashMap<u128, KPodSlim>>>,
}

impl PodCache {
    fn snapshot(&self) -> PodSummary {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .summary()
    }
}

/// Writes into a [`PodCache`]; a relist fills a fresh summary swapped in at
/// `InitDone`, as kube's reflector does.
struct PodCacheWriter {
    cache: Arc<PodCache>,
    relist: Option<(LivePodSummary, HashMap<u128, KPodSlim>)>,
    interner: Interner,
}

impl PodCacheWriter {
    fn keep(&self, f: impl FnOnce(&mut HashMap<u128, KPodSlim>)) {
        if let Some(k) = &self.cache.kept {
            f(&mut k.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }
}

impl Cache<KPodSlim> for PodCacheWriter {
    fn apply(&mut self, ev: &watcher::Event<KPodSlim>) {
        match ev {
            watcher::Event::Init => self.relist = Some(Default::default()),
            watcher::Event::InitApply(p) => {
                let keep = self.cache.kept.is_some();
                if let Some((m, kept)) = self.relist.as_mut() {
                    m.apply(p.key(), &p.to_state_interned(&mut self.interner));
                    if keep {
                        kept.insert(p.key(), p.clone());
                    }
                }
            }
            watcher::Event::InitDone => {
                if let Some((m, kept)) = self.relist.take() {
                    let old = std::mem::replace(
                        &mut *self.cache.live.lock().unwrap_or_else(|p| p.into_inner()),
                        m,
                    );
                    drop(old);
                    self.keep(|k| *k = kept);
                    self.interner.sweep();
                }
            }
            watcher::Event::Apply(p) => {
                let pod = p.to_state_interned(&mut self.interner);
                self.cache
                    .live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .apply(p.key(), &pod);
                self.keep(|k| {
                    k.insert(p.key(), p.clone());
                });
            }
            watcher::Event::Delete(p) => {
                self.cache
                    .live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(p.key());
                self.keep(|k| {
                    k.remove(&p.key());
                });
            }
        }
    }
}

/// One watched resource: its reader (`R`) and sync/error state.
struct Watched<R> {
    name: &'static str,
    store: R,
    state: Arc<ResourceState>,
    stale_after: Duration,
}

impl<K> Watched<Store<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// A watch into kube's reflector store.
    fn spawn(name: &'static str, api: Api<K>, cfg: watcher::Config, ctx: &Ctx) -> Self {
        let (store, writer) = reflector::store();
        Watched::spawn_into(name, api, cfg, ctx, writer, store)
    }

    /// The cached objects, or `None` (unknown) before the first full list
    /// and while the watch has been failing for too long.
    fn objects(&self) -> Option<Vec<Arc<K>>> {
        (self.synced() && !self.stale()).then(|| self.store.state())
    }
}

impl Watched<Arc<PodCache>> {
    /// The pods' summary, or `None` (unknown), as for [`Watched::objects`].
    fn pods(&self) -> Option<PodSummary> {
        (self.synced() && !self.stale()).then(|| self.store.snapshot())
    }
}

impl<R> Watched<R> {
    fn spawn_into<K, W>(
        name: &'static str,
        api: Api<K>,
        cfg: watcher::Config,
        ctx: &Ctx,
        mut writer: W,
        store: R,
    ) -> Self
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        W: Cache<K>,
    {
        let (health, changed, stale_after) =
            (ctx.health.clone(), ctx.changed.clone(), ctx.stale_after);
        let state = Arc::new(ResourceState::default());
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                // A fresh watcher starts with a full list. It is rebuilt when
                // the apiserver keeps answering API errors (the watcher itself
                // relists on 410 Gone only; e.g. "too large resource version"
                // after an etcd restore), or when the watch goes silent: we ask
                // for bookmarks, which a healthy apiserver sends about once a
                // minute, so silence past `stale_after` means a dead connection
                // (half-open TCP after a failover) rather than a quiet resource.
                let stream = watcher::watcher(api.clone(), cfg.clone());
                futures::pin_mut!(stream);
                // Our own backoff: kube's StreamBackoff is reset by the `Init`
                // event every relist attempt emits, so it never slows down.
                let mut delay =
                    DoublingBackoff::new(Duration::from_secs(1), Duration::from_secs(300));
                let mut api_failing_since: Option<std::time::Instant> = None;
                loop {
                    let ev = match tokio::time::timeout(stale_after, stream.next()).await {
                        Ok(Some(ev)) => ev,
                        Ok(None) => break,
                        Err(_silent) => {
                            st.failing_since
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert_with(std::time::Instant::now);
                            health.count("kubernetes", "silent_watch");
                            tracing::info!(
                                resource = name,
                                "watch silent for too long; restarting it with a fresh list"
                            );
                            changed.notify_one();
                            break;
                        }
                    };
                    match ev {
                        Ok(ev) => {
                            writer.apply(&ev);
                            match ev {
                                watcher::Event::Init => {}
                                watcher::Event::InitDone => {
                                    if !st.synced.swap(true, Ordering::SeqCst) {
                                        tracing::info!(resource = name, "initial list done");
                                    }
                                    st.reported
                                        .lock()
                                        .unwrap_or_else(|p| p.into_inner())
                                        .clear();
                                    healthy(&st, &mut delay, &mut api_failing_since);
                                    changed.notify_one();
                                }
                                watcher::Event::InitApply(_) => {
                                    healthy(&st, &mut delay, &mut api_failing_since)
                                }
                                _ => {
                                    healthy(&st, &mut delay, &mut api_failing_since);
                                    changed.notify_one();
                                }
                            }
                        }
                        Err(e) => {
                            st.failing_since
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert_with(std::time::Instant::now);
                            changed.notify_one();
                            let kind = classify(&e);
                            health.count("kubernetes", kind);
                            let first = st
                                .reported
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(kind);
                            if first {
                                tracing::warn!(resource = name, kind, error = %short(&e), "watch failed; retrying with backoff (reported once)");
                            } else {
                                tracing::debug!(resource = name, kind, error = %e, "watch failed again");
                            }
                            if matches!(kind, "server_error" | "api_error") {
                                let since =
                                    *api_failing_since.get_or_insert_with(std::time::Instant::now);
                                if since.elapsed() > stale_after {
                                    tracing::info!(
                                        resource = name,
                                        "restarting the watch with a fresh list"
                                    );
                                    break;
                                }
                            }
                            tokio::time::sleep(delay.next().unwrap_or(Duration::from_secs(300)))
                                .await;
                        }
                    }
                }
            }
        });
        Watched {
            name,
            store,
            state,
            stale_after,
        }
    }

    fn synced(&self) -> bool {
        self.state.synced.load(Ordering::SeqCst)
    }

    /// Synced, or every attempt so far failed (forbidden, missing CRD):
    /// either way, waiting longer gives nothing new.
    fn settled(&self) -> bool {
        self.synced()
            || self
                .state
                .failing_since
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
    }

    /// Failing for longer than `stale_after`: its last-known state is no
    /// longer shown.
    fn stale(&self) -> bool {
        self.state
            .failing_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() > self.stale_after)
    }
}

/// What every watch shares.
struct Ctx {
    health: Arc<Health>,
    changed: Arc<Notify>,
    stale_after: Duration,
}

/// Which optional resources to watch.
#[derive(Debug, Clone)]
pub(crate) struct KubeOptions {
    /// A watch failing this long shows its resource as unknown.
    pub(crate) stale_after: Duration,
    /// Karpenter's CRDs, and Auto Mode's NodeClasses (built on Karpenter).
    pub(crate) karpenter: bool,
    pub(crate) eniconfigs: bool,
    /// Namespace of the node-agent pods (any namespace when `None`).
    pub(crate) agent_namespace: Option<String>,
    /// Also keep the pods themselves (not only their summary), for `capture`.
    pub(crate) keep_for_capture: bool,
}

/// A cached aws-node pod object and the env read from it.
type MemoizedEnv = (Arc<KPod>, Option<Arc<ContainerEnv>>);

/// The env read from each cached aws-node pod, and one shared copy of each
/// distinct env: the 5,000 pods of one DaemonSet have the same env, and a
/// copy each was ~2.7 KB, 13 MB at 5,000 nodes.
#[derive(Default)]
struct AwsNodeEnvMemo {
    by_pod: HashMap<usize, MemoizedEnv>,
    distinct: Interner<ContainerEnv>,
}

impl AwsNodeEnvMemo {
    /// Each node's aws-node env from the cached pods; a pod object seen
    /// before (same `Arc`) is not read again.
    fn refresh(&mut self, pods: Vec<Arc<KPod>>, out: &mut BTreeMap<String, Arc<ContainerEnv>>) {
        let chosen: HashMap<usize, String> = aws_node_pod_per_node(pods.iter().map(|p| &**p))
            .into_iter()
            .map(|(node, p)| (p as *const KPod as usize, node.to_string()))
            .collect();
        let mut fresh = HashMap::with_capacity(pods.len());
        for p in pods {
            let addr = Arc::as_ptr(&p) as usize;
            let env = match self.by_pod.remove(&addr) {
                Some((_, env)) => env,
                None => p.aws_node_env().map(|env| self.distinct.get(env)),
            };
            if let (Some(env), Some(node)) = (&env, chosen.get(&addr)) {
                out.insert(node.clone(), env.clone());
            }
            fresh.insert(addr, (p, env));
        }
        self.by_pod = fresh;
        // Forget envs no cached pod has any more.
        self.distinct.sweep();
    }
}

pub(crate) struct KubeCollector {
    nodes: Watched<Store<KNode>>,
    pods: Watched<Arc<PodCache>>,
    aws_node_pods: Watched<Store<KPod>>,
    agent_pods: Watched<Store<KPod>>,
    daemonsets: Watched<Store<KDaemonSet>>,
    deployments: Watched<Store<KDeployment>>,
    events: Watched<Store<KEvent>>,
    /// The node monitoring agent's `NetworkingReady` events on nodes (a
    /// second selector: the API takes no OR of field selectors).
    node_events: Watched<Store<KEvent>>,
    /// The VPC resource controller's Warning events (a third selector).
    rc_events: Watched<Store<KEvent>>,
    nodeclaims: Option<Watched<Store<KNodeClaim>>>,
    nodeclasses: Option<Watched<Store<KNodeClass>>>,
    auto_nodeclasses: Option<Watched<Store<KAutoNodeClass>>>,
    eniconfigs: Option<Watched<Store<KEniConfig>>>,
    health: Arc<Health>,
    /// aws-node env per cached pod object, so a rebuild does not rebuild
    /// 5,000 env lists; the entry holds the object so its address stays its own.
    aws_node_env_memo: Mutex<AwsNodeEnvMemo>,
    /// The ConfigMaps the settings name, as last read.
    config_maps: Mutex<ConfigMaps>,
    /// Whether they were read once after the settings' sources synced.
    config_maps_read: AtomicBool,
    changed: Arc<Notify>,
}

/// How often the named ConfigMaps are read again (a `get` each: the Role
/// grants `get` on named ConfigMaps only, never `list`/`watch`).
const CONFIG_MAP_INTERVAL: Duration = Duration::from_secs(60);

/// Why a ConfigMap could not be read, for the SettingUnresolved finding.
fn config_map_error(e: &kube::Error, ns: &str, name: &str) -> (&'static str, String) {
    match e {
        kube::Error::Api(s) if s.code == 403 => (
            "forbidden",
            format!(
                "forbidden: the exporter may not get it (add {name:?} to resourceNames of Role \
                 eks-ipam-exporter-settings in namespace {ns})"
            ),
        ),
        kube::Error::Api(s) if s.code == 401 => ("unauthorized", "unauthorized".to_string()),
        kube::Error::Api(s) => (
            "api_error",
            format!("read failed: {} ({})", s.message, s.code),
        ),
        other => ("connect", format!("read failed: {other}")),
    }
}

impl KubeCollector {
    pub(crate) fn start(
        client: Client,
        opts: &KubeOptions,
        health: Arc<Health>,
        changed: Arc<Notify>,
    ) -> Arc<Self> {
        health.register("kubernetes");
        let ctx = Ctx {
            health: health.clone(),
            changed: changed.clone(),
            stale_after: opts.stale_after,
        };
        let agent_api: Api<KPod> = match &opts.agent_namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let collector = Arc::new(KubeCollector {
            nodes: Watched::spawn(
                "nodes",
                Api::all(client.clone()),
                watcher::Config::default(),
                &ctx,
            ),
            pods: {
                let cache = Arc::new(PodCache {
                    live: Default::default(),
                    kept: opts.keep_for_capture.then(Default::default),
                });
                let writer = PodCacheWriter {
                    cache: cache.clone(),
                    relist: None,
                    interner: Interner::default(),
                };
                Watched::spawn_into(
                    "pods",
                    Api::<KPodSlim>::all(client.clone()),
                    watcher::Config::default(),
                    &ctx,
                    writer,
                    cache,
                )
            },
            aws_node_pods: Watched::spawn(
                "aws-node pods",
                Api::all(client.clone()),
                watcher::Config::default().labels("k8s-app=aws-node"),
                &ctx,
            ),
            agent_pods: Watched::spawn(
                "agent pods",
                agent_api,
                watcher::Config::default().labels(AGENT_SELECTOR),
                &ctx,
            ),
            daemonsets: Watched::spawn(
                "daemonsets",
                Api::all(client.clone()),
                watcher::Config::default().fields("metadata.name=aws-node"),
                &ctx,
            ),
            deployments: Watched::spawn(
                "deployments",
                Api::all(client.clone()),
                watcher::Config::default().labels("app.kubernetes.io/name=karpenter"),
                &ctx,
            ),
            events: Watched::spawn(
                "events",
                Api::all(client.clone()),
                watcher::Config::default().fields("reason=FailedCreatePodSandBox"),
                &ctx,
            ),
            node_events: Watched::spawn(
                "node_events",
                Api::all(client.clone()),
                watcher::Config::default().fields(&format!(
                    "reason={NETWORKING_READY},involvedObject.kind=Node"
                )),
                &ctx,
            ),
            rc_events: Watched::spawn(
                "rc_events",
                Api::all(client.clone()),
                watcher::Config::default()
                    .fields(&format!("source={RESOURCE_CONTROLLER},type=Warning")),
                &ctx,
            ),
            nodeclaims: opts.karpenter.then(|| {
                Watched::spawn(
                    "nodeclaims",
                    Api::all(client.clone()),
                    watcher::Config::default(),
                    &ctx,
                )
            }),
            nodeclasses: opts.karpenter.then(|| {
                Watched::spawn(
                    "ec2nodeclasses",
                    Api::all(client.clone()),
                    watcher::Config::default(),
                    &ctx,
                )
            }),
            auto_nodeclasses: opts.karpenter.then(|| {
                Watched::spawn(
                    "nodeclasses",
                    Api::all(client.clone()),
                    watcher::Config::default(),
                    &ctx,
                )
            }),
            eniconfigs: opts.eniconfigs.then(|| {
                Watched::spawn(
                    "eniconfigs",
                    Api::all(client.clone()),
                    watcher::Config::default(),
                    &ctx,
                )
            }),
            health,
            aws_node_env_memo: Mutex::new(AwsNodeEnvMemo::default()),
            config_maps: Mutex::new(ConfigMaps::new()),
            config_maps_read: AtomicBool::new(false),
            changed,
        });
        tokio::spawn(read_config_maps(Arc::downgrade(&collector), client));
        collector
    }

    /// The settings' sources (aws-node DaemonSet and pods, Karpenter) are
    /// synced or will not be.
    fn settings_synced(&self) -> bool {
        self.daemonsets.synced() && self.aws_node_pods.settled() && self.deployments.settled()
    }

    /// aws-node and Karpenter settings specs, and the ConfigMaps they name.
    fn fill_settings(&self, st: &mut ClusterState) {
        if let Some(ds) = self.daemonsets.objects() {
            let ws: Vec<&KWorkload> = ds.iter().map(|d| &d.0).collect();
            st.aws_node = Some(
                aws_node_daemonset_env(ws).map(|(namespace, daemonset_env)| {
                    crate::model::state::AwsNodeState {
                        namespace,
                        daemonset_env,
                    }
                }),
            );
        }
        if let Some(pods) = self.aws_node_pods.objects() {
            let mut memo = self
                .aws_node_env_memo
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            memo.refresh(pods, &mut st.aws_node_pod_env);
        }
        if let Some(d) = self.deployments.objects() {
            let ws: Vec<KWorkload> = d.iter().map(|d| d.0.clone()).collect();
            st.karpenter = Some(karpenter_controller(&ws));
        }
        st.config_maps = self
            .config_maps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
    }

    /// Running node agents, from the agent DaemonSet's pods.
    pub(crate) fn agent_endpoints(&self) -> Vec<AgentEndpoint> {
        self.agent_pods
            .store
            .state()
            .iter()
            .filter_map(|p| p.agent_endpoint())
            .collect()
    }

    /// The agent pods were listed: which agents exist is known.
    pub(crate) fn agent_pods_synced(&self) -> bool {
        self.agent_pods.synced()
    }

    fn core_synced(&self) -> bool {
        self.nodes.synced() && self.pods.synced() && self.daemonsets.synced()
    }

    /// Names of watched resources still unknown (for logs and readiness).
    pub(crate) fn unsynced(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (n, s) in [
            (self.nodes.name, self.nodes.synced()),
            (self.pods.name, self.pods.synced()),
            (self.daemonsets.name, self.daemonsets.synced()),
            (self.deployments.name, self.deployments.synced()),
            (self.events.name, self.events.synced()),
            (self.node_events.name, self.node_events.synced()),
            (self.rc_events.name, self.rc_events.synced()),
            (self.aws_node_pods.name, self.aws_node_pods.synced()),
            ("configmaps", self.config_maps_read.load(Ordering::Relaxed)),
        ] {
            if !s {
                v.push(n);
            }
        }
        v
    }
}

impl Source for KubeCollector {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn waiting_for(&self) -> Vec<&'static str> {
        self.unsynced()
    }

    fn required(&self) -> bool {
        true
    }

    fn synced(&self) -> bool {
        // The settings are unknown until the ConfigMaps they name were read.
        self.core_synced() && self.config_maps_read.load(Ordering::Relaxed)
    }

    fn capture(&self, out: &mut BundleOut) {
        self.capture_into(out)
    }

    fn fill(&self, st: &mut ClusterState) {
        self.health.set_up(
            "kubernetes",
            self.core_synced() && !self.nodes.stale() && !self.pods.stale(),
        );
        self.fill_settings(st);
        if let Some(pods) = self.pods.pods() {
            st.pods = Some(pods);
        }
        if let Some(nodes) = self.nodes.objects() {
            let (labels, annotations) = eni_config_keys(
                st.aws_node.as_ref().and_then(|a| a.as_ref()),
                &st.aws_node_pod_env,
                &st.config_maps,
            );
            st.nodes = Some(
                nodes
                    .iter()
                    .map(|n| n.to_state(&labels, &annotations))
                    .collect(),
            );
        }
        if let Some(ev) = self.events.objects() {
            st.sandbox_failures = Some(ev.iter().filter_map(|e| e.sandbox_ip_failure()).collect());
        }
        if let Some(ev) = self.rc_events.objects() {
            st.resource_controller_events = Some(
                ev.iter()
                    .filter_map(|e| e.resource_controller_event())
                    .collect(),
            );
        }
        if let Some(ev) = self.node_events.objects() {
            st.networking_events = Some(ev.iter().filter_map(|e| e.networking_event()).collect());
        }
        if let Some(w) = &self.nodeclaims {
            st.nodeclaims = w
                .objects()
                .map(|v| v.iter().map(|c| c.to_state()).collect());
        }
        if let Some(w) = &self.nodeclasses {
            st.ec2nodeclasses = w
                .objects()
                .map(|v| self.valid_states(&v, "EC2NodeClass", |c| c.to_state()));
        }
        if let Some(w) = &self.auto_nodeclasses {
            st.nodeclasses = w
                .objects()
                .map(|v| self.valid_states(&v, "NodeClass", |c| c.to_state()));
        }
        if let Some(w) = &self.eniconfigs {
            st.eniconfigs = w
                .objects()
                .map(|v| v.iter().map(|c| c.to_state()).collect());
        }
    }
}

/// `objects` as a kubectl-style List file, or why the file is missing
/// (exactly when `fill` leaves the resource unknown).
fn write_list<K: serde::Serialize>(
    out: &mut BundleOut,
    rel: &str,
    (api_version, kind): (&str, &str),
    objects: Option<Vec<Arc<K>>>,
) {
    match objects {
        Some(objs) => {
            let items = objs
                .iter()
                .filter_map(|o| serde_json::to_value(&**o).ok())
                .collect();
            out.list(rel, api_version, kind, items);
        }
        None => out.skip(rel, "not listed (watch not synced, or failing)"),
    }
}

impl KubeCollector {
    /// The objects that convert, skipping (and counting as `invalid_object`) those that do not:
    /// one bad custom resource must not make the whole kind unknown.
    fn valid_states<K, S>(
        &self,
        objects: &[Arc<K>],
        kind: &str,
        to_state: impl Fn(&K) -> Result<S, String>,
    ) -> Vec<S> {
        objects
            .iter()
            .filter_map(|o| match to_state(o) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.health.count("kubernetes", "invalid_object");
                    tracing::debug!(error = %e, kind, "skipping an invalid object");
                    None
                }
            })
            .collect()
    }

    /// What `fill` reads, as the bundle's `kubernetes/` files.
    fn capture_into(&self, out: &mut BundleOut) {
        write_list(
            out,
            "kubernetes/nodes.json",
            ("v1", "Node"),
            self.nodes.objects(),
        );
        match (self.pods.pods(), &self.pods.store.kept) {
            (Some(_), Some(kept)) => {
                // Every pod in its slim form; aws-node and agent pods with
                // their containers (settings, agent port), as watched.
                let mut items: BTreeMap<u128, Value> = kept
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .filter_map(|(k, p)| Some((*k, serde_json::to_value(p).ok()?)))
                    .collect();
                let full = [self.aws_node_pods.objects(), self.agent_pods.objects()];
                for p in full.into_iter().flatten().flatten() {
                    if let Ok(v) = serde_json::to_value(&*p) {
                        items.insert(p.key(), v);
                    }
                }
                out.list(
                    "kubernetes/pods.json",
                    "v1",
                    "Pod",
                    items.into_values().collect(),
                );
            }
            _ => out.skip(
                "kubernetes/pods.json",
                "not listed (watch not synced, or failing)",
            ),
        }
        let ds = self.daemonsets.objects();
        write_list(
            out,
            "kubernetes/daemonsets.json",
            ("apps/v1", "DaemonSet"),
            ds,
        );
        let dep = self.deployments.objects();
        write_list(
            out,
            "kubernetes/deployments.json",
            ("apps/v1", "Deployment"),
            dep,
        );
        // One events.json holds the three watches' events (kubectl's
        // shape); known only when all are.
        let events = match (
            self.events.objects(),
            self.node_events.objects(),
            self.rc_events.objects(),
        ) {
            (Some(mut a), Some(b), Some(c)) => {
                a.extend(b);
                a.extend(c);
                Some(a)
            }
            _ => None,
        };
        write_list(out, "kubernetes/events.json", ("v1", "Event"), events);
        if let Some(w) = &self.nodeclaims {
            let api = ("karpenter.sh/v1", "NodeClaim");
            write_list(out, "kubernetes/nodeclaims.json", api, w.objects());
        }
        if let Some(w) = &self.nodeclasses {
            let api = ("karpenter.k8s.aws/v1", "EC2NodeClass");
            write_list(out, "kubernetes/ec2nodeclasses.json", api, w.objects());
        }
        if let Some(w) = &self.auto_nodeclasses {
            let api = ("eks.amazonaws.com/v1", "NodeClass");
            write_list(out, "kubernetes/nodeclasses.json", api, w.objects());
        }
        if let Some(w) = &self.eniconfigs {
            let api = ("crd.k8s.amazonaws.com/v1alpha1", "ENIConfig");
            write_list(out, "kubernetes/eniconfigs.json", api, w.objects());
        }
        // The ConfigMaps as last read: data where it was read; a map that
        // could not be read is left out and said why (the bundle shows it
        // unreadable, as live does).
        const CM: &str = "kubernetes/configmaps.json";
        let maps = self
            .config_maps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut items = Vec::new();
        let mut failed = Vec::new();
        for ((ns, name), read) in &maps {
            match read {
                ConfigMapRead::Data(data) => items.push(serde_json::json!({
                    "metadata": {"namespace": ns, "name": name},
                    "data": data,
                })),
                ConfigMapRead::NotFound => out.config_maps_not_found.push(format!("{ns}/{name}")),
                ConfigMapRead::Unreadable(why) => failed.push(format!("{ns}/{name}: {why}")),
            }
        }
        if !failed.is_empty() {
            out.skip(CM, failed.join("; "));
        }
        out.list(CM, "v1", "ConfigMap", items);
    }
}

/// Reads the ConfigMaps the settings name: once the settings' sources
/// settled, again when the set of names changes, and every
/// [`CONFIG_MAP_INTERVAL`]. A transient failure keeps the last good read;
/// forbidden replaces it (an answer, not an outage).
async fn read_config_maps(collector: std::sync::Weak<KubeCollector>, client: Client) {
    let mut last_wants = None;
    let mut last_read = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(c) = collector.upgrade() else { return };
        if !c.settings_synced() {
            continue;
        }
        let mut scratch = ClusterState::default();
        c.fill_settings(&mut scratch);
        let wants = scratch.config_map_refs();
        let due = last_read.elapsed() >= CONFIG_MAP_INTERVAL;
        if last_wants.as_ref() == Some(&wants) && !due {
            continue;
        }
        let previous = scratch.config_maps;
        let mut read = ConfigMaps::new();
        for key in &wants {
            let (ns, name) = key;
            let api: Api<KConfigMap> = Api::namespaced(client.clone(), ns);
            let r = match api.get_opt(name).await {
                Ok(Some(cm)) => ConfigMapRead::Data(cm.data),
                Ok(None) => ConfigMapRead::NotFound,
                Err(e) => {
                    let (kind, why) = config_map_error(&e, ns, name);
                    c.health.count("kubernetes", kind);
                    tracing::debug!(namespace = %ns, name = %name, error = %e, "reading a ConfigMap the settings name");
                    match (kind, previous.get(key)) {
                        ("forbidden" | "unauthorized", _) | (_, None) => {
                            ConfigMapRead::Unreadable(why)
                        }
                        (_, Some(prev)) => prev.clone(),
                    }
                }
            };
            read.insert(key.clone(), r);
        }
        let changed = {
            let mut m = c.config_maps.lock().unwrap_or_else(|p| p.into_inner());
            let changed = *m != read;
            *m = read;
            changed
        };
        if !c.config_maps_read.swap(true, Ordering::Relaxed) || changed {
            c.changed.notify_one();
        }
        last_wants = Some(wants);
        last_read = std::time::Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_node_pod(node: &str, warm_ip_target: &str) -> Arc<KPod> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("aws-node-{node}"), "namespace": "kube-system",
                             "labels": {"k8s-app": "aws-node"}},
                "spec": {"nodeName": node, "containers": [{"name": "aws-node", "env": [
                    {"name": "WARM_IP_TARGET", "value": warm_ip_target},
                    {"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}]}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn aws_node_envs_are_shared_by_content_and_forgotten() {
        let mut memo = AwsNodeEnvMemo::default();
        let pods = vec![
            aws_node_pod("a", "5"),
            aws_node_pod("b", "5"),
            aws_node_pod("c", "10"),
        ];
        let mut out = BTreeMap::new();
        memo.refresh(pods.clone(), &mut out);
        assert_eq!(out.len(), 3);
        assert!(Arc::ptr_eq(&out["a"], &out["b"]));
        assert!(!Arc::ptr_eq(&out["a"], &out["c"]));
        assert_eq!(
            out["c"].env[0],
            crate::model::env::EnvVar::new("WARM_IP_TARGET", "10")
        );
        assert_eq!(
            out["c"].env[1].value,
            crate::model::env::EnvValue::Unread("fieldRef")
        );
        assert_eq!(memo.distinct.len(), 2);
        // Node c's pod is replaced by one with the common env: it joins the
        // shared copy, and the "10" env is forgotten.
        drop(out);
        let mut out = BTreeMap::new();
        memo.refresh(
            vec![pods[0].clone(), pods[1].clone(), aws_node_pod("c", "5")],
            &mut out,
        );
        assert!(Arc::ptr_eq(&out["a"], &out["c"]));
        drop(out);
        assert_eq!(memo.distinct.len(), 1);
        assert_eq!(memo.by_pod.len(), 3);
    }
}
