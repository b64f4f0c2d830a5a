//! LookupEvents output and every event's inner `CloudTrailEvent` string.
#![no_main]
use eks_ipam_exporter::sources::cloudtrail::{to_api_call, LookupEventsOutput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = serde_json::from_slice::<LookupEventsOutput>(data) {
        for e in &out.events {
            let _ = to_api_call(e);
        }
    }
});
