//! Consumer lag for operators: per group and partition, the committed offset and how far the
//! partition's high watermark is past it.
//!
//! Reported by the group's coordinator (only it has the committed offsets), for partitions
//! this broker hosts (only then does it know the high watermark without a network call; a
//! follower learns the leader's from replication). With RF equal to the broker count that is
//! every partition; otherwise some series are missing rather than stale or guessed.

use crate::groups::Groups;

/// One (group, topic, partition) with a committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    /// High watermark minus the committed offset, never negative; `None` when this broker
    /// does not host the partition.
    pub lag: Option<i64>,
}

/// Bound on the rows one report carries (a metrics scrape must stay small).
pub const MAX_LAG_ROWS: usize = 10_000;

impl Groups {
    /// The lag of every committed partition of every group coordinated here (bounded by
    /// [`MAX_LAG_ROWS`]); a shard still loading contributes nothing.
    pub async fn lag_report(&self) -> Vec<PartitionLag> {
        let Ok(groups) = self.coordinator.list().await else {
            return Vec::new();
        };
        let image = self.replicas.image();
        let mut rows = Vec::new();
        for group in groups {
            let Ok(offsets) = self.coordinator.fetch_offsets(&group.group_id, None).await else {
                continue;
            };
            for ((topic, partition), value) in offsets {
                let Some(value) = value else { continue };
                let high_watermark = image
                    .topic_ids_by_name
                    .get(&topic)
                    .and_then(|id| self.replicas.partition(*id, partition))
                    .map(|p| p.high_watermark());
                rows.push(PartitionLag {
                    group: group.group_id.clone(),
                    topic,
                    partition,
                    committed_offset: value.offset,
                    lag: high_watermark.map(|hw| (hw - value.offset).max(0)),
                });
                if rows.len() >= MAX_LAG_ROWS {
                    return rows;
                }
            }
        }
        rows
    }

    /// How many groups this broker coordinates.
    pub async fn group_count(&self) -> usize {
        self.coordinator.list().await.map_or(0, |g| g.len())
    }
}
