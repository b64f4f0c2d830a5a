"""Checks for the generated bundles (tests/bundles/*, bundles/demo).

* drift: tools/gen_bundles.py regenerated into a temp dir is byte-identical to the committed trees;
  on failure the message lists the differing, missing and extra files;
* cross references inside each committed bundle (pods <-> ipamd <-> EC2 ENIs <-> subnets <-> events
  <-> CloudTrail), so a hand edit that breaks consistency fails even if the generator is updated too;
* the expected numbers documented in tests/bundles/README.md, recomputed from the files.

Run: python3 -m pytest tests/python/test_bundles_drift.py
"""
from __future__ import annotations

import datetime as dt
import filecmp
import ipaddress
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEN = os.path.join(REPO, "tools", "gen_bundles.py")
BUNDLES = {
    "karpenter-overcommit": os.path.join("tests", "bundles", "karpenter-overcommit"),
    "min-ip-target-stall": os.path.join("tests", "bundles", "min-ip-target-stall"),
    "healthy": os.path.join("tests", "bundles", "healthy"),
    "demo": os.path.join("bundles", "demo"),
}

N1 = "ip-10-0-44-120.us-west-2.compute.internal"
N2 = "ip-10-0-45-17.us-west-2.compute.internal"
S1 = "ip-10-0-36-41.us-west-2.compute.internal"
S2 = "ip-10-0-52-200.us-west-2.compute.internal"
H1 = "ip-10-0-20-14.us-west-2.compute.internal"
H2 = "ip-10-0-71-36.us-west-2.compute.internal"
D2 = "ip-10-0-70-12.us-west-2.compute.internal"
D3 = "ip-10-0-83-145.us-west-2.compute.internal"

# node -> (instance type, capacity.pods, host pods, running pod-network pods, waiting pods,
#          ipamd TotalIPs, ipamd AssignedIPs, ENIs attached, pod-IP capacity, overcommit)
# Keep in sync with tests/bundles/README.md.
EXPECTED = {
    "karpenter-overcommit": {
        N1: ("t4g.medium", 17, 2, 10, 5, 10, 10, 3, 10, 5),
        N2: ("t4g.large", 35, 2, 20, 0, 22, 20, 3, 22, 11),
    },
    "min-ip-target-stall": {
        S1: ("m5.4xlarge", 234, 2, 25, 6, 25, 25, 1, 232, 0),
        S2: ("m5.4xlarge", 234, 2, 18, 0, 25, 18, 1, 232, 0),
    },
    "healthy": {
        H1: ("m5.large", 29, 2, 5, 0, 18, 5, 2, 27, 0),
        H2: ("m5.large", 29, 2, 9, 0, 18, 9, 2, 27, 0),
    },
    "demo": {
        N1: ("t4g.medium", 17, 2, 10, 5, 10, 10, 3, 10, 5),
        N2: ("t4g.large", 35, 2, 20, 0, 22, 20, 3, 22, 11),
        S1: ("m5.4xlarge", 110, 2, 25, 6, 25, 25, 2, 203, -95),
        D2: ("m5.xlarge", 44, 2, 10, 0, 25, 10, 3, 42, 0),
        D3: ("m5.xlarge", 44, 2, 10, 0, 25, 10, 3, 42, 0),
    },
}

SANDBOX_IP_FAILURE = "failed to assign an IP address to container"


def _tree(root: str) -> set[str]:
    out = set()
    for dirpath, _, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(dirpath, f), root))
    return out


