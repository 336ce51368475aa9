//! The broker's clock: wall-clock milliseconds since the Unix epoch, the unit Kafka timestamps,
//! retention and `replica.lag.time.max.ms` use (as Kafka's `time.milliseconds()`).
//!
//! Named `wall_ms` so it is never taken for a monotonic clock: it can jump (NTP, an operator),
//! so it must not time waits. Waits use `tokio::time::Instant`; the group coordinator and the
//! controller keep their own `monotonic_ms` for session deadlines.

pub fn wall_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
