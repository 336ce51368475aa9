//! ISR decisions on the leader, as pure functions (Kafka's `Partition.maybeShrinkIsr`,
//! `maybeExpandIsr` and its "maximal ISR").
//!
//! The leader only *proposes* ISR changes (AlterPartition); the controller commits them. While
//! a proposal is in flight the leader counts the **maximal ISR** — the committed ISR plus any
//! member being added — for the high watermark, and keeps a member being removed until the
//! removal is committed: the high watermark then never runs ahead of what the committed ISR
//! (before or after the change) holds, so an acks=all success stays true whichever way the
//! controller decides.

use std::collections::BTreeMap;

use crate::follower_progress::FollowerProgress;

/// An ISR change sent to the controller and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingIsrChange {
    pub new_isr: Vec<i32>,
    /// The partition epoch the proposal was based on.
    pub partition_epoch: i32,
}

/// The ISR the high watermark is computed over: `committed` plus members a pending change adds.
pub fn maximal_isr(committed: &[i32], pending: Option<&PendingIsrChange>) -> Vec<i32> {
    let mut isr = committed.to_vec();
    if let Some(pending) = pending {
        for id in &pending.new_isr {
            if !isr.contains(id) {
                isr.push(*id);
            }
        }
    }
    isr
}

/// ISR members other than the leader that have not been caught up for `lag_max_ms`.
pub fn lagging_members(
    leader: i32,
    isr: &[i32],
    followers: &BTreeMap<i32, FollowerProgress>,
    now_ms: i64,
    lag_max_ms: i64,
) -> Vec<i32> {
    isr.iter()
        .copied()
        .filter(|id| *id != leader)
        .filter(|id| {
            followers
                .get(id)
                .is_some_and(|p| p.is_lagging(now_ms, lag_max_ms))
        })
        .collect()
}

/// Whether a follower outside the ISR may join it: it holds everything up to the high
/// watermark, and everything the current leader epoch wrote before it (so it has resolved any
/// divergence from an earlier leader).
pub fn may_join_isr(
    progress: &FollowerProgress,
    high_watermark: i64,
    leader_epoch_start_offset: i64,
) -> bool {
    progress.log_end_offset >= 0
        && progress.log_end_offset >= high_watermark
        && progress.log_end_offset >= leader_epoch_start_offset
}

/// What a leader knows about its partition when deciding on the ISR.
#[derive(Debug, Clone, Copy)]
pub struct LeaderView<'a> {
    pub leader: i32,
    pub replicas: &'a [i32],
    /// The committed ISR.
    pub isr: &'a [i32],
    pub followers: &'a BTreeMap<i32, FollowerProgress>,
    pub high_watermark: i64,
    pub leader_epoch_start_offset: i64,
}

/// What the leader should propose next, if anything: removing lagging members first (a
/// stuck follower holds back acks=all), else adding caught-up ones. Returns the new ISR in
/// replica order.
pub fn next_isr_change(view: &LeaderView<'_>, now_ms: i64, lag_max_ms: i64) -> Option<Vec<i32>> {
    let LeaderView {
        leader,
        replicas,
        isr,
        followers,
        high_watermark,
        leader_epoch_start_offset,
    } = *view;
    let lagging = lagging_members(leader, isr, followers, now_ms, lag_max_ms);
    let wanted: Vec<i32> = if !lagging.is_empty() {
        isr.iter()
            .copied()
            .filter(|id| !lagging.contains(id))
            .collect()
    } else {
        let joining: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|id| *id != leader && !isr.contains(id))
            .filter(|id| {
                followers
                    .get(id)
                    .is_some_and(|p| may_join_isr(p, high_watermark, leader_epoch_start_offset))
            })
            .collect();
        if joining.is_empty() {
            return None;
        }
        isr.iter().chain(&joining).copied().collect()
    };
    Some(
        replicas
            .iter()
            .copied()
            .filter(|id| wanted.contains(id))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(
        leader: i32,
        replicas: &'a [i32],
        isr: &'a [i32],
        followers: &'a BTreeMap<i32, FollowerProgress>,
        high_watermark: i64,
        leader_epoch_start_offset: i64,
    ) -> LeaderView<'a> {
        LeaderView {
            leader,
            replicas,
            isr,
            followers,
            high_watermark,
            leader_epoch_start_offset,
        }
    }

    fn progress(leo: i64, caught_up_ms: i64) -> FollowerProgress {
        FollowerProgress {
            broker_epoch: 1,
            log_end_offset: leo,
            last_fetch_ms: caught_up_ms,
            last_fetch_leader_log_end_offset: leo,
            last_caught_up_ms: caught_up_ms,
            log_start_offset: None,
        }
    }

    #[test]
    fn the_maximal_isr_adds_pending_members_and_keeps_pending_removals() {
        let adding = PendingIsrChange {
            new_isr: vec![1, 2, 3],
            partition_epoch: 4,
        };
        assert_eq!(maximal_isr(&[1, 2], Some(&adding)), vec![1, 2, 3]);
        let removing = PendingIsrChange {
            new_isr: vec![1],
            partition_epoch: 4,
        };
        assert_eq!(maximal_isr(&[1, 2], Some(&removing)), vec![1, 2]);
        assert_eq!(maximal_isr(&[1, 2], None), vec![1, 2]);
    }

    #[test]
    fn lagging_members_are_removed_first() {
        let followers = BTreeMap::from([(2, progress(100, 0)), (3, progress(100, 9_000))]);
        // 2 lagging (caught up at 0, lag max 5 s at 10 s); 3 is fine.
        assert_eq!(
            next_isr_change(
                &view(1, &[1, 2, 3], &[1, 2, 3], &followers, 100, 0),
                10_000,
                5_000
            ),
            Some(vec![1, 3])
        );
        // The leader is never removed, and an unknown member (no progress) is not judged.
        assert_eq!(
            lagging_members(1, &[1, 4], &followers, 10_000, 5_000),
            Vec::<i32>::new()
        );
    }

    #[test]
    fn caught_up_followers_join_in_replica_order() {
        let followers = BTreeMap::from([(3, progress(100, 9_000)), (2, progress(120, 9_000))]);
        assert_eq!(
            next_isr_change(
                &view(1, &[3, 1, 2], &[1], &followers, 100, 50),
                10_000,
                5_000
            ),
            Some(vec![3, 1, 2])
        );
        // Behind the high watermark, or behind the leader epoch's start: not yet.
        assert_eq!(
            next_isr_change(
                &view(1, &[1, 2, 3], &[1], &followers, 110, 0),
                10_000,
                5_000
            ),
            Some(vec![1, 2])
        );
        assert_eq!(
            next_isr_change(
                &view(1, &[1, 2, 3], &[1], &followers, 100, 130),
                10_000,
                5_000
            ),
            None
        );
        // Nothing to change.
        assert_eq!(
            next_isr_change(
                &view(1, &[1, 2, 3], &[1, 2, 3], &followers, 100, 0),
                10_000,
                5_000
            ),
            None
        );
    }

    #[test]
    fn a_follower_of_unknown_position_never_joins() {
        let unknown = FollowerProgress::at_leadership_start(false, 0);
        assert!(!may_join_isr(&unknown, 0, 0));
        assert!(may_join_isr(&progress(0, 0), 0, 0));
    }
}
