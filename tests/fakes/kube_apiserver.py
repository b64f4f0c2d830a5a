#!/usr/bin/env python3
"""Fake Kubernetes apiserver serving a bundle's kubernetes/*.json over the real HTTP API.

    python3 tests/fakes/kube_apiserver.py --bundle DIR --port 0 [--token T]

Prints `LISTENING kube-apiserver 127.0.0.1:<port>` when ready; exits 0 on SIGTERM.

What it reproduces of the real apiserver (JSON only, no protobuf, no TLS):

* paths: /api/v1/{nodes,pods,events}, /api/v1/namespaces/{ns}/{pods,events},
  /apis/apps/v1/{daemonsets,deployments} (+ namespaced), /apis/karpenter.sh/v1/{nodeclaims,nodepools},
  /apis/karpenter.k8s.aws/v1/ec2nodeclasses, /apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs,
  single-object GET .../{name}; discovery /version, /api, /api/v1, /apis, /apis/{g}, /apis/{g}/{v};
  /healthz, /livez, /readyz.
* A custom resource whose bundle file is absent is "not installed": its group/version disappears from
  discovery and every request answers 404 with a Status `the server could not find the requested
  resource` (reason NotFound). A built-in resource whose file is absent is simply empty (a real cluster
  always has nodes/pods/events/daemonsets/deployments).
* LIST: `<Kind>List` with metadata.resourceVersion (a global, etcd-like revision), `continue` only when
  more remain, `remainingItemCount` only without selectors; etcd key order (namespace, name); items of
  built-in kinds lack kind/apiVersion (custom resources keep them, as the real server does); `limit` +
  `continue` paging from a consistent snapshot; a page filled with selectors may be followed by an
  EMPTY last page; resourceVersion="0" is served "from the cache": limit ignored, no continue;
  resourceVersion semantics (unset = most recent, NotOlderThan, Exact, legacy RV+limit = Exact) with
  410 Expired for compacted RVs and continue tokens, 504 for RVs in the future.
* labelSelector: =, ==, !=, exists, !key, in (...), notin (...); fieldSelector: =, ==, != on the fields
  the real server supports per resource; anything else -> 400 `field label not supported: X`.
* WATCH: chunked newline-delimited events; kind/apiVersion on every object; RV unset/"0" first sends
  synthetic ADDED for the current state; sendInitialEvents=true (+ resourceVersionMatch=NotOlderThan,
  allowWatchBookmarks=true) sends the state then a BOOKMARK annotated `k8s.io/initial-events-end`;
  selector transitions (an object that stops matching arrives as DELETED, one that starts matching as
  ADDED); BOOKMARKs every --bookmark-interval seconds when allowWatchBookmarks=true; stream closed
  after timeoutSeconds (default: random 1800-3600 s like --min-request-timeout); 410 Expired ERROR
  event for compacted RVs (also for watches that fall behind the --history window).
* Auth: with --token, `Authorization: Bearer T` is required (401 Status otherwise); /version, /healthz,
  /livez, /readyz stay readable anonymously (no Authorization header), as on EKS.

Control API (not Kubernetes; no auth): POST /_control/apply, /_control/delete, /_control/expire,
/_control/disconnect, /_control/forbid, /_control/unforbid, /_control/install, /_control/uninstall,
/_control/reset-stats; GET /_control/stats. See the handlers below for bodies.
"""
from __future__ import annotations

import argparse
import base64
import bisect
import copy
import json
import os
import random
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


# --------------------------------------------------------------------------------------------
# Resource table
# --------------------------------------------------------------------------------------------

@dataclass
class Res:
    name: str
    group: str
    version: str
    kind: str
    namespaced: bool
    builtin: bool
    singular: str
    short: list[str]
    fields: dict[str, Callable[[dict], str]]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.name}.{self.group}" if self.group else self.name


def _g(path: str) -> Callable[[dict], str]:
    parts = path.split(".")

    def get(obj: dict) -> str:
        cur: Any = obj
        for p in parts:
            if not isinstance(cur, dict):
                return ""
            cur = cur.get(p)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


META_FIELDS = {"metadata.name": _g("metadata.name"), "metadata.namespace": _g("metadata.namespace")}


def _source(obj: dict) -> str:
    # events: "source" selects source.component (fields.Set{"source": event.Source.Component})
    return _g("source.component")(obj)


POD_FIELDS = dict(META_FIELDS, **{
    "spec.nodeName": _g("spec.nodeName"),
    "spec.restartPolicy": _g("spec.restartPolicy"),
    "spec.schedulerName": _g("spec.schedulerName"),
    "spec.serviceAccountName": _g("spec.serviceAccountName"),
    "spec.hostNetwork": lambda o: "true" if (o.get("spec") or {}).get("hostNetwork") else "false",
    "status.phase": _g("status.phase"),
    "status.podIP": _g("status.podIP"),
    "status.nominatedNodeName": _g("status.nominatedNodeName"),
})
NODE_FIELDS = dict(META_FIELDS, **{
    "spec.unschedulable": lambda o: "true" if (o.get("spec") or {}).get("unschedulable") else "false",
})
EVENT_FIELDS = dict(META_FIELDS, **{
    "involvedObject.kind": _g("involvedObject.kind"),
    "involvedObject.namespace": _g("involvedObject.namespace"),
    "involvedObject.name": _g("involvedObject.name"),
    "involvedObject.uid": _g("involvedObject.uid"),
    "involvedObject.apiVersion": _g("involvedObject.apiVersion"),
    "involvedObject.resourceVersion": _g("involvedObject.resourceVersion"),
    "involvedObject.fieldPath": _g("involvedObject.fieldPath"),
    "reason": _g("reason"),
    "reportingComponent": _g("reportingComponent"),
    "source": _source,
    "type": _g("type"),
})

