#!/usr/bin/env python3
"""Build a live "world" from a scenario bundle: moto_server resources + a rewritten bundle.

    python3 tests/fakes/world.py --scenario tests/bundles/min-ip-target-stall --out /tmp/w \
        --moto-endpoint http://127.0.0.1:5000 [--agent-base-port 0] [--region us-west-2]
        [--no-fill-subnets] [--no-agent-pods] [--now 2026-11-21T14:00:00Z]

What it does:
1. Shifts EVERY timestamp of the scenario by (now - capturedAt), in whole seconds, so the world is "live
   now": RFC 3339 strings anywhere in JSON and text files (any fraction length, Z or offsets, also inside
   the CloudTrailEvent JSON strings and ENI tags), epoch-valued `*_start_time_seconds` /
   `*_timestamp_seconds` samples of metrics.txt, bundle.json capturedAt (= now) and cloudtrailStartTime.
   Go's zero time `0001-01-01T00:00:00Z` (any year < 1900) is left alone.
2. Creates in moto (boto3, dummy credentials): a VPC 10.0.0.0/16 with DNS hostnames on, plus an
   associated /16 for every subnet outside it (100.64.0.0/16 for custom networking); the security groups
   the ENIs use; every subnet of ec2/subnets.json (same CIDR, AZ, tags); one instance per node of
   kubernetes/nodes.json (node's instance type, the subnet and private IP of its DeviceIndex-0 ENI, so the
   node's InternalIP is the instance's primary IP); the DeviceIndex-0 ENI's secondary IPs and tags go on
   the instance's own primary ENI; every other ENI of ec2/network-interfaces.json is created with the
   same private IPs (primary first), description and tags, and attached at the same DeviceIndex.
3. With subnet filling on (default), adds unattached "filler" ENIs (tag eks-ipam-exporter.test/filler,
   up to 1000 IPs each, taken from the top of the subnet) until moto's AvailableIpAddressCount equals the
   scenario's, so subnet findings (e.g. the demo's nearly full pod subnet) survive.
4. Writes OUT as a bundle of the same layout: every old VPC/subnet/instance/ENI/attachment/security-group
   id replaced by moto's (whole-token replace in every file, ipamd enis.json keys and SubnetID included),
   ec2/ REPLACED by what moto answers (describe-instance-types for the node types, describe-subnets and
   describe-network-interfaces filtered to the world's VPC; AWS CLI JSON, RFC 3339 strings, indent 4),
   and one node-agent pod per node added to kubernetes/pods.json (namespace eks-ipam-exporter, label
   app.kubernetes.io/name=eks-ipam-exporter + app.kubernetes.io/component=node, hostNetwork, podIP/hostIP 127.0.0.1, container `node`
   with port http-metrics = agent port).
5. Prints the summary JSON on stdout and writes it to OUT/world.json.
6. Optionally (--extra-nodes N, scenarios without custom networking) adds N synthetic healthy m5.large
   nodes in a fresh /18 node subnet, with pods, ipamd enis.json, moto instance + 2 ENIs each and their
   CloudTrail calls: a 100-node world for request-rate measurements.

NOTE: the agent pods are hostNetwork pods, so every node gets one more host-network pod than in the
scenario (overcommit = max pods - host pods - capacity drops by 1 per node). Use --no-agent-pods to
keep the scenario's pod set byte-for-byte (apart from ids and times).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import shutil
import socket
import sys
import time
from typing import Any

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ipamd import go_encode  # noqa: E402

RFC3339 = re.compile(r"(?<![0-9])(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
PROM_EPOCH = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:_start_time_seconds|_timestamp_seconds)(?:\{[^}]*\})?)"
                        r"\s+([0-9.]+(?:[eE][+-]?[0-9]+)?)(.*)$", re.M)
AGENT_NS = "eks-ipam-exporter"
AGENT_LABEL = "eks-ipam-exporter-node"
FILLER_TAG = "eks-ipam-exporter.test/filler"
FILLER_CHUNK = 1000
ID_PREFIXES = ("vpc-", "subnet-", "i-", "eni-", "eni-attach-", "sg-")


# ---------------------------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------------------------

def parse_time(v: Any) -> dt.datetime:
    if isinstance(v, (int, float)):
        return dt.datetime.fromtimestamp(float(v), dt.timezone.utc)
    s = str(v).strip()
    try:
        return dt.datetime.fromtimestamp(float(s), dt.timezone.utc)
    except ValueError:
        pass
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    t = dt.datetime.fromisoformat(s)
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def shift_text(text: str, shift: int) -> tuple[str, int]:
    """Shift every RFC 3339 timestamp by `shift` whole seconds, keeping its exact format."""
    n = 0

    def rep(m: re.Match) -> str:
        nonlocal n
        y, mo, d, h, mi, s, frac, tz = m.groups()
        if int(y) < 1900:  # Go zero time and other sentinels
            return m.group(0)
        if tz == "Z":
            off = dt.timezone.utc
        else:
            sign = 1 if tz[0] == "+" else -1
            off = dt.timezone(sign * dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
        t = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=off)
        t = (t + dt.timedelta(seconds=shift)).astimezone(off)
        n += 1
        return t.strftime("%Y-%m-%dT%H:%M:%S") + (frac or "") + tz

    return RFC3339.sub(rep, text), n


def shift_prom(text: str, shift: int) -> str:
    def rep(m: re.Match) -> str:
        v = float(m.group(2))
        if v < 1e9:  # not an epoch value
            return m.group(0)
        nv = v + shift
        orig = m.group(2).lower()
        if "e" in orig:
            mant = orig.split("e")[0]
            decimals = len(mant.split(".")[1]) if "." in mant else 0
            out = f"{nv:.{decimals}e}"
        else:
            out = repr(nv)
        return f"{m.group(1)} {out}{m.group(3)}"

    return PROM_EPOCH.sub(rep, text)


# ---------------------------------------------------------------------------------------------
# ids
# ---------------------------------------------------------------------------------------------

def replace_ids(text: str, mapping: dict[str, str]) -> str:
    if not mapping:
        return text
    keys = sorted(mapping, key=len, reverse=True)
    pat = re.compile(r"(?<![0-9A-Za-z])(" + "|".join(re.escape(k) for k in keys) + r")(?![0-9A-Za-z])")
    return pat.sub(lambda m: mapping[m.group(1)], text)


def to_cli(o: Any) -> Any:
    """boto3 response -> AWS CLI JSON (datetimes as RFC 3339 with +00:00, like the CLI prints them)."""
    if isinstance(o, dt.datetime):
        return o.astimezone(dt.timezone.utc).isoformat()
    if isinstance(o, dict):
        return {k: to_cli(v) for k, v in o.items() if k != "ResponseMetadata"}
    if isinstance(o, list):
        return [to_cli(v) for v in o]
    return o


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# builder
# ---------------------------------------------------------------------------------------------

class World:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.src = a.scenario
        self.out = a.out
        self.files: dict[str, str] = {}
        self.ids: dict[str, dict[str, str]] = {k: {} for k in ("vpc", "subnet", "instance", "eni", "attachment",
                                                               "securityGroup")}
        self.ec2 = boto3.client("ec2", region_name=a.region, endpoint_url=a.moto_endpoint,
                                aws_access_key_id="testing", aws_secret_access_key="testing")
        self.summary: dict[str, Any] = {}

    # -- input ------------------------------------------------------------------------------
    def load(self) -> None:
        for root, _dirs, names in os.walk(self.src):
            for n in names:
                p = os.path.join(root, n)
                rel = os.path.relpath(p, self.src)
                with open(p, "rb") as f:
                    raw = f.read()
                try:
                    self.files[rel] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    sys.exit(f"world: {p} is not UTF-8 text")
        if "bundle.json" not in self.files:
            sys.exit(f"world: {self.src}/bundle.json missing (needed for capturedAt)")

    def jf(self, rel: str) -> Any:
        return json.loads(self.files[rel]) if rel in self.files else None

    # -- 1. time ----------------------------------------------------------------------------
    def shift_times(self) -> None:
        meta = json.loads(self.files["bundle.json"])
        captured = parse_time(meta["capturedAt"])
        now = parse_time(self.a.now) if self.a.now else dt.datetime.now(dt.timezone.utc)
        now = now.replace(microsecond=0)
        shift = int((now - captured).total_seconds())
        total = 0
        for rel in list(self.files):
            if rel == "bundle.json":
                continue
            text, n = shift_text(self.files[rel], shift)
            if rel.endswith(".txt"):
                text = shift_prom(text, shift)
            self.files[rel] = text
            total += n
        meta["capturedAt"] = rfc3339(now)
        if "cloudtrailStartTime" in meta:
            cst = meta["cloudtrailStartTime"]
            t = parse_time(cst) + dt.timedelta(seconds=shift)
            meta["cloudtrailStartTime"] = t.timestamp() if isinstance(cst, (int, float)) else rfc3339(t)
        self.files["bundle.json"] = json.dumps(meta) + "\n"
        self.meta = meta
        self.summary.update({"shiftSeconds": shift, "originalCapturedAt": rfc3339(captured),
                             "capturedAt": rfc3339(now), "timestampsShifted": total})

    # -- 2. moto ----------------------------------------------------------------------------
    def build_moto(self) -> None:
        ec2 = self.ec2
        subnets = (self.jf("ec2/subnets.json") or {}).get("Subnets", [])
        enis = (self.jf("ec2/network-interfaces.json") or {}).get("NetworkInterfaces", [])
        nodes = (self.jf("kubernetes/nodes.json") or {}).get("items", [])
        cluster = self.meta.get("clusterName", "cluster")

        # VPC + CIDRs
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16",
                             TagSpecifications=[{"ResourceType": "vpc",
                                                 "Tags": [{"Key": "Name", "Value": f"{cluster}-vpc"}]}])["Vpc"]
        vpc_id = vpc["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        blocks = [ipaddress.ip_network("10.0.0.0/16")]
        for s in subnets:
            net = ipaddress.ip_network(s["CidrBlock"])
            if not any(net.subnet_of(b) for b in blocks):
                sup = net.supernet(new_prefix=16) if net.prefixlen >= 16 else net
                ec2.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock=str(sup))
                blocks.append(sup)
        for s in subnets:
            if s.get("VpcId"):
                self.ids["vpc"][s["VpcId"]] = vpc_id
        for e in enis:
            if e.get("VpcId"):
                self.ids["vpc"][e["VpcId"]] = vpc_id
        self.vpc_id = vpc_id

        # security groups
        default_sg = ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"][0]["GroupId"]
        for e in enis:
            for g in e.get("Groups") or []:
                gid = g["GroupId"]
                if gid in self.ids["securityGroup"]:
                    continue
                name = g.get("GroupName") or gid
                if name == "default":
                    self.ids["securityGroup"][gid] = default_sg
                else:
                    self.ids["securityGroup"][gid] = ec2.create_security_group(
                        GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]

        # subnets
        for s in subnets:
            new = ec2.create_subnet(VpcId=vpc_id, CidrBlock=s["CidrBlock"],
                                    AvailabilityZone=s["AvailabilityZone"])["Subnet"]["SubnetId"]
            self.ids["subnet"][s["SubnetId"]] = new
            if s.get("Tags"):
                ec2.create_tags(Resources=[new], Tags=s["Tags"])

        # instances
        by_instance: dict[str, list[dict]] = {}
        for e in enis:
            inst = (e.get("Attachment") or {}).get("InstanceId")
            if inst:
                by_instance.setdefault(inst, []).append(e)
        self.node_info: dict[str, dict] = {}
        for n in nodes:
            md = n["metadata"]
            name = md["name"]
            labels = md.get("labels") or {}
            pid = (n.get("spec") or {}).get("providerID", "")
            old_iid = pid.rsplit("/", 1)[-1] if pid.startswith("aws://") else None
            itype = labels.get("node.kubernetes.io/instance-type") or labels.get("beta.kubernetes.io/instance-type")
            internal = next((a["address"] for a in (n.get("status") or {}).get("addresses") or []
                             if a.get("type") == "InternalIP"), None)
            prim = next((e for e in by_instance.get(old_iid or "", [])
                         if (e.get("Attachment") or {}).get("DeviceIndex") == 0), None)
            if prim is not None:
                old_subnet, ip = prim["SubnetId"], prim["PrivateIpAddress"]
            else:
                ip = internal
                old_subnet = next((s["SubnetId"] for s in subnets if internal and
                                   ipaddress.ip_address(internal) in ipaddress.ip_network(s["CidrBlock"])), None)
            if old_subnet not in self.ids["subnet"] or not itype:
                sys.exit(f"world: cannot place node {name}: subnet {old_subnet}, type {itype}")
            tags = [{"Key": "Name", "Value": name}, {"Key": f"kubernetes.io/cluster/{cluster}", "Value": "owned"}]
            if labels.get("karpenter.sh/nodepool"):
                tags.append({"Key": "karpenter.sh/nodepool", "Value": labels["karpenter.sh/nodepool"]})
                tags.append({"Key": "eks:eks-cluster-name", "Value": cluster})
            if labels.get("eks.amazonaws.com/nodegroup"):
                tags.append({"Key": "eks:nodegroup-name", "Value": labels["eks.amazonaws.com/nodegroup"]})
            sgs = [self.ids["securityGroup"][g["GroupId"]] for g in (prim or {}).get("Groups") or []] or [default_sg]
            inst = ec2.run_instances(ImageId="ami-0123456789abcdef0", InstanceType=itype, MinCount=1, MaxCount=1,
                                     SubnetId=self.ids["subnet"][old_subnet], PrivateIpAddress=ip,
                                     SecurityGroupIds=sgs,
                                     TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"][0]
            new_iid = inst["InstanceId"]
            if old_iid:
                self.ids["instance"][old_iid] = new_iid
            nic = next(x for x in inst["NetworkInterfaces"] if x["Attachment"]["DeviceIndex"] == 0)
            if prim is not None:
                self.ids["eni"][prim["NetworkInterfaceId"]] = nic["NetworkInterfaceId"]
                old_att = (prim.get("Attachment") or {}).get("AttachmentId")
                if old_att:
                    self.ids["attachment"][old_att] = nic["Attachment"]["AttachmentId"]
            self.node_info[name] = {"old": old_iid, "new": new_iid, "prim": prim, "nic": nic["NetworkInterfaceId"],
                                    "zone": inst["Placement"]["AvailabilityZone"], "internalIP": ip,
                                    "instanceType": itype,
                                    # deploy/daemonset.yaml's affinity (aws-node's): Linux EC2 nodes only
                                    "runsAgent": labels.get("kubernetes.io/os", "linux") == "linux"
                                    and "eks.amazonaws.com/compute-type" not in labels}

        # ENIs (ids known so far go into descriptions and tags)
        def m(text: str) -> str:
            return replace_ids(text, self.flat_ids())

        def mtags(tags: list[dict] | None) -> list[dict]:
            return [{"Key": m(t["Key"]), "Value": m(t.get("Value", ""))} for t in tags or []]

        for info in self.node_info.values():
            prim = info["prim"]
            if prim is None:
                continue
            sec = [p["PrivateIpAddress"] for p in prim.get("PrivateIpAddresses") or [] if not p.get("Primary")]
            for i in range(0, len(sec), FILLER_CHUNK):
                ec2.assign_private_ip_addresses(NetworkInterfaceId=info["nic"], PrivateIpAddresses=sec[i:i + FILLER_CHUNK])
            if prim.get("TagSet"):
                ec2.create_tags(Resources=[info["nic"]], Tags=mtags(prim["TagSet"]))
            ec2.modify_network_interface_attribute(NetworkInterfaceId=info["nic"],
                                                   Description={"Value": m(prim.get("Description") or "")})
        self.used_ips: dict[str, set[str]] = {}
        for e in enis:
            for p in e.get("PrivateIpAddresses") or []:
                self.used_ips.setdefault(e["SubnetId"], set()).add(p["PrivateIpAddress"])
        for e in sorted(enis, key=lambda e: ((e.get("Attachment") or {}).get("InstanceId") or "",
                                             (e.get("Attachment") or {}).get("DeviceIndex") or 0)):
            if e["NetworkInterfaceId"] in self.ids["eni"]:
                continue
            ips = [p["PrivateIpAddress"] for p in sorted(e.get("PrivateIpAddresses") or [],
                                                         key=lambda p: not p.get("Primary"))]
            if not ips:
                ips = [e["PrivateIpAddress"]]
            first, rest = ips[:1], ips[1:]
            kw: dict[str, Any] = {
                "SubnetId": self.ids["subnet"][e["SubnetId"]],
                "Description": m(e.get("Description") or ""),
                "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": first[0]}],
            }
            groups = [self.ids["securityGroup"][g["GroupId"]] for g in e.get("Groups") or []]
            if groups:
                kw["Groups"] = groups
            if e.get("TagSet"):
                kw["TagSpecifications"] = [{"ResourceType": "network-interface", "Tags": mtags(e["TagSet"])}]
            new = ec2.create_network_interface(**kw)["NetworkInterface"]["NetworkInterfaceId"]
            for i in range(0, len(rest), FILLER_CHUNK):
                ec2.assign_private_ip_addresses(NetworkInterfaceId=new, PrivateIpAddresses=rest[i:i + FILLER_CHUNK])
            self.ids["eni"][e["NetworkInterfaceId"]] = new
            att = e.get("Attachment") or {}
            if att.get("InstanceId") in self.ids["instance"]:
                r = ec2.attach_network_interface(NetworkInterfaceId=new, DeviceIndex=int(att.get("DeviceIndex", 1)),
                                                 InstanceId=self.ids["instance"][att["InstanceId"]])
                if att.get("AttachmentId"):
                    self.ids["attachment"][att["AttachmentId"]] = r["AttachmentId"]

        # filler: make moto's AvailableIpAddressCount equal the scenario's
        self.fill = {}
        if not self.a.no_fill_subnets:
            live = {s["SubnetId"]: s for s in ec2.describe_subnets(
                Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]}
            for s in subnets:
                new = self.ids["subnet"][s["SubnetId"]]
                want = int(s.get("AvailableIpAddressCount", live[new]["AvailableIpAddressCount"]))
                extra = int(live[new]["AvailableIpAddressCount"]) - want
                if extra > 0:
                    self.fill[new] = self._fill(new, s["CidrBlock"], self.used_ips.get(s["SubnetId"], set()), extra)

    # -- optional: synthetic healthy nodes for scale tests ---------------------------------------
    def build_extra(self, count: int) -> None:
        """Add `count` healthy m5.large nodes (default networking only) in a fresh /18 node subnet:
        Node, aws-node/kube-proxy pods (cloned from the scenario), 3 workload pods, ipamd enis.json
        (2 ENIs x 9 IPs, 3 assigned, Go-encoded), moto instance + ENIs, and their CloudTrail calls
        (Assign at launch, Create+Attach of the warm ENI)."""
        ec2 = self.ec2
        env = self._aws_node_env()
        if str(env.get("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "false")).lower() == "true":
            sys.exit("world: --extra-nodes needs a scenario without custom networking (e.g. healthy)")
        taken = [ipaddress.ip_network(s["CidrBlock"]) for s in
                 (self.jf("ec2/subnets.json") or {}).get("Subnets", [])]
        block = next((b for b in ipaddress.ip_network("10.0.0.0/16").subnets(new_prefix=18)
                      if not any(b.overlaps(t) for t in taken)), None)
        if block is None or count * 20 > block.num_addresses - 20:
            sys.exit("world: no free /18 in 10.0.0.0/16 for --extra-nodes (or too many nodes)")
        zone = "us-west-2c"
        cluster = self.meta.get("clusterName", "cluster")
        subnet = ec2.create_subnet(VpcId=self.vpc_id, CidrBlock=str(block), AvailabilityZone=zone)["Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[subnet], Tags=[{"Key": "Name", "Value": f"{cluster}-extra-nodes-{zone}"},
                                                  {"Key": f"kubernetes.io/cluster/{cluster}", "Value": "shared"}])
        self.extra_subnet = subnet
        sg = next(iter(self.ids["securityGroup"].values()), None)
        now = parse_time(self.meta["capturedAt"])
        docs = {k: self.jf(f"kubernetes/{k}.json") or {"apiVersion": "v1", "items": [], "kind": "List",
                                                       "metadata": {"resourceVersion": ""}}
                for k in ("nodes", "pods")}
        templates = {}
        for pod in docs["pods"]["items"]:
            lbl = (pod["metadata"].get("labels") or {}).get("k8s-app")
            if lbl in ("aws-node", "kube-proxy") and lbl not in templates:
                templates[lbl] = pod
        ct: dict[str, list[dict]] = {"AssignPrivateIpAddresses": [], "CreateNetworkInterface": [],
                                     "AttachNetworkInterface": []}
        base = int(block.network_address) + 10
        for i in range(count):
            ips = [str(ipaddress.ip_address(base + 20 * i + k)) for k in range(20)]
            node_ip = ips[0]
            name = f"ip-{node_ip.replace('.', '-')}.us-west-2.compute.internal"
            launched = now - dt.timedelta(hours=3, minutes=i % 60)
            inst = ec2.run_instances(ImageId="ami-0123456789abcdef0", InstanceType="m5.large", MinCount=1, MaxCount=1,
                                     SubnetId=subnet, PrivateIpAddress=node_ip,
                                     SecurityGroupIds=[sg] if sg else [],
                                     TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                         {"Key": "Name", "Value": name},
                                         {"Key": f"kubernetes.io/cluster/{cluster}", "Value": "owned"},
                                         {"Key": "eks:nodegroup-name", "Value": "extra-m5-large"}]}])["Instances"][0]
            iid = inst["InstanceId"]
            nic0 = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
            ec2.assign_private_ip_addresses(NetworkInterfaceId=nic0, PrivateIpAddresses=ips[1:10])
            ec2.create_tags(Resources=[nic0], Tags=[{"Key": "cluster.k8s.amazonaws.com/name", "Value": cluster},
                                                    {"Key": "node.k8s.amazonaws.com/instance_id", "Value": iid}])
            kw: dict[str, Any] = {"SubnetId": subnet, "Description": f"aws-K8S-{iid}",
                                  "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": ips[10]}],
                                  "TagSpecifications": [{"ResourceType": "network-interface", "Tags": [
                                      {"Key": "cluster.k8s.amazonaws.com/name", "Value": cluster},
                                      {"Key": "eks:eni:owner", "Value": "amazon-vpc-cni"},
                                      {"Key": "node.k8s.amazonaws.com/createdAt",
                                       "Value": rfc3339(launched + dt.timedelta(seconds=80))},
                                      {"Key": "node.k8s.amazonaws.com/instance_id", "Value": iid}]}]}
            if sg:
                kw["Groups"] = [sg]
            eni1 = ec2.create_network_interface(**kw)["NetworkInterface"]["NetworkInterfaceId"]
            ec2.assign_private_ip_addresses(NetworkInterfaceId=eni1, PrivateIpAddresses=ips[11:20])
            ec2.attach_network_interface(NetworkInterfaceId=eni1, DeviceIndex=1, InstanceId=iid)
            self.node_info[name] = {"old": None, "new": iid, "prim": None, "nic": nic0, "zone": zone,
                                    "internalIP": node_ip, "instanceType": "m5.large", "extra": True}
            docs["nodes"]["items"].append(self._extra_node(name, node_ip, iid, zone, launched))
            pods = []
            for lbl, tpl in sorted(templates.items()):
                pod = json.loads(json.dumps(tpl))
                md = pod["metadata"]
                md["name"] = f"{lbl}-{hashlib.sha256(name.encode()).hexdigest()[:5]}"
                md["uid"] = self._uuid(lbl + name)
                md["creationTimestamp"] = rfc3339(launched + dt.timedelta(seconds=30))
                pod["spec"]["nodeName"] = name
                st = pod.setdefault("status", {})
                st.update({"hostIP": node_ip, "hostIPs": [{"ip": node_ip}], "podIP": node_ip,
                           "podIPs": [{"ip": node_ip}], "phase": "Running"})
                pods.append(pod)
            assigned: dict[str, tuple[str, str]] = {}
            for j in range(3):
                pname = f"extra-app-{i:03d}-{j}"
                ip = ips[1 + j]
                assigned[ip] = ("default", pname)
                pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "creationTimestamp": rfc3339(launched + dt.timedelta(minutes=5)), "name": pname,
                    "namespace": "default", "labels": {"app": "extra-app"}, "uid": self._uuid(pname),
                    "resourceVersion": str(80000000 + 10 * i + j)},
                    "spec": {"containers": [{"name": "app", "image": "public.ecr.aws/nginx/nginx:1.27"}],
                             "nodeName": name, "restartPolicy": "Always", "schedulerName": "default-scheduler"},
                    "status": {"phase": "Running", "hostIP": node_ip, "hostIPs": [{"ip": node_ip}], "podIP": ip,
                               "podIPs": [{"ip": ip}], "startTime": rfc3339(launched + dt.timedelta(minutes=5))}})
            docs["pods"]["items"].extend(pods)
            enis = {nic0: self._ipamd_eni(nic0, True, 0, 254, subnet, ips[1:10], assigned, launched),
                    eni1: self._ipamd_eni(eni1, False, 1, 2, subnet, ips[11:20], assigned, launched)}
            doc = {"0": {"TotalIPs": 18, "AssignedIPs": 3, "ENIs": enis}}
            self.files[os.path.join("ipamd", name, "enis.json")] = go_encode(doc).decode()
            for op, t, res in (("AssignPrivateIpAddresses", launched + dt.timedelta(seconds=75), [nic0]),
                               ("CreateNetworkInterface", launched + dt.timedelta(seconds=80), [eni1]),
                               ("AttachNetworkInterface", launched + dt.timedelta(seconds=81), [eni1, iid])):
                ct[op].append(self._ct_event(op, t, iid, node_ip, res, cluster))
        for k, d in docs.items():
            self.files[os.path.join("kubernetes", f"{k}.json")] = json.dumps(d, indent=4) + "\n"
        for op, evs in ct.items():
            rel = os.path.join("cloudtrail", f"{op}.json")
            d = self.jf(rel) or {"Events": []}
            d["Events"] = sorted(d["Events"] + evs, key=lambda e: parse_time(e["EventTime"]), reverse=True)
            self.files[rel] = json.dumps(d, indent=4) + "\n"

    def _aws_node_env(self) -> dict[str, str]:
        for ds in (self.jf("kubernetes/daemonsets.json") or {}).get("items", []):
            if ds["metadata"]["name"] == "aws-node":
                for c in ds["spec"]["template"]["spec"]["containers"]:
                    if c["name"] == "aws-node":
                        return {e["name"]: e.get("value", "") for e in c.get("env") or []}
        return {}

    @staticmethod
    def _uuid(seed: str) -> str:
        h = hashlib.sha256(seed.encode()).hexdigest()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def _extra_node(self, name: str, ip: str, iid: str, zone: str, launched: dt.datetime) -> dict:
        hb = rfc3339(parse_time(self.meta["capturedAt"]) - dt.timedelta(seconds=40))
        ready = rfc3339(launched + dt.timedelta(seconds=60))
        conds = [(t, "False", r, m) for t, r, m in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))]
        conds.append(("Ready", "True", "KubeletReady", "kubelet is posting ready status"))
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": self._uuid(name), "resourceVersion": str(70000000 + len(self.node_info)),
                         "creationTimestamp": rfc3339(launched + dt.timedelta(seconds=50)),
                         "annotations": {"alpha.kubernetes.io/provided-node-ip": ip,
                                         "node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": "m5.large",
                                    "beta.kubernetes.io/os": "linux", "eks.amazonaws.com/capacityType": "ON_DEMAND",
                                    "eks.amazonaws.com/nodegroup": "extra-m5-large",
                                    "failure-domain.beta.kubernetes.io/region": "us-west-2",
                                    "failure-domain.beta.kubernetes.io/zone": zone, "kubernetes.io/arch": "amd64",
                                    "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                    "node.kubernetes.io/instance-type": "m5.large",
                                    "topology.kubernetes.io/region": "us-west-2", "topology.kubernetes.io/zone": zone}},
            "spec": {"providerID": f"aws:///{zone}/{iid}"},
            "status": {
                "addresses": [{"address": ip, "type": "InternalIP"}, {"address": name, "type": "InternalDNS"},
                              {"address": name, "type": "Hostname"}],
                "allocatable": {"cpu": "1930m", "ephemeral-storage": "18181869978", "hugepages-1Gi": "0",
                                "hugepages-2Mi": "0", "memory": "7392390Ki", "pods": "29"},
                "capacity": {"cpu": "2", "ephemeral-storage": "20893676Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                             "memory": "8082566Ki", "pods": "29"},
                "conditions": [{"lastHeartbeatTime": hb, "lastTransitionTime": ready, "message": m, "reason": r,
                                "status": st, "type": t} for t, st, r, m in conds],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"architecture": "amd64", "bootID": self._uuid("boot" + name),
                             "containerRuntimeVersion": "containerd://2.1.4",
                             "kernelVersion": "6.12.37-61.105.amzn2023.x86_64", "kubeProxyVersion": "",
                             "kubeletVersion": "v1.33.3-eks-ace6451", "machineID": self._uuid("m" + name).replace("-", ""),
                             "operatingSystem": "linux", "osImage": "Amazon Linux 2023.8.20260812",
                             "systemUUID": self._uuid("s" + name)},
            },
        }

    @staticmethod
    def _ipamd_eni(eni: str, primary: bool, dev: int, rt: int, subnet: str, ips: list[str],
                   assigned: dict[str, tuple[str, str]], launched: dt.datetime) -> dict:
        cidrs = {}
        for ip in ips:
            addrs = {}
            if ip in assigned:
                ns, pod = assigned[ip]
                t = launched + dt.timedelta(minutes=5, microseconds=int(hashlib.sha256(ip.encode()).hexdigest()[:5], 16))
                addrs[ip] = {"Address": ip, "IPAMKey": {"networkName": "aws-cni", "containerID": "", "ifName": ""},
                             "IPAMMetadata": {"k8sPodNamespace": ns, "k8sPodName": pod, "interfacesCount": 1},
                             "AssignedTime": t.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z",
                             "UnassignedTime": "0001-01-01T00:00:00Z"}
            cidrs[f"{ip}/32"] = {"Cidr": {"IP": ip, "Mask": "/////w=="}, "IPAddresses": addrs, "IsPrefix": False,
                                 "AddressFamily": ""}
        return {"ID": eni, "IsPrimary": primary, "IsTrunk": False, "IsEFA": False, "DeviceNumber": dev,
                "AvailableIPv4Cidrs": cidrs, "IPv6Cidrs": {}, "IsExcludedForPodIPs": False, "RouteTableID": rt,
                "SubnetID": subnet}

    def _ct_event(self, op: str, t: dt.datetime, iid: str, ip: str, resources: list[str], cluster: str) -> dict:
        eid = self._uuid(op + iid)
        req: dict[str, Any]
        if op == "AssignPrivateIpAddresses":
            req = {"networkInterfaceId": resources[0], "privateIpAddressesSet": {}, "secondaryPrivateIpAddressCount": 9}
        elif op == "CreateNetworkInterface":
            req = {"subnetId": self.extra_subnet, "description": f"aws-K8S-{iid}", "privateIpAddressesSet": {},
                   "secondaryPrivateIpAddressCount": 9}
        else:
            req = {"networkInterfaceId": resources[0], "instanceId": iid, "deviceIndex": 1, "networkCardIndex": 0}
        role = f"eks-{cluster}-node-role"
        inner = {"eventVersion": "1.11",
                 "userIdentity": {"type": "AssumedRole", "principalId": f"AROAEXAMPLEEXTRA001:{iid}",
                                  "arn": f"arn:aws:sts::111122223333:assumed-role/{role}/{iid}",
                                  "accountId": "111122223333", "accessKeyId": "ASIAEXAMPLEEXTRA0001"},
                 "eventTime": rfc3339(t), "eventSource": "ec2.amazonaws.com", "eventName": op,
                 "awsRegion": "us-west-2", "sourceIPAddress": ip,
                 "userAgent": "aws-sdk-go-v2/1.36.5 ua/2.1 os/linux lang/go#1.24.4 api/ec2#1.227.0 m/E,g "
                              "amazon-vpc-cni-k8s/v1.20.4",
                 "requestParameters": req, "responseElements": {"requestId": eid}, "requestID": eid, "eventID": eid,
                 "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
                 "recipientAccountId": "111122223333", "eventCategory": "Management"}
        res = [{"ResourceType": "AWS::EC2::Instance" if r.startswith("i-") else "AWS::EC2::NetworkInterface",
                "ResourceName": r} for r in resources]
        return {"EventId": eid, "EventName": op, "ReadOnly": "false", "AccessKeyId": "ASIAEXAMPLEEXTRA0001",
                "EventTime": t.astimezone(dt.timezone.utc).isoformat(), "EventSource": "ec2.amazonaws.com",
                "Username": iid, "Resources": res, "CloudTrailEvent": json.dumps(inner, separators=(",", ":"))}

    def _fill(self, subnet_id: str, cidr: str, used: set[str], count: int) -> int:
        net = ipaddress.ip_network(cidr)
        first_ok = int(net.network_address) + 4  # AWS reserves .0-.3 and the last address
        last_ok = int(net.broadcast_address) - 1
        ips: list[str] = []
        v = last_ok
        while len(ips) < count and v >= first_ok:
            ip = str(ipaddress.ip_address(v))
            if ip not in used:
                ips.append(ip)
            v -= 1
        for i in range(0, len(ips), FILLER_CHUNK):
            chunk = ips[i:i + FILLER_CHUNK]
            eni = self.ec2.create_network_interface(
                SubnetId=subnet_id, Description="eks-ipam-exporter test filler (other workloads)",
                PrivateIpAddresses=[{"Primary": True, "PrivateIpAddress": chunk[0]}],
                TagSpecifications=[{"ResourceType": "network-interface",
                                    "Tags": [{"Key": FILLER_TAG, "Value": "true"}]}])["NetworkInterface"]
            if chunk[1:]:
                self.ec2.assign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                                     PrivateIpAddresses=chunk[1:])
        return len(ips)

    def flat_ids(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for d in self.ids.values():
            out.update(d)
        return out

    # -- 3. output --------------------------------------------------------------------------
    def write(self) -> None:
        mapping = self.flat_ids()
        if os.path.exists(self.out):
            shutil.rmtree(self.out)
        os.makedirs(self.out)
        for rel, text in self.files.items():
            if rel.startswith("ec2" + os.sep) or rel == "world.json":
                continue
            rel_out = replace_ids(rel, mapping)
            text = replace_ids(text, mapping)
            if rel == os.path.join("kubernetes", "pods.json") and not self.a.no_agent_pods:
                text = self._add_agents(text)
            if rel.startswith("ipamd" + os.sep) and rel.endswith("enis.json"):
                # new ENI ids change Go's (sorted) map-key order: re-encode like ipamd would
                text = go_encode(json.loads(text)).decode()
            p = os.path.join(self.out, rel_out)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)
        if not self.a.no_agent_pods and os.path.join("kubernetes", "pods.json") not in self.files:
            p = os.path.join(self.out, "kubernetes", "pods.json")
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8") as f:
                f.write(self._add_agents(json.dumps({"apiVersion": "v1", "items": [], "kind": "List",
                                                     "metadata": {"resourceVersion": ""}})))
        # ec2/ from moto
        ec2 = self.ec2
        vf = [{"Name": "vpc-id", "Values": [self.vpc_id]}]
        types = sorted({i["instanceType"] for i in self.node_info.values()})
        out_ec2 = {
            "instance-types.json": to_cli(ec2.describe_instance_types(InstanceTypes=types)) if types else
            {"InstanceTypes": []},
            "subnets.json": to_cli(ec2.describe_subnets(Filters=vf)),
            "network-interfaces.json": to_cli(ec2.describe_network_interfaces(Filters=vf)),
        }
        subnet_ids = [x["SubnetId"] for x in out_ec2["subnets.json"]["Subnets"]]
        out_ec2["subnet-cidr-reservations.json"] = {"SubnetIpv4CidrReservations": [
            to_cli(r) for sid in subnet_ids
            for r in ec2.get_subnet_cidr_reservations(SubnetId=sid)["SubnetIpv4CidrReservations"]]}
        os.makedirs(os.path.join(self.out, "ec2"), exist_ok=True)
        for name, doc in out_ec2.items():
            with open(os.path.join(self.out, "ec2", name), "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=4)
                f.write("\n")
        self.summary.update({
            "scenario": os.path.abspath(self.src),
            "out": os.path.abspath(self.out),
            "region": self.a.region,
            "motoEndpoint": self.a.moto_endpoint,
            "vpcId": self.vpc_id,
            "ids": self.ids,
            "subnets": {s["SubnetId"]: {"cidr": s["CidrBlock"], "availabilityZone": s["AvailabilityZone"],
                                        "availableIpAddressCount": s["AvailableIpAddressCount"],
                                        "fillerIps": self.fill.get(s["SubnetId"], 0)}
                        for s in out_ec2["subnets.json"]["Subnets"]},
            # keyed by the node's name in the output (an Auto Mode node is named after its instance id)
            "nodes": {replace_ids(name, mapping): {"instanceId": i["new"], "originalInstanceId": i["old"], "instanceType": i["instanceType"],
                             "availabilityZone": i["zone"], "internalIP": i["internalIP"],
                             "agentPort": self.agent_ports.get(name),
                             "ipamdDir": (os.path.join("ipamd", name) if os.path.isdir(
                                 os.path.join(self.out, "ipamd", name)) else None),
                             "hasMetrics": os.path.exists(os.path.join(self.out, "ipamd", name, "metrics.txt")),
                             "runsAgent": i.get("runsAgent", True),
                             "synthetic": bool(i.get("extra"))}
                      for name, i in self.node_info.items()},
        })

    def _add_agents(self, text: str) -> str:
        doc = json.loads(text)
        now = self.meta["capturedAt"]
        mapping = self.flat_ids()
        for i, name in enumerate(sorted(n for n, info in self.node_info.items() if info.get("runsAgent", True))):
            port = self.agent_ports[name]
            name = replace_ids(name, mapping)
            suffix = hashlib.sha256(name.encode()).hexdigest()[:5]
            uid = hashlib.sha256(("pod" + name).encode()).hexdigest()
            doc.setdefault("items", []).append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "creationTimestamp": now, "generateName": f"{AGENT_LABEL}-",
                    # The labels of deploy/daemonset.yaml's pod template (what the exporter selects).
                    "labels": {"app.kubernetes.io/name": "eks-ipam-exporter", "app.kubernetes.io/component": "node",
                               "app.kubernetes.io/part-of": "eks-ipam-exporter",
                               "controller-revision-hash": "6d9c8b7f5", "pod-template-generation": "1"},
                    "name": f"{AGENT_LABEL}-{suffix}", "namespace": AGENT_NS,
                    "ownerReferences": [{"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True,
                                         "kind": "DaemonSet", "name": AGENT_LABEL,
                                         "uid": "0f3c2a9e-5d1b-4e7a-9c8f-2b6d4a1e3c57"}],
                    "resourceVersion": str(90000000 + i),
                    "uid": f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}",
                },
                "spec": {
                    "containers": [{
                        "name": "node", "image": "eks-ipam-exporter:dev", "imagePullPolicy": "IfNotPresent",
                        "args": ["node"],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                                                 "fieldPath": "spec.nodeName"}}}],
                        "ports": [{"containerPort": port, "hostPort": port, "name": "http-metrics",
                                   "protocol": "TCP"}],
                        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                    }],
                    "dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True, "nodeName": name,
                    "priority": 2000001000, "priorityClassName": "system-node-critical", "restartPolicy": "Always",
                    "schedulerName": "default-scheduler", "serviceAccountName": "eks-ipam-exporter-node",
                    "tolerations": [{"operator": "Exists"}],
                },
                "status": {
                    "conditions": [{"lastProbeTime": None, "lastTransitionTime": now, "status": "True", "type": t}
                                   for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                             "PodScheduled")],
                    "containerStatuses": [{"name": "node", "ready": True, "restartCount": 0, "started": True,
                                           "image": "eks-ipam-exporter:dev", "imageID": "",
                                           "containerID": f"containerd://{uid}",
                                           "state": {"running": {"startedAt": now}}}],
                    "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
                    "phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
                    "qosClass": "Burstable", "startTime": now,
                },
            })
        return json.dumps(doc, indent=4) + "\n"

    def run(self) -> dict:
        self.load()
        self.shift_times()
        self.build_moto()
        if self.a.extra_nodes:
            self.build_extra(self.a.extra_nodes)
        # The node agent runs where aws-node runs (deploy/daemonset.yaml): no port for other shapes.
        names = sorted(n for n, info in self.node_info.items() if info.get("runsAgent", True))
        if self.a.agent_base_port:
            self.agent_ports = {n: self.a.agent_base_port + i for i, n in enumerate(names)}
        else:
            self.agent_ports = {n: free_port() for n in names}
        if self.a.no_agent_pods:
            self.agent_ports = {}
        self.write()
        return self.summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", required=True, help="scenario bundle directory")
    ap.add_argument("--out", required=True, help="output bundle directory (replaced)")
    ap.add_argument("--moto-endpoint", required=True)
    ap.add_argument("--agent-base-port", type=int, default=0,
                    help="node agent i (nodes sorted by name) gets port B+i; 0 = pick free ports")
    ap.add_argument("--region", default="us-west-2")
    ap.add_argument("--now", default=None, help="override 'now' (RFC 3339 or epoch seconds)")
    ap.add_argument("--no-fill-subnets", action="store_true")
    ap.add_argument("--no-agent-pods", action="store_true")
    ap.add_argument("--extra-nodes", type=int, default=0,
                    help="add N synthetic healthy m5.large nodes (scale tests; default networking only)")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.scenario):
        sys.exit(f"world: {a.scenario} is not a directory")
    if os.path.abspath(a.out) == os.path.abspath(a.scenario):
        sys.exit("world: --out must differ from --scenario")
    t0 = time.time()
    summary = World(a).run()
    summary["buildSeconds"] = round(time.time() - t0, 2)
    with open(os.path.join(a.out, "world.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    print(json.dumps(summary, indent=2), flush=True)


if __name__ == "__main__":
    main()
