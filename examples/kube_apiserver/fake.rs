//! The one fake Kubernetes apiserver of the test suite: the live end-to-end
//! tests, the Python black-box checks (tests/python/test_fakes.py) and the
//! scale harness (examples/scale, 150,000 pods) all run this code. JSON over
//! plain HTTP/1.1; no protobuf, no TLS.
//!
//! What it reproduces of the real apiserver:
//! * paths: /api/v1/{nodes,pods,events,configmaps}, /apis/apps/v1/{daemonsets,deployments},
//!   /apis/karpenter.sh/v1/{nodeclaims,nodepools}, /apis/karpenter.k8s.aws/v1/ec2nodeclasses, /apis/eks.amazonaws.com/v1/nodeclasses,
//!   /apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs, namespaced forms, single-object GET;
//!   discovery (/version, /api, /api/v1, /apis, /apis/{g}, /apis/{g}/{v}); /healthz, /livez, /readyz.
//! * A custom resource that is not installed (no bundle file) is absent from discovery and answers
//!   404 `the server could not find the requested resource`; a built-in one is merely empty.
//! * LIST: `<Kind>List`, a global etcd-like revision, etcd key order (namespace, name), built-in
//!   list items without kind/apiVersion, `limit`/`continue` from a consistent snapshot (the real
//!   token layout: base64 of {"v","rv","start"}), `remainingItemCount` only without selectors, a
//!   possibly empty last page with selectors, resourceVersion="0" served whole "from the cache",
//!   resourceVersion/resourceVersionMatch semantics (unset, NotOlderThan, Exact, legacy RV+limit =
//!   Exact), 410 Expired for compacted revisions and continue tokens, 504 for future revisions.
//! * Selectors: label `=`, `==`, `!=`, exists, `!key`, `in (..)`, `notin (..)`; field `=`, `==`, `!=`
//!   on the fields the real server supports per resource, anything else 400
//!   `field label not supported: X`.
//! * WATCH: newline-delimited events; RV unset/"0" first sends ADDED for the current state;
//!   sendInitialEvents=true ends the initial state with a BOOKMARK annotated
//!   `k8s.io/initial-events-end`; selector transitions (stops matching -> DELETED, starts -> ADDED);
//!   BOOKMARKs every `bookmark_interval` with allowWatchBookmarks; timeoutSeconds (unset: 1800-3600 s
//!   like --min-request-timeout); 410 Expired ERROR events for compacted revisions.
//! * Auth: with a token, `Authorization: Bearer T` is required (401 otherwise); /version and the
//!   health paths stay readable anonymously, as on EKS.
//!
//! Control API (not Kubernetes, no auth): POST /_control/{apply,delete,expire,disconnect,forbid,
//! unforbid,install,uninstall,reset-stats}, GET /_control/stats; bodies in `control()`.
//!
//! Objects are kept serialised (head + resourceVersion + tail) with only their key, labels and
//! selectable fields parsed, so 150,000 pods cost little more than their JSON bytes.

// Each example uses a different part of this module.
#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ resources

/// How a selectable field is read from an object.
#[derive(Clone, Copy)]
enum Get {
    /// A dotted path; missing reads as "", booleans as "true"/"false".
    Path(&'static str),
    /// A boolean that defaults to false ("spec.hostNetwork").
    Flag(&'static str),
}

pub struct Res {
    pub name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    namespaced: bool,
    builtin: bool,
    singular: &'static str,
    short: &'static [&'static str],
    /// Selectable fields besides metadata.name/metadata.namespace.
    fields: &'static [(&'static str, Get)],
}

impl Res {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.name.to_string()
        } else {
            format!("{}.{}", self.name, self.group)
        }
    }
}

// The field sets the real server registers per resource (pkg/registry/*/strategy.go
// ToSelectableFields); events' "source" selects source.component.
const POD_FIELDS: &[(&str, Get)] = &[
    ("spec.nodeName", Get::Path("spec.nodeName")),
    ("spec.restartPolicy", Get::Path("spec.restartPolicy")),
    ("spec.schedulerName", Get::Path("spec.schedulerName")),
    (
        "spec.serviceAccountName",
        Get::Path("spec.serviceAccountName"),
    ),
    ("spec.hostNetwork", Get::Flag("spec.hostNetwork")),
    ("status.phase", Get::Path("status.phase")),
    ("status.podIP", Get::Path("status.podIP")),
    (
        "status.nominatedNodeName",
        Get::Path("status.nominatedNodeName"),
    ),
];
const NODE_FIELDS: &[(&str, Get)] = &[("spec.unschedulable", Get::Flag("spec.unschedulable"))];
const EVENT_FIELDS: &[(&str, Get)] = &[
    ("involvedObject.kind", Get::Path("involvedObject.kind")),
    (
        "involvedObject.namespace",
        Get::Path("involvedObject.namespace"),
    ),
    ("involvedObject.name", Get::Path("involvedObject.name")),
    ("involvedObject.uid", Get::Path("involvedObject.uid")),
    (
        "involvedObject.apiVersion",
        Get::Path("involvedObject.apiVersion"),
    ),
    (
        "involvedObject.resourceVersion",
        Get::Path("involvedObject.resourceVersion"),
    ),
    (
        "involvedObject.fieldPath",
        Get::Path("involvedObject.fieldPath"),
    ),
    ("reason", Get::Path("reason")),
    ("reportingComponent", Get::Path("reportingComponent")),
    ("source", Get::Path("source.component")),
    ("type", Get::Path("type")),
];

macro_rules! res {
    ($name:literal, $group:literal, $version:literal, $kind:literal, $ns:literal, $builtin:literal,
     $singular:literal, $short:expr, $fields:expr) => {
        Res {
            name: $name,
            group: $group,
            version: $version,
            kind: $kind,
            namespaced: $ns,
            builtin: $builtin,
            singular: $singular,
            short: $short,
            fields: $fields,
        }
    };
}

pub const RESOURCES: &[Res] = &[
    res!(
        "nodes",
        "",
        "v1",
        "Node",
        false,
        true,
        "node",
        &["no"],
        NODE_FIELDS
    ),
    res!(
        "pods",
        "",
        "v1",
        "Pod",
        true,
        true,
        "pod",
        &["po"],
        POD_FIELDS
    ),
    res!(
        "events",
        "",
        "v1",
        "Event",
        true,
        true,
        "event",
        &["ev"],
        EVENT_FIELDS
    ),
    res!(
        "configmaps",
        "",
        "v1",
        "ConfigMap",
        true,
        true,
        "configmap",
        &["cm"],
        &[]
    ),
    res!(
        "daemonsets",
        "apps",
        "v1",
        "DaemonSet",
        true,
        true,
        "daemonset",
        &["ds"],
        &[]
    ),
    res!(
        "deployments",
        "apps",
        "v1",
        "Deployment",
        true,
        true,
        "deployment",
        &["deploy"],
        &[]
    ),
    res!(
        "nodeclaims",
        "karpenter.sh",
        "v1",
        "NodeClaim",
        false,
        false,
        "nodeclaim",
        &[],
        &[]
    ),
    res!(
        "nodepools",
        "karpenter.sh",
        "v1",
        "NodePool",
        false,
        false,
        "nodepool",
        &[],
        &[]
    ),
    res!(
        "ec2nodeclasses",
        "karpenter.k8s.aws",
        "v1",
        "EC2NodeClass",
        false,
        false,
        "ec2nodeclass",
        &[],
        &[]
    ),
    res!(
        "nodeclasses",
        "eks.amazonaws.com",
        "v1",
        "NodeClass",
        false,
        false,
        "nodeclass",
        &[],
        &[]
    ),
    res!(
        "eniconfigs",
        "crd.k8s.amazonaws.com",
        "v1alpha1",
        "ENIConfig",
        false,
        false,
        "eniconfig",
        &[],
        &[]
    ),
];

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn res_index(name: &str) -> Option<usize> {
    RESOURCES.iter().position(|r| r.name == name)
}

