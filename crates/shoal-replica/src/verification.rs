//! KIP-890 part 1: transactional writes verified with the coordinator (Kafka's
//! `VerificationStateEntry`).
//!
//! Before a producer's first transactional write to a partition, the leader asks the
//! coordinator whether the transaction includes the partition. A guard issued before the
//! question and cleared by the producer's next marker (or epoch bump) makes the answer
//! single-use: a write that was verified, then overtaken by an ABORT, carries a guard that no
//! longer matches, and is refused (INVALID_TXN_STATE) instead of opening a transaction the
//! coordinator has already forgotten (a hanging transaction).
//!
//! With transaction version 2 (KIP-890 part 2) a transaction's markers carry the *next* epoch
//! (e+1), the one the producer's following transaction writes with. Its first write may be
//! verified (the partition added) before the previous transaction's markers arrive, so a marker
//! at the guard's own epoch does not spend a guard taken for an epoch-bumping request: that
//! marker can only end the transaction before it (its own markers carry e+2). Any other marker
//! or epoch spends it, and a guard taken for another epoch is replaced, never reused.
//!
//! Guards live in memory only, as in Kafka: after a restart or a leader change a producer is
//! verified again. At most [`MAX_VERIFICATIONS`] are kept; beyond, the oldest goes (its write,
//! if still coming, is refused and retried).

use std::collections::{BTreeMap, HashMap};

use crate::transaction::VerificationGuard;

/// Guards kept per partition (one per producer verifying a first write).
pub const MAX_VERIFICATIONS: usize = 50_000;

/// One producer's guard and what it was taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Guard {
    guard: VerificationGuard,
    producer_epoch: i16,
    /// Taken for a transaction-version-2 request (its markers carry the next epoch).
    supports_epoch_bump: bool,
    /// The lowest first sequence of the batches verified under it (Kafka's
    /// `VerificationStateEntry.lowestSequence`): until the transaction is open here, a client
    /// batch starting above it is out of order, since an earlier batch is still coming.
    lowest_sequence: i32,
    /// Creation number (eviction order).
    created: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verifications {
    guards: HashMap<i64, Guard>,
    /// Creation number → producer id, oldest first (for eviction).
    order: BTreeMap<u64, i64>,
    created: u64,
}

