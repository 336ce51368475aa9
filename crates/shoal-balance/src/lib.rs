//! Where replicas should live: the plans behind `shoalctl broker decommission` and `shoalctl
//! cluster balance` (Redpanda's decommission and balancer, Cruise Control's goals, cut down to
//! what an operator checks by eye), as pure functions of a cluster view.
//!
//! **Why pure.** A plan is computed from what the cluster reports (Metadata for replicas and
//! racks, DescribeLogDirs for sizes) and then carried out by ordinary partition reassignment
//! (KIP-455), which is where safety lives: a move never drops a replica before its replacement
//! is in sync. So planning can be a deterministic function with table tests, shared by the CLI
//! today and a continuous balancer in the controller later; the same view always gives the
//! same plan, and `--dry-run` shows exactly what `--execute` would do.
//!
//! **Goals, in order.** Racks first: a move never leaves a partition on fewer racks than it
//! had (brokers without `broker.rack` count as one rack, as in placement). Then replica counts
//! per broker (most minus fewest at most one), then preferred leaders per broker (the first
//! replica; reordering costs no data), then bytes per broker within a tolerance, with the
//! fewest moves: each step moves one replica from the most loaded broker to the least loaded
//! one that can take it, choosing the partition that brings their bytes closest.

mod balance;
mod decommission;
mod load;

pub use balance::{BalanceGoals, plan_balance};
pub use decommission::plan_decommission;
pub use load::BrokerLoad;

/// A broker as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerView {
    pub id: i32,
    /// `broker.rack`; brokers without one form one rack together.
    pub rack: Option<String>,
    /// Whether replicas may be moved to it (registered, running, not being retired).
    pub accepting: bool,
}

/// A partition as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub topic: String,
    pub partition: i32,
    /// The first is the preferred leader.
    pub replicas: Vec<i32>,
    /// The size of one replica (the largest the brokers reported).
    pub size_bytes: u64,
}

/// Everything a plan is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub brokers: Vec<BrokerView>,
    pub partitions: Vec<PartitionView>,
}

impl ClusterView {
    /// Adds a partition; brokers its replicas name that the view lacks (down, unregistered)
    /// join it without a rack, accepting nothing.
    pub fn add_partition(&mut self, partition: PartitionView) {
        for id in &partition.replicas {
            if !self.brokers.iter().any(|b| b.id == *id) {
                self.brokers.push(BrokerView {
                    id: *id,
                    rack: None,
                    accepting: false,
                });
            }
        }
        self.partitions.push(partition);
    }

    /// Partitions by (topic, partition) and brokers by id: the order plans are computed in, so
    /// the same cluster always gives the same plan.
    pub fn sort(&mut self) {
        self.partitions
            .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        self.brokers.sort_by_key(|b| b.id);
    }
}

/// One partition's move: its replicas before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMove {
    pub topic: String,
    pub partition: i32,
    pub from: Vec<i32>,
    pub to: Vec<i32>,
    /// Bytes copied to the brokers the partition is added to.
    pub bytes_to_copy: u64,
}

/// A plan: the moves, and each broker's load before and after them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub moves: Vec<PlannedMove>,
    pub before: Vec<BrokerLoad>,
    pub after: Vec<BrokerLoad>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A partition on a leaving broker has no broker to go to.
    #[error(
        "{topic}-{partition} (replicas {replicas:?}) has nowhere to go from broker {broker}: \
         every broker that accepts replicas already holds one"
    )]
    NoDestination {
        topic: String,
        partition: i32,
        replicas: Vec<i32>,
        broker: i32,
    },
    #[error("broker {0} is not in the cluster")]
    UnknownBroker(i32),
}

/// The plan taking `view`'s partitions to `target` replicas (by index into `view.partitions`),
/// with loads before and after; partitions whose replicas do not change are left out.
fn finish(view: &ClusterView, target: &[Vec<i32>]) -> Plan {
    let moves = view
        .partitions
        .iter()
        .zip(target)
        .filter(|(p, to)| p.replicas != **to)
        .map(|(p, to)| PlannedMove {
            topic: p.topic.clone(),
            partition: p.partition,
            from: p.replicas.clone(),
            to: to.clone(),
            bytes_to_copy: p.size_bytes
                * to.iter().filter(|b| !p.replicas.contains(b)).count() as u64,
        })
        .collect();
    Plan {
        moves,
        before: load::loads(view, view.partitions.iter().map(|p| &p.replicas)),
        after: load::loads(view, target.iter()),
    }
}
