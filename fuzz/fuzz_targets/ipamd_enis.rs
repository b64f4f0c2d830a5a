//! ipamd `/v1/enis` (both shapes): any bytes give a pool or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pool) = eks_ipam_exporter::sources::ipamd::parse_enis(data) {
        for mode in [
            eks_ipam_exporter::model::capacity::IpMode::SecondaryIp,
            eks_ipam_exporter::model::capacity::IpMode::Prefix,
        ] {
            let st = eks_ipam_exporter::model::analysis::pool_stats(&pool, mode, Some(jiff_now()), 30);
            assert!(st.assigned_ips + st.cooldown_ips <= st.total_ips);
        }
    }
});

fn jiff_now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_787_000_000).unwrap()
}
