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
//! Any node's `Controller` can be called: a node that is not the leader forwards the request to
//! the leader over gRPC (`forward`), transparently, so callers never see NOT_CONTROLLER unless
//! no leader could be reached within the request timeout.
//!
//! Broker liveness (Kafka's BrokerHeartbeat and `broker.session.timeout.ms`): the active
//! controller keeps last-heartbeat times in memory (`liveness`); a periodic check
//! ([`Controller::check_sessions`]) fences silent brokers and moves their partitions
//! (`fence_broker`), and a heartbeat from a caught-up fenced broker unfences it.
//!
//! A proposal that times out may still commit later; like Kafka's REQUEST_TIMED_OUT the outcome
//! is unknown to the caller.

mod allocate_producer_ids;
mod alter_configs;
mod create_partitions;
mod create_topics;
mod delete_topics;
pub mod fence_broker;
pub mod forward;
pub mod liveness;
pub mod plan;
mod register_broker;
mod requests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use allocate_producer_ids::{
    PRODUCER_ID_BLOCK_SIZE, ProducerIdBlock, plan_allocate_producer_ids,
};
pub use alter_configs::plan_alter_configs;
pub use create_partitions::plan_create_partitions;
pub use create_topics::plan_create_topics;
pub use delete_topics::plan_delete_topics;
pub use fence_broker::{plan_fence_broker, plan_unfence_broker};
use forward::{
    AllocateProducerIdsCall, AlterConfigsCall, CreatePartitionsCall, CreateTopicsCall,
    DeleteTopicsCall, ForwardError, ForwardMethod, Forwarder, MAX_ROUTE_ATTEMPTS,
    ROUTE_BACKOFF_MAX_MS, ROUTE_BACKOFF_MIN_MS, Routed,
};
pub use liveness::BrokerLiveness;
use plan::{MAX_ITEMS_PER_REQUEST, MAX_RECORDS_PER_ENTRY, Planned};
pub use register_broker::{check_not_duplicate, plan_register_broker};
pub use requests::{
    AlterConfigOp, AlterConfigOpType, AlterTopicConfigs, BrokerHeartbeat,
    BrokerRegistrationRequest, ControllerResults, CreatePartitions, CreateTopic, CreatedTopic,
    HeartbeatReply, RegisteredBroker, TopicRef,
};

use crate::broker_defaults::BrokerDefaults;
use crate::error::{BrokerError, ControllerError};
use crate::image::{BrokerRegistration, MetadataImage};
use crate::raft::types::{MetaRaft, NodeId, to_kafka_node_id, to_raft_node_id};
use crate::records::MetadataRecord;

/// What the controller needs from the node's configuration.
#[derive(Debug, Clone)]
pub(crate) struct ControllerSettings {
    pub node_id: i32,
    pub cluster_id: String,
    pub voters: BTreeMap<i32, String>,
    pub request_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    pub broker_session_timeout_ms: u64,
    pub forward_connect_timeout: Duration,
    pub keep_registered_brokers_alive: bool,
}

/// The request handler of the metadata quorum; callable on every node (see the module docs).
/// Obtain it from `MetaNode::controller()`.
pub struct Controller {
    node_id: i32,
    raft: MetaRaft,
    images: watch::Receiver<Arc<MetadataImage>>,
    defaults: BrokerDefaults,
    request_timeout_ms: u64,
    broker_heartbeat_interval_ms: u64,
    keep_registered_brokers_alive: bool,
    /// Serializes validate → propose → apply (see the module docs).
    write_lock: Mutex<()>,
    liveness: std::sync::Mutex<BrokerLiveness>,
    forwarder: Forwarder,
    /// Origin of the monotonic milliseconds `BrokerLiveness` works in.
    clock_origin: Instant,
    /// Heartbeat tasks of brokers registered through [`Controller::register_broker`].
    keepalives: std::sync::Mutex<BTreeMap<i32, JoinHandle<()>>>,
    stopped: AtomicBool,
    this: Weak<Controller>,
}

