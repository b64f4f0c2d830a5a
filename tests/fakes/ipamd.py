#!/usr/bin/env python3
"""Fake ipamd (AWS VPC CNI) introspection + metrics servers for one node of a bundle.

    python3 tests/fakes/ipamd.py --bundle DIR --node NAME --introspection-port 0 --metrics-port 0
        [--shape wrapped|flat|flat-raw] [--mode ok|garbage|hang|huge|available-commands]
        [--metrics-mode ok|garbage|hang|huge|absent] [--eni-config NAME|--eni-config-404] [--synth-metrics]

Prints TWO lines when ready (one per socket, introspection first):
    LISTENING ipamd-introspection 127.0.0.1:<port>
    LISTENING ipamd-metrics 127.0.0.1:<port>
Exits 0 on SIGTERM.

Introspection (like pkg/ipamd/introspect.go, Go net/http):
* `/v1/enis`: the bytes of ipamd/<node>/enis.json as they are (compact, no trailing newline, `{"0":{...}}`).
  --shape flat serves the card-0 object bare AS ipamd v1.9-v1.19 DID: without RouteTableID,
  IsExcludedForPodIPs, SubnetID (v1.21/v1.22 fields) and interfacesCount (v1.20), and with containerID /
  ifName filled in for assigned addresses (scrubbing came in v1.23). --shape flat-raw only unwraps.
* `/v1/eni-configs`: a JSON string: --eni-config NAME, else the node's ENIConfig name as ipamd computes
  it (annotation ENI_CONFIG_ANNOTATION_DEF, else label ENI_CONFIG_LABEL_DEF, defaults
  `k8s.amazonaws.com/eniConfig`, from the aws-node pod on the node or the DaemonSet), else "default".
  --eni-config-404: `404 Not Found\\n` text (what ipamd answers when it cannot GET its node).
* `/v1/ipamd-env-settings`, `/v1/networkutils-env-settings`: derived from the aws-node env like ipamd.
* `/` and ANY other path: HTTP 200 `{"AvailableCommands":[...]}` in random order (Go map iteration).
* Responses carry `Content-Type: text/plain; charset=utf-8`: ipamd writes JSON without setting a
  content type, so Go sniffs it as text. Any method is accepted.
* Modes: garbage = 200 with truncated/invalid JSON; hang = read the request, never answer (until the
  client goes away or 600 s); huge = 200 with `Content-Length: 1073741824` and a never-ending JSON
  string streamed at --huge-rate MiB/s; available-commands = every path answers AvailableCommands.

Metrics (`:M/metrics`, promhttp): ipamd/<node>/metrics.txt, `text/plain; version=0.0.4; charset=utf-8`,
gzip-compressed when the request says `Accept-Encoding: gzip` (promhttp does that); 404
`404 page not found` when the bundle has no metrics.txt (or --metrics-mode absent) unless
--synth-metrics builds the pool gauges from enis.json. Other paths: Go's 404.

Control (on the introspection port, no auth): POST /_control/set (new enis JSON, wrapped or flat; re-
encoded like Go: compact, map keys sorted), POST /_control/metrics (text), POST /_control/mode
{"mode","metricsMode","shape","eniConfig","eniConfig404"}, GET /_control/stats, POST /_control/reset-stats.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import select
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

COMMANDS = ["/v1/enis", "/v1/eni-configs", "/v1/networkutils-env-settings", "/v1/ipamd-env-settings"]
GO_TEXT = "text/plain; charset=utf-8"
PROM_TEXT = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
MAP_LEVELS = {"ENIs", "AvailableIPv4Cidrs", "IPv6Cidrs", "IPAddresses"}
HUGE_LEN = 1 << 30


def go_encode(obj: Any) -> bytes:
    """Compact JSON like Go's encoding/json for /v1/enis: struct fields keep their order, the keys of
    map-typed fields (card index, ENIs, AvailableIPv4Cidrs, IPv6Cidrs, IPAddresses) are sorted as strings."""

    def norm(o: Any, key: str | None = None) -> Any:
        if isinstance(o, dict):
            if key in MAP_LEVELS:
                return {k: norm(v) for k, v in sorted(o.items())}
            return {k: norm(v, k) for k, v in o.items()}
        if isinstance(o, list):
            return [norm(x) for x in o]
        return o

    if isinstance(obj, dict) and obj and all(k.isdigit() for k in obj):
        out = {k: norm(v) for k, v in sorted(obj.items())}
    else:
        out = norm(obj)
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()


def wrap(enis: Any) -> dict:
    if isinstance(enis, dict) and "TotalIPs" in enis:
        return {"0": enis}
    return enis


def flat_v119(wrapped: dict) -> dict:
    card = json.loads(json.dumps(wrapped.get("0") or next(iter(wrapped.values()), {})))
    for eni in (card.get("ENIs") or {}).values():
        for k in ("IsExcludedForPodIPs", "RouteTableID", "SubnetID"):
            eni.pop(k, None)
        for fam in ("AvailableIPv4Cidrs", "IPv6Cidrs"):
            for cidr in (eni.get(fam) or {}).values():
                for addr in (cidr.get("IPAddresses") or {}).values():
                    md = addr.get("IPAMMetadata") or {}
                    md.pop("interfacesCount", None)
                    key = addr.get("IPAMKey") or {}
                    if key.get("networkName"):
                        seed = f"{md.get('k8sPodNamespace')}/{md.get('k8sPodName')}/{addr.get('Address')}"
                        key["containerID"] = hashlib.sha256(seed.encode()).hexdigest()
                        key["ifName"] = "eth0"
    return card


def synth_metrics(wrapped: dict) -> str:
    total = assigned = enis = 0
    per_eni: dict[str, int] = {}
    for card in wrapped.values():
        total += int(card.get("TotalIPs", 0))
        assigned += int(card.get("AssignedIPs", 0))
        for eid, eni in (card.get("ENIs") or {}).items():
            enis += 1
            n = 0
            for cidr in (eni.get("AvailableIPv4Cidrs") or {}).values():
                for a in (cidr.get("IPAddresses") or {}).values():
                    if (a.get("IPAMKey") or {}).get("networkName"):
                        n += 1
            per_eni[eid] = n
    lines = [
        "# HELP awscni_assigned_ip_addresses The number of IP addresses assigned to pods",
        "# TYPE awscni_assigned_ip_addresses gauge", f"awscni_assigned_ip_addresses {assigned}",
        "# HELP awscni_assigned_ip_per_eni The number of allocated ips partitioned by eni",
        "# TYPE awscni_assigned_ip_per_eni gauge",
        *[f'awscni_assigned_ip_per_eni{{eni="{e}"}} {n}' for e, n in sorted(per_eni.items())],
        "# HELP awscni_eni_allocated The number of ENIs allocated", "# TYPE awscni_eni_allocated gauge",
        f"awscni_eni_allocated {enis}",
        "# HELP awscni_total_ip_addresses The total number of IP addresses",
        "# TYPE awscni_total_ip_addresses gauge", f"awscni_total_ip_addresses {total}",
    ]
    return "\n".join(lines) + "\n"


def _env_of(bundle: str, node: str) -> dict[str, str]:
    """aws-node container env: the aws-node pod on the node, else the DaemonSet template."""
    def env_list(spec: dict) -> dict[str, str]:
        for c in spec.get("containers") or []:
            if c.get("name") == "aws-node":
                return {e["name"]: e.get("value", "") for e in c.get("env") or [] if "value" in e}
        return {}

    try:
        with open(os.path.join(bundle, "kubernetes", "pods.json"), encoding="utf-8") as f:
            for p in json.load(f).get("items") or []:
                if (p.get("spec") or {}).get("nodeName") == node and \
                        (p.get("metadata") or {}).get("name", "").startswith("aws-node-"):
                    env = env_list(p["spec"])
                    if env:
                        return env
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(bundle, "kubernetes", "daemonsets.json"), encoding="utf-8") as f:
            for ds in json.load(f).get("items") or []:
                if ds["metadata"]["name"] == "aws-node":
                    return env_list(ds["spec"]["template"]["spec"])
    except (OSError, ValueError, KeyError):
        pass
    return {}


def _parse_bool(s: str | None, default: bool) -> bool:
    if s is None:
        return default
    v = s.strip()
    if v in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if v in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return default


def _atoi(s: str | None, default: int) -> int:
    try:
        return int(s) if s is not None else default
    except ValueError:
        return default


def env_settings(env: dict[str, str]) -> tuple[dict, dict]:
    warm_ip = _atoi(env.get("WARM_IP_TARGET"), 0)
    ipamd = {
        "AWS_MANAGE_ENIS_NON_SCHEDULABLE": _parse_bool(env.get("AWS_MANAGE_ENIS_NON_SCHEDULABLE"), False),
        "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": _parse_bool(env.get("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"), False),
        "ENABLE_SUBNET_DISCOVERY": _parse_bool(env.get("ENABLE_SUBNET_DISCOVERY"), True),
        "WARM_ENI_TARGET": max(_atoi(env.get("WARM_ENI_TARGET"), 1), 0),
        "WARM_IP_TARGET": warm_ip if warm_ip > 0 else 0,
    }
    snat = {"none": 0, "hashrandom": 1, "prng": 2}.get(env.get("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "prng"), 2)

    def cidrs(k: str) -> list[str] | None:
        v = env.get(k, "")
        return [x.strip() for x in v.split(",") if x.strip()] or None

    net = {
        "AWS_EXTERNAL_SERVICE_CIDRS": cidrs("AWS_EXTERNAL_SERVICE_CIDRS"),
        "AWS_VPC_CNI_NODE_PORT_SUPPORT": _parse_bool(env.get("AWS_VPC_CNI_NODE_PORT_SUPPORT"), True),
        "AWS_VPC_ENI_MTU": _atoi(env.get("AWS_VPC_ENI_MTU"), 9001),
        "AWS_VPC_K8S_CNI_CONNMARK": _atoi(env.get("AWS_VPC_K8S_CNI_CONNMARK"), 128),
        "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": cidrs("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"),
        "AWS_VPC_K8S_CNI_EXTERNALSNAT": _parse_bool(env.get("AWS_VPC_K8S_CNI_EXTERNALSNAT"), False),
        "AWS_VPC_K8S_CNI_RANDOMIZESNAT": snat,
        "AWS_VPC_K8S_CNI_VETHPREFIX": env.get("AWS_VPC_K8S_CNI_VETHPREFIX", "eni"),
    }
    return ipamd, net


def eni_config_name(bundle: str, node: str, env: dict[str, str]) -> str:
    label_def = env.get("ENI_CONFIG_LABEL_DEF") or "k8s.amazonaws.com/eniConfig"
    ann_def = env.get("ENI_CONFIG_ANNOTATION_DEF") or "k8s.amazonaws.com/eniConfig"
    try:
        with open(os.path.join(bundle, "kubernetes", "nodes.json"), encoding="utf-8") as f:
            for n in json.load(f).get("items") or []:
                md = n.get("metadata") or {}
                if md.get("name") != node:
                    continue
                name = (md.get("labels") or {}).get(label_def, "")
                name = (md.get("annotations") or {}).get(ann_def, name)
                return name or "default"
    except (OSError, ValueError):
        pass
    return "default"


class State:
    def __init__(self, a: argparse.Namespace, node_dir: str, node: str):
        self.lock = threading.Lock()
        self.node = node
        with open(os.path.join(node_dir, "enis.json"), "rb") as f:
            self.enis_raw = f.read()
        self.enis = wrap(json.loads(self.enis_raw))
        mpath = os.path.join(node_dir, "metrics.txt")
        self.metrics: str | None = None
        if os.path.exists(mpath):
            with open(mpath, encoding="utf-8") as f:
                self.metrics = f.read()
        self.synth = a.synth_metrics
        self.shape = a.shape
        self.mode = a.mode
        self.metrics_mode = a.metrics_mode
        env = _env_of(a.bundle, node)
        self.env_ipamd, self.env_net = env_settings(env)
        self.eni_config = a.eni_config or eni_config_name(a.bundle, node, env)
        self.eni_config_404 = a.eni_config_404
        self.huge_rate = a.huge_rate
        self.verbose = a.verbose
        self.requests: dict[str, int] = {}
        self.hanging = 0
        self.streaming = 0

    def enis_body(self) -> bytes:
        if self.shape == "wrapped":
            return self.enis_raw
        if self.shape == "flat-raw":
            return go_encode(self.enis.get("0") or next(iter(self.enis.values())))
        return go_encode(flat_v119(self.enis))

    def metrics_body(self) -> str | None:
        if self.metrics is not None:
            return self.metrics
        if self.synth:
            return synth_metrics(self.enis)
        return None


class Base(_common.Handler):
    server_version = ""

    def send_response(self, code: int, message: str | None = None) -> None:
        # Go's net/http sends no Server header; BaseHTTPRequestHandler always would.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    @property
    def st(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.st.verbose:
            super().log_message(format, *args)

    def count(self, key: str) -> None:
        with self.st.lock:
            self.st.requests[key] = self.st.requests.get(key, 0) + 1

    def go_404(self) -> None:
        self.send_bytes(404, b"404 page not found\n", GO_TEXT, {"X-Content-Type-Options": "nosniff"})

    def hang(self) -> None:
        with self.st.lock:
            self.st.hanging += 1
        try:
            deadline = time.time() + 600
            while time.time() < deadline and not self.server.stopping.is_set():  # type: ignore[attr-defined]
                r, _, _ = select.select([self.connection], [], [], 0.2)
                if r:
                    try:
                        if not self.connection.recv(1 << 16):
                            break  # client closed
                    except OSError:
                        break
        finally:
            with self.st.lock:
                self.st.hanging -= 1
            self.close_connection = True

    def huge(self, ctype: str) -> None:
        with self.st.lock:
            self.st.streaming += 1
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(HUGE_LEN))
            self.end_headers()
            head = b'{"0":{"TotalIPs":1,"AssignedIPs":0,"ENIs":{},"Padding":"'
            self.wfile.write(head)
            sent = len(head)
            block = b"A" * 65536
            per_sec = max(1.0, self.st.huge_rate) * (1 << 20)
            t0 = time.time()
            while sent + len(block) < HUGE_LEN and not self.server.stopping.is_set():  # type: ignore[attr-defined]
                self.wfile.write(block)
                sent += len(block)
                ahead = sent / per_sec - (time.time() - t0)
                if ahead > 0:
                    time.sleep(min(ahead, 0.5))
        except OSError:
            pass
        finally:
            with self.st.lock:
                self.st.streaming -= 1

    def garbage(self) -> None:
        body = self.st.enis_raw[: max(10, len(self.st.enis_raw) // 3)] + b'\x00\xff"}}garbage'
        self.send_bytes(200, body, GO_TEXT)


class IntrospectionHandler(Base):
    def do_GET(self) -> None:  # noqa: N802
        self.handle_any()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET  # noqa: N815

    def handle_any(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/_control/"):
            return self.control(path)
        if self.command not in ("GET", "HEAD"):
            self.read_body()  # keep the connection in sync
        self.count(path)
        st = self.st
        mode = st.mode
        if mode == "hang":
            return self.hang()
        if mode == "huge":
            return self.huge(GO_TEXT)
        if mode == "garbage":
            return self.garbage()
        if mode == "available-commands" or path not in COMMANDS:
            cmds = COMMANDS[:]
            random.shuffle(cmds)
            return self.send_bytes(200, json.dumps({"AvailableCommands": cmds}, separators=(",", ":")).encode(),
                                   GO_TEXT)
        with st.lock:
            if path == "/v1/enis":
                body = st.enis_body()
            elif path == "/v1/eni-configs":
                if st.eni_config_404:
                    return self.send_bytes(404, b"Not Found\n", GO_TEXT)
                body = json.dumps(st.eni_config).encode()
            elif path == "/v1/ipamd-env-settings":
                body = json.dumps(st.env_ipamd, separators=(",", ":")).encode()
            else:
                body = json.dumps(st.env_net, separators=(",", ":")).encode()
        self.send_bytes(200, body, GO_TEXT)

    def control(self, path: str) -> None:
        st = self.st
        op = path[len("/_control/"):]
        if self.command == "GET" and op == "stats":
            with st.lock:
                out = {"requests": dict(st.requests), "hanging": st.hanging, "streaming": st.streaming,
                       "mode": st.mode, "metricsMode": st.metrics_mode, "shape": st.shape,
                       "eniConfig": st.eni_config, "node": st.node}
            return self.send_json(200, out)
        if self.command != "POST":
            return self.send_json(405, {"error": "use POST"})
        body = self.read_body()
        if op == "set":
            try:
                doc = wrap(json.loads(body))
                if not isinstance(doc, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                return self.send_json(400, {"error": f"invalid enis JSON: {e}"})
            with st.lock:
                st.enis = doc
                st.enis_raw = go_encode(doc)
            return self.send_json(200, {"ok": True, "bytes": len(st.enis_raw)})
        if op == "metrics":
            with st.lock:
                st.metrics = body.decode("utf-8", "replace")
            return self.send_json(200, {"ok": True})
        if op == "mode":
            try:
                doc = json.loads(body or b"{}")
            except ValueError as e:
                return self.send_json(400, {"error": str(e)})
            with st.lock:
                if "mode" in doc:
                    st.mode = doc["mode"]
                if "metricsMode" in doc:
                    st.metrics_mode = doc["metricsMode"]
                if "shape" in doc:
                    st.shape = doc["shape"]
                if "eniConfig" in doc:
                    st.eni_config = doc["eniConfig"]
                if "eniConfig404" in doc:
                    st.eni_config_404 = bool(doc["eniConfig404"])
            return self.send_json(200, {"ok": True})
        if op == "reset-stats":
            with st.lock:
                st.requests.clear()
            return self.send_json(200, {"ok": True})
        self.send_json(404, {"error": f"unknown control operation {op}"})


class MetricsHandler(Base):
    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if self.command not in ("GET", "HEAD"):
            self.read_body()
        self.count("metrics:" + path)
        if path != "/metrics":
            return self.go_404()
        st = self.st
        mode = st.metrics_mode
        if mode == "hang":
            return self.hang()
        if mode == "huge":
            return self.huge(PROM_TEXT)
        if mode == "garbage":
            return self.send_bytes(200, b"awscni_total_ip_addresses{{{ not prometheus\n\x00\xff", PROM_TEXT)
        with st.lock:
            text = None if mode == "absent" else st.metrics_body()
        if text is None:
            return self.go_404()
        body = text.encode()
        if "gzip" in (self.headers.get("Accept-Encoding") or ""):
            return self.send_bytes(200, gzip.compress(body), PROM_TEXT, {"Content-Encoding": "gzip"})
        self.send_bytes(200, body, PROM_TEXT)

    do_POST = do_HEAD = do_GET  # noqa: N815


def resolve_node_dir(bundle: str, node: str) -> tuple[str, str]:
    base = os.path.join(bundle, "ipamd")
    exact = os.path.join(base, node)
    if os.path.isfile(os.path.join(exact, "enis.json")):
        return exact, node
    if os.path.isdir(base):
        for d in sorted(os.listdir(base)):
            if d.startswith(node + ".") and os.path.isfile(os.path.join(base, d, "enis.json")):
                return os.path.join(base, d), d
    sys.exit(f"ipamd: no {base}/{node}/enis.json")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--node", required=True, help="node name (directory under ipamd/; a short prefix works)")
    ap.add_argument("--introspection-port", type=int, default=0)
    ap.add_argument("--metrics-port", type=int, default=0)
    ap.add_argument("--shape", choices=["wrapped", "flat", "flat-raw"], default="wrapped")
    ap.add_argument("--mode", choices=["ok", "garbage", "hang", "huge", "available-commands"], default="ok")
    ap.add_argument("--metrics-mode", choices=["ok", "garbage", "hang", "huge", "absent"], default="ok")
    ap.add_argument("--eni-config", default=None)
    ap.add_argument("--eni-config-404", action="store_true")
    ap.add_argument("--synth-metrics", action="store_true",
                    help="without metrics.txt, serve pool gauges built from enis.json instead of 404")
    ap.add_argument("--huge-rate", type=float, default=16.0, help="MiB/s in huge mode")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    node_dir, node = resolve_node_dir(a.bundle, a.node)
    try:
        st = State(a, node_dir, node)
    except (OSError, ValueError) as e:
        sys.exit(f"ipamd: cannot load {node_dir}: {e}")
    intro = _common.make_server(a.introspection_port, IntrospectionHandler, st)
    metrics = _common.make_server(a.metrics_port, MetricsHandler, st)
    _common.serve([("ipamd-introspection", intro), ("ipamd-metrics", metrics)])


if __name__ == "__main__":
    main()
