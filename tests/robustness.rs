//! Hostile input never panics and never yields a wrong number: property tests
//! over every parser of outside data (ipamd JSON and metrics, CloudTrail
//! events, timestamps, aws-node env, bundle files), and escaping round trips.

use eks_ipam_exporter::model::cni::{CniSettings, EnvVar};
use eks_ipam_exporter::render::exposition::escape_label_value;
use eks_ipam_exporter::render::html::escape;
use eks_ipam_exporter::sources::cloudtrail::{to_api_call, LookupEvent};
use eks_ipam_exporter::sources::ipamd::{parse_enis, parse_metrics, parse_prometheus_text};
use proptest::prelude::*;

const STALLED: &str = include_str!("fixtures/ipamd-enis-stalled.json");
const PREFIX: &str = include_str!("fixtures/ipamd-enis-prefix.json");
const METRICS: &str = include_str!("fixtures/ipamd-metrics.txt");

/// Mutations of a real payload: truncation, byte flips, insertions.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    (0..base.len(), any::<u8>(), 0usize..4).prop_map(move |(at, byte, how)| {
        let mut b = base.as_bytes().to_vec();
        match how {
            0 => b.truncate(at),
            1 => b[at] = byte,
            2 => b.insert(at, byte),
            _ => {
                b.drain(at..(at + 8).min(b.len()));
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn enis_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_enis(&bytes);
    }

    #[test]
    fn enis_parser_never_panics_on_mutated_payloads(b in mutated(STALLED), p in mutated(PREFIX)) {
        for bytes in [b, p] {
            if let Ok(pool) = parse_enis(&bytes) {
                // Whatever parses says what the payload says: as many IPv4
                // CIDRs (counted once across ENIs) and addresses as an
                // independent reading of the same JSON finds.
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let card = if v.get("ENIs").is_some() || v.get("TotalIPs").is_some() { &v } else { &v["0"] };
                let mut cidrs = std::collections::BTreeSet::new();
                for eni in card["ENIs"].as_object().into_iter().flat_map(|m| m.values()) {
                    for k in eni["AvailableIPv4Cidrs"].as_object().into_iter().flat_map(|m| m.keys()) {
                        cidrs.insert(k.clone());
                    }
                }
                let parsed: usize = pool.enis.iter().map(|e| e.cidrs.len()).sum();
                prop_assert_eq!(parsed, cidrs.len());
                prop_assert_eq!(pool.enis.len(), card["ENIs"].as_object().map_or(0, |m| m.len()));
            }
        }
    }

    #[test]
    fn metrics_parser_never_panics(text in "\\PC{0,300}", m in mutated(METRICS)) {
        let _ = parse_prometheus_text(&text);
        if let Ok(s) = std::str::from_utf8(&m) {
            let _ = parse_metrics(s);
        }
    }

    #[test]
    fn label_values_survive_escaping(value in "\\PC{0,64}") {
        let mut line = String::from("m{l=\"");
        escape_label_value(&value, &mut line);
        line.push_str("\"} 1\n");
        let parsed = parse_prometheus_text(&line).unwrap();
        prop_assert_eq!(&parsed[0].labels[0].1, &value);
    }

    #[test]
    fn html_escape_leaves_no_markup(value in "\\PC{0,64}") {
        let e = escape(&value);
        prop_assert!(!e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''));
    }

    #[test]
    fn cloudtrail_events_never_panic(inner in "\\PC{0,200}", name in "[A-Za-z]{0,30}", time in any::<f64>()) {
        let ev = LookupEvent {
            event_id: Some("e".into()),
            event_name: Some(name),
            event_time: serde_json::Number::from_f64(time).map(serde_json::Value::Number),
            username: Some("i-0123".into()),
            cloud_trail_event: Some(inner),
        };
        let _ = to_api_call(&ev);
    }

    #[test]
    fn cloudtrail_inner_json_with_odd_types_never_panics(
        t in prop_oneof![Just(serde_json::json!(null)), Just(serde_json::json!(1e308)), Just(serde_json::json!("x")), Just(serde_json::json!([1])), Just(serde_json::json!({"a": 1}))],
    ) {
        let inner = serde_json::json!({
            "eventName": "AssignPrivateIpAddresses", "eventID": t, "eventTime": t,
            "requestParameters": t, "responseElements": t, "userIdentity": t, "errorCode": t
        });
        let ev = LookupEvent {
            event_id: Some("e".into()),
            event_name: None,
            event_time: Some(t.clone()),
            username: None,
            cloud_trail_event: Some(inner.to_string()),
        };
        let _ = to_api_call(&ev);
    }

    #[test]
    fn env_parsing_never_panics_and_stays_in_range(
        vars in proptest::collection::vec(("(WARM_IP_TARGET|MINIMUM_IP_TARGET|WARM_ENI_TARGET|MAX_ENI|ENABLE_PREFIX_DELEGATION|IP_COOLDOWN_PERIOD)", "\\PC{0,12}"), 0..8)
    ) {
        let env: Vec<EnvVar> = vars.iter().map(|(n, v)| EnvVar::new(n, v)).collect();
        let s = CniSettings::from_env(&env);
        prop_assert!(s.max_eni.is_none_or(|m| m >= 1));
    }
}
