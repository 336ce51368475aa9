//! The Kafka error codes group APIs answer with.

/// A group API outcome, by Kafka's name; [`GroupError::code`] is the wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupError {
    None,
    UnknownServerError,
    UnknownTopicOrPartition,
    RequestTimedOut,
    OffsetMetadataTooLarge,
    CoordinatorLoadInProgress,
    CoordinatorNotAvailable,
    NotCoordinator,
    IllegalGeneration,
    InconsistentGroupProtocol,
    InvalidGroupId,
    UnknownMemberId,
    InvalidSessionTimeout,
    InvalidRequest,
    RebalanceInProgress,
    NonEmptyGroup,
    GroupIdNotFound,
    MemberIdRequired,
    GroupMaxSizeReached,
    FencedInstanceId,
    GroupSubscribedToTopic,
    /// TxnOffsetCommit: more pending partitions than a transaction may hold.
    InvalidCommitOffsetSize,
    /// TxnOffsetCommit: the producer's epoch is older than the partition has seen.
    InvalidProducerEpoch,
    /// TxnOffsetCommit: the offsets partition is not in the producer's open transaction
    /// (KIP-890: the write would open one the coordinator does not know).
    InvalidTxnState,
    /// OffsetFetch with `require_stable`: a transaction has an offset of the partition pending.
    UnstableOffsetCommit,
    /// A request version the group's protocol does not allow (a KIP-848 member's OffsetCommit
    /// below v9).
    UnsupportedVersion,
    /// KIP-848: the member's epoch is not the coordinator's; it must give up its partitions
    /// and rejoin with epoch 0.
    FencedMemberEpoch,
    /// KIP-848: a static member's instance id is still held by a member that did not leave.
    UnreleasedInstanceId,
    /// KIP-848: a `server_assignor` the coordinator does not have.
    UnsupportedAssignor,
    /// KIP-848: an offset commit with an older member epoch than the member's.
    StaleMemberEpoch,
    /// KIP-848: a `SubscribedTopicRegex` that does not compile (or is out of bounds).
    InvalidRegularExpression,
}

impl GroupError {
    pub fn code(self) -> i16 {
        match self {
            GroupError::None => 0,
            GroupError::UnknownServerError => -1,
            GroupError::UnknownTopicOrPartition => 3,
            GroupError::RequestTimedOut => 7,
            GroupError::OffsetMetadataTooLarge => 12,
            GroupError::CoordinatorLoadInProgress => 14,
            GroupError::CoordinatorNotAvailable => 15,
            GroupError::NotCoordinator => 16,
            GroupError::IllegalGeneration => 22,
            GroupError::InconsistentGroupProtocol => 23,
            GroupError::InvalidGroupId => 24,
            GroupError::UnknownMemberId => 25,
            GroupError::InvalidSessionTimeout => 26,
            GroupError::InvalidRequest => 42,
            GroupError::RebalanceInProgress => 27,
            GroupError::NonEmptyGroup => 68,
            GroupError::GroupIdNotFound => 69,
            GroupError::MemberIdRequired => 79,
            GroupError::GroupMaxSizeReached => 81,
            GroupError::FencedInstanceId => 82,
            GroupError::GroupSubscribedToTopic => 86,
            GroupError::InvalidCommitOffsetSize => 28,
            GroupError::InvalidProducerEpoch => 47,
            GroupError::UnstableOffsetCommit => 88,
            GroupError::InvalidTxnState => 48,
            GroupError::UnsupportedVersion => 35,
            GroupError::FencedMemberEpoch => 110,
            GroupError::UnreleasedInstanceId => 111,
            GroupError::UnsupportedAssignor => 112,
            GroupError::StaleMemberEpoch => 113,
            GroupError::InvalidRegularExpression => 128,
        }
    }

    pub fn is_ok(self) -> bool {
        self == GroupError::None
    }
}

/// Why writing to `__consumer_offsets` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("this broker no longer leads the offsets partition")]
    NotLeader,
    #[error("not enough in-sync replicas for the offsets partition")]
    NotEnoughReplicas,
    #[error("the write was not replicated in time")]
    TimedOut,
    #[error("the producer's epoch is older than the one the partition has seen")]
    InvalidProducerEpoch,
    #[error("the transactional write was not verified with the transaction coordinator")]
    InvalidTxnState,
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    /// Kafka's `appendGroupMetadataErrorToResponseError`.
    pub fn to_group_error(&self) -> GroupError {
        match self {
            StorageError::NotLeader => GroupError::NotCoordinator,
            StorageError::NotEnoughReplicas | StorageError::TimedOut => {
                GroupError::CoordinatorNotAvailable
            }
            StorageError::InvalidProducerEpoch => GroupError::InvalidProducerEpoch,
            StorageError::InvalidTxnState => GroupError::InvalidTxnState,
            StorageError::Other(_) => GroupError::UnknownServerError,
        }
    }
}