RESOURCES: dict[str, Res] = {r.name: r for r in [
    Res("nodes", "", "v1", "Node", False, True, "node", ["no"], NODE_FIELDS),
    Res("pods", "", "v1", "Pod", True, True, "pod", ["po"], POD_FIELDS),
    Res("events", "", "v1", "Event", True, True, "event", ["ev"], EVENT_FIELDS),
    Res("daemonsets", "apps", "v1", "DaemonSet", True, True, "daemonset", ["ds"], META_FIELDS),
    Res("deployments", "apps", "v1", "Deployment", True, True, "deployment", ["deploy"], META_FIELDS),
    Res("configmaps", "", "v1", "ConfigMap", True, True, "configmap", ["cm"], META_FIELDS),
    Res("nodeclaims", "karpenter.sh", "v1", "NodeClaim", False, False, "nodeclaim", [], META_FIELDS),
    Res("nodepools", "karpenter.sh", "v1", "NodePool", False, False, "nodepool", [], META_FIELDS),
    Res("ec2nodeclasses", "karpenter.k8s.aws", "v1", "EC2NodeClass", False, False, "ec2nodeclass", [],
        META_FIELDS),
    Res("eniconfigs", "crd.k8s.amazonaws.com", "v1alpha1", "ENIConfig", False, False, "eniconfig", [],
        META_FIELDS),
]}
BY_GV: dict[tuple[str, str, str], Res] = {(r.group, r.version, r.name): r for r in RESOURCES.values()}

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


# --------------------------------------------------------------------------------------------
# Status helpers
# --------------------------------------------------------------------------------------------

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 410: "Expired", 422: "Invalid",
           500: "InternalError", 504: "Timeout"}


class ApiError(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None,
                 details: dict | None = None, metadata: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason if reason is not None else REASONS.get(code, "")
        self.details = details
        self.metadata = metadata or {}

    def status(self) -> dict:
        st: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": self.metadata,
                              "status": "Failure", "message": self.message}
        if self.reason:
            st["reason"] = self.reason
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st


def invalid_list_options(msg: str) -> ApiError:
    """ListOptions validation failures are 422 Invalid, as ValidateListOptions reports them."""
    field_, _, rest = msg.partition(": ")
    return ApiError(422, f'ListOptions.meta.k8s.io "" is invalid: {msg}', "Invalid",
                    {"group": "meta.k8s.io", "kind": "ListOptions",
                     "causes": [{"reason": "FieldValueForbidden" if rest.startswith("Forbidden") else
                                 "FieldValueNotSupported", "message": rest, "field": field_}]})


def k8s_bool(v: str | None) -> bool:
    """Query booleans as the apiserver decodes them (runtime.Convert_Slice_string_To_bool): absent, "0"
    and case-insensitive "false" are false; anything else, the empty string included, is true."""
    if v is None:
        return False
    return not (v == "0" or v.lower() == "false")


def not_found_path() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", "NotFound", {})


def too_large_rv(rv: int, cur: int) -> ApiError:
    return ApiError(504, f"Timeout: Too large resource version: {rv}, current: {cur}", "Timeout",
                    {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                     "retryAfterSeconds": 1})


# --------------------------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------------------------