// ------------------------------------------------------------------ errors

#[derive(Debug)]
pub struct ApiError {
    code: u16,
    message: String,
    reason: &'static str,
    details: Option<Value>,
    metadata: Value,
}

impl ApiError {
    fn new(code: u16, message: impl Into<String>) -> ApiError {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            410 => "Expired",
            422 => "Invalid",
            504 => "Timeout",
            _ => "InternalError",
        };
        ApiError {
            code,
            message: message.into(),
            reason,
            details: None,
            metadata: json!({}),
        }
    }
    fn details(mut self, d: Value) -> ApiError {
        self.details = Some(d);
        self
    }
    fn status(&self) -> Value {
        let mut st = json!({"kind": "Status", "apiVersion": "v1", "metadata": self.metadata,
                            "status": "Failure", "message": self.message, "reason": self.reason,
                            "code": self.code});
        if let Some(d) = &self.details {
            st["details"] = d.clone();
        }
        st
    }
}

fn not_found_path() -> ApiError {
    ApiError::new(404, "the server could not find the requested resource").details(json!({}))
}

/// ListOptions validation failures are 422 Invalid, as ValidateListOptions reports them.
fn invalid_list_options(field: &str, rest: &str) -> ApiError {
    let reason = if rest.starts_with("Forbidden") {
        "FieldValueForbidden"
    } else {
        "FieldValueNotSupported"
    };
    ApiError::new(
        422,
        format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: {rest}"),
    )
    .details(json!({"group": "meta.k8s.io", "kind": "ListOptions",
               "causes": [{"reason": reason, "message": rest, "field": field}]}))
}

fn too_large_rv(rv: u64, cur: u64) -> ApiError {
    ApiError::new(504, format!("Timeout: Too large resource version: {rv}, current: {cur}")).details(
        json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
               "retryAfterSeconds": 1}),
    )
}

