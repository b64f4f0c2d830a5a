//! Cluster shapes beyond the classic one (issue 15). Scheduler-side
//! exhaustion through `diagnose --bundle` (item 3):
//! the healthy bundle with security groups for pods on node H1 (an
//! m5.large-sized trunk: `vpc.amazonaws.com/pod-eni` allocatable 9), pods
//! carrying the request the VPC resource controller's webhook injects, and
//! pending pods refused with the scheduler's own message. Per row: what the
//! node advertises, how many of its running pods hold a branch ENI, how many
//! pods the scheduler refused; then the numbers and findings expected.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;

const H1: &str = "ip-10-0-20-14.us-west-2.compute.internal";
const POD_ENI: &str = "vpc.amazonaws.com/pod-eni";

fn edit(dir: &Path, rel: &str, f: impl FnOnce(&mut Value)) {
    let path = dir.join(rel);
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut doc);
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

/// A pod as the webhook leaves it: request and limit of 1 on the first container.
fn sgp_pod(name: &str, node: Option<&str>, phase: &str, refused_message: Option<&str>) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "payments"},
        "spec": {"containers": [
            {"name": "api", "image": "payments:1.4",
             "resources": {"requests": {"cpu": "100m", POD_ENI: "1"}, "limits": {POD_ENI: "1"}}},
            {"name": "envoy", "image": "envoy:1.31", "resources": {"requests": {"cpu": "50m"}}}]},
        "status": {"phase": phase}
    });
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
        p["status"]["podIP"] = json!("10.0.20.200");
    }
    if let Some(m) = refused_message {
        p["status"]["conditions"] = json!([{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "lastProbeTime": null, "lastTransitionTime": "2026-08-25T12:20:00Z", "message": m
        }]);
    }
    p
}

fn bundle(allocatable: Option<&str>, holding: usize, refused: usize) -> tempfile::TempDir {
    let dir = copy_bundle(&repo("tests/bundles/healthy"));
    edit(dir.path(), "kubernetes/nodes.json", |doc| {
        for n in doc["items"].as_array_mut().unwrap() {
            if n["metadata"]["name"] == H1 {
                if let Some(a) = allocatable {
                    n["status"]["allocatable"][POD_ENI] = json!(a);
                    n["status"]["capacity"][POD_ENI] = json!(a);
                    n["metadata"]["labels"]["vpc.amazonaws.com/has-trunk-attached"] = json!("true");
                }
            }
        }
    });
    edit(dir.path(), "kubernetes/pods.json", |doc| {
        let items = doc["items"].as_array_mut().unwrap();
        for i in 0..holding {
            items.push(sgp_pod(&format!("payments-{i}"), Some(H1), "Running", None));
        }
        // A finished pod keeps its request in the spec but holds nothing.
        items.push(sgp_pod("payments-job-done", Some(H1), "Succeeded", None));
        let msg = REFUSED_POD_ENI;
        for i in 0..refused {
            items.push(sgp_pod(
                &format!("payments-pending-{i}"),
                None,
                "Pending",
                Some(msg),
            ));
        }
    });
    dir
}

/// (code, severity, node) of the VPC resource findings.
fn vpc_findings(v: &Value) -> Vec<(String, String, String)> {
    findings_with(v, &["BranchEniExhausted", "WindowsPodIpsExhausted"])
}

