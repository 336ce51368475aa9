//! What happened during a run, as the clients and the nemesis saw it.
//!
//! The checker judges the cluster only by this record, Jepsen-style: what producers were told
//! was acknowledged, what the group consumed and committed, what a final reader found in the
//! log, and when each fault began and ended. Times are microseconds since the run started, on
//! one monotonic clock shared by every thread, so events from different threads compare.
//! The exactly-once workload's part of the record is in [`eos`].

pub mod eos;

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;

/// A record's identity: which producer sent it and its number in that producer's sequence.
/// Carried as the record value (`producer:seq`), so it survives the trip through the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RecordId {
    pub producer: u32,
    pub seq: u64,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.producer, self.seq)
    }
}

impl FromStr for RecordId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (p, q) = s
            .split_once(':')
            .ok_or_else(|| format!("record value {s:?} is not producer:seq"))?;
        Ok(RecordId {
            producer: p.parse().map_err(|_| format!("bad producer in {s:?}"))?,
            seq: q.parse().map_err(|_| format!("bad sequence in {s:?}"))?,
        })
    }
}

/// The producer was told this record is stored at `partition`/`offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ack {
    pub id: RecordId,
    pub partition: i32,
    pub offset: i64,
    pub sent_us: u64,
    pub acked_us: u64,
}

/// The producer was told this record failed (it may or may not be in the log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendFailure {
    pub id: RecordId,
    pub partition: i32,
    pub sent_us: u64,
    pub failed_us: u64,
    pub error: String,
}

/// A group member was handed this record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Consumed {
    pub member: u32,
    pub id: RecordId,
    pub partition: i32,
    pub offset: i64,
    pub at_us: u64,
}

/// A group member's commit of `offset` (the next offset to read) succeeded at `at_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Commit {
    pub member: u32,
    pub partition: i32,
    pub offset: i64,
    pub at_us: u64,
}

/// What the final reader found at `partition`/`offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub id: RecordId,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL (or `docker kill`), then a restart.
    Kill,
    /// SIGSTOP (or `docker pause`) past the session timeout, then SIGCONT.
    Pause,
    /// The node loses its network (`docker network disconnect`), then gets it back.
    Partition,
    /// SIGTERM (controlled shutdown), restart, wait for the ISR to fill; one node of a rolling
    /// restart.
    Restart,
    /// SIGKILL, the node's data directory deleted (a replaced disk), a restart with the same
    /// id; over once it re-replicated every partition and, as a controller, got its vote back
    /// (`shoalctl cluster quorum add-voter`, KIP-853).
    Replace,
    /// A partition on the node (its coordinator partition when aimed at a coordinator) is
    /// moved off it and back (KIP-455 reassignment, twice): its replica there is deleted and
    /// copied again from scratch, and leadership leaves it if it led.
    Reassign,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Restart => "restart",
            FaultKind::Replace => "replace",
            FaultKind::Reassign => "reassign",
        }
    }
}

/// Why the nemesis picked a fault's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VictimChoice {
    /// Any node, by the seed.
    Random,
    /// The leader of a transactional id's `__transaction_state` partition: its transaction
    /// coordinator.
    TxnCoordinator,
    /// The leader of a group's `__consumer_offsets` partition: its group coordinator.
    GroupCoordinator,
    /// Every node in turn (a rolling restart).
    Each,
}

impl VictimChoice {
    pub fn name(self) -> &'static str {
        match self {
            VictimChoice::Random => "random",
            VictimChoice::TxnCoordinator => "txn-coordinator",
            VictimChoice::GroupCoordinator => "group-coordinator",
            VictimChoice::Each => "each",
        }
    }
}

/// One fault: injected at `start_us`, healed at `end_us`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub node: u32,
    pub victim: VictimChoice,
    /// For a coordinator: whose (the transactional id or group) and which partition.
    pub victim_detail: String,
    pub start_us: u64,
    pub end_us: u64,
}

/// Everything recorded in a run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct History {
    pub sent: u64,
    pub acks: Vec<Ack>,
    pub failures: Vec<SendFailure>,
    pub consumed: Vec<Consumed>,
    pub commits: Vec<Commit>,
    pub observed: Vec<Observed>,
    pub faults: Vec<Fault>,
    /// The exactly-once workload's record (empty when it did not run).
    pub eos: eos::EosHistory,
}

/// The shared recorder every workload thread and the nemesis write into.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    history: Arc<Mutex<History>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            started: Instant::now(),
            history: Arc::new(Mutex::new(History::default())),
        }
    }

    /// Microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub fn lock(&self) -> MutexGuard<'_, History> {
        // A panicking thread must not hide what the others recorded.
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> History {
        self.lock().clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_round_trip_through_the_value_format() {
        let id = RecordId {
            producer: 3,
            seq: 1_234_567,
        };
        assert_eq!(id.to_string().parse::<RecordId>(), Ok(id));
        assert!("3-4".parse::<RecordId>().is_err());
        assert!("x:4".parse::<RecordId>().is_err());
        assert!("3:".parse::<RecordId>().is_err());
    }
}
