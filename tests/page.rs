//! The `/` status page: findings first, riskiest node first, filters without
//! JavaScript, and every cluster-derived string escaped.

mod common;
use common::*;
use std::path::Path;

const N1: &str = "ip-10-0-44-120.us-west-2.compute.internal";

#[test]
fn demo_page_shows_findings_then_riskiest_node_first() {
    let srv = start_server(&["demo"]);
    let (status, page) = http_get(&srv.addr, "/");
    assert_eq!(status, 200);
    assert!(page.starts_with("<!doctype html>"));
    for code in [
        "IpamdAllocationStalled",
        "MinimumIpTargetWithoutWarmIpTarget",
        "PodCapacityExceedsIpCapacity",
        "KarpenterReservedEnisMissing",
    ] {
        assert!(
            page.contains(&format!("data-code=\"{code}\"")),
            "page lacks {code}"
        );
    }
    // Critical findings come before warnings.
    let first_warning = page.find("data-severity=\"warning\"").unwrap();
    let last_critical = page.rfind("data-severity=\"critical\"").unwrap();
    assert!(last_critical < first_warning);
    // Findings section before the node table; the overcommitted node with waiting pods leads it.
    let table = page.find("id=\"node-table\"").unwrap();
    assert!(page.find("id=\"findings\"").unwrap() < table);
    let first_row = &page[table..];
    let first_node = first_row
        .split("<tr data-node=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(first_node, N1);
    // Self-contained: no external loads (links to the runbook are not loads).
    for load in ["src=\"http", "<link", "url(http", "<script", "@import"] {
        assert!(!page.contains(load), "the page loads something: {load}");
    }
}

/// Issue 16 item 1: what an on-call engineer reads on the page.
#[test]
fn findings_say_how_they_page_with_copyable_commands_and_units() {
    let srv = start_server(&["demo"]);
    let (_, page) = http_get(&srv.addr, "/");
    let section = |code: &str| -> String {
        let start = page
            .find(&format!("data-code=\"{code}\""))
            .unwrap_or_else(|| panic!("no {code}"));
        page[start..][..page[start..].find("</section>").unwrap()].to_string()
    };
    // Severity as the alert pages it: the cluster-wide setting finding is a warning,
    // like EksIpamMinimumIpTargetWithoutWarmIpTarget.
    let min = section("MinimumIpTargetWithoutWarmIpTarget");
    assert!(min.contains("data-severity=\"warning\""), "{min}");
    assert!(
        min.contains("Pages as: EksIpamMinimumIpTargetWithoutWarmIpTarget (warning)"),
        "{min}"
    );
    // Commands in <code>, no backticks to copy along.
    let fix = &min[min.find("class=\"fix\"").unwrap()..];
    let fix = &fix[..fix.find("</p>").unwrap()];
    assert!(
        fix.contains("<code class=\"cmd\">kubectl -n kube-system set env ds/aws-node WARM_IP_TARGET=10</code>"),
        "{fix}"
    );
    assert!(!fix.contains('`'), "{fix}");
    // Every finding links its runbook section, and the section exists.
    let runbook = std::fs::read_to_string(repo("docs/runbook.md")).unwrap();
    let links: Vec<&str> = page
        .split("class=\"runbook\" href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert_eq!(
        links.len(),
        page.matches("<section class=\"finding").count()
    );
    for link in &links {
        let anchor = link.rsplit('#').next().unwrap();
        assert!(
            runbook
                .lines()
                .any(|l| l.starts_with("## ") && l[3..].to_lowercase() == anchor),
            "{link}: no such runbook section"
        );
    }
    // Evidence as a labelled table with units: 9023 s is 2h30m.
    let stall = section("IpamdAllocationStalled");
    assert!(stall.contains("<tr data-key=\"silence_seconds\"><th>silence</th><td><span title=\"9023 s\">2h30m</span></td></tr>"), "{stall}");
    assert!(!stall.contains("9023.0"), "{stall}");
    // The blocked_by_targets badge says what it means, and the legend lists it.
    assert!(
        page.contains("<span class=\"pill critical\" title=\"ipamd would add nothing"),
        "growth badge has no title"
    );
    let legend = &page[page.find("id=\"legend\"").unwrap()..];
    assert!(legend.contains("blocked_by_targets") && legend.contains("unknown: the source"));
    // One silence for the stalled node: the table says what the finding says.
    let row = &page[page.find("<tr data-node=\"ip-10-0-36-41").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("<td class=\"hide silence\">2h30m</td>"),
        "{row}"
    );
    assert!(stall.contains("for 2h30m"), "{stall}");
}

/// Issue 16 item 1: no reload closes what someone is reading, unless asked.
#[test]
fn the_page_reloads_only_when_asked_and_shows_the_data_age() {
    let srv = start_server(&["demo"]);
    let (_, page) = http_get(&srv.addr, "/");
    assert!(
        !page.contains("http-equiv=\"refresh\""),
        "reloads by default"
    );
    assert!(
        page.contains("<span id=\"data-age\">") && page.contains(" ago</span>"),
        "no data age"
    );
    assert!(page.contains("<a id=\"reload\" href=\"/\">reload</a>"));
    let (code, page) = http_get(&srv.addr, "/?node=ip-10-0-45&zone=&refresh=60");
    assert_eq!(code, 200);
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"60\">"));
    assert!(
        page.contains("<a id=\"reload\" href=\"/?node=ip-10-0-45&amp;refresh=60\">"),
        "reload keeps the filter"
    );
    // The form's "off" sends an empty value; below 10 s is raised to 10 s.
    let (code, page) = http_get(&srv.addr, "/?refresh=");
    assert_eq!(code, 200);
    assert!(!page.contains("http-equiv=\"refresh\""));
    let (_, page) = http_get(&srv.addr, "/?refresh=1");
    assert!(page.contains("content=\"10\""));
}

