"""Checks for the fake servers and the world builder in tests/fakes/ (used by the Rust live-collector tests).

Each fake runs as a subprocess on a free 127.0.0.1 port and is always stopped (SIGTERM, exit code 0
checked). Clients are plain urllib / raw sockets / boto3, so the fakes are checked against the wire
protocol, not against their own code.

Run: python3 -m pytest -q tests/python/test_fakes.py
"""
from __future__ import annotations

import datetime as dt
import glob
import gzip
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKES = os.path.join(REPO, "tests", "fakes")
KO = os.path.join(REPO, "tests", "bundles", "karpenter-overcommit")
STALL = os.path.join(REPO, "tests", "bundles", "min-ip-target-stall")
HEALTHY = os.path.join(REPO, "tests", "bundles", "healthy")
DEMO = os.path.join(REPO, "bundles", "demo")
with open(os.path.join(DEMO, "kubernetes", "nodes.json")) as _f:
    DEMO_NODES = len(json.load(_f)["items"])
N1 = "ip-10-0-44-120.us-west-2.compute.internal"
S1 = "ip-10-0-36-41.us-west-2.compute.internal"
H1 = "ip-10-0-20-14.us-west-2.compute.internal"
REQUIRE_ALL = os.environ.get("EKS_IPAM_REQUIRE_ALL") == "1"

try:
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError:  # pragma: no cover
    boto3 = None


def need_boto():
    if boto3 is None:
        if REQUIRE_ALL:
            pytest.fail("boto3 missing (pip install -r tests/requirements.txt)")
        pytest.skip("boto3 missing")


# ---------------------------------------------------------------------------------------------
# process helpers
# ---------------------------------------------------------------------------------------------

def kube_apiserver_bin() -> str:
    """The one fake apiserver (examples/kube_apiserver, Rust), built next to EKS_IPAM_BIN."""
    exporter = os.environ.get("EKS_IPAM_BIN") or os.path.join(REPO, "target", "debug", "eks-ipam-exporter")
    path = os.path.join(os.path.dirname(exporter), "examples", "kube_apiserver")
    if not os.access(path, os.X_OK):
        msg = f"{path} missing (cargo build --examples)"
        if REQUIRE_ALL:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


class Fake:
    def __init__(self, script: str, args: list[str], listeners: int = 1):
        # "kube_apiserver" is the Rust fake; the other fakes are Python scripts in tests/fakes.
        cmd = [kube_apiserver_bin()] if script == "kube_apiserver" else [sys.executable, os.path.join(FAKES, script)]
        self.proc = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addrs: dict[str, str] = {}
        deadline = time.monotonic() + 15
        buf = b""
        while len(self.addrs) < listeners:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
                self.stop()
                raise RuntimeError(f"{script} did not start: {err}")
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 4096)
                buf += ch
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    m = re.fullmatch(r"LISTENING (\S+) (127\.0\.0\.1:\d+)", line.decode().strip())
                    assert m, f"unexpected stdout line {line!r}"
                    self.addrs[m.group(1)] = m.group(2)
        self.base = "http://" + next(iter(self.addrs.values()))

    def url(self, name: str | None = None) -> str:
        return "http://" + (self.addrs[name] if name else next(iter(self.addrs.values())))

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


def http(method: str, url: str, body: bytes | dict | None = None, headers: dict | None = None,
         timeout: float = 10) -> tuple[int, dict, bytes]:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_json(url: str, **kw) -> tuple[int, dict]:
    code, _h, body = http("GET", url, **kw)
    return code, json.loads(body)


