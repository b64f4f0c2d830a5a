//! Live collection for the `cluster` role. Background tasks keep each
//! source's slice of the typed state fresh; a rebuild task assembles the
//! slices into one [`ClusterState`], builds the view and publishes it,
//! whenever a source reports a change (debounced) and at least every
//! `max_age`, because ages (silence, cooldown) move with the clock.
//! A scrape never waits on any of this.

pub(crate) mod agents;
pub(crate) mod cloudtrail;
pub(crate) mod ec2;
pub(crate) mod kube;
pub(crate) mod rate;

use crate::health::CollectorStatus;
use crate::model::findings::Thresholds;
use crate::model::state::ClusterState;
use crate::model::view;
use crate::sources::bundle::BundleOut;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Closed set of AWS SDK failure kinds (EC2 and CloudTrail share smithy's
/// `SdkError`), for logs and `eks_ipam_collector_errors_total`.
pub(crate) fn aws_error_kind<E, R>(e: &aws_sdk_ec2::error::SdkError<E, R>) -> &'static str
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata,
{
    use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
    match e {
        SdkError::TimeoutError(_) => "timeout",
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => "connect",
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => "credentials_or_config",
        _ => match e.code() {
            Some("ThrottlingException" | "Throttling" | "RequestLimitExceeded") => "throttled",
            Some("AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation") => {
                "access_denied"
            }
            Some(
                "ExpiredTokenException"
                | "ExpiredToken"
                | "UnrecognizedClientException"
                | "AuthFailure"
                | "RequestExpired",
            ) => "expired_credentials",
            Some("InvalidNextTokenException") => "invalid_next_token",
            Some(
                "InternalError"
                | "InternalFailure"
                | "InternalServerError"
                | "Unavailable"
                | "ServiceUnavailable",
            ) => "server_error",
            _ => "api_error",
        },
    }
}

/// Health of every collector, for `eks_ipam_collector_*`.
#[derive(Default)]
pub(crate) struct Health {
    inner: Mutex<BTreeMap<&'static str, CollectorStatus>>,
}

fn now_unix() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

impl Health {
    fn entry<'a>(
        map: &'a mut BTreeMap<&'static str, CollectorStatus>,
        name: &'static str,
    ) -> &'a mut CollectorStatus {
        map.entry(name).or_insert_with(|| CollectorStatus {
            collector: name,
            up: false,
            last_success_unix: None,
            duration_seconds: 0.0,
            errors: BTreeMap::new(),
            requests: 0,
        })
    }

    /// Registers a collector as not-yet-run, so `collector_up` shows 0 from the start.
    pub(crate) fn register(&self, name: &'static str) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Self::entry(&mut m, name);
    }

    pub(crate) fn success(&self, name: &'static str, took: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let e = Self::entry(&mut m, name);
        e.up = true;
        e.last_success_unix = Some(now_unix());
        e.duration_seconds = took.as_secs_f64();
    }

    /// A failed run: `kind` must come from a closed set.
    pub(crate) fn failure(&self, name: &'static str, kind: &'static str, took: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let e = Self::entry(&mut m, name);
        e.up = false;
        e.duration_seconds = took.as_secs_f64();
        *e.errors.entry(kind.to_string()).or_default() += 1;
    }

    /// An error that does not make the whole collector down (one resource,
    /// one agent, one event): counted only.
    pub(crate) fn count(&self, name: &'static str, kind: &'static str) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *Self::entry(&mut m, name)
            .errors
            .entry(kind.to_string())
            .or_default() += 1;
    }

    /// One API request sent by the collector.
    pub(crate) fn request(&self, name: &'static str) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Self::entry(&mut m, name).requests += 1;
    }

    pub(crate) fn set_up(&self, name: &'static str, up: bool) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let e = Self::entry(&mut m, name);
        e.up = up;
        if up {
            e.last_success_unix = Some(now_unix());
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<CollectorStatus> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Records one polling round of `collector` in `health` (a failure keeps the
/// previous data, said in `on_failure`), then wakes the rebuild loop.
/// Returns whether the round succeeded.
pub(crate) fn report_round(
    health: &Health,
    changed: &Notify,
    collector: &'static str,
    took: Duration,
    result: Result<(), &'static str>,
    on_failure: &str,
) -> bool {
    let ok = match result {
        Ok(()) => {
            health.success(collector, took);
            true
        }
        Err(kind) => {
            health.failure(collector, kind, took);
            tracing::warn!(collector, kind, "round failed; {on_failure}");
            false
        }
    };
    changed.notify_one();
    ok
}

/// Runs `round` for ever, `interval` apart: each round is recorded in
/// `health` and wakes the rebuild loop ([`report_round`]); `after` gets
/// whether it succeeded. The one loop of the EC2, CloudTrail and node-agent
/// pollers.
pub(crate) async fn run_poller<F, Fut>(
    collector: &'static str,
    interval: Duration,
    health: Arc<Health>,
    changed: Arc<Notify>,
    on_failure: &'static str,
    mut round: F,
    after: impl Fn(bool),
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), &'static str>>,
{
    loop {
        let started = Instant::now();
        let result = round().await;
        let ok = report_round(
            &health,
            &changed,
            collector,
            started.elapsed(),
            result,
            on_failure,
        );
        after(ok);
        tokio::time::sleep(interval).await;
    }
}

/// Something that contributes its slice of the state.
pub(crate) trait Source: Send + Sync {
    fn fill(&self, state: &mut ClusterState);
    /// Writes what `fill` reads, in the bundle layout, so that loading the
    /// bundle gives the state `fill` gives (`capture`). Sources started
    /// without `keep_for_capture` write what they can without it.
    fn capture(&self, out: &mut BundleOut);
    /// True once the first full read is done (readiness).
    fn synced(&self) -> bool;
    /// Whether the first view waits for this source. The AWS pollers do
    /// not gate it: at 5,000 nodes their first round takes tens of seconds
    /// (EC2 calls in batches of 200 under a request budget), and until then
    /// what they feed is unknown (absent), never guessed.
    fn gates_first_view(&self) -> bool {
        true
    }
    /// Without this source no diagnosis is possible (Kubernetes: there are
    /// no nodes to diagnose); a one-shot `diagnose` fails instead of saying
    /// "no findings".
    fn required(&self) -> bool {
        false
    }
    /// What is still being waited for (for progress messages).
    fn waiting_for(&self) -> Vec<&'static str> {
        if self.synced() {
            Vec::new()
        } else {
            vec![self.name()]
        }
    }
    fn name(&self) -> &'static str;
}

pub(crate) struct Live {
    pub(crate) cluster_name: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) sources: Vec<Arc<dyn Source>>,
    pub(crate) health: Arc<Health>,
    pub(crate) changed: Arc<Notify>,
}

impl Live {
    /// The whole state as the sources see it now.
    pub(crate) fn assemble(&self) -> ClusterState {
        let mut st = ClusterState {
            now: Some(jiff::Timestamp::now()),
            cluster_name: self.cluster_name.clone(),
            region: self.region.clone(),
            ..Default::default()
        };
        for s in &self.sources {
            s.fill(&mut st);
        }
        st
    }

    /// What every source holds, as a bundle (`capture`).
    pub(crate) fn capture(&self) -> BundleOut {
        let mut out = BundleOut::default();
        for s in &self.sources {
            s.capture(&mut out);
        }
        out
    }

    /// Required sources that have not synced, with what each still waits for.
    pub(crate) fn required_unsynced(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        self.sources
            .iter()
            .filter(|s| s.required() && !s.synced())
            .map(|s| (s.name(), s.waiting_for()))
            .collect()
    }

    pub(crate) fn synced(&self) -> bool {
        self.sources.iter().all(|s| s.synced())
    }

    /// Every source the first view waits for has synced.
    pub(crate) fn ready_for_first_view(&self) -> bool {
        self.sources
            .iter()
            .filter(|s| s.gates_first_view())
            .all(|s| s.synced())
    }

    pub(crate) fn waiting_for(&self) -> Vec<&'static str> {
        self.sources.iter().flat_map(|s| s.waiting_for()).collect()
    }
}

