//! The high watermark rule, as a pure function.
//!
//! The high watermark (HW) is the offset below which every record is on every in-sync replica.
//! Consumers read only below it, and an acks=all produce succeeds only once the HW passes the
//! batch — so the rule that moves it is the heart of safety rules 1 and 4 in ARCHITECTURE.md.
//! Keeping it free of I/O makes it easy to test exhaustively.

use std::collections::BTreeMap;

/// Log end offsets the leader knows, keyed by broker id (the leader's own included).
pub type ReplicaLogEndOffsets = BTreeMap<i32, i64>;

/// The HW the leader may move to: the smallest log end offset among ISR members.
///
/// An ISR member whose log end offset the leader has not learned yet holds the HW where it is
/// (it counts as `current_hw`), because nothing proves it has any record beyond it.
pub fn high_watermark_candidate(
    current_hw: i64,
    isr: &[i32],
    log_end_offsets: &ReplicaLogEndOffsets,
) -> i64 {
    isr.iter()
        .map(|id| log_end_offsets.get(id).copied().unwrap_or(current_hw))
        .min()
        .unwrap_or(current_hw)
}

/// Moves the HW forward to `candidate` if that is an advance; a leader's HW never goes back.
pub fn advance_high_watermark(current_hw: i64, candidate: i64) -> Option<i64> {
    (candidate > current_hw).then_some(candidate)
}

/// Whether a leader may answer offset queries (ListOffsets) from its HW yet.
///
/// A new leader starts with the HW it learned as a follower, which lags the real one by up to
/// a fetch round; the followers' next fetches bring it up to date. Until the HW reaches the
/// offset where this leadership began, "latest" would report an offset below records that were
/// already acknowledged, so Kafka answers OFFSET_NOT_AVAILABLE and the client retries.
pub fn offsets_available(high_watermark: i64, leader_epoch_start_offset: i64) -> bool {
    high_watermark >= leader_epoch_start_offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leos(pairs: &[(i32, i64)]) -> ReplicaLogEndOffsets {
        pairs.iter().copied().collect()
    }

    #[test]
    fn single_replica_isr_follows_the_leader() {
        let candidate = high_watermark_candidate(0, &[1], &leos(&[(1, 42)]));
        assert_eq!(candidate, 42);
        assert_eq!(advance_high_watermark(0, candidate), Some(42));
    }

    #[test]
    fn slowest_isr_member_bounds_the_high_watermark() {
        let candidate =
            high_watermark_candidate(5, &[1, 2, 3], &leos(&[(1, 100), (2, 60), (3, 80)]));
        assert_eq!(candidate, 60);
    }

    #[test]
    fn replicas_outside_the_isr_do_not_hold_it_back() {
        let candidate = high_watermark_candidate(5, &[1, 3], &leos(&[(1, 100), (2, 7), (3, 80)]));
        assert_eq!(candidate, 80);
    }

    #[test]
    fn unknown_isr_member_keeps_the_current_value() {
        let candidate = high_watermark_candidate(10, &[1, 2], &leos(&[(1, 100)]));
        assert_eq!(candidate, 10);
        assert_eq!(advance_high_watermark(10, candidate), None);
    }

    #[test]
    fn offsets_wait_for_the_high_watermark_to_reach_the_epoch_start() {
        // (HW, leader epoch start offset, available)
        let table = [
            (0, 0, true),
            (972, 1006, false),
            (1005, 1006, false),
            (1006, 1006, true),
            (1100, 1006, true),
        ];
        for (hw, start, available) in table {
            assert_eq!(
                offsets_available(hw, start),
                available,
                "hw {hw} start {start}"
            );
        }
    }

    #[test]
    fn never_moves_backwards() {
        assert_eq!(advance_high_watermark(50, 40), None);
        assert_eq!(advance_high_watermark(50, 50), None);
        assert_eq!(advance_high_watermark(50, 51), Some(51));
    }
}
