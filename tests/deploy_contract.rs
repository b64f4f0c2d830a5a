//! The shipped manifests and the binary agree on how node agents are found.

mod common;
use common::repo;
use eks_ipam_exporter::sources::kube::{AGENT_PORT_NAME, AGENT_SELECTOR};

#[test]
fn daemonset_pods_match_the_agent_selector_and_port_name() {
    let ds = std::fs::read_to_string(repo("deploy/daemonset.yaml")).unwrap();
    let template = &ds[ds.find("  template:").expect("pod template")..];
    let labels_block =
        &template[template.find("labels:").unwrap()..template.find("spec:").unwrap()];
    for kv in AGENT_SELECTOR.split(',') {
        let (k, v) = kv.split_once('=').unwrap();
        assert!(
            labels_block.contains(&format!("{k}: {v}")),
            "pod template lacks label {k}={v}:\n{labels_block}"
        );
    }
    assert!(
        template.contains(&format!("name: {AGENT_PORT_NAME}")),
        "agent port must be named {AGENT_PORT_NAME}"
    );
}
