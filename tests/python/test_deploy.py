"""Tests for the deployment artefacts: kustomize base, rules, IAM policy, Dockerfile, runbook.

Run:  python3 -m pytest tests/python/test_deploy.py
Needs kubectl (for `kubectl kustomize`), PyYAML, and for some tests promtool/amtool (Debian
packages prometheus and prometheus-alertmanager); those tests skip with a message when the tool is
missing, and fail under EKS_IPAM_REQUIRE_ALL=1 (the test command). With EKS_IPAM_BIN=<path to the built binary>, the flags and env vars the manifests use are
also checked against `<binary> <subcommand> --help`.
"""
import fnmatch
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import need, need_tool
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
RULES_FILE = os.path.join(DEPLOY, "rules", "eks-ipam-exporter.rules.yaml")
RUNBOOK = os.path.join(ROOT, "docs", "runbook.md")
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "rules"))
import check_coverage  # noqa: E402
import gen_deploy  # noqa: E402

NAMESPACE = "eks-ipam-exporter"
IMAGE = "ghcr.io/eks-ipam-exporter/eks-ipam-exporter:0.1.0"
RUNBOOK_BASE = "https://github.com/eks-ipam-exporter/eks-ipam-exporter/blob/main/docs/runbook.md#"

# The binary's CLI (contract): subcommand -> {flag: env var}; the global flags work everywhere.
GLOBAL_FLAGS = {"--log-format": "EKS_IPAM_LOG_FORMAT", "--log-level": "EKS_IPAM_LOG_LEVEL"}
CLI = {
    "cluster": {"--listen": "EKS_IPAM_LISTEN"},
    "node": {
        "--listen": "EKS_IPAM_NODE_LISTEN",
        "--node-name": "NODE_NAME",
        "--ipamd-introspection-url": "EKS_IPAM_IPAMD_INTROSPECTION_URL",
        "--ipamd-metrics-url": "EKS_IPAM_IPAMD_METRICS_URL",
    },
}
DEFAULT_PORTS = {"cluster": 10097, "node": 10098}
LOG_FORMATS = {"text", "json"}
READ_VERBS = {"get", "list", "watch"}
ALLOWED_RESOURCES = {
    "": {"nodes", "pods", "events"},
    "events.k8s.io": {"events"},
    "apps": {"daemonsets", "deployments"},
    "karpenter.sh": {"nodeclaims", "nodepools"},
    "karpenter.k8s.aws": {"ec2nodeclasses"},
    "crd.k8s.amazonaws.com": {"eniconfigs"},
    "eks.amazonaws.com": {"nodeclasses"},
}
IAM_ACTIONS = {"ec2:DescribeInstanceTypes", "ec2:DescribeSubnets", "ec2:DescribeNetworkInterfaces", "ec2:GetSubnetCidrReservations", "cloudtrail:LookupEvents"}


# ------------------------------------------------------------------------------------------
# helpers


