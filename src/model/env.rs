//! A container's environment as the kubelet builds it, from the pod spec
//! and the ConfigMaps it names. Secrets are never read: a value from a
//! Secret is unknown, and so is anything a Secret's `envFrom` may set.
//!
//! Semantics from kubernetes `pkg/kubelet/kubelet_pods.go`
//! `makeEnvironmentVariables` and `third_party/forked/golang/expansion/
//! expand.go` (kubernetes/kubernetes df5f02437d38, 02604f7db394):
//! - `envFrom` sources first, in order, each key with its `prefix`; a later
//!   source overrides an earlier one; a missing `optional` ConfigMap is
//!   skipped, a missing required one stops the container from starting;
//! - then `env` entries in order, each overriding what came before; a
//!   non-empty `value` has `$(VAR)` references expanded against the
//!   variables defined so far (`$$` is a literal `$`; an unknown reference
//!   stays as written); otherwise `valueFrom.configMapKeyRef` reads
//!   `ConfigMap.data[key]` only (not `binaryData`); a missing `optional`
//!   map or key leaves the variable as it was.
//!
//! What the exporter reads is the ConfigMap **now**: a running container
//! got its values when it started, so a ConfigMap edited since then is
//! ahead of the running ipamd until its pod restarts.

use std::collections::BTreeMap;

/// One `env` entry of a container spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnvVar {
    pub name: String,
    pub value: EnvValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EnvValue {
    /// `value:` (a missing `value` is the empty string).
    Literal(String),
    /// `valueFrom.configMapKeyRef`, in the container's namespace.
    ConfigMapKey {
        name: String,
        key: String,
        optional: bool,
    },
    /// Any other `valueFrom` (`secretKeyRef`, `fieldRef`,
    /// `resourceFieldRef`): never read. The kind, for the explanation.
    Unread(&'static str),
}

impl EnvVar {
    /// A plain `value:` entry.
    pub fn new(name: &str, value: &str) -> Self {
        EnvVar {
            name: name.to_string(),
            value: EnvValue::Literal(value.to_string()),
        }
    }
}

/// One `envFrom` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EnvFrom {
    /// `configMapRef.name`; `None` for `secretRef` (never read).
    pub(crate) config_map: Option<String>,
    pub(crate) prefix: String,
    pub(crate) optional: bool,
}

/// A container's env spec and the namespace its references resolve in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ContainerEnv {
    pub(crate) namespace: String,
    pub(crate) env_from: Vec<EnvFrom>,
    pub(crate) env: Vec<EnvVar>,
}

impl ContainerEnv {
    /// Plain `value:` entries only (tests, and specs without references).
    pub(crate) fn literal(env: Vec<EnvVar>) -> Self {
        ContainerEnv {
            env,
            ..Default::default()
        }
    }

    /// The ConfigMaps that can set the variables named in `wanted`, as
    /// (namespace, name): every `envFrom` map, and the key refs of those
    /// variables and of the variables their values refer to as `$(VAR)`.
    pub(crate) fn config_map_refs(&self, wanted: &[&str]) -> Vec<(&str, &str)> {
        let mut names: Vec<&str> = wanted.to_vec();
        let mut i = 0;
        while i < names.len() {
            let current = names[i];
            for v in self.env.iter().filter(|v| v.name == current) {
                if let EnvValue::Literal(s) = &v.value {
                    for r in references(s) {
                        if !names.contains(&r) {
                            names.push(r);
                        }
                    }
                }
            }
            i += 1;
        }
        let from = self.env_from.iter().filter_map(|f| f.config_map.as_deref());
        let keys = self.env.iter().filter_map(|v| match &v.value {
            EnvValue::ConfigMapKey { name, .. } if names.contains(&v.name.as_str()) => {
                Some(name.as_str())
            }
            _ => None,
        });
        let mut out: Vec<(&str, &str)> = from
            .chain(keys)
            .map(|n| (self.namespace.as_str(), n))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The names a literal refers to as `$(NAME)` (over-approximate: escapes
/// are not honoured, which can only add a read).
fn references(s: &str) -> impl Iterator<Item = &str> {
    s.match_indices("$(").filter_map(move |(i, _)| {
        let rest = &s[i + 2..];
        rest.find(')').map(|end| &rest[..end])
    })
}

/// What reading one ConfigMap gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigMapRead {
    /// Its `data`.
    Data(BTreeMap<String, String>),
    /// The apiserver says it does not exist.
    NotFound,
    /// Not readable, and why (forbidden by RBAC, not in the bundle, ...).
    Unreadable(String),
}

/// ConfigMaps by (namespace, name). A name not in the map was not read.
pub(crate) type ConfigMaps = BTreeMap<(String, String), ConfigMapRead>;

/// The variables the container gets: each known value, or why it is
/// unknown. `others`: why any variable not listed may be set as well (an
/// `envFrom` source that could not be read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResolvedEnv {
    pub(crate) vars: BTreeMap<String, Result<String, String>>,
    /// Unreadable `envFrom` sources with a prefix: (prefix, why).
    pub(crate) prefixed: Vec<(String, String)>,
    pub(crate) others: Option<String>,
}

impl ResolvedEnv {
    /// `None`: not set. `Some(Err(why))`: set or maybe set, value unknown.
    pub(crate) fn get(&self, name: &str) -> Option<Result<&str, &str>> {
        match self.vars.get(name) {
            Some(Ok(v)) => Some(Ok(v.as_str())),
            Some(Err(why)) => Some(Err(why.as_str())),
            None => self
                .prefixed
                .iter()
                .rev()
                .find(|(p, _)| name.starts_with(p.as_str()))
                .map(|(_, why)| why.as_str())
                .or(self.others.as_deref())
                .map(Err),
        }
    }
}

fn lookup<'a>(
    cms: &'a ConfigMaps,
    ns: &str,
    name: &str,
) -> Result<Option<&'a BTreeMap<String, String>>, String> {
    match cms.get(&(ns.to_string(), name.to_string())) {
        Some(ConfigMapRead::Data(d)) => Ok(Some(d)),
        Some(ConfigMapRead::NotFound) => Ok(None),
        Some(ConfigMapRead::Unreadable(why)) => Err(format!("ConfigMap {ns}/{name}: {why}")),
        None => Err(format!("ConfigMap {ns}/{name}: not read")),
    }
}

