//! Unavailability after each fault, from the acks alone: the idempotent producers' acks, or,
//! when only the exactly-once workload runs, the commits of its source transactions (one "ack"
//! per partition a committed transaction wrote, at the time the commit returned).
//!
//! A fault makes the partitions the victim led refuse writes until the controller moves their
//! leadership; the others carry on. Each partition's outage is its longest stretch without an
//! ack that overlaps the fault (from injection until the next fault, at most
//! [`RECOVERY_WINDOW_US`] after the heal); the slowest partition's outage is the fault's
//! unavailability. Gaps, not "first ack after the fault", because injecting a fault takes the
//! docker CLI a noticeable time: records sent before it bites are acked at once and say
//! nothing about the outage that follows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::history::{Ack, Fault, FaultKind, VictimChoice};

/// How long after a heal an outage is still blamed on the fault.
pub const RECOVERY_WINDOW_US: u64 = 30_000_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultImpact {
    pub kind: FaultKind,
    pub node: u32,
    /// Why the node was picked (`random`, `txn-coordinator`, `group-coordinator`, `each`).
    pub victim: VictimChoice,
    pub victim_detail: String,
    pub start_s: f64,
    pub end_s: f64,
    /// Time from the fault until every partition acknowledged a write sent after it; `None`
    /// when some partition acknowledged nothing sent after the fault.
    pub unavailable_ms: Option<f64>,
    /// The partition that took longest.
    pub slowest_partition: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub median_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Faults after which some partition never acknowledged a write again.
    pub never_recovered: usize,
}

/// (partition, acked_us) of each ack.
pub fn ack_times(acks: &[Ack]) -> Vec<(i32, u64)> {
    acks.iter().map(|a| (a.partition, a.acked_us)).collect()
}

/// Per fault, in the order given (which must be time order), from `acks` as (partition,
/// acked_us). `partitions` are the topic's partitions: one that acknowledges nothing after a
/// fault makes it "never recovered".
pub fn impacts(acks: &[(i32, u64)], faults: &[Fault], partitions: &[i32]) -> Vec<FaultImpact> {
    let mut by_partition: BTreeMap<i32, Vec<u64>> =
        partitions.iter().map(|p| (*p, Vec::new())).collect();
    for &(partition, acked_us) in acks {
        by_partition.entry(partition).or_default().push(acked_us);
    }
    for times in by_partition.values_mut() {
        times.sort_unstable();
    }
    faults
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut window_end = f.end_us.saturating_add(RECOVERY_WINDOW_US);
            if let Some(next) = faults.get(i + 1) {
                window_end = window_end.min(next.start_us.max(f.end_us));
            }
            let mut worst: Option<(u64, i32)> = None;
            let mut recovered = true;
            for (partition, times) in &by_partition {
                match longest_gap(times, f.start_us, window_end) {
                    None => recovered = false,
                    Some(gap) => {
                        if worst.is_none_or(|(w, _)| gap > w) {
                            worst = Some((gap, *partition));
                        }
                    }
                }
            }
            FaultImpact {
                kind: f.kind,
                node: f.node,
                victim: f.victim,
                victim_detail: f.victim_detail.clone(),
                start_s: f.start_us as f64 / 1e6,
                end_s: f.end_us as f64 / 1e6,
                unavailable_ms: worst.filter(|_| recovered).map(|(us, _)| us as f64 / 1e3),
                slowest_partition: worst.map(|(_, p)| p),
            }
        })
        .collect()
}

/// The longest time without an ack inside `[from, to]` (a gap that began before `from` counts
/// from `from`); `None` when nothing was acked at or after `from`.
fn longest_gap(sorted_acks: &[u64], from: u64, to: u64) -> Option<u64> {
    let first_after = sorted_acks.partition_point(|t| *t < from);
    sorted_acks.get(first_after)?;
    let mut previous = from;
    let mut longest = 0;
    for &t in &sorted_acks[first_after..] {
        // A gap running past the window is this fault's only up to the window's end.
        longest = longest.max(t.min(to.max(previous)) - previous);
        previous = t;
        if t >= to {
            break;
        }
    }
    Some(longest)
}

