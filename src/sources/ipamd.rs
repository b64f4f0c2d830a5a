//! ipamd introspection (`/v1/enis`) and metrics (`:61678/metrics`) parsers.
//!
//! `/v1/enis` comes in two shapes: v1.20+ wraps the datastore per network
//! card (`{"0":{...}}`), v1.9-v1.19 return it bare (`{"TotalIPs":...}`).
//! An unknown path answers HTTP 200 with `{"AvailableCommands":[...]}`, so
//! the body's shape, not the status code, decides.
//!
//! IPv6 clusters: each IPv6 /80 prefix counts 2^48 in `TotalIPs`, and its
//! addresses are under `IPv6Cidrs`, which is ignored: the exporter models
//! the IPv4 pool only.

use crate::model::state::{
    IpamdAddress, IpamdCidr, IpamdEni, IpamdMetrics, IpamdPool, NetworkCardPool,
};
use serde::Deserialize;
use serde_json::{Number, Value};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EniInfos {
    /// Go `int` (64-bit): 2^48 per IPv6 /80 prefix. Checked by [`go_count`].
    #[serde(rename = "TotalIPs", default)]
    total_ips: Option<Number>,
    #[serde(rename = "AssignedIPs", default)]
    assigned_ips: Option<Number>,
    #[serde(rename = "ENIs", default)]
    enis: BTreeMap<String, Eni>,
}

/// A Go `int` counter of `/v1/enis` as a `u32`: must be a non-negative
/// 64-bit integer; values above `u32::MAX` (IPv6 prefixes) saturate, which
/// is harmless since the raw counters are informational only.
fn go_count(n: Option<&Number>, field: &str) -> Result<u32, String> {
    let Some(n) = n else {
        return Ok(0);
    };
    match n.as_i64() {
        Some(v) if v < 0 => Err(format!("{field} is negative ({v})")),
        Some(v) => Ok(u32::try_from(v).unwrap_or(u32::MAX)),
        None => Err(format!(
            "{field} {n} is not a Go int (a 64-bit signed integer)"
        )),
    }
}

/// One ENI. Of `IPv6Cidrs` (IPv6 /80 prefixes) only the count is kept: it
/// says the node runs in IPv6 mode, where the IPv4 pool model does not
/// apply. Fields not listed here are ignored.
#[derive(Deserialize)]
struct Eni {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "IsPrimary", default)]
    is_primary: bool,
    #[serde(rename = "IsTrunk", default)]
    is_trunk: bool,
    #[serde(rename = "IsEFA", default)]
    is_efa: bool,
    #[serde(rename = "AvailableIPv4Cidrs", default)]
    cidrs: Option<BTreeMap<String, CidrInfo>>,
    #[serde(rename = "IPv4Addresses", default)]
    legacy_addresses: Option<Value>,
    #[serde(rename = "IsExcludedForPodIPs", default)]
    excluded: bool,
    #[serde(rename = "SubnetID", default)]
    subnet_id: Option<String>,
    #[serde(rename = "IPv6Cidrs", default)]
    ipv6_cidrs: Option<BTreeMap<String, serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct CidrInfo {
    #[serde(rename = "IPAddresses", default)]
    addresses: Option<BTreeMap<String, AddressInfo>>,
    #[serde(rename = "IsPrefix", default)]
    is_prefix: bool,
}

#[derive(Deserialize)]
struct AddressInfo {
    #[serde(rename = "IPAMKey", default)]
    key: Option<IpamKey>,
    #[serde(rename = "IPAMMetadata", default)]
    metadata: Option<BTreeMap<String, Value>>,
    #[serde(
        rename = "UnassignedTime",
        default,
        deserialize_with = "super::time::de_opt"
    )]
    unassigned: Option<jiff::Timestamp>,
}

#[derive(Deserialize, Default)]
struct IpamKey {
    #[serde(rename = "networkName", default)]
    network_name: String,
    #[serde(rename = "containerID", default)]
    container_id: String,
    #[serde(rename = "ifName", default)]
    if_name: String,
}

impl AddressInfo {
    /// ipamd's `!IPAMKey.IsZero()`. Since v1.23 containerID/ifName are
    /// scrubbed, so networkName (or the pod metadata) is what remains.
    fn assigned(&self) -> bool {
        let key = self.key.as_ref();
        key.is_some_and(|k| {
            !k.network_name.is_empty() || !k.container_id.is_empty() || !k.if_name.is_empty()
        }) || self.metadata.as_ref().is_some_and(|m| !m.is_empty())
    }
}

