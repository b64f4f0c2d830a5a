//! aws-node/Karpenter env values: `NAME=VALUE` lines into the settings parser.
#![no_main]
use eks_ipam_exporter::model::cni::{CniSettings, EnvVar};
use eks_ipam_exporter::model::env::EnvValue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let env: Vec<EnvVar> = text
        .lines()
        .map(|l| {
            let (n, v) = l.split_once('=').unwrap_or((l, ""));
            // `@...` stands for a value from a Secret (never read).
            let value = match v.strip_prefix('@') {
                Some(_) => EnvValue::Unread("secretKeyRef"),
                None => EnvValue::Literal(v.to_string()),
            };
            EnvVar { name: n.to_string(), value }
        })
        .collect();
    let s = CniSettings::from_env(&env);
    assert!(s.max_eni.is_none_or(|m| m >= 1));
});
