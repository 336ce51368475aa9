//! `BrokerLiveness`: the active controller's in-memory view of which brokers are alive.
//!
//! **Why in memory.** Heartbeats arrive every `broker.heartbeat.interval.ms` from every broker;
//! writing each to the Raft log would make liveness cost a quorum write per broker per interval.
//! Like KRaft's `BrokerHeartbeatManager`, only the *consequences* (FenceBroker, UnfenceBroker)
//! are committed; last-contact times live on the active controller only.
//!
//! **Why clocks restart at election.** A new controller has never heard from anyone. Treating
//! that as silence would fence every broker at every failover; instead, when this node starts
//! leading a new term, every registered broker's clock starts at that moment (as in KRaft), so a
//! broker is fenced only if it stays silent for a full session under the new controller.
//!
//! Pure: inputs are heartbeats, registrations and `now_ms` (any monotonic millisecond clock);
//! outputs are decisions. No I/O, no clock reads, so every rule is unit-tested below.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::controller::requests::{MAX_OFFLINE_REPLICAS_PER_HEARTBEAT, ReplicaRef};
use crate::image::MetadataImage;

/// Last-contact times of brokers, valid for one leadership term.
#[derive(Debug, Clone)]
pub struct BrokerLiveness {
    session_timeout_ms: u64,
    /// The Raft term these clocks belong to; `None` = not leading.
    leader_term: Option<u64>,
    /// Broker id → last contact (`now_ms` of its last heartbeat or registration).
    last_contact_ms: BTreeMap<i32, u64>,
    /// Broker id → (broker epoch, log index of its RegisterBroker entry), for registrations made
    /// during this term. Unfencing waits for the broker to have applied that index.
    registration_index: BTreeMap<i32, (i64, u64)>,
    /// Broker id → the replicas its latest heartbeat reported offline (it cannot open their
    /// logs): never elected leader there. Brokers resend them with every heartbeat, so a new
    /// controller learns them within one interval.
    offline_replicas: BTreeMap<i32, BTreeSet<ReplicaRef>>,
}

impl BrokerLiveness {
    pub fn new(session_timeout_ms: u64) -> Self {
        BrokerLiveness {
            session_timeout_ms,
            leader_term: None,
            last_contact_ms: BTreeMap::new(),
            registration_index: BTreeMap::new(),
            offline_replicas: BTreeMap::new(),
        }
    }

    pub fn session_timeout_ms(&self) -> u64 {
        self.session_timeout_ms
    }

