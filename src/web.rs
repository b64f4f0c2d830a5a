//! `--web.config.file`: TLS, client certificates and basic auth for the HTTP
//! servers of both roles, in the format of the Prometheus exporter-toolkit
//! (what node_exporter and the prometheus-community exporters read), so one
//! web config file serves them all:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: tls.crt            # relative paths: to the config file's directory
//!   key_file: tls.key
//!   client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
//!   client_ca_file: ca.crt
//!   min_version: TLS12            # TLS12 (default) or TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...        # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\n')
//! ```
//!
//! As in exporter-toolkit, the file and the files it names are read again
//! when they change (checked at most once a second, on a new connection or
//! request): certificates rotate and users change without a restart. A
//! change that does not load keeps the last good configuration and is
//! logged. Whether TLS is on is fixed at start. `/healthz` and `/readyz`
//! stay open to everyone (kubelet probes carry no credentials; they say
//! nothing about the cluster). Keys of the exporter-toolkit format this
//! build does not implement are refused with a clear message, never ignored.

use crate::{Error, Result};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often the files are checked for changes, at most.
const RECHECK: Duration = Duration::from_secs(1);
/// Successful logins remembered (bcrypt costs ~50-250 ms a check).
const AUTH_CACHE_MAX: usize = 256;
/// Paths that never ask for credentials (probes).
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    #[serde(default)]
    tls_server_config: Option<TlsServerConfigFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    http_server_config: Option<HttpServerConfigFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfigFile {
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    // exporter-toolkit keys this build does not implement: named, so the
    // error says "not supported" instead of "unknown field".
    #[serde(default)]
    cert: Option<IgnoredAny>,
    #[serde(default)]
    key: Option<IgnoredAny>,
    #[serde(default)]
    client_ca: Option<IgnoredAny>,
    #[serde(default)]
    cipher_suites: Option<IgnoredAny>,
    #[serde(default)]
    curve_preferences: Option<IgnoredAny>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<IgnoredAny>,
    #[serde(default)]
    client_allowed_sans: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpServerConfigFile {
    /// Accepted and ignored: this server speaks HTTP/1.1 only.
    #[serde(default)]
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<IgnoredAny>,
}

/// What a web config file says, loaded: the TLS configuration (certificates
/// read) and the users' bcrypt hashes.
pub(crate) struct Loaded {
    tls: Option<Arc<rustls::ServerConfig>>,
    users: BTreeMap<String, String>,
    /// Digests of (user, password, hash) that checked out: a scrape every
    /// 15 s must not cost a bcrypt run each time. Keyed on the hash too, so a
    /// changed password drops out.
    good: Mutex<HashSet<[u8; 32]>>,
    /// The files read, with their stamps, to notice changes.
    stamps: Vec<(PathBuf, Option<Stamp>)>,
}

type Stamp = (SystemTime, u64);

fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn invalid(path: &Path, message: impl Into<String>) -> Error {
    Error::Invalid {
        file: path.display().to_string(),
        message: message.into(),
    }
}

fn unsupported(path: &Path, key: &str, why: &str) -> Error {
    invalid(
        path,
        format!("tls_server_config.{key} is not supported by this build ({why})"),
    )
}

/// Reads and checks a web config file and every file it names.
pub(crate) fn load(path: &Path) -> Result<Loaded> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        file: path.display().to_string(),
        source,
    })?;
    let mut stamps = vec![(path.to_path_buf(), stamp(path))];
    // An empty file is a valid, empty configuration (as exporter-toolkit).
    let file: WebConfigFile = if text.trim().is_empty() {
        WebConfigFile {
            tls_server_config: None,
            basic_auth_users: None,
            http_server_config: None,
        }
    } else {
        serde_saphyr::from_str(&text).map_err(|e| invalid(path, e.to_string()))?
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        }
    };
    if let Some(h) = &file.http_server_config {
        if h.headers.is_some() {
            return Err(invalid(
                path,
                "http_server_config.headers is not supported by this build",
            ));
        }
    }
    let tls = match &file.tls_server_config {
        None => None,
        Some(t) => {
            for (key, set, why) in [
                ("cert", t.cert.is_some(), "use cert_file"),
                ("key", t.key.is_some(), "use key_file"),
                ("client_ca", t.client_ca.is_some(), "use client_ca_file"),
                (
                    "cipher_suites",
                    t.cipher_suites.is_some(),
                    "rustls offers only modern suites",
                ),
                (
                    "curve_preferences",
                    t.curve_preferences.is_some(),
                    "rustls chooses",
                ),
                (
                    "prefer_server_cipher_suites",
                    t.prefer_server_cipher_suites.is_some(),
                    "rustls always prefers the server's order",
                ),
                (
                    "client_allowed_sans",
                    t.client_allowed_sans.is_some(),
                    "restrict clients with client_ca_file",
                ),
            ] {
                if set {
                    return Err(unsupported(path, key, why));
                }
            }
            let cert_file = t
                .cert_file
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(resolve)
                .ok_or_else(|| invalid(path, "tls_server_config needs cert_file"))?;
            let key_file = t
                .key_file
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(resolve)
                .ok_or_else(|| invalid(path, "tls_server_config needs key_file"))?;
            let ca_file = t
                .client_ca_file
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(resolve);
            for p in [Some(&cert_file), Some(&key_file), ca_file.as_ref()]
                .into_iter()
                .flatten()
            {
                stamps.push((p.clone(), stamp(p)));
            }
            Some(Arc::new(server_tls(
                path,
                &cert_file,
                &key_file,
                t.client_auth_type.as_deref().unwrap_or(""),
                ca_file.as_deref(),
                t.min_version.as_deref(),
                t.max_version.as_deref(),
            )?))
        }
    };
    let users = file.basic_auth_users.unwrap_or_default();
    for (user, hash) in &users {
        if user.contains(':') {
            return Err(invalid(
                path,
                format!("basic_auth_users: user {user:?} contains ':'"),
            ));
        }
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(invalid(
                path,
                format!("basic_auth_users.{user}: not a bcrypt hash (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')"),
            ));
        }
    }
    Ok(Loaded {
        tls,
        users,
        good: Mutex::new(HashSet::new()),
        stamps,
    })
}

