//! Pulls every node agent's `/v1/pool` with bounded concurrency and a
//! per-agent timeout and body limit. An agent that cannot be read makes that
//! node's pool unknown (absent), never zero.

use super::kube::KubeCollector;
use super::{Health, Source};
use crate::http::{AgentClient, FetchError};
use crate::model::state::{ClusterState, IpamdNodeState};
use crate::sources::agent::PoolSnapshot;
use crate::sources::bundle::BundleOut;
use crate::sources::ipamd;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

const MAX_POOL_BODY: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct AgentsOptions {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) concurrency: usize,
    /// Also keep each agent's raw payloads, for `capture`.
    pub(crate) keep_for_capture: bool,
    /// Scheme, TLS and credentials for the agents (`--agent-client-config`).
    pub(crate) client: AgentClient,
}

/// What one agent said: the parsed pool and ipamd metrics, and the raw
/// payloads (for `capture`).
#[derive(Debug, Clone)]
pub(crate) struct AgentReading {
    pub(crate) state: IpamdNodeState,
    pub(crate) snapshot: PoolSnapshot,
}

pub(crate) struct AgentsCollector {
    /// Parsed pools only, shared with every rebuild (no copy per rebuild).
    /// The raw payloads (about 12 KB a node) are dropped as soon as each is
    /// parsed, unless kept for `capture`.
    readings: Mutex<BTreeMap<String, Arc<IpamdNodeState>>>,
    /// The last round's payloads and failures by node (capture only).
    kept: Option<Mutex<Kept>>,
    synced: AtomicBool,
}

#[derive(Default)]
struct Kept {
    /// Payloads that did not parse are dropped: the pool is unknown live,
    /// and the bundle loader would refuse the file.
    snapshots: BTreeMap<String, PoolSnapshot>,
    failed: BTreeMap<String, &'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullError {
    Fetch(FetchError),
    NotAPool,
}

impl PullError {
    fn kind(self) -> &'static str {
        match self {
            PullError::Fetch(e) => e.as_str(),
            PullError::NotAPool => "invalid_snapshot",
        }
    }
}

/// Reads one agent and parses its snapshot with the bundle's ipamd parsers.
pub(crate) async fn pull(
    client: &AgentClient,
    address: &str,
    timeout: Duration,
) -> Result<AgentReading, PullError> {
    let body = client
        .get(address, "/v1/pool", timeout, MAX_POOL_BODY)
        .await
        .map_err(PullError::Fetch)?;
    let snapshot: PoolSnapshot = serde_json::from_slice(&body).map_err(|_| PullError::NotAPool)?;
    let pool = snapshot
        .enis
        .as_ref()
        .and_then(|v| ipamd::parse_enis(v.get().as_bytes()).ok());
    let metrics = snapshot
        .metrics
        .as_deref()
        .and_then(|t| ipamd::parse_metrics(t).ok());
    Ok(AgentReading {
        state: IpamdNodeState { pool, metrics },
        snapshot,
    })
}

impl AgentsCollector {
    pub(crate) fn start(
        kube: Arc<KubeCollector>,
        opts: AgentsOptions,
        health: Arc<Health>,
        changed: Arc<Notify>,
    ) -> Arc<Self> {
        health.register("ipamd");
        let me = Arc::new(AgentsCollector {
            readings: Mutex::new(BTreeMap::new()),
            kept: opts.keep_for_capture.then(Default::default),
            synced: AtomicBool::new(false),
        });
        let this = me.clone();
        tokio::spawn(async move {
            let client = opts.client.clone();
            // Which agents exist is known once the agent pods were listed:
            // a round before that would read none and call it done.
            while !kube.agent_pods_synced() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            super::run_poller(
                "ipamd",
                opts.interval,
                health.clone(),
                changed,
                "keeping nothing: the unreadable nodes' pools are unknown",
                || this.round(&client, &kube, &opts, &health),
                // One full round done (possibly with zero agents): readings are now known.
                |_| this.synced.store(true, Ordering::SeqCst),
            )
            .await
        });
        me
    }

