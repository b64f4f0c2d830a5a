//! The `node` role: a hostNetwork agent that reads ipamd on the node's
//! loopback (introspection `/v1/enis`, `/v1/eni-configs` and its metrics),
//! serves per-node `/metrics`, and a JSON pool snapshot (`/v1/pool`) that the
//! `cluster` role pulls. The snapshot carries ipamd's own payloads, so the
//! cluster parses them with the same code as a bundle.

use crate::health::CollectorStatus;
use crate::http::{self, HttpClient};
use crate::model::analysis::pool_stats;
use crate::model::capacity::IpMode;
use crate::model::growth::PoolStats;
use crate::model::state::{IpamdMetrics, IpamdPool};
use crate::render::catalogue;
use crate::render::exposition::{render_collectors, Family};
use crate::sources::agent::PoolSnapshot;
use crate::sources::ipamd;
use crate::Result;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Largest ipamd answer accepted (a full m7i.48xlarge pool is well under 1 MiB).
const MAX_IPAMD_BODY: usize = 8 * 1024 * 1024;
const IPAMD_TIMEOUT: Duration = Duration::from_secs(3);
/// ipamd's default IP_COOLDOWN_PERIOD; the agent cannot see aws-node's env.
const DEFAULT_COOLDOWN_SECONDS: u32 = 30;

#[derive(Debug, Clone)]
pub(crate) struct AgentConfig {
    pub(crate) node_name: String,
    pub(crate) introspection_url: String,
    pub(crate) metrics_url: String,
    pub(crate) interval: Duration,
}

struct Latest {
    snapshot: PoolSnapshot,
    pool: Option<IpamdPool>,
    metrics: Option<IpamdMetrics>,
    status: CollectorStatus,
}

#[derive(Clone)]
struct AgentState {
    node: String,
    latest: Arc<RwLock<Option<Latest>>>,
}

fn now_unix() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

/// The kind counted for a part that was fetched but could not be parsed.
pub(crate) const MALFORMED: &str = "malformed";

/// One read of ipamd, with the kind of every part that failed.
#[derive(Debug)]
pub(crate) struct IpamdRead {
    pub(crate) snapshot: PoolSnapshot,
    pub(crate) pool: Option<IpamdPool>,
    pub(crate) metrics: Option<IpamdMetrics>,
    /// One entry per part that failed, from a closed set: the
    /// [`FetchError`](crate::http::FetchError) kinds (`connect`, `timeout`, `too_large`,
    /// `http_status`, ...) and [`MALFORMED`]. Never an endpoint name.
    pub(crate) error_kinds: Vec<&'static str>,
}

