"""The `/` status page in a real browser (Debian `chromium`, headless).

Starts `$EKS_IPAM_BIN demo`, loads `/` in headless Chromium, and checks the DOM Chromium built
(not just the bytes sent): both incidents' findings are there, critical before warning, and the
overcommitted node with pods waiting leads the node table. Takes screenshots at 1280 px and
390 px (a phone) into test-output/page/. A second exporter serves a bundle whose node name
carries markup, and the test checks the browser made no element out of it.

Skips unless EKS_IPAM_BIN is set and chromium is installed; with EKS_IPAM_REQUIRE_ALL=1 (set by
scripts/test.sh, which installs chromium) a missing part fails instead.
"""
import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_dashboards import _free_port, _get, _wait  # noqa: E402

OUT = os.path.join(ROOT, "test-output", "page")
N1 = "ip-10-0-44-120.us-west-2.compute.internal"


def _need(what, value):
    if value:
        return value
    msg = f"page test: {what} not available"
    if os.environ.get("EKS_IPAM_REQUIRE_ALL") == "1":
        pytest.fail(msg + " (scripts/test.sh installs it)")
    pytest.skip(msg)


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser(args, url, profile):
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args, url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


class _Dom(html.parser.HTMLParser):
    """Collects what the DOM dump holds: elements with data-* attributes, in order."""

    def __init__(self):
        super().__init__()
        self.findings, self.rows, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section" and "data-code" in a:
            self.findings.append((a["data-code"], a.get("data-severity"), a.get("data-node")))
        if tag == "tr" and "data-node" in a:
            self.rows.append(a["data-node"])


def _serve(binary, args):
    port = _free_port()
    log = tempfile.TemporaryFile()
    p = subprocess.Popen([binary, *args, "--listen", f"127.0.0.1:{port}"], cwd=ROOT, stdout=log, stderr=log)
    _wait("exporter ready", lambda: _get(f"http://127.0.0.1:{port}/readyz"))
    return p, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def browser_env():
    binary = _need("EKS_IPAM_BIN", os.environ.get("EKS_IPAM_BIN"))
    _need("chromium", _chromium())
    profile = tempfile.mkdtemp(prefix="eks-ipam-chromium-")
    os.makedirs(OUT, exist_ok=True)
    yield binary, profile
    shutil.rmtree(profile, ignore_errors=True)


def test_demo_page_in_chromium(browser_env):
    binary, profile = browser_env
    p, url = _serve(binary, ["demo"])
    try:
        dom = _Dom()
        dom.feed(_browser(["--dump-dom", "--virtual-time-budget=2000"], url, profile))
        codes = [f[0] for f in dom.findings]
        for code in ("IpamdAllocationStalled", "MinimumIpTargetWithoutWarmIpTarget", "PodCapacityExceedsIpCapacity",
                     "KarpenterReservedEnisMissing", "EniLimitReached"):
            assert code in codes, f"{code} missing from the rendered page: {codes}"
        sev = [f[1] for f in dom.findings]
        assert sev == sorted(sev, key=["critical", "warning", "info"].index), sev
        assert dom.rows[0] == N1, f"the overcommitted node with waiting pods must lead: {dom.rows[:3]}"
        assert "script" not in dom.tags, "the page must need no script"
        for width, name in ((1280, "demo-1280.png"), (390, "demo-390.png")):
            path = os.path.join(OUT, name)
            if os.path.exists(path):
                os.remove(path)
            _browser([f"--screenshot={path}", f"--window-size={width},2400", "--hide-scrollbars"], url, profile)
            assert os.path.getsize(path) > 10_000, f"{name} looks empty"
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_markup_in_a_node_name_stays_text_in_the_browser(browser_env, tmp_path):
    binary, profile = browser_env
    src = os.path.join(ROOT, "tests", "bundles", "karpenter-overcommit")
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    evil = 'evil"<script>alert(1)<img src=x id=pwned onerror=alert(1)>'
    for dirpath, _, files in os.walk(dst):
        for f in files:
            path = os.path.join(dirpath, f)
            text = open(path, encoding="utf-8").read()
            rep = json.dumps(evil)[1:-1] if f.endswith(".json") else evil
            open(path, "w", encoding="utf-8").write(text.replace(N1, rep))
    os.rename(dst / "ipamd" / N1, dst / "ipamd" / evil)
    p, url = _serve(binary, ["cluster", "--bundle", str(dst)])
    try:
        page = _browser(["--dump-dom", "--virtual-time-budget=2000"], url, profile)
        dom = _Dom()
        dom.feed(page)
        assert "img" not in dom.tags and "script" not in dom.tags, "a node name became markup"
        assert evil in dom.rows, dom.rows[:3]
    finally:
        p.terminate()
        p.wait(timeout=10)
