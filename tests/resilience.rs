//! Operational robustness of the served exporter: graceful but bounded
//! shutdown, load with a slow client, no secrets in logs, least privilege.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client that requests /metrics and then reads nothing: its connection
/// stays open with the response stuck in the socket buffers.
fn stuck_client(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s
}

/// A bundle directory whose `/metrics` is megabytes: `nodes` nodes, nothing else.
fn big_cluster_bundle(nodes: usize) -> tempfile::TempDir {
    let items: Vec<serde_json::Value> = (0..nodes)
        .map(|i| {
            serde_json::json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": format!("ip-10-{}-{}-{}.us-west-2.compute.internal", i / 65536, (i / 256) % 256, i % 256),
                             "uid": format!("00000000-0000-0000-0000-{i:012}"),
                             "labels": {"node.kubernetes.io/instance-type": "m5.large",
                                        "topology.kubernetes.io/zone": "us-west-2a"}},
                "spec": {"providerID": format!("aws:///us-west-2a/i-{i:017x}")},
                "status": {"capacity": {"pods": "29"}, "allocatable": {"pods": "29"}}})
        })
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    temp_bundle(&[("kubernetes/nodes.json", &list.to_string())])
}

/// SIGTERM while responses are in flight (bodies far larger than the
/// socket buffers, clients that read nothing): the exporter still exits
/// within 5 s, cleanly.
#[test]
fn sigterm_during_a_scrape_exits_within_five_seconds() {
    let bundle = big_cluster_bundle(12000);
    let kube = start_kube_apiserver(&["--bundle", bundle.path().to_str().unwrap(), "--port", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &kube.addrs["kube-apiserver"], "t");
    let mut srv = start_server_env(
        &["cluster", "--disable-ec2", "--disable-cloudtrail"],
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("HOME", dir.path().to_str().unwrap()),
        ],
    );
    // The body once the nodes are in: far more than what loopback buffers hold.
    let body_len = eventually(60, || {
        let (code, body) = http_get(&srv.addr, "/metrics");
        (code == 200 && body.matches("eks_ipam_node_info{").count() == 12000).then_some(body.len())
    })
    .expect("12000 nodes in /metrics");
    assert!(body_len > 9 << 19, "/metrics is only {body_len} bytes");
    let mut stuck: Vec<TcpStream> = (0..4).map(|_| stuck_client(&srv.addr)).collect();
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = eventually(8, || srv.child.try_wait().ok().flatten())
        .expect("still running 8 s after SIGTERM");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(status.success(), "exit status {status:?}");
    // The scrapes were in flight: none of the stuck clients can read a whole body.
    for s in &mut stuck {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(
            got.len() < body_len,
            "a whole body ({} bytes) was already buffered",
            got.len()
        );
    }
}