fn is_card_index(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())
}

/// Parses `/v1/enis`: every network card's datastore (ipamd manages card 0
/// only unless ENABLE_MULTI_NIC; with it, one datastore per managed card,
/// `pkg/ipamd/introspect.go` `eniV1RequestHandler`, v1.20+).
pub fn parse_enis(body: &[u8]) -> Result<IpamdPool, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| "unknown /v1/enis shape: expected a JSON object".to_string())?;
    if obj.contains_key("AvailableCommands") {
        return Err("this is ipamd's AvailableCommands answer (wrong path?), not /v1/enis".into());
    } else if obj.contains_key("TotalIPs") || obj.contains_key("ENIs") {
        return parse_card(v);
    } else if obj.is_empty() || !obj.keys().all(|k| is_card_index(k)) {
        return Err(
            "unknown /v1/enis shape: expected {\"0\":{\"TotalIPs\":...}} (v1.20+) or {\"TotalIPs\":...} (v1.9-v1.19)".into(),
        );
    }
    let Value::Object(obj) = v else {
        return Err("unknown /v1/enis shape: expected a JSON object".into());
    };
    let mut cards: Vec<(u32, Value)> = Vec::with_capacity(obj.len());
    for (k, card) in obj {
        let index: u32 = k
            .parse()
            .map_err(|_| format!("network card index {k:?} out of range"))?;
        cards.push((index, card));
    }
    // Go writes map[int] keys sorted as strings ("10" before "2").
    cards.sort_by_key(|(i, _)| *i);
    if cards.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err("network card listed twice (e.g. \"1\" and \"01\")".into());
    }
    let mut cards = cards.into_iter();
    let Some((0, card0)) = cards.next() else {
        return Err("no datastore for network card 0".into());
    };
    let mut pool = parse_card(card0)?;
    for (index, card) in cards {
        let p = parse_card(card).map_err(|e| format!("network card {index}: {e}"))?;
        pool.other_cards.push(NetworkCardPool { index, pool: p });
    }
    Ok(pool)
}