    /// Reads every agent once. Fails only when every agent asked failed.
    async fn round(
        &self,
        client: &AgentClient,
        kube: &KubeCollector,
        opts: &AgentsOptions,
        health: &Health,
    ) -> Result<(), &'static str> {
        let keep = opts.keep_for_capture;
        let endpoints = kube.agent_endpoints();
        let mut kept = Kept::default();
        // Each reply is parsed and its raw payload dropped as it
        // arrives: collecting the replies first held every node's raw
        // JSON at once (60+ MB at 5,000 nodes).
        let mut fresh = BTreeMap::new();
        let mut failed = 0usize;
        let asked = endpoints.len();
        let mut replies = futures::stream::iter(endpoints)
            .map(|ep| {
                let client = client.clone();
                async move {
                    let r = pull(&client, &ep.address, opts.timeout).await.map(
                        |AgentReading {
                             state,
                             mut snapshot,
                         }| {
                            let snapshot = keep.then(|| {
                                if state.pool.is_none() {
                                    snapshot.enis = None;
                                }
                                if state.metrics.is_none() {
                                    snapshot.metrics = None;
                                }
                                snapshot
                            });
                            (state, snapshot)
                        },
                    );
                    (ep.node, r)
                }
            })
            .buffer_unordered(opts.concurrency.max(1));
        while let Some((node, r)) = replies.next().await {
            match r {
                Ok((state, snapshot)) => {
                    if let Some(snap) = snapshot {
                        kept.snapshots.insert(node.clone(), snap);
                    }
                    // An unchanged pool keeps its old allocation: most
                    // pools do not change between rounds, and
                    // re-allocating 5,000 long-lived pools amid the
                    // round's short-lived reply buffers fragments the heap.
                    let unchanged = self
                        .readings
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&node)
                        .filter(|old| ***old == state)
                        .cloned();
                    fresh.insert(node, unchanged.unwrap_or_else(|| Arc::new(state)));
                }
                Err(e) => {
                    if keep {
                        kept.failed.insert(node.clone(), e.kind());
                    }
                    failed += 1;
                    health.count("ipamd", e.kind());
                    tracing::debug!(%node, kind = e.kind(), "node agent not readable");
                }
            }
        }
        let all_failed = failed > 0 && fresh.is_empty() && asked > 0;
        *self.readings.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
        if let Some(k) = &self.kept {
            *k.lock().unwrap_or_else(|p| p.into_inner()) = kept;
        }
        crate::memory::release_free_pages();
        if all_failed {
            Err("all_agents_failed")
        } else {
            Ok(())
        }
    }
}

impl Source for AgentsCollector {
    fn name(&self) -> &'static str {
        "node agents"
    }

    fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    fn fill(&self, st: &mut ClusterState) {
        for (node, r) in self
            .readings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            st.ipamd.insert(node.clone(), Arc::clone(r));
        }
    }

    /// `ipamd/<node>/enis.json` and `metrics.txt` as the agents served
    /// them, plus `agent.json` (the agent's own account: when it read
    /// ipamd and what failed), which also keeps the directory of a node
    /// whose agent answered without a pool.
    fn capture(&self, out: &mut BundleOut) {
        let Some(kept) = &self.kept else {
            return;
        };
        let kept = kept.lock().unwrap_or_else(|p| p.into_inner());
        for (node, snap) in &kept.snapshots {
            if let Some(raw) = &snap.enis {
                out.file(
                    &format!("ipamd/{node}/enis.json"),
                    raw.get().as_bytes().to_vec(),
                );
            }
            if let Some(m) = &snap.metrics {
                out.file(&format!("ipamd/{node}/metrics.txt"), m.as_bytes().to_vec());
            }
            out.json(
                &format!("ipamd/{node}/agent.json"),
                &serde_json::json!({
                    "node": snap.node,
                    "fetchedAt": snap.fetched_at,
                    "eniConfig": snap.eni_config,
                    "errors": snap.errors,
                }),
            );
        }
        for (node, kind) in &kept.failed {
            out.skip(
                &format!("ipamd/{node}/"),
                format!("node agent not readable: {kind}"),
            );
        }
    }
}
