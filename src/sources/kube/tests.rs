//! Unit tests of the Kubernetes wire types and conversions.

use super::*;

fn karpenter_deployment(env: &str, args: &str) -> KWorkload {
    serde_json::from_str(&format!(
        r#"{{"metadata":{{"name":"karpenter","namespace":"kube-system",
           "labels":{{"app.kubernetes.io/name":"karpenter"}}}},
           "spec":{{"template":{{"spec":{{"containers":[{{"name":"controller",
           "image":"public.ecr.aws/karpenter/controller:1.14.1","args":[{args}],"env":[{env}]}}]}}}}}}}}"#
    ))
    .expect("deployment JSON")
}

fn aws_node_pod(name: &str, node: &str, phase: &str, created: &str, warm: &str) -> KPod {
    serde_json::from_str(&format!(
        r#"{{"metadata":{{"name":"{name}","namespace":"kube-system","creationTimestamp":"{created}",
           "ownerReferences":[{{"apiVersion":"apps/v1","kind":"DaemonSet","name":"aws-node","uid":"x"}}]}},
           "spec":{{"nodeName":"{node}","containers":[{{"name":"aws-node","env":[
             {{"name":"MINIMUM_IP_TARGET","value":"25"}},{{"name":"WARM_IP_TARGET","value":"{warm}"}}]}}]}},
           "status":{{"phase":"{phase}"}}}}"#
    ))
    .expect("pod JSON")
}

/// Issue 14 item 8: an evicted (Failed) aws-node pod listed after the
/// running one used to give the node its old env.
#[test]
fn a_node_takes_its_running_aws_node_pod_never_a_terminated_one() {
    let running = aws_node_pod(
        "aws-node-new",
        "n1",
        "Running",
        "2026-08-25T10:00:00Z",
        "10",
    );
    let evicted = aws_node_pod("aws-node-old", "n1", "Failed", "2026-08-20T10:00:00Z", "0");
    for order in [[&running, &evicted], [&evicted, &running]] {
        let chosen = aws_node_pod_per_node(order.iter().copied());
        assert_eq!(chosen["n1"].metadata.name.as_deref(), Some("aws-node-new"));
    }
    // Two live pods (a rollout): the running one, then the newest.
    let pending = aws_node_pod(
        "aws-node-next",
        "n1",
        "Pending",
        "2026-08-25T11:00:00Z",
        "5",
    );
    let chosen = aws_node_pod_per_node([&pending, &running]);
    assert_eq!(chosen["n1"].metadata.name.as_deref(), Some("aws-node-new"));
    let newer = aws_node_pod(
        "aws-node-newer",
        "n1",
        "Running",
        "2026-08-25T12:00:00Z",
        "5",
    );
    let chosen = aws_node_pod_per_node([&newer, &running]);
    assert_eq!(
        chosen["n1"].metadata.name.as_deref(),
        Some("aws-node-newer")
    );
    // Only terminated pods: the node has no aws-node env of its own.
    assert!(aws_node_pod_per_node([&evicted]).is_empty());
}

