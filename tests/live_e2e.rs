//! End to end, live: the `cluster` binary against a real moto_server (EC2),
//! the fake apiserver, the fake CloudTrail, one fake ipamd plus one real
//! `node` agent per node, all built from a scenario bundle by
//! tests/fakes/world.py (which rewrites the scenario's ids to moto's and
//! shifts its times to now). Checks that live reproduces the incidents, that
//! `capture` + `diagnose --bundle` gives the same findings, and that faults
//! (deleted node, forbidden CRD, 410 Gone, disconnects) are survived.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const S1: &str = "ip-10-0-36-41.us-west-2.compute.internal";
const N1: &str = "ip-10-0-44-120.us-west-2.compute.internal";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// First port of `n` consecutive free ports below the ephemeral range
/// (32768+), where the fakes' own random ports cannot land.
fn free_port_run(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20000 + (std::process::id() % 20) as u16 * 500;
    loop {
        let base = start + NEXT.fetch_add(n, Ordering::SeqCst) % 9000;
        if (base..base + n).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything one live test runs; dropped in reverse order of creation.
struct World {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    moto: String,
    cloudtrail: String,
    world: Value,
    // Order of drop: agents, ipamds, fakes, moto.
    _agents: Vec<Server>,
    _ipamd: Vec<Fake>,
    kube: Fake,
    _ct: Fake,
    _moto: Proc,
}

impl World {
    fn start(scenario: &str, extra_world_args: &[&str]) -> World {
        Self::start_with(scenario, extra_world_args, &[])
    }

    fn start_with(scenario: &str, extra_world_args: &[&str], ct_args: &[&str]) -> World {
        Self::start_full(scenario, extra_world_args, ct_args, &[])
    }

    /// As [`World::start_with`], with extra flags for every node agent.
    fn start_full(
        scenario: &str,
        extra_world_args: &[&str],
        ct_args: &[&str],
        agent_args: &[&str],
    ) -> World {
        let dir = tempfile::tempdir().unwrap();
        let moto_port = free_port();
        let moto = Proc(
            Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto_server (pip install 'moto[server]'; scripts/test.sh does)"),
        );
        let moto_url = format!("http://127.0.0.1:{moto_port}");
        eventually(20, || {
            std::net::TcpStream::connect(("127.0.0.1", moto_port)).ok()
        })
        .expect("moto_server up");
        let out = dir.path().join("world");
        let nodes_needed = 2
            + extra_world_args
                .iter()
                .filter_map(|a| a.parse::<u16>().ok())
                .sum::<u16>()
            + 8;
        let base = free_port_run(nodes_needed);
        let mut args = vec![
            repo("tests/fakes/world.py").to_str().unwrap().to_string(),
            "--scenario".into(),
            repo(scenario).to_str().unwrap().to_string(),
            "--out".into(),
            out.to_str().unwrap().to_string(),
            "--moto-endpoint".into(),
            moto_url.clone(),
            "--agent-base-port".into(),
            base.to_string(),
        ];
        args.extend(extra_world_args.iter().map(|s| s.to_string()));
        let built = Command::new("python3")
            .args(&args)
            .output()
            .expect("world.py");
        assert!(
            built.status.success(),
            "world.py: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let world: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("world.json")).unwrap())
                .unwrap();
        let w = out.to_str().unwrap();

        let kube =
            start_kube_apiserver(&["--bundle", w, "--port", "0", "--bookmark-interval", "2"]);
        let mut ct_all = vec!["--bundle", w, "--port", "0"];
        ct_all.extend_from_slice(ct_args);
        let ct = start_fake("cloudtrail.py", &ct_all, 1);
        let kubeconfig = write_kubeconfig(dir.path(), &kube.addrs["kube-apiserver"], "test");

        let mut ipamds = Vec::new();
        let mut agents = Vec::new();
        for (node, info) in world["nodes"].as_object().unwrap() {
            let Some(port) = info["agentPort"].as_u64() else {
                continue;
            };
            let fake = start_fake(
                "ipamd.py",
                &[
                    "--bundle",
                    w,
                    "--node",
                    node,
                    "--introspection-port",
                    "0",
                    "--metrics-port",
                    "0",
                ],
                2,
            );
            let intro = format!("http://{}", fake.addrs["ipamd-introspection"]);
            let metrics = format!("http://{}/metrics", fake.addrs["ipamd-metrics"]);
            // Bracketed IPv4, as the shipped DaemonSet passes `[$(HOST_IP)]:10098`.
            let listen = format!("[127.0.0.1]:{port}");
            let mut args = vec![
                "node",
                "--node-name",
                node,
                "--ipamd-introspection-url",
                &intro,
                "--ipamd-metrics-url",
                &metrics,
                "--interval",
                "1s",
            ];
            args.extend_from_slice(agent_args);
            let agent = start_server_at(&args, &listen);
            ipamds.push(fake);
            agents.push(agent);
        }
        World {
            kubeconfig,
            moto: moto_url,
            cloudtrail: format!("http://{}", ct.addrs["cloudtrail"]),
            world,
            dir,
            _agents: agents,
            _ipamd: ipamds,
            kube,
            _ct: ct,
            _moto: moto,
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        let home = self.dir.path().to_str().unwrap().to_string();
        vec![
            (
                "KUBECONFIG".into(),
                self.kubeconfig.to_str().unwrap().into(),
            ),
            ("HOME".into(), home),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-west-2".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_ENDPOINT_URL_EC2".into(), self.moto.clone()),
            (
                "AWS_ENDPOINT_URL_CLOUDTRAIL".into(),
                self.cloudtrail.clone(),
            ),
            ("EKS_IPAM_CLUSTER_NAME".into(), "prod-eks".into()),
            ("EKS_IPAM_AGENT_INTERVAL".into(), "1s".into()),
            ("EKS_IPAM_CLOUDTRAIL_INTERVAL".into(), "5s".into()),
            // Rounds every 5 s need more than the production 0.2 requests/s.
            ("EKS_IPAM_CLOUDTRAIL_MAX_RPS".into(), "1".into()),
            ("EKS_IPAM_EC2_INTERVAL".into(), "10s".into()),
        ]
    }

    fn cluster(&self) -> Server {
        self.cluster_with(&[])
    }

    fn cluster_with(&self, extra_env: &[(&str, &str)]) -> Server {
        let mut env = self.env();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        start_server_env(&["cluster"], &env)
    }

    /// `capture` into the world's directory, then `diagnose --bundle` on
    /// it (exit 1: both incidents find something): (capture dir, JSON).
    fn capture_and_diagnose(&self) -> (PathBuf, Value) {
        let cap = self.dir.path().join("capture");
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out = run_env(&["capture", "--out", cap.to_str().unwrap()], &env);
        assert_eq!(out.code, 0, "capture: {}", out.stderr);
        let (code, offline) = diagnose_exit_and_json(&cap);
        assert_eq!(code, 1, "diagnose of the capture");
        (cap, offline)
    }

    /// moto's id for a scenario resource (`kind` as in world.py's `ids`).
    fn moto_id(&self, kind: &str, scenario_id: &str) -> String {
        self.world["ids"][kind][scenario_id]
            .as_str()
            .unwrap_or_else(|| panic!("world has no {kind} {scenario_id}"))
            .to_string()
    }

    /// Runs a boto3 script against the world's moto (`ec2` is the client)
    /// and returns the JSON it prints (Null when it prints nothing).
    fn ec2_script(&self, body: &str) -> Value {
        let script = format!(
            "import boto3, json, ipaddress\nec2 = boto3.client('ec2', region_name='us-west-2', endpoint_url='{}', \
             aws_access_key_id='t', aws_secret_access_key='t')\n{body}",
            self.moto
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn control(&self, path: &str, body: &str) {
        let (code, text) = http_post(&self.kube.addrs["kube-apiserver"], path, body);
        assert_eq!(code, 200, "{path}: {text}");
    }
}

fn diagnosis(srv: &Server) -> Option<Value> {
    let (code, body) = http_get(&srv.addr, "/api/v1/diagnosis");
    (code == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

fn findings(v: &Value) -> BTreeSet<(String, String, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (s("code"), s("severity"), s("node"), s("subnet_id"))
        })
        .collect()
}

/// A diagnosis without what depends on the moment it was made (ages and
/// silences, CloudTrail lag and coverage start), for live-vs-capture checks.
fn timeless(v: &Value) -> Value {
    const MOMENT: &[&str] = &[
        "generated_at",
        "silence_seconds",
        "cloudtrail_lag_seconds",
        "cloudtrail_coverage_start",
    ];
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !MOMENT.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), timeless(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(timeless).collect()),
        other => other.clone(),
    }
}

/// The capture holds every source, and no Kubernetes or ipamd payload was
/// written after its `capturedAt`.
fn assert_capture_is_complete(cap: &std::path::Path) {
    for rel in [
        "ec2/instance-types.json",
        "ec2/subnets.json",
        "ec2/network-interfaces.json",
        "cloudtrail/AssignPrivateIpAddresses.json",
        "kubernetes/configmaps.json",
    ] {
        assert!(cap.join(rel).is_file(), "capture lacks {rel}");
    }
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(cap.join("bundle.json")).unwrap()).unwrap();
    let stamp: jiff::Timestamp = meta["capturedAt"].as_str().unwrap().parse().unwrap();
    let mut stack = vec![cap.join("kubernetes"), cap.join("ipamd")];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
                continue;
            }
            let written =
                jiff::Timestamp::try_from(e.metadata().unwrap().modified().unwrap()).unwrap();
            assert!(
                written <= stamp,
                "{} written at {written}, after capturedAt {stamp}",
                e.path().display()
            );
            seen += 1;
        }
    }
    assert!(seen > 5, "only {seen} Kubernetes/ipamd files");
}

