//! `ControllerLease`: how long this broker may trust its own view of what it leads.
//!
//! **Why.** A broker that stops for a while (SIGSTOP, a stall, a lost network) is fenced by the
//! controller after `broker.session.timeout.ms` and its leaderships move. When it runs again,
//! its image still names it leader until it has applied the metadata that says otherwise, and
//! what it answers from memory alone in that window is stale: a group coordinator answers
//! OffsetFetch with an offset the new coordinator has long moved past, and the consumer goes
//! backwards. Replicated writes need no lease (the followers moved on, so a deposed leader
//! cannot commit); reads served from memory do.
//!
//! **The rule** (a lease, as Raft's leader leases): the controller fences a broker no sooner
//! than `broker.session.timeout.ms` after it *received* a heartbeat, so a broker whose
//! heartbeat sent at `t` was answered "unfenced" is unfenced until `t + session timeout`. The
//! answer also carries the controller's metadata offset at that moment ([`LeaseTerms`]): the
//! grant counts only once this broker has *acted on* metadata at least that new, because a
//! broker fenced while it was stopped is unfenced again by its first heartbeat, yet the
//! leaderships it lost stay lost and it must see that first. Like every lease, this assumes the
//! two monotonic clocks advance at the same rate (no host suspend in between).
//!
//! Not covered: the controller moving a live broker's leadership on purpose (preferred leader
//! election, reassignment); then the old leader learns it within one metadata propagation, as
//! in Kafka.
//!
//! [`LeaseState`] is the pure part (table tests below); [`ControllerLease`] shares it between
//! the heartbeat loop and the coordinators.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What a heartbeat answered "unfenced" grants, as the controller states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTerms {
    /// The controller's applied metadata offset when it answered, after recording the
    /// heartbeat: every fence of this broker decided before then is at or below it.
    pub metadata_offset: u64,
    /// The controller's `broker.session.timeout.ms`.
    pub session_timeout_ms: u64,
}

/// One answered heartbeat: valid until `expires_at`, once metadata at `metadata_offset` has
/// been acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseGrant {
    pub expires_at: Instant,
    pub metadata_offset: u64,
}

/// Grants waiting for the broker to catch up, at most this many (older ones are dropped first;
/// heartbeats come every `broker.heartbeat.interval.ms`, so a few cover any catch-up lag).
pub const MAX_PENDING_GRANTS: usize = 8;

/// The lease: the grant in force and the newer ones waiting for metadata to catch up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseState {
    granted: Option<LeaseGrant>,
    /// Oldest first; each expires later than the one before.
    pending: Vec<LeaseGrant>,
}

impl LeaseState {
    /// A heartbeat was answered "unfenced".
    pub fn grant(&mut self, grant: LeaseGrant) {
        if self
            .pending
            .last()
            .is_some_and(|p| p.expires_at >= grant.expires_at)
            || self
                .granted
                .is_some_and(|g| g.expires_at >= grant.expires_at)
        {
            return; // An answer to an older heartbeat, arriving late: nothing to add.
        }
        if self.pending.len() == MAX_PENDING_GRANTS {
            self.pending.remove(0);
        }
        self.pending.push(grant);
    }

    /// The controller answered "fenced", or the registration is gone: no lease until the next
    /// "unfenced" answer.
    pub fn revoke(&mut self) {
        self.granted = None;
        self.pending.clear();
    }

    /// Whether the lease holds at `now` for a broker that has acted on metadata up to
    /// `acted_on_offset`. Promotes the newest pending grant that offset covers.
    pub fn holds(&mut self, now: Instant, acted_on_offset: u64) -> bool {
        if let Some(i) = self
            .pending
            .iter()
            .rposition(|p| p.metadata_offset <= acted_on_offset)
        {
            self.granted = Some(self.pending[i]);
            self.pending.drain(..=i);
        }
        self.granted.is_some_and(|g| now < g.expires_at)
    }
}

/// The lease of this broker's registration, updated by the heartbeat loop and read by every
/// coordinator before it answers from memory.
#[derive(Debug)]
pub struct ControllerLease {
    state: Mutex<LeaseState>,
    /// This broker's `broker.session.timeout.ms`: the lease when a controller's answer carries
    /// no [`LeaseTerms`] (an older release, during a rolling upgrade), and its upper bound.
    fallback_session_timeout: Duration,
}

impl ControllerLease {
    pub fn new(fallback_session_timeout_ms: u64) -> Self {
        Self {
            state: Mutex::new(LeaseState::default()),
            fallback_session_timeout: Duration::from_millis(fallback_session_timeout_ms),
        }
    }

    /// The heartbeat sent at `sent_at` was answered "unfenced" with `terms`. The lease is the
    /// shorter of the controller's session timeout and this broker's own (a shorter lease is
    /// always safe; a value off the wire never stretches it, nor overflows the clock).
    pub fn on_unfenced(&self, sent_at: Instant, terms: Option<LeaseTerms>) {
        let (timeout, metadata_offset) = match terms {
            Some(t) => (
                Duration::from_millis(t.session_timeout_ms).min(self.fallback_session_timeout),
                t.metadata_offset,
            ),
            None => (self.fallback_session_timeout, 0),
        };
        let Some(expires_at) = sent_at.checked_add(timeout) else {
            return;
        };
        self.lock().grant(LeaseGrant {
            expires_at,
            metadata_offset,
        });
    }

