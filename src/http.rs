//! A small HTTP/1.1 client for loopback and in-cluster calls (ipamd, node
//! agents): per-request timeout and a hard cap on the body size, so a hung
//! or hostile peer can cost neither time nor memory beyond the bounds.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub(crate) type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

pub(crate) fn client() -> HttpClient {
    client_with_pool(2)
}

fn client_with_pool(max_idle_per_host: usize) -> HttpClient {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(max_idle_per_host)
        .build(connector)
}

/// Why a fetch failed: a closed set, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum FetchError {
    InvalidUrl,
    Connect,
    Timeout,
    Status,
    TooLarge,
    Body,
}

impl FetchError {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FetchError::InvalidUrl => "invalid_url",
            FetchError::Connect => "connect",
            FetchError::Timeout => "timeout",
            FetchError::Status => "http_status",
            FetchError::TooLarge => "too_large",
            FetchError::Body => "body",
        }
    }
}

/// GETs `url`; the whole exchange (connect, headers, body) is bounded by
/// `timeout`, the body by `limit` bytes. Non-2xx is an error.
pub(crate) async fn get<C>(
    client: &Client<C, Empty<Bytes>>,
    url: &str,
    timeout: Duration,
    limit: usize,
) -> Result<Bytes, FetchError>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    get_authorized(client, url, None, timeout, limit).await
}

/// As [`get`], with an `Authorization` header when given.
pub(crate) async fn get_authorized<C>(
    client: &Client<C, Empty<Bytes>>,
    url: &str,
    authorization: Option<&hyper::header::HeaderValue>,
    timeout: Duration,
    limit: usize,
) -> Result<Bytes, FetchError>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let uri: hyper::Uri = url.parse().map_err(|_| FetchError::InvalidUrl)?;
    let mut req = hyper::Request::get(uri);
    if let Some(v) = authorization {
        req = req.header(hyper::header::AUTHORIZATION, v.clone());
    }
    let req = req.body(Empty::new()).map_err(|_| FetchError::InvalidUrl)?;
    let work = async {
        let resp = client.request(req).await.map_err(|_| FetchError::Connect)?;
        if !resp.status().is_success() {
            return Err(FetchError::Status);
        }
        let body = Limited::new(resp.into_body(), limit);
        match body.collect().await {
            Ok(c) => Ok(c.to_bytes()),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                Err(FetchError::TooLarge)
            }
            Err(_) => Err(FetchError::Body),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(FetchError::Timeout))
}

/// The client that pulls the node agents: plain HTTP by default, or what
/// `--agent-client-config` says (HTTPS with a CA or client certificate,
/// basic auth), for agents that serve a `--web.config.file`.
#[derive(Clone)]
pub(crate) struct AgentClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    scheme: &'static str,
    authorization: Option<hyper::header::HeaderValue>,
}