class RawWatch:
    """Minimal HTTP/1.1 chunked reader on a raw socket: yields watch events, remembers how it ended."""

    def __init__(self, base: str, path: str, headers: dict | None = None):
        host, port = base.replace("http://", "").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        hdr = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n{hdr}\r\n".encode())
        self.buf = b""
        self.data = b""
        self.clean_end = False
        self.eof = False
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        assert b"transfer-encoding: chunked" in head.lower(), head

    def _fill(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            ch = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            ch = b""
        if not ch:
            self.eof = True
            return False
        self.buf += ch
        return True

    def _until(self, sep: bytes, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while sep not in self.buf:
            if self.eof or time.monotonic() > deadline:
                raise EOFError("stream ended")
            self._fill(0.2)
        out, self.buf = self.buf.split(sep, 1)
        return out

    def events(self, timeout: float = 5.0, until=None) -> list[dict]:
        """Read events until `until(ev)` is true, the stream ends, or timeout."""
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.clean_end:
            while b"\n" in self.data:
                line, self.data = self.data.split(b"\n", 1)
                if line.strip():
                    ev = json.loads(line)
                    out.append(ev)
                    if until and until(ev):
                        return out
            try:
                size_line = self._until(b"\r\n", timeout=max(0.01, deadline - time.monotonic()))
            except EOFError:
                break
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                self._until(b"\r\n", timeout=1)
                self.clean_end = True
                break
            while len(self.buf) < size + 2:
                if not self._fill(max(0.01, deadline - time.monotonic())) and (self.eof or time.monotonic() > deadline):
                    raise EOFError("truncated chunk")
            self.data += self.buf[:size]
            self.buf = self.buf[size + 2:]
        while b"\n" in self.data:
            line, self.data = self.data.split(b"\n", 1)
            if line.strip():
                out.append(json.loads(line))
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# Kubernetes apiserver fake
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kube():
    f = Fake("kube_apiserver", ["--bundle", DEMO, "--port", "0", "--bookmark-interval", "0.5"])
    yield f
    assert f.stop() == 0


def all_pages(base: str, path: str, **params) -> list[dict]:
    pages = []
    cont = None
    for _ in range(1000):
        q = dict(params)
        if cont:
            q["continue"] = cont
        code, page = get_json(f"{base}{path}?{urllib.parse.urlencode(q)}")
        assert code == 200, page
        pages.append(page)
        cont = page["metadata"].get("continue")
        if not cont:
            return pages
    raise AssertionError("paging did not end")


def test_kube_discovery_and_version(kube):
    code, v = get_json(kube.base + "/version")
    assert code == 200 and v["major"] == "1" and v["gitVersion"].startswith("v1.")
    code, apis = get_json(kube.base + "/apis")
    names = {g["name"] for g in apis["groups"]}
    assert {"apps", "karpenter.sh", "karpenter.k8s.aws", "crd.k8s.amazonaws.com"} <= names
    code, rl = get_json(kube.base + "/apis/karpenter.sh/v1")
    assert {r["name"] for r in rl["resources"]} == {"nodeclaims", "nodepools"}
    code, core = get_json(kube.base + "/api/v1")
    assert {"nodes", "pods", "events"} <= {r["name"] for r in core["resources"]}


def test_kube_list_paging_consistent(kube):
    whole = json.load(open(os.path.join(DEMO, "kubernetes", "pods.json")))["items"]
    pages = all_pages(kube.base, "/api/v1/pods", limit=7)
    assert len(pages) == (len(whole) + 6) // 7
    items = [i for p in pages for i in p["items"]]
    keys = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items]
    assert keys == sorted(keys) and len(set(keys)) == len(whole)
    assert {p["metadata"]["resourceVersion"] for p in pages} == {pages[0]["metadata"]["resourceVersion"]}
    assert pages[0]["kind"] == "PodList" and pages[0]["apiVersion"] == "v1"
    assert pages[0]["metadata"]["remainingItemCount"] == len(whole) - 7
    assert "continue" not in pages[-1]["metadata"]
    assert all("kind" not in i and "apiVersion" not in i for i in items)  # built-in list items
    for i in items:
        assert i["metadata"]["resourceVersion"]
    code, nc = get_json(kube.base + "/apis/karpenter.sh/v1/nodeclaims")
    assert nc["kind"] == "NodeClaimList" and nc["items"][0]["kind"] == "NodeClaim"  # CRs keep kind
    # resourceVersion=0: served "from cache", limit ignored
    code, p0 = get_json(kube.base + "/api/v1/pods?limit=5&resourceVersion=0")
    assert len(p0["items"]) == len(whole) and "continue" not in p0["metadata"]


def test_kube_selectors(kube):
    code, p = get_json(kube.base + "/api/v1/pods?" + urllib.parse.urlencode({"fieldSelector": f"spec.nodeName={N1}"}))
    assert p["items"] and all(i["spec"]["nodeName"] == N1 for i in p["items"])
    code, p2 = get_json(kube.base + "/api/v1/pods?" + urllib.parse.urlencode(
        {"fieldSelector": f"spec.nodeName={N1},status.phase=Pending"}))
    assert 0 < len(p2["items"]) < len(p["items"]) and all(i["status"]["phase"] == "Pending" for i in p2["items"])
    code, ds = get_json(kube.base + "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Daws-node")
    assert len(ds["items"]) == 5 and all(i["metadata"]["labels"]["k8s-app"] == "aws-node" for i in ds["items"])
    code, notds = get_json(kube.base + "/api/v1/pods?labelSelector=k8s-app!%3Daws-node")
    code, every = get_json(kube.base + "/api/v1/pods")
    assert len(notds["items"]) + 5 == len(every["items"])
    code, inn = get_json(kube.base + "/api/v1/pods?labelSelector=" + urllib.parse.quote("k8s-app in (aws-node,kube-proxy)"))
    assert len(inn["items"]) == 10
    code, ev = get_json(kube.base + "/api/v1/events?" + urllib.parse.urlencode(
        {"fieldSelector": "reason=FailedCreatePodSandBox,involvedObject.kind=Pod,type=Warning"}))
    assert len(ev["items"]) == 11 and all(e["reason"] == "FailedCreatePodSandBox" for e in ev["items"])
    code, st = get_json(kube.base + "/api/v1/pods?fieldSelector=spec.foo%3Dbar")
    assert code == 400 and st["kind"] == "Status" and st["reason"] == "BadRequest"
    assert st["message"] == "field label not supported: spec.foo"
    code, st = get_json(kube.base + "/api/v1/nodes?fieldSelector=spec.nodeName%3Dx")
    assert code == 400
    # paging with a selector: the union of pages equals the unpaged answer (last page may be empty)
    pages = all_pages(kube.base, "/api/v1/pods", limit=4, fieldSelector=f"spec.nodeName={N1}")
    assert sorted(i["metadata"]["name"] for pg in pages for i in pg["items"]) == \
        sorted(i["metadata"]["name"] for i in p["items"])
    assert all("remainingItemCount" not in pg["metadata"] for pg in pages)


def test_kube_get_and_not_found(kube):
    code, n = get_json(kube.base + f"/api/v1/nodes/{N1}")
    assert code == 200 and n["kind"] == "Node" and n["apiVersion"] == "v1"
    code, st = get_json(kube.base + "/api/v1/nodes/nope")
    assert code == 404 and st["reason"] == "NotFound" and st["details"]["name"] == "nope"


def test_kube_watch_events_and_bookmarks(kube):
    code, lst = get_json(kube.base + "/api/v1/pods?limit=500")
    rv = lst["metadata"]["resourceVersion"]
    w = RawWatch(kube.base, f"/api/v1/pods?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=20")
    wsel = RawWatch(kube.base, f"/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"
                               "&labelSelector=app%3Dwatched&timeoutSeconds=20")
    try:
        assert w.status == 200
        pod = {"metadata": {"name": "watch-me", "namespace": "default", "labels": {"app": "watched"}},
               "spec": {"nodeName": N1, "containers": [{"name": "c", "image": "x"}]}, "status": {"phase": "Pending"}}
        code, _h, r1 = http("POST", kube.base + "/_control/apply", {"resource": "pods", "object": pod})
        assert code == 200 and json.loads(r1)["type"] == "ADDED"
        pod["status"]["phase"] = "Running"
        assert json.loads(http("POST", kube.base + "/_control/apply", {"resource": "pods", "object": pod})[2])["type"] \
            == "MODIFIED"
        pod["metadata"]["labels"] = {"app": "other"}
        http("POST", kube.base + "/_control/apply", {"resource": "pods", "object": pod})
        http("POST", kube.base + "/_control/delete", {"resource": "pods", "namespace": "default", "name": "watch-me"})
        evs = w.events(timeout=8, until=lambda e: e["type"] == "DELETED")
        kinds = [e["type"] for e in evs if e["type"] != "BOOKMARK"]
        assert kinds == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"], kinds
        objs = [e["object"] for e in evs if e["type"] != "BOOKMARK"]
        assert all(o["kind"] == "Pod" and o["apiVersion"] == "v1" for o in objs)
        rvs = [int(o["metadata"]["resourceVersion"]) for o in objs]
        assert rvs == sorted(rvs) and rvs[0] > int(rv)
        # bookmarks arrive on their own with allowWatchBookmarks=true
        more = w.events(timeout=3, until=lambda e: e["type"] == "BOOKMARK")
        bm = [e for e in evs + more if e["type"] == "BOOKMARK"]
        assert bm and bm[-1]["object"]["kind"] == "Pod" and int(bm[-1]["object"]["metadata"]["resourceVersion"]) >= rvs[-1]
        # selector transitions: stops matching -> DELETED, no event after that
        sel = [e["type"] for e in wsel.events(timeout=3, until=lambda e: e["type"] == "DELETED")]
        assert sel == ["ADDED", "MODIFIED", "DELETED"], sel
    finally:
        w.close()
        wsel.close()


def test_kube_watch_initial_state_and_timeout(kube):
    w = RawWatch(kube.base, "/api/v1/nodes?watch=true&timeoutSeconds=1")
    evs = w.events(timeout=5)
    assert w.clean_end, "timeoutSeconds must end the stream with the terminating chunk"
    assert [e["type"] for e in evs] == ["ADDED"] * DEMO_NODES
    w.close()
    w = RawWatch(kube.base, "/api/v1/nodes?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                            "&resourceVersion=0&allowWatchBookmarks=true&timeoutSeconds=1")
    evs = w.events(timeout=5, until=lambda e: e["type"] == "BOOKMARK")
    assert [e["type"] for e in evs] == ["ADDED"] * DEMO_NODES + ["BOOKMARK"]
    assert evs[-1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    w.close()


def test_kube_expire_gives_410(kube):
    code, lst = get_json(kube.base + "/api/v1/nodes")
    old = lst["metadata"]["resourceVersion"]
    w = RawWatch(kube.base, f"/api/v1/nodes?watch=true&resourceVersion={old}&timeoutSeconds=30")
    time.sleep(0.2)
    code, _h, b = http("POST", kube.base + "/_control/expire")
    assert code == 200
    evs = w.events(timeout=5)
    assert w.clean_end
    assert evs[-1]["type"] == "ERROR"
    st = evs[-1]["object"]
    assert st == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": st["message"], "reason": "Expired", "code": 410}
    assert re.fullmatch(r"too old resource version: \d+ \(\d+\)", st["message"])
    w.close()
    # later watches from the old RV: 410 too (HTTP 200 + ERROR event, like the real server)
    http("POST", kube.base + "/_control/apply", {"resource": "nodes", "object": {"metadata": {"name": "bump"}}})
    w2 = RawWatch(kube.base, f"/api/v1/nodes?watch=true&resourceVersion={int(old) - 1}")
    evs = w2.events(timeout=5)
    assert w2.status == 200 and evs[0]["type"] == "ERROR" and evs[0]["object"]["code"] == 410
    w2.close()
    code, st = get_json(kube.base + f"/api/v1/nodes?resourceVersion={int(old) - 1}&resourceVersionMatch=Exact")
    assert code == 410 and st["reason"] == "Expired"
    code, st = get_json(kube.base + f"/api/v1/nodes?resourceVersion={int(old) - 1}&limit=2")  # legacy = Exact
    assert code == 410
    code, ok = get_json(kube.base + f"/api/v1/nodes?resourceVersion={int(old) - 1}&resourceVersionMatch=NotOlderThan")
    assert code == 200
    http("POST", kube.base + "/_control/delete", {"resource": "nodes", "name": "bump"})


def test_kube_disconnect_is_abrupt(kube):
    w = RawWatch(kube.base, "/apis/apps/v1/daemonsets?watch=true&resourceVersion=0&timeoutSeconds=30")
    w.events(timeout=1)
    code, _h, b = http("POST", kube.base + "/_control/disconnect")
    assert code == 200 and json.loads(b)["dropped"] >= 1
    w.events(timeout=3)
    assert w.eof and not w.clean_end
    w.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        code, stats = get_json(kube.base + "/_control/stats")
        if stats["openWatches"] == 0:
            break
        time.sleep(0.1)
    assert stats["openWatches"] == 0
    assert stats["requests"]["watch /apis/apps/v1/daemonsets"] >= 1


def test_kube_forbid(kube):
    code, _ = get_json(kube.base + "/apis/karpenter.k8s.aws/v1/ec2nodeclasses")
    assert code == 200
    http("POST", kube.base + "/_control/forbid", {"resource": "ec2nodeclasses"})
    code, st = get_json(kube.base + "/apis/karpenter.k8s.aws/v1/ec2nodeclasses?limit=500")
    assert code == 403 and st["reason"] == "Forbidden" and st["code"] == 403
    assert st["message"].startswith('ec2nodeclasses.karpenter.k8s.aws is forbidden: User "system:serviceaccount:')
    assert 'cannot list resource "ec2nodeclasses" in API group "karpenter.k8s.aws" at the cluster scope' in st["message"]
    code, st = get_json(kube.base + "/apis/karpenter.k8s.aws/v1/ec2nodeclasses?watch=true")
    assert code == 403 and "cannot watch" in st["message"]
    http("POST", kube.base + "/_control/unforbid", {"resource": "ec2nodeclasses"})
    assert get_json(kube.base + "/apis/karpenter.k8s.aws/v1/ec2nodeclasses")[0] == 200


def test_kube_absent_crd_and_token():
    f = Fake("kube_apiserver", ["--bundle", STALL, "--port", "0", "--token", "s3cret"])
    try:
        auth = {"Authorization": "Bearer s3cret"}
        code, st = get_json(f.base + "/api/v1/nodes")
        assert code == 401 and st["reason"] == "Unauthorized"
        code, st = get_json(f.base + "/api/v1/nodes", headers={"Authorization": "Bearer wrong"})
        assert code == 401
        assert get_json(f.base + "/api/v1/nodes", headers=auth)[0] == 200
        assert get_json(f.base + "/version")[0] == 200  # anonymous /version, as on EKS
        for path in ("/apis/karpenter.sh/v1/nodeclaims", "/apis/karpenter.sh/v1/nodeclaims?watch=true",
                     "/apis/karpenter.k8s.aws/v1/ec2nodeclasses", "/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs"):
            code, st = get_json(f.base + path, headers=auth)
            assert code == 404 and st["kind"] == "Status" and st["reason"] == "NotFound", (path, st)
        code, apis = get_json(f.base + "/apis", headers=auth)
        assert [g["name"] for g in apis["groups"]] == ["apps"]
        # installing the CRD at run time makes it appear
        http("POST", f.base + "/_control/apply", {"resource": "eniconfigs", "object": {
            "metadata": {"name": "us-west-2a"}, "spec": {"subnet": "subnet-1"}}})
        code, lst = get_json(f.base + "/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs", headers=auth)
        assert code == 200 and lst["items"][0]["kind"] == "ENIConfig"
    finally:
        assert f.stop() == 0


def test_kube_continue_snapshot_and_expired_continue():
    f = Fake("kube_apiserver", ["--bundle", HEALTHY, "--port", "0"])
    try:
        code, p1 = get_json(f.base + "/api/v1/pods?limit=3")
        before = {i["metadata"]["name"] for i in get_json(f.base + "/api/v1/pods")[1]["items"]}
        # a change between pages must not show up in later pages (consistent snapshot at the first RV)
        http("POST", f.base + "/_control/apply", {"resource": "pods", "object": {
            "metadata": {"name": "zzz-late", "namespace": "zzz"}, "spec": {"containers": []}}})
        names = {i["metadata"]["name"] for i in p1["items"]}
        cont = p1["metadata"]["continue"]
        while cont:
            code, pg = get_json(f.base + "/api/v1/pods?limit=3&continue=" + urllib.parse.quote(cont))
            assert code == 200 and pg["metadata"]["resourceVersion"] == p1["metadata"]["resourceVersion"]
            names |= {i["metadata"]["name"] for i in pg["items"]}
            cont = pg["metadata"].get("continue")
        assert names == before and "zzz-late" not in names
        # after compaction the continue token is too old: 410 + an "inconsistent" continue token
        code, p1 = get_json(f.base + "/api/v1/pods?limit=3")
        http("POST", f.base + "/_control/delete", {"resource": "pods", "namespace": "zzz", "name": "zzz-late"})
        http("POST", f.base + "/_control/expire")  # compacts every revision before the delete
        code, st = get_json(f.base + "/api/v1/pods?limit=3&continue=" + urllib.parse.quote(p1["metadata"]["continue"]))
        assert code == 410 and st["reason"] == "Expired" and st["metadata"]["continue"]
        code, pg = get_json(f.base + "/api/v1/pods?limit=3&continue=" + urllib.parse.quote(st["metadata"]["continue"]))
        assert code == 200 and pg["items"]
        code, st = get_json(f.base + "/api/v1/pods?limit=3&continue=garbage")
        assert code == 400
    finally:
        assert f.stop() == 0


def test_kube_sigterm_with_open_watch():
    f = Fake("kube_apiserver", ["--bundle", HEALTHY, "--port", "0"])
    w = RawWatch(f.base, "/api/v1/pods?watch=true&timeoutSeconds=60")
    w.events(timeout=0.5)
    t0 = time.monotonic()
    assert f.stop() == 0
    assert time.monotonic() - t0 < 5
    w.close()


# ---------------------------------------------------------------------------------------------
# CloudTrail fake
# ---------------------------------------------------------------------------------------------

def ct_client(fake: Fake, retries: int = 1):
    return boto3.client("cloudtrail", region_name="us-west-2", endpoint_url=fake.base,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=botocore.config.Config(retries={"total_max_attempts": retries, "mode": "standard"}))


def bundle_events(bundle: str, name: str) -> list[dict]:
    return json.load(open(os.path.join(bundle, "cloudtrail", f"{name}.json")))["Events"]


def ts(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def test_cloudtrail_pagination_and_wire_format():
    need_boto()
    f = Fake("cloudtrail.py", ["--bundle", DEMO, "--port", "0", "--page-size", "3"])
    try:
        c = ct_client(f)
        want = bundle_events(DEMO, "CreateNetworkInterface")
        got, pages = [], 0
        for page in c.get_paginator("lookup_events").paginate(
                LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateNetworkInterface"}]):
            pages += 1
            assert len(page["Events"]) <= 3
            got += page["Events"]
        assert pages == (len(want) + 2) // 3
        assert sorted(e["EventId"] for e in got) == sorted(e["EventId"] for e in want)
        times = [e["EventTime"].timestamp() for e in got]
        assert times == sorted(times, reverse=True)  # newest first
        assert isinstance(got[0]["CloudTrailEvent"], str) and json.loads(got[0]["CloudTrailEvent"])["eventName"]
        # raw wire: EventTime is a number (Java double style), CloudTrailEvent a string
        code, h, body = http("POST", f.base + "/", b'{"MaxResults":1}', {
            "X-Amz-Target": "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
            "Content-Type": "application/x-amz-json-1.1", "Authorization": "AWS4-HMAC-SHA256 Credential=x/y/us-west-2/cloudtrail/aws4_request"})
        assert code == 200 and h["Content-Type"] == "application/x-amz-json-1.1"
        assert re.search(rb'"EventTime":1\.\d+E9', body), body[:300]
        d = json.loads(body)
        assert isinstance(d["Events"][0]["EventTime"], float) and isinstance(d["Events"][0]["CloudTrailEvent"], str)
        assert "NextToken" in d
        # inclusive StartTime/EndTime
        e0 = want[0]
        t = ts(e0["EventTime"])
        r = c.lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": e0["Username"]}],
                            StartTime=dt.datetime.fromtimestamp(t, dt.timezone.utc),
                            EndTime=dt.datetime.fromtimestamp(t, dt.timezone.utc))
        assert e0["EventId"] in [e["EventId"] for e in r["Events"]]
        r = c.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName",
                                               "AttributeValue": e0["Resources"][0]["ResourceName"]}])
        assert r["Events"]
        # other operations
        code, _h, body = http("POST", f.base + "/", b"{}", {"X-Amz-Target": "CloudTrail_20131101.DescribeTrails",
                                                            "Authorization": "AWS4-HMAC-SHA256 x"})
        assert code == 400 and json.loads(body)["__type"] == "UnknownOperationException"
    finally:
        assert f.stop() == 0


def test_cloudtrail_errors():
    need_boto()
    f = Fake("cloudtrail.py", ["--bundle", DEMO, "--port", "0", "--page-size", "2"])
    try:
        c = ct_client(f)
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            c.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "A"},
                                              {"AttributeKey": "Username", "AttributeValue": "B"}])
        assert ei.value.response["Error"]["Code"] == "InvalidLookupAttributesException"
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            c.lookup_events(MaxResults=51)
        assert ei.value.response["Error"]["Code"] == "InvalidMaxResultsException"
        first = c.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AttachNetworkInterface"}])
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            c.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateNetworkInterface"}],
                            NextToken=first["NextToken"])
        assert ei.value.response["Error"]["Code"] == "InvalidNextTokenException"
        # throttling and 500s, switched on at run time
        http("POST", f.base + "/_control/config", {"throttle_every": 2})
        codes = []
        for _ in range(4):
            try:
                c.lookup_events(MaxResults=1)
                codes.append("ok")
            except botocore.exceptions.ClientError as e:
                codes.append(e.response["Error"]["Code"])
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert codes.count("ThrottlingException") == 2 and codes.count("ok") == 2
        http("POST", f.base + "/_control/config", {"throttle_every": 0, "fail_every": 1})
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            c.lookup_events(MaxResults=1)
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        http("POST", f.base + "/_control/config", {"fail_every": 0, "throttle_every": 2})
        retrying = ct_client(f, retries=4)  # the SDK retries ThrottlingException transparently
        assert retrying.lookup_events(MaxResults=1)["Events"]
        code, stats = get_json(f.base + "/_control/stats")
        assert stats["throttled"] >= 3 and stats["failed"] == 1
        assert stats["byEventName"]["AttachNetworkInterface"] == 1
        assert stats["maxRequestsPerSecond"] >= 2 and stats["requests"] >= 10
        assert stats["regions"] == {"us-west-2": stats["requests"]}
    finally:
        assert f.stop() == 0


