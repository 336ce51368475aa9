//! `ControllerClient`: every controller request a broker (or a tool) makes, routed to the
//! active controller.
//!
//! On a voter the client holds that node's [`Controller`]: when Raft names this node leader the
//! request runs in process, otherwise it is forwarded to the leader Raft names. On a node that
//! is not a voter there is no local controller; the target is the [`KnownLeader`] hint (fed by
//! the metadata follower and by refusals), or, with no hint, the voters in turn, each of which
//! either runs the request or refuses with a better hint.
//!
//! Bounded like every wait in Shoal: at most `MAX_ROUTE_ATTEMPTS` tries within the call's
//! deadline; a request that timed out in flight is not retried (its outcome is unknown, Kafka's
//! REQUEST_TIMED_OUT), but one in flight to a leader Raft has replaced meanwhile is sent again
//! to the new one rather than waiting out the deadline on a paused node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use shoal_internode::ClientTls;
use uuid::Uuid;

use crate::client::forward::{
    AllocateProducerIdsCall, AlterClientQuotasCall, AlterConfigsCall,
    AlterPartitionReassignmentsCall, AlterUserScramCredentialsCall, CreateAclsCall,
    CreatePartitionsCall, CreateTopicsCall, DeleteAclsCall, DeleteTopicsCall, ElectLeadersCall,
    ForwardError, ForwardMethod, Forwarder, LEADER_WATCH_INTERVAL_MS, MAX_ROUTE_ATTEMPTS,
    ROUTE_BACKOFF_MAX_MS, ROUTE_BACKOFF_MIN_MS, Routed, UnregisterBrokerCall, UpdateFeaturesCall,
};
use crate::client::known_leader::KnownLeader;
use crate::controller::{
    AlterBrokerConfigs, AlterGroupConfigs, AlterPartitionRequest, AlterTopicConfigs,
    AlteredPartition, BrokerHeartbeat, BrokerRegistrationRequest, ClientQuotaAlteration,
    Controller, ControllerResults, CreatePartitions, CreateTopic, CreatedTopic, ElectionType,
    FeatureUpdate, HeartbeatReply, PartitionReassignment, ProducerIdBlock, RegisteredBroker,
    TopicRef, UserScramAlteration,
};
use crate::error::{BrokerError, ControllerError};
use crate::voter_book::VoterBook;

/// Routes controller requests from this node to the active controller.
pub struct ControllerClient {
    node_id: i32,
    request_timeout_ms: u64,
    /// This node's controller, on voters.
    local: Option<Arc<Controller>>,
    forwarder: Forwarder,
    voters: Arc<VoterBook>,
    /// The leader hint on nodes without a local controller.
    known_leader: Arc<KnownLeader>,
    /// Which voter to try next when no leader is known (non-voters).
    rotation: AtomicUsize,
    stopped: AtomicBool,
}

impl ControllerClient {
    /// The client of a voter: runs requests in `local` when this node leads.
    pub(crate) fn with_local(
        local: Arc<Controller>,
        cluster_id: &str,
        node_id: i32,
        voters: Arc<VoterBook>,
        request_timeout_ms: u64,
        connect_timeout: Duration,
        tls: Option<ClientTls>,
    ) -> Arc<Self> {
        Self::build(
            Some(local),
            cluster_id,
            node_id,
            voters,
            request_timeout_ms,
            connect_timeout,
            Arc::new(KnownLeader::default()),
            tls,
        )
    }

