//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_eks-ipam-exporter")
}

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Writes `files` (relative path -> content) into a fresh temp bundle.
pub fn temp_bundle(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, content) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// Copies a committed bundle into a temp dir so a test can break one file.
pub fn copy_bundle(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(src, dir.path());
    dir
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The scheduler's message for a pod refused for branch ENIs (`FitError.Error()`
/// with the NodeResourcesFit reason and the preemption sentence).
pub const REFUSED_POD_ENI: &str = "0/2 nodes are available: 1 Insufficient vpc.amazonaws.com/pod-eni, 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.";

/// `diagnose --bundle DIR --output json`: its exit code (0 healthy, 1
/// findings) and the parsed JSON (a usage or bundle error fails the test).
pub fn diagnose_exit_and_json(dir: &Path) -> (i32, serde_json::Value) {
    let out = run(&[
        "diagnose",
        "--bundle",
        dir.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_ne!(out.code, 2, "diagnose failed: {}", out.stderr);
    (
        out.code,
        serde_json::from_str(&out.stdout).expect("JSON output"),
    )
}

/// The JSON of [`diagnose_exit_and_json`].
pub fn diagnose_json(dir: &Path) -> serde_json::Value {
    diagnose_exit_and_json(dir).1
}

/// The node named `name` in a diagnosis (`diagnose --output json`, `/api/v1/diagnosis`).
pub fn node_of<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("node {name}"))
}

/// (code, severity, node) of a diagnosis' findings whose code is in `codes`.
pub fn findings_with(v: &serde_json::Value, codes: &[&str]) -> Vec<(String, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| codes.iter().any(|c| f["code"] == *c))
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (s("code"), s("severity"), s("node"))
        })
        .collect()
}

pub fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

/// Runs the binary with extra environment variables.
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(bin())
        .args(args)
        .env_remove("EKS_IPAM_BUNDLE")
        .envs(env.iter().copied())
        .output()
        .expect("run binary");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A server child process, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on 127.0.0.1:0 and reads the bound address from its log.
pub fn start_server(args: &[&str]) -> Server {
    start_server_with(args, "127.0.0.1:0", &[])
}

/// Starts the binary on a given address.
pub fn start_server_at(args: &[&str], listen: &str) -> Server {
    start_server_with(args, listen, &[])
}

/// Starts the binary on 127.0.0.1:0 with extra environment variables.
pub fn start_server_env(args: &[&str], env: &[(&str, &str)]) -> Server {
    start_server_with(args, "127.0.0.1:0", env)
}

fn start_server_with(args: &[&str], listen: &str, env: &[(&str, &str)]) -> Server {
    let child = Command::new(bin())
        .args(args)
        .args(["--listen", listen, "--log-format", "text"])
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server");
    // Owned by `Server` from here on, so any panic below still kills and reaps it.
    let mut server = Server {
        child,
        addr: String::new(),
    };
    let stderr = server.child.stderr.take().unwrap();
    let mut reader = BufReader::new(stderr);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut line = String::new();
    let mut seen = String::new();
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("server {args:?} on {listen} exited before listening:\n{seen}");
        }
        seen.push_str(&line);
        if let Some(i) = line.find("local=") {
            let addr: String = line[i + 6..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            server.addr = addr
                .trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
                .to_string();
            // Keep draining stderr so the child never blocks on a full pipe;
            // echo it when EKS_IPAM_TEST_LOGS is set.
            let echo = std::env::var_os("EKS_IPAM_TEST_LOGS").is_some();
            std::thread::spawn(move || {
                let mut l = String::new();
                while reader.read_line(&mut l).unwrap_or(0) > 0 {
                    if echo {
                        eprint!("{l}");
                    }
                    l.clear();
                }
            });
            return server;
        }
    }
    panic!("server did not listen within 20 s");
}

/// Minimal HTTP/1.1 GET: (status, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, None)
}

