#!/usr/bin/env python3
"""Fake AWS endpoint that answers every call with one configured error.

EC2 (Query protocol, XML errors) and CloudTrail (JSON 1.1, `__type` errors) are told apart by the
`X-Amz-Target` header, as the real services are. For fault tests of the exporter's collectors:

    python3 tests/fakes/aws_errors.py --port 0 --code RequestLimitExceeded --status 503

prints `LISTENING aws-errors 127.0.0.1:<port>` when ready; `GET /_control/stats` returns the number
of requests seen. Real codes and statuses: EC2 `RequestLimitExceeded` 503, `UnauthorizedOperation`
403, `InternalError` 500, `AuthFailure` 401; CloudTrail `ThrottlingException` 400,
`ExpiredTokenException` 400, `AccessDeniedException` 400.
"""
import argparse
import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATS = {"requests": 0}
LOCK = threading.Lock()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--code", required=True)
    ap.add_argument("--status", type=int, default=400)
    ap.add_argument("--message", default="injected by tests/fakes/aws_errors.py")
    a = ap.parse_args(argv)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, status, body, ctype):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.startswith("/_control/stats"):
                with LOCK:
                    return self._send(200, json.dumps(STATS), "application/json")
            self._send(404, "not found", "text/plain")

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            with LOCK:
                STATS["requests"] += 1
            if self.headers.get("X-Amz-Target"):
                body = json.dumps({"__type": a.code, "message": a.message})
                self._send(a.status, body, "application/x-amz-json-1.1")
            else:
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Response><Errors><Error><Code>{a.code}</Code><Message>{a.message}</Message></Error></Errors>"
                    f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
                )
                self._send(a.status, body, "text/xml;charset=UTF-8")

    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    print(f"LISTENING aws-errors 127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
