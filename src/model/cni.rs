//! aws-node environment -> the settings ipamd actually runs with.
//!
//! Parsing mirrors ipamd v1.23 (`pkg/ipamd/ipamd.go`): integers go through
//! Go's `strconv.Atoi`; WARM_IP_TARGET and MINIMUM_IP_TARGET treat unset,
//! invalid and negative as 0, and **0 means "not set"**; WARM_ENI_TARGET
//! defaults to 1; booleans go through `strconv.ParseBool` and fall back to
//! their default on a parse error.

use serde::Serialize;

pub use super::env::EnvVar;
use super::env::{resolve, ConfigMaps, ContainerEnv, ResolvedEnv};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CniSettings {
    /// 0 = not set.
    pub(crate) warm_ip_target: u32,
    /// 0 = not set.
    pub(crate) minimum_ip_target: u32,
    pub(crate) warm_eni_target: u32,
    pub(crate) warm_prefix_target: u32,
    pub(crate) prefix_delegation: bool,
    pub(crate) custom_networking: bool,
    /// MAX_ENI when >= 1; otherwise the instance limit applies.
    pub max_eni: Option<u32>,
    pub(crate) pod_eni: bool,
    pub(crate) ip_cooldown_seconds: u32,
    pub(crate) disable_provisioning: bool,
    pub(crate) imds_only: bool,
    pub(crate) manage_enis_non_schedulable: bool,
    /// MANAGE_UNTAGGED_ENI (default true): false makes ENIs ipamd did not
    /// create (no `node.k8s.amazonaws.com/instance_id` tag of this
    /// instance) unmanaged.
    pub(crate) manage_untagged_eni: bool,
    pub(crate) ipv6: bool,
    pub(crate) eni_config_label_def: Option<String>,
    pub(crate) eni_config_annotation_def: Option<String>,
    /// ENABLE_SUBNET_DISCOVERY (default true, VPC CNI >= 1.18): new ENIs
    /// may go to subnets of the node's zone tagged `kubernetes.io/role/cni`
    /// (`UseSubnetDiscovery` in pkg/ipamd/ipamd.go).
    pub(crate) subnet_discovery: bool,
    /// CLUSTER_NAME: restricts discovered subnets that carry
    /// `cni.networking.k8s.aws/cluster/<name>` tags to this cluster.
    pub(crate) cluster_name: Option<String>,
    /// ENABLE_MULTI_NIC (VPC CNI >= 1.20, default false): ipamd manages the
    /// instance's network cards beyond card 0, one datastore each
    /// (`markUnmanagedNetworkCards`, pkg/ipamd/ipamd.go).
    pub(crate) multi_nic: bool,
    /// Settings that matter to the diagnosis whose value could not be
    /// known (a Secret, a ConfigMap the exporter cannot read, ...), each
    /// with why: the numbers that depend on settings are unknown.
    pub(crate) unresolved: Vec<String>,
    /// Values ipamd would reject and replace with its default.
    pub(crate) invalid: Vec<String>,
}

const DEFAULT_WARM_ENI_TARGET: u32 = 1;
const DEFAULT_WARM_PREFIX_TARGET: u32 = 0;
const DEFAULT_IP_COOLDOWN_SECONDS: u32 = 30;

/// The env names this module reads; others are ignored.
pub(crate) const KNOWN: &[&str] = &[
    "WARM_IP_TARGET",
    "MINIMUM_IP_TARGET",
    "WARM_ENI_TARGET",
    "WARM_PREFIX_TARGET",
    "ENABLE_PREFIX_DELEGATION",
    "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG",
    "MAX_ENI",
    "ENABLE_POD_ENI",
    "IP_COOLDOWN_PERIOD",
    "DISABLE_NETWORK_RESOURCE_PROVISIONING",
    "ENABLE_IMDS_ONLY_MODE",
    "AWS_MANAGE_ENIS_NON_SCHEDULABLE",
    "MANAGE_UNTAGGED_ENI",
    "ENABLE_IPv6",
    "ENI_CONFIG_LABEL_DEF",
    "ENI_CONFIG_ANNOTATION_DEF",
    "ENABLE_SUBNET_DISCOVERY",
    "CLUSTER_NAME",
    "ENABLE_MULTI_NIC",
];

/// Go's `strconv.Atoi` for the values that appear in practice: optional
/// sign, ASCII digits, no whitespace.
pub(crate) fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Default for CniSettings {
    fn default() -> Self {
        CniSettings::from_env(&[])
    }
}

