//! The leader's ISR proposals: asks each led partition what ISR change it wants
//! (`Partition::propose_isr_change`) and sends it to the active controller as AlterPartition.
//!
//! Checked every `replica.lag.time.max.ms / 2` (bounded) for followers that fell behind, and at
//! once when a follower fetch shows a follower outside the ISR has caught up (a nudge from the
//! replication service), so a returning broker rejoins quickly. One proposal per partition is
//! in flight (the partition enforces it); a refused or unanswered one is retried no sooner
//! than `RETRY_AFTER_REFUSAL` later, so a replica the controller keeps refusing (say, one with
//! a stale broker epoch) cannot flood the controller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_meta::{AlterPartitionRequest, BrokerError, ControllerClient, IsrMember};
use shoal_replica::{IsrOutcome, Partition};
use tokio::sync::mpsc;

use crate::replica_manager::{PartitionKey, ReplicaManager};
use crate::time::wall_ms;

const RETRY_AFTER_REFUSAL: Duration = Duration::from_secs(1);
/// After a refusal because the metadata moved on (a newer epoch is on its way here).
const RETRY_AFTER_STALE: Duration = Duration::from_millis(100);
const ALTER_PARTITION_TIMEOUT: Duration = Duration::from_secs(5);
/// Capacity of the nudge channel from the replication service (lossy when full).
pub const NUDGE_CAPACITY: usize = 1_024;

pub struct IsrManagerConfig {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// Kafka's `replica.lag.time.max.ms`.
    pub lag_max_ms: i64,
}

/// Runs until the nudge channel closes (the broker shuts down).
pub async fn run_isr_manager(
    replicas: Arc<ReplicaManager>,
    controller: Arc<ControllerClient>,
    config: IsrManagerConfig,
    mut nudges: mpsc::Receiver<PartitionKey>,
) {
    let check_every = Duration::from_millis(
        u64::try_from(config.lag_max_ms / 2)
            .unwrap_or(0)
            .clamp(50, 5_000),
    );
    let mut ticks = tokio::time::interval(check_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let refused: Arc<Mutex<HashMap<PartitionKey, Instant>>> = Arc::default();
    let config = Arc::new(config);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                for (key, partition) in replicas.led_partitions() {
                    maybe_propose(&controller, &config, &refused, key, partition);
                }
            }
            nudge = nudges.recv() => match nudge {
                Some(key) => {
                    if let Some(partition) = replicas.partition(key.0, key.1) {
                        maybe_propose(&controller, &config, &refused, key, partition);
                    }
                }
                None => return,
            },
        }
    }
}

fn maybe_propose(
    controller: &Arc<ControllerClient>,
    config: &Arc<IsrManagerConfig>,
    refused: &Arc<Mutex<HashMap<PartitionKey, Instant>>>,
    key: PartitionKey,
    partition: Arc<Partition>,
) {
    {
        let mut refused = refused.lock().unwrap_or_else(|p| p.into_inner());
        match refused.get(&key) {
            Some(until) if *until > Instant::now() => return,
            Some(_) => {
                refused.remove(&key);
            }
            None => {}
        }
    }
    let Some(proposal) = partition.propose_isr_change(wall_ms(), config.lag_max_ms) else {
        return;
    };
    let request = AlterPartitionRequest {
        broker_id: config.broker_id,
        broker_epoch: config.broker_epoch,
        topic_id: key.0,
        partition: key.1,
        leader_epoch: proposal.leader_epoch,
        partition_epoch: proposal.partition_epoch,
        new_isr: proposal
            .new_isr
            .iter()
            .map(|m| IsrMember {
                broker_id: m.broker_id,
                broker_epoch: m.broker_epoch,
            })
            .collect(),
    };
    let controller = Arc::clone(controller);
    let refused = Arc::clone(refused);
    let isr_before = partition.state().isr.len();
    tokio::spawn(async move {
        let outcome = match controller
            .alter_partition(request, ALTER_PARTITION_TIMEOUT)
            .await
        {
            Ok(altered) => {
                if altered.isr.len() != isr_before {
                    shoal_metrics::record_isr_change(altered.isr.len() < isr_before);
                }
                IsrOutcome::Committed {
                    leader_epoch: altered.leader_epoch,
                    partition_epoch: altered.partition_epoch,
                    isr: altered.isr,
                }
            }
            Err(error) => {
                let expected = matches!(
                    error,
                    BrokerError::FencedLeaderEpoch { .. }
                        | BrokerError::InvalidUpdateVersion { .. }
                );
                let retry_after = if expected {
                    tracing::debug!(topic = partition.topic(), partition = partition.index(), %error, "ISR change refused; the metadata moved on");
                    RETRY_AFTER_STALE
                } else {
                    tracing::warn!(topic = partition.topic(), partition = partition.index(), %error, "ISR change not committed");
                    RETRY_AFTER_REFUSAL
                };
                refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, Instant::now() + retry_after);
                IsrOutcome::NotCommitted
            }
        };
        partition.complete_isr_change(outcome);
    });
}
