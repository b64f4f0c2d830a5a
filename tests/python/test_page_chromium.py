"""The `/` status page in a real browser (Debian `chromium`, headless).

Starts `$EKS_IPAM_BIN demo`, loads `/` in headless Chromium, and checks the DOM Chromium built
(not just the bytes sent): both incidents' findings are there, critical before warning, and the
overcommitted node with pods waiting leads the node table. Then, over the DevTools protocol, it
loads the page at 1280 px and 390 px (a phone), checks layout and DOM there (issue 16: no sideways
scrolling, cluster findings under a node filter, commands in <code>, runbook links, data age, no
reload that closes open evidence, evidence tables with units, severity as the alert pages it, every
badge explained) and saves full-page screenshots into test-output/page/. A second exporter serves a bundle whose node name
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
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_dashboards import _free_port, _get, _wait  # noqa: E402
import cdp  # noqa: E402

OUT = os.path.join(ROOT, "test-output", "page")
N1 = "ip-10-0-44-120.us-west-2.compute.internal"
S1 = "ip-10-0-36-41.us-west-2.compute.internal"


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


# Checks run in the browser, on the DOM it built. Each returns a list of problems.
_CHECKS_JS = r"""
(() => {
  const bad = [];
  const vw = window.innerWidth;
  if (document.documentElement.scrollWidth > vw + 1)
    bad.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${vw}`);
  for (const s of document.querySelectorAll('section.finding')) {
    const r = s.getBoundingClientRect();
    if (r.right > vw + 1) bad.push(`${s.dataset.code} overflows: ${r.right} > ${vw}`);
    const a = s.querySelector('a.runbook');
    if (!a || !a.href.includes('docs/runbook.md#')) bad.push(`${s.dataset.code}: no runbook link`);
    if (!s.querySelector('.pages') || !/Pages( as: |: no alert)/.test(s.querySelector('.pages').textContent))
      bad.push(`${s.dataset.code}: does not say how it pages`);
    const fix = s.querySelector('.fix');
    if (fix && fix.textContent.includes('`')) bad.push(`${s.dataset.code}: backtick in the fix`);
    for (const c of s.querySelectorAll('code.cmd'))
      if (getComputedStyle(c).userSelect !== 'all') bad.push(`${s.dataset.code}: command not select-all`);
    if (!s.querySelector('details table.ev tr th')) bad.push(`${s.dataset.code}: evidence is not a table`);
    if (/\d\.0(?![\d%])/.test(s.querySelector('details').textContent))
      bad.push(`${s.dataset.code}: raw float in evidence: ${s.querySelector('details').textContent}`);
  }
  for (const p of document.querySelectorAll('.pill'))
    if (!p.title && !p.closest('#legend')) bad.push(`badge without explanation: ${p.textContent}`);
  if (document.querySelector('meta[http-equiv=refresh]')) bad.push('the page reloads by itself');
  const age = document.getElementById('data-age');
  if (!age || !/ ago$/.test(age.textContent)) bad.push('no data age');
  const legend = document.getElementById('legend');
  if (!legend) bad.push('no legend');
  else {
    legend.open = true;
    for (const p of legend.querySelectorAll('.pill'))
      if (p.getBoundingClientRect().width < 3 * p.textContent.length) bad.push(`legend badge squashed: ${p.textContent}`);
    legend.open = false;
  }
  return bad;
})()
"""


def test_page_layout_and_dom_at_1280_and_390(browser_env):
    binary, profile = browser_env
    p, url = _serve(binary, ["demo"])
    b = cdp.Chromium(_chromium(), profile + "-cdp")
    try:
        for width in (1280, 390):
            page = b.page(width)
            page.goto(url)
            assert page.js("window.innerWidth") == width
            problems = page.js(_CHECKS_JS)
            assert problems == [], f"{width} px: {problems}"
            # An opened evidence panel stays open: nothing reloads the page.
            page.js("document.querySelector('section.finding details').open = true")
            time.sleep(1.5)
            assert page.js("document.querySelector('section.finding details').open") is True
            # Severity as paged: the setting is a warning, like its alert.
            sev = page.js("document.querySelector('section[data-code=MinimumIpTargetWithoutWarmIpTarget]').dataset.severity")
            assert sev == "warning"
            assert "EksIpamMinimumIpTargetWithoutWarmIpTarget (warning)" in page.js(
                "document.querySelector('section[data-code=MinimumIpTargetWithoutWarmIpTarget] .pages').textContent")
            # One silence: the stalled node's row says what its finding says.
            row = page.js(f"document.querySelector('tr[data-node=\"{S1}\"] td.silence').textContent")
            summary = page.js("document.querySelector('section[data-code=IpamdAllocationStalled] p').textContent")
            assert row == "2h30m" and "for 2h30m" in summary, (row, summary)
            shot = os.path.join(OUT, f"demo-{width}.png")
            if os.path.exists(shot):
                os.remove(shot)
            page.screenshot(shot)
            assert os.path.getsize(shot) > 10_000, f"{shot} looks empty"
        # A node filter keeps the cluster-wide cause (what `diagnose --node` keeps).
        page = b.page(1280)
        page.goto(url + "?node=" + N1)
        codes = page.js("[...document.querySelectorAll('section.finding')].map(s => s.dataset.code)")
        for code in ("KarpenterReservedEnisMissing", "MinimumIpTargetWithoutWarmIpTarget", "EniLimitReached"):
            assert code in codes, codes
        assert "IpamdAllocationStalled" not in codes, codes
        page.screenshot(os.path.join(OUT, "demo-node-filter-1280.png"))
    finally:
        b.close()
        p.terminate()
        p.wait(timeout=10)
