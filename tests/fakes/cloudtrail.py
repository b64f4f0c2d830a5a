#!/usr/bin/env python3
"""Fake AWS CloudTrail LookupEvents endpoint (AWS JSON 1.1) serving a bundle's cloudtrail/*.json.

    python3 tests/fakes/cloudtrail.py --bundle DIR --port 0 [--page-size 50] [--throttle-every K]
        [--fail-every K] [--delay-seconds D] [--rate-limit R] [--latency-seconds L]
        [--epoch-format sci|float|int] [--namespaced-errors] [--no-auth-check]

Prints `LISTENING cloudtrail 127.0.0.1:<port>`; exits 0 on SIGTERM. Point aws-sdk-cloudtrail / boto3 at
it with endpoint_url=http://127.0.0.1:<port> (any region, any credentials).

Wire behaviour (see reference/notes/aws-apis.md section 1):
* `POST /`, `X-Amz-Target: ...LookupEvents` (long `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.`
  or short `CloudTrail_20131101.` prefix); any other target -> 400 UnknownOperationException.
* A SigV4 `Authorization` header is required (400 MissingAuthenticationTokenException otherwise) unless
  --no-auth-check; signatures are not verified.
* Events are the bundle's (AWS CLI format, RFC 3339 EventTime), de-duplicated by EventId, newest first
  (EventTime desc, then EventId). On the wire EventTime is an epoch NUMBER; by default it is written the
  way Coral/Java services write doubles, e.g. `1.787218867E9` (--epoch-format float -> 1787218867.0,
  int -> 1787218867). CloudTrailEvent stays a JSON string; ReadOnly a string "true"/"false".
* LookupAttributes: at most one (more -> 400 InvalidLookupAttributesException); AttributeKey one of
  EventId EventName ReadOnly Username ResourceType ResourceName EventSource AccessKeyId (else 400
  ValidationException). StartTime/EndTime inclusive epoch numbers (StartTime > EndTime -> 400
  InvalidTimeRangeException). MaxResults 1..50, default 50 (else 400 InvalidMaxResultsException);
  the server never returns more than --page-size per page. EventCategory=insight -> no events.
* NextToken: opaque; a cursor (EventTime, EventId) bound to a hash of LookupAttributes, StartTime,
  EndTime, EventCategory. Reusing it with different parameters -> 400 InvalidNextTokenException
  (MaxResults may change between pages). Events appended later never shift pages already read.
* --delay-seconds D: an event is visible only once now >= EventTime + D (CloudTrail delivers late).
  `POST /_control/append?visibleAfter=S` makes the appended events visible S seconds from now instead,
  whatever their EventTime (an old event that shows up late).
* --throttle-every K: every K-th LookupEvents request -> 400 {"__type":"ThrottlingException",
  "message":"Rate exceeded"}; --fail-every K -> 500 {"__type":"InternalServerError",...}.
  --rate-limit R: requests beyond R within any sliding 1 s window are throttled too (the real account
  limit is 2/s; off by default so timing noise cannot fail tests).
* --latency-seconds L: every LookupEvents answer is delayed by L s (real calls take 0.2 s .. 35 s).

Control API (no auth): GET /_control/stats; POST /_control/append (one event in CLI format, a list, or
{"Events":[...]}); POST /_control/config {"throttle_every","fail_every","delay_seconds","rate_limit",
"latency_seconds","page_size","epoch_format"}; POST /_control/reset-stats.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import glob
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

ATTRIBUTE_KEYS = ["EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName",
                  "EventSource", "AccessKeyId"]
WIRE_ORDER = ["EventId", "EventName", "ReadOnly", "AccessKeyId", "EventTime", "EventSource", "Username",
              "Resources", "CloudTrailEvent"]
ERROR_NS = {
    "ThrottlingException": "com.amazon.coral.availability#ThrottlingException",
    "InternalServerError": "com.amazon.coral.service#InternalFailure",
}


def parse_time(v: Any) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip()
    try:
        return float(s)
    except ValueError:
        pass
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    # fromisoformat in 3.11 handles fractions of any length and offsets
    t = dt.datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


def format_epoch(t: float, fmt: str) -> Any:
    """Return a value json.dumps writes as wanted (sci format via a marker replaced later)."""
    if fmt == "int":
        return int(t)
    if fmt == "float":
        return float(t)
    return SciNumber(t)


class SciNumber(float):
    """A float written like Java's Double.toString for large values: 1.787218867E9."""

    def sci(self) -> str:
        d = Decimal(repr(float(self)))
        if d == 0:
            return "0.0"
        sign, digits, exp = d.normalize().as_tuple()
        s = "".join(map(str, digits))
        e10 = len(s) - 1 + exp  # type: ignore[operator]
        mant = s[0] + "." + (s[1:] or "0")
        return ("-" if sign else "") + mant + "E" + str(e10)