def test_cloudtrail_late_delivery_and_append():
    need_boto()
    f = Fake("cloudtrail.py", ["--bundle", KO, "--port", "0", "--delay-seconds", "3"])
    try:
        c = ct_client(f)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        ev = {"EventId": "11111111-2222-3333-4444-555555555555", "EventName": "AssignPrivateIpAddresses",
              "ReadOnly": "false", "EventTime": now.isoformat(), "EventSource": "ec2.amazonaws.com",
              "Username": "i-0b2c3d4e5f6a78901",
              "Resources": [{"ResourceType": "AWS::EC2::NetworkInterface", "ResourceName": "eni-020102996d5e015fa"}],
              "CloudTrailEvent": json.dumps({"eventName": "AssignPrivateIpAddresses"})}
        assert http("POST", f.base + "/_control/append", ev)[0] == 200
        q = {"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": ev["EventId"]}]}
        assert c.lookup_events(**q)["Events"] == []  # not delivered yet
        time.sleep(3.5)
        got = c.lookup_events(**q)["Events"]
        assert [e["EventId"] for e in got] == [ev["EventId"]]
        # an OLD event that shows up late (visibleAfter): a poller must overlap its windows
        old = dict(ev, EventId="66666666-2222-3333-4444-555555555555",
                   EventTime=(now - dt.timedelta(minutes=10)).isoformat())
        http("POST", f.base + "/_control/append?visibleAfter=2", old)
        q2 = {"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": old["EventId"]}]}
        assert c.lookup_events(**q2)["Events"] == []
        time.sleep(2.5)
        assert len(c.lookup_events(**q2)["Events"]) == 1
    finally:
        assert f.stop() == 0