/// Issue 14 item 11: Karpenter reads RESERVED_ENIS with strconv.Atoi,
/// which does not trim: `" 1"` is invalid and Karpenter silently uses 0
/// (we used to trim it and report 1, hiding incident 1).
#[test]
fn reserved_enis_is_read_as_karpenter_reads_it() {
    let k = |env: &str, args: &str| {
        let state = karpenter_controller(&[karpenter_deployment(env, args)]).unwrap();
        crate::model::analysis::karpenter_analysis(&state, &ConfigMaps::new()).reserved_enis
    };
    assert_eq!(k(r#"{"name":"RESERVED_ENIS","value":" 1"}"#, ""), Some(0));
    assert_eq!(k(r#"{"name":"RESERVED_ENIS","value":"1"}"#, ""), Some(1));
    assert_eq!(k("", ""), Some(0));
    assert_eq!(k(r#"{"name":"RESERVED_ENIS","value":"-1"}"#, ""), None);
    assert_eq!(
        k(
            r#"{"name":"RESERVED_ENIS","value":"0"}"#,
            r#""--reserved-enis=1""#
        ),
        Some(1)
    );
    let from = r#"{"name":"RESERVED_ENIS","valueFrom":{"configMapKeyRef":{"name":"k","key":"r"}}}"#;
    assert_eq!(k(from, ""), None, "not read: unknown");
    assert_eq!(k(from, r#""--reserved-enis=2""#), Some(2), "the flag wins");
}

/// The node's shape comes from its labels (docs/design.md section 8).
#[test]
fn node_shape_from_labels() {
    let shape = |labels: serde_json::Value| {
        let n: KNode = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n", "labels": labels}, "status": {}
        }))
        .unwrap();
        let s = n.to_state(&HashSet::new(), &HashSet::new());
        (s.compute_type, s.os)
    };
    assert_eq!(
        shape(serde_json::json!({})),
        (ComputeType::Ec2, NodeOs::Linux)
    );
    assert_eq!(
        shape(
            serde_json::json!({"eks.amazonaws.com/compute-type": "auto", "kubernetes.io/os": "linux"})
        ),
        (ComputeType::Auto, NodeOs::Linux)
    );
    assert_eq!(
        shape(serde_json::json!({"eks.amazonaws.com/compute-type": "fargate"})).0,
        ComputeType::Fargate
    );
    assert_eq!(
        shape(serde_json::json!({"eks.amazonaws.com/compute-type": "hybrid"})).0,
        ComputeType::Hybrid
    );
    assert_eq!(
        shape(serde_json::json!({"kubernetes.io/os": "windows"})).1,
        NodeOs::Windows
    );
    assert_eq!(
        shape(serde_json::json!({"eks.amazonaws.com/compute-type": "x\u{1b}[31m"})).0,
        ComputeType::Other
    );
}

/// The wire forms of `valueFrom` and `envFrom` become the spec the
/// model resolves; a Secret's name is not kept.
#[test]
fn env_references_are_kept_as_references() {
    use crate::model::env::EnvValue;
    let c: KContainer = serde_json::from_value(serde_json::json!({
        "name": "aws-node",
        "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a", "optional": true}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s3cr3t-name", "key": "b"}}},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "D"},
            {"name": "E", "value": "5", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}}
        ],
        "envFrom": [
            {"configMapRef": {"name": "all"}, "prefix": "P_"},
            {"secretRef": {"name": "s3cr3t-name", "optional": true}}
        ]
    }))
    .unwrap();
    let e = c.container_env("kube-system");
    assert_eq!(
        e.env.iter().map(|v| v.value.clone()).collect::<Vec<_>>(),
        vec![
            EnvValue::ConfigMapKey {
                name: "cm".into(),
                key: "a".into(),
                optional: true
            },
            EnvValue::Unread("secretKeyRef"),
            EnvValue::Unread("fieldRef"),
            EnvValue::Literal(String::new()),
            EnvValue::Literal("5".into()),
        ]
    );
    assert_eq!(
        e.env_from,
        vec![
            EnvFrom {
                config_map: Some("all".into()),
                prefix: "P_".into(),
                optional: false
            },
            EnvFrom {
                config_map: None,
                prefix: String::new(),
                optional: true
            },
        ]
    );
    assert!(!format!("{c:?}").contains("s3cr3t-name"), "{c:?}");
}

#[test]
fn uuid_keys() {
    assert_eq!(
        parse_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
        Some(0x0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0)
    );
    assert_eq!(
        parse_uuid("0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"),
        Some(0x0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0)
    );
    for bad in [
        "",
        "not-a-uid",
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f",
        "0f1e2d3c44b5a-6978-8796-a5b4c3d2e1f0",
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg",
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1é",
    ] {
        assert_eq!(parse_uuid(bad), None, "{bad}");
    }
    let pod = |uid: Option<&str>, name: &str| -> KPodSlim {
        let mut v = serde_json::json!({"metadata": {"namespace": "ns", "name": name}});
        if let Some(u) = uid {
            v["metadata"]["uid"] = u.into();
        }
        serde_json::from_value(v).unwrap()
    };
    let a = pod(Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), "a");
    assert_eq!(a.key(), 0x0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0);
    // Without a UUID: stable per pod, distinct between pods.
    assert_eq!(pod(None, "a").key(), pod(None, "a").key());
    assert_ne!(pod(None, "a").key(), pod(None, "b").key());
    assert_ne!(pod(Some("x"), "a").key(), pod(Some("y"), "a").key());
}

#[test]
fn interner_shares_and_forgets() {
    let mut i: Interner = Interner::default();
    let a = i.get("kube-system");
    let b = i.get("kube-system");
    assert!(Arc::ptr_eq(&a, &b));
    let c = i.get("default");
    assert_eq!(i.len(), 2);
    drop(c);
    i.sweep();
    assert_eq!(i.len(), 1, "unused strings are dropped");
    assert_eq!(&*i.get("kube-system"), "kube-system");
}

#[test]
fn nodeclaim_keeps_three_fields_and_tolerates_odd_types() {
    let nc: KNodeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "default-x7k2p"},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                 "requirements": [{"key": "a", "operator": "In", "values": ["b"]}]},
        "status": {"nodeName": "ip-10-0-1-2.ec2.internal", "capacity": {"cpu": "4", "pods": "58"},
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })).unwrap();
    let st = nc.to_state();
    assert_eq!(st.name, "default-x7k2p");
    assert_eq!(st.nodeclass.as_deref(), Some("default"));
    assert_eq!(st.nodeclass_group.as_deref(), Some("karpenter.k8s.aws"));
    assert_eq!(st.node_name.as_deref(), Some("ip-10-0-1-2.ec2.internal"));
    assert_eq!(st.capacity_pods, Some(58));
    // Odd types make a field unknown, not the object unreadable.
    let odd: KNodeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "odd"},
        "spec": {"nodeClassRef": "default"},
        "status": {"nodeName": 7, "capacity": {"pods": 58}}
    }))
    .unwrap();
    let st = odd.to_state();
    assert_eq!(
        (st.nodeclass, st.node_name, st.capacity_pods),
        (None, None, None)
    );
    let null: KNodeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "n"}, "spec": null, "status": null
    }))
    .unwrap();
    assert_eq!(null.to_state().capacity_pods, None);
}

