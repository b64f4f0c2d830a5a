//! Synthetic cluster objects, as the apiserver and ipamd serve them: realistic
//! size and shape (managedFields, status, tolerations, volumes), deterministic.
//! Shared by the scale harness (examples/scale) and the criterion benches.
#![allow(dead_code)]

use serde_json::{json, Value};

/// Instance types of the synthetic fleet (all in the embedded limits table),
/// weighted towards the sizes large clusters run.
pub const FLEET: &[(&str, u32)] = &[
    ("m5.xlarge", 4),
    ("m5.2xlarge", 4),
    ("m6i.2xlarge", 3),
    ("c5.2xlarge", 2),
    ("c6i.4xlarge", 2),
    ("r5.xlarge", 2),
    ("m5.4xlarge", 2),
    ("m6g.2xlarge", 1),
    ("c6g.4xlarge", 1),
    ("r6i.2xlarge", 1),
];

pub const ZONES: &[&str] = &["us-west-2a", "us-west-2b", "us-west-2c"];
pub const NAMESPACES: usize = 40;
pub const AGENT_NAMESPACE: &str = "eks-ipam-exporter";

/// SplitMix64: small, deterministic, good enough for picking a fleet.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub fn pick_type(rng: &mut Rng) -> &'static str {
    let total: u32 = FLEET.iter().map(|(_, w)| w).sum();
    let mut r = rng.below(total as u64) as u32;
    for (t, w) in FLEET {
        if r < *w {
            return t;
        }
        r -= w;
    }
    FLEET[0].0
}

/// One synthetic node: what EC2 knows of it and where its agent listens.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub index: usize,
    pub name: String,
    pub instance_id: String,
    pub instance_type: String,
    pub zone: String,
    pub subnet_id: String,
    pub private_ip: String,
    pub max_pods: u32,
    /// Address (ip:port) of this node's agent.
    pub agent_address: String,
}

impl NodeSpec {
    pub fn nodepool(&self) -> &'static str {
        if self.index.is_multiple_of(3) {
            "general"
        } else {
            "batch"
        }
    }
}

/// Node name from its private IP, as EKS names nodes.
pub fn node_name(ip: &str) -> String {
    format!("ip-{}.us-west-2.compute.internal", ip.replace('.', "-"))
}

/// ENIs x (IPs per ENI - 1) + 2: the EKS AMI's max-pods for secondary-IP mode.
pub fn eni_max_pods(instance_type: &str) -> u32 {
    eks_ipam_exporter::model::limits::embedded(instance_type)
        .map(|l| l.default_card_max_enis * (l.ipv4_per_eni - 1) + 2)
        .unwrap_or(29)
}

/// A loopback address per node (the whole 127/8 is local on Linux), so one
/// listener serves every agent and the exporter still sees N endpoints.
pub fn agent_ip(index: usize) -> String {
    let i = index + 1;
    format!("127.{}.{}.{}", 1 + (i >> 16) % 250, (i >> 8) & 255, i & 255)
}

const T0: &str = "2026-11-20T08:00:00Z";

fn managed_fields(manager: &str, sub: Option<&str>) -> Value {
    let mut m = json!({
        "manager": manager, "operation": "Update", "apiVersion": "v1", "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
            "f:ownerReferences": {".": {}, "k:{\"uid\":\"5d0c6e1e-8a1c-4f3e-9b0a-2f9d2c1b7a10\"}": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {},
                "f:name": {}, "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {},
                "f:containerPort": {}, "f:protocol": {}}}, "f:resources": {".": {}, "f:limits": {".": {}, "f:memory": {}},
                "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}}}}}}
    });
    if let Some(s) = sub {
        m["subresource"] = json!(s);
    }
    m
}

/// Graviton families (m6g, c7g, ...) are arm64.
fn arch(instance_type: &str) -> &'static str {
    if instance_type
        .split('.')
        .next()
        .is_some_and(|f| f.ends_with('g'))
    {
        "arm64"
    } else {
        "amd64"
    }
}

