//! A bundle directory (docs/design.md section 4): plain outputs of kubectl, the
//! AWS CLI and curl against ipamd. Every file is optional: a missing file
//! makes what depends on it unknown. A malformed file is an error that names
//! the file and what was wrong.
//!
//! Only regular files are read (symlinks followed), and at most
//! [`MAX_FILE_BYTES`] of each: a FIFO would block forever and a link to
//! `/dev/zero` would fill memory.

use super::{cloudtrail, ec2, ipamd, kube};
use crate::model::env::ConfigMapRead;
use crate::model::state::*;
use crate::{Error, Result};
use include_dir::{include_dir, Dir};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The demo bundle compiled into the binary: both incidents plus healthy nodes.
static DEMO: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/bundles/demo");

/// Where bundle files come from: a directory, or the embedded demo.
pub trait BundleFiles {
    /// `Ok(None)` when the file does not exist.
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>>;
    /// Entries of a sub-directory, sorted: (name, is_dir). Empty if absent.
    fn list(&self, rel_dir: &str) -> Result<Vec<(String, bool)>>;
    /// How to name a file in messages.
    fn display(&self, rel: &str) -> String;
}

pub(crate) struct DirBundle {
    root: PathBuf,
}

impl DirBundle {
    pub(crate) fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::BundleNotFound {
                path: root.to_path_buf(),
            });
        }
        Ok(DirBundle {
            root: root.to_path_buf(),
        })
    }
}

/// The largest bundle file read: 2 GiB, far above any real capture (a
/// 5,000-node `pods.json` is a few hundred MB).
pub(crate) const MAX_FILE_BYTES: u64 = 2 << 30;

/// What a non-regular file is, for messages.
fn file_kind(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

/// `2 GiB`, or `N bytes` for a cap that is not a whole number of GiB.
fn human_bytes(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{} GiB", n >> 30)
    } else {
        format!("{n} bytes")
    }
}

/// Reads `path` if it is a regular file (after following symlinks) of at
/// most `cap` bytes; `Ok(None)` when it does not exist. `file` names it in
/// errors.
///
/// The type is checked with `stat` before the file is opened, so a FIFO is
/// never opened (opening one blocks until a writer appears). A path swapped
/// for a FIFO between the two calls can still block: an accepted race, as
/// bundles are files the operator wrote. The size is checked from the
/// metadata and again while reading, for files that grow or report no size
/// (`/proc`).
fn read_regular(path: &Path, file: &str, cap: u64) -> Result<Option<Vec<u8>>> {
    let read_err = |source: std::io::Error| Error::Read {
        file: file.to_string(),
        source,
    };
    let invalid = |message: String| Error::Invalid {
        file: file.to_string(),
        message,
    };
    let too_large = || {
        invalid(format!(
            "larger than {}, the limit for one bundle file",
            human_bytes(cap)
        ))
    };
    let not_regular = |t: std::fs::FileType| {
        let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        invalid(format!(
            "not a regular file ({}{})",
            if link { "a symlink to " } else { "" },
            file_kind(t)
        ))
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    if meta.len() > cap {
        return Err(too_large());
    }
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    // What was opened, in case the path changed since the stat.
    let meta = f.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len().min(cap)).unwrap_or(0));
    f.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    if u64::try_from(buf.len()).unwrap_or(u64::MAX) > cap {
        return Err(too_large());
    }
    Ok(Some(buf))
}

impl BundleFiles for DirBundle {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        read_regular(&self.root.join(rel), &self.display(rel), MAX_FILE_BYTES)
    }

    fn list(&self, rel_dir: &str) -> Result<Vec<(String, bool)>> {
        let dir = self.root.join(rel_dir);
        // stat first (following symlinks): a FIFO or file where a directory
        // is expected is an error that says so, and is never opened.
        match std::fs::metadata(&dir) {
            Ok(m) if !m.is_dir() => {
                let what = if m.is_file() {
                    "a regular file"
                } else {
                    file_kind(m.file_type())
                };
                return Err(invalid(self, rel_dir, format!("not a directory ({what})")));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::Read {
                    file: self.display(rel_dir),
                    source: e,
                })
            }
        }
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::Read {
                    file: self.display(rel_dir),
                    source: e,
                })
            }
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::Read {
                file: self.display(rel_dir),
                source: e,
            })?;
            // Follows symlinks, as `read` does; a dangling link is no directory.
            let is_dir = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
            out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
        }
        out.sort();
        Ok(out)
    }

    fn display(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }
}