#[test]
fn compact_map_answers_like_the_btreemap_it_came_from() {
    let cases: Vec<BTreeMap<String, String>> = vec![
        BTreeMap::new(),
        [("", "")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
        [
            ("a", "1"),
            ("ab", ""),
            ("a/b", "ü→"),
            ("topology.kubernetes.io/zone", "us-west-2a"),
            ("k8s.amazonaws.com/eniConfig", "us-west-2a-pods"),
            ("z", "last"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect(),
        (0..40)
            .map(|i| (format!("key-{i:02}"), "v".repeat(i)))
            .collect(),
    ];
    for m in cases {
        let c = CompactMap::from(m.clone());
        assert_eq!(c.len(), m.len());
        assert_eq!(c.is_empty(), m.is_empty());
        let back: Vec<(String, String)> = c.iter().map(|(k, v)| (k.into(), v.into())).collect();
        let want: Vec<(String, String)> = m.clone().into_iter().collect();
        assert_eq!(back, want);
        for (k, v) in &m {
            assert_eq!(c.get(k), Some(v.as_str()), "key {k:?}");
        }
        for miss in ["", "a/", "aa", "b", "key-40", "zz", "key-0"] {
            assert_eq!(
                c.get(miss),
                m.get(miss).map(String::as_str),
                "miss {miss:?}"
            );
        }
    }
}

#[test]
fn node_keeps_what_to_state_reads() {
    let n: KNode = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ip-10-0-1-2.us-west-2.compute.internal", "uid": "u1", "resourceVersion": "7",
                     "labels": {"node.kubernetes.io/instance-type": "m5.large", "topology.kubernetes.io/zone": "us-west-2a",
                                "karpenter.sh/nodepool": "default", "team": "x"},
                     "annotations": {"k8s.amazonaws.com/eniConfig": "pods-a", "other": "y"},
                     "managedFields": [{"manager": "kubelet"}]},
        "spec": {"providerID": "aws:///us-west-2a/i-0b2c3d4e5f6a78901",
                 "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "2", "pods": "29"},
                   "addresses": [{"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "10.0.1.2"}],
                   "images": [{"names": ["a"], "sizeBytes": 1}]}
    }))
    .unwrap();
    assert_eq!(n.metadata.resource_version.as_deref(), Some("7"));
    assert!(n.metadata.labels.is_none() && n.metadata.annotations.is_none());
    let keys = HashSet::from(["team".to_string()]);
    let st = n.to_state(&keys, &HashSet::new());
    assert_eq!(st.name, "ip-10-0-1-2.us-west-2.compute.internal");
    assert_eq!(st.instance_type.as_deref(), Some("m5.large"));
    assert_eq!(st.zone.as_deref(), Some("us-west-2a"));
    assert_eq!(st.instance_id.as_deref(), Some("i-0b2c3d4e5f6a78901"));
    assert_eq!(st.nodepool.as_deref(), Some("default"));
    assert_eq!(st.capacity_pods, Some(29));
    assert!(st.unschedulable);
    assert_eq!(st.internal_ip.as_deref(), Some("10.0.1.2"));
    assert_eq!(st.labels.get("team").map(String::as_str), Some("x"));
    assert_eq!(st.labels.len(), 1);
    assert_eq!(
        st.annotations
            .get("k8s.amazonaws.com/eniConfig")
            .map(String::as_str),
        Some("pods-a")
    );
    assert_eq!(st.annotations.len(), 1);
    // A quantity of another type is an error (bundles name the file).
    let odd =
        serde_json::json!({"metadata": {"name": "odd"}, "status": {"capacity": {"pods": 29}}});
    assert!(serde_json::from_value::<KNode>(odd).is_err());
    let bare: KNode =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "bare"}})).unwrap();
    let st = bare.to_state(&HashSet::new(), &HashSet::new());
    assert_eq!(
        (st.capacity_pods, st.unschedulable, st.zone),
        (None, false, None)
    );
    // No metadata is not a node.
    assert!(serde_json::from_value::<KNode>(serde_json::json!({"spec": {}})).is_err());
}

