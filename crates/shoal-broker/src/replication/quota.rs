//! Replication throttles (Kafka's `ReplicationQuotaManager`): a reassignment that copies a
//! large partition to a new replica must not take the leader's disk and network from
//! producers and consumers.
//!
//! As in Kafka, a throttle is two things. The topic configs `leader.replication.throttled.replicas`
//! and `follower.replication.throttled.replicas` name which replicas are throttled, as
//! `partition:broker` pairs (or `*`); a broker reads the pairs naming itself
//! ([`Throttles::for_replica`]). The broker settings `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate` bound the bytes per second of those replicas'
//! traffic, measured over `replication.quota.window.num` samples of
//! `replication.quota.window.size.seconds` ([`ReplicationQuota`]; unlike Kafka's, a quiet
//! throttle allows a burst of one window's worth, not `window.num - 1` windows'). The rates are dynamic, as
//! in Kafka: a BrokerConfig for this broker, else the cluster default, else the static
//! setting ([`ReplicationQuotas::apply`] on every metadata image).
//!
//! Only a replica out of the ISR is ever held back: the leader leaves its records out of a
//! fetch answer while its quota is exceeded, the follower leaves the partition out of its
//! request. Bytes of every throttled partition count towards the rate, in sync or not, so a
//! catching-up replica gets what the in-sync ones leave (Kafka's `shouldLeaderThrottle`,
//! `shouldFollowerThrottle`). A throttled move therefore never stalls producers: the in-sync
//! followers that acks=all waits for are never throttled.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use shoal_config::list_elements;
use shoal_meta::DynamicBrokerConfigs;

use crate::quotas::rate::SampledRate;

/// The broker setting bounding what a leader sends to throttled replicas.
pub const LEADER_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
/// The broker setting bounding what a follower fetches for throttled replicas.
pub const FOLLOWER_THROTTLED_RATE: &str = "follower.replication.throttled.rate";
/// No bound (Kafka's default rate, Long.MAX_VALUE).
const UNBOUNDED: u64 = i64::MAX as u64;

/// The topic config naming replicas the leader throttles.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// The topic config naming replicas the follower throttles.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";

/// Whether this broker throttles one partition's replication, as leader and as follower.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttles {
    pub leader: bool,
    pub follower: bool,
}

impl Throttles {
    /// The throttles of `partition` on broker `broker_id` from its topic's configs.
    pub fn for_replica(configs: &BTreeMap<String, String>, partition: i32, broker_id: i32) -> Self {
        let named = |config: &str| {
            configs
                .get(config)
                .is_some_and(|value| names_replica(value, partition, broker_id))
        };
        Throttles {
            leader: named(LEADER_THROTTLED_REPLICAS),
            follower: named(FOLLOWER_THROTTLED_REPLICAS),
        }
    }
}

/// Whether a throttled-replica list (`*`, or `partition:broker` pairs) names this replica.
/// The controller validated the list; an entry that does not parse names nothing.
fn names_replica(value: &str, partition: i32, broker_id: i32) -> bool {
    let elements = list_elements(value);
    if elements.len() == 1 && elements[0] == "*" {
        return true;
    }
    elements.iter().any(|e| {
        e.split_once(':').is_some_and(|(p, b)| {
            p.trim().parse::<i32>() == Ok(partition) && b.trim().parse::<i32>() == Ok(broker_id)
        })
    })
}

/// One direction's throttle on this broker: a bound in bytes/s and the measured rate.
#[derive(Debug)]
pub struct ReplicationQuota {
    /// Bytes/s; [`UNBOUNDED`] (Kafka's default, Long.MAX_VALUE) for none. Changes at run time.
    bytes_per_second: AtomicU64,
    /// The broker's static setting, under any dynamic value.
    static_bound: Option<u64>,
    rate: Mutex<SampledRate>,
    started: Instant,
}

impl ReplicationQuota {
    pub fn new(bytes_per_second: Option<u64>, windows: usize, window_ms: u64) -> Self {
        ReplicationQuota {
            bytes_per_second: AtomicU64::new(bytes_per_second.unwrap_or(UNBOUNDED)),
            static_bound: bytes_per_second,
            rate: Mutex::new(SampledRate::new(windows, window_ms)),
            started: Instant::now(),
        }
    }

    fn bytes_per_second(&self) -> Option<u64> {
        let bound = self.bytes_per_second.load(Ordering::Relaxed);
        (bound < UNBOUNDED).then_some(bound)
    }