#[test]
fn no_credentials_in_logs_at_trace_level() {
    let kube = start_kube_apiserver(&[
        "--bundle",
        "tests/bundles/min-ip-target-stall",
        "--port",
        "0",
        "--token",
        "KUBETOKEN-s3cr3t-0001",
    ]);
    let ct = start_fake(
        "cloudtrail.py",
        &[
            "--bundle",
            "tests/bundles/min-ip-target-stall",
            "--port",
            "0",
        ],
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(
        dir.path(),
        &kube.addrs["kube-apiserver"],
        "KUBETOKEN-s3cr3t-0001",
    );
    let log = dir.path().join("log");
    let mut child = std::process::Command::new(bin())
        .args([
            "cluster",
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "trace",
            "--cloudtrail-interval",
            "5s",
            "--ec2-interval",
            "10s",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", dir.path())
        .env("AWS_ACCESS_KEY_ID", "AKIDSECRETACCESSKEYID0")
        .env("AWS_SECRET_ACCESS_KEY", "AWSSECRET-s3cr3t-0002")
        .env("AWS_SESSION_TOKEN", "SESSIONTOKEN-s3cr3t-0003")
        .env("AWS_REGION", "us-west-2")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // EC2 points at a closed port: its errors are logged too.
        .env("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:9")
        .env(
            "AWS_ENDPOINT_URL_CLOUDTRAIL",
            format!("http://{}", ct.addrs["cloudtrail"]),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(7));
    let _ = child.kill();
    let _ = child.wait();
    // The credentials were used: signed LookupEvents reached the fake (it
    // refuses unsigned ones), so a log without them means they were kept out.
    let (code, stats) = http_get(&ct.addrs["cloudtrail"], "/_control/stats");
    assert_eq!(code, 200, "{stats}");
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(
        stats["requests"].as_u64().unwrap_or(0) >= 1,
        "no signed AWS request was made: {stats}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.len() > 10_000,
        "expected a verbose trace log, got {} bytes",
        text.len()
    );
    assert!(
        text.contains("initial list done"),
        "the run did not get going"
    );
    for secret in [
        "KUBETOKEN-s3cr3t-0001",
        "AWSSECRET-s3cr3t-0002",
        "SESSIONTOKEN-s3cr3t-0003",
    ] {
        assert!(!text.contains(secret), "{secret} appears in the log");
    }
}

#[test]
fn iam_policy_grants_exactly_the_aws_calls_in_the_code() {
    fn rs_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rs_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    rs_files(&repo("src"), &mut files);
    let mut called = std::collections::BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // SDK operations are called as `client.<operation>()` (possibly across lines).
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join("");
        for (i, _) in flat.match_indices("client.") {
            let rest = &flat[i + 7..];
            let Some(end) = rest.find("()") else { continue };
            let op = &rest[..end];
            if op.is_empty() || !op.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                continue;
            }
            let pascal: String = op
                .split('_')
                .map(|w| w[..1].to_uppercase() + &w[1..])
                .collect();
            let action = match op {
                "lookup_events" => format!("cloudtrail:{pascal}"),
                o if o.starts_with("describe_") || o.starts_with("get_subnet_") => {
                    format!("ec2:{pascal}")
                }
                _ => continue,
            };
            called.insert(action);
        }
    }
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo("deploy/iam-policy.json")).unwrap())
            .unwrap();
    let granted: std::collections::BTreeSet<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(called.len(), 5, "found {called:?}");
    assert_eq!(
        granted, called,
        "deploy/iam-policy.json must grant exactly the SDK operations the code calls"
    );
    for s in policy["Statement"].as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow");
        let actions = s["Action"].to_string();
        assert!(!actions.contains('*'), "wildcard action: {actions}");
    }
}

/// A TCP proxy in front of the fake apiserver that can be cut (refusing new
/// connections and dropping open ones) and restored, like a network
/// partition or an apiserver restart with etcd intact.
struct Proxy {
    addr: String,
    up: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: String, up: bool) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(up));
        let conns: Arc<std::sync::Mutex<Vec<TcpStream>>> = Default::default();
        let (u, c) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !u.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut guard = c.lock().unwrap();
                guard.push(client.try_clone().unwrap());
                guard.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { addr, up, conns }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for c in self.conns.lock().unwrap().drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

fn metrics_of(srv: &Server) -> String {
    http_get(&srv.addr, "/metrics").1
}

#[test]
fn apiserver_unreachable_at_start_and_mid_run_then_recovers() {
    let api = start_kube_apiserver(&[
        "--bundle",
        "tests/bundles/min-ip-target-stall",
        "--port",
        "0",
    ]);
    let proxy = Proxy::start(api.addrs["kube-apiserver"].clone(), false);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &proxy.addr, "t");
    let home = dir.path().to_str().unwrap();
    let kc = kubeconfig.to_str().unwrap();
    let srv = start_server_env(
        &[
            "cluster",
            "--disable-ec2",
            "--disable-cloudtrail",
            "--ready-timeout",
            "3s",
            "--stale-after",
            "4s",
            "--agent-interval",
            "1s",
        ],
        &[("KUBECONFIG", kc), ("HOME", home)],
    );
    // Unreachable from the start: ready after the timeout, Kubernetes unknown and counted as down.
    let m = eventually(15, || {
        (http_get(&srv.addr, "/readyz").0 == 200).then(|| metrics_of(&srv))
    })
    .expect("ready after timeout");
    assert!(
        m.contains("eks_ipam_collector_up{collector=\"kubernetes\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("collector=\"kubernetes\",kind=\"connect\""),
        "connect errors counted"
    );
    assert!(
        !m.contains("eks_ipam_node_info{"),
        "no node may be invented"
    );

    // Reachable: picked up without a restart.
    proxy.set_up(true);
    eventually(60, || {
        metrics_of(&srv)
            .contains("eks_ipam_node_info{node=\"ip-10-0-36-41")
            .then_some(())
    })
    .expect("nodes once reachable");
    assert!(metrics_of(&srv).contains("eks_ipam_collector_up{collector=\"kubernetes\"} 1"));

    // Cut mid-run: after --stale-after the last-known nodes are no longer shown.
    proxy.set_up(false);
    eventually(60, || {
        let m = metrics_of(&srv);
        (!m.contains("eks_ipam_node_info{")
            && m.contains("eks_ipam_collector_up{collector=\"kubernetes\"} 0"))
        .then_some(())
    })
    .expect("stale Kubernetes data must turn unknown");

    // Restored: recovered without a restart.
    proxy.set_up(true);
    eventually(90, || {
        metrics_of(&srv)
            .contains("eks_ipam_node_info{node=\"ip-10-0-36-41")
            .then_some(())
    })
    .expect("recovery");
}

