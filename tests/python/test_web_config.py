"""TLS and basic auth (`--web.config.file`, exporter-toolkit format) with a real client: curl, against
both roles: `cluster --bundle` and the node agent (`node`, reading the fake ipamd of tests/fakes).

Certificates come from the `openssl` command (a CA, a server certificate for 127.0.0.1, a client
certificate); passwords are bcrypt-hashed with PyPI `bcrypt` (cost 4: fast, still bcrypt).
Requires EKS_IPAM_BIN; under EKS_IPAM_REQUIRE_ALL=1 a missing curl/openssl/bcrypt fails.
"""
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import need, need_tool  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FAKES = os.path.join(ROOT, "tests", "fakes")
BUNDLE = os.path.join(ROOT, "tests", "bundles", "karpenter-overcommit")
NODE = "ip-10-0-44-120.us-west-2.compute.internal"


def _bin():
    return need(os.environ.get("EKS_IPAM_BIN"), "EKS_IPAM_BIN not set (scripts/test.sh sets it)")


def _bcrypt(password: str) -> str:
    try:
        import bcrypt
    except ImportError:
        need(False, "PyPI bcrypt not installed (pip install -r tests/requirements.txt)")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def _openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)


def _pki(d, name="ca"):
    """A CA `name`, a server cert (127.0.0.1) and a client cert signed by it: file paths."""
    need_tool("openssl", "openssl")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(d, "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
             "-subj", f"/CN={name}")
    for who, ext in [("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                     ("client", "extendedKeyUsage=clientAuth\n")]:
        base = f"{name}-{who}"
        with open(os.path.join(d, base + ".ext"), "w") as f:
            f.write(ext)
        _openssl(d, "req", *ec, "-keyout", base + ".key", "-out", base + ".csr", "-subj", f"/CN={who}")
        _openssl(d, "x509", "-req", "-in", base + ".csr", "-CA", f"{name}.crt", "-CAkey", f"{name}.key",
                 "-CAcreateserial", "-out", base + ".crt", "-days", "2", "-extfile", base + ".ext")
    return {k: os.path.join(d, v) for k, v in {
        "ca": f"{name}.crt", "crt": f"{name}-server.crt", "key": f"{name}-server.key",
        "client_crt": f"{name}-client.crt", "client_key": f"{name}-client.key"}.items()}


class Proc:
    """A child process that prints `LISTENING name addr` lines (fakes) or `local=ADDR` (the exporter)."""

    def __init__(self, cmd, expect=1, pattern=r"local=(\S+)|LISTENING \S+ (\S+)"):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, "NO_COLOR": "1"})
        self.addrs = []
        self.log = []
        deadline = time.time() + 20
        while len(self.addrs) < expect and time.time() < deadline:
            line = self.p.stdout.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(pattern, line)
            if m:
                self.addrs.append((m.group(1) or m.group(2)).strip('"'))
        if len(self.addrs) < expect:
            self.stop()
            raise AssertionError(f"{cmd[:2]} did not listen:\n{''.join(self.log)}")

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def curl(url, *args):
    """(HTTP status or 0 on a TLS/connection failure, headers+body text)."""
    need_tool("curl", "curl")
    r = subprocess.run(["curl", "-sS", "-i", "--max-time", "10", *args, url], capture_output=True, text=True)
    m = re.match(r"HTTP/\S+ (\d+)", r.stdout)
    return (int(m.group(1)) if m else 0), r.stdout + r.stderr


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def tmp(tmp_path):
    return str(tmp_path)


def _cluster(web):
    return Proc([_bin(), "cluster", "--bundle", BUNDLE, "--listen", "127.0.0.1:0", "--log-format", "text",
                 "--web.config.file", web])


def test_cluster_role_tls_and_basic_auth_with_curl(tmp):
    pki = _pki(tmp)
    web = _write(os.path.join(tmp, "web.yml"),
                 f"tls_server_config:\n  cert_file: {pki['crt']}\n  key_file: {pki['key']}\n"
                 f"basic_auth_users:\n  prometheus: {_bcrypt('s3cret')}\n")
    srv = _cluster(web)
    try:
        base = f"https://{srv.addrs[0]}"
        code, out = curl(base + "/metrics", "--cacert", pki["ca"], "-u", "prometheus:s3cret")
        assert code == 200, out
        assert "eks_ipam_node_pod_ip_capacity{" in out
        code, out = curl(base + "/metrics", "--cacert", pki["ca"])
        assert code == 401, out
        assert re.search(r'(?im)^www-authenticate: Basic realm="eks-ipam-exporter"', out), out
        assert curl(base + "/api/v1/diagnosis", "--cacert", pki["ca"], "-u", "prometheus:wrong")[0] == 401
        assert curl(base + "/", "--cacert", pki["ca"], "-u", "nobody:s3cret")[0] == 401
        # Probes carry no credentials.
        assert curl(base + "/healthz", "--cacert", pki["ca"])[0] == 200
        assert curl(base + "/readyz", "--cacert", pki["ca"])[0] == 200
        # Plain HTTP to the TLS port, and a client that does not trust the CA, get nothing.
        assert curl(f"http://{srv.addrs[0]}/metrics", "-u", "prometheus:s3cret")[0] != 200
        code, out = curl(base + "/metrics", "-u", "prometheus:s3cret")
        assert code == 0 and "certificate" in out.lower(), out
    finally:
        srv.stop()