/// The container's environment as the kubelet would build it now.
pub(crate) fn resolve(c: &ContainerEnv, cms: &ConfigMaps) -> ResolvedEnv {
    let ns = c.namespace.as_str();
    let mut out = ResolvedEnv::default();
    for f in &c.env_from {
        let Some(name) = f.config_map.as_deref() else {
            let why = format!("envFrom a Secret{} (never read)", prefix_note(&f.prefix));
            unknown_from_here(&mut out, &f.prefix, why);
            continue;
        };
        match lookup(cms, ns, name) {
            Ok(Some(data)) => {
                for (k, v) in data {
                    out.vars.insert(format!("{}{k}", f.prefix), Ok(v.clone()));
                }
            }
            Ok(None) if f.optional => {}
            Ok(None) => {
                let why = format!(
                    "ConfigMap {ns}/{name} not found: the container cannot start with this spec"
                );
                unknown_from_here(&mut out, &f.prefix, why);
            }
            Err(why) => unknown_from_here(&mut out, &f.prefix, format!("envFrom {why}")),
        }
    }
    for v in &c.env {
        let value = match &v.value {
            EnvValue::Literal(s) if s.is_empty() => Ok(String::new()),
            EnvValue::Literal(s) => expand(s, &out),
            EnvValue::ConfigMapKey {
                name,
                key,
                optional,
            } => match lookup(cms, ns, name) {
                Ok(Some(data)) => match data.get(key) {
                    Some(val) => Ok(val.clone()),
                    None if *optional => continue,
                    None => Err(format!(
                        "key {key:?} not in ConfigMap {ns}/{name}: the container cannot start with this spec"
                    )),
                },
                Ok(None) if *optional => continue,
                Ok(None) => Err(format!(
                    "ConfigMap {ns}/{name} not found: the container cannot start with this spec"
                )),
                Err(why) => Err(why),
            },
            EnvValue::Unread(kind) => Err(format!("valueFrom {kind} (not read)")),
        };
        out.vars.insert(v.name.clone(), value);
    }
    out
}

fn prefix_note(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!(" with prefix {prefix:?}")
    }
}

/// An unreadable `envFrom` source may set any variable with its prefix,
/// including ones set before it.
fn unknown_from_here(out: &mut ResolvedEnv, prefix: &str, why: String) {
    for (k, v) in out.vars.iter_mut() {
        if k.starts_with(prefix) {
            *v = Err(why.clone());
        }
    }
    if prefix.is_empty() {
        out.others = Some(why);
    } else {
        out.prefixed.push((prefix.to_string(), why));
    }
}