/// A Node as the apiserver returns it (labels, annotations, managedFields, status).
pub fn node(n: &NodeSpec) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": n.name, "uid": format!("00000000-0000-4000-8000-{:012x}", n.index),
            "resourceVersion": "__RV__", "creationTimestamp": T0,
            "labels": {
                "beta.kubernetes.io/arch": arch(&n.instance_type),
                "beta.kubernetes.io/instance-type": n.instance_type, "beta.kubernetes.io/os": "linux",
                "failure-domain.beta.kubernetes.io/region": "us-west-2", "failure-domain.beta.kubernetes.io/zone": n.zone,
                "k8s.io/cloud-provider-aws": "7d3f0a1b2c4e5f60718293a4b5c6d7e8", "karpenter.k8s.aws/ec2nodeclass": "default",
                "karpenter.sh/capacity-type": "on-demand", "karpenter.sh/initialized": "true", "karpenter.sh/registered": "true",
                "karpenter.sh/nodepool": n.nodepool(), "kubernetes.io/arch": arch(&n.instance_type), "kubernetes.io/hostname": n.name,
                "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": n.instance_type,
                "topology.k8s.aws/zone-id": "usw2-az1", "topology.kubernetes.io/region": "us-west-2",
                "topology.kubernetes.io/zone": n.zone
            },
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": n.private_ip, "karpenter.k8s.aws/ec2nodeclass-hash": "4021387659183246601",
                "karpenter.sh/nodepool-hash": "11954382610373297542", "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true"
            },
            "managedFields": [managed_fields("kubelet", None), managed_fields("karpenter", None), managed_fields("kubelet", Some("status"))]
        },
        "spec": {"providerID": format!("aws:///{}/{}", n.zone, n.instance_id),
                 "taints": []},
        "status": {
            "capacity": {"cpu": "8", "ephemeral-storage": "104845292Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                         "memory": "32386024Ki", "pods": n.max_pods.to_string()},
            "allocatable": {"cpu": "7910m", "ephemeral-storage": "95551679124", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                            "memory": "31371240Ki", "pods": n.max_pods.to_string()},
            "conditions": (["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"].iter().map(|t| json!({
                "type": t, "status": if *t == "Ready" { "True" } else { "False" }, "lastHeartbeatTime": T0,
                "lastTransitionTime": T0, "reason": format!("Kubelet{t}"), "message": "kubelet is posting ready status"})).collect::<Vec<_>>()),
            "addresses": [{"type": "InternalIP", "address": n.private_ip}, {"type": "InternalDNS", "address": n.name},
                          {"type": "Hostname", "address": n.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "ec2a1b2c3d4e5f60718293a4b5c6d7e8", "systemUUID": "ec2a1b2c-3d4e-5f60-7182-93a4b5c6d7e8",
                         "bootID": "5c0e7f3a-1b2d-4c5e-8f90-a1b2c3d4e5f6", "kernelVersion": "6.1.141-155.222.amzn2023.x86_64",
                         "osImage": "Amazon Linux 2023.8.20250808", "containerRuntimeVersion": "containerd://1.7.27",
                         "kubeletVersion": "v1.33.3-eks-3abbec1", "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": "amd64"},
            "images": ((0..12).map(|i| json!({"names": [format!("602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/image-{i}@sha256:{:064x}", i * 7919 + 13),
                                                       format!("602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/image-{i}:v1.{i}.0")],
                                             "sizeBytes": 31_000_000 + i * 1_000_000})).collect::<Vec<_>>())
        }
    })
}

