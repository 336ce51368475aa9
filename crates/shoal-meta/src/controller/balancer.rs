//! The continuous balancer (`shoal.balancer.enabled`, off by default): the active controller
//! runs `shoalctl cluster balance --execute` by itself, a few moves at a time.
//!
//! **Why in the controller.** A broker that joins gets nothing until someone moves partitions
//! to it, and a cluster that grows hot on one broker stays so. Redpanda balances continuously;
//! Kafka leaves it to Cruise Control. The plan is the CLI's (`shoal_balance::plan_balance`,
//! the same goals: racks kept, replica counts, preferred leaders, bytes within a tolerance), so
//! an operator can always preview with `cluster balance` what the balancer would do next.
//!
//! **Why it waits.** A round starts moves only when no partition is moving (an operator's
//! reassignment, a decommission, internal topic growth, or its own previous round), no broker
//! holding replicas is fenced (a broker that is down may be restarting; moving its replicas
//! away would copy data for nothing), and the previous check, one
//! `shoal.balancer.check.interval.ms` earlier, found the same on this same active controller.
//! Each round starts at most `shoal.balancer.max.concurrent.moves`. So the balancer
//! never competes with an operator, never moves a partition twice at once, and its copying is
//! bounded; moves are ordinary reassignments, so their safety is the reassignment's.
//!
//! Brokers cordoned with `cordoned.log.dirs` (KIP-1066; `broker decommission` sets it) receive
//! nothing. Sizes come from the leaders' heartbeats ([`ReplicaSizes`]); a partition not yet
//! reported weighs nothing in bytes, but still counts as a replica.

use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::Duration;

use shoal_balance::{BalanceGoals, BrokerView, ClusterView, PartitionView, plan_balance};
use uuid::Uuid;

use crate::controller::{
    Controller, MAX_REPLICA_SIZES_PER_HEARTBEAT, PartitionReassignment, ReplicaSize,
    plan_alter_reassignments,
};
use crate::features::REASSIGNMENT_METADATA_VERSION;
use crate::image::MetadataImage;

/// The balancer's settings, as the active controller reads them each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalancerSettings {
    /// `shoal.balancer.enabled`
    pub enabled: bool,
    /// `shoal.balancer.max.concurrent.moves`: most moves one round starts.
    pub max_concurrent_moves: usize,
    /// `shoal.balancer.bytes.tolerance.percent`
    pub bytes_tolerance_percent: u32,
}

/// Why a round started nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BalancerIdle {
    /// Below the metadata.version that has reassignment.
    MetadataVersion(i16),
    /// Partitions are moving; the round waits for them.
    MovesInFlight(usize),
    /// A broker holding replicas is fenced (down or restarting).
    BrokerFenced(i32),
    /// Nothing to move: the cluster is within the goals.
    Balanced,
}

/// What one round decides, from the image and the reported sizes alone.
pub fn plan_balancer_round(
    image: &MetadataImage,
    sizes: &ReplicaSizes,
    settings: &BalancerSettings,
) -> Result<Vec<PartitionReassignment>, BalancerIdle> {
    if image.metadata_version() < REASSIGNMENT_METADATA_VERSION {
        return Err(BalancerIdle::MetadataVersion(image.metadata_version()));
    }
    let moving = image
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.is_reassigning())
        .count();
    if moving > 0 {
        return Err(BalancerIdle::MovesInFlight(moving));
    }
    let holding = |id: i32| {
        image
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .any(|p| p.replicas.contains(&id))
    };
    if let Some(down) = image
        .brokers
        .values()
        .find(|b| b.fenced && holding(b.broker_id))
    {
        return Err(BalancerIdle::BrokerFenced(down.broker_id));
    }
    let view = cluster_view(image, sizes);
    let plan = plan_balance(
        &view,
        BalanceGoals {
            bytes_tolerance_percent: settings.bytes_tolerance_percent,
            max_moves: settings.max_concurrent_moves.max(1),
        },
    );
    if plan.moves.is_empty() {
        return Err(BalancerIdle::Balanced);
    }
    Ok(plan
        .moves
        .into_iter()
        .map(|m| PartitionReassignment {
            topic: m.topic,
            partition: m.partition,
            replicas: Some(m.to),
        })
        .collect())
}

