//! The `/` status page: findings first, then nodes by risk with a capacity
//! bar, then subnets. Server-rendered and self-contained (no CDN, fonts or
//! scripts: clusters are often air-gapped). Every value from the cluster is
//! HTML-escaped. Filtering is a plain GET form, so it works without JavaScript.

use crate::health::CollectorStatus;
use crate::model::analysis::NodeAnalysis;
use crate::model::findings::{human_duration, Finding, Severity};
use crate::model::growth::GrowthOutcome;
use crate::model::paging;
use crate::model::view::{by_risk, node_in_scope, View};
use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Page filters from the query string.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Filter {
    /// Substring of the node name.
    #[serde(default)]
    pub(crate) node: Option<String>,
    /// Exact availability zone.
    #[serde(default)]
    pub(crate) zone: Option<String>,
    /// Reload the page every this many seconds (at least 10). Off by
    /// default: a reload closes the evidence someone is reading.
    #[serde(default, deserialize_with = "empty_or_seconds")]
    pub(crate) refresh: Option<u32>,
}

/// The form sends `refresh=` for "off"; anything but a number is off too.
fn empty_or_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(s.and_then(|s| s.trim().parse().ok()))
}

impl Filter {
    fn node_matches(&self, n: &NodeAnalysis) -> bool {
        node_in_scope(n, self.node.as_deref(), self.zone.as_deref())
    }

