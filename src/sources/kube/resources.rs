//! The VPC extended resources of pods and nodes: container requests, node
//! allocatable, the pod's effective request and the scheduler's refusal.

use super::*;

/// The VPC resources of a resource list (`requests`, `allocatable`); every
/// other resource is skipped while parsing. Quantities are kept as written
/// (a string on the wire; a number is accepted too) and read by
/// [`quantity_count`].
#[derive(Deserialize, Serialize, Default, Clone, Debug, PartialEq)]
pub(crate) struct KVpcQuantities {
    #[serde(
        default,
        rename = "vpc.amazonaws.com/pod-eni",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) pod_eni: Option<Value>,
    #[serde(
        default,
        rename = "vpc.amazonaws.com/PrivateIPv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) private_ipv4: Option<Value>,
}

impl KVpcQuantities {
    pub(crate) fn is_empty(&self) -> bool {
        self.pod_eni.is_none() && self.private_ipv4.is_none()
    }

    fn get(&self, r: VpcResource) -> Option<&Value> {
        match r {
            VpcResource::PodEni => self.pod_eni.as_ref(),
            VpcResource::PrivateIpv4Address => self.private_ipv4.as_ref(),
        }
    }

    /// Absent: 0 (a request) or `None` (allocatable: not advertised) by the
    /// caller's choice; present but not a whole count: `Err`.
    pub(crate) fn count(&self, r: VpcResource) -> Option<Result<u32, ()>> {
        self.get(r).map(|v| quantity_count(v).ok_or(()))
    }
}

/// A quantity that must be a whole count (extended resources are integers):
/// `"3"`, `3`, `"2k"`, `"1Ki"`, `"3000m"`. Anything else (a fraction, a
/// negative, beyond u32) is `None`, never rounded.
pub(crate) fn quantity_count(v: &Value) -> Option<u32> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, suffix) = text.split_at(split);
    let (mul, div): (u64, u64) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        _ => return None,
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 9 {
        return None;
    }
    // Exact: the number as int + frac / 10^len(frac), times mul / div.
    let scale = 10u64.pow(frac.len() as u32);
    let digits: u64 = format!("{int}{frac}").parse().ok()?;
    let numer = u128::from(digits) * u128::from(mul);
    let denom = u128::from(scale) * u128::from(div);
    (numer % denom == 0)
        .then(|| numer / denom)
        .and_then(|n| u32::try_from(n).ok())
}

/// A container as far as its VPC requests go.
#[derive(Deserialize, Serialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KContainerRequests {
    #[serde(default)]
    pub(crate) name: String,
    /// `Always` on an init container: a sidecar, which keeps running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) restart_policy: Option<String>,
    #[serde(default)]
    pub(crate) resources: KResources,
}

#[derive(Deserialize, Serialize, Default, Clone, Debug, PartialEq)]
pub(crate) struct KResources {
    /// The API server copies limits into missing requests (core/v1
    /// defaulting), so requests are what the scheduler reads.
    #[serde(default, skip_serializing_if = "KVpcQuantities::is_empty")]
    pub(crate) requests: KVpcQuantities,
}