/// Query booleans as the apiserver decodes them: absent, "0" and "false" (any case) are false,
/// anything else (the empty string included) is true.
fn k8s_bool(v: Option<&String>) -> bool {
    v.is_some_and(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
}

// ------------------------------------------------------------------ objects

type Key = (String, String);

pub struct Obj {
    ns: String,
    name: String,
    labels: Vec<(String, String)>,
    /// Values of the resource's selectable fields, index-aligned with `Res::fields`.
    fields: Vec<Box<str>>,
    uid: Box<str>,
    created: Box<str>,
    /// The object serialised without kind/apiVersion, split around its resourceVersion value.
    head: Bytes,
    tail: Bytes,
    rv: u64,
}

const RV_MARK: &str = "\"__RV__\"";

fn field_value(v: &Value, get: Get) -> Box<str> {
    let (path, flag) = match get {
        Get::Path(p) => (p, false),
        Get::Flag(p) => (p, true),
    };
    let mut cur = v;
    for part in path.split('.') {
        cur = &cur[part];
    }
    match cur {
        Value::String(s) => s.as_str().into(),
        Value::Bool(b) => (if *b { "true" } else { "false" }).into(),
        Value::Number(n) => n.to_string().into(),
        _ if flag => "false".into(),
        _ => "".into(),
    }
}

impl Obj {
    /// `v` must carry metadata.name; kind/apiVersion are dropped (added back on output).
    fn from_value(res: &Res, mut v: Value, rv: u64) -> Obj {
        if let Some(m) = v.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
        let s = |x: &Value| x.as_str().unwrap_or_default().to_string();
        let md = &v["metadata"];
        let labels = md["labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
            .unwrap_or_default();
        let fields = res
            .fields
            .iter()
            .map(|(_, g)| field_value(&v, *g))
            .collect();
        let (ns, name, uid, created) = (
            s(&md["namespace"]),
            s(&md["name"]),
            s(&md["uid"]).into(),
            s(&md["creationTimestamp"]).into(),
        );
        v["metadata"]["resourceVersion"] = Value::String("__RV__".into());
        let text = serde_json::to_string(&v).unwrap_or_default();
        let at = text.find(RV_MARK).unwrap_or(text.len());
        let text = Bytes::from(text);
        Obj {
            ns,
            name,
            labels,
            fields,
            uid,
            created,
            head: text.slice(..at + 1),
            tail: text.slice((at + RV_MARK.len() - 1).min(text.len())..),
            rv,
        }
    }

    fn key(&self) -> Key {
        (self.ns.clone(), self.name.clone())
    }

    /// Writes the object with resourceVersion `rv`, with kind/apiVersion when `typed`.
    fn write(&self, res: &Res, rv: u64, typed: bool, out: &mut Vec<u8>) {
        if typed {
            out.extend_from_slice(
                format!(
                    "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",",
                    res.kind,
                    res.api_version()
                )
                .as_bytes(),
            );
            out.extend_from_slice(&self.head[1..]);
        } else {
            out.extend_from_slice(&self.head);
        }
        out.extend_from_slice(rv.to_string().as_bytes());
        out.extend_from_slice(&self.tail);
    }

    fn to_value(&self, res: &Res) -> Value {
        let mut b = Vec::new();
        self.write(res, self.rv, true, &mut b);
        serde_json::from_slice(&b).unwrap_or(Value::Null)
    }
}

// ------------------------------------------------------------------ selectors

enum LabelReq {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    Absent(String),
}

fn label_key_ok(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name.chars().all(|c| alnum(c) || "-_.".contains(c));
    let prefix_ok = prefix.is_none_or(|p| {
        let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        !p.is_empty()
            && p.starts_with(lower)
            && p.ends_with(lower)
            && p.chars().all(|c| lower(c) || "-.".contains(c))
    });
    name_ok && prefix_ok
}

fn label_value_ok(v: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    v.is_empty()
        || (v.len() <= 63
            && v.starts_with(alnum)
            && v.ends_with(alnum)
            && v.chars().all(|c| alnum(c) || "-_.".contains(c)))
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if label_key_ok(key) {
        Ok(())
    } else {
        Err(ApiError::new(
            400,
            format!(
                "unable to parse requirement: values[0][{key}]: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'"
            ),
        ))
    }
}

fn check_value(v: &str) -> Result<(), ApiError> {
    if label_value_ok(v) {
        Ok(())
    } else {
        Err(ApiError::new(
            400,
            format!(
                "unable to parse requirement: values[0]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'"
            ),
        ))
    }
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, ch) in s.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_label_selector(sel: &str) -> Result<Vec<LabelReq>, ApiError> {
    let sel = sel.trim();
    if sel.is_empty() {
        return Ok(Vec::new());
    }
    let mut reqs = Vec::new();
    for raw in split_top(sel) {
        let part = raw.trim();
        if part.is_empty() {
            return Err(ApiError::new(
                400,
                "unable to parse requirement: found ',', expected: identifier",
            ));
        }
        let unexpected = || {
            ApiError::new(
                400,
                format!("unable to parse requirement: <nil>: Invalid value: \"{part}\": found unexpected token"),
            )
        };
        // key in (a,b) / key notin (a,b)
        if let Some(open) = part.find('(') {
            let head = part[..open].trim_end();
            let (key, op) = head
                .rsplit_once(char::is_whitespace)
                .ok_or_else(unexpected)?;
            let key = key.trim();
            if !part.ends_with(')') || !matches!(op, "in" | "notin") {
                return Err(unexpected());
            }
            check_key(key)?;
            let vals: BTreeSet<String> = part[open + 1..part.len() - 1]
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect();
            for v in &vals {
                check_value(v)?;
            }
            reqs.push(if op == "in" {
                LabelReq::In(key.into(), vals)
            } else {
                LabelReq::NotIn(key.into(), vals)
            });
            continue;
        }
        let op = ["!=", "==", "="]
            .into_iter()
            .find_map(|op| part.find(op).map(|i| (i, op)));
        if let Some((i, op)) = op {
            let (key, val) = (part[..i].trim(), part[i + op.len()..].trim());
            if key.is_empty()
                || val.contains(char::is_whitespace)
                || key.contains(char::is_whitespace)
            {
                return Err(unexpected());
            }
            check_key(key)?;
            check_value(val)?;
            reqs.push(if op == "!=" {
                LabelReq::Ne(key.into(), val.into())
            } else {
                LabelReq::Eq(key.into(), val.into())
            });
            continue;
        }
        let (neg, key) = match part.strip_prefix('!') {
            Some(k) => (true, k.trim()),
            None => (false, part),
        };
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || "()".contains(c)) {
            return Err(unexpected());
        }
        check_key(key)?;
        reqs.push(if neg {
            LabelReq::Absent(key.into())
        } else {
            LabelReq::Exists(key.into())
        });
    }
    Ok(reqs)
}

enum FieldReq {
    /// Index into `Res::fields`, or usize::MAX / MAX-1 for metadata.name / metadata.namespace.
    Eq(usize, String),
    Ne(usize, String),
}

const META_NAME: usize = usize::MAX;
const META_NAMESPACE: usize = usize::MAX - 1;

fn parse_field_selector(res: &Res, sel: &str) -> Result<Vec<FieldReq>, ApiError> {
    let sel = sel.trim();
    if sel.is_empty() {
        return Ok(Vec::new());
    }
    let mut reqs = Vec::new();
    for raw in sel.split(',') {
        let part = raw.trim();
        let op = ["!=", "==", "="]
            .into_iter()
            .find_map(|op| part.find(op).map(|i| (i, op)));
        let Some((i, op)) = op.filter(|(i, _)| *i > 0) else {
            return Err(ApiError::new(
                400,
                format!("invalid selector: '{sel}'; can't understand '{part}'"),
            ));
        };
        let (field, val) = (part[..i].trim(), part[i + op.len()..].trim().to_string());
        let idx = match field {
            "metadata.name" => META_NAME,
            "metadata.namespace" => META_NAMESPACE,
            f => res
                .fields
                .iter()
                .position(|(n, _)| *n == f)
                .ok_or_else(|| ApiError::new(400, format!("field label not supported: {f}")))?,
        };
        reqs.push(if op == "!=" {
            FieldReq::Ne(idx, val)
        } else {
            FieldReq::Eq(idx, val)
        });
    }
    Ok(reqs)
}

pub struct Matcher {
    namespace: Option<String>,
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
    selectors: bool,
}

impl Matcher {
    fn new(
        res: &Res,
        ns: Option<String>,
        q: &HashMap<String, String>,
    ) -> Result<Matcher, ApiError> {
        let l = q.get("labelSelector").map(String::as_str).unwrap_or("");
        let f = q.get("fieldSelector").map(String::as_str).unwrap_or("");
        Ok(Matcher {
            namespace: ns,
            labels: parse_label_selector(l)?,
            fields: parse_field_selector(res, f)?,
            selectors: !l.is_empty() || !f.is_empty(),
        })
    }

    fn matches(&self, o: &Obj) -> bool {
        let label = |k: &str| {
            o.labels
                .iter()
                .find(|(lk, _)| lk == k)
                .map(|(_, v)| v.as_str())
        };
        let field = |i: usize| match i {
            META_NAME => o.name.as_str(),
            META_NAMESPACE => o.ns.as_str(),
            i => o.fields.get(i).map_or("", |b| b),
        };
        self.namespace.as_deref().is_none_or(|ns| ns == o.ns)
            && self.labels.iter().all(|r| match r {
                LabelReq::In(k, vs) => label(k).is_some_and(|v| vs.contains(v)),
                LabelReq::NotIn(k, vs) => label(k).is_none_or(|v| !vs.contains(v)),
                LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
                LabelReq::Ne(k, v) => label(k) != Some(v.as_str()),
                LabelReq::Exists(k) => label(k).is_some(),
                LabelReq::Absent(k) => label(k).is_none(),
            })
            && self.fields.iter().all(|r| match r {
                FieldReq::Eq(i, v) => field(*i) == v,
                FieldReq::Ne(i, v) => field(*i) != v,
            })
    }
}

// ------------------------------------------------------------------ store

#[derive(Clone, Copy, PartialEq)]
enum EvType {
    Added,
    Modified,
    Deleted,
}

struct Ev {
    rv: u64,
    res: usize,
    ty: EvType,
    /// The object after the change (for DELETED: as it was, shown at `rv`).
    obj: Arc<Obj>,
    prev: Option<Arc<Obj>>,
}

struct WatchInfo {
    res: usize,
    path: String,
    namespace: Option<String>,
    label: String,
    field: String,
    start_rv: u64,
    bookmarks: bool,
    opened: Instant,
}

#[derive(Clone)]
pub struct Config {
    pub token: Option<String>,
    pub user: String,
    pub bookmark_interval: Duration,
    /// Events kept for watch replay and consistent paging (older revisions answer 410, like
    /// etcd compaction); trimmed to this length once twice as many are kept.
    pub history: usize,
    pub too_large_wait: Duration,
    pub git_version: String,
    pub minor: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            token: None,
            user: "system:serviceaccount:eks-ipam-exporter:eks-ipam-exporter".into(),
            bookmark_interval: Duration::from_secs(2),
            history: 10_000,
            too_large_wait: Duration::from_secs(3),
            git_version: "v1.33.5-eks-3025e55".into(),
            minor: "33+".into(),
        }
    }
}