    /// The query string of this filter (for the reload link).
    fn query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [("node", &self.node), ("zone", &self.zone)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{k}={}", url_encode(v)));
            }
        }
        if let Some(r) = self.refresh_seconds() {
            parts.push(format!("refresh={r}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }

    fn refresh_seconds(&self) -> Option<u32> {
        self.refresh.filter(|r| *r > 0).map(|r| r.max(10))
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const CSS: &str = r#"
:root{--crit:#c62828;--warn:#ef6c00;--info:#1565c0;--ok:#2e7d32;--muted:#666;--bg:#fafafa;--line:#ddd}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:var(--bg);color:#111}
header{background:#1f2937;color:#fff;padding:12px 16px}header h1{font-size:18px;margin:0}
header .meta{color:#cbd5e1;font-size:13px;margin-top:4px}main{padding:12px 16px;max-width:1200px;margin:auto}
h2{font-size:16px;margin:20px 0 8px}.pill{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;color:#fff}
.critical{background:var(--crit)}.warning{background:var(--warn)}.info{background:var(--info)}.ok{background:var(--ok)}.down{background:var(--crit)}
.finding{background:#fff;border:1px solid var(--line);border-left:5px solid var(--line);border-radius:4px;padding:8px 12px;margin:8px 0}
.finding.sev-critical{border-left-color:var(--crit)}.finding.sev-warning{border-left-color:var(--warn)}.finding.sev-info{border-left-color:var(--info)}
.finding .code{font-weight:600}.finding .scope{color:var(--muted)}.finding p{margin:4px 0;overflow-wrap:anywhere}
.finding .fix{background:#f1f8e9;padding:6px 8px;border-radius:3px}code{background:#eee;padding:0 3px;border-radius:3px;word-break:break-word}
details summary{cursor:pointer;color:var(--muted)}dl.ev{display:grid;grid-template-columns:max-content 1fr;gap:0 12px;margin:4px 0}
dl.ev dt{color:var(--muted)}dl.ev dd{margin:0;word-break:break-word}
table{border-collapse:collapse;width:100%;background:#fff}th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{position:relative;height:14px;min-width:140px;background:#eceff1;border-radius:3px;overflow:hidden}
.bar span{position:absolute;top:0;bottom:0}.bar .used{background:#66bb6a}.bar .wait{background:var(--crit)}
.bar .over{background:repeating-linear-gradient(45deg,#ffcdd2,#ffcdd2 4px,#fff 4px,#fff 8px)}
.bar .cap{width:2px;background:#1b5e20}.bar .max{width:2px;background:#111}
p.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
form.filter{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin:8px 0}form.filter label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
form.filter input{font:inherit;padding:4px 6px}form.filter button{font:inherit;padding:4px 12px}
.unknown{color:var(--muted)}.scroll{overflow-x:auto}
code.cmd{display:inline-block;background:#263238;color:#eceff1;padding:1px 6px;user-select:all;white-space:pre-wrap;word-break:break-all}
.pages{color:var(--muted);font-size:13px}.pages a{color:var(--info)}
table.ev{width:auto;margin:4px 0;font-size:13px}table.ev th{text-align:left;padding:2px 8px 2px 0;white-space:nowrap}
table.ev td{padding:2px 8px 2px 0;border:0}table.ev table.ev{background:#fafafa}
dl.badges{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0;font-size:13px}dl.badges dd{margin:0}
header a{color:#cbd5e1}
@media (max-width:700px){th.hide,td.hide{display:none}main{padding:8px}}
"#;

fn num<T: std::fmt::Display>(v: Option<T>) -> String {
    match v {
        Some(v) => escape(&v.to_string()),
        None => {
            "<span class=\"unknown\" title=\"unknown: its source is missing\">?</span>".to_string()
        }
    }
}

/// The capacity bar: pods using IPs (green), waiting (red), the real
/// CNI capacity (green line), the assumed max pods (black line), and the
/// overcommitted range between them (hatched).
fn bar(n: &NodeAnalysis) -> String {
    let (Some(max), Some(cni)) = (n.max_pods, n.cni_max_pods) else {
        return "<span class=\"unknown\">?</span>".to_string();
    };
    let pods = n.pods_pod_network.unwrap_or(0) + n.pods_host_network.unwrap_or(0);
    let waiting = n.pods_waiting_for_ip.unwrap_or(0);
    let scale = f64::from(max.max(cni).max(pods).max(1));
    let pct = |v: u32| 100.0 * f64::from(v) / scale;
    let used = pods.saturating_sub(waiting);
    let mut s = String::from("<div class=\"bar\" role=\"img\" aria-label=\"");
    let _ = write!(
        s,
        "{used} pods placed with an IP or host network, {waiting} waiting; CNI can serve {cni}; scheduler assumes {max}\">"
    );
    if max > cni {
        let _ = write!(
            s,
            "<span class=\"over\" style=\"left:{:.1}%;width:{:.1}%\"></span>",
            pct(cni),
            pct(max - cni)
        );
    }
    let _ = write!(
        s,
        "<span class=\"used\" style=\"left:0;width:{:.1}%\"></span>",
        pct(used)
    );
    if waiting > 0 {
        let _ = write!(
            s,
            "<span class=\"wait\" style=\"left:{:.1}%;width:{:.1}%\"></span>",
            pct(used),
            pct(waiting)
        );
    }
    let _ = write!(
        s,
        "<span class=\"cap\" style=\"left:calc({:.1}% - 2px)\"></span>",
        pct(cni)
    );
    let _ = write!(
        s,
        "<span class=\"max\" style=\"left:calc({:.1}% - 2px)\"></span>",
        pct(max)
    );
    s.push_str("</div>");
    s
}

/// Text with backtick-quoted commands as `<code class="cmd">` (no
/// backticks left to copy along; one click selects the whole command).
/// An unpaired backtick stays as text.
fn with_commands(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    let mut out = String::with_capacity(text.len() + 32);
    for (i, part) in parts.iter().enumerate() {
        let paired = i % 2 == 1 && i + 1 < parts.len();
        if paired {
            let _ = write!(out, "<code class=\"cmd\">{}</code>", escape(part));
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            out.push_str(&escape(part));
        }
    }
    out
}

/// An evidence key as a label: `silence_seconds` -> `silence`,
/// `pods_waiting_for_ip` -> `pods waiting for ip`.
fn evidence_label(key: &str) -> String {
    super::evidence_base(key).replace('_', " ")
}

/// One evidence value, HTML-escaped, with its unit: durations as `2h30m`
/// (the seconds on hover), ratios as percentages, integers without `.0`,
/// null as unknown; lists of records as a small table.
fn evidence_value(key: &str, v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "<span class=\"unknown\">unknown</span>".to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if key.ends_with("_seconds") && x.is_finite() {
                format!(
                    "<span title=\"{} s\">{}</span>",
                    escape(&super::plain_number(x)),
                    escape(&super::evidence_number(key, x))
                )
            } else {
                escape(&super::evidence_number(key, x))
            }
        }
        Value::String(s) => escape(s),
        Value::Array(items) if items.is_empty() => "none".to_string(),
        Value::Array(items) if items.iter().all(Value::is_object) => {
            let mut cols: Vec<&str> = Vec::new();
            for item in items {
                for k in item.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !cols.contains(&k.as_str()) {
                        cols.push(k);
                    }
                }
            }
            let mut t = String::from("<table class=\"ev\"><tr>");
            for c in &cols {
                let _ = write!(t, "<th>{}</th>", escape(&evidence_label(c)));
            }
            t.push_str("</tr>");
            for item in items {
                t.push_str("<tr>");
                for c in &cols {
                    let cell = item.get(*c).unwrap_or(&Value::Null);
                    let _ = write!(t, "<td>{}</td>", evidence_value(c, cell));
                }
                t.push_str("</tr>");
            }
            t.push_str("</table>");
            t
        }
        Value::Array(items) => items
            .iter()
            .map(|i| evidence_value(key, i))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{}: {}", escape(&evidence_label(k)), evidence_value(k, v)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn severity_title(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical: pods fail or will fail now; pages at once",
        Severity::Warning => {
            "warning: will fail under load or needs a change; pages in working hours"
        }
        Severity::Info => "info: worth knowing; pages no one",
    }
}

fn finding_html(f: &Finding, out: &mut String) {
    let scope = if !f.node.is_empty() {
        format!("node {}", escape(&f.node))
    } else if !f.subnet_id.is_empty() {
        format!("subnet {}", escape(&f.subnet_id))
    } else if !f.availability_zone.is_empty() {
        format!("zone {}", escape(&f.availability_zone))
    } else {
        "cluster".to_string()
    };
    let sev = f.severity.as_str();
    let paging = paging::paging(f);
    let pages = if paging.alerts.is_empty() {
        "Pages: no alert (shown here, in diagnose and as eks_ipam_finding)".to_string()
    } else {
        let alerts: Vec<String> = paging
            .alerts
            .iter()
            .map(|a| format!("{} ({})", a.name, a.severity.as_str()))
            .collect();
        format!("Pages as: {}", alerts.join(", "))
    };
    let _ = write!(
        out,
        "<section class=\"finding sev-{sev}\" data-code=\"{code}\" data-severity=\"{sev}\" data-node=\"{node}\" data-scope=\"{scope_kind}\">\
         <div><span class=\"pill {sev}\" title=\"{sev_title}\">{sev_up}</span> <span class=\"code\">{code}</span> <span class=\"scope\">{scope}</span></div>\
         <p>{summary}</p><p class=\"fix\"><strong>Fix:</strong> {fix}</p>\
         <p class=\"pages\">{pages} &middot; <a class=\"runbook\" href=\"{runbook}\">runbook</a></p>\
         <details><summary>evidence</summary><table class=\"ev\">",
        code = f.code.as_str(),
        node = escape(&f.node),
        scope_kind = if !f.node.is_empty() { "node" } else if !f.subnet_id.is_empty() || !f.availability_zone.is_empty() { "subnet" } else { "cluster" },
        sev_title = severity_title(f.severity),
        sev_up = sev.to_uppercase(),
        summary = escape(&f.summary),
        fix = with_commands(&f.remediation),
        pages = escape(&pages),
        runbook = escape(&paging.runbook_url()),
    );
    for (k, v) in &f.evidence {
        let _ = write!(
            out,
            "<tr data-key=\"{}\"><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(&evidence_label(k)),
            evidence_value(k, v)
        );
    }
    out.push_str("</table></details></section>");
}

/// The badges and marks of the page, explained once.
fn legend(out: &mut String) {
    out.push_str(
        "<details id=\"legend\"><summary>What the badges mean</summary><dl class=\"badges\">",
    );
    for s in [Severity::Critical, Severity::Warning, Severity::Info] {
        let _ = write!(
            out,
            "<dt><span class=\"pill {0}\">{1}</span></dt><dd>{2}</dd>",
            s.as_str(),
            s.as_str().to_uppercase(),
            escape(severity_title(s))
        );
    }
    out.push_str(
        "<dt><span class=\"pill ok\">kubernetes up</span> <span class=\"pill down\">ec2 down</span></dt>\
         <dd>a collector's state: up when its last read worked (hover for the time of its last success); \
         numbers from a collector that is down are unknown, not zero</dd>",
    );
    for g in GrowthOutcome::ALL {
        let badge = if g.blocked() {
            format!("<span class=\"pill critical\">{}</span>", g.as_str())
        } else {
            g.as_str().to_string()
        };
        let _ = write!(
            out,
            "<dt>{badge}</dt><dd>growth at 0 free: {}</dd>",
            escape(g.explain())
        );
    }
    out.push_str(
        "<dt><span class=\"unknown\">?</span></dt><dd>unknown: the source of this number is missing or could not be read</dd>\
         <dt>allocation silence</dt><dd>time since CloudTrail last showed AssignPrivateIpAddresses or CreateNetworkInterface \
         for the node's ENIs; &gt; means none was seen since CloudTrail coverage started. Normal on an idle node.</dd>\
         </dl></details>",
    );
}

/// "3m ago" for data generated at `generated_at` (RFC 3339), seen at `now_unix`.
fn data_age(generated_at: Option<&str>, now_unix: f64) -> Option<String> {
    let t: jiff::Timestamp = generated_at?.parse().ok()?;
    let age = now_unix - t.as_millisecond() as f64 / 1000.0;
    Some(if age < -1.0 {
        format!("{} in the future: check the clocks", human_duration(-age))
    } else {
        format!("{} ago", human_duration(age))
    })
}

/// Renders the page for one request.
/// `/plan`: `plan`'s table for `sets` (or the reason it could not run), with
/// the form to try another change and the JSON link.
pub(crate) fn plan_page(sets: &[String], result: Result<&str, &str>) -> String {
    let query: String = sets
        .iter()
        .map(|s| format!("set={}", url_component(s)))
        .collect::<Vec<_>>()
        .join("&amp;");
    let body = match result {
        Ok(table) => format!(
            "<pre class=\"plan\">{}</pre><p><a href=\"/api/v1/plan?{query}\">as JSON</a></p>",
            escape(table)
        ),
        Err(e) => format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>eks-ipam-exporter: plan</title><style>{CSS} pre.plan{{overflow-x:auto;font-size:12px}}</style></head><body>\
         <header><h1><a href=\"/\">eks-ipam-exporter</a>: what if {}</h1></header><main>\
         <form class=\"filter whatif\" method=\"get\" action=\"/plan\"><label>what if<input name=\"set\" value=\"{}\" \
         aria-label=\"setting to change, NAME=VALUE\"></label><button type=\"submit\">Plan</button></form>{body}</main></body></html>",
        escape(&sets.join(" ")),
        escape(sets.first().map(String::as_str).unwrap_or("")),
    )
}

/// Percent-encodes a query component (RFC 3986 unreserved kept).
fn url_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn render(
    view: &View,
    collectors: &[CollectorStatus],
    filter: &Filter,
    now_unix: f64,
) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let title = match &view.cluster.name {
        Some(n) => format!("eks-ipam-exporter: {}", escape(n)),
        None => "eks-ipam-exporter".to_string(),
    };
    let refresh = filter
        .refresh_seconds()
        .map(|r| format!("<meta http-equiv=\"refresh\" content=\"{r}\">"))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         {refresh}<title>{title}</title><style>{CSS}</style></head><body>"
    );
    let crit = view
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .count();
    let warn = view
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let age = data_age(view.generated_at.as_deref(), now_unix)
        .map(|a| format!(" (<span id=\"data-age\">{}</span>)", escape(&a)))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<header><h1>{title}</h1><div class=\"meta\">region {} &middot; data as of <span id=\"data-time\">{}</span>{age} \
         &middot; <a id=\"reload\" href=\"/{}\">reload</a> &middot; \
         <span class=\"pill {}\" title=\"{}\">{crit} critical</span> <span class=\"pill {}\" title=\"{}\">{warn} warning</span> &middot; ",
        escape(view.cluster.region.as_deref().unwrap_or("?")),
        escape(view.generated_at.as_deref().unwrap_or("? (unknown)")),
        escape(&filter.query()),
        if crit > 0 { "critical" } else { "ok" },
        severity_title(Severity::Critical),
        if warn > 0 { "warning" } else { "ok" },
        severity_title(Severity::Warning),
    );
    for c in collectors {
        let state = if c.up { "ok" } else { "down" };
        let ago = c
            .last_success_unix
            .map(|t| format!(", last success {} ago", human_duration(now_unix - t)))
            .unwrap_or_else(|| ", no success yet".to_string());
        let _ = write!(
            out,
            "<span class=\"pill {state}\" title=\"collector {0} {1}{ago}\">{0} {1}</span> ",
            c.collector,
            if c.up { "up" } else { "down" }
        );
    }
    out.push_str("</div></header><main>");

    // Filter form: plain GET, no JavaScript.
    let mut zones: Vec<&str> = view
        .nodes
        .iter()
        .filter_map(|n| n.zone.as_deref())
        .collect();
    zones.sort_unstable();
    zones.dedup();
    let _ = write!(
        out,
        "<form class=\"filter\" method=\"get\" action=\"/\"><label>node name contains<input name=\"node\" value=\"{}\"></label>\
         <label>zone<select name=\"zone\"><option value=\"\">all</option>",
        escape(filter.node.as_deref().unwrap_or(""))
    );
    for z in zones {
        let sel = if filter.zone.as_deref() == Some(z) {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option value=\"{0}\"{sel}>{0}</option>", escape(z));
    }
    let _ = write!(
        out,
        "</select></label><label>auto-reload<select name=\"refresh\"><option value=\"\">off</option>{}</select></label>\
         <button type=\"submit\">Filter</button> <a href=\"/\">clear</a></form>",
        [30u32, 60, 300]
            .iter()
            .map(|r| format!(
                "<option value=\"{r}\"{}>every {}</option>",
                if filter.refresh_seconds() == Some(*r) { " selected" } else { "" },
                human_duration(f64::from(*r))
            ))
            .collect::<String>()
    );
    legend(&mut out);
    // "What if": `plan` on this state, rendered by the server (no scripts).
    out.push_str(
        "<form class=\"filter whatif\" method=\"get\" action=\"/plan\"><label>what if<input name=\"set\" \
         placeholder=\"WARM_IP_TARGET=10\" aria-label=\"setting to change, NAME=VALUE\"></label>\
         <button type=\"submit\">Plan</button> <a href=\"https://github.com/eks-ipam-exporter/eks-ipam-exporter#plan-a-settings-change\">what plan does</a></form>",
    );

    let findings: Vec<&Finding> = view
        .findings
        .iter()
        .filter(|f| view.finding_in_scope(f, filter.node.as_deref(), filter.zone.as_deref()))
        .collect();
    let _ = write!(
        out,
        "<h2 id=\"findings\">Findings ({})</h2>",
        findings.len()
    );
    if findings.is_empty() {
        out.push_str("<p>No findings.</p>");
    }
    for f in findings {
        finding_html(f, &mut out);
    }

    let nodes = by_risk(view.nodes.iter().filter(|n| filter.node_matches(n)));
    let _ = write!(
        out,
        "<h2 id=\"nodes\">Nodes ({})</h2><p class=\"legend\">Bar: <span style=\"background:#66bb6a\"></span>pods placed \
         <span style=\"background:var(--crit)\"></span>waiting for an IP \
         <span style=\"background:#1b5e20\"></span>CNI can serve <span style=\"background:#111\"></span>scheduler assumes \
         <span class=\"bar\" style=\"display:inline-block;min-width:20px;width:20px\"><span class=\"over\" style=\"left:0;width:100%\"></span></span>overcommitted</p>\
         <div class=\"scroll\"><table id=\"node-table\"><thead><tr><th>node</th><th>capacity</th><th>max pods</th><th>CNI max</th>\
         <th>waiting</th><th class=\"hide\">IPs assigned/free/cooldown</th><th class=\"hide\">ENIs</th><th>growth at 0 free</th>\
         <th class=\"hide\" title=\"time since the last AssignPrivateIpAddresses or CreateNetworkInterface for the node's ENIs\">allocation silence</th></tr></thead><tbody>",
        nodes.len()
    );
    for n in nodes {
        let silence = n
            .allocation_silence()
            .map(|s| escape(&super::silence_text(&s)))
            .unwrap_or_else(|| num::<u32>(None));
        let growth = match (n.growth_at_zero_free, n.ip_growth_blocked) {
            (Some(g), Some(true)) => format!(
                "<span class=\"pill critical\" title=\"{}\">{}</span>",
                escape(g.explain()),
                g.as_str()
            ),
            (Some(g), _) => format!(
                "<span title=\"{}\">{}</span>",
                escape(g.explain()),
                g.as_str()
            ),
            _ => num::<u32>(None),
        };
        let ips = n
            .ips
            .map(|i| format!("{}/{}/{}", i.assigned, i.available, i.cooldown))
            .unwrap_or_else(|| num::<u32>(None));
        let _ = write!(
            out,
            "<tr data-node=\"{name}\"><td>{name}<br><small class=\"unknown\">{ty} {zone}{pool}</small></td><td>{bar}</td>\
             <td class=\"num\">{max}</td><td class=\"num\">{cni}</td><td class=\"num\">{wait}</td><td class=\"num hide\">{ips}</td>\
             <td class=\"num hide\">{enis}/{emax}</td><td>{growth}</td><td class=\"hide silence\">{silence}</td></tr>",
            name = escape(&n.name),
            ty = escape(n.instance_type.as_deref().unwrap_or("?")),
            zone = escape(n.zone.as_deref().unwrap_or("?")),
            pool = n.nodepool.as_deref().map(|p| format!(" · nodepool {}", escape(p))).unwrap_or_default(),
            bar = bar(n),
            max = num(n.max_pods),
            cni = num(n.cni_max_pods),
            wait = num(n.pods_waiting_for_ip),
            enis = num(n.enis),
            emax = num(n.enis_max),
        );
    }
    out.push_str("</tbody></table></div>");

    let zone = filter.zone.as_deref().filter(|z| !z.is_empty());
    let subnets: Vec<_> = view
        .subnets
        .iter()
        .filter(|s| zone.is_none_or(|z| s.zone.as_deref() == Some(z)))
        .collect();
    let _ = write!(
        out,
        "<h2 id=\"subnets\">Subnets ({})</h2><div class=\"scroll\"><table id=\"subnet-table\"><thead><tr><th>subnet</th><th>role</th>\
         <th>zone</th><th>free IPs</th><th>size</th><th>free /28s</th></tr></thead><tbody>",
        subnets.len()
    );
    for s in subnets {
        let _ = write!(
            out,
            "<tr><td>{}<br><small class=\"unknown\">{}</small></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&s.id),
            escape(s.cidr.as_deref().unwrap_or("")),
            s.role.as_str(),
            escape(s.zone.as_deref().unwrap_or("?")),
            s.available_ips,
            num(s.size_ips),
            num(s.free_prefixes)
        );
    }
    let reload = match filter.refresh_seconds() {
        Some(r) => format!("Reloads every {}.", human_duration(f64::from(r))),
        None => "Does not reload by itself (so open evidence stays open): use reload, or pick auto-reload.".to_string(),
    };
    let _ = write!(
        out,
        "</tbody></table></div><p class=\"unknown\">? = unknown (its source is missing). {reload} \
         <a href=\"/metrics\">/metrics</a> · <a href=\"/api/v1/diagnosis\">/api/v1/diagnosis</a> · \
         <a href=\"{}\">runbook</a> · eks-ipam-exporter {}</p></main></body></html>",
        paging::RUNBOOK_URL,
        crate::VERSION
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_become_code_without_their_backticks() {
        assert_eq!(
            with_commands("Run `kubectl get <x>` then `a&b`."),
            "Run <code class=\"cmd\">kubectl get &lt;x&gt;</code> then <code class=\"cmd\">a&amp;b</code>."
        );
        // An unpaired backtick is text, not an unclosed <code>.
        assert_eq!(with_commands("it's `odd"), "it&#39;s `odd");
        assert_eq!(with_commands("no commands"), "no commands");
    }

    #[test]
    fn evidence_values_carry_their_units() {
        use serde_json::json;
        assert_eq!(
            evidence_value("silence_seconds", &json!(9023.0)),
            "<span title=\"9023 s\">2h30m</span>"
        );
        assert_eq!(evidence_value("subnet_low_ratio", &json!(0.1)), "10.0%");
        assert_eq!(evidence_value("ips_total", &json!(25.0)), "25");
        assert_eq!(
            evidence_value("x", &json!(null)),
            "<span class=\"unknown\">unknown</span>"
        );
        assert_eq!(evidence_value("x", &json!(true)), "yes");
        assert_eq!(evidence_value("nodes", &json!([])), "none");
        assert_eq!(
            evidence_value("nodes", &json!(["a", "<b>"])),
            "a, &lt;b&gt;"
        );
        let t = evidence_value(
            "events",
            &json!([{"reason": "X", "age_seconds": 120}, {"reason": "Y", "count": 2}]),
        );
        assert_eq!(
            t,
            // Columns in the records' key order (serde_json sorts keys).
            "<table class=\"ev\"><tr><th>age</th><th>reason</th><th>count</th></tr>\
             <tr><td><span title=\"120 s\">2m</span></td><td>X</td><td><span class=\"unknown\">unknown</span></td></tr>\
             <tr><td><span class=\"unknown\">unknown</span></td><td>Y</td><td>2</td></tr></table>"
        );
        assert_eq!(evidence_label("pods_waiting_for_ip"), "pods waiting for ip");
    }

    #[test]
    fn the_reload_link_keeps_the_filter() {
        let f = Filter {
            node: Some("ip-10 &x".into()),
            zone: Some(String::new()),
            refresh: Some(3),
        };
        assert_eq!(f.query(), "?node=ip-10%20%26x&refresh=10");
        assert_eq!(Filter::default().query(), "");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