use hyper_util::client::legacy::connect::HttpConnector;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentClientFile {
    #[serde(default)]
    scheme: Option<String>,
    #[serde(default)]
    tls_config: Option<TlsClientFile>,
    #[serde(default)]
    basic_auth: Option<BasicAuthFile>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsClientFile {
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuthFile {
    username: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_file: Option<String>,
}

impl AgentClient {
    /// Plain HTTP. No pooled connections: for polling thousands of node
    /// agents, a pooled connection per agent would hold its read buffer
    /// (tens of KB each) between rounds for nothing.
    pub(crate) fn plain() -> Self {
        Self::build(None, "http", None).expect("a client without TLS settings always builds")
    }

    /// Reads `--agent-client-config`; an error names the file and the key.
    pub(crate) fn from_file(path: &std::path::Path) -> crate::Result<Self> {
        use crate::Error;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |p: &std::path::Path, m: String| Error::Invalid {
            file: p.display().to_string(),
            message: m,
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            file: path.display().to_string(),
            source,
        })?;
        let f: AgentClientFile =
            serde_saphyr::from_str(&text).map_err(|e| bad(path, e.to_string()))?;
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let resolve = |p: &str| dir.join(p);
        let scheme = match f.scheme.as_deref().unwrap_or("http") {
            "http" => "http",
            "https" => "https",
            other => return Err(bad(path, format!("scheme {other:?}: http or https"))),
        };
        let authorization = match &f.basic_auth {
            None => None,
            Some(b) => {
                let password = match (&b.password, &b.password_file) {
                    (Some(p), None) => p.clone(),
                    (None, Some(file)) => {
                        let file = resolve(file);
                        std::fs::read_to_string(&file)
                            .map_err(|source| Error::Read {
                                file: file.display().to_string(),
                                source,
                            })?
                            .trim_end_matches(['\r', '\n'])
                            .to_string()
                    }
                    _ => {
                        return Err(bad(
                            path,
                            "basic_auth needs exactly one of password and password_file".into(),
                        ))
                    }
                };
                use base64::Engine;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{password}", b.username));
                let mut v = hyper::header::HeaderValue::from_str(&format!("Basic {token}"))
                    .map_err(|_| bad(path, "basic_auth: unusable characters".into()))?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        if scheme == "http" && authorization.is_some() {
            tracing::warn!(file = %path.display(), "agent client config: basic auth over plain http sends the password in clear");
        }
        let tls = match &f.tls_config {
            None if scheme == "https" => {
                return Err(bad(
                    path,
                    "scheme https needs tls_config with ca_file (or insecure_skip_verify: true)"
                        .into(),
                ))
            }
            None => None,
            Some(_) if scheme == "http" => {
                return Err(bad(path, "tls_config is set but scheme is http".into()))
            }
            Some(t) => {
                let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| bad(path, e.to_string()))?;
                let builder = match (&t.ca_file, t.insecure_skip_verify) {
                    (_, true) => builder
                        .dangerous()
                        .with_custom_certificate_verifier(std::sync::Arc::new(NoVerify(provider))),
                    (Some(ca), false) => {
                        let ca = resolve(ca);
                        let certs = CertificateDer::pem_file_iter(&ca)
                            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                            .map_err(|e| bad(&ca, format!("cannot read the CA: {e}")))?;
                        let mut roots = rustls::RootCertStore::empty();
                        if roots.add_parsable_certificates(certs).0 == 0 {
                            return Err(bad(&ca, "no usable CA certificate in the file".into()));
                        }
                        builder.with_root_certificates(roots)
                    }
                    (None, false) => {
                        return Err(bad(
                            path,
                            "tls_config needs ca_file (or insecure_skip_verify: true)".into(),
                        ))
                    }
                };
                let cfg = match (&t.cert_file, &t.key_file) {
                    (None, None) => builder.with_no_client_auth(),
                    (Some(c), Some(k)) => {
                        let (c, k) = (resolve(c), resolve(k));
                        let certs = CertificateDer::pem_file_iter(&c)
                            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                            .map_err(|e| bad(&c, format!("cannot read the certificate: {e}")))?;
                        let key = PrivateKeyDer::from_pem_file(&k)
                            .map_err(|e| bad(&k, format!("cannot read the private key: {e}")))?;
                        builder.with_client_auth_cert(certs, key).map_err(|e| {
                            bad(&k, format!("certificate and key do not match: {e}"))
                        })?
                    }
                    _ => {
                        return Err(bad(
                            path,
                            "tls_config needs both cert_file and key_file, or neither".into(),
                        ))
                    }
                };
                Some((cfg, t.server_name.clone().filter(|s| !s.is_empty())))
            }
        };
        Self::build(tls, scheme, authorization)
    }

    fn build(
        tls: Option<(rustls::ClientConfig, Option<String>)>,
        scheme: &'static str,
        authorization: Option<hyper::header::HeaderValue>,
    ) -> crate::Result<Self> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let (cfg, server_name) = match tls {
            Some(t) => t,
            // Never used for https (the scheme is http), but the connector needs one.
            None => (
                rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                    rustls::crypto::aws_lc_rs::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| crate::Error::Usage(e.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
                None,
            ),
        };
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(cfg)
            .https_or_http();
        let builder = match server_name {
            Some(n) => {
                let name = rustls::pki_types::ServerName::try_from(n.clone()).map_err(|_| {
                    crate::Error::Usage(format!(
                        "tls_config.server_name {n:?} is not a DNS name or IP address"
                    ))
                })?;
                builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            }
            None => builder,
        };
        let https = builder.enable_http1().wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build(https);
        Ok(AgentClient {
            client,
            scheme,
            authorization,
        })
    }

    /// GETs `path` of the agent at `address` (`host:port`).
    pub(crate) async fn get(
        &self,
        address: &str,
        path: &str,
        timeout: Duration,
        limit: usize,
    ) -> Result<Bytes, FetchError> {
        let url = format!("{}://{address}{path}", self.scheme);
        get_authorized(
            &self.client,
            &url,
            self.authorization.as_ref(),
            timeout,
            limit,
        )
        .await
    }
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("scheme", &self.scheme)
            .field("basic_auth", &self.authorization.is_some())
            .finish_non_exhaustive()
    }
}

/// `insecure_skip_verify: true`: any server certificate (signatures are
/// still checked, so the session is encrypted, but to whom is unknown).
#[derive(Debug)]
struct NoVerify(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
