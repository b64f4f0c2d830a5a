//! The roles wired to their sources: bundle or live collectors -> view ->
//! server or one-shot diagnosis. The clap types live in [`crate::cli`].

use crate::cli::*;
use crate::health::CollectorStatus;
use crate::model::findings::Severity;
use crate::model::findings::Thresholds;
use crate::model::view;
use crate::server::{self, AppState, Listen, Snapshot};
use crate::sources::bundle::{self, BundleFiles, DirBundle, EmbeddedBundle};
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Instant;

/// Loads a bundle and builds the view, timing it for the self-metrics.
pub fn view_from_bundle(
    files: &dyn BundleFiles,
    cfg: &Thresholds,
) -> Result<(view::View, CollectorStatus)> {
    let (_, v, status) = state_and_view_from_bundle(files, cfg)?;
    Ok((v, status))
}

/// As [`view_from_bundle`], keeping the loaded state (for `/api/v1/plan`).
fn state_and_view_from_bundle(
    files: &dyn BundleFiles,
    cfg: &Thresholds,
) -> Result<(
    Arc<crate::model::state::ClusterState>,
    view::View,
    CollectorStatus,
)> {
    let started = Instant::now();
    let state = Arc::new(bundle::load(files)?);
    let v = view::build(&state, cfg);
    let status = CollectorStatus {
        collector: "bundle",
        up: true,
        last_success_unix: Some(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0),
        duration_seconds: started.elapsed().as_secs_f64(),
        errors: Default::default(),
        requests: 0,
    };
    Ok((state, v, status))
}

async fn serve_bundle(files: &dyn BundleFiles, listen: &Listen, cfg: &Thresholds) -> Result<()> {
    serve_bundle_then(files, listen, cfg, |_| {}).await
}

/// As [`serve_bundle`], calling `on_listening` with the bound address.
async fn serve_bundle_then(
    files: &dyn BundleFiles,
    listen: &Listen,
    cfg: &Thresholds,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    let (loaded, v, status) = state_and_view_from_bundle(files, cfg)?;
    tracing::info!(
        nodes = v.nodes.len(),
        findings = v.findings.len(),
        "view built"
    );
    let state = AppState::new();
    state.publish(Snapshot::new(v, vec![status]));
    state.set_plan_source(Arc::new(move || loaded.clone()), *cfg);
    server::serve_then(listen, state, on_listening).await
}

