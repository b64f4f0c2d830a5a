//! A small, fast fake apiserver for the scale harness: paginated LIST
//! (limit/continue, resourceVersion "0" served whole), WATCH from a
//! resourceVersion with a history window (410 Expired past it), BOOKMARKs,
//! equality label and field selectors. Objects are kept serialised (head +
//! resourceVersion + tail), so 150,000 pods cost their JSON bytes only.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// (collection path, resource, kind, apiVersion).
pub const RESOURCES: &[(&str, &str, &str, &str)] = &[
    ("/api/v1/nodes", "nodes", "Node", "v1"),
    ("/api/v1/pods", "pods", "Pod", "v1"),
    ("/api/v1/events", "events", "Event", "v1"),
    (
        "/apis/apps/v1/daemonsets",
        "daemonsets",
        "DaemonSet",
        "apps/v1",
    ),
    (
        "/apis/apps/v1/deployments",
        "deployments",
        "Deployment",
        "apps/v1",
    ),
    (
        "/apis/karpenter.sh/v1/nodeclaims",
        "nodeclaims",
        "NodeClaim",
        "karpenter.sh/v1",
    ),
    (
        "/apis/karpenter.sh/v1/nodepools",
        "nodepools",
        "NodePool",
        "karpenter.sh/v1",
    ),
    (
        "/apis/karpenter.k8s.aws/v1/ec2nodeclasses",
        "ec2nodeclasses",
        "EC2NodeClass",
        "karpenter.k8s.aws/v1",
    ),
    (
        "/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs",
        "eniconfigs",
        "ENIConfig",
        "crd.k8s.amazonaws.com/v1alpha1",
    ),
];

const HISTORY: usize = 50_000;
const BOOKMARK_EVERY: Duration = Duration::from_secs(20);

pub struct Obj {
    ns: String,
    name: String,
    labels: Vec<(String, String)>,
    reason: Option<String>,
    involved_kind: Option<String>,
    head: Bytes,
    tail: Bytes,
    rv: u64,
}

impl Obj {
    fn from_value(v: &Value) -> Obj {
        let md = &v["metadata"];
        let s = |x: &Value| x.as_str().unwrap_or_default().to_string();
        let labels = md["labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
            .unwrap_or_default();
        let text = serde_json::to_string(v).expect("serialisable");
        let at = text
            .find("\"__RV__\"")
            .expect("objects carry a __RV__ placeholder");
        Obj {
            ns: s(&md["namespace"]),
            name: s(&md["name"]),
            labels,
            reason: v["reason"].as_str().map(str::to_string),
            involved_kind: v["involvedObject"]["kind"].as_str().map(str::to_string),
            head: Bytes::copy_from_slice(&text.as_bytes()[..at + 1]),
            tail: Bytes::copy_from_slice(&text.as_bytes()[at + 7..]),
            rv: 0,
        }
    }

    fn write(&self, rv: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(rv.to_string().as_bytes());
        out.extend_from_slice(&self.tail);
    }
}

#[derive(Clone)]
pub struct Ev {
    rv: u64,
    ty: &'static str,
    obj: Arc<Obj>,
}

struct Coll {
    kind: &'static str,
    api_version: &'static str,
    objs: BTreeMap<(String, String), Arc<Obj>>,
    history: VecDeque<Ev>,
    tx: broadcast::Sender<Ev>,
}

pub struct Store {
    rv: u64,
    colls: HashMap<&'static str, Coll>,
}

pub type Shared = Arc<Mutex<Store>>;

impl Store {
    pub fn new() -> Shared {
        let colls = RESOURCES
            .iter()
            .map(|(_, res, kind, av)| {
                (
                    *res,
                    Coll {
                        kind,
                        api_version: av,
                        objs: BTreeMap::new(),
                        history: VecDeque::new(),
                        tx: broadcast::channel(65_536).0,
                    },
                )
            })
            .collect();
        Arc::new(Mutex::new(Store { rv: 1000, colls }))
    }

    fn publish(&mut self, res: &str, ty: &'static str, obj: Arc<Obj>) {
        let c = self.colls.get_mut(res).expect("known resource");
        let ev = Ev {
            rv: self.rv,
            ty,
            obj,
        };
        if c.history.len() >= HISTORY {
            c.history.pop_front();
        }
        c.history.push_back(ev.clone());
        let _ = c.tx.send(ev);
    }