fn tls_version(
    path: &Path,
    key: &str,
    v: Option<&str>,
) -> Result<Option<&'static rustls::SupportedProtocolVersion>> {
    match v.unwrap_or("") {
        "" => Ok(None),
        "TLS12" => Ok(Some(&rustls::version::TLS12)),
        "TLS13" => Ok(Some(&rustls::version::TLS13)),
        "TLS10" | "TLS11" => Err(invalid(
            path,
            format!("tls_server_config.{key}: TLS 1.0 and 1.1 are not offered (TLS12 or TLS13)"),
        )),
        other => Err(invalid(
            path,
            format!("tls_server_config.{key}: {other:?} is not a TLS version (TLS12 or TLS13)"),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn server_tls(
    path: &Path,
    cert_file: &Path,
    key_file: &Path,
    client_auth_type: &str,
    ca_file: Option<&Path>,
    min_version: Option<&str>,
    max_version: Option<&str>,
) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let min = tls_version(path, "min_version", min_version)?.unwrap_or(&rustls::version::TLS12);
    let max = tls_version(path, "max_version", max_version)?.unwrap_or(&rustls::version::TLS13);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| {
                let rank = |x: &rustls::SupportedProtocolVersion| {
                    u8::from(x.version == rustls::ProtocolVersion::TLSv1_3)
                };
                rank(v) >= rank(min) && rank(v) <= rank(max)
            })
            .collect();
    if versions.is_empty() {
        return Err(invalid(
            path,
            "tls_server_config: min_version is above max_version",
        ));
    }
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| invalid(path, e.to_string()))?;
    let need_ca = |what: &str| {
        ca_file.ok_or_else(|| {
            invalid(
                path,
                format!("tls_server_config: client_auth_type {what} needs client_ca_file"),
            )
        })
    };
    let builder = match client_auth_type {
        "" | "NoClientCert" => {
            if ca_file.is_some() {
                return Err(invalid(
                    path,
                    "tls_server_config: client_ca_file is set but client_auth_type does not check client certificates (use RequireAndVerifyClientCert or VerifyClientCertIfGiven)",
                ));
            }
            builder.with_no_client_auth()
        }
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let ca = need_ca(client_auth_type)?;
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| invalid(ca, format!("cannot read the client CA: {e}")))?;
            let (added, _) = roots.add_parsable_certificates(cas);
            if added == 0 {
                return Err(invalid(ca, "no usable CA certificate in the file"));
            }
            let mut v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            if client_auth_type == "VerifyClientCertIfGiven" {
                v = v.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(v.build().map_err(|e| invalid(ca, e.to_string()))?)
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(invalid(
                path,
                format!("tls_server_config: client_auth_type {client_auth_type} (certificates not verified) is not supported; use RequireAndVerifyClientCert"),
            ))
        }
        other => {
            return Err(invalid(
                path,
                format!("tls_server_config: client_auth_type {other:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"),
            ))
        }
    };
    // Read after the settings are checked, so a wrong setting is reported as such.
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| invalid(cert_file, format!("cannot read the certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(cert_file, "no PEM certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| invalid(key_file, format!("cannot read the private key: {e}")))?;
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| invalid(key_file, format!("certificate and key do not match: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Loaded {
    fn changed(&self) -> bool {
        self.stamps.iter().any(|(p, s)| stamp(p) != *s)
    }

    /// Whether `user`/`password` may in. Runs bcrypt off the async threads.
    async fn check(&self, user: &str, password: &str) -> bool {
        use sha2::Digest;
        // A user not in the file is checked against a dummy hash, so the time
        // taken does not tell which users exist (as exporter-toolkit does).
        const DUMMY: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
        let (known, hash) = match self.users.get(user) {
            Some(h) => (true, h.clone()),
            None => (false, DUMMY.to_string()),
        };
        let mut d = sha2::Sha256::new();
        for part in [user.as_bytes(), password.as_bytes(), hash.as_bytes()] {
            d.update((part.len() as u64).to_le_bytes());
            d.update(part);
        }
        let key: [u8; 32] = d.finalize().into();
        if known
            && self
                .good
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&key)
        {
            return true;
        }
        let password = password.to_string();
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false)
                && known;
        if ok {
            let mut good = self.good.lock().unwrap_or_else(|p| p.into_inner());
            if good.len() >= AUTH_CACHE_MAX {
                good.clear();
            }
            good.insert(key);
        }
        ok
    }
}