    pub fn revoke(&self) {
        self.lock().revoke();
    }

    /// Whether this broker may answer from its own view now, having acted on metadata up to
    /// `acted_on_offset`.
    pub fn holds(&self, acted_on_offset: u64) -> bool {
        self.lock().holds(Instant::now(), acted_on_offset)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn grant(base: Instant, expires_ms: u64, metadata_offset: u64) -> LeaseGrant {
        LeaseGrant {
            expires_at: at(base, expires_ms),
            metadata_offset,
        }
    }

    #[test]
    fn the_lease_holds_between_catching_up_and_expiry() {
        let t = Instant::now();
        // (grants as (expires ms, metadata offset), now ms, acted-on offset, holds)
        type Row = (&'static [(u64, u64)], u64, u64, bool);
        let rows: &[Row] = &[
            (&[], 0, 100, false),                         // never granted
            (&[(1500, 10)], 0, 10, true),                 // caught up, not expired
            (&[(1500, 10)], 1499, 10, true),              // just before expiry
            (&[(1500, 10)], 1500, 10, false),             // expired
            (&[(1500, 10)], 0, 9, false),                 // not caught up: the grant waits
            (&[(1500, 10), (1750, 20)], 1600, 15, false), // newest grant not caught up, first expired
            (&[(1500, 10), (1750, 20)], 1600, 20, true),
            (&[(1500, 10), (1750, 20)], 1000, 15, true), // the older grant alone still holds
        ];
        for (i, (grants, now, acted, expected)) in rows.iter().enumerate() {
            let mut lease = LeaseState::default();
            for (expires, offset) in grants.iter() {
                lease.grant(grant(t, *expires, *offset));
            }
            assert_eq!(
                lease.holds(at(t, *now), *acted),
                *expected,
                "row {i}: {grants:?} at {now} ms, acted on {acted}"
            );
        }
    }

    #[test]
    fn a_broker_paused_past_its_session_has_no_lease_until_it_sees_its_fence() {
        let t = Instant::now();
        let mut lease = LeaseState::default();
        lease.grant(grant(t, 1500, 10));
        assert!(lease.holds(at(t, 100), 10));
        // Paused for 5 s: fenced at offset 30 meanwhile. On resume the old grant has expired,
        // and the first heartbeat's answer counts only once offset 30 is acted on.
        assert!(!lease.holds(at(t, 5000), 10));
        lease.grant(grant(t, 6500, 30));
        assert!(!lease.holds(at(t, 5001), 29));
        assert!(lease.holds(at(t, 5002), 30));
    }

    #[test]
    fn late_answers_never_shorten_and_revocation_clears() {
        let t = Instant::now();
        let mut lease = LeaseState::default();
        lease.grant(grant(t, 2000, 5));
        assert!(lease.holds(at(t, 0), 5));
        lease.grant(grant(t, 1800, 5)); // an older heartbeat's answer
        assert!(lease.holds(at(t, 1900), 5));
        lease.revoke();
        assert!(!lease.holds(at(t, 0), 5));
    }

    #[test]
    fn the_controllers_terms_never_stretch_the_lease_past_the_brokers_own_timeout() {
        let lease = ControllerLease::new(1500);
        let sent_at = Instant::now();
        let terms = |session_timeout_ms| LeaseTerms {
            metadata_offset: 7,
            session_timeout_ms,
        };
        lease.on_unfenced(sent_at, Some(terms(u64::MAX))); // no overflow, no panic
        let granted = lease.lock().pending.last().copied();
        assert_eq!(
            granted.map(|g| g.expires_at),
            Some(sent_at + Duration::from_millis(1500))
        );
        let shorter = ControllerLease::new(1500);
        shorter.on_unfenced(sent_at, Some(terms(600)));
        assert!(
            shorter
                .lock()
                .holds(sent_at + Duration::from_millis(599), 7)
        );
        assert!(
            !shorter
                .lock()
                .holds(sent_at + Duration::from_millis(600), 7)
        );
        let older = ControllerLease::new(900);
        older.on_unfenced(sent_at, None);
        assert!(older.lock().holds(sent_at + Duration::from_millis(899), 0));
        assert!(!older.lock().holds(sent_at + Duration::from_millis(900), 0));
    }

    #[test]
    fn pending_grants_are_bounded_and_the_newest_caught_up_one_wins() {
        let t = Instant::now();
        let mut lease = LeaseState::default();
        for i in 0..(MAX_PENDING_GRANTS as u64 * 2) {
            lease.grant(grant(t, 1000 + i * 100, 10 + i));
        }
        assert_eq!(lease.pending.len(), MAX_PENDING_GRANTS);
        let newest = 10 + MAX_PENDING_GRANTS as u64 * 2 - 1;
        assert!(lease.holds(at(t, 0), newest));
        assert!(lease.pending.is_empty());
        assert_eq!(lease.granted.map(|g| g.metadata_offset), Some(newest));
    }
}