def kustomize(path=DEPLOY):
    need_tool("kubectl", "kubectl: the Google Cloud SDK's, or any with kustomize v5")
    r = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True)
    assert r.returncode == 0, f"kubectl kustomize {path} failed:\n{r.stderr}"
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def find(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert found, f"no {kind} {name or ''} rendered"
    return found[0] if name else found


def workloads(objs):
    return [o for o in objs if o["kind"] in ("Deployment", "DaemonSet")]


def role_of(workload):
    """'cluster' or 'node': the subcommand the workload runs."""
    return workload["spec"]["template"]["spec"]["containers"][0]["args"][0]


def parse_args(args):
    """['node', '--listen', 'x', '--flag=y'] -> ('node', {'--listen': 'x', '--flag': 'y'})."""
    sub, rest, flags = args[0], args[1:], {}
    i = 0
    while i < len(rest):
        a = rest[i]
        assert a.startswith("--"), f"unexpected positional argument {a!r} in {args}"
        if "=" in a:
            k, v = a.split("=", 1)
            i += 1
        else:
            k, v = a, rest[i + 1]
            i += 2
        flags[k] = v
    return sub, flags


def label_selector_matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def selector_object_matches(selector, labels):
    """A metav1.LabelSelector (matchLabels + matchExpressions; {} selects everything) against labels."""
    selector = selector or {}
    if not label_selector_matches(selector.get("matchLabels") or {}, labels):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {"In": key in labels and labels[key] in values,
              "NotIn": key not in labels or labels[key] not in values,
              "Exists": key in labels,
              "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def github_anchor(heading):
    """GitHub's heading slug: lowercase, drop punctuation except - and _, spaces to -."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def runbook_anchors():
    with open(RUNBOOK) as f:
        text = f.read()
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}, text


def load_rules():
    with open(RULES_FILE) as f:
        return yaml.safe_load(f)


def alerts():
    return {r["alert"]: r for g in load_rules()["groups"] for r in g["rules"] if "alert" in r}


@pytest.fixture(scope="module")
def rendered():
    return kustomize()


# ------------------------------------------------------------------------------------------
# kustomize base


def test_renders_exactly_the_expected_objects(rendered):
    got = sorted((o["kind"], o["metadata"]["name"]) for o in rendered)
    assert got == sorted([
        ("ClusterRole", "eks-ipam-exporter"),
        ("ClusterRoleBinding", "eks-ipam-exporter"),
        ("ConfigMap", "eks-ipam-exporter-dashboards"),
        ("DaemonSet", "eks-ipam-exporter-node"),
        ("Deployment", "eks-ipam-exporter"),
        ("Namespace", NAMESPACE),
        ("NetworkPolicy", "eks-ipam-exporter"),
        ("PodMonitor", "eks-ipam-exporter-node"),
        ("PrometheusRule", "eks-ipam-exporter"),
        ("Service", "eks-ipam-exporter"),
        ("ServiceAccount", "eks-ipam-exporter"),
        ("ServiceAccount", "eks-ipam-exporter-node"),
        ("ServiceMonitor", "eks-ipam-exporter"),
    ])
    # Applied to an empty cluster, the namespace comes first (kustomize orders Namespace objects first).
    assert rendered[0]["kind"] == "Namespace", rendered[0]["kind"]
    for o in rendered:
        if o["kind"] not in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
            assert o["metadata"]["namespace"] == NAMESPACE, (o["kind"], o["metadata"]["name"])
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        assert find(rendered, kind)[0]["apiVersion"] == "monitoring.coreos.com/v1"


def test_namespace_pod_security_labels(rendered):
    """The agent's hostNetwork needs "privileged"; warn/audit at "restricted" keep the exception visible."""
    labels = find(rendered, "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_the_cluster_deployment_meets_pod_security_restricted(rendered):
    """Kubernetes Pod Security Standards, "restricted" level, checked field by field on the Deployment."""
    pod = find(rendered, "Deployment", "eks-ipam-exporter")["spec"]["template"]["spec"]
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(field), field
    assert not any(set(v) - {"name", "configMap", "secret", "emptyDir", "projected", "downwardAPI",
                             "persistentVolumeClaim", "ephemeral", "csi"} for v in pod.get("volumes", []))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost")
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), c["name"]
        assert not sc.get("privileged"), c["name"]
        assert not any(p.get("hostPort") for p in c.get("ports", [])), c["name"]


def test_overlay_namespace_reaches_the_binding(tmp_path):
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": "monitoring", "resources": [os.path.relpath(DEPLOY, tmp_path)],
    }))
    objs = kustomize(str(tmp_path))
    binding = find(objs, "ClusterRoleBinding", "eks-ipam-exporter")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "eks-ipam-exporter", "namespace": "monitoring"}]
    # The Namespace object is renamed with everything else.
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"] == ["monitoring"]


def test_pods_are_hardened(rendered):
    for w in workloads(rendered):
        name = w["metadata"]["name"]
        pod = w["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532, name
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert not pod.get("hostPID") and not pod.get("hostIPC"), name
        assert not any("hostPath" in v for v in pod.get("volumes", [])), f"{name}: no hostPath volumes"
        for c in pod.get("initContainers", []) + pod["containers"]:
            sc = c["securityContext"]
            where = f"{name}/{c['name']}"
            assert c["image"] == IMAGE, where
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc.get("privileged") in (None, False), where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], where
            assert c["resources"]["limits"]["memory"], where
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                get = c[probe]["httpGet"]
                assert get["path"] == path, f"{where}: {probe}"
                assert get["port"] in ports or get["port"] in ports.values(), f"{where}: {probe} port"


