//! CloudTrail LookupEvents results -> API calls. The inner `CloudTrailEvent`
//! is a JSON **string** parsed a second time.

use crate::model::state::{ApiCall, Operation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsOutput {
    pub events: Vec<LookupEvent>,
}

/// One event as LookupEvents returns it, with the fields the exporter
/// reads (`CloudTrailEvent` holds the rest, verbatim).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_trail_event: Option<String>,
}

fn instance_id(s: &str) -> Option<String> {
    let s = s.trim();
    (s.starts_with("i-") && s.len() > 2 && s[2..].bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| s.to_string())
}

/// One event -> an API call. `Ok(None)` for events that are not ENI/IP calls
/// (a lookup by event source returns everything EC2 did).
pub fn to_api_call(e: &LookupEvent) -> Result<Option<ApiCall>, String> {
    let raw = e.cloud_trail_event.as_deref().ok_or_else(|| {
        format!(
            "event {}: no CloudTrailEvent",
            e.event_id.as_deref().unwrap_or("?")
        )
    })?;
    let inner: Value = serde_json::from_str(raw).map_err(|err| {
        format!(
            "event {}: CloudTrailEvent is not valid JSON ({err})",
            e.event_id.as_deref().unwrap_or("?")
        )
    })?;
    if !inner.is_object() {
        return Err(format!(
            "event {}: CloudTrailEvent is not a JSON object",
            e.event_id.as_deref().unwrap_or("?")
        ));
    }
    let name = inner
        .get("eventName")
        .and_then(Value::as_str)
        .or(e.event_name.as_deref())
        .unwrap_or("");
    let Some(operation) = Operation::parse(name) else {
        return Ok(None);
    };
    let event_id = inner
        .get("eventID")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| e.event_id.clone())
        .ok_or_else(|| format!("{name} event without an event id"))?;
    let time = match inner.get("eventTime") {
        Some(v) => super::time::parse_value(v)?,
        None => None,
    };
    let time = match time {
        Some(t) => t,
        None => e
            .event_time
            .as_ref()
            .map(super::time::parse_value)
            .transpose()?
            .flatten()
            .ok_or_else(|| format!("event {event_id}: no eventTime"))?,
    };
    let req = inner.get("requestParameters").filter(|v| v.is_object());
    let resp = inner.get("responseElements").filter(|v| v.is_object());
    let eni_id = req
        .and_then(|r| r.get("networkInterfaceId"))
        .or_else(|| resp.and_then(|r| r.pointer("/networkInterface/networkInterfaceId")))
        .and_then(Value::as_str)
        .map(str::to_string);
    let arn_session = inner
        .pointer("/userIdentity/arn")
        .and_then(Value::as_str)
        .and_then(|arn| arn.rsplit('/').next());
    let instance = req
        .and_then(|r| r.get("instanceId"))
        .and_then(Value::as_str)
        .and_then(instance_id)
        .or_else(|| e.username.as_deref().and_then(instance_id))
        .or_else(|| arn_session.and_then(instance_id))
        .or_else(|| {
            req.and_then(|r| r.get("description"))
                .and_then(Value::as_str)
                .and_then(|d| d.strip_prefix("aws-K8S-"))
                .and_then(instance_id)
        });
    let error_code = inner
        .get("errorCode")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(Some(ApiCall {
        event_id,
        operation,
        time,
        error_code,
        eni_id,
        instance_id: instance,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(inner: &str) -> LookupEvent {
        LookupEvent {
            event_id: Some("e1".into()),
            event_name: Some("AssignPrivateIpAddresses".into()),
            event_time: Some(Value::from(1787218867)),
            username: Some("i-0a1b2c3d4e5f67890".into()),
            cloud_trail_event: Some(inner.into()),
        }
    }

    #[test]
    fn parses_failure_with_error_code() {
        let c = to_api_call(&ev(r#"{"eventName":"AssignPrivateIpAddresses","eventID":"x","eventTime":"2026-08-20T09:41:07Z",
            "errorCode":"Client.InsufficientFreeAddressesInSubnet","requestParameters":{"networkInterfaceId":"eni-1"},"responseElements":null}"#))
        .unwrap()
        .unwrap();
        assert_eq!(
            c.error_code.as_deref(),
            Some("Client.InsufficientFreeAddressesInSubnet")
        );
        assert_eq!(c.eni_id.as_deref(), Some("eni-1"));
        assert_eq!(c.instance_id.as_deref(), Some("i-0a1b2c3d4e5f67890"));
    }

    #[test]
    fn non_json_inner_event_is_an_error() {
        let err = to_api_call(&ev("{not json")).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        assert!(to_api_call(&ev("[1,2]")).is_err());
    }

    #[test]
    fn other_event_names_are_skipped() {
        assert_eq!(
            to_api_call(&ev(r#"{"eventName":"DescribeInstances","eventID":"x"}"#)).unwrap(),
            None
        );
    }

    #[test]
    fn falls_back_to_outer_time_and_description() {
        let mut e = ev(
            r#"{"eventName":"CreateNetworkInterface","eventID":"x","requestParameters":{"description":"aws-K8S-i-0abc"},
            "responseElements":{"networkInterface":{"networkInterfaceId":"eni-9"}}}"#,
        );
        e.username = Some("1787218000000000000".into());
        let c = to_api_call(&e).unwrap().unwrap();
        assert_eq!(c.instance_id.as_deref(), Some("i-0abc"));
        assert_eq!(c.eni_id.as_deref(), Some("eni-9"));
        assert_eq!(c.time.as_second(), 1787218867);
    }
}
