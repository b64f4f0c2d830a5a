"""Structure tests for the Grafana dashboards in dashboards/, plus an opt-in live check.

Run:  python3 -m pytest tests/python/test_dashboards.py

The dashboards are generated from the jsonnet mixin in mixin/ (tools/gen_deploy.py); these tests
read the generated JSON. tests/python/test_mixin.py builds the mixin itself (drift, overrides).

Helpers meant for reuse (e.g. by an end-to-end test):
  load_dashboards()                 {file name: dashboard dict}
  panel_queries(dashboard, vars)    every panel target: dict(dashboard, panel, ref, expr, instant)
  all_queries(vars)                 panel_queries over every dashboard
  substitute(expr, vars)            Grafana variables -> concrete values ($node, $__rate_interval, ...)
  metric_names(expr)                metric names a PromQL expression reads
  metric_selectors(expr)            [(metric name, "{...}" matchers or None)] of a PromQL expression
  join_label_lists(expr)            the label lists of every `on (...)` in a PromQL expression

Live check (skipped unless EKS_IPAM_BIN is set and `prometheus` is installed): starts
`$EKS_IPAM_BIN demo` (or `$EKS_IPAM_BIN $EKS_IPAM_LIVE_ARGS`, e.g. "cluster --bundle bundles/demo"),
a real Prometheus that scrapes it as job "eks-ipam-exporter" every second and loads the shipped
rules, then asserts that every panel query returns data (node dashboard: for at least one node)
and that the shipped alerts, with `for:` set to 0s, fire for both incidents of the demo.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import pytest
from conftest import need_tool
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DASHBOARD_DIR = os.path.join(ROOT, "dashboards")
RULES_FILE = os.path.join(ROOT, "deploy", "rules", "eks-ipam-exporter.rules.yaml")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gen_deploy  # noqa: E402

# Metric names of the exporter (docs/design.md section 5 and the binary's metric list): the contract.
CONTRACT_METRICS = {
    # cluster role, per node
    "eks_ipam_node_info", "eks_ipam_node_pod_ip_capacity", "eks_ipam_node_max_pods",
    "eks_ipam_node_karpenter_expected_max_pods", "eks_ipam_node_pod_ip_overcommit", "eks_ipam_node_pods",
    "eks_ipam_node_pods_waiting_for_ip", "eks_ipam_node_ips", "eks_ipam_node_enis", "eks_ipam_node_enis_max",
    "eks_ipam_node_ip_growth_blocked", "eks_ipam_node_cni_target", "eks_ipam_api_call_last_timestamp_seconds",
    "eks_ipam_api_call_silence_seconds",
    # cluster role, cluster-wide
    "eks_ipam_karpenter_reserved_enis", "eks_ipam_cni_custom_networking_enabled",
    "eks_ipam_cni_prefix_delegation_enabled", "eks_ipam_api_calls_total", "eks_ipam_cloudtrail_lag_seconds",
    "eks_ipam_subnet_available_ips", "eks_ipam_subnet_size_ips", "eks_ipam_subnet_free_prefixes", "eks_ipam_finding",
    # docs/design.md section 8 (zone view of enhanced subnet discovery)
    "eks_ipam_zone_pod_ips_available", "eks_ipam_zone_pod_ips_size", "eks_ipam_zone_pod_ip_subnets",
    "eks_ipam_zone_free_prefixes", "eks_ipam_subnet_info", "eks_ipam_subnet_zone_candidates",
    # docs/design.md section 8 (scheduler-side exhaustion)
    "eks_ipam_node_resource", "eks_ipam_pods_unschedulable",
    # docs/design.md section 8 (who holds a subnet's addresses; prefix CIDR reservations)
    "eks_ipam_subnet_ips", "eks_ipam_subnet_prefix_reserved_free_ips",
    # both roles
    "eks_ipam_collector_up", "eks_ipam_collector_last_success_timestamp_seconds",
    "eks_ipam_collector_duration_seconds", "eks_ipam_build_info",
    # node role
    "eks_ipam_ipamd_up", "eks_ipam_ipamd_ips", "eks_ipam_ipamd_enis", "eks_ipam_ipamd_eni_ips",
    "eks_ipam_ipamd_prefixes", "eks_ipam_ipamd_no_available_ip_total",
}
# Prometheus' own series a panel may read.
PROMETHEUS_METRICS = {"up"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
STABLE_UIDS = {"eks-ipam-overview.json": "eks-ipam-overview", "eks-ipam-node.json": "eks-ipam-node"}
# Grafana unit ids used by (or acceptable for) these dashboards.
KNOWN_UNITS = {"short", "none", "s", "ms", "percentunit", "percent", "ops", "reqps", "bytes", "dateTimeAsIso",
               "dateTimeFromNow", "bool", "bool_yes_no"}
PROMQL_FUNCTIONS_AND_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan",
}

# What Grafana puts in for a variable left at "All": `cluster` has allValue ".*" (matches series
# without the label too); `job` expands to the jobs it lists, which the default selectors
# (mixin/config.libsonnet) pick with this regex.
DEFAULT_VARIABLES = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "cluster": ".*",
                     "job": ".*eks-ipam-exporter.*"}
# The matchers every panel query carries on every metric it reads (mixin/dashboards/common.libsonnet).
CLUSTER_MATCHER = 'cluster=~"$cluster"'
JOB_MATCHER = 'job=~"$job"'


# ------------------------------------------------------------------------------------------
# helpers (importable)


def load_dashboards(directory=DASHBOARD_DIR):
    out = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as f:
                out[name] = json.load(f)
    return out


def iter_panels(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        for inner in p.get("panels", []) or []:  # collapsed rows
            yield inner


def substitute(expr, variables=None):
    """Replaces Grafana variables ($name, ${name}, ${name:fmt}) with values; unknown ones stay."""
    values = dict(DEFAULT_VARIABLES)
    values.update(variables or {})

    def repl(m):
        name = m.group(1) or m.group(2)
        return str(values[name]) if name in values else m.group(0)

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def panel_queries(dashboard, variables=None):
    """Every target of every panel: [{dashboard, panel, ref, expr, instant}] with variables substituted."""
    out = []
    for p in iter_panels(dashboard):
        for t in p.get("targets", []) or []:
            if "expr" in t:
                out.append({
                    "dashboard": dashboard["uid"],
                    "panel": p["title"],
                    "ref": t.get("refId"),
                    "expr": substitute(t["expr"], variables),
                    "instant": bool(t.get("instant")),
                })
    return out


def all_queries(variables=None):
    out = []
    for d in load_dashboards().values():
        out.extend(panel_queries(d, variables))
    return out


def metric_names(expr):
    """Metric names read by a PromQL expression (a lexical approximation that is exact for ours)."""
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)     # strings
    s = re.sub(r"\{[^}]*\}", "", s)                                        # label matchers
    s = re.sub(r"\[[^\]]*\]", "", s)                                       # range / subquery durations
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", s)  # label lists
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        word = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("(") or re.match(r"(by|without)\b", rest):  # function or aggregation
            continue
        if word.lower() in PROMQL_FUNCTIONS_AND_KEYWORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|\{[^}]*\}|\[[^\]]*\]|[A-Za-z_:][A-Za-z0-9_:]*|\d+(?:\.\d+)?|\S')
_LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def metric_selectors(expr):
    """[(metric name, its "{...}" matcher block or None)] for every metric a PromQL expression reads,
    in order (the same lexical approach as metric_names; exact for our queries)."""
    tokens = _TOKEN.findall(expr)
    out = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok.lower() in _LABEL_LIST_KEYWORDS and nxt == "(":
            i = tokens.index(")", i + 1) + 1  # skip the label list
            continue
        is_call = nxt == "(" or nxt.lower() in ("by", "without")  # function, or aggregation `sum by (...) (...)`
        if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", tok) and not is_call and tok.lower() not in PROMQL_FUNCTIONS_AND_KEYWORDS:
            block = nxt if nxt.startswith("{") else None
            out.append((tok, block))
            i += 2 if block else 1
            continue
        i += 1
    return out


def join_label_lists(expr):
    """The label lists of every `on (...)` of a PromQL expression: [["cluster", "job", "node"], ...]."""
    return [[l.strip() for l in m.group(1).split(",") if l.strip()]
            for m in re.finditer(r"\bon\s*\(([^)]*)\)", expr)]


def recording_rules():
    with open(RULES_FILE) as f:
        doc = yaml.safe_load(f)
    return {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}


def alert_rule(name):
    with open(RULES_FILE) as f:
        doc = yaml.safe_load(f)
    return next(r for g in doc["groups"] for r in g["rules"] if r.get("alert") == name)


# ------------------------------------------------------------------------------------------
# structure


@pytest.fixture(scope="module")
def dashboards():
    return load_dashboards()


def test_dashboard_files_are_the_generated_ones(dashboards):
    assert set(dashboards) == set(STABLE_UIDS)
    need_tool("jsonnet", "jsonnet")
    stale = [p for p in gen_deploy.stale_files() if p.startswith("dashboards/") or "grafana-dashboards" in p]
    assert not stale, f"run python3 tools/gen_deploy.py: stale {stale}"


def test_uids_are_stable_and_unique(dashboards):
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)
    for name, d in dashboards.items():
        assert d["uid"] == STABLE_UIDS[name], "dashboard uids are part of every saved link: never change them"
        assert len(d["uid"]) <= 40 and re.fullmatch(r"[a-z0-9-]+", d["uid"])
        assert d["id"] is None, "exported dashboards must not carry a database id"
    assert len({d["title"] for d in dashboards.values()}) == len(dashboards)


def test_datasource_variable(dashboards):
    for name, d in dashboards.items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        ds = variables.get("datasource")
        assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus", name
        for v in variables.values():
            if v["type"] == "query":
                assert v["datasource"] == DATASOURCE, (name, v["name"])


def _variable_query(v):
    q = v["query"]
    return q["query"] if isinstance(q, dict) else q


def test_cluster_and_job_variables(dashboards):
    """Every dashboard selects a cluster and exporter job(s); "All" also works without a cluster label."""
    for name, d in dashboards.items():
        order = [v["name"] for v in d["templating"]["list"]]
        assert order[:3] == ["datasource", "cluster", "job"], f"{name}: variables {order}"
        variables = {v["name"]: v for v in d["templating"]["list"]}
        cluster, job = variables["cluster"], variables["job"]
        assert cluster["type"] == "query"
        assert re.fullmatch(r"label_values\(eks_ipam_\w+, cluster\)", _variable_query(cluster)), _variable_query(cluster)
        assert cluster["definition"] == _variable_query(cluster)
        # single-cluster Prometheus: no label values, and All must still match every series
        assert cluster["includeAll"] is True and cluster["allValue"] == ".*", name
        assert cluster["current"].get("value") == "$__all", f"{name}: cluster must start at All"
        assert job["type"] == "query" and job["includeAll"] is True and job["multi"] is True
        assert job["current"].get("value") == ["$__all"], f"{name}: job must start at All"
        jq = _variable_query(job)
        assert jq.startswith("label_values(") and jq.endswith(", job)"), jq
        assert CLUSTER_MATCHER in jq, f"{name}: the job variable must list the jobs of the selected cluster"
        assert 'job=~".*eks-ipam-exporter.*"' in jq, f"{name}: the job variable lists the exporter's jobs only"
        assert "allValue" not in job, f"{name}: All of job must expand to the listed jobs, not match every job"
        # a dashboard variable that depends on cluster/job comes after them
        for v in d["templating"]["list"][3:]:
            if v["type"] == "query":
                assert CLUSTER_MATCHER in _variable_query(v) and JOB_MATCHER in _variable_query(v), (name, v["name"])


def test_every_query_selects_the_cluster_and_job(dashboards):
    """Every metric every panel query reads carries cluster=~"$cluster" and job=~"$job"."""
    checked = 0
    for name, d in dashboards.items():
        # the raw expressions (panel_queries substitutes the variables)
        for q in ({"panel": p["title"], "ref": t["refId"], "expr": t["expr"]} for p in iter_panels(d) for t in p["targets"]):
            selectors = metric_selectors(q["expr"])
            assert {m for m, _ in selectors} == metric_names(q["expr"]), (q["panel"], selectors)
            for metric, block in selectors:
                where = f"{name} {q['panel']!r}/{q['ref']}: {metric}"
                assert block is not None, f"{where} has no label matchers: {q['expr']}"
                assert CLUSTER_MATCHER in block and JOB_MATCHER in block, f"{where}: {block} lacks the cluster/job matchers"
                checked += 1
    assert checked > 50, checked


def test_every_join_includes_the_cluster_label(dashboards):
    """`on (...)` joins of the panels and of the shipped rules match on the cluster label too."""
    joins = 0
    exprs = [(f"{q['dashboard']} {q['panel']!r}", q["expr"]) for q in all_queries({})]
    with open(RULES_FILE) as f:
        doc = yaml.safe_load(f)
    exprs += [(r.get("alert") or r.get("record"), r["expr"]) for g in doc["groups"] for r in g["rules"]]
    for where, expr in exprs:
        for labels in join_label_lists(expr):
            assert labels and labels[0] == "cluster", f"{where}: on ({', '.join(labels)}) lacks the cluster label: {expr}"
            joins += 1
    assert joins >= 10, f"only {joins} joins found: is join_label_lists broken?"


def test_metric_selector_extraction():
    assert metric_selectors('sum by (job) (up{job=~"x"})') == [("up", '{job=~"x"}')]
    assert metric_selectors("a{x=\"1\"} and on (cluster, node) b") == [("a", '{x="1"}'), ("b", None)]
    assert metric_selectors("topk(20, a:b:c{y=\"2\"} * 1000) or vector(0)") == [("a:b:c", '{y="2"}')]
    assert metric_selectors("rate(x_total{a=\"b\"}[$__rate_interval])") == [("x_total", '{a="b"}')]
    assert join_label_lists("a and on (cluster, job) b * on(node) group_left (x) c") == [["cluster", "job"], ["node"]]


def test_grafana_com_import_blocks(dashboards):
    """__inputs/__requires let grafana.com import the JSON; provisioning ignores them."""
    for name, d in dashboards.items():
        inputs = d.get("__inputs") or []
        assert len(inputs) == 1, f"{name}: __inputs must declare the one data source"
        assert {k: inputs[0].get(k) for k in ("name", "type", "pluginId")} == {
            "name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus"}, name
        requires = {(r["type"], r["id"]) for r in d["__requires"]}
        assert ("grafana", "grafana") in requires and ("datasource", "prometheus") in requires, name
        panel_types = {p["type"] for p in iter_panels(d)}
        assert {i for t, i in requires if t == "panel"} == panel_types, f"{name}: __requires must list the panel types"
        # provisioned by the sidecar, ${DS_PROMETHEUS} is never substituted: nothing may depend on it
        body = json.dumps({k: v for k, v in d.items() if k != "__inputs"})
        assert "DS_PROMETHEUS" not in body, f"{name}: panels must use the datasource variable, not ${{DS_PROMETHEUS}}"


def test_node_dashboard_has_node_variable_and_uses_it(dashboards):
    d = dashboards["eks-ipam-node.json"]
    node = next(v for v in d["templating"]["list"] if v["name"] == "node")
    assert _variable_query(node) == 'label_values(eks_ipam_node_info{cluster=~"$cluster", job=~"$job"}, node)'
    for t in panel_queries(d, {}):
        assert 'node="$node"' in t["expr"], f"{t['panel']}/{t['ref']} must select the node variable"


def test_every_panel_uses_the_datasource_variable_and_has_description_and_unit(dashboards):
    for name, d in dashboards.items():
        ids = set()
        for p in iter_panels(d):
            where = f"{name}: {p.get('title')!r}"
            assert p["type"] != "row", f"{where}: rows carry no description; do not use them"
            assert p.get("description", "").strip(), f"{where}: no description"
            assert p.get("title", "").strip(), f"{where}: no title"
            assert p.get("datasource") == DATASOURCE, f"{where}: panel datasource must be ${{datasource}}"
            assert p["targets"], f"{where}: no query"
            refs = [t["refId"] for t in p["targets"]]
            assert len(set(refs)) == len(refs), f"{where}: duplicate refIds"
            for t in p["targets"]:
                assert t.get("datasource") == DATASOURCE, f"{where}/{t['refId']}: target datasource"
                assert t.get("expr", "").strip(), f"{where}/{t['refId']}: empty expr"
            unit = p["fieldConfig"]["defaults"].get("unit")
            assert unit in KNOWN_UNITS, f"{where}: unit {unit!r}"
            for o in p["fieldConfig"].get("overrides", []):
                for prop in o["properties"]:
                    if prop["id"] == "unit":
                        assert prop["value"] in KNOWN_UNITS, f"{where}: override unit {prop['value']!r}"
            assert p["id"] not in ids, f"{where}: duplicate panel id"
            ids.add(p["id"])


def test_layout_fits_and_does_not_overlap(dashboards):
    for name, d in dashboards.items():
        cells = {}
        for p in iter_panels(d):
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, (name, p["title"], g)
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{name}: {p['title']!r} overlaps {cells[(x, y)]!r}"
                    cells[(x, y)] = p["title"]


def test_every_metric_exists_in_the_contract_or_the_rules(dashboards):
    known = CONTRACT_METRICS | PROMETHEUS_METRICS | recording_rules()
    used = set()
    for q in all_queries():
        names = metric_names(q["expr"])
        assert names, f"{q['panel']}/{q['ref']}: reads no metric: {q['expr']}"
        unknown = names - known
        assert not unknown, f"{q['dashboard']} {q['panel']}/{q['ref']}: unknown metric(s) {sorted(unknown)}"
        used |= names
    # the dashboards cover the contract's cluster-role metrics that matter for the overview and node views
    for m in ("eks_ipam_subnet_available_ips", "eks_ipam_node_pod_ip_overcommit", "eks_ipam_finding",
              "eks_ipam_node_ips", "eks_ipam_node_enis", "eks_ipam_node_enis_max", "eks_ipam_node_max_pods",
              "eks_ipam_node_pod_ip_capacity", "eks_ipam_node_pods_waiting_for_ip", "eks_ipam_api_call_silence_seconds",
              "eks_ipam_collector_up", "eks_ipam_api_calls_total"):
        assert m in used or any(r for r in used if r.startswith("eks_ipam:")), m
        assert m in used, f"no panel shows {m}"


def test_metric_name_extraction():
    assert metric_names('sum by (job) (up{job=~".*eks-ipam-exporter.*"})') == {"up"}
    assert metric_names("count(eks_ipam_node_pods_waiting_for_ip > 0) or vector(0)") == {"eks_ipam_node_pods_waiting_for_ip"}
    assert metric_names('eks_ipam_node_pod_ip_capacity{node="$node"} + ignoring (network) eks_ipam_node_pods{node="$node",network="host"}') == {
        "eks_ipam_node_pod_ip_capacity", "eks_ipam_node_pods"}
    assert metric_names("sum by (operation, error_code) (rate(eks_ipam_api_calls_total[5m]))") == {"eks_ipam_api_calls_total"}
    assert metric_names("topk(20, eks_ipam:node_allocation_call_silence_seconds:min)") == {
        "eks_ipam:node_allocation_call_silence_seconds:min"}


def test_substitute():
    assert substitute('x{node="$node"}[$__rate_interval]', {"node": "n1"}) == 'x{node="n1"}[1m]'
    assert substitute("${node}", {"node": "n2"}) == "n2"
    assert substitute("$unknown") == "$unknown"


def test_table_columns_refer_to_existing_queries(dashboards):
    for name, d in dashboards.items():
        for p in iter_panels(d):
            if p["type"] != "table":
                continue
            refs = {t["refId"] for t in p["targets"]}
            for tr in p.get("transformations", []):
                for key in ("renameByName", "excludeByName", "indexByName"):
                    for col in tr.get("options", {}).get(key, {}):
                        m = re.fullmatch(r"Value #(\w+)", col)
                        if m:
                            assert m.group(1) in refs, f"{name}: {p['title']!r} column {col} has no query"
            for t in p["targets"]:
                assert t.get("format") == "table" and t.get("instant"), f"{name}: {p['title']!r} tables need instant table queries"


def test_silence_threshold_line_matches_the_alert(dashboards):
    """The red silence line (and the node dashboard's orange silence stat) is the alert's threshold."""
    expr = alert_rule("EksIpamIpamdAllocationStalled")["expr"]
    m = re.search(r"eks_ipam:node_allocation_call_silence_seconds:min\s*>\s*(\d+)", expr)
    assert m
    threshold = int(m.group(1))
    lines = []
    for d in dashboards.values():
        for p in iter_panels(d):
            reads_silence = any("silence_seconds" in t["expr"] for t in p["targets"])
            custom = p["fieldConfig"]["defaults"].get("custom", {})
            if reads_silence and (custom.get("thresholdsStyle", {}).get("mode") == "dashed" or p["type"] == "stat"):
                steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
                lines.append((p["title"], steps[-1]["value"]))
    assert len(lines) >= 3, lines
    for title, value in lines:
        assert value == threshold, f"{title!r}: threshold {value}, the alert uses {threshold}"


def test_links_point_at_existing_dashboards(dashboards):
    uids = {d["uid"] for d in dashboards.values()}
    for name, d in dashboards.items():
        for link in d.get("links", []):
            assert link["url"].split("/")[2] in uids, (name, link)
        for p in iter_panels(d):
            for o in p["fieldConfig"].get("overrides", []):
                for prop in o["properties"]:
                    if prop["id"] == "links":
                        for link in prop["value"]:
                            assert link["url"].split("/")[2] in uids, (name, p["title"], link)
                            for var in ("datasource", "cluster", "job"):  # the drill-down keeps the selection
                                assert "${" + var + ":queryparam}" in link["url"], (name, p["title"], var, link)


def test_every_query_is_valid_promql(tmp_path):
    """promtool parses every panel query (as a recording rule) after variable substitution."""
    need_tool("promtool", "prometheus")
    rules = []
    for i, q in enumerate(all_queries({"node": "ip-10-0-17-5"})):
        rules.append({"record": f"dashboard_query_{i}", "expr": q["expr"]})
    path = tmp_path / "dashboard-queries.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    r = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# ------------------------------------------------------------------------------------------
# live: a real Prometheus scraping the exporter's demo


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def _wait(what, predicate, timeout=60, interval=0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling until the deadline
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


class LivePrometheus:
    def __init__(self, base):
        self.base = base

    def query(self, expr):
        body = json.loads(_get(self.base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        assert body["status"] == "success", body
        return body["data"]["result"]


@pytest.fixture(scope="module")
def live():
    binary = os.environ.get("EKS_IPAM_BIN")
    require = os.environ.get("EKS_IPAM_REQUIRE_ALL") == "1"
    if not binary:
        (pytest.fail if require else pytest.skip)("live dashboard check: set EKS_IPAM_BIN to the built eks-ipam-exporter binary")
    prometheus = shutil.which("prometheus")
    if not prometheus:
        (pytest.fail if require else pytest.skip)("live dashboard check: Debian package 'prometheus' not installed")
    work = tempfile.mkdtemp(prefix="eks-ipam-live-")
    exporter_port, prom_port = _free_port(), _free_port()
    args = os.environ.get("EKS_IPAM_LIVE_ARGS", "demo").split()
    procs = []
    try:
        procs.append(subprocess.Popen([binary, *args, "--listen", f"127.0.0.1:{exporter_port}"], cwd=ROOT,
                                      stdout=open(os.path.join(work, "exporter.log"), "w"), stderr=subprocess.STDOUT))
        _wait("exporter /metrics", lambda: "eks_ipam_build_info" in _get(f"http://127.0.0.1:{exporter_port}/metrics"))
        fast_rules = os.path.join(work, "rules.yaml")
        gen_deploy.main(["--fast-rules", fast_rules, "--for", "0s"])
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [fast_rules],
            "scrape_configs": [{"job_name": "eks-ipam-exporter",
                                "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}],
        }
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            yaml.safe_dump(config, f)
        procs.append(subprocess.Popen(
            [prometheus, f"--config.file={work}/prometheus.yml", f"--storage.tsdb.path={work}/data",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=open(os.path.join(work, "prometheus.log"), "w"), stderr=subprocess.STDOUT))
        prom = LivePrometheus(f"http://127.0.0.1:{prom_port}")
        # enough samples for rate() and for the recording rules
        _wait("5 scrapes", lambda: prom.query("count_over_time(eks_ipam_build_info[1m])")
              and float(prom.query("count_over_time(eks_ipam_build_info[1m])")[0]["value"][1]) >= 5)
        _wait("recording rules", lambda: prom.query("eks_ipam:node_ips:sum"))
        yield prom
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def test_live_overview_queries_return_data(live):
    d = load_dashboards()["eks-ipam-overview.json"]
    empty = [f"{q['panel']}/{q['ref']}: {q['expr']}" for q in panel_queries(d) if not live.query(q["expr"])]
    assert not empty, "queries without data on the demo:\n" + "\n".join(empty)


def test_live_node_queries_return_data_for_some_node(live):
    d = load_dashboards()["eks-ipam-node.json"]
    nodes = sorted({r["metric"]["node"] for r in live.query("eks_ipam_node_info")})
    assert nodes
    missing = []
    for q in panel_queries(d, {}):
        if not any(live.query(substitute(q["expr"], {"node": n})) for n in nodes):
            missing.append(f"{q['panel']}/{q['ref']}: {q['expr']}")
    assert not missing, "queries without data for every demo node:\n" + "\n".join(missing)


def test_live_alerts_fire_for_both_incidents(live):
    """With for: 0s, the shipped rules fire the critical alerts of both incidents on the demo."""
    def firing():
        return {(r["metric"]["alertname"], r["metric"].get("node", "")) for r in live.query('ALERTS{alertstate="firing"}')}

    alerts = _wait("alerts", lambda: firing() if any(a == "EksIpamIpamdAllocationStalled" for a, _ in firing()) else None,
                   timeout=30)
    names = {a for a, _ in alerts}
    # incident 1 (Karpenter overcommit) and incident 2 (MINIMUM_IP_TARGET stall)
    for expected in ("EksIpamNodePodsWaitingForIp", "EksIpamIpamdAllocationStalled", "EksIpamPodCapacityOvercommitted",
                     "EksIpamKarpenterReservedEnisMissing", "EksIpamMinimumIpTargetWithoutWarmIpTarget"):
        assert expected in names, f"{expected} does not fire on the demo; firing: {sorted(alerts)}"
    stalled = {n for a, n in alerts if a == "EksIpamIpamdAllocationStalled"}
    waiting = {n for a, n in alerts if a == "EksIpamNodePodsWaitingForIp"}
    overcommitted = {n for a, n in alerts if a == "EksIpamPodCapacityOvercommitted"}
    assert stalled and stalled <= waiting, "a stalled node must also have waiting pods"
    assert waiting - stalled, "the Karpenter node waits for IPs without being stalled"
    assert (waiting - stalled) <= overcommitted, "the non-stalled waiting node is the overcommitted one"
    assert "EksIpamExporterDown" not in names and "EksIpamCollectorDown" not in names
