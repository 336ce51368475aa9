//! Checking the leader epoch a client or follower believes in (KIP-320, safety rule 5).
//!
//! Every request that names a `current_leader_epoch` is compared with the replica's own: an older
//! epoch means the sender is behind a leadership change (FENCED_LEADER_EPOCH: refresh metadata);
//! a newer one means this replica has not learned of the change yet (UNKNOWN_LEADER_EPOCH: retry).
//! -1 means "no epoch given" and skips the check, as in Kafka.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochCheck {
    Current,
    /// The requester's epoch is older than this replica's.
    Fenced,
    /// The requester's epoch is newer than this replica knows.
    Unknown,
}

pub fn check_leader_epoch(requested_epoch: i32, local_epoch: i32) -> EpochCheck {
    if requested_epoch < 0 || requested_epoch == local_epoch {
        EpochCheck::Current
    } else if requested_epoch < local_epoch {
        EpochCheck::Fenced
    } else {
        EpochCheck::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs() {
        assert_eq!(check_leader_epoch(-1, 7), EpochCheck::Current);
        assert_eq!(check_leader_epoch(7, 7), EpochCheck::Current);
        assert_eq!(check_leader_epoch(6, 7), EpochCheck::Fenced);
        assert_eq!(check_leader_epoch(8, 7), EpochCheck::Unknown);
    }
}