/// One card's `ENIInfos` (the whole answer before v1.20).
fn parse_card(card0: Value) -> Result<IpamdPool, String> {
    let infos: EniInfos =
        serde_json::from_value(card0).map_err(|e| format!("unexpected /v1/enis content: {e}"))?;
    let raw_total_ips = go_count(infos.total_ips.as_ref(), "TotalIPs")?;
    let raw_assigned_ips = go_count(infos.assigned_ips.as_ref(), "AssignedIPs")?;
    let mut enis: Vec<IpamdEni> = Vec::with_capacity(infos.enis.len());
    // The same CIDR on two ENIs (seen transiently while ipamd moves an
    // address): one address, kept where it is assigned, counted once.
    let mut seen: std::collections::HashMap<String, (usize, usize)> =
        std::collections::HashMap::new();
    let mut duplicate_cidrs = 0u32;
    for (key, eni) in infos.enis {
        if eni.legacy_addresses.is_some() && eni.cidrs.is_none() {
            return Err(
                "pre-v1.9 /v1/enis shape (IPv4Addresses) is not supported; upgrade the VPC CNI"
                    .into(),
            );
        }
        let mut cidrs: Vec<IpamdCidr> = Vec::new();
        for (cidr_key, c) in eni.cidrs.unwrap_or_default() {
            let cidr = IpamdCidr {
                prefix: c.is_prefix,
                addresses: c
                    .addresses
                    .unwrap_or_default()
                    .into_values()
                    .map(|a| IpamdAddress {
                        assigned: a.assigned(),
                        unassigned_at: a.unassigned,
                    })
                    .collect(),
            };
            let assigned = |c: &IpamdCidr| c.addresses.iter().filter(|a| a.assigned).count();
            if let Some(&(e, i)) = seen.get(&cidr_key) {
                duplicate_cidrs += 1;
                let kept = &mut enis[e].cidrs[i];
                if assigned(&cidr) > assigned(kept) {
                    *kept = cidr;
                }
                continue;
            }
            seen.insert(cidr_key, (enis.len(), cidrs.len()));
            cidrs.push(cidr);
        }
        enis.push(IpamdEni {
            id: if eni.id.is_empty() { key } else { eni.id },
            primary: eni.is_primary,
            trunk: eni.is_trunk,
            efa: eni.is_efa,
            excluded: eni.excluded,
            subnet_id: eni.subnet_id.filter(|s| !s.is_empty()),
            ipv6_prefixes: eni.ipv6_cidrs.map_or(0, |m| m.len() as u32),
            cidrs,
        });
    }
    Ok(IpamdPool {
        raw_total_ips,
        raw_assigned_ips,
        duplicate_cidrs,
        enis,
        other_cards: Vec::new(),
    })
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub(crate) name: String,
    pub labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

/// A strict-enough parser for the text exposition format: comments and
/// blank lines skipped, label values unescaped, timestamps ignored.
pub fn parse_prometheus_text(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_sample(line).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    Ok(out)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| "sample without a value".to_string())?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let mut consumed = None;
        loop {
            while chars
                .peek()
                .is_some_and(|(_, c)| c.is_whitespace() || *c == ',')
            {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    consumed = Some(*i + 1);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut lname = String::new();
            while let Some((_, c)) = chars.peek() {
                if *c == '=' || c.is_whitespace() {
                    break;
                }
                lname.push(*c);
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('=')
                || chars.next().map(|(_, c)| c) != Some('"')
            {
                return Err(format!("label {lname:?} without =\"value\""));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => return Err("unterminated label value".into()),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            }
            labels.push((lname, value));
        }
        let used = consumed.ok_or_else(|| "unterminated label set".to_string())?;
        rest = &r[used..];
    }
    let mut parts = rest.split_whitespace();
    let raw = parts
        .next()
        .ok_or_else(|| "sample without a value".to_string())?;
    let value = match raw {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse::<f64>()
            .map_err(|_| format!("invalid value {v:?}"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The ipamd gauges/counters the diagnosis uses.
pub fn parse_metrics(text: &str) -> Result<IpamdMetrics, String> {
    let samples = parse_prometheus_text(text)?;
    let get = |n: &str| {
        samples
            .iter()
            .find(|s| s.name == n && s.labels.is_empty())
            .map(|s| s.value)
    };
    Ok(IpamdMetrics {
        no_available_ip_addresses: get("awscni_no_available_ip_addresses"),
        eni_max: get("awscni_eni_max"),
        eni_allocated: get("awscni_eni_allocated"),
        ip_max: get("awscni_ip_max"),
        total_ip_addresses: get("awscni_total_ip_addresses"),
        assigned_ip_addresses: get("awscni_assigned_ip_addresses"),
        version: samples
            .iter()
            .find(|s| s.name == "awscni_build_info")
            .and_then(|s| {
                s.labels
                    .iter()
                    .find(|(k, _)| k == "version")
                    .map(|(_, v)| v.clone())
            }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRAPPED: &str = r#"{"0":{"TotalIPs":2,"AssignedIPs":1,"ENIs":{"eni-a":{"ID":"eni-a","IsPrimary":true,"IsTrunk":false,"IsEFA":false,"DeviceNumber":0,
      "AvailableIPv4Cidrs":{"10.0.0.5/32":{"Cidr":{"IP":"10.0.0.5","Mask":"/////w=="},"IPAddresses":{"10.0.0.5":{"Address":"10.0.0.5",
      "IPAMKey":{"networkName":"aws-cni","containerID":"","ifName":""},"IPAMMetadata":{"k8sPodNamespace":"default","k8sPodName":"p"},
      "AssignedTime":"2026-08-25T08:13:02.418903517Z","UnassignedTime":"0001-01-01T00:00:00Z"}},"IsPrefix":false,"AddressFamily":""},
      "10.0.0.6/32":{"Cidr":{"IP":"10.0.0.6","Mask":"/////w=="},"IPAddresses":{},"IsPrefix":false,"AddressFamily":""}},
      "IPv6Cidrs":{},"IsExcludedForPodIPs":false,"RouteTableID":254,"SubnetID":"subnet-1"}}}}"#;

    #[test]
    fn wrapped_and_flat_shapes_agree() {
        let wrapped = parse_enis(WRAPPED.as_bytes()).unwrap();
        let v: Value = serde_json::from_str(WRAPPED).unwrap();
        let flat = serde_json::to_vec(&v["0"]).unwrap();
        assert_eq!(parse_enis(&flat).unwrap(), wrapped);
        let eni = &wrapped.enis[0];
        assert_eq!(
            (eni.primary, eni.subnet_id.as_deref(), eni.cidrs.len()),
            (true, Some("subnet-1"), 2)
        );
        assert_eq!(
            eni.cidrs
                .iter()
                .flat_map(|c| &c.addresses)
                .filter(|a| a.assigned)
                .count(),
            1
        );
    }

    /// Two managed cards, one pod on each, as v1.23.1 writes them with
    /// ENABLE_MULTI_NIC (shape from `pkg/ipamd/introspect.go`
    /// `eniV1RequestHandler` and the structs of
    /// `pkg/ipamd/datastore/data_store.go`, amazon-vpc-cni-k8s b52188387f2e;
    /// route table 10101 = card 1 device 1, `CalculateRouteTableId`). Card 10
    /// sorts before card 2 in Go's string order: the parser orders by index.
    const MULTI_CARD: &str = r#"{"0":{"TotalIPs":2,"AssignedIPs":1,"ENIs":{"eni-aaa":{"ID":"eni-aaa","IsPrimary":true,"IsTrunk":false,"IsEFA":false,"DeviceNumber":0,
      "AvailableIPv4Cidrs":{"10.0.0.5/32":{"Cidr":{"IP":"10.0.0.5","Mask":"/////w=="},"IPAddresses":{"10.0.0.5":{"Address":"10.0.0.5",
      "IPAMKey":{"networkName":"aws-cni","containerID":"","ifName":""},"IPAMMetadata":{"k8sPodNamespace":"default","k8sPodName":"my-pod","interfacesCount":2},
      "AssignedTime":"2025-07-10T12:00:00.123456789Z","UnassignedTime":"0001-01-01T00:00:00Z"}},"IsPrefix":false,"AddressFamily":""},
      "10.0.0.6/32":{"Cidr":{"IP":"10.0.0.6","Mask":"/////w=="},"IPAddresses":{},"IsPrefix":false,"AddressFamily":""}},
      "IPv6Cidrs":{},"IsExcludedForPodIPs":false,"RouteTableID":254,"SubnetID":"subnet-abc"}}},
     "1":{"TotalIPs":1,"AssignedIPs":1,"ENIs":{"eni-bbb":{"ID":"eni-bbb","IsPrimary":false,"IsTrunk":false,"IsEFA":false,"DeviceNumber":1,
      "AvailableIPv4Cidrs":{"10.0.16.5/32":{"Cidr":{"IP":"10.0.16.5","Mask":"/////w=="},"IPAddresses":{"10.0.16.5":{"Address":"10.0.16.5",
      "IPAMKey":{"networkName":"aws-cni","containerID":"","ifName":""},"IPAMMetadata":{"k8sPodNamespace":"default","k8sPodName":"my-pod","interfacesCount":2},
      "AssignedTime":"2025-07-10T12:00:00.123456789Z","UnassignedTime":"0001-01-01T00:00:00Z"}},"IsPrefix":false,"AddressFamily":""}},
      "IPv6Cidrs":{},"IsExcludedForPodIPs":false,"RouteTableID":10101,"SubnetID":"subnet-def"}}},
     "10":{"TotalIPs":0,"AssignedIPs":0,"ENIs":{}},
     "2":{"TotalIPs":0,"AssignedIPs":0,"ENIs":{}}}"#;

    #[test]
    fn every_network_card_is_parsed_in_index_order() {
        let p = parse_enis(MULTI_CARD.as_bytes()).unwrap();
        assert_eq!(p.enis.len(), 1);
        assert_eq!(p.enis[0].id, "eni-aaa");
        let cards: Vec<(u32, usize)> = p
            .other_cards
            .iter()
            .map(|c| (c.index, c.pool.enis.len()))
            .collect();
        assert_eq!(cards, [(1, 1), (2, 0), (10, 0)]);
        let card1 = &p.other_cards[0].pool;
        assert_eq!(card1.enis[0].subnet_id.as_deref(), Some("subnet-def"));
        assert!(!card1.enis[0].primary);
        assert_eq!((card1.raw_total_ips, card1.raw_assigned_ips), (1, 1));
        assert!(card1.other_cards.is_empty());
        let ids: Vec<&str> = p.all_enis().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["eni-aaa", "eni-bbb"]);
        // Without ENABLE_MULTI_NIC the answer is card 0 alone.
        let v: Value = serde_json::from_str(MULTI_CARD).unwrap();
        let only0 = serde_json::to_vec(&serde_json::json!({"0": v["0"]})).unwrap();
        assert!(parse_enis(&only0).unwrap().other_cards.is_empty());
    }

    #[test]
    fn bad_network_cards_are_refused_with_the_card() {
        for (body, want) in [
            (r#"{"1":{"TotalIPs":0,"ENIs":{}}}"#, "card 0"),
            (
                r#"{"0":{"TotalIPs":0,"ENIs":{}},"1":{"TotalIPs":-1,"ENIs":{}}}"#,
                "network card 1",
            ),
            (
                r#"{"0":{"TotalIPs":0,"ENIs":{}},"99999999999":{"TotalIPs":0,"ENIs":{}}}"#,
                "out of range",
            ),
            (r#"{"0":{"TotalIPs":0,"ENIs":{}},"1":{},"01":{}}"#, "twice"),
        ] {
            let err = parse_enis(body.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{body}: {err}");
        }
    }

    #[test]
    fn pre_v123_container_id_counts_as_assigned() {
        let body = WRAPPED
            .replace(
                r#""networkName":"aws-cni","containerID":"""#,
                r#""networkName":"","containerID":"abc123""#,
            )
            .replace(
                r#""IPAMMetadata":{"k8sPodNamespace":"default","k8sPodName":"p"}"#,
                r#""IPAMMetadata":{}"#,
            );
        let p = parse_enis(body.as_bytes()).unwrap();
        assert_eq!(
            p.enis[0]
                .cidrs
                .iter()
                .flat_map(|c| &c.addresses)
                .filter(|a| a.assigned)
                .count(),
            1
        );
    }

    #[test]
    fn rejects_unknown_shapes_with_a_reason() {
        for (body, want) in [
            (r#"{"AvailableCommands":["/v1/enis"]}"#, "AvailableCommands"),
            (r#"[1]"#, "expected a JSON object"),
            (r#"{"foo":1}"#, "unknown /v1/enis shape"),
            (r#"{"1":{"TotalIPs":0,"ENIs":{}}}"#, "card 0"),
            (
                r#"{"0":{"TotalIPs":"many"}}"#,
                "unexpected /v1/enis content",
            ),
            (r#"{"0":{"TotalIPs":1"#, "malformed JSON"),
            (
                r#"{"TotalIPs":1,"ENIs":{"eni-1":{"ID":"eni-1","IPv4Addresses":{}}}}"#,
                "pre-v1.9",
            ),
        ] {
            let err = parse_enis(body.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{body}: {err}");
        }
    }

    /// Issue 14 item 10: an address listed on two ENIs (transient, during an
    /// ENI move) is one address: counted once, assigned if either copy is.
    #[test]
    fn an_address_on_two_enis_counts_once() {
        let addr = |assigned: bool| {
            let key = if assigned {
                r#"{"networkName":"aws-cni","containerID":"","ifName":""}"#
            } else {
                r#"{"networkName":"","containerID":"","ifName":""}"#
            };
            format!(r#"{{"10.0.1.7":{{"Address":"10.0.1.7","IPAMKey":{key}}}}}"#)
        };
        let body = format!(
            r#"{{"0":{{"TotalIPs":3,"AssignedIPs":1,"ENIs":{{
              "eni-a":{{"ID":"eni-a","IsPrimary":true,"AvailableIPv4Cidrs":{{
                 "10.0.1.7/32":{{"IPAddresses":{},"IsPrefix":false}},
                 "10.0.1.8/32":{{"IPAddresses":{{}},"IsPrefix":false}}}}}},
              "eni-b":{{"ID":"eni-b","AvailableIPv4Cidrs":{{
                 "10.0.1.7/32":{{"IPAddresses":{},"IsPrefix":false}}}}}}}}}}}}"#,
            addr(false),
            addr(true)
        );
        let pool = parse_enis(body.as_bytes()).unwrap();
        assert_eq!(pool.duplicate_cidrs, 1);
        let cidrs: usize = pool.enis.iter().map(|e| e.cidrs.len()).sum();
        assert_eq!(cidrs, 2, "10.0.1.7 once, 10.0.1.8 once");
        let assigned: usize = pool
            .enis
            .iter()
            .flat_map(|e| &e.cidrs)
            .flat_map(|c| &c.addresses)
            .filter(|a| a.assigned)
            .count();
        assert_eq!(assigned, 1, "the assigned copy is kept");
    }

    #[test]
    fn ipv6_prefix_pool_parses_with_saturated_totals() {
        // ipamd v1.23.1 in an IPv6 cluster: one /80 prefix, TotalIPs 2^48.
        let body = include_str!("../../tests/fixtures/ipamd-enis-ipv6.json");
        let p = parse_enis(body.as_bytes()).unwrap();
        assert_eq!(p.raw_total_ips, u32::MAX, "2^48 saturates");
        assert_eq!(p.raw_assigned_ips, 3);
        assert_eq!(p.enis.len(), 1);
        let eni = &p.enis[0];
        assert_eq!(eni.id, "eni-04f1c9a7e3b5d2860");
        assert!(eni.primary);
        assert_eq!(eni.subnet_id.as_deref(), Some("subnet-0a7d3e9c5b1f46e28"));
        assert!(eni.cidrs.is_empty(), "IPv6 cidrs are not IPv4 pool cidrs");
        assert_eq!(eni.ipv6_prefixes, 1, "the /80 says the node is IPv6");
        // The flat (v1.9-v1.19) shape takes the same path.
        let v: Value = serde_json::from_str(body).unwrap();
        let flat = serde_json::to_vec(&v["0"]).unwrap();
        assert_eq!(parse_enis(&flat).unwrap(), p);
    }

    #[test]
    fn go_int_counters_out_of_range_are_clear_errors() {
        for (total, want) in [
            (
                "9223372036854775808",
                "TotalIPs 9223372036854775808 is not a Go int",
            ),
            ("18446744073709551616", "is not a Go int"),
            ("1e30", "is not a Go int"),
            ("1.5", "is not a Go int"),
            ("-1", "TotalIPs is negative (-1)"),
        ] {
            let body = format!(r#"{{"0":{{"TotalIPs":{total},"AssignedIPs":0,"ENIs":{{}}}}}}"#);
            let err = parse_enis(body.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{total}: {err}");
        }
        let err = parse_enis(br#"{"0":{"TotalIPs":1,"AssignedIPs":-3,"ENIs":{}}}"#).unwrap_err();
        assert!(err.contains("AssignedIPs is negative (-3)"), "{err}");
        // The largest Go int is accepted (and saturates).
        let p = parse_enis(br#"{"TotalIPs":9223372036854775807,"ENIs":{}}"#).unwrap();
        assert_eq!((p.raw_total_ips, p.raw_assigned_ips), (u32::MAX, 0));
    }

    #[test]
    fn prometheus_text_parsing() {
        let s = parse_prometheus_text(
            "# HELP x y\n# TYPE x gauge\nawscni_ip_max 232\nawscni_build_info{goversion=\"go1.26.4\",version=\"v1.23.1\"} 1\n\
             m{a=\"q\\\"uo\\\\te\\n\"} 1.5e3 1700000000\nn +Inf\n",
        )
        .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[2].labels,
            vec![("a".to_string(), "q\"uo\\te\n".to_string())]
        );
        assert_eq!(s[2].value, 1500.0);
        assert!(s[3].value.is_infinite());
        for bad in [
            "x",
            "x{a=\"b} 1",
            "x{a} 1",
            "x abc",
            "bad-name 1",
            "x{a=\"b\" 1",
        ] {
            assert!(parse_prometheus_text(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn reference_metrics_file() {
        let text = include_str!("../../tests/fixtures/ipamd-metrics.txt");
        let m = parse_metrics(text).unwrap();
        assert_eq!(m.no_available_ip_addresses, Some(142.0));
        assert_eq!(m.ip_max, Some(232.0));
        assert_eq!(m.eni_allocated, Some(1.0));
        assert_eq!(m.version.as_deref(), Some("v1.23.1"));
    }
}