_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VAL = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _split_top(s: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def parse_label_selector(sel: str) -> Callable[[dict], bool]:
    sel = sel.strip()
    if not sel:
        return lambda labels: True
    reqs: list[Callable[[dict], bool]] = []
    for raw in _split_top(sel):
        part = raw.strip()
        if not part:
            raise ApiError(400, f"unable to parse requirement: found ',', expected: identifier", "BadRequest")
        m = re.match(r"^(\S+)\s+(in|notin)\s*\((.*)\)$", part)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            _check_key(key)
            for v in vals:
                _check_val(v)
            if op == "in":
                reqs.append(lambda l, k=key, vs=vals: k in l and l[k] in vs)
            else:
                reqs.append(lambda l, k=key, vs=vals: k not in l or l[k] not in vs)
            continue
        m = re.match(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$", part)
        if m:
            key, op, val = m.groups()
            _check_key(key)
            _check_val(val)
            if op == "!=":
                reqs.append(lambda l, k=key, v=val: l.get(k) != v)
            else:
                reqs.append(lambda l, k=key, v=val: k in l and l[k] == v)
            continue
        m = re.match(r"^(!?)\s*([^=!\s()]+)$", part)
        if m:
            neg, key = m.groups()
            _check_key(key)
            if neg:
                reqs.append(lambda l, k=key: k not in l)
            else:
                reqs.append(lambda l, k=key: k in l)
            continue
        raise ApiError(400, f"unable to parse requirement: <nil>: Invalid value: \"{part}\": "
                            "found unexpected token", "BadRequest")
    return lambda labels: all(r(labels) for r in reqs)


def _check_key(key: str) -> None:
    if not _LABEL_KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise ApiError(400, f"unable to parse requirement: values[0][{key}]: Invalid value: \"{key}\": "
                            "name part must consist of alphanumeric characters, '-', '_' or '.'", "BadRequest")


def _check_val(val: str) -> None:
    if len(val) > 63 or not _LABEL_VAL.match(val):
        raise ApiError(400, f"unable to parse requirement: values[0]: Invalid value: \"{val}\": "
                            "a valid label must be an empty string or consist of alphanumeric characters, "
                            "'-', '_' or '.'", "BadRequest")


def parse_field_selector(res: Res, sel: str) -> Callable[[dict], bool]:
    sel = sel.strip()
    if not sel:
        return lambda obj: True
    reqs: list[Callable[[dict], bool]] = []
    for raw in sel.split(","):
        part = raw.strip()
        m = re.match(r"^([^=!]+?)(==|=|!=)(.*)$", part)
        if not m:
            raise ApiError(400, f"invalid selector: '{sel}'; can't understand '{part}'", "BadRequest")
        fld, op, val = m.group(1).strip(), m.group(2), m.group(3).strip()
        getter = res.fields.get(fld)
        if getter is None:
            raise ApiError(400, f"field label not supported: {fld}", "BadRequest")
        if op == "!=":
            reqs.append(lambda o, g=getter, v=val: g(o) != v)
        else:
            reqs.append(lambda o, g=getter, v=val: g(o) == v)
    return lambda obj: all(r(obj) for r in reqs)


# --------------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------------

Key = tuple[str, str]  # (namespace or "", name)


@dataclass
class Ev:
    rv: int
    res: str
    type: str  # ADDED MODIFIED DELETED
    obj: dict
    prev: dict | None


@dataclass
class Watch:
    id: int
    res: str
    path: str
    ns: str | None
    label: str
    field: str
    match: Callable[[dict], bool]
    start_rv: int
    sock: socket.socket
    bookmarks: bool
    scanned: int = 0
    expired: bool = False
    killed: bool = False
    opened: float = field(default_factory=time.time)


class Store:
    def __init__(self, history: int):
        self.cond = threading.Condition()
        self.rv = 1
        self.horizon = 1
        self.history = history
        self.objs: dict[str, dict[Key, dict]] = {}
        self.installed: dict[str, bool] = {}
        self.log: list[Ev] = []
        self.log_rvs: list[int] = []
        self.watches: dict[int, Watch] = {}
        self.next_watch = 1
        self.forbidden: dict[str, set[str]] = {}
        self.stats: dict[str, int] = {}
        self.status_counts: dict[str, int] = {}
        self.watches_total = 0

    # -- loading --------------------------------------------------------------------------
    def load_bundle(self, bundle: str) -> None:
        max_rv = 0
        for res in RESOURCES.values():
            path = os.path.join(bundle, "kubernetes", f"{res.name}.json")
            items: dict[Key, dict] = {}
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    doc = json.load(f)
                for it in doc.get("items") or []:
                    md = it.setdefault("metadata", {})
                    if res.namespaced:
                        md.setdefault("namespace", "default")
                    else:
                        md.pop("namespace", None)
                    it["apiVersion"] = res.api_version
                    it["kind"] = res.kind
                    md.setdefault("uid", str(uuid.uuid4()))
                    try:
                        max_rv = max(max_rv, int(md.get("resourceVersion") or 0))
                    except ValueError:
                        md["resourceVersion"] = ""
                    items[(md.get("namespace", ""), md["name"])] = it
                self.installed[res.name] = True
            else:
                self.installed[res.name] = res.builtin
            self.objs[res.name] = items
        self.rv = max_rv + 1
        for items in self.objs.values():
            for it in items.values():
                if not it["metadata"].get("resourceVersion"):
                    self.rv += 1
                    it["metadata"]["resourceVersion"] = str(self.rv)
        self.rv += 1
        self.horizon = self.rv  # nothing before the initial state can be replayed

    # -- mutation (call with cond held) -------------------------------------------------------
    def _append(self, ev: Ev) -> None:
        self.log.append(ev)
        self.log_rvs.append(ev.rv)
        if len(self.log) > self.history * 2:
            cut = len(self.log) - self.history
            self.horizon = max(self.horizon, self.log[cut - 1].rv)
            del self.log[:cut]
            del self.log_rvs[:cut]
        self.cond.notify_all()

    def apply(self, resname: str, obj: dict) -> tuple[str, dict]:
        res = RESOURCES[resname]
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if "name" not in md:
            raise ApiError(400, "metadata.name is required", "BadRequest")
        if res.namespaced:
            md.setdefault("namespace", "default")
        else:
            md.pop("namespace", None)
        obj["apiVersion"] = res.api_version
        obj["kind"] = res.kind
        key = (md.get("namespace", ""), md["name"])
        with self.cond:
            self.installed[resname] = True
            items = self.objs.setdefault(resname, {})
            prev = items.get(key)
            self.rv += 1
            if prev is None:
                md.setdefault("uid", str(uuid.uuid4()))
                md.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                typ = "ADDED"
            else:
                pmd = prev["metadata"]
                md["uid"] = pmd.get("uid", md.get("uid"))
                md["creationTimestamp"] = pmd.get("creationTimestamp", md.get("creationTimestamp"))
                typ = "MODIFIED"
            md["resourceVersion"] = str(self.rv)
            items[key] = obj
            self._append(Ev(self.rv, resname, typ, obj, prev))
            return typ, obj

    def delete(self, resname: str, ns: str | None, name: str) -> dict:
        res = RESOURCES[resname]
        key = ((ns or "default") if res.namespaced else "", name)
        with self.cond:
            items = self.objs.get(resname, {})
            prev = items.get(key)
            if prev is None:
                raise ApiError(404, f'{res.qualified} "{name}" not found', "NotFound",
                               {"name": name, "group": res.group, "kind": res.name})
            del items[key]
            self.rv += 1
            obj = copy.deepcopy(prev)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._append(Ev(self.rv, resname, "DELETED", obj, prev))
            return obj

    # -- reads -------------------------------------------------------------------------------
    def snapshot(self, resname: str, at_rv: int) -> dict[Key, dict]:
        """State of one resource at revision at_rv (>= horizon). Call with cond held."""
        cur = dict(self.objs.get(resname, {}))
        if at_rv >= self.rv:
            return cur
        i = bisect.bisect_right(self.log_rvs, at_rv)
        for ev in reversed(self.log[i:]):
            if ev.res != resname:
                continue
            md = ev.obj["metadata"]
            key = (md.get("namespace", ""), md["name"])
            if ev.type == "ADDED":
                cur.pop(key, None)
            else:
                assert ev.prev is not None
                cur[key] = ev.prev
        return cur

    def events_after(self, rv: int) -> list[Ev]:
        i = bisect.bisect_right(self.log_rvs, rv)
        return self.log[i:]

    def count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1


# --------------------------------------------------------------------------------------------
# Continue tokens (same layout as the real one: base64 of {"v","rv","start"})
# --------------------------------------------------------------------------------------------

def encode_continue(rv: int, key: Key) -> str:
    start = (f"{key[0]}/{key[1]}" if key[0] else key[1]) + "\x00"
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(tok: str) -> tuple[int, Key]:
    try:
        pad = "=" * (-len(tok) % 4)
        d = json.loads(base64.urlsafe_b64decode(tok + pad))
        if d.get("v") != "meta.k8s.io/v1":
            raise ValueError("bad version")
        rv = int(d["rv"])
        start = str(d["start"]).rstrip("\x00")
        if "/" in start:
            ns, name = start.split("/", 1)
        else:
            ns, name = "", start
        return rv, (ns, name)
    except Exception as e:  # noqa: BLE001
        raise ApiError(400, f"continue key is not valid: {e}", "BadRequest") from None


# --------------------------------------------------------------------------------------------
# Bookmark objects: an empty object of the kind with only metadata.resourceVersion, serialised like
# the real (typed) encoder does it, zero-valued required fields included.
# --------------------------------------------------------------------------------------------

def bookmark_object(res: Res, rv: int, initial_end: bool = False) -> dict:
    md: dict[str, Any] = {"resourceVersion": str(rv)}
    if res.builtin:
        md["creationTimestamp"] = None
    if initial_end:
        md["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj: dict[str, Any] = {"kind": res.kind, "apiVersion": res.api_version, "metadata": md}
    if res.name == "pods":
        obj["spec"] = {"containers": None}
        obj["status"] = {}
    elif res.name == "nodes":
        obj["spec"] = {}
        obj["status"] = {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                         "nodeInfo": {k: "" for k in ["machineID", "systemUUID", "bootID", "kernelVersion",
                                                      "osImage", "containerRuntimeVersion", "kubeletVersion",
                                                      "kubeProxyVersion", "operatingSystem", "architecture"]}}
    elif res.name == "events":
        obj.update({"involvedObject": {}, "reportingComponent": "", "reportingInstance": "",
                    "source": {}, "firstTimestamp": None, "lastTimestamp": None, "eventTime": None})
    elif res.name in ("daemonsets", "deployments"):
        obj["spec"] = {"selector": None, "template": {"metadata": {"creationTimestamp": None},
                                                      "spec": {"containers": None}}}
        if res.name == "deployments":
            obj["spec"]["strategy"] = {}
        else:
            obj["spec"]["updateStrategy"] = {}
        obj["status"] = ({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                          "numberReady": 0} if res.name == "daemonsets" else {})
    return obj


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

class Config:
    token: str | None = None
    user: str = "system:serviceaccount:eks-ipam-exporter:eks-ipam-exporter"
    bookmark_interval: float = 2.0
    too_large_wait: float = 3.0
    git_version: str = "v1.33.5-eks-3025e55"
    minor: str = "33+"
    verbose: bool = False


def strip_for_list(res: Res, obj: dict) -> dict:
    if not res.builtin:
        return obj
    o = dict(obj)
    o.pop("kind", None)
    o.pop("apiVersion", None)
    return o


class KubeHandler(_common.Handler):
    server_version = "kube-apiserver-fake"

    @property
    def store(self) -> Store:
        return self.server.state[0]  # type: ignore[attr-defined]

    @property
    def cfg(self) -> type[Config]:
        return self.server.state[1]  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.cfg.verbose:
            super().log_message(format, *args)

    # -- dispatch ----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def _error(self, e: ApiError) -> None:
        with self.store.cond:
            self.store.status_counts[str(e.code)] = self.store.status_counts.get(str(e.code), 0) + 1
        self.send_json(e.code, e.status())

    def _dispatch(self, method: str) -> None:
        u = urlsplit(self.path)
        path = u.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        try:
            if path.startswith("/_control/"):
                return self._control(method, path, q)
            if method != "GET":
                self.read_body()  # keep the keep-alive connection in sync before answering
            self._auth(path)
            if path in ("/healthz", "/livez", "/readyz"):
                self._count("get", path)
                return self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
            if method != "GET":
                raise ApiError(405, f"the server does not allow this method on the requested resource",
                               "MethodNotAllowed", {})
            if path == "/version":
                self._count("discovery", path)
                return self.send_json(200, self._version())
            if path in ("/api", "/apis") or re.fullmatch(r"/api/v1|/apis/[^/]+(/[^/]+)?", path):
                self._count("discovery", path)
                return self.send_json(200, self._discovery(path))
            self._resource(path, q)
        except ApiError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionError):
            pass
        except Exception as e:  # noqa: BLE001 - a bug in the fake must be visible, not a hung client
            import traceback

            traceback.print_exc()
            try:
                self._error(ApiError(500, f"fake apiserver internal error: {e!r}", "InternalError"))
            except OSError:
                pass

    def _auth(self, path: str) -> None:
        tok = self.cfg.token
        if not tok:
            return
        h = self.headers.get("Authorization")
        if h is None and path in ("/version", "/healthz", "/livez", "/readyz"):
            return
        if h != f"Bearer {tok}":
            raise ApiError(401, "Unauthorized", "Unauthorized")

    def _count(self, verb: str, path: str) -> None:
        with self.store.cond:
            self.store.count(f"{verb} {path}")

    # -- discovery ---------------------------------------------------------------------------
    def _version(self) -> dict:
        return {"major": "1", "minor": self.cfg.minor, "emulationMajor": "1",
                "emulationMinor": self.cfg.minor.rstrip("+"), "minCompatibilityMajor": "1",
                "minCompatibilityMinor": str(int(self.cfg.minor.rstrip("+")) - 1),
                "gitVersion": self.cfg.git_version, "gitCommit": "3025e55f1c4a6d5e8b9f0a7c2d4e6f8a0b1c3d5e",
                "gitTreeState": "clean", "buildDate": "2025-09-30T19:52:05Z", "goVersion": "go1.24.6",
                "compiler": "gc", "platform": "linux/amd64"}

    def _installed_groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        with self.store.cond:
            for r in RESOURCES.values():
                if r.group and self.store.installed.get(r.name):
                    vs = groups.setdefault(r.group, [])
                    if r.version not in vs:
                        vs.append(r.version)
        return groups

    def _discovery(self, path: str) -> dict:
        host, port = self.server.server_address[:2]  # type: ignore[attr-defined]
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"{host}:{port}"}]}
        groups = self._installed_groups()

        def group_obj(g: str) -> dict:
            vs = groups[g]
            return {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}

        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [group_obj(g) for g in sorted(groups, key=lambda g: (g != "apps", g))]}
        parts = path.strip("/").split("/")
        if path == "/api/v1":
            group, version = "", "v1"
        elif len(parts) == 2:
            if parts[1] not in groups:
                raise not_found_path()
            d = group_obj(parts[1])
            d.update({"kind": "APIGroup", "apiVersion": "v1"})
            return d
        else:
            group, version = parts[1], parts[2]
            if group not in groups or version not in groups[group]:
                raise not_found_path()
        res = []
        with self.store.cond:
            for r in RESOURCES.values():
                if r.group == group and r.version == version and self.store.installed.get(r.name):
                    d: dict[str, Any] = {"name": r.name, "singularName": r.singular, "namespaced": r.namespaced,
                                         "kind": r.kind, "verbs": VERBS}
                    if r.short:
                        d["shortNames"] = r.short
                    if not r.builtin:
                        d["storageVersionHash"] = base64.b64encode(r.qualified.encode()[:8]).decode()
                    res.append(d)
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": res}

    # -- resources ---------------------------------------------------------------------------
    def _resource(self, path: str, q: dict[str, str]) -> None:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise not_found_path()
        ns: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            raise not_found_path()
        res = BY_GV.get((group, version, rest[0]))
        if res is None:
            raise not_found_path()
        with self.store.cond:
            installed = self.store.installed.get(res.name, False)
        if not installed:
            self._count("get" if len(rest) == 2 else ("watch" if k8s_bool(q.get("watch")) else "list"), path)
            raise not_found_path()
        if ns is not None and not res.namespaced:
            raise not_found_path()
        name = rest[1] if len(rest) == 2 else None
        is_watch = k8s_bool(q.get("watch"))
        verb = "get" if name else ("watch" if is_watch else "list")
        self._count(verb, path)
        self._check_forbidden(res, verb, ns)
        if name:
            return self._get(res, ns, name)
        if is_watch:
            return self._watch(res, ns, path, q)
        return self._list(res, ns, q)

    def _check_forbidden(self, res: Res, verb: str, ns: str | None) -> None:
        with self.store.cond:
            verbs = self.store.forbidden.get(res.name)
        if verbs is None or (verbs and verb not in verbs):
            return
        scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
        raise ApiError(403, f'{res.qualified} is forbidden: User "{self.cfg.user}" cannot {verb} resource '
                            f'"{res.name}" in API group "{res.group}" {scope}',
                       "Forbidden", {"group": res.group, "kind": res.name})

    def _get(self, res: Res, ns: str | None, name: str) -> None:
        key = ((ns or "default") if res.namespaced else "", name)
        if res.namespaced and ns is None:
            raise not_found_path()
        with self.store.cond:
            obj = self.store.objs.get(res.name, {}).get(key)
        if obj is None:
            raise ApiError(404, f'{res.qualified} "{name}" not found', "NotFound",
                           {"name": name, "group": res.group, "kind": res.name} if res.group else
                           {"name": name, "kind": res.name})
        self.send_json(200, obj)

    def _matcher(self, res: Res, ns: str | None, q: dict[str, str]) -> Callable[[dict], bool]:
        lsel = parse_label_selector(q.get("labelSelector", ""))
        fsel = parse_field_selector(res, q.get("fieldSelector", ""))

        def match(obj: dict) -> bool:
            md = obj.get("metadata") or {}
            if ns is not None and md.get("namespace") != ns:
                return False
            return lsel(md.get("labels") or {}) and fsel(obj)

        return match

    def _parse_rv(self, s: str) -> int:
        try:
            v = int(s)
            if v < 0:
                raise ValueError
            return v
        except ValueError:
            raise ApiError(400, f"resourceVersion: Invalid value: \"{s}\": must be a non-negative integer",
                           "BadRequest") from None

    def _wait_for_rv(self, rv: int) -> None:
        """Like the watch cache: wait up to 3 s for a future RV, then 504. Call with cond held."""
        deadline = time.time() + self.cfg.too_large_wait
        st = self.store
        while st.rv < rv:
            left = deadline - time.time()
            if left <= 0:
                raise too_large_rv(rv, st.rv)
            st.cond.wait(left)

    def _list(self, res: Res, ns: str | None, q: dict[str, str]) -> None:
        match = self._matcher(res, ns, q)
        selectors = bool(q.get("labelSelector") or q.get("fieldSelector"))
        rv_s = q.get("resourceVersion")
        rvm = q.get("resourceVersionMatch", "")
        cont = q.get("continue", "")
        try:
            limit = max(0, int(q.get("limit") or 0))
        except ValueError:
            raise ApiError(400, "limit: Invalid value: must be an integer", "BadRequest") from None
        if rvm and not rv_s:
            raise invalid_list_options("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                                       "resourceVersion is provided")
        if rvm and rvm not in ("Exact", "NotOlderThan"):
            raise invalid_list_options(f"resourceVersionMatch: Unsupported value: \"{rvm}\": supported values: "
                                       "\"Exact\", \"NotOlderThan\"")
        if cont and rv_s:
            raise ApiError(400, "resourceVersion: Forbidden: specifying resource version is not allowed when "
                                "using continue", "BadRequest")
        if rvm == "Exact" and rv_s == "0":
            raise invalid_list_options("resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden "
                                       "for resourceVersion \"0\"")
        st = self.store
        with st.cond:
            start_key: Key | None = None
            if cont:
                snap_rv, start_key = decode_continue(cont)
                if snap_rv == 0:  # "inconsistent" continuation handed out with a 410
                    snap_rv = st.rv
                elif snap_rv < st.horizon:
                    raise ApiError(
                        410, "The provided continue parameter is too old to display a consistent list result. "
                             "You can start a new list without the continue parameter, or use the continue token "
                             "in this response to retrieve the remainder of the results. Continuing with the "
                             "provided token results in an inconsistent list - objects that were created, "
                             "modified, or deleted between the time the first chunk was returned and now may "
                             "show up in the list.", "Expired",
                        metadata={"continue": encode_continue(0, start_key)})
            elif rv_s in (None, ""):
                snap_rv = st.rv
            elif rv_s == "0":
                snap_rv = st.rv
                limit = 0  # served from the watch cache: limit ignored, one page
            else:
                want = self._parse_rv(rv_s)
                exact = rvm == "Exact" or (not rvm and limit > 0)
                if exact:
                    if want < st.horizon:
                        raise ApiError(410, "The resourceVersion for the provided list is too old.", "Expired")
                    self._wait_for_rv(want)
                    snap_rv = want
                else:
                    self._wait_for_rv(want)
                    snap_rv = st.rv
            snap = st.snapshot(res.name, snap_rv)
            keys = sorted(snap)
            if start_key is not None:
                keys = keys[bisect.bisect_right(keys, start_key):]
            items: list[dict] = []
            last: Key | None = None
            more = False
            remaining = 0
            for i, k in enumerate(keys):
                obj = snap[k]
                if match(obj):
                    items.append(strip_for_list(res, obj))  # stored objects are immutable
                    last = k
                    if limit and len(items) >= limit:
                        more = i + 1 < len(keys)
                        remaining = len(keys) - i - 1
                        break
            body_md: dict[str, Any] = {"resourceVersion": str(snap_rv)}
            if more and last is not None:
                body_md["continue"] = encode_continue(snap_rv, last)
                if not selectors:
                    body_md["remainingItemCount"] = remaining
        self.send_json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": body_md,
                             "items": items})

    # -- watch -------------------------------------------------------------------------------
    def _watch(self, res: Res, ns: str | None, path: str, q: dict[str, str]) -> None:
        match = self._matcher(res, ns, q)
        rv_s = q.get("resourceVersion", "")
        rvm = q.get("resourceVersionMatch", "")
        bookmarks = k8s_bool(q.get("allowWatchBookmarks"))
        initial = q.get("sendInitialEvents")
        if initial is not None:
            if rvm != "NotOlderThan":
                raise invalid_list_options("resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                                           "resourceVersionMatch to NotOlderThan")
            if k8s_bool(initial) and not bookmarks:
                raise invalid_list_options("allowWatchBookmarks: Forbidden: sendInitialEvents requires "
                                           "allowWatchBookmarks=true")
        elif rvm:
            raise invalid_list_options("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch "
                                       "unless sendInitialEvents is provided")
        send_initial = k8s_bool(initial)
        try:
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else 0.0
        except ValueError:
            raise ApiError(400, "timeoutSeconds: Invalid value", "BadRequest") from None
        if timeout <= 0:  # unset or 0: the server picks one, like --min-request-timeout (1800 s) x [1, 2)
            timeout = random.uniform(1800, 3600)
        st = self.store
        initial_objs: list[dict] = []
        err: dict | None = None
        with st.cond:
            if rv_s in ("", "0") or send_initial:
                if rv_s not in ("", "0"):
                    self._wait_for_rv(self._parse_rv(rv_s))
                start = st.rv
                for k in sorted(st.objs.get(res.name, {})):
                    o = st.objs[res.name][k]
                    if match(o):
                        initial_objs.append(o)
                send_initial = True
            else:
                start = self._parse_rv(rv_s)
                if start < st.horizon:
                    err = ApiError(410, f"too old resource version: {start} ({st.horizon})", "Expired").status()
                    err.pop("details", None)
                elif start > st.rv:
                    deadline = time.time() + self.cfg.too_large_wait
                    while st.rv < start and time.time() < deadline:
                        st.cond.wait(deadline - time.time())
                    if st.rv < start:
                        err = too_large_rv(start, st.rv).status()
            w = Watch(st.next_watch, res.name, path, ns, q.get("labelSelector", ""), q.get("fieldSelector", ""),
                      match, start, self.connection, bookmarks, scanned=start)
            if err is None:
                st.next_watch += 1
                st.watches[w.id] = w
                st.watches_total += 1
        self.close_connection = False
        try:
            self.start_chunked(200, "application/json")
            if err is not None:
                with st.cond:
                    st.status_counts[str(err["code"])] = st.status_counts.get(str(err["code"]), 0) + 1
                self.write_chunk(self._line({"type": "ERROR", "object": err}))
                self.end_chunked()
                return
            self._stream(res, w, timeout, initial_objs if send_initial else None, q.get("sendInitialEvents"))
        except (BrokenPipeError, ConnectionError, OSError):
            self.close_connection = True
        finally:
            with st.cond:
                st.watches.pop(w.id, None)

    @staticmethod
    def _line(ev: dict) -> bytes:
        return json.dumps(ev, separators=(",", ":")).encode() + b"\n"

    def _stream(self, res: Res, w: Watch, timeout: float, initial: list[dict] | None,
                send_initial_param: str | None) -> None:
        st = self.store
        deadline = time.time() + timeout
        if initial is not None:
            buf = b"".join(self._line({"type": "ADDED", "object": o}) for o in initial)
            self.write_chunk(buf)
            if k8s_bool(send_initial_param) and w.bookmarks:
                self.write_chunk(self._line({"type": "BOOKMARK",
                                             "object": bookmark_object(res, w.scanned, initial_end=True)}))
        next_bm = time.time() + self.cfg.bookmark_interval
        while True:
            out: list[bytes] = []
            expired_msg: str | None = None
            with st.cond:
                while True:
                    now = time.time()
                    if w.killed or self.server.stopping.is_set():  # type: ignore[attr-defined]
                        raise ConnectionError("dropped")
                    if w.expired or w.scanned < st.horizon:
                        expired_msg = f"too old resource version: {w.start_rv} ({st.horizon})"
                        break
                    if st.rv > w.scanned or now >= deadline or (w.bookmarks and now >= next_bm):
                        break
                    wake = deadline
                    if w.bookmarks:
                        wake = min(wake, next_bm)
                    st.cond.wait(max(0.01, min(wake - now, 0.5)))
                if expired_msg is None:
                    for ev in st.events_after(w.scanned):
                        if ev.res == w.res:
                            line = self._transition(ev, w.match)
                            if line is not None:
                                out.append(line)
                    w.scanned = st.rv
                    if not installed_check(st, res):
                        # CRD removed: the real server ends the watch
                        deadline = 0
            if expired_msg is not None:
                err = ApiError(410, expired_msg, "Expired").status()
                with st.cond:
                    st.status_counts["410"] = st.status_counts.get("410", 0) + 1
                self.write_chunk(self._line({"type": "ERROR", "object": err}))
                self.end_chunked()
                return
            if out:
                self.write_chunk(b"".join(out))
            now = time.time()
            if w.bookmarks and now >= next_bm:
                self.write_chunk(self._line({"type": "BOOKMARK", "object": bookmark_object(res, w.scanned)}))
                next_bm = now + self.cfg.bookmark_interval
            if now >= deadline:
                self.end_chunked()
                return

    @staticmethod
    def _transition(ev: Ev, match: Callable[[dict], bool]) -> bytes | None:
        def line(t: str, o: dict) -> bytes:
            return json.dumps({"type": t, "object": o}, separators=(",", ":")).encode() + b"\n"

        if ev.type == "ADDED":
            return line("ADDED", ev.obj) if match(ev.obj) else None
        if ev.type == "DELETED":
            return line("DELETED", ev.obj) if match(ev.prev or ev.obj) else None
        was, now = match(ev.prev or {}), match(ev.obj)
        if was and now:
            return line("MODIFIED", ev.obj)
        if now:
            return line("ADDED", ev.obj)
        if was:
            return line("DELETED", ev.obj)
        return None

    # -- control -----------------------------------------------------------------------------
    def _control(self, method: str, path: str, q: dict[str, str]) -> None:
        st = self.store
        body: dict = {}
        if method == "POST":
            raw = self.read_body()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise ApiError(400, f"control: invalid JSON: {e}", "BadRequest") from None
        op = path[len("/_control/"):]

        def resname() -> str:
            r = body.get("resource")
            if r not in RESOURCES:
                raise ApiError(400, f"control: unknown resource {r!r}; known: {sorted(RESOURCES)}", "BadRequest")
            return r

        if method == "GET" and op == "stats":
            with st.cond:
                out = {
                    "requests": dict(sorted(st.stats.items())),
                    "statusCounts": dict(st.status_counts),
                    "openWatches": len(st.watches),
                    "watchesTotal": st.watches_total,
                    "watches": [{"id": w.id, "resource": w.res, "path": w.path, "namespace": w.ns,
                                 "labelSelector": w.label, "fieldSelector": w.field,
                                 "resourceVersion": str(w.start_rv), "bookmarks": w.bookmarks,
                                 "ageSeconds": round(time.time() - w.opened, 3)} for w in st.watches.values()],
                    "resourceVersion": str(st.rv),
                    "horizon": str(st.horizon),
                    "objects": {r: len(v) for r, v in st.objs.items()},
                    "installed": {r: v for r, v in st.installed.items()},
                    "forbidden": {r: sorted(v) for r, v in st.forbidden.items()},
                }
            return self.send_json(200, out)
        if method != "POST":
            raise ApiError(405, "control: use POST", "MethodNotAllowed")
        if op == "apply":
            r = resname()
            obj = body.get("object")
            if not isinstance(obj, dict):
                raise ApiError(400, "control: body.object must be an object", "BadRequest")
            typ, stored = st.apply(r, obj)
            return self.send_json(200, {"type": typ, "resourceVersion": stored["metadata"]["resourceVersion"],
                                        "object": stored})
        if op == "delete":
            r = resname()
            obj = st.delete(r, body.get("namespace"), str(body.get("name")))
            return self.send_json(200, {"type": "DELETED", "resourceVersion": obj["metadata"]["resourceVersion"]})
        if op == "expire":
            with st.cond:
                st.horizon = st.rv
                st.log.clear()
                st.log_rvs.clear()
                n = 0
                for w in st.watches.values():
                    w.expired = True
                    n += 1
                st.cond.notify_all()
            return self.send_json(200, {"horizon": str(st.horizon), "expiredWatches": n})
        if op == "disconnect":
            with st.cond:
                ws = list(st.watches.values())
                for w in ws:
                    w.killed = True
                st.cond.notify_all()
            for w in ws:
                try:
                    w.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return self.send_json(200, {"dropped": len(ws)})
        if op == "forbid":
            r = resname()
            verbs = body.get("verbs") or []
            with st.cond:
                st.forbidden[r] = set(verbs)
                # open watches of a newly forbidden resource keep running, as with a real RBAC change
            return self.send_json(200, {"forbidden": r, "verbs": sorted(verbs) or "all"})
        if op == "unforbid":
            with st.cond:
                if body.get("resource"):
                    st.forbidden.pop(resname(), None)
                else:
                    st.forbidden.clear()
            return self.send_json(200, {"ok": True})
        if op in ("install", "uninstall"):
            r = resname()
            if RESOURCES[r].builtin:
                raise ApiError(400, "control: only custom resources can be (un)installed", "BadRequest")
            with st.cond:
                st.installed[r] = op == "install"
                if op == "uninstall":
                    st.objs[r] = {}
                st.rv += 1
                st.cond.notify_all()
            return self.send_json(200, {"resource": r, "installed": op == "install"})
        if op == "reset-stats":
            with st.cond:
                st.stats.clear()
                st.status_counts.clear()
                st.watches_total = 0
            return self.send_json(200, {"ok": True})
        raise ApiError(404, f"control: unknown operation {op}", "NotFound")


def installed_check(st: Store, res: Res) -> bool:
    return st.installed.get(res.name, False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN")
    ap.add_argument("--user", default=Config.user, help="user named in 403 messages")
    ap.add_argument("--bookmark-interval", type=float, default=2.0, help="seconds between BOOKMARKs")
    ap.add_argument("--history", type=int, default=10000,
                    help="events kept for watch replay (older RVs answer 410, like etcd compaction)")
    ap.add_argument("--git-version", default=Config.git_version)
    ap.add_argument("--minor", default=Config.minor, help='/version "minor" (EKS answers e.g. "33+")')
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.bundle):
        sys.exit(f"kube_apiserver: bundle {a.bundle} is not a directory")
    cfg = Config
    cfg.token, cfg.user, cfg.bookmark_interval = a.token, a.user, a.bookmark_interval
    cfg.git_version, cfg.minor, cfg.verbose = a.git_version, a.minor, a.verbose
    store = Store(a.history)
    try:
        store.load_bundle(a.bundle)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"kube_apiserver: cannot load {a.bundle}: {e}")
    srv = _common.make_server(a.port, KubeHandler, (store, cfg))

    def on_stop() -> None:
        with store.cond:
            for w in store.watches.values():
                w.killed = True
            store.cond.notify_all()

    _common.serve([("kube-apiserver", srv)], on_stop)


if __name__ == "__main__":
    main()