#[test]
fn scheduler_side_exhaustion_table() {
    type Row = (
        &'static str,
        Option<&'static str>,
        usize,
        usize,
        (Value, Value),
        Vec<(&'static str, &'static str, &'static str)>,
    );
    let rows: Vec<Row> = vec![
        ("room left", Some("9"), 8, 0, (json!(9), json!(8)), vec![]),
        (
            "full: warning on the node",
            Some("9"),
            9,
            0,
            (json!(9), json!(9)),
            vec![("BranchEniExhausted", "warning", H1)],
        ),
        (
            "full and pods refused: critical",
            Some("9"),
            9,
            2,
            (json!(9), json!(9)),
            vec![("BranchEniExhausted", "critical", H1)],
        ),
        (
            "refused, no node advertises pod-eni: cluster-wide critical",
            None,
            0,
            1,
            (Value::Null, json!(0)),
            vec![("BranchEniExhausted", "critical", "")],
        ),
        // A quantity that is not a count: allocatable unknown, not guessed.
        (
            "odd quantity",
            Some("9.5"),
            9,
            0,
            (Value::Null, json!(9)),
            vec![],
        ),
    ];
    for (what, allocatable, holding, refused, (alloc, req), want) in rows {
        let dir = bundle(allocatable, holding, refused);
        let v = diagnose_json(dir.path());
        let r = &node_of(&v, H1)["vpc_resources"]["pod_eni"];
        assert_eq!(
            (&r["allocatable"], &r["requested"]),
            (&alloc, &req),
            "{what}: {r}"
        );
        assert_eq!(
            v["cluster"]["pods_unschedulable"],
            json!({"pod_eni": refused, "private_ipv4": 0}),
            "{what}"
        );
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(c, s, n)| (c.to_string(), s.to_string(), n.to_string()))
            .collect();
        assert_eq!(vpc_findings(&v), want, "{what}");
    }
}

/// The same bundle served as `/metrics`: the two contract families with
/// their closed label sets, and nothing for the node that has none.
#[test]
fn scheduler_side_exhaustion_metrics() {
    let dir = bundle(Some("9"), 9, 2);
    let srv = start_server(&["cluster", "--bundle", dir.path().to_str().unwrap()]);
    let (code, body) = http_get(&srv.addr, "/metrics");
    assert_eq!(code, 200);
    promtool_check(&body);
    for line in [
        format!("eks_ipam_node_resource{{node=\"{H1}\",resource=\"{POD_ENI}\",state=\"allocatable\"}} 9"),
        format!("eks_ipam_node_resource{{node=\"{H1}\",resource=\"{POD_ENI}\",state=\"requested\"}} 9"),
        format!("eks_ipam_pods_unschedulable{{resource=\"{POD_ENI}\"}} 2"),
        "eks_ipam_pods_unschedulable{resource=\"vpc.amazonaws.com/PrivateIPv4Address\"} 0".to_string(),
        format!("eks_ipam_finding{{code=\"BranchEniExhausted\",severity=\"critical\",node=\"{H1}\",subnet_id=\"\",availability_zone=\"\"}} 1"),
    ] {
        assert!(body.lines().any(|l| l == line), "missing {line}");
    }
    let other_node_series = body
        .lines()
        .filter(|l| l.starts_with("eks_ipam_node_resource{") && !l.contains(H1))
        .count();
    assert_eq!(
        other_node_series, 0,
        "the other node advertises and requests nothing"
    );
}

