//! Container env and ports as the pod spec writes them.

use super::*;

#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KEnv {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) value: Option<String>,
    #[serde(default)]
    pub(crate) value_from: Option<KEnvSource>,
}

/// `valueFrom`: only a ConfigMap key is kept; a Secret's name and key are
/// not even stored.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KEnvSource {
    #[serde(default)]
    pub(crate) config_map_key_ref: Option<KKeySelector>,
    #[serde(default, serialize_with = "present")]
    pub(crate) secret_key_ref: Option<IgnoredAny>,
    #[serde(default, serialize_with = "present")]
    pub(crate) field_ref: Option<IgnoredAny>,
    #[serde(default, serialize_with = "present")]
    pub(crate) resource_field_ref: Option<IgnoredAny>,
}

/// A source that is only known to be there is written back as `{}`
/// (what it named was never stored).
fn present<S: Serializer>(v: &Option<IgnoredAny>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => serde_json::Map::new().serialize(s),
        None => s.serialize_none(),
    }
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KKeySelector {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) optional: Option<bool>,
}

/// `envFrom[]`.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KEnvFrom {
    #[serde(default)]
    pub(crate) prefix: Option<String>,
    #[serde(default)]
    pub(crate) config_map_ref: Option<KNameRef>,
    /// Only whether it is optional: a Secret's name is not stored.
    #[serde(default)]
    pub(crate) secret_ref: Option<KOptional>,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KOptional {
    #[serde(default)]
    pub(crate) optional: Option<bool>,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KNameRef {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) optional: Option<bool>,
}

impl KEnv {
    pub(super) fn to_env(&self) -> EnvVar {
        use crate::model::env::EnvValue;
        // The kubelet takes a non-empty `value` first; a plain entry
        // without `value` is the empty string.
        let value = match (&self.value, &self.value_from) {
            (Some(v), _) if !v.is_empty() => EnvValue::Literal(v.clone()),
            (_, None) => EnvValue::Literal(String::new()),
            (_, Some(src)) => {
                match (&src.config_map_key_ref, &src.secret_key_ref, &src.field_ref) {
                    (Some(k), _, _) => EnvValue::ConfigMapKey {
                        name: k.name.clone(),
                        key: k.key.clone(),
                        optional: k.optional.unwrap_or(false),
                    },
                    (None, Some(_), _) => EnvValue::Unread("secretKeyRef"),
                    (None, None, Some(_)) => EnvValue::Unread("fieldRef"),
                    (None, None, None) if src.resource_field_ref.is_some() => {
                        EnvValue::Unread("resourceFieldRef")
                    }
                    (None, None, None) => EnvValue::Unread("of an unknown kind"),
                }
            }
        };
        EnvVar {
            name: self.name.clone(),
            value,
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub(crate) struct KContainer {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) image: Option<String>,
    #[serde(default)]
    pub(crate) args: Vec<String>,
    #[serde(default)]
    pub(crate) env: Vec<KEnv>,
    #[serde(default, rename = "envFrom")]
    pub(crate) env_from: Vec<KEnvFrom>,
    #[serde(default)]
    pub(crate) ports: Vec<KPort>,
    /// `Always` on an init container: a sidecar.
    #[serde(
        default,
        rename = "restartPolicy",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) restart_policy: Option<String>,
    /// The VPC resource requests only.
    #[serde(default, skip_serializing_if = "KResources::is_empty")]
    pub(crate) resources: KResources,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KPort {
    #[serde(default)]
    pub(crate) name: Option<String>,
    pub(crate) container_port: u16,
}
