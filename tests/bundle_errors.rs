//! Malformed or missing inputs: a clear error naming the file, never a panic,
//! and unknown (not zero) for what a missing file would have fed.

mod common;
use common::*;

const NODE: &str = r#"{"apiVersion":"v1","kind":"List","items":[{"metadata":{"name":"n1","labels":{
  "node.kubernetes.io/instance-type":"m5.large","topology.kubernetes.io/zone":"us-west-2a"}},
  "spec":{"providerID":"aws:///us-west-2a/i-0123456789abcdef0"},"status":{"capacity":{"pods":"29"}}}]}"#;

fn diagnose_err(files: &[(&str, &str)], want_file: &str, want_text: &str) {
    let dir = temp_bundle(files);
    let out = run(&["diagnose", "--bundle", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 2, "exit code; stderr: {}", out.stderr);
    assert!(
        out.stderr.contains(want_file),
        "error should name {want_file}: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(want_text),
        "error should say {want_text:?}: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn truncated_json_names_the_file() {
    diagnose_err(
        &[("kubernetes/nodes.json", &NODE[..NODE.len() / 2])],
        "kubernetes/nodes.json",
        "malformed JSON",
    );
}

#[test]
fn wrong_types_name_the_file() {
    let bad = NODE.replace(r#""pods":"29""#, r#""pods":29"#);
    diagnose_err(
        &[("kubernetes/nodes.json", &bad)],
        "kubernetes/nodes.json",
        "invalid type",
    );
    diagnose_err(
        &[(
            "ec2/subnets.json",
            r#"{"Subnets":[{"SubnetId":"subnet-1","AvailableIpAddressCount":"many"}]}"#,
        )],
        "ec2/subnets.json",
        "invalid type",
    );
    diagnose_err(
        &[("kubernetes/pods.json", r#"{"items":{"not":"a list"}}"#)],
        "kubernetes/pods.json",
        "invalid type",
    );
}

#[test]
fn unknown_ipamd_shape_names_the_file() {
    diagnose_err(
        &[("ipamd/n1/enis.json", r#"{"Pools":{}}"#)],
        "ipamd/n1/enis.json",
        "unknown /v1/enis shape",
    );
    diagnose_err(
        &[(
            "ipamd/n1/enis.json",
            r#"{"AvailableCommands":["/v1/enis"]}"#,
        )],
        "ipamd/n1/enis.json",
        "AvailableCommands",
    );
    diagnose_err(
        &[("ipamd/n1/metrics.txt", "awscni_ip_max{ 232\n")],
        "ipamd/n1/metrics.txt",
        "line 1",
    );
}

#[test]
fn non_json_cloudtrail_event_names_the_file() {
    let ev = r#"{"Events":[{"EventId":"e1","EventName":"AssignPrivateIpAddresses","EventTime":"2026-08-25T10:00:00+00:00",
      "CloudTrailEvent":"{\"eventName\": \"AssignPrivateIpAddresses\", truncated"}]}"#;
    diagnose_err(
        &[("cloudtrail/assign.json", ev)],
        "cloudtrail/assign.json",
        "CloudTrailEvent is not valid JSON",
    );
}

#[test]
fn bad_capture_time_names_bundle_json() {
    diagnose_err(
        &[("bundle.json", r#"{"capturedAt":"last tuesday"}"#)],
        "bundle.json",
        "capturedAt",
    );
}

#[test]
fn missing_or_empty_bundle_is_an_error() {
    let out = run(&["diagnose", "--bundle", "/nonexistent/bundle"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    let empty = temp_bundle(&[("README.txt", "hello")]);
    let out = run(&["diagnose", "--bundle", empty.path().to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no bundle file found"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_files_make_numbers_unknown_not_zero() {
    // Only nodes: capacity needs aws-node settings, pods need pods.json.
    let dir = temp_bundle(&[("kubernetes/nodes.json", NODE)]);
    let out = run(&[
        "diagnose",
        "--bundle",
        dir.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let n = &v["nodes"][0];
    assert_eq!(n["name"], "n1");
    assert_eq!(n["max_pods"], 29);
    for field in [
        "pod_ip_capacity",
        "pods_pod_network",
        "pods_waiting_for_ip",
        "ips",
        "pod_ip_overcommit",
        "ip_growth_blocked",
    ] {
        assert!(
            n[field].is_null(),
            "{field} should be unknown (null), got {}",
            n[field]
        );
    }
    let table = run(&["diagnose", "--bundle", dir.path().to_str().unwrap()]);
    assert!(table.stdout.contains("? = unknown"), "{}", table.stdout);
}

#[test]
fn live_roles_fail_clearly_without_their_inputs() {
    let out = run_env(&["node"], &[("NODE_NAME", "")]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--node-name"), "{}", out.stderr);

    let home = tempfile::tempdir().unwrap();
    let out = run_env(
        &["cluster", "--listen", "127.0.0.1:0"],
        &[
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
            ("HOME", home.path().to_str().unwrap()),
            ("KUBERNETES_SERVICE_HOST", ""),
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("Kubernetes client"), "{}", out.stderr);

    let out_dir = tempfile::tempdir().unwrap();
    let out = run_env(
        &["capture", "--out", out_dir.path().to_str().unwrap()],
        &[
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
            ("HOME", home.path().to_str().unwrap()),
            ("KUBERNETES_SERVICE_HOST", ""),
        ],
    );
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("Kubernetes client"), "{}", out.stderr);
}
