#!/usr/bin/env python3
"""Generate the diagnosis bundles used by the tests and by `eks-ipam-exporter demo`.

A bundle is a directory of plain command outputs (docs/design.md section 4). This script writes four of
them, deterministically (every ID, IP and sub-second time is derived from sha256 of fixed names; no
clock, no RNG state):

  tests/bundles/karpenter-overcommit/   incident 1: Karpenter max-pods 17/35 under custom networking
  tests/bundles/min-ip-target-stall/    incident 2: MINIMUM_IP_TARGET=25 without WARM_IP_TARGET
  tests/bundles/healthy/                nothing at warning or above
  bundles/demo/                         both incidents plus healthy nodes (embedded in the binary)

Expected verdicts are documented in tests/bundles/README.md. The reference inputs these bundles are
built from (/work/shared/reference: k8s YAML and ipamd metrics) are verbatim copies in
tools/gen_bundles_reference/ (read into REF_*), so the repository is self-contained; ipamd payloads
that must equal a reference file are rebuilt from structured data; `--check-reference DIR` checks
both against the originals.

Usage:
  tools/gen_bundles.py                       # (re)write the four bundles in this repository
  tools/gen_bundles.py --root /tmp/x         # write them under /tmp/x/tests/bundles/... and /tmp/x/bundles/demo
  tools/gen_bundles.py --check-reference /work/shared/reference   # also verify verbatim copies

Needs Python >= 3.9, PyYAML and moto (for its real DescribeInstanceTypes data).
"""
from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import gzip
import hashlib
import ipaddress
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Optional

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UTC = dt.timezone.utc
CAPTURED_AT = dt.datetime(2026, 8, 25, 12, 30, 21, tzinfo=UTC)
CLUSTER = "prod-eks"
REGION = "us-west-2"
ACCOUNT = "111122223333"
VPC_ID = "vpc-0abcdef1234567890"
CLUSTER_SG_ID = "sg-0a1b2c3d4e5f60718"
CLUSTER_SG_NAME = "eks-cluster-sg-prod-eks-1234567890"
CNI_VERSION = "v1.20.4"
ZONE_IDS = {"us-west-2a": "usw2-az1", "us-west-2b": "usw2-az2", "us-west-2c": "usw2-az3"}
ZERO_TIME = "0001-01-01T00:00:00Z"
KUBELET_VERSION = "v1.33.3-eks-ace6451"
OS_IMAGE = "Amazon Linux 2023.8.20260812"
ECR = "602401143452.dkr.ecr.us-west-2.amazonaws.com"
APP_ECR = f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com"

BUNDLE_DIRS = {
    "karpenter-overcommit": os.path.join("tests", "bundles", "karpenter-overcommit"),
    "min-ip-target-stall": os.path.join("tests", "bundles", "min-ip-target-stall"),
    "healthy": os.path.join("tests", "bundles", "healthy"),
    "demo": os.path.join("bundles", "demo"),
}

# m5.xlarge managed nodes of the demo: the brief asks for the default eni-max-pods value 58
# (4 x (15-1) + 2). Under custom networking the real limit is 3 x 14 + 2 = 44, so these nodes show
# PodCapacityExceedsIpCapacity (overcommit 14) without waiting pods. Set to 44 to make them clean.
DEMO_XLARGE_MAX_PODS = 44  # max-pods-calculator.sh --cni-custom-networking-enabled for m5.xlarge

# --------------------------------------------------------------------------------------------
# deterministic helpers
# --------------------------------------------------------------------------------------------


def hx(*parts) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def det_int(n: int, *seed) -> int:
    return int(hx(*seed), 16) % n


def aws_id(prefix: str, *seed) -> str:
    return f"{prefix}-0{hx(prefix, *seed)[:16]}"


def k8s_uid(*seed) -> str:
    h = hx("uid", *seed)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand


def k8s_rand(n: int, *seed) -> str:
    v = int(hx("rand", *seed), 16)
    out = ""
    for _ in range(n):
        out += K8S_ALPHABET[v % len(K8S_ALPHABET)]
        v //= len(K8S_ALPHABET)
    return out


def rv(*seed) -> str:
    return str(41_000_000 + det_int(9_000_000, "rv", *seed))


def access_key_id(*seed) -> str:
    raw = hashlib.sha256(("akid\x1f" + "\x1f".join(seed)).encode()).digest()
    return "ASIA" + base64.b32encode(raw).decode()[:16]


def mac(*seed) -> str:
    h = hx("mac", *seed)
    return "02:" + ":".join(h[i : i + 2] for i in range(0, 10, 2))


def t(hms: str, day: int = 25) -> dt.datetime:
    h, m, s = (int(x) for x in hms.split(":"))
    return dt.datetime(2026, 8, day, h, m, s, tzinfo=UTC)


def sec(x: dt.datetime, n: float) -> dt.datetime:
    return x + dt.timedelta(seconds=n)


def k8s_ts(x: dt.datetime) -> str:
    return x.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_ts(x: dt.datetime, *seed) -> str:
    return x.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % det_int(10**6, "micro", *seed)


def aws_ts(x: dt.datetime) -> str:
    return x.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def go_ts(x: dt.datetime, *seed) -> str:
    """time.Time as encoding/json writes it (RFC 3339, nanoseconds, trailing zeros trimmed)."""
    nanos = det_int(10**9, "nanos", *seed)
    frac = f"{nanos:09d}".rstrip("0")
    return x.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"


def dns_name(ip: str) -> str:
    return "ip-" + ip.replace(".", "-") + f".{REGION}.compute.internal"


