//! ipamd's Prometheus text: any input parses or errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = eks_ipam_exporter::sources::ipamd::parse_metrics(text);
    }
});