pub fn summarize(impacts: &[FaultImpact]) -> Summary {
    let mut times: Vec<f64> = impacts.iter().filter_map(|i| i.unavailable_ms).collect();
    times.sort_by(f64::total_cmp);
    let median_ms = if times.is_empty() {
        None
    } else if times.len() % 2 == 1 {
        Some(times[times.len() / 2])
    } else {
        Some((times[times.len() / 2 - 1] + times[times.len() / 2]) / 2.0)
    };
    Summary {
        median_ms,
        max_ms: times.last().copied(),
        never_recovered: impacts
            .iter()
            .filter(|i| i.unavailable_ms.is_none())
            .count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(partition: i32, _sent_ms: u64, acked_ms: u64) -> (i32, u64) {
        (partition, acked_ms * 1000)
    }

    fn fault(start_ms: u64) -> Fault {
        Fault {
            kind: FaultKind::Kill,
            node: 2,
            victim: VictimChoice::Random,
            victim_detail: String::new(),
            start_us: start_ms * 1000,
            end_us: (start_ms + 3000) * 1000,
        }
    }

    #[test]
    fn the_slowest_partition_sets_the_unavailability() {
        let mut acks = Vec::new();
        // Partition 0 is unaffected: an ack every 10 ms throughout.
        for t in (0..5000).step_by(10) {
            acks.push(ack(0, t, t + 2));
        }
        // Partition 1's leader dies at 1000: acks go on briefly (the fault takes a while to
        // bite), then nothing from 1200 until the new leader at 2900.
        for t in (0..1200).step_by(10) {
            acks.push(ack(1, t, t + 2));
        }
        for t in (2900..5000).step_by(10) {
            acks.push(ack(1, t, t));
        }
        let i = impacts(&acks, &[fault(1000)], &[0, 1]);
        assert_eq!(i[0].unavailable_ms, Some(1708.0)); // 2900 - the last ack at 1192
        assert_eq!(i[0].slowest_partition, Some(1));
    }

    #[test]
    fn a_gap_that_began_before_the_fault_counts_from_the_fault() {
        let acks = vec![ack(0, 0, 0), ack(0, 1500, 1500)];
        let i = impacts(&acks, &[fault(1000)], &[0]);
        assert_eq!(i[0].unavailable_ms, Some(500.0));
    }

    #[test]
    fn gaps_after_the_next_fault_are_the_next_faults() {
        let mut acks = Vec::new();
        for t in (0..20_000).step_by(10) {
            // An outage at 10 s, after the second fault started.
            if !(10_000..13_000).contains(&t) {
                acks.push(ack(0, t, t));
            }
        }
        let i = impacts(&acks, &[fault(1000), fault(9_990)], &[0]);
        assert_eq!(i[0].unavailable_ms, Some(10.0));
        assert_eq!(i[1].unavailable_ms, Some(3010.0));
    }

    #[test]
    fn a_partition_with_no_later_ack_never_recovered() {
        let acks = vec![ack(0, 1010, 1012), ack(1, 500, 505)];
        let i = impacts(&acks, &[fault(1000)], &[0, 1]);
        assert_eq!(i[0].unavailable_ms, None);
        let s = summarize(&i);
        assert_eq!(s.never_recovered, 1);
        assert_eq!(s.max_ms, None);
    }

    #[test]
    fn median_and_max() {
        // Outages of 100, 2000 and 500 ms right after faults at 1, 5 and 9 s.
        let outages = [(1000, 1100), (5000, 7000), (9000, 9500)];
        let acks: Vec<(i32, u64)> = (0..12_000)
            .step_by(5)
            .filter(|t| !outages.iter().any(|(a, b)| (*a..*b).contains(t)))
            .map(|t| ack(0, t, t))
            .collect();
        let faults = [fault(1000), fault(5000), fault(9000)];
        let i = impacts(&acks, &faults, &[0]);
        let got: Vec<Option<f64>> = i.iter().map(|f| f.unavailable_ms).collect();
        assert_eq!(got, vec![Some(100.0), Some(2000.0), Some(500.0)]);
        let s = summarize(&i);
        assert_eq!(s.median_ms, Some(500.0));
        assert_eq!(s.max_ms, Some(2000.0));
    }
}