/// Starts every live collector and the rebuild loop; `keep_for_capture`
/// makes the collectors keep what `capture` writes.
pub(crate) async fn start_live(
    a: &LiveArgs,
    app: AppState,
    cfg: Thresholds,
    keep_for_capture: bool,
) -> Result<Arc<crate::collect::Live>> {
    use crate::collect::{self, agents, cloudtrail, ec2, kube as kc, Health, Live, Source};
    use std::time::Duration;
    let health = Arc::new(Health::default());
    let changed = Arc::new(tokio::sync::Notify::new());
    let client = ::kube::Client::try_default()
        .await
        .map_err(|source| Error::KubeClient { source })?;
    let kube = kc::KubeCollector::start(
        client,
        &kc::KubeOptions {
            stale_after: a.schedule.stale_after,
            karpenter: true,
            eniconfigs: true,
            agent_namespace: a.agent_namespace.clone(),
            keep_for_capture,
        },
        health.clone(),
        changed.clone(),
    );
    let agents = agents::AgentsCollector::start(
        kube.clone(),
        agents::AgentsOptions {
            interval: a.schedule.agent_interval,
            timeout: a.agent_timeout,
            concurrency: a.agent_concurrency,
            keep_for_capture,
            client: match &a.agent_client_config {
                Some(path) => crate::http::AgentClient::from_file(path)?,
                None => crate::http::AgentClient::plain(),
            },
        },
        health.clone(),
        changed.clone(),
    );
    let mut sources: Vec<Arc<dyn Source>> = vec![kube.clone(), agents.clone()];
    let mut region = a.region.clone();
    if !(a.disable_ec2 && a.disable_cloudtrail) {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::adaptive().with_max_attempts(5));
        if let Some(r) = &a.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        region = region.or_else(|| sdk.region().map(|r| r.to_string()));
        if !a.disable_ec2 {
            sources.push(ec2::Ec2Collector::start(
                aws_sdk_ec2::Client::new(&sdk),
                kube.clone(),
                agents.clone(),
                ec2::Ec2Options {
                    interval: a.schedule.ec2_interval,
                    max_requests_per_minute: a.ec2_max_requests_per_minute,
                    keep_for_capture,
                    ..Default::default()
                },
                health.clone(),
                changed.clone(),
            ));
        }
        if !a.disable_cloudtrail {
            sources.push(cloudtrail::CloudTrailCollector::start(
                aws_sdk_cloudtrail::Client::new(&sdk),
                cloudtrail::CloudTrailOptions {
                    poll_interval: a.schedule.cloudtrail_interval,
                    lookback: a.cloudtrail_lookback,
                    max_rps: a.cloudtrail_max_rps,
                    keep_for_capture,
                    ..Default::default()
                },
                health.clone(),
                changed.clone(),
            ));
        }
    }
    let live = Arc::new(Live {
        cluster_name: a.cluster_name.clone(),
        region,
        sources,
        health,
        changed,
    });
    tokio::spawn(collect::run_rebuilder(
        live.clone(),
        move |view, collectors| app.publish_view(view, collectors),
        cfg,
        Duration::from_millis(200),
        Duration::from_secs(15),
        a.ready_timeout,
    ));
    Ok(live)
}

async fn serve_live(a: &LiveArgs, listen: &Listen, cfg: &Thresholds) -> Result<()> {
    let state = AppState::new();
    let live = start_live(a, state.clone(), *cfg, false).await?;
    state.set_plan_source(Arc::new(move || Arc::new(live.assemble())), *cfg);
    server::serve(listen, state).await
}

/// Live `diagnose`: the same collectors as `cluster`, run until every source
/// has been read once (or `--ready-timeout`), with progress on stderr.
async fn diagnose_live(a: &LiveArgs, cfg: Thresholds) -> Result<view::View> {
    let live = start_live(a, AppState::new(), cfg, false).await?;
    wait_until_read(&live, a).await?;
    Ok(view::build(&live.assemble(), &cfg))
}

/// Live `capture`: the collectors of live `diagnose`, keeping their
/// objects, then written as a bundle. Returns what was skipped.
async fn capture_live(a: &CaptureArgs) -> Result<crate::capture::Skipped> {
    let live = start_live(&a.live, AppState::new(), Thresholds::default(), true).await?;
    let unread = wait_until_read(&live, &a.live).await?;
    crate::capture::write(&a.out, &live, &unread)
}