pub struct EmbeddedBundle {
    dir: &'static Dir<'static>,
}

impl EmbeddedBundle {
    pub fn demo() -> Self {
        EmbeddedBundle { dir: &DEMO }
    }
}

impl BundleFiles for EmbeddedBundle {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.dir.get_file(rel).map(|f| f.contents().to_vec()))
    }

    fn list(&self, rel_dir: &str) -> Result<Vec<(String, bool)>> {
        let Some(d) = self.dir.get_dir(rel_dir) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, bool)> = d
            .entries()
            .iter()
            .filter_map(|e| {
                let name = e.path().file_name()?.to_string_lossy().into_owned();
                Some((name, e.as_dir().is_some()))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn display(&self, rel: &str) -> String {
        format!("<embedded demo>/{rel}")
    }
}

/// A bundle being written in memory: what each live collector holds, in
/// the layout [`load`] reads (docs/design.md section 4), and what could not be
/// captured, by file. `capture` writes it to disk; tests load it back.
#[derive(Default)]
pub(crate) struct BundleOut {
    files: BTreeMap<String, Vec<u8>>,
    skipped: BTreeMap<String, String>,
    /// Start of the CloudTrail window the `cloudtrail/` files cover.
    pub(crate) cloudtrail_start: Option<Timestamp>,
    /// ConfigMaps ("namespace/name") the apiserver said do not exist.
    pub(crate) config_maps_not_found: Vec<String>,
}

/// JSON as kubectl and the AWS CLI print it (4-space indent, newline).
pub(crate) fn pretty_json(v: &impl serde::Serialize) -> Vec<u8> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Only maps with string keys and plain values are written: cannot fail.
    if v.serialize(&mut ser).is_err() {
        buf.clear();
        buf.extend_from_slice(b"null");
    }
    buf.push(b'\n');
    buf
}

impl BundleOut {
    pub(crate) fn file(&mut self, rel: &str, bytes: Vec<u8>) {
        self.files.insert(rel.to_string(), bytes);
    }

    pub(crate) fn json(&mut self, rel: &str, v: &impl serde::Serialize) {
        self.file(rel, pretty_json(v));
    }

    /// A kubectl-style `List` of `kind` objects, each with its apiVersion and kind.
    pub(crate) fn list(&mut self, rel: &str, api_version: &str, kind: &str, items: Vec<Value>) {
        let items: Vec<Value> = items
            .into_iter()
            .map(|mut v| {
                if let Value::Object(m) = &mut v {
                    m.insert("apiVersion".into(), Value::from(api_version));
                    m.insert("kind".into(), Value::from(kind));
                }
                v
            })
            .collect();
        self.json(
            rel,
            &serde_json::json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}),
        );
    }

    pub(crate) fn skip(&mut self, rel: &str, why: impl Into<String>) {
        self.skipped.insert(rel.to_string(), why.into());
    }

    pub(crate) fn skipped(&self) -> &BTreeMap<String, String> {
        &self.skipped
    }

    pub(crate) fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

impl BundleFiles for BundleOut {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.files.get(rel).cloned())
    }

    fn list(&self, rel_dir: &str) -> Result<Vec<(String, bool)>> {
        let prefix = format!("{}/", rel_dir.trim_end_matches('/'));
        let mut out: Vec<(String, bool)> = self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| match rest.split_once('/') {
                Some((dir, _)) => (dir.to_string(), true),
                None => (rest.to_string(), false),
            })
            .collect();
        out.dedup();
        Ok(out)
    }

    fn display(&self, rel: &str) -> String {
        format!("captured {rel}")
    }
}

fn parse_json<T: DeserializeOwned>(files: &dyn BundleFiles, rel: &str) -> Result<Option<T>> {
    let Some(bytes) = files.read(rel)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| Error::Json {
            file: files.display(rel),
            source,
        })
}

