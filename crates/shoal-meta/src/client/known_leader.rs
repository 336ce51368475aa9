//! `KnownLeader`: the active controller as far as a node that is not a voter knows it.
//!
//! A voter reads the leader from its own Raft metrics. A broker-only node learns it from the
//! voters' answers: every metadata fetch reply names the leader, and a NotController refusal
//! carries a hint. The value is only a hint; whoever it names refuses with a better hint if it
//! no longer leads, so a stale value costs one extra round trip, never correctness.

use std::sync::atomic::{AtomicI32, Ordering};

/// The leader hint; -1 inside means "unknown".
#[derive(Debug)]
pub struct KnownLeader(AtomicI32);

impl Default for KnownLeader {
    fn default() -> Self {
        KnownLeader(AtomicI32::new(-1))
    }
}

impl KnownLeader {
    pub fn get(&self) -> Option<i32> {
        let id = self.0.load(Ordering::Acquire);
        (id >= 0).then_some(id)
    }

    /// Records a hint; `None` (or a negative id) forgets the leader.
    pub fn set(&self, leader: Option<i32>) {
        self.0.store(
            leader.filter(|id| *id >= 0).unwrap_or(-1),
            Ordering::Release,
        );
    }

    /// Forgets the leader if it is still `leader` (it proved unreachable).
    pub fn forget(&self, leader: i32) {
        let _ = self
            .0
            .compare_exchange(leader, -1, Ordering::AcqRel, Ordering::Acquire);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_set_and_forgotten() {
        let known = KnownLeader::default();
        assert_eq!(known.get(), None);
        known.set(Some(2));
        assert_eq!(known.get(), Some(2));
        known.forget(3);
        assert_eq!(
            known.get(),
            Some(2),
            "another node's failure changes nothing"
        );
        known.forget(2);
        assert_eq!(known.get(), None);
        known.set(Some(-5));
        assert_eq!(known.get(), None);
    }
}
