"""Tests for the Helm chart charts/eks-ipam-exporter and its link to the kustomize base.

Run:  python3 -m pytest tests/python/test_chart.py
Needs helm-python-sdk (the Helm v4 SDK, no helm binary), kubernetes-validate and jsonschema
(tests/requirements.txt), kubectl for the comparison with `kubectl kustomize deploy/`, and the
Prometheus Operator CRDs in ../shared/reference/prometheus-operator/ (beside the repository).
A missing one skips the tests that need it, and fails them under EKS_IPAM_REQUIRE_ALL=1.
"""
import base64
import copy
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml
from conftest import need, need_tool

try:
    import helm_python as helm
except ImportError:  # pragma: no cover - reported by need()
    helm = None
try:
    import kubernetes_validate
    import kubernetes_validate.utils as kv_utils
except ImportError:  # pragma: no cover
    kubernetes_validate = None
try:
    import jsonschema
except ImportError:  # pragma: no cover
    jsonschema = None

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CHART = os.path.join(ROOT, "charts", "eks-ipam-exporter")
CI_DIR = os.path.join(CHART, "ci")
DEPLOY = os.path.join(ROOT, "deploy")
# Beside the repository (CI copies shared/ next to its clone), not inside it.
CRD_DIR = os.path.normpath(os.path.join(ROOT, "..", "shared", "reference", "prometheus-operator"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gen_chart  # noqa: E402

KUBE_VERSIONS = ["1.31.0"]  # plus the newest kubernetes-validate ships (added below)
OPERATOR_GROUP = "monitoring.coreos.com"
HELM_ONLY_LABELS = set(gen_chart.HELM_ONLY_LABELS)
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
WEB_MOUNT = "/etc/eks-ipam-exporter/web"
CLIENT_MOUNT = "/etc/eks-ipam-exporter/agent-client"
AWS_NODE_AFFINITY = {
    "kubernetes.io/os": ("In", ["linux"]),
    "kubernetes.io/arch": ("In", ["amd64", "arm64"]),
    "eks.amazonaws.com/compute-type": ("NotIn", ["auto", "fargate", "hybrid"]),
}


def ci_values():
    return {os.path.basename(p): gen_chart.load_values(p) for p in sorted(glob.glob(os.path.join(CI_DIR, "*-values.yaml")))}


SCENARIOS = {"defaults": {}, **ci_values()}


# ------------------------------------------------------------------------------------------
# helpers


def need_helm():
    need(helm, "helm-python-sdk not installed (python3 -m pip install -r tests/requirements.txt)")


def render_text(values=None, name="demo", namespace="monitoring"):
    need_helm()
    return gen_chart.render(values or {}, name=name, namespace=namespace)


def render(values=None, name="demo", namespace="monitoring"):
    """Every object the chart renders (NOTES.txt left out)."""
    objs = []
    for template, text in sorted(render_text(values, name, namespace).items()):
        if template.endswith(".txt"):
            continue
        objs += [d for d in yaml.safe_load_all(text) if d]
    return objs


def render_error(values):
    need_helm()
    with pytest.raises(helm.HelmError) as e:
        gen_chart.render(values, name="demo", namespace="monitoring")
    return str(e.value)


def find(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert found, f"no {kind} {name or ''} rendered: {sorted((o['kind'], o['metadata']['name']) for o in objs)}"
    return found[0]


def kinds(objs):
    return {o["kind"] for o in objs}


def container(workload):
    return workload["spec"]["template"]["spec"]["containers"][0]


def args_of(workload):
    return container(workload)["args"]


def pod_labels(workload):
    return workload["spec"]["template"]["metadata"]["labels"]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def strip_helm_labels(node):
    """A copy of `node` without the Helm-only labels, wherever a label map holds them."""
    if isinstance(node, dict):
        return {k: strip_helm_labels(v) for k, v in node.items() if k not in HELM_ONLY_LABELS}
    if isinstance(node, list):
        return [strip_helm_labels(v) for v in node]
    return node


def merged(*docs):
    out = {}
    for d in docs:
        for k, v in d.items():
            out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_crd_schemas():
    paths = sorted(glob.glob(os.path.join(CRD_DIR, "*.yaml")))
    need(paths, f"the Prometheus Operator CRDs are not in {CRD_DIR} (shared/reference beside the repository)")
    need(jsonschema, "jsonschema not installed (python3 -m pip install -r tests/requirements.txt)")
    schemas = {}
    for p in paths:
        with open(p) as f:
            crd = yaml.safe_load(f)
        for v in crd["spec"]["versions"]:
            if v.get("served"):
                schemas[(f"{crd['spec']['group']}/{v['name']}", crd["spec"]["names"]["kind"])] = \
                    strict_schema(v["schema"]["openAPIV3Schema"])
    return schemas


def strict_schema(node):
    """The CRD's structural schema with `additionalProperties: false` on every object that lists its
    properties (the apiserver would prune unknown fields silently; a misspelt field must fail here)."""
    if isinstance(node, list):
        return [strict_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def crd_schemas():
    return load_crd_schemas()


def validate_object(obj, crd_schemas):
    if obj["apiVersion"].startswith(OPERATOR_GROUP + "/"):
        schema = crd_schemas.get((obj["apiVersion"], obj["kind"]))
        assert schema, f"no CRD schema for {obj['apiVersion']} {obj['kind']}"
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
        assert not errors, f"{obj['kind']} {obj['metadata']['name']}: " + "; ".join(
            f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    else:
        need(kubernetes_validate, "kubernetes-validate not installed (python3 -m pip install -r tests/requirements.txt)")
        for version in KUBE_VERSIONS + [kv_utils.latest_version()]:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{obj['kind']} {obj['metadata']['name']} (Kubernetes {version}): {e.message} at {list(e.path)}")


def agent_selector():
    """The cluster role's label selector of node-agent pods (src/sources/kube/pod.rs)."""
    with open(os.path.join(ROOT, "src", "sources", "kube", "pod.rs")) as f:
        m = re.search(r'AGENT_SELECTOR: &str =\s*"([^"]+)"', f.read())
    assert m, "AGENT_SELECTOR not found in src/sources/kube/pod.rs"
    return dict(kv.split("=", 1) for kv in m.group(1).split(","))


# ------------------------------------------------------------------------------------------
# chart metadata, lint, schema


def test_chart_metadata():
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        chart = yaml.safe_load(f)
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        cargo = tomllib.load(f)
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "eks-ipam-exporter"
    assert chart["version"] == "0.1.0"
    assert chart["appVersion"] == cargo["package"]["version"], "appVersion must be Cargo.toml's version"
    assert chart["kubeVersion"].startswith(">=")
    for key in ("home", "sources", "keywords", "maintainers", "description"):
        assert chart.get(key), key
    for name in ("values.schema.json", "README.md", ".helmignore", "templates/NOTES.txt", "templates/_helpers.tpl"):
        assert os.path.exists(os.path.join(CHART, name)), name


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_lint_passes(scenario):
    need_helm()
    report = helm.lint(CHART, SCENARIOS[scenario], strict=True, kube_version="v1.31.0", namespace="monitoring")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], problems or report["errors"]


def test_lint_fails_on_broken_values():
    need_helm()
    for values, word in (({"imagee": {"tag": "x"}}, "imagee"), ({"nodeAgent": {"port": "10098"}}, "port")):
        report = helm.lint(CHART, values, strict=True, kube_version="v1.31.0")
        assert report["errors"], f"lint accepted {values}"
        assert any(word in e for e in report["errors"]), report["errors"]


@pytest.mark.parametrize("values,word", [
    ({"releaseLable": True}, "releaseLable"),                      # typo'd top-level key
    ({"service": {"port": "10097"}}, "port"),                      # wrong type
    ({"nodeAgent": {"tolerationz": []}}, "tolerationz"),           # typo'd nested key
    ({"prometheus": {"monitor": {"scheme": "ftp"}}}, "scheme"),    # not an allowed value
    ({"logFormat": "yaml"}, "logFormat"),
    ({"image": {"digest": "latest"}}, "digest"),
    ({"settingsConfigMaps": {"enabled": True, "grants": [{"namespace": "kube-system", "configMaps": []}]}}, "configMaps"),
])
def test_schema_rejects(values, word):
    msg = render_error(values)
    assert "schema" in msg and word in msg, msg


def test_schema_types_every_value():
    need(jsonschema, "jsonschema not installed")
    with open(os.path.join(CHART, "values.schema.json")) as f:
        schema = json.load(f)
    values = gen_chart.load_values(os.path.join(CHART, "values.yaml"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(values), set(schema["properties"]) ^ set(values)

    def walk(node, sch, path):
        assert sch.get("type") or sch.get("anyOf"), f"{path}: no type in the schema"
        if isinstance(node, dict) and sch.get("additionalProperties") is False:
            for k, v in node.items():
                assert k in sch["properties"], f"{path}.{k}: not in the schema"
                walk(v, sch["properties"][k], f"{path}.{k}")

    for k, v in values.items():
        walk(v, schema["properties"][k], k)
    jsonschema.Draft7Validator(schema).validate(values)
    for name, ci in ci_values().items():
        jsonschema.Draft7Validator(schema).validate(merged(values, ci))


# ------------------------------------------------------------------------------------------
# every rendered object is valid


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_rendered_object_is_valid(scenario, crd_schemas):
    objs = render(SCENARIOS[scenario])
    assert objs
    names = set()
    for o in objs:
        validate_object(o, crd_schemas)
        key = (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        assert key not in names, f"rendered twice: {key}"
        names.add(key)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", o["metadata"]["name"]) and len(o["metadata"]["name"]) <= 63, key
        if o["kind"] not in CLUSTER_SCOPED:
            assert o["metadata"].get("namespace"), f"{key}: no namespace (helm template | kubectl apply would misplace it)"
        for k, v in (o["metadata"].get("labels") or {}).items():
            assert isinstance(v, str) and len(v) <= 63, (key, k, v)


def test_the_crd_validator_catches_a_misspelt_field(crd_schemas):
    sm = find(render(), "ServiceMonitor")
    bad = copy.deepcopy(sm)
    bad["spec"]["endpoints"][0]["scrapeTimout"] = "10s"
    with pytest.raises(AssertionError, match="scrapeTimout"):
        validate_object(bad, crd_schemas)
    bad = copy.deepcopy(sm)
    bad["spec"]["endpoints"][0]["scheme"] = "ftp"
    with pytest.raises(AssertionError):
        validate_object(bad, crd_schemas)


def test_kubernetes_validate_catches_a_misspelt_field(crd_schemas):
    need(kubernetes_validate, "kubernetes-validate not installed")
    ds = copy.deepcopy(find(render(), "DaemonSet"))
    ds["spec"]["template"]["spec"]["hostNetwrok"] = True
    with pytest.raises(pytest.fail.Exception, match="hostNetwrok"):
        validate_object(ds, crd_schemas)


# ------------------------------------------------------------------------------------------
# the kustomize base is the chart


@pytest.fixture(scope="module")
def base_rendered():
    values = gen_chart.load_values(gen_chart.BASE_VALUES)
    return render(values, name=gen_chart.RELEASE, namespace=gen_chart.NAMESPACE)


@pytest.fixture(scope="module")
def kustomized():
    need_tool("kubectl", "kubectl: any with kustomize v5")
    r = subprocess.run(["kubectl", "kustomize", DEPLOY], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def test_chart_renders_the_kustomize_base(base_rendered, kustomized):
    """The chart with ci/kustomize-base-values.yaml, less the Helm-only labels, is exactly
    `kubectl kustomize deploy/` (the settings Role goes to deploy/optional/ instead)."""
    chart = [strip_helm_labels(o) for o in base_rendered]
    optional = [o for o in chart if o["metadata"].get("namespace") == "kube-system"]
    chart = [o for o in chart if o not in optional]
    by_key = lambda objs: {(o["kind"], o["metadata"]["name"]): o for o in objs}  # noqa: E731
    got, want = by_key(chart), by_key(kustomized)
    assert sorted(got) == sorted(want)
    for key, obj in want.items():
        if key[0] == "PrometheusRule" or (key[0] == "ConfigMap" and key[1].endswith("-dashboards")):
            # made for the base by tools/gen_deploy.py: the same content, labels of its own
            assert got[key].get("spec") == obj.get("spec"), f"{key}: run tools/gen_deploy.py, then tools/gen_chart.py"
            assert got[key].get("data") == obj.get("data"), f"{key}: run tools/gen_deploy.py, then tools/gen_chart.py"
            assert got[key]["metadata"].get("annotations") == obj["metadata"].get("annotations"), key
            assert got[key]["metadata"]["namespace"] == obj["metadata"]["namespace"], key
            for k, v in obj["metadata"]["labels"].items():
                assert got[key]["metadata"]["labels"].get(k) == v, (key, k)
        else:
            assert got[key] == obj, f"{key} differs from deploy/: run python3 tools/gen_chart.py"
    with open(os.path.join(DEPLOY, "optional", "settings-configmaps.yaml")) as f:
        assert [d for d in yaml.safe_load_all(f) if d] == optional


def test_generated_files_are_up_to_date():
    need_helm()
    assert gen_chart.stale_files() == [], "run python3 tools/gen_chart.py"
    for rel in gen_chart.BASE_FILES.values():
        with open(os.path.join(DEPLOY, rel)) as f:
            assert f.readline().startswith("# Generated by tools/gen_chart.py"), rel


def test_generator_catches_a_hand_edited_base_file(tmp_path, monkeypatch):
    need_helm()
    copy_dir = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy_dir)
    path = copy_dir / "daemonset.yaml"
    path.write_text(path.read_text().replace("maxUnavailable: 10%", "maxUnavailable: 50%"))
    monkeypatch.setattr(gen_chart, "DEPLOY", str(copy_dir))
    stale = gen_chart.stale_files()
    assert [s for s in stale if s.endswith("daemonset.yaml")] and len(stale) == 1, stale
    assert gen_chart.main(["--check"]) == 1


def test_generator_catches_an_edited_chart(tmp_path, monkeypatch):
    """A template changed without re-running the generator makes the base stale; so does a
    hand-edited copy of the rules in the chart, and a dashboard that no longer exists."""
    need_helm()
    chart = tmp_path / "eks-ipam-exporter"
    shutil.copytree(CHART, chart)
    svc = chart / "templates" / "service.yaml"
    svc.write_text(svc.read_text().replace("protocol: TCP", "protocol: TCP\n      appProtocol: http"))
    rules = chart / "files" / "rules.yaml"
    rules.write_text(rules.read_text() + "# edited by hand\n")
    (chart / "files" / "dashboards" / "gone.json").write_text("{}")
    monkeypatch.setattr(gen_chart, "CHART", str(chart))
    monkeypatch.setattr(gen_chart, "BASE_VALUES", str(chart / "ci" / "kustomize-base-values.yaml"))
    stale = {os.path.basename(s) for s in gen_chart.stale_files()}
    assert {"service.yaml", "rules.yaml", "gone.json"} <= stale, stale
    assert gen_chart.main(["--check"]) == 1
    # write mode repairs the chart's copies and removes the obsolete dashboard
    monkeypatch.setattr(gen_chart, "DEPLOY", str(tmp_path / "deploy"))
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    assert gen_chart.main([]) == 0
    assert gen_chart.stale_files() == []
    assert not (chart / "files" / "dashboards" / "gone.json").exists()
    assert "appProtocol: http" in (tmp_path / "deploy" / "service.yaml").read_text()


def test_chart_copies_of_rules_and_dashboards():
    objs = render()
    with open(os.path.join(DEPLOY, "prometheusrule.yaml")) as f:
        base_rule = yaml.safe_load(f)
    assert find(objs, "PrometheusRule")["spec"]["groups"] == base_rule["spec"]["groups"]
    cm = find(objs, "ConfigMap", "demo-eks-ipam-exporter-dashboards")
    files = sorted(n for n in os.listdir(os.path.join(ROOT, "dashboards")) if n.endswith(".json"))
    assert sorted(cm["data"]) == files
    for name in files:
        with open(os.path.join(ROOT, "dashboards", name)) as f:
            assert cm["data"][name] == f.read(), name


# ------------------------------------------------------------------------------------------
# defaults


def test_default_objects_and_names():
    objs = render()
    got = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
    assert got == sorted([
        ("ClusterRole", "demo-eks-ipam-exporter"),
        ("ClusterRoleBinding", "demo-eks-ipam-exporter"),
        ("ConfigMap", "demo-eks-ipam-exporter-dashboards"),
        ("DaemonSet", "demo-eks-ipam-exporter-node"),
        ("Deployment", "demo-eks-ipam-exporter"),
        ("NetworkPolicy", "demo-eks-ipam-exporter"),
        ("PodMonitor", "demo-eks-ipam-exporter-node"),
        ("PrometheusRule", "demo-eks-ipam-exporter"),
        ("Service", "demo-eks-ipam-exporter"),
        ("ServiceAccount", "demo-eks-ipam-exporter"),
        ("ServiceAccount", "demo-eks-ipam-exporter-node"),
        ("ServiceMonitor", "demo-eks-ipam-exporter"),
    ]), "no Namespace by default (Helm creates the release namespace)"
    for o in objs:
        labels = o["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "eks-ipam-exporter"
        assert labels["app.kubernetes.io/instance"] == "demo"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/part-of"] == "eks-ipam-exporter"
        assert labels["helm.sh/chart"] == "eks-ipam-exporter-0.1.0"
        if o["metadata"]["name"].endswith("-node"):
            assert labels["app.kubernetes.io/component"] == "node", o["kind"]
        if o["kind"] in ("Deployment", "Service", "ServiceMonitor", "NetworkPolicy", "ClusterRole"):
            assert labels["app.kubernetes.io/component"] == "cluster", o["kind"]
        assert "release" not in labels
    binding = find(objs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo-eks-ipam-exporter", "namespace": "monitoring"}]
    assert container(find(objs, "Deployment"))["image"] == "ghcr.io/eks-ipam-exporter/eks-ipam-exporter:0.1.0"


def test_selectors_and_the_agent_selector():
    objs = render()
    dep, ds = find(objs, "Deployment"), find(objs, "DaemonSet")
    assert matches(agent_selector(), pod_labels(ds)), "the cluster role would not find the agents"
    assert not matches(agent_selector(), pod_labels(dep))
    assert any(p["name"] == "http-metrics" for p in container(ds)["ports"])
    for w in (dep, ds):
        sel = w["spec"]["selector"]["matchLabels"]
        assert matches(sel, pod_labels(w)) and sel["app.kubernetes.io/instance"] == "demo"
    svc = find(objs, "Service")
    assert matches(svc["spec"]["selector"], pod_labels(dep)) and not matches(svc["spec"]["selector"], pod_labels(ds))
    sm, pm = find(objs, "ServiceMonitor"), find(objs, "PodMonitor")
    assert matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
    assert matches(pm["spec"]["selector"]["matchLabels"], pod_labels(ds))
    assert not matches(pm["spec"]["selector"]["matchLabels"], pod_labels(dep))
    np = find(objs, "NetworkPolicy")
    assert np["spec"]["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert not matches(np["spec"]["podSelector"]["matchLabels"], pod_labels(ds)), "NetworkPolicy must not select hostNetwork pods"


def test_node_agent_binds_the_host_ip_and_schedules_like_aws_node():
    ds = find(render(), "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    c = container(ds)
    assert c["args"][:5] == ["node", "--listen", "[$(HOST_IP)]:10098", "--node-name", "$(NODE_NAME)"]
    env = {e["name"]: e for e in c["env"]}
    assert env["HOST_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["automountServiceAccountToken"] is False
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["priorityClassName"] == "system-node-critical"
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(terms) == 1
    assert {e["key"]: (e["operator"], sorted(e["values"])) for e in terms[0]["matchExpressions"]} == AWS_NODE_AFFINITY
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}
    assert [(p["containerPort"], p["hostPort"]) for p in c["ports"]] == [(10098, 10098)]

    ds = find(render({"nodeAgent": {"listenAddress": "0.0.0.0", "port": 10100}}), "DaemonSet")
    assert container(ds)["args"][2] == "0.0.0.0:10100"
    assert [(p["containerPort"], p["hostPort"]) for p in container(ds)["ports"]] == [(10100, 10100)]


def test_the_cluster_deployment_meets_pod_security_restricted():
    for values in ({}, SCENARIOS["web-config-values.yaml"]):
        pod = find(render(values), "Deployment")["spec"]["template"]["spec"]
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        assert all(set(v) - {"name"} <= {"emptyDir", "projected", "secret", "configMap"} for v in pod["volumes"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        sc = pod["containers"][0]["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["readOnlyRootFilesystem"] is True


# ------------------------------------------------------------------------------------------
# value toggles


def test_rbac_create_false():
    objs = render({"rbac": {"create": False}})
    assert not kinds(objs) & {"ClusterRole", "ClusterRoleBinding"}
    assert {"ClusterRole", "ClusterRoleBinding"} <= kinds(render())


def test_node_agent_disabled():
    objs = render({"nodeAgent": {"enabled": False}})
    assert "DaemonSet" not in kinds(objs) and "PodMonitor" not in kinds(objs)
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"] == ["demo-eks-ipam-exporter"]
    np = find(objs, "NetworkPolicy")
    assert not [r for r in np["spec"]["egress"] if any(p["port"] == 10098 for p in r["ports"])]
    # and nameOverride is then free to change the name label
    objs = render({"nodeAgent": {"enabled": False}, "nameOverride": "ipam"})
    assert find(objs, "Deployment")["metadata"]["labels"]["app.kubernetes.io/name"] == "ipam"


def test_name_override_with_the_node_agent_fails():
    assert "app.kubernetes.io/name=eks-ipam-exporter" in render_error({"nameOverride": "ipam"})
    objs = render({"fullnameOverride": "ipam"})
    assert find(objs, "DaemonSet", "ipam-node") and find(objs, "Deployment", "ipam")


def test_release_label():
    objs = render({"releaseLabel": True}, name="kps")
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        assert find(objs, kind)["metadata"]["labels"]["release"] == "kps", kind
    for o in objs:
        if o["kind"] in ("Deployment", "DaemonSet", "Service"):
            assert "release" not in o["metadata"]["labels"]
            assert "release" not in json.dumps(o.get("spec", {}).get("selector", {}))
    objs = render({"prometheus": {"monitor": {"additionalLabels": {"team": "net"}}},
                   "prometheusRule": {"additionalLabels": {"role": "alert-rules"}}})
    assert find(objs, "ServiceMonitor")["metadata"]["labels"]["team"] == "net"
    assert find(objs, "PrometheusRule")["metadata"]["labels"]["role"] == "alert-rules"


def test_operator_objects_have_value_switches():
    objs = render({"prometheus": {"monitor": {"enabled": False}, "podMonitor": {"enabled": False}},
                   "prometheusRule": {"enabled": False}, "dashboards": {"enabled": False},
                   "networkPolicy": {"enabled": False}})
    assert not any(o["apiVersion"].startswith(OPERATOR_GROUP) for o in objs)
    assert not kinds(objs) & {"ConfigMap", "NetworkPolicy"}
    assert {"Deployment", "DaemonSet", "Service"} <= kinds(objs)


def test_monitor_settings():
    objs = render({"prometheus": {"monitor": {"interval": "1m", "scrapeTimeout": "20s", "jobLabel": "app.kubernetes.io/name",
                                              "relabelings": [{"action": "labeldrop", "regex": "pod"}],
                                              "metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"], "regex": "go_.*"}]},
                                  "podMonitor": {"interval": "15s", "scheme": "https", "tlsConfig": {"insecureSkipVerify": True}}}})
    ep = find(objs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert (ep["interval"], ep["scrapeTimeout"]) == ("1m", "20s")
    assert ep["relabelings"][0]["action"] == "labeldrop" and ep["metricRelabelings"][0]["regex"] == "go_.*"
    assert find(objs, "ServiceMonitor")["spec"]["jobLabel"] == "app.kubernetes.io/name"
    pep = find(objs, "PodMonitor")["spec"]["podMetricsEndpoints"][0]
    assert (pep["interval"], pep["scheme"], pep["tlsConfig"]) == ("15s", "https", {"insecureSkipVerify": True})
    assert "scheme" not in ep


def test_web_config_rendered_by_the_chart():
    values = SCENARIOS["web-config-values.yaml"]
    objs = render(values)
    web = find(objs, "Secret", "demo-eks-ipam-exporter-web-config")
    assert yaml.safe_load(base64.b64decode(web["data"]["web-config.yml"])) == values["webConfig"]["config"]
    client = find(objs, "Secret", "demo-eks-ipam-exporter-agent-client")
    assert yaml.safe_load(base64.b64decode(client["data"]["agent-client.yml"])) == values["nodeAgent"]["clientConfig"]["config"]
    assert base64.b64decode(client["data"]["password"]).decode() == "not-a-real-password"
    dep, ds = find(objs, "Deployment"), find(objs, "DaemonSet")
    for w in (dep, ds):
        c, pod = container(w), w["spec"]["template"]["spec"]
        assert f"--web.config.file={WEB_MOUNT}/web-config.yml" in c["args"], w["kind"]
        assert {"name": "web-config", "mountPath": WEB_MOUNT, "readOnly": True} in c["volumeMounts"], w["kind"]
        vol = next(v for v in pod["volumes"] if v["name"] == "web-config")
        assert [s["secret"]["name"] for s in vol["projected"]["sources"]] == [
            "demo-eks-ipam-exporter-web-config", "eks-ipam-exporter-tls"], w["kind"]
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"]["scheme"] == "HTTPS", (w["kind"], probe)
        assert w["spec"]["template"]["metadata"]["annotations"]["checksum/web-config"], w["kind"]
    assert f"--agent-client-config={CLIENT_MOUNT}/agent-client.yml" in container(dep)["args"]
    assert not any(a.startswith("--agent-client-config") for a in container(ds)["args"])
    assert {"name": "agent-client-config", "mountPath": CLIENT_MOUNT, "readOnly": True} in container(dep)["volumeMounts"]
    sm_ep = find(objs, "ServiceMonitor")["spec"]["endpoints"][0]
    pm_ep = find(objs, "PodMonitor")["spec"]["podMetricsEndpoints"][0]
    for ep, mon in ((sm_ep, values["prometheus"]["monitor"]), (pm_ep, values["prometheus"]["podMonitor"])):
        assert ep["scheme"] == "https"
        assert ep["tlsConfig"] == mon["tlsConfig"] and ep["basicAuth"] == mon["basicAuth"]
    # the pods roll when the chart-rendered configuration changes
    changed = copy.deepcopy(values)
    changed["webConfig"]["config"]["basic_auth_users"]["prometheus"] = "$2y$10$" + "x" * 53
    dep2 = find(render(changed), "Deployment")
    assert dep2["spec"]["template"]["metadata"]["annotations"]["checksum/web-config"] != \
        dep["spec"]["template"]["metadata"]["annotations"]["checksum/web-config"]


def test_web_config_from_existing_secrets():
    objs = render(SCENARIOS["existing-secrets-values.yaml"])
    assert "Secret" not in kinds(objs), "existing Secrets are not rendered"
    dep, ds = find(objs, "Deployment"), find(objs, "DaemonSet")

    def sources(w, vol):
        v = next(v for v in w["spec"]["template"]["spec"]["volumes"] if v["name"] == vol)
        return [s["secret"]["name"] for s in v["projected"]["sources"]]

    assert sources(dep, "web-config") == ["exporter-web-config"]
    assert sources(ds, "web-config") == ["agent-web-config"]
    assert sources(dep, "agent-client-config") == ["agent-client-config"]
    assert "checksum/web-config" not in (dep["spec"]["template"]["metadata"].get("annotations") or {})


def test_web_config_without_tls_keeps_http():
    objs = render({"webConfig": {"enabled": True, "tls": False, "config": {"basic_auth_users": {"prometheus": "$2y$10$" + "y" * 53}}},
                   "nodeAgent": {"clientConfig": {"config": {"basic_auth": {"username": "prometheus", "password_file": f"{CLIENT_MOUNT}/password"}},
                                                  "files": {"password": "secret"}}}})
    dep = find(objs, "Deployment")
    assert f"--web.config.file={WEB_MOUNT}/web-config.yml" in container(dep)["args"]
    assert "scheme" not in container(dep)["readinessProbe"]["httpGet"]
    assert "scheme" not in find(objs, "ServiceMonitor")["spec"]["endpoints"][0]


def test_web_config_misconfigurations_fail():
    tls = {"tls_server_config": {"cert_file": f"{WEB_MOUNT}/tls.crt", "key_file": f"{WEB_MOUNT}/tls.key"}}
    # agents serving TLS/auth without a client configuration: the cluster role could not pull them
    assert "nodeAgent.clientConfig" in render_error({"webConfig": {"enabled": True, "config": tls}})
    # ...which is fine when the agents keep plain HTTP or do not run
    render({"webConfig": {"enabled": True, "config": tls}, "nodeAgent": {"enabled": False}})
    render({"webConfig": {"enabled": True, "config": tls}, "nodeAgent": {"webConfig": {"inherit": False}}})
    assert "existingSecret" in render_error({"webConfig": {"enabled": True}})
    assert "not both" in render_error({"webConfig": {"enabled": True, "existingSecret": "x", "config": tls},
                                       "nodeAgent": {"enabled": False}})
    assert "tls_server_config" in render_error({"webConfig": {"enabled": True, "config": {"basic_auth_users": {"a": "b"}}},
                                                "nodeAgent": {"enabled": False}})
    assert "scheme: https" in render_error({"webConfig": {"enabled": True, "config": tls},
                                            "nodeAgent": {"clientConfig": {"config": {"tls_config": {"insecure_skip_verify": True}}}}})


def test_prometheus_scrape_annotations():
    objs = render({"prometheusScrape": True})
    svc = find(objs, "Service")["metadata"]["annotations"]
    assert svc == {"prometheus.io/scrape": "true", "prometheus.io/port": "10097",
                   "prometheus.io/path": "/metrics", "prometheus.io/scheme": "http"}
    ds_ann = find(objs, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert ds_ann["prometheus.io/scrape"] == "true" and ds_ann["prometheus.io/port"] == "10098"
    # the cluster role is scraped through its Service only, not twice
    assert "prometheus.io/scrape" not in (find(objs, "Deployment")["spec"]["template"]["metadata"].get("annotations") or {})
    assert "annotations" not in find(render(), "Service")["metadata"]
    values = merged(SCENARIOS["web-config-values.yaml"], {"prometheusScrape": True})
    objs = render(values)
    assert find(objs, "Service")["metadata"]["annotations"]["prometheus.io/scheme"] == "https"
    assert find(objs, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scheme"] == "https"


def test_service_account_irsa_and_namespaces():
    arn = "arn:aws:iam::123456789012:role/eks-ipam"
    objs = render({"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": arn}},
                   "namespaceOverride": "ipam"})
    sa = find(objs, "ServiceAccount", "demo-eks-ipam-exporter")
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": arn}
    node_sa = find(objs, "ServiceAccount", "demo-eks-ipam-exporter-node")
    assert node_sa["automountServiceAccountToken"] is False and "annotations" not in node_sa["metadata"]
    for o in objs:
        if o["kind"] not in CLUSTER_SCOPED:
            assert o["metadata"]["namespace"] == "ipam", o["kind"]
    assert find(objs, "ClusterRoleBinding")["subjects"][0]["namespace"] == "ipam"
    objs = render({"serviceAccount": {"create": False, "name": "mine"}, "nodeAgent": {"serviceAccount": {"create": False}}})
    assert "ServiceAccount" not in kinds(objs)
    assert find(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    assert find(objs, "ClusterRoleBinding")["subjects"][0]["name"] == "mine"
    assert find(objs, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"] == "default"


def test_namespace_and_settings_configmaps():
    objs = render({"namespace": {"create": True}, "settingsConfigMaps": {"enabled": True, "grants": [
        {"namespace": "kube-system", "configMaps": ["amazon-vpc-cni"]},
        {"namespace": "karpenter", "configMaps": ["karpenter-global-settings"]}]}})
    ns = find(objs, "Namespace", "monitoring")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    roles = [o for o in objs if o["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["karpenter", "kube-system"]
    for r in roles:
        assert r["rules"][0]["verbs"] == ["get"] and r["rules"][0]["resources"] == ["configmaps"]
        assert r["rules"][0]["resourceNames"]
    bindings = [o for o in objs if o["kind"] == "RoleBinding"]
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": "demo-eks-ipam-exporter", "namespace": "monitoring"}]
               for b in bindings) and len(bindings) == 2


def test_image_pull_and_scheduling_values():
    values = SCENARIOS["minimal-values.yaml"]
    objs = render(values)
    assert kinds(objs) == {"Deployment", "Service"}
    pod = find(objs, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == ("123456789012.dkr.ecr.us-west-2.amazonaws.com/eks-ipam-exporter:0.1.0@sha256:" + "0" * 64)
    assert pod["imagePullSecrets"] == [{"name": "ecr-pull"}, {"name": "other-pull"}]
    assert pod["serviceAccountName"] == "preexisting"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == values["nodeSelector"] and pod["tolerations"] == values["tolerations"]
    assert c["args"][-1] == "--silence-window=30m"
    assert c["env"][-1] == {"name": "EKS_IPAM_AGENT_TIMEOUT", "value": "5s"}


def test_aws_region_and_cluster_name():
    objs = render(SCENARIOS["amp-values.yaml"])
    c = container(find(objs, "Deployment"))
    assert {"name": "AWS_REGION", "value": "us-west-2"} in c["env"]
    assert "--cluster-name=demo" in c["args"]
    np = find(objs, "NetworkPolicy")
    cidrs = [p["ipBlock"]["cidr"] for r in np["spec"]["egress"] for p in r.get("to", [])]
    assert cidrs == ["::/0", "fd00:ec2::23/128"]
    assert "AWS_REGION" not in json.dumps(container(find(render(), "Deployment"))["env"])


def test_network_policy_values():
    objs = render({"networkPolicy": {"ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                                     "agentCIDRs": ["10.0.0.0/16", "10.1.0.0/16"], "podIdentityAgentCIDR": "",
                                     "extraEgress": [{"to": [{"ipBlock": {"cidr": "10.2.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 8080}]}]}})
    np = find(objs, "NetworkPolicy")
    assert np["spec"]["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    cidrs = [[p["ipBlock"]["cidr"] for p in r["to"]] for r in np["spec"]["egress"] if r.get("to")]
    assert cidrs == [["10.0.0.0/16", "10.1.0.0/16"], ["10.2.0.0/16"]], "no Pod Identity rule when its CIDR is empty"


def test_dashboards_values():
    objs = render({"dashboards": {"label": "grafana_dashboard_eks", "labelValue": "yes", "namespace": "grafana",
                                  "annotations": {"k8s-sidecar-target-directory": "/tmp/dashboards/eks"}}})
    cm = find(objs, "ConfigMap")
    assert cm["metadata"]["namespace"] == "grafana"
    assert cm["metadata"]["labels"]["grafana_dashboard_eks"] == "yes" and "grafana_dashboard" not in cm["metadata"]["labels"]
    assert cm["metadata"]["annotations"] == {"k8s-sidecar-target-directory": "/tmp/dashboards/eks", "grafana_folder": "EKS IPAM"}
    assert find(render(), "ConfigMap")["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_pod_annotations_labels_and_extra_values():
    objs = render({"podAnnotations": {"a": "1"}, "podLabels": {"team": "net"},
                   "nodeAgent": {"podAnnotations": {"b": "2"}, "podLabels": {"tier": "node"}, "extraArgs": ["--ipamd-metrics-url=http://127.0.0.1:61678/metrics"],
                                 "extraEnv": [{"name": "EKS_IPAM_LOG_LEVEL", "value": "debug"}]},
                   "commonLabels": {"cost-center": "42"}})
    dep, ds = find(objs, "Deployment"), find(objs, "DaemonSet")
    assert dep["spec"]["template"]["metadata"]["annotations"] == {"a": "1"}
    assert pod_labels(dep)["team"] == "net" and "team" not in dep["spec"]["selector"]["matchLabels"]
    assert ds["spec"]["template"]["metadata"]["annotations"] == {"b": "2"}
    assert pod_labels(ds)["tier"] == "node"
    assert container(ds)["args"][-1] == "--ipamd-metrics-url=http://127.0.0.1:61678/metrics"
    assert all(o["metadata"]["labels"]["cost-center"] == "42" for o in objs)


def test_notes():
    notes = render_text()["NOTES.txt"]
    for text in ("port-forward svc/demo-eks-ipam-exporter", "rollout status ds/demo-eks-ipam-exporter-node",
                 "iam-policy.json", "10098", "NetworkPolicy cannot police hostNetwork pods", "create-pod-identity-association"):
        assert text in notes, text
    notes = render_text({"nodeAgent": {"enabled": False}, "releaseLabel": True,
                         "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/x"}}})["NOTES.txt"]
    assert "nodeAgent.enabled=false" in notes and "release=demo" in notes and "arn:aws:iam::123456789012:role/x" in notes
    assert "https://127.0.0.1:10097/metrics" in render_text(SCENARIOS["web-config-values.yaml"])["NOTES.txt"]


def test_readme_documents_every_value_and_the_exposure():
    values = gen_chart.load_values(os.path.join(CHART, "values.yaml"))
    documented = {k for k, _ in gen_chart.values_docs()}

    def leaves(node, path):
        if isinstance(node, dict) and node and path not in documented:
            for k, v in node.items():
                yield from leaves(v, f"{path}.{k}" if path else k)
        else:
            yield path

    undocumented = [p for p in leaves(values, "") if not any(p == d or p.startswith(d + ".") for d in documented)]
    assert not undocumented, f"values without a `# --` comment: {undocumented}"
    with open(os.path.join(CHART, "README.md")) as f:
        readme = f.read()
    for key in documented:
        assert f"| `{key}` |" in readme, key
    for text in ("10098", "hostNetwork", "NetworkPolicy", "webConfig", "nodeAgent.clientConfig", "--web.config.file",
                 "--agent-client-config", "security group", "releaseLabel", "prometheusScrape", "eks.amazonaws.com/role-arn"):
        assert text in readme, text


def test_flags_exist_in_the_binary():
    """Every flag the chart passes (web configuration, client configuration, extra values) is one
    `<binary> <subcommand> --help` lists."""
    binary = os.environ.get("EKS_IPAM_BIN")
    need(binary, "EKS_IPAM_BIN is not set: cannot compare the chart's flags with `<binary> <subcommand> --help`")
    helps = {}
    for scenario in ("web-config-values.yaml", "amp-values.yaml", "existing-secrets-values.yaml"):
        for w in (o for o in render(SCENARIOS[scenario]) if o["kind"] in ("Deployment", "DaemonSet")):
            sub = args_of(w)[0]
            if sub not in helps:
                r = subprocess.run([binary, sub, "--help"], capture_output=True, text=True)
                assert r.returncode == 0, r.stderr
                helps[sub] = " ".join(r.stdout.split())
            for a in args_of(w)[1:]:
                if a.startswith("--"):
                    flag = a.split("=", 1)[0]
                    assert re.search(re.escape(flag) + r"[ =,\]]", helps[sub]), f"`{sub} --help` does not list {flag}"
