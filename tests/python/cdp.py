"""Headless Chromium over the DevTools protocol on a pipe (`--remote-debugging-pipe`): a page is loaded at a
given viewport width and inspected with JavaScript for layout and DOM checks. No websocket library or driver is
needed: Chromium reads commands on fd 3 and writes replies on fd 4, NUL-separated JSON."""
import base64
import json
import os
import subprocess
import time

class Chromium:
    """One headless Chromium; `page(width)` opens a tab with that viewport."""
    def __init__(self, binary, profile):
        r_cmd, w_cmd = os.pipe()   # we write commands -> chromium reads fd 3
        r_ev, w_ev = os.pipe()     # chromium writes fd 4 -> we read
        def fds():  # in the child: the pipe ends become fds 3 and 4
            os.dup2(r_cmd, 3)
            os.dup2(w_ev, 4)
        self.p = subprocess.Popen([binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                   f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
                                  pass_fds=(3, 4, r_cmd, w_ev), preexec_fn=fds,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_cmd)
        os.close(w_ev)
        self.w = os.fdopen(w_cmd, "wb", buffering=0)
        self.r = os.fdopen(r_ev, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0

    def _read(self):
        while b"\0" not in self.buf:
            chunk = self.r.read(65536)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        self.next_id += 1
        m = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        self.w.write(json.dumps(m).encode() + b"\0")
        while True:
            msg = self._read()
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def page(self, width, height=900):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}, session)
        return Page(self, session)

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


class Page:
    def __init__(self, browser, session):
        self.b, self.s = browser, session

    def goto(self, url):
        self.b.call("Page.navigate", {"url": url}, self.s)
        for _ in range(200):
            if self.js("document.readyState") == "complete" and self.js("location.href") == url:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{url} did not load")

    def js(self, expr):
        r = self.b.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, self.s)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self, path):
        h = self.js("document.documentElement.scrollHeight")
        data = self.b.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                       "clip": {"x": 0, "y": 0, "width": self.js("window.innerWidth"),
                                                                "height": h, "scale": 1}}, self.s)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
