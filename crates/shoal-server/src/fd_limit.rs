//! The open-file limit: raised to its hard limit at start, and the partition bound derived
//! from it.
//!
//! Every open partition holds three files (log, offset index, time index), and each connection
//! one socket. A shell's default soft limit (often 1,024) would let a broker accept partitions
//! it can never open, so the soft limit is raised to the hard one, as Kafka's packaging asks
//! operators to do, and `max.broker.partitions` defaults to what the rest allows.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Open files an open partition holds (its active segment's log and two indexes).
pub const FDS_PER_PARTITION: u64 = 3;
/// Files kept for everything else: listeners, the metadata store, client connections beyond
/// the partitions' share, checkpoints being written.
pub const RESERVED_FDS: u64 = 256;

/// Partition replicas `nofile` open files support (at least 1, at most `i32::MAX`: the
/// setting is a Kafka INT).
pub fn partition_capacity(nofile: u64) -> u32 {
    let capacity = nofile.saturating_sub(RESERVED_FDS) / FDS_PER_PARTITION;
    capacity.clamp(1, i32::MAX as u64) as u32
}

/// Raises the soft open-file limit to the hard one; returns the soft limit now in force
/// (`None` if it cannot be read, or is unlimited).
pub fn raise_nofile_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::info!(from = ?limit.current, to = ?limit.maximum, "raised the open-file limit (RLIMIT_NOFILE) to its hard limit")
            }
            Err(error) => {
                tracing::warn!(%error, current = ?limit.current, "cannot raise the open-file limit")
            }
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_leaves_the_reserve_and_three_files_per_partition() {
        // (open-file limit, partitions)
        let table = [
            (1_024, 256),
            (20_000, 6_581),
            (1_048_576, 349_440),
            (100, 1),
            (0, 1),
            (u64::MAX, i32::MAX as u32),
        ];
        for (nofile, partitions) in table {
            assert_eq!(partition_capacity(nofile), partitions, "nofile {nofile}");
        }
    }
}
