//! Kafka's sampled `Rate`: bytes counted in consecutive fixed windows, and the throttle time
//! that brings a client back to its quota. Shared by replication throttles
//! (`crate::replication::quota`) and client quotas ([`crate::quotas`]).

use std::collections::VecDeque;

/// Bytes counted in consecutive fixed windows, oldest first: Kafka's sampled `Rate`.
#[derive(Debug)]
pub(crate) struct SampledRate {
    pub(crate) window_ms: u64,
    pub(crate) windows: usize,
    /// (window start, bytes) for the last `windows` windows that saw traffic.
    samples: VecDeque<(u64, u64)>,
}

impl SampledRate {
    pub(crate) fn new(windows: usize, window_ms: u64) -> Self {
        SampledRate {
            window_ms: window_ms.max(1),
            windows: windows.max(1),
            samples: VecDeque::with_capacity(windows.max(1)),
        }
    }

    pub(crate) fn record(&mut self, bytes: u64, now_ms: u64) {
        let start = now_ms - now_ms % self.window_ms;
        match self.samples.back_mut() {
            Some((at, sum)) if *at == start => *sum = sum.saturating_add(bytes),
            _ => {
                if self.samples.len() == self.windows {
                    self.samples.pop_front();
                }
                self.samples.push_back((start, bytes));
            }
        }
    }

    /// Bytes per second over the retained windows, from the start of the oldest and over at
    /// least one whole window, so a burst right after a quiet spell is not measured over a few
    /// milliseconds. Kafka's `Rate` pads to `windows - 1` windows instead, which lets the first
    /// ten seconds' worth of a throttled move (100 MB at 10 MB/s) through at full speed: the
    /// bench measured that burst tripling acks=all p99; with one window it stays at baseline
    /// (docs/benchmarks.md).
    pub(crate) fn bytes_per_second(&mut self, now_ms: u64) -> f64 {
        let (total, elapsed_ms) = self.measured(now_ms);
        total as f64 * 1000.0 / elapsed_ms as f64
    }

    /// The bytes of the retained windows and the span they are measured over, in ms: from
    /// the start of the oldest, and at least one whole window (never 0).
    pub(crate) fn measured(&mut self, now_ms: u64) -> (u64, u64) {
        let horizon = now_ms.saturating_sub(self.window_ms * self.windows as u64);
        while self.samples.front().is_some_and(|(at, _)| *at < horizon) {
            self.samples.pop_front();
        }
        let Some(&(oldest, _)) = self.samples.front() else {
            return (0, self.window_ms);
        };
        let total = self
            .samples
            .iter()
            .fold(0u64, |sum, (_, b)| sum.saturating_add(*b));
        let elapsed_ms = now_ms.saturating_sub(oldest).max(self.window_ms).max(1);
        (total, elapsed_ms)
    }
}

/// How long a client that sent `total_bytes` over `elapsed_ms` must wait so that its rate is
/// back at `quota_bytes_per_second` (Kafka's `QuotaUtils.throttleTime`: (rate - quota) / quota
/// x window), at most `max_ms`; 0 when within the quota.
pub(crate) fn throttle_time_ms(
    total_bytes: u64,
    elapsed_ms: u64,
    quota_bytes_per_second: f64,
    max_ms: u64,
) -> u64 {
    if quota_bytes_per_second <= 0.0 || !quota_bytes_per_second.is_finite() {
        return 0;
    }
    let due_ms = total_bytes as f64 * 1000.0 / quota_bytes_per_second;
    let wait = (due_ms - elapsed_ms as f64).round();
    if wait <= 0.0 {
        0
    } else if wait >= max_ms as f64 {
        max_ms
    } else {
        wait as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_measured_over_the_windows_and_at_least_one_window() {
        let mut r = SampledRate::new(11, 1_000);
        assert_eq!(r.bytes_per_second(0), 0.0);
        r.record(100_000, 500);
        // A burst just after start counts over one whole window, not 0.5 s (nor Kafka's 10 s).
        assert_eq!(r.bytes_per_second(600), 100_000.0);
        assert_eq!(r.bytes_per_second(4_000), 25_000.0);
        for s in 1..=20u64 {
            r.record(100_000, s * 1_000 + 10);
        }
        // Steady 100 kB/s: measured from the oldest retained window (10 s ago).
        let rate = r.bytes_per_second(20_500);
        assert!((95_000.0..=110_000.0).contains(&rate), "{rate}");
        // Quiet for longer than the horizon: nothing left.
        assert_eq!(r.bytes_per_second(60_000), 0.0);
    }

    #[test]
    fn throttle_time_brings_the_rate_back_to_the_quota() {
        // (bytes, over ms, quota B/s, max) -> wait
        let cases: &[(u64, u64, f64, u64, u64)] = &[
            (1_000, 1_000, 1_000.0, 11_000, 0),
            (999, 1_000, 1_000.0, 11_000, 0),
            // 2 kB in 1 s at 1 kB/s: due at 2 s, so 1 s more.
            (2_000, 1_000, 1_000.0, 11_000, 1_000),
            (10_000, 4_000, 1_000.0, 11_000, 6_000),
            // Bounded by the window (Kafka's max throttle).
            (1_000_000, 1_000, 1_000.0, 11_000, 11_000),
            (1, 1_000, 0.0, 11_000, 0),
        ];
        for &(bytes, elapsed, quota, max, want) in cases {
            assert_eq!(
                throttle_time_ms(bytes, elapsed, quota, max),
                want,
                "{bytes} over {elapsed} at {quota}"
            );
        }
    }
}