/// The cluster as the planner sees it: unfenced, uncordoned brokers accept replicas; brokers
/// named only in replica lists (unregistered) accept nothing.
pub fn cluster_view(image: &MetadataImage, sizes: &ReplicaSizes) -> ClusterView {
    let accepting: Vec<i32> = image.placement_brokers().iter().map(|b| b.id).collect();
    let mut view = ClusterView {
        brokers: image
            .brokers
            .values()
            .map(|b| BrokerView {
                id: b.broker_id,
                rack: b.rack.clone(),
                accepting: accepting.contains(&b.broker_id),
            })
            .collect(),
        partitions: Vec::new(),
    };
    for topic in image.topics.values() {
        for p in &topic.partitions {
            view.add_partition(PartitionView {
                topic: topic.name.clone(),
                partition: p.partition,
                replicas: p.replicas.clone(),
                size_bytes: sizes.size_bytes(topic.id, p.partition),
            });
        }
    }
    view.sort();
    view
}

/// What one check of [`run_replica_balancing`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BalancerRound {
    /// Not the active controller (or stopping).
    NotLeading,
    Disabled,
    Idle(BalancerIdle),
    /// Moves are due, but the previous check was not settled: the next one starts them.
    Settling,
    Started(usize),
    Failed,
}

impl BalancerRound {
    /// Whether the next check may start moves.
    fn settled(&self) -> bool {
        matches!(
            self,
            BalancerRound::Idle(BalancerIdle::Balanced) | BalancerRound::Settling
        )
    }
}

impl Controller {
    /// The balancer settings: the cluster-wide dynamic value, else this node's properties.
    fn balancer_settings(&self, image: &MetadataImage) -> BalancerSettings {
        let get = |name: &str| {
            image
                .broker_configs
                .cluster
                .get(name)
                .cloned()
                .or_else(|| self.defaults.effective(name))
                .unwrap_or_default()
        };
        BalancerSettings {
            enabled: get("shoal.balancer.enabled")
                .trim()
                .eq_ignore_ascii_case("true"),
            max_concurrent_moves: get("shoal.balancer.max.concurrent.moves")
                .trim()
                .parse::<usize>()
                .unwrap_or(4)
                .max(1),
            bytes_tolerance_percent: get("shoal.balancer.bytes.tolerance.percent")
                .trim()
                .parse::<u32>()
                .unwrap_or(10)
                .min(100),
        }
    }

    /// One balancer check (see the module docs); starts moves only if `settled`.
    pub(crate) async fn balancer_round(&self, settled: bool) -> BalancerRound {
        if self.not_running().is_some() || self.leading_term().is_none() {
            return BalancerRound::NotLeading;
        }
        let image = self.images.borrow().clone();
        let settings = self.balancer_settings(&image);
        if !settings.enabled {
            return BalancerRound::Disabled;
        }
        let planned = {
            let mut sizes = self.lock_replica_sizes();
            sizes.retain_existing(&image);
            plan_balancer_round(&image, &sizes, &settings)
        };
        match planned {
            Err(idle) => return BalancerRound::Idle(idle),
            Ok(_) if !settled => return BalancerRound::Settling,
            Ok(_) => {}
        }
        let Some((_writer, image, deadline)) = self.background_writer("balancer").await else {
            return BalancerRound::NotLeading;
        };
        let planned = plan_balancer_round(&image, &self.lock_replica_sizes(), &settings);
        let moves = match planned {
            Ok(moves) => moves,
            Err(idle) => return BalancerRound::Idle(idle),
        };
        let described: Vec<String> = moves
            .iter()
            .map(|m| format!("{}-{} -> {:?}", m.topic, m.partition, m.replicas))
            .collect();
        let outcome = self
            .propose_planned(plan_alter_reassignments(&image, moves, false), deadline)
            .await;
        let started = outcome.results.iter().filter(|r| r.is_ok()).count();
        match outcome.log_index {
            Some(log_index) if started > 0 => {
                tracing::info!(log_index, moves = ?described, "balancer started partition moves");
                BalancerRound::Started(started)
            }
            _ => {
                tracing::warn!(results = ?outcome.results, "balancer could not start its moves");
                BalancerRound::Failed
            }
        }
    }
}

/// Runs [`Controller::balancer_round`] every `check_interval` until the controller is dropped;
/// a round may start moves only after a settled one (see the module docs).
pub(crate) async fn run_replica_balancing(controller: Weak<Controller>, check_interval: Duration) {
    let period = check_interval.max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut settled = false;
    loop {
        ticks.tick().await;
        let Some(controller) = controller.upgrade() else {
            return;
        };
        let round = controller.balancer_round(settled).await;
        if let BalancerRound::Idle(idle) = &round {
            tracing::debug!(?idle, "balancer idle");
        }
        settled = round.settled();
    }
}

/// Partition sizes as their leaders last reported them on heartbeats. Hints for weighing
/// moves, never for safety. Bounded by the image: only a partition's current leader is heard,
/// only for partitions that exist, and [`ReplicaSizes::retain_existing`] drops deleted ones.
#[derive(Debug, Default)]
pub struct ReplicaSizes {
    by_partition: BTreeMap<(Uuid, i32), u64>,
}

