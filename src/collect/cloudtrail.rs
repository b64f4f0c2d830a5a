//! CloudTrail LookupEvents poller for the ENI/IP calls ipamd makes.
//!
//! LookupEvents allows one lookup attribute per call, so each event name is
//! its own query. CloudTrail delivers events minutes late, so every query
//! re-reads an overlap before the previous window's end, and events are
//! de-duplicated by id. A client-side limiter keeps us far below the
//! account's shared 2 requests/s. Until one full round succeeded the API-call
//! view is unknown, so silence never reads as "no calls" before we caught up.

use super::rate::RateLimiter;
use super::{Health, Source};
use crate::model::state::{ApiCall, ApiCallState, ClusterState, Operation};
use crate::sources::bundle::BundleOut;
use crate::sources::cloudtrail::{to_api_call, LookupEvent};
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_smithy_types::DateTime;
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Event names polled: what ipamd calls to add and release pod IPs.
pub(crate) const POLLED: [Operation; 4] = [
    Operation::AssignPrivateIpAddresses,
    Operation::CreateNetworkInterface,
    Operation::AttachNetworkInterface,
    Operation::UnassignPrivateIpAddresses,
];

#[derive(Debug, Clone)]
pub(crate) struct CloudTrailOptions {
    /// Seconds between rounds (one round = one query per event name).
    pub(crate) poll_interval: Duration,
    /// How far back the first round reads, and how long calls are kept.
    pub(crate) lookback: Duration,
    /// Re-read window before the previous end (late delivery).
    pub(crate) overlap: Duration,
    /// Client-side cap on LookupEvents requests per second.
    pub(crate) max_rps: f64,
    /// Also keep each call's event as LookupEvents returned it, for `capture`.
    pub(crate) keep_for_capture: bool,
}

