//! `capture --out DIR`: one read of every live source, written in the bundle
//! layout of design.md section 4, so `diagnose --bundle DIR` reproduces the
//! live diagnosis offline and a bug report carries the evidence.
//!
//! Kubernetes lists are written as `kubectl get X -o json` prints them
//! (items with apiVersion/kind, managedFields stripped); events are only the
//! `FailedCreatePodSandBox` ones. EC2 and CloudTrail are written in the AWS
//! CLI's JSON shape with the fields the exporter reads. ipamd payloads come
//! verbatim from the node agents.

use crate::collect::agents;
use crate::collect::aws_error_kind;
use crate::collect::cloudtrail::POLLED;
use crate::collect::rate::RateLimiter;
use crate::model::state::ClusterState;
use crate::sources::bundle::{self, DirBundle};
use crate::sources::kube::*;
use crate::{http, Error, Result};
use aws_sdk_ec2::types::Filter;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct CaptureOptions {
    pub(crate) cluster_name: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) disable_ec2: bool,
    pub(crate) disable_cloudtrail: bool,
    pub(crate) cloudtrail_lookback: Duration,
    pub(crate) cloudtrail_max_rps: f64,
    pub(crate) agent_timeout: Duration,
    pub(crate) agent_concurrency: usize,
    pub(crate) agent_namespace: Option<String>,
}

/// What capture could not read, by file (reported on stderr and in bundle.json).
pub(crate) type Skipped = BTreeMap<String, String>;

fn write_file(out: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    let path = out.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Read {
            file: dir.display().to_string(),
            source,
        })?;
    }
    std::fs::write(&path, bytes).map_err(|source| Error::Read {
        file: path.display().to_string(),
        source,
    })
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("serialising a Value cannot fail");
    buf.push(b'\n');
    buf
}

