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

/// Runs `diagnose --bundle dir` and kills it after 10 s, so a read that
/// blocks (a FIFO) or never ends (`/dev/zero`) fails instead of hanging.
#[cfg(unix)]
fn diagnose_within_10s(dir: &std::path::Path) -> (Option<i32>, String) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut child = Command::new(bin())
        .args(["diagnose", "--bundle", dir.to_str().unwrap()])
        .env_remove("EKS_IPAM_BUNDLE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for binary") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "diagnose --bundle {} still running after 10 s",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

#[cfg(unix)]
#[test]
fn fifo_instead_of_a_file_is_an_error_not_a_hang() {
    let dir = temp_bundle(&[]);
    std::fs::create_dir_all(dir.path().join("kubernetes")).unwrap();
    let fifo = dir.path().join("kubernetes/nodes.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let (code, stderr) = diagnose_within_10s(dir.path());
    assert_eq!(code, Some(2), "exit code; stderr: {stderr}");
    assert!(stderr.contains("kubernetes/nodes.json"), "{stderr}");
    assert!(stderr.contains("not a regular file (a FIFO)"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn symlink_to_dev_zero_is_an_error_not_a_memory_blowup() {
    let dir = temp_bundle(&[("kubernetes/nodes.json", NODE)]);
    std::fs::create_dir_all(dir.path().join("ec2")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("ec2/subnets.json")).unwrap();
    let (code, stderr) = diagnose_within_10s(dir.path());
    assert_eq!(code, Some(2), "exit code; stderr: {stderr}");
    assert!(stderr.contains("ec2/subnets.json"), "{stderr}");
    assert!(
        stderr.contains("not a regular file (a symlink to a character device)"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