    /// Creates or replaces an object (its `resourceVersion` must be "__RV__").
    pub fn apply(&mut self, res: &str, v: &Value) {
        self.rv += 1;
        let mut o = Obj::from_value(v);
        o.rv = self.rv;
        let o = Arc::new(o);
        let c = self.colls.get_mut(res).expect("known resource");
        let key = (o.ns.clone(), o.name.clone());
        let ty = if c.objs.insert(key, o.clone()).is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.publish(res, ty, o);
    }

    pub fn delete(&mut self, res: &str, ns: &str, name: &str) -> bool {
        let c = self.colls.get_mut(res).expect("known resource");
        match c.objs.remove(&(ns.to_string(), name.to_string())) {
            Some(o) => {
                self.rv += 1;
                self.publish(res, "DELETED", o);
                true
            }
            None => false,
        }
    }

    pub fn len(&self, res: &str) -> usize {
        self.colls.get(res).map_or(0, |c| c.objs.len())
    }
}

/// Equality-only label and field selectors (what the exporter sends).
struct Selector {
    labels: Vec<(String, String)>,
    fields: Vec<(String, String)>,
    namespace: Option<String>,
}

impl Selector {
    fn parse(q: &HashMap<String, String>, namespace: Option<String>) -> Result<Selector, String> {
        let pairs = |s: Option<&String>| -> Result<Vec<(String, String)>, String> {
            s.map(|s| {
                s.split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p
                            .split_once("==")
                            .or_else(|| p.split_once('='))
                            .ok_or(format!("unsupported selector {p}"))?;
                        Ok((k.to_string(), v.to_string()))
                    })
                    .collect()
            })
            .unwrap_or(Ok(Vec::new()))
        };
        let fields = pairs(q.get("fieldSelector"))?;
        for (k, _) in &fields {
            if !matches!(
                k.as_str(),
                "metadata.name" | "metadata.namespace" | "reason" | "involvedObject.kind"
            ) {
                return Err(format!("field label not supported: {k}"));
            }
        }
        Ok(Selector {
            labels: pairs(q.get("labelSelector"))?,
            fields,
            namespace,
        })
    }

    fn matches(&self, o: &Obj) -> bool {
        self.namespace.as_deref().is_none_or(|ns| ns == o.ns)
            && self
                .labels
                .iter()
                .all(|(k, v)| o.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            && self.fields.iter().all(|(k, v)| match k.as_str() {
                "metadata.name" => &o.name == v,
                "metadata.namespace" => &o.ns == v,
                "involvedObject.kind" => o.involved_kind.as_deref() == Some(v.as_str()),
                _ => o.reason.as_deref() == Some(v.as_str()),
            })
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `/api/v1/namespaces/{ns}/pods` -> ("/api/v1/pods", Some(ns)).
fn route(path: &str) -> Option<(&'static str, Option<String>)> {
    let (collection, ns) = match path.split_once("/namespaces/") {
        Some((prefix, rest)) => {
            let (ns, res) = rest.split_once('/')?;
            (format!("{prefix}/{res}"), Some(ns.to_string()))
        }
        None => (path.to_string(), None),
    };
    RESOURCES
        .iter()
        .find(|r| r.0 == collection)
        .map(|r| (r.1, ns))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .and_then(|v| String::from_utf8(v).ok())
}

pub async fn handle(
    State(store): State<Shared>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = uri.path();
    if path == "/version" {
        return ([("content-type", "application/json")],
                r#"{"major":"1","minor":"33","gitVersion":"v1.33.3-eks-fake","platform":"linux/amd64"}"#).into_response();
    }
    let Some((res, ns)) = route(path) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let sel = match Selector::parse(&q, ns) {
        Ok(s) => s,
        Err(e) => return status(400, "BadRequest", &e),
    };
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        watch(store, res, sel, &q)
    } else {
        list(&store, res, sel, &q)
    }
}

fn list(store: &Shared, res: &'static str, sel: Selector, q: &HashMap<String, String>) -> Response {
    let from_cache = q.get("resourceVersion").is_some_and(|v| v == "0");
    let limit = if from_cache {
        0
    } else {
        q.get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let (list_rv, after) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(tok) => match tok
            .split_once('.')
            .and_then(|(rv, k)| Some((rv.parse::<u64>().ok()?, unhex(k)?)))
        {
            Some((rv, key)) => {
                let (ns, name) = key.split_once('\0').unwrap_or(("", &key));
                (Some(rv), Some((ns.to_string(), name.to_string())))
            }
            None => return status(400, "BadRequest", "continue key is not valid"),
        },
        None => (None, None),
    };
    let st = store.lock().unwrap_or_else(|p| p.into_inner());
    let c = &st.colls[res];
    let rv = list_rv.unwrap_or(st.rv);
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(format!("{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{rv}\"", c.kind, c.api_version).as_bytes());
    let mut items = Vec::with_capacity(64 * 1024);
    let lower = match &after {
        Some(k) => Bound::Excluded(k.clone()),
        None => Bound::Unbounded,
    };
    let mut n = 0;
    let mut next = None;
    let mut last: Option<&(String, String)> = None;
    for (key, o) in c.objs.range((lower, Bound::Unbounded)) {
        if !sel.matches(o) {
            continue;
        }
        if limit > 0 && n == limit {
            // More remain: continue after the last item of this page.
            next = last.map(|k| format!("{rv}.{}", hex(&format!("{}\0{}", k.0, k.1))));
            break;
        }
        if n > 0 {
            items.push(b',');
        }
        o.write(o.rv, &mut items);
        last = Some(key);
        n += 1;
    }
    drop(st);
    if let Some(tok) = next {
        out.extend_from_slice(format!(",\"continue\":\"{tok}\"").as_bytes());
    }
    out.extend_from_slice(b"},\"items\":[");
    out.extend_from_slice(&items);
    out.extend_from_slice(b"]}");
    ([("content-type", "application/json")], out).into_response()
}

fn event_line(ty: &str, rv: u64, obj: &Obj) -> Bytes {
    let mut b = Vec::with_capacity(obj.head.len() + obj.tail.len() + 48);
    b.extend_from_slice(format!("{{\"type\":\"{ty}\",\"object\":").as_bytes());
    obj.write(rv, &mut b);
    b.extend_from_slice(b"}\n");
    Bytes::from(b)
}

fn watch(store: Shared, res: &'static str, sel: Selector, q: &HashMap<String, String>) -> Response {
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = Duration::from_secs(
        q.get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1800),
    );
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
    let (kind, api_version, pending, mut sub, expired) = {
        let st = store.lock().unwrap_or_else(|p| p.into_inner());
        let c = &st.colls[res];
        let oldest = c.history.front().map_or(st.rv, |e| e.rv);
        let expired = c.history.len() >= HISTORY && from + 1 < oldest;
        let pending: Vec<Ev> = c.history.iter().filter(|e| e.rv > from).cloned().collect();
        (c.kind, c.api_version, pending, c.tx.subscribe(), expired)
    };
    tokio::spawn(async move {
        if expired {
            let line = format!("{{\"type\":\"ERROR\",\"object\":{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"too old resource version: {from}\",\"reason\":\"Expired\",\"code\":410}}}}\n");
            let _ = tx.send(Bytes::from(line)).await;
            return;
        }
        let mut last = from;
        for e in pending {
            last = e.rv;
            if sel.matches(&e.obj) && tx.send(event_line(e.ty, e.rv, &e.obj)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tick.tick(), if bookmarks => {
                    let line = format!("{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"{kind}\",\"apiVersion\":\"{api_version}\",\"metadata\":{{\"resourceVersion\":\"{last}\"}}}}}}\n");
                    if tx.send(Bytes::from(line)).await.is_err() { return; }
                }
                ev = sub.recv() => match ev {
                    Ok(e) => {
                        if e.rv <= last { continue; }
                        last = e.rv;
                        if sel.matches(&e.obj) && tx.send(event_line(e.ty, e.rv, &e.obj)).await.is_err() {
                            return;
                        }
                    }
                    // Fell behind the broadcast buffer: end the stream, the client re-watches.
                    Err(_) => return,
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    (
        [("content-type", "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}
