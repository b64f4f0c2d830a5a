//! eks-ipam-exporter: finds, explains and pages on pod-IP exhaustion on Amazon EKS.
//!
//! Data flows one way: `sources` read outside data into the typed raw state
//! ([`model::state::ClusterState`]); the pure `model` turns it into one
//! [`model::view::View`]; `render` turns the view into Prometheus exposition,
//! a table or JSON; `server` serves the latest rendered view.

pub mod app;
pub mod capture;
pub mod cli;
pub mod collect;
pub mod gzip;
pub mod health;
pub mod http;
pub mod memory;
pub mod model;
pub mod node_agent;
pub mod render;
pub mod server;
pub mod sources;
pub mod web;

use std::path::PathBuf;

/// Every error the library reports. Label values for self-metrics come from
/// [`Error::kind`], never from the formatted message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bundle directory {} does not exist or is not a directory", path.display())]
    BundleNotFound { path: PathBuf },

    #[error("{file}: cannot read")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{file}: malformed JSON")]
    Json {
        file: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{file}: {message}")]
    Invalid { file: String, message: String },

    #[error("cannot listen on {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    #[error("HTTP server failed")]
    Serve {
        #[source]
        source: std::io::Error,
    },

    #[error("{what} needs live sources (Kubernetes API, EC2, CloudTrail, ipamd), which this build does not have yet; use --bundle DIR or `demo`")]
    LiveSourcesUnavailable { what: &'static str },

    #[error("cannot set up the Kubernetes client (in a pod: the service account; elsewhere: KUBECONFIG or ~/.kube/config)")]
    KubeClient {
        #[source]
        source: kube::Error,
    },

    #[error("{collector} was not read within --ready-timeout ({seconds}s): {missing}; no diagnosis without it ({hint})")]
    RequiredSourceUnavailable {
        collector: &'static str,
        missing: String,
        seconds: u64,
        hint: &'static str,
    },

    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// A closed set of error kinds for metric labels and exit-code decisions.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::BundleNotFound { .. } => "bundle_not_found",
            Error::Read { .. } => "read",
            Error::Json { .. } => "malformed_json",
            Error::Invalid { .. } => "invalid",
            Error::Listen { .. } => "listen",
            Error::Serve { .. } => "serve",
            Error::LiveSourcesUnavailable { .. } => "live_sources_unavailable",
            Error::KubeClient { .. } => "kube_client",
            Error::RequiredSourceUnavailable { .. } => "required_source_unavailable",
            Error::Usage(_) => "usage",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Version reported in `eks_ipam_build_info` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