impl CniSettings {
    /// Effective settings from plain `value:` entries. With duplicate
    /// names the last entry wins, as in Kubernetes.
    pub fn from_env(env: &[EnvVar]) -> Self {
        Self::from_container(&ContainerEnv::literal(env.to_vec()), &ConfigMaps::new())
    }

    /// Effective settings of a container, its references resolved against
    /// the ConfigMaps read (see [`super::env`]).
    pub(crate) fn from_container(c: &ContainerEnv, cms: &ConfigMaps) -> Self {
        Self::from_resolved(&resolve(c, cms))
    }

    fn from_resolved(env: &ResolvedEnv) -> Self {
        let mut s = CniSettings {
            warm_ip_target: 0,
            minimum_ip_target: 0,
            warm_eni_target: DEFAULT_WARM_ENI_TARGET,
            warm_prefix_target: DEFAULT_WARM_PREFIX_TARGET,
            prefix_delegation: false,
            custom_networking: false,
            max_eni: None,
            pod_eni: false,
            ip_cooldown_seconds: DEFAULT_IP_COOLDOWN_SECONDS,
            disable_provisioning: false,
            imds_only: false,
            manage_enis_non_schedulable: false,
            manage_untagged_eni: true,
            ipv6: false,
            eni_config_label_def: None,
            eni_config_annotation_def: None,
            subnet_discovery: true,
            cluster_name: None,
            multi_nic: false,
            unresolved: Vec::new(),
            invalid: Vec::new(),
        };
        for name in KNOWN {
            match env.get(name) {
                None => {}
                Some(Ok(value)) => s.apply(name, value),
                Some(Err(why)) => s.unresolved.push(format!("{name} ({why})")),
            }
        }
        s
    }

    fn apply(&mut self, name: &str, value: &str) {
        let mut invalid = false;
        // "unset if invalid or negative": WARM_IP_TARGET, MINIMUM_IP_TARGET.
        let non_negative_or_zero = |invalid: &mut bool| match go_atoi(value) {
            Some(v) if v >= 0 => u32::try_from(v).unwrap_or(u32::MAX),
            _ => {
                *invalid = true;
                0
            }
        };
        let boolean = |default: bool, invalid: &mut bool| match go_parse_bool(value) {
            Some(b) => b,
            None => {
                // ipamd reads an empty string as "unset", not as an error.
                *invalid = !value.is_empty();
                default
            }
        };
        match name {
            "WARM_IP_TARGET" => self.warm_ip_target = non_negative_or_zero(&mut invalid),
            "MINIMUM_IP_TARGET" => self.minimum_ip_target = non_negative_or_zero(&mut invalid),
            "WARM_ENI_TARGET" => {
                self.warm_eni_target = match go_atoi(value) {
                    Some(v) if v >= 0 => u32::try_from(v).unwrap_or(u32::MAX),
                    _ => {
                        invalid = true;
                        DEFAULT_WARM_ENI_TARGET
                    }
                }
            }
            "WARM_PREFIX_TARGET" => {
                self.warm_prefix_target = match go_atoi(value) {
                    Some(v) if v >= 0 => u32::try_from(v).unwrap_or(u32::MAX),
                    _ => {
                        invalid = true;
                        DEFAULT_WARM_PREFIX_TARGET
                    }
                }
            }
            "IP_COOLDOWN_PERIOD" => {
                self.ip_cooldown_seconds = match go_atoi(value) {
                    Some(v) if v >= 0 => u32::try_from(v).unwrap_or(u32::MAX),
                    _ => {
                        invalid = true;
                        DEFAULT_IP_COOLDOWN_SECONDS
                    }
                }
            }
            "MAX_ENI" => {
                // getMaxENI: values < 1 are ignored.
                self.max_eni = match go_atoi(value) {
                    Some(v) if v >= 1 => Some(u32::try_from(v).unwrap_or(u32::MAX)),
                    Some(_) => None,
                    None => {
                        invalid = true;
                        None
                    }
                }
            }
            "ENABLE_PREFIX_DELEGATION" => self.prefix_delegation = boolean(false, &mut invalid),
            "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG" => {
                self.custom_networking = boolean(false, &mut invalid)
            }
            "ENABLE_POD_ENI" => self.pod_eni = boolean(false, &mut invalid),
            "DISABLE_NETWORK_RESOURCE_PROVISIONING" => {
                self.disable_provisioning = boolean(false, &mut invalid)
            }
            "ENABLE_IMDS_ONLY_MODE" => self.imds_only = boolean(false, &mut invalid),
            "AWS_MANAGE_ENIS_NON_SCHEDULABLE" => {
                self.manage_enis_non_schedulable = boolean(false, &mut invalid)
            }
            "MANAGE_UNTAGGED_ENI" => self.manage_untagged_eni = boolean(true, &mut invalid),
            "ENABLE_IPv6" => self.ipv6 = boolean(false, &mut invalid),
            "ENI_CONFIG_LABEL_DEF" => {
                self.eni_config_label_def = Some(value.to_string()).filter(|v| !v.is_empty())
            }
            "ENI_CONFIG_ANNOTATION_DEF" => {
                self.eni_config_annotation_def = Some(value.to_string()).filter(|v| !v.is_empty())
            }
            "ENABLE_SUBNET_DISCOVERY" => self.subnet_discovery = boolean(true, &mut invalid),
            "ENABLE_MULTI_NIC" => self.multi_nic = boolean(false, &mut invalid),
            // os.Getenv: an empty value is "not set".
            "CLUSTER_NAME" => self.cluster_name = Some(value.to_string()).filter(|v| !v.is_empty()),
            _ => {}
        }
        if invalid {
            self.invalid.push(format!("{name}={value:?}"));
        }
    }