/// Waits until the live view has every source in and `pred` holds.
/// `/metrics` holds `line` (a whole sample line); on failure shows that
/// family's samples. Returns the exposition.
fn assert_exposes(srv: &Server, line: &str) -> String {
    let (code, metrics) = http_get(&srv.addr, "/metrics");
    assert_eq!(code, 200);
    let family = line.split('{').next().unwrap_or(line);
    assert!(
        metrics.lines().any(|l| l == line),
        "no {line:?} in /metrics; {family} samples:\n{}",
        metrics
            .lines()
            .filter(|l| l.starts_with(family))
            .collect::<Vec<_>>()
            .join("\n")
    );
    metrics
}

fn wait_for(srv: &Server, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut last = None;
    let got = eventually(secs, || {
        let v = diagnosis(srv)?;
        let ok = pred(&v);
        last = Some(v.clone());
        ok.then_some(v)
    });
    got.unwrap_or_else(|| {
        panic!(
            "timed out waiting for {what}; last view findings: {:?}",
            last.as_ref().map(findings)
        )
    })
}

#[test]
fn live_reproduces_incident_two_and_capture_round_trips() {
    let world = World::start("tests/bundles/min-ip-target-stall", &[]);
    let srv = world.cluster();
    let v = wait_for(&srv, 90, "the stall with EC2 subnets in", |v| {
        findings(v)
            .iter()
            .any(|f| f.0 == "IpamdAllocationStalled" && f.2 == S1)
            && !v["subnets"].as_array().unwrap().is_empty()
    });
    let f = findings(&v);
    assert!(
        f.contains(&(
            "MinimumIpTargetWithoutWarmIpTarget".into(),
            "warning".into(),
            "".into(),
            "".into()
        )),
        "{f:?}"
    );
    let s1 = node_of(&v, S1);
    assert_eq!(
        s1["ips"],
        serde_json::json!({"total": 25, "assigned": 25, "available": 0, "cooldown": 0})
    );
    assert_eq!(s1["pods_waiting_for_ip"], 6);
    assert_eq!(s1["ip_growth_blocked"], true);
    assert_eq!(s1["instance_id"], world.world["nodes"][S1]["instanceId"]);
    // Silence from the shifted CloudTrail events: the world's capture was 9023 s after the last call.
    let silence = s1["api_calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["operation"] == "AssignPrivateIpAddresses")
        .unwrap()["silence_seconds"]
        .as_f64()
        .unwrap();
    assert!((9000.0..9600.0).contains(&silence), "silence {silence}");
    // Subnet numbers come from moto through aws-sdk-ec2.
    let subnet = &v["subnets"].as_array().unwrap()[0];
    let id = subnet["id"].as_str().unwrap();
    assert_eq!(
        subnet["available_ips"], world.world["subnets"][id]["availableIpAddressCount"],
        "{subnet}"
    );

    // ipamd elsewhere takes 20 IPs from that subnet: moto's AvailableIpAddressCount
    // drops, and the next EC2 round (every 10 s here) shows it.
    // S1's ENI lives in the scenario's subnet-07b3e9d1c5a8f2460 (moto gave it a new id).
    let subnet_of_eni = world.moto_id("subnet", "subnet-07b3e9d1c5a8f2460");
    let before = v["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == subnet_of_eni.as_str())
        .expect("S1's subnet in the view")["available_ips"]
        .as_u64()
        .unwrap();
    let eni = world.moto_id("eni", "eni-0d91f3a6b2c48e715");
    world.ec2_script(&format!(
        "ec2.assign_private_ip_addresses(NetworkInterfaceId='{eni}', SecondaryPrivateIpAddressCount=20)"
    ));
    wait_for(&srv, 40, "the subnet's free IPs to drop by 20", |v| {
        v["subnets"].as_array().unwrap().iter().any(|s| {
            s["id"] == subnet_of_eni.as_str() && s["available_ips"].as_u64() == Some(before - 20)
        })
    });

    // Live `diagnose` runs the same collectors once and exits 1 on this cluster.
    let env_owned = world.env();
    let env: Vec<(&str, &str)> = env_owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = run_env(&["diagnose", "--min-severity", "critical"], &env);
    assert_eq!(out.code, 1, "live diagnose: {}", out.stderr);
    assert!(
        out.stdout.contains("IpamdAllocationStalled"),
        "{}",
        out.stdout
    );

    // /metrics of the live exporter passes promtool's lint like the demo's.
    let (_, metrics) = http_get(&srv.addr, "/metrics");
    promtool_check(&metrics);
    for c in ["kubernetes", "ec2", "cloudtrail", "ipamd"] {
        assert!(
            metrics.contains(&format!("eks_ipam_collector_up{{collector=\"{c}\"}} 1")),
            "collector {c} not up"
        );
    }

    // capture -> diagnose --bundle gives the same findings as live.
    let (cap, offline) = world.capture_and_diagnose();
    let live_now = diagnosis(&srv).unwrap();
    assert_eq!(
        findings(&offline),
        findings(&live_now),
        "capture + diagnose must agree with live"
    );
    // Every number, not only the findings: nodes, subnets, API calls, settings.
    assert_eq!(
        timeless(&offline),
        timeless(&live_now),
        "capture + diagnose must agree with live"
    );
    assert!(!offline["subnets"].as_array().unwrap().is_empty());
    assert_capture_is_complete(&cap);
}

/// Incident 2 with MINIMUM_IP_TARGET moved into a ConfigMap
/// (`valueFrom.configMapKeyRef`, DaemonSet and pods): unknown with the
/// reason while RBAC forbids the read, the finding once it is allowed,
/// and `capture` carries the ConfigMap so the bundle agrees with live.
#[test]
fn settings_from_a_config_map_live_forbidden_and_captured() {
    let scenario = copy_bundle(&repo("tests/bundles/min-ip-target-stall"));
    let from_config_map = |rel: &str| {
        let path = scenario.path().join(rel);
        let mut doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut moved = 0;
        for item in doc["items"].as_array_mut().unwrap() {
            let spec = if item["kind"] == "Pod" {
                &mut item["spec"]
            } else {
                &mut item["spec"]["template"]["spec"]
            };
            for c in spec["containers"].as_array_mut().into_iter().flatten() {
                let env = c.get_mut("env").and_then(Value::as_array_mut);
                for e in env.into_iter().flatten() {
                    if e["name"] == "MINIMUM_IP_TARGET" {
                        *e = serde_json::json!({"name": "MINIMUM_IP_TARGET", "valueFrom": {"configMapKeyRef":
                            {"name": "cni-settings", "key": "minimum-ip-target"}}});
                        moved += 1;
                    }
                }
            }
        }
        assert!(moved > 0, "{rel}: no MINIMUM_IP_TARGET to move");
        std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    };
    from_config_map("kubernetes/daemonsets.json");
    from_config_map("kubernetes/pods.json");
    std::fs::write(
        scenario.path().join("kubernetes/configmaps.json"),
        r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap",
            "metadata":{"name":"cni-settings","namespace":"kube-system"},"data":{"minimum-ip-target":"25"}}]}"#,
    )
    .unwrap();
    let world = World::start(scenario.path().to_str().unwrap(), &[]);
    let blind = |v: &Value| {
        v["findings"].as_array().unwrap().iter().any(|f| {
            f["code"] == "SettingUnresolved"
                && f["summary"]
                    .as_str()
                    .unwrap()
                    .contains("cni-settings: forbidden")
        })
    };

    world.control("/_control/forbid", r#"{"resource":"configmaps"}"#);
    let srv = world.cluster();
    let v = wait_for(
        &srv,
        90,
        "SettingUnresolved naming the forbidden ConfigMap",
        blind,
    );
    assert!(
        !findings(&v)
            .iter()
            .any(|f| f.0 == "MinimumIpTargetWithoutWarmIpTarget"),
        "a setting that cannot be read is not a default"
    );
    assert_eq!(node_of(&v, S1)["ip_growth_blocked"], Value::Null);
    drop(srv);

    world.control("/_control/unforbid", r#"{"resource":"configmaps"}"#);
    let srv = world.cluster();
    let v = wait_for(&srv, 90, "the incident-2 finding from the ConfigMap", |v| {
        findings(v)
            .iter()
            .any(|f| f.0 == "MinimumIpTargetWithoutWarmIpTarget" && f.1 == "warning")
            && !v["subnets"].as_array().unwrap().is_empty()
    });
    assert!(!blind(&v));
    assert_eq!(node_of(&v, S1)["ip_growth_blocked"], true);

    let (cap, offline) = world.capture_and_diagnose();
    let cms = std::fs::read_to_string(cap.join("kubernetes/configmaps.json")).unwrap();
    assert!(
        cms.contains("cni-settings") && cms.contains("minimum-ip-target"),
        "{cms}"
    );
    assert_eq!(
        findings(&offline),
        findings(&diagnosis(&srv).unwrap()),
        "capture + diagnose must agree with live"
    );
}

#[test]
fn live_reproduces_incident_one_and_survives_apiserver_faults() {
    let world = World::start("tests/bundles/karpenter-overcommit", &[]);
    // A forbidden CRD from the start: reported, counted, unknown; the rest works.
    world.control("/_control/forbid", r#"{"resource":"ec2nodeclasses"}"#);
    let srv = world.cluster();
    let v = wait_for(&srv, 90, "incident 1 findings", |v| {
        let f = findings(v);
        f.iter().any(|f| f.0 == "EniLimitReached" && f.2 == N1)
            && f.iter().any(|f| f.0 == "KarpenterReservedEnisMissing")
    });
    let n1 = node_of(&v, N1);
    // The node agent is one more host-network pod: 17 - 3 - 10 = 4.
    assert_eq!(n1["pods_host_network"], 3);
    assert_eq!(n1["pod_ip_overcommit"], 4);
    assert_eq!(n1["pod_ip_capacity"], 10);
    assert!(
        n1["karpenter_expected_max_pods"].is_null(),
        "EC2NodeClass forbidden: Karpenter's number is unknown, not guessed"
    );
    let (_, metrics) = http_get(&srv.addr, "/metrics");
    assert!(
        metrics.contains(
            "eks_ipam_collector_errors_total{collector=\"kubernetes\",kind=\"forbidden\"}"
        ),
        "forbidden not counted"
    );

    // Permission granted later: picked up without a restart (slow retry starts at 1 s).
    world.control("/_control/unforbid", r#"{"resource":"ec2nodeclasses"}"#);
    wait_for(
        &srv,
        30,
        "Karpenter's formula once the EC2NodeClass is readable",
        |v| node_of(v, N1)["karpenter_expected_max_pods"] == 17,
    );

    // 410 Gone and dropped watches: the view keeps working and follows changes.
    world.control("/_control/expire", "{}");
    world.control("/_control/disconnect", "{}");
    world.control(
        "/_control/delete",
        &format!(r#"{{"resource":"nodes","name":"{N1}"}}"#),
    );
    wait_for(&srv, 30, "the deleted node to disappear", |v| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["name"] != N1)
    });
    let (_, metrics) = http_get(&srv.addr, "/metrics");
    assert!(
        !metrics.contains(&format!("node=\"{N1}\"")),
        "series of a deleted node must disappear"
    );
    assert!(metrics.contains("ip-10-0-45-17"), "the other node stays");
}

#[test]
fn cloudtrail_throttling_and_a_late_event() {
    // Every third LookupEvents is throttled; the SDK's retry and our limiter cope.
    let world = World::start_with(
        "tests/bundles/min-ip-target-stall",
        &[],
        &["--throttle-every", "3"],
    );
    let srv = world.cluster();
    wait_for(&srv, 90, "the stall", |v| {
        findings(v).iter().any(|f| f.0 == "IpamdAllocationStalled")
    });

    // ipamd calls AssignPrivateIpAddresses two minutes ago, but CloudTrail
    // delivers it late: it only becomes visible after the poller's cursor has
    // passed its time. Only the overlapping window can catch it.
    let when = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(120);
    let event = assign_call(&world, S1, "late-0001", when);
    let ct = world.cloudtrail.trim_start_matches("http://").to_string();
    let (code, body) = http_post(&ct, "/_control/append?visibleAfter=7", &event.to_string());
    assert_eq!(code, 200, "{body}");
    // Every third request is throttled and the SDK backs off (exponential,
    // with jitter) before retrying, at 1 request/s for the 8 event names: a
    // round can take 30 s, and the call may miss the round in flight.
    let v = wait_for(&srv, 150, "the late call to end the silence", |v| {
        node_of(v, S1)["api_calls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| {
                c["operation"] == "AssignPrivateIpAddresses"
                    && c["silence_seconds"].as_f64().is_some_and(|s| s < 600.0)
            })
    });
    // ipamd is trying again, so it is no longer "silent": the stall finding goes.
    assert!(
        !findings(&v).iter().any(|f| f.0 == "IpamdAllocationStalled"),
        "{:?}",
        findings(&v)
    );
    let (code, stats) = http_get(&ct, "/_control/stats");
    assert_eq!(code, 200);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(
        stats["throttled"].as_u64().unwrap_or(0) > 0,
        "the fake throttled nothing: {stats}"
    );
    let (_, metrics) = http_get(&srv.addr, "/metrics");
    assert!(
        metrics.contains("eks_ipam_collector_up{collector=\"cloudtrail\"} 1"),
        "cloudtrail collector down"
    );
}

/// A CloudTrail `AssignPrivateIpAddresses` event (AWS CLI format) made by
/// `node`'s instance on its primary ENI at `when`.
fn assign_call(world: &World, node: &str, id: &str, when: jiff::Timestamp) -> Value {
    let eni = world.moto_id("eni", "eni-0d91f3a6b2c48e715");
    let instance = world.world["nodes"][node]["instanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let inner = serde_json::json!({
        "eventVersion": "1.11", "eventTime": when.to_string(), "eventSource": "ec2.amazonaws.com",
        "eventName": "AssignPrivateIpAddresses", "eventID": id,
        "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::111122223333:assumed-role/node/{instance}")},
        "userAgent": "aws-sdk-go-v2/1.36.5 amazon-vpc-cni-k8s/v1.20.4",
        "requestParameters": {"networkInterfaceId": eni, "secondaryPrivateIpAddressCount": 10},
        "responseElements": {"networkInterfaceId": eni}
    });
    serde_json::json!({
        "EventId": id, "EventName": "AssignPrivateIpAddresses", "ReadOnly": "false",
        "EventTime": when.to_string(), "EventSource": "ec2.amazonaws.com", "Username": instance,
        "Resources": [{"ResourceType": "AWS::EC2::NetworkInterface", "ResourceName": eni}],
        "CloudTrailEvent": inner.to_string()
    })
}