# ---------------------------------------------------------------------------------------------
# ipamd fake
# ---------------------------------------------------------------------------------------------

def ipamd(bundle: str, node: str, *extra: str) -> Fake:
    return Fake("ipamd.py", ["--bundle", bundle, "--node", node, "--introspection-port", "0",
                             "--metrics-port", "0", *extra], listeners=2)


def test_ipamd_wrapped_flat_and_commands():
    f = ipamd(STALL, S1)
    try:
        intro, met = f.url("ipamd-introspection"), f.url("ipamd-metrics")
        code, h, body = http("GET", intro + "/v1/enis")
        assert code == 200 and h["Content-Type"] == "text/plain; charset=utf-8"  # Go sniffs, no JSON type
        assert body == open(os.path.join(STALL, "ipamd", S1, "enis.json"), "rb").read()
        code, h, body = http("GET", intro + "/v1/pods")  # removed endpoint: 200 + AvailableCommands
        assert code == 200 and sorted(json.loads(body)["AvailableCommands"]) == sorted(
            ["/v1/enis", "/v1/eni-configs", "/v1/networkutils-env-settings", "/v1/ipamd-env-settings"])
        assert json.loads(http("GET", intro + "/v1/eni-configs")[2]) == "default"
        env = json.loads(http("GET", intro + "/v1/ipamd-env-settings")[2])
        assert env == {"AWS_MANAGE_ENIS_NON_SCHEDULABLE": False, "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": False,
                       "ENABLE_SUBNET_DISCOVERY": True, "WARM_ENI_TARGET": 1, "WARM_IP_TARGET": 0}
        code, h, body = http("GET", met + "/metrics")
        assert code == 200 and b"awscni_no_available_ip_addresses 142" in body
        code, h, body = http("GET", met + "/metrics", headers={"Accept-Encoding": "gzip"})
        assert h.get("Content-Encoding") == "gzip" and b"awscni_total_ip_addresses 25" in gzip.decompress(body)
        assert http("GET", met + "/other")[0] == 404
        # run-time pool change, flat shape
        new = json.loads(open(os.path.join(STALL, "ipamd", S1, "enis.json")).read())
        new["0"]["TotalIPs"] = 30
        assert http("POST", intro + "/_control/set", new)[0] == 200
        assert json.loads(http("GET", intro + "/v1/enis")[2])["0"]["TotalIPs"] == 30
        http("POST", intro + "/_control/mode", {"shape": "flat"})
        flat = json.loads(http("GET", intro + "/v1/enis")[2])
        assert flat["TotalIPs"] == 30 and "0" not in flat
        eni = next(iter(flat["ENIs"].values()))
        assert "SubnetID" not in eni and "RouteTableID" not in eni and "IsExcludedForPodIPs" not in eni
        addrs = [a for c in eni["AvailableIPv4Cidrs"].values() for a in c["IPAddresses"].values()]
        assert all(len(a["IPAMKey"]["containerID"]) == 64 for a in addrs if a["IPAMKey"]["networkName"])
        http("POST", intro + "/_control/mode", {"mode": "available-commands"})
        assert "AvailableCommands" in json.loads(http("GET", intro + "/v1/enis")[2])
    finally:
        assert f.stop() == 0