/// Lists one resource page by page into a kubectl-style List file.
async fn capture_list(
    client: &kube::Client,
    ar: &ApiResource,
    lp: ListParams,
    out: &Path,
    rel: &str,
    skipped: &mut Skipped,
) -> Result<Vec<Value>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut p = lp.clone().limit(500);
        if let Some(t) = &token {
            p = p.continue_token(t);
        }
        match api.list(&p).await {
            Ok(list) => {
                for mut obj in list.items {
                    obj.metadata.managed_fields = None;
                    let mut v = serde_json::to_value(&obj).unwrap_or(Value::Null);
                    if let Value::Object(m) = &mut v {
                        m.insert("apiVersion".into(), json!(ar.api_version));
                        m.insert("kind".into(), json!(ar.kind));
                    }
                    items.push(v);
                }
                token = list.metadata.continue_.filter(|t| !t.is_empty());
                if token.is_none() {
                    break;
                }
            }
            Err(e) => {
                let why = match &e {
                    kube::Error::Api(s) if s.code == 404 => {
                        "not found (CRD not installed?)".to_string()
                    }
                    kube::Error::Api(s) if s.code == 403 => "forbidden (RBAC)".to_string(),
                    other => other.to_string(),
                };
                skipped.insert(rel.to_string(), why);
                return Ok(Vec::new());
            }
        }
    }
    let list = json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}});
    write_file(out, rel, &pretty(&list))?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn sdk_time(t: &aws_smithy_types::DateTime) -> String {
    jiff::Timestamp::from_millisecond(t.to_millis().unwrap_or(0))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Captures everything into `out` (created if missing). Returns what was skipped.
pub(crate) async fn capture(out: &Path, opts: &CaptureOptions) -> Result<Skipped> {
    std::fs::create_dir_all(out).map_err(|source| Error::Read {
        file: out.display().to_string(),
        source,
    })?;
    let mut skipped = Skipped::new();
    let client = kube::Client::try_default()
        .await
        .map_err(|source| Error::KubeClient { source })?;
    capture_list(
        &client,
        &(ApiResource::erase::<KNode>(&())),
        ListParams::default(),
        out,
        "kubernetes/nodes.json",
        &mut skipped,
    )
    .await?;
    let pods = capture_list(
        &client,
        &(ApiResource::erase::<KPod>(&())),
        ListParams::default(),
        out,
        "kubernetes/pods.json",
        &mut skipped,
    )
    .await?;
    capture_list(
        &client,
        &(ApiResource::erase::<KDaemonSet>(&())),
        ListParams::default(),
        out,
        "kubernetes/daemonsets.json",
        &mut skipped,
    )
    .await?;
    capture_list(
        &client,
        &(ApiResource::erase::<KDeployment>(&())),
        ListParams::default(),
        out,
        "kubernetes/deployments.json",
        &mut skipped,
    )
    .await?;
    capture_list(
        &client,
        &(ApiResource::erase::<KEvent>(&())),
        ListParams::default().fields("reason=FailedCreatePodSandBox"),
        out,
        "kubernetes/events.json",
        &mut skipped,
    )
    .await?;
    capture_list(
        &client,
        &(ApiResource::erase::<KNodeClaim>(&())),
        ListParams::default(),
        out,
        "kubernetes/nodeclaims.json",
        &mut skipped,
    )
    .await?;
    capture_list(
        &client,
        &(ApiResource::erase::<KNodePool>(&())),
        ListParams::default(),
        out,
        "kubernetes/nodepools.json",
        &mut skipped,
    )
    .await?;
    capture_list(
        &client,
        &(ApiResource::erase::<KNodeClass>(&())),
        ListParams::default(),
        out,
        "kubernetes/ec2nodeclasses.json",
        &mut skipped,
    )
    .await?;
    capture_list(
        &client,
        &(ApiResource::erase::<KEniConfig>(&())),
        ListParams::default(),
        out,
        "kubernetes/eniconfigs.json",
        &mut skipped,
    )
    .await?;

    // The ConfigMaps the settings name, derived from what was written by
    // the bundle loader itself (the one assembly): `get` on each, as live.
    let partial = written_state(out);
    capture_config_maps(&client, &partial.config_map_refs(), out, &mut skipped).await?;

    // ipamd, through the node agents.
    let agent_pods: Vec<KPod> = pods
        .iter()
        .filter(|p| {
            let labels: Option<BTreeMap<String, String>> = p
                .pointer("/metadata/labels")
                .and_then(|l| serde_json::from_value(l.clone()).ok());
            is_agent_pod(labels.as_ref())
        })
        .filter(|p| {
            opts.agent_namespace.as_deref().is_none_or(|ns| {
                p.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
            })
        })
        .filter_map(|p| serde_json::from_value(p.clone()).ok())
        .collect();
    let endpoints: Vec<AgentEndpoint> =
        agent_pods.iter().filter_map(KPod::agent_endpoint).collect();
    let hc = http::client_without_pool();
    let readings: Vec<_> = {
        use futures::StreamExt;
        futures::stream::iter(endpoints)
            .map(|ep| {
                let hc = hc.clone();
                async move {
                    (
                        ep.node.clone(),
                        agents::pull(&hc, &ep.address, opts.agent_timeout).await,
                    )
                }
            })
            .buffer_unordered(opts.agent_concurrency.max(1))
            .collect()
            .await
    };
    for (node, r) in readings {
        match r {
            Ok(r) => {
                if let Some(raw) = &r.snapshot.enis {
                    write_file(
                        out,
                        &format!("ipamd/{node}/enis.json"),
                        raw.get().as_bytes(),
                    )?;
                }
                if let Some(m) = &r.snapshot.metrics {
                    write_file(out, &format!("ipamd/{node}/metrics.txt"), m.as_bytes())?;
                }
            }
            Err(e) => {
                skipped.insert(
                    format!("ipamd/{node}/enis.json"),
                    format!("node agent not readable: {e:?}"),
                );
            }
        }
    }

    // "Now" of the bundle: after every Kubernetes and ipamd read, and the
    // end of the CloudTrail window, so no payload is newer than it (a
    // released IP's age is never understated).
    let now = jiff::Timestamp::now();

    // What EC2 needs to be asked, derived from what was written (Kubernetes,
    // ConfigMaps, ipamd) exactly as the live EC2 rounds derive it.
    let wants = written_state(out).ec2_wants();

    let mut region = opts.region.clone();
    let mut cloudtrail_start = None;
    if !(opts.disable_ec2 && opts.disable_cloudtrail) {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::adaptive().with_max_attempts(5));
        if let Some(r) = &opts.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        region = region.or_else(|| sdk.region().map(|r| r.to_string()));
        if !opts.disable_ec2 {
            if let Err(why) = capture_ec2(
                &aws_sdk_ec2::Client::new(&sdk),
                out,
                &wants.instance_types,
                &wants.instance_ids,
                &wants.subnet_ids,
                wants.prefix_mode,
            )
            .await
            {
                skipped.insert("ec2/".into(), why.to_string());
            }
        }
        if !opts.disable_cloudtrail {
            let start =
                now - jiff::SignedDuration::try_from(opts.cloudtrail_lookback).unwrap_or_default();
            match capture_cloudtrail(
                &aws_sdk_cloudtrail::Client::new(&sdk),
                out,
                start,
                now,
                opts.cloudtrail_max_rps,
            )
            .await
            {
                Ok(()) => cloudtrail_start = Some(start.to_string()),
                Err(why) => {
                    skipped.insert("cloudtrail/".into(), why.to_string());
                }
            }
        }
    }

    let meta = json!({
        "capturedAt": now.to_string(),
        "clusterName": opts.cluster_name,
        "region": region,
        "cloudtrailStartTime": cloudtrail_start,
        "capturedBy": format!("eks-ipam-exporter {}", crate::VERSION),
        "skipped": skipped,
    });
    write_file(out, "bundle.json", &pretty(&meta))?;
    Ok(skipped)
}

