//! `plan` on the incident bundles (docs/design.md section 9): the fixes from the
//! seeds resolve the findings and exit 0, a harmful change exits 1, bad input 2.

mod common;
use common::*;
use serde_json::Value;

const N1: &str = "ip-10-0-44-120.us-west-2.compute.internal";
const N2: &str = "ip-10-0-45-17.us-west-2.compute.internal";
const S1: &str = "ip-10-0-36-41.us-west-2.compute.internal";
const S2: &str = "ip-10-0-52-200.us-west-2.compute.internal";

fn plan(bundle: &str, sets: &[&str]) -> (i32, Value) {
    let dir = repo(bundle);
    let mut args = vec![
        "plan",
        "--bundle",
        dir.to_str().unwrap(),
        "--output",
        "json",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = run(&args);
    let v = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("plan JSON: {e}\n{}\n{}", out.stdout, out.stderr));
    (out.code, v)
}

fn node<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

fn codes(v: &Value, key: &str) -> Vec<(String, String, String)> {
    finding_triples(&v[key])
}

fn t(code: &str, sev: &str, node: &str) -> (String, String, String) {
    (code.into(), sev.into(), node.into())
}

#[test]
fn incident_two_fix_warm_ip_target_resolves_the_stall() {
    let (code, v) = plan("tests/bundles/min-ip-target-stall", &["WARM_IP_TARGET=10"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["changes"],
        serde_json::json!([{"name": "WARM_IP_TARGET", "before": null, "after": "10"}])
    );
    assert_eq!(
        codes(&v, "findings_resolved"),
        vec![
            t("IpamdAllocationStalled", "critical", S1),
            t("MinimumIpTargetWithoutWarmIpTarget", "warning", ""),
        ]
    );
    assert!(codes(&v, "findings_introduced").is_empty());
    // MINIMUM_IP_TARGET=25 with 25 assigned: ipamd adds WARM_IP_TARGET=10
    // more (4 on the primary ENI's room, then a second ENI with 6).
    let s1 = node(&v, S1);
    assert_eq!(s1["before"]["ips"]["total"], 25);
    assert_eq!(s1["after"]["ips"]["total"], 35);
    assert_eq!(s1["after"]["ips"]["assigned"], 25);
    assert_eq!(s1["before"]["ip_growth_blocked"], true);
    assert_eq!(s1["after"]["ip_growth_blocked"], false);
    assert_eq!(s1["needs_replacement"], false);
    // S2: 25 total, 18 assigned: 7 free -> 10 free.
    assert_eq!(node(&v, S2)["after"]["ips"]["total"], 28);
    // Each subnet gives what its nodes' pools took: the pool figures are
    // the simulation's, not a formula.
    let mut taken: std::collections::BTreeMap<String, i64> = Default::default();
    for n in v["nodes"].as_array().unwrap() {
        let subnet = n["after"]["subnet_id"].as_str().unwrap().to_string();
        let d = n["after"]["ips"]["total"].as_i64().unwrap()
            - n["before"]["ips"]["total"].as_i64().unwrap();
        *taken.entry(subnet).or_default() += d;
    }
    for s in v["subnets"].as_array().unwrap() {
        let id = s["subnet_id"].as_str().unwrap();
        let d = s["before"]["available_ips"].as_i64().unwrap()
            - s["after"]["available_ips"].as_i64().unwrap();
        assert_eq!(d, taken.get(id).copied().unwrap_or(0), "{id}");
    }
    assert!(taken.values().sum::<i64>() == 13, "{taken:?}");
}

#[test]
fn incident_one_fix_reserved_enis_flags_the_karpenter_nodes_for_replacement() {
    let (code, v) = plan("tests/bundles/karpenter-overcommit", &["RESERVED_ENIS=1"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        codes(&v, "findings_resolved"),
        vec![
            t("KarpenterReservedEnisMissing", "warning", ""),
            t("PodCapacityExceedsIpCapacity", "warning", N1),
            t("PodCapacityExceedsIpCapacity", "warning", N2),
        ]
    );
    assert!(codes(&v, "findings_introduced").is_empty());
    // t4g.medium: (3 - 1) ENIs x (6 - 1) + 2 = 12 (was 17); the replacement's
    // 12 pods minus 2 host-network pods fit the 10 pod IPs.
    let n1 = node(&v, N1);
    assert_eq!(n1["needs_replacement"], true);
    assert_eq!(
        (
            n1["before"]["max_pods"].clone(),
            n1["after"]["max_pods"].clone()
        ),
        (17.into(), 12.into())
    );
    assert_eq!(n1["before"]["pod_ip_overcommit"], 5);
    assert_eq!(n1["after"]["pod_ip_overcommit"], 0);
    assert_eq!(node(&v, N2)["needs_replacement"], true);
    assert_eq!(node(&v, N2)["after"]["max_pods"], 24);
}

#[test]
fn minimum_ip_target_alone_is_caught() {
    let (code, v) = plan("tests/bundles/healthy", &["MINIMUM_IP_TARGET=25"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(
        codes(&v, "findings_introduced"),
        vec![t("MinimumIpTargetWithoutWarmIpTarget", "warning", "")]
    );
    for n in v["nodes"].as_array().unwrap() {
        assert_eq!(n["after"]["ip_growth_blocked"], true, "{}", n["name"]);
        assert_eq!(n["after"]["ips"]["total"], 25, "{}", n["name"]);
    }
    // With WARM_IP_TARGET as well it stays quiet.
    let (code, v) = plan(
        "tests/bundles/healthy",
        &["MINIMUM_IP_TARGET=25", "WARM_IP_TARGET=5"],
    );
    assert_eq!(code, 0, "{v}");
}

#[test]
fn the_json_has_the_contract_shape() {
    let (_, v) = plan("tests/bundles/min-ip-target-stall", &["WARM_IP_TARGET=10"]);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    for k in [
        "changes",
        "nodes",
        "subnets",
        "findings_resolved",
        "findings_introduced",
    ] {
        assert!(keys.contains(&k), "{k} missing: {keys:?}");
    }
    let n = &v["nodes"][0];
    let mut nk: Vec<_> = n.as_object().unwrap().keys().cloned().collect();
    nk.sort();
    assert_eq!(nk, ["after", "before", "name", "needs_replacement"]);
    // before/after use diagnose's node fields.
    let diag = diagnose_json(&repo("tests/bundles/min-ip-target-stall"));
    let dn = diag["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == n["name"])
        .unwrap();
    assert_eq!(&n["before"], dn);
    let s = &v["subnets"][0];
    let mut sk: Vec<_> = s.as_object().unwrap().keys().cloned().collect();
    sk.sort();
    assert_eq!(sk, ["after", "before", "subnet_id"]);
    let f = &v["findings_resolved"][0];
    let mut fk: Vec<_> = f.as_object().unwrap().keys().cloned().collect();
    fk.sort();
    assert_eq!(
        fk,
        ["availability_zone", "code", "node", "severity", "subnet_id"]
    );
    assert!(!v["assumptions"].as_array().unwrap().is_empty());
}

#[test]
fn bad_settings_exit_2_with_the_reason() {
    let dir = repo("tests/bundles/healthy");
    let d = dir.to_str().unwrap();
    for (set, says) in [
        ("WARM_IP_TARGT=1", "not a setting plan can change"),
        ("WARM_IP_TARGET=-1", "whole number"),
        ("ENABLE_PREFIX_DELEGATION=maybe", "true or false"),
        ("ec2nodeclass/nope.maxPods=20", "no EC2NodeClass"),
    ] {
        let out = run(&["plan", "--bundle", d, "--set", set]);
        assert_eq!(out.code, 2, "{set}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{set}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{set}");
    }
    assert_eq!(run(&["plan", "--bundle", d]).code, 2, "--set is required");
    // Incident 2's cluster runs no Karpenter.
    let stall = repo("tests/bundles/min-ip-target-stall");
    let out = run(&[
        "plan",
        "--bundle",
        stall.to_str().unwrap(),
        "--set",
        "RESERVED_ENIS=1",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no Karpenter controller"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_table_shows_before_and_after() {
    let dir = repo("tests/bundles/min-ip-target-stall");
    let out = run(&[
        "plan",
        "--bundle",
        dir.to_str().unwrap(),
        "--set",
        "WARM_IP_TARGET=10",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out.stdout.lines().find(|l| l.contains(S1)).unwrap();
    assert!(line.contains("25 -> 35"), "{line}");
    assert!(line.contains("blocked_by_targets -> assigns_ips"), "{line}");
    assert!(
        out.stdout
            .contains("FINDINGS RESOLVED\n  critical IpamdAllocationStalled"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("ASSUMPTIONS"));
}

/// `/api/v1/plan` serves what `plan --output json` prints, and `/plan` the
/// table behind the page's "what if" form.
#[test]
fn the_server_plans_on_the_state_it_shows() {
    let bundle = repo("tests/bundles/min-ip-target-stall");
    let srv = start_server(&["cluster", "--bundle", bundle.to_str().unwrap()]);
    let (_, cli) = plan("tests/bundles/min-ip-target-stall", &["WARM_IP_TARGET=10"]);
    let (code, body) = http_get(&srv.addr, "/api/v1/plan?set=WARM_IP_TARGET%3D10");
    assert_eq!(code, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api, cli);
    // Two changes, as repeated parameters.
    let (code, body) = http_get(
        &srv.addr,
        "/api/v1/plan?set=WARM_IP_TARGET=10&set=MINIMUM_IP_TARGET=5",
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["changes"].as_array().unwrap().len(), 2);
    for (path, says) in [
        ("/api/v1/plan", "no change"),
        ("/api/v1/plan?set=WARM_IP_TARGT=1", "not a setting"),
        ("/api/v1/plan?node=x", "unknown parameter"),
        (
            "/api/v1/plan?set=RESERVED_ENIS=1",
            "no Karpenter controller",
        ),
    ] {
        let (code, body) = http_get(&srv.addr, path);
        assert_eq!(code, 400, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
    let (code, page) = http_get(&srv.addr, "/plan?set=WARM_IP_TARGET%3D10");
    assert_eq!(code, 200);
    assert!(page.contains("25 -&gt; 35"), "{page}");
    assert!(
        page.contains("href=\"/api/v1/plan?set=WARM_IP_TARGET%3D10\""),
        "{page}"
    );
    // Markup in a value is text, and the form comes back filled in.
    let (code, page) = http_get(&srv.addr, "/plan?set=%3Cb%3E%3D1");
    assert_eq!(code, 400);
    assert!(
        page.contains("&lt;b&gt;") && !page.contains("<b>"),
        "{page}"
    );
    // The status page links to it.
    let (_, index) = http_get(&srv.addr, "/");
    assert!(index.contains("action=\"/plan\""));
}

fn recommend(bundle: &str, extra: &[&str]) -> (i32, Value) {
    let dir = repo(bundle);
    let mut args = vec![
        "plan",
        "--bundle",
        dir.to_str().unwrap(),
        "--recommend",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    let v = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("plan --recommend JSON: {e}\n{}\n{}", out.stdout, out.stderr));
    (out.code, v)
}

/// The proposal meets the goals on every node: growth not blocked, no
/// overcommit, at least the headroom free (or all the room a node has).
fn assert_goals(v: &Value, headroom: i64) {
    for n in v["nodes"].as_array().unwrap() {
        let a = &n["after"];
        assert_eq!(a["ip_growth_blocked"], false, "{}", n["name"]);
        assert!(
            a["pod_ip_overcommit"].as_i64().unwrap() <= 0,
            "{}",
            n["name"]
        );
        let (total, assigned) = (
            a["ips"]["total"].as_i64().unwrap(),
            a["ips"]["assigned"].as_i64().unwrap(),
        );
        let room = a["pod_ip_capacity"].as_i64().unwrap() - assigned;
        assert!(
            total - assigned >= headroom.min(room),
            "{}: {}",
            n["name"],
            a["ips"]
        );
    }
}

#[test]
fn recommend_fixes_incident_two_with_the_least_idle_pool() {
    let (code, v) = recommend("tests/bundles/min-ip-target-stall", &["--headroom", "5"]);
    assert_eq!(code, 0, "{v}");
    let r = &v["recommendation"];
    assert_eq!(r["meets_goals"], true);
    assert_eq!(r["headroom"], 5);
    let changes: Vec<(String, String)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["after"].as_str().unwrap().into(),
            )
        })
        .collect();
    // The smallest warm target that leaves 5 free, and no floor.
    assert_eq!(
        changes,
        [
            ("WARM_IP_TARGET".to_string(), "5".to_string()),
            ("MINIMUM_IP_TARGET".into(), "0".into())
        ]
    );
    assert_eq!(r["reasons"].as_array().unwrap().len(), 2);
    assert!(codes(&v, "findings_resolved").contains(&t("IpamdAllocationStalled", "critical", S1)));
    assert!(codes(&v, "findings_introduced").is_empty());
    assert_goals(&v, 5);
    // A bigger headroom holds more idle IPs.
    let (_, v10) = recommend("tests/bundles/min-ip-target-stall", &["--headroom", "10"]);
    assert_goals(&v10, 10);
    assert!(v10["recommendation"]["idle_ips_after"].as_u64() > r["idle_ips_after"].as_u64());
}

#[test]
fn recommend_reserves_the_eni_karpenter_miscounts() {
    let (code, v) = recommend("tests/bundles/karpenter-overcommit", &[]);
    assert_eq!(code, 0, "{v}");
    assert!(
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "RESERVED_ENIS" && c["after"] == "1"),
        "{}",
        v["changes"]
    );
    assert_eq!(node(&v, N1)["needs_replacement"], true);
    assert_goals(&v, 5);
    // --recommend and --set do not mix; --headroom needs --recommend.
    let dir = repo("tests/bundles/karpenter-overcommit");
    let d = dir.to_str().unwrap();
    assert_eq!(
        run(&[
            "plan",
            "--bundle",
            d,
            "--recommend",
            "--set",
            "WARM_IP_TARGET=1"
        ])
        .code,
        2
    );
    assert_eq!(
        run(&[
            "plan",
            "--bundle",
            d,
            "--set",
            "WARM_IP_TARGET=1",
            "--headroom",
            "3"
        ])
        .code,
        2
    );
}