pub struct Store {
    pub cfg: Config,
    rv: u64,
    /// Nothing before this revision can be replayed (compacted).
    horizon: u64,
    objs: Vec<BTreeMap<Key, Arc<Obj>>>,
    installed: Vec<bool>,
    log: VecDeque<Ev>,
    watches: BTreeMap<u64, WatchInfo>,
    next_watch: u64,
    watches_total: u64,
    /// Per resource: forbidden verbs (empty: all).
    forbidden: BTreeMap<usize, BTreeSet<String>>,
    requests: BTreeMap<String, u64>,
    status_counts: BTreeMap<String, u64>,
    /// Bumped by /_control/expire and /_control/disconnect: open watches compare theirs.
    expire_epoch: u64,
    kill_epoch: u64,
    next_uid: u64,
    /// Every change bumps this; watches wait on it.
    tick: tokio::sync::watch::Sender<u64>,
}

pub type Shared = Arc<Mutex<Store>>;

pub fn lock(s: &Shared) -> MutexGuard<'_, Store> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    pub fn new(cfg: Config) -> Shared {
        Arc::new(Mutex::new(Store {
            cfg,
            rv: 1,
            horizon: 1,
            objs: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
            installed: RESOURCES.iter().map(|r| r.builtin).collect(),
            log: VecDeque::new(),
            watches: BTreeMap::new(),
            next_watch: 1,
            watches_total: 0,
            forbidden: BTreeMap::new(),
            requests: BTreeMap::new(),
            status_counts: BTreeMap::new(),
            expire_epoch: 0,
            kill_epoch: 0,
            next_uid: 0,
            tick: tokio::sync::watch::channel(0).0,
        }))
    }

    /// Loads `<bundle>/kubernetes/<resource>.json`; a custom resource whose file is absent is not
    /// installed. Objects keep the resourceVersions they carry; nothing before the loaded state
    /// can be replayed.
    pub fn load_bundle(&mut self, bundle: &std::path::Path) -> Result<(), String> {
        let mut loaded: Vec<(usize, Value, Option<u64>)> = Vec::new();
        let mut max_rv = 0;
        for (i, res) in RESOURCES.iter().enumerate() {
            let path = bundle.join("kubernetes").join(format!("{}.json", res.name));
            if !path.exists() {
                self.installed[i] = res.builtin;
                continue;
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let doc: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            self.installed[i] = true;
            for mut item in doc["items"].as_array().cloned().unwrap_or_default() {
                Self::normalise(res, &mut item)
                    .map_err(|e| format!("{}: {}", path.display(), e.message))?;
                let rv = item["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|s| s.parse::<u64>().ok());
                max_rv = max_rv.max(rv.unwrap_or(0));
                loaded.push((i, item, rv));
            }
        }
        self.rv = max_rv + 1;
        for (i, mut item, rv) in loaded {
            let rv = rv.unwrap_or_else(|| {
                self.rv += 1;
                self.rv
            });
            if item["metadata"]["uid"].as_str().is_none() {
                item["metadata"]["uid"] = Value::String(self.new_uid());
            }
            let o = Obj::from_value(&RESOURCES[i], item, rv);
            self.objs[i].insert(o.key(), Arc::new(o));
        }
        self.rv += 1;
        self.horizon = self.rv;
        Ok(())
    }

    fn normalise(res: &Res, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::new(400, "an object must be a JSON object"));
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
            return Err(ApiError::new(400, "metadata.name is required"));
        }
        let md = obj["metadata"].as_object_mut().expect("checked above");
        if res.namespaced {
            md.entry("namespace")
                .or_insert_with(|| Value::String("default".into()));
        } else {
            md.remove("namespace");
        }
        Ok(())
    }

    fn new_uid(&mut self) -> String {
        self.next_uid += 1;
        format!("f0000000-0000-4000-8000-{:012x}", self.next_uid)
    }

    fn append(&mut self, ev: Ev) {
        self.log.push_back(ev);
        if self.log.len() > self.cfg.history * 2 {
            let cut = self.log.len() - self.cfg.history;
            self.horizon = self.horizon.max(self.log[cut - 1].rv);
            self.log.drain(..cut);
        }
        self.tick.send_replace(self.rv);
    }

    /// Creates or replaces an object (the apiserver's create/update, as one verb). Installs the
    /// resource if it was not; keeps uid and creationTimestamp of the object it replaces.
    pub fn apply(
        &mut self,
        resource: &str,
        obj: &Value,
    ) -> Result<(&'static str, Arc<Obj>), ApiError> {
        let i = res_index(resource)
            .ok_or_else(|| ApiError::new(400, format!("unknown resource {resource}")))?;
        let res = &RESOURCES[i];
        let mut obj = obj.clone();
        Self::normalise(res, &mut obj)?;
        let md = &obj["metadata"];
        let key = (
            md["namespace"].as_str().unwrap_or_default().to_string(),
            md["name"].as_str().unwrap_or_default().to_string(),
        );
        self.installed[i] = true;
        let prev = self.objs[i].get(&key).cloned();
        self.rv += 1;
        match &prev {
            None => {
                if obj["metadata"]["uid"].as_str().is_none() {
                    obj["metadata"]["uid"] = Value::String(self.new_uid());
                }
                if obj["metadata"]["creationTimestamp"].as_str().is_none() {
                    let now = jiff::Timestamp::now()
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                        .to_string();
                    obj["metadata"]["creationTimestamp"] = Value::String(now);
                }
            }
            Some(p) => {
                obj["metadata"]["uid"] = Value::String(p.uid.to_string());
                if !p.created.is_empty() {
                    obj["metadata"]["creationTimestamp"] = Value::String(p.created.to_string());
                }
            }
        }
        let o = Arc::new(Obj::from_value(res, obj, self.rv));
        self.objs[i].insert(key, o.clone());
        let ty = if prev.is_some() {
            EvType::Modified
        } else {
            EvType::Added
        };
        self.append(Ev {
            rv: self.rv,
            res: i,
            ty,
            obj: o.clone(),
            prev,
        });
        Ok((
            if ty == EvType::Added {
                "ADDED"
            } else {
                "MODIFIED"
            },
            o,
        ))
    }

    /// Deletes an object; returns the revision of the deletion.
    pub fn delete(
        &mut self,
        resource: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<u64, ApiError> {
        let i = res_index(resource)
            .ok_or_else(|| ApiError::new(400, format!("unknown resource {resource}")))?;
        let res = &RESOURCES[i];
        let ns = if res.namespaced {
            ns.filter(|n| !n.is_empty()).unwrap_or("default")
        } else {
            ""
        };
        let Some(prev) = self.objs[i].remove(&(ns.to_string(), name.to_string())) else {
            return Err(not_found(res, name));
        };
        self.rv += 1;
        self.append(Ev {
            rv: self.rv,
            res: i,
            ty: EvType::Deleted,
            obj: prev.clone(),
            prev: Some(prev),
        });
        Ok(self.rv)
    }

    pub fn len(&self, resource: &str) -> usize {
        res_index(resource).map_or(0, |i| self.objs[i].len())
    }

    /// The state of resource `i` at revision `at` differs from the current one only in the keys
    /// changed after `at`: their old value (None: absent then).
    fn overlay(&self, i: usize, at: u64) -> BTreeMap<Key, Option<Arc<Obj>>> {
        let mut ov = BTreeMap::new();
        if at >= self.rv {
            return ov;
        }
        let from = self.log.partition_point(|e| e.rv <= at);
        for ev in self.log.range(from..).filter(|e| e.res == i) {
            ov.entry(ev.obj.key()).or_insert_with(|| match ev.ty {
                EvType::Added => None,
                _ => ev.prev.clone(),
            });
        }
        ov
    }

    fn count(&mut self, key: String) {
        *self.requests.entry(key).or_default() += 1;
    }

    fn count_status(&mut self, code: u16) {
        *self.status_counts.entry(code.to_string()).or_default() += 1;
    }
}