/// Issue 16: `?node=` keeps the cluster-level cause (`diagnose --node` does too).
#[test]
fn a_node_filter_keeps_cluster_findings() {
    let srv = start_server(&["demo"]);
    let (_, page) = http_get(&srv.addr, &format!("/?node={N1}"));
    for code in [
        "KarpenterReservedEnisMissing",
        "MinimumIpTargetWithoutWarmIpTarget",
        "PodCapacityExceedsIpCapacity",
    ] {
        assert!(
            page.contains(&format!("data-code=\"{code}\"")),
            "{code} hidden by the node filter"
        );
    }
    // Another node's finding goes.
    assert!(!page.contains("data-code=\"IpamdAllocationStalled\""));
    let out = run(&[
        "diagnose",
        "--bundle",
        repo("bundles/demo").to_str().unwrap(),
        "--node",
        N1,
        "--wide",
    ]);
    for code in [
        "KarpenterReservedEnisMissing",
        "MinimumIpTargetWithoutWarmIpTarget",
    ] {
        assert!(out.stdout.contains(code), "diagnose --node drops {code}");
    }
}

#[test]
fn filters_work_without_javascript() {
    let srv = start_server(&["demo"]);
    let (_, page) = http_get(&srv.addr, "/?node=ip-10-0-45&zone=");
    assert_eq!(
        page.matches("<tr data-node=").count(),
        1,
        "only the t4g.large node"
    );
    let (_, page) = http_get(&srv.addr, "/?zone=us-west-2b");
    assert!(page.contains("ip-10-0-70-12") && !page.contains(&format!("<tr data-node=\"{N1}\"")));
    assert!(page.contains("<option value=\"us-west-2b\" selected>"));
}

/// Markup sent in `?node=` is echoed into the filter box as text only
/// (issue 13 item 8: no test sent markup in the query).
#[test]
fn markup_in_the_node_filter_stays_text() {
    let srv = start_server(&["demo"]);
    let (code, page) = http_get(
        &srv.addr,
        "/?node=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E%3Cinput%20x%3D%22",
    );
    assert_eq!(code, 200);
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(!page.contains("<input x=\""), "{page}");
    assert!(
        page.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the query is shown escaped in the filter box"
    );
}

fn rename_everywhere(dir: &Path, from: &str, to: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rename_everywhere(&p, from, to);
        } else {
            let text = std::fs::read_to_string(&p).unwrap();
            // JSON files need the name JSON-escaped.
            let replacement = if p.extension().is_some_and(|e| e == "json") {
                serde_json::to_string(to)
                    .unwrap()
                    .trim_matches('"')
                    .to_string()
            } else {
                to.to_string()
            };
            std::fs::write(&p, text.replace(from, &replacement)).unwrap();
        }
        if p.file_name().unwrap().to_str().unwrap() == from {
            std::fs::rename(&p, p.with_file_name(to)).unwrap();
        }
    }
}

#[test]
fn hostile_names_are_escaped_in_html_and_exposition() {
    let dir = copy_bundle(&repo("tests/bundles/karpenter-overcommit"));
    let evil = "evil\"<script>alert(1)<img src=x onerror=alert(1)>\\";
    rename_everywhere(dir.path(), N1, evil);
    let srv = start_server(&["cluster", "--bundle", dir.path().to_str().unwrap()]);
    let (_, page) = http_get(&srv.addr, "/");
    assert!(
        !page.contains("<img") && !page.contains("<script"),
        "markup from the cluster reached the page"
    );
    assert!(
        page.contains("evil&quot;&lt;script&gt;alert(1)&lt;img src=x onerror=alert(1)&gt;\\"),
        "escaped name missing"
    );
    let (_, metrics) = http_get(&srv.addr, "/metrics");
    assert!(
        metrics.contains(r#"node="evil\"<script>alert(1)<img src=x onerror=alert(1)>\\""#),
        "label value not escaped"
    );
    let (_, api) = http_get(&srv.addr, "/api/v1/diagnosis");
    let v: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert!(v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["name"] == evil));
}