/// [`read_ipamd`], also saying which kind of error each failed part had.
pub(crate) async fn read_ipamd_counted(client: &HttpClient, cfg: &AgentConfig) -> IpamdRead {
    let base = cfg.introspection_url.trim_end_matches('/');
    let (enis_url, configs_url) = (format!("{base}/v1/enis"), format!("{base}/v1/eni-configs"));
    let (enis, configs, metrics) = tokio::join!(
        http::get(client, &enis_url, IPAMD_TIMEOUT, MAX_IPAMD_BODY),
        http::get(client, &configs_url, IPAMD_TIMEOUT, 64 * 1024),
        http::get(client, &cfg.metrics_url, IPAMD_TIMEOUT, MAX_IPAMD_BODY),
    );
    let mut snap = PoolSnapshot {
        node: cfg.node_name.clone(),
        fetched_at: Some(jiff::Timestamp::now().to_string()),
        ..Default::default()
    };
    let mut kinds = Vec::new();
    let mut pool = None;
    match enis {
        Ok(body) => match ipamd::parse_enis(&body) {
            Ok(p) => {
                pool = Some(p);
                snap.enis = std::str::from_utf8(&body)
                    .ok()
                    .and_then(|t| serde_json::value::RawValue::from_string(t.to_string()).ok());
            }
            Err(e) => {
                snap.errors
                    .insert("enis".into(), format!("invalid /v1/enis: {e}"));
                kinds.push(MALFORMED);
            }
        },
        Err(e) => {
            snap.errors.insert("enis".into(), e.as_str().into());
            kinds.push(e.as_str());
        }
    }
    match configs {
        // A JSON string, e.g. "us-west-2a"; 404 when ipamd cannot reach the apiserver.
        Ok(body) => match serde_json::from_slice::<String>(&body) {
            Ok(name) => snap.eni_config = Some(name),
            Err(_) => {
                snap.errors
                    .insert("eni_configs".into(), "not a JSON string".into());
                kinds.push(MALFORMED);
            }
        },
        Err(e) => {
            snap.errors.insert("eni_configs".into(), e.as_str().into());
            kinds.push(e.as_str());
        }
    }
    let mut parsed_metrics = None;
    match metrics.map(|b| String::from_utf8(b.to_vec())) {
        Ok(Ok(text)) => match ipamd::parse_metrics(&text) {
            Ok(m) => {
                parsed_metrics = Some(m);
                snap.metrics = Some(
                    text.lines()
                        .filter(|l| {
                            l.starts_with("awscni_")
                                || l.starts_with("# HELP awscni_")
                                || l.starts_with("# TYPE awscni_")
                        })
                        .map(|l| format!("{l}\n"))
                        .collect(),
                );
            }
            Err(e) => {
                snap.errors
                    .insert("metrics".into(), format!("invalid metrics: {e}"));
                kinds.push(MALFORMED);
            }
        },
        Ok(Err(_)) => {
            snap.errors
                .insert("metrics".into(), "invalid metrics: not UTF-8".into());
            kinds.push(MALFORMED);
        }
        Err(e) => {
            snap.errors.insert("metrics".into(), e.as_str().into());
            kinds.push(e.as_str());
        }
    }
    IpamdRead {
        snapshot: snap,
        pool,
        metrics: parsed_metrics,
        error_kinds: kinds,
    }
}

/// The node role's exposition.
pub(crate) fn render_metrics(
    node: &str,
    pool: Option<&IpamdPool>,
    metrics: Option<&IpamdMetrics>,
    status: &CollectorStatus,
    out: &mut String,
) {
    let mut up = Family::new(&catalogue::IPAMD_UP);
    up.sample(&[("node", node)], if pool.is_some() { 1.0 } else { 0.0 });
    up.finish(out);
    if let Some(p) = pool {
        let mode = if p.all_enis().any(|e| e.cidrs.iter().any(|c| c.prefix)) {
            IpMode::Prefix
        } else {
            IpMode::SecondaryIp
        };
        // Every network card ipamd manages (ENABLE_MULTI_NIC): node totals.
        let now = Some(jiff::Timestamp::now());
        let st = std::iter::once(p)
            .chain(p.other_cards.iter().map(|c| &c.pool))
            .map(|card| pool_stats(card, mode, now, DEFAULT_COOLDOWN_SECONDS))
            .fold(PoolStats::default(), |t, c| PoolStats {
                total_ips: t.total_ips + c.total_ips,
                assigned_ips: t.assigned_ips + c.assigned_ips,
                cooldown_ips: t.cooldown_ips + c.cooldown_ips,
                free_prefixes: t.free_prefixes + c.free_prefixes,
            });
        let mut ips = Family::new(&catalogue::IPAMD_IPS);
        ips.sample(
            &[("node", node), ("state", "assigned")],
            f64::from(st.assigned_ips),
        );
        ips.sample(
            &[("node", node), ("state", "available")],
            f64::from(st.total_ips - st.assigned_ips - st.cooldown_ips),
        );
        ips.sample(
            &[("node", node), ("state", "cooldown")],
            f64::from(st.cooldown_ips),
        );
        ips.finish(out);
        let mut enis = Family::new(&catalogue::IPAMD_ENIS);
        enis.sample(&[("node", node)], p.all_enis().count() as f64);
        enis.finish(out);
        let mut per_eni = Family::new(&catalogue::IPAMD_ENI_IPS);
        for e in p.all_enis() {
            let n: u32 = e.cidrs.iter().map(|c| if c.prefix { 16 } else { 1 }).sum();
            per_eni.sample(
                &[
                    ("node", node),
                    ("eni", &e.id),
                    ("primary", if e.primary { "true" } else { "false" }),
                ],
                f64::from(n),
            );
        }
        per_eni.finish(out);
        let mut prefixes = Family::new(&catalogue::IPAMD_PREFIXES);
        prefixes.sample(
            &[("node", node)],
            p.all_enis()
                .flat_map(|e| &e.cidrs)
                .filter(|c| c.prefix)
                .count() as f64,
        );
        prefixes.finish(out);
        let mut dup = Family::new(&catalogue::IPAMD_DUPLICATE_ADDRESSES);
        let duplicates = p.duplicate_cidrs
            + p.other_cards
                .iter()
                .map(|c| c.pool.duplicate_cidrs)
                .sum::<u32>();
        dup.sample(&[("node", node)], f64::from(duplicates));
        dup.finish(out);
    }
    if let Some(v) = metrics.and_then(|m| m.no_available_ip_addresses) {
        let mut f = Family::new(&catalogue::IPAMD_NO_AVAILABLE_IP);
        f.sample(&[("node", node)], v);
        f.finish(out);
    }
    render_collectors(std::slice::from_ref(status), out);
}

