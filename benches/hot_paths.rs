//! Criterion benches for the hot paths at 5,000 nodes / 150,000 pods: the
//! view rebuild every change triggers, rendering it to exposition text, and
//! parsing one node agent's pool snapshot (5,000 of them per agent round).
//!
//!   cargo bench --bench hot_paths

#[path = "../examples/scale/synth.rs"]
mod synth;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use eks_ipam_exporter::model::findings::Thresholds;
use eks_ipam_exporter::model::state::{AwsNodeState, ClusterState, IpamdNodeState};
use eks_ipam_exporter::model::view;
use eks_ipam_exporter::render::exposition;
use eks_ipam_exporter::sources::ipamd;
use eks_ipam_exporter::sources::kube::{aws_node_daemonset_env, KNode, KPodSlim, KWorkload};
use std::collections::HashSet;

const NODES: usize = 5_000;
const PODS_PER_NODE: usize = 30;

fn nodes() -> Vec<synth::NodeSpec> {
    let mut rng = synth::Rng(42);
    (0..NODES)
        .map(|i| {
            let t = synth::pick_type(&mut rng);
            let ip = format!("10.0.{}.{}", 64 + i / 250, 1 + i % 250);
            synth::NodeSpec {
                index: i,
                name: synth::node_name(&ip),
                instance_id: format!("i-{:017x}", i),
                instance_type: t.to_string(),
                zone: synth::ZONES[i % 3].to_string(),
                subnet_id: format!("subnet-{:017x}", i % 3),
                private_ip: ip,
                max_pods: synth::eni_max_pods(t),
                agent_address: format!("{}:10098", synth::agent_ip(i)),
            }
        })
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_str(&v.to_string().replace("\"__RV__\"", "\"1\""))
        .expect("synthetic object parses")
}

/// The state the live collectors assemble for a 5,000-node cluster.
fn state() -> ClusterState {
    let specs = nodes();
    let none = HashSet::new();
    let ds: KWorkload = parse(synth::aws_node_daemonset());
    let (namespace, daemonset_env) = aws_node_daemonset_env([&ds]).expect("aws-node env");
    let mut st = ClusterState {
        now: Some(jiff::Timestamp::now()),
        aws_node: Some(Some(AwsNodeState {
            namespace,
            daemonset_env,
        })),
        karpenter: Some(None),
        sandbox_failures: Some(Vec::new()),
        ..Default::default()
    };
    st.nodes = Some(
        specs
            .iter()
            .map(|n| parse::<KNode>(synth::node(n)).to_state(&none, &none))
            .collect(),
    );
    let pod: KPodSlim = parse(synth::pod(
        "ns-1",
        "app-001-7c9d8b6f5d-00001",
        1,
        &specs[0],
        Some("10.64.0.1"),
    ));
    let mut pods = Vec::with_capacity(NODES * PODS_PER_NODE);
    for n in &specs {
        for j in 0..PODS_PER_NODE {
            let mut p = pod.to_state();
            p.name = format!("app-{j:03}-{:05x}", n.index).into();
            p.node_name = Some(n.name.as_str().into());
            pods.push(p);
        }
    }
    st.pods = Some(eks_ipam_exporter::model::state::PodSummary::from_pods(
        &pods,
    ));
    for n in &specs {
        let (enis, total, count) = synth::ipamd_enis(n, PODS_PER_NODE as u32 - 2);
        let metrics = synth::ipamd_metrics(PODS_PER_NODE as u32 - 2, total, count, 4);
        st.ipamd.insert(
            n.name.clone(),
            std::sync::Arc::new(IpamdNodeState {
                pool: ipamd::parse_enis(enis.as_bytes()).ok(),
                metrics: ipamd::parse_metrics(&metrics).ok(),
            }),
        );
    }
    st
}

fn benches(c: &mut Criterion) {
    let st = state();
    let cfg = Thresholds::default();
    let mut g = c.benchmark_group("5000_nodes");
    g.sample_size(10);
    g.bench_function("view_build", |b| b.iter(|| view::build(&st, &cfg)));
    let v = view::build(&st, &cfg);
    g.bench_function("exposition_render", |b| {
        b.iter_batched(
            || String::with_capacity(8 << 20),
            |mut out| {
                exposition::render(&v, &[], &mut out);
                out
            },
            BatchSize::LargeInput,
        )
    });
    // One pod event at 150,000 pods: the pod watch's whole cost per event.
    let mut live = eks_ipam_exporter::model::state::LivePodSummary::default();
    let pod: KPodSlim = parse(synth::pod(
        "ns-1",
        "app-001-7c9d8b6f5d-00001",
        1,
        &nodes()[0],
        Some("10.64.0.1"),
    ));
    let running = pod.to_state();
    let mut pending = running.clone();
    pending.phase = eks_ipam_exporter::model::state::PodPhase::Pending;
    pending.has_ip = false;
    let names: Vec<std::sync::Arc<str>> = nodes().iter().map(|n| n.name.as_str().into()).collect();
    for k in 0..NODES * PODS_PER_NODE {
        let mut p = running.clone();
        p.node_name = Some(names[k % NODES].clone());
        live.apply(k as u128, &p);
    }
    let mut flip = false;
    g.bench_function("pod_event_150000_pods", |b| {
        b.iter(|| {
            flip = !flip;
            live.apply(7, if flip { &pending } else { &running });
        })
    });
    g.bench_function("pod_summary_snapshot", |b| b.iter(|| live.summary()));
    g.finish();
    let n = &nodes()[0];
    let (enis, total, count) = synth::ipamd_enis(n, 28);
    let metrics = synth::ipamd_metrics(28, total, count, 4);
    c.bench_function("agent_pool_parse_one_node", |b| {
        b.iter(|| {
            (
                ipamd::parse_enis(enis.as_bytes()).map(|p| p.enis.len()),
                ipamd::parse_metrics(&metrics).is_ok(),
            )
        })
    });
}

criterion_group!(hot, benches);
criterion_main!(hot);