    /// Every setting is known (none from `valueFrom`/`envFrom`).
    pub(crate) fn resolved(&self) -> bool {
        self.unresolved.is_empty()
    }

    /// ipamd's `warmIPTargetsDefined()`: either IP target set disables the
    /// WARM_ENI_TARGET / WARM_PREFIX_TARGET fallbacks.
    pub(crate) fn ip_targets_defined(&self) -> bool {
        self.warm_ip_target != 0 || self.minimum_ip_target != 0
    }

    /// The incident-2 misconfiguration: growth stops once total IPs reach
    /// MINIMUM_IP_TARGET, however many are free.
    pub(crate) fn minimum_without_warm(&self) -> bool {
        self.minimum_ip_target > 0 && self.warm_ip_target == 0
    }

    /// The targets ipamd applies to a network card other than card 0:
    /// WARM_IP_TARGET=1 and MINIMUM_IP_TARGET=1 whatever the user set
    /// (`datastoreTargetState`, "multi card ENIs will use WARM_IP_TARGET=1
    /// and MINIMUM_IP_TARGET=1 by default", pkg/ipamd/ipamd.go, v1.23.1
    /// b52188387f2e). Defined IP targets also make WARM_ENI_TARGET and
    /// WARM_PREFIX_TARGET moot there.
    pub(crate) fn for_secondary_card(&self) -> CniSettings {
        CniSettings {
            warm_ip_target: 1,
            minimum_ip_target: 1,
            ..self.clone()
        }
    }

    /// DISABLE_NETWORK_RESOURCE_PROVISIONING or ENABLE_IMDS_ONLY_MODE: ipamd
    /// manages no pool at all.
    pub(crate) fn provisioning_disabled(&self) -> bool {
        self.disable_provisioning || self.imds_only
    }

    /// Label name that selects a node's ENIConfig (ENI_CONFIG_LABEL_DEF).
    pub(crate) fn eni_config_label(&self) -> &str {
        self.eni_config_label_def
            .as_deref()
            .unwrap_or("k8s.amazonaws.com/eniConfig")
    }

