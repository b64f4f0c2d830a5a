//! Pod-IP capacity (what ipamd can really hand out) versus the max-pods the
//! kubelet, the scheduler and Karpenter assume.

use super::cni::CniSettings;
use super::limits::InstanceLimits;
use serde::Serialize;

/// Host-network pods the max-pods formulas reserve room for (aws-node, kube-proxy).
pub(crate) const FORMULA_HOST_NETWORK_PODS: u32 = 2;

/// IPs in one /28 prefix.
pub(crate) const IPS_PER_PREFIX: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IpMode {
    SecondaryIp,
    Prefix,
}

/// Prefix mode only when enabled **and** supported: on other instances ipamd
/// logs a warning and silently stays in secondary-IP mode.
pub(crate) fn ip_mode(settings: &CniSettings, limits: &InstanceLimits) -> IpMode {
    if settings.prefix_delegation && limits.supports_prefix_delegation() {
        IpMode::Prefix
    } else {
        IpMode::SecondaryIp
    }
}

/// ENIs ipamd may attach: min(MAX_ENI, default-card ENIs).
pub(crate) fn max_enis(settings: &CniSettings, limits: &InstanceLimits) -> u32 {
    match settings.max_eni {
        Some(m) => m.min(limits.default_card_max_enis),
        None => limits.default_card_max_enis,
    }
}

/// How the default card's ENI slots are used besides by pod ENIs, as ipamd
/// counts them (amazon-vpc-cni-k8s v1.23.1, b52188387f2e, `pkg/ipamd/ipamd.go`
/// `hasRoomForEni`, `filterUnmanagedENIs`, `excludedENIBasedOnSubnetTags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct EniSlots {
    /// Unmanaged ENIs on card 0 (EFA-only; tagged `no_manage=true`): absent
    /// from ipamd's datastore, no IPs, but each takes a slot (`unmanagedENI`).
    pub(crate) unmanaged: u32,
    /// A trunk ENI (security groups for pods) is attached.
    pub(crate) trunk_attached: bool,
    /// The type can carry a trunk (VPC resource controller's table; ipamd's
    /// `IsTrunkingCompatible` says yes for a type it does not know).
    pub(crate) trunking_compatible: bool,
    /// Managed secondary ENIs in subnets tagged `kubernetes.io/role/cni=0`
    /// (VPC CNI >= 1.22): in the datastore, a slot each, no pod IPs.
    pub(crate) excluded_secondary: u32,
    /// The primary ENI is in such a subnet.
    pub(crate) primary_excluded: bool,
}

/// Whether a slot goes to the trunk ENI: attached, or reserved by
/// `hasRoomForEni` before it is attached (ENABLE_POD_ENI on a trunking
/// compatible type).
pub(crate) fn trunk_slot(settings: &CniSettings, slots: &EniSlots) -> bool {
    slots.trunk_attached || (settings.pod_eni && slots.trunking_compatible)
}

/// ENIs that carry pod IPs: the default card's ENIs less the unmanaged
/// ones, the trunk's slot, the primary under custom networking (or when it
/// is excluded) and excluded secondaries.
pub(crate) fn usable_pod_enis(
    settings: &CniSettings,
    limits: &InstanceLimits,
    slots: &EniSlots,
) -> u32 {
    let primary_unused = settings.custom_networking || slots.primary_excluded;
    max_enis(settings, limits)
        .saturating_sub(slots.unmanaged)
        .saturating_sub(u32::from(trunk_slot(settings, slots)))
        .saturating_sub(u32::from(primary_unused))
        .saturating_sub(slots.excluded_secondary)
}

/// Pod IPs one ENI can hold in the given mode (its primary IP is never a pod IP).
pub(crate) fn ips_per_eni(mode: IpMode, limits: &InstanceLimits) -> u32 {
    let slots = limits.ipv4_per_eni.saturating_sub(1);
    match mode {
        IpMode::SecondaryIp => slots,
        IpMode::Prefix => slots.saturating_mul(IPS_PER_PREFIX),
    }
}