    /// The client of a node that is not a voter (a broker-only node): every request is sent to
    /// a voter's `ControllerService` at the addresses in `voters`. Share `known_leader` with the
    /// node's [`crate::MetadataFollower`], so the leader it learns is tried first.
    pub fn remote(
        cluster_id: &str,
        node_id: i32,
        voters: Arc<VoterBook>,
        request_timeout_ms: u64,
        connect_timeout: Duration,
        known_leader: Arc<KnownLeader>,
        tls: Option<ClientTls>,
    ) -> Arc<Self> {
        Self::build(
            None,
            cluster_id,
            node_id,
            voters,
            request_timeout_ms,
            connect_timeout,
            known_leader,
            tls,
        )
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one private constructor behind the two public ones"
    )]
    fn build(
        local: Option<Arc<Controller>>,
        cluster_id: &str,
        node_id: i32,
        voters: Arc<VoterBook>,
        request_timeout_ms: u64,
        connect_timeout: Duration,
        known_leader: Arc<KnownLeader>,
        tls: Option<ClientTls>,
    ) -> Arc<Self> {
        Arc::new(ControllerClient {
            node_id,
            request_timeout_ms,
            local,
            forwarder: Forwarder::new(
                cluster_id,
                node_id,
                Arc::clone(&voters),
                connect_timeout,
                tls,
            ),
            voters,
            known_leader,
            rotation: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        })
    }

    /// The default bound of a request (`MetaConfig::request_timeout_ms`).
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The active controller as far as this node knows.
    pub fn leader_hint(&self) -> Option<i32> {
        match &self.local {
            Some(local) => local.leader_id(),
            None => self.known_leader.get(),
        }
    }

    /// Refuses further requests (node shutdown).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
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
            self.request_timeout(),
            |c, deadline| c.create_topics_local(call.topics.clone(), validate_only, deadline),
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
            self.request_timeout(),
            |c, deadline| c.delete_topics_local(call.topics.clone(), deadline),
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
            self.request_timeout(),
            |c, deadline| c.create_partitions_local(call.topics.clone(), validate_only, deadline),
            |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// ElectLeaders; one result per partition, in order: its leader after the election.
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Vec<(String, i32)>,
    ) -> ControllerResults<i32> {
        let count = partitions.len();
        let call = ElectLeadersCall {
            election,
            partitions,
        };
        self.route(
            ForwardMethod::ElectLeaders,
            &call,
            self.request_timeout(),
            |c, deadline| c.elect_leaders_local(call.election, call.partitions.clone(), deadline),
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
        self.alter_config_resources(resources, Vec::new(), Vec::new(), validate_only)
            .await
    }

    /// IncrementalAlterConfigs for topics, brokers and groups; one result per resource (topics
    /// first, then brokers, then groups), all-or-nothing per resource. Broker resources need
    /// metadata.version 6 and group resources 9, from which every controller reads them; the
    /// caller checks the level before sending groups (an older controller would not see them).
    pub async fn alter_config_resources(
        &self,
        resources: Vec<AlterTopicConfigs>,
        brokers: Vec<AlterBrokerConfigs>,
        groups: Vec<AlterGroupConfigs>,
        validate_only: bool,
    ) -> ControllerResults<()> {
        let count = resources.len() + brokers.len() + groups.len();
        let call = AlterConfigsCall {
            resources,
            brokers,
            groups,
            validate_only,
        };
        self.route(
            ForwardMethod::IncrementalAlterConfigs,
            &call,
            self.request_timeout(),
            |c, deadline| {
                c.incremental_alter_configs_local(
                    call.resources.clone(),
                    call.brokers.clone(),
                    call.groups.clone(),
                    validate_only,
                    deadline,
                )
            },
            |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// CreateAcls; one result per ACL (an ACL already in force succeeds without a record).
    pub async fn create_acls(&self, acls: Vec<shoal_acl::AclBinding>) -> ControllerResults<()> {
        let count = acls.len();
        let call = CreateAclsCall { acls };
        self.route(
            ForwardMethod::CreateAcls,
            &call,
            self.request_timeout(),
            |c, deadline| c.create_acls_local(call.acls.clone(), deadline),
            |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// AlterUserScramCredentials; one result per user.
    pub async fn alter_user_scram_credentials(
        &self,
        alterations: Vec<UserScramAlteration>,
    ) -> ControllerResults<()> {
        let count = alterations.len();
        let call = AlterUserScramCredentialsCall { alterations };
        self.route(
            ForwardMethod::AlterUserScramCredentials,
            &call,
            self.request_timeout(),
            |c, deadline| c.alter_user_scram_credentials_local(call.alterations.clone(), deadline),
            |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// UpdateFeatures: one result for the whole request (all updates or none).
    pub async fn update_features(
        &self,
        updates: Vec<FeatureUpdate>,
        validate_only: bool,
    ) -> ControllerResults<()> {
        let call = UpdateFeaturesCall {
            updates,
            validate_only,
        };
        self.route(
            ForwardMethod::UpdateFeatures,
            &call,
            self.request_timeout(),
            |c, deadline| {
                c.update_features_local(call.updates.clone(), call.validate_only, deadline)
            },
            |e| ControllerResults::all_failed(1, e),
        )
        .await
    }

    /// AlterPartitionReassignments: one result per partition, in order.
    pub async fn alter_partition_reassignments(
        &self,
        partitions: Vec<PartitionReassignment>,
        allow_replication_factor_change: bool,
    ) -> ControllerResults<()> {
        let count = partitions.len();
        let call = AlterPartitionReassignmentsCall {
            partitions,
            allow_replication_factor_change,
        };
        self.route(
            ForwardMethod::AlterPartitionReassignments,
            &call,
            self.request_timeout(),
            |c, deadline| {
                c.alter_partition_reassignments_local(
                    call.partitions.clone(),
                    call.allow_replication_factor_change,
                    deadline,
                )
            },
            move |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// AlterClientQuotas; one result per entity, all or nothing per entity. Needs
    /// metadata.version 8, from which every controller serves it.
    pub async fn alter_client_quotas(
        &self,
        alterations: Vec<ClientQuotaAlteration>,
        validate_only: bool,
    ) -> ControllerResults<()> {
        let count = alterations.len();
        let call = AlterClientQuotasCall {
            alterations,
            validate_only,
        };
        self.route(
            ForwardMethod::AlterClientQuotas,
            &call,
            self.request_timeout(),
            |c, deadline| {
                c.alter_client_quotas_local(call.alterations.clone(), validate_only, deadline)
            },
            move |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// UnregisterBroker: one result.
    pub async fn unregister_broker(&self, broker_id: i32) -> ControllerResults<()> {
        let call = UnregisterBrokerCall { broker_id };
        self.route(
            ForwardMethod::UnregisterBroker,
            &call,
            self.request_timeout(),
            |c, deadline| c.unregister_broker_local(call.broker_id, deadline),
            |e| ControllerResults::all_failed(1, e),
        )
        .await
    }

    /// DeleteAcls; per filter, the ACLs it removed.
    pub async fn delete_acls(
        &self,
        filters: Vec<shoal_acl::AclFilter>,
    ) -> ControllerResults<Vec<shoal_acl::AclBinding>> {
        let count = filters.len();
        let call = DeleteAclsCall { filters };
        self.route(
            ForwardMethod::DeleteAcls,
            &call,
            self.request_timeout(),
            |c, deadline| c.delete_acls_local(call.filters.clone(), deadline),
            |e| ControllerResults::all_failed(count, e),
        )
        .await
    }

    /// Reserves a block of producer ids for a broker's idempotent producers.
    pub async fn allocate_producer_ids(&self) -> Result<ProducerIdBlock, ControllerError> {
        self.route(
            ForwardMethod::AllocateProducerIds,
            &AllocateProducerIdsCall {},
            self.request_timeout(),
            |c, deadline| c.allocate_producer_ids_local(deadline),
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
            self.request_timeout(),
            |c, deadline| c.register_local(request.clone(), deadline),
            |e| Err(BrokerError::Controller(e)),
        )
        .await
    }

    /// Kafka's BrokerHeartbeat (see [`BrokerHeartbeat`], [`HeartbeatReply`]), bounded by
    /// `timeout`. A stale epoch is refused (StaleBrokerEpoch). With `want_shutdown` it is the
    /// controlled shutdown: the broker is fenced at once (its leaderships move to other in-sync
    /// replicas in the same entry) and its session ends, so its next start registers at once.
    pub async fn broker_heartbeat(
        &self,
        heartbeat: BrokerHeartbeat,
        timeout: Duration,
    ) -> Result<HeartbeatReply, BrokerError> {
        self.route(
            ForwardMethod::BrokerHeartbeat,
            &heartbeat,
            timeout,
            |c, deadline| c.heartbeat_local(heartbeat.clone(), deadline),
            |e| Err(BrokerError::Controller(e)),
        )
        .await
    }

    /// Kafka's AlterPartition: a leader proposes a new ISR (see [`AlterPartitionRequest`]).
    pub async fn alter_partition(
        &self,
        request: AlterPartitionRequest,
        timeout: Duration,
    ) -> Result<AlteredPartition, BrokerError> {
        self.route(
            ForwardMethod::AlterPartition,
            &request,
            timeout,
            |c, deadline| c.alter_partition_local(request.clone(), deadline),
            |e| Err(BrokerError::Controller(e)),
        )
        .await
    }

    /// Runs `local` here if this node leads, else forwards to the leader; retries on leader
    /// hints (bounded, see the module docs). `fail` builds the result for an error of the
    /// whole call.
    async fn route<'s, Req, Resp, Fut>(
        &'s self,
        method: ForwardMethod,
        request: &Req,
        timeout: Duration,
        local: impl Fn(&'s Controller, Instant) -> Fut,
        fail: impl Fn(ControllerError) -> Resp,
    ) -> Resp
    where
        Req: Serialize,
        Resp: Routed + DeserializeOwned,
        Fut: std::future::Future<Output = Resp>,
    {
        let deadline = Instant::now() + timeout;
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
            let target = match hint.take().or_else(|| self.leader_hint()) {
                Some(target) => target,
                None => match &self.local {
                    // A voter waits for its own Raft to name a leader.
                    Some(local) => {
                        if !local.wait_for_known_leader(deadline).await {
                            break;
                        }
                        continue;
                    }
                    // Anyone else asks the voters in turn; each refuses with a hint or runs it.
                    None => self.next_voter(),
                },
            };
            let outcome = match &self.local {
                Some(controller) if target == self.node_id => local(controller, deadline).await,
                _ => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining.is_zero() {
                        break;
                    }
                    let call = self
                        .forwarder
                        .call(target, method, payload.clone(), remaining);
                    let replaced = self.leader_replaced(target, self.leader_hint());
                    let result = tokio::select! {
                        result = call => result,
                        new_leader = replaced => {
                            tracing::debug!(target, new_leader, method = ?method,
                                "the controller changed while a request was in flight; resending");
                            last_error = ControllerError::NotController {
                                leader_hint: Some(new_leader),
                            };
                            hint = Some(new_leader);
                            continue;
                        }
                    };
                    match result {
                        Ok(bytes) => match serde_json::from_slice(&bytes) {
                            Ok(outcome) => outcome,
                            Err(e) => {
                                return fail(ControllerError::Internal(format!(
                                    "garbled reply from the controller on node {target}: {e}"
                                )));
                            }
                        },
                        Err(ForwardError::TimedOut) => {
                            return fail(ControllerError::RequestTimedOut);
                        }
                        Err(ForwardError::Rejected(why)) => {
                            return fail(ControllerError::Internal(why));
                        }
                        Err(ForwardError::Unreachable(why)) => {
                            tracing::debug!(target, %why, "controller unreachable; retrying");
                            self.known_leader.forget(target);
                            last_error = ControllerError::NotController { leader_hint: None };
                            sleep_until_or(deadline, &mut backoff_ms).await;
                            continue;
                        }
                    }
                }
            };
            match outcome.not_controller() {
                None => {
                    if self.local.is_none() {
                        self.known_leader.set(Some(target));
                    }
                    return outcome;
                }
                Some(new_hint) => {
                    last_error = ControllerError::NotController {
                        leader_hint: new_hint,
                    };
                    hint = new_hint.filter(|h| *h != target);
                    if self.local.is_none() {
                        self.known_leader.set(hint);
                    }
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

    /// Resolves with the new leader once this node learns that a node other than `target` leads,
    /// and differently from `before` (the hint when the call started: a refusal's hint may be
    /// newer than this node's own view, which must not cancel the call it led to).
    async fn leader_replaced(&self, target: i32, before: Option<i32>) -> i32 {
        loop {
            tokio::time::sleep(Duration::from_millis(LEADER_WATCH_INTERVAL_MS)).await;
            if let Some(leader) = self.leader_hint()
                && leader != target
                && Some(leader) != before
            {
                return leader;
            }
        }
    }

    fn not_running(&self) -> Option<ControllerError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Some(ControllerError::Internal(
                "the node has shut down; no more controller requests".to_string(),
            ));
        }
        self.local.as_ref().and_then(|local| local.not_running())
    }

    fn next_voter(&self) -> i32 {
        let turn = self.rotation.fetch_add(1, Ordering::Relaxed);
        let voter_ids = self.voters.ids();
        match voter_ids.get(turn % voter_ids.len().max(1)) {
            Some(id) => *id,
            // No voters configured: nobody to ask; the forwarder reports it unreachable.
            None => -1,
        }
    }
}

/// Sleeps `backoff_ms` (never past `deadline`) and doubles it up to the maximum.
async fn sleep_until_or(deadline: Instant, backoff_ms: &mut u64) {
    let wake = (Instant::now() + Duration::from_millis(*backoff_ms)).min(deadline);
    tokio::time::sleep_until(wake.into()).await;
    *backoff_ms = backoff_ms.saturating_mul(2).min(ROUTE_BACKOFF_MAX_MS);
}
