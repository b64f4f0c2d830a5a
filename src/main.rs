//! Binary entry point: parse flags, set up logging, run the role. All logic
//! lives in the library.

use clap::Parser;
use eks_ipam_exporter::cli::{self, Cli, LogFormat};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn init_tracing(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal; never in files or log pipelines.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    eks_ipam_exporter::memory::tune();
    let cli = Cli::parse();
    init_tracing(cli.log_format, &cli.log_level);
    // The node agent answers a scrape and a pull every few seconds: one
    // thread is plenty, and each worker thread costs a stack and a malloc
    // arena on every node of the cluster.
    let mut builder = match cli.command {
        cli::Command::Node(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(eks_ipam_exporter::app::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
