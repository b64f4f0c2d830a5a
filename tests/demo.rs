//! The demo: golden exposition, promtool, the served endpoints, and the
//! JSON API being byte-identical to `diagnose --output json`.

mod common;
use common::*;
use eks_ipam_exporter::app::view_from_bundle;
use eks_ipam_exporter::model::findings::Thresholds;
use eks_ipam_exporter::render::exposition;
use eks_ipam_exporter::sources::bundle::EmbeddedBundle;

fn demo_exposition() -> String {
    let (view, _) = view_from_bundle(&EmbeddedBundle::demo(), &Thresholds::default())
        .expect("demo bundle loads");
    let mut out = String::new();
    // Collector statuses carry wall-clock times: the golden file covers the view.
    exposition::render(&view, &[], &mut out);
    out
}

/// The golden exposition and the hand-written expectations in
/// tests/bundles/README.md (the demo's table) say the same: growth blocked
/// and CreateNetworkInterface silence per node. Two independent statements
/// of the numbers, so neither can drift alone.
#[test]
fn golden_agrees_with_the_documented_demo_numbers() {
    let golden = std::fs::read_to_string(repo("tests/golden/demo.prom")).unwrap();
    let readme = std::fs::read_to_string(repo("tests/bundles/README.md")).unwrap();
    let sample = |family: &str, labels: &str| -> f64 {
        let line = golden
            .lines()
            .find(|l| l.starts_with(family) && l.contains(labels))
            .unwrap_or_else(|| panic!("golden has no {family} {labels}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let mut rows = 0;
    for row in readme
        .lines()
        .filter(|l| l.starts_with("| N") || l.starts_with("| D"))
    {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() != 10 {
            continue; // not the demo's combined table
        }
        let node = cells[0].split('`').nth(1).unwrap();
        let node_label = format!("node=\"{node}.");
        let blocked = cells[8].trim_matches('*').starts_with("yes");
        let silence: f64 = cells[9]
            .split('(')
            .nth(1)
            .and_then(|s| s.trim_matches('*').split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            sample("eks_ipam_node_ip_growth_blocked", &node_label),
            if blocked { 1.0 } else { 0.0 },
            "{node}: README says blocked={blocked}"
        );
        assert_eq!(
            sample(
                "eks_ipam_api_call_silence_seconds{operation=\"CreateNetworkInterface\"",
                &node_label
            ),
            silence,
            "{node}: README says Create silence {silence}"
        );
        rows += 1;
    }
    assert_eq!(
        rows, 5,
        "the demo table of tests/bundles/README.md has 5 nodes"
    );
}

#[test]
fn demo_exposition_matches_golden_file() {
    let got = demo_exposition();
    let path = repo("tests/golden/demo.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        // A golden rewritten by the run that checks it proves nothing.
        assert!(
            std::env::var_os("CI").is_none(),
            "UPDATE_GOLDEN is for a developer's review, never under CI"
        );
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .expect("tests/golden/demo.prom (UPDATE_GOLDEN=1 cargo test --test demo writes it)");
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  golden: {a}\n  now:    {b}", i + 1))
            .collect();
        panic!(
            "demo exposition differs from tests/golden/demo.prom ({} vs {} lines); review, then UPDATE_GOLDEN=1:\n{}",
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn demo_serves_every_endpoint_and_promtool_accepts_metrics() {
    let srv = start_server(&["demo"]);
    assert_eq!(http_get(&srv.addr, "/healthz").0, 200);
    assert_eq!(http_get(&srv.addr, "/readyz").0, 200);
    let (status, metrics) = http_get(&srv.addr, "/metrics");
    assert_eq!(status, 200);
    for needle in [
        "eks_ipam_finding{code=\"IpamdAllocationStalled\",severity=\"critical\"",
        "eks_ipam_finding{code=\"PodCapacityExceedsIpCapacity\",severity=\"warning\"",
        "eks_ipam_collector_up{collector=\"bundle\"} 1",
        "eks_ipam_build_info{version=",
        "eks_ipam_http_requests_total{handler=\"metrics\"}",
    ] {
        assert!(metrics.contains(needle), "missing {needle}");
    }
    promtool_check(&metrics);

    let (status, api) = http_get(&srv.addr, "/api/v1/diagnosis");
    assert_eq!(status, 200);
    let cli = run(&[
        "diagnose",
        "--bundle",
        repo("bundles/demo").to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(cli.code, 1, "the demo has warnings and criticals");
    assert_eq!(
        api, cli.stdout,
        "/api/v1/diagnosis and diagnose --output json must be byte-identical"
    );
    assert_eq!(http_get(&srv.addr, "/nope").0, 404);
}
