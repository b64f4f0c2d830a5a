//! Fake Kubernetes apiserver serving a bundle's kubernetes/*.json over the real HTTP API.
//!
//!     target/debug/examples/kube_apiserver --bundle DIR [--port 0] [--token T]
//!
//! Prints `LISTENING kube-apiserver 127.0.0.1:<port>` once it accepts connections; exits 0 on
//! SIGTERM or SIGINT, also while watches are open. What it reproduces: see fake.rs.

mod fake;

use clap::Parser;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Fake Kubernetes apiserver serving a bundle's kubernetes/*.json")]
struct Args {
    /// Bundle directory (reads <bundle>/kubernetes/<resource>.json).
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Require `Authorization: Bearer TOKEN`.
    #[arg(long)]
    token: Option<String>,
    /// User named in 403 messages.
    #[arg(long)]
    user: Option<String>,
    /// Seconds between BOOKMARKs on watches that allow them.
    #[arg(long, default_value_t = 2.0)]
    bookmark_interval: f64,
    /// Events kept for watch replay (older revisions answer 410, like etcd compaction).
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    #[arg(long)]
    git_version: Option<String>,
    /// /version "minor" (EKS answers e.g. "33+").
    #[arg(long)]
    minor: Option<String>,
}

fn fail(msg: String) -> ! {
    eprintln!("kube_apiserver: {msg}");
    std::process::exit(2)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = Args::parse();
    if !a.bundle.is_dir() {
        fail(format!("bundle {} is not a directory", a.bundle.display()));
    }
    if !(a.bookmark_interval.is_finite() && a.bookmark_interval > 0.0) {
        fail(format!(
            "--bookmark-interval must be a positive number of seconds, got {}",
            a.bookmark_interval
        ));
    }
    let mut cfg = fake::Config {
        token: a.token,
        bookmark_interval: Duration::from_secs_f64(a.bookmark_interval),
        history: a.history.max(1),
        ..Default::default()
    };
    if let Some(u) = a.user {
        cfg.user = u;
    }
    if let Some(v) = a.git_version {
        cfg.git_version = v;
    }
    if let Some(m) = a.minor {
        cfg.minor = m;
    }
    let store = fake::Store::new(cfg);
    if let Err(e) = fake::lock(&store).load_bundle(&a.bundle) {
        fail(format!("cannot load {}: {e}", a.bundle.display()));
    }
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", a.port)).await {
        Ok(l) => l,
        Err(e) => fail(format!("cannot listen on 127.0.0.1:{}: {e}", a.port)),
    };
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| fail(format!("local_addr: {e}")));
    let app = axum::Router::new().fallback(fake::handle).with_state(store);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            fail(format!("server: {e}"));
        }
    });
    println!("LISTENING kube-apiserver {addr}");
    let _ = std::io::stdout().flush();
    // Open watches never end by themselves: exit without waiting for them.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| fail(format!("SIGTERM handler: {e}")));
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    std::process::exit(0)
}