    /// Annotation name that selects a node's ENIConfig.
    pub(crate) fn eni_config_annotation(&self) -> &str {
        self.eni_config_annotation_def
            .as_deref()
            .unwrap_or("k8s.amazonaws.com/eniConfig")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<EnvVar> {
        pairs.iter().map(|(n, v)| EnvVar::new(n, v)).collect()
    }

    #[test]
    fn defaults_match_ipamd() {
        let s = CniSettings::from_env(&[]);
        assert_eq!(s.warm_ip_target, 0);
        assert_eq!(s.minimum_ip_target, 0);
        assert_eq!(s.warm_eni_target, 1);
        assert_eq!(s.warm_prefix_target, 0);
        assert_eq!(s.ip_cooldown_seconds, 30);
        assert!(!s.custom_networking && !s.prefix_delegation && !s.ip_targets_defined());
    }

    #[test]
    fn integer_targets_follow_go_atoi_and_zero_means_unset() {
        // (value, expected WARM_IP_TARGET, flagged invalid)
        let cases = [
            ("10", 10, false),
            ("+10", 10, false),
            ("0", 0, false),
            ("-3", 0, true),
            ("", 0, true),
            (" 10", 0, true),
            ("ten", 0, true),
            ("1e3", 0, true),
            ("99999999999", u32::MAX, false),
        ];
        for (value, want, bad) in cases {
            let s = CniSettings::from_env(&env(&[("WARM_IP_TARGET", value)]));
            assert_eq!(s.warm_ip_target, want, "WARM_IP_TARGET={value:?}");
            assert_eq!(!s.invalid.is_empty(), bad, "invalid flag for {value:?}");
        }
    }

    #[test]
    fn warm_eni_target_falls_back_to_one() {
        for (value, want) in [("0", 0), ("2", 2), ("-1", 1), ("x", 1)] {
            let s = CniSettings::from_env(&env(&[("WARM_ENI_TARGET", value)]));
            assert_eq!(s.warm_eni_target, want, "{value:?}");
        }
    }

    #[test]
    fn booleans_follow_go_parse_bool() {
        for (value, want) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("1", true),
            ("t", true),
            ("false", false),
            ("yes", false),
            ("", false),
        ] {
            let s = CniSettings::from_env(&env(&[("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", value)]));
            assert_eq!(s.custom_networking, want, "{value:?}");
        }
    }

    /// `TestEnableMultiNICSupport` (pkg/ipamd/ipamd_test.go, amazon-vpc-cni-k8s
    /// b52188387f2e): unset and "false" are off, "true" on; GetBoolAsStringEnvVar
    /// keeps the default for a value ParseBool rejects.
    #[test]
    fn enable_multi_nic_follows_upstream() {
        assert!(!CniSettings::from_env(&env(&[])).multi_nic);
        for (value, want, invalid) in [
            ("true", true, false),
            ("false", false, false),
            ("on", false, true),
        ] {
            let s = CniSettings::from_env(&env(&[("ENABLE_MULTI_NIC", value)]));
            assert_eq!(
                (s.multi_nic, !s.invalid.is_empty()),
                (want, invalid),
                "{value:?}"
            );
        }
        let s = CniSettings::from_env(&env(&[
            ("WARM_IP_TARGET", "10"),
            ("WARM_PREFIX_TARGET", "2"),
        ]));
        let card = s.for_secondary_card();
        assert_eq!(
            (
                card.warm_ip_target,
                card.minimum_ip_target,
                card.warm_prefix_target
            ),
            (1, 1, 2)
        );
    }

    #[test]
    fn max_eni_below_one_is_ignored() {
        let get = |v| CniSettings::from_env(&env(&[("MAX_ENI", v)])).max_eni;
        assert_eq!(get("2"), Some(2));
        assert_eq!(get("0"), None);
        assert_eq!(get("-1"), None);
    }

    #[test]
    fn incident_two_settings_are_recognised() {
        let s = CniSettings::from_env(&env(&[
            ("MINIMUM_IP_TARGET", "25"),
            ("WARM_ENI_TARGET", "1"),
        ]));
        assert!(s.minimum_without_warm() && s.ip_targets_defined());
        let fixed = CniSettings::from_env(&env(&[
            ("MINIMUM_IP_TARGET", "25"),
            ("WARM_IP_TARGET", "10"),
        ]));
        assert!(!fixed.minimum_without_warm());
    }

    #[test]
    fn value_from_is_unresolved_not_guessed() {
        let e = vec![EnvVar {
            name: "MINIMUM_IP_TARGET".into(),
            value: super::super::env::EnvValue::Unread("secretKeyRef"),
        }];
        let s = CniSettings::from_env(&e);
        assert_eq!(s.minimum_ip_target, 0);
        assert_eq!(
            s.unresolved,
            vec!["MINIMUM_IP_TARGET (valueFrom secretKeyRef (not read))".to_string()]
        );
    }

    #[test]
    fn last_duplicate_wins() {
        let s = CniSettings::from_env(&env(&[("WARM_IP_TARGET", "5"), ("WARM_IP_TARGET", "7")]));
        assert_eq!(s.warm_ip_target, 7);
    }
}
