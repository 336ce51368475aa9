//! The controller's request and response types (Kafka's admin requests, without the wire).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::client::controller_lease::LeaseTerms;
use crate::error::ControllerError;
use crate::records::{Endpoint, SupportedFeature};

/// One topic of a CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateTopic {
    pub name: String,
    /// `None` (or Kafka's `-1`) = broker default `num.partitions`.
    pub num_partitions: Option<i32>,
    /// `None` (or Kafka's `-1`) = broker default `default.replication.factor`.
    pub replication_factor: Option<i16>,
    /// Manual assignment: partition id → replicas (first = preferred leader). Partition ids must
    /// be `0..n`. Exclusive with `num_partitions` / `replication_factor`; empty = not given.
    pub assignments: Option<BTreeMap<i32, Vec<i32>>>,
    /// Topic config overrides (Kafka names).
    pub configs: BTreeMap<String, String>,
}

/// A topic that was created (or, with `validate_only`, would be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopic {
    /// With `validate_only`, the id the topic would have had; nothing is registered.
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// A topic named by name or by id (DeleteTopics v6+ accepts both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// One topic of a CreatePartitions request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitions {
    pub topic: String,
    /// The total partition count after the change; must be larger than the current count.
    pub new_total_count: i32,
    /// Replicas of each *new* partition, in order; `None` = placed by the controller.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// Which leader an ElectLeaders request asks for (Kafka's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    /// The first replica, if it is unfenced and in the ISR (a clean election).
    Preferred,
    /// For a partition without a leader: an in-sync replica if one is live, else any live
    /// replica (records it lacks are lost: the operator chose availability).
    Unclean,
}

/// IncrementalAlterConfigs operation types (Kafka's `AlterConfigOp.OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlterConfigOpType {
    Set,
    Delete,
    /// Add values to a list config (e.g. `cleanup.policy`).
    Append,
    /// Remove values from a list config.
    Subtract,
}

/// One config change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterConfigOp {
    pub name: String,
    pub op: AlterConfigOpType,
    pub value: Option<String>,
}

/// The config changes for one topic; applied all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterTopicConfigs {
    pub topic: String,
    pub ops: Vec<AlterConfigOp>,
}

/// The dynamic config changes for one broker (`Some(id)`) or the cluster default (`None`);
/// applied all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterBrokerConfigs {
    pub broker_id: Option<i32>,
    pub ops: Vec<AlterConfigOp>,
}

/// The config overrides of one group (KIP-848 group configs); applied all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterGroupConfigs {
    pub group: String,
    pub ops: Vec<AlterConfigOp>,
}

/// AlterClientQuotas for one entity: applied all or nothing (Kafka answers per entity). The
/// entity is as sent, `(entity_type, name)` with a null name for the default; the planner
/// checks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientQuotaAlteration {
    pub entity: Vec<(String, Option<String>)>,
    pub ops: Vec<ClientQuotaOp>,
}

/// One quota change: set `key` to `value`, or remove it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientQuotaOp {
    pub key: String,
    pub value: f64,
    pub remove: bool,
}

/// AlterUserScramCredentials for one user: applied all or nothing (Kafka answers per user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserScramAlteration {
    pub user: String,
    pub deletions: Vec<shoal_sasl::ScramMechanism>,
    /// Credentials derived from the client's salted passwords (never a password).
    pub upsertions: Vec<shoal_sasl::ScramCredential>,
}

/// UpdateFeatures for one feature: finalize `name` at `level` (upgrades only; see
/// `controller::update_features`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureUpdate {
    pub name: String,
    pub level: i16,
    /// The request asked for a downgrade (v0 `allow_downgrade`, v1+ upgrade type 2 or 3).
    pub downgrade: bool,
}

/// AlterPartitionReassignments for one partition: move it to `replicas` (the first is the
/// preferred leader), or cancel the move in progress (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Option<Vec<i32>>,
}

/// A broker announcing itself to the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistrationRequest {
    pub broker_id: i32,
    /// Random per broker process start; the same id again is a retry of the same registration.
    pub incarnation_id: Uuid,
    pub listeners: Vec<Endpoint>,
    pub rack: Option<String>,
    /// The features the broker's binary supports (`crate::features::supported_features`);
    /// `None` from brokers of releases before feature levels (they support
    /// `metadata.version` 1 only).
    #[serde(default)]
    pub supported_features: Option<Vec<SupportedFeature>>,
    /// The directory ids of its log directories (`directory.id` in meta.properties); empty
    /// from brokers of releases before them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_dirs: Vec<Uuid>,
}