def go_json_escape(text: str) -> str:
    # encoding/json escapes <, > and & (kubectl prints with it); U+2028/2029 too
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def kubectl_list(items: list) -> str:
    doc = {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
    return go_json_escape(json.dumps(doc, indent=4, sort_keys=True, ensure_ascii=False)) + "\n"


def aws_cli(doc: dict) -> str:
    # awscli JSONFormatter: json.dump(indent=4, ensure_ascii=False) + "\n", keys in model order
    return json.dumps(doc, indent=4, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# instance-type data (moto's real DescribeInstanceTypes data, same bytes boto3 returns)
# --------------------------------------------------------------------------------------------

_INSTANCE_TYPES: dict | None = None


def instance_types() -> dict:
    global _INSTANCE_TYPES
    if _INSTANCE_TYPES is None:
        import moto

        path = os.path.join(os.path.dirname(moto.__file__), "ec2", "resources", "instance_types.json.gz")
        with gzip.open(path, "rt", encoding="utf-8") as f:
            _INSTANCE_TYPES = json.load(f)
    return _INSTANCE_TYPES


def itype(name: str) -> dict:
    return instance_types()[name]


def default_card_enis(name: str) -> int:
    net = itype(name)["NetworkInfo"]
    idx = net.get("DefaultNetworkCardIndex", 0)
    for c in net.get("NetworkCards", []):
        if c["NetworkCardIndex"] == idx:
            return c["MaximumNetworkInterfaces"]
    return net["MaximumNetworkInterfaces"]


def ipv4_per_eni(name: str) -> int:
    return itype(name)["NetworkInfo"]["Ipv4AddressesPerInterface"]


def arch_of(name: str) -> str:
    return "arm64" if "arm64" in itype(name)["ProcessorInfo"]["SupportedArchitectures"] else "amd64"


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------


class Pool:
    """Unique, deterministic addresses from a CIDR (skips the 4 reserved first and the last)."""

    def __init__(self, cidr: str, seed: str):
        self.net = ipaddress.ip_network(cidr)
        self.seed = seed
        self.used: set[str] = set()

    def reserve(self, ip: str) -> str:
        assert ipaddress.ip_address(ip) in self.net, (ip, self.net)
        assert ip not in self.used, f"{ip} used twice"
        self.used.add(ip)
        return ip

    def take(self, *label) -> str:
        size = self.net.num_addresses
        i = 0
        while True:
            off = 4 + det_int(size - 5, "ip", self.seed, *label, i)
            ip = str(self.net.network_address + off)
            if ip not in self.used:
                self.used.add(ip)
                return ip
            i += 1


@dataclass
class Subnet:
    id: str
    cidr: str
    zone: str
    role: str  # node | pod
    name: str
    other_used: int = 0  # IPs used by things outside this bundle (other clusters, ELBs, ...)
    available_override: Optional[int] = None
    pool: Pool = None  # type: ignore[assignment]

    def __post_init__(self):
        self.pool = Pool(self.cidr, self.id)


@dataclass
class Workload:
    kind: str  # Deployment | StatefulSet | DaemonSet
    ns: str
    name: str
    hash: str
    labels: dict
    containers: list
    sa: str = "default"
    priority_class: Optional[str] = None
    priority: int = 0
    node_selector: Optional[dict] = None
    init_containers: Optional[list] = None
    host_network: bool = False
    template_labels: dict = field(default_factory=dict)
    tolerations: Optional[list] = None
    grace: int = 30
    uid_seed: str = ""


@dataclass
class Pod:
    wl: Workload
    name: str
    node: "Node"
    created: dt.datetime
    ip: Optional[str] = None
    waiting: bool = False
    ordinal: Optional[int] = None
    pending_before: int = 0  # seconds between creation and scheduling (`created` is the scheduling time)

    @property
    def ns(self) -> str:
        return self.wl.ns

    @property
    def uid(self) -> str:
        return k8s_uid("pod", self.ns, self.name)

    @property
    def started(self) -> dt.datetime:
        return sec(self.created, 2 + det_int(4, "start", self.name))

    @property
    def ready(self) -> dt.datetime:
        return sec(self.started, 3 + det_int(9, "ready", self.name))


@dataclass
class Slot:
    ip: str
    pod: Optional[Pod] = None
    assigned: Optional[str] = None
    unassigned: Optional[str] = None


@dataclass
class Eni:
    id: str
    device: int
    subnet: Subnet
    primary_ip: str
    attach_time: dt.datetime
    slots: list = field(default_factory=list)
    cni_created: bool = False
    created: Optional[dt.datetime] = None

    @property
    def attachment_id(self) -> str:
        return aws_id("eni-attach", self.id)


@dataclass
class Node:
    name: str
    ip: str
    instance_id: str
    type: str
    zone: str
    kind: str  # karpenter | mng
    max_pods: int
    launched: dt.datetime  # EC2 instance launch
    registered: dt.datetime  # Node object created
    ready: dt.datetime
    subnet: Subnet
    uid: str = ""
    nodeclaim: Optional[str] = None
    nodeclaim_uid: Optional[str] = None
    nodeclaim_created: Optional[dt.datetime] = None
    nodeclaim_requests: Optional[dict] = None
    nodegroup: Optional[str] = None
    enis: list = field(default_factory=list)
    pods: list = field(default_factory=list)
    metrics: Optional[str] = None
    # cluster shapes (docs/design.md section 8): kubernetes.io/os, eks.amazonaws.com/compute-type
    os: str = "linux"
    compute_type: Optional[str] = None  # auto | fargate | hybrid; None: EC2 (no label)
    extra_resources: dict = field(default_factory=dict)  # capacity = allocatable
    extra_conditions: list = field(default_factory=list)

    @property
    def runs_aws_node(self) -> bool:
        """aws-node's own node affinity: Linux, not Fargate, hybrid or Auto Mode."""
        return self.os == "linux" and self.compute_type is None

    @property
    def arch(self) -> str:
        return arch_of(self.type)

    @property
    def role(self) -> tuple[str, str]:
        if self.kind == "karpenter":
            return "KarpenterNodeRole-prod-eks", "AROAEXAMPLEKARPNODE01"
        return "eks-prod-node-role", "AROAEXAMPLEROLEID01"


@dataclass
class Actor:
    """Who made a CloudTrail call (a node's instance profile session)."""

    instance_id: str
    ip: str
    role: str
    role_id: str
    arch: str
    cred_time: dt.datetime
    cni_version: str = CNI_VERSION


def actor_of(n: Node) -> Actor:
    role, role_id = n.role
    return Actor(n.instance_id, n.ip, role, role_id, n.arch, sec(n.launched, 21))


UNRELATED = Actor(
    instance_id="i-0e9d8c7b6a5f43210",
    ip="10.1.20.87",
    role="eks-staging-node-role",
    role_id="AROAEXAMPLESTAGING01",
    arch="amd64",
    cred_time=t("07:02:44"),
    cni_version="v1.19.6",
)
UNRELATED_SUBNET = "subnet-0ab12cd34ef56ab78"


class Bundle:
    def __init__(self, name: str):
        self.name = name
        self.subnets: dict[str, Subnet] = {}
        self.nodes: list[Node] = []
        self.events: list[dict] = []
        self.ct: list[dict] = []
        self.workloads: dict[tuple[str, str], Workload] = {}
        self.aws_node: Workload = None  # type: ignore[assignment]
        self.kube_proxy: Workload = None  # type: ignore[assignment]
        self.aws_node_ds: dict = {}
        self.deployments: list[str] = []  # (ns/name) of Deployments to list
        self.nodeclaims: list[dict] = []
        self.nodepools: list[dict] = []
        self.ec2nodeclasses: list[dict] = []
        self.nodeclasses: list[dict] = []  # EKS Auto Mode NodeClasses (eks.amazonaws.com/v1)
        self.eniconfigs: Optional[list[dict]] = None
        self.karpenter = False

    def add_subnet(self, s: Subnet) -> Subnet:
        self.subnets[s.id] = s
        return s

    def pods(self) -> list[Pod]:
        return [p for n in self.nodes for p in n.pods]


# --------------------------------------------------------------------------------------------
# workloads
# --------------------------------------------------------------------------------------------


def default_container(c: dict) -> dict:
    c = copy.deepcopy(c)
    c.setdefault("imagePullPolicy", "IfNotPresent")
    for p in c.get("ports", []):
        p.setdefault("protocol", "TCP")
    c.setdefault("resources", {})
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    for e in c.get("env", []):
        fr = e.get("valueFrom", {}).get("fieldRef")
        if fr is not None:
            fr.setdefault("apiVersion", "v1")
    return c


def app_container(name: str, image: str, port: int, cpu: str, mem: str, mem_limit: str | None = None) -> dict:
    res = {"requests": {"cpu": cpu, "memory": mem}}
    if mem_limit:
        res["limits"] = {"memory": mem_limit}
    return {
        "name": name,
        "image": image,
        "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}],
        "resources": res,
    }


def wl_deploy(b: Bundle, ns: str, name: str, hsh: str, containers: list, labels: dict | None = None, **kw) -> Workload:
    key = (ns, name)
    if key in b.workloads:
        return b.workloads[key]
    labels = labels or {"app.kubernetes.io/name": name}
    w = Workload("Deployment", ns, name, hsh, labels, [default_container(c) for c in containers], **kw)
    b.workloads[key] = w
    return w


def wl_sts(b: Bundle, ns: str, name: str, hsh: str, containers: list, labels: dict, **kw) -> Workload:
    key = (ns, name)
    if key in b.workloads:
        return b.workloads[key]
    w = Workload("StatefulSet", ns, name, hsh, labels, [default_container(c) for c in containers], **kw)
    b.workloads[key] = w
    return w


def coredns(b: Bundle) -> Workload:
    return wl_deploy(
        b,
        "kube-system",
        "coredns",
        "6b9575c64c",
        [
            {
                "name": "coredns",
                "image": f"{ECR}/eks/coredns:v1.12.1-eksbuild.2",
                "args": ["-conf", "/etc/coredns/Corefile"],
                "ports": [
                    {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                    {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                    {"containerPort": 9153, "name": "metrics", "protocol": "TCP"},
                ],
                "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
            }
        ],
        labels={"k8s-app": "kube-dns", "eks.amazonaws.com/component": "coredns"},
        sa="coredns",
        priority_class="system-cluster-critical",
        priority=2000000000,
    )


def ebs_csi(b: Bundle) -> Workload:
    return wl_deploy(
        b,
        "kube-system",
        "ebs-csi-controller",
        "7c9d4b8f6",
        [
            {
                "name": "ebs-plugin",
                "image": f"{ECR}/eks/aws-ebs-csi-driver:v1.47.0",
                "args": ["controller", "--endpoint=$(CSI_ENDPOINT)", "--batching=true", "--logging-format=text"],
                "env": [
                    {"name": "CSI_ENDPOINT", "value": "unix:///var/lib/csi/sockets/pluginproxy/csi.sock"},
                    {"name": "AWS_REGION", "value": REGION},
                ],
                "ports": [{"containerPort": 9808, "name": "healthz", "protocol": "TCP"}],
                "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "10m", "memory": "40Mi"}},
            },
            {
                "name": "csi-provisioner",
                "image": f"{ECR}/eks/csi-provisioner:v5.3.0-eks-1-33-12",
                "args": ["--timeout=60s", "--csi-address=$(ADDRESS)", "--v=2", "--feature-gates=Topology=true"],
                "env": [{"name": "ADDRESS", "value": "/var/lib/csi/sockets/pluginproxy/csi.sock"}],
                "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "10m", "memory": "40Mi"}},
            },
        ],
        labels={"app": "ebs-csi-controller", "app.kubernetes.io/name": "aws-ebs-csi-driver"},
        sa="ebs-csi-controller-sa",
        priority_class="system-cluster-critical",
        priority=2000000000,
    )


def karpenter(b: Bundle) -> Workload:
    ref = yaml.safe_load(REF_KARPENTER_DEPLOYMENT)
    spec = ref["spec"]["template"]["spec"]
    return wl_deploy(
        b,
        "kube-system",
        "karpenter",
        "7d9f8b6c54",
        spec["containers"],
        labels=dict(ref["spec"]["selector"]["matchLabels"]),
        sa=spec["serviceAccountName"],
        priority_class=spec["priorityClassName"],
        priority=2000000000,
    )


def shop(b: Bundle, name: str, hsh: str, port: int = 8080) -> Workload:
    return wl_deploy(
        b,
        "shop",
        name,
        hsh,
        [app_container(name, f"{APP_ECR}/shop/{name}:v3.18.2", port, "100m", "128Mi", "256Mi")],
        labels={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop"},
    )


def generic(b: Bundle, ns: str, name: str, hsh: str, image: str, port: int, cpu="100m", mem="128Mi", **kw) -> Workload:
    return wl_deploy(b, ns, name, hsh, [app_container(name, image, port, cpu, mem, None)], **kw)


def aws_node_workload(b: Bundle, variant: str) -> Workload:
    """aws-node DaemonSet from the reference, adjusted per scenario."""
    ds = yaml.safe_load(REF_AWS_NODE_DS)
    env = ds["spec"]["template"]["spec"]["containers"][0]["env"]

    def drop(name):
        env[:] = [e for e in env if e["name"] != name]

    def setv(name, value):
        for e in env:
            if e["name"] == name:
                e["value"] = value
                return
        raise KeyError(name)

    if variant == "karpenter-overcommit":
        drop("MINIMUM_IP_TARGET")
    elif variant == "min-ip-target-stall":
        setv("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "false")
        drop("ENI_CONFIG_LABEL_DEF")
    elif variant == "healthy":
        setv("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "false")
        drop("ENI_CONFIG_LABEL_DEF")
        drop("MINIMUM_IP_TARGET")
    elif variant == "demo":
        pass
    else:
        raise ValueError(variant)
    assert not any(e["name"] == "WARM_IP_TARGET" for e in env)
    tspec = ds["spec"]["template"]["spec"]
    w = Workload(
        "DaemonSet",
        "kube-system",
        "aws-node",
        "5b8c7d6f94" if variant != "demo" else "6d4f9b8c75",
        dict(ds["spec"]["selector"]["matchLabels"]),
        [default_container(c) for c in tspec["containers"]],
        sa=tspec["serviceAccountName"],
        priority_class=tspec["priorityClassName"],
        priority=2000001000,
        init_containers=[default_container(c) for c in tspec["initContainers"]],
        host_network=True,
        template_labels=dict(ds["spec"]["template"]["metadata"]["labels"]),
        tolerations=[{"operator": "Exists"}],
        grace=10,
    )
    b.aws_node_ds = ds
    return w


def kube_proxy_workload() -> Workload:
    return Workload(
        "DaemonSet",
        "kube-system",
        "kube-proxy",
        "7b6f5d8c49",
        {"k8s-app": "kube-proxy"},
        [
            default_container(
                {
                    "name": "kube-proxy",
                    "image": f"{ECR}/eks/kube-proxy:v1.33.3-minimal-eksbuild.2",
                    "command": [
                        "kube-proxy",
                        "--v=2",
                        "--config=/var/lib/kube-proxy-config/config",
                        "--hostname-override=$(NODE_NAME)",
                    ],
                    "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                    "resources": {"requests": {"cpu": "100m"}},
                    "securityContext": {"privileged": True},
                }
            )
        ],
        sa="kube-proxy",
        priority_class="system-node-critical",
        priority=2000001000,
        host_network=True,
        template_labels={"k8s-app": "kube-proxy"},
        tolerations=[{"operator": "Exists"}],
    )


# --------------------------------------------------------------------------------------------
# building nodes, ENIs, pods
# --------------------------------------------------------------------------------------------


def add_node(b: Bundle, n: Node) -> Node:
    n.subnet.pool.reserve(n.ip)
    if not n.uid:
        n.uid = k8s_uid("node", n.name)
    primary = Eni(
        id=n.enis[0].id if n.enis else aws_id("eni", n.instance_id, "primary"),
        device=0,
        subnet=n.subnet,
        primary_ip=n.ip,
        attach_time=n.launched,
    )
    n.enis = [primary]
    b.nodes.append(n)
    # host-network DaemonSet pods (aws-node and kube-proxy are Linux EC2 DaemonSets; Auto Mode runs
    # neither as pods, and Windows nodes run the Windows kube-proxy this generator does not model)
    for w in (b.aws_node, b.kube_proxy) if n.runs_aws_node else ():
        p = Pod(w, f"{w.name}-{k8s_rand(5, w.name, n.name)}", n, sec(n.registered, 1 + det_int(3, w.name, n.name)))
        p.ip = n.ip
        n.pods.append(p)
    return n


def new_eni(b: Bundle, n: Node, device: int, subnet: Subnet, count: int, created: dt.datetime, eni_id: str | None = None,
            ips: list[str] | None = None) -> Eni:
    """An ENI ipamd created (CreateNetworkInterface with `count` secondary IPs, then Attach)."""
    eid = eni_id or aws_id("eni", n.instance_id, "dev", device)
    primary_ip = subnet.pool.take(eid, "primary")
    if ips is None:
        ips = [subnet.pool.take(eid, k) for k in range(count)]
    else:
        for ip in ips:
            subnet.pool.reserve(ip)
    e = Eni(eid, device, subnet, primary_ip, sec(created, 1), [Slot(ip) for ip in ips], cni_created=True, created=created)
    n.enis.append(e)
    ct_create(b, n, e, created)
    ct_attach(b, n, e, sec(created, 1))
    return e


def fill_primary(b: Bundle, n: Node, count: int, when: dt.datetime, ips: list[str] | None = None) -> Eni:
    """Secondary IPs on the primary ENI through AssignPrivateIpAddresses (default networking)."""
    e = n.enis[0]
    if ips is None:
        ips = [n.subnet.pool.take(e.id, k) for k in range(count)]
    else:
        for ip in ips:
            n.subnet.pool.reserve(ip)
    e.slots.extend(Slot(ip) for ip in ips)
    ct_assign(b, n, e, when, ips)
    return e


def make_pods(n: Node, specs: list, start: dt.datetime, step: int, waiting: bool = False) -> list[Pod]:
    """specs: list of (workload, count). Pod names follow ReplicaSet naming."""
    out = []
    when = start
    for w, count in specs:
        for i in range(count):
            if w.kind == "StatefulSet":
                raise ValueError("use sts_pod")
            name = f"{w.name}-{w.hash}-{k8s_rand(5, w.ns, w.name, n.name, i, waiting, k8s_ts(start))}"
            p = Pod(w, name, n, when, waiting=waiting)
            n.pods.append(p)
            out.append(p)
            when = sec(when, step + det_int(max(step // 2, 1), "step", name))
    return out


def named_pod(n: Node, w: Workload, name: str, created: dt.datetime, ordinal: int | None = None) -> Pod:
    p = Pod(w, name, n, created, ordinal=ordinal)
    n.pods.append(p)
    return p


def assign(pods: list[Pod], slots: list[Slot]) -> None:
    """Give each running pod one free slot (in order); AssignedTime = pod creation + ~1-3 s."""
    free = [s for s in slots if s.pod is None and s.assigned is None]
    assert len(free) >= len(pods), (len(free), len(pods))
    for p, s in zip(pods, free):
        s.pod = p
        s.assigned = go_ts(sec(p.created, 1 + det_int(2, "asg", p.name)), "asg", p.name)
        p.ip = s.ip


def release(slot: Slot, assigned: dt.datetime, unassigned: dt.datetime) -> None:
    assert slot.pod is None
    slot.assigned = go_ts(assigned, "rel-a", slot.ip)
    slot.unassigned = go_ts(unassigned, "rel-u", slot.ip)


def slots_from_ref(n: Node, ref: list, pods_by_name: dict[str, Pod]) -> list[Slot]:
    out = []
    for ip, ns, name, assigned, unassigned in ref:
        s = Slot(ip)
        if name is not None:
            p = pods_by_name[name]
            assert p.ns == ns
            s.pod, s.assigned, p.ip = p, assigned, ip
        elif assigned is not None:
            s.assigned, s.unassigned = assigned, unassigned
        out.append(s)
    return out


def parse_go_time(s: str) -> dt.datetime:
    return dt.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------

SANDBOX_MSG = (
    'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "{sid}": '
    'plugin type="aws-cni" name="aws-cni" failed (add): add cmd: failed to assign an IP address to container'
)
SCHEDULER_INSTANCE = "default-scheduler-ip-172-16-61-14.us-west-2.compute.internal"


def involved(p: Pod, field_path: str | None = None) -> dict:
    d = {"apiVersion": "v1", "kind": "Pod", "name": p.name, "namespace": p.ns, "resourceVersion": rv("pod", p.ns, p.name), "uid": p.uid}
    if field_path:
        d["fieldPath"] = field_path
    return d


def event_meta(p: Pod, first: dt.datetime, reason: str) -> dict:
    nanos = int(first.timestamp()) * 10**9 + det_int(10**9, "evn", p.name, reason)
    name = f"{p.name}.{nanos:x}"
    return {
        "creationTimestamp": k8s_ts(first),
        "name": name,
        "namespace": p.ns,
        "resourceVersion": rv("event", name),
        "uid": k8s_uid("event", name),
    }


def ev_kubelet(b: Bundle, p: Pod, reason: str, message: str, first: dt.datetime, last: dt.datetime, count: int,
               type_: str = "Warning", field_path: str | None = None) -> None:
    b.events.append(
        {
            "apiVersion": "v1",
            "count": count,
            "eventTime": None,
            "firstTimestamp": k8s_ts(first),
            "involvedObject": involved(p, field_path),
            "kind": "Event",
            "lastTimestamp": k8s_ts(last),
            "message": message,
            "metadata": event_meta(p, first, reason),
            "reason": reason,
            "reportingComponent": "kubelet",
            "reportingInstance": p.node.name,
            "source": {"component": "kubelet", "host": p.node.name},
            "type": type_,
        }
    )


def ev_sandbox_failure(b: Bundle, p: Pod, first: dt.datetime, last: dt.datetime, count: int = 1, combined: bool = False) -> None:
    msg = SANDBOX_MSG.format(sid=hx("sandbox", p.name, k8s_ts(last)))
    if combined:
        msg = "(combined from similar events): " + msg
    ev_kubelet(b, p, "FailedCreatePodSandBox", msg, first, last, count)


def ev_scheduler(b: Bundle, p: Pod, reason: str, message: str, when: dt.datetime, type_: str = "Normal",
                 series: tuple[int, dt.datetime] | None = None) -> None:
    e = {
        "action": "Binding" if reason == "Scheduled" else "Scheduling",
        "apiVersion": "v1",
        "eventTime": micro_ts(when, "sched", p.name, reason),
        "firstTimestamp": None,
        "involvedObject": involved(p),
        "kind": "Event",
        "lastTimestamp": None,
        "message": message,
        "metadata": event_meta(p, when, reason),
        "reason": reason,
        "reportingComponent": "default-scheduler",
        "reportingInstance": SCHEDULER_INSTANCE,
        "source": {},
        "type": type_,
    }
    if series:
        e["series"] = {"count": series[0], "lastObservedTime": micro_ts(series[1], "series", p.name)}
    b.events.append(e)


def ev_scheduled(b: Bundle, p: Pod) -> None:
    ev_scheduler(b, p, "Scheduled", f"Successfully assigned {p.ns}/{p.name} to {p.node.name}", sec(p.created, 0))


def ev_karpenter(b: Bundle, p: Pod, reason: str, message: str, first: dt.datetime, last: dt.datetime, count: int) -> None:
    b.events.append(
        {
            "apiVersion": "v1",
            "count": count,
            "eventTime": None,
            "firstTimestamp": k8s_ts(first),
            "involvedObject": involved(p),
            "kind": "Event",
            "lastTimestamp": k8s_ts(last),
            "message": message,
            "metadata": event_meta(p, first, reason),
            "reason": reason,
            "reportingComponent": "",
            "reportingInstance": "",
            "source": {"component": "karpenter"},
            "type": "Normal",
        }
    )


def ev_pulled(b: Bundle, p: Pod) -> None:
    c = p.wl.containers[0]
    when = sec(p.created, 1)
    ev_kubelet(b, p, "Pulled", f'Container image "{c["image"]}" already present on machine', when, when, 1, "Normal",
               f"spec.containers{{{c['name']}}}")


# --------------------------------------------------------------------------------------------
# CloudTrail
# --------------------------------------------------------------------------------------------


def user_agent(a: Actor) -> str:
    return (
        "aws-sdk-go-v2/1.36.5 ua/2.1 os/linux lang/go#1.24.4 md/GOOS#linux "
        f"md/GOARCH#{a.arch} api/ec2#1.227.0 m/E,g amazon-vpc-cni-k8s/{a.cni_version}"
    )


def ct_event(b: Bundle, a: Actor, name: str, when: dt.datetime, resources: list, request: dict, response: dict | None,
             error: tuple[str, str] | None = None) -> None:
    event_id = k8s_uid("ct", a.instance_id, name, k8s_ts(when))
    request_id = k8s_uid("ct-req", a.instance_id, name, k8s_ts(when))
    akid = access_key_id(a.instance_id)
    rec = {
        "eventVersion": "1.11",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"{a.role_id}:{a.instance_id}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{a.role}/{a.instance_id}",
            "accountId": ACCOUNT,
            "accessKeyId": akid,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": a.role_id,
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/{a.role}",
                    "accountId": ACCOUNT,
                    "userName": a.role,
                },
                "attributes": {"creationDate": k8s_ts(a.cred_time), "mfaAuthenticated": "false"},
                "ec2RoleDelivery": "2.0",
            },
        },
        "eventTime": k8s_ts(when),
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": a.ip,
        "userAgent": user_agent(a),
    }
    if error:
        rec["errorCode"], rec["errorMessage"] = error
    if response is not None:
        response = dict({"requestId": request_id}, **response)
    rec.update(
        {
            "requestParameters": request,
            "responseElements": response,
            "requestID": request_id,
            "eventID": event_id,
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "vpcEndpointId": "vpce-0example1234567890",
            "vpcEndpointAccountId": ACCOUNT,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": f"ec2.{REGION}.amazonaws.com",
            },
        }
    )
    b.ct.append(
        {
            "EventId": event_id,
            "EventName": name,
            "ReadOnly": "false",
            "AccessKeyId": akid,
            "EventTime": aws_ts(when),
            "EventSource": "ec2.amazonaws.com",
            "Username": a.instance_id,
            "Resources": resources,
            "CloudTrailEvent": json.dumps(rec, separators=(",", ":"), ensure_ascii=False),
        }
    )


def eni_res(eni_id: str) -> dict:
    return {"ResourceType": "AWS::EC2::NetworkInterface", "ResourceName": eni_id}


def cni_tags(a: Actor, created: dt.datetime, cluster: str = CLUSTER) -> list[dict]:
    return [
        {"key": "node.k8s.amazonaws.com/createdAt", "value": k8s_ts(created)},
        {"key": "node.k8s.amazonaws.com/instance_id", "value": a.instance_id},
        {"key": "cluster.k8s.amazonaws.com/name", "value": cluster},
        {"key": "eks:eni:owner", "value": "amazon-vpc-cni"},
    ]


def ct_create_raw(b: Bundle, a: Actor, eni_id: str, subnet_id: str, zone: str, when: dt.datetime, primary_ip: str,
                  ips: list[str], cluster: str = CLUSTER) -> None:
    tags = cni_tags(a, when, cluster)
    request = {
        "subnetId": subnet_id,
        "description": f"aws-K8S-{a.instance_id}",
        "groupSet": {"items": [{"groupId": CLUSTER_SG_ID}]},
        "privateIpAddressesSet": {},
        "secondaryPrivateIpAddressCount": len(ips),
        "tagSpecificationSet": {"items": [{"resourceType": "network-interface", "tags": tags}]},
    }
    all_ips = [primary_ip] + ips
    response = {
        "networkInterface": {
            "networkInterfaceId": eni_id,
            "subnetId": subnet_id,
            "vpcId": VPC_ID,
            "availabilityZone": zone,
            "description": f"aws-K8S-{a.instance_id}",
            "ownerId": ACCOUNT,
            "requesterManaged": False,
            "status": "pending",
            "macAddress": mac(eni_id),
            "privateIpAddress": primary_ip,
            "privateDnsName": dns_name(primary_ip),
            "sourceDestCheck": True,
            "interfaceType": "interface",
            "groupSet": {"items": [{"groupId": CLUSTER_SG_ID, "groupName": CLUSTER_SG_NAME}]},
            "privateIpAddressesSet": {
                "item": [
                    {"privateIpAddress": ip, "privateDnsName": dns_name(ip), "primary": i == 0}
                    for i, ip in enumerate(all_ips)
                ]
            },
            "ipv6AddressesSet": {},
            "tagSet": {"items": tags},
        }
    }
    ct_event(b, a, "CreateNetworkInterface", when, [eni_res(eni_id)], request, response)


def ct_create(b: Bundle, n: Node, e: Eni, when: dt.datetime) -> None:
    ct_create_raw(b, actor_of(n), e.id, e.subnet.id, e.subnet.zone, when, e.primary_ip, [s.ip for s in e.slots])


def ct_attach_raw(b: Bundle, a: Actor, eni_id: str, device: int, when: dt.datetime) -> None:
    request = {"networkInterfaceId": eni_id, "instanceId": a.instance_id, "deviceIndex": device, "networkCardIndex": 0}
    response = {"attachmentId": aws_id("eni-attach", eni_id), "networkCardIndex": 0}
    resources = [eni_res(eni_id), {"ResourceType": "AWS::EC2::Instance", "ResourceName": a.instance_id}]
    ct_event(b, a, "AttachNetworkInterface", when, resources, request, response)


def ct_attach(b: Bundle, n: Node, e: Eni, when: dt.datetime) -> None:
    ct_attach_raw(b, actor_of(n), e.id, e.device, when)


def ct_assign_raw(b: Bundle, a: Actor, eni_id: str, when: dt.datetime, ips: list[str], count: int | None = None,
                  error: tuple[str, str] | None = None) -> None:
    request = {"networkInterfaceId": eni_id, "privateIpAddressesSet": {}, "secondaryPrivateIpAddressCount": count or len(ips)}
    response = None
    if not error:
        response = {
            "networkInterfaceId": eni_id,
            "assignedPrivateIpAddressesSet": {"assignedPrivateIpAddressSetType": [{"privateIpAddress": ip} for ip in ips]},
        }
    ct_event(b, a, "AssignPrivateIpAddresses", when, [eni_res(eni_id)], request, response, error)


def ct_assign(b: Bundle, n: Node, e: Eni, when: dt.datetime, ips: list[str]) -> None:
    ct_assign_raw(b, actor_of(n), e.id, when, ips)


def ct_unrelated(b: Bundle) -> None:
    """Calls from a node of another cluster (staging-eks) in the same account and region."""
    a = UNRELATED
    pool = Pool("10.1.16.0/20", UNRELATED_SUBNET)
    pool.reserve(a.ip)
    eni_id = "eni-0c8e2a4f6b1d39570"
    created = t("11:12:30")
    primary = pool.take("p")
    ips = [pool.take(k) for k in range(9)]
    ct_create_raw(b, a, eni_id, UNRELATED_SUBNET, "us-west-2b", created, primary, ips, cluster="staging-eks")
    ct_attach_raw(b, a, eni_id, 2, sec(created, 1))
    ct_assign_raw(b, a, "eni-0a3f5c7e9b2d14680", t("07:03:11"), [pool.take("a", k) for k in range(9)])
    ct_assign_raw(b, a, eni_id, t("12:05:13"), [], count=4,
                  error=("Client.InsufficientFreeAddressesInSubnet",
                         "The specified subnet does not have enough free addresses to satisfy the request."))


# --------------------------------------------------------------------------------------------
# Kubernetes objects
# --------------------------------------------------------------------------------------------

KUBE_API_VOLUME_SOURCES = [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
    {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}},
]

DEFAULT_TOLERATIONS = [
    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300},
]
DS_TOLERATIONS = [
    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists"},
    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/disk-pressure", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/memory-pressure", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/pid-pressure", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable", "operator": "Exists"},
    {"effect": "NoSchedule", "key": "node.kubernetes.io/network-unavailable", "operator": "Exists"},
]


def image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0]
    return f"{repo}@sha256:{hx('image', image)}"


def qos(containers: list) -> str:
    req = [c.get("resources", {}).get("requests") for c in containers]
    return "Burstable" if any(req) else "BestEffort"


def workload_template_spec(w: Workload) -> dict:
    spec = {
        "containers": copy.deepcopy(w.containers),
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": w.sa,
        "serviceAccountName": w.sa,
        "terminationGracePeriodSeconds": w.grace,
    }
    if w.init_containers:
        spec["initContainers"] = copy.deepcopy(w.init_containers)
    if w.host_network:
        spec["hostNetwork"] = True
    if w.priority_class:
        spec["priorityClassName"] = w.priority_class
    if w.node_selector:
        spec["nodeSelector"] = dict(w.node_selector)
    if w.tolerations:
        spec["tolerations"] = copy.deepcopy(w.tolerations)
    return spec


def container_status(c: dict, p: Pod, vol: str, running: bool) -> dict:
    mounts = [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": vol, "readOnly": True,
               "recursiveReadOnly": "Disabled"}]
    if not running:
        return {
            "image": c["image"],
            "imageID": "",
            "lastState": {},
            "name": c["name"],
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {"waiting": {"reason": "ContainerCreating"}},
            "volumeMounts": mounts,
        }
    return {
        "containerID": "containerd://" + hx("cid", p.name, c["name"]),
        "image": c["image"],
        "imageID": image_id(c["image"]),
        "lastState": {},
        "name": c["name"],
        "ready": True,
        "restartCount": 0,
        "started": True,
        "state": {"running": {"startedAt": k8s_ts(p.started)}},
        "volumeMounts": mounts,
    }


def cond(type_: str, status: bool, when: dt.datetime, reason: str | None = None, message: str | None = None) -> dict:
    d = {"lastProbeTime": None, "lastTransitionTime": k8s_ts(when), "status": "True" if status else "False", "type": type_}
    if reason:
        d["reason"] = reason
    if message:
        d["message"] = message
    return d


def pod_object(p: Pod) -> dict:
    w = p.wl
    vol = f"kube-api-access-{k8s_rand(5, 'vol', p.name)}"
    labels = dict(w.template_labels or w.labels)
    meta = {
        "creationTimestamp": k8s_ts(sec(p.created, -p.pending_before)),
        "labels": labels,
        "name": p.name,
        "namespace": p.ns,
        "resourceVersion": rv("pod", p.ns, p.name),
        "uid": p.uid,
    }
    if w.kind == "Deployment":
        rs = f"{w.name}-{w.hash}"
        labels["pod-template-hash"] = w.hash
        meta["generateName"] = rs + "-"
        owner = ("apps/v1", "ReplicaSet", rs, k8s_uid("rs", w.ns, rs))
    elif w.kind == "StatefulSet":
        labels.update({"apps.kubernetes.io/pod-index": str(p.ordinal), "controller-revision-hash": f"{w.name}-{w.hash}",
                       "statefulset.kubernetes.io/pod-name": p.name})
        meta["generateName"] = w.name + "-"
        owner = ("apps/v1", "StatefulSet", w.name, k8s_uid("sts", w.ns, w.name))
    else:  # DaemonSet
        labels.update({"controller-revision-hash": w.hash, "pod-template-generation": "1"})
        meta["generateName"] = w.name + "-"
        owner = ("apps/v1", "DaemonSet", w.name, k8s_uid("ds", w.ns, w.name))
    meta["ownerReferences"] = [
        {"apiVersion": owner[0], "blockOwnerDeletion": True, "controller": True, "kind": owner[1], "name": owner[2], "uid": owner[3]}
    ]
    spec = workload_template_spec(w)
    spec["enableServiceLinks"] = True
    spec["nodeName"] = p.node.name
    spec["preemptionPolicy"] = "PreemptLowerPriority"
    spec["priority"] = w.priority
    mount = {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": vol, "readOnly": True}
    for c in spec["containers"] + spec.get("initContainers", []):
        c.setdefault("volumeMounts", []).append(dict(mount))
    spec["volumes"] = [{"name": vol, "projected": {"defaultMode": 420, "sources": copy.deepcopy(KUBE_API_VOLUME_SOURCES)}}]
    if w.kind == "DaemonSet":
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [p.node.name]}]}]
                }
            }
        }
        spec["tolerations"] = (w.tolerations or []) + copy.deepcopy(DS_TOLERATIONS)
    else:
        spec["tolerations"] = (w.tolerations or []) + copy.deepcopy(DEFAULT_TOLERATIONS)
    if w.kind == "StatefulSet":
        spec["hostname"] = p.name
        spec["subdomain"] = w.name.rsplit("-", 1)[0] + "-operated"

    sched = p.created
    running = not p.waiting
    names = [c["name"] for c in spec["containers"]]
    if running:
        conditions = [
            cond("PodReadyToStartContainers", True, sec(sched, 2)),
            cond("Initialized", True, sched if not w.init_containers else sec(sched, 2)),
            cond("Ready", True, p.ready),
            cond("ContainersReady", True, p.ready),
            cond("PodScheduled", True, sched),
        ]
    else:
        unready = f"containers with unready status: [{' '.join(names)}]"
        conditions = [
            cond("PodReadyToStartContainers", False, sched),
            cond("Initialized", True, sched),
            cond("Ready", False, sched, "ContainersNotReady", unready),
            cond("ContainersReady", False, sched, "ContainersNotReady", unready),
            cond("PodScheduled", True, sched),
        ]
    status = {
        "conditions": conditions,
        "containerStatuses": [container_status(c, p, vol, running) for c in spec["containers"]],
        "hostIP": p.node.ip,
        "hostIPs": [{"ip": p.node.ip}],
        "phase": "Running" if running else "Pending",
        "qosClass": qos(spec["containers"]),
        "startTime": k8s_ts(sched),
    }
    if w.init_containers:
        status["initContainerStatuses"] = [
            {
                "containerID": "containerd://" + hx("cid", p.name, c["name"]),
                "image": c["image"],
                "imageID": image_id(c["image"]),
                "lastState": {},
                "name": c["name"],
                "ready": True,
                "restartCount": 0,
                "started": False,
                "state": {
                    "terminated": {
                        "containerID": "containerd://" + hx("cid", p.name, c["name"]),
                        "exitCode": 0,
                        "finishedAt": k8s_ts(sec(sched, 2)),
                        "reason": "Completed",
                        "startedAt": k8s_ts(sec(sched, 1)),
                    }
                },
                "volumeMounts": [dict(mount, recursiveReadOnly="Disabled")],
            }
            for c in spec["initContainers"]
        ]
    if running:
        assert p.ip, p.name
        status["podIP"] = p.ip
        status["podIPs"] = [{"ip": p.ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def ds_object(b: Bundle, w: Workload, ref: dict | None) -> dict:
    n = sum(1 for x in b.nodes if x.runs_aws_node)  # both DaemonSets run where aws-node runs
    if ref is not None:
        obj = copy.deepcopy(ref)
        labels = obj["metadata"]["labels"]
        created = "2026-07-02T13:55:31Z"
        selector = obj["spec"]["selector"]
        update = obj["spec"]["updateStrategy"]
        template_meta = obj["spec"]["template"]["metadata"]
    else:
        labels = {"eks.amazonaws.com/component": "kube-proxy", "k8s-app": "kube-proxy"}
        created = "2026-07-02T13:55:29Z"
        selector = {"matchLabels": dict(w.labels)}
        update = {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}, "type": "RollingUpdate"}
        template_meta = {"labels": dict(w.template_labels)}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "annotations": {"deprecated.daemonset.template.generation": "1"},
            "creationTimestamp": created,
            "generation": 1,
            "labels": labels,
            "name": w.name,
            "namespace": w.ns,
            "resourceVersion": rv("ds", b.name, w.name),
            "uid": k8s_uid("ds", w.ns, w.name),
        },
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": selector,
            "template": {"metadata": template_meta, "spec": workload_template_spec(w)},
            "updateStrategy": update,
        },
        "status": {
            "currentNumberScheduled": n,
            "desiredNumberScheduled": n,
            "numberAvailable": n,
            "numberMisscheduled": 0,
            "numberReady": n,
            "observedGeneration": 1,
            "updatedNumberScheduled": n,
        },
    }