/// Minimal HTTP/1.1 POST with a JSON body: (status, body).
pub fn http_post(addr: &str, path: &str, body: &str) -> (u16, String) {
    http_request(addr, "POST", path, Some(body))
}

fn http_request(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let payload = match body {
        Some(b) => format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ),
        None => "\r\n".to_string(),
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{payload}"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        body = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// A Python fake server from tests/fakes/, killed on drop. `addrs` maps the
/// names it announced (`LISTENING <name> <addr>`) to addresses.
pub struct Fake {
    pub child: Child,
    pub addrs: std::collections::HashMap<String, String>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `python3 tests/fakes/<script> <args>` and waits for `expect` LISTENING lines.
pub fn start_fake(script: &str, args: &[&str], expect: usize) -> Fake {
    let mut cmd = Command::new("python3");
    cmd.arg(repo("tests/fakes").join(script));
    spawn_fake(cmd, script, args, expect)
}

/// Starts the fake apiserver (`examples/kube_apiserver`, which `cargo test` builds next to
/// the test binaries) and waits for its LISTENING line.
pub fn start_kube_apiserver(args: &[&str]) -> Fake {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/examples/kube_apiserver
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("examples").join("kube_apiserver"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "examples/kube_apiserver not built next to {} (run `cargo build --examples`)",
                exe.display()
            )
        });
    spawn_fake(Command::new(bin), "kube_apiserver", args, 1)
}

fn spawn_fake(mut cmd: Command, name: &str, args: &[&str], expect: usize) -> Fake {
    let child = cmd
        .args(args)
        .current_dir(repo(""))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start fake {name}: {e}"));
    let mut fake = Fake {
        child,
        addrs: Default::default(),
    };
    let stdout = fake.child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    while fake.addrs.len() < expect {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("fake {name} exited before listening");
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() == 3 && parts[0] == "LISTENING" {
            fake.addrs
                .insert(parts[1].to_string(), parts[2].to_string());
        }
    }
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = reader.read_to_string(&mut sink);
    });
    fake
}

/// Polls `f` every 100 ms until it returns Some, for at most `secs`.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Writes a kubeconfig for `server` (host:port, plain HTTP) with a bearer
/// token into `dir` and returns its path.
pub fn write_kubeconfig(dir: &Path, server: &str, token: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n    server: http://{server}\ncontexts:\n- name: f\n  context: {{cluster: f, user: f}}\ncurrent-context: f\nusers:\n- name: f\n  user: {{token: {token}}}\n"
        ),
    )
    .unwrap();
    path
}

/// `promtool check metrics` accepts the exposition with no lint message.
pub fn promtool_check(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool not found: run scripts/test.sh, which installs Debian's prometheus package",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && msg.trim().is_empty(),
        "promtool check metrics: {msg}"
    );
}

/// Test PKI made with the `openssl` command: a CA, a server certificate for
/// `eks-ipam-exporter-node` and 127.0.0.1, and a client certificate, all
/// signed by the CA (P-256 keys, PKCS#8 PEM).
pub struct TestPki {
    pub dir: PathBuf,
}

impl TestPki {
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }
}

pub fn make_test_pki(dir: &Path) -> TestPki {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian package openssl; scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=eks-ipam test CA",
    ]);
    openssl(&ca);
    for (name, cn, ext) in [
        (
            "server",
            "eks-ipam-exporter-node",
            "subjectAltName=DNS:eks-ipam-exporter-node,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "prometheus", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, crt, extf, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
            format!("/CN={cn}"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(&req);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &extf,
        ]);
    }
    TestPki {
        dir: dir.to_path_buf(),
    }
}

/// (code, severity, node) of every finding in a JSON array, sorted.
pub fn finding_triples(list: &serde_json::Value) -> Vec<(String, String, String)> {
    let mut f: Vec<_> = list
        .as_array()
        .expect("a JSON array of findings")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("code"), s("severity"), s("node"))
        })
        .collect();
    f.sort();
    f
}
