//! The `node` role against a fake ipamd serving the reference payload shapes.

mod common;
use common::*;
use std::time::Instant;

const STALLED: &str = "ip-10-0-36-41.us-west-2.compute.internal";

fn agent_for(ipamd: &Fake) -> Server {
    let intro = format!("http://{}", ipamd.addrs["ipamd-introspection"]);
    let metrics = format!("http://{}/metrics", ipamd.addrs["ipamd-metrics"]);
    start_server(&[
        "node",
        "--node-name",
        STALLED,
        "--ipamd-introspection-url",
        &intro,
        "--ipamd-metrics-url",
        &metrics,
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
        m.contains("eks_ipam_collector_errors_total{collector=\"ipamd\",kind=\"enis\"}"),
        "{m}"
    );
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
    assert!(m.contains("kind=\"enis\""), "timeout counted: {m}");
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
}