def test_users_and_certificates_reload_without_a_restart(tmp):
    a = _pki(tmp, "ca-a")
    b = _pki(tmp, "ca-b")
    crt, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
    shutil.copy(a["crt"], crt)
    shutil.copy(a["key"], key)
    # Relative paths: to the config file's directory.
    web = _write(os.path.join(tmp, "web.yml"),
                 f"tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
                 f"basic_auth_users:\n  prometheus: {_bcrypt('old')}\n")
    srv = _cluster(web)
    try:
        url = f"https://{srv.addrs[0]}/metrics"
        assert curl(url, "--cacert", a["ca"], "-u", "prometheus:old")[0] == 200
        time.sleep(1.1)  # file times of a rewrite within the same second may not differ
        _write(web, f"tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
                    f"basic_auth_users:\n  prometheus: {_bcrypt('new')}\n  grafana: {_bcrypt('g')}\n")

        def switched():
            return curl(url, "--cacert", a["ca"], "-u", "prometheus:new")[0] == 200

        _until(switched, "the new password")
        assert curl(url, "--cacert", a["ca"], "-u", "prometheus:old")[0] == 401
        assert curl(url, "--cacert", a["ca"], "-u", "grafana:g")[0] == 200
        # Certificate rotation: a certificate from another CA.
        shutil.copy(b["key"], key)
        shutil.copy(b["crt"], crt)
        _until(lambda: curl(url, "--cacert", b["ca"], "-u", "prometheus:new")[0] == 200, "the rotated certificate")
        assert curl(url, "--cacert", a["ca"], "-u", "prometheus:new")[0] == 0
        # A broken change keeps the last good configuration.
        _write(web, "tls_server_config:\n  cert_file: tls.crt\n")
        time.sleep(2.5)
        assert curl(url, "--cacert", b["ca"], "-u", "prometheus:new")[0] == 200
        assert srv.p.poll() is None
    finally:
        srv.stop()
    assert any("keeping the previous configuration" in line for line in _drain(srv)), "reload error not logged"


def _drain(proc):
    rest = proc.p.stdout.read() if proc.p.stdout else ""
    return proc.log + rest.splitlines()


def _until(pred, what, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_node_agent_mutual_tls_and_basic_auth_with_curl(tmp):
    pki = _pki(tmp)
    web = _write(os.path.join(tmp, "web.yml"),
                 f"tls_server_config:\n  cert_file: {pki['crt']}\n  key_file: {pki['key']}\n"
                 f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki['ca']}\n"
                 f"basic_auth_users:\n  cluster: {_bcrypt('agent-pw')}\n")
    ipamd = Proc([sys.executable, os.path.join(FAKES, "ipamd.py"), "--bundle", BUNDLE, "--node", NODE,
                  "--introspection-port", "0", "--metrics-port", "0"], expect=2)
    agent = None
    try:
        agent = Proc([_bin(), "node", "--node-name", NODE, "--listen", "[127.0.0.1]:0", "--log-format", "text",
                      "--ipamd-introspection-url", f"http://{ipamd.addrs[0]}",
                      "--ipamd-metrics-url", f"http://{ipamd.addrs[1]}/metrics", "--interval", "1s",
                      "--web.config.file", web])
        base = f"https://{agent.addrs[0]}"
        client = ["--cacert", pki["ca"], "--cert", pki["client_crt"], "--key", pki["client_key"]]

        def pool():
            code, out = curl(base + "/v1/pool", *client, "-u", "cluster:agent-pw")
            return code == 200 and '"enis"' in out

        _until(pool, "the pool through mutual TLS")
        code, out = curl(base + "/metrics", *client, "-u", "cluster:agent-pw")
        assert code == 200 and "eks_ipam_" in out, out
        # No client certificate: the handshake fails, whatever the password.
        assert curl(base + "/v1/pool", "--cacert", pki["ca"], "-u", "cluster:agent-pw")[0] == 0
        # A certificate, no password.
        assert curl(base + "/v1/pool", *client)[0] == 401
    finally:
        if agent:
            agent.stop()
        ipamd.stop()


def test_a_bad_web_config_stops_the_start_with_a_clear_error(tmp):
    for text, says in [
        ("basic_auth_users:\n  prometheus: plaintext\n", "bad.yml: basic_auth_users.prometheus: not a bcrypt hash"),
        ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
         "/nonexistent.crt: cannot read the certificate"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n",
         "bad.yml: tls_server_config.cipher_suites is not supported"),
        ("tls_srever_config: {}\n", "tls_srever_config"),
    ]:
        web = _write(os.path.join(tmp, "bad.yml"), text)
        r = subprocess.run([_bin(), "cluster", "--bundle", BUNDLE, "--listen", "127.0.0.1:0",
                            "--web.config.file", web], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2, (text, r.stderr)
        assert says in r.stderr, (text, r.stderr)
        assert "\x1b" not in r.stderr