/// IPs ipamd can hand to pods on this node under these settings.
pub(crate) fn pod_ip_capacity(
    settings: &CniSettings,
    limits: &InstanceLimits,
    slots: &EniSlots,
) -> u32 {
    usable_pod_enis(settings, limits, slots)
        .saturating_mul(ips_per_eni(ip_mode(settings, limits), limits))
}

/// AMI family, as far as Karpenter's max-pods logic cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AmiFamily {
    /// AL2, AL2023 and Custom: ENI-limited pods, podsPerCore honoured.
    Standard,
    /// ENI-limited pods, podsPerCore ignored.
    Bottlerocket,
    /// 110 pods, podsPerCore honoured.
    Windows,
}

impl AmiFamily {
    /// From EC2NodeClass `spec.amiFamily` or an `amiSelectorTerms[].alias`
    /// such as `al2023@latest`.
    pub(crate) fn parse(s: &str) -> Self {
        let family = s.split('@').next().unwrap_or("").to_ascii_lowercase();
        if family.starts_with("bottlerocket") {
            AmiFamily::Bottlerocket
        } else if family.starts_with("windows") {
            AmiFamily::Windows
        } else {
            AmiFamily::Standard
        }
    }
}

/// `spec.kubelet.maxPods` on an EC2NodeClass: an integer, or (behind the
/// unreleased NodeClassCEL gate) a CEL expression we do not evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MaxPodsSetting {
    Fixed(u32),
    Expression(String),
}

/// The EC2NodeClass inputs to Karpenter's pods formula.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct KarpenterPodsInput {
    pub(crate) reserved_enis: u32,
    pub(crate) max_pods: Option<MaxPodsSetting>,
    pub(crate) pods_per_core: Option<u32>,
    pub(crate) ami_family: AmiFamily,
    /// `spec.networkInterfaces[]` with `interfaceType: efa-only` on card 0.
    pub(crate) efa_only_card0: u32,
}

