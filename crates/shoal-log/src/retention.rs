//! Which segments retention may delete: a pure decision over a summary of the segments.
//!
//! Kafka's `deleteOldSegments` rules: only whole segments go, oldest first, stopping at the
//! first one that must stay. A segment may go if it breaches `retention.ms` (its largest
//! timestamp is older than `now - retention.ms`) or `retention.bytes` (the log would still be
//! at least that big without it) — and never if it holds offsets at or above the high
//! watermark, since consumers and followers may still need uncommitted data, and never if it
//! is the empty active segment (there is nothing to reclaim).

use crate::config::LogConfig;

/// What retention needs to know about one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetentionCandidate {
    pub(crate) size_bytes: u64,
    /// The next segment's base offset, or the log end offset for the active segment.
    pub(crate) end_offset: i64,
    pub(crate) largest_timestamp_ms: i64,
}

/// How many segments, from the oldest, may be deleted. `segments` is in offset order and its
/// last element is the active segment.
pub(crate) fn deletable_prefix(
    segments: &[RetentionCandidate],
    config: &LogConfig,
    now_ms: i64,
    high_watermark: i64,
) -> usize {
    let expired_before_ms =
        (config.retention_ms >= 0).then(|| now_ms.saturating_sub(config.retention_ms));
    let size_limit_bytes = u64::try_from(config.retention_bytes).ok();
    let mut remaining_bytes: u64 = segments.iter().map(|s| s.size_bytes).sum();
    let mut deletable = 0;
    for (index, segment) in segments.iter().enumerate() {
        let is_empty_active = index + 1 == segments.len() && segment.size_bytes == 0;
        if segment.end_offset > high_watermark || is_empty_active {
            break;
        }
        let expired = expired_before_ms.is_some_and(|limit| segment.largest_timestamp_ms < limit);
        let over_size =
            size_limit_bytes.is_some_and(|limit| remaining_bytes - segment.size_bytes >= limit);
        if !expired && !over_size {
            break;
        }
        remaining_bytes -= segment.size_bytes;
        deletable += 1;
    }
    deletable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(size_bytes: u64, end_offset: i64, largest_timestamp_ms: i64) -> RetentionCandidate {
        RetentionCandidate {
            size_bytes,
            end_offset,
            largest_timestamp_ms,
        }
    }

    fn config(retention_ms: i64, retention_bytes: i64) -> LogConfig {
        LogConfig {
            retention_ms,
            retention_bytes,
            ..LogConfig::default()
        }
    }

    #[test]
    fn time_retention_deletes_old_segments_up_to_the_first_young_one() {
        let segments = [
            segment(10, 10, 100),
            segment(10, 20, 200),
            segment(10, 30, 900),
            segment(10, 40, 150),
        ];
        assert_eq!(deletable_prefix(&segments, &config(500, -1), 800, 40), 2);
        assert_eq!(
            deletable_prefix(&segments, &config(-1, -1), 800, 40),
            0,
            "-1 keeps everything"
        );
        assert_eq!(
            deletable_prefix(&segments, &config(500, -1), 800, 9),
            0,
            "segment 0 ends above the HW"
        );
    }

    #[test]
    fn size_retention_keeps_at_least_retention_bytes() {
        let segments = [
            segment(100, 10, 0),
            segment(100, 20, 0),
            segment(100, 30, 0),
            segment(50, 40, 0),
        ];
        let now = 1_000;
        assert_eq!(deletable_prefix(&segments, &config(-1, 150), now, 40), 2);
        assert_eq!(deletable_prefix(&segments, &config(-1, 250), now, 40), 1);
        assert_eq!(deletable_prefix(&segments, &config(-1, 350), now, 40), 0);
        assert_eq!(
            deletable_prefix(&segments, &config(-1, 0), now, 40),
            4,
            "the active too when all data is committed"
        );
        assert_eq!(
            deletable_prefix(&segments, &config(-1, 0), now, 39),
            3,
            "never past the high watermark"
        );
    }

    #[test]
    fn the_empty_active_segment_is_never_deleted() {
        let segments = [segment(100, 10, 0), segment(0, 10, -1)];
        assert_eq!(deletable_prefix(&segments, &config(1, 0), 1_000, 10), 1);
    }
}
