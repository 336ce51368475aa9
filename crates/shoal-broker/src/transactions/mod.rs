//! Transactions on this broker: the `shoal-txn` state machine, wired to the log and the
//! metadata.
//!
//! The decisions are `shoal-txn`'s pure functions. This module gives them what they need:
//! storage (`storage`: writes to `__transaction_state` that resolve once replicated), leadership
//! (`loader`: a transactional id's coordinator is the leader of its `__transaction_state`
//! partition, loaded when this broker becomes that leader), markers (`markers`: commit and abort
//! markers written on every partition of a transaction, locally or over the leader's replication
//! listener), the KIP-890 check a partition leader makes before a transactional write
//! (`verifier`), the topic's creation on first use (`crate::internal_topic`), and its settings
//! (`config`). The Kafka APIs in `apis/` call the coordinator through [`Transactions`].

pub mod config;
pub mod coordinator;
pub mod loader;
pub mod markers;
pub mod peer_channels;
pub mod storage;
pub mod txn_ids;
pub mod verifier;

use std::sync::Arc;

use shoal_meta::{ControllerClient, ControllerLease};
use shoal_txn::TRANSACTION_STATE_TOPIC;

pub use config::TxnConfig;
pub use coordinator::{CoordError, TxnCoordinator};
pub use verifier::TxnPartitionCheck;

use crate::internal_topic::authority::CoordinatorAuthority;
use crate::internal_topic::{CoordinatorLocation, InternalTopicCreator, coordinator_of};
use crate::producer_ids::ProducerIdManager;
use crate::replica_manager::ReplicaManager;
use loader::TxnLoader;
use markers::MarkerWriter;
pub use peer_channels::PeerLinks;
use storage::TxnStateStorage;
use verifier::TxnVerifier;

pub struct Transactions {
    pub coordinator: Arc<TxnCoordinator>,
    pub verifier: TxnVerifier,
    creator: InternalTopicCreator,
    loader: Arc<TxnLoader>,
    replicas: Arc<ReplicaManager>,
}

impl Transactions {
    pub fn new(
        config: TxnConfig,
        replicas: Arc<ReplicaManager>,
        controller: Arc<ControllerClient>,
        producer_ids: Arc<ProducerIdManager>,
        quorum_voters: usize,
        peers: PeerLinks,
        lease: Arc<ControllerLease>,
    ) -> Self {
        let creator = InternalTopicCreator::new(
            config.state_topic.spec(),
            controller,
            Arc::clone(&replicas),
            quorum_voters,
        );
        let authority = CoordinatorAuthority::new(lease);
        let coordinator = TxnCoordinator::new(
            config,
            TxnStateStorage::new(Arc::clone(&replicas)),
            MarkerWriter::new(Arc::clone(&replicas), peers.clone()),
            producer_ids,
            Arc::clone(&authority),
        );
        let loader = TxnLoader::new(Arc::clone(&coordinator), Arc::clone(&replicas), authority);
        let verifier = TxnVerifier::new(Arc::clone(&coordinator), Arc::clone(&replicas), peers);
        Self {
            coordinator,
            verifier,
            creator,
            loader,
            replicas,
        }
    }

    /// The background tasks: shard loading/unloading and the timeout/expiration timers.
    pub fn spawn_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(Arc::clone(&self.loader).run()),
            tokio::spawn(Arc::clone(&self.coordinator).run_timers()),
        ]
    }

    /// FindCoordinator for a transactional id: the leader of its `__transaction_state`
    /// partition, creating the topic on first use.
    pub async fn locate(&self, transactional_id: &str) -> CoordinatorLocation {
        let mut image = self.replicas.image();
        if image.topic_by_name(TRANSACTION_STATE_TOPIC).is_none() {
            if !self.creator.ensure().await {
                return CoordinatorLocation::NotAvailable;
            }
            image = self.replicas.image();
        }
        coordinator_of(TRANSACTION_STATE_TOPIC, transactional_id, &image)
    }
}