impl Controller {
    pub(crate) fn new(
        raft: MetaRaft,
        images: watch::Receiver<Arc<MetadataImage>>,
        defaults: BrokerDefaults,
        settings: ControllerSettings,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Controller {
            node_id: settings.node_id,
            raft,
            images,
            defaults,
            request_timeout_ms: settings.request_timeout_ms,
            broker_heartbeat_interval_ms: settings.broker_heartbeat_interval_ms.max(1),
            keep_registered_brokers_alive: settings.keep_registered_brokers_alive,
            write_lock: Mutex::new(()),
            liveness: std::sync::Mutex::new(BrokerLiveness::new(
                settings.broker_session_timeout_ms,
            )),
            forwarder: Forwarder::new(
                &settings.cluster_id,
                settings.node_id,
                settings.voters,
                settings.forward_connect_timeout,
            ),
            clock_origin: Instant::now(),
            keepalives: std::sync::Mutex::new(BTreeMap::new()),
            stopped: AtomicBool::new(false),
            this: this.clone(),
        })
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
        let count = topics.len();
        let call = CreateTopicsCall {
            topics,
            validate_only,
        };
        self.route(
            ForwardMethod::CreateTopics,
            &call,
            |deadline| self.create_topics_local(call.topics.clone(), validate_only, deadline),
            |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// DeleteTopics by name or id; the result is the deleted topic's id.
    pub async fn delete_topics(&self, topics: Vec<TopicRef>) -> ControllerResults<Uuid> {
        let count = topics.len();
        let call = DeleteTopicsCall { topics };
        self.route(
            ForwardMethod::DeleteTopics,
            &call,
            |deadline| self.delete_topics_local(call.topics.clone(), deadline),
            |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// CreatePartitions; the result is the topic's new partition count.
    pub async fn create_partitions(
        &self,
        topics: Vec<CreatePartitions>,
        validate_only: bool,
    ) -> ControllerResults<i32> {
        let count = topics.len();
        let call = CreatePartitionsCall {
            topics,
            validate_only,
        };
        self.route(
            ForwardMethod::CreatePartitions,
            &call,
            |deadline| self.create_partitions_local(call.topics.clone(), validate_only, deadline),
            |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// IncrementalAlterConfigs for topics; one result per resource, all-or-nothing per resource.
    pub async fn incremental_alter_configs(
        &self,
        resources: Vec<AlterTopicConfigs>,
        validate_only: bool,
    ) -> ControllerResults<()> {
        let count = resources.len();
        let call = AlterConfigsCall {
            resources,
            validate_only,
        };
        self.route(
            ForwardMethod::IncrementalAlterConfigs,
            &call,
            |deadline| {
                self.incremental_alter_configs_local(
                    call.resources.clone(),
                    validate_only,
                    deadline,
                )
            },
            |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// Reserves a block of producer ids for a broker's idempotent producers.
    pub async fn allocate_producer_ids(&self) -> Result<ProducerIdBlock, ControllerError> {
        self.route(
            ForwardMethod::AllocateProducerIds,
            &AllocateProducerIdsCall {},
            |deadline| self.allocate_producer_ids_local(deadline),
            Err,
        )
        .await
    }

    /// Kafka's BrokerRegistration: registers (or, for the same incarnation id, confirms) a
    /// broker, **fenced**; a heartbeat reporting it caught up unfences it. A new incarnation
    /// while the registered one is alive is refused (DuplicateBrokerRegistration).
    pub async fn register(
        &self,
        request: BrokerRegistrationRequest,
    ) -> Result<RegisteredBroker, BrokerError> {
        self.route(
            ForwardMethod::RegisterBroker,
            &request,
            |deadline| self.register_local(request.clone(), deadline),
            |e| Err(BrokerError::Controller(e)),
        )
        .await
    }

    /// Kafka's BrokerHeartbeat, to be sent every `broker.heartbeat.interval.ms`; see
    /// [`BrokerHeartbeat`] and [`HeartbeatReply`]. A stale epoch is refused (StaleBrokerEpoch).
    pub async fn broker_heartbeat(
        &self,
        broker_id: i32,
        broker_epoch: i64,
        caught_up_metadata_offset: u64,
    ) -> Result<HeartbeatReply, BrokerError> {
        let heartbeat = BrokerHeartbeat {
            broker_id,
            broker_epoch,
            caught_up_metadata_offset,
            want_shutdown: false,
        };
        self.route(
            ForwardMethod::BrokerHeartbeat,
            &heartbeat,
            |deadline| self.heartbeat_local(heartbeat, deadline),
            |e| Err(BrokerError::Controller(e)),
        )
        .await
    }

    /// Controlled shutdown of a broker: it is fenced at once (its partitions' leadership
    /// moves to other in-sync replicas in the same entry, as a session expiry would do) and its
    /// session ends, so the broker's next start registers without waiting out the session.
    pub async fn controlled_shutdown(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<(), BrokerError> {
        self.stop_keepalive(broker_id);
        let heartbeat = BrokerHeartbeat {
            broker_id,
            broker_epoch,
            caught_up_metadata_offset: 0,
            want_shutdown: true,
        };
        self.route(
            ForwardMethod::BrokerHeartbeat,
            &heartbeat,
            |deadline| self.heartbeat_local(heartbeat, deadline),
            |e| Err(BrokerError::Controller(e)),
        )
        .await
        .map(|_| ())
    }

    /// Registers a broker and returns once it is **unfenced** — the start-up path of a broker
    /// without its own heartbeat loop. It registers ([`Controller::register`], retrying
    /// DuplicateBrokerRegistration until the previous incarnation's session expires), waits
    /// until this node has applied the registration, and heartbeats until unfenced. Then, if
    /// `MetaConfig::keep_registered_brokers_alive` is set (the default), this node keeps
    /// heartbeating for the broker every `broker.heartbeat.interval.ms` until it shuts down, so
    /// the broker is fenced exactly when this process stops (crash, SIGSTOP). A broker that runs
    /// its own heartbeat loop should call `register` and `broker_heartbeat` instead.
    pub async fn register_broker(
        &self,
        request: BrokerRegistrationRequest,
    ) -> Result<RegisteredBroker, ControllerError> {
        let deadline = Instant::now() + Duration::from_millis(self.request_timeout_ms);
        let interval = Duration::from_millis(self.broker_heartbeat_interval_ms);
        let broker_id = request.broker_id;
        self.stop_keepalive(broker_id);
        let registered = loop {
            match self.register(request.clone()).await {
                Ok(registered) => break registered,
                Err(BrokerError::DuplicateBrokerRegistration { .. })
                    if Instant::now() + interval < deadline =>
                {
                    tokio::time::sleep(interval).await;
                }
                Err(e) => return Err(e.into_controller_error()),
            }
        };
        let mut log_index = registered.log_index;
        loop {
            let caught_up = self.wait_applied_locally(log_index, deadline).await?;
            let reply = self
                .broker_heartbeat(broker_id, registered.broker_epoch, caught_up)
                .await
                .map_err(BrokerError::into_controller_error)?;
            if let Some(index) = reply.log_index {
                log_index = log_index.max(index);
            }
            if !reply.fenced {
                break;
            }
            if Instant::now() + interval >= deadline {
                return Err(ControllerError::RequestTimedOut);
            }
            tokio::time::sleep(interval).await;
        }
        if self.keep_registered_brokers_alive {
            self.start_keepalive(broker_id, registered.broker_epoch);
        }
        Ok(RegisteredBroker {
            broker_epoch: registered.broker_epoch,
            log_index,
        })
    }

    /// Waits (until `deadline`) for this node's image to reach `log_index`; returns the index
    /// it has applied.
    async fn wait_applied_locally(
        &self,
        log_index: u64,
        deadline: Instant,
    ) -> Result<u64, ControllerError> {
        let mut images = self.images.clone();
        let wait = images.wait_for(|image| image.last_applied_index >= log_index);
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(image)) => Ok(image.last_applied_index),
            Ok(Err(_)) => Err(ControllerError::Internal(
                "the metadata node has shut down".to_string(),
            )),
            Err(_) => Err(ControllerError::RequestTimedOut),
        }
    }

    fn start_keepalive(&self, broker_id: i32, broker_epoch: i64) {
        let task = tokio::spawn(keep_alive(
            self.this.clone(),
            broker_id,
            broker_epoch,
            Duration::from_millis(self.broker_heartbeat_interval_ms),
        ));
        let mut keepalives = self.keepalives.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = keepalives.insert(broker_id, task) {
            old.abort();
        }
    }

    fn stop_keepalive(&self, broker_id: i32) {
        let mut keepalives = self.keepalives.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = keepalives.remove(&broker_id) {
            old.abort();
        }
    }

    /// Stops background heartbeats and refuses further requests (node shutdown).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let mut keepalives = self.keepalives.lock().unwrap_or_else(|p| p.into_inner());
        for (_, task) in std::mem::take(&mut *keepalives) {
            task.abort();
        }
    }

    /// Runs `local` here if this node leads, else forwards to the leader; retries on leader
    /// hints (bounded, see `forward`). `fail` builds the result for an error of the whole call.
    async fn route<Req, Resp, Fut>(
        &self,
        method: ForwardMethod,
        request: &Req,
        local: impl Fn(Instant) -> Fut,
        fail: impl Fn(ControllerError) -> Resp,
    ) -> Resp
    where
        Req: Serialize,
        Resp: Routed + DeserializeOwned,
        Fut: std::future::Future<Output = Resp>,
    {
        let deadline = Instant::now() + Duration::from_millis(self.request_timeout_ms);
        let payload = match serde_json::to_vec(request) {
            Ok(payload) => payload,
            Err(e) => return fail(ControllerError::Internal(format!("cannot encode: {e}"))),
        };
        let mut hint: Option<i32> = None;
        let mut last_error = ControllerError::RequestTimedOut;
        let mut backoff_ms = ROUTE_BACKOFF_MIN_MS;
        for _ in 0..MAX_ROUTE_ATTEMPTS {
            if let Some(e) = self.not_running() {
                return fail(e);
            }
            let Some(target) = hint.take().or_else(|| self.leader_id()) else {
                if !self.wait_for_known_leader(deadline).await {
                    break;
                }
                continue;
            };
            let outcome = if target == self.node_id {
                local(deadline).await
            } else {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    break;
                }
                match self
                    .forwarder
                    .call(target, method, payload.clone(), remaining)
                    .await
                {
                    Ok(bytes) => match serde_json::from_slice(&bytes) {
                        Ok(outcome) => outcome,
                        Err(e) => {
                            return fail(ControllerError::Internal(format!(
                                "garbled reply from the controller on node {target}: {e}"
                            )));
                        }
                    },
                    Err(ForwardError::TimedOut) => return fail(ControllerError::RequestTimedOut),
                    Err(ForwardError::Rejected(why)) => {
                        return fail(ControllerError::Internal(why));
                    }
                    Err(ForwardError::Unreachable(why)) => {
                        tracing::debug!(target, %why, "controller unreachable; retrying");
                        last_error = ControllerError::NotController { leader_hint: None };
                        sleep_until_or(deadline, &mut backoff_ms).await;
                        continue;
                    }
                }
            };
            match outcome.not_controller() {
                None => return outcome,
                Some(new_hint) => {
                    last_error = ControllerError::NotController {
                        leader_hint: new_hint,
                    };
                    hint = new_hint.filter(|h| *h != target);
                    if hint.is_none() {
                        sleep_until_or(deadline, &mut backoff_ms).await;
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            fail(ControllerError::RequestTimedOut)
        } else {
            fail(last_error)
        }
    }

    fn not_running(&self) -> Option<ControllerError> {
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

    fn leader_id(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .and_then(to_kafka_node_id)
    }

    /// Waits (at most until `deadline`, in short steps) for Raft to name a leader; returns
    /// whether there is time left.
    async fn wait_for_known_leader(&self, deadline: Instant) -> bool {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let step = remaining.min(Duration::from_millis(ROUTE_BACKOFF_MAX_MS));
        let _ = self
            .raft
            .wait(Some(step))
            .metrics(|m| m.current_leader.is_some(), "a metadata leader is known")
            .await;
        Instant::now() < deadline
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock_origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock_liveness(&self) -> std::sync::MutexGuard<'_, BrokerLiveness> {
        self.liveness.lock().unwrap_or_else(|p| p.into_inner())
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
        let now = self.now_ms();
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
        self.execute(topics.len(), validate_only, deadline, |image| {
            plan_create_partitions(image, topics)
        })
        .await
    }

    pub(crate) async fn incremental_alter_configs_local(
        &self,
        resources: Vec<AlterTopicConfigs>,
        validate_only: bool,
        deadline: Instant,
    ) -> ControllerResults<()> {
        let defaults = &self.defaults;
        self.execute(resources.len(), validate_only, deadline, |image| {
            plan_alter_configs(image, defaults, resources)
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
        let alive = self.lock_liveness().is_alive(broker_id, self.now_ms());
        check_not_duplicate(&image, &request, alive)?;
        let (broker_epoch, records) = plan_register_broker(&image, request)?;
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
        self.lock_liveness()
            .record_registration(broker_id, broker_epoch, log_index, self.now_ms());
        Ok(RegisteredBroker {
            broker_epoch,
            log_index,
        })
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
        let unfence = {
            let mut liveness = self.lock_liveness();
            liveness.record_contact(heartbeat.broker_id, self.now_ms());
            liveness.should_unfence(
                &image,
                heartbeat.broker_id,
                heartbeat.broker_epoch,
                heartbeat.caught_up_metadata_offset,
            )
        };
        if !unfence {
            return Ok(HeartbeatReply {
                fenced: registration.fenced,
                log_index: None,
            });
        }
        // Decide again under the write lock, against the image every earlier write is in.
        let _writer = self.write_lock.lock().await;
        let image = self.caught_up_image(deadline).await?;
        let registration = check_heartbeat(&image, &heartbeat)?;
        let unfence = self.lock_liveness().should_unfence(
            &image,
            heartbeat.broker_id,
            heartbeat.broker_epoch,
            heartbeat.caught_up_metadata_offset,
        );
        if !unfence {
            return Ok(HeartbeatReply {
                fenced: registration.fenced,
                log_index: None,
            });
        }
        let records = plan_unfence_broker(&image, heartbeat.broker_id, heartbeat.broker_epoch);
        let log_index = self.propose_all(records, deadline).await?;
        tracing::info!(
            broker_id = heartbeat.broker_id,
            broker_epoch = heartbeat.broker_epoch,
            log_index,
            "broker unfenced: caught up on metadata"
        );
        Ok(HeartbeatReply {
            fenced: false,
            log_index: Some(log_index),
        })
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
            let records = plan_fence_broker(&image, heartbeat.broker_id, heartbeat.broker_epoch);
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
        let image = self.images.borrow().clone();
        let expired = {
            let now = self.now_ms();
            let mut liveness = self.lock_liveness();
            liveness.on_leadership(term, &image, now);
            liveness.brokers_to_fence(&image, now)
        };
        if expired.is_empty() {
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(self.request_timeout_ms);
        let _writer = self.write_lock.lock().await;
        let image = match self.caught_up_image(deadline).await {
            Ok(image) => image,
            Err(e) => {
                tracing::debug!(error = %e, "session check: not the active controller");
                return;
            }
        };
        self.note_leadership(&image);
        let expired = self.lock_liveness().brokers_to_fence(&image, self.now_ms());
        for (broker_id, broker_epoch) in expired {
            // `propose` returns after the entry is applied here, so this image includes the
            // fences proposed before it.
            let image = self.images.borrow().clone();
            let records = plan_fence_broker(&image, broker_id, broker_epoch);
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
    async fn caught_up_image(
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

/// Checks a heartbeat against the registration in `image` (pure).
pub fn check_heartbeat<'a>(
    image: &'a MetadataImage,
    heartbeat: &BrokerHeartbeat,
) -> Result<&'a BrokerRegistration, BrokerError> {
    let registration =
        image
            .brokers
            .get(&heartbeat.broker_id)
            .ok_or(BrokerError::BrokerIdNotRegistered {
                broker_id: heartbeat.broker_id,
            })?;
    if registration.broker_epoch != heartbeat.broker_epoch {
        return Err(BrokerError::StaleBrokerEpoch {
            broker_id: heartbeat.broker_id,
            broker_epoch: heartbeat.broker_epoch,
            current_epoch: registration.broker_epoch,
        });
    }
    Ok(registration)
}

/// Sleeps `backoff_ms` (never past `deadline`) and doubles it up to the maximum.
async fn sleep_until_or(deadline: Instant, backoff_ms: &mut u64) {
    let wake = (Instant::now() + Duration::from_millis(*backoff_ms)).min(deadline);
    tokio::time::sleep_until(wake.into()).await;
    *backoff_ms = backoff_ms.saturating_mul(2).min(ROUTE_BACKOFF_MAX_MS);
}

/// Heartbeats for a broker registered through [`Controller::register_broker`] until the node
/// stops, the registration is replaced, or the task is aborted.
async fn keep_alive(
    controller: Weak<Controller>,
    broker_id: i32,
    broker_epoch: i64,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(controller) = controller.upgrade() else {
            return;
        };
        let caught_up = controller.images.borrow().last_applied_index;
        match controller
            .broker_heartbeat(broker_id, broker_epoch, caught_up)
            .await
        {
            Ok(_) => {}
            Err(
                e @ (BrokerError::StaleBrokerEpoch { .. }
                | BrokerError::BrokerIdNotRegistered { .. }),
            ) => {
                tracing::warn!(broker_id, error = %e, "broker heartbeats stopped");
                return;
            }
            Err(e) => tracing::debug!(broker_id, error = %e, "broker heartbeat failed"),
        }
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
