//! HTTP server: serves the latest rendered view. A scrape never calls
//! Kubernetes or AWS; it copies pre-rendered bytes plus process self-metrics.

use crate::health::CollectorStatus;
use crate::model::view::View;
use crate::render::exposition;
use crate::render::{catalogue, html, json};
use crate::{Error, Result};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;

/// What one refresh produces: the view rendered once, served many times.
pub(crate) struct Snapshot {
    pub(crate) view: View,
    pub(crate) collectors: Vec<CollectorStatus>,
    /// The exposition text, shared by every scrape without a copy.
    pub(crate) metrics: Bytes,
    /// `/api/v1/diagnosis`, rendered on first request (rarely asked for,
    /// and tens of MB at 5,000 nodes: not worth doing on every rebuild).
    diagnosis_json: std::sync::OnceLock<Bytes>,
    /// The exposition deflated once, on the first scrape that asks for gzip.
    metrics_gzip: tokio::sync::OnceCell<crate::gzip::Prefix>,
}

impl Snapshot {
    pub(crate) fn new(view: View, collectors: Vec<CollectorStatus>) -> Self {
        Self::with_size_hint(view, collectors, 64 * 1024)
    }

    /// As [`Snapshot::new`], with the buffer sized for `size_hint` bytes up
    /// front (the previous rendering's size): growing a 9 MB text by
    /// doubling peaks at twice its size and copies it each time.
    pub(crate) fn with_size_hint(
        view: View,
        collectors: Vec<CollectorStatus>,
        size_hint: usize,
    ) -> Self {
        let mut metrics = String::with_capacity(size_hint);
        exposition::render(&view, &collectors, &mut metrics);
        // Keep only what the text uses (a large buffer is mmapped: this is
        // an mremap, not a copy).
        metrics.shrink_to_fit();
        Snapshot {
            view,
            collectors,
            metrics: Bytes::from(metrics),
            diagnosis_json: std::sync::OnceLock::new(),
            metrics_gzip: tokio::sync::OnceCell::new(),
        }
    }

    /// Size of the exposition text, to size the next one.
    pub(crate) fn metrics_len(&self) -> usize {
        self.metrics.len()
    }

    /// The view as JSON (`/api/v1/diagnosis`), rendered once per snapshot.
    pub(crate) fn diagnosis_json(&self) -> Bytes {
        self.diagnosis_json
            .get_or_init(|| Bytes::from(json::render(&self.view)))
            .clone()
    }
}

/// Where `/api/v1/plan` gets today's state: the bundle's, or the live
/// collectors' caches assembled on request (never a call to Kubernetes or AWS).
pub(crate) type StateSource = Arc<dyn Fn() -> Arc<crate::model::state::ClusterState> + Send + Sync>;

#[derive(Clone)]
struct Planner {
    source: StateSource,
    thresholds: crate::model::findings::Thresholds,
    /// One plan at a time: each runs the model four times.
    running: Arc<tokio::sync::Semaphore>,
}

#[derive(Clone)]
pub(crate) struct AppState {
    snapshot: Arc<RwLock<Option<Arc<Snapshot>>>>,
    planner: Arc<RwLock<Option<Planner>>>,
    registry: prometheus::Registry,
    requests: prometheus::IntCounterVec,
    /// Size of the last exposition, to size the next one's buffer.
    last_metrics_len: Arc<std::sync::atomic::AtomicUsize>,
}

