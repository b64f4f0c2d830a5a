//! A bundle directory (design.md section 4): plain outputs of kubectl, the
//! AWS CLI and curl against ipamd. Every file is optional: a missing file
//! makes what depends on it unknown. A malformed file is an error that names
//! the file and what was wrong.

use super::{cloudtrail, ec2, ipamd, kube};
use crate::model::state::*;
use crate::{Error, Result};
use include_dir::{include_dir, Dir};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
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

pub struct DirBundle {
    root: PathBuf,
}

impl DirBundle {
    pub fn open(root: &Path) -> Result<Self> {
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

impl BundleFiles for DirBundle {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let path = self.root.join(rel);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Read {
                file: self.display(rel),
                source: e,
            }),
        }
    }

    fn list(&self, rel_dir: &str) -> Result<Vec<(String, bool)>> {
        let dir = self.root.join(rel_dir);
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
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
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
}

/// Every path a bundle may hold (directories end in `/`), for the
/// "nothing recognised" check and for documentation.
pub const KNOWN_PATHS: &[&str] = &[
    "bundle.json",
    "kubernetes/nodes.json",
    "kubernetes/pods.json",
    "kubernetes/daemonsets.json",
    "kubernetes/deployments.json",
    "kubernetes/events.json",
    "kubernetes/nodeclaims.json",
    "kubernetes/nodepools.json",
    "kubernetes/ec2nodeclasses.json",
    "kubernetes/eniconfigs.json",
    "ec2/instance-types.json",
    "ec2/subnets.json",
    "ec2/network-interfaces.json",
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
    }

    // DaemonSets first: ENI_CONFIG_LABEL_DEF decides which node labels to keep.
    if let Some(list) =
        parse_json::<kube::List<kube::KWorkload>>(files, "kubernetes/daemonsets.json")?
    {
        st.aws_node = Some(kube::aws_node_daemonset_env(&list.items).map(
            |(namespace, daemonset_env)| AwsNodeState {
                namespace,
                daemonset_env,
            },
        ));
    }

    if let Some(list) = parse_json::<kube::List<kube::KPod>>(files, "kubernetes/pods.json")? {
        let mut pods = Vec::with_capacity(list.items.len());
        for p in &list.items {
            if let (Some(env), Some(node)) = (p.aws_node_env(), p.spec.node_name.as_ref()) {
                st.aws_node_pod_env
                    .insert(node.clone(), std::sync::Arc::new(env));
            }
            pods.push(p.to_state());
        }
        st.pods = Some(PodSummary::from_pods(&pods));
    }

    if let Some(list) = parse_json::<kube::List<kube::KNode>>(files, "kubernetes/nodes.json")? {
        let (labels, annotations) = kube::eni_config_keys(
            st.aws_node.as_ref().and_then(|a| a.as_ref()),
            &st.aws_node_pod_env,
        );
        let nodes: Vec<NodeState> = list
            .items
            .iter()
            .map(|n| n.to_state(&labels, &annotations))
            .collect();
        st.nodes = Some(nodes);
    }

    if let Some(list) =
        parse_json::<kube::List<kube::KWorkload>>(files, "kubernetes/deployments.json")?
    {
        st.karpenter = Some(kube::karpenter_controller(&list.items));
    }

    if let Some(list) = parse_json::<kube::List<kube::KEvent>>(files, "kubernetes/events.json")? {
        st.sandbox_failures = Some(
            list.items
                .iter()
                .filter_map(kube::KEvent::sandbox_ip_failure)
                .collect(),
        );
    }

    if let Some(list) =
        parse_json::<kube::List<kube::KNodeClaim>>(files, "kubernetes/nodeclaims.json")?
    {
        st.nodeclaims = Some(list.items.iter().map(kube::KNodeClaim::to_state).collect());
    }
    // NodePools: validated, not used by the view yet.
    parse_json::<kube::List<kube::KNodePool>>(files, "kubernetes/nodepools.json")?;
    if let Some(list) =
        parse_json::<kube::List<kube::KNodeClass>>(files, "kubernetes/ec2nodeclasses.json")?
    {
        let rel = "kubernetes/ec2nodeclasses.json";
        st.ec2nodeclasses = Some(
            list.items
                .iter()
                .map(|c| c.to_state().map_err(|m| invalid(files, rel, m)))
                .collect::<Result<_>>()?,
        );
    }
    if let Some(list) =
        parse_json::<kube::List<kube::KEniConfig>>(files, "kubernetes/eniconfigs.json")?
    {
        st.eniconfigs = Some(list.items.iter().map(kube::KEniConfig::to_state).collect());
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