def deployment_object(b: Bundle, w: Workload) -> dict:
    pods = [p for p in b.pods() if p.wl is w]
    ready = sum(1 for p in pods if not p.waiting)
    replicas = len(pods)
    created = {"coredns": "2026-07-02T13:55:30Z", "karpenter": "2026-07-02T14:08:12Z"}.get(w.name, "2026-07-03T09:12:44Z")
    if w.name == "karpenter":
        ref = yaml.safe_load(REF_KARPENTER_DEPLOYMENT)
        labels = ref["metadata"]["labels"]
    else:
        labels = dict(w.labels)
    last = max([p.ready for p in pods if not p.waiting], default=parse_go_time(created.replace("Z", ".0Z")))
    conditions = [
        {
            "lastTransitionTime": k8s_ts(last),
            "lastUpdateTime": k8s_ts(last),
            "message": "Deployment has minimum availability." if ready == replicas else "Deployment does not have minimum availability.",
            "reason": "MinimumReplicasAvailable" if ready == replicas else "MinimumReplicasUnavailable",
            "status": "True" if ready == replicas else "False",
            "type": "Available",
        },
        {
            "lastTransitionTime": created,
            "lastUpdateTime": k8s_ts(last),
            "message": f'ReplicaSet "{w.name}-{w.hash}" has successfully progressed.',
            "reason": "NewReplicaSetAvailable",
            "status": "True",
            "type": "Progressing",
        },
    ]
    status = {
        "availableReplicas": ready,
        "conditions": conditions,
        "observedGeneration": 1,
        "readyReplicas": ready,
        "replicas": replicas,
        "updatedReplicas": replicas,
    }
    if ready < replicas:
        status["unavailableReplicas"] = replicas - ready
    tmpl_labels = dict(w.labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "creationTimestamp": created,
            "generation": 1,
            "labels": labels,
            "name": w.name,
            "namespace": w.ns,
            "resourceVersion": rv("deploy", b.name, w.ns, w.name),
            "uid": k8s_uid("deploy", w.ns, w.name),
        },
        "spec": {
            "progressDeadlineSeconds": 600,
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": dict(w.labels)},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
            "template": {"metadata": {"labels": tmpl_labels}, "spec": workload_template_spec(w)},
        },
        "status": status,
    }