/// Auto Mode IPAM health through `diagnose --bundle` (issue 15 item 2): node
/// H2 relabelled as an Auto Mode node; the node monitoring agent's signals
/// as it writes them (events with reason NetworkingReady and message
/// `"<issue>: <text>"` on the Node; the NetworkingReady condition).
#[test]
fn auto_mode_ipam_health_table() {
    const H2: &str = "ip-10-0-71-36.us-west-2.compute.internal";
    // (what, event (issue, minutes before capturedAt), condition reason, fires)
    type Row = (
        &'static str,
        Option<(&'static str, i64)>,
        Option<&'static str>,
        bool,
    );
    let rows: Vec<Row> = vec![
        ("healthy", None, None, false),
        (
            "IPAMDNoIPs 5 minutes ago",
            Some(("IPAMDNoIPs", 5)),
            None,
            true,
        ),
        (
            "IPAMDNoIPs 25 minutes ago: past the 20-minute window",
            Some(("IPAMDNoIPs", 25)),
            None,
            false,
        ),
        ("a non-IPAM issue", Some(("InterfaceNotUp", 5)), None, false),
        (
            "IPAMDNotRunning condition",
            None,
            Some("IPAMDNotRunning"),
            true,
        ),
    ];
    for (what, event, condition, fires) in rows {
        let dir = copy_bundle(&repo("tests/bundles/healthy"));
        let captured: jiff::Timestamp = {
            let b: Value = serde_json::from_str(
                &std::fs::read_to_string(dir.path().join("bundle.json")).unwrap(),
            )
            .unwrap();
            b["capturedAt"].as_str().unwrap().parse().unwrap()
        };
        edit(dir.path(), "kubernetes/nodes.json", |doc| {
            for n in doc["items"].as_array_mut().unwrap() {
                if n["metadata"]["name"] == H2 {
                    n["metadata"]["labels"]["eks.amazonaws.com/compute-type"] = json!("auto");
                    if let Some(reason) = condition {
                        n["status"]["conditions"].as_array_mut().unwrap().push(json!({
                            "type": "NetworkingReady", "status": "False", "reason": reason,
                            "message": "The Amazon VPC CNI process was not found to be running.",
                            "lastHeartbeatTime": "2026-08-25T12:29:00Z", "lastTransitionTime": "2026-08-25T12:10:00Z"
                        }));
                    }
                }
            }
        });
        if let Some((issue, minutes)) = event {
            let when = captured - jiff::SignedDuration::from_mins(minutes);
            edit(dir.path(), "kubernetes/events.json", |doc| {
                doc["items"].as_array_mut().unwrap().push(json!({
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": format!("{H2}.18a1f2b3c4d5e6f7"), "namespace": "default"},
                    "involvedObject": {"kind": "Node", "name": H2, "uid": H2},
                    "reason": "NetworkingReady",
                    "message": format!("{issue}: There are no available IP addresses for IPAMD to assign to pods"),
                    "source": {"component": "eks-node-monitoring-agent", "host": H2},
                    "reportingComponent": "eks-node-monitoring-agent", "reportingInstance": H2,
                    "type": "Warning", "count": 4,
                    "firstTimestamp": when.to_string(), "lastTimestamp": when.to_string(), "eventTime": null
                }));
            });
        }
        let v = diagnose_json(dir.path());
        let found = findings_with(&v, &["AutoModeIpamUnhealthy"]);
        let want = if fires {
            vec![(
                "AutoModeIpamUnhealthy".to_string(),
                "critical".to_string(),
                H2.to_string(),
            )]
        } else {
            vec![]
        };
        assert_eq!(found, want, "{what}");
        // The Auto Mode node never gets aws-node's model.
        assert_eq!(node_of(&v, H2)["pod_ip_capacity"], Value::Null, "{what}");
    }
}

/// Windows pod IPs (issue 15 item 3): node H2 relabelled `kubernetes.io/os=windows`
/// advertising 9 `vpc.amazonaws.com/PrivateIPv4Address` (an m5.large's 10
/// IPv4 per ENI, less the primary), nine Windows pods holding one each as
/// the controller's webhook injects it, one more refused by the scheduler.
#[test]
fn windows_pod_ips_exhausted_from_a_bundle() {
    const H2: &str = "ip-10-0-71-36.us-west-2.compute.internal";
    const WIN: &str = "vpc.amazonaws.com/PrivateIPv4Address";
    let dir = copy_bundle(&repo("tests/bundles/healthy"));
    edit(dir.path(), "kubernetes/nodes.json", |doc| {
        for n in doc["items"].as_array_mut().unwrap() {
            if n["metadata"]["name"] == H2 {
                n["metadata"]["labels"]["kubernetes.io/os"] = json!("windows");
                n["status"]["allocatable"][WIN] = json!("9");
            }
        }
    });
    let win_pod = |name: &str, node: Option<&str>| {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "legacy"},
            "spec": {"nodeSelector": {"kubernetes.io/os": "windows"},
                     "containers": [{"name": "iis", "image": "mcr.microsoft.com/windows/servercore/iis",
                                     "resources": {"requests": {WIN: "1"}, "limits": {WIN: "1"}}}]},
            "status": {"phase": "Pending"}
        });
        match node {
            Some(n) => {
                p["spec"]["nodeName"] = json!(n);
                p["status"] = json!({"phase": "Running", "podIP": "10.0.71.200"});
            }
            None => {
                p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/2 nodes are available: 1 Insufficient vpc.amazonaws.com/PrivateIPv4Address, 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."}]);
            }
        }
        p
    };
    edit(dir.path(), "kubernetes/pods.json", |doc| {
        let items = doc["items"].as_array_mut().unwrap();
        for i in 0..9 {
            items.push(win_pod(&format!("iis-{i}"), Some(H2)));
        }
        items.push(win_pod("iis-pending", None));
    });
    let v = diagnose_json(dir.path());
    let r = &node_of(&v, H2)["vpc_resources"]["private_ipv4"];
    assert_eq!((&r["allocatable"], &r["requested"]), (&json!(9), &json!(9)));
    assert_eq!(
        v["cluster"]["pods_unschedulable"],
        json!({"pod_eni": 0, "private_ipv4": 1})
    );
    assert_eq!(
        findings_with(&v, &["WindowsPodIpsExhausted", "BranchEniExhausted"]),
        vec![(
            "WindowsPodIpsExhausted".to_string(),
            "critical".to_string(),
            H2.to_string()
        )]
    );
    // A Windows node never gets aws-node's IPv4 pool model.
    assert_eq!(node_of(&v, H2)["os"], "windows");
    assert_eq!(node_of(&v, H2)["pod_ip_capacity"], Value::Null);
}

