//! Karpenter NodeClaims, EC2NodeClasses and VPC CNI ENIConfigs.

use super::*;
// ---------- Karpenter and VPC CNI CRDs ----------

#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KNodeClaim {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
    #[serde(
        default,
        deserialize_with = "nodeclaim_spec",
        serialize_with = "nodeclaim_spec_wire"
    )]
    pub(crate) spec: KNodeClaimSpec,
    #[serde(
        default,
        deserialize_with = "nodeclaim_status",
        serialize_with = "nodeclaim_status_wire"
    )]
    pub(crate) status: KNodeClaimStatus,
}

/// The NodeClaim fields the view uses; the rest (requirements, resources,
/// conditions: about 1 KB a claim) is dropped while parsing. Read through a
/// JSON value so that a field of an odd type is unknown, never an error
/// for the whole object.
#[derive(Default, Clone, Debug)]
pub(crate) struct KNodeClaimSpec {
    pub(crate) node_class: Option<String>,
    pub(crate) node_class_group: Option<String>,
}

#[derive(Default, Clone, Debug)]
pub(crate) struct KNodeClaimStatus {
    pub(crate) node_name: Option<String>,
    /// `status.capacity.pods`, as written.
    pub(crate) capacity_pods: Option<String>,
}

pub(super) fn json_text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

pub(super) fn nodeclaim_spec<'de, D: Deserializer<'de>>(d: D) -> Result<KNodeClaimSpec, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(KNodeClaimSpec {
        node_class: json_text(&v, "/nodeClassRef/name"),
        node_class_group: json_text(&v, "/nodeClassRef/group"),
    })
}

pub(super) fn nodeclaim_status<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<KNodeClaimStatus, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(KNodeClaimStatus {
        node_name: json_text(&v, "/nodeName"),
        capacity_pods: json_text(&v, "/capacity/pods"),
    })
}

fn nodeclaim_spec_wire<S: Serializer>(v: &KNodeClaimSpec, s: S) -> Result<S::Ok, S::Error> {
    serde_json::json!({"nodeClassRef": {"group": v.node_class_group, "name": v.node_class}})
        .serialize(s)
}

fn nodeclaim_status_wire<S: Serializer>(v: &KNodeClaimStatus, s: S) -> Result<S::Ok, S::Error> {
    serde_json::json!({"nodeName": v.node_name, "capacity": {"pods": v.capacity_pods}}).serialize(s)
}

impl KNodeClaim {
    pub(crate) fn to_state(&self) -> NodeClaimState {
        NodeClaimState {
            name: name_of(&self.metadata),
            node_name: self.status.node_name.clone(),
            nodeclass: self.spec.node_class.clone(),
            nodeclass_group: self.spec.node_class_group.clone(),
            capacity_pods: self.status.capacity_pods.as_deref().and_then(parse_count),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KNodeClass {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: Value,
    #[serde(default)]
    pub(crate) status: Value,
}

impl KNodeClass {
    pub(crate) fn to_state(&self) -> Result<NodeClassState, String> {
        let max_pods = match self.spec.pointer("/kubelet/maxPods") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(MaxPodsSetting::Fixed(
                n.as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| {
                        format!(
                            "EC2NodeClass {}: spec.kubelet.maxPods {n} is not a count",
                            name_of(&self.metadata)
                        )
                    })?,
            )),
            Some(Value::String(s)) => Some(match s.trim().parse::<u32>() {
                Ok(v) => MaxPodsSetting::Fixed(v),
                Err(_) => MaxPodsSetting::Expression(s.clone()),
            }),
            Some(other) => {
                return Err(format!(
                    "EC2NodeClass {}: spec.kubelet.maxPods must be a number or string, got {other}",
                    name_of(&self.metadata)
                ))
            }
        };
        let pods_per_core = self
            .spec
            .pointer("/kubelet/podsPerCore")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok());
        let family = self
            .spec
            .get("amiFamily")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                self.spec
                    .get("amiSelectorTerms")
                    .and_then(Value::as_array)
                    .and_then(|terms| {
                        terms
                            .iter()
                            .find_map(|t| t.get("alias").and_then(Value::as_str))
                    })
                    .map(str::to_string)
            });
        let efa_only_card0 = self
            .spec
            .get("networkInterfaces")
            .and_then(Value::as_array)
            .map(|nis| {
                nis.iter()
                    .filter(|ni| {
                        ni.get("networkCardIndex")
                            .and_then(Value::as_u64)
                            .unwrap_or(0)
                            == 0
                    })
                    .filter(|ni| {
                        ni.get("interfaceType").and_then(Value::as_str) == Some("efa-only")
                    })
                    .count() as u32
            })
            .unwrap_or(0);
        let subnets = self
            .status
            .get("subnets")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(|s| {
                        let id = s.get("id")?.as_str()?.to_string();
                        Some((
                            id,
                            s.get("zone").and_then(Value::as_str).map(str::to_string),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(NodeClassState {
            name: name_of(&self.metadata),
            max_pods,
            pods_per_core,
            ami_family: family
                .as_deref()
                .map(AmiFamily::parse)
                .unwrap_or(AmiFamily::Standard),
            efa_only_card0,
            subnets,
        })
    }
}

/// An EKS Auto Mode NodeClass (`eks.amazonaws.com/v1`); only the subnet
/// selector terms are kept.
#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KAutoNodeClass {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
    #[serde(
        default,
        deserialize_with = "auto_nodeclass_spec",
        serialize_with = "auto_nodeclass_spec_wire"
    )]
    pub(crate) spec: KAutoNodeClassSpec,
}

