//! `IoThrottle`: keeps the cleaner's disk traffic under `log.cleaner.io.max.bytes.per.second`.
//!
//! Compaction reads and rewrites whole segments; unthrottled, a large backlog could take the
//! disk from producers and consumers. The throttle counts the bytes read and written and,
//! whenever the running rate is ahead of the limit, sleeps the cleaner (a blocking thread,
//! never a request path) until it is back on the line — Kafka's `Throttler`.

use std::time::{Duration, Instant};

/// Longest single sleep, so a huge batch cannot park the cleaner for minutes at once.
const MAX_SLEEP: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct IoThrottle {
    bytes_per_second: Option<u64>,
    started: Instant,
    bytes: u64,
}

impl IoThrottle {
    /// `None` = no limit (Kafka's default).
    pub fn new(bytes_per_second: Option<u64>) -> Self {
        Self {
            bytes_per_second: bytes_per_second.filter(|b| *b > 0),
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// The limit, if any.
    pub fn bytes_per_second(&self) -> Option<u64> {
        self.bytes_per_second
    }

    /// Counts `bytes` of I/O and sleeps if the cleaner is ahead of its allowance.
    pub fn account(&mut self, bytes: usize) {
        let Some(rate) = self.bytes_per_second else {
            return;
        };
        self.bytes = self.bytes.saturating_add(bytes as u64);
        let due = self.delay_for(self.started.elapsed(), rate);
        if !due.is_zero() {
            std::thread::sleep(due.min(MAX_SLEEP));
        }
    }

    /// How far ahead of `rate` the bytes so far are after `elapsed`.
    fn delay_for(&self, elapsed: Duration, rate: u64) -> Duration {
        let allowed_secs = self.bytes as f64 / rate as f64;
        Duration::from_secs_f64((allowed_secs - elapsed.as_secs_f64()).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_only_when_ahead_of_the_rate() {
        let mut t = IoThrottle::new(Some(1_000));
        t.bytes = 2_000;
        assert_eq!(t.delay_for(Duration::from_secs(3), 1_000), Duration::ZERO);
        let ahead = t.delay_for(Duration::from_millis(500), 1_000);
        assert!((1_490..=1_510).contains(&ahead.as_millis()), "{ahead:?}");
    }

    #[test]
    fn the_limit_holds_over_a_run() {
        let mut t = IoThrottle::new(Some(200_000));
        let start = Instant::now();
        for _ in 0..10 {
            t.account(10_000);
        }
        // 100 kB at 200 kB/s: at least ~0.45 s (the first chunk is free).
        assert!(
            start.elapsed() >= Duration::from_millis(440),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn no_limit_never_sleeps() {
        let mut t = IoThrottle::new(None);
        let start = Instant::now();
        t.account(usize::MAX);
        assert!(start.elapsed() < Duration::from_millis(100));
    }
}