/// Multi-NIC (issue 15 item 7) through `diagnose --bundle`: the healthy
/// bundle's node H1 becomes a c6in.32xlarge (2 network cards, 8 ENIs per
/// card, 49 pod IPs per ENI in the embedded vpc-cni table) whose ipamd
/// answers `/v1/enis` with a second card (one ENI, 3 IPs, 1 assigned), as
/// v1.20+ does with ENABLE_MULTI_NIC. Per row: the aws-node setting,
/// whether `/v1/enis` lists card 1, whether the agent's answer is in the
/// bundle; then the node's capacity, IPs (total, assigned) and card indexes.
#[test]
fn multi_nic_table() {
    type Row = (&'static str, bool, bool, Value, Value, Value);
    let rows: &[Row] = &[
        (
            "true",
            true,
            true,
            json!(784),
            json!([21, 6]),
            json!([0, 1]),
        ),
        // /v1/enis is what ipamd manages: card 0 alone is authoritative.
        ("true", false, true, json!(392), json!([18, 5]), json!(null)),
        (
            "false",
            false,
            true,
            json!(392),
            json!([18, 5]),
            json!(null),
        ),
        // No agent answer: which cards ipamd manages is unknown.
        ("true", false, false, json!(null), json!(null), json!(null)),
    ];
    for (multi, card1, agent, capacity, ips, cards) in rows {
        let what = format!("ENABLE_MULTI_NIC={multi} card1={card1} agent={agent}");
        let dir = copy_bundle(&repo("tests/bundles/healthy"));
        edit(dir.path(), "kubernetes/nodes.json", |doc| {
            for n in doc["items"].as_array_mut().unwrap() {
                if n["metadata"]["name"] == H1 {
                    n["metadata"]["labels"]["node.kubernetes.io/instance-type"] =
                        json!("c6in.32xlarge");
                    n["metadata"]["labels"]["beta.kubernetes.io/instance-type"] =
                        json!("c6in.32xlarge");
                    n["status"]["capacity"]["pods"] = json!("345");
                    n["status"]["allocatable"]["pods"] = json!("345");
                }
            }
        });
        let env = json!({"name": "ENABLE_MULTI_NIC", "value": multi});
        let add_env = |spec: &mut Value| {
            for c in spec["containers"].as_array_mut().unwrap() {
                if c["name"] == "aws-node" {
                    c["env"].as_array_mut().unwrap().push(env.clone());
                }
            }
        };
        edit(dir.path(), "kubernetes/daemonsets.json", |doc| {
            for ds in doc["items"].as_array_mut().unwrap() {
                if ds["metadata"]["name"] == "aws-node" {
                    add_env(&mut ds["spec"]["template"]["spec"]);
                }
            }
        });
        edit(dir.path(), "kubernetes/pods.json", |doc| {
            for p in doc["items"].as_array_mut().unwrap() {
                add_env(&mut p["spec"]);
            }
        });
        let enis = format!("ipamd/{H1}/enis.json");
        if *card1 {
            edit(dir.path(), &enis, |doc| {
                let addr = |ip: &str, pod: Option<&str>| {
                    let (key, meta) = match pod {
                        Some(p) => (
                            json!({"networkName": "aws-cni", "containerID": "", "ifName": ""}),
                            json!({"k8sPodNamespace": "ml", "k8sPodName": p, "interfacesCount": 1}),
                        ),
                        None => (
                            json!({"networkName": "", "containerID": "", "ifName": ""}),
                            json!({}),
                        ),
                    };
                    json!({"Address": ip, "IPAMKey": key, "IPAMMetadata": meta,
                           "AssignedTime": "2026-08-25T10:00:00Z", "UnassignedTime": "0001-01-01T00:00:00Z"})
                };
                let cidr = |ip: &str, pod: Option<&str>| {
                    json!({"Cidr": {"IP": ip, "Mask": "/////w=="},
                           "IPAddresses": if pod.is_some() { json!({ip: addr(ip, pod)}) } else { json!({}) },
                           "IsPrefix": false, "AddressFamily": ""})
                };
                doc["1"] = json!({"TotalIPs": 3, "AssignedIPs": 1, "ENIs": {"eni-0c1d2e3f4a5b6c7d8": {
                    "ID": "eni-0c1d2e3f4a5b6c7d8", "IsPrimary": false, "IsTrunk": false, "IsEFA": false, "DeviceNumber": 1,
                    "AvailableIPv4Cidrs": {
                        "10.0.24.10/32": cidr("10.0.24.10", Some("trainer-0")),
                        "10.0.24.11/32": cidr("10.0.24.11", None),
                        "10.0.24.12/32": cidr("10.0.24.12", None)},
                    "IPv6Cidrs": {}, "IsExcludedForPodIPs": false, "RouteTableID": 10101,
                    "SubnetID": "subnet-0c1f5e8a2b7d34a91"}}});
            });
        }
        if !*agent {
            std::fs::remove_file(dir.path().join(&enis)).unwrap();
        }
        let v = diagnose_json(dir.path());
        let n = node_of(&v, H1);
        assert_eq!(n["pod_ip_capacity"], *capacity, "{what}");
        let got_ips = if n["ips"].is_null() {
            json!(null)
        } else {
            json!([n["ips"]["total"], n["ips"]["assigned"]])
        };
        assert_eq!(got_ips, *ips, "{what}");
        let got_cards = match n.get("network_cards") {
            None => json!(null),
            Some(c) => json!(c
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["index"].clone())
                .collect::<Vec<_>>()),
        };
        assert_eq!(got_cards, *cards, "{what}");
        if *card1 {
            let c1 = &n["network_cards"][1];
            assert_eq!(
                (&c1["pod_ip_capacity"], &c1["growth_at_zero_free"]),
                (&json!(392), &json!("assigns_ips")),
                "{what}"
            );
        }
    }
}

