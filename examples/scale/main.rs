//! Scale harness: a synthetic EKS cluster of N nodes behind a fast fake
//! apiserver, one fake node agent per node (one listener, a loopback address
//! per node), moto for EC2, the CloudTrail fake, a real `node` agent for one
//! node, and the real `cluster` exporter; measures what issue 6 asks and
//! prints a table (and JSON with `--out`).
//!
//!   cargo build --release --bin eks-ipam-exporter --example scale
//!   target/release/examples/scale --nodes 5000 --pods-per-node 30
//!
//! `--check` turns it into a smoke test (small sizes, in scripts/test.sh):
//! it fails when the exporter is not ready, misses nodes, misses the
//! injected sandbox failure, fails a scrape, or leaves a process behind
//! (every child leads its own process group, stopped as a whole on exit).

#[path = "../kube_apiserver/fake.rs"]
mod apiserver;
mod load;
mod naive;
mod synth;

use anyhow::{bail, Context, Result};
use apiserver::Shared;
use bytes::Bytes;
use clap::Parser;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use synth::NodeSpec;

#[derive(Parser, Debug, Clone)]
struct Args {
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Pods per node, including the aws-node and agent pods.
    #[arg(long, default_value_t = 30)]
    pods_per_node: usize,
    /// Seconds of steady state (churn on, a Prometheus-like scrape every 5 s) for RSS/CPU/AWS rates.
    #[arg(long, default_value_t = 60)]
    steady: u64,
    /// Seconds per scrape-throughput measurement.
    #[arg(long, default_value_t = 10)]
    bench_seconds: u64,
    /// Pods deleted and created per second during the run.
    #[arg(long, default_value_t = 20.0)]
    churn_pods_per_sec: f64,
    /// Seconds between node replacements (a node leaves with its pods and comes back).
    #[arg(long, default_value_t = 15)]
    node_churn_every: u64,
    /// CloudTrail ENI/IP calls appended per second (ipamd activity across the cluster).
    #[arg(long, default_value_t = 0.5)]
    cloudtrail_events_per_sec: f64,
    /// Sandbox-failure trials for the event-to-metrics latency.
    #[arg(long, default_value_t = 5)]
    trials: usize,
    /// The exporter binary.
    #[arg(long, default_value = "target/release/eks-ipam-exporter")]
    exporter: PathBuf,
    /// Smoke mode: fail on any broken expectation.
    #[arg(long)]
    check: bool,
    /// Write results as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(clap::Subcommand, Debug, Clone)]
enum Cmd {
    /// Serve an exposition file through prometheus GaugeVecs + TextEncoder (the naive baseline).
    Naive {
        #[arg(long)]
        body: PathBuf,
        #[arg(long)]
        listen: String,
    },
}

/// Process groups of the children started (each leads its own), for the
/// leftover check at the end of the run.
static STARTED_GROUPS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// A child process leading its own process group. On drop (normal return,
/// `?`/`bail!`, panic unwinding, interruption) the whole group, so also what
/// the child forked (nginx's workers), gets SIGTERM, then SIGKILL if any of
/// it is still there after a grace period, and the child is reaped.
struct Proc(Child);

impl Proc {
    fn spawn(cmd: &mut Command) -> std::io::Result<Proc> {
        use std::os::unix::process::CommandExt;
        let child = cmd.process_group(0).spawn()?;
        STARTED_GROUPS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(child.id());
        Ok(Proc(child))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pgid = self.0.id();
        signal_group(pgid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            // A reaped leader's pid stays reserved while its group has
            // members, so `-pgid` keeps naming this group.
            let leader_done = !matches!(self.0.try_wait(), Ok(None));
            if leader_done && group_members(pgid).is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        signal_group(pgid, "KILL");
        let _ = self.0.wait();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !group_members(pgid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// `kill -s <sig> -- <target>` (a pid, or `-pgid` for a process group).
fn send_signal(target: &str, sig: &str) {
    let sent = Command::new("kill")
        .args(["-s", sig, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if sent.is_err() {
        // No kill(1) on PATH: the shell's builtin.
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -s {sig} -- {target}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn signal_group(pgid: u32, sig: &str) {
    send_signal(&format!("-{pgid}"), sig);
}

/// A process as `/proc/<pid>/stat` shows it.
struct ProcEntry {
    pid: u32,
    state: char,
    ppid: u32,
    pgrp: u32,
}

fn proc_entry(pid: u32) -> Option<ProcEntry> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some(ProcEntry {
        pid,
        state,
        ppid,
        pgrp,
    })
}

fn list_procs() -> Vec<ProcEntry> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_entry)
        .collect()
}

fn proc_cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// Live (not zombie) processes of process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    list_procs()
        .into_iter()
        .filter(|p| p.pgrp == pgid && p.state != 'Z')
        .map(|p| p.pid)
        .collect()
}

/// Processes the harness left behind: children not reaped, and live
/// processes in a group the harness started or whose command line names
/// its temp dir (nginx's master does; its workers are found by group).
fn leftover_processes(tmp: &Path) -> Vec<(u32, String)> {
    let me = std::process::id();
    let groups = STARTED_GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let tmp = tmp.to_string_lossy().into_owned();
    list_procs()
        .into_iter()
        .filter(|p| p.pid != me)
        .filter_map(|p| {
            let cmd = proc_cmdline(p.pid);
            let ours = p.ppid == me
                || (p.state != 'Z' && (groups.contains(&p.pgrp) || cmd.contains(&tmp)));
            ours.then_some((p.pid, cmd))
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Spawns a fake that prints `LISTENING <name> <addr>` lines; returns its addresses.
fn spawn_listening(
    mut cmd: Command,
    name: &'static str,
    lines: usize,
) -> Result<(Proc, Vec<String>)> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = Proc::spawn(&mut cmd).with_context(|| format!("starting {name}"))?;
    let out = child.0.stdout.take().context("stdout")?;
    let mut r = BufReader::new(out);
    let mut addrs = Vec::new();
    while addrs.len() < lines {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 {
            bail!("{name} exited before listening");
        }
        if let Some(rest) = l.trim().strip_prefix("LISTENING ") {
            addrs.push(rest.rsplit(' ').next().unwrap_or_default().to_string());
        }
    }
    std::thread::spawn(move || for _ in r.lines() {});
    Ok((child, addrs))
}

/// RSS (KiB) and CPU seconds (user + system) of a process.
/// Resident pages backed by files (the executable and libraries), in KiB:
/// shared with any other process running the same binary, and dropped by
/// the kernel first under memory pressure.
fn proc_rss_file(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("RssFile:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn proc_usage(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some((rss, ticks / 100.0))
}

// ---------------------------------------------------------------- EC2 (moto)

async fn build_ec2(endpoint: &str, args: &Args) -> Result<(Vec<NodeSpec>, Vec<(String, String)>)> {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "test", "test", None, None, "harness",
        ))
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await?
        .vpc
        .and_then(|v| v.vpc_id)
        .context("vpc")?;
    let mut subnets = Vec::new();
    for (i, zone) in synth::ZONES.iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .availability_zone(*zone)
            .cidr_block(format!("10.0.{}.0/18", i * 64))
            .send()
            .await?
            .subnet
            .and_then(|s| s.subnet_id)
            .context("subnet")?;
        subnets.push((s, zone.to_string()));
    }
    let mut rng = synth::Rng(42);
    let mut by_type: HashMap<&str, usize> = HashMap::new();
    for _ in 0..args.nodes {
        *by_type.entry(synth::pick_type(&mut rng)).or_default() += 1;
    }
    let mut types: Vec<_> = by_type.into_iter().collect();
    types.sort();
    for (t, count) in types {
        let mut left = count;
        let mut z = 0;
        while left > 0 {
            let n = left.min(250);
            let (sid, _) = &subnets[z % subnets.len()];
            ec2.run_instances()
                .image_id("ami-12c6146b")
                .instance_type(t.into())
                .min_count(n as i32)
                .max_count(n as i32)
                .subnet_id(sid)
                .send()
                .await
                .with_context(|| format!("RunInstances {t} x{n}"))?;
            left -= n;
            z += 1;
        }
    }
    let mut nodes = Vec::new();
    let mut pages = ec2
        .describe_instances()
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for r in page?.reservations() {
            for i in r.instances() {
                let ip = i.private_ip_address().unwrap_or_default().to_string();
                let t = i
                    .instance_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default();
                nodes.push(NodeSpec {
                    index: 0,
                    name: synth::node_name(&ip),
                    instance_id: i.instance_id().unwrap_or_default().to_string(),
                    max_pods: synth::eni_max_pods(&t),
                    instance_type: t,
                    zone: i
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .unwrap_or_default()
                        .to_string(),
                    subnet_id: i.subnet_id().unwrap_or_default().to_string(),
                    private_ip: ip,
                    agent_address: String::new(),
                });
            }
        }
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, n) in nodes.iter_mut().enumerate() {
        n.index = i;
    }
    Ok((nodes, subnets))
}

// ---------------------------------------------------------------- cluster objects

struct Cluster {
    store: Shared,
    nodes: Vec<NodeSpec>,
    /// Per node: its app pods' (namespace, name).
    pods: Vec<Vec<(String, String)>>,
    next_uid: u64,
    rng: synth::Rng,
}

impl Cluster {
    fn new_pod(&mut self, node: usize, running: bool) -> (String, String, u64) {
        self.next_uid += 1;
        let uid = self.next_uid;
        let ns = format!("ns-{}", uid % synth::NAMESPACES as u64);
        let name = format!("app-{:03}-7c9d8b6f5d-{:05x}", uid % 997, uid);
        let ip = running.then(|| {
            format!(
                "10.{}.{}.{}",
                64 + (uid >> 16) % 64,
                (uid >> 8) & 255,
                uid & 255
            )
        });
        let v = synth::pod(&ns, &name, uid, &self.nodes[node], ip.as_deref());
        apiserver::lock(&self.store)
            .apply("pods", &v)
            .expect("the fake apiserver takes synthetic objects");
        if running {
            self.pods[node].push((ns.clone(), name.clone()));
        }
        (ns, name, uid)
    }

    fn add_node(&mut self, i: usize, app_pods: usize) {
        let n = self.nodes[i].clone();
        {
            let mut st = apiserver::lock(&self.store);
            st.apply("nodes", &synth::node(&n))
                .expect("the fake apiserver takes synthetic objects");
            st.apply("nodeclaims", &synth::nodeclaim(&n))
                .expect("the fake apiserver takes synthetic objects");
            st.apply("pods", &synth::aws_node_pod(&n))
                .expect("the fake apiserver takes synthetic objects");
            st.apply("pods", &synth::agent_pod(&n))
                .expect("the fake apiserver takes synthetic objects");
        }
        for _ in 0..app_pods {
            self.new_pod(i, true);
        }
    }

    fn remove_node(&mut self, i: usize) -> usize {
        let n = self.nodes[i].clone();
        let pods = std::mem::take(&mut self.pods[i]);
        let mut st = apiserver::lock(&self.store);
        for (ns, name) in &pods {
            let _ = st.delete("pods", Some(ns), name);
        }
        let _ = st.delete(
            "pods",
            Some("kube-system"),
            &format!("aws-node-{:05x}", n.index),
        );
        let _ = st.delete(
            "pods",
            Some(synth::AGENT_NAMESPACE),
            &format!("eks-ipam-exporter-node-{:05x}", n.index),
        );
        let _ = st.delete(
            "nodeclaims",
            None,
            &format!("{}-{:05x}", n.nodepool(), n.index),
        );
        let _ = st.delete("nodes", None, &n.name);
        pods.len()
    }

    /// Deletes one random app pod and creates one on a random node.
    fn churn_pod(&mut self) {
        let i = self.rng.below(self.nodes.len() as u64) as usize;
        if !self.pods[i].is_empty() {
            let k = self.rng.below(self.pods[i].len() as u64) as usize;
            let (ns, name) = self.pods[i].swap_remove(k);
            let _ = apiserver::lock(&self.store).delete("pods", Some(&ns), &name);
            self.new_pod(i, true);
        }
    }
}

// ---------------------------------------------------------------- fake agents and ipamd

type Pools = Arc<RwLock<HashMap<String, Bytes>>>;

fn pool_body(n: &NodeSpec, assigned: u32) -> (Bytes, String, String) {
    let (enis, total, eni_count) = synth::ipamd_enis(n, assigned);
    let max_enis = eks_ipam_exporter::model::limits::embedded(&n.instance_type)
        .map_or(3, |l| l.default_card_max_enis);
    let metrics = synth::ipamd_metrics(assigned, total, eni_count, max_enis);
    let body = format!(
        "{{\"node\":{},\"fetched_at\":\"{}\",\"enis\":{enis},\"eni_config\":null,\"metrics\":{},\"errors\":{{}}}}",
        json!(n.name), jiff::Timestamp::now(), json!(metrics)
    );
    (Bytes::from(body), enis, metrics)
}

async fn serve_agents(listener: tokio::net::TcpListener, pools: Pools) {
    let app = axum::Router::new().route(
        "/v1/pool",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let pools = pools.clone();
            async move {
                let host = headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default();
                let ip = host.rsplit_once(':').map_or(host, |(ip, _)| ip);
                match pools.read().unwrap().get(ip) {
                    Some(b) => (axum::http::StatusCode::OK, b.clone()),
                    None => (
                        axum::http::StatusCode::NOT_FOUND,
                        Bytes::from_static(b"no such node\n"),
                    ),
                }
            }
        }),
    );
    let _ = axum::serve(listener, app).await;
}

/// ipamd's introspection and metrics endpoints for the one real node agent.
async fn serve_ipamd(listener: tokio::net::TcpListener, enis: String, metrics: String) {
    let app = axum::Router::new()
        .route(
            "/v1/enis",
            axum::routing::get(move || {
                let e = enis.clone();
                async move { e }
            }),
        )
        .route(
            "/v1/eni-configs",
            axum::routing::get(|| async { "\"default\"" }),
        )
        .route(
            "/metrics",
            axum::routing::get(move || {
                let m = metrics.clone();
                async move { m }
            }),
        );
    let _ = axum::serve(listener, app).await;
}

// ---------------------------------------------------------------- CloudTrail

fn ct_event(n: &NodeSpec, id: u64) -> Value {
    let when = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(30);
    let eni = format!("eni-{:017x}", (n.index as u64) << 8);
    let inner = json!({
        "eventVersion": "1.11", "eventTime": when.to_string(), "eventSource": "ec2.amazonaws.com",
        "eventName": "AssignPrivateIpAddresses", "eventID": format!("scale-{id:08}"),
        "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::111122223333:assumed-role/node/{}", n.instance_id)},
        "userAgent": "aws-sdk-go-v2/1.36.5 amazon-vpc-cni-k8s/v1.20.4",
        "requestParameters": {"networkInterfaceId": eni, "secondaryPrivateIpAddressCount": 10},
        "responseElements": {"networkInterfaceId": eni}
    });
    json!({"EventId": format!("scale-{id:08}"), "EventName": "AssignPrivateIpAddresses", "ReadOnly": "false",
           "EventTime": when.to_string(), "EventSource": "ec2.amazonaws.com", "Username": n.instance_id,
           "Resources": [{"ResourceType": "AWS::EC2::NetworkInterface", "ResourceName": eni}],
           "CloudTrailEvent": inner.to_string()})
}

