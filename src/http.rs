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

/// A client that keeps no idle connection: for polling thousands of node
/// agents, where a pooled connection per agent would hold its read buffer
/// (tens of KB each) between rounds for nothing.
pub(crate) fn client_without_pool() -> HttpClient {
    client_with_pool(0)
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
pub(crate) async fn get(
    client: &HttpClient,
    url: &str,
    timeout: Duration,
    limit: usize,
) -> Result<Bytes, FetchError> {
    let uri: hyper::Uri = url.parse().map_err(|_| FetchError::InvalidUrl)?;
    let work = async {
        let resp = client.get(uri).await.map_err(|_| FetchError::Connect)?;
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
