//! Command-line interface: roles as subcommands (docs/design.md section 2).

use crate::model::findings::Severity;
use crate::model::findings::Thresholds;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Default port of the `cluster` role (and `demo`); the node agent uses the next one.
pub(crate) const DEFAULT_CLUSTER_PORT: u16 = 10097;
pub(crate) const DEFAULT_NODE_PORT: u16 = 10098;

#[derive(Parser, Debug)]
#[command(
    name = "eks-ipam-exporter",
    version,
    about = "Finds, explains and pages on pod-IP exhaustion on Amazon EKS",
    long_about = "Finds, explains and pages on pod-IP exhaustion on Amazon EKS: nodes whose pods hang in \
ContainerCreating with 'failed to assign an IP address to container' although the node looks free.\n\n\
Every flag also reads the environment variable shown next to it."
)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        env = "EKS_IPAM_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    /// Log level or tracing filter (e.g. `info`, `eks_ipam_exporter=debug`).
    #[arg(
        long,
        env = "EKS_IPAM_LOG_LEVEL",
        default_value = "info",
        global = true
    )]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Cluster-wide exporter (Deployment, 1 replica): serves /metrics, /api/v1/diagnosis, /healthz, /readyz.
    #[command(
        after_help = "Examples:\n  eks-ipam-exporter cluster --bundle ./bundle --listen 127.0.0.1:10097\n  curl -s 127.0.0.1:10097/metrics | grep eks_ipam_finding"
    )]
    Cluster(ClusterArgs),
    /// Per-node agent (DaemonSet, hostNetwork): reads ipamd on the node's loopback.
    #[command(after_help = "Example:\n  eks-ipam-exporter node --node-name \"$NODE_NAME\"")]
    Node(NodeArgs),
    /// One diagnosis, printed as a table or JSON. Exit 0: nothing of severity warning or worse; 1: something; 2: error.
    #[command(
        after_help = "Examples:\n  eks-ipam-exporter diagnose --bundle ./bundle\n  eks-ipam-exporter diagnose --bundle ./bundle --output json | jq '.findings[]'"
    )]
    Diagnose(DiagnoseArgs),
    /// Writes a bundle directory from live sources (for offline diagnosis and bug reports).
    #[command(
        after_help = "Examples:\n  eks-ipam-exporter capture --out ./bundle --cluster-name prod-eks\n  eks-ipam-exporter diagnose --bundle ./bundle"
    )]
    Capture(CaptureArgs),
    /// The cluster role on a bundle embedded in the binary (both incidents plus healthy nodes).
    #[command(
        after_help = "Example:\n  eks-ipam-exporter demo &\n  curl -s 127.0.0.1:10097/metrics"
    )]
    Demo(DemoArgs),
    /// What a settings change would do to every node and subnet: the model on today's state and on the
    /// changed one. Exit 0: the change introduces no finding of severity warning or worse; 1: it does; 2: error.
    #[command(
        after_help = "Examples:\n  eks-ipam-exporter plan --bundle ./bundle --set WARM_IP_TARGET=10\n  eks-ipam-exporter plan --set RESERVED_ENIS=1 --output json | jq '.findings_introduced'\n\nSettable: aws-node WARM_IP_TARGET, MINIMUM_IP_TARGET, WARM_ENI_TARGET, WARM_PREFIX_TARGET,\nENABLE_PREFIX_DELEGATION, MAX_ENI; Karpenter RESERVED_ENIS; ec2nodeclass/NAME.maxPods."
    )]
    Plan(PlanArgs),
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Plan on a bundle directory; without it, on the live sources (as live `diagnose`).
    #[arg(long, env = "EKS_IPAM_BUNDLE")]
    pub(crate) bundle: Option<PathBuf>,
    /// A setting to change, NAME=VALUE (repeat for several).
    #[arg(
        long = "set",
        value_name = "NAME=VALUE",
        required_unless_present = "recommend"
    )]
    pub(crate) set: Vec<String>,
    /// Propose settings instead: the WARM_IP_TARGET / MINIMUM_IP_TARGET (and, with Karpenter,
    /// RESERVED_ENIS) that keep every node able to grow, with no overcommit and --headroom free IPs,
    /// holding the fewest idle IPs. Exit 0 when the proposal meets every goal, 1 when none does.
    #[arg(long, conflicts_with = "set")]
    pub(crate) recommend: bool,
    /// With --recommend: free IPs every node should keep (nodes with less room: all they have); default 5.
    #[arg(long)]
    pub(crate) headroom: Option<u32>,
    /// Output format.
    #[arg(
        long,
        short,
        env = "EKS_IPAM_OUTPUT",
        value_enum,
        default_value = "table"
    )]
    pub(crate) output: OutputFormat,
    #[command(flatten)]
    pub(crate) thresholds: ThresholdArgs,
    #[command(flatten)]
    pub(crate) live: LiveArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ThresholdArgs {
    /// No AssignPrivateIpAddresses/CreateNetworkInterface for this long, with pods waiting and no free IP, is a stall
    /// (a duration: 20m, 1h30m, 900s; at least 1m). Keep it well above CloudTrail's ~5-15 min delivery delay.
    #[arg(long, env = "EKS_IPAM_SILENCE_WINDOW", default_value = "20m", value_parser = duration_at_least::<60>)]
    pub(crate) silence_window: Duration,
    /// A subnet with fewer free IPs than this share of its size is reported as low.
    #[arg(long, env = "EKS_IPAM_SUBNET_LOW_RATIO", default_value_t = 0.10, value_parser = parse_ratio)]
    pub(crate) subnet_low_ratio: f64,
}