/// Waits until every source has been read once, or `--ready-timeout`, with
/// progress and failures on stderr. Fails when Kubernetes was not read;
/// otherwise returns the sources still unread.
async fn wait_until_read(live: &crate::collect::Live, a: &LiveArgs) -> Result<Vec<&'static str>> {
    use std::io::IsTerminal;
    use std::time::Duration;
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last_len = 0;
    while !live.synced() && started.elapsed() < a.ready_timeout {
        let waiting = live.waiting_for();
        let line = format!(
            "waiting for {} ({}s)",
            waiting.join(", "),
            started.elapsed().as_secs()
        );
        if tty {
            eprint!("\r{line:<last_len$}");
            last_len = line.len();
        } else if started.elapsed().as_secs().is_multiple_of(10) {
            eprintln!("{line}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if tty {
        eprint!("\r{:<last_len$}\r", "");
    }
    let missing = live.waiting_for();
    if !missing.is_empty() {
        eprintln!(
            "note: not read within --ready-timeout: {} (shown as unknown)",
            missing.join(", ")
        );
    }
    for s in live.health.snapshot().iter().filter(|s| !s.up) {
        let kinds: Vec<&str> = s.errors.keys().map(String::as_str).collect();
        eprintln!(
            "note: {} failed ({}): {}",
            s.collector,
            kinds.join(", "),
            hint(s.collector, &kinds)
        );
    }
    if let Some((source, missing)) = live.required_unsynced().into_iter().next() {
        return Err(Error::RequiredSourceUnavailable {
            collector: source,
            missing: missing.join(", "),
            seconds: a.ready_timeout.as_secs(),
            hint: "check KUBECONFIG, the API endpoint and RBAC; `kubectl get nodes` must work",
        });
    }
    Ok(missing)
}

/// What to do about a failing collector, by error kind.
fn hint(collector: &str, kinds: &[&str]) -> &'static str {
    let has = |k: &str| kinds.contains(&k);
    match collector {
        "ec2" if has("access_denied") => {
            "grant ec2:DescribeInstanceTypes, ec2:DescribeSubnets, ec2:DescribeNetworkInterfaces and ec2:GetSubnetCidrReservations (deploy/iam-policy.json)"
        }
        "cloudtrail" if has("access_denied") => "grant cloudtrail:LookupEvents (deploy/iam-policy.json)",
        "ec2" | "cloudtrail" if has("expired_credentials") || has("credentials_or_config") => {
            "check AWS credentials and region (aws sts get-caller-identity; AWS_REGION or --region)"
        }
        "ec2" | "cloudtrail" if has("throttled") => "the account's API rate is exhausted; lower the exporter's request rates",
        "kubernetes" if has("forbidden") => "grant get/list/watch on the listed resources (deploy/rbac.yaml)",
        "ipamd" => "is the node-agent DaemonSet running? (kubectl get pods -A -l app.kubernetes.io/name=eks-ipam-exporter,app.kubernetes.io/component=node)",
        _ => "see the log (--log-level debug)",
    }
}

