//! Enhanced subnet discovery through `diagnose --bundle` (issue 15 item 5):
//! the incident-2 bundle with S1's node subnet (subnet-07b3e9d1c5a8f2460,
//! us-west-2a, a /20 of 4,091 usable IPs) made full, and one more subnet in
//! its VPC, shaped per row. aws-node there runs with ENABLE_SUBNET_DISCOVERY
//! =true and CLUSTER_NAME=prod-eks. Every row is a real tagging an operator
//! makes; the expected codes follow ipamd's `isSubnetValidForENICreation`.

mod common;
use common::*;
use serde_json::{json, Value};

const NODE_SUBNET: &str = "subnet-07b3e9d1c5a8f2460";
const SIBLING: &str = "subnet-0f00dcafe0000d15c";

/// The bundle with the node subnet full and a sibling `(zone, free, tags)`.
fn bundle(sibling: Option<(&str, u64, Value)>) -> tempfile::TempDir {
    let dir = copy_bundle(&repo("tests/bundles/min-ip-target-stall"));
    let path = dir.path().join("ec2/subnets.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let subnets = doc["Subnets"].as_array_mut().unwrap();
    for s in subnets.iter_mut() {
        if s["SubnetId"] == NODE_SUBNET {
            s["AvailableIpAddressCount"] = json!(0);
        }
    }
    if let Some((zone, free, tags)) = sibling {
        subnets.push(json!({
            "SubnetId": SIBLING, "VpcId": "vpc-0abcdef1234567890", "AvailabilityZone": zone,
            "CidrBlock": "10.0.128.0/20", "AvailableIpAddressCount": free, "Tags": tags,
        }));
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    dir
}

/// (code, severity, subnet_id, availability_zone) of the subnet and zone findings.
fn ip_findings(v: &Value) -> Vec<(String, String, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let c = f["code"].as_str().unwrap();
            c.starts_with("Subnet") || c.starts_with("Zone")
        })
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (
                s("code"),
                s("severity"),
                s("subnet_id"),
                s("availability_zone"),
            )
        })
        .collect()
}

fn tags(pairs: &[(&str, &str)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

#[test]
fn a_full_node_subnet_pages_only_when_the_zone_has_no_other_candidate() {
    let exhausted_subnet = vec![(
        "SubnetIpsExhausted".to_string(),
        "critical".to_string(),
        NODE_SUBNET.to_string(),
        "us-west-2a".to_string(),
    )];
    let zone = |code: &str, sev: &str| {
        vec![(
            code.to_string(),
            sev.to_string(),
            String::new(),
            "us-west-2a".to_string(),
        )]
    };
    let cni = "kubernetes.io/role/cni";
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        &str,
        Option<(&str, u64, Value)>,
        Vec<(String, String, String, String)>,
    )> = vec![
        ("no sibling", None, exhausted_subnet.clone()),
        (
            "tagged sibling with room",
            Some(("us-west-2a", 3000, tags(&[(cni, "1")]))),
            vec![],
        ),
        (
            "sibling tagged 0",
            Some(("us-west-2a", 3000, tags(&[(cni, "0")]))),
            exhausted_subnet.clone(),
        ),
        (
            "untagged sibling",
            Some(("us-west-2a", 3000, tags(&[("Name", "spare")]))),
            exhausted_subnet.clone(),
        ),
        (
            "tagged sibling in another zone",
            Some(("us-west-2b", 3000, tags(&[(cni, "1")]))),
            exhausted_subnet.clone(),
        ),
        (
            "tagged for another cluster",
            Some((
                "us-west-2a",
                3000,
                tags(&[
                    (cni, "1"),
                    ("cni.networking.k8s.aws/cluster/blue", "shared"),
                ]),
            )),
            exhausted_subnet.clone(),
        ),
        (
            "tagged for this cluster",
            Some((
                "us-west-2a",
                3000,
                tags(&[
                    (cni, "1"),
                    ("cni.networking.k8s.aws/cluster/prod-eks", "shared"),
                ]),
            )),
            vec![],
        ),
        // 8,182 usable over both /20s: 10 % is 818.2.
        (
            "tagged sibling, zone low",
            Some(("us-west-2a", 818, tags(&[(cni, "1")]))),
            zone("ZonePodIpsLow", "warning"),
        ),
        (
            "tagged sibling, zone just fine",
            Some(("us-west-2a", 819, tags(&[(cni, "1")]))),
            vec![],
        ),
        (
            "tagged sibling, zone empty",
            Some(("us-west-2a", 0, tags(&[(cni, "1")]))),
            zone("ZonePodIpsExhausted", "critical"),
        ),
    ];
    for (case, sibling, want) in rows {
        let dir = bundle(sibling);
        let v = diagnose_json(dir.path());
        assert_eq!(ip_findings(&v), want, "{case}");
    }
    // The numbers behind the quiet row.
    let v = diagnose_json(bundle(Some(("us-west-2a", 3000, tags(&[(cni, "1")])))).path());
    let z = v["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == "us-west-2a")
        .unwrap();
    assert_eq!(z["available_ips"], 3000);
    assert_eq!(z["size_ips"], 8182);
    assert_eq!(z["subnets"], json!([NODE_SUBNET, SIBLING]));
    let s1 = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "ip-10-0-36-41.us-west-2.compute.internal")
        .unwrap();
    assert_eq!(s1["eni_subnet_candidates"], json!([SIBLING, NODE_SUBNET]));
}