impl ThresholdArgs {
    pub(crate) fn thresholds(&self) -> Thresholds {
        Thresholds {
            silence_window_seconds: self.silence_window.as_secs(),
            subnet_low_ratio: self.subnet_low_ratio,
        }
    }
}

#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Address to serve on.
    #[arg(long, env = "EKS_IPAM_LISTEN", default_value_t = format!("0.0.0.0:{DEFAULT_CLUSTER_PORT}"))]
    pub(crate) listen: String,
    /// Serve a bundle directory instead of live sources.
    #[arg(long, env = "EKS_IPAM_BUNDLE")]
    pub(crate) bundle: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) web: WebArgs,
    #[command(flatten)]
    pub(crate) thresholds: ThresholdArgs,
    #[command(flatten)]
    pub(crate) live: LiveArgs,
    #[command(flatten)]
    pub(crate) schedule: ScheduleArgs,
}

/// TLS and basic auth of the HTTP server.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct WebArgs {
    /// Web config file in the Prometheus exporter-toolkit format: TLS (`tls_server_config`: cert_file,
    /// key_file, client_ca_file, client_auth_type, min_version) and basic auth (`basic_auth_users`, bcrypt
    /// hashes) for every path but /healthz and /readyz; re-read when it or a file it names changes.
    #[arg(
        long = "web.config.file",
        env = "EKS_IPAM_WEB_CONFIG_FILE",
        value_name = "FILE"
    )]
    pub(crate) config_file: Option<PathBuf>,
}

/// How often a long-running `cluster` re-reads its sources; the one-shot
/// commands (`diagnose`, `capture`) read each source once, so they take
/// none of these and use [`ScheduleArgs::default`].
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScheduleArgs {
    /// Time between EC2 refreshes (subnets, ENIs); a duration, at least 10s.
    #[arg(long, env = "EKS_IPAM_EC2_INTERVAL", default_value = "5m", value_parser = duration_at_least::<10>)]
    pub(crate) ec2_interval: Duration,
    /// Time between CloudTrail rounds (one LookupEvents query per event name); a duration, at least 5s.
    #[arg(long, env = "EKS_IPAM_CLOUDTRAIL_INTERVAL", default_value = "60s", value_parser = duration_at_least::<5>)]
    pub(crate) cloudtrail_interval: Duration,
    /// Time between pulls of the node agents; a duration, at least 1s.
    #[arg(long, env = "EKS_IPAM_AGENT_INTERVAL", default_value = "15s", value_parser = duration_at_least::<1>)]
    pub(crate) agent_interval: Duration,
    /// A Kubernetes watch failing this long shows its resource as unknown instead of its last-known state;
    /// a duration, at least 1s.
    #[arg(long, env = "EKS_IPAM_STALE_AFTER", default_value = "5m", value_parser = duration_at_least::<1>)]
    pub(crate) stale_after: Duration,
}

impl Default for ScheduleArgs {
    /// The flags' defaults (a test checks they agree).
    fn default() -> Self {
        ScheduleArgs {
            ec2_interval: Duration::from_secs(5 * 60),
            cloudtrail_interval: Duration::from_secs(60),
            agent_interval: Duration::from_secs(15),
            stale_after: Duration::from_secs(5 * 60),
        }
    }
}