#[test]
fn provider_id_parsing() {
    assert_eq!(
        parse_provider_id("aws:///us-west-2a/i-0b2c3d4e5f6a78901"),
        (
            Some("us-west-2a".into()),
            Some("i-0b2c3d4e5f6a78901".into())
        )
    );
    assert_eq!(parse_provider_id("gce://p/z/n").1, None);
    assert_eq!(parse_provider_id("aws:///fargate-ip-1"), (None, None));
    assert_eq!(parse_provider_id(""), (None, None));
}

#[test]
fn sandbox_failures_need_the_ip_message() {
    let ev = |reason: &str, msg: &str| -> KEvent {
        serde_json::from_value(serde_json::json!({
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1"},
            "reason": reason, "message": msg, "source": {"host": "node-a"},
            "lastTimestamp": "2026-08-25T12:25:00Z", "count": 3
        }))
        .unwrap()
    };
    let f = ev(
        "FailedCreatePodSandBox",
        "Failed to create pod sandbox: ... plugin type=\"aws-cni\" name=\"aws-cni\" failed (add): add cmd: failed to assign an IP address to container",
    )
    .sandbox_ip_failure()
    .unwrap();
    assert_eq!(
        (f.pod.as_str(), f.node.as_deref(), f.count),
        ("web-1", Some("node-a"), 3)
    );
    assert!(ev(
        "FailedCreatePodSandBox",
        "add cmd: Error received from AddNetwork gRPC call: connection refused"
    )
    .sandbox_ip_failure()
    .is_none());
    assert!(ev("FailedScheduling", IP_ASSIGN_FAILURE)
        .sandbox_ip_failure()
        .is_none());
}

#[test]
fn node_class_max_pods_int_or_expression() {
    let nc = |kubelet: serde_json::Value| -> Result<NodeClassState, String> {
        serde_json::from_value::<KNodeClass>(serde_json::json!({
            "metadata": {"name": "default"},
            "spec": {"kubelet": kubelet, "amiSelectorTerms": [{"alias": "bottlerocket@latest"}]}
        }))
        .unwrap()
        .to_state()
    };
    assert_eq!(
        nc(serde_json::json!({"maxPods": 42})).unwrap().max_pods,
        Some(MaxPodsSetting::Fixed(42))
    );
    assert_eq!(
        nc(serde_json::json!({"maxPods": "vcpus * 8"}))
            .unwrap()
            .max_pods,
        Some(MaxPodsSetting::Expression("vcpus * 8".into()))
    );
    assert_eq!(
        nc(serde_json::json!({})).unwrap().ami_family,
        AmiFamily::Bottlerocket
    );
    assert!(nc(serde_json::json!({"maxPods": -1})).is_err());
    assert!(nc(serde_json::json!({"maxPods": [1]})).is_err());
}