/// A web config file and its latest good load.
pub(crate) struct WebConfig {
    path: PathBuf,
    current: Mutex<(Instant, Arc<Loaded>)>,
    tls: bool,
}

impl WebConfig {
    /// Loads `path`; an error here stops the process (a typo must not serve
    /// without TLS or auth).
    pub(crate) fn open(path: &Path) -> Result<Arc<Self>> {
        let loaded = load(path)?;
        Ok(Arc::new(WebConfig {
            path: path.to_path_buf(),
            tls: loaded.tls.is_some(),
            current: Mutex::new((Instant::now(), Arc::new(loaded))),
        }))
    }

    pub(crate) fn tls_enabled(&self) -> bool {
        self.tls
    }

    /// The configuration now, reloaded first if a file changed.
    pub(crate) fn current(&self) -> Arc<Loaded> {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.0.elapsed() >= RECHECK {
            cur.0 = Instant::now();
            if cur.1.changed() {
                match load(&self.path) {
                    Ok(l) if l.tls.is_some() == self.tls => {
                        tracing::info!(file = %self.path.display(), "web config reloaded");
                        cur.1 = Arc::new(l);
                    }
                    Ok(_) => tracing::error!(
                        file = %self.path.display(),
                        "web config: TLS cannot be switched on or off without a restart; keeping the previous configuration"
                    ),
                    Err(e) => tracing::error!(
                        file = %self.path.display(),
                        error = %e,
                        "web config does not load; keeping the previous configuration"
                    ),
                }
            }
        }
        cur.1.clone()
    }

    pub(crate) fn server_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.current().tls.clone()
    }
}