impl Verifications {
    /// The producer's guard for a write at `producer_epoch` whose batch starts at
    /// `first_sequence`, created from `candidate` if it has none for that epoch (one for
    /// another epoch is replaced).
    pub fn start(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        supports_epoch_bump: bool,
        candidate: VerificationGuard,
        first_sequence: i32,
    ) -> VerificationGuard {
        if let Some(g) = self.guards.get_mut(&producer_id)
            && g.producer_epoch == producer_epoch
        {
            // A later request of the same epoch may speak version 2 where the first did not.
            g.supports_epoch_bump |= supports_epoch_bump;
            g.lowest_sequence = g.lowest_sequence.min(first_sequence);
            return g.guard;
        }
        self.clear(producer_id);
        if self.guards.len() >= MAX_VERIFICATIONS
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.guards.remove(&oldest);
        }
        self.created += 1;
        self.guards.insert(
            producer_id,
            Guard {
                guard: candidate,
                producer_epoch,
                supports_epoch_bump,
                lowest_sequence: first_sequence,
                created: self.created,
            },
        );
        self.order.insert(self.created, producer_id);
        candidate
    }

    /// Whether `guard` is the producer's current guard.
    pub fn matches(&self, producer_id: i64, guard: Option<VerificationGuard>) -> bool {
        match (self.guards.get(&producer_id), guard) {
            (Some(current), Some(guard)) => current.guard == guard,
            _ => false,
        }
    }

    /// The lowest first sequence verified for the producer at `producer_epoch`, if it has a
    /// guard for that epoch.
    pub fn lowest_sequence(&self, producer_id: i64, producer_epoch: i16) -> Option<i32> {
        self.guards
            .get(&producer_id)
            .filter(|g| g.producer_epoch == producer_epoch)
            .map(|g| g.lowest_sequence)
    }

    /// A marker (or a new epoch) at `producer_epoch` reached the log: the producer's guard is
    /// spent, unless it was taken for a version-2 request at that very epoch (module docs).
    pub fn on_epoch_or_marker(&mut self, producer_id: i64, producer_epoch: i16) {
        let keep = self
            .guards
            .get(&producer_id)
            .is_some_and(|g| g.supports_epoch_bump && g.producer_epoch == producer_epoch);
        if !keep {
            self.clear(producer_id);
        }
    }

    /// The producer's guard is spent.
    pub fn clear(&mut self, producer_id: i64) {
        if let Some(g) = self.guards.remove(&producer_id) {
            self.order.remove(&g.created);
        }
    }

    pub fn len(&self) -> usize {
        self.guards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.guards.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(value: u64) -> VerificationGuard {
        VerificationGuard::for_test(value)
    }

    #[test]
    fn a_guard_is_created_once_and_spent_by_clear() {
        let mut v = Verifications::default();
        assert_eq!(v.start(7, 3, false, guard(1), 0), guard(1));
        assert_eq!(
            v.start(7, 3, false, guard(2), 0),
            guard(1),
            "created only if absent"
        );
        // (producer, guard presented, matches)
        let cases = [
            (7, Some(guard(1)), true),
            (7, Some(guard(2)), false),
            (7, None, false),
            (8, Some(guard(1)), false),
        ];
        for (producer_id, presented, expected) in cases {
            assert_eq!(v.matches(producer_id, presented), expected);
        }
        v.clear(7);
        assert!(!v.matches(7, Some(guard(1))), "a stale guard never matches");
        assert_eq!(v.start(7, 3, false, guard(3), 0), guard(3));
        assert!(!v.matches(7, Some(guard(1))));
        assert_eq!(
            v.start(7, 4, false, guard(4), 0),
            guard(4),
            "another epoch's guard is replaced"
        );
        assert!(!v.matches(7, Some(guard(3))));
    }

    #[test]
    fn markers_spend_guards_except_a_version_2_guard_at_their_own_epoch() {
        // (guard taken at epoch, for an epoch-bumping request, marker epoch, guard kept)
        let cases = [
            (5, false, 5, false), // classic: the marker may end the very transaction verified
            (5, false, 6, false),
            (5, true, 5, true), // version 2: the previous transaction's marker (e+1)
            (5, true, 6, false), // the verified transaction's own end (its markers carry e+1)
            (5, true, 4, false),
        ];
        for (epoch, bump, marker_epoch, kept) in cases {
            let mut v = Verifications::default();
            v.start(7, epoch, bump, guard(1), 0);
            v.on_epoch_or_marker(7, marker_epoch);
            assert_eq!(
                v.matches(7, Some(guard(1))),
                kept,
                "{epoch} {bump} {marker_epoch}"
            );
            assert_eq!(v.len(), usize::from(kept));
        }
    }

    #[test]
    fn guards_are_bounded_and_the_oldest_goes() {
        let mut v = Verifications::default();
        for id in 0..MAX_VERIFICATIONS as i64 {
            v.start(id, 0, false, guard(id as u64 + 1), 0);
        }
        v.start(-1, 0, false, guard(0), 0);
        assert_eq!(v.len(), MAX_VERIFICATIONS);
        assert!(!v.matches(0, Some(guard(1))), "the oldest was evicted");
        assert!(v.matches(1, Some(guard(2))));
        assert!(v.matches(-1, Some(guard(0))));
    }

    #[test]
    fn a_guard_keeps_the_lowest_sequence_verified_at_its_epoch() {
        let mut v = Verifications::default();
        assert_eq!(v.lowest_sequence(7, 3), None);
        v.start(7, 3, false, guard(1), 5);
        v.start(7, 3, false, guard(2), 0);
        v.start(7, 3, false, guard(3), 9);
        assert_eq!(v.lowest_sequence(7, 3), Some(0));
        assert_eq!(
            v.lowest_sequence(7, 4),
            None,
            "another epoch's guard says nothing"
        );
        v.start(7, 4, false, guard(4), 12);
        assert_eq!(
            v.lowest_sequence(7, 4),
            Some(12),
            "a new epoch starts afresh"
        );
        v.clear(7);
        assert_eq!(v.lowest_sequence(7, 4), None);
    }
}
