"""Shared plumbing for the fake servers in tests/fakes/ (stdlib only).

Every fake:
* binds 127.0.0.1 only; `--port 0` picks a free port;
* prints exactly one line `LISTENING <name> 127.0.0.1:<port>` per listening socket, flushed, once
  it accepts connections (the ipamd fake has two sockets, so it prints two lines);
* exits 0 on SIGTERM / SIGINT, without waiting for hung or streaming connections.
"""
from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that never blocks on close and tracks open connections."""

    daemon_threads = True
    block_on_close = False  # server_close() must not join hung/streaming handler threads
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], state: Any = None):
        self.state = state
        self.stopping = threading.Event()
        self._conns_lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        super().__init__(addr, handler)

    # socketserver hooks ---------------------------------------------------------------------
    def process_request(self, request, client_address):  # type: ignore[override]
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[override]
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):  # type: ignore[override]
        # Clients dropping connections (timeouts, bounded reads) are normal here: stay quiet.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)

    def kill_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(BaseHTTPRequestHandler):
    """Base handler: HTTP/1.1, quiet logs, JSON helpers, bounded body reads."""

    protocol_version = "HTTP/1.1"
    server_version = "fake"
    sys_version = ""
    verbose = False
    max_body = 64 * 1024 * 1024

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.verbose:
            sys.stderr.write("%s %s\n" % (self.address_string(), format % args))

    def read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        if n > self.max_body:
            raise ValueError("body too large")
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(n - len(data))
            if not chunk:
                break
            data += chunk
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = self._read_chunked()
        return data

    def _read_chunked(self) -> bytes:
        out = b""
        while True:
            line = self.rfile.readline(1024)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline(1024)
                return out
            out += self.rfile.read(size)
            self.rfile.readline(1024)
            if len(out) > self.max_body:
                raise ValueError("body too large")

    def send_bytes(self, code: int, body: bytes, ctype: str | None = "application/json",
                   headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        if ctype is not None:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, code: int, obj: Any, ctype: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
        self.send_bytes(code, json.dumps(obj, separators=(",", ":")).encode(), ctype, headers)

    # chunked streaming (watch)
    def start_chunked(self, code: int, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        if not data:
            return
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def serve(servers: list[tuple[str, Server]], on_stop: Callable[[], None] | None = None) -> None:
    """Run servers in threads, print LISTENING lines, block until SIGTERM/SIGINT, exit 0."""
    stop = threading.Event()

    def _sig(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, _sig)
    signal.signal(signal.SIGINT, _sig)
    for name, srv in servers:
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        t.start()
    for name, srv in servers:
        host, port = srv.server_address[:2]
        print(f"LISTENING {name} {host}:{port}", flush=True)
    while not stop.wait(0.5):
        pass
    for _name, srv in servers:
        srv.stopping.set()
    if on_stop is not None:
        try:
            on_stop()
        except Exception:  # noqa: BLE001
            pass
    for _name, srv in servers:
        srv.shutdown()
        srv.kill_connections()
        srv.server_close()
    sys.stdout.flush()
    # Handler threads are daemons; leave without joining them.
    import os

    os._exit(0)


def make_server(port: int, handler: type[BaseHTTPRequestHandler], state: Any = None) -> Server:
    return Server(("127.0.0.1", port), handler, state)


def now() -> float:
    return time.time()