impl KResources {
    pub(crate) fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

/// Only the containers that request a VPC resource (the slim pod keeps no
/// other; dropping the rest does not change the effective request: each
/// adds 0 to the sums and to the running init total).
pub(super) fn vpc_containers<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<KContainerRequests>, D::Error> {
    let all = Option::<Vec<KContainerRequests>>::deserialize(d)?.unwrap_or_default();
    Ok(all
        .into_iter()
        .filter(|c| !c.resources.requests.is_empty())
        .collect())
}

/// The pod's effective request of each VPC resource, as the scheduler
/// computes it (kubernetes `staging/src/k8s.io/component-helpers/resource/helpers.go`
/// `PodRequests` at 301946d15e67): the sum over containers and sidecars
/// (`restartPolicy: Always` init containers), or the largest init phase if
/// larger (an init container plus the sidecars started before it). Pod
/// overhead is left out: a RuntimeClass overhead of these resources is not
/// something EKS sets. `None` for a resource whose quantity is not a count.
pub(super) fn effective_requests<'a>(
    containers: impl Iterator<Item = &'a KResources> + Clone,
    init: impl Iterator<Item = (&'a KResources, bool)> + Clone,
) -> PerResource<Option<u32>> {
    PerResource::from_fn(|r| {
        let q = |res: &KResources| -> Option<u64> {
            match res.requests.count(r) {
                None => Some(0),
                Some(Ok(n)) => Some(u64::from(n)),
                Some(Err(())) => None,
            }
        };
        let mut reqs: u64 = 0;
        for c in containers.clone() {
            reqs += q(c)?;
        }
        let (mut sidecars, mut init_max) = (0u64, 0u64);
        for (c, sidecar) in init.clone() {
            let n = q(c)?;
            let phase = if sidecar {
                reqs += n;
                sidecars += n;
                sidecars
            } else {
                n + sidecars
            };
            init_max = init_max.max(phase);
        }
        u32::try_from(reqs.max(init_max)).ok()
    })
}

/// A container of either pod type (full or slim), as far as its requests go.
pub(super) trait RequestingContainer {
    fn resources(&self) -> &KResources;
    fn restart_policy(&self) -> Option<&str>;
}

impl RequestingContainer for KContainerRequests {
    fn resources(&self) -> &KResources {
        &self.resources
    }
    fn restart_policy(&self) -> Option<&str> {
        self.restart_policy.as_deref()
    }
}

impl RequestingContainer for KContainer {
    fn resources(&self) -> &KResources {
        &self.resources
    }
    fn restart_policy(&self) -> Option<&str> {
        self.restart_policy.as_deref()
    }
}

/// [`effective_requests`] of a pod's containers and init containers.
pub(super) fn pod_requests<C: RequestingContainer>(
    containers: &[C],
    init: &[C],
) -> PerResource<Option<u32>> {
    effective_requests(
        containers.iter().map(C::resources),
        init.iter()
            .map(|c| (c.resources(), c.restart_policy() == Some("Always"))),
    )
}

/// A pod or node condition as far as the exporter reads it (pods keep
/// `PodScheduled` only, nodes `NetworkingReady` only).
#[derive(Deserialize, Serialize, Default, Clone, Debug, PartialEq)]
pub(crate) struct KCondition {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

pub(super) fn scheduled_condition<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<KCondition>, D::Error> {
    let all = Option::<Vec<KCondition>>::deserialize(d)?.unwrap_or_default();
    Ok(all
        .into_iter()
        .filter(|c| c.kind == "PodScheduled")
        .collect())
}

/// Which VPC resources the scheduler refused the pod for: `PodScheduled`
/// False, reason `Unschedulable` (`v1.PodReasonUnschedulable`), and a
/// message naming `Insufficient <resource>` (the NodeResourcesFit plugin's
/// reason, `pkg/scheduler/framework/plugins/noderesources/fit.go`
/// `fmt.Sprintf("Insufficient %v", rName)`, counted per node in the
/// `0/N nodes are available: ...` message of `FitError.Error()`).
pub(super) fn refused_for(conditions: &[KCondition]) -> PerResource<bool> {
    let Some(msg) = conditions
        .iter()
        .find(|c| c.kind == "PodScheduled" && c.status == "False")
        .filter(|c| c.reason.as_deref() == Some("Unschedulable"))
        .and_then(|c| c.message.as_deref())
    else {
        return PerResource::default();
    };
    PerResource::from_fn(|r| names_insufficient(msg, r.name()))
}

/// `msg` contains `Insufficient <name>` with `<name>` ending there (so
/// `PrivateIPv4Address` does not match `PrivateIPv4AddressFromPrefix`; the
/// sentence's own `.` or `,` may follow).
fn names_insufficient(msg: &str, name: &str) -> bool {
    let needle = format!("Insufficient {name}");
    msg.match_indices(&needle).any(|(at, _)| {
        let next = msg[at + needle.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_are_whole_counts_or_unknown() {
        let cases: &[(Value, Option<u32>)] = &[
            (json!("1"), Some(1)),
            (json!(" 9 "), Some(9)),
            (json!(54), Some(54)),
            (json!("2k"), Some(2000)),
            (json!("1Ki"), Some(1024)),
            (json!("3000m"), Some(3)),
            (json!("1.5k"), Some(1500)),
            (json!("1500m"), None),
            (json!("0.5"), None),
            (json!("-1"), None),
            (json!("5Gi"), None),
            (json!("1e3"), None),
            (json!(""), None),
            (json!("."), None),
            (json!(true), None),
            (json!(1.5), None),
        ];
        for (v, want) in cases {
            assert_eq!(quantity_count(v), *want, "{v}");
        }
    }

    fn res(pod_eni: Option<&str>) -> KResources {
        KResources {
            requests: KVpcQuantities {
                pod_eni: pod_eni.map(Value::from),
                private_ipv4: None,
            },
        }
    }

    /// The sidecar rows of kubernetes
    /// `staging/src/k8s.io/component-helpers/resource/helpers_test.go`
    /// `TestPodResourceRequests` (the stored copy the search tool reads; its
    /// cpu requests read as pod-eni counts), then our own unknown cases.
    #[test]
    fn effective_request_follows_the_scheduler() {
        type Row = (
            &'static str,
            Vec<Option<&'static str>>,
            Vec<(Option<&'static str>, bool)>,
            Option<u32>,
        );
        const S: bool = true; // restartPolicy: Always
        let rows: Vec<Row> = vec![
            (
                "nil options, larger init container",
                vec![Some("1")],
                vec![(Some("4"), false)],
                Some(4),
            ),
            (
                "nil options, larger containers",
                vec![Some("2"), Some("3")],
                vec![(Some("2"), false)],
                Some(5),
            ),
            (
                "restartable init container",
                vec![Some("1")],
                vec![(Some("1"), S)],
                Some(2),
            ),
            (
                "multiple restartable init containers",
                vec![Some("1")],
                vec![
                    (Some("5"), false),
                    (Some("1"), S),
                    (Some("2"), S),
                    (Some("3"), S),
                ],
                Some(7),
            ),
            (
                "multiple restartable and regular init containers",
                vec![Some("1")],
                vec![
                    (Some("5"), false),
                    (Some("1"), S),
                    (Some("2"), S),
                    (Some("5"), false),
                    (Some("3"), S),
                ],
                Some(8),
            ),
            (
                "restartable-init, init and regular",
                vec![Some("100")],
                vec![(Some("10"), S), (Some("200"), false)],
                Some(210),
            ),
            // Ours: nothing requested; a quantity that is not a count.
            ("none requested", vec![None], vec![], Some(0)),
            (
                "a fraction is unknown",
                vec![Some("1"), Some("0.5")],
                vec![],
                None,
            ),
            (
                "unknown in an init container",
                vec![Some("1")],
                vec![(Some("x"), false)],
                None,
            ),
        ];
        for (what, containers, init, want) in rows {
            let c: Vec<KResources> = containers.into_iter().map(res).collect();
            let i: Vec<(KResources, bool)> = init.into_iter().map(|(q, s)| (res(q), s)).collect();
            let got = effective_requests(c.iter(), i.iter().map(|(r, s)| (r, *s)));
            assert_eq!(got.pod_eni, want, "{what}");
            assert_eq!(got.private_ipv4, Some(0), "{what}: other resource");
        }
    }

    fn cond(status: &str, reason: &str, message: &str) -> Vec<KCondition> {
        vec![KCondition {
            kind: "PodScheduled".into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
        }]
    }

    #[test]
    fn scheduler_refusals_by_resource() {
        // Messages as FitError.Error() writes them (sorted "count reason"
        // histogram, then the preemption plugin's own sentence).
        let both = "0/5 nodes are available: 1 Insufficient vpc.amazonaws.com/pod-eni, 2 Insufficient vpc.amazonaws.com/PrivateIPv4Address, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/5 nodes are available: 5 No preemption victims found for incoming pod.";
        let r = refused_for(&cond("False", "Unschedulable", both));
        assert!(r.pod_eni && r.private_ipv4);
        let eni_last = "0/3 nodes are available: 3 Insufficient vpc.amazonaws.com/pod-eni.";
        let r = refused_for(&cond("False", "Unschedulable", eni_last));
        assert!(r.pod_eni && !r.private_ipv4);
        // Another resource that starts with the same name.
        let prefix = "0/1 nodes are available: 1 Insufficient vpc.amazonaws.com/PrivateIPv4AddressFromPrefix.";
        assert_eq!(
            refused_for(&cond("False", "Unschedulable", prefix)),
            PerResource::default()
        );
        // Only an Unschedulable False condition counts.
        assert_eq!(
            refused_for(&cond("True", "Unschedulable", eni_last)),
            PerResource::default()
        );
        assert_eq!(
            refused_for(&cond("False", "SchedulerError", eni_last)),
            PerResource::default()
        );
        let cpu = "0/3 nodes are available: 3 Insufficient cpu.";
        assert_eq!(
            refused_for(&cond("False", "Unschedulable", cpu)),
            PerResource::default()
        );
        assert_eq!(refused_for(&[]), PerResource::default());
    }
}