def test_ipamd_eni_config_and_missing_metrics():
    f = ipamd(KO, "ip-10-0-44-120")  # short name works
    try:
        intro, met = f.url("ipamd-introspection"), f.url("ipamd-metrics")
        assert json.loads(http("GET", intro + "/v1/eni-configs")[2]) == "us-west-2a"  # ENI_CONFIG_LABEL_DEF=zone
        code, h, body = http("GET", met + "/metrics")
        assert code == 404 and body == b"404 page not found\n"
    finally:
        assert f.stop() == 0


def test_ipamd_bad_modes():
    f = ipamd(HEALTHY, H1, "--mode", "hang", "--huge-rate", "64")
    try:
        intro = f.url("ipamd-introspection")
        t0 = time.monotonic()
        with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
            urllib.request.urlopen(intro + "/v1/enis", timeout=0.5).read()
        assert time.monotonic() - t0 < 2
        http("POST", intro + "/_control/mode", {"mode": "garbage"})
        code, _h, body = http("GET", intro + "/v1/enis")
        assert code == 200
        with pytest.raises(ValueError):
            json.loads(body)
        http("POST", intro + "/_control/mode", {"mode": "huge"})
        with urllib.request.urlopen(intro + "/v1/enis", timeout=5) as r:
            assert int(r.headers["Content-Length"]) == 1 << 30
            got = r.read(1 << 20)  # a bounded read: take 1 MiB and hang up
            assert len(got) == 1 << 20 and got.startswith(b'{"0":')
        code, stats = get_json(intro + "/_control/stats")
        assert stats["requests"]["/v1/enis"] >= 3
    finally:
        t0 = time.monotonic()
        assert f.stop() == 0
        assert time.monotonic() - t0 < 5