# node capacity -------------------------------------------------------------------------------

MEM_CAPACITY_KI = {"t4g.medium": 3892940}  # from the reference Node


def mem_capacity_ki(n: Node) -> int:
    if n.type in MEM_CAPACITY_KI:
        return MEM_CAPACITY_KI[n.type]
    mib = itype(n.type)["MemoryInfo"]["SizeInMiB"]
    ratio = 0.928149 if n.arch == "arm64" else 0.963517
    return int(mib * 1024 * ratio)


def cpu_reserved_m(vcpus: int) -> int:
    # EKS/Karpenter kube-reserved CPU: 6% of core 1, 1% of core 2, 0.5% of cores 3-4, 0.25% above
    r = 60.0
    if vcpus > 1:
        r += 10
    if vcpus > 2:
        r += 5 * min(vcpus - 2, 2)
    if vcpus > 4:
        r += 2.5 * (vcpus - 4)
    return int(r)


def node_resources(n: Node) -> tuple[dict, dict]:
    vcpus = itype(n.type)["VCpuInfo"]["DefaultVCpus"]
    cap_ki = mem_capacity_ki(n)
    alloc_ki = cap_ki - (11 * n.max_pods + 255 + 100) * 1024
    huge = {"hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    if n.arch == "arm64":
        huge.update({"hugepages-32Mi": "0", "hugepages-64Ki": "0"})
    cap = {"cpu": str(vcpus), "ephemeral-storage": "20893676Ki", **huge, "memory": f"{cap_ki}Ki", "pods": str(n.max_pods)}
    alloc = {
        "cpu": f"{vcpus * 1000 - cpu_reserved_m(vcpus)}m",
        "ephemeral-storage": "18181869978",
        **huge,
        "memory": f"{alloc_ki}Ki",
        "pods": str(n.max_pods),
    }
    return cap, alloc


def karpenter_labels(n: Node) -> dict:
    it = itype(n.type)
    fam, size = n.type.split(".")
    proc = it["ProcessorInfo"]
    card0 = it["NetworkInfo"]["NetworkCards"][0]
    return {
        "karpenter.k8s.aws/ec2nodeclass": "default",
        "karpenter.k8s.aws/instance-capability-flex": "false",
        "karpenter.k8s.aws/instance-category": fam[0],
        "karpenter.k8s.aws/instance-cpu": str(it["VCpuInfo"]["DefaultVCpus"]),
        "karpenter.k8s.aws/instance-cpu-manufacturer": proc["Manufacturer"].lower(),
        "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz": str(int(round(proc["SustainedClockSpeedInGhz"] * 1000))),
        "karpenter.k8s.aws/instance-ebs-bandwidth": str(it["EbsInfo"]["EbsOptimizedInfo"]["MaximumBandwidthInMbps"]),
        "karpenter.k8s.aws/instance-encryption-in-transit-supported": str(it["NetworkInfo"]["EncryptionInTransitSupported"]).lower(),
        "karpenter.k8s.aws/instance-family": fam,
        "karpenter.k8s.aws/instance-generation": "".join(ch for ch in fam if ch.isdigit()),
        "karpenter.k8s.aws/instance-hypervisor": it.get("Hypervisor", ""),
        "karpenter.k8s.aws/instance-memory": str(it["MemoryInfo"]["SizeInMiB"]),
        "karpenter.k8s.aws/instance-network-bandwidth": str(int(round(card0["BaselineBandwidthInGbps"] * 1000))),
        "karpenter.k8s.aws/instance-size": size,
        "karpenter.k8s.aws/instance-tenancy": "default",
        "karpenter.sh/capacity-type": "on-demand",
        "karpenter.sh/nodepool": "general",
        "kubernetes.io/arch": n.arch,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": n.type,
        "topology.k8s.aws/zone-id": ZONE_IDS[n.zone],
        "topology.kubernetes.io/region": REGION,
        "topology.kubernetes.io/zone": n.zone,
    }


def heartbeat(n: Node) -> dt.datetime:
    return sec(CAPTURED_AT, -(20 + det_int(240, "hb", n.name)))


def node_placement_labels(n: Node) -> dict:
    """The well-known labels kubelet and the cloud provider put on every EC2 node."""
    return {
        "kubernetes.io/arch": n.arch,
        "kubernetes.io/os": n.os,
        "node.kubernetes.io/instance-type": n.type,
        "topology.k8s.aws/zone-id": ZONE_IDS[n.zone],
        "topology.kubernetes.io/region": REGION,
        "topology.kubernetes.io/zone": n.zone,
    }


def node_object(b: Bundle, n: Node) -> dict:
    obj = yaml.safe_load(REF_NODE_T4G_MEDIUM)
    meta = obj["metadata"]
    meta["name"] = n.name
    meta["uid"] = n.uid
    meta["creationTimestamp"] = k8s_ts(n.registered)
    meta["resourceVersion"] = rv("node", b.name, n.name)
    base = {
        "beta.kubernetes.io/arch": n.arch,
        "beta.kubernetes.io/instance-type": n.type,
        "beta.kubernetes.io/os": "linux",
        "failure-domain.beta.kubernetes.io/region": REGION,
        "failure-domain.beta.kubernetes.io/zone": n.zone,
        "kubernetes.io/hostname": n.name,
    }
    base["beta.kubernetes.io/os"] = n.os
    if n.kind == "auto":
        # EKS Auto Mode: EKS-managed Karpenter labels its nodes with the built-in NodePool/NodeClass.
        labels = {
            **base,
            "eks.amazonaws.com/compute-type": "auto",
            "eks.amazonaws.com/nodeclass": "default",
            "karpenter.sh/capacity-type": "on-demand",
            "karpenter.sh/nodepool": "general-purpose",
            **node_placement_labels(n),
        }
        meta["annotations"] = {"alpha.kubernetes.io/provided-node-ip": n.ip, "node.alpha.kubernetes.io/ttl": "0"}
        del meta["finalizers"]
        del meta["ownerReferences"]
    elif n.kind == "karpenter":
        labels = {**base, **karpenter_labels(n), "karpenter.sh/initialized": "true", "karpenter.sh/registered": "true"}
        meta["ownerReferences"][0].update({"name": n.nodeclaim, "uid": n.nodeclaim_uid})
        meta["annotations"]["alpha.kubernetes.io/provided-node-ip"] = n.ip
    else:
        labels = {
            **base,
            "eks.amazonaws.com/capacityType": "ON_DEMAND",
            "eks.amazonaws.com/nodegroup": n.nodegroup,
            "eks.amazonaws.com/nodegroup-image": "ami-0a9b8c7d6e5f4a3b2",
            "eks.amazonaws.com/sourceLaunchTemplateId": aws_id("lt", n.nodegroup),
            "eks.amazonaws.com/sourceLaunchTemplateVersion": "1",
            "k8s.io/cloud-provider-aws": hx("cp", CLUSTER)[:32],
            **node_placement_labels(n),
        }
        meta["annotations"] = {
            "alpha.kubernetes.io/provided-node-ip": n.ip,
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        }
        del meta["finalizers"]
        del meta["ownerReferences"]
    meta["labels"] = dict(sorted(labels.items()))
    obj["spec"] = {"providerID": f"aws:///{n.zone}/{n.instance_id}"}
    st = obj["status"]
    st["addresses"] = [
        {"address": n.ip, "type": "InternalIP"},
        {"address": n.name, "type": "InternalDNS"},
        {"address": n.name, "type": "Hostname"},
    ]
    st["capacity"], st["allocatable"] = node_resources(n)
    for k, v in sorted(n.extra_resources.items()):
        st["capacity"][k] = st["allocatable"][k] = v
    st["conditions"] += [dict(c) for c in n.extra_conditions]
    hb = k8s_ts(heartbeat(n))
    for c in st["conditions"]:
        c["lastHeartbeatTime"] = hb
        c["lastTransitionTime"] = k8s_ts(n.ready if c["type"] == "Ready" else n.registered)
    ni = st["nodeInfo"]
    ni["architecture"] = n.arch
    if n.uid != yaml.safe_load(REF_NODE_T4G_MEDIUM)["metadata"]["uid"]:  # keep the reference node's IDs
        ni["bootID"] = k8s_uid("boot", n.name)
        h = hx("machine", n.instance_id)
        ni["machineID"] = "ec2" + h[:29]
        ni["systemUUID"] = f"ec2{h[:5]}-{h[5:9]}-{h[9:13]}-{h[13:17]}-{h[17:29]}"
    ni["kernelVersion"] = "6.12.37-61.105.amzn2023." + ("aarch64" if n.arch == "arm64" else "x86_64")
    ni["kubeletVersion"] = KUBELET_VERSION
    ni["osImage"] = OS_IMAGE
    return obj


def nodeclaim_object(b: Bundle, n: Node) -> dict:
    obj = yaml.safe_load(REF_NODECLAIM)
    meta = obj["metadata"]
    meta["name"] = n.nodeclaim
    meta["uid"] = n.nodeclaim_uid
    meta["creationTimestamp"] = k8s_ts(n.nodeclaim_created)
    meta["resourceVersion"] = rv("nodeclaim", b.name, n.nodeclaim)
    meta["labels"] = dict(sorted(karpenter_labels(n).items()))
    for r in obj["spec"]["requirements"]:
        if r["key"] == "kubernetes.io/arch":
            r["values"] = [n.arch]
        if r["key"] == "karpenter.k8s.aws/instance-family":
            r["values"] = sorted({n.type.split(".")[0]} | ({"t4g"} if n.arch == "arm64" else {"m5"}))
        if r["key"] == "node.kubernetes.io/instance-type" and n.arch != "arm64":
            r["values"] = ["m5.large", "m5.xlarge"]
        if r["key"] == "karpenter.k8s.aws/instance-size" and n.arch != "arm64":
            r["values"] = ["large", "xlarge"]
    obj["spec"]["resources"]["requests"] = dict(n.nodeclaim_requests)
    st = obj["status"]
    st["providerID"] = f"aws:///{n.zone}/{n.instance_id}"
    st["nodeName"] = n.name
    st["imageID"] = "ami-0c1d2e3f4a5b6c7d8" if n.arch == "arm64" else "ami-0a9b8c7d6e5f4a3b2"
    st["lastPodEventTime"] = k8s_ts(max(p.created for p in n.pods))
    it = itype(n.type)
    mib = it["MemoryInfo"]["SizeInMiB"] - (64 if n.arch == "arm64" else 0)
    mem_cap = mib - -(-mib * 75 // 1000)  # minus ceil(7.5%)
    mem_alloc = mem_cap - (11 * n.max_pods + 255) - 100
    vcpus = it["VCpuInfo"]["DefaultVCpus"]
    st["capacity"] = {"cpu": str(vcpus), "ephemeral-storage": "20Gi", "memory": f"{mem_cap}Mi", "pods": str(n.max_pods)}
    st["allocatable"] = {
        "cpu": f"{vcpus * 1000 - cpu_reserved_m(vcpus)}m",
        "ephemeral-storage": "17Gi",
        "memory": f"{mem_alloc}Mi",
        "pods": str(n.max_pods),
    }
    times = {
        "Launched": sec(n.nodeclaim_created, 2),
        "Registered": sec(n.registered, 2),
        "Initialized": sec(n.ready, 7),
        "ConsistentStateFound": sec(n.ready, 7),
        "Ready": sec(n.ready, 7),
    }
    for c in st["conditions"]:
        c["lastTransitionTime"] = k8s_ts(times[c["type"]])
    return obj


def auto_nodeclass_object(b: Bundle) -> dict:
    """Auto Mode's NodeClass as the EKS user guide shows it (latest/ug/automode/create-node-class.adoc at
    013856044148); no `status`, which the guide does not document. Node subnets by a wildcard Name tag,
    no podSubnetSelectorTerms: pods get prefixes from the node's subnet."""
    return {
        "apiVersion": "eks.amazonaws.com/v1",
        "kind": "NodeClass",
        "metadata": {
            "name": "default",
            "uid": k8s_uid("nodeclass", "default"),
            "creationTimestamp": "2026-09-14T08:12:55Z",
            "generation": 1,
            "resourceVersion": rv("nodeclass", b.name),
            "labels": {"app.kubernetes.io/managed-by": "eks"},
        },
        "spec": {
            "role": "AmazonEKSAutoNodeRole",
            "subnetSelectorTerms": [{"tags": {"Name": "prod-eks-private-*"}}],
            "securityGroupSelectorTerms": [{"tags": {f"kubernetes.io/cluster/{CLUSTER}": "owned"}}],
            "ephemeralStorage": {"size": "80Gi", "iops": 3000, "throughput": 125},
            "networkPolicy": "DefaultAllow",
            "networkPolicyEventLogs": "Disabled",
            "snatPolicy": "Random",
        },
    }


def auto_nodeclaim_object(b: Bundle, n: Node) -> dict:
    """The NodeClaim of an Auto Mode node: EKS-managed Karpenter's (karpenter.sh/v1), nodeClassRef to the
    eks.amazonaws.com NodeClass."""
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "metadata": {
            "name": n.nodeclaim,
            "uid": n.nodeclaim_uid,
            "creationTimestamp": k8s_ts(n.nodeclaim_created),
            "generation": 1,
            "resourceVersion": rv("nodeclaim", b.name, n.nodeclaim),
            "labels": {
                "eks.amazonaws.com/compute-type": "auto",
                "karpenter.sh/capacity-type": "on-demand",
                "karpenter.sh/nodepool": "general-purpose",
                "kubernetes.io/arch": n.arch,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": n.type,
                "topology.kubernetes.io/region": REGION,
                "topology.kubernetes.io/zone": n.zone,
            },
            "ownerReferences": [{"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "name": "general-purpose",
                                 "uid": k8s_uid("nodepool", "general-purpose"), "blockOwnerDeletion": True}],
            "finalizers": ["karpenter.sh/termination"],
        },
        "spec": {
            "nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"},
            "requirements": [
                {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["general-purpose"]},
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [n.type]},
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [n.zone]},
            ],
            "resources": {"requests": dict(n.nodeclaim_requests or {})},
            "expireAfter": "336h",
        },
        "status": {
            "nodeName": n.name,
            "providerID": f"aws:///{n.zone}/{n.instance_id}",
            "capacity": {"pods": str(n.max_pods)},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                            "lastTransitionTime": k8s_ts(n.ready)}],
        },
    }


