//! Load: 200 concurrent clients and a slow reader against /metrics and /.
//! Its own test binary, so it does not share the 2 cores with the
//! timing-sensitive fault tests.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A client that requests /metrics and then reads nothing: its connection
/// stays open with the response stuck in the socket buffers.
fn stuck_client(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s
}

#[test]
fn two_hundred_scrapers_and_a_slow_reader_stay_bounded() {
    let srv = start_server(&["demo"]);
    let pid = srv.child.id();
    let (_, body) = http_get(&srv.addr, "/metrics");
    let rss_before = rss_kib(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let scrapers: Vec<_> = (0..200)
        .map(|i| {
            let (addr, stop, ok, bad) = (srv.addr.clone(), stop.clone(), ok.clone(), bad.clone());
            // One in four loads the HTML page, the rest scrape /metrics.
            let path = if i % 4 == 0 { "/" } else { "/metrics" };
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (code, b) = http_get(&addr, path);
                    if code == 200 && b.len() > 1000 {
                        ok.fetch_add(1, Ordering::Relaxed)
                    } else {
                        bad.fetch_add(1, Ordering::Relaxed)
                    };
                }
            })
        })
        .collect();
    // A slow reader: one byte every 50 ms.
    let slow = {
        let (addr, stop) = (srv.addr.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut s = stuck_client(&addr);
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut byte = [0u8; 1];
            while !stop.load(Ordering::Relaxed) && s.read(&mut byte).unwrap_or(0) == 1 {
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut worst = Duration::ZERO;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(8) {
        let h = Instant::now();
        assert_eq!(http_get(&srv.addr, "/healthz").0, 200);
        worst = worst.max(h.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss_peak = rss_kib(pid);
    stop.store(true, Ordering::Relaxed);
    for s in scrapers {
        s.join().unwrap();
    }
    slow.join().unwrap();
    let (ok, bad) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    eprintln!(
        "200 clients (150 on /metrics, 50 on /) + 1 slow reader for 8 s: {ok} requests ok ({:.0}/s; /metrics is {} bytes), {bad} failed, worst /healthz {:?}, RSS {} -> {} KiB",
        ok as f64 / 8.0,
        body.len(),
        worst,
        rss_before,
        rss_peak
    );
    assert_eq!(bad, 0, "scrapes failed under load");
    assert!(ok > 200, "too few scrapes completed: {ok}");
    // Liveness, not speed: timings on this shared 2-core machine are noise
    // (the measured worst case is printed above and reported in the README).
    assert!(
        worst < Duration::from_secs(5),
        "/healthz took {worst:?} under load"
    );
    assert!(rss_peak < 256 * 1024, "RSS grew to {rss_peak} KiB");
}