/// `capture` writes the slim types back (serde `Serialize`, or by hand for
/// nodes and NodeClaims); reading what it wrote must give the same object,
/// for every object of every bundle in the repository.
#[test]
fn every_slim_type_reads_back_what_it_writes() {
    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug>(
        file: &std::path::Path,
    ) -> usize {
        let text = std::fs::read_to_string(file).unwrap();
        let list: Value = serde_json::from_str(&text).unwrap();
        let items = list["items"].as_array().unwrap();
        for item in items {
            let once: T = serde_json::from_value(item.clone()).unwrap();
            let written = serde_json::to_value(&once).unwrap();
            let twice: T = serde_json::from_value(written.clone())
                .unwrap_or_else(|e| panic!("{}: {e}: {written}", file.display()));
            assert_eq!(
                format!("{once:?}"),
                format!("{twice:?}"),
                "{} wrote {written}",
                file.display()
            );
        }
        items.len()
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("tests/bundles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.push(root.join("bundles/demo"));
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for dir in dirs {
        for (name, n) in [
            (
                "nodes.json",
                round_trip::<KNode> as fn(&std::path::Path) -> usize,
            ),
            ("pods.json", round_trip::<KPod>),
            ("pods.json", round_trip::<KPodSlim>),
            ("daemonsets.json", round_trip::<KDaemonSet>),
            ("deployments.json", round_trip::<KDeployment>),
            ("events.json", round_trip::<KEvent>),
            ("nodeclaims.json", round_trip::<KNodeClaim>),
            ("ec2nodeclasses.json", round_trip::<KNodeClass>),
            ("nodeclasses.json", round_trip::<KAutoNodeClass>),
            ("eniconfigs.json", round_trip::<KEniConfig>),
            ("configmaps.json", round_trip::<KConfigMap>),
        ] {
            let file = dir.join("kubernetes").join(name);
            if file.is_file() {
                *seen.entry(name).or_default() += n(&file);
            }
        }
    }
    for name in [
        "nodes.json",
        "pods.json",
        "daemonsets.json",
        "events.json",
        "nodeclaims.json",
    ] {
        assert!(
            seen.get(name).copied().unwrap_or(0) > 0,
            "no {name} objects checked: {seen:?}"
        );
    }
}

/// A Secret reference is written back as a bare `{}`: it stays "unread",
/// and what it named was never stored, so it cannot leak into a bundle.
#[test]
fn secret_references_are_written_without_what_they_name() {
    let pod: KPod = serde_json::from_str(
        r#"{"metadata":{"name":"aws-node-1","namespace":"kube-system","labels":{"k8s-app":"aws-node"}},
            "spec":{"nodeName":"n1","containers":[{"name":"aws-node","env":[
              {"name":"WARM_IP_TARGET","valueFrom":{"secretKeyRef":{"name":"s3cr3t-name","key":"k3y"}}}],
              "envFrom":[{"secretRef":{"name":"other-s3cr3t"}}]}]}}"#,
    )
    .unwrap();
    let text = serde_json::to_string(&pod).unwrap();
    assert!(!text.contains("s3cr3t") && !text.contains("k3y"), "{text}");
    let back: KPod = serde_json::from_str(&text).unwrap();
    let env = back.aws_node_env().expect("aws-node env");
    let unread = env
        .env
        .iter()
        .find(|v| v.name == "WARM_IP_TARGET")
        .map(|v| v.value.clone());
    assert_eq!(
        unread,
        Some(crate::model::env::EnvValue::Unread("secretKeyRef")),
        "{text}"
    );
}

/// A pod as the VPC resource controller's webhook leaves it (request and
/// limit of 1 on the first container) and as the scheduler marks it when
/// refused: both readers (full and slim) see the same request and refusal,
/// and both survive `capture`'s write-back.
#[test]
fn vpc_requests_and_refusals_from_the_wire() {
    let text = r#"{"metadata":{"name":"web-7","namespace":"shop","uid":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
        "spec":{"containers":[
            {"name":"app","resources":{"requests":{"cpu":"250m","memory":"1Gi","vpc.amazonaws.com/pod-eni":"1"},
                                       "limits":{"vpc.amazonaws.com/pod-eni":"1"}}},
            {"name":"envoy","resources":{"requests":{"cpu":"100m"}}}],
          "initContainers":[{"name":"log","restartPolicy":"Always",
            "resources":{"requests":{"vpc.amazonaws.com/PrivateIPv4Address":"1"}}}]},
        "status":{"phase":"Pending","conditions":[
            {"type":"PodScheduled","status":"False","reason":"Unschedulable","lastTransitionTime":"2026-08-25T12:00:00Z",
             "message":"0/4 nodes are available: 4 Insufficient vpc.amazonaws.com/pod-eni. preemption: 0/4 nodes are available: 4 No preemption victims found for incoming pod."},
            {"type":"Ready","status":"False"}]}}"#;
    let full: KPod = serde_json::from_str(text).unwrap();
    let slim: KPodSlim = serde_json::from_str(text).unwrap();
    let want_req = PerResource {
        pod_eni: Some(1),
        private_ipv4: Some(1),
    };
    let want_refused = PerResource {
        pod_eni: true,
        private_ipv4: false,
    };
    for st in [full.to_state(), slim.to_state()] {
        assert_eq!(st.vpc_requests, want_req);
        assert_eq!(st.refused_for, want_refused);
    }
    // The slim pod keeps only the containers with VPC requests, and only them.
    assert_eq!(slim.spec.containers.len(), 1);
    let written = serde_json::to_string(&slim).unwrap();
    assert!(
        !written.contains("cpu") && !written.contains("Ready"),
        "{written}"
    );
    for back in [
        serde_json::from_str::<KPod>(&written).unwrap().to_state(),
        serde_json::from_str::<KPodSlim>(&written)
            .unwrap()
            .to_state(),
    ] {
        assert_eq!(
            (back.vpc_requests, back.refused_for),
            (want_req, want_refused)
        );
    }
}