    /// Takes a dynamic value (already validated by the controller), or the static setting
    /// when there is none; returns whether the bound changed.
    fn set_dynamic(&self, dynamic: Option<&str>) -> bool {
        let bound = match dynamic.map(|v| v.trim().parse::<u64>()) {
            Some(Ok(v)) => Some(v).filter(|b| *b < UNBOUNDED),
            // Never stored unvalidated; the static setting is the safe reading.
            Some(Err(_)) | None => self.static_bound,
        };
        let new = bound.unwrap_or(UNBOUNDED);
        self.bytes_per_second.swap(new, Ordering::Relaxed) != new
    }

    /// Whether a bound is set at all (else nothing is recorded or held back).
    pub fn is_bounded(&self) -> bool {
        self.bytes_per_second().is_some()
    }

    /// Most record bytes one fetch may carry for a throttled replica: one window's worth of
    /// the bound (at least 1; the log still returns a whole first batch). Kafka sends up to
    /// `replica.fetch.max.bytes` at once, so a bound below 1 MiB per window is overshot in
    /// 1 MiB steps; this keeps a low bound's rate close to it.
    pub fn chunk_bytes(&self) -> Option<usize> {
        let bound = self.bytes_per_second()?;
        let window_ms = self.lock().window_ms;
        let bytes = u128::from(bound) * u128::from(window_ms) / 1000;
        Some(usize::try_from(bytes).unwrap_or(usize::MAX).max(1))
    }

    /// Whether the throttled traffic is over the bound now.
    pub fn is_exceeded(&self) -> bool {
        self.is_exceeded_at(self.now_ms())
    }

    /// Counts bytes of a throttled partition's replication.
    pub fn record(&self, bytes: usize) {
        self.record_at(bytes, self.now_ms());
    }

    fn is_exceeded_at(&self, now_ms: u64) -> bool {
        let Some(bound) = self.bytes_per_second() else {
            return false;
        };
        self.lock().bytes_per_second(now_ms) > bound as f64
    }