fn not_found(res: &Res, name: &str) -> ApiError {
    let details = if res.group.is_empty() {
        json!({"name": name, "kind": res.name})
    } else {
        json!({"name": name, "group": res.group, "kind": res.name})
    };
    ApiError::new(404, format!("{} \"{name}\" not found", res.qualified())).details(details)
}

// ------------------------------------------------------------------ continue tokens

fn encode_continue(rv: u64, key: &Key) -> String {
    let start = if key.0.is_empty() {
        format!("{}\0", key.1)
    } else {
        format!("{}/{}\0", key.0, key.1)
    };
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(tok: &str) -> Result<(u64, Key), ApiError> {
    let bad = |why: &str| ApiError::new(400, format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok.trim_end_matches('='))
        .map_err(|e| bad(&e.to_string()))?;
    let d: Value = serde_json::from_slice(&raw).map_err(|e| bad(&e.to_string()))?;
    if d["v"] != "meta.k8s.io/v1" {
        return Err(bad("bad version"));
    }
    let rv = d["rv"].as_u64().ok_or_else(|| bad("no rv"))?;
    let start = d["start"]
        .as_str()
        .ok_or_else(|| bad("no start"))?
        .trim_end_matches('\0');
    let key = match start.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (String::new(), start.to_string()),
    };
    Ok((rv, key))
}

// ------------------------------------------------------------------ HTTP

fn json_response(code: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(store: &Shared, e: ApiError) -> Response {
    lock(store).count_status(e.code);
    json_response(e.code, &e.status())
}

/// The axum handler for every path (use as the router's fallback, state = the store).
pub async fn handle(
    State(store): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    // Repeated parameters: the last one wins.
    let q: HashMap<String, String> = query.into_iter().collect();
    let path = uri.path().trim_end_matches('/');
    let path = if path.is_empty() { "/" } else { path };
    let result = if let Some(op) = path.strip_prefix("/_control/") {
        control(&store, &method, op, &body)
    } else {
        dispatch(&store, &method, path, &headers, &q).await
    };
    result.unwrap_or_else(|e| error_response(&store, e))
}

async fn dispatch(
    store: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let cfg = lock(store).cfg.clone();
    if let Some(token) = &cfg.token {
        let auth = headers.get("authorization").and_then(|h| h.to_str().ok());
        let anonymous_ok = matches!(path, "/version" | "/healthz" | "/livez" | "/readyz");
        if !(auth.is_none() && anonymous_ok) && auth != Some(format!("Bearer {token}").as_str()) {
            return Err(ApiError::new(401, "Unauthorized"));
        }
    }
    if matches!(path, "/healthz" | "/livez" | "/readyz") {
        lock(store).count(format!("get {path}"));
        return Ok(([("content-type", "text/plain; charset=utf-8")], "ok").into_response());
    }
    if method != Method::GET {
        return Err(ApiError::new(
            405,
            "the server does not allow this method on the requested resource",
        )
        .details(json!({})));
    }
    if path == "/version" {
        lock(store).count(format!("discovery {path}"));
        let minor = cfg.minor.trim_end_matches('+');
        let min_compat = minor
            .parse::<u32>()
            .map(|m| m.saturating_sub(1).to_string())
            .unwrap_or_default();
        return Ok(json_response(
            200,
            &json!({"major": "1", "minor": cfg.minor, "emulationMajor": "1", "emulationMinor": minor,
                    "minCompatibilityMajor": "1", "minCompatibilityMinor": min_compat,
                    "gitVersion": cfg.git_version, "gitCommit": "3025e55f1c4a6d5e8b9f0a7c2d4e6f8a0b1c3d5e",
                    "gitTreeState": "clean", "buildDate": "2025-09-30T19:52:05Z", "goVersion": "go1.24.6",
                    "compiler": "gc", "platform": "linux/amd64"}),
        ));
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let is_discovery = matches!(
        parts.as_slice(),
        ["api"] | ["apis"] | ["api", "v1"] | ["apis", _] | ["apis", _, _]
    );
    if is_discovery {
        lock(store).count(format!("discovery {path}"));
        return discovery(store, &parts).map(|v| json_response(200, &v));
    }
    resource(store, path, &parts, q).await
}

fn installed_groups(st: &Store) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for (i, r) in RESOURCES.iter().enumerate() {
        if r.group.is_empty() || !st.installed[i] {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, vs)) if !vs.contains(&r.version) => vs.push(r.version),
            Some(_) => {}
            None => groups.push((r.group, vec![r.version])),
        }
    }
    // "apps" first, then by name, as the real server orders its built-in groups first.
    groups.sort_by_key(|(g, _)| (*g != "apps", *g));
    groups
}

