//! Client quotas enforced (KIP-546, Kafka's `ClientQuotaManager` and `ClientRequestQuotaManager`):
//! a client over its byte rate or its share of request time is throttled, not refused.
//!
//! **How.** Each Produce counts its record bytes, each Fetch the record bytes it returns, and
//! every request the time the broker spent handling it ([`request_time`]), against the quota
//! that applies to the connection's user and client id ([`resolve`]). When the measured rate is
//! over the quota, the response carries `throttle_time_ms` (how long until the rate is back at
//! the quota) and the connection is muted for that long
//! (`shoal_kafka::ConnectionMute`): it reads no further request, as Kafka mutes the channel
//! (KIP-219). Clients that know KIP-219 also wait on their side; older ones are held back by
//! the mute alone (Kafka delays their responses instead).
//!
//! **Per broker.** As in Kafka, each broker measures and enforces on its own: a quota of
//! 1 MB/s lets a client produce 1 MB/s to every broker it talks to.
//!
//! **Bounded.** One rate per [`SensorKey`] that has a quota, at most [`MAX_QUOTA_SENSORS`];
//! rates idle for longer than the measured span are dropped first (they hold no samples). No
//! quota in the image: nothing is measured at all.

pub(crate) mod rate;
pub mod request_time;
pub mod resolve;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shoal_meta::client_quotas::{
    CONSUMER_BYTE_RATE, ClientQuotas, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE,
};

use crate::quotas::rate::{SampledRate, throttle_time_ms};
pub use crate::quotas::resolve::{SensorKey, resolve};

/// Most (user, client id) rates one broker measures per quota type.
pub const MAX_QUOTA_SENSORS: usize = 10_000;

/// What a quota bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaType {
    /// Bytes produced (`producer_byte_rate`).
    Produce,
    /// Bytes fetched by consumers (`consumer_byte_rate`).
    Fetch,
    /// Time handling requests (`request_percentage`), counted in [`request_time::UNITS_PER_PERCENT`]
    /// per second of one thread's time.
    Request,
}

impl QuotaType {
    /// The quota key that bounds it.
    pub fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => PRODUCER_BYTE_RATE,
            QuotaType::Fetch => CONSUMER_BYTE_RATE,
            QuotaType::Request => REQUEST_PERCENTAGE,
        }
    }

    /// What one unit of the quota's value is in recorded amounts per second: bytes for the
    /// byte rates; for `request_percentage`, one percent of a thread.
    fn units_per_quota_unit(self) -> f64 {
        match self {
            QuotaType::Produce | QuotaType::Fetch => 1.0,
            QuotaType::Request => request_time::UNITS_PER_PERCENT as f64,
        }
    }

    /// The metric label, as Kafka's quota types.
    pub fn label(self) -> &'static str {
        match self {
            QuotaType::Produce => "produce",
            QuotaType::Fetch => "fetch",
            QuotaType::Request => "request",
        }
    }
}

/// One measured rate and when it last saw bytes.
#[derive(Debug)]
struct Sensor {
    rate: SampledRate,
    last_ms: u64,
}

/// The rates of one quota type on this broker.
#[derive(Debug)]
pub struct ClientQuotaManager {
    quota_type: QuotaType,
    windows: usize,
    window_ms: u64,
    sensors: Mutex<HashMap<SensorKey, Sensor>>,
    started: Instant,
}