    /// Called whenever this node acts as leader in `term`. On the first call of a term, every
    /// broker registered in `image` gets its clock started at `now_ms`. Returns whether the
    /// clocks were reset.
    pub fn on_leadership(&mut self, term: u64, image: &MetadataImage, now_ms: u64) -> bool {
        if self.leader_term == Some(term) {
            return false;
        }
        self.leader_term = Some(term);
        self.registration_index.clear();
        self.offline_replicas.clear();
        // Fenced brokers have no session to protect (they shut down or expired), so their
        // next incarnation may register at once.
        self.last_contact_ms = image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| (b.broker_id, now_ms))
            .collect();
        true
    }

    /// This node no longer leads: forget everything (the next term starts afresh).
    pub fn on_lost_leadership(&mut self) {
        self.leader_term = None;
        self.last_contact_ms.clear();
        self.registration_index.clear();
        self.offline_replicas.clear();
    }

    /// A valid heartbeat (or a registration) from `broker_id` arrived at `now_ms`.
    pub fn record_contact(&mut self, broker_id: i32, now_ms: u64) {
        let last = self.last_contact_ms.entry(broker_id).or_insert(now_ms);
        *last = (*last).max(now_ms);
    }

    /// A registration of `broker_id` with `broker_epoch` committed at `log_index`.
    pub fn record_registration(
        &mut self,
        broker_id: i32,
        broker_epoch: i64,
        log_index: u64,
        now_ms: u64,
    ) {
        self.registration_index
            .insert(broker_id, (broker_epoch, log_index));
        self.record_contact(broker_id, now_ms);
    }

    /// Ends `broker_id`'s session (controlled shutdown): it is no longer alive, so a new
    /// incarnation may register at once.
    pub fn forget(&mut self, broker_id: i32) {
        self.last_contact_ms.remove(&broker_id);
        self.registration_index.remove(&broker_id);
        self.offline_replicas.remove(&broker_id);
    }

    /// The replicas `broker_id`'s latest heartbeat reported offline (at most
    /// [`MAX_OFFLINE_REPLICAS_PER_HEARTBEAT`] are taken). Replaces the previous report, so a
    /// replica that opens again becomes electable with the next heartbeat.
    pub fn record_offline_replicas(&mut self, broker_id: i32, reported: &[ReplicaRef]) {
        let offline: BTreeSet<ReplicaRef> = reported
            .iter()
            .take(MAX_OFFLINE_REPLICAS_PER_HEARTBEAT)
            .copied()
            .collect();
        if offline.is_empty() {
            self.offline_replicas.remove(&broker_id);
        } else {
            self.offline_replicas.insert(broker_id, offline);
        }
    }

    /// The replicas `broker_id` last reported offline.
    pub fn offline_replicas_of(&self, broker_id: i32) -> BTreeSet<ReplicaRef> {
        self.offline_replicas
            .get(&broker_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether `broker_id` reported its replica of `topic_id`/`partition` offline.
    pub fn is_offline_replica(&self, broker_id: i32, topic_id: Uuid, partition: i32) -> bool {
        self.offline_replicas.get(&broker_id).is_some_and(|set| {
            set.contains(&ReplicaRef {
                topic_id,
                partition,
            })
        })
    }

    /// Whether `broker_id` has been heard from within the session timeout.
    pub fn is_alive(&self, broker_id: i32, now_ms: u64) -> bool {
        self.last_contact_ms
            .get(&broker_id)
            .is_some_and(|last| now_ms.saturating_sub(*last) <= self.session_timeout_ms)
    }

    /// Unfenced brokers of `image` silent for longer than the session timeout, as
    /// `(broker_id, broker_epoch)`. A broker without a clock (registered before this term's
    /// clocks were started) gets one now, so it is never fenced without a full session.
    pub fn brokers_to_fence(&mut self, image: &MetadataImage, now_ms: u64) -> Vec<(i32, i64)> {
        let mut expired = Vec::new();
        for broker in image.brokers.values().filter(|b| !b.fenced) {
            let last = *self
                .last_contact_ms
                .entry(broker.broker_id)
                .or_insert(now_ms);
            if now_ms.saturating_sub(last) > self.session_timeout_ms {
                expired.push((broker.broker_id, broker.broker_epoch));
            }
        }
        expired
    }

    /// Whether a heartbeat reporting `caught_up_metadata_offset` unfences `broker_id` at
    /// `broker_epoch`: it must be fenced in `image` at exactly that epoch, and have applied its
    /// registration. The registration's index is known if it was made during this term;
    /// otherwise the broker epoch, a lower bound of it (see `register_broker`), is used.
    pub fn should_unfence(
        &self,
        image: &MetadataImage,
        broker_id: i32,
        broker_epoch: i64,
        caught_up_metadata_offset: u64,
    ) -> bool {
        let Some(broker) = image.brokers.get(&broker_id) else {
            return false;
        };
        if !broker.fenced || broker.broker_epoch != broker_epoch {
            return false;
        }
        let epoch_floor = u64::try_from(broker_epoch).unwrap_or(u64::MAX);
        let registered_at = match self.registration_index.get(&broker_id) {
            Some((epoch, index)) if *epoch == broker_epoch => (*index).max(epoch_floor),
            _ => epoch_floor,
        };
        caught_up_metadata_offset >= registered_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Endpoint, MetadataRecord};

    const SESSION_MS: u64 = 1_500;

    fn image(brokers: &[(i32, i64, bool)]) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        for (id, epoch, fenced) in brokers {
            let _ = image.apply(&MetadataRecord::RegisterBroker {
                log_dirs: Vec::new(),
                broker_id: *id,
                incarnation_id: uuid::Uuid::from_u128(*id as u128),
                broker_epoch: *epoch,
                listeners: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "h".into(),
                    port: 1,
                }],
                rack: None,
                supported_features: None,
            });
            if !fenced {
                let _ = image.apply(&MetadataRecord::UnfenceBroker {
                    broker_id: *id,
                    broker_epoch: *epoch,
                });
            }
        }
        image
    }

    #[test]
    fn fenced_brokers_have_no_session_to_protect() {
        let image = image(&[(1, 10, false), (2, 11, true)]);
        let mut l = BrokerLiveness::new(SESSION_MS);
        assert!(l.on_leadership(1, &image, 1_000));
        // A new controller protects the live broker's session, not the fenced one's, so a
        // broker that shut down (or expired) re-registers without waiting a session.
        assert!(l.is_alive(1, 1_000));
        assert!(!l.is_alive(2, 1_000));
        l.forget(1);
        assert!(
            !l.is_alive(1, 1_001),
            "controlled shutdown ends the session"
        );
    }

    #[test]
    fn silent_unfenced_brokers_expire_after_the_session() {
        let image = image(&[(1, 10, false), (2, 11, false), (3, 12, true)]);
        let mut l = BrokerLiveness::new(SESSION_MS);
        assert!(l.on_leadership(1, &image, 1_000));
        assert!(l.brokers_to_fence(&image, 1_000 + SESSION_MS).is_empty());
        l.record_contact(2, 2_000);
        // Broker 1 is silent past the session; 2 heartbeated; 3 is already fenced.
        assert_eq!(
            l.brokers_to_fence(&image, 1_001 + SESSION_MS),
            vec![(1, 10)]
        );
        assert!(!l.is_alive(1, 1_001 + SESSION_MS));
        assert!(l.is_alive(2, 1_001 + SESSION_MS));
        assert_eq!(
            l.brokers_to_fence(&image, 2_001 + SESSION_MS),
            vec![(1, 10), (2, 11)]
        );
    }

    #[test]
    fn a_new_term_restarts_every_clock() {
        let image = image(&[(1, 10, false)]);
        let mut l = BrokerLiveness::new(SESSION_MS);
        l.on_leadership(1, &image, 0);
        assert_eq!(l.brokers_to_fence(&image, 5_000), vec![(1, 10)]);
        // Same term again: no reset.
        assert!(!l.on_leadership(1, &image, 5_000));
        assert_eq!(l.brokers_to_fence(&image, 5_000), vec![(1, 10)]);
        // Lost and regained leadership (new term): the clock starts at the election.
        l.on_lost_leadership();
        assert!(!l.is_alive(1, 5_000));
        assert!(l.on_leadership(3, &image, 5_000));
        assert!(l.is_alive(1, 5_000 + SESSION_MS));
        assert!(l.brokers_to_fence(&image, 5_000 + SESSION_MS).is_empty());
        assert_eq!(
            l.brokers_to_fence(&image, 5_001 + SESSION_MS),
            vec![(1, 10)]
        );
    }

    #[test]
    fn a_broker_without_a_clock_gets_a_full_session() {
        let image = image(&[(7, 3, false)]);
        let mut l = BrokerLiveness::new(SESSION_MS);
        assert!(l.brokers_to_fence(&image, 100).is_empty());
        assert!(l.brokers_to_fence(&image, 100 + SESSION_MS).is_empty());
        assert_eq!(l.brokers_to_fence(&image, 101 + SESSION_MS), vec![(7, 3)]);
    }

    #[test]
    fn contact_never_moves_a_clock_backwards() {
        let mut l = BrokerLiveness::new(SESSION_MS);
        l.record_contact(1, 900);
        l.record_contact(1, 100);
        assert!(l.is_alive(1, 900 + SESSION_MS));
    }

    #[test]
    fn unfence_needs_a_fenced_broker_at_that_epoch_that_caught_up() {
        let image = image(&[(1, 10, true), (2, 20, false)]);
        let mut l = BrokerLiveness::new(SESSION_MS);
        assert!(!l.should_unfence(&image, 1, 10, 9), "behind its epoch");
        assert!(l.should_unfence(&image, 1, 10, 10));
        assert!(!l.should_unfence(&image, 1, 9, 100), "stale epoch");
        assert!(!l.should_unfence(&image, 2, 20, 100), "not fenced");
        assert!(!l.should_unfence(&image, 3, 1, 100), "not registered");
        // A registration known to have committed later than its epoch raises the bar.
        l.record_registration(1, 10, 14, 0);
        assert!(!l.should_unfence(&image, 1, 10, 13));
        assert!(l.should_unfence(&image, 1, 10, 14));
        // ... but only for that epoch.
        l.record_registration(1, 5, 99, 0);
        assert!(l.should_unfence(&image, 1, 10, 10));
    }

    #[test]
    fn offline_reports_replace_each_other_and_end_with_the_session() {
        let image = image(&[(1, 10, false), (2, 11, false)]);
        let mut l = BrokerLiveness::new(SESSION_MS);
        l.on_leadership(1, &image, 0);
        let t = uuid::Uuid::from_u128(7);
        let r = |partition| ReplicaRef {
            topic_id: t,
            partition,
        };
        l.record_offline_replicas(1, &[r(0), r(1)]);
        assert!(l.is_offline_replica(1, t, 0) && l.is_offline_replica(1, t, 1));
        assert!(!l.is_offline_replica(2, t, 0), "per broker");
        l.record_offline_replicas(1, &[r(1)]);
        assert!(
            !l.is_offline_replica(1, t, 0),
            "a replica that opened again is electable"
        );
        l.forget(1);
        assert!(!l.is_offline_replica(1, t, 1));
        l.record_offline_replicas(2, &[r(3)]);
        assert!(l.on_leadership(2, &image, 0));
        assert!(
            !l.is_offline_replica(2, t, 3),
            "a new term waits for fresh reports"
        );
        let many: Vec<ReplicaRef> = (0..MAX_OFFLINE_REPLICAS_PER_HEARTBEAT as i32 + 5)
            .map(r)
            .collect();
        l.record_offline_replicas(2, &many);
        assert_eq!(
            l.offline_replicas_of(2).len(),
            MAX_OFFLINE_REPLICAS_PER_HEARTBEAT
        );
    }
}