/// An application pod (or a pending one, without IP).
pub fn pod(namespace: &str, name: &str, uid: u64, node: &NodeSpec, ip: Option<&str>) -> Value {
    let (phase, ready) = if ip.is_some() {
        ("Running", "True")
    } else {
        ("Pending", "False")
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace, "generateName": format!("{}-", &name[..name.len().saturating_sub(6)]),
            "uid": format!("10000000-0000-4000-8000-{uid:012x}"), "resourceVersion": "__RV__", "creationTimestamp": T0,
            "labels": {"app": &name[..name.len().saturating_sub(17).max(1)], "pod-template-hash": "7c9d8b6f5d"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": T0},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": &name[..name.len().saturating_sub(6)],
                                 "uid": "5d0c6e1e-8a1c-4f3e-9b0a-2f9d2c1b7a10", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [managed_fields("kube-controller-manager", None), managed_fields("kubelet", Some("status"))]
        },
        "spec": {
            "nodeName": node.name,
            "containers": [{"name": "app", "image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/shop/app:2026.11.3",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}], "defaultMode": 420}}]
        },
        "status": {
            "phase": phase,
            "conditions": (["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"].iter()
                .map(|t| json!({"type": t, "status": if *t == "PodScheduled" || *t == "Initialized" { "True" } else { ready }, "lastProbeTime": null, "lastTransitionTime": T0})).collect::<Vec<_>>()),
            "hostIP": node.private_ip, "hostIPs": [{"ip": node.private_ip}],
            "podIP": ip, "podIPs": ip.map(|ip| vec![json!({"ip": ip})]).unwrap_or_default(),
            "startTime": T0, "qosClass": "Burstable",
            "containerStatuses": [{"name": "app", "ready": ip.is_some(), "restartCount": 0, "image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/shop/app:2026.11.3",
                "imageID": "123456789012.dkr.ecr.us-west-2.amazonaws.com/shop/app@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "containerID": "containerd://4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce", "started": ip.is_some(),
                "state": if ip.is_some() { json!({"running": {"startedAt": T0}}) } else { json!({"waiting": {"reason": "ContainerCreating"}}) }}]
        }
    })
}

pub const AWS_NODE_ENV: &[(&str, &str)] = &[
    ("ADDITIONAL_ENI_TAGS", "{}"),
    ("AWS_VPC_CNI_NODE_PORT_SUPPORT", "true"),
    ("AWS_VPC_ENI_MTU", "9001"),
    ("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "false"),
    ("AWS_VPC_K8S_CNI_EXTERNALSNAT", "false"),
    ("AWS_VPC_K8S_CNI_LOGLEVEL", "DEBUG"),
    ("ENABLE_PREFIX_DELEGATION", "false"),
    ("WARM_ENI_TARGET", "1"),
    ("WARM_PREFIX_TARGET", "1"),
    ("DISABLE_INTROSPECTION", "false"),
    ("DISABLE_METRICS", "false"),
    ("ENABLE_IPv4", "true"),
    ("ENABLE_IPv6", "false"),
];

fn env_list() -> Vec<Value> {
    AWS_NODE_ENV
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .chain(std::iter::once(json!({"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}})))
        .collect()
}

pub fn aws_node_daemonset() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": "kube-system", "uid": "a0000000-0000-4000-8000-000000000001",
                     "resourceVersion": "__RV__", "labels": {"k8s-app": "aws-node"}},
        "spec": {"selector": {"matchLabels": {"k8s-app": "aws-node"}},
                 "template": {"metadata": {"labels": {"k8s-app": "aws-node"}},
                              "spec": {"hostNetwork": true, "containers": [{"name": "aws-node",
                                  "image": "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.20.4", "env": env_list()}]}}}
    })
}

pub fn aws_node_pod(n: &NodeSpec) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("aws-node-{:05x}", n.index), "namespace": "kube-system",
                     "uid": format!("20000000-0000-4000-8000-{:012x}", n.index), "resourceVersion": "__RV__",
                     "labels": {"k8s-app": "aws-node", "controller-revision-hash": "6b9f8c7d5"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "aws-node",
                                          "uid": "a0000000-0000-4000-8000-000000000001", "controller": true}],
                     "managedFields": [managed_fields("kubelet", Some("status"))]},
        "spec": {"nodeName": n.name, "hostNetwork": true, "containers": [{"name": "aws-node",
                 "image": "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.20.4", "env": env_list()}]},
        "status": {"phase": "Running", "podIP": n.private_ip, "hostIP": n.private_ip}
    })
}

