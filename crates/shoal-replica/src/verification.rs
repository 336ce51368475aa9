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
//! Guards live in memory only, as in Kafka: after a restart or a leader change a producer is
//! verified again. At most [`MAX_VERIFICATIONS`] are kept; beyond, the oldest goes (its write,
//! if still coming, is refused and retried).

use std::collections::{BTreeMap, HashMap};

use crate::transaction::VerificationGuard;

/// Guards kept per partition (one per producer verifying a first write).
pub const MAX_VERIFICATIONS: usize = 50_000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verifications {
    /// Producer id → (guard, creation number).
    guards: HashMap<i64, (VerificationGuard, u64)>,
    /// Creation number → producer id, oldest first (for eviction).
    order: BTreeMap<u64, i64>,
    created: u64,
}

impl Verifications {
    /// The producer's guard, created from `candidate` if it has none.
    pub fn start(&mut self, producer_id: i64, candidate: VerificationGuard) -> VerificationGuard {
        if let Some((guard, _)) = self.guards.get(&producer_id) {
            return *guard;
        }
        if self.guards.len() >= MAX_VERIFICATIONS
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.guards.remove(&oldest);
        }
        self.created += 1;
        self.guards.insert(producer_id, (candidate, self.created));
        self.order.insert(self.created, producer_id);
        candidate
    }

    /// Whether `guard` is the producer's current guard.
    pub fn matches(&self, producer_id: i64, guard: Option<VerificationGuard>) -> bool {
        match (self.guards.get(&producer_id), guard) {
            (Some((current, _)), Some(guard)) => *current == guard,
            _ => false,
        }
    }

    /// The producer's transaction ended (a marker) or its epoch moved: its guard is spent.
    pub fn clear(&mut self, producer_id: i64) {
        if let Some((_, created)) = self.guards.remove(&producer_id) {
            self.order.remove(&created);
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
        assert_eq!(v.start(7, guard(1)), guard(1));
        assert_eq!(v.start(7, guard(2)), guard(1), "created only if absent");
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
        assert_eq!(v.start(7, guard(3)), guard(3));
        assert!(!v.matches(7, Some(guard(1))));
    }

    #[test]
    fn guards_are_bounded_and_the_oldest_goes() {
        let mut v = Verifications::default();
        for id in 0..MAX_VERIFICATIONS as i64 {
            v.start(id, guard(id as u64 + 1));
        }
        v.start(-1, guard(0));
        assert_eq!(v.len(), MAX_VERIFICATIONS);
        assert!(!v.matches(0, Some(guard(1))), "the oldest was evicted");
        assert!(v.matches(1, Some(guard(2))));
        assert!(v.matches(-1, Some(guard(0))));
    }
}