/// Live sources: Kubernetes (in-cluster service account, or KUBECONFIG),
/// AWS (the default credential chain: IRSA, Pod Identity, instance profile,
/// env), and the node agents.
#[derive(Args, Debug, Clone)]
pub(crate) struct LiveArgs {
    /// Cluster name (display, and subnets tagged kubernetes.io/cluster/NAME).
    #[arg(long, env = "EKS_IPAM_CLUSTER_NAME")]
    pub(crate) cluster_name: Option<String>,
    /// AWS region (default: the SDK's chain, e.g. AWS_REGION).
    #[arg(long, env = "EKS_IPAM_REGION")]
    pub(crate) region: Option<String>,
    /// Do not call EC2 (limits fall back to the embedded table; subnets unknown).
    #[arg(long, env = "EKS_IPAM_DISABLE_EC2")]
    pub(crate) disable_ec2: bool,
    /// Do not call CloudTrail (API-call silence unknown).
    #[arg(long, env = "EKS_IPAM_DISABLE_CLOUDTRAIL")]
    pub(crate) disable_cloudtrail: bool,
    /// Most EC2 requests per minute, whatever the cluster size.
    #[arg(
        long,
        env = "EKS_IPAM_EC2_MAX_REQUESTS_PER_MINUTE",
        default_value_t = 30
    )]
    pub(crate) ec2_max_requests_per_minute: u32,
    /// How far back CloudTrail is read at start, and how long calls are kept; a duration, at least 1m.
    #[arg(long, env = "EKS_IPAM_CLOUDTRAIL_LOOKBACK", default_value = "3h", value_parser = duration_at_least::<60>)]
    pub(crate) cloudtrail_lookback: Duration,
    /// Client-side cap on LookupEvents requests per second, whatever the cluster size (the
    /// account-wide limit is 2, shared). When calls are many, rounds take longer instead.
    #[arg(long, env = "EKS_IPAM_CLOUDTRAIL_MAX_RPS", default_value_t = 0.2)]
    pub(crate) cloudtrail_max_rps: f64,
    /// How to reach node agents that serve TLS or basic auth (their --web.config.file): a YAML file
    /// like a Prometheus scrape config's client part: `scheme: https`, `tls_config` (ca_file,
    /// cert_file, key_file, server_name, insecure_skip_verify), `basic_auth` (username, password_file).
    #[arg(long, env = "EKS_IPAM_AGENT_CLIENT_CONFIG", value_name = "FILE")]
    pub(crate) agent_client_config: Option<PathBuf>,
    /// Timeout for one node agent pull; a duration, at least 1s.
    #[arg(long, env = "EKS_IPAM_AGENT_TIMEOUT", default_value = "3s", value_parser = duration_at_least::<1>)]
    pub(crate) agent_timeout: Duration,
    /// Node agents pulled at once.
    #[arg(long, env = "EKS_IPAM_AGENT_CONCURRENCY", default_value_t = 32)]
    pub(crate) agent_concurrency: usize,
    /// Namespace of the node-agent pods (default: any).
    #[arg(long, env = "EKS_IPAM_AGENT_NAMESPACE")]
    pub(crate) agent_namespace: Option<String>,
    /// How long to wait for every source's first read before serving what there is (`diagnose`: before
    /// giving up on Kubernetes); a duration, at least 1s.
    #[arg(long, env = "EKS_IPAM_READY_TIMEOUT", default_value = "60s", value_parser = duration_at_least::<1>)]
    pub(crate) ready_timeout: Duration,
    /// `cluster` sets it from its own flags; the one-shot commands keep the defaults.
    #[arg(skip)]
    pub(crate) schedule: ScheduleArgs,
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Address to serve on (the pod runs with hostNetwork: the shipped manifests pass
    /// `[$(HOST_IP)]:10098`, the host's own IP; brackets around an IPv4 address are accepted).
    #[arg(long, env = "EKS_IPAM_NODE_LISTEN", default_value_t = format!("0.0.0.0:{DEFAULT_NODE_PORT}"))]
    pub(crate) listen: String,
    #[command(flatten)]
    pub(crate) web: WebArgs,
    /// This node's name (downward API spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    pub(crate) node_name: Option<String>,
    /// ipamd introspection base URL.
    #[arg(
        long,
        env = "EKS_IPAM_IPAMD_INTROSPECTION_URL",
        default_value = "http://127.0.0.1:61679"
    )]
    pub(crate) ipamd_introspection_url: String,
    /// ipamd metrics URL.
    #[arg(
        long,
        env = "EKS_IPAM_IPAMD_METRICS_URL",
        default_value = "http://127.0.0.1:61678/metrics"
    )]
    pub(crate) ipamd_metrics_url: String,
    /// Time between reads of ipamd; a duration, at least 1s.
    #[arg(long, env = "EKS_IPAM_NODE_INTERVAL", default_value = "10s", value_parser = duration_at_least::<1>)]
    pub(crate) interval: Duration,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    /// Diagnose a bundle directory (see README: "Build a bundle by hand"); without it, the live sources.
    #[arg(long, env = "EKS_IPAM_BUNDLE")]
    pub(crate) bundle: Option<PathBuf>,
    /// Output format.
    #[arg(
        long,
        short,
        env = "EKS_IPAM_OUTPUT",
        value_enum,
        default_value = "table"
    )]
    pub(crate) output: OutputFormat,
    /// Only nodes whose name contains this, with their findings, those of the subnets and zones they draw from,
    /// and the cluster-wide ones (as the page's node filter).
    #[arg(long, env = "EKS_IPAM_NODE_FILTER")]
    pub(crate) node: Option<String>,
    /// Only findings of this severity or worse.
    #[arg(
        long,
        env = "EKS_IPAM_MIN_SEVERITY",
        value_enum,
        default_value = "info"
    )]
    pub(crate) min_severity: MinSeverity,
    /// Colour in the table: auto (a terminal, and NO_COLOR unset or empty), always or never.
    #[arg(long, env = "EKS_IPAM_COLOR", value_enum, default_value = "auto")]
    pub(crate) color: ColorChoice,
    /// Print every table column and unwrapped text whatever the terminal width (by default the
    /// table fits the terminal, or COLUMNS: the least telling columns go first and long texts wrap).
    #[arg(long, env = "EKS_IPAM_WIDE")]
    pub(crate) wide: bool,
    #[command(flatten)]
    pub(crate) thresholds: ThresholdArgs,
    #[command(flatten)]
    pub(crate) live: LiveArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour: `always`/`never` as said; `auto` only for a
    /// terminal, and not when NO_COLOR is set to anything (no-color.org).
    pub(crate) fn enabled(self, is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MinSeverity {
    Info,
    Warning,
    Critical,
}

impl MinSeverity {
    pub(crate) fn severity(self) -> Severity {
        match self {
            MinSeverity::Info => Severity::Info,
            MinSeverity::Warning => Severity::Warning,
            MinSeverity::Critical => Severity::Critical,
        }
    }
}

#[derive(Args, Debug)]
pub struct CaptureArgs {
    /// Directory to write the bundle into (created if missing).
    #[arg(long, env = "EKS_IPAM_CAPTURE_OUT")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) live: LiveArgs,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address to serve on.
    #[arg(long, env = "EKS_IPAM_LISTEN", default_value_t = format!("127.0.0.1:{DEFAULT_CLUSTER_PORT}"))]
    pub(crate) listen: String,
    #[command(flatten)]
    pub(crate) web: WebArgs,
    #[command(flatten)]
    pub(crate) thresholds: ThresholdArgs,
}

/// "20m", "1h", "90s", "1200" (seconds).
/// A duration such as `90s`, `20m`, `1h30m`, `2d` or a bare number of
/// seconds: whole numbers with the units d, h, m, s, largest first.
pub(crate) fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("invalid duration {s:?}: use e.g. 90s, 20m, 1h30m");
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        // Each unit once, largest first; a number before every unit.
        if digits.is_empty() || unit >= last_unit {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {s:?} is too large"))?;
        last_unit = unit;
        digits.clear();
    }
    if !digits.is_empty() || last_unit == u64::MAX {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// [`parse_duration`] with a minimum of `MIN` seconds: a shorter value is
/// an error, never silently raised.
pub(crate) fn duration_at_least<const MIN: u64>(s: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(MIN) {
        let min = if MIN.is_multiple_of(60) {
            format!("{}m", MIN / 60)
        } else {
            format!("{MIN}s")
        };
        return Err(format!("{s:?} is too short: at least {min}"));
    }
    Ok(d)
}

fn parse_ratio(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("invalid ratio {s:?}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("ratio {v} must be between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let secs = |s: &str| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("20m"), Ok(1200));
        assert_eq!(secs("1h"), Ok(3600));
        assert_eq!(secs("900s"), Ok(900));
        assert_eq!(secs("45"), Ok(45));
        // Compound durations, as the help says (issue 16: `1h30m` was refused).
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("2d3h4m5s"), Ok(183_845));
        for bad in [
            "soon",
            "",
            "m",
            "1x",
            "30m1h",
            "1h1h",
            "1.5h",
            "-5s",
            "99999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    /// Issue 13 item 5: a value under a flag's minimum is an error that
    /// says the minimum (it used to be raised to it silently).
    #[test]
    fn durations_below_the_minimum_are_refused() {
        assert_eq!(duration_at_least::<10>("10s"), Ok(Duration::from_secs(10)));
        let e = duration_at_least::<10>("5s").unwrap_err();
        assert!(e.contains("at least 10s"), "{e}");
        let e = duration_at_least::<60>("30s").unwrap_err();
        assert!(e.contains("at least 1m"), "{e}");
        use clap::Parser;
        let err = Cli::try_parse_from(["eks-ipam-exporter", "cluster", "--ec2-interval", "5s"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--ec2-interval") && err.contains("at least 10s"),
            "{err}"
        );
        let ok = Cli::try_parse_from(["eks-ipam-exporter", "cluster", "--silence-window", "1h30m"]);
        assert!(ok.is_ok());
    }

    /// `diagnose` and `capture` run with [`ScheduleArgs::default`]: it must
    /// be what `cluster` gets without flags.
    #[test]
    fn schedule_defaults_are_the_flags_defaults() {
        use clap::Parser;
        let cli = Cli::try_parse_from(["eks-ipam-exporter", "cluster"]).unwrap();
        let Command::Cluster(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.schedule, ScheduleArgs::default());
        // The one-shot commands do not take them.
        for cmd in ["diagnose", "capture"] {
            let err = Cli::try_parse_from(["eks-ipam-exporter", cmd, "--ec2-interval", "1m"]);
            assert!(err.is_err(), "{cmd} takes --ec2-interval");
        }
    }

    /// The README's flag table, from the same definitions `--help` prints:
    /// one row per flag (and per distinct env/default when commands differ).
    fn flags_table() -> String {
        use clap::CommandFactory;
        let root = Cli::command();
        let mut rows: Vec<(String, String, String, String, Vec<String>)> = Vec::new();
        let mut add = |cmd: &str, a: &clap::Arg| {
            let Some(long) = a.get_long() else { return };
            if a.is_hide_set() || long == "help" || long == "version" {
                return;
            }
            let env = a
                .get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_default();
            let takes_value = a.get_action().takes_values();
            let default = a
                .get_default_values()
                .iter()
                .map(|v| format!("`{}`", v.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(", ");
            let values = a
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect::<Vec<_>>();
            let flag = match (takes_value, values.is_empty()) {
                (false, _) => format!("`--{long}`"),
                (true, false) => format!("`--{long} {}`", values.join("\\|")),
                (true, true) => format!(
                    "`--{long} {}`",
                    a.get_value_names()
                        .and_then(|v| v.first())
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "VALUE".into())
                ),
            };
            let help = a
                .get_help()
                .map(|h| h.to_string())
                .unwrap_or_default()
                .replace('\n', " ")
                .replace('|', "\\|");
            match rows
                .iter_mut()
                .find(|r| r.0 == flag && r.1 == env && r.2 == default && r.3 == help)
            {
                Some(r) => r.4.push(cmd.to_string()),
                None => rows.push((flag, env, default, help, vec![cmd.to_string()])),
            }
        };
        for sub in root.get_subcommands() {
            for a in sub.get_arguments() {
                if !a.is_global_set() {
                    add(sub.get_name(), a);
                }
            }
        }
        for a in root.get_arguments().filter(|a| a.is_global_set()) {
            add("all", a);
        }
        let mut out =
            String::from("| flag | env | default | commands | meaning |\n|---|---|---|---|---|\n");
        for (flag, env, default, help, cmds) in rows {
            out.push_str(&format!(
                "| {flag} | {env} | {default} | {} | {help} |\n",
                cmds.join(", ")
            ));
        }
        out
    }

    /// Issue 16 item 4: README and `--help` agree. The table between the
    /// markers is generated; `UPDATE_README=1 cargo test flags_table` rewrites it.
    #[test]
    fn readme_flag_table_matches_the_help() {
        const BEGIN: &str = "<!-- flags: generated from --help by `UPDATE_README=1 cargo test readme_flag_table` -->\n";
        const END: &str = "<!-- flags end -->";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = readme
            .split_once(BEGIN)
            .expect("README lacks the flags marker");
        let (current, tail) = rest
            .split_once(END)
            .expect("README lacks the flags end marker");
        let want = flags_table();
        if std::env::var_os("UPDATE_README").is_some() {
            std::fs::write(&path, format!("{head}{BEGIN}{want}{END}{tail}")).unwrap();
            return;
        }
        assert_eq!(
            current, want,
            "README flags differ from --help: run UPDATE_README=1 cargo test readme_flag_table"
        );
        // Every duration flag says so and takes a compound duration (no "seconds" left).
        for line in want.lines().filter(|l| l.contains("a duration")) {
            assert!(!line.contains("in seconds"), "{line}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
