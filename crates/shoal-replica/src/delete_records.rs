//! DeleteRecords on a partition leader (Kafka's `Partition.deleteRecordsOnLeader` and the
//! low watermark its purgatory waits for), as pure functions with table tests.
//!
//! The leader moves its log start offset at once; the request is answered when the *low
//! watermark* (the smallest log start offset over the leader and its in-sync followers) has
//! reached the offset, so an acknowledged deletion holds on every replica that could lead.
//! A follower that has not reported its log start yet (a new leadership, or an older
//! release) holds the low watermark back: the request then times out rather than claim what
//! is not known.

use std::collections::BTreeMap;

use crate::follower_progress::FollowerProgress;

/// DeleteRecords' "up to the high watermark" offset.
pub const HIGH_WATERMARK: i64 = -1;

/// Why a deletion is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteRefusal {
    /// POLICY_VIOLATION: the topic's `cleanup.policy` lacks `delete`.
    Policy,
    /// OFFSET_OUT_OF_RANGE: negative (other than -1), or beyond the high watermark.
    OutOfRange,
}

/// The log start offset a DeleteRecords of `requested` asks for.
pub fn deletion_target(
    requested: i64,
    high_watermark: i64,
    delete_policy: bool,
) -> Result<i64, DeleteRefusal> {
    if !delete_policy {
        return Err(DeleteRefusal::Policy);
    }
    let target = if requested == HIGH_WATERMARK {
        high_watermark
    } else {
        requested
    };
    if target < 0 || target > high_watermark {
        return Err(DeleteRefusal::OutOfRange);
    }
    Ok(target)
}

/// The smallest log start offset over the leader (`local`) and its in-sync followers; a
/// follower that has not reported one counts as -1.
pub fn low_watermark(
    local_id: i32,
    local_log_start_offset: i64,
    isr: &[i32],
    followers: &BTreeMap<i32, FollowerProgress>,
) -> i64 {
    isr.iter()
        .filter(|id| **id != local_id)
        .map(|id| {
            followers
                .get(id)
                .and_then(|f| f.log_start_offset)
                .unwrap_or(-1)
        })
        .fold(local_log_start_offset, i64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_kafkas_checks() {
        // (requested, high watermark, delete policy, expected)
        let cases = [
            (5, 10, true, Ok(5)),
            (10, 10, true, Ok(10)),
            (HIGH_WATERMARK, 10, true, Ok(10)),
            (0, 10, true, Ok(0)),
            (11, 10, true, Err(DeleteRefusal::OutOfRange)),
            (-2, 10, true, Err(DeleteRefusal::OutOfRange)),
            (5, 10, false, Err(DeleteRefusal::Policy)),
            (HIGH_WATERMARK, 0, true, Ok(0)),
        ];
        for (requested, hw, policy, expected) in cases {
            assert_eq!(
                deletion_target(requested, hw, policy),
                expected,
                "{requested} {hw} {policy}"
            );
        }
    }

    #[test]
    fn the_low_watermark_waits_for_every_in_sync_follower() {
        let follower = |log_start: Option<i64>| FollowerProgress {
            log_start_offset: log_start,
            ..FollowerProgress::at_leadership_start(true, 0)
        };
        let followers: BTreeMap<i32, FollowerProgress> = [
            (2, follower(Some(40))),
            (3, follower(Some(25))),
            (4, follower(None)),
        ]
        .into_iter()
        .collect();
        // (ISR, expected)
        let cases: [(&[i32], i64); 5] = [
            (&[1], 50),
            (&[1, 2], 40),
            (&[1, 2, 3], 25),
            // Not reported yet: holds it back.
            (&[1, 2, 4], -1),
            // Not known at all under this leadership.
            (&[1, 5], -1),
        ];
        for (isr, expected) in cases {
            assert_eq!(low_watermark(1, 50, isr, &followers), expected, "{isr:?}");
        }
    }
}