impl ClientQuotaManager {
    /// Rates measured over `windows` windows of `window_ms` (`quota.window.num`,
    /// `quota.window.size.seconds`).
    pub fn new(quota_type: QuotaType, windows: usize, window_ms: u64) -> Self {
        ClientQuotaManager {
            quota_type,
            windows: windows.max(1),
            window_ms: window_ms.max(1),
            sensors: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    /// The longest throttle: the whole measured span (Kafka's `quota.window.num` x
    /// `quota.window.size.seconds`).
    pub fn max_throttle_ms(&self) -> u64 {
        self.window_ms.saturating_mul(self.windows as u64)
    }

    /// Counts `bytes` (for [`QuotaType::Request`], request time units) of `user`'s `client_id`
    /// and returns how long to throttle it (0: within its quota, or no quota applies).
    pub fn record(&self, quotas: &ClientQuotas, user: &str, client_id: &str, bytes: u64) -> u64 {
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.record_at(quotas, user, client_id, bytes, now_ms)
    }

    fn record_at(
        &self,
        quotas: &ClientQuotas,
        user: &str,
        client_id: &str,
        bytes: u64,
        now_ms: u64,
    ) -> u64 {
        let Some((key, bound)) = resolve(quotas, self.quota_type.key(), user, client_id) else {
            return 0;
        };
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        if !sensors.contains_key(&key) && sensors.len() >= MAX_QUOTA_SENSORS {
            self.evict(&mut sensors, now_ms);
        }
        let sensor = sensors.entry(key.clone()).or_insert_with(|| Sensor {
            rate: SampledRate::new(self.windows, self.window_ms),
            last_ms: now_ms,
        });
        // Kafka records first, then checks: the bytes of a throttled request count too.
        sensor.rate.record(bytes, now_ms);
        sensor.last_ms = now_ms;
        let (total, elapsed_ms) = sensor.rate.measured(now_ms);
        drop(sensors);
        let bound = bound * self.quota_type.units_per_quota_unit();
        let throttle_ms = throttle_time_ms(total, elapsed_ms, bound, self.max_throttle_ms());
        if throttle_ms > 0 {
            shoal_metrics::record_quota_throttle(
                self.quota_type.label(),
                &key.user,
                &key.client_id,
                Duration::from_millis(throttle_ms),
            );
        }
        throttle_ms
    }

    /// Makes room for one more sensor: drops those idle past the measured span (no samples
    /// left), else the least recently used one.
    fn evict(&self, sensors: &mut HashMap<SensorKey, Sensor>, now_ms: u64) {
        let span = self.max_throttle_ms();
        sensors.retain(|_, s| now_ms.saturating_sub(s.last_ms) <= span);
        if sensors.len() >= MAX_QUOTA_SENSORS {
            let oldest = sensors
                .iter()
                .min_by_key(|(_, s)| s.last_ms)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                sensors.remove(&k);
            }
        }
    }

    #[cfg(test)]
    fn sensor_count(&self) -> usize {
        self.sensors.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// This broker's produce, fetch and request quota managers.
#[derive(Debug)]
pub struct ClientQuotaManagers {
    pub produce: ClientQuotaManager,
    pub fetch: ClientQuotaManager,
    pub request: ClientQuotaManager,
}

impl ClientQuotaManagers {
    /// From `quota.window.num` and `quota.window.size.seconds` (validated at start-up).
    pub fn from_settings(settings: &BTreeMap<String, String>) -> Self {
        let number = |name: &str| {
            shoal_config::effective(settings, name).and_then(|v| v.trim().parse::<u64>().ok())
        };
        let windows = number("quota.window.num").map_or(11, |n| usize::try_from(n).unwrap_or(11));
        let window_ms =
            number("quota.window.size.seconds").map_or(1_000, |s| s.saturating_mul(1000));
        ClientQuotaManagers {
            produce: ClientQuotaManager::new(QuotaType::Produce, windows, window_ms),
            fetch: ClientQuotaManager::new(QuotaType::Fetch, windows, window_ms),
            request: ClientQuotaManager::new(QuotaType::Request, windows, window_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_meta::client_quotas::{ClientQuotaEntity, QuotaEntityName};

    fn quotas(rate: f64) -> ClientQuotas {
        let mut q = ClientQuotas::default();
        q.set(
            &ClientQuotaEntity::user(QuotaEntityName::Name("alice".into())),
            PRODUCER_BYTE_RATE,
            Some(rate),
        );
        q
    }

    #[test]
    fn a_client_over_its_quota_is_throttled_until_its_rate_is_back() {
        let m = ClientQuotaManager::new(QuotaType::Produce, 11, 1_000);
        let q = quotas(1_000.0);
        assert_eq!(m.record_at(&q, "alice", "c", 500, 0), 0);
        // 1.5 kB in the first window at 1 kB/s: due at 1.5 s, measured over 1 s.
        assert_eq!(m.record_at(&q, "alice", "c", 1_000, 100), 500);
        // Another client id of alice shares the user's quota.
        assert_eq!(m.record_at(&q, "alice", "other", 500, 200), 1_000);
        // Nobody else is measured.
        assert_eq!(m.record_at(&q, "bob", "c", 1_000_000, 200), 0);
        assert_eq!(m.sensor_count(), 1);
        // Bounded by the measured span.
        assert_eq!(m.record_at(&q, "alice", "c", 1_000_000_000, 300), 11_000);
        // The fetch manager measures another key.
        let f = ClientQuotaManager::new(QuotaType::Fetch, 11, 1_000);
        assert_eq!(f.record_at(&q, "alice", "c", 1_000_000, 0), 0);
    }

    #[test]
    fn sensors_are_bounded_and_idle_ones_go_first() {
        let m = ClientQuotaManager::new(QuotaType::Produce, 2, 1_000);
        let mut q = ClientQuotas::default();
        q.set(
            &ClientQuotaEntity::client_id(QuotaEntityName::Default),
            PRODUCER_BYTE_RATE,
            Some(1e9),
        );
        for i in 0..MAX_QUOTA_SENSORS {
            m.record_at(&q, "u", &format!("c{i}"), 1, 0);
        }
        assert_eq!(m.sensor_count(), MAX_QUOTA_SENSORS);
        // Still within the span: the least recently used one makes room.
        m.record_at(&q, "u", "new", 1, 1_000);
        assert_eq!(m.sensor_count(), MAX_QUOTA_SENSORS);
        // Past the span: every idle one goes.
        m.record_at(&q, "u", "newer", 1, 10_000);
        assert_eq!(m.sensor_count(), 1);
    }
}
