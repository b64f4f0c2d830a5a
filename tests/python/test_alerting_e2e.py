"""End to end: exporter -> real Prometheus (shipped rules) -> real Alertmanager -> webhook.

Two exporters run at once on loopback: `cluster --bundle bundles/demo` (both incidents) and
`cluster --bundle tests/bundles/healthy`. One Prometheus (Debian `prometheus`) scrapes both every
second as job "eks-ipam-exporter" and evaluates the shipped rules with every `for:` shortened to
FOR (tools/gen_deploy.py --fast-rules). One Alertmanager (Debian `prometheus-alertmanager`) sends to
a webhook receiver in this test. Asserts that the critical alerts of both incidents arrive with the
right labels and annotations, and that nothing arrives for the healthy exporter.

Bounded: about 40 s; every process is stopped in `finally`. Requires EKS_IPAM_BIN (scripts/test.sh
sets it); with EKS_IPAM_REQUIRE_ALL=1 (also set there) missing parts fail instead of skipping.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_deploy  # noqa: E402
from test_dashboards import _free_port, _get, _wait  # noqa: E402

# Short enough to keep the test quick, long enough that ExporterDown's absent(up) cannot fire
# in the second before the first scrape.
FOR = "10s"

N1 = "ip-10-0-44-120.us-west-2.compute.internal"  # incident 1: overcommitted t4g.medium, 5 waiting
D1 = "ip-10-0-36-41.us-west-2.compute.internal"  # incident 2: stalled at MINIMUM_IP_TARGET=25, 6 waiting


def _need(what, path):
    if path:
        return path
    msg = f"alerting e2e: {what} not available"
    if os.environ.get("EKS_IPAM_REQUIRE_ALL") == "1":
        pytest.fail(msg + " (scripts/test.sh installs it)")
    pytest.skip(msg)


class Webhook(BaseHTTPRequestHandler):
    received = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with Webhook.lock:
            Webhook.received.extend(body.get("alerts", []))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _firing():
    with Webhook.lock:
        return [a for a in Webhook.received if a.get("status") == "firing"]


@pytest.fixture(scope="module")
def stack():
    binary = _need("EKS_IPAM_BIN", os.environ.get("EKS_IPAM_BIN"))
    prometheus = _need("prometheus", shutil.which("prometheus"))
    alertmanager = _need("alertmanager", shutil.which("prometheus-alertmanager") or shutil.which("alertmanager"))
    work = tempfile.mkdtemp(prefix="eks-ipam-e2e-")
    procs = []
    hook = HTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    Webhook.received = []

    def spawn(name, argv):
        log = open(os.path.join(work, f"{name}.log"), "w")
        procs.append(subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))

    try:
        ports = {name: _free_port() for name in ("demo", "healthy", "prom", "am")}
        spawn("demo", [binary, "cluster", "--bundle", "bundles/demo", "--listen", f"127.0.0.1:{ports['demo']}"])
        spawn("healthy", [binary, "cluster", "--bundle", "tests/bundles/healthy", "--listen",
                          f"127.0.0.1:{ports['healthy']}"])
        for name in ("demo", "healthy"):
            _wait(f"{name} exporter", lambda n=name: "eks_ipam_build_info" in _get(f"http://127.0.0.1:{ports[n]}/metrics"))

        am_config = {
            "route": {"receiver": "hook", "group_by": ["alertname", "instance", "node", "subnet_id"],
                      "group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "hook", "webhook_configs": [
                {"url": f"http://127.0.0.1:{hook.server_address[1]}/", "send_resolved": False}]}],
        }
        with open(os.path.join(work, "alertmanager.yml"), "w") as f:
            yaml.safe_dump(am_config, f)
        spawn("alertmanager", [alertmanager, f"--config.file={work}/alertmanager.yml",
                               f"--storage.path={work}/am", f"--web.listen-address=127.0.0.1:{ports['am']}",
                               "--cluster.listen-address="])
        _wait("alertmanager ready", lambda: _get(f"http://127.0.0.1:{ports['am']}/-/ready"))

        rules = os.path.join(work, "rules.yaml")
        gen_deploy.main(["--fast-rules", rules, "--for", FOR])
        prom_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [rules],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['am']}"]}]}]},
            "scrape_configs": [{"job_name": "eks-ipam-exporter", "static_configs": [
                {"targets": [f"127.0.0.1:{ports['demo']}"], "labels": {"bundle": "demo"}},
                {"targets": [f"127.0.0.1:{ports['healthy']}"], "labels": {"bundle": "healthy"}}]}],
        }
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            yaml.safe_dump(prom_config, f)
        spawn("prometheus", [prometheus, f"--config.file={work}/prometheus.yml", f"--storage.tsdb.path={work}/data",
                             f"--web.listen-address=127.0.0.1:{ports['prom']}"])
        yield work
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        hook.shutdown()
        assert all(p.poll() is not None for p in procs), "a process survived the test"
        shutil.rmtree(work, ignore_errors=True)


def _find(alerts, name, **labels):
    return [a for a in alerts if a["labels"].get("alertname") == name
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def test_incident_alerts_reach_the_webhook_and_healthy_sends_none(stack):
    wanted = [
        ("EksIpamNodePodsWaitingForIp", N1),
        ("EksIpamNodePodsWaitingForIp", D1),
        ("EksIpamIpamdAllocationStalled", D1),
    ]
    alerts = _wait("critical alerts of both incidents at the webhook",
                   lambda: (lambda a: a if all(_find(a, n, node=node, bundle="demo") for n, node in wanted) else None)(
                       _firing()),
                   timeout=60)
    for name, node in wanted:
        a = _find(alerts, name, node=node, bundle="demo")[0]
        assert a["labels"]["severity"] == "critical", a
        assert a["labels"]["job"] == "eks-ipam-exporter", a
        assert node in a["annotations"]["description"], a
        assert a["annotations"]["runbook_url"].endswith("#" + name.lower()), a
        assert a["annotations"]["summary"], a
    stalled = _find(alerts, "EksIpamIpamdAllocationStalled", node=D1)[0]
    assert "MINIMUM_IP_TARGET=25" in stalled["annotations"]["description"], stalled
    # No stall alert for the overcommitted node: it is at its ENI limit, not stalled.
    assert not _find(alerts, "EksIpamIpamdAllocationStalled", node=N1)

    # Warnings of the demo arrive too; give the healthy exporter the same time, then check it sent nothing.
    _wait("warning alerts", lambda: _find(_firing(), "EksIpamPodCapacityOvercommitted", node=N1, bundle="demo")
          and _find(_firing(), "EksIpamKarpenterReservedEnisMissing", bundle="demo")
          and _find(_firing(), "EksIpamMinimumIpTargetWithoutWarmIpTarget", bundle="demo"), timeout=30)
    time.sleep(5)
    healthy = [a["labels"] for a in _firing() if a["labels"].get("bundle") == "healthy"]
    assert not healthy, f"the healthy bundle paged: {healthy}"
    assert not _find(_firing(), "EksIpamExporterDown"), "exporter-down fired although both targets are up"