/// Karpenter's RESERVED_ENIS as its controller reads it
/// (karpenter-provider-aws v1.14.1, bde00654cd31, `pkg/operator/options/
/// options.go`): the flag `--reserved-enis` wins; its default is the env
/// through `env.WithDefaultInt` (sigs.k8s.io/karpenter 6e7eab7a0f48,
/// `pkg/utils/env/env.go`), i.e. Go `strconv.Atoi`, **silently 0** when the
/// value does not parse (`" 1"` is 0: Atoi does not trim); a negative value
/// fails validation and the controller does not start. `None`: the
/// controller would not run with this configuration (value unknown).
pub(crate) fn karpenter_reserved_enis(env: Option<&str>, args: &[String]) -> Option<u32> {
    let from_env = match env {
        None => 0,
        Some(v) => super::cni::go_atoi(v).unwrap_or(0),
    };
    let mut value = from_env;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let flag = a.strip_prefix("--").or_else(|| a.strip_prefix('-'));
        let Some(flag) = flag else { continue };
        let parsed = if let Some(v) = flag.strip_prefix("reserved-enis=") {
            go_parse_int_base0(v)
        } else if flag == "reserved-enis" {
            it.next().and_then(|v| go_parse_int_base0(v))
        } else {
            continue;
        };
        // An unparsable flag value stops the controller at startup.
        value = parsed?;
    }
    u32::try_from(value).ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)` (how the `flag` package reads an
/// int): optional sign, `0x`/`0o`/`0b` prefixes, a leading `0` for octal,
/// underscores between digits.
fn go_parse_int_base0(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    // Underscores: only between digits, or right after a base prefix.
    let bytes = digits.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'_' {
            let before_ok = if i == 0 {
                prefixed
            } else {
                bytes[i - 1] != b'_'
            };
            let after_ok = i + 1 < bytes.len() && bytes[i + 1] != b'_';
            if !(before_ok && after_ok) {
                return None;
            }
        }
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    let v = i64::from_str_radix(&clean, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// Karpenter's `pods()` / `ENILimitedPods()` (karpenter-provider-aws v1.14,
/// `pkg/providers/instancetype/types.go`). `None` when maxPods is an
/// expression we cannot evaluate, or when podsPerCore applies and the type's
/// vCPU count is unknown (never a guess).
pub(crate) fn karpenter_expected_max_pods(
    limits: &InstanceLimits,
    input: &KarpenterPodsInput,
) -> Option<u32> {
    let count = match (&input.max_pods, input.ami_family) {
        (Some(MaxPodsSetting::Fixed(n)), _) => *n,
        (Some(MaxPodsSetting::Expression(_)), _) => return None,
        (None, AmiFamily::Windows) => 110,
        (None, _) => {
            let usable = limits
                .default_card_max_enis
                .saturating_sub(input.reserved_enis)
                .saturating_sub(input.efa_only_card0);
            if usable == 0 {
                0
            } else {
                usable
                    .saturating_mul(limits.ipv4_per_eni.saturating_sub(1))
                    .saturating_add(FORMULA_HOST_NETWORK_PODS)
            }
        }
    };
    let pods_per_core_applies = input.ami_family != AmiFamily::Bottlerocket;
    match input.pods_per_core {
        Some(ppc) if ppc > 0 && pods_per_core_applies => limits
            .vcpus
            .map(|vcpus| count.min(ppc.saturating_mul(vcpus))),
        _ => Some(count),
    }
}

/// Pods the scheduler may place that will not get an IP: assumed max pods
/// minus host-network pods (which need no pod IP) minus pod-IP capacity.
/// Positive means pods will hang in ContainerCreating on a node that looks free.
pub(crate) fn overcommit(
    assumed_max_pods: u32,
    host_network_pods: u32,
    pod_ip_capacity: u32,
) -> i64 {
    i64::from(assumed_max_pods) - i64::from(host_network_pods) - i64::from(pod_ip_capacity)
}

/// Test helpers: the classic formulas the tables are written in.
#[cfg(test)]
impl EniSlots {
    /// No ENI besides pod ENIs, on an instance type of `limits`.
    pub(crate) fn plain(limits: &InstanceLimits) -> Self {
        EniSlots {
            trunking_compatible: limits.trunking_compatible.unwrap_or(true),
            ..Default::default()
        }
    }
}

/// Max pods the CNI can really serve: pod IPs plus the two host-network pods
/// the formulas assume (t4g.medium: 17 default, 12 custom networking).
#[cfg(test)]
pub(crate) fn cni_max_pods(
    settings: &CniSettings,
    limits: &InstanceLimits,
    slots: &EniSlots,
) -> u32 {
    pod_ip_capacity(settings, limits, slots).saturating_add(FORMULA_HOST_NETWORK_PODS)
}

/// `eni-max-pods.txt` / nodeadm default: ENIs x (IPv4 - 1) + 2, default card.
#[cfg(test)]
pub(crate) fn eni_max_pods(limits: &InstanceLimits) -> u32 {
    limits
        .default_card_max_enis
        .saturating_mul(limits.ipv4_per_eni.saturating_sub(1))
        .saturating_add(FORMULA_HOST_NETWORK_PODS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cni::EnvVar;
    use crate::model::limits::embedded;

    fn settings(pairs: &[(&str, &str)]) -> CniSettings {
        let env: Vec<EnvVar> = pairs.iter().map(|(n, v)| EnvVar::new(n, v)).collect();
        CniSettings::from_env(&env)
    }

    fn karpenter(reserved: u32) -> KarpenterPodsInput {
        KarpenterPodsInput {
            reserved_enis: reserved,
            max_pods: None,
            pods_per_core: None,
            ami_family: AmiFamily::Standard,
            efa_only_card0: 0,
        }
    }

    #[test]
    fn known_max_pods_default_and_custom_networking() {
        let default = settings(&[]);
        let custom = settings(&[("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true")]);
        // (type, eni-max-pods default, CNI max pods with custom networking,
        //  pod IPs default, pod IPs custom)
        let cases = [
            ("t4g.medium", 17, 12, 15, 10),
            ("t4g.large", 35, 24, 33, 22),
            ("m8g.4xlarge", 234, 205, 232, 203),
            ("m5.large", 29, 20, 27, 18),
            ("p5.48xlarge", 100, 51, 98, 49),
            ("c6in.32xlarge", 394, 345, 392, 343),
        ];
        for (t, dflt, cust, ips_default, ips_custom) in cases {
            let l = embedded(t).unwrap();
            assert_eq!(eni_max_pods(l), dflt, "{t} eni-max-pods");
            assert_eq!(
                cni_max_pods(&default, l, &EniSlots::plain(l)),
                dflt,
                "{t} default CNI max pods"
            );
            assert_eq!(
                cni_max_pods(&custom, l, &EniSlots::plain(l)),
                cust,
                "{t} custom CNI max pods"
            );
            assert_eq!(
                pod_ip_capacity(&default, l, &EniSlots::plain(l)),
                ips_default,
                "{t}"
            );
            assert_eq!(
                pod_ip_capacity(&custom, l, &EniSlots::plain(l)),
                ips_custom,
                "{t}"
            );
        }
    }

    #[test]
    fn karpenter_formula_with_reserved_enis() {
        let cases = [
            ("t4g.medium", 0, 17),
            ("t4g.medium", 1, 12),
            ("t4g.large", 0, 35),
            ("t4g.large", 1, 24),
            ("m8g.4xlarge", 0, 234),
            ("m8g.4xlarge", 1, 205),
            ("p5.48xlarge", 1, 51),
            ("t4g.medium", 3, 0),
            ("t4g.medium", 9, 0),
        ];
        for (t, reserved, want) in cases {
            let got = karpenter_expected_max_pods(embedded(t).unwrap(), &karpenter(reserved));
            assert_eq!(got, Some(want), "{t} RESERVED_ENIS={reserved}");
        }
    }

    #[test]
    fn karpenter_node_class_overrides() {
        let l = embedded("t4g.medium").unwrap();
        let mut k = karpenter(0);
        k.max_pods = Some(MaxPodsSetting::Fixed(110));
        assert_eq!(
            karpenter_expected_max_pods(l, &k),
            Some(110),
            "maxPods wins over RESERVED_ENIS"
        );
        k.pods_per_core = Some(4);
        assert_eq!(
            karpenter_expected_max_pods(l, &k),
            Some(8),
            "podsPerCore x 2 vCPU caps"
        );
        k.ami_family = AmiFamily::Bottlerocket;
        assert_eq!(
            karpenter_expected_max_pods(l, &k),
            Some(110),
            "Bottlerocket ignores podsPerCore"
        );
        k.max_pods = Some(MaxPodsSetting::Expression("vcpus * 8".into()));
        assert_eq!(karpenter_expected_max_pods(l, &k), None);
        let mut w = karpenter(1);
        w.ami_family = AmiFamily::Windows;
        assert_eq!(karpenter_expected_max_pods(l, &w), Some(110));
        let mut efa = karpenter(0);
        efa.efa_only_card0 = 1;
        assert_eq!(karpenter_expected_max_pods(l, &efa), Some(12));
    }

    #[test]
    fn pods_per_core_without_vcpus_is_unknown() {
        // c9g.large is in the VPC CNI's table but not in moto's data: no vCPUs.
        let l = embedded("c9g.large").expect("c9g.large in table");
        assert_eq!(l.vcpus, None);
        let mut k = karpenter(0);
        assert_eq!(karpenter_expected_max_pods(l, &k), Some(59), "3 x 19 + 2");
        k.pods_per_core = Some(4);
        assert_eq!(karpenter_expected_max_pods(l, &k), None, "no guess");
        k.pods_per_core = Some(0);
        assert_eq!(karpenter_expected_max_pods(l, &k), Some(59), "0 = unset");
        k.pods_per_core = Some(4);
        k.ami_family = AmiFamily::Bottlerocket;
        assert_eq!(
            karpenter_expected_max_pods(l, &k),
            Some(59),
            "Bottlerocket ignores podsPerCore, so vCPUs are not needed"
        );
    }

    #[test]
    fn incident_one_overcommit() {
        let custom = settings(&[("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true")]);
        let medium = embedded("t4g.medium").unwrap();
        let large = embedded("t4g.large").unwrap();
        let assumed = karpenter_expected_max_pods(medium, &karpenter(0)).unwrap();
        assert_eq!(
            overcommit(
                assumed,
                2,
                pod_ip_capacity(&custom, medium, &EniSlots::plain(medium))
            ),
            5
        );
        let assumed = karpenter_expected_max_pods(large, &karpenter(0)).unwrap();
        assert_eq!(
            overcommit(
                assumed,
                2,
                pod_ip_capacity(&custom, large, &EniSlots::plain(large))
            ),
            11
        );
        // With RESERVED_ENIS=1 Karpenter's number fits exactly.
        let fixed = karpenter_expected_max_pods(medium, &karpenter(1)).unwrap();
        assert_eq!(
            overcommit(
                fixed,
                2,
                pod_ip_capacity(&custom, medium, &EniSlots::plain(medium))
            ),
            0
        );
        // A third host-network pod (e.g. a node agent) lowers real overcommit.
        assert_eq!(overcommit(17, 3, 10), 4);
    }

    #[test]
    fn prefix_mode_capacity_and_fallback_on_xen() {
        let pd = settings(&[("ENABLE_PREFIX_DELEGATION", "true")]);
        let l = embedded("t4g.medium").unwrap();
        assert_eq!(ip_mode(&pd, l), IpMode::Prefix);
        assert_eq!(pod_ip_capacity(&pd, l, &EniSlots::plain(l)), 240);
        let m8g = embedded("m8g.4xlarge").unwrap();
        assert_eq!(pod_ip_capacity(&pd, m8g, &EniSlots::plain(m8g)), 3712);
        let pd_custom = settings(&[
            ("ENABLE_PREFIX_DELEGATION", "true"),
            ("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true"),
        ]);
        assert_eq!(pod_ip_capacity(&pd_custom, l, &EniSlots::plain(l)), 160);
        let xen = embedded("m4.large").unwrap();
        assert_eq!(
            ip_mode(&pd, xen),
            IpMode::SecondaryIp,
            "non-Nitro silently stays secondary"
        );
    }

    #[test]
    fn max_eni_and_trunk_reserve() {
        let l = embedded("m5.large").unwrap();
        let capped = settings(&[("MAX_ENI", "2")]);
        assert_eq!(max_enis(&capped, l), 2);
        assert_eq!(pod_ip_capacity(&capped, l, &EniSlots::plain(l)), 18);
        let above = settings(&[("MAX_ENI", "10")]);
        assert_eq!(
            max_enis(&above, l),
            3,
            "MAX_ENI cannot exceed the instance limit"
        );
        let sgpp = settings(&[("ENABLE_POD_ENI", "true")]);
        let trunk = EniSlots {
            trunk_attached: true,
            ..EniSlots::plain(l)
        };
        assert_eq!(
            pod_ip_capacity(&sgpp, l, &trunk),
            18,
            "trunk ENI holds no pod IPs"
        );
        // hasRoomForEni reserves the trunk's slot before the trunk exists
        // (issue 14 item 2: this was 27 before).
        assert_eq!(
            pod_ip_capacity(&sgpp, l, &EniSlots::plain(l)),
            18,
            "trunk not attached yet: its slot is reserved"
        );
        // t4g types are not trunking compatible: no reserve.
        let t4g = embedded("t4g.large").unwrap();
        assert_eq!(t4g.trunking_compatible, Some(false));
        assert_eq!(pod_ip_capacity(&sgpp, t4g, &EniSlots::plain(t4g)), 33);
        let all = settings(&[
            ("ENABLE_POD_ENI", "true"),
            ("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true"),
            ("MAX_ENI", "2"),
        ]);
        assert_eq!(usable_pod_enis(&all, l, &trunk), 0);
        assert_eq!(pod_ip_capacity(&all, l, &trunk), 0);
    }

    /// Issue 14 item 1: an EFA-only ENI takes one of the default card's
    /// slots (`filterUnmanagedENIs` counts it in `unmanagedENI`) but carries
    /// no IP. g4dn.8xlarge (4 ENIs x 15 IPv4) with one EFA-only ENI and
    /// custom networking: (4 - 1 - 1) x 14 = 28 pod IPs. Karpenter with
    /// RESERVED_ENIS=0 subtracts the EFA-only interface too, giving
    /// (4 - 0 - 1) x 14 plus 2 = 44, so 44 - 2 - 28 = 14 pods are
    /// overcommitted (0 before: the EFA slot was counted as a pod ENI).
    #[test]
    fn unmanaged_and_excluded_enis_take_slots_without_pod_ips() {
        let custom = settings(&[("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "true")]);
        let g4dn = embedded("g4dn.8xlarge").unwrap();
        let efa = EniSlots {
            unmanaged: 1,
            ..EniSlots::plain(g4dn)
        };
        assert_eq!(pod_ip_capacity(&custom, g4dn, &EniSlots::plain(g4dn)), 42);
        assert_eq!(pod_ip_capacity(&custom, g4dn, &efa), 28);
        let mut k = karpenter(0);
        k.efa_only_card0 = 1;
        let assumed = karpenter_expected_max_pods(g4dn, &k).unwrap();
        assert_eq!(assumed, 44);
        assert_eq!(
            overcommit(assumed, 2, pod_ip_capacity(&custom, g4dn, &efa)),
            14
        );
        // Excluded ENIs (subnet tagged kubernetes.io/role/cni=0) keep a slot.
        let default = settings(&[]);
        let m5 = embedded("m5.large").unwrap();
        let excluded = EniSlots {
            excluded_secondary: 1,
            ..EniSlots::plain(m5)
        };
        assert_eq!(pod_ip_capacity(&default, m5, &excluded), 18);
        // An excluded primary is lost once, with or without custom networking.
        let primary = EniSlots {
            primary_excluded: true,
            ..EniSlots::plain(m5)
        };
        assert_eq!(pod_ip_capacity(&default, m5, &primary), 18);
        assert_eq!(pod_ip_capacity(&custom, m5, &primary), 18);
        // More unmanaged ENIs than slots: zero, not an underflow.
        let many = EniSlots {
            unmanaged: 9,
            ..EniSlots::plain(m5)
        };
        assert_eq!(pod_ip_capacity(&default, m5, &many), 0);
    }

    /// RESERVED_ENIS exactly as Karpenter reads it (see
    /// `karpenter_reserved_enis`); rows from strconv's documented behaviour
    /// and karpenter-provider-aws v1.14.1 `pkg/operator/options/suite_test.go`
    /// (env RESERVED_ENIS=10 -> 10, L84-113; `--reserved-enis -1` -> error,
    /// L145-148).
    #[test]
    fn reserved_enis_parse_like_karpenter() {
        let none: [String; 0] = [];
        let env = |v: &str| karpenter_reserved_enis(Some(v), &none);
        assert_eq!(karpenter_reserved_enis(None, &none), Some(0));
        assert_eq!(env("10"), Some(10));
        assert_eq!(env("1"), Some(1));
        assert_eq!(env("+1"), Some(1));
        assert_eq!(env("007"), Some(7), "Atoi is base 10");
        // Atoi errors fall back to the default 0, silently: incident 1 stays.
        for bad in [
            " 1",
            "1 ",
            "",
            "1.0",
            "one",
            "0x1",
            "1_0",
            "99999999999999999999",
        ] {
            assert_eq!(env(bad), Some(0), "{bad:?}");
        }
        assert_eq!(env("-1"), None, "negative: the controller does not start");
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            karpenter_reserved_enis(Some("0"), &args(&["--reserved-enis=1"])),
            Some(1)
        );
        assert_eq!(
            karpenter_reserved_enis(Some("1"), &args(&["--reserved-enis", "0"])),
            Some(0)
        );
        assert_eq!(
            karpenter_reserved_enis(None, &args(&["-reserved-enis=0x2"])),
            Some(2)
        );
        assert_eq!(
            karpenter_reserved_enis(None, &args(&["--reserved-enis=010"])),
            Some(8)
        );
        assert_eq!(
            karpenter_reserved_enis(None, &args(&["--reserved-enis=1_0"])),
            Some(10)
        );
        assert_eq!(
            karpenter_reserved_enis(None, &args(&["--reserved-enis=-1"])),
            None
        );
        assert_eq!(
            karpenter_reserved_enis(None, &args(&["--reserved-enis= 1"])),
            None
        );
        assert_eq!(
            karpenter_reserved_enis(Some("1"), &args(&["--other=2"])),
            Some(1)
        );
    }

    /// Limits as karpenter-provider-aws v1.14.1's fake EC2 API describes the
    /// type (`pkg/fake/zz_generated.describe_instance_types.go`): default
    /// vCPUs, default-card ENIs, IPv4 per ENI.
    fn fake_type(name: &str, vcpus: u32, card0_enis: u32, ipv4: u32) -> InstanceLimits {
        InstanceLimits {
            instance_type: name.into(),
            vcpus: Some(vcpus),
            hypervisor: crate::model::limits::Hypervisor::Nitro,
            bare_metal: false,
            network_cards: 1,
            default_card_max_enis: card0_enis,
            max_enis_total: card0_enis,
            ipv4_per_eni: ipv4,
            trunking_compatible: None,
        }
    }

    /// The max-pods expectations of karpenter-provider-aws v1.14.1
    /// (bde00654cd316fddb3dccfba3f5ac07039865429)
    /// `pkg/providers/instancetype/suite_test.go`, on its fake types.
    #[test]
    fn upstream_karpenter_max_pods_expectations() {
        let t3_large = fake_type("t3.large", 2, 3, 12);
        // m6idn.32xlarge: 16 ENIs over two cards of 8; card 0 counts.
        let m6idn = fake_type("m6idn.32xlarge", 128, 8, 50);
        let m5_xlarge = fake_type("m5.xlarge", 4, 4, 15);
        let base = |reserved| karpenter(reserved);
        let with = |f: &dyn Fn(&mut KarpenterPodsInput)| {
            let mut k = karpenter(0);
            f(&mut k);
            k
        };
        let ppc4_max20 = || {
            with(&|k| {
                k.pods_per_core = Some(4);
                k.max_pods = Some(MaxPodsSetting::Fixed(20))
            })
        };
        // (line, type, input, expected pods)
        let rows: Vec<(&str, &InstanceLimits, KarpenterPodsInput, Option<u32>)> = vec![
            // L1617-1663 "should default max pods based off of network interfaces"
            ("L1617", &t3_large, base(0), Some(35)),
            ("L1617", &m6idn, base(0), Some(394)),
            // L1165-1187 kube-reserved memory 893Mi = 11 x 58 + 255 on m5.xlarge
            ("L1165", &m5_xlarge, base(0), Some(58)),
            // L1664-1765 user-defined maxPods=10, any family
            (
                "L1664",
                &t3_large,
                with(&|k| k.max_pods = Some(MaxPodsSetting::Fixed(10))),
                Some(10),
            ),
            (
                "L1731 Bottlerocket",
                &t3_large,
                with(&|k| {
                    k.max_pods = Some(MaxPodsSetting::Fixed(10));
                    k.ami_family = AmiFamily::Bottlerocket
                }),
                Some(10),
            ),
            (
                "L1731 Windows",
                &t3_large,
                with(&|k| {
                    k.max_pods = Some(MaxPodsSetting::Fixed(10));
                    k.ami_family = AmiFamily::Windows
                }),
                Some(10),
            ),
            // L1766-1815 ReservedENIs=1: (3 - 1) x 11 + 2 = 24; Windows 110
            ("L1808 AL2023", &t3_large, base(1), Some(24)),
            (
                "L1808 Bottlerocket",
                &t3_large,
                with(&|k| {
                    k.reserved_enis = 1;
                    k.ami_family = AmiFamily::Bottlerocket
                }),
                Some(24),
            ),
            (
                "L1808 Windows",
                &t3_large,
                with(&|k| {
                    k.reserved_enis = 1;
                    k.ami_family = AmiFamily::Windows
                }),
                Some(110),
            ),
            // L1816-1853 ReservedENIs=1,000,000: "if max-pods is 2, we output 0"
            ("L1816", &t3_large, base(1_000_000), Some(0)),
            // L1854-1880 podsPerCore=1: the vCPU count
            (
                "L1854",
                &t3_large,
                with(&|k| k.pods_per_core = Some(1)),
                Some(2),
            ),
            (
                "L1854",
                &m6idn,
                with(&|k| k.pods_per_core = Some(1)),
                Some(128),
            ),
            // L1881-1908 min(maxPods=20, podsPerCore=4 x vCPUs)
            ("L1881", &t3_large, ppc4_max20(), Some(8)),
            ("L1881", &m5_xlarge, ppc4_max20(), Some(16)),
            ("L1881", &m6idn, ppc4_max20(), Some(20)),
            // L1909-1937 Bottlerocket ignores podsPerCore
            (
                "L1909",
                &t3_large,
                with(&|k| {
                    k.pods_per_core = Some(1);
                    k.ami_family = AmiFamily::Bottlerocket
                }),
                Some(35),
            ),
            // L1938-1985 podsPerCore=0 is unset
            (
                "L1938",
                &t3_large,
                with(&|k| k.pods_per_core = Some(0)),
                Some(35),
            ),
            (
                "L1938",
                &m6idn,
                with(&|k| k.pods_per_core = Some(0)),
                Some(394),
            ),
            // L3249-3266 an EFA-only interface on card 0: (8 - 1) x 49 + 2
            ("L3249", &m6idn, with(&|k| k.efa_only_card0 = 1), Some(345)),
            // L3231-3248 EFA-only on card 1 is not subtracted
            ("L3231", &m6idn, base(0), Some(394)),
        ];
        for (line, limits, input, want) in rows {
            assert_eq!(
                karpenter_expected_max_pods(limits, &input),
                want,
                "{line} {}",
                limits.instance_type
            );
        }
    }

    #[test]
    fn ami_family_parsing() {
        assert_eq!(AmiFamily::parse("al2023@latest"), AmiFamily::Standard);
        assert_eq!(
            AmiFamily::parse("bottlerocket@v1.40.0"),
            AmiFamily::Bottlerocket
        );
        assert_eq!(AmiFamily::parse("Bottlerocket"), AmiFamily::Bottlerocket);
        assert_eq!(AmiFamily::parse("windows2022@latest"), AmiFamily::Windows);
        assert_eq!(AmiFamily::parse("Custom"), AmiFamily::Standard);
    }
}