def test_deployment_runs_the_cluster_role(rendered):
    d = find(rendered, "Deployment", "eks-ipam-exporter")
    assert d["spec"]["replicas"] == 1
    pod = d["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "eks-ipam-exporter"
    assert not pod.get("hostNetwork")
    c = pod["containers"][0]
    sub, flags = parse_args(c["args"])
    assert sub == "cluster"
    assert flags["--listen"] == f"0.0.0.0:{DEFAULT_PORTS['cluster']}"
    assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [("http-metrics", DEFAULT_PORTS["cluster"])]


def test_daemonset_runs_the_node_agent_everywhere(rendered):
    ds = find(rendered, "DaemonSet", "eks-ipam-exporter-node")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["tolerations"] == [{"operator": "Exists"}], "must tolerate every taint"
    assert pod["serviceAccountName"] == "eks-ipam-exporter-node"
    assert pod["automountServiceAccountToken"] is False
    c = pod["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    sub, flags = parse_args(c["args"])
    assert sub == "node"
    # Bound to the node's primary IP only (the brackets serve IPv4 and IPv6 clusters alike); a
    # hostNetwork pod's IP is that IP, so the exporter's pulls, the PodMonitor and the probes reach it.
    assert flags["--listen"] == f"[$(HOST_IP)]:{DEFAULT_PORTS['node']}"
    assert env["HOST_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    if "--node-name" in flags:
        assert flags["--node-name"] == "$(NODE_NAME)"
    assert [(p["name"], p["containerPort"], p.get("hostPort")) for p in c["ports"]] == [
        ("http-metrics", DEFAULT_PORTS["node"], DEFAULT_PORTS["node"])]
    req = c["resources"]["requests"]
    assert _millicores(req["cpu"]) <= 10 and _mebibytes(req["memory"]) <= 32, "node agent requests must stay tiny"
    assert _mebibytes(c["resources"]["limits"]["memory"]) <= 128


def _millicores(q):
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def _mebibytes(q):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for u, f in units.items():
        if q.endswith(u):
            return float(q[: -len(u)]) * f
    return float(q) / 2**20


def substituted_env(container):
    """The env vars the container's args reference as $(NAME) (kubelet substitutes them)."""
    return {m for a in container["args"] for m in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a)}


def test_args_and_env_use_only_the_cli(rendered):
    for w in workloads(rendered):
        c = w["spec"]["template"]["spec"]["containers"][0]
        sub, flags = parse_args(c["args"])
        allowed = dict(GLOBAL_FLAGS, **CLI[sub])
        assert set(flags) <= set(allowed), f"{sub}: flags not in the CLI: {set(flags) - set(allowed)}"
        referenced = substituted_env(c)
        assert referenced <= {e["name"] for e in c.get("env", [])}, f"{sub}: $(VAR) in args without an env entry"
        # read by the binary, or only there for $(VAR) substitution in the args (HOST_IP)
        known_env = set(allowed.values()) | {"AWS_REGION"} | referenced
        for e in c.get("env", []):
            assert e["name"] in known_env, f"{sub}: env {e['name']} is not read by the binary"
            if e["name"] == "EKS_IPAM_LOG_FORMAT":
                assert e["value"] in LOG_FORMATS


def test_flags_exist_in_the_binary():
    binary = os.environ.get("EKS_IPAM_BIN")
    need(binary, "EKS_IPAM_BIN is not set: cannot compare the manifests' flags with `<binary> <subcommand> --help`")
    objs = kustomize()
    for w in workloads(objs):
        c = w["spec"]["template"]["spec"]["containers"][0]
        sub, flags = parse_args(c["args"])
        r = subprocess.run([binary, sub, "--help"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        text = " ".join(r.stdout.split())  # clap wraps long lines
        for flag in flags:
            assert re.search(re.escape(flag) + r"\b", text), f"`{sub} --help` does not list {flag}"
        substitution_only = substituted_env(c) - set(dict(GLOBAL_FLAGS, **CLI[sub]).values())
        for e in c.get("env", []):
            if e["name"] != "AWS_REGION" and e["name"] not in substitution_only:
                assert f"[env: {e['name']}=" in text or f"env: {e['name']}=" in text, f"`{sub} --help` lacks env {e['name']}"
        # the manifests' ports are the binary's defaults
        assert re.search(r"--listen .*?\[default: 0\.0\.0\.0:%d\]" % DEFAULT_PORTS[sub], text), f"{sub} default listen port"


def _duration_seconds(text):
    m = re.fullmatch(r"(\d+)([smh]?)", text)
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def test_alert_thresholds_equal_the_binary_defaults():
    """The Stalled alert's silence and the SubnetIpsLow ratio are the exporter's own finding thresholds."""
    binary = os.environ.get("EKS_IPAM_BIN")
    if not binary:
        need(False, "EKS_IPAM_BIN is not set: cannot read the binary's default thresholds")
    r = subprocess.run([binary, "cluster", "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    window = re.search(r"--silence-window .*?\[default: (\w+)\]", text).group(1)
    ratio = float(re.search(r"--subnet-low-ratio .*?\[default: ([\d.]+)\]", text).group(1))
    a = alerts()
    silence = int(re.search(r"silence_seconds:min\s*>\s*(\d+)", a["EksIpamIpamdAllocationStalled"]["expr"]).group(1))
    assert silence == _duration_seconds(window)
    low = float(re.search(r"clamp_min\(([\d.]+) \* eks_ipam_subnet_size_ips", a["EksIpamSubnetIpsLow"]["expr"]).group(1))
    assert low == ratio


def test_service_and_monitors_select_the_right_pods(rendered):
    dep = find(rendered, "Deployment", "eks-ipam-exporter")
    ds = find(rendered, "DaemonSet", "eks-ipam-exporter-node")
    dep_labels = dep["spec"]["template"]["metadata"]["labels"]
    ds_labels = ds["spec"]["template"]["metadata"]["labels"]
    svc = find(rendered, "Service", "eks-ipam-exporter")
    assert label_selector_matches(svc["spec"]["selector"], dep_labels)
    assert not label_selector_matches(svc["spec"]["selector"], ds_labels), "the Service must not select node agents"
    assert svc["spec"]["ports"] == [{"name": "http-metrics", "port": DEFAULT_PORTS["cluster"], "targetPort": "http-metrics",
                                     "protocol": "TCP"}]
    sm = find(rendered, "ServiceMonitor", "eks-ipam-exporter")
    assert label_selector_matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
    assert [(e["port"], e["path"]) for e in sm["spec"]["endpoints"]] == [("http-metrics", "/metrics")]
    pm = find(rendered, "PodMonitor", "eks-ipam-exporter-node")
    assert label_selector_matches(pm["spec"]["selector"]["matchLabels"], ds_labels)
    assert not label_selector_matches(pm["spec"]["selector"]["matchLabels"], dep_labels)
    assert [(e["port"], e["path"]) for e in pm["spec"]["podMetricsEndpoints"]] == [("http-metrics", "/metrics")]
    # selectors of the workloads match their own pod templates
    for w in (dep, ds):
        assert label_selector_matches(w["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])


def network_policies(objs):
    return [o for o in objs if o["kind"] == "NetworkPolicy"]


def np_selects(policy, workload):
    """Whether the NetworkPolicy applies to the workload's pods (same namespace, podSelector matches)."""
    return (policy["metadata"].get("namespace") == workload["metadata"].get("namespace")
            and selector_object_matches(policy["spec"]["podSelector"], workload["spec"]["template"]["metadata"]["labels"]))


def np_ports(rules):
    """{(protocol, port)} a list of ingress/egress rules allows. Every rule must name its ports (a rule
    without ports allows all of them) by number (named ports resolve per destination pod, and the
    node agents are not pods the policy can see) and without port ranges."""
    got = set()
    for rule in rules:
        assert rule.get("ports"), f"rule allows every port: {rule}"
        for p in rule["ports"]:
            assert isinstance(p.get("port"), int), f"port by number, not name or absent: {p}"
            assert "endPort" not in p, f"no port ranges: {p}"
            got.add((p.get("protocol", "TCP"), p["port"]))
    return got


def container_ports(workload):
    return {(p.get("protocol", "TCP"), p["containerPort"])
            for c in workload["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}


def test_networkpolicy_selects_the_cluster_exporter(rendered):
    policies = network_policies(rendered)
    assert len(policies) == 1, [p["metadata"]["name"] for p in policies]
    np = policies[0]
    assert np["apiVersion"] == "networking.k8s.io/v1"
    dep = find(rendered, "Deployment", "eks-ipam-exporter")
    assert np_selects(np, dep), "the NetworkPolicy must select the cluster exporter's pods"
    # the same labels the Deployment selects its pods by, not a looser or unrelated selector
    assert np["spec"]["podSelector"] == dep["spec"]["selector"]
    assert sorted(np["spec"]["policyTypes"]) == ["Egress", "Ingress"]


def test_no_networkpolicy_selects_the_node_agents(rendered):
    """NetworkPolicy does not police hostNetwork pods; a policy that selects them only pretends to."""
    ds = find(rendered, "DaemonSet", "eks-ipam-exporter-node")
    assert ds["spec"]["template"]["spec"]["hostNetwork"] is True
    for np in network_policies(rendered):
        assert not np_selects(np, ds), f"NetworkPolicy {np['metadata']['name']} selects the hostNetwork node agents"


def test_networkpolicy_ingress_is_the_exporter_port_only(rendered):
    np = network_policies(rendered)[0]
    dep = find(rendered, "Deployment", "eks-ipam-exporter")
    want = container_ports(dep)
    assert want, "the Deployment declares no container port"
    assert np_ports(np["spec"]["ingress"]) == want
    svc = find(rendered, "Service", "eks-ipam-exporter")
    assert {(p["protocol"], p["port"]) for p in svc["spec"]["ports"]} <= want, "the Service port must be allowed in"
    for rule in np["spec"]["ingress"]:
        assert rule.get("from"), "a rule without `from` admits any source, in or outside the cluster"


def _cidrs(rule):
    """The ipBlock CIDRs of an egress rule, None if it allows any destination (no `to`)."""
    if not rule.get("to"):
        return None
    return [ipaddress.ip_network(peer["ipBlock"]["cidr"]) for peer in rule["to"] if "ipBlock" in peer]


def test_networkpolicy_egress(rendered):
    np = network_policies(rendered)[0]
    egress = np["spec"]["egress"]
    allowed = np_ports(egress)
    ds = find(rendered, "DaemonSet", "eks-ipam-exporter-node")
    agent_ports = container_ports(ds)
    assert agent_ports, "the DaemonSet declares no container port"
    for need in {("UDP", 53), ("TCP", 53), ("TCP", 443)} | agent_ports:
        assert need in allowed, f"egress lacks {need}"
    for rule in egress:
        ports = {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
        if ports & {("UDP", 53), ("TCP", 53), ("TCP", 443)}:
            # DNS may be a node-local cache; the EKS API and AWS endpoints have no stable addresses
            assert _cidrs(rule) is None, f"DNS and HTTPS go to any destination: {rule}"
        if ports & agent_ports:
            # hostNetwork agents have node IPs, which pod and namespace selectors never match
            assert rule.get("to") and all(set(peer) == {"ipBlock"} for peer in rule["to"]), \
                f"the agent port needs ipBlock peers only: {rule}"
    # IMDS (169.254.169.254) would hand out the node role's credentials
    imds = ipaddress.ip_address("169.254.169.254")
    for rule in egress:
        ports = {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
        if ("TCP", 80) in ports:
            cidrs = _cidrs(rule)
            assert cidrs is not None and not any(imds in c for c in cidrs), f"egress reaches IMDS: {rule}"
    # one IP family: older VPC CNI policy agents reject a whole policy with a rule of the other family
    families = {c.version for rule in egress for c in (_cidrs(rule) or [])}
    families |= {ipaddress.ip_network(peer["ipBlock"]["cidr"]).version
                 for rule in np["spec"]["ingress"] for peer in rule.get("from") or [] if "ipBlock" in peer}
    assert len(families) <= 1, f"ipBlocks mix IP families: {families}"


def test_networkpolicy_overlay_example_renders(rendered, tmp_path):
    """The narrowing example in networkpolicy.yaml's comment is a working kustomize patch."""
    with open(os.path.join(DEPLOY, "networkpolicy.yaml")) as f:
        text = f.read()
    m = re.search(r"^(\s*#\s+)patches:\n((?:\1 .*\n)+)", text, re.M)
    assert m, "networkpolicy.yaml lost its overlay example"
    example = "patches:\n" + "".join(line[len(m.group(1)):] + "\n" for line in m.group(2).splitlines())
    overlay = yaml.safe_load(example)
    overlay.update({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                    "resources": [os.path.relpath(DEPLOY, tmp_path)]})
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    np = network_policies(kustomize(str(tmp_path)))[0]
    want = yaml.safe_load(overlay["patches"][0]["patch"])[0]["value"]
    assert np["spec"]["ingress"][0]["from"] == want
    assert np_ports(np["spec"]["ingress"]) == container_ports(find(rendered, "Deployment", "eks-ipam-exporter"))


def test_rbac_is_read_only(rendered):
    role = find(rendered, "ClusterRole", "eks-ipam-exporter")
    granted = {}
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule
        assert set(rule["verbs"]) == READ_VERBS, f"verbs must be exactly get/list/watch: {rule}"
        for group in rule["apiGroups"]:
            assert group != "*"
            for res in rule["resources"]:
                assert res != "*" and "secrets" not in res and "/" not in res, rule
                granted.setdefault(group, set()).add(res)
    for group, resources in granted.items():
        assert resources <= ALLOWED_RESOURCES.get(group, set()), f"{group}: {resources - ALLOWED_RESOURCES.get(group, set())}"
    for must in (("", "nodes"), ("", "pods"), ("apps", "daemonsets"), ("karpenter.sh", "nodeclaims"),
                 ("crd.k8s.amazonaws.com", "eniconfigs"), ("eks.amazonaws.com", "nodeclasses")):
        assert must[1] in granted.get(must[0], set()), must
    binding = find(rendered, "ClusterRoleBinding", "eks-ipam-exporter")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "eks-ipam-exporter"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "eks-ipam-exporter", "namespace": NAMESPACE}]
    # the node agent's ServiceAccount is bound to nothing
    for o in rendered:
        for s in o.get("subjects", []) or []:
            assert s["name"] != "eks-ipam-exporter-node"
    assert not [o for o in rendered if o["kind"] in ("Role", "RoleBinding")]


def test_optional_settings_role_reads_named_configmaps_only(rendered):
    """deploy/optional/settings-configmaps.yaml: `get` on named ConfigMaps in kube-system, bound to
    the exporter's ServiceAccount; never secrets, never an empty resourceNames (= every ConfigMap)."""
    with open(os.path.join(DEPLOY, "optional", "settings-configmaps.yaml")) as f:
        objs = [o for o in yaml.safe_load_all(f) if o]
    assert sorted(o["kind"] for o in objs) == ["Role", "RoleBinding"]
    role = find(objs, "Role", "eks-ipam-exporter-settings")
    assert role["metadata"]["namespace"] == "kube-system"
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""] and rule["resources"] == ["configmaps"], rule
        assert rule["verbs"] == ["get"], rule
        assert rule.get("resourceNames"), "an empty resourceNames grants every ConfigMap"
    binding = find(objs, "RoleBinding", "eks-ipam-exporter-settings")
    assert binding["metadata"]["namespace"] == "kube-system"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "eks-ipam-exporter-settings"}
    sa = find(rendered, "ServiceAccount", "eks-ipam-exporter")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}]
    # Not in the base: kustomize's namespace would move it out of kube-system.
    assert not [o for o in rendered if o["kind"] in ("Role", "RoleBinding")]
    # The exporter's remediation text names this file and the Role.
    with open(os.path.join(ROOT, "src", "model", "findings.rs")) as f:
        src = f.read()
    assert "deploy/optional/settings-configmaps.yaml" in src and "eks-ipam-exporter-settings" in src


def test_node_agent_lands_only_where_aws_node_runs(rendered):
    """The agent's node affinity is aws-node's own (VPC CNI v1.23.1 chart values, b52188387f2e):
    Linux amd64/arm64, not Fargate, hybrid or Auto Mode nodes, which have no ipamd."""
    ds = find(rendered, "DaemonSet", "eks-ipam-exporter-node")
    terms = ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(terms) == 1, terms
    got = {e["key"]: (e["operator"], sorted(e["values"])) for e in terms[0]["matchExpressions"]}
    assert got == {
        "kubernetes.io/os": ("In", ["linux"]),
        "kubernetes.io/arch": ("In", ["amd64", "arm64"]),
        "eks.amazonaws.com/compute-type": ("NotIn", ["auto", "fargate", "hybrid"]),
    }


def test_service_accounts(rendered):
    sa = find(rendered, "ServiceAccount", "eks-ipam-exporter")
    arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", arn), arn
    node_sa = find(rendered, "ServiceAccount", "eks-ipam-exporter-node")
    assert node_sa.get("automountServiceAccountToken") is False
    assert "eks.amazonaws.com/role-arn" not in (node_sa["metadata"].get("annotations") or {})
    with open(os.path.join(DEPLOY, "serviceaccounts.yaml")) as f:
        text = f.read()
    assert "Pod Identity" in text and "create-pod-identity-association" in text


def test_prometheusrule_equals_the_rules_file(rendered):
    pr = find(rendered, "PrometheusRule", "eks-ipam-exporter")
    assert pr["spec"]["groups"] == load_rules()["groups"]
    need_tool("jsonnet", "jsonnet")  # both are built from mixin/
    assert not gen_deploy.stale_files(), "run python3 tools/gen_deploy.py"


def test_rules_file_says_it_is_generated():
    with open(RULES_FILE) as f:
        head = f.readline()
    assert head.startswith("# Generated by tools/gen_deploy.py from mixin/"), head


def test_generator_check_mode_detects_drift(tmp_path, monkeypatch):
    need_tool("jsonnet", "jsonnet")
    stale = tmp_path / "prometheusrule.yaml"
    stale.write_text("# edited by hand\n")
    monkeypatch.setattr(gen_deploy, "PROMETHEUS_RULE_FILE", str(stale))
    assert gen_deploy.main(["--check"]) == 1
    assert os.path.relpath(str(stale), gen_deploy.ROOT) in gen_deploy.stale_files()


def test_dashboards_configmap(rendered):
    cm = find(rendered, "ConfigMap", "eks-ipam-exporter-dashboards")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted(n for n in os.listdir(os.path.join(ROOT, "dashboards")) if n.endswith(".json"))
    assert sorted(cm["data"]) == files
    for name in files:
        with open(os.path.join(ROOT, "dashboards", name)) as f:
            assert cm["data"][name] == f.read(), f"{name} differs from the ConfigMap: run tools/gen_deploy.py"
        json.loads(cm["data"][name])


def test_iam_policy_has_exactly_the_five_read_actions():
    with open(os.path.join(DEPLOY, "iam-policy.json")) as f:
        policy = json.load(f)
    assert policy["Version"] == "2012-10-17"
    actions = set()
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow" and st["Resource"] == "*"
        assert "NotAction" not in st and "NotResource" not in st
        acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        actions |= set(acts)
    assert actions == IAM_ACTIONS


# ------------------------------------------------------------------------------------------
# rules


def test_alert_contract_and_coverage():
    """docs/design.md section 6 names and severities; every alert tested at its for: boundary (no promtool needed)."""
    a, records = check_coverage.load_rules()
    groups, exprs = check_coverage.load_tests()
    assert check_coverage.check(a, records, groups, exprs) == []


def test_coverage_checker_catches_a_missing_boundary_test():
    a, records = check_coverage.load_rules()
    groups, exprs = check_coverage.load_tests()
    pruned = [(f, g) for f, g in groups if not g.get("name", "").startswith("EksIpamSubnetIpsLow: boundary")]
    problems = check_coverage.check(a, records, pruned, exprs)
    assert any("EksIpamSubnetIpsLow" in p for p in problems)


def test_promtool_rules_suite():
    need_tool("promtool", "prometheus")
    r = subprocess.run([os.path.join(ROOT, "tests", "rules", "run.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_fast_rules_for_end_to_end_tests(tmp_path):
    need_tool("promtool", "prometheus")
    out = tmp_path / "fast.rules.yaml"
    assert gen_deploy.main(["--fast-rules", str(out), "--for", "0s"]) == 0
    fast = yaml.safe_load(out.read_text())
    orig = load_rules()
    for g_fast, g in zip(fast["groups"], orig["groups"]):
        for r_fast, r in zip(g_fast["rules"], g["rules"]):
            if "alert" in r:
                assert r_fast["for"] == "0s"
                assert {k: v for k, v in r_fast.items() if k != "for"} == {k: v for k, v in r.items() if k != "for"}
            else:
                assert r_fast == r
    r = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_alertmanager_example_is_valid_and_names_real_alerts():
    need_tool("amtool", "prometheus-alertmanager")
    path = os.path.join(DEPLOY, "alertmanager-example.yaml")
    r = subprocess.run(["amtool", "check-config", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(path) as f:
        cfg = yaml.safe_load(f)
    names = set(alerts())
    for rule in cfg["inhibit_rules"]:
        for m in rule["source_matchers"] + rule["target_matchers"]:
            name = re.fullmatch(r'alertname="(\w+)"', m).group(1)
            assert name in names, name


# ------------------------------------------------------------------------------------------
# runbook


def test_every_runbook_url_points_at_a_real_section():
    anchors, text = runbook_anchors()
    for name, rule in alerts().items():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), url
        anchor = url[len(RUNBOOK_BASE):]
        assert anchor == name.lower()
        assert anchor in anchors, f"docs/runbook.md has no heading for #{anchor}"


def test_runbook_sections_are_complete():
    _, text = runbook_anchors()
    sections = dict(re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    for name in alerts():
        body = sections.get(name)
        assert body, f"no '## {name}' section"
        assert "**Confirm**" in body or "**Confirm**:" in body, f"{name}: no Confirm"
        assert "**Fix**" in body, f"{name}: no Fix"
        assert "**Do not**" in body, f"{name}: no 'Do not'"
    for snippet in ("kubectl -n kube-system set env ds/aws-node WARM_IP_TARGET=", 'settings.reservedENIs: "1"',
                    "127.0.0.1:61679/v1/enis | jq", "aws cloudtrail lookup-events", "aws ec2 describe-subnets",
                    "drain and replace"):
        assert snippet.lower() in text.lower(), snippet


def test_runbook_internal_links_resolve():
    anchors, text = runbook_anchors()
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        assert link in anchors, f"broken link #{link}"


def test_runbook_threshold_table_matches_the_rules():
    _, text = runbook_anchors()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("EksIpam"):
            rows[cells[0]] = cells
    for name, rule in alerts().items():
        assert name in rows, f"thresholds table lacks {name}"
        assert rows[name][2] == rule["for"], f"{name}: runbook says for {rows[name][2]}, rules say {rule['for']}"
    stalled = alerts()["EksIpamIpamdAllocationStalled"]["expr"]
    seconds = re.search(r"silence_seconds:min\s*>\s*(\d+)", stalled).group(1)
    assert f"> {seconds} s" in rows["EksIpamIpamdAllocationStalled"][1]


# ------------------------------------------------------------------------------------------
# Dockerfile


def _dockerfile():
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        lines = [l.strip() for l in f.read().replace("\\\n", " ").splitlines()]
    return [l for l in lines if l and not l.startswith("#")]


def test_dockerfile_is_multistage_release_build_on_distroless():
    lines = _dockerfile()
    args = dict(l[len("ARG "):].split("=", 1) for l in lines if l.startswith("ARG ") and "=" in l)
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    assert len(froms) == 2
    # Both base images pinned by digest, behind a tag that says which line they follow.
    assert re.fullmatch(r"rust:1(-slim)?-bookworm@sha256:[0-9a-f]{64}", args["RUST_IMAGE"]), args
    assert re.fullmatch(r"gcr\.io/distroless/cc-debian12:nonroot@sha256:[0-9a-f]{64}", args["RUNTIME_IMAGE"]), args
    # The build stage runs on the build host and cross-compiles for TARGETARCH (no emulated build).
    m = re.fullmatch(r"FROM --platform=\$BUILDPLATFORM \$\{RUST_IMAGE\} AS (\w+)", froms[0])
    assert m, froms[0]
    build_stage = m.group(1)
    assert froms[1] == "FROM ${RUNTIME_IMAGE}", "the runtime stage is the target platform's image"
    final = lines[lines.index(froms[1]):]
    build = lines[: lines.index(froms[1])]
    assert "ARG TARGETARCH" in build
    runs = [l for l in build if l.startswith("RUN ")]
    assert any('tools/cross-build.sh "${TARGETARCH}"' in l for l in runs), runs
    assert any("id=eks-ipam-target-${TARGETARCH}" in l for l in runs), "one target cache per architecture"
    with open(os.path.join(ROOT, "tools", "cross-build.sh")) as f:
        script = f.read()
    assert "cargo build --release --locked --target" in script
    assert "amd64)" in script and "arm64)" in script
    assert not any(l.startswith("RUN ") for l in final), "the runtime image has no shell: no RUN in the final stage"
    labels = " ".join(l for l in final if l.startswith("LABEL "))
    for key in ("title", "description", "source", "licenses", "version", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    copy = [l for l in final if l.startswith("COPY ")]
    assert len(copy) == 1 and copy[0].startswith(f"COPY --from={build_stage} ")
    dest = copy[0].split()[-1]
    assert "USER 65532:65532" in final or "USER 65532" in final
    expose = next(l for l in final if l.startswith("EXPOSE "))
    assert set(expose.split()[1:]) == {"10097", "10098"}
    entry = next(l for l in final if l.startswith("ENTRYPOINT "))
    assert json.loads(entry[len("ENTRYPOINT "):]) == [dest], "exec-form ENTRYPOINT of the copied binary"
    assert dest.endswith("/eks-ipam-exporter")


def test_dockerignore_keeps_the_build_inputs():
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        patterns = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    assert "target/" in patterns or "target" in patterns

    def ignored(path):
        result = False
        for p in patterns:
            neg = p.startswith("!")
            pat = p[1:] if neg else p
            pat = pat.rstrip("/")
            if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat + "/*") or path.startswith(pat + "/"):
                result = not neg
        return result

    assert ignored("target/release/eks-ipam-exporter")
    needed = ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs", "bundles/demo/bundle.json", "README.md", "tools/cross-build.sh"]
    # every file cargo resolves from the manifest (targets with explicit paths, build script)
    import tomllib

    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        manifest = tomllib.load(f)
    pkg = manifest.get("package", {})
    if isinstance(pkg.get("build"), str):
        needed.append(pkg["build"])
    elif os.path.exists(os.path.join(ROOT, "build.rs")) and pkg.get("build") is not False:
        needed.append("build.rs")
    for kind in ("lib", "bin", "test", "bench", "example"):
        entries = manifest.get(kind, [])
        for entry in entries if isinstance(entries, list) else [entries]:
            if "path" in entry:
                needed.append(entry["path"])
    # files embedded with include_str!/include_bytes! by non-test code
    for dirpath, _, files in os.walk(os.path.join(ROOT, "src")):
        for fn in files:
            if fn.endswith(".rs"):
                src_path = os.path.join(dirpath, fn)
                with open(src_path) as f:
                    code = f.read().split("#[cfg(test)]")[0]
                for inc in re.findall(r'include_(?:str|bytes)!\("([^"]+)"\)', code):
                    needed.append(os.path.relpath(os.path.normpath(os.path.join(dirpath, inc)), ROOT))
    for path in needed:
        assert not ignored(path), f".dockerignore excludes {path}, which the release build needs"