#[test]
fn node_vpc_allocatable_read_and_written_back() {
    let node: KNode = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "n1"},
        "status": {"capacity": {"pods": "29", "vpc.amazonaws.com/pod-eni": "9"},
                   "allocatable": {"cpu": "1930m", "pods": "29", "vpc.amazonaws.com/pod-eni": "9",
                                   "vpc.amazonaws.com/PrivateIPv4Address": "1.5"}}
    }))
    .unwrap();
    let st = node.to_state(&HashSet::new(), &HashSet::new());
    // A quantity that is not a count is unknown, not rounded.
    assert_eq!(
        st.vpc_allocatable,
        PerResource {
            pod_eni: Some(9),
            private_ipv4: None
        }
    );
    let back: KNode = serde_json::from_str(&serde_json::to_string(&node).unwrap()).unwrap();
    assert_eq!(back.to_state(&HashSet::new(), &HashSet::new()), st);
}

/// Events and the condition as the EKS node monitoring agent writes them
/// (`pkg/manager/node_exporter.go` at 51af5494fde6: reason = the condition
/// type, message `"<issue>: <text>"`, on the Node; the Fatal path sets the
/// condition False with the issue as reason).
#[test]
fn node_monitoring_agent_signals_from_the_wire() {
    let ev: KEvent = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "i-0abc.18a1f2b3c4d5e6f7", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": "i-0abc", "uid": "i-0abc"},
        "reason": "NetworkingReady",
        "message": "IPAMDNoIPs: There are no available IP addresses for IPAMD to assign to pods",
        "source": {"component": "eks-node-monitoring-agent", "host": "i-0abc"},
        "type": "Warning", "count": 3, "lastTimestamp": "2026-08-25T12:20:00Z"
    }))
    .unwrap();
    let e = ev.networking_event().expect("a networking event");
    assert_eq!(
        (e.node.as_str(), e.issue.as_str(), e.count),
        ("i-0abc", "IPAMDNoIPs", 3)
    );
    assert_eq!(e.last_seen, Some("2026-08-25T12:20:00Z".parse().unwrap()));
    // Not the agent's: another reason, a pod, a message without an issue name.
    for (reason, kind, message) in [
        ("FailedCreatePodSandBox", "Node", "IPAMDNoIPs: x"),
        ("NetworkingReady", "Pod", "IPAMDNoIPs: x"),
        ("NetworkingReady", "Node", "no issue name here"),
    ] {
        let mut v = serde_json::to_value(&ev).unwrap();
        v["reason"] = reason.into();
        v["involvedObject"]["kind"] = kind.into();
        v["message"] = message.into();
        let other: KEvent = serde_json::from_value(v).unwrap();
        assert!(
            other.networking_event().is_none(),
            "{reason} {kind} {message}"
        );
    }
    let node: KNode = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "i-0abc", "labels": {"eks.amazonaws.com/compute-type": "auto"}},
        "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
            {"type": "NetworkingReady", "status": "False", "reason": "IPAMDNotRunning",
             "message": "The Amazon VPC CNI process was not found to be running."}]}
    }))
    .unwrap();
    let st = node.to_state(&HashSet::new(), &HashSet::new());
    let c = st.networking_ready.clone().expect("NetworkingReady kept");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some("IPAMDNotRunning"))
    );
    let back: KNode = serde_json::from_str(&serde_json::to_string(&node).unwrap()).unwrap();
    assert_eq!(back.to_state(&HashSet::new(), &HashSet::new()), st);
}