fn discovery(store: &Shared, parts: &[&str]) -> Result<Value, ApiError> {
    let st = lock(store);
    if parts == ["api"] {
        return Ok(json!({"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}));
    }
    let groups = installed_groups(&st);
    let group_obj = |g: &str, vs: &[&str]| {
        json!({"name": g, "versions": vs.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect::<Vec<_>>(),
               "preferredVersion": {"groupVersion": format!("{g}/{}", vs[0]), "version": vs[0]}})
    };
    let (group, version) = match parts {
        ["apis"] => {
            let gs: Vec<Value> = groups.iter().map(|(g, vs)| group_obj(g, vs)).collect();
            return Ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs}));
        }
        ["apis", g] => {
            let (g, vs) = groups
                .iter()
                .find(|(name, _)| name == g)
                .ok_or_else(not_found_path)?;
            let mut d = group_obj(g, vs);
            d["kind"] = json!("APIGroup");
            d["apiVersion"] = json!("v1");
            return Ok(d);
        }
        ["api", "v1"] => ("", "v1"),
        ["apis", g, v] => {
            if !groups.iter().any(|(name, vs)| name == g && vs.contains(v)) {
                return Err(not_found_path());
            }
            (*g, *v)
        }
        _ => return Err(not_found_path()),
    };
    let resources: Vec<Value> = RESOURCES
        .iter()
        .enumerate()
        .filter(|(i, r)| r.group == group && r.version == version && st.installed[*i])
        .map(|(_, r)| {
            let mut d = json!({"name": r.name, "singularName": r.singular, "namespaced": r.namespaced,
                               "kind": r.kind, "verbs": VERBS});
            if !r.short.is_empty() {
                d["shortNames"] = json!(r.short);
            }
            if !r.builtin {
                let q = r.qualified();
                d["storageVersionHash"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(&q.as_bytes()[..q.len().min(8)]));
            }
            d
        })
        .collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

async fn resource(
    store: &Shared,
    path: &str,
    parts: &[&str],
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let (group, version, mut rest) = match parts {
        ["api", "v1", rest @ ..] if !rest.is_empty() => ("", "v1", rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Err(not_found_path()),
    };
    let mut ns = None;
    if rest.len() >= 3 && rest[0] == "namespaces" {
        ns = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    if rest.is_empty() || rest.len() > 2 {
        return Err(not_found_path());
    }
    let i = RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.name == rest[0])
        .ok_or_else(not_found_path)?;
    let res = &RESOURCES[i];
    let name = rest.get(1).copied();
    let is_watch = k8s_bool(q.get("watch"));
    let verb = if name.is_some() {
        "get"
    } else if is_watch {
        "watch"
    } else {
        "list"
    };
    {
        let mut st = lock(store);
        st.count(format!("{verb} {path}"));
        if !st.installed[i] || (ns.is_some() && !res.namespaced) {
            return Err(not_found_path());
        }
        if let Some(verbs) = st.forbidden.get(&i) {
            if verbs.is_empty() || verbs.contains(verb) {
                let scope = match &ns {
                    Some(n) => format!("in the namespace \"{n}\""),
                    None => "at the cluster scope".into(),
                };
                return Err(ApiError::new(
                    403,
                    format!(
                        "{} is forbidden: User \"{}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                        res.qualified(),
                        st.cfg.user,
                        res.name,
                        res.group
                    ),
                )
                .details(json!({"group": res.group, "kind": res.name})));
            }
        }
    }
    if let Some(name) = name {
        if res.namespaced && ns.is_none() {
            return Err(not_found_path());
        }
        let st = lock(store);
        let key = (ns.unwrap_or_default(), name.to_string());
        let obj = st.objs[i].get(&key).ok_or_else(|| not_found(res, name))?;
        let mut out = Vec::new();
        obj.write(res, obj.rv, true, &mut out);
        return Ok(([("content-type", "application/json")], out).into_response());
    }
    let matcher = Matcher::new(res, ns.clone(), q)?;
    if is_watch {
        watch(store, i, path, ns, matcher, q).await
    } else {
        list(store, i, matcher, q).await
    }
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| {
        ApiError::new(
            400,
            format!("resourceVersion: Invalid value: \"{s}\": must be a non-negative integer"),
        )
    })
}

/// Like the watch cache: waits up to `too_large_wait` for a revision in the future, then 504.
async fn wait_for_rv(store: &Shared, want: u64) -> Result<(), ApiError> {
    let (mut tick, wait) = {
        let st = lock(store);
        if st.rv >= want {
            return Ok(());
        }
        (st.tick.subscribe(), st.cfg.too_large_wait)
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        tick.borrow_and_update();
        let cur = lock(store).rv;
        if cur >= want {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline, tick.changed())
            .await
            .is_err()
        {
            return Err(too_large_rv(want, lock(store).rv));
        }
    }
}

async fn list(
    store: &Shared,
    i: usize,
    matcher: Matcher,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let res = &RESOURCES[i];
    let rv_s = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let rvm = q
        .get("resourceVersionMatch")
        .map(String::as_str)
        .unwrap_or("");
    let cont = q.get("continue").map(String::as_str).unwrap_or("");
    let mut limit: usize = match q.get("limit").map(String::as_str).unwrap_or("") {
        "" => 0,
        l => l
            .parse::<i64>()
            .map(|l| l.max(0) as usize)
            .map_err(|_| ApiError::new(400, "limit: Invalid value: must be an integer"))?,
    };
    if !rvm.is_empty() && rv_s.is_empty() {
        return Err(invalid_list_options(
            "resourceVersionMatch",
            "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if !rvm.is_empty() && rvm != "Exact" && rvm != "NotOlderThan" {
        return Err(invalid_list_options(
            "resourceVersionMatch",
            &format!("Unsupported value: \"{rvm}\": supported values: \"Exact\", \"NotOlderThan\""),
        ));
    }
    if !cont.is_empty() && !rv_s.is_empty() {
        return Err(ApiError::new(
            400,
            "resourceVersion: Forbidden: specifying resource version is not allowed when using continue",
        ));
    }
    if rvm == "Exact" && rv_s == "0" {
        return Err(invalid_list_options(
            "resourceVersionMatch",
            "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        ));
    }
    let mut start_key = None;
    // The revision the answer is a snapshot of (None: the newest).
    let mut snap_rv: Option<u64> = None;
    if !cont.is_empty() {
        let (rv, key) = decode_continue(cont)?;
        let st = lock(store);
        if rv != 0 && rv < st.horizon {
            let mut e = ApiError::new(
                410,
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            );
            // An "inconsistent" continuation: rv 0 continues from the newest state.
            e.metadata = json!({"continue": encode_continue(0, &key)});
            return Err(e);
        }
        snap_rv = (rv != 0).then_some(rv);
        start_key = Some(key);
    } else if rv_s == "0" {
        limit = 0; // served from the watch cache: limit ignored, one page
    } else if !rv_s.is_empty() {
        let want = parse_rv(rv_s)?;
        let exact = rvm == "Exact" || (rvm.is_empty() && limit > 0);
        if exact && want < lock(store).horizon {
            return Err(ApiError::new(
                410,
                "The resourceVersion for the provided list is too old.",
            ));
        }
        wait_for_rv(store, want).await?;
        if exact {
            snap_rv = Some(want);
        }
    }
    let st = lock(store);
    let at = snap_rv.unwrap_or(st.rv);
    let overlay = st.overlay(i, at);
    let lower = match &start_key {
        Some(k) => Bound::Excluded(k),
        None => Bound::Unbounded,
    };
    let mut current = st.objs[i]
        .range::<Key, _>((lower, Bound::Unbounded))
        .peekable();
    let mut old = overlay
        .range::<Key, _>((lower, Bound::Unbounded))
        .peekable();
    let mut items = Vec::with_capacity(64 * 1024);
    let (mut n, mut last, mut remaining, mut full) = (0usize, None::<Key>, 0usize, false);
    // Merge the current objects with the overlay's old values: the state at `at`, key order.
    loop {
        let next: Option<(&Key, Option<&Arc<Obj>>)> = match (current.peek(), old.peek()) {
            (None, None) => break,
            (Some((ck, _)), Some((ok, _))) if ck == ok => {
                current.next();
                old.next().map(|(k, v)| (k, v.as_ref()))
            }
            (Some((ck, _)), Some((ok, _))) if ok < ck => old.next().map(|(k, v)| (k, v.as_ref())),
            (Some(_), _) => current.next().map(|(k, v)| (k, Some(v))),
            (None, Some(_)) => old.next().map(|(k, v)| (k, v.as_ref())),
        };
        let Some((key, Some(obj))) = next else {
            continue;
        };
        if full {
            remaining += 1;
            if matcher.selectors {
                break; // only "more remain" is needed
            }
            continue;
        }
        if !matcher.matches(obj) {
            continue;
        }
        if n > 0 {
            items.push(b',');
        }
        obj.write(res, obj.rv, !res.builtin, &mut items);
        n += 1;
        last = Some(key.clone());
        if limit > 0 && n >= limit {
            full = true;
        }
    }
    let mut md = format!("{{\"resourceVersion\":\"{at}\"");
    if let (true, Some(k)) = (remaining > 0, &last) {
        md.push_str(&format!(",\"continue\":\"{}\"", encode_continue(at, k)));
        if !matcher.selectors {
            md.push_str(&format!(",\"remainingItemCount\":{remaining}"));
        }
    }
    drop(st);
    let mut out = Vec::with_capacity(items.len() + 256);
    out.extend_from_slice(
        format!(
            "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{md}}},\"items\":[",
            res.kind,
            res.api_version()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&items);
    out.extend_from_slice(b"]}");
    Ok(([("content-type", "application/json")], out).into_response())
}

// ------------------------------------------------------------------ watch

/// An empty object of the kind with only metadata.resourceVersion, serialised as the real typed
/// encoder writes it (zero-valued required fields included).
fn bookmark(res: &Res, rv: u64, initial_end: bool) -> Vec<u8> {
    let mut md = Map::new();
    md.insert("resourceVersion".into(), json!(rv.to_string()));
    if res.builtin {
        md.insert("creationTimestamp".into(), Value::Null);
    }
    if initial_end {
        md.insert(
            "annotations".into(),
            json!({"k8s.io/initial-events-end": "true"}),
        );
    }
    let mut obj = json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": md});
    match res.name {
        "pods" => {
            obj["spec"] = json!({"containers": null});
            obj["status"] = json!({});
        }
        "nodes" => {
            let info: Map<String, Value> = [
                "machineID",
                "systemUUID",
                "bootID",
                "kernelVersion",
                "osImage",
                "containerRuntimeVersion",
                "kubeletVersion",
                "kubeProxyVersion",
                "operatingSystem",
                "architecture",
            ]
            .iter()
            .map(|k| (k.to_string(), json!("")))
            .collect();
            obj["spec"] = json!({});
            obj["status"] =
                json!({"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}, "nodeInfo": info});
        }
        "events" => {
            for (k, v) in [
                ("involvedObject", json!({})),
                ("reportingComponent", json!("")),
                ("reportingInstance", json!("")),
                ("source", json!({})),
                ("firstTimestamp", Value::Null),
                ("lastTimestamp", Value::Null),
                ("eventTime", Value::Null),
            ] {
                obj[k] = v;
            }
        }
        "daemonsets" | "deployments" => {
            let strategy = if res.name == "deployments" {
                "strategy"
            } else {
                "updateStrategy"
            };
            obj["spec"] = json!({"selector": null,
                                 "template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}},
                                 strategy: {}});
            obj["status"] = if res.name == "daemonsets" {
                json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0})
            } else {
                json!({})
            };
        }
        _ => {}
    }
    event_line_value("BOOKMARK", &obj)
}

fn event_line_value(ty: &str, obj: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec(&json!({"type": ty, "object": obj})).unwrap_or_default();
    b.push(b'\n');
    b
}

fn event_line(res: &Res, ty: &str, rv: u64, obj: &Obj, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{{\"type\":\"{ty}\",\"object\":").as_bytes());
    obj.write(res, rv, true, out);
    out.extend_from_slice(b"}\n");
}

/// What a change means to a watch with a selector.
fn transition(ev: &Ev, m: &Matcher) -> Option<&'static str> {
    match ev.ty {
        EvType::Added => m.matches(&ev.obj).then_some("ADDED"),
        EvType::Deleted => m
            .matches(ev.prev.as_ref().unwrap_or(&ev.obj))
            .then_some("DELETED"),
        EvType::Modified => {
            let was = ev.prev.as_ref().is_some_and(|p| m.matches(p));
            match (was, m.matches(&ev.obj)) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            }
        }
    }
}

/// Removes the watch from the registry when its task ends, however it ends.
struct Registered(Shared, u64);

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.0).watches.remove(&self.1);
    }
}

type Chunk = Result<Bytes, std::io::Error>;

fn pseudo_random_timeout() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_secs(1800 + u64::from(nanos) % 1800)
}