/// The node-agent DaemonSet's pod on `n`, pointing at `n.agent_address`.
pub fn agent_pod(n: &NodeSpec) -> Value {
    let (ip, port) = n.agent_address.rsplit_once(':').expect("ip:port");
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("eks-ipam-exporter-node-{:05x}", n.index), "namespace": AGENT_NAMESPACE,
                     "uid": format!("30000000-0000-4000-8000-{:012x}", n.index), "resourceVersion": "__RV__",
                     "labels": {"app.kubernetes.io/name": "eks-ipam-exporter", "app.kubernetes.io/component": "node"}},
        "spec": {"nodeName": n.name, "hostNetwork": true, "containers": [{"name": "node",
                 "image": "ghcr.io/eks-ipam-exporter/eks-ipam-exporter:0.1.0",
                 "ports": [{"name": "http-metrics", "containerPort": port.parse::<u16>().expect("port"), "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "hostIP": n.private_ip}
    })
}

pub fn karpenter_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "karpenter", "namespace": "kube-system", "uid": "a0000000-0000-4000-8000-000000000002",
                     "resourceVersion": "__RV__", "labels": {"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": "karpenter"}},
        "spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": "karpenter"}},
                 "spec": {"containers": [{"name": "controller", "image": "public.ecr.aws/karpenter/controller:1.6.2",
                     "env": [{"name": "CLUSTER_NAME", "value": "prod-eks"}, {"name": "RESERVED_ENIS", "value": "0"},
                             {"name": "VM_MEMORY_OVERHEAD_PERCENT", "value": "0.075"}]}]}}}
    })
}

pub fn nodeclaim(n: &NodeSpec) -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": format!("{}-{:05x}", n.nodepool(), n.index), "uid": format!("40000000-0000-4000-8000-{:012x}", n.index),
                     "resourceVersion": "__RV__", "labels": {"karpenter.sh/nodepool": n.nodepool(), "node.kubernetes.io/instance-type": n.instance_type},
                     "managedFields": [managed_fields("karpenter", None)]},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                 "requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [n.instance_type]}]},
        "status": {"nodeName": n.name, "providerID": format!("aws:///{}/{}", n.zone, n.instance_id),
                   "capacity": {"pods": n.max_pods.to_string()}, "allocatable": {"pods": n.max_pods.to_string()}}
    })
}

pub fn nodeclass(subnets: &[(String, String)]) -> Value {
    json!({
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
        "metadata": {"name": "default", "uid": "a0000000-0000-4000-8000-000000000003", "resourceVersion": "__RV__"},
        "spec": {"role": "KarpenterNodeRole-prod-eks", "amiSelectorTerms": [{"alias": "al2023@latest"}],
                 "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "prod-eks"}}]},
        "status": {"subnets": subnets.iter().map(|(id, zone)| json!({"id": id, "zone": zone})).collect::<Vec<_>>()}
    })
}

/// A `FailedCreatePodSandBox` event for a pod that got no IP.
pub fn sandbox_event(
    name: &str,
    namespace: &str,
    pod: &str,
    uid: u64,
    node: &str,
    when: &str,
) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("50000000-0000-4000-8000-{uid:012x}"),
                     "resourceVersion": "__RV__", "creationTimestamp": when},
        "involvedObject": {"kind": "Pod", "namespace": namespace, "name": pod, "uid": format!("10000000-0000-4000-8000-{uid:012x}"), "apiVersion": "v1"},
        "reason": "FailedCreatePodSandBox",
        "message": "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"4e0740\": plugin type=\"aws-cni\" name=\"aws-cni\" failed (add): add cmd: failed to assign an IP address to container",
        "source": {"component": "kubelet", "host": node}, "firstTimestamp": when, "lastTimestamp": when, "count": 1, "type": "Warning",
        "reportingComponent": "kubelet", "reportingInstance": node
    })
}

