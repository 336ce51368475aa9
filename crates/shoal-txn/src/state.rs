//! The eight states of a transactional id, as Kafka's coordinator names and stores them.
//!
//! The id byte is what `__transaction_state` holds (TransactionLogValue's `TransactionStatus`),
//! so it must never change; the name is what DescribeTransactions and ListTransactions answer
//! and what `kafka-transactions.sh` prints and filters on.
//!
//! [`TransactionState::valid_previous_states`] is the whole state machine: a transition to a
//! state is legal only from one of these. Every transition in `metadata` checks it, so a bug
//! elsewhere answers an error instead of writing a state Kafka could never reach.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionState {
    /// No transaction open (after InitProducerId, or a completed one with nothing since).
    Empty,
    /// Partitions (or a group's offsets) were added: records may be written.
    Ongoing,
    /// EndTxn(commit) is written; commit markers are being sent.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fencing producer; abort markers are being sent.
    PrepareAbort,
    /// Every commit marker is written.
    CompleteCommit,
    /// Every abort marker is written.
    CompleteAbort,
    /// The transactional id expired; its tombstone is being written.
    Dead,
    /// A newer producer is fencing this one (in memory only: the coordinator immediately turns
    /// it into PrepareAbort with the bumped epoch, which is what gets written).
    PrepareEpochFence,
}

use TransactionState::*;

impl TransactionState {
    pub const ALL: [TransactionState; 8] = [
        Empty,
        Ongoing,
        PrepareCommit,
        PrepareAbort,
        CompleteCommit,
        CompleteAbort,
        Dead,
        PrepareEpochFence,
    ];

    /// The byte stored in `__transaction_state`.
    pub fn id(self) -> i8 {
        match self {
            Empty => 0,
            Ongoing => 1,
            PrepareCommit => 2,
            PrepareAbort => 3,
            CompleteCommit => 4,
            CompleteAbort => 5,
            Dead => 6,
            PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TransactionState> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's name (DescribeTransactions, ListTransactions' state filter).
    pub fn name(self) -> &'static str {
        match self {
            Empty => "Empty",
            Ongoing => "Ongoing",
            PrepareCommit => "PrepareCommit",
            PrepareAbort => "PrepareAbort",
            CompleteCommit => "CompleteCommit",
            CompleteAbort => "CompleteAbort",
            Dead => "Dead",
            PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TransactionState> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The states a transition into `self` may start from. PrepareAbort from Empty and the
    /// Complete states exists for transaction version 2 (KIP-890), where a client unsure of
    /// the server's state may always abort.
    pub fn valid_previous_states(self) -> &'static [TransactionState] {
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[
                Ongoing,
                PrepareEpochFence,
                Empty,
                CompleteCommit,
                CompleteAbort,
            ],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// Whether a transition from `from` into `self` is legal.
    pub fn can_follow(self, from: TransactionState) -> bool {
        self.valid_previous_states().contains(&from)
    }

    /// Whether an idle transactional id in this state may expire
    /// (`transactional.id.expiration.ms`): only with no transaction open.
    pub fn is_expiration_allowed(self) -> bool {
        matches!(self, Empty | CompleteCommit | CompleteAbort)
    }
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_kafkas() {
        let table = [
            (Empty, 0, "Empty", true),
            (Ongoing, 1, "Ongoing", false),
            (PrepareCommit, 2, "PrepareCommit", false),
            (PrepareAbort, 3, "PrepareAbort", false),
            (CompleteCommit, 4, "CompleteCommit", true),
            (CompleteAbort, 5, "CompleteAbort", true),
            (Dead, 6, "Dead", false),
            (PrepareEpochFence, 7, "PrepareEpochFence", false),
        ];
        for (state, id, name, expirable) in table {
            assert_eq!(state.id(), id);
            assert_eq!(TransactionState::from_id(id), Some(state));
            assert_eq!(state.name(), name);
            assert_eq!(state.to_string(), name);
            assert_eq!(TransactionState::from_name(name), Some(state));
            assert_eq!(state.is_expiration_allowed(), expirable, "{state}");
        }
        for id in [8, 9, 127, -1, i8::MIN] {
            assert_eq!(TransactionState::from_id(id), None, "{id}");
        }
        assert_eq!(TransactionState::from_name("ongoing"), None);
        assert_eq!(TransactionState::from_name(""), None);
    }

    /// Every (from, to) pair. Rows are `from`, columns `to` in the order of `ALL`:
    /// Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, Dead,
    /// PrepareEpochFence. Kafka's `TransactionState.validPreviousStates`, transposed.
    #[test]
    fn every_transition_pair() {
        const X: bool = true;
        const O: bool = false;
        #[rustfmt::skip]
        let allowed: [[bool; 8]; 8] = [
            //               Emp Ong PC  PA  CC  CA  Dead PEF
            /* Empty */     [X,  X,  O,  X,  O,  O,  X,   O],
            /* Ongoing */   [O,  X,  X,  X,  O,  O,  O,   X],
            /* PrepCommit */[O,  O,  O,  O,  X,  O,  O,   O],
            /* PrepAbort */ [O,  O,  O,  O,  O,  X,  O,   O],
            /* CompCommit */[X,  X,  O,  X,  O,  O,  X,   O],
            /* CompAbort */ [X,  X,  O,  X,  O,  O,  X,   O],
            /* Dead */      [O,  O,  O,  O,  O,  O,  O,   O],
            /* PrepFence */ [O,  O,  O,  X,  O,  O,  O,   O],
        ];
        let mut checked = 0;
        for (i, from) in TransactionState::ALL.into_iter().enumerate() {
            for (j, to) in TransactionState::ALL.into_iter().enumerate() {
                assert_eq!(to.can_follow(from), allowed[i][j], "{from} -> {to}");
                checked += 1;
            }
        }
        assert_eq!(checked, 64);
    }
}
