//! The controller's request and response types (Kafka's admin requests, without the wire).

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::error::ControllerError;
use crate::records::Endpoint;

/// One topic of a CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// With `validate_only`, the id the topic would have had; nothing is registered.
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// A topic named by name or by id (DeleteTopics v6+ accepts both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// One topic of a CreatePartitions request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePartitions {
    pub topic: String,
    /// The total partition count after the change; must be larger than the current count.
    pub new_total_count: i32,
    /// Replicas of each *new* partition, in order; `None` = placed by the controller.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// IncrementalAlterConfigs operation types (Kafka's `AlterConfigOp.OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterConfigOpType {
    Set,
    Delete,
    /// Add values to a list config (e.g. `cleanup.policy`).
    Append,
    /// Remove values from a list config.
    Subtract,
}

/// One config change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigOp {
    pub name: String,
    pub op: AlterConfigOpType,
    pub value: Option<String>,
}

/// The config changes for one topic; applied all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterTopicConfigs {
    pub topic: String,
    pub ops: Vec<AlterConfigOp>,
}

/// A broker announcing itself to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistrationRequest {
    pub broker_id: i32,
    /// Random per broker process start; the same id again is a retry of the same registration.
    pub incarnation_id: Uuid,
    pub listeners: Vec<Endpoint>,
    pub rack: Option<String>,
}

/// The outcome of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisteredBroker {
    pub broker_epoch: i64,
    /// The Raft log index at which the registration is in the image.
    pub log_index: u64,
}

/// Per-item results of a batch admin request, in request order.
#[derive(Debug)]
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
