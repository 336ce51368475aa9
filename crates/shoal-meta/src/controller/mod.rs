//! The controller: validates admin requests against the latest applied image, turns them into
//! record batches and proposes them through Raft.
//!
//! Single writer: every request takes one `tokio::sync::Mutex` for its whole validate → propose
//! → apply cycle, so a request is always validated against an image that includes every earlier
//! request's records (two concurrent creates of one topic: exactly one succeeds). Before
//! validating, the controller confirms it is the Raft leader and that its state machine has
//! applied everything committed (`ensure_linearizable`). Planning is pure (see `plan`), so all
//! validation is unit-testable without Raft.
//!
//! This is the *active* controller's side, and it runs on voters only. Callers never use it
//! directly: they go through [`crate::client::ControllerClient`], which runs a request here
//! when this node leads and otherwise forwards it to the leader (`ControllerService`), so a
//! request works from any node. A `*_local` method called on a node that does not lead answers
//! NotController with its leader hint.
//!
//! Broker liveness (Kafka's BrokerHeartbeat and `broker.session.timeout.ms`): the active
//! controller keeps last-heartbeat times in memory (`liveness`); a periodic check
//! ([`Controller::check_sessions`]) fences silent brokers and moves their partitions
//! (`fence_broker`), and a heartbeat from a caught-up fenced broker unfences it.
//!
//! A proposal that times out may still commit later; like Kafka's REQUEST_TIMED_OUT the outcome
//! is unknown to the caller.

pub mod acls;
mod allocate_producer_ids;
mod alter_broker_configs;
mod alter_client_quotas;
mod alter_configs;
mod alter_group_configs;
pub mod alter_partition;
pub mod balancer;
mod create_partitions;
mod create_topics;
mod delete_topics;
mod elect_leaders;
pub mod fence_broker;
pub mod internal_topic_growth;
pub mod liveness;
pub mod offline_replicas;
pub mod partition_limit;
pub mod plan;
pub mod preferred_leader;
pub mod reassignment;
mod register_broker;
pub(crate) mod requests;
pub mod scram;
#[cfg(test)]
mod test_images;
pub mod unregister_broker;
pub mod update_features;
pub mod voter_changes;
pub mod voter_directories;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use tokio::sync::{Mutex, watch};
use uuid::Uuid;

pub use acls::{plan_create_acls, plan_delete_acls};
pub use allocate_producer_ids::{
    PRODUCER_ID_BLOCK_SIZE, ProducerIdBlock, plan_allocate_producer_ids,
};
pub use alter_broker_configs::plan_alter_broker_configs;
pub use alter_client_quotas::{parse_entity as parse_quota_entity, plan_alter_client_quotas};
pub use alter_configs::plan_alter_configs;
pub use alter_group_configs::plan_alter_group_configs;
pub use alter_partition::plan_alter_partition;
pub use create_partitions::plan_create_partitions;
pub use create_topics::plan_create_topics;
pub use delete_topics::plan_delete_topics;
pub use elect_leaders::plan_elect_leaders;
pub use fence_broker::{UncleanPolicy, never_unclean, plan_fence_broker, plan_unfence_broker};
pub use liveness::BrokerLiveness;
pub use offline_replicas::plan_offline_replicas;
use plan::{MAX_ITEMS_PER_REQUEST, MAX_RECORDS_PER_ENTRY, Planned};
pub use preferred_leader::plan_preferred_leader_election;
pub use reassignment::{plan_alter_reassignments, plan_complete_reassignments};
pub use register_broker::{check_not_duplicate, plan_register_broker};
pub use requests::{
    AlterBrokerConfigs, AlterConfigOp, AlterConfigOpType, AlterGroupConfigs, AlterPartitionRequest,
    AlterTopicConfigs, AlteredPartition, BrokerHeartbeat, BrokerRegistrationRequest,
    ClientQuotaAlteration, ClientQuotaOp, ControllerResults, CreatePartitions, CreateTopic,
    CreatedTopic, ElectionType, FeatureUpdate, HeartbeatReply, IsrMember,
    MAX_OFFLINE_REPLICAS_PER_HEARTBEAT, MAX_REPLICA_SIZES_PER_HEARTBEAT, PartitionReassignment,
    RegisteredBroker, ReplicaRef, ReplicaSize, TopicRef, UserScramAlteration,
};
pub use scram::plan_alter_user_scram_credentials;
pub use unregister_broker::plan_unregister_broker;

use crate::broker_defaults::BrokerDefaults;
use crate::client::controller_lease::LeaseTerms;
use crate::client::forward::ROUTE_BACKOFF_MAX_MS;
use crate::error::{BrokerError, ControllerError};
use crate::image::{BrokerRegistration, MetadataImage};
use crate::raft::types::{MetaRaft, NodeId, to_kafka_node_id, to_raft_node_id};
use crate::records::{MetadataRecord, SupportedFeature};

