//! The `node` role against a fake ipamd serving the reference payload shapes.

mod common;
use common::*;
use std::time::Instant;

const STALLED: &str = "ip-10-0-36-41.us-west-2.compute.internal";

fn agent_for(ipamd: &Fake) -> Server {
    agent_at(
        &format!("http://{}", ipamd.addrs["ipamd-introspection"]),
        &format!("http://{}/metrics", ipamd.addrs["ipamd-metrics"]),
    )
}

/// A node agent for STALLED reading ipamd at these URLs every second.
fn agent_at(intro: &str, metrics: &str) -> Server {
    start_server(&[
        "node",
        "--node-name",
        STALLED,
        "--ipamd-introspection-url",
        intro,
        "--ipamd-metrics-url",
        metrics,
        "--interval",
        "1s",
    ])
}

fn ipamd(extra: &[&str]) -> Fake {
    let mut args = vec![
        "--bundle",
        "tests/bundles/min-ip-target-stall",
        "--node",
        STALLED,
        "--introspection-port",
        "0",
        "--metrics-port",
        "0",
    ];
    args.extend_from_slice(extra);
    start_fake("ipamd.py", &args, 2)
}

fn ready_metrics(srv: &Server) -> String {
    eventually(10, || {
        let (code, body) = http_get(&srv.addr, "/metrics");
        (code == 200).then_some(body)
    })
    .expect("agent /metrics")
}

#[test]
fn wrapped_and_flat_shapes_give_the_same_pool() {
    for shape in ["wrapped", "flat"] {
        let fake = ipamd(&["--shape", shape]);
        let agent = agent_for(&fake);
        let m = ready_metrics(&agent);
        assert!(
            m.contains(&format!("eks_ipam_ipamd_up{{node=\"{STALLED}\"}} 1")),
            "{shape}: {m}"
        );
        assert!(
            m.contains(&format!(
                "eks_ipam_ipamd_ips{{node=\"{STALLED}\",state=\"assigned\"}} 25"
            )),
            "{shape}"
        );
        assert!(
            m.contains(&format!(
                "eks_ipam_ipamd_ips{{node=\"{STALLED}\",state=\"available\"}} 0"
            )),
            "{shape}"
        );
        assert!(
            m.contains(&format!(
                "eks_ipam_ipamd_no_available_ip_total{{node=\"{STALLED}\"}} 142"
            )),
            "{shape}"
        );
        assert!(
            m.contains("eks_ipam_ipamd_eni_ips{") && m.contains("primary=\"true\"} 25"),
            "{shape}"
        );
        let (code, pool) = http_get(&agent.addr, "/v1/pool");
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&pool).unwrap();
        assert_eq!(v["node"], STALLED);
        if shape == "wrapped" {
            // The snapshot carries ipamd's bytes verbatim, so `capture` writes what ipamd printed.
            let original = std::fs::read_to_string(repo(&format!(
                "tests/bundles/min-ip-target-stall/ipamd/{STALLED}/enis.json"
            )))
            .unwrap();
            assert!(pool.contains(&original), "enis not verbatim");
        }
    }
}

#[test]
fn garbage_from_ipamd_is_unknown_not_zero() {
    let fake = ipamd(&["--mode", "garbage"]);
    let agent = agent_for(&fake);
    let m = ready_metrics(&agent);
    assert!(
        m.contains(&format!("eks_ipam_ipamd_up{{node=\"{STALLED}\"}} 0")),
        "{m}"
    );
    assert!(
        !m.contains("eks_ipam_ipamd_ips{"),
        "no pool numbers may be invented: {m}"
    );
    assert!(m.contains("eks_ipam_collector_up{collector=\"ipamd\"} 0"));
    assert!(
        m.contains("eks_ipam_collector_errors_total{collector=\"ipamd\",kind=\"malformed\"}"),
        "{m}"
    );
    assert_no_endpoint_kinds(&m);
    let (_, pool) = http_get(&agent.addr, "/v1/pool");
    let v: serde_json::Value = serde_json::from_str(&pool).unwrap();
    assert!(v["enis"].is_null());
    assert!(
        v["errors"]["enis"].as_str().unwrap().contains("invalid"),
        "{pool}"
    );
}