/// Middleware: basic auth on every path but the probes, when the web config
/// lists users.
pub(crate) async fn require_auth(
    State(web): State<Arc<WebConfig>>,
    req: Request,
    next: Next,
) -> Response {
    if OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let cfg = web.current();
    if cfg.users.is_empty() {
        return next.run(req).await;
    }
    let creds = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(parse_basic);
    if let Some((user, password)) = creds {
        if cfg.check(&user, &password).await {
            return next.run(req).await;
        }
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"eks-ipam-exporter\""),
        )],
        "Unauthorized\n",
    )
        .into_response()
}

/// `Basic base64(user:password)` -> (user, password).
fn parse_basic(v: &HeaderValue) -> Option<(String, String)> {
    use base64::Engine;
    let v = v.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Accepts TCP connections and hands axum only those whose TLS handshake
/// finished: handshakes run in their own tasks with a deadline, so one slow
/// or silent client cannot hold up the others.
pub(crate) struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        std::net::SocketAddr,
    )>,
    local: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    pub(crate) fn new(
        listener: tokio::net::TcpListener,
        web: Arc<WebConfig>,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and the like: wait, as axum's own accept loop does.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let Some(cfg) = web.server_tls() else {
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local, task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// `--listen` as given, with brackets around an IPv4 address dropped, so one
/// manifest (`[$(HOST_IP)]:10098`) binds the host IP on IPv4 and IPv6 nodes.
pub(crate) fn normalize_listen(addr: &str) -> String {
    if let Some(rest) = addr.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once("]:") {
            if host.parse::<std::net::Ipv4Addr>().is_ok() {
                return format!("{host}:{port}");
            }
        }
    }
    addr.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn err(text: &str) -> String {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "web.yml", text);
        match load(&p) {
            Ok(_) => panic!("loaded: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn listen_addresses_with_bracketed_ipv4_are_normalized() {
        for (given, want) in [
            ("[10.0.3.7]:10098", "10.0.3.7:10098"),
            ("[fd00:ec2::7]:10098", "[fd00:ec2::7]:10098"),
            ("0.0.0.0:10098", "0.0.0.0:10098"),
            ("localhost:1", "localhost:1"),
            // An unset HOST_IP must fail to bind, not bind everywhere.
            ("[]:10098", "[]:10098"),
        ] {
            assert_eq!(normalize_listen(given), want, "{given}");
        }
    }

    #[test]
    fn empty_file_and_users_only_load() {
        let d = tempfile::tempdir().unwrap();
        let l = load(&write(d.path(), "a.yml", "")).unwrap();
        assert!(l.tls.is_none() && l.users.is_empty());
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let l = load(&write(
            d.path(),
            "b.yml",
            &format!("basic_auth_users:\n  prometheus: {hash}\n"),
        ))
        .unwrap();
        assert_eq!(l.users.len(), 1);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        for (text, says) in [
            ("tls_server_config:\n  cert_file: a.crt\n", "needs key_file"),
            ("tls_server_config:\n  key_file: a.key\n", "needs cert_file"),
            ("basic_auth_users:\n  p: plaintext\n", "not a bcrypt hash"),
            ("basic_auth_user:\n  p: x\n", "basic_auth_user"),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
                "cipher_suites is not supported",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
                "not supported",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n",
                "not offered",
            ),
            ("http_server_config:\n  headers:\n    X-A: b\n", "headers is not supported"),
            ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n", "cannot read the certificate"),
        ] {
            let e = err(text);
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn basic_header_parsing() {
        let v = HeaderValue::from_static("Basic cHJvbWV0aGV1czpzM2NyZXQ6eA==");
        assert_eq!(
            parse_basic(&v),
            Some(("prometheus".into(), "s3cret:x".into()))
        );
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer abc")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic !!!")), None);
    }

    #[tokio::test]
    async fn passwords_are_checked_and_unknown_users_refused() {
        let d = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let l = load(&write(
            d.path(),
            "w.yml",
            &format!("basic_auth_users:\n  prometheus: {hash}\n"),
        ))
        .unwrap();
        assert!(l.check("prometheus", "s3cret").await);
        // Cached now; a wrong password is still refused.
        assert!(l.check("prometheus", "s3cret").await);
        assert!(!l.check("prometheus", "wrong").await);
        assert!(!l.check("nobody", "s3cret").await);
    }
}
