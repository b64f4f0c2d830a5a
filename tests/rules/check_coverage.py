#!/usr/bin/env python3
"""Checks that the alert rules keep their contract and that every rule has promtool tests.

What it enforces (exit 1 and a list of problems otherwise):
  * the alert names and severities are exactly those of docs/design.md section 6;
  * every alert has `for:`, a `severity` label, a `summary`, a templated `description` and a
    `runbook_url` pointing at docs/runbook.md#<lowercase alert name>;
  * every alert has at least one test group named "<Alert>: boundary onset=<d>" that asserts no
    alert at <d> + for - 1m and at least one fully specified alert (labels including the rule's
    labels, and exactly the rule's annotation keys) at <d> + for;
  * every alert has a test group named "<Alert>: healthy ..." asserting no alert at or after `for`;
  * every recording rule is evaluated by a promql_expr_test.
promtool itself then checks that labels and annotations match exactly.
"""
import glob
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RULES = os.path.join(ROOT, "deploy", "rules", "eks-ipam-exporter.rules.yaml")
RUNBOOK_BASE = "https://github.com/eks-ipam-exporter/eks-ipam-exporter/blob/main/docs/runbook.md#"

# docs/design.md section 6 (contract)
CONTRACT = {
    "EksIpamNodePodsWaitingForIp": "critical",
    "EksIpamIpamdAllocationStalled": "critical",
    "EksIpamPodCapacityOvercommitted": "warning",
    "EksIpamMinimumIpTargetWithoutWarmIpTarget": "warning",
    "EksIpamKarpenterReservedEnisMissing": "warning",
    "EksIpamSubnetIpsLow": "warning",
    "EksIpamSubnetIpsExhausted": "critical",
    "EksIpamSubnetNoFreePrefix": "warning",
    "EksIpamIpAssignmentErrors": "warning",
    "EksIpamCollectorDown": "warning",
    "EksIpamExporterDown": "critical",
}
# Alerts beyond the contract's names (docs/design.md section 8 zone view, issue 15).
EXTRA = {
    "EksIpamZonePodIpsLow": "warning",
    "EksIpamZonePodIpsExhausted": "critical",
    "EksIpamVpcResourceExhausted": "warning",
    "EksIpamPodsUnschedulableForVpcResource": "critical",
    "EksIpamAutoModeIpamUnhealthy": "critical",
    # issue 16: every critical finding pages (src/model/paging.rs)
    "EksIpamEniConfigMissing": "critical",
}
EXPECTED = {**CONTRACT, **EXTRA}

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration):
    """Prometheus duration ("1h30m", "90s", "0m") -> seconds."""
    duration = str(duration).strip()
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def load_rules(path=RULES):
    with open(path) as f:
        doc = yaml.safe_load(f)
    alerts, records = {}, []
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts[rule["alert"]] = rule
            else:
                records.append(rule["record"])
    return alerts, records


def load_tests(pattern=os.path.join(HERE, "*.test.yaml")):
    groups, exprs = [], []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            doc = yaml.safe_load(f)
        for tg in doc.get("tests", []):
            groups.append((os.path.basename(path), tg))
            for t in tg.get("promql_expr_test", []) or []:
                exprs.append(t["expr"])
    return groups, exprs


def check(alerts, records, groups, exprs):
    problems = []
    if set(alerts) != set(EXPECTED):
        problems.append(
            f"alert names differ from the contract (+ EXTRA): missing {sorted(set(EXPECTED) - set(alerts))}, "
            f"extra {sorted(set(alerts) - set(EXPECTED))}"
        )
    for name, rule in alerts.items():
        labels = rule.get("labels") or {}
        ann = rule.get("annotations") or {}
        if name in EXPECTED and labels.get("severity") != EXPECTED[name]:
            problems.append(f"{name}: severity {labels.get('severity')!r}, contract says {EXPECTED[name]!r}")
        if "for" not in rule:
            problems.append(f"{name}: no `for:`")
            continue
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                problems.append(f"{name}: missing annotation {key}")
        if "{{" not in ann.get("description", ""):
            problems.append(f"{name}: description is not templated")
        if ann.get("runbook_url") != RUNBOOK_BASE + name.lower():
            problems.append(f"{name}: runbook_url must be {RUNBOOK_BASE + name.lower()}")

        window = seconds(rule["for"])
        boundary_groups = []
        healthy_ok = False
        for fname, tg in groups:
            gname = tg.get("name", "")
            tests = [t for t in tg.get("alert_rule_test", []) or [] if t.get("alertname") == name]
            m = re.match(re.escape(name) + r": boundary onset=(\w+)", gname)
            if m:
                onset = seconds(m.group(1))
                at = {seconds(t["eval_time"]): t.get("exp_alerts") or [] for t in tests}
                fire, before = onset + window, onset + window - 60
                where = f"{fname} / {gname!r}"
                if before not in at:
                    problems.append(f"{name}: {where} has no test at for-1m ({before}s)")
                elif at[before]:
                    problems.append(f"{name}: {where} expects an alert at for-1m ({before}s)")
                if fire not in at or not at[fire]:
                    problems.append(f"{name}: {where} expects no alert at its for: boundary ({fire}s)")
                else:
                    for exp in at[fire]:
                        el = exp.get("exp_labels") or {}
                        for k, v in labels.items():
                            if el.get(k) != v:
                                problems.append(f"{name}: {where}: exp_labels lack {k}={v}")
                        if set((exp.get("exp_annotations") or {}).keys()) != set(ann.keys()):
                            problems.append(f"{name}: {where}: exp_annotations must assert {sorted(ann)}")
                boundary_groups.append(gname)
            if gname.startswith(name + ": healthy"):
                if any(not (t.get("exp_alerts") or []) and seconds(t["eval_time"]) >= window for t in tests):
                    healthy_ok = True
                else:
                    problems.append(f"{name}: {fname} / {gname!r} asserts no quiet period >= for")
        if not boundary_groups:
            problems.append(f"{name}: no test group named '{name}: boundary onset=<d>'")
        if not healthy_ok:
            problems.append(f"{name}: no test group named '{name}: healthy ...'")

    for rec in records:
        if not any(re.search(r"(^|[^\w:])" + re.escape(rec) + r"($|[^\w:])", e) for e in exprs):
            problems.append(f"recording rule {rec} has no promql_expr_test")
    return problems


def main():
    alerts, records = load_rules()
    groups, exprs = load_tests()
    problems = check(alerts, records, groups, exprs)
    for p in problems:
        print("coverage:", p, file=sys.stderr)
    if problems:
        return 1
    print(f"coverage: {len(alerts)} alerts and {len(records)} recording rules are covered by promtool tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
