//! Typed errors of the metadata layer.
//!
//! [`ControllerError`] is what an admin request can fail with; each variant maps 1:1 to a Kafka
//! error code the broker sends back, and its message goes to the client verbatim, so messages are
//! written for humans. [`MetaError`] is what starting or running the metadata node can fail with
//! (disk, Raft, configuration); those are for operators, not Kafka clients.

use std::path::PathBuf;

/// Why an admin request (CreateTopics, DeleteTopics, ...) was refused.
///
/// The Kafka error each variant maps to is named in its doc.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ControllerError {
    /// TOPIC_ALREADY_EXISTS (36)
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    /// UNKNOWN_TOPIC_OR_PARTITION (3)
    #[error("This server does not host this topic-partition: {0}")]
    UnknownTopicOrPartition(String),
    /// UNKNOWN_TOPIC_ID (100)
    #[error("This server does not host this topic ID: {0}")]
    UnknownTopicId(uuid::Uuid),
    /// INVALID_TOPIC_EXCEPTION (17)
    #[error("{0}")]
    InvalidTopic(String),
    /// INVALID_PARTITIONS (37)
    #[error("{0}")]
    InvalidPartitions(String),
    /// INVALID_REPLICATION_FACTOR (38)
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// INVALID_REPLICA_ASSIGNMENT (39)
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// INVALID_CONFIG (40)
    #[error("{0}")]
    InvalidConfig(String),
    /// INVALID_REQUEST (42)
    #[error("{0}")]
    InvalidRequest(String),
    /// POLICY_VIOLATION (44): a configured bound (`max.broker.partitions`) refuses the request.
    #[error("{0}")]
    PolicyViolation(String),
    /// NOT_CONTROLLER (41); `leader_hint` is the node id of the current Raft leader if known.
    #[error("This node is not the active controller (leader hint: {leader_hint:?}).")]
    NotController { leader_hint: Option<i32> },
    /// REQUEST_TIMED_OUT (7). The change may still commit later: like Kafka, a timeout is an
    /// unknown outcome, not a failure.
    #[error("The request timed out before the metadata change was committed.")]
    RequestTimedOut,
    /// ELECTION_NOT_NEEDED (84): the partition already has the leader the election would pick.
    #[error("{0}")]
    ElectionNotNeeded(String),
    /// PREFERRED_LEADER_NOT_AVAILABLE (80): the preferred replica is fenced or out of the ISR.
    #[error("{0}")]
    PreferredLeaderNotAvailable(String),
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE (83): no live replica can lead.
    #[error("{0}")]
    EligibleLeadersNotAvailable(String),
    /// RESOURCE_NOT_FOUND (91), e.g. deleting a SCRAM credential the user does not have.
    #[error("{0}")]
    ResourceNotFound(String),
    /// UNACCEPTABLE_CREDENTIAL (93): a SCRAM credential Kafka would not store.
    #[error("{0}")]
    UnacceptableCredential(String),
    /// INVALID_UPDATE_VERSION (95): a feature level that cannot be finalized (unknown feature,
    /// a downgrade, a level some registered broker does not support).
    #[error("{0}")]
    InvalidUpdateVersion(String),
    /// BROKER_ID_NOT_REGISTERED (102): unregistering a broker id the cluster does not know.
    #[error("{0}")]
    BrokerIdNotRegistered(String),
    /// NO_REASSIGNMENT_IN_PROGRESS (85): cancelling a move of a partition that is not moving.
    #[error("{0}")]
    NoReassignmentInProgress(String),
    /// UNSUPPORTED_VERSION (35): the cluster's `metadata.version` is too low for the request.
    #[error("{0}")]
    UnsupportedVersion(String),
    /// UNKNOWN_SERVER_ERROR (-1)
    #[error("Internal controller error: {0}")]
    Internal(String),
}