// ---------------------------------------------------------------- metrics helpers

/// Sum of the samples of `name` whose label set contains `label` (or all).
fn sample(body: &str, name: &str, label: &str) -> Option<f64> {
    let mut found = None;
    for l in body.lines() {
        if let Some(rest) = l.strip_prefix(name) {
            if (rest.starts_with('{') || rest.starts_with(' ')) && rest.contains(label) {
                let v: f64 = rest.rsplit(' ').next()?.parse().ok()?;
                *found.get_or_insert(0.0) += v;
            }
        }
    }
    found
}

#[derive(Default, serde::Serialize)]
struct Results {
    nodes: usize,
    pods: usize,
    setup_seconds: f64,
    start_to_ready_seconds: f64,
    start_to_all_sources_seconds: Option<f64>,
    metrics_bytes: usize,
    metrics_series: usize,
    scrape_1: Option<load::Stats>,
    scrape_20: Option<load::Stats>,
    scrape_20_gzip: Option<load::Stats>,
    nginx_20: Option<load::Stats>,
    naive_20: Option<load::Stats>,
    vs_nginx: Option<f64>,
    vs_naive: Option<f64>,
    cluster_rss_mib_max: f64,
    cluster_rss_mib_end: f64,
    cluster_rss_file_mib_end: f64,
    node_rss_file_mib_end: f64,
    cluster_cpu_cores: f64,
    node_rss_mib_max: f64,
    node_cpu_cores: f64,
    event_to_metrics_ms: Vec<f64>,
    ec2_requests_per_minute: f64,
    cloudtrail_requests_per_second: f64,
    steady_seconds: f64,
    failed_requests: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Cmd::Naive { body, listen }) = &args.cmd {
        return naive::serve(body, listen);
    }
    let smoke = args.check;
    let tmp = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Every `Proc` lives in `run`'s future, so each child is gone once this
    // returns, whether `run` finished, failed or was interrupted.
    let outcome = rt.block_on(run_until_signal(args, tmp.path()));
    let left = leftover_processes(tmp.path());
    if !left.is_empty() {
        let list = left
            .iter()
            .map(|(pid, cmd)| format!("pid {pid} ({cmd})"))
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!("scale: processes left behind after cleanup, killing them: {list}");
        for (pid, _) in &left {
            send_signal(&pid.to_string(), "KILL");
        }
        if smoke {
            let msg = format!("processes left behind after cleanup: {list}");
            return Err(match outcome {
                Err(e) => e.context(msg),
                Ok(()) => anyhow::anyhow!(msg),
            });
        }
    }
    outcome
}