async fn watch(
    store: &Shared,
    i: usize,
    path: &str,
    ns: Option<String>,
    matcher: Matcher,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let res = &RESOURCES[i];
    let rv_s = q.get("resourceVersion").cloned().unwrap_or_default();
    let rvm = q
        .get("resourceVersionMatch")
        .map(String::as_str)
        .unwrap_or("");
    let bookmarks = k8s_bool(q.get("allowWatchBookmarks"));
    let initial_param = q.get("sendInitialEvents");
    if let Some(initial) = initial_param {
        if rvm != "NotOlderThan" {
            return Err(invalid_list_options(
                "resourceVersionMatch",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if k8s_bool(Some(initial)) && !bookmarks {
            return Err(invalid_list_options(
                "allowWatchBookmarks",
                "Forbidden: sendInitialEvents requires allowWatchBookmarks=true",
            ));
        }
    } else if !rvm.is_empty() {
        return Err(invalid_list_options(
            "resourceVersionMatch",
            "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
    let send_initial_events = k8s_bool(initial_param);
    let timeout = match q.get("timeoutSeconds").map(String::as_str).unwrap_or("") {
        "" => 0.0,
        t => t
            .parse::<f64>()
            .map_err(|_| ApiError::new(400, "timeoutSeconds: Invalid value"))?,
    };
    let timeout = if timeout > 0.0 {
        Duration::from_secs_f64(timeout)
    } else {
        pseudo_random_timeout()
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(64);
    let from_state = rv_s.is_empty() || rv_s == "0" || send_initial_events;
    if from_state && !rv_s.is_empty() && rv_s != "0" {
        wait_for_rv(store, parse_rv(&rv_s)?).await?;
    }
    let start = if from_state {
        None
    } else {
        Some(parse_rv(&rv_s)?)
    };
    if let Some(start) = start {
        let cur = lock(store).rv;
        if start > cur {
            // Like the watch cache: wait, then an ERROR event (not an HTTP error).
            if let Err(e) = wait_for_rv(store, start).await {
                return Ok(error_stream(store, e));
            }
        }
    }
    let mut initial = Vec::new();
    let (scanned, id, expire_epoch, kill_epoch, mut tick, interval) = {
        let mut st = lock(store);
        let scanned = match start {
            None => {
                for o in st.objs[i].values().filter(|o| matcher.matches(o)) {
                    event_line(res, "ADDED", o.rv, o, &mut initial);
                }
                st.rv
            }
            Some(s) if s < st.horizon => {
                let msg = format!("too old resource version: {s} ({})", st.horizon);
                drop(st);
                return Ok(error_stream(store, ApiError::new(410, msg)));
            }
            Some(s) => s,
        };
        let id = st.next_watch;
        st.next_watch += 1;
        st.watches_total += 1;
        st.watches.insert(
            id,
            WatchInfo {
                res: i,
                path: path.to_string(),
                namespace: ns,
                label: q.get("labelSelector").cloned().unwrap_or_default(),
                field: q.get("fieldSelector").cloned().unwrap_or_default(),
                start_rv: scanned,
                bookmarks,
                opened: Instant::now(),
            },
        );
        (
            scanned,
            id,
            st.expire_epoch,
            st.kill_epoch,
            st.tick.subscribe(),
            st.cfg.bookmark_interval,
        )
    };
    let store = store.clone();
    tokio::spawn(async move {
        let _registered = Registered(store.clone(), id);
        let mut scanned = scanned;
        let start_rv = scanned;
        let deadline = tokio::time::Instant::now() + timeout;
        if !initial.is_empty() && tx.send(Ok(Bytes::from(initial))).await.is_err() {
            return;
        }
        if send_initial_events
            && bookmarks
            && tx
                .send(Ok(Bytes::from(bookmark(res, scanned, true))))
                .await
                .is_err()
        {
            return;
        }
        let mut next_bookmark = tokio::time::Instant::now() + interval;
        loop {
            tick.borrow_and_update();
            let mut out = Vec::new();
            let (killed, expired, uninstalled) = {
                let st = lock(&store);
                let killed = st.kill_epoch != kill_epoch;
                let expired = (st.expire_epoch != expire_epoch || scanned < st.horizon)
                    .then(|| format!("too old resource version: {start_rv} ({})", st.horizon));
                if !killed && expired.is_none() {
                    let from = st.log.partition_point(|e| e.rv <= scanned);
                    for ev in st.log.range(from..).filter(|e| e.res == i) {
                        if let Some(ty) = transition(ev, &matcher) {
                            event_line(res, ty, ev.rv, &ev.obj, &mut out);
                        }
                    }
                    scanned = st.rv;
                }
                (killed, expired, !st.installed[i])
            };
            if killed {
                // Abrupt: the connection drops without the terminating chunk.
                let _ = tx.send(Err(std::io::Error::other("disconnected"))).await;
                return;
            }
            if let Some(msg) = expired {
                let e = ApiError::new(410, msg);
                lock(&store).count_status(410);
                let _ = tx
                    .send(Ok(Bytes::from(event_line_value("ERROR", &e.status()))))
                    .await;
                return;
            }
            if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
            if uninstalled {
                return; // the CRD went away: the real server ends the watch
            }
            let now = tokio::time::Instant::now();
            if bookmarks && now >= next_bookmark {
                if tx
                    .send(Ok(Bytes::from(bookmark(res, scanned, false))))
                    .await
                    .is_err()
                {
                    return;
                }
                next_bookmark = now + interval;
            }
            if now >= deadline {
                return;
            }
            let wake = if bookmarks {
                deadline.min(next_bookmark)
            } else {
                deadline
            };
            tokio::select! {
                _ = tick.changed() => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(stream_response(rx))
}

fn stream_response(rx: tokio::sync::mpsc::Receiver<Chunk>) -> Response {
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    (
        [("content-type", "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A watch that answers with one ERROR event (HTTP 200, like the real server).
fn error_stream(store: &Shared, e: ApiError) -> Response {
    lock(store).count_status(e.code);
    let mut status = e.status();
    if e.code == 410 {
        if let Some(m) = status.as_object_mut() {
            m.remove("details");
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(1);
    let _ = tx.try_send(Ok(Bytes::from(event_line_value("ERROR", &status))));
    stream_response(rx)
}

// ------------------------------------------------------------------ control

fn control(store: &Shared, method: &Method, op: &str, body: &[u8]) -> Result<Response, ApiError> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::new(400, format!("control: invalid JSON: {e}")))?
    };
    let resource = || -> Result<usize, ApiError> {
        let r = body["resource"].as_str().unwrap_or_default();
        res_index(r).ok_or_else(|| {
            let known: Vec<&str> = RESOURCES.iter().map(|r| r.name).collect();
            ApiError::new(
                400,
                format!("control: unknown resource {r:?}; known: {known:?}"),
            )
        })
    };
    let mut st = lock(store);
    if method == Method::GET && op == "stats" {
        let watches: Vec<Value> = st
            .watches
            .iter()
            .map(|(id, w)| {
                json!({"id": id, "resource": RESOURCES[w.res].name, "path": w.path, "namespace": w.namespace,
                       "labelSelector": w.label, "fieldSelector": w.field,
                       "resourceVersion": w.start_rv.to_string(), "bookmarks": w.bookmarks,
                       "ageSeconds": (w.opened.elapsed().as_secs_f64() * 1000.0).round() / 1000.0})
            })
            .collect();
        let objects: Map<String, Value> = RESOURCES
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.to_string(), json!(st.objs[i].len())))
            .collect();
        let installed: Map<String, Value> = RESOURCES
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.to_string(), json!(st.installed[i])))
            .collect();
        let forbidden: Map<String, Value> = st
            .forbidden
            .iter()
            .map(|(i, v)| (RESOURCES[*i].name.to_string(), json!(v)))
            .collect();
        return Ok(json_response(
            200,
            &json!({"requests": st.requests, "statusCounts": st.status_counts, "openWatches": st.watches.len(),
                    "watchesTotal": st.watches_total, "watches": watches,
                    "resourceVersion": st.rv.to_string(), "horizon": st.horizon.to_string(),
                    "objects": objects, "installed": installed, "forbidden": forbidden}),
        ));
    }
    if method != Method::POST {
        return Err(ApiError::new(405, "control: use POST"));
    }
    let answer = match op {
        "apply" => {
            let i = resource()?;
            if !body["object"].is_object() {
                return Err(ApiError::new(400, "control: body.object must be an object"));
            }
            let (ty, o) = st.apply(RESOURCES[i].name, &body["object"])?;
            json!({"type": ty, "resourceVersion": o.rv.to_string(), "object": o.to_value(&RESOURCES[i])})
        }
        "delete" => {
            let i = resource()?;
            let name = match &body["name"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let rv = st.delete(RESOURCES[i].name, body["namespace"].as_str(), &name)?;
            json!({"type": "DELETED", "resourceVersion": rv.to_string()})
        }
        "expire" => {
            st.horizon = st.rv;
            st.log.clear();
            st.expire_epoch += 1;
            let n = st.watches.len();
            let rv = st.rv;
            st.tick.send_replace(rv);
            json!({"horizon": st.horizon.to_string(), "expiredWatches": n})
        }
        "disconnect" => {
            st.kill_epoch += 1;
            let n = st.watches.len();
            let rv = st.rv;
            st.tick.send_replace(rv);
            json!({"dropped": n})
        }
        "forbid" => {
            let i = resource()?;
            let verbs: BTreeSet<String> = body["verbs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            // Open watches of a newly forbidden resource keep running, as with a real RBAC change.
            let shown = if verbs.is_empty() {
                json!("all")
            } else {
                json!(verbs)
            };
            st.forbidden.insert(i, verbs);
            json!({"forbidden": RESOURCES[i].name, "verbs": shown})
        }
        "unforbid" => {
            if body["resource"].is_null() {
                st.forbidden.clear();
            } else {
                let i = resource()?;
                st.forbidden.remove(&i);
            }
            json!({"ok": true})
        }
        "install" | "uninstall" => {
            let i = resource()?;
            if RESOURCES[i].builtin {
                return Err(ApiError::new(
                    400,
                    "control: only custom resources can be (un)installed",
                ));
            }
            let install = op == "install";
            st.installed[i] = install;
            if !install {
                st.objs[i].clear();
            }
            st.rv += 1;
            let rv = st.rv;
            st.tick.send_replace(rv);
            json!({"resource": RESOURCES[i].name, "installed": install})
        }
        "reset-stats" => {
            st.requests.clear();
            st.status_counts.clear();
            st.watches_total = 0;
            json!({"ok": true})
        }
        _ => {
            return Err(ApiError::new(
                404,
                format!("control: unknown operation {op}"),
            ))
        }
    };
    Ok(json_response(200, &answer))
}
