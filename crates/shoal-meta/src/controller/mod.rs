//! The controller: validates admin requests against the latest applied image, turns them into
//! record batches and proposes them through Raft.
//!
//! Single writer: every request takes one `tokio::sync::Mutex` for its whole validate → propose
//! → apply cycle, so a request is always validated against an image that includes every earlier
//! request's records (two concurrent creates of one topic: exactly one succeeds). Before
//! validating, the controller confirms it is the Raft leader and that its state machine has
//! applied everything committed (`ensure_linearizable`); a follower answers `NotController`.
//! Planning is pure (see `plan`), so all validation is unit-testable without Raft.
//!
//! A proposal that times out may still commit later; like Kafka's REQUEST_TIMED_OUT the outcome
//! is unknown to the caller.

mod allocate_producer_ids;
mod alter_configs;
mod create_partitions;
mod create_topics;
mod delete_topics;
pub mod plan;
mod register_broker;
mod requests;

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use tokio::sync::{Mutex, watch};
use uuid::Uuid;

pub use allocate_producer_ids::{
    PRODUCER_ID_BLOCK_SIZE, ProducerIdBlock, plan_allocate_producer_ids,
};
pub use alter_configs::plan_alter_configs;
pub use create_partitions::plan_create_partitions;
pub use create_topics::plan_create_topics;
pub use delete_topics::plan_delete_topics;
use plan::{MAX_ITEMS_PER_REQUEST, MAX_RECORDS_PER_ENTRY, Planned};
pub use register_broker::plan_register_broker;
pub use requests::{
    AlterConfigOp, AlterConfigOpType, AlterTopicConfigs, BrokerRegistrationRequest,
    ControllerResults, CreatePartitions, CreateTopic, CreatedTopic, RegisteredBroker, TopicRef,
};

use crate::broker_defaults::BrokerDefaults;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::raft::types::{MetaRaft, NodeId, to_kafka_node_id};
use crate::records::MetadataRecord;

/// The active controller's request handler. Obtain it from `MetaNode::controller()`.
pub struct Controller {
    raft: MetaRaft,
    images: watch::Receiver<Arc<MetadataImage>>,
    defaults: BrokerDefaults,
    request_timeout_ms: u64,
    /// Serializes validate → propose → apply (see the module docs).
    write_lock: Mutex<()>,
}

impl Controller {
    pub(crate) fn new(
        raft: MetaRaft,
        images: watch::Receiver<Arc<MetadataImage>>,
        defaults: BrokerDefaults,
        request_timeout_ms: u64,
    ) -> Self {
        Controller {
            raft,
            images,
            defaults,
            request_timeout_ms,
            write_lock: Mutex::new(()),
        }
    }

    /// The broker-level defaults topics are created with.
    pub fn broker_defaults(&self) -> &BrokerDefaults {
        &self.defaults
    }

    /// CreateTopics: one result per input topic, in order.
    pub async fn create_topics(
        &self,
        topics: Vec<CreateTopic>,
        validate_only: bool,
    ) -> ControllerResults<CreatedTopic> {
        let defaults = &self.defaults;
        self.execute(topics.len(), validate_only, |image| {
            plan_create_topics(image, defaults, topics, &mut Uuid::new_v4)
        })
        .await
    }

    /// DeleteTopics by name or id; the result is the deleted topic's id.
    pub async fn delete_topics(&self, topics: Vec<TopicRef>) -> ControllerResults<Uuid> {
        self.execute(topics.len(), false, |image| {
            plan_delete_topics(image, topics)
        })
        .await
    }

    /// CreatePartitions; the result is the topic's new partition count.
    pub async fn create_partitions(
        &self,
        topics: Vec<CreatePartitions>,
        validate_only: bool,
    ) -> ControllerResults<i32> {
        self.execute(topics.len(), validate_only, |image| {
            plan_create_partitions(image, topics)
        })
        .await
    }

    /// IncrementalAlterConfigs for topics; one result per resource, all-or-nothing per resource.
    pub async fn incremental_alter_configs(
        &self,
        resources: Vec<AlterTopicConfigs>,
        validate_only: bool,
    ) -> ControllerResults<()> {
        let defaults = &self.defaults;
        self.execute(resources.len(), validate_only, |image| {
            plan_alter_configs(image, defaults, resources)
        })
        .await
    }