def nodepool_object(b: Bundle, healthy: bool) -> dict:
    obj = yaml.safe_load(REF_NODEPOOL)
    obj["metadata"]["resourceVersion"] = rv("nodepool", b.name)
    if healthy:
        for r in obj["spec"]["template"]["spec"]["requirements"]:
            if r["key"] == "kubernetes.io/arch":
                r["values"] = ["amd64", "arm64"]
            if r["key"] == "karpenter.k8s.aws/instance-family":
                r["values"] = ["m5", "t4g"]
    knodes = [n for n in b.nodes if n.kind == "karpenter"]
    caps = [node_resources(n)[0] for n in knodes]
    st = obj["status"]
    st["nodes"] = len(knodes)
    st["resources"] = {
        "cpu": str(sum(int(c["cpu"]) for c in caps)),
        "ephemeral-storage": f"{sum(int(c['ephemeral-storage'][:-2]) for c in caps)}Ki",
        "memory": f"{sum(int(c['memory'][:-2]) for c in caps)}Ki",
        "nodes": str(len(knodes)),
        "pods": str(sum(n.max_pods for n in knodes)),
    }
    return obj


def ec2nodeclass_object(b: Bundle) -> dict:
    obj = yaml.safe_load(REF_EC2NODECLASS)
    obj["metadata"]["resourceVersion"] = rv("ec2nodeclass", b.name)
    return obj


def eniconfig_object(b: Bundle, zone: str, subnet_id: str) -> dict:
    obj = yaml.safe_load(REF_ENICONFIG_2A)
    meta = obj["metadata"]
    if zone != "us-west-2a":
        meta["name"] = zone
        meta["uid"] = k8s_uid("eniconfig", zone)
        meta["creationTimestamp"] = "2026-07-02T13:58:41Z"
    meta["resourceVersion"] = rv("eniconfig", b.name, zone)
    obj["spec"]["subnet"] = subnet_id
    return obj


# --------------------------------------------------------------------------------------------
# AWS and ipamd outputs
# --------------------------------------------------------------------------------------------