/// Rebuilds and publishes the view: `debounce` after a change, and at least
/// every `max_age`. The first view is published once Kubernetes and the node
/// agents synced (EC2 and CloudTrail fill in later; unknown until then),
/// or after `ready_timeout` with what is there (unknown stays unknown).
pub(crate) async fn run_rebuilder(
    live: Arc<Live>,
    mut publish: impl FnMut(view::View, Vec<CollectorStatus>) + Send,
    cfg: Thresholds,
    debounce: Duration,
    max_age: Duration,
    ready_timeout: Duration,
) {
    let started = Instant::now();
    let mut published = false;
    let mut last_build = Duration::ZERO;
    loop {
        tokio::select! {
            // Under constant churn a rebuild follows every change: pausing
            // four build times keeps rebuilds under ~20 % of a core at any
            // size (at 5,000 nodes a change still shows within ~2 s).
            _ = live.changed.notified() => tokio::time::sleep(debounce.max(last_build * 4)).await,
            _ = tokio::time::sleep(if published { max_age } else { Duration::from_millis(500) }) => {},
        }
        if !published && !live.ready_for_first_view() && started.elapsed() < ready_timeout {
            continue;
        }
        let t = Instant::now();
        let state = live.assemble();
        let v = view::build(&state, &cfg);
        // Rendering needs only the view: free the assembled state first.
        drop(state);
        tracing::debug!(
            view_ms = t.elapsed().as_millis() as u64,
            nodes = v.nodes.len(),
            "view rebuilt"
        );
        publish(v, live.health.snapshot());
        // The state and the old snapshot were just freed: hand their pages back.
        crate::memory::release_free_pages();
        last_build = t.elapsed();
        if !published {
            tracing::info!(
                synced = live.synced(),
                after_ms = started.elapsed().as_millis() as u64,
                "first view published"
            );
        }
        published = true;
    }
}