    /// Reserves a block of producer ids for a broker's idempotent producers.
    pub async fn allocate_producer_ids(&self) -> Result<ProducerIdBlock, ControllerError> {
        let outcome = self
            .execute(1, false, |image| vec![plan_allocate_producer_ids(image)])
            .await;
        outcome
            .results
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(ControllerError::Internal("no result".to_string())))
    }

    /// Registers a broker (idempotent for the same incarnation id) and returns its epoch.
    pub async fn register_broker(
        &self,
        request: BrokerRegistrationRequest,
    ) -> Result<RegisteredBroker, ControllerError> {
        let outcome = self
            .execute(1, false, |image| vec![plan_register_broker(image, request)])
            .await;
        let log_index = outcome.log_index;
        let result = outcome
            .results
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(ControllerError::Internal("no result".to_string())))?;
        Ok(RegisteredBroker {
            broker_epoch: result,
            // An idempotent retry proposes nothing; the registration is already applied.
            log_index: log_index.unwrap_or_else(|| self.images.borrow().last_applied_index),
        })
    }

    /// Validates with `plan` against the latest image and proposes the records of the items
    /// that passed, in entries of at most `MAX_RECORDS_PER_ENTRY` records.
    async fn execute<T>(
        &self,
        count: usize,
        validate_only: bool,
        plan: impl FnOnce(&MetadataImage) -> Vec<Planned<T>>,
    ) -> ControllerResults<T> {
        if count > MAX_ITEMS_PER_REQUEST {
            return ControllerResults::all_failed(
                count,
                ControllerError::InvalidRequest(format!(
                    "A request may name at most {MAX_ITEMS_PER_REQUEST} resources, got {count}."
                )),
            );
        }
        let _writer = self.write_lock.lock().await;
        let image = match self.caught_up_image().await {
            Ok(image) => image,
            Err(e) => return ControllerResults::all_failed(count, e),
        };
        let planned = plan(&image);
        debug_assert_eq!(planned.len(), count, "one planned result per item");
        if validate_only {
            return ControllerResults {
                results: planned.into_iter().map(|p| p.map(|(v, _)| v)).collect(),
                log_index: None,
            };
        }
        self.propose_planned(planned).await
    }

    async fn propose_planned<T>(&self, planned: Vec<Planned<T>>) -> ControllerResults<T> {
        // Group items into entries; an item's records are never split across entries.
        let mut results: Vec<Option<Result<T, ControllerError>>> = Vec::new();
        let mut values: Vec<Option<T>> = Vec::new();
        let mut entries: Vec<(Vec<usize>, Vec<MetadataRecord>)> = Vec::new();
        for (index, item) in planned.into_iter().enumerate() {
            match item {
                Err(e) => {
                    results.push(Some(Err(e)));
                    values.push(None);
                }
                Ok((value, records)) if records.is_empty() => {
                    results.push(Some(Ok(value)));
                    values.push(None);
                }
                Ok((value, records)) => {
                    results.push(None);
                    values.push(Some(value));
                    let fits = entries
                        .last()
                        .is_some_and(|(_, r)| r.len() + records.len() <= MAX_RECORDS_PER_ENTRY);
                    if !fits {
                        entries.push((Vec::new(), Vec::new()));
                    }
                    if let Some((items, batch)) = entries.last_mut() {
                        items.push(index);
                        batch.extend(records);
                    }
                }
            }
        }

        let mut log_index = None;
        let mut failure: Option<ControllerError> = None;
        for (items, batch) in entries {
            let outcome = match &failure {
                // After a failure nothing more is proposed: the caller must retry anyway.
                Some(e) => Err(e.clone()),
                None => self.propose(batch).await,
            };
            match outcome {
                Ok(index) => log_index = Some(index),
                Err(e) => failure = Some(e),
            }
            for i in items {
                results[i] = Some(match &failure {
                    Some(e) => Err(e.clone()),
                    None => values[i]
                        .take()
                        .ok_or_else(|| ControllerError::Internal("missing value".to_string())),
                });
            }
        }
        ControllerResults {
            results: results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(ControllerError::Internal("no result".into()))))
                .collect(),
            log_index,
        }
    }

    /// Confirms leadership and waits until everything committed is applied, then returns the
    /// image to validate against.
    async fn caught_up_image(&self) -> Result<Arc<MetadataImage>, ControllerError> {
        let timeout = Duration::from_millis(self.request_timeout_ms);
        match tokio::time::timeout(timeout, self.raft.ensure_linearizable()).await {
            Err(_) => Err(ControllerError::RequestTimedOut),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                Err(not_controller(f.leader_id))
            }
            Ok(Err(RaftError::APIError(e))) => {
                tracing::warn!(error = %e, "controller could not confirm leadership");
                Err(ControllerError::RequestTimedOut)
            }
            Ok(Err(RaftError::Fatal(e))) => Err(ControllerError::Internal(format!(
                "metadata quorum is not running: {e}"
            ))),
            Ok(Ok(_)) => Ok(self.images.borrow().clone()),
        }
    }

    /// Proposes one entry and waits until it is committed and applied; returns its log index.
    async fn propose(&self, batch: Vec<MetadataRecord>) -> Result<u64, ControllerError> {
        debug_assert!(!batch.is_empty() && batch.len() <= MAX_RECORDS_PER_ENTRY);
        let timeout = Duration::from_millis(self.request_timeout_ms);
        match tokio::time::timeout(timeout, self.raft.client_write(batch)).await {
            Err(_) => Err(ControllerError::RequestTimedOut),
            Ok(Ok(response)) => {
                debug_assert_eq!(response.data.log_index, response.log_id.index);
                Ok(response.log_id.index)
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(not_controller(f.leader_id))
            }
            Ok(Err(RaftError::APIError(e))) => Err(ControllerError::Internal(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(ControllerError::Internal(format!(
                "metadata quorum is not running: {e}"
            ))),
        }
    }
}

fn not_controller(leader: Option<NodeId>) -> ControllerError {
    ControllerError::NotController {
        leader_hint: leader.and_then(to_kafka_node_id),
    }
}