def dumps(obj: Any) -> str:
    """json.dumps with SciNumber support (compact)."""
    markers: dict[str, str] = {}

    def conv(o: Any) -> Any:
        if isinstance(o, SciNumber):
            k = f"@@SCI{len(markers)}@@"
            markers[k] = o.sci()
            return k
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        if isinstance(o, list):
            return [conv(v) for v in o]
        return o

    s = json.dumps(conv(obj), separators=(",", ":"))
    for k, v in markers.items():
        s = s.replace(f'"{k}"', v)
    return s


class Event:
    __slots__ = ("raw", "id", "time", "visible_at", "seq")

    def __init__(self, raw: dict, visible_at: float | None, seq: int):
        self.raw = raw
        self.id = str(raw.get("EventId") or uuid.uuid4())
        raw["EventId"] = self.id
        self.time = parse_time(raw["EventTime"])
        self.visible_at = visible_at
        self.seq = seq

    def sort_key(self) -> tuple[float, str]:
        return (self.time, self.id)

    def attr(self, key: str) -> list[str]:
        r = self.raw
        if key == "ResourceType":
            return [x.get("ResourceType", "") for x in r.get("Resources") or []]
        if key == "ResourceName":
            return [x.get("ResourceName", "") for x in r.get("Resources") or []]
        v = r.get(key)
        if v is None:
            return []
        if isinstance(v, bool):
            v = "true" if v else "false"
        return [str(v)]

    def wire(self, fmt: str) -> dict:
        out: dict[str, Any] = {}
        for k in WIRE_ORDER:
            if k not in self.raw or self.raw[k] is None:
                continue
            v = self.raw[k]
            if k == "EventTime":
                v = format_epoch(self.time, fmt)
            elif k == "ReadOnly" and isinstance(v, bool):
                v = "true" if v else "false"
            elif k == "CloudTrailEvent" and not isinstance(v, str):
                v = json.dumps(v, separators=(",", ":"))
            out[k] = v
        return out


class State:
    def __init__(self, a: argparse.Namespace):
        self.lock = threading.Lock()
        self.events: dict[str, Event] = {}
        self.seq = 0
        self.page_size = a.page_size
        self.throttle_every = a.throttle_every
        self.fail_every = a.fail_every
        self.delay_seconds = a.delay_seconds
        self.rate_limit = a.rate_limit
        self.latency_seconds = a.latency_seconds
        self.epoch_format = a.epoch_format
        self.namespaced_errors = a.namespaced_errors
        self.auth_check = not a.no_auth_check
        self.verbose = a.verbose
        self.reset_stats()

    def reset_stats(self) -> None:
        self.n = 0
        self.stamps: list[float] = []
        self.throttled = 0
        self.rate_throttled = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.by_name: dict[str, int] = {}
        self.by_attr: dict[str, int] = {}
        self.pages_with_token = 0
        self.events_returned = 0
        self.regions: dict[str, int] = {}

    def add(self, raw: dict, visible_at: float | None = None) -> Event:
        self.seq += 1
        ev = Event(dict(raw), visible_at, self.seq)
        self.events[ev.id] = ev
        return ev

    def load(self, bundle: str) -> int:
        files = sorted(glob.glob(os.path.join(bundle, "cloudtrail", "*.json")))
        for f in files:
            with open(f, encoding="utf-8") as fh:
                doc = json.load(fh)
            evs = doc.get("Events") if isinstance(doc, dict) else doc
            for e in evs or []:
                self.add(e)
        return len(self.events)

    def visible(self, ev: Event, now: float) -> bool:
        if ev.visible_at is not None:
            return now >= ev.visible_at
        return now >= ev.time + self.delay_seconds

    def max_rate(self) -> int:
        best, j = 0, 0
        s = self.stamps
        for i in range(len(s)):
            while s[i] - s[j] >= 1.0:
                j += 1
            best = max(best, i - j + 1)
        return best