/// The spec shape of the EKS user guide's NodeClass
/// (`latest/ug/automode/create-node-class.adoc` at 013856044148).
#[test]
fn auto_nodeclass_keeps_its_subnet_terms() {
    let c: KAutoNodeClass = serde_json::from_value(serde_json::json!({
        "apiVersion": "eks.amazonaws.com/v1", "kind": "NodeClass",
        "metadata": {"name": "private-compute"},
        "spec": {
            "role": "MyNodeRole",
            "subnetSelectorTerms": [
                {"tags": {"Name": "private-subnet", "kubernetes.io/role/internal-elb": "1"}},
                {"id": "subnet-0123456789abcdef0"}
            ],
            "securityGroupSelectorTerms": [{"tags": {"Name": "eks-cluster-sg"}}],
            "podSubnetSelectorTerms": [{"tags": {"Name": "pod-subnet", "kubernetes.io/role/pod": "1"}}],
            "podSecurityGroupSelectorTerms": [{"tags": {"Name": "eks-pod-sg"}}],
            "ephemeralStorage": {"size": "80Gi"}
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap();
    let st = c.to_state().unwrap();
    let tags = |p: &[(&str, &str)]| {
        SubnetSelectorTerm::Tags(
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    assert_eq!(st.name, "private-compute");
    assert_eq!(
        st.subnet_terms,
        [
            tags(&[
                ("Name", "private-subnet"),
                ("kubernetes.io/role/internal-elb", "1")
            ]),
            SubnetSelectorTerm::Id("subnet-0123456789abcdef0".into())
        ]
    );
    assert_eq!(
        st.pod_subnet_terms,
        [tags(&[
            ("Name", "pod-subnet"),
            ("kubernetes.io/role/pod", "1")
        ])]
    );
    // Only the terms survive the slim cache.
    let wire = serde_json::to_value(&c).unwrap();
    assert!(wire["spec"].get("role").is_none() && wire.get("status").is_none());
    let back: KAutoNodeClass = serde_json::from_value(wire).unwrap();
    assert_eq!(back.to_state().unwrap(), st);
    // An id term wins over its tags (getFilterSets); no pod terms is none.
    let c: KAutoNodeClass = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "x"},
        "spec": {"subnetSelectorTerms": [{"id": "subnet-1", "tags": {"a": "b"}}]}
    }))
    .unwrap();
    let st = c.to_state().unwrap();
    assert_eq!(st.subnet_terms, [SubnetSelectorTerm::Id("subnet-1".into())]);
    assert!(st.pod_subnet_terms.is_empty());
    // Refused, with the class and the term named.
    for (spec, want) in [
        (
            serde_json::json!({"podSubnetSelectorTerms": [{}]}),
            "NodeClass bad: spec.podSubnetSelectorTerms [0] has neither an id nor tags",
        ),
        (
            serde_json::json!({"subnetSelectorTerms": {"id": "subnet-1"}}),
            "NodeClass bad: spec.subnetSelectorTerms is not a list",
        ),
        (
            serde_json::json!({"subnetSelectorTerms": [{"tags": {"a": 1}}]}),
            "NodeClass bad: spec.subnetSelectorTerms [0].tags.a is not a string",
        ),
    ] {
        let c: KAutoNodeClass =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "bad"}, "spec": spec}))
                .unwrap();
        assert_eq!(c.to_state().unwrap_err(), want);
    }
}

