"""Tests for the monitoring mixin in mixin/ (jsonnet): the source of the shipped rules and dashboards.

Run:  python3 -m pytest tests/python/test_mixin.py
Needs `jsonnet` (Debian package jsonnet) and, for the promtool checks, promtool (Debian package
prometheus); tests skip with a message when one is missing, and fail under EKS_IPAM_REQUIRE_ALL=1
(the test command, scripts/test.sh).

  * drift: the committed generated files are exactly what the mixin builds, and `gen_deploy.py
    --check` fails (naming the right files) on a mixin changed in a temporary copy;
  * overrides: a consumer's `_config` (another cluster label, runbook URL pattern, job selectors,
    a `for:` window) reaches every join, annotation query, runbook URL, variable and panel query;
  * validity: promtool accepts the built rules, with the default and the overridden _config;
  * the layout the Rust test in src/model/paging.rs and tests/rules/check_coverage.py rely on.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import need_tool
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MIXIN = os.path.join(ROOT, "mixin")
RULES_FILE = os.path.join(ROOT, "deploy", "rules", "eks-ipam-exporter.rules.yaml")
RUNBOOK_BASE = "https://github.com/eks-ipam-exporter/eks-ipam-exporter/blob/main/docs/runbook.md#"
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests", "rules"))
import check_coverage  # noqa: E402
import gen_deploy  # noqa: E402
from test_dashboards import join_label_lists, metric_selectors  # noqa: E402

# A consumer's overrides: everything that must follow _config.
OVERRIDES = {
    "clusterLabel": "k8s_cluster",
    "runbookURLPattern": "https://runbooks.example.com/eks-ipam/%s.md",
    "clusterRoleSelector": 'job="ipam"',
    "nodeAgentSelector": 'job="ipam-node"',
    "alertFor": {"EksIpamExporterDown": "7m", "EksIpamNodePodsWaitingForIp": "3m"},
    "allocationSilenceThresholdSeconds": 1800,
    "subnetLowFreeRatio": 0.15,
}
# A bare `cluster` label reference (not `$cluster`, the variable, nor part of k8s_cluster).
BARE_CLUSTER = re.compile(r"(?<![\w$])cluster(?!\w)")


def jsonnet_code(overrides):
    """_config overrides as jsonnet code: JSON, except that object-valued settings (alertFor) merge
    (`+:`) into the defaults instead of replacing them, as mixin/README.md shows."""
    fields = [f"{json.dumps(k)}{'+:' if isinstance(v, dict) else ':'} {json.dumps(v)}" for k, v in overrides.items()]
    return "{" + ", ".join(fields) + "}"


def run_jsonnet(path, *args):
    jsonnet = need_tool("jsonnet", "jsonnet")
    r = subprocess.run([jsonnet, "-J", MIXIN, *args, str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def consumer_build(tmp_path, overrides=None):
    """What a consumer gets: a file of their own that imports mixin.libsonnet and overrides _config
    (the mixin/README.md way), rendered with `jsonnet -J mixin`."""
    wrapper = tmp_path / "consumer.jsonnet"
    wrapper.write_text(
        "local mixin = (import 'mixin.libsonnet') + { _config+:: %s };\n"
        "{\n"
        "  alerts: mixin.prometheusAlerts,\n"
        "  rules: mixin.prometheusRules,\n"
        "  combined: mixin.prometheusRulesAndAlerts,\n"
        "  dashboards: mixin.grafanaDashboards,\n"
        "  config: mixin._config,\n"
        "}\n" % jsonnet_code(overrides or {}))
    return run_jsonnet(wrapper)


def rules_of(doc):
    return [r for g in doc["groups"] for r in g["rules"]]


def alerts_of(doc):
    return {r["alert"]: r for r in rules_of(doc) if "alert" in r}


def dashboard_exprs(dashboards):
    """(where, PromQL) of every panel target and every query variable."""
    out = []
    for name, d in dashboards.items():
        for p in d["panels"]:
            for t in p["targets"]:
                out.append((f"{name} {p['title']!r}/{t['refId']}", t["expr"]))
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                out.append((f"{name} variable {v['name']}", v["query"]["query"]))
    return out


def annotation_queries(text):
    """The PromQL format strings of the Go-template queries in an annotation (`printf "q{...}" args |
    query`), with their arguments; value formatting (`printf "%.0f"`) is left out."""
    return [(fmt, args) for fmt, args in re.findall(r'printf "([^"]*)"((?: \$labels\.\w+)*)', text) if "{" in fmt]


@pytest.fixture(scope="module")
def built():
    need_tool("jsonnet", "jsonnet")
    return gen_deploy.build_mixin()


@pytest.fixture(scope="module")
def committed_rules():
    with open(RULES_FILE) as f:
        return yaml.safe_load(f)


# ------------------------------------------------------------------------------------------
# drift


def test_committed_files_are_what_the_mixin_builds(built):
    stale = gen_deploy.stale_files(built)
    assert not stale, f"run python3 tools/gen_deploy.py: stale {stale}"
    # and the parsed content, not just the text
    with open(RULES_FILE) as f:
        assert yaml.safe_load(f) == gen_deploy.order_rules(built["rules"])
    for name, dashboard in built["dashboards"].items():
        with open(os.path.join(ROOT, "dashboards", name)) as f:
            assert json.load(f) == dashboard, name


def _mixin_copy(tmp_path, monkeypatch):
    copy = tmp_path / "mixin"
    shutil.copytree(MIXIN, copy)
    monkeypatch.setattr(gen_deploy, "MIXIN_DIR", str(copy))
    monkeypatch.setattr(gen_deploy, "MIXIN_ENTRY", str(copy / "build.jsonnet"))
    return copy


def _edit(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {path}"
    path.write_text(text.replace(old, new))


def test_check_fails_on_a_changed_alert(tmp_path, monkeypatch, capsys):
    need_tool("jsonnet", "jsonnet")
    copy = _mixin_copy(tmp_path, monkeypatch)
    _edit(copy / "config.libsonnet", "EksIpamCollectorDown: '15m'", "EksIpamCollectorDown: '16m'")
    assert gen_deploy.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "deploy/rules/eks-ipam-exporter.rules.yaml is stale" in err
    assert "deploy/prometheusrule.yaml is stale" in err
    assert "dashboards/" not in err, "an alert-only change must not touch the dashboards"


def test_check_fails_on_a_changed_dashboard(tmp_path, monkeypatch, capsys):
    need_tool("jsonnet", "jsonnet")
    copy = _mixin_copy(tmp_path, monkeypatch)
    _edit(copy / "dashboards" / "node.libsonnet", "'EKS IPAM / Node'", "'EKS IPAM / Node (edited)'")
    assert gen_deploy.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "dashboards/eks-ipam-node.json is stale" in err
    assert "deploy/grafana-dashboards.yaml is stale" in err
    assert "rules" not in err and "dashboards/eks-ipam-overview.json" not in err


def test_missing_jsonnet_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("JSONNET", "/nonexistent/jsonnet")
    assert gen_deploy.main(["--check"]) == 2
    assert "apt-get install jsonnet" in capsys.readouterr().err
    with pytest.raises(gen_deploy.JsonnetError, match="apt-get install jsonnet"):
        gen_deploy.build_mixin()


def test_consumer_import_gives_what_deploy_ships(tmp_path, built):
    """Importing mixin.libsonnet (jsonnet-bundler users) and the build entry agree, and the
    conventional split (prometheusRules / prometheusAlerts) holds the same rules."""
    out = consumer_build(tmp_path)
    assert out["combined"] == built["rules"]
    assert out["dashboards"] == built["dashboards"]
    assert [g["name"] for g in out["rules"]["groups"]] == ["eks-ipam-exporter.rules"]
    assert [g["name"] for g in out["alerts"]["groups"]] == ["eks-ipam-exporter.alerts"]
    assert [g["name"] for g in out["combined"]["groups"]] == ["eks-ipam-exporter"]
    assert rules_of(out["combined"]) == rules_of(out["rules"]) + rules_of(out["alerts"])
    assert all("record" in r for r in rules_of(out["rules"])) and all("alert" in r for r in rules_of(out["alerts"]))


# ------------------------------------------------------------------------------------------
# the generated rules file's layout


def test_rules_file_layout_for_the_line_readers(committed_rules):
    """src/model/paging.rs reads `- alert: NAME`, then `severity: X`, then `runbook_url: URL` per
    alert block, line by line: emulate it and compare with the parsed YAML."""
    parsed, name, severity = {}, None, ""
    with open(RULES_FILE) as f:
        for line in f:
            t = line.strip()
            if t.startswith("- alert: "):
                name = t[len("- alert: "):]
            elif t.startswith("severity: "):
                severity = t[len("severity: "):]
            elif t.startswith("runbook_url: ") and name:
                parsed[name] = (severity, t[len("runbook_url: "):])
                name = None
    expected = {n: (r["labels"]["severity"], r["annotations"]["runbook_url"]) for n, r in alerts_of(committed_rules).items()}
    assert parsed == expected
    assert set(parsed) == set(check_coverage.EXPECTED)
    for n, (sev, url) in parsed.items():
        assert sev == check_coverage.EXPECTED[n] and url == RUNBOOK_BASE + n.lower()
    # one group, recording rules before alerts (each alert sees this evaluation's records)
    kinds = ["record" if "record" in r else "alert" for r in rules_of(committed_rules)]
    assert len(committed_rules["groups"]) == 1 and kinds == sorted(kinds, key=lambda k: k != "record")


def test_default_annotation_queries_select_the_alerts_cluster(committed_rules):
    queries = 0
    for name, rule in alerts_of(committed_rules).items():
        for key, text in rule["annotations"].items():
            for fmt, args in annotation_queries(text):
                assert "{cluster=%q,job=%q" in fmt, f"{name} {key}: {fmt}"
                assert args.split()[:2] == ["$labels.cluster", "$labels.job"], f"{name} {key}: {args}"
                assert fmt.count("%q") == len(args.split()), f"{name} {key}: {fmt} {args}"
                queries += 1
    assert queries >= 25, queries


# ------------------------------------------------------------------------------------------
# a consumer's _config


@pytest.fixture(scope="module")
def overridden(tmp_path_factory):
    return consumer_build(tmp_path_factory.mktemp("consumer"), OVERRIDES)


def test_override_cluster_label_reaches_every_join(overridden):
    exprs = [(r.get("alert") or r.get("record"), r["expr"]) for r in rules_of(overridden["combined"])]
    exprs += dashboard_exprs(overridden["dashboards"])
    joins = 0
    for where, expr in exprs:
        assert not BARE_CLUSTER.search(expr), f"{where}: a `cluster` label is left: {expr}"
        for labels in join_label_lists(expr):
            assert labels[0] == "k8s_cluster", f"{where}: on ({', '.join(labels)})"
            joins += 1
    assert joins >= 10


def test_override_cluster_label_reaches_every_annotation_query(overridden):
    queries = 0
    for name, rule in alerts_of(overridden["combined"]).items():
        for key, text in rule["annotations"].items():
            assert "$labels.cluster " not in text and "{cluster=" not in text, f"{name} {key}"
            for fmt, args in annotation_queries(text):
                assert "{k8s_cluster=%q,job=%q" in fmt, f"{name} {key}: {fmt}"
                assert args.split()[:2] == ["$labels.k8s_cluster", "$labels.job"], f"{name} {key}: {args}"
                queries += 1
    assert queries >= 25


def test_override_runbook_url_pattern(overridden):
    for doc in (overridden["combined"], overridden["alerts"]):
        alerts = alerts_of(doc)
        assert set(alerts) == set(check_coverage.EXPECTED)
        for name, rule in alerts.items():
            assert rule["annotations"]["runbook_url"] == f"https://runbooks.example.com/eks-ipam/{name.lower()}.md"


def test_override_selectors_thresholds_and_windows(overridden):
    alerts = alerts_of(overridden["combined"])
    down = alerts["EksIpamExporterDown"]
    # two different selectors: each role is watched, and each role's absence fires
    for sel in ('job="ipam"', 'job="ipam-node"'):
        assert f"up{{{sel}}} == 0" in down["expr"] and f"absent(up{{{sel}}})" in down["expr"], down["expr"]
    assert ".*eks-ipam-exporter.*" not in json.dumps(overridden)
    assert down["for"] == "7m" and "for 7 minutes" in down["annotations"]["description"]
    waiting = alerts["EksIpamNodePodsWaitingForIp"]
    assert waiting["for"] == "3m" and "for more than 3 minutes" in waiting["annotations"]["description"]
    assert "> 1800" in alerts["EksIpamIpamdAllocationStalled"]["expr"]
    assert "clamp_min(0.15 * eks_ipam_subnet_size_ips, 32)" in alerts["EksIpamSubnetIpsLow"]["expr"]
    assert "clamp_min(0.15 * eks_ipam_zone_pod_ips_size, 32)" in alerts["EksIpamZonePodIpsLow"]["expr"]
    # the dashboards follow: the silence line, the job variable over both selectors, the cluster variable
    node = overridden["dashboards"]["eks-ipam-node.json"]
    lines = [p["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] for p in node["panels"]
             if "silence" in p["title"].lower()]
    assert lines and set(lines) == {1800}, lines
    for d in overridden["dashboards"].values():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["cluster"]["query"]["query"] == "label_values(eks_ipam_build_info, k8s_cluster)"
        job = variables["job"]["query"]["query"]
        assert 'job="ipam"' in job and 'job="ipam-node"' in job and 'k8s_cluster=~"$cluster"' in job, job
        for where, expr in dashboard_exprs({"d": d}):
            for metric, block in metric_selectors(expr):
                if "variable" not in where:
                    assert block and 'k8s_cluster=~"$cluster"' in block and 'job=~"$job"' in block, (where, metric)


def test_tla_config_of_the_build_entry(tmp_path):
    """gen_deploy.build_mixin(config=...) (the build entry's top-level argument) applies _config too."""
    need_tool("jsonnet", "jsonnet")
    out = gen_deploy.build_mixin(config=jsonnet_code({"clusterLabel": "k8s_cluster"}))
    assert out["rules"] == consumer_build(tmp_path, {"clusterLabel": "k8s_cluster"})["combined"]
    assert "on (k8s_cluster, job)" in alerts_of(out["rules"])["EksIpamIpamdAllocationStalled"]["expr"]


# ------------------------------------------------------------------------------------------
# promtool


@pytest.mark.parametrize("config", [None, OVERRIDES], ids=["default", "overridden"])
def test_promtool_accepts_the_built_rules(tmp_path, config):
    need_tool("jsonnet", "jsonnet")
    promtool = need_tool("promtool", "prometheus")
    out = gen_deploy.build_mixin(config=None if config is None else jsonnet_code(config))
    path = tmp_path / "rules.yaml"
    path.write_text(gen_deploy.render_rules_file(gen_deploy.order_rules(out["rules"])))
    r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 24 rules found" in r.stdout, r.stdout
    # the overridden dashboards' queries parse too (variables as Grafana fills them in)
    rules = [{"record": f"q{i}", "expr": re.sub(r"\$\{?\w+\}?", ".*", expr).replace("[.*]", "[5m]")}
             for i, (_, expr) in enumerate(dashboard_exprs(out["dashboards"])) if not expr.startswith(("label_values", "query_result"))]
    qpath = tmp_path / "queries.yaml"
    qpath.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]}))
    r = subprocess.run([promtool, "check", "rules", str(qpath)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mixin_sources_are_jsonnetfmt_formatted():
    """jsonnetfmt (shipped with Debian's jsonnet) leaves every source as it is: `jsonnetfmt -i` to fix."""
    jsonnetfmt = need_tool("jsonnetfmt", "jsonnet")
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(MIXIN) for f in fs if f.endswith((".jsonnet", ".libsonnet")))
    assert len(files) >= 10, files
    bad = [os.path.relpath(f, ROOT) for f in files
           if subprocess.run([jsonnetfmt, "--test", f], capture_output=True).returncode != 0]
    assert not bad, f"run jsonnetfmt -i on {bad}"