async fn metrics_handler(State(st): State<AgentState>) -> Response {
    let guard = st.latest.read().unwrap_or_else(|p| p.into_inner());
    let Some(l) = guard.as_ref() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no data yet\n").into_response();
    };
    let mut out = String::with_capacity(4096);
    render_metrics(
        &st.node,
        l.pool.as_ref(),
        l.metrics.as_ref(),
        &l.status,
        &mut out,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn pool_handler(State(st): State<AgentState>) -> Response {
    let guard = st.latest.read().unwrap_or_else(|p| p.into_inner());
    match guard.as_ref() {
        Some(l) => axum::Json(l.snapshot.clone()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no data yet\n").into_response(),
    }
}

async fn readyz(State(st): State<AgentState>) -> Response {
    match st.latest.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        Some(_) => "ready\n".into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: ipamd not read yet\n",
        )
            .into_response(),
    }
}

/// Runs the agent until SIGTERM.
pub(crate) async fn run(listen: &crate::server::Listen, cfg: AgentConfig) -> Result<()> {
    let st = AgentState {
        node: cfg.node_name.clone(),
        latest: Arc::new(RwLock::new(None)),
    };
    let poller = {
        let st = st.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let client = http::client();
            let mut last_success = None;
            // Errors since the process started, by kind (a closed set): the
            // counter behind `eks_ipam_collector_errors_total`.
            let mut errors_total: BTreeMap<&'static str, u64> = BTreeMap::new();
            loop {
                let started = Instant::now();
                let IpamdRead {
                    snapshot,
                    pool,
                    metrics,
                    error_kinds,
                } = read_ipamd_counted(&client, &cfg).await;
                for kind in error_kinds {
                    *errors_total.entry(kind).or_insert(0) += 1;
                }
                if pool.is_some() {
                    last_success = Some(now_unix());
                } else {
                    tracing::warn!(node = %cfg.node_name, errors = ?snapshot.errors, "cannot read ipamd");
                }
                let status = CollectorStatus {
                    collector: "ipamd",
                    up: pool.is_some(),
                    last_success_unix: last_success,
                    duration_seconds: started.elapsed().as_secs_f64(),
                    errors: errors_total
                        .iter()
                        .map(|(k, n)| ((*k).to_string(), *n))
                        .collect(),
                    requests: 0,
                };
                *st.latest.write().unwrap_or_else(|p| p.into_inner()) = Some(Latest {
                    snapshot,
                    pool,
                    metrics,
                    status,
                });
                tokio::time::sleep(cfg.interval).await;
            }
        })
    };
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/v1/pool", get(pool_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(st);
    let (listener, local) = listen.bind().await?;
    tracing::info!(%local, scheme = listen.scheme(), node = %cfg.node_name, "node agent listening");
    let served = crate::server::serve_until_signal(
        listener,
        app,
        listen.web.clone(),
        crate::server::SHUTDOWN_GRACE,
    )
    .await;
    poller.abort();
    served
}
