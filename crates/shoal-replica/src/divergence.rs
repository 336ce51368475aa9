//! Finding where a follower's log diverges from its leader's, by leader epoch (Kafka's
//! KIP-101 / KIP-279, in the fetch-based form of KIP-320 / KIP-595).
//!
//! **Why by epoch, not by high watermark.** A follower's log may hold batches an old leader
//! wrote and nobody committed; the new leader may have written other batches at the same
//! offsets. Offsets alone cannot tell the two apart; epochs can: two logs that hold the same
//! epoch agree up to where the shorter one's copy of that epoch ends (one leader wrote it).
//!
//! Every follower fetch carries the epoch of the follower's last batch (`last_fetched_epoch`).
//! The leader answers "diverging" with its own largest epoch ≤ that one and where that epoch
//! ends in its log ([`diverging_epoch`]). The follower truncates ([`truncation_offset`]) and
//! fetches again with its new last epoch; each round strictly lowers the epoch in question, so
//! this converges, and the follower never keeps a batch the leader does not have at the same
//! offset and epoch.

/// A leader epoch and the offset where it ends in a log (the next epoch's start, or the log
/// end). `epoch == -1` is Kafka's UNDEFINED: the log has no epoch at or below the one asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    pub epoch: i32,
    pub end_offset: i64,
}

pub const UNDEFINED_EPOCH_END_OFFSET: EpochEndOffset = EpochEndOffset {
    epoch: -1,
    end_offset: -1,
};

/// Leader side: whether a fetch at `fetch_offset` by a follower whose last batch has
/// `last_fetched_epoch` is consistent with the leader's log. `leader_end_for_epoch` is the
/// leader's `end_offset_for_epoch(last_fetched_epoch)`. `None` = consistent (serve the fetch).
pub fn diverging_epoch(
    last_fetched_epoch: i32,
    fetch_offset: i64,
    leader_end_for_epoch: Option<(i32, i64)>,
) -> Option<EpochEndOffset> {
    if last_fetched_epoch < 0 {
        // An empty follower log: nothing to diverge.
        return None;
    }
    match leader_end_for_epoch {
        None => Some(UNDEFINED_EPOCH_END_OFFSET),
        Some((epoch, end_offset)) if epoch < last_fetched_epoch || end_offset < fetch_offset => {
            Some(EpochEndOffset { epoch, end_offset })
        }
        Some(_) => None,
    }
}