#[test]
fn a_hanging_ipamd_does_not_hang_the_agent() {
    let fake = ipamd(&["--mode", "hang", "--metrics-mode", "hang"]);
    let agent = agent_for(&fake);
    let m = ready_metrics(&agent);
    assert!(
        m.contains(&format!("eks_ipam_ipamd_up{{node=\"{STALLED}\"}} 0")),
        "{m}"
    );
    assert!(
        m.contains("eks_ipam_collector_errors_total{collector=\"ipamd\",kind=\"timeout\"}"),
        "timeout counted: {m}"
    );
    assert_no_endpoint_kinds(&m);
    let t = Instant::now();
    assert_eq!(http_get(&agent.addr, "/healthz").0, 200);
    assert!(
        t.elapsed().as_millis() < 1000,
        "agent endpoints stay responsive"
    );
}

#[test]
fn a_huge_body_is_cut_off() {
    let fake = ipamd(&["--mode", "huge", "--huge-rate", "200"]);
    let agent = agent_for(&fake);
    let m = ready_metrics(&agent);
    assert!(
        m.contains(&format!("eks_ipam_ipamd_up{{node=\"{STALLED}\"}} 0")),
        "{m}"
    );
    // Cut off by the body limit, not by the timeout (which also gives up 0):
    // at 200 MiB/s the 8 MiB limit is hit long before the 3 s timeout.
    let m = eventually(10, || {
        let (_, m) = http_get(&agent.addr, "/metrics");
        errors_total(&m, "too_large").is_some().then_some(m)
    })
    .unwrap_or_else(|| {
        panic!(
            "too_large never counted:\n{}",
            http_get(&agent.addr, "/metrics").1
        )
    });
    assert!(
        errors_total(&m, "too_large").is_some_and(|n| n >= 1.0),
        "{m}"
    );
    assert_no_endpoint_kinds(&m);
}

/// `eks_ipam_collector_errors_total{collector="ipamd",kind=<kind>}`, if present.
fn errors_total(m: &str, kind: &str) -> Option<f64> {
    let prefix = format!("eks_ipam_collector_errors_total{{collector=\"ipamd\",kind=\"{kind}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// Every `kind` label of the ipamd errors counter.
fn error_kinds(m: &str) -> Vec<String> {
    let prefix = "eks_ipam_collector_errors_total{collector=\"ipamd\",kind=\"";
    m.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|rest| rest.split_once('"').map(|(k, _)| k.to_string()))
        .collect()
}

/// The `kind` label is an error kind, never the endpoint that failed.
fn assert_no_endpoint_kinds(m: &str) {
    for kind in error_kinds(m) {
        assert!(
            !["enis", "eni_configs", "eni-configs", "metrics"].contains(&kind.as_str()),
            "kind={kind} is an endpoint name, not an error kind:\n{m}"
        );
    }
}

#[test]
fn ipamd_errors_are_counted_since_start_by_kind() {
    // A port nothing listens on: every read of all three endpoints is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let agent = agent_at(
        &format!("http://{closed}"),
        &format!("http://{closed}/metrics"),
    );
    let first = ready_metrics(&agent);
    assert!(
        first.contains(&format!("eks_ipam_ipamd_up{{node=\"{STALLED}\"}} 0")),
        "{first}"
    );
    let start = errors_total(&first, "connect").expect("connect errors counted");
    assert!(start >= 1.0, "{first}");
    assert_no_endpoint_kinds(&first);
    // Scrape across several rounds: the counter only grows, and it grows
    // past what one round gives (3 refused reads), so it is kept across rounds.
    let mut last = start;
    let grew = eventually(15, || {
        let (code, m) = http_get(&agent.addr, "/metrics");
        assert_eq!(code, 200, "{m}");
        assert_no_endpoint_kinds(&m);
        let n = errors_total(&m, "connect").expect("connect errors still counted");
        assert!(n >= last, "counter went down: {last} -> {n}\n{m}");
        last = n;
        (n > start && n > 3.0).then_some(n)
    });
    assert!(
        grew.is_some(),
        "connect errors stayed at {last} (started at {start}) over several 1 s rounds"
    );
}