impl AppState {
    pub(crate) fn new() -> Self {
        let registry = prometheus::Registry::new();
        let requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new(catalogue::HTTP_REQUESTS.name, catalogue::HTTP_REQUESTS.help),
            catalogue::HTTP_REQUESTS.labels,
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(requests.clone()))
            .expect("registering into a fresh registry cannot collide");
        AppState {
            snapshot: Arc::new(RwLock::new(None)),
            planner: Arc::new(RwLock::new(None)),
            registry,
            requests,
            last_metrics_len: Arc::new(std::sync::atomic::AtomicUsize::new(64 * 1024)),
        }
    }

    /// Renders `view` into a new snapshot and publishes it, with the buffer
    /// sized from the last rendering (room for a few more series, so it does
    /// not regrow).
    pub(crate) fn publish_view(&self, view: View, collectors: Vec<CollectorStatus>) {
        let last = self
            .last_metrics_len
            .load(std::sync::atomic::Ordering::Relaxed);
        let snapshot = Snapshot::with_size_hint(view, collectors, last + last / 32 + 4096);
        self.last_metrics_len
            .store(snapshot.metrics_len(), std::sync::atomic::Ordering::Relaxed);
        self.publish(snapshot);
    }

    /// Publishes a new snapshot; `/readyz` turns ready with the first one.
    pub(crate) fn publish(&self, s: Snapshot) {
        let mut guard = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
        *guard = Some(Arc::new(s));
    }

    /// Enables `/api/v1/plan` on the state `source` gives.
    pub(crate) fn set_plan_source(
        &self,
        source: StateSource,
        thresholds: crate::model::findings::Thresholds,
    ) {
        *self.planner.write().unwrap_or_else(|p| p.into_inner()) = Some(Planner {
            source,
            thresholds,
            running: Arc::new(tokio::sync::Semaphore::new(1)),
        });
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Default for AppState {
    fn default() -> Self {
        AppState::new()
    }
}

const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(st): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    st.requests.with_label_values(&["metrics"]).inc();
    let Some(snap) = st.current() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no data yet\n").into_response();
    };
    let families = st.registry.gather();
    let own = prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_default();
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(crate::gzip::accepted);
    if gzip {
        let s = snap.clone();
        let prefix = snap
            .metrics_gzip
            .get_or_try_init(|| async move {
                // Megabytes to deflate: off the async workers.
                tokio::task::spawn_blocking(move || crate::gzip::prefix(&s.metrics)).await
            })
            .await;
        if let Ok(prefix) = prefix {
            let body = Chunks::new(crate::gzip::finish(prefix, own.as_bytes()));
            return (
                [
                    (header::CONTENT_TYPE, EXPOSITION),
                    (header::CONTENT_ENCODING, "gzip"),
                    (header::VARY, "accept-encoding"),
                ],
                Body::new(body),
            )
                .into_response();
        }
    }
    let body = Chunks::new([snap.metrics.clone(), Bytes::from(own)]);
    (
        [
            (header::CONTENT_TYPE, EXPOSITION),
            (header::VARY, "accept-encoding"),
        ],
        Body::new(body),
    )
        .into_response()
}

/// A body of a few shared buffers, sent as they are (no concatenation: the
/// exposition of 5,000 nodes is megabytes), with an exact Content-Length.
struct Chunks {
    parts: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    fn new(parts: impl IntoIterator<Item = Bytes>) -> Self {
        let parts: std::collections::VecDeque<Bytes> =
            parts.into_iter().filter(|b| !b.is_empty()).collect();
        let remaining = parts.iter().map(|b| b.len() as u64).sum();
        Chunks { parts, remaining }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let next = self.parts.pop_front();
        if let Some(b) = &next {
            self.remaining -= b.len() as u64;
        }
        std::task::Poll::Ready(next.map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

async fn diagnosis(State(st): State<AppState>) -> Response {
    st.requests.with_label_values(&["diagnosis"]).inc();
    match st.current() {
        Some(s) => {
            // Off the async workers: at 5,000 nodes rendering takes a while.
            let body = tokio::task::spawn_blocking(move || s.diagnosis_json())
                .await
                .unwrap_or_default();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "no data yet\n").into_response(),
    }
}

/// Why a plan request did not run: status and message.
type PlanRefusal = (StatusCode, String);

/// Parses `set=NAME=VALUE` parameters and runs `plan` on the state this
/// server shows, off the async threads, one plan at a time (each runs the
/// model four times): `render` turns the outcome into the body.
async fn run_plan(
    st: &AppState,
    params: &[(String, String)],
    render: fn(&crate::model::plan::Outcome) -> String,
) -> Result<String, PlanRefusal> {
    let planner = st.planner.read().unwrap_or_else(|p| p.into_inner()).clone();
    let (Some(planner), Some(_)) = (planner, st.current()) else {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "no data yet".into()));
    };
    let mut changes = Vec::new();
    for (key, value) in params {
        if key != "set" {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("unknown parameter {key:?}: use set=NAME=VALUE"),
            ));
        }
        changes
            .push(crate::model::plan::parse_set(value).map_err(|e| (StatusCode::BAD_REQUEST, e))?);
    }
    if changes.is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "no change: add set=NAME=VALUE (e.g. set=WARM_IP_TARGET=10)".into(),
        ));
    }
    let Ok(permit) = planner.running.clone().try_acquire_owned() else {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            "another plan is running; try again".into(),
        ));
    };
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let state = (planner.source)();
        crate::model::plan::run(&state, &changes, &planner.thresholds)
            .map(|o| render(&o))
            .map_err(|e| (StatusCode::BAD_REQUEST, e))
    })
    .await
    .unwrap_or_else(|_| Err((StatusCode::INTERNAL_SERVER_ERROR, "plan failed".into())))
}

/// `/api/v1/plan?set=NAME=VALUE&set=...`: `plan --output json` on the state
/// this server shows. 400 with the reason for a bad setting, 429 while
/// another plan runs, 503 before the first view.
async fn plan(State(st): State<AppState>, Query(params): Query<Vec<(String, String)>>) -> Response {
    st.requests.with_label_values(&["plan"]).inc();
    match run_plan(&st, &params, crate::render::plan::json).await {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err((code, msg)) => (
            code,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{msg}\n"),
        )
            .into_response(),
    }
}