/// Events as the VPC resource controller's recorder writes them
/// (amazon-vpc-resource-controller-k8s b8d425119bdb: source component
/// `vpc-resource-controller`, pkg/provider/branch/provider.go reasons and
/// messages; the node event's involvedObject uid is the node name,
/// pkg/utils/events.go).
#[test]
fn resource_controller_events_are_recognised() {
    let ev = |reason: &str,
              kind: &str,
              ns: Option<&str>,
              name: &str,
              ty: &str,
              component: &str|
     -> KEvent {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{name}.17d2c3b4a5f6e7d8"), "namespace": ns.unwrap_or("default")},
            "involvedObject": {"kind": kind, "namespace": ns, "name": name, "uid": name, "apiVersion": "v1"},
            "reason": reason,
            "message": match reason {
                "TrunkENICreationFailed" => "Failed to create trunk interface: Error Code: UnauthorizedOperation: Please verify the cluster IAM role has AmazonEKSVPCResourceController policy",
                _ => "failed to allocate branch ENI to pod: InsufficientFreeAddressesInSubnet",
            },
            "source": {"component": component},
            "firstTimestamp": "2026-08-25T12:01:00Z", "lastTimestamp": "2026-08-25T12:04:00Z",
            "count": 4, "type": ty, "reportingComponent": component, "reportingInstance": ""
        }))
        .unwrap()
    };
    const RC: &str = "vpc-resource-controller";
    let node = "ip-10-0-44-120.us-west-2.compute.internal";
    let t = ev("TrunkENICreationFailed", "Node", None, node, "Warning", RC)
        .resource_controller_event()
        .unwrap();
    assert_eq!(
        (t.reason, t.object.as_str(), t.count),
        (RcEventReason::TrunkEniCreationFailed, node, 4)
    );
    assert!(t.message.contains("UnauthorizedOperation"));
    let b = ev(
        "BranchAllocationFailed",
        "Pod",
        Some("payments"),
        "ledger-api-5f7b8c9d64-x2k9q",
        "Warning",
        RC,
    )
    .resource_controller_event()
    .unwrap();
    assert_eq!(
        (b.reason, b.namespace.as_str()),
        (RcEventReason::BranchAllocationFailed, "payments")
    );
    assert_eq!(b.last_seen, Some("2026-08-25T12:04:00Z".parse().unwrap()));
    // Not the controller's, not a Warning, the wrong object, or another reason: none.
    for e in [
        ev(
            "TrunkENICreationFailed",
            "Node",
            None,
            node,
            "Warning",
            "kubelet",
        ),
        ev("TrunkENICreationFailed", "Node", None, node, "Normal", RC),
        ev(
            "TrunkENICreationFailed",
            "Pod",
            Some("x"),
            "p",
            "Warning",
            RC,
        ),
        ev("NodeTrunkInitiated", "Node", None, node, "Warning", RC),
    ] {
        assert!(e.resource_controller_event().is_none(), "{:?}", e.reason);
    }
    // The capture keeps what the selector and the parser read.
    let e = ev(
        "BranchAllocationFailed",
        "Pod",
        Some("payments"),
        "p",
        "Warning",
        RC,
    );
    let back: KEvent = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
    assert_eq!(
        back.resource_controller_event(),
        e.resource_controller_event()
    );
}