/// Runs `cluster` against the fake apiserver with EC2 or CloudTrail pointed
/// at a fake that answers one error; returns the exporter's /metrics once
/// the collector reported a failure.
fn aws_fault(service: &str, code: &str, status: u16) -> String {
    let kube = start_kube_apiserver(&[
        "--bundle",
        "tests/bundles/min-ip-target-stall",
        "--port",
        "0",
    ]);
    let fake = start_fake(
        "aws_errors.py",
        &[
            "--port",
            "0",
            "--code",
            code,
            "--status",
            &status.to_string(),
        ],
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &kube.addrs["kube-apiserver"], "t");
    let endpoint = format!("http://{}", fake.addrs["aws-errors"]);
    let (ec2, ct) = if service == "ec2" {
        (endpoint.as_str(), "http://127.0.0.1:9")
    } else {
        ("http://127.0.0.1:9", endpoint.as_str())
    };
    let srv = start_server_env(
        &[
            "cluster",
            "--ready-timeout",
            "3s",
            "--ec2-interval",
            "10s",
            "--cloudtrail-interval",
            "5s",
        ],
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("HOME", dir.path().to_str().unwrap()),
            ("AWS_ACCESS_KEY_ID", "t"),
            ("AWS_SECRET_ACCESS_KEY", "t"),
            ("AWS_REGION", "us-west-2"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ENDPOINT_URL_EC2", ec2),
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", ct),
        ],
    );
    let needle = format!("eks_ipam_collector_up{{collector=\"{service}\"}} 0");
    let m = eventually(90, || {
        let m = http_get(&srv.addr, "/metrics").1;
        (m.contains(&needle)
            && m.contains(&format!(
                "eks_ipam_collector_errors_total{{collector=\"{service}\""
            )))
        .then_some(m)
    })
    .unwrap_or_else(|| panic!("{service} failure not reported"));
    assert_eq!(
        http_get(&srv.addr, "/healthz").0,
        200,
        "the exporter stays up"
    );
    m
}

#[test]
fn ec2_throttling_is_classified_and_subnets_stay_unknown() {
    let m = aws_fault("ec2", "RequestLimitExceeded", 503);
    assert!(
        m.contains("eks_ipam_collector_errors_total{collector=\"ec2\",kind=\"throttled\"}"),
        "{m}"
    );
    assert!(
        !m.contains("eks_ipam_subnet_available_ips{"),
        "no subnet number may be invented"
    );
    // Limits fall back to the embedded table: the ENI limit is still known.
    assert!(
        m.contains("eks_ipam_node_enis_max{node=\"ip-10-0-36-41.us-west-2.compute.internal\"} 8"),
        "{m}"
    );
    // Capacity is not: without EC2's ENIs (and no ipamd metrics here) the
    // unmanaged ENIs (EFA-only, no_manage) that take slots cannot be
    // counted, so it is absent rather than guessed.
    assert!(!m.contains("eks_ipam_node_pod_ip_capacity{"), "{m}");
}

#[test]
fn ec2_denied_permission_is_classified() {
    let m = aws_fault("ec2", "UnauthorizedOperation", 403);
    assert!(
        m.contains("eks_ipam_collector_errors_total{collector=\"ec2\",kind=\"access_denied\"}"),
        "{m}"
    );
}

#[test]
fn ec2_server_errors_are_classified() {
    let m = aws_fault("ec2", "InternalError", 500);
    assert!(
        m.contains("eks_ipam_collector_errors_total{collector=\"ec2\",kind=\"server_error\"}"),
        "{m}"
    );
}

#[test]
fn cloudtrail_expired_credentials_leave_silence_unknown() {
    let m = aws_fault("cloudtrail", "ExpiredTokenException", 400);
    assert!(m.contains("eks_ipam_collector_errors_total{collector=\"cloudtrail\",kind=\"expired_credentials\"}"), "{m}");
    assert!(
        !m.contains("eks_ipam_api_call_silence_seconds{"),
        "silence must be unknown, not 'no calls'"
    );
}