/// `/plan?set=...`: the page's "what if" form, answered with `plan`'s table.
async fn plan_page(
    State(st): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    st.requests.with_label_values(&["plan_page"]).inc();
    // An empty field (the form sent as is) is no change, not an error.
    let params: Vec<(String, String)> = params
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    let sets: Vec<String> = params.iter().map(|(_, v)| v.clone()).collect();
    let (code, body) = match run_plan(&st, &params, crate::render::plan::table).await {
        Ok(table) => (StatusCode::OK, html::plan_page(&sets, Ok(&table))),
        Err((code, msg)) => (code, html::plan_page(&sets, Err(&msg))),
    };
    (
        code,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
            ),
        ],
        body,
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(st): State<AppState>) -> Response {
    match st.current() {
        Some(_) => "ready\n".into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "not ready: no view yet\n").into_response(),
    }
}

async fn index(State(st): State<AppState>, Query(filter): Query<html::Filter>) -> Response {
    st.requests.with_label_values(&["page"]).inc();
    let Some(snap) = st.current() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no data yet\n").into_response();
    };
    let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let body = html::render(&snap.view, &snap.collectors, &filter, now);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Self-contained page: forbid every external load.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
            ),
        ],
        body,
    )
        .into_response()
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/api/v1/diagnosis", get(diagnosis))
        .route("/api/v1/plan", get(plan))
        .route("/plan", get(plan_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// How long in-flight requests may take after SIGTERM (Kubernetes' default
/// grace period is 30 s; a stuck client must not hold the pod that long).
pub(crate) const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Where and how to serve: the `--listen` address and the optional
/// `--web.config.file` (TLS, basic auth).
#[derive(Clone)]
pub(crate) struct Listen {
    pub(crate) addr: String,
    pub(crate) web: Option<Arc<crate::web::WebConfig>>,
}

impl Listen {
    /// Reads the web config file now: a bad one stops the start, never
    /// serves without the TLS or auth it asked for.
    pub(crate) fn new(addr: &str, web_config: Option<&std::path::Path>) -> Result<Self> {
        Ok(Listen {
            addr: crate::web::normalize_listen(addr),
            web: web_config.map(crate::web::WebConfig::open).transpose()?,
        })
    }

    /// Binds the address.
    pub(crate) async fn bind(&self) -> Result<(TcpListener, std::net::SocketAddr)> {
        let err = |source| Error::Listen {
            addr: self.addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&self.addr).await.map_err(err)?;
        let local = listener.local_addr().map_err(err)?;
        Ok((listener, local))
    }

    /// `http` or `https`, for the URLs printed to people.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.web.as_ref().is_some_and(|w| w.tls_enabled()) {
            "https"
        } else {
            "http"
        }
    }
}

/// Serves until SIGTERM or Ctrl-C.
pub(crate) async fn serve(listen: &Listen, state: AppState) -> Result<()> {
    serve_then(listen, state, |_| {}).await
}

/// As [`serve`], calling `on_listening` with the bound address first.
pub(crate) async fn serve_then(
    listen: &Listen,
    state: AppState,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    let (listener, local) = listen.bind().await?;
    tracing::info!(%local, scheme = listen.scheme(), "listening");
    on_listening(local);
    serve_until_signal(listener, router(state), listen.web.clone(), SHUTDOWN_GRACE).await
}

/// Serves `app` until SIGTERM or Ctrl-C, then lets in-flight requests finish
/// for at most `grace` (a client that stops reading cannot stall the exit).
/// With a web config: its basic auth in front of `app`, and TLS if it asks.
pub(crate) async fn serve_until_signal(
    listener: TcpListener,
    app: Router,
    web: Option<Arc<crate::web::WebConfig>>,
    grace: std::time::Duration,
) -> Result<()> {
    match web {
        None => serve_plain(listener, app, grace).await,
        Some(web) => {
            let app = app.layer(axum::middleware::from_fn_with_state(
                web.clone(),
                crate::web::require_auth,
            ));
            if web.tls_enabled() {
                let listener = crate::web::TlsListener::new(listener, web)
                    .map_err(|source| Error::Serve { source })?;
                serve_with_grace(listener, app, grace).await
            } else {
                serve_plain(listener, app, grace).await
            }
        }
    }
}

async fn serve_plain(listener: TcpListener, app: Router, grace: std::time::Duration) -> Result<()> {
    // No Nagle: a scrape's body is sent as a few buffers, and a small last
    // segment must not wait for the client's delayed ACK (40 ms).
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    serve_with_grace(listener, app, grace).await
}

async fn serve_with_grace<L>(listener: L, app: Router, grace: std::time::Duration) -> Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    tokio::select! {
        r = server => r.map_err(|source| Error::Serve { source }),
        _ = async {
            let _ = rx.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_seconds = grace.as_secs(), "in-flight requests did not finish in time; exiting");
            Ok(())
        }
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
