//! The `diagnose` table: findings first, then nodes at risk, then subnets.
//! `?` marks an unknown value (its source was missing), never a zero.
//!
//! Every text that comes from data (node, cluster and subnet names, finding
//! summaries, evidence...) goes through [`sanitize`] before it is written,
//! so cluster-controlled strings cannot send terminal escapes or forge
//! table rows with a newline (the class of kubectl CVE-2021-25743).

use crate::model::findings::Severity;
use crate::model::paging;
use crate::model::view::View;
use std::borrow::Cow;
use std::fmt::Write;

/// Makes a data string safe to print on a terminal: every control character
/// (C0 `U+0000..=U+001F`, including newline and tab inside a value, DEL
/// `U+007F` and C1 `U+0080..=U+009F`, i.e. [`char::is_control`]) becomes a
/// visible `\xNN` escape of its code point in lower-case hex, so ESC is
/// written as the four characters `\x1b`. Everything else is kept as is;
/// a string without control characters is returned unchanged (borrowed).
pub(crate) fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A data string, sanitized, or `?` when unknown.
fn text(v: Option<&str>) -> String {
    v.map(|s| sanitize(s).into_owned())
        .unwrap_or_else(|| "?".to_string())
}

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

fn row<S: AsRef<str>>(out: &mut String, widths: &[usize], cells: &[S]) {
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        let c = c.as_ref();
        if i + 1 == cells.len() {
            line.push_str(c);
        } else {
            let _ = write!(line, "{c:<w$}  ", w = widths[i]);
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Writes a table. Cells are sanitized here too (a no-op for cells already
/// sanitized), and widths are measured on the sanitized text. With a
/// `width`, columns go in the order of `drop_order` (indexes; the first is
/// dropped first) until the table fits; their names are returned.
fn table(
    out: &mut String,
    header: &[&'static str],
    rows: &[Vec<String>],
    width: Option<usize>,
    drop_order: &[usize],
) -> Vec<&'static str> {
    let rows: Vec<Vec<Cow<str>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| sanitize(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut keep: Vec<bool> = vec![true; header.len()];
    let total = |keep: &[bool]| -> usize {
        let cols: Vec<usize> = (0..header.len())
            .filter(|i| keep[*i])
            .map(|i| widths[i])
            .collect();
        cols.iter().sum::<usize>() + 2 * cols.len().saturating_sub(1)
    };
    let mut dropped = Vec::new();
    if let Some(w) = width {
        for &i in drop_order {
            if total(&keep) <= w {
                break;
            }
            keep[i] = false;
            dropped.push(i);
        }
    }
    let pick = |cells: Vec<&str>| -> Vec<String> {
        cells
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep[*i])
            .map(|(_, c)| c.to_string())
            .collect()
    };
    let kept_widths: Vec<usize> = (0..header.len())
        .filter(|i| keep[*i])
        .map(|i| widths[i])
        .collect();
    row(out, &kept_widths, &pick(header.to_vec()));
    for r in &rows {
        row(
            out,
            &kept_widths,
            &pick(r.iter().map(|c| c.as_ref()).collect()),
        );
    }
    dropped.sort_unstable();
    dropped.into_iter().map(|i| header[i]).collect()
}

/// Wraps `text` at `width` columns (none: one line), every line indented
/// by `indent` spaces; a word longer than a line stays whole.
fn wrapped(out: &mut String, text: &str, indent: usize, width: Option<usize>) {
    let pad = " ".repeat(indent);
    let Some(width) = width.map(|w| w.max(indent + 20)) else {
        let _ = writeln!(out, "{pad}{text}");
        return;
    };
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = line.chars().count();
        if len > 0 && indent + len + 1 + word.chars().count() > width {
            let _ = writeln!(out, "{pad}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(out, "{pad}{line}");
}

/// The node table's columns, in display order.
const HEADERS: [&str; 11] = [
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
    "ALLOC-SILENCE",
];
/// Which node columns go first when the terminal is narrow: the ones that
/// say least about whether pods get IPs.
const NODE_DROP_ORDER: [usize; 8] = [8, 1, 5, 7, 10, 4, 3, 2];
const SUBNET_HEADERS: [&str; 7] = [
    "SUBNET", "ROLE", "ZONE", "CIDR", "FREE-IPS", "SIZE", "FREE-/28",
];
const SUBNET_DROP_ORDER: [usize; 3] = [3, 5, 6];

/// A domain suffix every dotted node name shares (`.us-west-2.compute.internal`),
/// to leave out of narrow tables; names without a dot (Auto Mode's
/// instance ids) do not count. `None` when names differ or it is short.
fn common_node_suffix(names: &[&str]) -> Option<String> {
    let dotted: Vec<&str> = names.iter().copied().filter(|n| n.contains('.')).collect();
    let first = dotted.first()?;
    let suffix = &first[first.find('.')?..];
    (suffix.len() >= 8
        && dotted
            .iter()
            .all(|n| n.ends_with(suffix) && n.len() > suffix.len()))
    .then(|| suffix.to_string())
}

/// How the table is laid out.
#[derive(Debug, Clone, Copy)]
pub struct TableOptions {
    /// ANSI colours.
    pub color: bool,
    /// Terminal columns to fit (drops columns, shortens node names, wraps
    /// prose); `None`: every column, one line per text (`--wide`, pipes).
    pub width: Option<usize>,
}

/// The overcommit as a person reads it: the pods beyond the pod IPs, or
/// `-` when they fit (a negative overcommit is spare pod IPs).
fn overcommit_text(v: Option<i64>) -> String {
    match v {
        Some(o) if o > 0 => o.to_string(),
        Some(_) => "-".to_string(),
        None => "?".to_string(),
    }
}

/// Renders the view for a terminal; `color` adds ANSI colours, every
/// column, no wrapping.
#[cfg(test)]
pub fn render(view: &View, color: bool) -> String {
    render_with(view, TableOptions { color, width: None })
}

/// Renders the view for a terminal laid out as `opts` says.
pub fn render_with(view: &View, opts: TableOptions) -> String {
    let TableOptions { color, width } = opts;
    let st = Style { color };
    let mut out = String::new();
    let c = &view.cluster;
    let _ = writeln!(
        out,
        "{} {} ({}), data as of {}",
        st.bold("Cluster"),
        text(c.name.as_deref()),
        text(c.region.as_deref()),
        view.generated_at
            .as_deref()
            .map(sanitize)
            .unwrap_or(Cow::Borrowed("? (no capturedAt)"))
    );
    match &c.aws_node_settings {
        Some(s) => {
            let line = format!(
                "aws-node: custom networking {}, prefix delegation {}, WARM_IP_TARGET={}, MINIMUM_IP_TARGET={}, WARM_ENI_TARGET={}, WARM_PREFIX_TARGET={}",
                if s.custom_networking { "on" } else { "off" },
                if s.prefix_delegation { "on" } else { "off" },
                if s.warm_ip_target == 0 { "unset".to_string() } else { s.warm_ip_target.to_string() },
                if s.minimum_ip_target == 0 { "unset".to_string() } else { s.minimum_ip_target.to_string() },
                s.warm_eni_target,
                s.warm_prefix_target
            );
            wrapped(&mut out, &line, 0, width);
        }
        None => out.push_str("aws-node: ? (no DaemonSet data)\n"),
    }
    match (c.karpenter_installed, &c.karpenter_deployment) {
        (Some(true), Some(d)) => {
            let _ = writeln!(
                out,
                "Karpenter: {}, RESERVED_ENIS={}",
                sanitize(d),
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
                (false, _) => format!("node {}", sanitize(&f.node)),
                (true, false) => format!("subnet {}", sanitize(&f.subnet_id)),
                _ => "cluster".to_string(),
            };
            let head = format!("{:<8}  {}", st.sev(f.severity), f.code.as_str());
            // `[scope]` on the same line when it fits (colour codes take no columns).
            let visible = 10 + f.code.as_str().len() + 4 + scope.chars().count();
            if width.is_some_and(|w| visible > w) {
                let _ = writeln!(out, "{head}");
                let _ = writeln!(out, "    [{scope}]");
            } else {
                let _ = writeln!(out, "{head}  [{scope}]");
            }
            wrapped(&mut out, &sanitize(&f.summary), 4, width);
            let evidence: Vec<String> = f
                .evidence
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let kv = match v {
                        serde_json::Value::String(s) => format!("{k}={s}"),
                        serde_json::Value::Number(n) => format!(
                            "{}={}",
                            k.strip_suffix("_seconds").unwrap_or(k),
                            super::evidence_number(k, n.as_f64().unwrap_or(f64::NAN))
                        ),
                        // A list of names, spaced so that it wraps.
                        serde_json::Value::Array(items) if items.iter().all(|i| i.is_string()) => {
                            format!(
                                "{k}=[{}]",
                                items
                                    .iter()
                                    .filter_map(|i| i.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                        // JSON escapes C0 controls in nested strings, not C1.
                        other => format!("{k}={other}"),
                    };
                    sanitize(&kv).into_owned()
                })
                .collect();
            if !evidence.is_empty() {
                wrapped(
                    &mut out,
                    &format!("evidence: {}", evidence.join(", ")),
                    4,
                    width,
                );
            }
            wrapped(
                &mut out,
                &format!("fix: {}", sanitize(&f.remediation)),
                4,
                width,
            );
            let p = paging::paging(f);
            match width {
                // The whole URL does not wrap: the path is enough to find it.
                Some(_) => {
                    let _ = writeln!(out, "    runbook: docs/runbook.md#{}", p.runbook_anchor);
                }
                None => {
                    let _ = writeln!(out, "    runbook: {}", p.runbook_url());
                }
            }
        }
    }

    out.push('\n');
    let _ = writeln!(out, "{} ({})", st.bold("NODES"), view.nodes.len());
    let nodes = crate::model::view::by_risk(&view.nodes);
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let suffix = width.and_then(|_| common_node_suffix(&names));
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let name = match &suffix {
                Some(sfx) => n.name.strip_suffix(sfx.as_str()).unwrap_or(&n.name),
                None => n.name.as_str(),
            };
            vec![
                sanitize(name).into_owned(),
                text(n.instance_type.as_deref()),
                opt(n.max_pods),
                opt(n.cni_max_pods),
                overcommit_text(n.pod_ip_overcommit),
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
                n.allocation_silence()
                    .map(|s| super::silence_text(&s))
                    .unwrap_or_else(|| "?".into()),
            ]
        })
        .collect();
    let hidden = table(&mut out, &HEADERS, &rows, width, &NODE_DROP_ORDER);
    if let Some(sfx) = &suffix {
        let _ = writeln!(out, "(node names without {} at the end)", sanitize(sfx));
    }
    if !hidden.is_empty() {
        let note = format!(
            "({} hidden to fit {} columns: --wide shows every column)",
            hidden.join(", "),
            width.unwrap_or_default()
        );
        wrapped(&mut out, &note, 0, width);
    }

    if !view.subnets.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "{} ({})", st.bold("SUBNETS"), view.subnets.len());
        let rows: Vec<Vec<String>> = view
            .subnets
            .iter()
            .map(|s| {
                vec![
                    sanitize(&s.id).into_owned(),
                    s.role.as_str().to_string(),
                    text(s.zone.as_deref()),
                    text(s.cidr.as_deref()),
                    s.available_ips.to_string(),
                    opt(s.size_ips),
                    opt(s.free_prefixes),
                ]
            })
            .collect();
        let hidden = table(&mut out, &SUBNET_HEADERS, &rows, width, &SUBNET_DROP_ORDER);
        if !hidden.is_empty() {
            let _ = writeln!(
                out,
                "({} hidden: --wide shows every column)",
                hidden.join(", ")
            );
        }
    }
    out.push('\n');
    wrapped(
        &mut out,
        "? = unknown (its source was missing or could not be read). OVERCOMMIT: pods max-pods allows beyond the node's \
         pod IPs (- = none: they fit). AT-ZERO-FREE: what ipamd does once no IP is free. ALLOC-SILENCE: time since the \
         last AssignPrivateIpAddresses or CreateNetworkInterface for the node's ENIs (> = none since CloudTrail coverage began).",
        0,
        width,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::analysis::{SubnetAnalysis, SubnetRole};
    use crate::model::findings::{Finding, FindingCode, Thresholds};
    use crate::model::fixtures::{Cluster, Node};
    use crate::model::view::build;

    #[test]
    fn sanitize_escapes_control_characters_only() {
        assert!(matches!(sanitize("ip-10-0-1-5.ec2"), Cow::Borrowed(_)));
        assert_eq!(sanitize("naïve-ü"), "naïve-ü");
        assert_eq!(sanitize("a\x1b[2Jb"), r"a\x1b[2Jb");
        assert_eq!(sanitize("a\nb\tc\rd\x07\x00"), r"a\x0ab\x09c\x0dd\x07\x00");
        assert_eq!(sanitize("del\x7f c1\u{9b}31m"), r"del\x7f c1\x9b31m");
    }

    #[test]
    fn hostile_node_name_cannot_send_escapes_or_forge_rows() {
        let evil = "evil\x1b]0;pwned\x07\nFAKE ROW";
        let view = |name: &str| {
            let c = Cluster::new().node(Node::new(name, "m5.large", 29));
            build(&c.state, &Thresholds::default())
        };
        let out = render(&view(evil), false);
        assert!(!out.contains('\x1b'), "{out:?}");
        assert!(!out.contains('\x07'), "{out:?}");
        assert!(out.contains(r"evil\x1b]0;pwned\x07\x0aFAKE ROW"), "{out}");
        assert!(!out.lines().any(|l| l.starts_with("FAKE ROW")), "{out}");
        let benign = render(&view("evil-0-pwned-FAKE-ROW"), false);
        assert_eq!(out.lines().count(), benign.lines().count(), "{out}");

        // With colours on, the only escapes are our own SGR codes.
        let coloured = render(&view(evil), true);
        assert!(!coloured.contains('\x07'), "{coloured:?}");
        assert!(!coloured.contains("\x1b]"), "{coloured:?}");
        assert!(!coloured.contains("\nFAKE ROW"), "{coloured:?}");
    }

    /// A view with `s` in every data string the table prints.
    fn view_with(s: &str) -> View {
        let c = Cluster::new()
            .node(Node::new(&format!("node-{s}"), &format!("type-{s}"), 29))
            .with_state(|st| {
                st.cluster_name = Some(format!("cluster-{s}"));
                st.region = Some(format!("region-{s}"));
            });
        let mut view = build(&c.state, &Thresholds::default());
        view.generated_at = Some(format!("time-{s}"));
        view.cluster.karpenter_installed = Some(true);
        view.cluster.karpenter_deployment = Some(format!("karpenter-{s}"));
        for n in &mut view.nodes {
            n.zone = Some(format!("zone-{s}"));
        }
        view.subnets.push(SubnetAnalysis {
            id: format!("subnet-{s}"),
            zone: Some(format!("zone-{s}")),
            role: SubnetRole::Node,
            cni_use: crate::model::analysis::CniUse::Node,
            zone_candidates: 1,
            cidr: Some(format!("cidr-{s}")),
            available_ips: 3,
            size_ips: Some(251),
            free_prefixes: Some(0),
            prefix_reserved_free_ips: None,
            holders: None,
            nodes: 1,
        });
        let scopes = [
            (format!("node-{s}"), String::new()),
            (String::new(), format!("subnet-{s}")),
        ];
        for (node, subnet_id) in scopes {
            view.findings.push(Finding {
                code: FindingCode::SubnetIpsLow,
                severity: Severity::Warning,
                node,
                subnet_id,
                availability_zone: String::new(),
                summary: format!("summary-{s}"),
                remediation: format!("fix-{s}"),
                evidence: [
                    (format!("key-{s}"), serde_json::json!(format!("value-{s}"))),
                    ("list".to_string(), serde_json::json!([format!("c1-{s}")])),
                ]
                .into_iter()
                .collect(),
            });
        }
        view
    }

    #[test]
    fn no_control_character_from_data_reaches_the_output() {
        let hostile = "\x1b[31m\x1b]8;;http://x\x07\x00\x08\r\n\tFORGED  row\x7f\u{85}\u{9b}2J";
        let out = render(&view_with(hostile), false);
        for (i, b) in out.bytes().enumerate() {
            assert!(
                b == b'\n' || (0x20..0x7f).contains(&b) || b >= 0x80,
                "control byte {b:#04x} at {i}: {out:?}"
            );
        }
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(!out.contains("\nFORGED"), "{out}");
        let benign = render(&view_with("plain"), false);
        assert_eq!(out.lines().count(), benign.lines().count(), "{out}");
        let fields = [
            "node-",
            "type-",
            "cluster-",
            "region-",
            "time-",
            "karpenter-",
            "summary-",
            "fix-",
            "key-",
            "value-",
            "subnet-",
            "zone-",
            "cidr-",
        ];
        for want in fields {
            assert!(
                out.contains(&format!(r"{want}\x1b[31m\x1b]8;;http://x\x07")),
                "{want} missing or not escaped: {out}"
            );
        }
    }

    #[test]
    fn widths_are_measured_on_the_sanitized_text() {
        let out = render(&view_with("\x1b\x1b\x1b"), false);
        let lines: Vec<&str> = out.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("SUBNET ")).unwrap();
        let row = lines[header + 1];
        // The ROLE column starts where the header's does.
        let col = lines[header].find("ROLE").unwrap();
        assert_eq!(&row[col..col + 4], "node", "{out}");
    }
}