/// Follower side: where to truncate after the leader reported `diverging`.
///
/// `local_end_for_epoch` is the follower's own `end_offset_for_epoch(diverging.epoch)`.
/// - Both logs have that epoch: they agree up to where the shorter copy ends.
/// - The follower's largest epoch ≤ it is older: everything from the follower's next epoch on
///   is unknown to the leader; cut there and ask again with the older epoch.
/// - The follower has no such epoch, or the leader had none (UNDEFINED): nothing the follower
///   holds is known to be on the leader above its high watermark (Kafka's rule for UNDEFINED);
///   cut to it.
///
/// The result never exceeds `local_log_end_offset`.
pub fn truncation_offset(
    diverging: EpochEndOffset,
    local_end_for_epoch: Option<(i32, i64)>,
    local_log_end_offset: i64,
    local_high_watermark: i64,
) -> i64 {
    let offset = if diverging.epoch < 0 {
        local_high_watermark
    } else {
        match local_end_for_epoch {
            Some((epoch, end)) if epoch == diverging.epoch => end.min(diverging.end_offset),
            Some((_, end)) => end,
            None => local_high_watermark,
        }
    };
    offset.min(local_log_end_offset).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log as (epoch, start offset) entries plus its end; `end_offset_for_epoch` as Kafka's
    /// LeaderEpochFileCache answers it.
    struct Log {
        epochs: Vec<(i32, i64)>,
        end: i64,
    }

    impl Log {
        fn end_for(&self, epoch: i32) -> Option<(i32, i64)> {
            let i = self.epochs.iter().rposition(|(e, _)| *e <= epoch)?;
            let end = self.epochs.get(i + 1).map_or(self.end, |(_, start)| *start);
            Some((self.epochs[i].0, end))
        }

        fn last_epoch(&self) -> i32 {
            self.epochs.last().map_or(-1, |(e, _)| *e)
        }

        fn truncate(&mut self, offset: i64) {
            self.end = self.end.min(offset);
            self.epochs.retain(|(_, start)| *start < offset);
        }
    }

    /// Runs the fetch/truncate rounds until the follower's fetch is consistent; returns the
    /// follower's end then, and the number of rounds.
    fn converge(leader: &Log, follower: &mut Log, follower_hw: i64) -> (i64, usize) {
        for round in 1..=20 {
            let diverging = diverging_epoch(
                follower.last_epoch(),
                follower.end,
                leader.end_for(follower.last_epoch()),
            );
            match diverging {
                None => return (follower.end, round),
                Some(d) => {
                    let to =
                        truncation_offset(d, follower.end_for(d.epoch), follower.end, follower_hw);
                    assert!(to <= follower.end);
                    follower.truncate(to);
                }
            }
        }
        panic!("did not converge");
    }

    #[test]
    fn a_consistent_follower_is_served() {
        let leader = Log {
            epochs: vec![(0, 0), (2, 50)],
            end: 80,
        };
        assert_eq!(diverging_epoch(2, 70, leader.end_for(2)), None);
        assert_eq!(diverging_epoch(2, 80, leader.end_for(2)), None);
        assert_eq!(diverging_epoch(0, 50, leader.end_for(0)), None);
        assert_eq!(diverging_epoch(-1, 0, None), None);
    }

    #[test]
    fn an_uncommitted_tail_of_an_old_leader_is_cut() {
        // The follower led epoch 1 from 40 and wrote to 60; the new leader (epoch 2) took over
        // at 45 after copying only up to 45 of epoch 1.
        let leader = Log {
            epochs: vec![(0, 0), (1, 40), (2, 45)],
            end: 90,
        };
        let mut follower = Log {
            epochs: vec![(0, 0), (1, 40)],
            end: 60,
        };
        assert_eq!(
            diverging_epoch(1, 60, leader.end_for(1)),
            Some(EpochEndOffset {
                epoch: 1,
                end_offset: 45
            })
        );
        let (end, rounds) = converge(&leader, &mut follower, 30);
        assert_eq!((end, rounds), (45, 2));
    }

    #[test]
    fn an_epoch_the_leader_never_saw_takes_another_round() {
        // The follower has epoch 3 (a leadership the new leader never heard of) on top of
        // epoch 1; the leader has 1 then 4.
        let leader = Log {
            epochs: vec![(1, 0), (4, 30)],
            end: 50,
        };
        let mut follower = Log {
            epochs: vec![(1, 0), (3, 20)],
            end: 40,
        };
        // Round 1: leader's largest epoch ≤ 3 is 1, ending at 30. The follower has 1 (ending
        // at 20): cut to 20. Round 2: consistent at 20 with epoch 1 ≤ 30.
        let (end, rounds) = converge(&leader, &mut follower, 0);
        assert_eq!((end, rounds), (20, 2));
    }

    #[test]
    fn older_epochs_missing_on_the_follower_cut_to_its_next_epoch() {
        // Leader: 0 then 2 at 10. Follower: 1 at 5 (unknown to the leader), 3 at 8.
        let leader = Log {
            epochs: vec![(0, 0), (2, 10)],
            end: 30,
        };
        let mut follower = Log {
            epochs: vec![(0, 0), (1, 5), (3, 8)],
            end: 20,
        };
        let (end, _) = converge(&leader, &mut follower, 0);
        assert_eq!(end, 5);
        assert_eq!(follower.last_epoch(), 0);
    }

    #[test]
    fn undefined_cuts_to_the_high_watermark() {
        // The leader has no epoch ≤ the follower's (retention removed it): keep only the HW.
        assert_eq!(
            diverging_epoch(1, 10, None),
            Some(UNDEFINED_EPOCH_END_OFFSET)
        );
        assert_eq!(
            truncation_offset(UNDEFINED_EPOCH_END_OFFSET, Some((1, 10)), 10, 4),
            4
        );
        // Never above the log end, never negative.
        assert_eq!(
            truncation_offset(
                EpochEndOffset {
                    epoch: 2,
                    end_offset: 99
                },
                Some((2, 50)),
                30,
                0
            ),
            30
        );
        assert_eq!(
            truncation_offset(UNDEFINED_EPOCH_END_OFFSET, None, 10, -1),
            0
        );
    }

    /// Many random histories: after converging, the follower is a prefix of the leader in
    /// (offset, epoch) terms and never lost a batch both held at the same epoch.
    #[test]
    fn random_histories_converge_to_a_common_prefix() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..2_000 {
            // A shared prefix, then each side continues with its own epochs (the leader's are
            // always the newest).
            let mut shared = vec![(0, 0)];
            let mut end = 0i64;
            let mut epoch = 0;
            for _ in 0..next(4) {
                end += 1 + next(10) as i64;
                epoch += 1 + next(2) as i32;
                shared.push((epoch, end));
            }
            end += 1 + next(10) as i64;
            let common_end = end;
            let mut follower = Log {
                epochs: shared.clone(),
                end: common_end,
            };
            let mut f_epoch = epoch;
            for _ in 0..next(3) {
                f_epoch += 1;
                follower.epochs.push((f_epoch, follower.end));
                follower.end += 1 + next(10) as i64;
            }
            let mut leader = Log {
                epochs: shared,
                end: common_end,
            };
            let mut l_epoch = f_epoch.max(epoch);
            for _ in 0..1 + next(3) {
                l_epoch += 1;
                leader.epochs.push((l_epoch, leader.end));
                leader.end += 1 + next(10) as i64;
            }
            let (end, _) = converge(&leader, &mut follower, 0);
            assert_eq!(end, common_end, "kept exactly the common prefix");
            // Whatever is left has the same epoch at every offset on both sides.
            for offset in 0..end {
                let epoch_at = |log: &Log| {
                    log.epochs
                        .iter()
                        .rev()
                        .find(|(_, s)| *s <= offset)
                        .map(|(e, _)| *e)
                };
                assert_eq!(epoch_at(&follower), epoch_at(&leader), "offset {offset}");
            }
        }
    }
}
