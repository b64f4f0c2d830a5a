//! The one rate limiter of the AWS pollers (GCRA, on tokio's clock so
//! tests can pause time): CloudTrail's requests-per-second budget and EC2's
//! requests-per-minute budget both go through it.

use std::time::Duration;

/// At most `rps` requests per second on average, with a burst of `burst`
/// (GCRA): a first round of one query per event name goes out at once,
/// later rounds are spaced `1/rps` apart, whatever the cluster size.
pub(crate) struct RateLimiter {
    interval: Duration,
    burst: u32,
    /// Theoretical arrival time of the next request (tokio's clock, so
    /// tests can pause time).
    tat: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimiter {
    pub(crate) fn with_burst(rps: f64, burst: u32) -> Self {
        let rps = if rps.is_finite() && rps > 0.0 {
            rps
        } else {
            1.0
        };
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rps),
            burst: burst.max(1),
            tat: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    pub(crate) async fn acquire(&self) {
        let mut tat = self.tat.lock().await;
        let now = tokio::time::Instant::now();
        let t = (*tat).max(now);
        let allow_at = t
            .checked_sub(self.interval * (self.burst - 1))
            .unwrap_or(now);
        if allow_at > now {
            tokio::time::sleep(allow_at - now).await;
        }
        *tat = t + self.interval;
    }
}

impl RateLimiter {
    /// At most `n` requests in any `window` (half-open), bursts included:
    /// a burst of `b = n/2` then one every `window / (n - b + 1)`. GCRA lets
    /// at most `b - 1 + ceil(T / interval)` requests into a span `T`, which
    /// is `n` for `T = window`.
    pub(crate) fn per_window(n: u32, window: Duration) -> Self {
        let n = n.max(1);
        let burst = (n / 2).max(1);
        let interval = window / (n - burst + 1);
        RateLimiter {
            interval,
            burst,
            tat: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limiter_allows_a_burst_then_keeps_the_rate() {
        let l = RateLimiter::with_burst(0.2, 4);
        let start = tokio::time::Instant::now();
        for _ in 0..4 {
            l.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the first round goes out at once"
        );
        for _ in 0..6 {
            l.acquire().await;
        }
        // 10 requests at 0.2/s with a burst of 4: the 10th waits until 30 s.
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    /// EC2's budget: never more than `n` requests in any 60 s, whatever the
    /// demand, and the first half of a round goes out at once.
    #[tokio::test(start_paused = true)]
    async fn per_window_never_exceeds_its_budget() {
        for n in [1u32, 2, 3, 10, 30, 31] {
            let l = RateLimiter::per_window(n, Duration::from_secs(60));
            let start = tokio::time::Instant::now();
            let mut times = Vec::new();
            for _ in 0..(4 * n + 7) {
                l.acquire().await;
                times.push(start.elapsed());
            }
            let window = Duration::from_secs(60);
            for (i, t) in times.iter().enumerate() {
                let inside = times[i..].iter().take_while(|u| **u < *t + window).count();
                assert!(
                    inside <= n as usize,
                    "n={n}: {inside} requests in the 60 s from {t:?}"
                );
            }
            assert_eq!(
                times[(n / 2).max(1) as usize - 1],
                Duration::ZERO,
                "n={n}: burst"
            );
        }
    }
}