class ClientError(Exception):
    def __init__(self, code: int, typ: str, message: str):
        super().__init__(message)
        self.code, self.typ, self.message = code, typ, message


def params_hash(req: dict) -> str:
    h = {k: req.get(k) for k in ("LookupAttributes", "StartTime", "EndTime", "EventCategory")}
    return hashlib.sha256(json.dumps(h, sort_keys=True).encode()).hexdigest()[:24]


def encode_token(ph: str, ev: Event) -> str:
    raw = json.dumps({"h": ph, "t": ev.time, "i": ev.id, "n": uuid.uuid4().hex[:8]}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_token(tok: str) -> dict:
    try:
        d = json.loads(base64.b64decode(tok, validate=True))
        float(d["t"])
        str(d["i"])
        return d
    except Exception:  # noqa: BLE001
        raise ClientError(400, "InvalidNextTokenException", "Invalid NextToken") from None


class CTHandler(_common.Handler):
    server_version = "Server"

    @property
    def st(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.st.verbose:
            super().log_message(format, *args)

    def _send_err(self, e: ClientError) -> None:
        typ = ERROR_NS.get(e.typ, e.typ) if self.st.namespaced_errors else e.typ
        body = {"__type": typ, "message": e.message}
        self.send_bytes(e.code, json.dumps(body, separators=(",", ":")).encode(), "application/x-amz-json-1.1",
                        {"x-amzn-RequestId": str(uuid.uuid4())})

    def do_GET(self) -> None:  # noqa: N802
        u = urlsplit(self.path)
        if u.path == "/_control/stats":
            st = self.st
            with st.lock:
                now = time.time()
                out = {
                    "requests": st.n,
                    "maxRequestsPerSecond": st.max_rate(),
                    "requestsLast60s": sum(1 for t in st.stamps if now - t <= 60.0),
                    "throttled": st.throttled,
                    "rateLimited": st.rate_throttled,
                    "failed": st.failed,
                    "errors": dict(st.errors),
                    "byEventName": dict(st.by_name),
                    "byAttributeKey": dict(st.by_attr),
                    "pagesWithNextToken": st.pages_with_token,
                    "eventsReturned": st.events_returned,
                    "regions": dict(st.regions),
                    "events": len(st.events),
                    "visibleEvents": sum(1 for e in st.events.values() if st.visible(e, now)),
                    "firstRequestAt": st.stamps[0] if st.stamps else None,
                    "lastRequestAt": st.stamps[-1] if st.stamps else None,
                    "config": {"page_size": st.page_size, "throttle_every": st.throttle_every,
                               "fail_every": st.fail_every, "delay_seconds": st.delay_seconds,
                               "rate_limit": st.rate_limit, "latency_seconds": st.latency_seconds,
                               "epoch_format": st.epoch_format},
                }
            return self.send_json(200, out)
        self._send_err(ClientError(404, "UnknownOperationException", "Unknown operation"))

    def do_POST(self) -> None:  # noqa: N802
        u = urlsplit(self.path)
        try:
            body = self.read_body()
        except (ValueError, OSError):
            return self._send_err(ClientError(400, "SerializationException", "bad body"))
        if u.path.startswith("/_control/"):
            return self._control(u.path, parse_qs(u.query), body)
        try:
            self._lookup(body)
        except ClientError as e:
            with self.st.lock:
                self.st.errors[e.typ] = self.st.errors.get(e.typ, 0) + 1
            self._send_err(e)

    def _lookup(self, body: bytes) -> None:
        st = self.st
        target = self.headers.get("X-Amz-Target", "")
        if not target.endswith(".LookupEvents"):
            raise ClientError(400, "UnknownOperationException", f"Operation {target or '(none)'} is not supported.")
        if st.auth_check:
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("AWS4-HMAC-SHA256"):
                raise ClientError(400, "MissingAuthenticationTokenException", "Missing Authentication Token")
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError
        except ValueError:
            raise ClientError(400, "SerializationException", "Start of structure or map found where not expected")
        now = time.time()
        with st.lock:
            st.n += 1
            n = st.n
            st.stamps.append(now)
            if len(st.stamps) > 200000:
                del st.stamps[:100000]
            auth = self.headers.get("Authorization", "")
            if "Credential=" in auth:
                try:
                    region = auth.split("Credential=")[1].split("/")[2]
                    st.regions[region] = st.regions.get(region, 0) + 1
                except IndexError:
                    pass
            attrs = req.get("LookupAttributes") or []
            for a in attrs if isinstance(attrs, list) else []:
                if isinstance(a, dict):
                    k = a.get("AttributeKey", "?")
                    st.by_attr[k] = st.by_attr.get(k, 0) + 1
                    if k == "EventName":
                        v = str(a.get("AttributeValue"))
                        st.by_name[v] = st.by_name.get(v, 0) + 1
            if not attrs:
                st.by_name["(none)"] = st.by_name.get("(none)", 0) + 1
            throttle = bool(st.throttle_every and n % st.throttle_every == 0)
            if not throttle and st.rate_limit:
                recent = sum(1 for t in st.stamps[-(int(st.rate_limit) + 2):] if now - t < 1.0)
                if recent > st.rate_limit:
                    throttle = True
                    st.rate_throttled += 1
            fail = bool(not throttle and st.fail_every and n % st.fail_every == 0)
            if throttle:
                st.throttled += 1
            if fail:
                st.failed += 1
            latency = st.latency_seconds
        if latency:
            time.sleep(min(latency, 60.0))
        if throttle:
            raise ClientError(400, "ThrottlingException", "Rate exceeded")
        if fail:
            raise ClientError(500, "InternalServerError", "We encountered an internal error. Please try again.")
        self._answer(req)

    def _answer(self, req: dict) -> None:
        st = self.st
        attrs = req.get("LookupAttributes") or []
        if not isinstance(attrs, list):
            raise ClientError(400, "SerializationException", "LookupAttributes must be a list")
        if len(attrs) > 1:
            raise ClientError(400, "InvalidLookupAttributesException",
                              "You cannot specify more than one lookup attribute in a lookup request.")
        key = val = None
        if attrs:
            a = attrs[0]
            key, val = a.get("AttributeKey"), a.get("AttributeValue")
            if key not in ATTRIBUTE_KEYS:
                raise ClientError(400, "ValidationException",
                                  f"1 validation error detected: Value '{key}' at 'lookupAttributes.1.member."
                                  f"attributeKey' failed to satisfy constraint: Member must satisfy enum value set: "
                                  f"[{', '.join(ATTRIBUTE_KEYS)}]")
            if not isinstance(val, str) or not val:
                raise ClientError(400, "InvalidLookupAttributesException",
                                  "The attribute value must not be empty.")
        try:
            start = float(req["StartTime"]) if req.get("StartTime") is not None else None
            end = float(req["EndTime"]) if req.get("EndTime") is not None else None
        except (TypeError, ValueError):
            raise ClientError(400, "SerializationException", "StartTime/EndTime must be epoch numbers") from None
        if start is not None and end is not None and start > end:
            raise ClientError(400, "InvalidTimeRangeException",
                              "Start time must be less than or equal to end time.")
        mr = req.get("MaxResults")
        if mr is None:
            max_results = 50
        else:
            if not isinstance(mr, int) or isinstance(mr, bool) or mr < 1 or mr > 50:
                raise ClientError(400, "InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
            max_results = mr
        ph = params_hash(req)
        cursor = None
        if req.get("NextToken") is not None:
            tok = decode_token(str(req["NextToken"]))
            if tok.get("h") != ph:
                raise ClientError(400, "InvalidNextTokenException",
                                  "The token must be passed in with the same parameters that were specified "
                                  "in the original call.")
            cursor = (float(tok["t"]), str(tok["i"]))
        now = time.time()
        with st.lock:
            page = min(max_results, st.page_size)
            fmt = st.epoch_format
            if req.get("EventCategory") == "insight":
                matched: list[Event] = []
            else:
                matched = []
                for ev in st.events.values():
                    if not st.visible(ev, now):
                        continue
                    if start is not None and ev.time < start:
                        continue
                    if end is not None and ev.time > end:
                        continue
                    if key is not None and val not in ev.attr(key):
                        continue
                    if cursor is not None and ev.sort_key() >= cursor:
                        continue
                    matched.append(ev)
            matched.sort(key=lambda e: e.sort_key(), reverse=True)
            out = matched[:page]
            resp: dict[str, Any] = {"Events": [e.wire(fmt) for e in out]}
            if len(matched) > page:
                resp["NextToken"] = encode_token(ph, out[-1])
                st.pages_with_token += 1
            st.events_returned += len(out)
        self.send_bytes(200, dumps(resp).encode(), "application/x-amz-json-1.1",
                        {"x-amzn-RequestId": str(uuid.uuid4())})

    def _control(self, path: str, q: dict[str, list[str]], body: bytes) -> None:
        st = self.st
        try:
            doc = json.loads(body or b"{}")
        except ValueError as e:
            return self.send_json(400, {"error": f"invalid JSON: {e}"})
        op = path[len("/_control/"):]
        if op == "append":
            if isinstance(doc, dict) and "Events" in doc:
                evs = doc["Events"]
            elif isinstance(doc, list):
                evs = doc
            else:
                evs = [doc]
            vis = None
            if q.get("visibleAfter"):
                vis = time.time() + float(q["visibleAfter"][-1])
            ids = []
            try:
                with st.lock:
                    for e in evs:
                        ids.append(st.add(e, vis).id)
            except (KeyError, ValueError, TypeError) as e:
                return self.send_json(400, {"error": f"bad event: {e!r}"})
            return self.send_json(200, {"appended": ids, "events": len(st.events)})
        if op == "config":
            with st.lock:
                for k in ("throttle_every", "fail_every", "page_size"):
                    if k in doc:
                        setattr(st, k, int(doc[k] or 0))
                for k in ("delay_seconds", "rate_limit", "latency_seconds"):
                    if k in doc:
                        setattr(st, k, float(doc[k] or 0))
                if "epoch_format" in doc:
                    st.epoch_format = str(doc["epoch_format"])
                if "namespaced_errors" in doc:
                    st.namespaced_errors = bool(doc["namespaced_errors"])
            return self.send_json(200, {"ok": True})
        if op == "reset-stats":
            with st.lock:
                st.reset_stats()
            return self.send_json(200, {"ok": True})
        self.send_json(404, {"error": f"unknown control operation {op}"})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--page-size", type=int, default=50)
    ap.add_argument("--throttle-every", type=int, default=0)
    ap.add_argument("--fail-every", type=int, default=0)
    ap.add_argument("--delay-seconds", type=float, default=0.0)
    ap.add_argument("--rate-limit", type=float, default=0.0, help="throttle above R requests per 1 s window")
    ap.add_argument("--latency-seconds", type=float, default=0.0)
    ap.add_argument("--epoch-format", choices=["sci", "float", "int"], default="sci")
    ap.add_argument("--namespaced-errors", action="store_true",
                    help='__type like "com.amazon.coral.availability#ThrottlingException"')
    ap.add_argument("--no-auth-check", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    if not 1 <= a.page_size <= 50:
        sys.exit("cloudtrail: --page-size must be 1..50")
    st = State(a)
    try:
        st.load(a.bundle)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"cloudtrail: cannot load {a.bundle}/cloudtrail: {e}")
    srv = _common.make_server(a.port, CTHandler, st)
    _common.serve([("cloudtrail", srv)])


if __name__ == "__main__":
    main()