/// A kubectl List read item by item: items of another `kind` (what
/// `kubectl get nodes,pods -o json` mixes in) are skipped, and an object
/// listed twice (same namespace and name; the higher resourceVersion wins)
/// is one object, so no series is exported twice. Items without `kind`
/// (hand-made bundles) are taken.
fn parse_list<T: DeserializeOwned>(
    files: &dyn BundleFiles,
    rel: &str,
    kind: &str,
) -> Result<Option<Vec<T>>> {
    #[derive(Deserialize)]
    struct RawList {
        items: Vec<Box<serde_json::value::RawValue>>,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        metadata: HeadMeta,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct HeadMeta {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        namespace: Option<String>,
        #[serde(default)]
        resource_version: Option<String>,
    }
    let Some(list) = parse_json::<RawList>(files, rel)? else {
        return Ok(None);
    };
    let json_err = |source| Error::Json {
        file: files.display(rel),
        source,
    };
    let (mut foreign, mut duplicate) = (0usize, 0usize);
    // (namespace, name) -> index in `out`, and that item's resourceVersion.
    let mut seen: std::collections::HashMap<(String, String), (usize, Option<u64>)> =
        std::collections::HashMap::new();
    let mut out: Vec<Option<T>> = Vec::with_capacity(list.items.len());
    for raw in &list.items {
        let head: Head = serde_json::from_str(raw.get()).map_err(json_err)?;
        if head.kind.as_deref().is_some_and(|k| k != kind) {
            foreign += 1;
            continue;
        }
        let item: T = serde_json::from_str(raw.get()).map_err(json_err)?;
        let version = head
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        let Some(name) = head.metadata.name else {
            out.push(Some(item));
            continue;
        };
        let key = (head.metadata.namespace.unwrap_or_default(), name);
        match seen.get(&key) {
            Some(&(i, old)) => {
                duplicate += 1;
                if version >= old {
                    out[i] = Some(item);
                    seen.insert(key, (i, version));
                }
            }
            None => {
                seen.insert(key, (out.len(), version));
                out.push(Some(item));
            }
        }
    }
    if foreign > 0 || duplicate > 0 {
        tracing::warn!(
            file = %files.display(rel),
            foreign_items_skipped = foreign,
            duplicate_items_merged = duplicate,
            "list holds items of another kind or the same object twice"
        );
    }
    Ok(Some(out.into_iter().flatten().collect()))
}

/// A list whose objects convert with `to_state`; a bundle is a deliberate artefact, so the first
/// object that does not convert fails the load with the file named.
fn parse_states<K: serde::de::DeserializeOwned, S>(
    files: &dyn BundleFiles,
    rel: &str,
    kind: &str,
    to_state: impl Fn(&K) -> std::result::Result<S, String>,
) -> Result<Option<Vec<S>>> {
    let Some(list) = parse_list::<K>(files, rel, kind)? else {
        return Ok(None);
    };
    list.iter()
        .map(|o| to_state(o).map_err(|m| invalid(files, rel, m)))
        .collect::<Result<Vec<S>>>()
        .map(Some)
}

fn invalid(files: &dyn BundleFiles, rel: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        file: files.display(rel),
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleMeta {
    #[serde(default)]
    captured_at: Option<Value>,
    #[serde(default)]
    cluster_name: Option<String>,
    #[serde(default)]
    region: Option<String>,
    /// Optional: when the CloudTrail files' lookup window began.
    #[serde(default)]
    cloudtrail_start_time: Option<Value>,
    /// Optional: ConfigMaps ("namespace/name") the apiserver said do not
    /// exist, which `kubernetes/configmaps.json` cannot say by itself.
    #[serde(default)]
    config_maps_not_found: Vec<String>,
}

/// Every path a bundle may hold (directories end in `/`), for the
/// "nothing recognised" check and for documentation.
pub(crate) const KNOWN_PATHS: &[&str] = &[
    "bundle.json",
    "kubernetes/nodes.json",
    "kubernetes/pods.json",
    "kubernetes/daemonsets.json",
    "kubernetes/deployments.json",
    "kubernetes/events.json",
    "kubernetes/nodeclaims.json",
    "kubernetes/nodepools.json",
    "kubernetes/ec2nodeclasses.json",
    "kubernetes/nodeclasses.json",
    "kubernetes/eniconfigs.json",
    "kubernetes/configmaps.json",
    "ec2/instance-types.json",
    "ec2/subnets.json",
    "ec2/network-interfaces.json",
    "ec2/subnet-cidr-reservations.json",
    "cloudtrail/",
    "ipamd/",
];

fn recognised_anything(files: &dyn BundleFiles) -> Result<bool> {
    for p in KNOWN_PATHS {
        let found = match p.strip_suffix('/') {
            Some(dir) => !files.list(dir)?.is_empty(),
            None => files.read(p)?.is_some(),
        };
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads a whole bundle into the typed state.
pub fn load(files: &dyn BundleFiles) -> Result<ClusterState> {
    if !recognised_anything(files)? {
        return Err(invalid(
            files,
            "",
            "no bundle file found (expected e.g. kubernetes/nodes.json, ipamd/<node>/enis.json; see README \"Build a bundle by hand\")",
        ));
    }
    let mut st = ClusterState::default();
    let mut cloudtrail_start: Option<Timestamp> = None;
    let mut config_maps_not_found = Vec::new();

    if let Some(meta) = parse_json::<BundleMeta>(files, "bundle.json")? {
        let ts = |v: &Option<Value>, field: &str| -> Result<Option<Timestamp>> {
            v.as_ref()
                .map(super::time::parse_value)
                .transpose()
                .map(Option::flatten)
                .map_err(|m| invalid(files, "bundle.json", format!("{field}: {m}")))
        };
        st.now = ts(&meta.captured_at, "capturedAt")?;
        cloudtrail_start = ts(&meta.cloudtrail_start_time, "cloudtrailStartTime")?;
        st.cluster_name = meta.cluster_name;
        st.region = meta.region;
        config_maps_not_found = meta.config_maps_not_found;
    }

    // DaemonSets first: ENI_CONFIG_LABEL_DEF decides which node labels to keep.
    if let Some(list) =
        parse_list::<kube::KWorkload>(files, "kubernetes/daemonsets.json", "DaemonSet")?
    {
        st.aws_node = Some(kube::aws_node_daemonset_env(&list).map(
            |(namespace, daemonset_env)| AwsNodeState {
                namespace,
                daemonset_env,
            },
        ));
    }

    if let Some(list) = parse_list::<kube::KPod>(files, "kubernetes/pods.json", "Pod")? {
        for (node, p) in kube::aws_node_pod_per_node(&list) {
            if let Some(env) = p.aws_node_env() {
                st.aws_node_pod_env
                    .insert(node.to_string(), std::sync::Arc::new(env));
            }
        }
        let pods: Vec<(u128, PodState)> = list.iter().map(|p| (p.key(), p.to_state())).collect();
        st.pods = Some(PodSummary::from_keyed_pods(
            pods.iter().map(|(k, p)| (*k, p)),
        ));
    }

    if let Some(list) =
        parse_list::<kube::KWorkload>(files, "kubernetes/deployments.json", "Deployment")?
    {
        st.karpenter = Some(kube::karpenter_controller(&list));
    }

    // The ConfigMaps the settings name (the only ones used), before the
    // nodes: ENI_CONFIG_LABEL_DEF may come from one.
    let rel = "kubernetes/configmaps.json";
    let config_maps = parse_list::<kube::KConfigMap>(files, rel, "ConfigMap")?;
    for key in st.config_map_refs() {
        let read = match &config_maps {
            None => ConfigMapRead::Unreadable(format!("not in the bundle ({rel} is absent)")),
            Some(list) => match list.iter().find(|c| c.key() == key) {
                Some(c) => ConfigMapRead::Data(c.data.clone()),
                None if config_maps_not_found.contains(&format!("{}/{}", key.0, key.1)) => {
                    ConfigMapRead::NotFound
                }
                None => ConfigMapRead::Unreadable(format!("not in the bundle's {rel}")),
            },
        };
        st.config_maps.insert(key, read);
    }

    if let Some(list) = parse_list::<kube::KNode>(files, "kubernetes/nodes.json", "Node")? {
        let (labels, annotations) = kube::eni_config_keys(
            st.aws_node.as_ref().and_then(|a| a.as_ref()),
            &st.aws_node_pod_env,
            &st.config_maps,
        );
        let nodes: Vec<NodeState> = list
            .iter()
            .map(|n| n.to_state(&labels, &annotations))
            .collect();
        st.nodes = Some(nodes);
    }

    if let Some(list) = parse_list::<kube::KEvent>(files, "kubernetes/events.json", "Event")? {
        st.sandbox_failures = Some(
            list.iter()
                .filter_map(kube::KEvent::sandbox_ip_failure)
                .collect(),
        );
        st.networking_events = Some(
            list.iter()
                .filter_map(kube::KEvent::networking_event)
                .collect(),
        );
        st.resource_controller_events = Some(
            list.iter()
                .filter_map(kube::KEvent::resource_controller_event)
                .collect(),
        );
    }

    if let Some(list) =
        parse_list::<kube::KNodeClaim>(files, "kubernetes/nodeclaims.json", "NodeClaim")?
    {
        st.nodeclaims = Some(list.iter().map(kube::KNodeClaim::to_state).collect());
    }
    // NodePools: validated, not used by the view yet.
    parse_list::<kube::KNodePool>(files, "kubernetes/nodepools.json", "NodePool")?;
    st.ec2nodeclasses = parse_states::<kube::KNodeClass, _>(
        files,
        "kubernetes/ec2nodeclasses.json",
        "EC2NodeClass",
        kube::KNodeClass::to_state,
    )?;
    st.nodeclasses = parse_states::<kube::KAutoNodeClass, _>(
        files,
        "kubernetes/nodeclasses.json",
        "NodeClass",
        kube::KAutoNodeClass::to_state,
    )?;
    if let Some(list) =
        parse_list::<kube::KEniConfig>(files, "kubernetes/eniconfigs.json", "ENIConfig")?
    {
        st.eniconfigs = Some(list.iter().map(kube::KEniConfig::to_state).collect());
    }

    if let Some(d) = parse_json::<ec2::DescribeInstanceTypes>(files, "ec2/instance-types.json")? {
        st.instance_types = Some(
            d.instance_types
                .iter()
                .map(ec2::InstanceTypeInfo::to_limits)
                .collect(),
        );
    }
    if let Some(d) = parse_json::<ec2::DescribeSubnets>(files, "ec2/subnets.json")? {
        let rel = "ec2/subnets.json";
        st.subnets = Some(
            d.subnets
                .iter()
                .map(|s| s.to_state().map_err(|m| invalid(files, rel, m)))
                .collect::<Result<_>>()?,
        );
    }
    if let Some(d) =
        parse_json::<ec2::GetSubnetCidrReservations>(files, "ec2/subnet-cidr-reservations.json")?
    {
        let rel = "ec2/subnet-cidr-reservations.json";
        let mut by_subnet: HashMap<&str, Vec<CidrReservation>> = HashMap::new();
        for r in &d.subnet_ipv4_cidr_reservations {
            let st = r.to_state().map_err(|m| invalid(files, rel, m))?;
            by_subnet.entry(r.subnet_id.as_str()).or_default().push(st);
        }
        // The file covers the bundle's subnets: one without an entry has none.
        for s in st.subnets.iter_mut().flatten() {
            s.cidr_reservations = Some(by_subnet.remove(s.id.as_str()).unwrap_or_default());
        }
    }
    if let Some(d) =
        parse_json::<ec2::DescribeNetworkInterfaces>(files, "ec2/network-interfaces.json")?
    {
        let rel = "ec2/network-interfaces.json";
        st.network_interfaces = Some(std::sync::Arc::new(
            d.network_interfaces
                .iter()
                .map(|n| n.to_state().map_err(|m| invalid(files, rel, m)))
                .collect::<Result<_>>()?,
        ));
    }

    st.api_calls = load_cloudtrail(files, cloudtrail_start)?;

    for (node, is_dir) in files.list("ipamd")? {
        if !is_dir {
            continue;
        }
        let mut ipamd_state = IpamdNodeState::default();
        let enis_rel = format!("ipamd/{node}/enis.json");
        if let Some(bytes) = files.read(&enis_rel)? {
            ipamd_state.pool =
                Some(ipamd::parse_enis(&bytes).map_err(|m| invalid(files, &enis_rel, m))?);
        }
        let metrics_rel = format!("ipamd/{node}/metrics.txt");
        if let Some(bytes) = files.read(&metrics_rel)? {
            let text = String::from_utf8(bytes)
                .map_err(|_| invalid(files, &metrics_rel, "not UTF-8 text"))?;
            ipamd_state.metrics =
                Some(ipamd::parse_metrics(&text).map_err(|m| invalid(files, &metrics_rel, m))?);
        }
        st.ipamd.insert(node, std::sync::Arc::new(ipamd_state));
    }
    Ok(st)
}

fn load_cloudtrail(
    files: &dyn BundleFiles,
    start: Option<Timestamp>,
) -> Result<Option<ApiCallState>> {
    let entries = files.list("cloudtrail")?;
    let json_files: Vec<String> = entries
        .into_iter()
        .filter(|(name, is_dir)| !is_dir && name.ends_with(".json"))
        .map(|(name, _)| format!("cloudtrail/{name}"))
        .collect();
    if json_files.is_empty() {
        return Ok(None);
    }
    let mut seen = HashSet::new();
    let mut calls = Vec::new();
    for rel in &json_files {
        let Some(out) = parse_json::<cloudtrail::LookupEventsOutput>(files, rel)? else {
            continue;
        };
        for e in &out.events {
            if let Some(call) = cloudtrail::to_api_call(e).map_err(|m| invalid(files, rel, m))? {
                // Overlapping lookups return the same event more than once.
                if seen.insert(call.event_id.clone()) {
                    calls.push(call);
                }
            }
        }
    }
    let coverage_start = start.or_else(|| calls.iter().map(|c| c.time).min());
    calls.sort_by(|a, b| a.time.cmp(&b.time).then(a.event_id.cmp(&b.event_id)));
    Ok(Some(ApiCallState {
        calls,
        coverage_start,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: Error) -> String {
        match e {
            Error::Invalid { file, message } => format!("{file}: {message}"),
            other => panic!("expected Error::Invalid, got {other:?}"),
        }
    }

    /// Issue 14 item 12: settings from a ConfigMap come from the bundle's
    /// `kubernetes/configmaps.json` (what `capture` writes); absent, they
    /// are unknown with the reason, never the default.
    #[test]
    fn settings_resolve_from_the_bundled_config_maps() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("kubernetes")).unwrap();
        std::fs::write(
            dir.path().join("kubernetes/daemonsets.json"),
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"apps/v1","kind":"DaemonSet",
               "metadata":{"name":"aws-node","namespace":"kube-system","uid":"ds"},
               "spec":{"template":{"spec":{"containers":[{"name":"aws-node","env":[
                 {"name":"MINIMUM_IP_TARGET","value":"25"},
                 {"name":"WARM_IP_TARGET","valueFrom":{"configMapKeyRef":{"name":"cni-settings","key":"warm"}}}]}]}}}}]}"#,
        )
        .unwrap();
        let settings = || {
            let st = load(&DirBundle::open(dir.path()).unwrap()).unwrap();
            let a = crate::model::analysis::analyse(&st);
            (a.cluster.aws_node_settings, a.cluster.aws_node_unresolved)
        };
        let (known, why) = settings();
        assert_eq!(known, None);
        assert_eq!(
            why,
            vec!["WARM_IP_TARGET (ConfigMap kube-system/cni-settings: not in the bundle (kubernetes/configmaps.json is absent))"]
        );
        let cm = |ns: &str| {
            format!(
                r#"{{"apiVersion":"v1","kind":"List","items":[
                   {{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cni-settings","namespace":"{ns}","uid":"cm-{ns}"}},
                     "data":{{"warm":"10"}}}},
                   {{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"cni-settings","namespace":"kube-system"}},
                     "data":{{"warm":"MTA="}}}}]}}"#
            )
        };
        std::fs::write(dir.path().join("kubernetes/configmaps.json"), cm("default")).unwrap();
        let (known, why) = settings();
        assert_eq!(known, None);
        assert!(
            why[0].contains("not in the bundle's kubernetes/configmaps.json"),
            "{why:?}"
        );
        std::fs::write(
            dir.path().join("kubernetes/configmaps.json"),
            cm("kube-system"),
        )
        .unwrap();
        let (known, why) = settings();
        assert!(why.is_empty(), "{why:?}");
        let known = known.unwrap();
        assert_eq!((known.warm_ip_target, known.minimum_ip_target), (10, 25));
    }

    /// Issue 14 item 9: `kubectl get nodes,pods -o json` mixes kinds, and
    /// an object listed twice must not become two nodes (two series each).
    #[test]
    fn lists_take_their_kind_and_each_object_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("kubernetes")).unwrap();
        let node = |name: &str, rv: &str, pods: &str| {
            format!(
                r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}","uid":"u-{name}","resourceVersion":"{rv}"}},
                   "status":{{"capacity":{{"pods":"{pods}"}}}}}}"#
            )
        };
        let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"default"},"spec":{"nodeName":"n1"}}"#;
        let items = [
            node("n1", "100", "17"),
            pod.to_string(),
            node("n1", "120", "12"),
            node("n2", "7", "29"),
        ];
        std::fs::write(
            dir.path().join("kubernetes/nodes.json"),
            format!(
                r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
                items.join(",")
            ),
        )
        .unwrap();
        let st = load(&DirBundle::open(dir.path()).unwrap()).unwrap();
        let nodes = st.nodes.unwrap();
        let names: Vec<(&str, Option<u32>)> = nodes
            .iter()
            .map(|n| (n.name.as_str(), n.capacity_pods))
            .collect();
        // No phantom node "web-1"; n1 once, at its newer resourceVersion.
        assert_eq!(names, [("n1", Some(12)), ("n2", Some(29))]);
    }

    #[test]
    fn size_cap_is_enforced_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nodes.json");
        std::fs::write(&p, b"0123456789").unwrap();
        let ok = read_regular(&p, "nodes.json", 10).unwrap();
        assert_eq!(ok.as_deref(), Some(&b"0123456789"[..]));
        let err = message(read_regular(&p, "nodes.json", 9).unwrap_err());
        assert!(err.contains("nodes.json"), "{err}");
        assert!(err.contains("larger than 9 bytes"), "{err}");
        assert_eq!(human_bytes(MAX_FILE_BYTES), "2 GiB");
        assert_eq!(MAX_FILE_BYTES, 2 * 1024 * 1024 * 1024);
    }

    /// `/proc` files report size 0: the cap must hold while reading too.
    #[cfg(target_os = "linux")]
    #[test]
    fn size_cap_holds_for_files_that_report_no_size() {
        let p = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(p).unwrap().len(), 0);
        let err = message(read_regular(p, "status", 16).unwrap_err());
        assert!(err.contains("larger than 16 bytes"), "{err}");
    }

    #[test]
    fn directory_where_a_file_is_expected_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("kubernetes/nodes.json")).unwrap();
        let b = DirBundle::open(dir.path()).unwrap();
        let err = message(b.read("kubernetes/nodes.json").unwrap_err());
        assert!(err.contains("kubernetes/nodes.json"), "{err}");
        assert!(err.contains("not a regular file (a directory)"), "{err}");
        assert_eq!(b.read("kubernetes/pods.json").unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_to_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ec2")).unwrap();
        std::fs::create_dir_all(dir.path().join("real/n1")).unwrap();
        std::fs::write(dir.path().join("real/subnets.json"), b"{}").unwrap();
        let link = |target: &str, rel: &str| {
            std::os::unix::fs::symlink(target, dir.path().join(rel)).unwrap();
        };
        link("../real/subnets.json", "ec2/subnets.json");
        link("/dev/zero", "ec2/instance-types.json");
        link("real", "ipamd");
        let b = DirBundle::open(dir.path()).unwrap();
        assert_eq!(
            b.read("ec2/subnets.json").unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        let err = message(b.read("ec2/instance-types.json").unwrap_err());
        assert!(
            err.contains("not a regular file (a symlink to a character device)"),
            "{err}"
        );
        // A linked directory lists, and its sub-directories count as such.
        let entries = b.list("ipamd").unwrap();
        assert!(entries.contains(&("n1".to_string(), true)), "{entries:?}");
        let err = message(b.list("ec2/subnets.json").unwrap_err());
        assert!(err.contains("not a directory (a regular file)"), "{err}");
    }
}