/// What the controller needs from the node's configuration.
#[derive(Debug, Clone)]
pub(crate) struct ControllerSettings {
    pub node_id: i32,
    pub request_timeout_ms: u64,
    pub broker_session_timeout_ms: u64,
    /// `Some(level)` on a new cluster: finalize `metadata.version` at `level` once leading.
    pub bootstrap_metadata_version: Option<i16>,
    /// The `transaction.version` a new cluster finalizes with it (0: none).
    pub bootstrap_transaction_version: i16,
    /// Records committed with that FeatureLevel, in the same entry (`--add-scram`).
    pub bootstrap_records: Vec<MetadataRecord>,
    /// The controller voters, following the Raft membership.
    pub voters: Arc<crate::voter_book::VoterBook>,
    /// This node's metadata directory id.
    pub directory_id: Uuid,
    /// The directory ids the other voters report in their Raft replies.
    pub observed_directories: Arc<crate::voter_directory::ObservedDirectories>,
}

/// The request handler of the metadata quorum on a voter (see the module docs).
pub struct Controller {
    node_id: i32,
    raft: MetaRaft,
    images: watch::Receiver<Arc<MetadataImage>>,
    defaults: BrokerDefaults,
    request_timeout_ms: u64,
    /// Serializes validate → propose → apply (see the module docs).
    write_lock: Mutex<()>,
    /// One controller voter change at a time (KIP-853); held for the whole change.
    voter_change_lock: Mutex<()>,
    /// Serializes the bootstrap of a new cluster's feature levels (see `caught_up_image`).
    bootstrap_lock: Mutex<()>,
    liveness: std::sync::Mutex<BrokerLiveness>,
    /// Origin of the monotonic milliseconds `BrokerLiveness` works in.
    clock_origin: Instant,
    stopped: AtomicBool,
    bootstrap_metadata_version: Option<i16>,
    bootstrap_transaction_version: i16,
    bootstrap_records: Vec<MetadataRecord>,
    /// The features each broker reported in its latest registration with this controller, by
    /// broker id with the incarnation: below `metadata.version` 2 registrations record none,
    /// and UpdateFeatures needs them to raise such a cluster (see `update_features`).
    reported_features: std::sync::Mutex<BTreeMap<i32, (Uuid, Vec<SupportedFeature>)>>,
    voters: Arc<crate::voter_book::VoterBook>,
    directory_id: Uuid,
    observed_directories: Arc<crate::voter_directory::ObservedDirectories>,
    /// Partition sizes from the leaders' heartbeats, for the continuous balancer.
    replica_sizes: std::sync::Mutex<balancer::ReplicaSizes>,
}

impl Controller {
    pub(crate) fn new(
        raft: MetaRaft,
        images: watch::Receiver<Arc<MetadataImage>>,
        defaults: BrokerDefaults,
        settings: ControllerSettings,
    ) -> Arc<Self> {
        Arc::new(Controller {
            node_id: settings.node_id,
            raft,
            images,
            defaults,
            request_timeout_ms: settings.request_timeout_ms,
            write_lock: Mutex::new(()),
            voter_change_lock: Mutex::new(()),
            bootstrap_lock: Mutex::new(()),
            liveness: std::sync::Mutex::new(BrokerLiveness::new(
                settings.broker_session_timeout_ms,
            )),
            clock_origin: Instant::now(),
            stopped: AtomicBool::new(false),
            bootstrap_metadata_version: settings.bootstrap_metadata_version,
            bootstrap_transaction_version: settings.bootstrap_transaction_version,
            bootstrap_records: settings.bootstrap_records,
            reported_features: std::sync::Mutex::new(BTreeMap::new()),
            voters: settings.voters,
            directory_id: settings.directory_id,
            observed_directories: settings.observed_directories,
            replica_sizes: std::sync::Mutex::new(balancer::ReplicaSizes::default()),
        })
    }

    /// The broker-level defaults topics are created with.
    pub fn broker_defaults(&self) -> &BrokerDefaults {
        &self.defaults
    }

    /// Refuses further requests (node shutdown).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Whether `topic` opted into unclean leader election (its override, else the broker's
    /// `unclean.leader.election.enable`).
    fn unclean_allowed(&self, topic: &crate::image::TopicImage) -> bool {
        crate::topic_config::resolve_topic_config(
            "unclean.leader.election.enable",
            &topic.configs,
            self.defaults.configs(),
        )
        .is_ok_and(|c| c.value == "true")
    }

    /// The controller voters now (this node's view of the Raft membership).
    pub fn voter_ids(&self) -> Vec<i32> {
        self.voters.ids()
    }