/// The state of what has been written so far, through the bundle loader
/// (empty when nothing readable was written).
fn written_state(out: &Path) -> ClusterState {
    match DirBundle::open(out).and_then(|b| bundle::load(&b)) {
        Ok(st) => st,
        Err(e) => {
            tracing::warn!(error = %e, "capture: what was written so far does not load; ConfigMaps and EC2 prefix mode are not derived from it");
            ClusterState::default()
        }
    }
}

/// `get` on each named ConfigMap into `kubernetes/configmaps.json` (never
/// a list: the Role names them; never Secrets).
async fn capture_config_maps(
    client: &kube::Client,
    wanted: &BTreeSet<(String, String)>,
    out: &Path,
    skipped: &mut Skipped,
) -> Result<()> {
    const REL: &str = "kubernetes/configmaps.json";
    let mut items = Vec::new();
    let mut failed = Vec::new();
    for (ns, name) in wanted {
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), ns);
        match api.get_opt(name).await {
            Ok(Some(mut cm)) => {
                cm.metadata.managed_fields = None;
                let mut v = serde_json::to_value(&cm).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("apiVersion".into(), json!("v1"));
                    m.insert("kind".into(), json!("ConfigMap"));
                }
                items.push(v);
            }
            Ok(None) => failed.push(format!("{ns}/{name}: not found")),
            Err(kube::Error::Api(s)) if s.code == 403 => failed.push(format!(
                "{ns}/{name}: forbidden (grant get on it in Role eks-ipam-exporter-settings)"
            )),
            Err(e) => failed.push(format!("{ns}/{name}: {e}")),
        }
    }
    if !failed.is_empty() {
        skipped.insert(REL.to_string(), failed.join("; "));
    }
    let list = json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}});
    write_file(out, REL, &pretty(&list))
}