# ---------------------------------------------------------------------------------------------
# world builder against a real moto_server
# ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto():
    need_boto()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                    break
            except Exception:
                if time.monotonic() > deadline:
                    pytest.fail("moto_server did not start within 60 s")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def build_world(moto: str, scenario: str, out: str, *extra: str) -> dict:
    r = subprocess.run([sys.executable, os.path.join(FAKES, "world.py"), "--scenario", scenario, "--out", out,
                        "--moto-endpoint", moto, *extra], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert json.load(open(os.path.join(out, "world.json"))) == summary
    return summary


def all_text(root: str) -> dict[str, str]:
    out = {}
    for p in glob.glob(os.path.join(root, "**", "*"), recursive=True):
        if os.path.isfile(p):
            out[os.path.relpath(p, root)] = open(p, encoding="utf-8").read()
    return out


@pytest.fixture(scope="module")
def demo_world(moto, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("world") / "demo")
    return build_world(moto, DEMO, out, "--agent-base-port", "31000"), out


def test_world_ids_consistent_with_moto(moto, demo_world):
    summary, out = demo_world
    ec2 = boto3.client("ec2", region_name="us-west-2", endpoint_url=moto, aws_access_key_id="t",
                       aws_secret_access_key="t")
    nodes = json.load(open(os.path.join(out, "kubernetes", "nodes.json")))["items"]
    inst_by_node = {}
    for n in nodes:
        iid = n["spec"]["providerID"].rsplit("/", 1)[-1]
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        assert inst["InstanceType"] == n["metadata"]["labels"]["node.kubernetes.io/instance-type"]
        internal = next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
        assert inst["PrivateIpAddress"] == internal
        assert n["spec"]["providerID"] == f"aws:///{inst['Placement']['AvailabilityZone']}/{iid}"
        inst_by_node[n["metadata"]["name"]] = iid
        assert summary["nodes"][n["metadata"]["name"]]["instanceId"] == iid
    # every ENI of every ipamd file exists in moto, attached to that node's instance at DeviceNumber
    for path in glob.glob(os.path.join(out, "ipamd", "*", "enis.json")):
        node = os.path.basename(os.path.dirname(path))
        raw = open(path, "rb").read()
        assert not raw.endswith(b"\n")
        card = json.loads(raw)["0"]
        ids = list(card["ENIs"])
        assert ids == sorted(ids)  # Go map order survives the id rewrite
        live = {e["NetworkInterfaceId"]: e for e in
                ec2.describe_network_interfaces(NetworkInterfaceIds=ids)["NetworkInterfaces"]}
        assert set(live) == set(ids)
        for eid, eni in card["ENIs"].items():
            assert live[eid]["Attachment"]["InstanceId"] == inst_by_node[node]
            assert live[eid]["Attachment"]["DeviceIndex"] == eni["DeviceNumber"]
            assert live[eid]["SubnetId"] == eni["SubnetID"]
            live_ips = {p["PrivateIpAddress"] for p in live[eid]["PrivateIpAddresses"]}
            for cidr in eni["AvailableIPv4Cidrs"]:
                assert cidr.split("/")[0] in live_ips
    # subnets.json is what moto says, and equals the scenario's free counts (filler ENIs)
    subnets = json.load(open(os.path.join(out, "ec2", "subnets.json")))["Subnets"]
    live = {s["SubnetId"]: s["AvailableIpAddressCount"] for s in ec2.describe_subnets(
        SubnetIds=[s["SubnetId"] for s in subnets])["Subnets"]}
    assert {s["SubnetId"]: s["AvailableIpAddressCount"] for s in subnets} == live
    orig = {s["CidrBlock"]: s["AvailableIpAddressCount"] for s in
            json.load(open(os.path.join(DEMO, "ec2", "subnets.json")))["Subnets"]}
    assert {s["CidrBlock"]: s["AvailableIpAddressCount"] for s in subnets} == orig
    assert orig["100.64.32.0/19"] == 38
    # no old id of a world resource survives anywhere
    texts = all_text(out)
    old_ids = [o for k, m in summary["ids"].items() for o in m]
    # 7 nodes (5 with aws-node, a Windows and an Auto Mode one): 7 primary ENIs, 9 secondary ones
    assert len(summary["ids"]["eni"]) == 16 and len(summary["ids"]["instance"]) == DEMO_NODES == 7
    for rel, text in texts.items():
        if rel == "world.json":
            continue
        for o in old_ids:
            assert o not in text, (rel, o)
    ni = json.load(open(os.path.join(out, "ec2", "network-interfaces.json")))["NetworkInterfaces"]
    assert all(isinstance(e["Attachment"]["AttachTime"], str) for e in ni if e.get("Attachment"))
    # the unrelated staging instance stays unknown to moto
    assert "i-0e9d8c7b6a5f43210" in texts[os.path.join("cloudtrail", "AssignPrivateIpAddresses.json")]


def test_world_times_shifted(demo_world):
    summary, out = demo_world
    shift = summary["shiftSeconds"]
    now = time.time()
    assert abs(ts(json.load(open(os.path.join(out, "bundle.json")))["capturedAt"]) - now) < 120
    assert abs(ts("2026-08-25T12:30:21Z") + shift - ts(summary["capturedAt"])) < 1
    # an Auto Mode node is named after its instance id, which the world rewrites to moto's
    renamed = {v["instanceId"]: v["originalInstanceId"] for v in summary["nodes"].values()}
    old_nodes = {n["metadata"]["name"]: n for n in json.load(open(os.path.join(DEMO, "kubernetes", "nodes.json")))["items"]}
    for n in json.load(open(os.path.join(out, "kubernetes", "nodes.json")))["items"]:
        o = old_nodes[renamed.get(n["metadata"]["name"], n["metadata"]["name"])]
        assert ts(n["metadata"]["creationTimestamp"]) - ts(o["metadata"]["creationTimestamp"]) == shift
    src = open(os.path.join(DEMO, "ipamd", S1, "enis.json")).read()
    dst = open(os.path.join(out, "ipamd", S1, "enis.json")).read()
    assert src.count("0001-01-01T00:00:00Z") == dst.count("0001-01-01T00:00:00Z") > 0
    # Go nanosecond times keep their fraction, whole seconds move
    a = re.findall(r'"AssignedTime":"([^"]+)"', src)
    b = re.findall(r'"AssignedTime":"([^"]+)"', dst)
    assert len(a) == len(b) > 0
    frac = re.compile(r"\.(\d+)Z$")
    for x, y in zip(sorted(a), sorted(b)):
        assert frac.search(x).group(1) == frac.search(y).group(1)
        assert round(ts(y) - ts(x)) == shift
    ct_old = bundle_events(DEMO, "CreateNetworkInterface")
    ct_new = json.load(open(os.path.join(out, "cloudtrail", "CreateNetworkInterface.json")))["Events"]
    for x, y in zip(ct_old, ct_new):
        assert ts(y["EventTime"]) - ts(x["EventTime"]) == shift
        inner_x, inner_y = json.loads(x["CloudTrailEvent"]), json.loads(y["CloudTrailEvent"])
        assert ts(inner_y["eventTime"]) - ts(inner_x["eventTime"]) == shift
    m_old = re.search(r"^process_start_time_seconds (\S+)$", open(os.path.join(DEMO, "ipamd", S1, "metrics.txt")).read(), re.M)
    m_new = re.search(r"^process_start_time_seconds (\S+)$", open(os.path.join(out, "ipamd", S1, "metrics.txt")).read(), re.M)
    assert abs(float(m_new.group(1)) - float(m_old.group(1)) - shift) < 1


def test_world_agent_pods_and_fakes_serve_it(demo_world):
    summary, out = demo_world
    pods = json.load(open(os.path.join(out, "kubernetes", "pods.json")))["items"]
    agents = [p for p in pods if p["metadata"]["namespace"] == "eks-ipam-exporter"]
    assert len(agents) == 5
    ports = {}
    for p in agents:
        # The labels of deploy/daemonset.yaml's pod template, which the exporter selects on.
        assert p["metadata"]["labels"]["app.kubernetes.io/name"] == "eks-ipam-exporter"
        assert p["metadata"]["labels"]["app.kubernetes.io/component"] == "node"
        assert p["spec"]["hostNetwork"] is True and p["status"]["phase"] == "Running"
        assert p["status"]["podIP"] == p["status"]["hostIP"] == "127.0.0.1"
        c = p["spec"]["containers"][0]
        assert c["name"] == "node" and c["ports"][0]["name"] == "http-metrics"
        ports[p["spec"]["nodeName"]] = c["ports"][0]["containerPort"]
    assert sorted(ports.values()) == list(range(31000, 31005))
    assert ports == {n: v["agentPort"] for n, v in summary["nodes"].items() if v["runsAgent"]}
    # the Windows and the Auto Mode node (named after its instance id, rewritten to moto's) get no
    # agent: aws-node's placement
    no_agent = sorted(n for n, v in summary["nodes"].items() if not v["runsAgent"])
    assert len(no_agent) == 2 and no_agent[1] == "ip-10-0-77-20.us-west-2.compute.internal", no_agent
    assert no_agent[0] == summary["nodes"][no_agent[0]]["instanceId"], "the Auto Mode node's name is its instance id"
    # the fakes load the world bundle and agree with it
    k = Fake("kube_apiserver", ["--bundle", out, "--port", "0"])
    c = Fake("cloudtrail.py", ["--bundle", out, "--port", "0"])
    try:
        code, lst = get_json(k.base + "/api/v1/pods?labelSelector=app.kubernetes.io%2Fname%3Deks-ipam-exporter%2Capp.kubernetes.io%2Fcomponent%3Dnode")
        assert len(lst["items"]) == 5
        iid = summary["nodes"][S1]["instanceId"]
        evs = ct_client(c).lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": iid}])["Events"]
        assert {e["EventName"] for e in evs} == {"CreateNetworkInterface", "AttachNetworkInterface"}
        assert all(abs(e["EventTime"].timestamp() - time.time()) < 86400 for e in evs)  # live now
    finally:
        assert k.stop() == 0
        assert c.stop() == 0


def test_world_other_scenarios(moto, tmp_path):
    s = build_world(moto, STALL, str(tmp_path / "stall"), "--no-agent-pods")
    assert len(s["nodes"]) == 2 and all(v["agentPort"] is None for v in s["nodes"].values())
    assert not os.path.exists(tmp_path / "stall" / "kubernetes" / "nodeclaims.json")
    pods_in = json.load(open(os.path.join(STALL, "kubernetes", "pods.json")))["items"]
    pods_out = json.load(open(tmp_path / "stall" / "kubernetes" / "pods.json"))["items"]
    assert len(pods_in) == len(pods_out)
    types = json.load(open(tmp_path / "stall" / "ec2" / "instance-types.json"))["InstanceTypes"]
    assert [t["InstanceType"] for t in types] == ["m5.4xlarge"]
    assert types[0]["NetworkInfo"]["MaximumNetworkInterfaces"] == 8
    h = build_world(moto, HEALTHY, str(tmp_path / "healthy"), "--extra-nodes", "3")
    assert len(h["ids"]["eni"]) == 4
    extra = {n: v for n, v in h["nodes"].items() if v["synthetic"]}
    assert len(extra) == 3 and len(h["nodes"]) == 5
    ec2 = boto3.client("ec2", region_name="us-west-2", endpoint_url=moto, aws_access_key_id="t",
                       aws_secret_access_key="t")
    out = tmp_path / "healthy"
    for name, v in extra.items():
        card = json.load(open(out / "ipamd" / name / "enis.json"))["0"]
        assert (card["TotalIPs"], card["AssignedIPs"]) == (18, 3)
        live = ec2.describe_network_interfaces(NetworkInterfaceIds=list(card["ENIs"]))["NetworkInterfaces"]
        assert {e["Attachment"]["InstanceId"] for e in live} == {v["instanceId"]}
    assign = json.load(open(out / "cloudtrail" / "AssignPrivateIpAddresses.json"))["Events"]
    assert {v["instanceId"] for v in extra.values()} <= {e["Username"] for e in assign}
    nodes = json.load(open(out / "kubernetes" / "nodes.json"))["items"]
    assert len(nodes) == 5
    # the ipamd fake serves a synthetic node
    f = ipamd(str(out), next(iter(extra)))
    try:
        body = http("GET", f.url("ipamd-introspection") + "/v1/enis")[2]
        assert body == (out / "ipamd" / next(iter(extra)) / "enis.json").read_bytes()
    finally:
        assert f.stop() == 0