impl ReplicaSizes {
    /// Takes `broker_id`'s report for the partitions it leads in `image`.
    pub fn record(&mut self, image: &MetadataImage, broker_id: i32, reported: &[ReplicaSize]) {
        for r in reported.iter().take(MAX_REPLICA_SIZES_PER_HEARTBEAT) {
            let leads = image
                .topic(&r.topic_id)
                .and_then(|t| t.partition(r.partition))
                .is_some_and(|p| p.leader == broker_id);
            if leads {
                self.by_partition
                    .insert((r.topic_id, r.partition), r.size_bytes);
            }
        }
    }

    /// The last reported size; 0 when none was.
    pub fn size_bytes(&self, topic_id: Uuid, partition: i32) -> u64 {
        self.by_partition
            .get(&(topic_id, partition))
            .copied()
            .unwrap_or(0)
    }

    /// Forgets partitions `image` no longer has.
    pub fn retain_existing(&mut self, image: &MetadataImage) {
        self.by_partition.retain(|(topic_id, partition), _| {
            image
                .topic(topic_id)
                .is_some_and(|t| t.partition(*partition).is_some())
        });
    }

    pub fn len(&self) -> usize {
        self.by_partition.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_partition.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_images::{TOPIC_ID, image_with};
    use crate::features::METADATA_VERSION;
    use crate::image::ApplyOutcome;
    use crate::records::MetadataRecord;

    const SETTINGS: BalancerSettings = BalancerSettings {
        enabled: true,
        max_concurrent_moves: 2,
        bytes_tolerance_percent: 10,
    };

    /// Brokers 1..=`brokers` (those in `fenced` fenced), topic "t" with every partition on
    /// `replicas`, at the metadata.version of `level`.
    fn image(brokers: i32, fenced: &[i32], replicas: &[&[i32]], level: i16) -> MetadataImage {
        let partitions: Vec<(&[i32], &[i32], i32)> =
            replicas.iter().map(|r| (*r, *r, r[0])).collect();
        let mut image = image_with(brokers, fenced, &partitions);
        apply(
            &mut image,
            MetadataRecord::FeatureLevel {
                name: METADATA_VERSION.into(),
                level,
            },
        );
        image
    }

    fn apply(image: &mut MetadataImage, record: MetadataRecord) {
        assert_eq!(image.apply(&record), ApplyOutcome::Applied);
    }

    fn cordon(image: &mut MetadataImage, broker_id: i32) {
        apply(
            image,
            MetadataRecord::BrokerConfig {
                broker_id: Some(broker_id),
                name: crate::image::CORDONED_LOG_DIRS.into(),
                value: Some("*".into()),
            },
        );
    }

    fn targets(plan: &[PartitionReassignment]) -> Vec<(i32, Vec<i32>)> {
        plan.iter()
            .map(|m| (m.partition, m.replicas.clone().unwrap_or_default()))
            .collect()
    }

    const FULL: &[&[i32]] = &[
        &[1, 2, 3],
        &[2, 3, 1],
        &[3, 1, 2],
        &[1, 3, 2],
        &[2, 1, 3],
        &[3, 2, 1],
    ];

    #[test]
    fn a_new_broker_gets_replicas_at_most_max_concurrent_moves_per_round() {
        let image = image(4, &[], FULL, REASSIGNMENT_METADATA_VERSION);
        let plan = plan_balancer_round(&image, &ReplicaSizes::default(), &SETTINGS)
            .expect("moves for the empty broker");
        assert_eq!(plan.len(), SETTINGS.max_concurrent_moves);
        for (partition, to) in targets(&plan) {
            assert!(to.contains(&4), "partition {partition} moves to 4: {to:?}");
            assert_eq!(to.len(), 3, "the replication factor is kept: {to:?}");
        }
        let one = BalancerSettings {
            max_concurrent_moves: 1,
            ..SETTINGS
        };
        assert_eq!(
            plan_balancer_round(&image, &ReplicaSizes::default(), &one).map(|p| p.len()),
            Ok(1)
        );
    }

    #[test]
    fn a_balanced_cluster_and_a_cordoned_broker_get_nothing() {
        let three = image(3, &[], FULL, REASSIGNMENT_METADATA_VERSION);
        assert_eq!(
            plan_balancer_round(&three, &ReplicaSizes::default(), &SETTINGS),
            Err(BalancerIdle::Balanced)
        );
        let mut four = image(4, &[], FULL, REASSIGNMENT_METADATA_VERSION);
        cordon(&mut four, 4);
        assert_eq!(
            plan_balancer_round(&four, &ReplicaSizes::default(), &SETTINGS),
            Err(BalancerIdle::Balanced),
            "a cordoned broker receives nothing"
        );
    }

    #[test]
    fn waits_for_moves_in_flight_fenced_brokers_and_the_metadata_version() {
        let old = image(4, &[], FULL, REASSIGNMENT_METADATA_VERSION - 1);
        assert_eq!(
            plan_balancer_round(&old, &ReplicaSizes::default(), &SETTINGS),
            Err(BalancerIdle::MetadataVersion(
                REASSIGNMENT_METADATA_VERSION - 1
            ))
        );
        // Broker 3 holds replicas and is down: wait. Broker 5 is down but holds nothing.
        let down = image(5, &[3, 5], FULL, REASSIGNMENT_METADATA_VERSION);
        assert_eq!(
            plan_balancer_round(&down, &ReplicaSizes::default(), &SETTINGS),
            Err(BalancerIdle::BrokerFenced(3))
        );
        let idle_down = image(5, &[5], FULL, REASSIGNMENT_METADATA_VERSION);
        let plan = plan_balancer_round(&idle_down, &ReplicaSizes::default(), &SETTINGS)
            .expect("a fenced broker without replicas does not hold the balancer back");
        assert!(
            targets(&plan).iter().all(|(_, to)| !to.contains(&5)),
            "nothing goes to a fenced broker"
        );
        // Start the round's moves: the next round waits for them.
        let mut moving = image(4, &[], FULL, REASSIGNMENT_METADATA_VERSION);
        let records: Vec<MetadataRecord> =
            crate::controller::plan_alter_reassignments(&moving, plan, true)
                .into_iter()
                .flat_map(|planned| planned.map(|(_, records)| records).unwrap_or_default())
                .collect();
        assert!(!records.is_empty());
        moving.apply_batch(moving.last_applied_index + 1, &records);
        assert_eq!(
            plan_balancer_round(&moving, &ReplicaSizes::default(), &SETTINGS),
            Err(BalancerIdle::MovesInFlight(2))
        );
    }

    #[test]
    fn sizes_are_heard_from_leaders_of_existing_partitions_only() {
        let image = image(3, &[], FULL, REASSIGNMENT_METADATA_VERSION);
        let size = |partition: i32, size_bytes: u64| ReplicaSize {
            topic_id: TOPIC_ID,
            partition,
            size_bytes,
        };
        let mut sizes = ReplicaSizes::default();
        // Partition 0 is led by 1, partition 1 by 2; partition 9 does not exist.
        sizes.record(&image, 1, &[size(0, 100), size(1, 999), size(9, 5)]);
        sizes.record(&image, 2, &[size(1, 200)]);
        assert_eq!(sizes.len(), 2);
        assert_eq!(sizes.size_bytes(TOPIC_ID, 0), 100);
        assert_eq!(sizes.size_bytes(TOPIC_ID, 1), 200);
        assert_eq!(sizes.size_bytes(TOPIC_ID, 2), 0, "not reported yet");
        let view = cluster_view(&image, &sizes);
        assert_eq!(
            view.partitions
                .iter()
                .map(|p| p.size_bytes)
                .collect::<Vec<_>>(),
            vec![100, 200, 0, 0, 0, 0]
        );
        let mut smaller = image.clone();
        apply(
            &mut smaller,
            MetadataRecord::RemoveTopic { topic_id: TOPIC_ID },
        );
        sizes.retain_existing(&smaller);
        assert!(sizes.is_empty());
    }

    #[test]
    fn bytes_decide_which_partition_moves() {
        // One replica each: broker 1 holds partitions 0-2, brokers 2 and 3 one each, 4 none.
        // One replica moves from 1 to 4, and of 1's partitions the one that evens their bytes
        // best: 6 000 (1 keeps 4 000), not 3 000 or 1 000.
        let image = image(
            4,
            &[],
            &[&[1], &[1], &[1], &[2], &[3]],
            REASSIGNMENT_METADATA_VERSION,
        );
        let mut sizes = ReplicaSizes::default();
        let report = [
            (0, 6_000u64),
            (1, 3_000),
            (2, 1_000),
            (3, 5_000),
            (4, 5_000),
        ];
        for (partition, size_bytes) in report {
            let leader = image
                .topic(&TOPIC_ID)
                .and_then(|t| t.partition(partition))
                .map(|p| p.leader)
                .unwrap_or_default();
            sizes.record(
                &image,
                leader,
                &[ReplicaSize {
                    topic_id: TOPIC_ID,
                    partition,
                    size_bytes,
                }],
            );
        }
        let plan = plan_balancer_round(&image, &sizes, &SETTINGS).expect("a move");
        assert_eq!(targets(&plan)[0], (0, vec![4]), "{plan:?}");
    }
}