async fn capture_ec2(
    client: &aws_sdk_ec2::Client,
    out: &Path,
    types: &BTreeSet<String>,
    instances: &BTreeSet<String>,
    subnets: &BTreeSet<String>,
    prefix_mode: bool,
) -> std::result::Result<(), &'static str> {
    let filter = |name: &str, values: &[String]| {
        Filter::builder()
            .name(name)
            .set_values(Some(values.to_vec()))
            .build()
    };
    let types: Vec<String> = types.iter().cloned().collect();
    let mut its = Vec::new();
    for batch in types.chunks(100) {
        let mut token = None;
        loop {
            let r = client
                .describe_instance_types()
                .filters(filter("instance-type", batch))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| aws_error_kind(&e))?;
            for i in r.instance_types() {
                let Some(ni) = i.network_info() else { continue };
                its.push(json!({
                    "InstanceType": i.instance_type().map(|t| t.as_str()),
                    "VCpuInfo": {"DefaultVCpus": i.v_cpu_info().and_then(|v| v.default_v_cpus())},
                    "Hypervisor": i.hypervisor().map(|h| h.as_str()),
                    "BareMetal": i.bare_metal(),
                    "NetworkInfo": {
                        "MaximumNetworkInterfaces": ni.maximum_network_interfaces(),
                        "Ipv4AddressesPerInterface": ni.ipv4_addresses_per_interface(),
                        "MaximumNetworkCards": ni.maximum_network_cards(),
                        "DefaultNetworkCardIndex": ni.default_network_card_index(),
                        "NetworkCards": ni.network_cards().iter().map(|c| json!({
                            "NetworkCardIndex": c.network_card_index(),
                            "MaximumNetworkInterfaces": c.maximum_network_interfaces(),
                        })).collect::<Vec<_>>(),
                    },
                }));
            }
            token = r.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    write_file(
        out,
        "ec2/instance-types.json",
        &pretty(&json!({"InstanceTypes": its})),
    )
    .map_err(|_| "write")?;

    let subnet_ids: Vec<String> = subnets.iter().cloned().collect();
    let mut sn = Vec::new();
    for batch in subnet_ids.chunks(200) {
        let r = client
            .describe_subnets()
            .filters(filter("subnet-id", batch))
            .send()
            .await
            .map_err(|e| aws_error_kind(&e))?;
        for s in r.subnets() {
            sn.push(json!({
                "SubnetId": s.subnet_id(),
                "AvailabilityZone": s.availability_zone(),
                "AvailabilityZoneId": s.availability_zone_id(),
                "CidrBlock": s.cidr_block(),
                "AvailableIpAddressCount": s.available_ip_address_count(),
                "VpcId": s.vpc_id(),
                "Tags": s.tags().iter().map(|t| json!({"Key": t.key(), "Value": t.value()})).collect::<Vec<_>>(),
            }));
        }
    }
    write_file(out, "ec2/subnets.json", &pretty(&json!({"Subnets": sn}))).map_err(|_| "write")?;

    let ids: Vec<String> = instances.iter().cloned().collect();
    let mut queries: Vec<Filter> = ids
        .chunks(200)
        .map(|b| filter("attachment.instance-id", b))
        .collect();
    if prefix_mode {
        queries.extend(subnet_ids.chunks(200).map(|b| filter("subnet-id", b)));
    }
    let mut enis: BTreeMap<String, Value> = BTreeMap::new();
    for f in queries {
        let mut token = None;
        loop {
            let r = client
                .describe_network_interfaces()
                .filters(f.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| aws_error_kind(&e))?;
            for n in r.network_interfaces() {
                let Some(id) = n.network_interface_id() else {
                    continue;
                };
                enis.insert(id.to_string(), json!({
                    "NetworkInterfaceId": id,
                    "SubnetId": n.subnet_id(),
                    "InterfaceType": n.interface_type().map(|t| t.as_str()),
                    "AvailabilityZone": n.availability_zone(),
                    "Description": n.description(),
                    "Status": n.status().map(|s| s.as_str()),
                    "PrivateIpAddress": n.private_ip_address(),
                    "Attachment": n.attachment().map(|a| json!({
                        "InstanceId": a.instance_id(),
                        "DeviceIndex": a.device_index(),
                        "NetworkCardIndex": a.network_card_index(),
                    })),
                    "PrivateIpAddresses": n.private_ip_addresses().iter().map(|p| json!({
                        "Primary": p.primary(),
                        "PrivateIpAddress": p.private_ip_address(),
                    })).collect::<Vec<_>>(),
                    "Ipv4Prefixes": n.ipv4_prefixes().iter().map(|p| json!({"Ipv4Prefix": p.ipv4_prefix()})).collect::<Vec<_>>(),
                    "TagSet": n.tag_set().iter().map(|t| json!({"Key": t.key(), "Value": t.value()})).collect::<Vec<_>>(),
                }));
            }
            token = r.next_token().map(str::to_string).filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
    }
    let list: Vec<Value> = enis.into_values().collect();
    write_file(
        out,
        "ec2/network-interfaces.json",
        &pretty(&json!({"NetworkInterfaces": list})),
    )
    .map_err(|_| "write")?;
    Ok(())
}

async fn capture_cloudtrail(
    client: &aws_sdk_cloudtrail::Client,
    out: &Path,
    start: jiff::Timestamp,
    end: jiff::Timestamp,
    max_rps: f64,
) -> std::result::Result<(), &'static str> {
    use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
    let limiter = RateLimiter::new(max_rps);
    let dt = |t: jiff::Timestamp| aws_smithy_types::DateTime::from_millis(t.as_millisecond());
    for op in POLLED {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            limiter.acquire().await;
            let attr = LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::EventName)
                .attribute_value(op.as_str())
                .build()
                .map_err(|_| "api_error")?;
            let r = client
                .lookup_events()
                .lookup_attributes(attr)
                .start_time(dt(start))
                .end_time(dt(end))
                .max_results(50)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| aws_error_kind(&e))?;
            for e in r.events() {
                events.push(json!({
                    "EventId": e.event_id(),
                    "EventName": e.event_name(),
                    "ReadOnly": e.read_only(),
                    "AccessKeyId": e.access_key_id(),
                    "EventTime": e.event_time().map(sdk_time),
                    "EventSource": e.event_source(),
                    "Username": e.username(),
                    "Resources": e.resources().iter().map(|r| json!({"ResourceType": r.resource_type(), "ResourceName": r.resource_name()})).collect::<Vec<_>>(),
                    "CloudTrailEvent": e.cloud_trail_event(),
                }));
            }
            token = r.next_token().map(str::to_string).filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        write_file(
            out,
            &format!("cloudtrail/{}.json", op.as_str()),
            &pretty(&json!({"Events": events})),
        )
        .map_err(|_| "write")?;
    }
    Ok(())
}
