//! Timestamps as the sources print them: RFC 3339 strings (with `Z` or an
//! offset, as kubectl and the AWS CLI print) or epoch seconds (AWS JSON 1.1).

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Go's zero `time.Time`, which ipamd prints for "never".
const GO_ZERO_TIME_YEAR: i16 = 1;

pub(crate) fn parse_value(v: &Value) -> Result<Option<Timestamp>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => s
            .parse::<Timestamp>()
            .map(|t| {
                // "0001-01-01T00:00:00Z" is Go's zero time: no value.
                (t.to_zoned(jiff::tz::TimeZone::UTC).year() > GO_ZERO_TIME_YEAR).then_some(t)
            })
            .map_err(|e| format!("invalid timestamp {s:?}: {e}")),
        Value::Number(n) => {
            let secs = n
                .as_f64()
                .ok_or_else(|| format!("invalid epoch seconds {n}"))?;
            if !secs.is_finite() || secs.abs() > 1e13 {
                return Err(format!("epoch seconds out of range: {n}"));
            }
            Timestamp::from_millisecond((secs * 1000.0).round() as i64)
                .map(Some)
                .map_err(|e| format!("epoch seconds out of range: {n}: {e}"))
        }
        other => Err(format!("expected a timestamp, got {other}")),
    }
}

/// serde helper: an optional timestamp field in either form.
pub(crate) fn de_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None => Ok(None),
        Some(v) => parse_value(&v).map_err(serde::de::Error::custom),
    }
}

/// serde helper: the inverse of [`de_opt`], RFC 3339 as kubectl prints it.
pub(crate) fn ser_opt<S: serde::Serializer>(
    t: &Option<Timestamp>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_string()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_every_form_the_sources_print() {
        let want: Timestamp = "2026-08-20T09:41:07Z".parse().unwrap();
        for v in [
            json!("2026-08-20T09:41:07Z"),
            json!("2026-08-20T09:41:07+00:00"),
            json!("2026-08-20T11:41:07+02:00"),
            json!(1787218867),
            json!(1787218867.0),
        ] {
            assert_eq!(parse_value(&v).unwrap(), Some(want), "{v}");
        }
        assert_eq!(parse_value(&json!("0001-01-01T00:00:00Z")).unwrap(), None);
        assert_eq!(parse_value(&json!(null)).unwrap(), None);
        assert!(parse_value(&json!("yesterday")).is_err());
        assert!(parse_value(&json!(true)).is_err());
        assert!(parse_value(&json!(1e300)).is_err());
    }
}
