//! HTTP load: N concurrent keep-alive clients for a fixed time; latency
//! percentiles and throughput. Bodies are read to the end and counted, not kept.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

pub type Http = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> Http {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build_http()
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub clients: usize,
    pub requests: u64,
    pub failed: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub bytes_per_request: u64,
}

async fn send(c: &Http, req: hyper::Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
    let resp = tokio::time::timeout(Duration::from_secs(60), c.request(req)).await??;
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((code, body))
}

pub async fn get(c: &Http, url: &str, gzip: bool) -> anyhow::Result<(u16, Bytes)> {
    let mut b = hyper::Request::get(url);
    if gzip {
        b = b.header("accept-encoding", "gzip");
    }
    send(c, b.body(Full::new(Bytes::new()))?).await
}

pub async fn post(c: &Http, url: &str, body: String) -> anyhow::Result<(u16, Bytes)> {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    send(c, req).await
}

/// One scrape, body counted frame by frame (no copy of a multi-MB body).
async fn scrape(c: &Http, url: &str, gzip: bool) -> anyhow::Result<u64> {
    let mut b = hyper::Request::get(url);
    if gzip {
        b = b.header("accept-encoding", "gzip");
    }
    let resp = c.request(b.body(Full::new(Bytes::new()))?).await?;
    if resp.status() != 200 {
        anyhow::bail!("status {}", resp.status());
    }
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(f) = body.frame().await {
        if let Ok(d) = f?.into_data() {
            n += d.len() as u64;
        }
    }
    Ok(n)
}

pub async fn run(c: &Http, url: &str, clients: usize, dur: Duration, gzip: bool) -> Stats {
    let end = Instant::now() + dur;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (c, url) = (c.clone(), url.to_string());
            tokio::spawn(async move {
                let (mut lat, mut failed, mut bytes) = (Vec::new(), 0u64, 0u64);
                while Instant::now() < end {
                    let t = Instant::now();
                    match scrape(&c, &url, gzip).await {
                        Ok(n) => {
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                            bytes = n;
                        }
                        Err(_) => failed += 1,
                    }
                }
                (lat, failed, bytes)
            })
        })
        .collect();
    let (mut all, mut failed, mut bytes) = (Vec::new(), 0, 0);
    for t in tasks {
        if let Ok((l, f, b)) = t.await {
            all.extend(l);
            failed += f;
            bytes = bytes.max(b);
        }
    }
    let took = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Stats {
        clients,
        requests: all.len() as u64,
        failed,
        requests_per_second: all.len() as f64 / took,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: all.last().copied().unwrap_or(0.0),
        bytes_per_request: bytes,
    }
}