/// `$(VAR)` expansion of a literal against the variables defined so far.
/// A reference to an unknown value makes the result unknown; a reference
/// to a name not defined stays as written (the kubelet would also look at
/// service-link variables, which no setting the exporter reads uses).
fn expand(input: &str, defined: &ResolvedEnv) -> Result<String, String> {
    let b = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        match defined.get(name) {
                            Some(Ok(v)) => out.push_str(v),
                            Some(Err(why)) => return Err(format!("refers to $({name}): {why}")),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        close + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // `$` and the next character, as written (may be multi-byte).
                    let ch = rest.chars().next().map_or(1, char::len_utf8);
                    out.push('$');
                    out.push_str(&rest[..ch]);
                    ch
                }
            };
            cursor += advance + 1;
            checkpoint = cursor;
        } else {
            cursor += 1;
        }
    }
    out.push_str(&input[checkpoint.min(input.len())..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(ns: &str, name: &str, data: &[(&str, &str)]) -> ((String, String), ConfigMapRead) {
        (
            (ns.into(), name.into()),
            ConfigMapRead::Data(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        )
    }

    fn key_ref(var: &str, name: &str, key: &str, optional: bool) -> EnvVar {
        EnvVar {
            name: var.into(),
            value: EnvValue::ConfigMapKey {
                name: name.into(),
                key: key.into(),
                optional,
            },
        }
    }

    fn from_cm(name: &str, prefix: &str, optional: bool) -> EnvFrom {
        EnvFrom {
            config_map: Some(name.into()),
            prefix: prefix.into(),
            optional,
        }
    }

    fn spec(env_from: Vec<EnvFrom>, env: Vec<EnvVar>) -> ContainerEnv {
        ContainerEnv {
            namespace: "kube-system".into(),
            env_from,
            env,
        }
    }

    #[test]
    fn config_map_key_ref_reads_data_and_optional_misses_leave_the_variable_unset() {
        let cms: ConfigMaps = [cm("kube-system", "cni", &[("warm", "5")])]
            .into_iter()
            .collect();
        let r = resolve(
            &spec(
                vec![],
                vec![
                    key_ref("WARM_IP_TARGET", "cni", "warm", false),
                    key_ref("MINIMUM_IP_TARGET", "cni", "min", true),
                    key_ref("WARM_ENI_TARGET", "gone", "x", true),
                    key_ref("MAX_ENI", "cni", "max", false),
                ],
            ),
            &cms,
        );
        assert_eq!(r.get("WARM_IP_TARGET"), Some(Ok("5")));
        assert_eq!(r.get("MINIMUM_IP_TARGET"), None);
        // Not read (absent from the map) is unknown, not "optional and missing".
        assert!(matches!(r.get("WARM_ENI_TARGET"), Some(Err(w)) if w.contains("not read")));
        assert!(matches!(r.get("MAX_ENI"), Some(Err(w)) if w.contains("cannot start")));
    }

    #[test]
    fn env_from_order_prefix_and_overrides_follow_the_kubelet() {
        let cms: ConfigMaps = [
            cm(
                "kube-system",
                "a",
                &[("WARM_IP_TARGET", "1"), ("IP_TARGET", "9")],
            ),
            cm("kube-system", "b", &[("WARM_IP_TARGET", "2")]),
        ]
        .into_iter()
        .collect();
        let r = resolve(
            &spec(
                vec![
                    from_cm("a", "", false),
                    from_cm("b", "", false),
                    from_cm("a", "MINIMUM_", false),
                ],
                vec![],
            ),
            &cms,
        );
        assert_eq!(r.get("WARM_IP_TARGET"), Some(Ok("2")), "later envFrom wins");
        assert_eq!(r.get("MINIMUM_IP_TARGET"), Some(Ok("9")), "prefix + key");
        assert_eq!(r.get("WARM_ENI_TARGET"), None);
        // env wins over envFrom.
        let r = resolve(
            &spec(
                vec![from_cm("a", "", false)],
                vec![EnvVar::new("WARM_IP_TARGET", "7")],
            ),
            &cms,
        );
        assert_eq!(r.get("WARM_IP_TARGET"), Some(Ok("7")));
    }

    #[test]
    fn an_unreadable_env_from_makes_earlier_and_unlisted_values_unknown_but_not_later_ones() {
        let cms: ConfigMaps = [
            cm("kube-system", "a", &[("WARM_IP_TARGET", "1")]),
            (
                ("kube-system".into(), "locked".into()),
                ConfigMapRead::Unreadable("forbidden".into()),
            ),
            cm("kube-system", "c", &[("MINIMUM_IP_TARGET", "3")]),
        ]
        .into_iter()
        .collect();
        let r = resolve(
            &spec(
                vec![
                    from_cm("a", "", false),
                    from_cm("locked", "", false),
                    from_cm("c", "", false),
                ],
                vec![EnvVar::new("MAX_ENI", "2")],
            ),
            &cms,
        );
        assert!(matches!(r.get("WARM_IP_TARGET"), Some(Err(w)) if w.contains("forbidden")));
        assert!(
            matches!(r.get("WARM_ENI_TARGET"), Some(Err(_))),
            "may come from the locked map"
        );
        assert_eq!(r.get("MINIMUM_IP_TARGET"), Some(Ok("3")));
        assert_eq!(r.get("MAX_ENI"), Some(Ok("2")));
        // A missing optional ConfigMap is skipped; a Secret is never read.
        let r = resolve(
            &spec(
                vec![
                    from_cm("absent", "", true),
                    EnvFrom {
                        config_map: None,
                        prefix: "X_".into(),
                        optional: false,
                    },
                ],
                vec![],
            ),
            &[(
                ("kube-system".into(), "absent".into()),
                ConfigMapRead::NotFound,
            )]
            .into_iter()
            .collect(),
        );
        assert_eq!(
            r.get("WARM_IP_TARGET"),
            None,
            "a secret with a prefix cannot set it"
        );
        assert!(matches!(r.get("X_A"), Some(Err(w)) if w.contains("Secret")));
    }

    /// Every row of kubernetes `third_party/forked/golang/expansion/
    /// expand_test.go` `doExpansionTest` (kubernetes/kubernetes
    /// 490ffa432a87), same context.
    #[test]
    fn expansion_matches_the_kubelet() {
        let mut defined = ResolvedEnv::default();
        for (k, v) in [
            ("VAR_A", "A"),
            ("VAR_B", "B"),
            ("VAR_C", "C"),
            ("VAR_REF", "$(VAR_A)"),
            ("VAR_EMPTY", ""),
        ] {
            defined.vars.insert(k.into(), Ok(v.into()));
        }
        for (input, want) in [
            ("$(VAR_A)", "A"),
            ("$(VAR_A)-$(VAR_A)", "A-A"),
            ("$(VAR_A)-1", "A-1"),
            ("___$(VAR_B)___", "___B___"),
            ("___$(VAR_C)", "___C"),
            ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
            ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
            ("$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"),
            ("f000-$$VAR_A", "f000-$VAR_A"),
            ("foo\\$(VAR_C)bar", "foo\\Cbar"),
            ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
            ("foo\\\\\\\\$(VAR_A)bar", "foo\\\\\\\\Abar"),
            ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
            ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
            ("$(VAR_REF)", "$(VAR_A)"),
            ("%%$(VAR_REF)--$(VAR_REF)%%", "%%$(VAR_A)--$(VAR_A)%%"),
            ("foo$(VAR_EMPTY)bar", "foobar"),
            ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
            ("f00__(VAR_A)__", "f00__(VAR_A)__"),
            ("$?_boo_$!", "$?_boo_$!"),
            ("$VAR_A", "$VAR_A"),
            ("$(VAR_DNE)", "$(VAR_DNE)"),
            ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
            ("$$$$$$(VAR_A)", "$$$(VAR_A)"),
            ("$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
            ("$$$$$$$(VAR_A)", "$$$A"),
            ("$VAR_A)", "$VAR_A)"),
            ("${VAR_A}", "${VAR_A}"),
            ("$(VAR_B)_______$(A", "B_______$(A"),
            ("$(VAR_C)_______$(", "C_______$("),
            ("$(VAR_A)foobarzab$", "Afoobarzab$"),
            ("foo-\\$(VAR_A", "foo-\\$(VAR_A"),
            ("--$($($($($--", "--$($($($($--"),
            ("$($($($($--foo$(", "$($($($($--foo$("),
            ("foo0--$($($($(", "foo0--$($($($("),
            ("$(foo$$var)", "$(foo$$var)"),
            ("\n", "\n"),
        ] {
            assert_eq!(expand(input, &defined).as_deref(), Ok(want), "{input}");
        }
        // Ours: a reference to a value the exporter cannot know is unknown.
        defined.vars.insert(
            "SECRET".into(),
            Err("valueFrom secretKeyRef (not read)".into()),
        );
        assert!(expand("x$(SECRET)", &defined).is_err());
        assert_eq!(expand("$$(SECRET)", &defined).as_deref(), Ok("$(SECRET)"));
    }

    #[test]
    fn references_are_listed_for_the_readers() {
        let c = spec(
            vec![
                from_cm("a", "", false),
                EnvFrom {
                    config_map: None,
                    prefix: String::new(),
                    optional: false,
                },
            ],
            vec![key_ref("X", "b", "k", false), EnvVar::new("Y", "1")],
        );
        assert_eq!(
            c.config_map_refs(&["X"]),
            vec![("kube-system", "a"), ("kube-system", "b")]
        );
        // A key ref for a variable nothing reads is not fetched...
        assert_eq!(c.config_map_refs(&["Y"]), vec![("kube-system", "a")]);
        // ...unless a wanted value refers to it.
        let c = spec(
            vec![],
            vec![
                key_ref("BASE", "b", "k", false),
                EnvVar::new("Y", "$(BASE)"),
            ],
        );
        assert_eq!(c.config_map_refs(&["Y"]), vec![("kube-system", "b")]);
        assert!(c.config_map_refs(&["Z"]).is_empty());
    }
}
