//! The `diagnose` table: findings first, then nodes at risk, then subnets.
//! `?` marks an unknown value (its source was missing), never a zero.

use crate::model::findings::Severity;
use crate::model::view::View;
use std::fmt::Write;

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "?".to_string())
}

struct Style {
    color: bool,
}

impl Style {
    fn sev(&self, s: Severity) -> String {
        let label = s.as_str().to_uppercase();
        if !self.color {
            return label;
        }
        let code = match s {
            Severity::Critical => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "36",
        };
        format!("\x1b[{code}m{label}\x1b[0m")
    }

    fn bold(&self, s: &str) -> String {
        if self.color {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

fn row(out: &mut String, widths: &[usize], cells: &[String]) {
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i + 1 == cells.len() {
            line.push_str(c);
        } else {
            let _ = write!(line, "{c:<w$}  ", w = widths[i]);
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    row(
        out,
        &widths,
        &header.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    for r in rows {
        row(out, &widths, r);
    }
}

/// Renders the view for a terminal; `color` adds ANSI colours.
pub fn render(view: &View, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    let c = &view.cluster;
    let _ = writeln!(
        out,
        "{} {} ({}), data as of {}",
        st.bold("Cluster"),
        c.name.as_deref().unwrap_or("?"),
        c.region.as_deref().unwrap_or("?"),
        view.generated_at.as_deref().unwrap_or("? (no capturedAt)")
    );
    match &c.aws_node_settings {
        Some(s) => {
            let _ = writeln!(
                out,
                "aws-node: custom networking {}, prefix delegation {}, WARM_IP_TARGET={}, MINIMUM_IP_TARGET={}, WARM_ENI_TARGET={}, WARM_PREFIX_TARGET={}",
                if s.custom_networking { "on" } else { "off" },
                if s.prefix_delegation { "on" } else { "off" },
                if s.warm_ip_target == 0 { "unset".to_string() } else { s.warm_ip_target.to_string() },
                if s.minimum_ip_target == 0 { "unset".to_string() } else { s.minimum_ip_target.to_string() },
                s.warm_eni_target,
                s.warm_prefix_target
            );
        }
        None => out.push_str("aws-node: ? (no DaemonSet data)\n"),
    }
    match (c.karpenter_installed, &c.karpenter_deployment) {
        (Some(true), Some(d)) => {
            let _ = writeln!(
                out,
                "Karpenter: {d}, RESERVED_ENIS={}",
                opt(c.karpenter_reserved_enis)
            );
        }
        (Some(false), _) => out.push_str("Karpenter: not installed\n"),
        _ => out.push_str("Karpenter: ? (no Deployment data)\n"),
    }

    out.push('\n');
    if view.findings.is_empty() {
        out.push_str("No findings.\n");
    } else {
        let _ = writeln!(out, "{} ({})", st.bold("FINDINGS"), view.findings.len());
        for f in &view.findings {
            let scope = match (f.node.is_empty(), f.subnet_id.is_empty()) {
                (false, _) => format!("node {}", f.node),
                (true, false) => format!("subnet {}", f.subnet_id),
                _ => "cluster".to_string(),
            };
            let _ = writeln!(
                out,
                "{:<8}  {}  [{}]",
                st.sev(f.severity),
                f.code.as_str(),
                scope
            );
            let _ = writeln!(out, "    {}", f.summary);
            let evidence: Vec<String> = f
                .evidence
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            if !evidence.is_empty() {
                let _ = writeln!(out, "    evidence: {}", evidence.join(", "));
            }
            let _ = writeln!(out, "    fix: {}", f.remediation);
        }
    }

    out.push('\n');
    let _ = writeln!(out, "{} ({})", st.bold("NODES"), view.nodes.len());
    let nodes = crate::model::view::by_risk(&view.nodes);
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                opt(n.instance_type.as_deref()),
                opt(n.max_pods),
                opt(n.cni_max_pods),
                opt(n.pod_ip_overcommit),
                match (n.pods_pod_network, n.pods_host_network) {
                    (Some(p), Some(h)) => format!("{p}/{h}"),
                    _ => "?".into(),
                },
                opt(n.pods_waiting_for_ip),
                n.ips
                    .map(|i| format!("{}/{}/{}", i.assigned, i.available, i.cooldown))
                    .unwrap_or_else(|| "?".into()),
                match (n.enis, n.enis_max) {
                    (e, m) if e.is_some() || m.is_some() => format!("{}/{}", opt(e), opt(m)),
                    _ => "?".into(),
                },
                n.growth_at_zero_free
                    .map(|g| g.as_str().to_string())
                    .unwrap_or_else(|| "?".into()),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "NODE",
            "TYPE",
            "MAX-PODS",
            "CNI-MAX",
            "OVERCOMMIT",
            "PODS(pod/host)",
            "WAITING",
            "IPS(asg/free/cool)",
            "ENIS",
            "AT-ZERO-FREE",
        ],
        &rows,
    );

    if !view.subnets.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "{} ({})", st.bold("SUBNETS"), view.subnets.len());
        let rows: Vec<Vec<String>> = view
            .subnets
            .iter()
            .map(|s| {
                vec![
                    s.id.clone(),
                    s.role.as_str().to_string(),
                    opt(s.zone.as_deref()),
                    opt(s.cidr.as_deref()),
                    s.available_ips.to_string(),
                    opt(s.size_ips),
                    opt(s.free_prefixes),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "SUBNET", "ROLE", "ZONE", "CIDR", "FREE-IPS", "SIZE", "FREE-/28",
            ],
            &rows,
        );
    }
    out.push_str("\n? = unknown (its source was missing from the bundle)\n");
    out
}