    fn record_at(&self, bytes: usize, now_ms: u64) {
        if self.is_bounded() && bytes > 0 {
            self.lock().record(bytes as u64, now_ms);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SampledRate> {
        self.rate.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// This broker's two throttles, from its settings.
#[derive(Debug)]
pub struct ReplicationQuotas {
    pub leader: ReplicationQuota,
    pub follower: ReplicationQuota,
}

impl ReplicationQuotas {
    /// From `leader/follower.replication.throttled.rate` and the window settings (validated
    /// at start-up; Long.MAX_VALUE, the default, is no bound).
    pub fn from_settings(settings: &BTreeMap<String, String>) -> Self {
        let number = |name: &str| {
            shoal_config::effective(settings, name).and_then(|v| v.trim().parse::<u64>().ok())
        };
        let windows = number("replication.quota.window.num").map_or(11, |n| n as usize);
        let window_ms = number("replication.quota.window.size.seconds").map_or(1_000, |s| s * 1000);
        let bound = |name: &str| number(name).filter(|b| *b < UNBOUNDED);
        ReplicationQuotas {
            leader: ReplicationQuota::new(bound(LEADER_THROTTLED_RATE), windows, window_ms),
            follower: ReplicationQuota::new(bound(FOLLOWER_THROTTLED_RATE), windows, window_ms),
        }
    }

    /// Takes this broker's dynamic rates from a metadata image's broker configs (its own,
    /// else the cluster default, else the static setting).
    pub fn apply(&self, configs: &DynamicBrokerConfigs, broker_id: i32) {
        for (quota, name) in [
            (&self.leader, LEADER_THROTTLED_RATE),
            (&self.follower, FOLLOWER_THROTTLED_RATE),
        ] {
            let dynamic = configs.value(broker_id, name).map(|(v, _)| v);
            if quota.set_dynamic(dynamic) {
                tracing::info!(
                    config = name,
                    bytes_per_second = ?quota.bytes_per_second(),
                    "replication throttle rate changed"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_broker_throttles_the_replicas_its_topic_configs_name_for_it() {
        let cases: &[(&str, &str, i32, i32, Throttles)] = &[
            ("", "", 0, 1, Throttles::default()),
            (
                "*",
                "",
                3,
                1,
                Throttles {
                    leader: true,
                    follower: false,
                },
            ),
            (
                "",
                "*",
                3,
                9,
                Throttles {
                    leader: false,
                    follower: true,
                },
            ),
            (
                "0:1,1:2",
                "0:3",
                0,
                1,
                Throttles {
                    leader: true,
                    follower: false,
                },
            ),
            ("0:1,1:2", "0:3", 1, 1, Throttles::default()),
            (
                "0:1,1:2",
                "0:3",
                1,
                2,
                Throttles {
                    leader: true,
                    follower: false,
                },
            ),
            (
                "0:1,1:2",
                "0:3",
                0,
                3,
                Throttles {
                    leader: false,
                    follower: true,
                },
            ),
            (
                " 0 : 1 ",
                "",
                0,
                1,
                Throttles {
                    leader: true,
                    follower: false,
                },
            ),
            // Never valid after the controller's check; names nothing rather than everything.
            ("0:x", "junk", 0, 1, Throttles::default()),
        ];
        for (leader, follower, partition, broker, want) in cases {
            let c = configs(&[
                (LEADER_THROTTLED_REPLICAS, leader),
                (FOLLOWER_THROTTLED_REPLICAS, follower),
            ]);
            assert_eq!(
                Throttles::for_replica(&c, *partition, *broker),
                *want,
                "{leader:?} {follower:?} p{partition} b{broker}"
            );
        }
        assert_eq!(
            Throttles::for_replica(&BTreeMap::new(), 0, 1),
            Throttles::default()
        );
    }

    #[test]
    fn a_quota_is_exceeded_only_above_its_bound_and_never_without_one() {
        let q = ReplicationQuota::new(Some(50_000), 11, 1_000);
        q.record_at(40_000, 100);
        assert!(!q.is_exceeded_at(200), "40 kB over one window is 40 kB/s");
        q.record_at(20_000, 300);
        assert!(q.is_exceeded_at(400), "60 kB over one window is 60 kB/s");
        assert!(!q.is_exceeded_at(1_500), "60 kB over 1.5 s is 40 kB/s");
        assert!(!q.is_exceeded_at(30_000), "the samples aged out");
        let unbounded = ReplicationQuota::new(None, 11, 1_000);
        unbounded.record_at(usize::MAX, 0);
        assert!(!unbounded.is_exceeded_at(1));
        assert_eq!(unbounded.chunk_bytes(), None);
        assert_eq!(q.chunk_bytes(), Some(50_000));
        assert_eq!(
            ReplicationQuota::new(Some(0), 11, 1_000).chunk_bytes(),
            Some(1)
        );
        assert_eq!(
            ReplicationQuota::new(Some(300), 2, 2_000).chunk_bytes(),
            Some(600)
        );
    }

    #[test]
    fn settings_give_the_bounds_and_the_default_is_no_bound() {
        let q = ReplicationQuotas::from_settings(&configs(&[
            ("leader.replication.throttled.rate", "1000"),
            ("replication.quota.window.num", "2"),
        ]));
        assert!(q.leader.is_bounded());
        assert!(!q.follower.is_bounded());
        let q = ReplicationQuotas::from_settings(&configs(&[(
            "follower.replication.throttled.rate",
            "9223372036854775807",
        )]));
        assert!(!q.follower.is_bounded());
    }

    #[test]
    fn a_dynamic_rate_wins_the_broker_s_own_over_the_cluster_s_and_removing_it_restores_the_static_one()
     {
        let q = ReplicationQuotas::from_settings(&configs(&[(LEADER_THROTTLED_RATE, "100")]));
        let mut dynamic = DynamicBrokerConfigs::default();
        dynamic.set(None, LEADER_THROTTLED_RATE, Some("200"));
        dynamic.set(None, FOLLOWER_THROTTLED_RATE, Some("300"));
        dynamic.set(Some(1), LEADER_THROTTLED_RATE, Some("400"));
        let cases: &[(i32, Option<u64>, Option<u64>)] =
            &[(1, Some(400), Some(300)), (2, Some(200), Some(300))];
        for (broker, leader, follower) in cases {
            q.apply(&dynamic, *broker);
            assert_eq!(q.leader.bytes_per_second(), *leader, "broker {broker}");
            assert_eq!(q.follower.bytes_per_second(), *follower, "broker {broker}");
        }
        // Removed: the static setting again, or no bound where there is none.
        q.apply(&DynamicBrokerConfigs::default(), 1);
        assert_eq!(q.leader.bytes_per_second(), Some(100));
        assert_eq!(q.follower.bytes_per_second(), None);
        // Long.MAX_VALUE set dynamically: no bound, even over a static one.
        dynamic.set(Some(1), LEADER_THROTTLED_RATE, Some("9223372036854775807"));
        q.apply(&dynamic, 1);
        assert!(!q.leader.is_bounded());
    }
}