/// ipamd `/v1/enis` (v1.20+ shape) for a node with `assigned` pod IPs and a
/// warm ENI's worth of free ones, ENIs filled in device order.
pub fn ipamd_enis(n: &NodeSpec, assigned: u32) -> (String, u32, u32) {
    let l = eks_ipam_exporter::model::limits::embedded(&n.instance_type);
    let (max_enis, per_eni) = l
        .map(|l| (l.default_card_max_enis, l.ipv4_per_eni - 1))
        .unwrap_or((3, 9));
    let want = assigned + per_eni; // WARM_ENI_TARGET=1
    let enis = want.div_ceil(per_eni).clamp(1, max_enis);
    let mut out = String::with_capacity(16 * 1024);
    let (mut total, mut used) = (0u32, 0u32);
    let mut body = String::new();
    let base = n.index as u32 * 64;
    for e in 0..enis {
        let id = format!("eni-{:017x}", (n.index as u64) << 8 | e as u64);
        if e > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "\"{id}\":{{\"ID\":\"{id}\",\"IsPrimary\":{},\"IsTrunk\":false,\"IsEFA\":false,\"DeviceNumber\":{e},\"AvailableIPv4Cidrs\":{{",
            e == 0
        ));
        for k in 0..per_eni {
            let a = base + e * per_eni + k;
            let ip = format!("10.{}.{}.{}", 64 + (a >> 16) % 64, (a >> 8) & 255, a & 255);
            if k > 0 {
                body.push(',');
            }
            total += 1;
            let addr = if used < assigned {
                used += 1;
                format!("{{\"{ip}\":{{\"Address\":\"{ip}\",\"IPAMKey\":{{\"networkName\":\"aws-cni\",\"containerID\":\"\",\"ifName\":\"\"}},\"IPAMMetadata\":{{\"k8sPodNamespace\":\"ns-{}\",\"k8sPodName\":\"app-{a}\",\"interfacesCount\":1}},\"AssignedTime\":\"{T0}\",\"UnassignedTime\":\"0001-01-01T00:00:00Z\"}}}}", a % 40)
            } else {
                "{}".to_string()
            };
            body.push_str(&format!(
                "\"{ip}/32\":{{\"Cidr\":{{\"IP\":\"{ip}\",\"Mask\":\"/////w==\"}},\"IPAddresses\":{addr},\"IsPrefix\":false,\"AddressFamily\":\"\"}}"
            ));
        }
        body.push_str(&format!("}},\"IPv6Cidrs\":{{}},\"RouteTableID\":{},\"IsExcludedForPodIPs\":false,\"SubnetID\":\"{}\"}}", 2 + e, n.subnet_id));
    }
    out.push_str(&format!(
        "{{\"0\":{{\"TotalIPs\":{total},\"AssignedIPs\":{used},\"ENIs\":{{{body}}}}}}}"
    ));
    (out, total, enis)
}

/// ipamd's metrics text (the `awscni_*` lines the exporter reads, plus Go runtime noise).
pub fn ipamd_metrics(assigned: u32, total: u32, enis: u32, max_enis: u32) -> String {
    let mut s = String::with_capacity(4096);
    for (name, v) in [
        ("awscni_assigned_ip_addresses", assigned),
        ("awscni_total_ip_addresses", total),
        ("awscni_eni_allocated", enis),
        ("awscni_eni_max", max_enis),
        ("awscni_ip_max", max_enis * (total / enis.max(1) + 1)),
        ("awscni_no_available_ip_addresses", 0),
    ] {
        s.push_str(&format!(
            "# HELP {name} ipamd gauge\n# TYPE {name} gauge\n{name} {v}\n"
        ));
    }
    s.push_str("# HELP awscni_build_info VPC CNI Build Info\n# TYPE awscni_build_info gauge\nawscni_build_info{goversion=\"go1.24.4\",version=\"v1.20.4\"} 1\n");
    for i in 0..40 {
        s.push_str(&format!(
            "go_gc_duration_seconds{{quantile=\"{}\"}} 0.000{i}\n",
            i as f64 / 40.0
        ));
    }
    s
}