def subnet_json(b: Bundle, s: Subnet) -> dict:
    ours = sum(1 + len(e.slots) for n in b.nodes for e in n.enis if e.subnet is s)
    size = ipaddress.ip_network(s.cidr).num_addresses - 5
    if s.available_override is not None:
        avail = s.available_override
        assert avail <= size - ours
    else:
        avail = size - ours - s.other_used
    tags = [{"Key": "Name", "Value": s.name}, {"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "shared"}]
    if s.role == "node":
        tags += [{"Key": "kubernetes.io/role/internal-elb", "Value": "1"}, {"Key": "karpenter.sh/discovery", "Value": CLUSTER}]
    return {
        "AvailabilityZoneId": ZONE_IDS[s.zone],
        "MapCustomerOwnedIpOnLaunch": False,
        "OwnerId": ACCOUNT,
        "AssignIpv6AddressOnCreation": False,
        "Ipv6CidrBlockAssociationSet": [],
        "Tags": tags,
        "SubnetArn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{s.id}",
        "EnableDns64": False,
        "Ipv6Native": False,
        "PrivateDnsNameOptionsOnLaunch": {
            "HostnameType": "ip-name",
            "EnableResourceNameDnsARecord": False,
            "EnableResourceNameDnsAAAARecord": False,
        },
        "BlockPublicAccessStates": {"InternetGatewayBlockMode": "off"},
        "SubnetId": s.id,
        "State": "available",
        "VpcId": VPC_ID,
        "CidrBlock": s.cidr,
        "AvailableIpAddressCount": avail,
        "AvailabilityZone": s.zone,
        "DefaultForAz": False,
        "MapPublicIpOnLaunch": False,
    }


def ip_key(ip: str) -> int:
    return int(ipaddress.ip_address(ip))


def eni_json(n: Node, e: Eni) -> dict:
    ips = [e.primary_ip] + sorted((s.ip for s in e.slots), key=ip_key)
    if e.cni_created:
        tags = [
            {"Key": "cluster.k8s.amazonaws.com/name", "Value": CLUSTER},
            {"Key": "eks:eni:owner", "Value": "amazon-vpc-cni"},
            {"Key": "node.k8s.amazonaws.com/createdAt", "Value": k8s_ts(e.created)},
            {"Key": "node.k8s.amazonaws.com/instance_id", "Value": n.instance_id},
        ]
    else:  # primary ENI: ipamd's TagENI adds the instance and cluster tags
        tags = [
            {"Key": "cluster.k8s.amazonaws.com/name", "Value": CLUSTER},
            {"Key": "node.k8s.amazonaws.com/instance_id", "Value": n.instance_id},
        ]
    return {
        "Attachment": {
            "AttachTime": aws_ts(e.attach_time),
            "AttachmentId": e.attachment_id,
            "DeleteOnTermination": True,
            "DeviceIndex": e.device,
            "NetworkCardIndex": 0,
            "InstanceId": n.instance_id,
            "InstanceOwnerId": ACCOUNT,
            "Status": "attached",
        },
        "AvailabilityZone": e.subnet.zone,
        "Description": f"aws-K8S-{n.instance_id}" if e.cni_created else "",
        "Groups": [{"GroupId": CLUSTER_SG_ID, "GroupName": CLUSTER_SG_NAME}],
        "InterfaceType": "interface",
        "Ipv6Addresses": [],
        "MacAddress": mac(e.id),
        "NetworkInterfaceId": e.id,
        "OwnerId": ACCOUNT,
        "PrivateDnsName": dns_name(e.primary_ip),
        "PrivateIpAddress": e.primary_ip,
        "PrivateIpAddresses": [
            {"Primary": i == 0, "PrivateDnsName": dns_name(ip), "PrivateIpAddress": ip} for i, ip in enumerate(ips)
        ],
        "Ipv4Prefixes": [],
        "Ipv6Prefixes": [],
        "RequesterManaged": False,
        "SourceDestCheck": True,
        "Status": "in-use",
        "SubnetId": e.subnet.id,
        "TagSet": tags,
        "VpcId": VPC_ID,
        "Operator": {"Managed": False},
    }


def ipamd_enis_json(n: Node) -> str:
    """/v1/enis exactly as ipamd writes it: compact, Go field order, map keys sorted, no newline."""
    enis = {}
    total = assigned = 0
    for e in sorted(n.enis, key=lambda e: e.id):
        cidrs = {}
        for s in sorted(e.slots, key=lambda s: s.ip + "/32"):
            addrs = {}
            if s.pod is not None:
                addrs[s.ip] = {
                    "Address": s.ip,
                    "IPAMKey": {"networkName": "aws-cni", "containerID": "", "ifName": ""},
                    "IPAMMetadata": {"k8sPodNamespace": s.pod.ns, "k8sPodName": s.pod.name, "interfacesCount": 1},
                    "AssignedTime": s.assigned,
                    "UnassignedTime": ZERO_TIME,
                }
                assigned += 1
            elif s.assigned is not None:
                addrs[s.ip] = {
                    "Address": s.ip,
                    "IPAMKey": {"networkName": "", "containerID": "", "ifName": ""},
                    "IPAMMetadata": {},
                    "AssignedTime": s.assigned,
                    "UnassignedTime": s.unassigned,
                }
            cidrs[s.ip + "/32"] = {"Cidr": {"IP": s.ip, "Mask": "/////w=="}, "IPAddresses": addrs, "IsPrefix": False, "AddressFamily": ""}
            total += 1
        enis[e.id] = {
            "ID": e.id,
            "IsPrimary": e.device == 0,
            "IsTrunk": False,
            "IsEFA": False,
            "DeviceNumber": e.device,
            "AvailableIPv4Cidrs": cidrs,
            "IPv6Cidrs": {},
            "IsExcludedForPodIPs": False,
            "RouteTableID": 254 if e.device == 0 else e.device + 1,
            "SubnetID": e.subnet.id,
        }
    return json.dumps({"0": {"TotalIPs": total, "AssignedIPs": assigned, "ENIs": enis}}, separators=(",", ":"))


def demo_stalled_metrics(n: Node) -> str:
    """The reference ipamd metrics.txt, adapted to the demo's custom-networking stalled node."""
    slots = [s for e in n.enis for s in e.slots]
    out = []
    for line in REF_IPAMD_METRICS.splitlines():
        if line.startswith("awscni_assigned_ip_per_cidr{"):
            continue
        if line.startswith("awscni_assigned_ip_per_eni{"):
            continue
        if line.startswith("awscni_aws_api_latency_ms_") and 'api="AssignPrivateIpAddresses"' in line:
            continue
        if line.startswith("awscni_ec2api_req_count{") and 'fn="AssignPrivateIpAddresses"' in line:
            continue
        if line == "awscni_eni_allocated 1":
            line = f"awscni_eni_allocated {len(n.enis)}"
        out.append(line)
        if line.startswith("# TYPE awscni_assigned_ip_per_cidr "):
            for ip in sorted(s.ip + "/32" for s in slots if s.pod is not None):
                out.append(f'awscni_assigned_ip_per_cidr{{cidr="{ip}"}} 1')
        if line.startswith("# TYPE awscni_assigned_ip_per_eni "):
            for e in sorted(n.enis, key=lambda e: e.id):
                out.append(f'awscni_assigned_ip_per_eni{{eni="{e.id}"}} {sum(1 for s in e.slots if s.pod is not None)}')
        if line.startswith("# TYPE awscni_aws_api_latency_ms "):
            for api, ms in (("AttachNetworkInterface", 412), ("CreateNetworkInterface", 356)):
                out.append(f'awscni_aws_api_latency_ms_sum{{api="{api}",error="false",status="200"}} {ms}')
                out.append(f'awscni_aws_api_latency_ms_count{{api="{api}",error="false",status="200"}} 1')
        if line.startswith("# TYPE awscni_ec2api_req_count "):
            out.append('awscni_ec2api_req_count{fn="AttachNetworkInterface"} 1')
            out.append('awscni_ec2api_req_count{fn="CreateNetworkInterface"} 1')
        if line.startswith('awscni_aws_api_latency_ms_count{api="GetMetadata"'):
            out.append('awscni_aws_api_latency_ms_sum{api="ModifyNetworkInterfaceAttribute",error="false",status="200"} 198')
            out.append('awscni_aws_api_latency_ms_count{api="ModifyNetworkInterfaceAttribute",error="false",status="200"} 1')
        if line == 'awscni_ec2api_req_count{fn="DescribeSubnets"} 1':
            out.append('awscni_ec2api_req_count{fn="ModifyNetworkInterfaceAttribute"} 1')
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------------------------


def standard_subnets(b: Bundle, pod_subnets: bool, demo: bool = False) -> None:
    b.add_subnet(Subnet("subnet-0aa11bb22cc33dd44", "10.0.32.0/19", "us-west-2a", "node", "prod-eks-private-us-west-2a", 1380))
    b.add_subnet(Subnet("subnet-0bb22cc33dd44ee55", "10.0.64.0/19", "us-west-2b", "node", "prod-eks-private-us-west-2b", 1211))
    b.add_subnet(Subnet("subnet-0cc33dd44ee55ff66", "10.0.96.0/19", "us-west-2c", "node", "prod-eks-private-us-west-2c", 1466))
    if pod_subnets:
        b.add_subnet(Subnet("subnet-0dd44ee55ff667788", "100.64.0.0/19", "us-west-2a", "pod", "prod-eks-pods-us-west-2a", 2917))
    if demo:
        b.add_subnet(Subnet("subnet-0ee55ff66aa778899", "100.64.32.0/19", "us-west-2b", "pod", "prod-eks-pods-us-west-2b",
                            available_override=38))


def karpenter_pair(b: Bundle) -> tuple[Node, Node]:
    """N1 (t4g.medium, the reference node) and N2 (t4g.large), custom networking, RESERVED_ENIS=0."""
    node_sub = b.subnets["subnet-0aa11bb22cc33dd44"]
    pod_sub = b.subnets["subnet-0dd44ee55ff667788"]
    n1 = add_node(b, Node(
        name="ip-10-0-44-120.us-west-2.compute.internal", ip="10.0.44.120", instance_id="i-0b2c3d4e5f6a78901",
        type="t4g.medium", zone="us-west-2a", kind="karpenter", max_pods=17,
        launched=t("11:41:33"), registered=t("11:42:15"), ready=t("11:42:34"), subnet=node_sub,
        uid="3f6c2a1e-8d4b-4c7a-9e21-5b0d7f3a6c19", nodeclaim="general-x7k2p",
        nodeclaim_uid="9b1e4d2c-7a3f-4e58-b6c0-2d8f1a9e7c43", nodeclaim_created=t("11:41:30"),
        nodeclaim_requests={"cpu": "1105m", "memory": "1330Mi", "pods": "13"},
    ))
    e1 = new_eni(b, n1, 1, pod_sub, 5, t("11:42:22"))
    e2 = new_eni(b, n1, 2, pod_sub, 5, t("11:42:58"))
    cd, sf, cart, cat, chk = coredns(b), shop(b, "storefront", "7c5d8b9f4d"), shop(b, "cart-api", "84b5c7d9f6"), \
        shop(b, "catalog", "5f7b9c6d48"), shop(b, "checkout", "6c8d9f7b59")
    running = make_pods(n1, [(cd, 2), (sf, 4), (cart, 2), (cat, 2)], t("11:42:50"), 31)
    assign(running, e1.slots + e2.slots)
    waiting = make_pods(n1, [(sf, 3), (cart, 2)], t("12:21:04"), 9, waiting=True)
    for i, p in enumerate(waiting):
        ev_scheduled(b, p)
        ev_sandbox_failure(b, p, sec(p.created, 3), sec(CAPTURED_AT, -(40 + 23 * i)), 1)

    n2 = add_node(b, Node(
        name="ip-10-0-45-17.us-west-2.compute.internal", ip="10.0.45.17", instance_id="i-0c3d4e5f6a7b89012",
        type="t4g.large", zone="us-west-2a", kind="karpenter", max_pods=35,
        launched=t("11:51:41"), registered=t("11:52:26"), ready=t("11:52:44"), subnet=node_sub,
        nodeclaim="general-m4q9d", nodeclaim_uid=k8s_uid("nodeclaim", "general-m4q9d"), nodeclaim_created=t("11:51:38"),
        nodeclaim_requests={"cpu": "1840m", "memory": "2412Mi", "pods": "21"},
    ))
    f1 = new_eni(b, n2, 1, pod_sub, 11, t("11:52:33"))
    f2 = new_eni(b, n2, 2, pod_sub, 11, t("11:53:09"))
    kp = karpenter(b)
    r2 = make_pods(n2, [(sf, 6), (cart, 4), (cat, 4), (chk, 4)], t("11:52:58"), 23)
    r2 += make_pods(n2, [(kp, 2)], t("12:02:10"), 14)
    slots = f1.slots + f2.slots
    # one IP of f2 was used by a pod deleted at 11:58:31 (long out of cooldown); one was never used
    rel = sorted(f2.slots, key=lambda s: ip_key(s.ip))[3]
    release(rel, t("11:53:40"), t("11:58:31"))
    assign(r2, [s for s in slots if s is not rel])
    first = r2[0]
    first.pending_before = 83
    ev_scheduler(b, first, "FailedScheduling",
                 "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
                 "1 No preemption victims found for incoming pod.",
                 t("11:51:36"), "Warning", series=(3, t("11:52:20")))
    ev_karpenter(b, first, "Nominated", f"Pod should schedule on: nodeclaim/{n2.nodeclaim}", t("11:51:39"), t("11:51:39"), 1)
    ev_scheduled(b, first)
    for p in r2[-2:]:
        ev_scheduled(b, p)
        ev_pulled(b, p)
    return n1, n2


def finish_karpenter_crds(b: Bundle, healthy: bool = False) -> None:
    b.karpenter = True
    b.nodeclaims = [nodeclaim_object(b, n) for n in b.nodes if n.kind == "karpenter"]
    b.nodeclaims += [auto_nodeclaim_object(b, n) for n in b.nodes if n.kind == "auto"]
    b.nodepools = [nodepool_object(b, healthy)]
    b.ec2nodeclasses = [ec2nodeclass_object(b)]


def scenario_karpenter_overcommit() -> Bundle:
    b = Bundle("karpenter-overcommit")
    b.aws_node = aws_node_workload(b, "karpenter-overcommit")
    b.kube_proxy = kube_proxy_workload()
    standard_subnets(b, pod_subnets=True)
    karpenter_pair(b)
    ct_unrelated(b)
    b.deployments = ["kube-system/coredns", "kube-system/karpenter"]
    finish_karpenter_crds(b)
    b.eniconfigs = [eniconfig_object(b, "us-west-2a", "subnet-0dd44ee55ff667788")]
    return b


STALLED_REF_SLOTS = [
    ("10.0.33.14", "kube-system", "coredns-6b9575c64c-h7m2d", "2026-08-25T10:00:11.314187Z", None),
    ("10.0.33.87", "kube-system", "coredns-6b9575c64c-zr5bq", "2026-08-25T10:00:18.418916Z", None),
    ("10.0.34.156", "kube-system", "ebs-csi-controller-7c9d4b8f6-tq4vn", "2026-08-25T10:00:32.628374Z", None),
    ("10.0.34.2", "kube-system", "ebs-csi-controller-7c9d4b8f6-9lkxw", "2026-08-25T10:00:25.523645Z", None),
    ("10.0.35.201", "monitoring", "alertmanager-main-0", "2026-08-25T10:00:46.837832Z", None),
    ("10.0.35.49", "monitoring", "prometheus-k8s-0", "2026-08-25T10:00:39.733103Z", None),
    ("10.0.36.240", "ingress", "ingress-nginx-controller-58f6b9c8d-4qk7m", "2026-08-25T10:01:00.104729Z", None),
    ("10.0.36.73", "monitoring", "kube-state-metrics-6d8b7c5f9-w2j8p", "2026-08-25T10:00:53.942561Z", None),
    ("10.0.37.129", "payments", "api-7f9c6d5b8-5xw7p", "2026-08-25T10:01:14.1256748Z", None),
    ("10.0.37.18", "payments", "api-7f9c6d5b8-2bq9k", "2026-08-25T10:01:07.1152019Z", None),
    ("10.0.38.199", "payments", "api-7f9c6d5b8-c4n6r", "2026-08-25T10:01:28.1466206Z", None),
    ("10.0.38.64", "payments", "api-7f9c6d5b8-8hd2m", "2026-08-25T10:01:21.1361477Z", None),
    ("10.0.39.182", "payments", "api-7f9c6d5b8-gk2v9", "2026-08-25T10:01:42.1675664Z", None),
    ("10.0.39.7", "payments", "api-7f9c6d5b8-fj7s3", "2026-08-25T10:01:35.1570935Z", None),
    ("10.0.40.95", "payments", "api-7f9c6d5b8-lm8t4", "2026-08-25T10:01:49.1780393Z", None),
    ("10.0.41.250", "payments", "api-7f9c6d5b8-qs6w1", "2026-08-25T10:02:03.1989851Z", None),
    ("10.0.41.33", "payments", "api-7f9c6d5b8-p9q2x", "2026-08-25T10:01:56.1885122Z", None),
    ("10.0.42.116", "payments", "api-7f9c6d5b8-rz3k8", "2026-08-25T10:02:10.209458Z", None),
    ("10.0.43.208", "payments", "api-7f9c6d5b8-vx1c6", "2026-08-25T10:02:24.2304038Z", None),
    ("10.0.43.61", "payments", "api-7f9c6d5b8-t7y5n", "2026-08-25T10:02:17.2199309Z", None),
    ("10.0.44.140", "payments", "api-7f9c6d5b8-w4p8h", "2026-08-25T10:02:31.2408767Z", None),
    ("10.0.45.177", "payments", "api-7f9c6d5b8-zk5d7", "2026-08-25T10:02:45.2618225Z", None),
    ("10.0.45.22", "payments", "api-7f9c6d5b8-xb9m2", "2026-08-25T10:02:38.2513496Z", None),
    ("10.0.46.90", "payments", "api-7f9c6d5b8-zn2f4", "2026-08-25T10:02:52.2722954Z", None),
    ("10.0.47.236", "payments", "api-7f9c6d5b8-zq8r6", "2026-08-25T10:02:59.2827683Z", None),
]
STALLED_ENI = "eni-0d91f3a6b2c48e715"
STALLED_REF_SUBNET = "subnet-07b3e9d1c5a8f2460"

HEALTHY_REF_SLOTS = {
    "eni-0a4c7e19d3b25f681": [  # primary, DeviceNumber 0
        ("10.0.17.5", None, None, None, None),
        ("10.0.19.212", "kube-system", "coredns-6b9575c64c-7xk2p", "2026-08-25T08:13:02.418903517Z", None),
        ("10.0.21.40", None, None, None, None),
        ("10.0.22.131", None, None, None, None),
        ("10.0.24.9", "kube-system", "coredns-6b9575c64c-q9wz4", "2026-08-25T08:13:02.90221874Z", None),
        ("10.0.26.188", None, None, None, None),
        ("10.0.27.63", None, None, None, None),
        ("10.0.29.240", "default", "web-5d8f7c9b6d-2lq8r", "2026-08-25T09:41:17.03355021Z", None),
        ("10.0.30.17", None, None, None, None),
    ],
    "eni-06e2b8d4f1a9c3057": [  # DeviceNumber 1
        ("10.0.16.201", None, None, None, None),
        ("10.0.18.33", None, None, None, None),
        ("10.0.20.97", "kube-system", "metrics-server-75bf97fcc9-tn8hd", "2026-08-25T08:13:40.71560118Z", None),
        ("10.0.23.150", None, None, "2026-08-25T09:20:55.184410093Z", "2026-08-25T09:58:41.20713388Z"),
        ("10.0.25.78", None, None, None, None),
        ("10.0.26.5", None, None, None, None),
        ("10.0.28.119", "default", "web-5d8f7c9b6d-xk7pz", "2026-08-25T09:41:17.5120097Z", None),
        ("10.0.30.226", None, None, None, None),
        ("10.0.31.84", None, None, None, None),
    ],
}
HEALTHY_REF_SUBNET = "subnet-0c1f5e8a2b7d34a91"


def stalled_workloads(b: Bundle) -> dict[str, Workload]:
    """Workloads of the 25 pods named in enis-stalled.json (plus the waiting payments pods)."""
    cd, ebs = coredns(b), ebs_csi(b)
    prom = wl_sts(b, "monitoring", "prometheus-k8s", "6b5d8f7c49",
                  [app_container("prometheus", "quay.io/prometheus/prometheus:v3.5.0", 9090, "100m", "400Mi")],
                  {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": "k8s"}, sa="prometheus-k8s")
    am = wl_sts(b, "monitoring", "alertmanager-main", "7d9c5b6f84",
                [app_container("alertmanager", "quay.io/prometheus/alertmanager:v0.28.1", 9093, "4m", "100Mi")],
                {"app.kubernetes.io/name": "alertmanager", "app.kubernetes.io/instance": "main"}, sa="alertmanager-main")
    ksm = generic(b, "monitoring", "kube-state-metrics", "6d8b7c5f9",
                  "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.16.0", 8080, "10m", "190Mi",
                  sa="kube-state-metrics")
    ing = generic(b, "ingress", "ingress-nginx-controller", "58f6b9c8d", "registry.k8s.io/ingress-nginx/controller:v1.13.1",
                  80, "100m", "90Mi", labels={"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
                  sa="ingress-nginx")
    api = generic(b, "payments", "api", "7f9c6d5b8", f"{APP_ECR}/payments/api:2026.08.21-3", 8080, "250m", "256Mi",
                  node_selector={"topology.kubernetes.io/zone": "us-west-2a"})
    return {"coredns": cd, "ebs-csi-controller": ebs, "prometheus-k8s": prom, "alertmanager-main": am,
            "kube-state-metrics": ksm, "ingress-nginx-controller": ing, "api": api}


def ref_pod_workload(wls: dict[str, Workload], name: str) -> tuple[Workload, int | None]:
    for key in ("prometheus-k8s", "alertmanager-main"):
        if name.startswith(key + "-"):
            return wls[key], int(name.rsplit("-", 1)[1])
    for key in ("coredns", "ebs-csi-controller", "kube-state-metrics", "ingress-nginx-controller", "api"):
        if name.startswith(key + "-"):
            return wls[key], None
    raise KeyError(name)


def stalled_pods(b: Bundle, n: Node, slots_ref: list) -> tuple[list[Slot], list[Pod]]:
    """The 25 running pods of enis-stalled.json (created ~2 s before their AssignedTime) + 6 waiting."""
    wls = stalled_workloads(b)
    by_name = {}
    for ip, ns, name, assigned, _ in sorted(slots_ref, key=lambda r: r[3]):
        w, ordinal = ref_pod_workload(wls, name)
        by_name[name] = named_pod(n, w, name, sec(parse_go_time(assigned), -2), ordinal)
    slots = slots_from_ref(n, slots_ref, by_name)
    waiting = make_pods(n, [(wls["api"], 6)], t("12:21:31"), 11, waiting=True)
    for i, p in enumerate(waiting):
        if i == 0:
            p.pending_before = 32
            ev_scheduler(b, p, "FailedScheduling",
                         "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector. "
                         "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
                         "1 Preemption is not helpful for scheduling.",
                         sec(p.created, -31), "Warning")
        ev_scheduled(b, p)
        combined = i == 1
        ev_sandbox_failure(b, p, sec(p.created, 2), sec(CAPTURED_AT, -(15 + 31 * i)), 14 if combined else 1, combined)
    return slots, waiting


def scenario_min_ip_target_stall() -> Bundle:
    b = Bundle("min-ip-target-stall")
    b.aws_node = aws_node_workload(b, "min-ip-target-stall")
    b.kube_proxy = kube_proxy_workload()
    # S1's node subnet is the one enis-stalled.json names (see README: the brief's subnet-0123456789abcdef0
    # cannot be used because the verbatim ipamd payload says SubnetID subnet-07b3e9d1c5a8f2460)
    s1_sub = b.add_subnet(Subnet(STALLED_REF_SUBNET, "10.0.32.0/20", "us-west-2a", "node", "prod-eks-private-us-west-2a", 611))
    s2_sub = b.add_subnet(Subnet("subnet-0b8d2f4a6c1e39570", "10.0.48.0/20", "us-west-2b", "node", "prod-eks-private-us-west-2b", 548))
    b.add_subnet(Subnet("subnet-0e6a1c3b5d7f92408", "10.0.64.0/20", "us-west-2c", "node", "prod-eks-private-us-west-2c", 402))

    s1 = Node(name="ip-10-0-36-41.us-west-2.compute.internal", ip="10.0.36.41", instance_id="i-0a1b2c3d4e5f67890",
              type="m5.4xlarge", zone="us-west-2a", kind="mng", max_pods=234, launched=t("09:58:47"),
              registered=t("09:59:21"), ready=t("09:59:49"), subnet=s1_sub, nodegroup="core-m5-4xl")
    s1.enis = [Eni(STALLED_ENI, 0, s1_sub, s1.ip, s1.launched)]
    add_node(b, s1)
    slots, _ = stalled_pods(b, s1, STALLED_REF_SLOTS)
    fill_primary(b, s1, 0, t("09:59:58"), ips=[s.ip for s in slots])
    s1.enis[0].slots = slots
    s1.metrics = REF_IPAMD_METRICS

    s2 = add_node(b, Node(name="ip-10-0-52-200.us-west-2.compute.internal", ip="10.0.52.200",
                          instance_id="i-0e4f5a6b7c8d90123", type="m5.4xlarge", zone="us-west-2b", kind="mng",
                          max_pods=234, launched=t("09:58:52"), registered=t("09:59:27"), ready=t("09:59:55"),
                          subnet=s2_sub, nodegroup="core-m5-4xl"))
    e = fill_primary(b, s2, 25, t("10:00:04"))
    wls = stalled_workloads(b)
    worker = generic(b, "orders", "order-worker", "6f8d9c7b54", f"{APP_ECR}/orders/worker:1.9.4", 8080, "200m", "256Mi")
    web = generic(b, "default", "web", "5d8f7c9b6d", f"{APP_ECR}/web/frontend:1.42.0", 8080, "100m", "128Mi")
    graf = generic(b, "monitoring", "grafana", "75c9d8f6b4", "docker.io/grafana/grafana:12.1.0", 3000, "100m", "128Mi")
    pods = make_pods(s2, [(worker, 7), (web, 6), (wls["ingress-nginx-controller"], 1), (graf, 1)], t("10:00:15"), 17)
    pods.append(named_pod(s2, wls["prometheus-k8s"], "prometheus-k8s-1", t("10:04:02"), 1))
    pods.append(named_pod(s2, wls["alertmanager-main"], "alertmanager-main-1", t("10:04:19"), 1))
    late = make_pods(s2, [(worker, 1)], t("12:12:07"), 1)
    by_ip = sorted(e.slots, key=lambda s: ip_key(s.ip))
    release(by_ip[5], t("10:31:12"), t("11:47:53"))
    release(by_ip[17], t("10:02:40"), t("12:29:58"))  # still in the 30 s cooldown at capture time
    assign(pods + late, [s for s in by_ip if s.assigned is None])
    ev_scheduled(b, late[0])
    ev_pulled(b, late[0])
    ing = [p for p in s2.pods if p.wl.name == "ingress-nginx-controller"][0]
    ev_kubelet(b, ing, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 500", t("12:10:31"),
               t("12:10:41"), 2, "Warning", "spec.containers{ingress-nginx-controller}")
    ct_unrelated(b)
    b.deployments = ["kube-system/coredns", "kube-system/ebs-csi-controller"]
    return b


def scenario_healthy() -> Bundle:
    b = Bundle("healthy")
    b.aws_node = aws_node_workload(b, "healthy")
    b.kube_proxy = kube_proxy_workload()
    standard_subnets(b, pod_subnets=False)
    h1_sub = b.add_subnet(Subnet(HEALTHY_REF_SUBNET, "10.0.16.0/20", "us-west-2a", "node", "prod-eks-private-a-legacy", 904))
    h1 = Node(name="ip-10-0-20-14.us-west-2.compute.internal", ip="10.0.20.14", instance_id="i-0d7e8f9a0b1c23456",
              type="m5.large", zone="us-west-2a", kind="mng", max_pods=29, launched=t("08:12:09"),
              registered=t("08:12:41"), ready=t("08:12:58"), subnet=h1_sub, nodegroup="general-m5")
    h1.enis = [Eni("eni-0a4c7e19d3b25f681", 0, h1_sub, h1.ip, h1.launched)]
    add_node(b, h1)
    cd = coredns(b)
    ms = generic(b, "kube-system", "metrics-server", "75bf97fcc9", f"{ECR}/eks/metrics-server:v0.8.0-eksbuild.1", 10250,
                 "100m", "200Mi", labels={"k8s-app": "metrics-server"}, sa="metrics-server",
                 priority_class="system-cluster-critical", priority=2000000000)
    web = generic(b, "default", "web", "5d8f7c9b6d", f"{APP_ECR}/web/frontend:1.42.0", 8080, "100m", "128Mi")
    by_name = {}
    for eni_id, rows in HEALTHY_REF_SLOTS.items():
        for ip, ns, name, assigned, _ in rows:
            if name:
                w = {"coredns": cd, "metrics-server": ms, "web": web}[name.rsplit("-", 2)[0]]
                by_name[name] = (w, sec(parse_go_time(assigned), -2))
    for name, (w, created) in sorted(by_name.items(), key=lambda kv: kv[1][1]):
        by_name[name] = named_pod(h1, w, name, created)
    prim_slots = slots_from_ref(h1, HEALTHY_REF_SLOTS["eni-0a4c7e19d3b25f681"], by_name)
    fill_primary(b, h1, 0, t("08:12:55"), ips=[s.ip for s in prim_slots])
    h1.enis[0].slots = prim_slots
    sec_slots = slots_from_ref(h1, HEALTHY_REF_SLOTS["eni-06e2b8d4f1a9c3057"], by_name)
    new_eni(b, h1, 1, h1_sub, 0, t("08:12:57"), eni_id="eni-06e2b8d4f1a9c3057", ips=[s.ip for s in sec_slots])
    h1.enis[1].slots = sec_slots

    h2_sub = b.subnets["subnet-0bb22cc33dd44ee55"]
    h2 = add_node(b, Node(name="ip-10-0-71-36.us-west-2.compute.internal", ip="10.0.71.36", instance_id="i-0f5a6b7c8d9e01234",
                          type="m5.large", zone="us-west-2b", kind="karpenter", max_pods=29, launched=t("11:58:14"),
                          registered=t("11:58:52"), ready=t("11:59:08"), subnet=h2_sub, nodeclaim="general-p8v2t",
                          nodeclaim_uid=k8s_uid("nodeclaim", "general-p8v2t"), nodeclaim_created=t("11:58:11"),
                          nodeclaim_requests={"cpu": "1550m", "memory": "1664Mi", "pods": "11"}))
    fill_primary(b, h2, 9, t("11:59:10"))
    e1 = new_eni(b, h2, 1, h2_sub, 9, t("11:59:14"))
    kp = karpenter(b)
    cart = shop(b, "cart-api", "84b5c7d9f6")
    pods = make_pods(h2, [(web, 3), (cart, 4)], t("11:59:09"), 19)
    pods += make_pods(h2, [(kp, 2)], t("12:03:30"), 12)
    assign(pods, h2.enis[0].slots + e1.slots)
    early = pods[0]
    ev_karpenter(b, early, "Nominated", f"Pod should schedule on: nodeclaim/{h2.nodeclaim}", t("11:58:12"), t("11:58:12"), 1)
    ev_scheduled(b, early)
    # the first pod arrived one second before ipamd had IPs (Assign at 11:59:10): one failed sandbox,
    # then Running; the event is 31 minutes old at capture time
    ev_sandbox_failure(b, early, early.created, early.created, 1)
    ev_pulled(b, early)
    for p in pods[-2:]:
        ev_scheduled(b, p)
        ev_pulled(b, p)
    ct_unrelated(b)
    b.deployments = ["kube-system/coredns", "kube-system/karpenter"]
    finish_karpenter_crds(b, healthy=True)
    return b


# The VPC resource controller's extended resource for Windows pod IPs (docs/design.md section 8).
WINDOWS_IP_RESOURCE = "vpc.amazonaws.com/PrivateIPv4Address"


def demo_secondary_ips(n: Node, count: int) -> None:
    e = n.enis[0]
    e.slots.extend(Slot(n.subnet.pool.take(e.id, k)) for k in range(count))


def demo_shapes(b: Bundle, subnet: Subnet) -> None:
    """Nodes of the shapes aws-node's ipamd does not serve, so `demo` shows them (issue 15 item 9):
    W1, a Windows node whose pod IPs the VPC resource controller assigns (4 of its 9
    `PrivateIPv4Address` requested); A1, an EKS Auto Mode node (EKS-managed IPAM, the node
    monitoring agent's NetworkingReady condition healthy). Neither has aws-node, kube-proxy
    pods or an ipamd answer; their ENIs are in EC2 like any other."""
    iis = generic(b, "legacy", "iis-frontend", "7c9f5b6d84", "mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022",
                  80, "500m", "512Mi", node_selector={"kubernetes.io/os": "windows"})
    iis.containers[0]["resources"]["requests"][WINDOWS_IP_RESOURCE] = "1"
    iis.containers[0]["resources"]["limits"] = {WINDOWS_IP_RESOURCE: "1"}
    w1 = add_node(b, Node(name="ip-10-0-77-20.us-west-2.compute.internal", ip="10.0.77.20", instance_id="i-0e1f2a3b4c5d67890",
                          type="m5.large", zone="us-west-2b", kind="mng", max_pods=110, launched=t("07:40:12"),
                          registered=t("07:44:31"), ready=t("07:45:02"), subnet=subnet, nodegroup="windows-m5",
                          os="windows", extra_resources={WINDOWS_IP_RESOURCE: "9"}))
    # The controller assigns the secondary IPs to the primary ENI (no ipamd, no secondary ENIs; its
    # calls are the controller's, not aws-node's, so no CloudTrail events of the node's role here).
    demo_secondary_ips(w1, 9)
    pods = make_pods(w1, [(iis, 4)], t("07:46:00"), 37)
    assign(pods, w1.enis[0].slots)

    api = generic(b, "payments", "ledger-api", "5f7b8c9d64", f"{APP_ECR}/payments/ledger:2.7.1", 8080, "250m", "256Mi",
                  node_selector={"eks.amazonaws.com/compute-type": "auto"})
    a1 = add_node(b, Node(name="i-0f1e2d3c4b5a69788", ip="10.0.78.33", instance_id="i-0f1e2d3c4b5a69788",
                          type="m5.large", zone="us-west-2b", kind="auto", max_pods=110, launched=t("10:02:40"),
                          registered=t("10:03:12"), ready=t("10:03:30"), subnet=subnet, compute_type="auto",
                          nodeclaim="general-purpose-q7w2k", nodeclaim_uid=k8s_uid("nodeclaim", "general-purpose-q7w2k"),
                          nodeclaim_created=t("10:02:38"), nodeclaim_requests={"cpu": "850m", "memory": "900Mi", "pods": "6"},
                          extra_conditions=[{"type": "NetworkingReady", "status": "True", "reason": "NetworkingIsReady",
                                             "message": "Monitoring for the Networking system is active"}]))
    demo_secondary_ips(a1, 6)
    pods = make_pods(a1, [(api, 3)], t("10:04:00"), 23)
    assign(pods, a1.enis[0].slots)
    b.nodeclasses = [auto_nodeclass_object(b)]
    # Keep the subnet's AvailableIpAddressCount (and every documented demo number) as it was.
    subnet.other_used -= 2 + 9 + 6


def scenario_demo() -> Bundle:
    b = Bundle("demo")
    b.aws_node = aws_node_workload(b, "demo")
    b.kube_proxy = kube_proxy_workload()
    standard_subnets(b, pod_subnets=True, demo=True)
    karpenter_pair(b)
    node_sub_a = b.subnets["subnet-0aa11bb22cc33dd44"]
    node_sub_b = b.subnets["subnet-0bb22cc33dd44ee55"]
    pod_sub_a = b.subnets["subnet-0dd44ee55ff667788"]
    pod_sub_b = b.subnets["subnet-0ee55ff66aa778899"]

    # D1: incident 2 under custom networking: 25 IPs on a secondary ENI in the pod subnet, stalled
    d1 = add_node(b, Node(name="ip-10-0-36-41.us-west-2.compute.internal", ip="10.0.36.41", instance_id="i-0a1b2c3d4e5f67890",
                          type="m5.4xlarge", zone="us-west-2a", kind="mng", max_pods=110, launched=t("09:58:47"),
                          registered=t("09:59:21"), ready=t("09:59:49"), subnet=node_sub_a, nodegroup="core-m5-4xl"))
    ips = {}
    remapped = []
    for ip, ns, name, assigned, un in STALLED_REF_SLOTS:
        ips[ip] = pod_sub_a.pool.take(STALLED_ENI, ip)
        remapped.append((ips[ip], ns, name, assigned, un))
    for ip in ips.values():
        pod_sub_a.pool.used.discard(ip)  # new_eni reserves them again
    slots, _ = stalled_pods(b, d1, remapped)
    e = new_eni(b, d1, 1, pod_sub_a, 0, t("09:59:58"), eni_id=STALLED_ENI, ips=[s.ip for s in slots])
    e.slots = slots
    d1.metrics = demo_stalled_metrics(d1)

    # D2, D3: m5.xlarge managed nodes in us-west-2b, 14 + 11 IPs on two secondary ENIs, 10 in use
    search = generic(b, "search", "search-api", "6b7c9d5f48", f"{APP_ECR}/search/api:4.2.0", 8080, "200m", "256Mi")
    indexer = generic(b, "search", "indexer", "58d6c9f7b4", f"{APP_ECR}/search/indexer:4.2.0", 8080, "200m", "512Mi")
    for name, ip, iid, launched in (
        ("ip-10-0-70-12.us-west-2.compute.internal", "10.0.70.12", "i-0b6c7d8e9f0a12345", t("06:10:05")),
        ("ip-10-0-83-145.us-west-2.compute.internal", "10.0.83.145", "i-0c7d8e9f0a1b23456", t("06:13:44")),
    ):
        n = add_node(b, Node(name=name, ip=ip, instance_id=iid, type="m5.xlarge", zone="us-west-2b", kind="mng",
                             max_pods=DEMO_XLARGE_MAX_PODS, launched=launched, registered=sec(launched, 35),
                             ready=sec(launched, 52), subnet=node_sub_b, nodegroup="search-m5-xl"))
        a = new_eni(b, n, 1, pod_sub_b, 14, sec(launched, 48))
        c = new_eni(b, n, 2, pod_sub_b, 11, sec(launched, 55))
        pods = make_pods(n, [(search, 6), (indexer, 4)], sec(launched, 70), 41)
        assign(pods, a.slots + c.slots)
    demo_shapes(b, node_sub_b)
    ct_unrelated(b)
    b.deployments = ["kube-system/coredns", "kube-system/ebs-csi-controller", "kube-system/karpenter"]
    finish_karpenter_crds(b)
    b.eniconfigs = [eniconfig_object(b, "us-west-2a", "subnet-0dd44ee55ff667788"),
                    eniconfig_object(b, "us-west-2b", "subnet-0ee55ff66aa778899")]
    return b


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def check_bundle(b: Bundle) -> None:
    names = set()
    ips: dict[str, str] = {}
    for p in b.pods():
        key = (p.ns, p.name)
        assert key not in names, f"{b.name}: duplicate pod {key}"
        names.add(key)
        if p.ip and not p.wl.host_network:
            assert p.ip not in ips, f"{b.name}: {p.ip} used by {ips[p.ip]} and {p.name}"
            ips[p.ip] = p.name
    for n in b.nodes:
        for e in n.enis:
            for s in e.slots:
                if s.pod is not None:
                    assert s.pod.node is n and s.pod.ip == s.ip
        for p in n.pods:
            if not p.waiting and not p.wl.host_network:
                assert any(s.pod is p for e in n.enis for s in e.slots), f"{p.name} holds no ipamd slot"
    for e in b.events:
        last = e["lastTimestamp"] or e["eventTime"]
        assert last[:19] <= k8s_ts(CAPTURED_AT)[:19], e["metadata"]["name"]
    for c in b.ct:
        assert c["EventTime"] <= aws_ts(CAPTURED_AT)


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_bundle(b: Bundle, out: str) -> None:
    check_bundle(b)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    write(os.path.join(out, "bundle.json"),
          json.dumps({"capturedAt": k8s_ts(CAPTURED_AT), "clusterName": CLUSTER, "region": REGION}) + "\n")
    k = lambda name: os.path.join(out, "kubernetes", name)  # noqa: E731
    write(k("nodes.json"), kubectl_list([node_object(b, n) for n in sorted(b.nodes, key=lambda n: n.name)]))
    pods = sorted(b.pods(), key=lambda p: (p.ns, p.name))
    write(k("pods.json"), kubectl_list([pod_object(p) for p in pods]))
    write(k("daemonsets.json"), kubectl_list([ds_object(b, b.aws_node, b.aws_node_ds), ds_object(b, b.kube_proxy, None)]))
    deps = []
    for key in sorted(b.deployments):
        ns, name = key.split("/")
        deps.append(deployment_object(b, b.workloads[(ns, name)]))
    write(k("deployments.json"), kubectl_list(deps))
    events = sorted(b.events, key=lambda e: (e["metadata"]["namespace"], e["metadata"]["name"]))
    write(k("events.json"), kubectl_list(events))
    if b.karpenter:
        write(k("nodeclaims.json"), kubectl_list(sorted(b.nodeclaims, key=lambda o: o["metadata"]["name"])))
        write(k("nodepools.json"), kubectl_list(b.nodepools))
        write(k("ec2nodeclasses.json"), kubectl_list(b.ec2nodeclasses))
    if b.nodeclasses:
        write(k("nodeclasses.json"), kubectl_list(b.nodeclasses))
    if b.eniconfigs is not None:
        write(k("eniconfigs.json"), kubectl_list(b.eniconfigs))

    types = sorted({n.type for n in b.nodes})
    write(os.path.join(out, "ec2", "instance-types.json"), aws_cli({"InstanceTypes": [itype(x) for x in types]}))
    write(os.path.join(out, "ec2", "subnets.json"),
          aws_cli({"Subnets": [subnet_json(b, s) for s in sorted(b.subnets.values(), key=lambda s: s.id)]}))
    enis = sorted(((n, e) for n in b.nodes for e in n.enis), key=lambda ne: ne[1].id)
    write(os.path.join(out, "ec2", "network-interfaces.json"), aws_cli({"NetworkInterfaces": [eni_json(n, e) for n, e in enis]}))
    for name in ("AssignPrivateIpAddresses", "AttachNetworkInterface", "CreateNetworkInterface"):
        evs = sorted((c for c in b.ct if c["EventName"] == name), key=lambda c: (c["EventTime"], c["EventId"]), reverse=True)
        write(os.path.join(out, "cloudtrail", f"{name}.json"), aws_cli({"Events": evs}))
    write(os.path.join(out, "ec2", "subnet-cidr-reservations.json"),
          aws_cli({"SubnetIpv4CidrReservations": [], "SubnetIpv6CidrReservations": []}))
    for n in b.nodes:
        if not n.runs_aws_node:
            continue  # no ipamd there: the node agent does not run either
        write(os.path.join(out, "ipamd", n.name, "enis.json"), ipamd_enis_json(n))
        if n.metrics is not None:
            write(os.path.join(out, "ipamd", n.name, "metrics.txt"), n.metrics)


SCENARIOS = {
    "karpenter-overcommit": scenario_karpenter_overcommit,
    "min-ip-target-stall": scenario_min_ip_target_stall,
    "healthy": scenario_healthy,
    "demo": scenario_demo,
}


def check_reference(root: str, ref_dir: str) -> None:
    """The payloads that must be verbatim copies of the reference files."""
    pairs = [
        (os.path.join(BUNDLE_DIRS["min-ip-target-stall"], "ipamd", "ip-10-0-36-41.us-west-2.compute.internal", "enis.json"),
         os.path.join("ipamd", "enis-stalled.json")),
        (os.path.join(BUNDLE_DIRS["min-ip-target-stall"], "ipamd", "ip-10-0-36-41.us-west-2.compute.internal", "metrics.txt"),
         os.path.join("ipamd", "metrics.txt")),
        (os.path.join(BUNDLE_DIRS["healthy"], "ipamd", "ip-10-0-20-14.us-west-2.compute.internal", "enis.json"),
         os.path.join("ipamd", "enis-healthy.json")),
    ]
    for ours, ref in pairs:
        a = open(os.path.join(root, ours), "rb").read()
        b_ = open(os.path.join(ref_dir, ref), "rb").read()
        if a != b_:
            raise SystemExit(f"{ours} differs from reference {ref}")
        print(f"ok: {ours} == reference {ref}", file=sys.stderr)
    for rel in REF_FILES:
        if _read_ref(rel) != open(os.path.join(ref_dir, rel), encoding="utf-8", newline="").read():
            raise SystemExit(f"tools/gen_bundles_reference/{rel} differs from the reference")
        print(f"ok: tools/gen_bundles_reference/{rel} == reference", file=sys.stderr)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=REPO, help="repository root to write under (default: this repository)")
    ap.add_argument("--check-reference", metavar="DIR", help="verify verbatim copies against this reference directory")
    ap.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="generate only these bundles")
    args = ap.parse_args(argv[1:])
    for name in args.only or list(SCENARIOS):
        out = os.path.join(args.root, BUNDLE_DIRS[name])
        write_bundle(SCENARIOS[name](), out)
        print(f"wrote {out}", file=sys.stderr)
    if args.check_reference:
        check_reference(args.root, args.check_reference)
    return 0


# --------------------------------------------------------------------------------------------
# reference inputs: verbatim copies of /work/shared/reference files, kept in tools/gen_bundles_reference/
# (--check-reference compares them with the originals)
# --------------------------------------------------------------------------------------------

REF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen_bundles_reference")


def _read_ref(rel: str) -> str:
    with open(os.path.join(REF_DIR, rel), encoding="utf-8", newline="") as f:
        return f.read()


REF_FILES = {
    "k8s/aws-node-daemonset.yaml": "REF_AWS_NODE_DS",
    "k8s/karpenter-deployment.yaml": "REF_KARPENTER_DEPLOYMENT",
    "k8s/node-karpenter-t4g-medium.yaml": "REF_NODE_T4G_MEDIUM",
    "k8s/nodeclaim-general-x7k2p.yaml": "REF_NODECLAIM",
    "k8s/nodepool-general.yaml": "REF_NODEPOOL",
    "k8s/ec2nodeclass-default.yaml": "REF_EC2NODECLASS",
    "k8s/eniconfig-us-west-2a.yaml": "REF_ENICONFIG_2A",
    "ipamd/metrics.txt": "REF_IPAMD_METRICS",
}
REF_AWS_NODE_DS = _read_ref("k8s/aws-node-daemonset.yaml")
REF_KARPENTER_DEPLOYMENT = _read_ref("k8s/karpenter-deployment.yaml")
REF_NODE_T4G_MEDIUM = _read_ref("k8s/node-karpenter-t4g-medium.yaml")
REF_NODECLAIM = _read_ref("k8s/nodeclaim-general-x7k2p.yaml")
REF_NODEPOOL = _read_ref("k8s/nodepool-general.yaml")
REF_EC2NODECLASS = _read_ref("k8s/ec2nodeclass-default.yaml")
REF_ENICONFIG_2A = _read_ref("k8s/eniconfig-us-west-2a.yaml")
REF_IPAMD_METRICS = _read_ref("ipamd/metrics.txt")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