/// The outcome of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredBroker {
    pub broker_epoch: i64,
    /// The Raft log index at which the registration is in the image.
    pub log_index: u64,
}

/// Per-item results of a batch admin request, in request order.
#[derive(Debug, Serialize, Deserialize)]
pub struct ControllerResults<T> {
    pub results: Vec<Result<T, ControllerError>>,
    /// Highest Raft log index this call committed at; `None` if nothing was proposed
    /// (validate-only, or every item failed). Pass it to `MetaNode::wait_for_applied`.
    pub log_index: Option<u64>,
}

impl<T> ControllerResults<T> {
    /// Every item failed with the same error (e.g. not the controller).
    pub fn all_failed(count: usize, error: ControllerError) -> Self {
        ControllerResults {
            results: (0..count).map(|_| Err(error.clone())).collect(),
            log_index: None,
        }
    }
}

/// At most this many offline replicas ride on one heartbeat; a broker with more reports them
/// over successive heartbeats, and the controller ignores any beyond it.
pub const MAX_OFFLINE_REPLICAS_PER_HEARTBEAT: usize = 10_000;

/// A replica a broker is assigned but cannot serve: its log cannot be opened there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaRef {
    pub topic_id: Uuid,
    pub partition: i32,
}

/// At most this many replica sizes ride on one heartbeat; a broker leading more reports them over
/// successive heartbeats (a window that moves on each time), and the controller ignores any
/// beyond it.
pub const MAX_REPLICA_SIZES_PER_HEARTBEAT: usize = 1_000;

/// The size of a partition this broker leads: what the continuous balancer weighs moves by
/// (`controller::balancer`). The leader's log is the partition's reference size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaSize {
    pub topic_id: Uuid,
    pub partition: i32,
    pub size_bytes: u64,
}

/// A broker's periodic "I am alive" (Kafka's BrokerHeartbeat), sent every
/// `broker.heartbeat.interval.ms` to the active controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeat {
    pub broker_id: i32,
    /// The epoch of the registration this process made; another one is a stale incarnation.
    pub broker_epoch: i64,
    /// The highest metadata log index the broker has applied. A fenced broker is unfenced once
    /// this reaches its registration's index.
    pub caught_up_metadata_offset: u64,
    /// Controlled shutdown (Kafka's `wantShutDown`): fence the broker now, moving its
    /// leaderships away, and end its session so its next incarnation registers at once.
    #[serde(default)]
    pub want_shutdown: bool,
    /// Replicas whose log cannot be opened here (Kafka's `OfflineLogDirs`, per partition): the
    /// controller moves their leadership and ISR membership to replicas that can serve.
    /// Omitted when empty: the JSON stays what older controllers read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offline_replicas: Vec<ReplicaRef>,
    /// Sizes of partitions it leads, a window of at most [`MAX_REPLICA_SIZES_PER_HEARTBEAT`]
    /// per heartbeat. Omitted when empty, like `offline_replicas`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_sizes: Vec<ReplicaSize>,
}

/// The controller's answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Whether the broker is fenced *after* this heartbeat (a fenced broker leads nothing and is
    /// not offered to clients).
    pub fenced: bool,
    /// The log index of the UnfenceBroker this heartbeat caused, if any; wait for it with
    /// `MetaNode::wait_for_applied` before acting as unfenced.
    pub log_index: Option<u64>,
    /// With an "unfenced" answer: the lease it grants (see `client::controller_lease`).
    /// Omitted otherwise; older controllers never send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseTerms>,
}

/// One member of a proposed ISR, with the broker epoch the leader saw it fetch with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrMember {
    pub broker_id: i32,
    /// The epoch of the registration the replica fetched under; `None` if the leader does not
    /// know it (the leader itself, or a member that stays). Members being *added* must carry
    /// their current epoch, so a replica that restarted since the leader judged it caught up is
    /// not let in on the old incarnation's progress (KIP-903).
    pub broker_epoch: Option<i64>,
}

/// Kafka's AlterPartition: a partition leader proposes a new ISR. The leader never changes the
/// ISR itself; it applies the controller's answer (or the committed record) instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    /// The leader sending the request, and the epoch of its registration.
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub topic_id: Uuid,
    pub partition: i32,
    /// The leader epoch the sender leads at.
    pub leader_epoch: i32,
    /// The partition epoch the proposal is based on; any other is refused, so two proposals
    /// made from the same state cannot both apply.
    pub partition_epoch: i32,
    pub new_isr: Vec<IsrMember>,
}

/// A partition's state after an AlterPartition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlteredPartition {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
    /// The Raft index the change committed at; `None` if the ISR was already the proposed one.
    pub log_index: Option<u64>,
}
