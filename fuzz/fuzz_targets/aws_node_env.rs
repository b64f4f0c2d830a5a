//! aws-node/Karpenter env values: `NAME=VALUE` lines into the settings parser.
#![no_main]
use eks_ipam_exporter::model::cni::{CniSettings, EnvVar};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let env: Vec<EnvVar> = text
        .lines()
        .map(|l| {
            let (n, v) = l.split_once('=').unwrap_or((l, ""));
            EnvVar { name: n.to_string(), value: (!v.starts_with('@')).then(|| v.to_string()) }
        })
        .collect();
    let s = CniSettings::from_env(&env);
    assert!(s.max_eni.is_none_or(|m| m >= 1));
});