#[test]
fn cloudtrail_clock_skew_gives_no_negative_or_invented_silence() {
    // CloudTrail's clock runs 8 s ahead of ours: a call it stamps "in the
    // future" is outside [start, our now] until our clock passes it, then
    // the overlapping window picks it up. Silence must never go negative
    // meanwhile, and the call's time must be CloudTrail's, not ours.
    let world = World::start("tests/bundles/min-ip-target-stall", &[]);
    let srv = world.cluster();
    wait_for(&srv, 90, "CloudTrail coverage", |v| {
        node_of(v, S1)["api_calls"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let ahead = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(8);
    let event = assign_call(&world, S1, "skew-0001", ahead);
    let ct = world.cloudtrail.trim_start_matches("http://").to_string();
    let (code, body) = http_post(&ct, "/_control/append?visibleAfter=0", &event.to_string());
    assert_eq!(code, 200, "{body}");
    let seen = eventually(60, || {
        let v = diagnosis(&srv)?;
        for n in v["nodes"].as_array()? {
            for c in n["api_calls"].as_array().into_iter().flatten() {
                if let Some(s) = c["silence_seconds"].as_f64() {
                    assert!(s >= 0.0, "negative silence {s} on {}: {c}", n["name"]);
                }
            }
        }
        let call = node_of(&v, S1)["api_calls"]
            .as_array()?
            .iter()
            .find(|c| c["operation"] == "AssignPrivateIpAddresses")?
            .clone();
        (call["last_timestamp"].as_f64()? >= ahead.as_second() as f64 - 1.0).then_some(call)
    })
    .expect("the skewed call was never picked up");
    let last = seen["last_timestamp"].as_f64().unwrap();
    assert!(
        (last - ahead.as_millisecond() as f64 / 1000.0).abs() < 1.0,
        "call time {last} is not CloudTrail's {ahead}"
    );
    let (_, metrics) = http_get(&srv.addr, "/metrics");
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("eks_ipam_api_call_silence_seconds{") {
            let v: f64 = rest.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(v >= 0.0, "{line}");
        }
    }
}

/// Measures AWS requests per minute at steady state for a 100-node fake
/// cluster with 50 concurrent scrapers. Slow (about 7 minutes): run with
/// `cargo test --release --test live_e2e -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_aws_requests_at_100_nodes() {
    let world = World::start("tests/bundles/healthy", &["--extra-nodes", "98"]);
    let env = world.env();
    // Production defaults for the AWS intervals.
    let env: Vec<(&str, &str)> = env
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("EKS_IPAM_CLOUDTRAIL_INTERVAL")
                && !k.starts_with("EKS_IPAM_CLOUDTRAIL_MAX_RPS")
                && !k.starts_with("EKS_IPAM_EC2_INTERVAL")
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let srv = start_server_env(&["cluster"], &env);
    wait_for(&srv, 120, "100 nodes", |v| {
        v["nodes"].as_array().unwrap().len() == 100
    });
    let counts = |m: &str, c: &str| -> f64 {
        m.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "eks_ipam_collector_requests_total{{collector=\"{c}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // Past the first rounds (instance types, first CloudTrail lookback).
    std::thread::sleep(Duration::from_secs(30));
    let (_, m0) = http_get(&srv.addr, "/metrics");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scrapes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let scrapers: Vec<_> = (0..50)
        .map(|_| {
            let (addr, stop, scrapes) = (srv.addr.clone(), stop.clone(), scrapes.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (code, _) = http_get(&addr, "/metrics");
                    assert_eq!(code, 200);
                    scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Longer than one EC2 interval (5 min), so a steady-state EC2 round falls inside.
    let window = Duration::from_secs(320);
    std::thread::sleep(window);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in scrapers {
        s.join().unwrap();
    }
    let (_, m1) = http_get(&srv.addr, "/metrics");
    let per_min = |c: &str| (counts(&m1, c) - counts(&m0, c)) * 60.0 / window.as_secs_f64();
    println!(
        "100 nodes, 50 concurrent scrapers, {} scrapes in {}s: EC2 {:.2} req/min, CloudTrail {:.2} req/min ({:.3} req/s)",
        scrapes.load(std::sync::atomic::Ordering::Relaxed),
        window.as_secs(),
        per_min("ec2"),
        per_min("cloudtrail"),
        per_min("cloudtrail") / 60.0
    );
    assert!(per_min("cloudtrail") / 60.0 <= 0.2);
    assert!(per_min("ec2") <= 30.0);
}

/// Issue 15 item 5: enhanced subnet discovery end to end. Subnets of the
/// node subnet's VPC and zone are tagged in moto; the exporter finds them
/// with DescribeSubnets by `vpc-id` + `tag-key`, and the zone's headroom
/// counts the valid ones (`1`) but not the excluded (`0`), the untagged or
/// another zone's.
#[test]
fn subnet_discovery_live_from_tagged_subnets_in_moto() {
    let world = World::start("tests/bundles/min-ip-target-stall", &[]);
    let srv = world.cluster();
    let node_subnet = world.moto_id("subnet", "subnet-07b3e9d1c5a8f2460");
    let v = wait_for(&srv, 90, "S1's subnet in the view", |v| {
        v["subnets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == node_subnet.as_str())
    });
    let zone = v["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == node_subnet.as_str())
        .unwrap()["zone"]
        .as_str()
        .unwrap()
        .to_string();
    let other_zone = if zone == "us-west-2a" {
        "us-west-2b"
    } else {
        "us-west-2a"
    };
    let ids = world.ec2_script(&format!(
        r#"
vpc = ec2.describe_subnets(SubnetIds=['{node_subnet}'])['Subnets'][0]['VpcId']
def make(cidr, zone, value):
    s = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)['Subnet']['SubnetId']
    if value is not None:
        ec2.create_tags(Resources=[s], Tags=[{{'Key': 'kubernetes.io/role/cni', 'Value': value}}])
    return s
print(json.dumps({{
    'tagged': make('10.0.240.0/22', '{zone}', '1'),
    'excluded': make('10.0.244.0/24', '{zone}', '0'),
    'untagged': make('10.0.245.0/24', '{zone}', None),
    'elsewhere': make('10.0.246.0/24', '{other_zone}', '1'),
}}))
"#
    ));
    let tagged = ids["tagged"].as_str().unwrap().to_string();

    // The next EC2 round (every 10 s here) brings the tagged subnets in.
    let v = wait_for(&srv, 60, "the discovered subnet", |v| {
        v["subnets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == tagged.as_str())
    });
    let subnets = v["subnets"].as_array().unwrap();
    let by_id = |id: &str| subnets.iter().find(|s| s["id"] == id);
    let t = by_id(&tagged).unwrap();
    assert_eq!(t["cni_use"], "discovered", "{t}");
    assert_eq!(t["available_ips"], 1019, "a /22 less AWS's 5");
    for gone in ["excluded", "untagged"] {
        assert!(
            by_id(ids[gone].as_str().unwrap()).is_none(),
            "{gone} subnet is no candidate of any node: {v}"
        );
    }
    let s1 = node_of(&v, S1);
    let candidates: Vec<&str> = s1["eni_subnet_candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(candidates.contains(&tagged.as_str()), "{candidates:?}");
    let free: Vec<u64> = candidates
        .iter()
        .map(|id| by_id(id).unwrap()["available_ips"].as_u64().unwrap())
        .collect();
    assert!(
        free.windows(2).all(|w| w[0] >= w[1]),
        "most free IPs first, as ipamd tries them: {candidates:?} {free:?}"
    );
    assert!(candidates.contains(&node_subnet.as_str()), "{candidates:?}");
    // The other zone's tagged subnet is a candidate there, not for S1.
    let elsewhere = ids["elsewhere"].as_str().unwrap();
    assert!(!candidates.contains(&elsewhere), "{candidates:?}");
    let other = v["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == other_zone)
        .unwrap();
    assert!(
        other["subnets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == elsewhere),
        "{other}"
    );
    let z = v["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == zone.as_str())
        .unwrap();
    let members: Vec<&str> = z["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let total: u64 = members
        .iter()
        .map(|id| by_id(id).unwrap()["available_ips"].as_u64().unwrap())
        .sum();
    assert_eq!(z["available_ips"].as_u64(), Some(total), "{z}");
    assert!(members.contains(&tagged.as_str()));
    // The same numbers on /metrics.
    let metrics = assert_exposes(
        &srv,
        &format!("eks_ipam_zone_pod_ips_available{{availability_zone=\"{zone}\"}} {total}"),
    );
    assert!(metrics.contains(&format!(
        "eks_ipam_subnet_info{{subnet_id=\"{tagged}\",availability_zone=\"{zone}\",cni_use=\"discovered\"}} 1\n"
    )));
    // A capture carries the discovered subnets and diagnoses the same zones.
    let (_cap, offline) = world.capture_and_diagnose();
    assert_eq!(timeless(&offline["zones"]), timeless(&v["zones"]));
}

/// Security groups for pods, live (issue 15 item 3): the VPC resource
/// controller advertises 9 branch ENIs on H1, nine running pods hold one,
/// and the scheduler refuses a tenth with its own message. The exporter
/// reads it through the pod and node watches: warning once full, critical
/// while a pod is refused, back to warning when the refused pod goes.
#[test]
fn branch_eni_exhaustion_live_from_the_watches() {
    const H1: &str = "ip-10-0-20-14.us-west-2.compute.internal";
    const POD_ENI: &str = "vpc.amazonaws.com/pod-eni";
    let world = World::start("tests/bundles/healthy", &[]);
    let srv = world.cluster();
    wait_for(&srv, 90, "H1 in the view", |v| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == H1)
    });
    let nodes: Value = serde_json::from_str(
        &std::fs::read_to_string(world.dir.path().join("world/kubernetes/nodes.json")).unwrap(),
    )
    .unwrap();
    let mut h1 = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["metadata"]["name"] == H1)
        .unwrap()
        .clone();
    h1["status"]["allocatable"][POD_ENI] = "9".into();
    let apply = |resource: &str, object: &Value| {
        world.control(
            "/_control/apply",
            &serde_json::json!({"resource": resource, "object": object}).to_string(),
        )
    };
    apply("nodes", &h1);
    let pod = |name: &str, node: Option<&str>| {
        let mut p = serde_json::json!({
            "metadata": {"name": name, "namespace": "payments"},
            "spec": {"containers": [{"name": "api", "image": "payments:1.4",
                "resources": {"requests": {POD_ENI: "1"}, "limits": {POD_ENI: "1"}}}]},
            "status": {"phase": "Pending"}
        });
        match node {
            Some(n) => {
                p["spec"]["nodeName"] = n.into();
                p["status"] = serde_json::json!({"phase": "Running", "podIP": "10.0.20.201"});
            }
            None => {
                p["status"]["conditions"] = serde_json::json!([{"type": "PodScheduled", "status": "False",
                    "reason": "Unschedulable", "message": REFUSED_POD_ENI}]);
            }
        }
        p
    };
    for i in 0..9 {
        apply("pods", &pod(&format!("payments-{i}"), Some(H1)));
    }
    let branch = |v: &Value| -> Vec<(String, String)> {
        findings_with(v, &["BranchEniExhausted"])
            .into_iter()
            .map(|(_, sev, node)| (sev, node))
            .collect()
    };
    let v = wait_for(&srv, 30, "H1's branch ENIs all requested", |v| {
        node_of(v, H1)["vpc_resources"]["pod_eni"]
            == serde_json::json!({"allocatable": 9, "requested": 9})
    });
    assert_eq!(branch(&v), vec![("warning".to_string(), H1.to_string())]);
    assert_eq!(v["cluster"]["pods_unschedulable"]["pod_eni"], 0);

    apply("pods", &pod("payments-pending", None));
    let v = wait_for(&srv, 30, "the refused pod counted", |v| {
        v["cluster"]["pods_unschedulable"]["pod_eni"] == 1
    });
    assert_eq!(branch(&v), vec![("critical".to_string(), H1.to_string())]);
    let (_, metrics) = http_get(&srv.addr, "/metrics");
    promtool_check(&metrics);
    assert!(metrics
        .lines()
        .any(|l| l == "eks_ipam_pods_unschedulable{resource=\"vpc.amazonaws.com/pod-eni\"} 1"));

    world.control(
        "/_control/delete",
        r#"{"resource":"pods","namespace":"payments","name":"payments-pending"}"#,
    );
    let v = wait_for(&srv, 30, "the refused pod gone", |v| {
        v["cluster"]["pods_unschedulable"]["pod_eni"] == 0
    });
    assert_eq!(branch(&v), vec![("warning".to_string(), H1.to_string())]);
}

/// Issue 15 item 6: who holds a subnet's addresses, live. In moto, S1's
/// subnet gets a `prefix` CIDR reservation (a /28), an `explicit` one (a
/// /29) and an ENI of someone else (3 addresses). The exporter reads them
/// with GetSubnetCidrReservations and DescribeNetworkInterfaces by subnet:
/// `reserved` grows by the 24 unused reserved addresses, `other` by the 3
/// foreign ones, `free` shrinks to match, and the holders still add up to
/// the subnet's size; a capture carries the reservations.
#[test]
fn subnet_holders_live_with_cidr_reservations_in_moto() {
    let world = World::start("tests/bundles/min-ip-target-stall", &[]);
    let srv = world.cluster();
    let node_subnet = world.moto_id("subnet", "subnet-07b3e9d1c5a8f2460");
    let holders_of = |v: &Value| -> Option<Value> {
        v["subnets"]
            .as_array()?
            .iter()
            .find(|s| s["id"] == node_subnet.as_str())
            .map(|s| s["holders"].clone())
            .filter(|h| !h.is_null())
    };
    let before = holders_of(&wait_for(&srv, 90, "S1's subnet holders", |v| {
        holders_of(v).is_some()
    }))
    .unwrap();
    assert_eq!(
        before["reserved"], 5,
        "no reservation yet: AWS's 5 {before}"
    );
    let out = world.ec2_script(&format!(
        r#"
s = ec2.describe_subnets(SubnetIds=['{node_subnet}'])['Subnets'][0]
net = ipaddress.ip_network(s['CidrBlock'])
# Reserve blocks no ENI holds an address in (the world fills the subnet).
used = set()
for e in ec2.describe_network_interfaces(Filters=[{{'Name': 'subnet-id', 'Values': [s['SubnetId']]}}])['NetworkInterfaces']:
    used |= {{int(ipaddress.ip_address(p['PrivateIpAddress'])) for p in e['PrivateIpAddresses']}}
def free_block(length, avoid):
    for b in reversed(list(net.subnets(new_prefix=length))[1:-1]):
        if not any(int(a) in used for a in b) and not any(b.overlaps(x) for x in avoid):
            return b
prefix = free_block(28, [])
explicit = free_block(29, [prefix])
ec2.create_subnet_cidr_reservation(SubnetId=s['SubnetId'], Cidr=str(prefix), ReservationType='prefix')
ec2.create_subnet_cidr_reservation(SubnetId=s['SubnetId'], Cidr=str(explicit), ReservationType='explicit')
# Explicit addresses: moto's own allocator can hand out one the world already placed by hand.
foreign = [str(a) for a in list(free_block(29, [prefix, explicit]))[:3]]
eni = ec2.create_network_interface(SubnetId=s['SubnetId'], Description='ELB app/web', PrivateIpAddresses=[
    {{'Primary': i == 0, 'PrivateIpAddress': a}} for i, a in enumerate(foreign)])
print(json.dumps({{'size': net.num_addresses, 'eni': eni['NetworkInterface']['NetworkInterfaceId']}}))
"#
    ));
    let size = out["size"].as_u64().unwrap();

    let v = wait_for(&srv, 60, "the reservations in the holders", |v| {
        holders_of(v).is_some_and(|h| h["reserved"] == 5 + 16 + 8)
    });
    let after = holders_of(&v).unwrap();
    let n = |h: &Value, k: &str| h[k].as_u64().unwrap_or_else(|| panic!("{k} in {h}"));
    assert_eq!(
        n(&after, "other"),
        n(&before, "other") + 3,
        "the foreign ENI: {before} -> {after}"
    );
    assert_eq!(
        n(&after, "free"),
        n(&before, "free") - 3 - 24,
        "{before} -> {after}"
    );
    assert_eq!(n(&after, "prefix_reserved_free"), 16);
    assert_eq!(
        n(&after, "other_not_visible"),
        0,
        "moto's counts agree with its ENIs: {after}"
    );
    let sum: u64 = ["pod", "warm", "eni_primary", "other", "reserved", "free"]
        .iter()
        .map(|k| after[*k].as_u64().unwrap_or(0))
        .sum();
    if !after["pod"].is_null() {
        assert_eq!(sum, size, "holders add up to the subnet: {after}");
    }
    let s = v["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == node_subnet.as_str())
        .unwrap();
    assert_eq!(s["prefix_reserved_free_ips"], 16, "{s}");
    assert_exposes(
        &srv,
        &format!("eks_ipam_subnet_ips{{subnet_id=\"{node_subnet}\",holder=\"reserved\"}} 29"),
    );
    // A capture holds the reservations and diagnoses the same holders.
    let (cap, offline) = world.capture_and_diagnose();
    assert!(cap.join("ec2/subnet-cidr-reservations.json").is_file());
    let off = holders_of(&offline).unwrap();
    assert_eq!(off["reserved"], after["reserved"]);
    assert_eq!(off["prefix_reserved_free"], after["prefix_reserved_free"]);
}

/// Issue 15 item 2: an EKS Auto Mode node's pod subnets, live. In moto, two
/// subnets of the node subnet's zone carry `Name=auto-pods-…` (one more in
/// the other zone, one with another name); the apiserver gets the
/// NodeClass (`podSubnetSelectorTerms` by a wildcard Name tag), the node's
/// NodeClaim and the node before the exporter starts. The exporter finds
/// the subnets with DescribeSubnets by `tag:Name`, and the node's
/// candidates are the two of its zone, most free first; a capture carries
/// the NodeClass and diagnoses the same.
#[test]
fn auto_mode_pod_subnets_live_from_the_nodeclass_and_moto() {
    let world = World::start("tests/bundles/min-ip-target-stall", &[]);
    let node_subnet = world.moto_id("subnet", "subnet-07b3e9d1c5a8f2460");
    let made = world.ec2_script(&format!(
        r#"
s = ec2.describe_subnets(SubnetIds=['{node_subnet}'])['Subnets'][0]
vpc, zone = s['VpcId'], s['AvailabilityZone']
other = 'us-west-2b' if zone == 'us-west-2a' else 'us-west-2a'
def make(cidr, zone, name):
    s = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)['Subnet']['SubnetId']
    ec2.create_tags(Resources=[s], Tags=[{{'Key': 'Name', 'Value': name}}])
    return s
print(json.dumps({{
    'zone': zone,
    'big': make('10.0.240.0/22', zone, 'auto-pods-big'),
    'small': make('10.0.244.0/24', zone, 'auto-pods-small'),
    'elsewhere': make('10.0.245.0/24', other, 'auto-pods-other-zone'),
    'unnamed': make('10.0.246.0/24', zone, 'not-for-pods'),
}}))
"#
    ));
    let id = |k: &str| made[k].as_str().unwrap().to_string();
    let zone = id("zone");
    let apply = |resource: &str, object: Value| {
        world.control(
            "/_control/apply",
            &serde_json::json!({"resource": resource, "object": object}).to_string(),
        )
    };
    apply(
        "nodeclasses",
        serde_json::json!({
            "apiVersion": "eks.amazonaws.com/v1", "kind": "NodeClass",
            "metadata": {"name": "pods-apart"},
            "spec": {"role": "AmazonEKSAutoNodeRole",
                     "subnetSelectorTerms": [{"id": node_subnet}],
                     "podSubnetSelectorTerms": [{"tags": {"Name": "auto-pods-*"}}],
                     "podSecurityGroupSelectorTerms": [{"tags": {"Name": "eks-pod-sg"}}]}
        }),
    );
    apply(
        "nodeclaims",
        serde_json::json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": "general-purpose-a1b2c"},
            "spec": {"nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "pods-apart"}},
            "status": {"nodeName": "i-0a1b2c3d4e5f60789"}
        }),
    );
    apply(
        "nodes",
        serde_json::json!({
            "metadata": {"name": "i-0a1b2c3d4e5f60789", "labels": {
                "eks.amazonaws.com/compute-type": "auto", "kubernetes.io/os": "linux",
                "topology.kubernetes.io/zone": zone, "node.kubernetes.io/instance-type": "m5.large"}},
            "status": {"capacity": {"pods": "110"}, "allocatable": {"pods": "110"}}
        }),
    );
    let srv = world.cluster();
    let (big, small) = (id("big"), id("small"));
    let v =
        wait_for(&srv, 90, "the Auto Mode node's candidates", |v| {
            v["nodes"].as_array().unwrap().iter().any(|n| {
                n["name"] == "i-0a1b2c3d4e5f60789" && !n["eni_subnet_candidates"].is_null()
            })
        });
    let a1 = node_of(&v, "i-0a1b2c3d4e5f60789");
    assert_eq!(
        a1["eni_subnet_candidates"],
        serde_json::json!([big, small]),
        "its zone's pod subnets, most free first: {a1}"
    );
    let subnets = v["subnets"].as_array().unwrap();
    let by_id = |id: &str| subnets.iter().find(|s| s["id"] == id);
    assert_eq!(by_id(&big).unwrap()["cni_use"], "pod");
    assert_eq!(
        by_id(&id("elsewhere")).unwrap()["cni_use"],
        "pod",
        "selected, other zone"
    );
    assert!(
        by_id(&id("unnamed")).is_none(),
        "not selected, not asked for"
    );
    assert_exposes(
        &srv,
        &format!("eks_ipam_subnet_info{{subnet_id=\"{big}\",availability_zone=\"{zone}\",cni_use=\"pod\"}} 1"),
    );
    let (cap, offline) = world.capture_and_diagnose();
    assert!(cap.join("kubernetes/nodeclasses.json").is_file());
    assert_eq!(
        node_of(&offline, "i-0a1b2c3d4e5f60789")["eni_subnet_candidates"],
        a1["eni_subnet_candidates"]
    );
}

/// Node agents behind TLS and basic auth (their `--web.config.file`) are read
/// by a cluster role given `--agent-client-config` (CA, server name, user and
/// password file), and stay unknown -- never zero -- to one without it.
#[test]
fn agents_behind_tls_and_basic_auth_are_read_with_the_client_config() {
    let tmp = tempfile::tempdir().unwrap();
    make_test_pki(tmp.path());
    let hash = bcrypt::hash("agent-s3cret", 4).unwrap();
    let web = tmp.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  cluster: {hash}\n"
        ),
    )
    .unwrap();
    std::fs::write(tmp.path().join("password"), "agent-s3cret\n").unwrap();
    let client = tmp.path().join("agent-client.yml");
    std::fs::write(
        &client,
        "scheme: https\ntls_config:\n  ca_file: ca.crt\n  server_name: eks-ipam-exporter-node\nbasic_auth:\n  username: cluster\n  password_file: password\n",
    )
    .unwrap();
    let world = World::start_full(
        "tests/bundles/min-ip-target-stall",
        &[],
        &[],
        &["--web.config.file", web.to_str().unwrap()],
    );
    let secured = world.cluster_with(&[("EKS_IPAM_AGENT_CLIENT_CONFIG", client.to_str().unwrap())]);
    let v = wait_for(&secured, 90, "the stalled node's pool through TLS", |v| {
        node_of(v, S1)["ips"]["total"] == 25
    });
    assert_eq!(node_of(&v, S1)["ips"]["assigned"], 25);

    // Without the client config the agents cannot be read: their pools are
    // unknown, and the reads counted as errors.
    let plain = world.cluster();
    let (_, text) = eventually(60, || {
        let (code, text) = http_get(&plain.addr, "/metrics");
        (code == 200
            && text.lines().any(|l| {
                l.starts_with("eks_ipam_collector_errors_total{collector=\"ipamd\"")
                    && !l.ends_with(" 0")
            }))
        .then_some((code, text))
    })
    .expect("ipamd read errors counted without the client config");
    let v = diagnosis(&plain).unwrap();
    assert!(node_of(&v, S1)["ips"].is_null(), "{}", node_of(&v, S1));
    assert!(
        !text.contains(&format!("eks_ipam_node_ips{{node=\"{S1}\"")),
        "an unreadable pool must not be exposed as a number"
    );
}

/// `plan` without a bundle reads the live sources (as live `diagnose`), and
/// the live cluster role's `/api/v1/plan` plans on its collectors' state:
/// incident 2's fix resolves the stall either way.
#[test]
fn plan_live_and_over_http_resolves_the_stall() {
    let world = World::start("tests/bundles/min-ip-target-stall", &[]);
    let env = world.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run_env(
        &["plan", "--set", "WARM_IP_TARGET=10", "--output", "json"],
        &env,
    );
    assert_eq!(out.code, 0, "plan: {}", out.stderr);
    let cli: Value = serde_json::from_str(&out.stdout).unwrap();
    let resolved = |v: &Value| -> BTreeSet<(String, String)> {
        v["findings_resolved"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["code"].as_str().unwrap().to_string(),
                    f["node"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert!(
        resolved(&cli).contains(&("IpamdAllocationStalled".to_string(), S1.to_string())),
        "{}",
        cli["findings_resolved"]
    );
    let s1 = |v: &Value| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == S1)
            .cloned()
            .unwrap()
    };
    assert_eq!(s1(&cli)["after"]["ips"]["total"], 35);

    let srv = world.cluster();
    wait_for(&srv, 90, "the stall", |v| {
        findings(v)
            .iter()
            .any(|f| f.0 == "IpamdAllocationStalled" && f.2 == S1)
    });
    let (code, body) = http_get(&srv.addr, "/api/v1/plan?set=WARM_IP_TARGET=10");
    assert_eq!(code, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert!(resolved(&api).contains(&("IpamdAllocationStalled".to_string(), S1.to_string())));
    assert_eq!(s1(&api)["after"]["ips"]["total"], 35);
}