/// [`run`], cut short (its children cleaned up) on Ctrl-C or SIGTERM: the
/// children lead their own process groups, so the terminal's SIGINT does
/// not reach them.
async fn run_until_signal(args: Args, tmp: &Path) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = run(args, tmp) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
    }
}

async fn run(args: Args, tmp: &Path) -> Result<()> {
    let root = std::env::current_dir()?;
    let t_setup = Instant::now();
    eprintln!("scale: {} nodes x {} pods", args.nodes, args.pods_per_node);

    // EC2: moto.
    let moto_port = free_port();
    let _moto = Proc::spawn(
        Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .context("moto_server (pip install 'moto[server]')")?;
    let moto = format!("http://127.0.0.1:{moto_port}");
    let http = load::client();
    let t = Instant::now();
    while load::get(&http, &format!("{moto}/moto-api/"), false)
        .await
        .is_err()
    {
        if t.elapsed() > Duration::from_secs(30) {
            bail!("moto_server did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut nodes, subnets) = build_ec2(&moto, &args).await?;
    eprintln!(
        "scale: moto has {} instances ({:.1} s)",
        nodes.len(),
        t_setup.elapsed().as_secs_f64()
    );

    // Agents: one listener on every loopback address; the real node agent for node 0.
    let agent_port = free_port();
    let agents_listener = tokio::net::TcpListener::bind(("0.0.0.0", agent_port)).await?;
    let pools: Pools = Arc::default();
    let app_pods = args.pods_per_node.saturating_sub(2);
    let mut node0_ipamd = (String::new(), String::new());
    for n in nodes.iter_mut() {
        n.agent_address = format!("{}:{agent_port}", synth::agent_ip(n.index));
        let (body, enis, metrics) = pool_body(n, app_pods as u32);
        if n.index == 0 {
            node0_ipamd = (enis, metrics);
        }
        pools
            .write()
            .unwrap()
            .insert(synth::agent_ip(n.index), body);
    }
    tokio::spawn(serve_agents(agents_listener, pools.clone()));
    let ipamd_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ipamd_addr = ipamd_listener.local_addr()?;
    tokio::spawn(serve_ipamd(ipamd_listener, node0_ipamd.0, node0_ipamd.1));
    let node_agent_addr = format!("127.0.0.1:{}", free_port());
    let node_agent = Proc::spawn(
        Command::new(&args.exporter)
            .args([
                "node",
                "--listen",
                &node_agent_addr,
                "--node-name",
                &nodes[0].name,
                "--ipamd-introspection-url",
                &format!("http://{ipamd_addr}"),
                "--ipamd-metrics-url",
                &format!("http://{ipamd_addr}/metrics"),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .context("node agent")?;
    nodes[0].agent_address = node_agent_addr.clone();

    // Kubernetes objects.
    let store = apiserver::Store::new(apiserver::Config {
        history: 100_000,
        bookmark_interval: Duration::from_secs(20),
        ..Default::default()
    });
    {
        let mut st = apiserver::lock(&store);
        st.apply("daemonsets", &synth::aws_node_daemonset())
            .expect("the fake apiserver takes synthetic objects");
        st.apply("deployments", &synth::karpenter_deployment())
            .expect("the fake apiserver takes synthetic objects");
        st.apply("ec2nodeclasses", &synth::nodeclass(&subnets))
            .expect("the fake apiserver takes synthetic objects");
    }
    let mut cluster = Cluster {
        store: store.clone(),
        pods: vec![Vec::new(); nodes.len()],
        nodes,
        next_uid: 0,
        rng: synth::Rng(7),
    };
    for i in 0..cluster.nodes.len() {
        cluster.add_node(i, app_pods);
    }
    let total_pods = apiserver::lock(&store).len("pods");
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = api_listener.local_addr()?;
    let app = axum::Router::new()
        .fallback(apiserver::handle)
        .with_state(store.clone());
    tokio::spawn(async move { axum::serve(api_listener, app).await });
    let kubeconfig = tmp.join("kubeconfig");
    std::fs::write(&kubeconfig, format!("apiVersion: v1\nkind: Config\nclusters:\n- name: scale\n  cluster:\n    server: http://{api_addr}\ncontexts:\n- name: scale\n  context:\n    cluster: scale\n    user: scale\ncurrent-context: scale\nusers:\n- name: scale\n  user:\n    token: scale-token\n"))?;

    // CloudTrail fake, empty at start.
    std::fs::create_dir_all(tmp.join("ct/cloudtrail"))?;
    let mut ct_cmd = Command::new("python3");
    ct_cmd.arg(root.join("tests/fakes/cloudtrail.py")).args([
        "--bundle",
        tmp.join("ct").to_str().unwrap_or_default(),
        "--port",
        "0",
    ]);
    let (_ct, ct_addrs) = spawn_listening(ct_cmd, "cloudtrail fake", 1)?;
    let ct_addr = ct_addrs[0].clone();
    let setup = t_setup.elapsed().as_secs_f64();
    eprintln!(
        "scale: {} pods in the fake apiserver; setup took {setup:.1} s",
        total_pods
    );

    // The exporter.
    let listen = format!("127.0.0.1:{}", free_port());
    let t0 = Instant::now();
    let exporter = Proc::spawn(
        Command::new(&args.exporter)
            .args(["cluster", "--listen", &listen])
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", tmp)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-west-2")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_EC2", &moto)
            .env("AWS_ENDPOINT_URL_CLOUDTRAIL", format!("http://{ct_addr}"))
            .env("EKS_IPAM_CLUSTER_NAME", "prod-eks")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    )
    .context("exporter")?;
    let pid = exporter.0.id();
    let base = format!("http://{listen}");
    let ready = loop {
        if let Ok((200, _)) = load::get(&http, &format!("{base}/readyz"), false)
            .await
            .map(|(c, b)| (c, b.len()))
        {
            break t0.elapsed().as_secs_f64();
        }
        if t0.elapsed() > Duration::from_secs(300) {
            bail!("exporter not ready after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("scale: ready after {ready:.2} s");
    let mut res = Results {
        nodes: cluster.nodes.len(),
        pods: total_pods,
        setup_seconds: setup,
        start_to_ready_seconds: ready,
        ..Default::default()
    };

    // All four sources in: every collector up and every node's pool read.
    let all_in = loop {
        let (_, body) = load::get(&http, &format!("{base}/metrics"), false).await?;
        let body = String::from_utf8_lossy(&body);
        let up = ["kubernetes", "ec2", "cloudtrail", "ipamd"]
            .iter()
            .all(|c| {
                sample(
                    &body,
                    "eks_ipam_collector_up",
                    &format!("collector=\"{c}\""),
                ) == Some(1.0)
            });
        let pools_in = body
            .lines()
            .filter(|l| l.starts_with("eks_ipam_node_ips{") && l.contains("state=\"assigned\""))
            .count();
        if up && pools_in >= cluster.nodes.len() {
            break Some(t0.elapsed().as_secs_f64());
        }
        if t0.elapsed() > Duration::from_secs(240) {
            let missing: Vec<&str> = cluster
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .filter(|n| {
                    !body.contains(&format!(
                        "eks_ipam_node_ips{{node=\"{n}\",state=\"assigned\"}}"
                    ))
                })
                .take(3)
                .collect();
            eprintln!("scale: not every source in after 240 s (pools {pools_in}/{}, up {up}; missing e.g. {missing:?})", cluster.nodes.len());
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    res.start_to_all_sources_seconds = all_in;

    // Churn and CloudTrail activity from now on.
    let cluster = Arc::new(tokio::sync::Mutex::new(cluster));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (cluster, stop) = (cluster.clone(), stop.clone());
        let (rate, node_every, ct_rate, ct, http) = (
            args.churn_pods_per_sec,
            args.node_churn_every,
            args.cloudtrail_events_per_sec,
            ct_addr.clone(),
            http.clone(),
        );
        tokio::spawn(async move {
            let tick = Duration::from_millis(100);
            let (mut pod_debt, mut ct_debt, mut ct_id) = (0.0, 0.0, 0u64);
            let mut last_node = Instant::now();
            let mut away: Option<(usize, usize, Instant)> = None;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(tick).await;
                let mut c = cluster.lock().await;
                pod_debt += rate * 0.1;
                while pod_debt >= 1.0 {
                    c.churn_pod();
                    pod_debt -= 1.0;
                }
                if node_every > 0 && c.nodes.len() > 2 {
                    if let Some((i, n, since)) = away {
                        if since.elapsed() > Duration::from_secs(5) {
                            c.add_node(i, n);
                            away = None;
                        }
                    } else if last_node.elapsed() > Duration::from_secs(node_every) {
                        let len = c.nodes.len() as u64;
                        let i = 1 + c.rng.below(len - 1) as usize;
                        let n = c.remove_node(i);
                        away = Some((i, n, Instant::now()));
                        last_node = Instant::now();
                    }
                }
                ct_debt += ct_rate * 0.1;
                let mut batch = Vec::new();
                while ct_debt >= 1.0 {
                    ct_id += 1;
                    let len = c.nodes.len() as u64;
                    let i = c.rng.below(len) as usize;
                    batch.push(ct_event(&c.nodes[i], ct_id));
                    ct_debt -= 1.0;
                }
                drop(c);
                if !batch.is_empty() {
                    let _ = load::post(
                        &http,
                        &format!("http://{ct}/_control/append"),
                        Value::Array(batch).to_string(),
                    )
                    .await;
                }
            }
        })
    };

    // Steady state: scrape every 5 s like Prometheus, sample RSS/CPU every second.
    let (ec2_0, ct_0) = {
        let (_, b) = load::get(&http, &format!("{base}/metrics"), false).await?;
        let b = String::from_utf8_lossy(&b).to_string();
        (
            sample(&b, "eks_ipam_collector_requests_total", "collector=\"ec2\"").unwrap_or(0.0),
            sample(
                &b,
                "eks_ipam_collector_requests_total",
                "collector=\"cloudtrail\"",
            )
            .unwrap_or(0.0),
        )
    };
    let node_pid = node_agent.0.id();
    let (_, cpu_0) = proc_usage(pid).unwrap_or_default();
    let (_, ncpu_0) = proc_usage(node_pid).unwrap_or_default();
    let ts = Instant::now();
    let (mut rss_max, mut nrss_max, mut failed) = (0u64, 0u64, 0u64);
    let mut last_scrape = Instant::now() - Duration::from_secs(10);
    while ts.elapsed() < Duration::from_secs(args.steady) {
        if last_scrape.elapsed() >= Duration::from_secs(5) {
            last_scrape = Instant::now();
            match load::get(&http, &format!("{base}/metrics"), false).await {
                Ok((200, _)) => {}
                _ => failed += 1,
            }
            let _ = load::get(&http, &format!("http://{node_agent_addr}/metrics"), false).await;
        }
        if let Some((rss, _)) = proc_usage(pid) {
            rss_max = rss_max.max(rss);
        }
        if let Some((rss, _)) = proc_usage(node_pid) {
            nrss_max = nrss_max.max(rss);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let steady = ts.elapsed().as_secs_f64();
    let (rss_end, cpu_1) = proc_usage(pid).unwrap_or_default();
    let (_, ncpu_1) = proc_usage(node_pid).unwrap_or_default();
    let (_, b) = load::get(&http, &format!("{base}/metrics"), false).await?;
    let body = String::from_utf8_lossy(&b).to_string();
    let ec2_1 = sample(
        &body,
        "eks_ipam_collector_requests_total",
        "collector=\"ec2\"",
    )
    .unwrap_or(0.0);
    let ct_1 = sample(
        &body,
        "eks_ipam_collector_requests_total",
        "collector=\"cloudtrail\"",
    )
    .unwrap_or(0.0);
    res.steady_seconds = steady;
    res.cluster_rss_mib_max = rss_max as f64 / 1024.0;
    res.cluster_rss_mib_end = rss_end as f64 / 1024.0;
    res.cluster_rss_file_mib_end = proc_rss_file(pid).unwrap_or(0) as f64 / 1024.0;
    res.node_rss_file_mib_end = proc_rss_file(node_pid).unwrap_or(0) as f64 / 1024.0;
    res.cluster_cpu_cores = (cpu_1 - cpu_0) / steady;
    res.node_rss_mib_max = nrss_max as f64 / 1024.0;
    res.node_cpu_cores = (ncpu_1 - ncpu_0) / steady;
    res.ec2_requests_per_minute = (ec2_1 - ec2_0) / steady * 60.0;
    res.cloudtrail_requests_per_second = (ct_1 - ct_0) / steady;

    // Event -> metrics: a pending pod on node k, then its FailedCreatePodSandBox event.
    for trial in 0..args.trials {
        let (name, ns, pod, uid) = {
            let mut c = cluster.lock().await;
            let k = 1 + (trial * 7919) % (c.nodes.len() - 1).max(1);
            let (ns, pod, uid) = c.new_pod(k, false);
            (c.nodes[k].name.clone(), ns, pod, uid)
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let want = format!("eks_ipam_node_pods_waiting_for_ip{{node=\"{name}\"}} 1");
        let ev = synth::sandbox_event(
            &format!("{pod}.sandbox"),
            &ns,
            &pod,
            uid,
            &name,
            &jiff::Timestamp::now().to_string(),
        );
        let t = Instant::now();
        apiserver::lock(&store)
            .apply("events", &ev)
            .expect("the fake apiserver takes synthetic objects");
        let mut seen = None;
        while t.elapsed() < Duration::from_secs(20) {
            if let Ok((200, b)) = load::get(&http, &format!("{base}/metrics"), false).await {
                if memchr_contains(&b, want.as_bytes()) {
                    seen = Some(t.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match seen {
            Some(ms) => res.event_to_metrics_ms.push(ms),
            None => eprintln!("scale: trial {trial}: {want} not seen within 20 s"),
        }
    }

    // Scrape throughput: ours (identity and gzip), nginx with the same body, naive GaugeVec.
    let (_, snapshot) = load::get(&http, &format!("{base}/metrics"), false).await?;
    res.metrics_bytes = snapshot.len();
    res.metrics_series = snapshot
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    let secs = Duration::from_secs(args.bench_seconds);
    let url = format!("{base}/metrics");
    res.scrape_1 = Some(load::run(&http, &url, 1, secs, false).await);
    res.scrape_20 = Some(load::run(&http, &url, 20, secs, false).await);
    res.scrape_20_gzip = Some(load::run(&http, &url, 20, secs, true).await);
    let body_file = tmp.join("www/metrics.prom");
    std::fs::create_dir_all(body_file.parent().unwrap_or(tmp))?;
    std::fs::write(&body_file, &snapshot)?;
    if let Some(nginx) = start_nginx(tmp)? {
        res.nginx_20 = Some(
            load::run(
                &http,
                &format!("http://{}/metrics.prom", nginx.1),
                20,
                secs,
                false,
            )
            .await,
        );
    } else {
        eprintln!("scale: nginx not installed; no nginx comparison (apt-get install nginx-light)");
    }
    {
        let naive_addr = format!("127.0.0.1:{}", free_port());
        let me = std::env::current_exe()?;
        let _naive = Proc::spawn(
            Command::new(me)
                .args([
                    "naive",
                    "--body",
                    body_file.to_str().unwrap_or_default(),
                    "--listen",
                    &naive_addr,
                ])
                .stdout(Stdio::null()),
        )
        .context("naive baseline")?;
        let t = Instant::now();
        while load::get(&http, &format!("http://{naive_addr}/healthz"), false)
            .await
            .is_err()
            && t.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        res.naive_20 = Some(
            load::run(
                &http,
                &format!("http://{naive_addr}/metrics"),
                20,
                secs,
                false,
            )
            .await,
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = churn.await;
    let rate = |s: &Option<load::Stats>| s.as_ref().map(|s| s.requests_per_second);
    if let (Some(a), Some(b)) = (rate(&res.scrape_20), rate(&res.nginx_20)) {
        res.vs_nginx = Some(a / b);
    }
    if let (Some(a), Some(b)) = (rate(&res.scrape_20), rate(&res.naive_20)) {
        res.vs_naive = Some(a / b);
    }
    res.failed_requests = failed
        + [&res.scrape_1, &res.scrape_20, &res.scrape_20_gzip]
            .iter()
            .filter_map(|s| s.as_ref())
            .map(|s| s.failed)
            .sum::<u64>();

    print_table(&res);
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&res)?)?;
    }
    drop(node_agent);
    drop(exporter);
    if args.check {
        check(&res, &snapshot)?;
        eprintln!("scale: smoke checks passed");
    }
    Ok(())
}

fn memchr_contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn check(res: &Results, body: &[u8]) -> Result<()> {
    let body = String::from_utf8_lossy(body);
    let nodes = body
        .lines()
        .filter(|l| l.starts_with("eks_ipam_node_info{"))
        .count();
    if nodes + 1 < res.nodes {
        bail!("/metrics shows {nodes} nodes of {}", res.nodes);
    }
    if res.start_to_all_sources_seconds.is_none() {
        bail!("not every source came in");
    }
    if res.event_to_metrics_ms.is_empty() {
        bail!("no sandbox failure reached /metrics");
    }
    // Every collector up and no Kubernetes request refused: a watch the fake
    // apiserver rejects (an unsupported field selector) retries forever while
    // the other sources still fill /metrics.
    for l in body.lines() {
        let value = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if l.starts_with("eks_ipam_collector_up{") && value != Some(1.0) {
            bail!("collector not up: {l}");
        }
        // not_found is a CRD the synthetic cluster does not install; gone is a compaction.
        let refused = ["api_error", "forbidden", "unauthorized", "server_error"]
            .iter()
            .any(|k| l.contains(&format!("kind=\"{k}\"")));
        if l.starts_with("eks_ipam_collector_errors_total{collector=\"kubernetes")
            && refused
            && value.is_some_and(|v| v > 0.0)
        {
            bail!("Kubernetes requests failed: {l}");
        }
    }
    if res.failed_requests > 0 {
        bail!("{} scrapes failed", res.failed_requests);
    }
    // The AWS budgets the README promises (issue 13 item 8: the rates were
    // printed, never asserted): CloudTrail's 2 requests/s are shared by the
    // whole account, our share is at most 0.2; EC2 at most 30 a minute.
    let over = |v: f64, max: f64| v.is_nan() || v > max;
    if over(res.cloudtrail_requests_per_second, 0.2) {
        bail!(
            "CloudTrail {:.3} requests/s in the steady window, over the 0.2 budget",
            res.cloudtrail_requests_per_second
        );
    }
    if over(res.ec2_requests_per_minute, 30.0) {
        bail!(
            "EC2 {:.1} requests/min in the steady window, over the 30 budget",
            res.ec2_requests_per_minute
        );
    }
    for (what, s) in [
        ("1 scraper", &res.scrape_1),
        ("20 scrapers", &res.scrape_20),
        ("naive", &res.naive_20),
    ] {
        if s.as_ref().is_none_or(|s| s.requests == 0) {
            bail!("{what}: no successful request");
        }
    }
    Ok(())
}

fn start_nginx(dir: &Path) -> Result<Option<(Proc, String)>> {
    let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(bin) = bin else { return Ok(None) };
    let addr = format!("127.0.0.1:{}", free_port());
    let d = dir.display();
    // In the foreground (`daemon off`), so the master is our child and it and
    // its workers stay in the process group `Proc` stops as a whole.
    let conf = format!("worker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\ndaemon off;\nmaster_process on;\nevents {{ worker_connections 1024; }}\n\
        http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000; default_type text/plain;\n\
        client_body_temp_path {d}/ct; proxy_temp_path {d}/pt; fastcgi_temp_path {d}/ft; uwsgi_temp_path {d}/ut; scgi_temp_path {d}/st;\n\
        server {{ listen {addr}; root {d}/www; }} }}\n");
    let conf_file = dir.join("nginx.conf");
    std::fs::write(&conf_file, conf)?;
    let p = Proc::spawn(
        Command::new(bin)
            .args([
                "-c",
                conf_file.to_str().unwrap_or_default(),
                "-e",
                &format!("{d}/nginx-error.log"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .context("nginx")?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Ok(Some((p, addr)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nginx did not start (see {d}/nginx-error.log)")
}

fn print_table(r: &Results) {
    let ms = |s: &Option<load::Stats>| {
        s.as_ref().map_or("-".to_string(), |s| {
            format!(
                "p50 {:.1} ms, p99 {:.1} ms, {:.0} req/s, {} failed",
                s.p50_ms, s.p99_ms, s.requests_per_second, s.failed
            )
        })
    };
    let mut ev = r.event_to_metrics_ms.clone();
    ev.sort_by(f64::total_cmp);
    println!("| figure | {} nodes, {} pods |", r.nodes, r.pods);
    println!("|---|---|");
    println!(
        "| /metrics size | {} bytes, {} series |",
        r.metrics_bytes, r.metrics_series
    );
    println!("| /metrics, 1 scraper | {} |", ms(&r.scrape_1));
    println!("| /metrics, 20 scrapers | {} |", ms(&r.scrape_20));
    println!(
        "| /metrics, 20 scrapers, gzip | {} |",
        ms(&r.scrape_20_gzip)
            + &r.scrape_20_gzip.as_ref().map_or(String::new(), |s| format!(
                ", {} bytes",
                s.bytes_per_request
            ))
    );
    println!("| nginx static same body, 20 | {} |", ms(&r.nginx_20));
    println!("| naive GaugeVec+TextEncoder, 20 | {} |", ms(&r.naive_20));
    println!(
        "| throughput vs nginx | {} |",
        r.vs_nginx.map_or("-".into(), |v| format!("{v:.2}"))
    );
    println!(
        "| throughput vs naive | {} |",
        r.vs_naive.map_or("-".into(), |v| format!("{v:.1}x"))
    );
    println!(
        "| cluster RSS (max / end of steady state) | {:.1} / {:.1} MiB ({:.1} MiB file-backed at end) |",
        r.cluster_rss_mib_max, r.cluster_rss_mib_end, r.cluster_rss_file_mib_end
    );
    println!(
        "| cluster CPU, steady state | {:.3} cores |",
        r.cluster_cpu_cores
    );
    println!(
        "| node agent RSS / CPU | {:.1} MiB ({:.1} MiB file-backed) / {:.4} cores |",
        r.node_rss_mib_max, r.node_rss_file_mib_end, r.node_cpu_cores
    );
    println!("| start to ready | {:.2} s |", r.start_to_ready_seconds);
    println!(
        "| start to every source in | {} |",
        r.start_to_all_sources_seconds
            .map_or("not reached".into(), |s| format!("{s:.1} s"))
    );
    println!(
        "| sandbox event to /metrics | {} |",
        if ev.is_empty() {
            "not seen".into()
        } else {
            format!(
                "median {:.0} ms, max {:.0} ms ({} trials)",
                ev[ev.len() / 2],
                ev[ev.len() - 1],
                ev.len()
            )
        }
    );
    println!(
        "| EC2 requests/min, steady | {:.2} |",
        r.ec2_requests_per_minute
    );
    println!(
        "| CloudTrail requests/s, steady | {:.3} |",
        r.cloudtrail_requests_per_second
    );
    println!("| steady window | {:.0} s |", r.steady_seconds);
}