/// Why a broker registration or heartbeat was refused (the broker ↔ controller RPCs; these are
/// not Kafka client requests, but the Kafka error each maps to is named for logs and tools).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum BrokerError {
    /// STALE_BROKER_EPOCH (77): the heartbeat comes from another incarnation of the broker than
    /// the registered one (an older process, or one fenced by a newer registration). The broker
    /// must stop using `broker_epoch` and register again.
    #[error(
        "Broker {broker_id} sent epoch {broker_epoch}, but its current registration has epoch \
         {current_epoch}; register again."
    )]
    StaleBrokerEpoch {
        broker_id: i32,
        broker_epoch: i64,
        current_epoch: i64,
    },
    /// DUPLICATE_BROKER_REGISTRATION (101): another incarnation with this broker id is alive
    /// (heartbeated within `broker.session.timeout.ms`).
    #[error(
        "Another incarnation of broker {broker_id} is registered and alive; a broker id may be \
         registered by one process at a time (retry after its session times out)."
    )]
    DuplicateBrokerRegistration { broker_id: i32 },
    /// BROKER_ID_NOT_REGISTERED (102)
    #[error("Broker {broker_id} is not registered; register before heartbeating.")]
    BrokerIdNotRegistered { broker_id: i32 },
    /// FENCED_LEADER_EPOCH (74): an AlterPartition from a leader epoch that is no longer the
    /// partition's (the sender was replaced as leader, or has not seen its own election).
    #[error(
        "Partition {partition} of topic {topic_id} is at leader epoch {current_epoch}, the \
         request at {leader_epoch}."
    )]
    FencedLeaderEpoch {
        topic_id: uuid::Uuid,
        partition: i32,
        leader_epoch: i32,
        current_epoch: i32,
    },
    /// INVALID_UPDATE_VERSION (95): an AlterPartition based on another partition epoch than
    /// the current one (an ISR change the sender has not seen yet committed in between).
    #[error(
        "Partition {partition} of topic {topic_id} is at partition epoch {current_epoch}, the \
         request at {partition_epoch}."
    )]
    InvalidUpdateVersion {
        topic_id: uuid::Uuid,
        partition: i32,
        partition_epoch: i32,
        current_epoch: i32,
    },
    /// INELIGIBLE_REPLICA (107): a proposed ISR adds a replica that may not be in sync: not
    /// assigned, not registered, fenced, or registered with another broker epoch than the one
    /// the leader saw fetching (KIP-903: a restarted replica must catch up anew).
    #[error("Broker {broker_id} cannot join the ISR: {reason}")]
    IneligibleReplica { broker_id: i32, reason: String },
    /// Everything an admin request can also fail with (NotController, RequestTimedOut,
    /// InvalidRequest, ...).
    #[error(transparent)]
    Controller(#[from] ControllerError),
}

impl BrokerError {
    /// As a [`ControllerError`], for callers of the older `register_broker` API.
    pub fn into_controller_error(self) -> ControllerError {
        match self {
            BrokerError::Controller(e) => e,
            other => ControllerError::InvalidRequest(other.to_string()),
        }
    }
}

/// Why the metadata node could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata store (sled) error: {0}")]
    Sled(#[from] sled::Error),
    #[error(
        "cluster id mismatch: {path} says this node belongs to cluster '{stored}', \
         but the configured cluster id is '{configured}'; refusing to start"
    )]
    ClusterIdMismatch {
        path: PathBuf,
        stored: String,
        configured: String,
    },
    #[error(
        "node id mismatch: {path} was written by node {stored}, but this node is configured \
         as node {configured}; refusing to start"
    )]
    NodeIdMismatch {
        path: PathBuf,
        stored: i32,
        configured: i32,
    },
    #[error(
        "voter set mismatch: the metadata log in this directory says the quorum's voters are \
         {stored:?}, but controller.quorum.voters configures {configured:?}; refusing to start \
         (changing voters needs a membership change, not a config edit)"
    )]
    VoterSetMismatch {
        stored: Vec<i32>,
        configured: Vec<i32>,
    },
    #[error("cannot listen on controller address {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt {path}: {reason}")]
    CorruptProperties { path: PathBuf, reason: String },
    #[error("metadata store is corrupt: {0}")]
    CorruptStore(String),
    /// A stored value this binary cannot read: a format version written by a newer Shoal, or
    /// damage. Start-up stops before anything is written.
    #[error(
        "cannot read the metadata store ({location}): {source}; refusing to start, nothing was \
         changed on disk"
    )]
    UnreadableStore {
        location: String,
        #[source]
        source: crate::format::FormatError,
    },
    /// The Raft store of a node whose quorum was initialized before is missing, empty or
    /// unreadable: starting would bootstrap a new, empty quorum over the cluster's metadata.
    #[error(
        "the metadata store {path} is damaged: {reason}. This node's quorum was initialized \
         before ({marker} records it), so it will not start a new, empty quorum in its place; \
         refusing to start. Restore {path} from a backup taken while the node was stopped. Do \
         not delete it to get the node going: a voter with an empty store must rejoin as a \
         replacement voter, or the metadata is lost"
    )]
    DamagedStore {
        path: PathBuf,
        marker: PathBuf,
        reason: String,
    },
    #[error("invalid metadata configuration: {0}")]
    Config(String),
    #[error("raft error: {0}")]
    Raft(String),
    #[error("timed out after {timeout_ms} ms waiting for {what}")]
    Timeout { what: String, timeout_ms: u64 },
    #[error("the metadata node has shut down")]
    ShutDown,
}