#[derive(Default, Clone, Debug)]
pub(crate) struct KAutoNodeClassSpec {
    subnet_selector_terms: Option<Value>,
    pod_subnet_selector_terms: Option<Value>,
}

fn auto_nodeclass_spec<'de, D: Deserializer<'de>>(d: D) -> Result<KAutoNodeClassSpec, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(KAutoNodeClassSpec {
        subnet_selector_terms: v.get("subnetSelectorTerms").cloned(),
        pod_subnet_selector_terms: v.get("podSubnetSelectorTerms").cloned(),
    })
}

fn auto_nodeclass_spec_wire<S: Serializer>(
    v: &KAutoNodeClassSpec,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut m = serde_json::Map::new();
    if let Some(t) = &v.subnet_selector_terms {
        m.insert("subnetSelectorTerms".into(), t.clone());
    }
    if let Some(t) = &v.pod_subnet_selector_terms {
        m.insert("podSubnetSelectorTerms".into(), t.clone());
    }
    Value::Object(m).serialize(s)
}

/// Selector terms as Karpenter's `getFilterSets` reads them: an `id` term
/// wins over its tags; a term with neither is refused (the CRD refuses it).
fn subnet_terms(
    class: &str,
    field: &str,
    v: Option<&Value>,
) -> Result<Vec<SubnetSelectorTerm>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let bad = |why: &str| format!("NodeClass {class}: spec.{field} {why}");
    let terms = v.as_array().ok_or_else(|| bad("is not a list"))?;
    terms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if let Some(id) = t
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                return Ok(SubnetSelectorTerm::Id(id.to_string()));
            }
            let tags = t
                .get("tags")
                .and_then(Value::as_object)
                .filter(|m| !m.is_empty())
                .ok_or_else(|| bad(&format!("[{i}] has neither an id nor tags")))?;
            tags.iter()
                .map(|(k, v)| match v.as_str() {
                    Some(v) => Ok((k.clone(), v.to_string())),
                    None => Err(bad(&format!("[{i}].tags.{k} is not a string"))),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(SubnetSelectorTerm::Tags)
        })
        .collect()
}

impl KAutoNodeClass {
    pub(crate) fn to_state(&self) -> Result<AutoNodeClassState, String> {
        let name = name_of(&self.metadata);
        Ok(AutoNodeClassState {
            subnet_terms: subnet_terms(
                &name,
                "subnetSelectorTerms",
                self.spec.subnet_selector_terms.as_ref(),
            )?,
            pod_subnet_terms: subnet_terms(
                &name,
                "podSubnetSelectorTerms",
                self.spec.pod_subnet_selector_terms.as_ref(),
            )?,
            name,
        })
    }
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KEniConfig {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: Value,
}

impl KEniConfig {
    pub(crate) fn to_state(&self) -> EniConfigState {
        EniConfigState {
            name: name_of(&self.metadata),
            subnet: self
                .spec
                .get("subnet")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

/// NodePools carry nothing the view uses yet; read to validate the file.
#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KNodePool {
    #[serde(deserialize_with = "meta_min")]
    pub(crate) metadata: ObjectMeta,
}