def test_committed_bundles_match_generator(tmp_path):
    subprocess.run([sys.executable, GEN, "--root", str(tmp_path)], check=True, timeout=600,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    problems = []
    for name, rel in BUNDLES.items():
        committed = os.path.join(REPO, rel)
        fresh = os.path.join(tmp_path, rel)
        a, b = _tree(committed), _tree(fresh)
        for f in sorted(b - a):
            problems.append(f"missing in repository: {rel}/{f}")
        for f in sorted(a - b):
            problems.append(f"not produced by the generator: {rel}/{f}")
        for f in sorted(a & b):
            if not filecmp.cmp(os.path.join(committed, f), os.path.join(fresh, f), shallow=False):
                problems.append(f"differs: {rel}/{f}")
    if problems:
        pytest.fail("bundles are stale; run tools/gen_bundles.py\n" + "\n".join(problems))


SHARED_REFERENCE = os.path.join(os.path.dirname(REPO), "shared", "reference")


@pytest.mark.skipif(not os.path.isdir(SHARED_REFERENCE),
                    reason="../shared/reference (the project's reference inputs) is not beside this checkout")
def test_reference_copies_are_verbatim(tmp_path):
    # tools/gen_bundles_reference/* and the ipamd payloads rebuilt from structured data must equal
    # the reference files they stand for.
    r = subprocess.run([sys.executable, GEN, "--root", str(tmp_path), "--check-reference", SHARED_REFERENCE],
                       timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("ok: ") == 11, r.stderr


# --------------------------------------------------------------------------------------------


class Bundle:
    def __init__(self, name: str):
        self.name = name
        self.root = os.path.join(REPO, BUNDLES[name])

    def path(self, *parts) -> str:
        return os.path.join(self.root, *parts)

    def json(self, *parts):
        with open(self.path(*parts), encoding="utf-8") as f:
            return json.load(f)

    def exists(self, *parts) -> bool:
        return os.path.exists(self.path(*parts))

    def items(self, name: str) -> list:
        doc = self.json("kubernetes", name)
        assert doc["kind"] == "List" and doc["apiVersion"] == "v1" and doc["metadata"] == {"resourceVersion": ""}
        return doc["items"]


def parse_time(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def waiting_for_ip(p: dict) -> bool:
    if p["status"]["phase"] != "Pending":
        return False
    states = [c.get("state", {}).get("waiting", {}).get("reason") for c in p["status"].get("containerStatuses", [])]
    return "ContainerCreating" in states


def ipamd_assigned(enis: dict) -> dict[str, tuple[str, str, str]]:
    """address -> (ENI id, namespace, pod) for assigned addresses."""
    out = {}
    for eni in enis["0"]["ENIs"].values():
        for cidr in eni["AvailableIPv4Cidrs"].values():
            for addr in cidr["IPAddresses"].values():
                if addr["IPAMKey"]["networkName"]:
                    out[addr["Address"]] = (eni["ID"], addr["IPAMMetadata"]["k8sPodNamespace"], addr["IPAMMetadata"]["k8sPodName"])
    return out


def aws_node_env(b: Bundle) -> dict[str, str]:
    for ds in b.items("daemonsets.json"):
        if ds["metadata"]["name"] == "aws-node":
            c = [c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "aws-node"][0]
            return {e["name"]: e.get("value") for e in c["env"]}
    raise AssertionError("no aws-node DaemonSet")


@pytest.fixture(params=sorted(BUNDLES))
def bundle(request) -> Bundle:
    return Bundle(request.param)


def test_bundle_json(bundle):
    text = open(bundle.path("bundle.json"), encoding="utf-8").read()
    assert json.loads(text) == {"capturedAt": "2026-08-25T12:30:21Z", "clusterName": "prod-eks", "region": "us-west-2"}


def runs_ipamd(node: dict) -> bool:
    """aws-node's own node affinity (docs/design.md section 8): Linux, no Fargate/hybrid/Auto Mode compute type."""
    labels = node["metadata"]["labels"]
    return labels.get("kubernetes.io/os", "linux") == "linux" and "eks.amazonaws.com/compute-type" not in labels


def test_shape_nodes_have_no_ipamd_and_their_pods_hold_ec2_addresses(bundle):
    pods = bundle.items("pods.json")
    enis = bundle.json("ec2", "network-interfaces.json")["NetworkInterfaces"]
    shapes = [n for n in bundle.items("nodes.json") if not runs_ipamd(n)]
    assert {n["metadata"]["name"] for n in shapes} == (
        {"ip-10-0-77-20.us-west-2.compute.internal", "i-0f1e2d3c4b5a69788"} if bundle.name == "demo" else set())
    for n in shapes:
        name = n["metadata"]["name"]
        assert not bundle.exists("ipamd", name)
        mine = [p for p in pods if p["spec"].get("nodeName") == name]
        assert mine and not any(p["spec"].get("hostNetwork") for p in mine), "no aws-node/kube-proxy pods there"
        instance_id = n["spec"]["providerID"].rsplit("/", 1)[1]
        held = {a["PrivateIpAddress"] for e in enis if e["Attachment"]["InstanceId"] == instance_id
                for a in e["PrivateIpAddresses"] if not a["Primary"]}
        assert {p["status"]["podIP"] for p in mine} <= held


def test_pods_match_ipamd_and_enis(bundle):
    pods = bundle.items("pods.json")
    nodes = {n["metadata"]["name"]: n for n in bundle.items("nodes.json") if runs_ipamd(n)}
    enis_ec2 = bundle.json("ec2", "network-interfaces.json")["NetworkInterfaces"]
    subnets = {s["SubnetId"]: s for s in bundle.json("ec2", "subnets.json")["Subnets"]}
    by_name = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
    assert len(by_name) == len(pods)
    assert set(os.listdir(bundle.path("ipamd"))) == set(nodes)
    for node_name, node in nodes.items():
        raw = open(bundle.path("ipamd", node_name, "enis.json"), encoding="utf-8").read()
        assert not raw.endswith("\n") and ": " not in raw and ", " not in raw, "ipamd JSON must be compact"
        enis = json.loads(raw)
        assigned = ipamd_assigned(enis)
        info = enis["0"]
        total = sum(len(e["AvailableIPv4Cidrs"]) for e in info["ENIs"].values())
        assert (info["TotalIPs"], info["AssignedIPs"]) == (total, len(assigned))
        for ip, (_, ns, name) in assigned.items():
            p = by_name[(ns, name)]
            assert p["spec"]["nodeName"] == node_name and p["status"]["phase"] == "Running"
            assert p["status"]["podIP"] == ip and p["status"]["podIPs"] == [{"ip": ip}]
        node_ip = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"][0]
        for p in pods:
            if p["spec"]["nodeName"] != node_name:
                continue
            if p["spec"].get("hostNetwork"):
                assert p["status"]["podIP"] == node_ip
            elif p["status"]["phase"] == "Running":
                assert assigned.get(p["status"]["podIP"], (None, None, None))[1:] == (
                    p["metadata"]["namespace"], p["metadata"]["name"])
            else:
                assert "podIP" not in p["status"] and waiting_for_ip(p)
        # EC2's view of the node's ENIs equals ipamd's
        instance_id = node["spec"]["providerID"].rsplit("/", 1)[1]
        ec2 = {e["NetworkInterfaceId"]: e for e in enis_ec2 if e["Attachment"]["InstanceId"] == instance_id}
        assert set(ec2) == set(info["ENIs"])
        for eni_id, eni in info["ENIs"].items():
            e = ec2[eni_id]
            assert e["Attachment"]["DeviceIndex"] == eni["DeviceNumber"] and e["SubnetId"] == eni["SubnetID"]
            assert eni["IsPrimary"] == (eni["DeviceNumber"] == 0)
            assert eni["RouteTableID"] == (254 if eni["DeviceNumber"] == 0 else eni["DeviceNumber"] + 1)
            primary = [a for a in e["PrivateIpAddresses"] if a["Primary"]]
            assert [a["PrivateIpAddress"] for a in primary] == [e["PrivateIpAddress"]]
            secondaries = {a["PrivateIpAddress"] + "/32" for a in e["PrivateIpAddresses"] if not a["Primary"]}
            assert secondaries == set(eni["AvailableIPv4Cidrs"])
            assert e["Description"] == ("" if eni["DeviceNumber"] == 0 else f"aws-K8S-{instance_id}")
            net = ipaddress.ip_network(subnets[e["SubnetId"]]["CidrBlock"])
            assert all(ipaddress.ip_address(a["PrivateIpAddress"]) in net for a in e["PrivateIpAddresses"])
            if eni["DeviceNumber"] == 0:
                assert e["PrivateIpAddress"] == node_ip


def test_subnet_counts_plausible(bundle):
    for s in bundle.json("ec2", "subnets.json")["Subnets"]:
        size = ipaddress.ip_network(s["CidrBlock"]).num_addresses - 5
        used = sum(len(e["PrivateIpAddresses"]) for e in bundle.json("ec2", "network-interfaces.json")["NetworkInterfaces"]
                   if e["SubnetId"] == s["SubnetId"])
        assert 0 <= s["AvailableIpAddressCount"] <= size - used


def test_waiting_pods_have_recent_sandbox_events(bundle):
    captured = parse_time(bundle.json("bundle.json")["capturedAt"])
    events = bundle.items("events.json")
    for e in events:
        assert e["kind"] == "Event" and e["metadata"]["name"].startswith(e["involvedObject"]["name"] + ".")
        last = e["lastTimestamp"] or e["eventTime"]
        assert parse_time(last) <= captured
    failures = {}
    for e in events:
        if e["reason"] == "FailedCreatePodSandBox" and SANDBOX_IP_FAILURE in e["message"]:
            failures.setdefault(e["involvedObject"]["name"], []).append(e)
    pods = bundle.items("pods.json")
    for p in pods:
        if waiting_for_ip(p):
            evs = failures.get(p["metadata"]["name"])
            assert evs, p["metadata"]["name"]
            assert all(e["involvedObject"]["uid"] == p["metadata"]["uid"] for e in evs)
            assert any(captured - parse_time(e["lastTimestamp"]) <= dt.timedelta(minutes=10) for e in evs)
    # sandbox failures for pods that are Running now must be old
    running = {p["metadata"]["name"] for p in pods if p["status"]["phase"] == "Running"}
    for name, evs in failures.items():
        if name in running:
            assert all(captured - parse_time(e["lastTimestamp"]) > dt.timedelta(minutes=10) for e in evs)


def test_cloudtrail(bundle):
    enis = {e["NetworkInterfaceId"]: e for e in bundle.json("ec2", "network-interfaces.json")["NetworkInterfaces"]}
    files = sorted(os.listdir(bundle.path("cloudtrail")))
    assert files == ["AssignPrivateIpAddresses.json", "AttachNetworkInterface.json", "CreateNetworkInterface.json"]
    for f in files:
        events = bundle.json("cloudtrail", f)["Events"]
        times = [e["EventTime"] for e in events]
        assert times == sorted(times, reverse=True), "newest first"
        for e in events:
            rec = json.loads(e["CloudTrailEvent"])
            assert e["EventName"] == rec["eventName"] == f[:-5]
            assert rec["eventTime"].replace("Z", "+00:00") == e["EventTime"]
            assert rec["userIdentity"]["arn"].endswith("/" + e["Username"])
            assert "amazon-vpc-cni-k8s/" in rec["userAgent"]
            eni = rec["requestParameters"]["networkInterfaceId"] if "networkInterfaceId" in rec["requestParameters"] \
                else rec["responseElements"]["networkInterface"]["networkInterfaceId"]
            if eni in enis:  # a node of this cluster: instance and ENI agree with EC2
                assert enis[eni]["Attachment"]["InstanceId"] == e["Username"]


def test_instance_types_complete(bundle):
    types = {t["InstanceType"]: t for t in bundle.json("ec2", "instance-types.json")["InstanceTypes"]}
    for n in bundle.items("nodes.json"):
        t = types[n["metadata"]["labels"]["node.kubernetes.io/instance-type"]]
        assert {"NetworkInfo", "VCpuInfo", "MemoryInfo", "Hypervisor", "ProcessorInfo"} <= set(t)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_numbers(name):
    b = Bundle(name)
    env = aws_node_env(b)
    custom = env.get("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG") == "true"
    types = {t["InstanceType"]: t for t in b.json("ec2", "instance-types.json")["InstanceTypes"]}
    pods = b.items("pods.json")
    got = {}
    for n in filter(runs_ipamd, b.items("nodes.json")):
        name_ = n["metadata"]["name"]
        it = n["metadata"]["labels"]["node.kubernetes.io/instance-type"]
        net = types[it]["NetworkInfo"]
        card = [c for c in net["NetworkCards"] if c["NetworkCardIndex"] == net.get("DefaultNetworkCardIndex", 0)][0]
        cap_ips = (card["MaximumNetworkInterfaces"] - (1 if custom else 0)) * (net["Ipv4AddressesPerInterface"] - 1)
        mine = [p for p in pods if p["spec"]["nodeName"] == name_]
        host = sum(1 for p in mine if p["spec"].get("hostNetwork"))
        running = sum(1 for p in mine if not p["spec"].get("hostNetwork") and p["status"]["phase"] == "Running")
        waiting = sum(1 for p in mine if waiting_for_ip(p))
        info = b.json("ipamd", name_, "enis.json")["0"]
        max_pods = int(n["status"]["capacity"]["pods"])
        got[name_] = (it, max_pods, host, running, waiting, info["TotalIPs"], info["AssignedIPs"], len(info["ENIs"]),
                      cap_ips, max_pods - host - cap_ips)
    assert got == EXPECTED[name]


def test_scenario_settings():
    env = aws_node_env(Bundle("karpenter-overcommit"))
    assert env["AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"] == "true" and "MINIMUM_IP_TARGET" not in env
    assert env["WARM_ENI_TARGET"] == "1" and env["ENI_CONFIG_LABEL_DEF"] == "topology.kubernetes.io/zone"
    env = aws_node_env(Bundle("min-ip-target-stall"))
    assert env["AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"] == "false" and env["MINIMUM_IP_TARGET"] == "25"
    assert "WARM_IP_TARGET" not in env and env["ENABLE_PREFIX_DELEGATION"] == "false"
    env = aws_node_env(Bundle("healthy"))
    assert env["AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"] == "false"
    assert "MINIMUM_IP_TARGET" not in env and "WARM_IP_TARGET" not in env
    env = aws_node_env(Bundle("demo"))
    assert env["AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"] == "true" and env["MINIMUM_IP_TARGET"] == "25"
    stall = Bundle("min-ip-target-stall")
    for f in ("nodeclaims.json", "nodepools.json", "ec2nodeclasses.json", "eniconfigs.json"):
        assert not stall.exists("kubernetes", f)
    assert {d["metadata"]["name"] for d in stall.items("deployments.json")} == {"coredns", "ebs-csi-controller"}
    for name in ("karpenter-overcommit", "healthy", "demo"):
        deps = {d["metadata"]["name"]: d for d in Bundle(name).items("deployments.json")}
        c = deps["karpenter"]["spec"]["template"]["spec"]["containers"][0]
        assert {e["name"]: e.get("value") for e in c["env"]}["RESERVED_ENIS"] == "0"
    # the stalled node's CloudTrail: one call at node start, nothing after
    for name in ("min-ip-target-stall", "demo"):
        b = Bundle(name)
        calls = [e for f in os.listdir(b.path("cloudtrail")) for e in b.json("cloudtrail", f)["Events"]
                 if e["Username"] == "i-0a1b2c3d4e5f67890"]
        assert calls and max(e["EventTime"] for e in calls) <= "2026-08-25T10:00:00+00:00"
    demo_pod_subnet = [s for s in Bundle("demo").json("ec2", "subnets.json")["Subnets"]
                       if s["SubnetId"] == "subnet-0ee55ff66aa778899"][0]
    assert demo_pod_subnet["AvailableIpAddressCount"] < 50