    /// Why this node's controller cannot run requests at all (shut down, Raft stopped).
    pub(crate) fn not_running(&self) -> Option<ControllerError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Some(ControllerError::Internal(
                "metadata quorum is not running: the node has shut down".to_string(),
            ));
        }
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        match &m.running_state {
            Err(e) => Some(ControllerError::Internal(format!(
                "metadata quorum is not running: {e}"
            ))),
            Ok(()) => None,
        }
    }

    /// The Raft leader this node knows of.
    pub(crate) fn leader_id(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .and_then(to_kafka_node_id)
    }

    /// Waits (at most until `deadline`, in short steps) for Raft to name a leader; returns
    /// whether there is time left.
    pub(crate) async fn wait_for_known_leader(&self, deadline: Instant) -> bool {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let step = remaining.min(Duration::from_millis(ROUTE_BACKOFF_MAX_MS));
        let _ = self
            .raft
            .wait(Some(step))
            .metrics(|m| m.current_leader.is_some(), "a metadata leader is known")
            .await;
        Instant::now() < deadline
    }

    /// Monotonic ms since this controller started: the clock of broker session timeouts.
    fn monotonic_ms(&self) -> u64 {
        u64::try_from(self.clock_origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock_liveness(&self) -> std::sync::MutexGuard<'_, BrokerLiveness> {
        self.liveness.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_replica_sizes(&self) -> std::sync::MutexGuard<'_, balancer::ReplicaSizes> {
        self.replica_sizes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Some(term)` if this node is the Raft leader according to its metrics.
    fn leading_term(&self) -> Option<u64> {
        let raft_id = to_raft_node_id(self.node_id)?;
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        (m.current_leader == Some(raft_id)).then_some(m.current_term)
    }

    /// Starts this term's broker clocks if this is the first act of a new leadership.
    fn note_leadership(&self, image: &MetadataImage) {
        let now = self.monotonic_ms();
        let mut liveness = self.lock_liveness();
        match self.leading_term() {
            Some(term) => {
                if liveness.on_leadership(term, image, now) {
                    tracing::info!(
                        node_id = self.node_id,
                        term,
                        brokers = image.brokers.len(),
                        "active controller: broker session clocks started"
                    );
                }
            }
            None => liveness.on_lost_leadership(),
        }
    }

    pub(crate) async fn create_topics_local(
        &self,
        topics: Vec<CreateTopic>,
        validate_only: bool,
        deadline: Instant,
    ) -> ControllerResults<CreatedTopic> {
        let defaults = &self.defaults;
        self.execute(topics.len(), validate_only, deadline, |image| {
            plan_create_topics(image, defaults, topics, &mut Uuid::new_v4)
        })
        .await
    }

    pub(crate) async fn delete_topics_local(
        &self,
        topics: Vec<TopicRef>,
        deadline: Instant,
    ) -> ControllerResults<Uuid> {
        self.execute(topics.len(), false, deadline, |image| {
            plan_delete_topics(image, topics)
        })
        .await
    }

    pub(crate) async fn create_partitions_local(
        &self,
        topics: Vec<CreatePartitions>,
        validate_only: bool,
        deadline: Instant,
    ) -> ControllerResults<i32> {
        let defaults = &self.defaults;
        self.execute(topics.len(), validate_only, deadline, |image| {
            plan_create_partitions(image, defaults, topics)
        })
        .await
    }

    pub(crate) async fn elect_leaders_local(
        &self,
        election: ElectionType,
        partitions: Vec<(String, i32)>,
        deadline: Instant,
    ) -> ControllerResults<i32> {
        self.execute(partitions.len(), false, deadline, |image| {
            plan_elect_leaders(image, election, partitions)
        })
        .await
    }

    pub(crate) async fn alter_partition_reassignments_local(
        &self,
        items: Vec<PartitionReassignment>,
        allow_replication_factor_change: bool,
        deadline: Instant,
    ) -> ControllerResults<()> {
        let outcome = self
            .execute(items.len(), false, deadline, |image| {
                plan_alter_reassignments(image, items, allow_replication_factor_change)
            })
            .await;
        if let Some(log_index) = outcome.log_index {
            tracing::info!(log_index, "partition reassignments changed");
        }
        outcome
    }

    pub(crate) async fn unregister_broker_local(
        &self,
        broker_id: i32,
        deadline: Instant,
    ) -> ControllerResults<()> {
        let outcome = self
            .execute(1, false, deadline, |image| {
                vec![plan_unregister_broker(image, broker_id)]
            })
            .await;
        if let Some(log_index) = outcome.log_index {
            tracing::warn!(broker_id, log_index, "unregistered a retired broker");
        }
        outcome
    }

    /// Topic resources, then broker resources, then group resources: one result each, in that
    /// order.
    pub(crate) async fn incremental_alter_configs_local(
        &self,
        resources: Vec<AlterTopicConfigs>,
        brokers: Vec<AlterBrokerConfigs>,
        groups: Vec<AlterGroupConfigs>,
        validate_only: bool,
        deadline: Instant,
    ) -> ControllerResults<()> {
        let defaults = &self.defaults;
        let count = resources.len() + brokers.len() + groups.len();
        self.execute(count, validate_only, deadline, |image| {
            // Topic, broker and group configs never touch the same records: planned side by
            // side.
            let mut planned = plan_alter_configs(image, defaults, resources);
            planned.extend(plan_alter_broker_configs(image, brokers));
            planned.extend(plan_alter_group_configs(image, defaults, groups));
            planned
        })
        .await
    }

    pub(crate) async fn alter_client_quotas_local(
        &self,
        alterations: Vec<ClientQuotaAlteration>,
        validate_only: bool,
        deadline: Instant,
    ) -> ControllerResults<()> {
        let outcome = self
            .execute(alterations.len(), validate_only, deadline, |image| {
                plan_alter_client_quotas(image, alterations)
            })
            .await;
        if let Some(log_index) = outcome.log_index {
            tracing::info!(log_index, "client quotas changed");
        }
        outcome
    }

    pub(crate) async fn create_acls_local(
        &self,
        acls: Vec<shoal_acl::AclBinding>,
        deadline: Instant,
    ) -> ControllerResults<()> {
        self.execute(acls.len(), false, deadline, |image| {
            plan_create_acls(image, acls, &mut Uuid::new_v4)
        })
        .await
    }

    pub(crate) async fn delete_acls_local(
        &self,
        filters: Vec<shoal_acl::AclFilter>,
        deadline: Instant,
    ) -> ControllerResults<Vec<shoal_acl::AclBinding>> {
        self.execute(filters.len(), false, deadline, |image| {
            plan_delete_acls(image, filters)
        })
        .await
    }

    pub(crate) async fn alter_user_scram_credentials_local(
        &self,
        alterations: Vec<UserScramAlteration>,
        deadline: Instant,
    ) -> ControllerResults<()> {
        self.execute(alterations.len(), false, deadline, |image| {
            plan_alter_user_scram_credentials(image, alterations)
        })
        .await
    }

    /// UpdateFeatures: every update or none, in one entry (see `update_features`).
    pub(crate) async fn update_features_local(
        &self,
        updates: Vec<FeatureUpdate>,
        validate_only: bool,
        deadline: Instant,
    ) -> ControllerResults<()> {
        let reported = self
            .reported_features
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.execute(1, validate_only, deadline, |image| {
            // What a broker reported counts only for the incarnation the image has registered.
            let reported: BTreeMap<i32, Vec<SupportedFeature>> = reported
                .into_iter()
                .filter(|(id, (incarnation, _))| {
                    image
                        .brokers
                        .get(id)
                        .is_some_and(|b| b.incarnation_id == *incarnation)
                })
                .map(|(id, (_, features))| (id, features))
                .collect();
            vec![update_features::plan_update_features(
                image,
                &updates,
                &crate::features::supported_features(),
                &reported,
            )]
        })
        .await
    }

    pub(crate) async fn allocate_producer_ids_local(
        &self,
        deadline: Instant,
    ) -> Result<ProducerIdBlock, ControllerError> {
        let outcome = self
            .execute(1, false, deadline, |image| {
                vec![plan_allocate_producer_ids(image)]
            })
            .await;
        outcome
            .results
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(ControllerError::Internal("no result".to_string())))
    }

    pub(crate) async fn register_local(
        &self,
        request: BrokerRegistrationRequest,
        deadline: Instant,
    ) -> Result<RegisteredBroker, BrokerError> {
        let _writer = self.write_lock.lock().await;
        let image = self.caught_up_image(deadline).await?;
        self.note_leadership(&image);
        let broker_id = request.broker_id;
        let alive = self
            .lock_liveness()
            .is_alive(broker_id, self.monotonic_ms());
        check_not_duplicate(&image, &request, alive)?;
        let reported = request
            .supported_features
            .clone()
            .map(|f| (request.incarnation_id, f));
        let (broker_epoch, records) =
            plan_register_broker(&image, request, &|t| self.unclean_allowed(t))?;
        if let Some(reported) = reported {
            self.reported_features
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(broker_id, reported);
        }
        let log_index = if records.is_empty() {
            // A retry of the same incarnation: already applied.
            image.last_applied_index
        } else {
            let index = self.propose_all(records, deadline).await?;
            tracing::info!(
                broker_id,
                broker_epoch,
                log_index = index,
                "broker registered"
            );
            index
        };
        self.lock_liveness().record_registration(
            broker_id,
            broker_epoch,
            log_index,
            self.monotonic_ms(),
        );
        Ok(RegisteredBroker {
            broker_epoch,
            log_index,
        })
    }

    pub(crate) async fn alter_partition_local(
        &self,
        request: AlterPartitionRequest,
        deadline: Instant,
    ) -> Result<AlteredPartition, BrokerError> {
        let _writer = self.write_lock.lock().await;
        let image = self.caught_up_image(deadline).await?;
        let (mut altered, records) = plan_alter_partition(&image, &request)?;
        if !records.is_empty() {
            let log_index = self.propose_all(records, deadline).await?;
            tracing::info!(
                topic_id = %request.topic_id,
                partition = request.partition,
                leader = request.broker_id,
                isr = ?altered.isr,
                partition_epoch = altered.partition_epoch,
                log_index,
                "ISR changed"
            );
            altered.log_index = Some(log_index);
            // An ISR that grew may be the last step a move waited for.
            self.propose_completed_reassignments(deadline).await;
        }
        Ok(altered)
    }

    /// Completes every partition move that can complete now (see `reassignment`). The caller
    /// holds the write lock and has a caught-up image (every proposal waits until applied).
    async fn propose_completed_reassignments(&self, deadline: Instant) {
        let records = plan_complete_reassignments(&self.images.borrow());
        if records.is_empty() {
            return;
        }
        let completed = records.len();
        match self.propose_all(records, deadline).await {
            Ok(log_index) => {
                tracing::info!(completed, log_index, "partition reassignments completed")
            }
            Err(e) => tracing::warn!(error = %e, "could not complete partition reassignments"),
        }
    }

    /// For a background task of the active controller: the write lock, an image caught up with
    /// everything committed, and the deadline to propose by. `None` (logged at debug, naming
    /// `task`) when this node is not the active controller.
    async fn background_writer(
        &self,
        task: &str,
    ) -> Option<(tokio::sync::MutexGuard<'_, ()>, Arc<MetadataImage>, Instant)> {
        let deadline = Instant::now() + Duration::from_millis(self.request_timeout_ms);
        let writer = self.write_lock.lock().await;
        match self.caught_up_image(deadline).await {
            Ok(image) => Some((writer, image, deadline)),
            Err(e) => {
                tracing::debug!(error = %e, "{task}: not the active controller");
                None
            }
        }
    }

    /// Completes moves the image shows ready but no ISR change completed (the controller that
    /// saw the last replica join failed over first). Cheap when there are none.
    async fn complete_reassignments(&self) {
        if plan_complete_reassignments(&self.images.borrow()).is_empty() {
            return;
        }
        let Some((_writer, _, deadline)) = self.background_writer("reassignment check").await
        else {
            return;
        };
        self.propose_completed_reassignments(deadline).await;
    }

    pub(crate) async fn heartbeat_local(
        &self,
        heartbeat: BrokerHeartbeat,
        deadline: Instant,
    ) -> Result<HeartbeatReply, BrokerError> {
        let image = self.caught_up_image(deadline).await?;
        self.note_leadership(&image);
        let registration = check_heartbeat(&image, &heartbeat)?;
        if heartbeat.want_shutdown {
            return self.shut_down_broker_local(heartbeat, deadline).await;
        }
        if !heartbeat.replica_sizes.is_empty() {
            self.lock_replica_sizes()
                .record(&image, heartbeat.broker_id, &heartbeat.replica_sizes);
        }
        let moves_offline_replicas = {
            let mut liveness = self.lock_liveness();
            liveness.record_offline_replicas(heartbeat.broker_id, &heartbeat.offline_replicas);
            let offline = liveness.offline_replicas_of(heartbeat.broker_id);
            !self
                .plan_offline_replicas(&image, &liveness, heartbeat.broker_id, &offline)
                .is_empty()
        };
        if moves_offline_replicas {
            self.move_offline_replicas(heartbeat.broker_id, deadline)
                .await?;
        }
        let unfence = {
            let mut liveness = self.lock_liveness();
            liveness.record_contact(heartbeat.broker_id, self.monotonic_ms());
            liveness.should_unfence(
                &image,
                heartbeat.broker_id,
                heartbeat.broker_epoch,
                heartbeat.caught_up_metadata_offset,
            )
        };
        if !unfence && registration.fenced {
            return Ok(HeartbeatReply {
                fenced: true,
                log_index: None,
                lease: None,
            });
        }
        // Decide again under the write lock, against the image every earlier write is in: a
        // fence decided before the contact above is applied by now, so the lease's offset
        // covers it (a fence decided after it sees the contact and is not made).
        let _writer = self.write_lock.lock().await;
        let image = if unfence {
            self.caught_up_image(deadline).await?
        } else {
            // Caught up above; what was proposed since, under this lock, is applied here.
            self.images.borrow().clone()
        };
        let registration = check_heartbeat(&image, &heartbeat)?;
        let unfence = unfence
            && self.lock_liveness().should_unfence(
                &image,
                heartbeat.broker_id,
                heartbeat.broker_epoch,
                heartbeat.caught_up_metadata_offset,
            );
        if !unfence {
            return Ok(HeartbeatReply {
                fenced: registration.fenced,
                log_index: None,
                lease: (!registration.fenced).then(|| self.lease_terms(&image)),
            });
        }
        let mut records =
            plan_unfence_broker(&image, heartbeat.broker_id, heartbeat.broker_epoch, &|t| {
                self.unclean_allowed(t)
            });
        retain_electable(&mut records, &self.lock_liveness());
        let log_index = self.propose_all(records, deadline).await?;
        tracing::info!(
            broker_id = heartbeat.broker_id,
            broker_epoch = heartbeat.broker_epoch,
            log_index,
            "broker unfenced: caught up on metadata"
        );
        let image = self.images.borrow().clone();
        Ok(HeartbeatReply {
            fenced: false,
            log_index: Some(log_index),
            lease: Some(self.lease_terms(&image)),
        })
    }

    /// The lease an "unfenced" answer grants (see `client::controller_lease`), read from
    /// `image`, which must hold every entry applied before the answer.
    fn lease_terms(&self, image: &MetadataImage) -> LeaseTerms {
        LeaseTerms {
            metadata_offset: image.last_applied_index,
            session_timeout_ms: self.lock_liveness().session_timeout_ms(),
        }
    }

    /// The changes `broker_id`'s offline replicas call for (see `offline_replicas`).
    fn plan_offline_replicas(
        &self,
        image: &MetadataImage,
        liveness: &BrokerLiveness,
        broker_id: i32,
        offline: &std::collections::BTreeSet<ReplicaRef>,
    ) -> Vec<MetadataRecord> {
        plan_offline_replicas(
            image,
            broker_id,
            offline,
            |other, r| !liveness.is_offline_replica(other, r.topic_id, r.partition),
            &|t| self.unclean_allowed(t),
        )
    }

    /// Moves leadership and ISR membership of the replicas `broker_id` last reported offline
    /// to replicas that can serve, deciding again under the write lock.
    async fn move_offline_replicas(
        &self,
        broker_id: i32,
        deadline: Instant,
    ) -> Result<(), BrokerError> {
        let _writer = self.write_lock.lock().await;
        let image = self.caught_up_image(deadline).await?;
        let records = {
            let liveness = self.lock_liveness();
            let offline = liveness.offline_replicas_of(broker_id);
            self.plan_offline_replicas(&image, &liveness, broker_id, &offline)
        };
        if records.is_empty() {
            return Ok(());
        }
        let changes = records.len();
        let log_index = self.propose_all(records, deadline).await?;
        tracing::warn!(
            broker_id,
            partitions = changes,
            log_index,
            "moved leadership and ISR membership off replicas the broker reports offline"
        );
        Ok(())
    }

    async fn shut_down_broker_local(
        &self,
        heartbeat: BrokerHeartbeat,
        deadline: Instant,
    ) -> Result<HeartbeatReply, BrokerError> {
        let _writer = self.write_lock.lock().await;
        let image = self.caught_up_image(deadline).await?;
        let registration = check_heartbeat(&image, &heartbeat)?;
        let mut log_index = None;
        if !registration.fenced {
            let records =
                plan_fence_broker(&image, heartbeat.broker_id, heartbeat.broker_epoch, &|t| {
                    self.unclean_allowed(t)
                });
            log_index = Some(self.propose_all(records, deadline).await?);
        }
        self.lock_liveness().forget(heartbeat.broker_id);
        tracing::info!(
            broker_id = heartbeat.broker_id,
            broker_epoch = heartbeat.broker_epoch,
            ?log_index,
            "controlled shutdown: broker fenced"
        );
        Ok(HeartbeatReply {
            fenced: true,
            log_index,
            lease: None,
        })
    }

    /// One session check: if this node leads, fences every broker silent for longer than
    /// `broker.session.timeout.ms`, one Raft entry per broker (FenceBroker + its partitions'
    /// changes). Cheap when nobody expired: no Raft round trip. Run periodically by the node.
    pub(crate) async fn check_sessions(&self) {
        if self.not_running().is_some() {
            return;
        }
        let Some(term) = self.leading_term() else {
            self.lock_liveness().on_lost_leadership();
            return;
        };
        if let Err(e) = self.bootstrap_features().await {
            tracing::debug!(error = %e, "could not finalize metadata.version yet");
        }
        self.complete_reassignments().await;
        self.record_voter_directories().await;
        self.finish_joint_membership().await;
        self.grow_internal_topics().await;
        let image = self.images.borrow().clone();
        let expired = {
            let now = self.monotonic_ms();
            let mut liveness = self.lock_liveness();
            liveness.on_leadership(term, &image, now);
            liveness.brokers_to_fence(&image, now)
        };
        if expired.is_empty() {
            return;
        }
        let Some((_writer, image, deadline)) = self.background_writer("session check").await else {
            return;
        };
        self.note_leadership(&image);
        let expired = self
            .lock_liveness()
            .brokers_to_fence(&image, self.monotonic_ms());
        for (broker_id, broker_epoch) in expired {
            // `propose` returns after the entry is applied here, so this image includes the
            // fences proposed before it.
            let image = self.images.borrow().clone();
            let records = plan_fence_broker(&image, broker_id, broker_epoch, &|t| {
                self.unclean_allowed(t)
            });
            let partitions_changed = records.len() - 1;
            match self.propose_all(records, deadline).await {
                Ok(log_index) => tracing::warn!(
                    broker_id,
                    broker_epoch,
                    partitions_changed,
                    log_index,
                    session_timeout_ms = self.lock_liveness().session_timeout_ms(),
                    "fenced a broker that stopped heartbeating"
                ),
                Err(e) => {
                    tracing::warn!(broker_id, error = %e, "could not fence a silent broker");
                    return;
                }
            }
        }
    }

    /// Finalizes `metadata.version` on a new cluster (see `crate::features`) if this node
    /// leads and no level is finalized yet. Returns whether a level is finalized now.
    pub(crate) async fn bootstrap_features(&self) -> Result<bool, ControllerError> {
        if self.bootstrap_metadata_version.is_none() || self.bootstrapped() {
            return Ok(true);
        }
        if self.leading_term().is_none() {
            return Ok(false);
        }
        let deadline = Instant::now() + Duration::from_millis(self.request_timeout_ms);
        // Finalizes as its first step (see `caught_up_image`).
        self.caught_up_image(deadline).await?;
        Ok(self.bootstrapped())
    }

    fn bootstrapped(&self) -> bool {
        self.images
            .borrow()
            .finalized_features
            .contains_key(crate::features::METADATA_VERSION)
    }

    /// One preferred-leader check (`auto.leader.rebalance.enable`, see `preferred_leader`):
    /// if this node leads and some broker is imbalanced beyond
    /// `leader.imbalance.per.broker.percentage`, moves leadership back to in-sync preferred
    /// replicas in one entry. Returns how many partitions moved.
    pub(crate) async fn balance_leaders(&self, threshold_percent: u32) -> usize {
        if self.not_running().is_some() || self.leading_term().is_none() {
            return 0;
        }
        let records = plan_preferred_leader_election(&self.images.borrow(), threshold_percent);
        if records.is_empty() {
            return 0;
        }
        let deadline = Instant::now() + Duration::from_millis(self.request_timeout_ms);
        let _writer = self.write_lock.lock().await;
        let image = match self.caught_up_image(deadline).await {
            Ok(image) => image,
            Err(_) => return 0,
        };
        let mut records = plan_preferred_leader_election(&image, threshold_percent);
        retain_electable(&mut records, &self.lock_liveness());
        let moved = records.len();
        if moved == 0 {
            return 0;
        }
        match self.propose_all(records, deadline).await {
            Ok(log_index) => {
                tracing::info!(
                    moved,
                    log_index,
                    "moved leadership back to preferred replicas"
                );
                moved
            }
            Err(e) => {
                tracing::warn!(error = %e, "preferred leader election failed");
                0
            }
        }
    }

    /// Proposes `records` as one entry (several only beyond `MAX_RECORDS_PER_ENTRY`, the first
    /// holding the leading records); returns the last entry's index.
    async fn propose_all(
        &self,
        records: Vec<MetadataRecord>,
        deadline: Instant,
    ) -> Result<u64, ControllerError> {
        let mut last = None;
        let mut rest = records;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(MAX_RECORDS_PER_ENTRY));
            last = Some(self.propose(rest, deadline).await?);
            rest = tail;
        }
        last.ok_or_else(|| ControllerError::Internal("nothing to propose".to_string()))
    }

    /// Validates with `plan` against the latest image and proposes the records of the items
    /// that passed, in entries of at most `MAX_RECORDS_PER_ENTRY` records.
    async fn execute<T>(
        &self,
        count: usize,
        validate_only: bool,
        deadline: Instant,
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
        let image = match self.caught_up_image(deadline).await {
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
        self.propose_planned(planned, deadline).await
    }

    async fn propose_planned<T>(
        &self,
        planned: Vec<Planned<T>>,
        deadline: Instant,
    ) -> ControllerResults<T> {
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
                None => self.propose(batch, deadline).await,
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
    ///
    /// On a new cluster the first leader finalizes the bootstrap feature levels here, before
    /// it validates anything (Kafka's bootstrap metadata is the first thing a new quorum
    /// commits): no request is ever decided at `metadata.version` 1 in a cluster created at a
    /// newer level, however fast clients arrive after start-up.
    pub(crate) async fn caught_up_image(
        &self,
        deadline: Instant,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        let image = self.linearizable_image(deadline).await?;
        let Some(level) = self.bootstrap_metadata_version else {
            return Ok(image);
        };
        let plan = |image: &MetadataImage| {
            crate::features::plan_bootstrap_features(
                image,
                level,
                self.bootstrap_transaction_version,
                &self.bootstrap_records,
            )
        };
        if plan(&image).is_empty() {
            return Ok(image);
        }
        // One caller finalizes; the others wait for it and then find nothing to do.
        let _bootstrapping = self.bootstrap_lock.lock().await;
        let image = self.images.borrow().clone();
        let records = plan(&image);
        if records.is_empty() {
            return Ok(image);
        }
        let log_index = self.propose_all(records, deadline).await?;
        tracing::info!(
            level,
            log_index,
            "finalized metadata.version of a new cluster"
        );
        Ok(self.images.borrow().clone())
    }

    async fn linearizable_image(
        &self,
        deadline: Instant,
    ) -> Result<Arc<MetadataImage>, ControllerError> {
        match tokio::time::timeout_at(deadline.into(), self.raft.ensure_linearizable()).await {
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
    async fn propose(
        &self,
        batch: Vec<MetadataRecord>,
        deadline: Instant,
    ) -> Result<u64, ControllerError> {
        debug_assert!(!batch.is_empty() && batch.len() <= MAX_RECORDS_PER_ENTRY);
        match tokio::time::timeout_at(deadline.into(), self.raft.client_write(batch)).await {
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

/// Drops elections of a leader that reported its replica of that partition offline: it could
/// not serve, and its next heartbeat would only move the leadership away again.
fn retain_electable(records: &mut Vec<MetadataRecord>, liveness: &BrokerLiveness) {
    records.retain(|record| match record {
        MetadataRecord::PartitionChange {
            topic_id,
            partition,
            leader: Some(leader),
            ..
        } => !liveness.is_offline_replica(*leader, *topic_id, *partition),
        _ => true,
    });
}

/// Checks a heartbeat against the registration in `image` (pure).
pub fn check_heartbeat<'a>(
    image: &'a MetadataImage,
    heartbeat: &BrokerHeartbeat,
) -> Result<&'a BrokerRegistration, BrokerError> {
    check_heartbeat_epoch(image, heartbeat.broker_id, heartbeat.broker_epoch)
}

/// Checks that `broker_epoch` is `broker_id`'s current registration (pure): requests from an
/// older incarnation are refused (STALE_BROKER_EPOCH).
pub fn check_heartbeat_epoch(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
) -> Result<&BrokerRegistration, BrokerError> {
    let registration = image
        .brokers
        .get(&broker_id)
        .ok_or(BrokerError::BrokerIdNotRegistered { broker_id })?;
    if registration.broker_epoch != broker_epoch {
        return Err(BrokerError::StaleBrokerEpoch {
            broker_id,
            broker_epoch,
            current_epoch: registration.broker_epoch,
        });
    }
    Ok(registration)
}

/// How the active controller balances leaders (Kafka's broker configs of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderBalancing {
    /// `auto.leader.rebalance.enable`
    pub enabled: bool,
    /// `leader.imbalance.check.interval.seconds`, in ms.
    pub check_interval_ms: u64,
    /// `leader.imbalance.per.broker.percentage`
    pub threshold_percent: u32,
}

impl LeaderBalancing {
    /// From the broker settings given (the schema's defaults where unset).
    pub fn from_configs(configs: &std::collections::BTreeMap<String, String>) -> Self {
        let get = |name: &str| shoal_config::effective(configs, name).unwrap_or_default();
        LeaderBalancing {
            enabled: get("auto.leader.rebalance.enable") != "false",
            check_interval_ms: get("leader.imbalance.check.interval.seconds")
                .parse::<u64>()
                .unwrap_or(1)
                .saturating_mul(1_000)
                .max(1_000),
            threshold_percent: get("leader.imbalance.per.broker.percentage")
                .parse::<u32>()
                .unwrap_or(0)
                .min(100),
        }
    }
}

/// Runs [`Controller::balance_leaders`] on its interval until the controller is dropped.
pub(crate) async fn run_leader_balancing(controller: Weak<Controller>, balancing: LeaderBalancing) {
    if !balancing.enabled {
        return;
    }
    let period = Duration::from_millis(balancing.check_interval_ms);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(controller) = controller.upgrade() else {
            return;
        };
        controller
            .balance_leaders(balancing.threshold_percent)
            .await;
    }
}

/// Runs [`Controller::check_sessions`] every `interval` until the controller is dropped.
pub(crate) async fn run_session_checks(controller: Weak<Controller>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(controller) = controller.upgrade() else {
            return;
        };
        controller.check_sessions().await;
    }
}
