//! A connection's mute: Kafka mutes a throttled client's channel (KIP-219) so that a client
//! over its quota sends nothing more until its throttle time has passed. The handler that
//! decides a throttle calls [`ConnectionMute::mute_for`]; the connection's reader reads no
//! further request until then. Responses already due are still written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// The clock mute deadlines count from (process-wide, monotonic).
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Shared by a connection's reader and every request context of that connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectionMute {
    /// Milliseconds since [`EPOCH`] until which the connection reads nothing (0: never muted).
    until_ms: Arc<AtomicU64>,
}

impl ConnectionMute {
    /// Mutes the connection for `duration` from now; an earlier mute that ends later stands.
    pub fn mute_for(&self, duration: Duration) {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let until = now_ms().saturating_add(millis);
        self.until_ms.fetch_max(until, Ordering::AcqRel);
    }

    /// How long the connection stays muted, `None` when it is not.
    pub fn remaining(&self) -> Option<Duration> {
        let until = self.until_ms.load(Ordering::Acquire);
        let now = now_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }
}

/// Contexts compare equal when they share a connection's mute.
impl PartialEq for ConnectionMute {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.until_ms, &other.until_ms)
    }
}

impl Eq for ConnectionMute {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mute_lasts_its_time_and_a_longer_one_wins() {
        let mute = ConnectionMute::default();
        assert_eq!(mute.remaining(), None);
        mute.mute_for(Duration::from_secs(10));
        mute.mute_for(Duration::from_millis(1));
        let left = mute.remaining().expect("muted");
        assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "{left:?}"
        );
        let clone = mute.clone();
        assert_eq!(clone, mute);
        assert_ne!(ConnectionMute::default(), mute);
        let short = ConnectionMute::default();
        short.mute_for(Duration::ZERO);
        assert_eq!(short.remaining(), None);
    }
}