/// Exit code of `diagnose`: 1 when any finding is warning or worse.
pub(crate) fn diagnose_exit_code(v: &view::View) -> u8 {
    u8::from(v.findings.iter().any(|f| f.severity >= Severity::Warning))
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Cluster(a) => match &a.bundle {
            Some(dir) => {
                let listen = Listen::new(&a.listen, a.web.config_file.as_deref())?;
                let files = DirBundle::open(dir)?;
                serve_bundle(&files, &listen, &a.thresholds.thresholds()).await?;
                Ok(0)
            }
            None => {
                let listen = Listen::new(&a.listen, a.web.config_file.as_deref())?;
                let live = LiveArgs {
                    schedule: a.schedule.clone(),
                    ..a.live.clone()
                };
                serve_live(&live, &listen, &a.thresholds.thresholds()).await?;
                Ok(0)
            }
        },
        Command::Demo(a) => {
            let listen = Listen::new(&a.listen, a.web.config_file.as_deref())?;
            let scheme = listen.scheme();
            serve_bundle_then(
                &EmbeddedBundle::demo(),
                &listen,
                &a.thresholds.thresholds(),
                |addr| {
                    // The first-run path: where to look (issue 16 item 5).
                    eprintln!(
                        "demo: both incidents and healthy nodes, no cluster or AWS account needed\n  \
                         status page  {scheme}://{addr}/\n  \
                         metrics      {scheme}://{addr}/metrics\n  \
                         diagnosis    {scheme}://{addr}/api/v1/diagnosis\n\
                         Ctrl-C stops it."
                    )
                },
            )
            .await?;
            Ok(0)
        }
        Command::Diagnose(a) => {
            let cfg = a.thresholds.thresholds();
            let v = match &a.bundle {
                Some(dir) => view_from_bundle(&DirBundle::open(dir)?, &cfg)?.0,
                None => diagnose_live(&a.live, cfg).await?,
            };
            let v = v.filtered(a.node.as_deref(), a.min_severity.severity());
            use std::io::{IsTerminal, Write};
            let text = match a.output {
                OutputFormat::Json => crate::render::json::render(&v),
                OutputFormat::Table => {
                    let tty = std::io::stdout().is_terminal();
                    crate::render::table::render_with(
                        &v,
                        crate::render::table::TableOptions {
                            color: a
                                .color
                                .enabled(tty, std::env::var_os("NO_COLOR").as_deref()),
                            width: table_width(
                                a.wide,
                                tty.then(terminal_columns).flatten(),
                                std::env::var("COLUMNS").ok().as_deref(),
                            ),
                        },
                    )
                }
            };
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not an error worth a panic.
            let _ = stdout.write_all(text.as_bytes());
            Ok(diagnose_exit_code(&v))
        }
        Command::Node(a) => {
            let node_name = a.node_name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
                Error::Usage("node needs --node-name (env NODE_NAME, from the downward API spec.nodeName)".into())
            })?;
            crate::node_agent::run(
                &Listen::new(&a.listen, a.web.config_file.as_deref())?,
                crate::node_agent::AgentConfig {
                    node_name,
                    introspection_url: a.ipamd_introspection_url.clone(),
                    metrics_url: a.ipamd_metrics_url.clone(),
                    interval: a.interval,
                },
            )
            .await?;
            Ok(0)
        }
        Command::Plan(a) => {
            // clap's `requires` counts a flag's implicit `false` as present.
            if a.headroom.is_some() && !a.recommend {
                return Err(Error::Usage("--headroom needs --recommend".into()));
            }
            let changes = a
                .set
                .iter()
                .map(|s| crate::model::plan::parse_set(s))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(Error::Usage)?;
            let cfg = a.thresholds.thresholds();
            let state = match &a.bundle {
                Some(dir) => bundle::load(&DirBundle::open(dir)?)?,
                None => {
                    let live = start_live(&a.live, AppState::new(), cfg, false).await?;
                    wait_until_read(&live, &a.live).await?;
                    live.assemble()
                }
            };
            let (outcome, rec) = if a.recommend {
                let (_, o, r) =
                    crate::model::plan::recommend(&state, a.headroom.unwrap_or(5), &cfg)
                        .map_err(Error::Usage)?;
                (o, Some(r))
            } else {
                let o = crate::model::plan::run(&state, &changes, &cfg).map_err(Error::Usage)?;
                (o, None)
            };
            let text = match a.output {
                OutputFormat::Json => crate::render::plan::json_with(&outcome, rec.as_ref()),
                OutputFormat::Table => crate::render::plan::table_with(&outcome, rec.as_ref()),
            };
            use std::io::Write;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            if let Some(r) = rec {
                return Ok(u8::from(!r.meets_goals));
            }
            Ok(crate::model::plan::exit_code(&outcome.introduced))
        }
        Command::Capture(a) => {
            let skipped = capture_live(&a).await?;
            for (file, why) in &skipped {
                eprintln!("skipped {file}: {why}");
            }
            eprintln!(
                "wrote bundle to {} (diagnose it: eks-ipam-exporter diagnose --bundle {})",
                a.out.display(),
                a.out.display()
            );
            Ok(0)
        }
    }
}

/// The columns `diagnose` fits its table to: none with `--wide`; else the
/// terminal's width, else `COLUMNS`; none for a pipe without `COLUMNS`
/// (scripts get every column).
pub(crate) fn table_width(
    wide: bool,
    terminal: Option<usize>,
    columns_env: Option<&str>,
) -> Option<usize> {
    if wide {
        return None;
    }
    terminal
        .or_else(|| columns_env.and_then(|c| c.trim().parse().ok()))
        .filter(|w| *w >= 20)
}

/// The width of the terminal on stdout (TIOCGWINSZ), if it is one.
fn terminal_columns() -> Option<usize> {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass; a
    // failing call (not a terminal) leaves it zeroed and returns -1.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}