impl Default for CloudTrailOptions {
    fn default() -> Self {
        CloudTrailOptions {
            poll_interval: Duration::from_secs(60),
            lookback: Duration::from_secs(3 * 3600),
            overlap: Duration::from_secs(20 * 60),
            max_rps: 0.2,
            keep_for_capture: false,
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Last fully successful round.
    last_success: Option<Instant>,
    /// By event id; with the event itself when kept for capture.
    calls: HashMap<String, (ApiCall, Option<LookupEvent>)>,
    cursors: BTreeMap<Operation, Timestamp>,
    coverage_start: Option<Timestamp>,
    requests: u64,
}

pub(crate) struct CloudTrailCollector {
    inner: Mutex<Inner>,
    /// After this long without a successful round the API-call view is
    /// unknown: silence measured by a poller that stopped is no evidence.
    stale_after: Duration,
}

fn to_dt(t: Timestamp) -> DateTime {
    DateTime::from_millis(t.as_millisecond())
}

impl CloudTrailCollector {
    pub(crate) fn start(
        client: aws_sdk_cloudtrail::Client,
        opts: CloudTrailOptions,
        health: Arc<Health>,
        changed: Arc<Notify>,
    ) -> Arc<Self> {
        health.register("cloudtrail");
        let me = Arc::new(CloudTrailCollector {
            inner: Mutex::new(Inner::default()),
            stale_after: (opts.poll_interval * 5).max(Duration::from_secs(600)),
        });
        let this = me.clone();
        tokio::spawn(async move {
            let limiter = RateLimiter::with_burst(opts.max_rps, POLLED.len() as u32);
            let (health, interval) = (health.clone(), opts.poll_interval);
            super::run_poller(
                "cloudtrail",
                interval,
                health.clone(),
                changed,
                "keeping the previous calls",
                || this.round(&client, &opts, &limiter, &health),
                |_| {},
            )
            .await
        });
        me
    }

    async fn round(
        &self,
        client: &aws_sdk_cloudtrail::Client,
        opts: &CloudTrailOptions,
        limiter: &RateLimiter,
        health: &Health,
    ) -> Result<(), &'static str> {
        let now = Timestamp::now();
        let floor = now - jiff::SignedDuration::try_from(opts.lookback).unwrap_or_default();
        let overlap = jiff::SignedDuration::try_from(opts.overlap).unwrap_or_default();
        let mut fresh = Vec::new();
        let mut cursors = Vec::new();
        for op in POLLED {
            let cursor = self
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cursors
                .get(&op)
                .copied();
            let start = cursor.map(|c| c - overlap).unwrap_or(floor).max(floor);
            let mut token: Option<String> = None;
            loop {
                limiter.acquire().await;
                self.inner
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .requests += 1;
                health.request("cloudtrail");
                let attr = LookupAttribute::builder()
                    .attribute_key(LookupAttributeKey::EventName)
                    .attribute_value(op.as_str())
                    .build()
                    .map_err(|_| "api_error")?;
                let resp = client
                    .lookup_events()
                    .lookup_attributes(attr)
                    .start_time(to_dt(start))
                    .end_time(to_dt(now))
                    .max_results(50)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| super::aws_error_kind(&e))?;
                for e in resp.events() {
                    let ev = LookupEvent {
                        event_id: e.event_id().map(str::to_string),
                        event_name: e.event_name().map(str::to_string),
                        event_time: e
                            .event_time()
                            .map(|t| serde_json::Value::from(t.as_secs_f64())),
                        username: e.username().map(str::to_string),
                        cloud_trail_event: e.cloud_trail_event().map(str::to_string),
                    };
                    match to_api_call(&ev) {
                        Ok(Some(call)) => {
                            fresh.push((call, opts.keep_for_capture.then_some(ev)));
                        }
                        Ok(None) => {}
                        Err(err) => {
                            health.count("cloudtrail", "invalid_event");
                            tracing::debug!(error = %err, "skipping CloudTrail event");
                        }
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
            cursors.push((op, now));
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for c in fresh {
            inner.calls.entry(c.0.event_id.clone()).or_insert(c);
        }
        for (op, t) in cursors {
            inner.cursors.insert(op, t);
        }
        inner.coverage_start.get_or_insert(floor);
        inner.last_success = Some(Instant::now());
        // Keep what the lookback covers; older calls only matter as "last
        // call", and a node silent for longer is reported as silent since
        // coverage start anyway.
        let keep_from = floor - overlap;
        inner.calls.retain(|_, (c, _)| c.time >= keep_from);
        if let Some(start) = inner.coverage_start {
            inner.coverage_start = Some(start.max(keep_from));
        }
        Ok(())
    }
}

impl Source for CloudTrailCollector {
    fn name(&self) -> &'static str {
        "CloudTrail"
    }

    fn gates_first_view(&self) -> bool {
        false
    }

    fn synced(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .coverage_start
            .is_some()
    }

    fn fill(&self, st: &mut ClusterState) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Unknown until a full round succeeded, and again once rounds keep failing.
        let fresh = inner
            .last_success
            .is_some_and(|t| t.elapsed() <= self.stale_after);
        if let (Some(start), true) = (inner.coverage_start, fresh) {
            let mut calls: Vec<ApiCall> = inner.calls.values().map(|(c, _)| c.clone()).collect();
            calls.sort_by(|a, b| a.time.cmp(&b.time).then(a.event_id.cmp(&b.event_id)));
            st.api_calls = Some(ApiCallState {
                calls,
                coverage_start: Some(start),
            });
        }
    }

    /// The kept events as `cloudtrail/<EventName>.json`, one file per
    /// polled name (empty when there were none), and the window's start;
    /// nothing when `fill` would show the calls as unknown.
    fn capture(&self, out: &mut BundleOut) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = inner
            .last_success
            .is_some_and(|t| t.elapsed() <= self.stale_after);
        let Some(start) = inner.coverage_start.filter(|_| fresh) else {
            out.skip(
                "cloudtrail/",
                "no CloudTrail round succeeded before the capture",
            );
            return;
        };
        let mut by_op: BTreeMap<Operation, Vec<(&ApiCall, &LookupEvent)>> =
            POLLED.iter().map(|op| (*op, Vec::new())).collect();
        for (call, ev) in inner.calls.values() {
            if let Some(ev) = ev {
                by_op.entry(call.operation).or_default().push((call, ev));
            }
        }
        for (op, mut events) in by_op {
            events.sort_by(|a, b| {
                a.0.time
                    .cmp(&b.0.time)
                    .then(a.0.event_id.cmp(&b.0.event_id))
            });
            let events: Vec<&LookupEvent> = events.into_iter().map(|(_, e)| e).collect();
            out.json(
                &format!("cloudtrail/{}.json", op.as_str()),
                &LookupEventsOutputRef { events },
            );
        }
        out.cloudtrail_start = Some(start);
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct LookupEventsOutputRef<'a> {
    events: Vec<&'a LookupEvent>,
}