/// The VPC resource controller's own events through `diagnose --bundle`
/// (issue 15 item 3): kubectl's events.json of the healthy bundle (captured
/// 12:30:21) gains the controller's Warning events, as
/// amazon-vpc-resource-controller-k8s b8d425119bdb writes them
/// (pkg/provider/branch/provider.go). Per row: the event (reason, object,
/// last seen), whether H1 advertises branch ENIs, pods refused; then the
/// findings.
#[test]
fn resource_controller_events_table() {
    let event = |reason: &str, kind: &str, name: &str, ns: &str, last: &str| {
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.18a7f2c3d4e5b6a7"), "namespace": if ns.is_empty() { "default" } else { ns }},
            "involvedObject": {"kind": kind, "name": name, "namespace": ns, "uid": name, "apiVersion": "v1"},
            "reason": reason,
            "message": if reason == "TrunkENICreationFailed" {
                "Failed to create trunk interface: Error Code: UnauthorizedOperation: Please verify the cluster IAM role has AmazonEKSVPCResourceController policy"
            } else {
                "failed to allocate branch ENI to pod: InsufficientFreeAddressesInSubnet: There are not enough free addresses in subnet"
            },
            "source": {"component": "vpc-resource-controller"}, "type": "Warning",
            "firstTimestamp": "2026-08-25T12:05:00Z", "lastTimestamp": last, "count": 6,
            "reportingComponent": "vpc-resource-controller", "reportingInstance": ""
        })
    };
    type Row = (
        &'static str,
        Value,
        Option<&'static str>,
        usize,
        Vec<(&'static str, &'static str, &'static str)>,
    );
    let waiting = "payments-waiting";
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("trunk failed: warning on H1", event("TrunkENICreationFailed", "Node", H1, "", "2026-08-25T12:29:00Z"), None, 0,
         vec![("BranchEniExhausted", "warning", H1)]),
        ("trunk failed, pods refused: critical on H1, not cluster-wide", event("TrunkENICreationFailed", "Node", H1, "", "2026-08-25T12:29:00Z"), None, 1,
         vec![("BranchEniExhausted", "critical", H1)]),
        ("trunk failed long ago", event("TrunkENICreationFailed", "Node", H1, "", "2026-08-25T09:00:00Z"), None, 0, vec![]),
        ("trunk failed, but H1 advertises branch ENIs now", event("TrunkENICreationFailed", "Node", H1, "", "2026-08-25T12:29:00Z"), Some("9"), 0, vec![]),
        ("a waiting pod got no branch ENI: critical on its node", event("BranchAllocationFailed", "Pod", waiting, "payments", "2026-08-25T12:29:30Z"), Some("9"), 0,
         vec![("BranchEniExhausted", "critical", H1)]),
        ("a pod that runs by now", event("BranchAllocationFailed", "Pod", "payments-0", "payments", "2026-08-25T12:29:30Z"), Some("9"), 0, vec![]),
    ];
    for (what, ev, allocatable, refused, want) in rows {
        let dir = bundle(allocatable, 1, refused);
        edit(dir.path(), "kubernetes/pods.json", |doc| {
            // Scheduled on H1, no IP yet: what a failed branch allocation leaves.
            let mut p = sgp_pod(waiting, Some(H1), "Pending", None);
            p["status"].as_object_mut().unwrap().remove("podIP");
            p["status"]["containerStatuses"] = json!([{"name": "api", "ready": false, "restartCount": 0,
                "image": "payments:1.4", "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]);
            doc["items"].as_array_mut().unwrap().push(p);
        });
        edit(dir.path(), "kubernetes/events.json", |doc| {
            doc["items"].as_array_mut().unwrap().push(ev);
        });
        let v = diagnose_json(dir.path());
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(c, s, n)| (c.to_string(), s.to_string(), n.to_string()))
            .collect();
        assert_eq!(vpc_findings(&v), want, "{what}");
    }
}
