//! Replica placement: which brokers hold each partition, and who is the preferred leader.
//!
//! A pure function, so it can be tested exhaustively and the controller can record its result
//! as facts. It follows Kafka's rack-unaware assignment (`AdminUtils.assignReplicasToBrokers`):
//! the first replica of partition `p` is broker `(p + start_index) % n`, so preferred leaders are
//! spread round-robin; the other replicas follow at a distance that shifts by one every `n`
//! partitions, so followers of one broker are spread over all others instead of always landing on
//! its neighbour. The controller picks `start_index` and `replica_shift` (from the random topic
//! id) so that many small topics do not all put their leaders on the lowest broker id.
//! Rack-aware placement is not implemented yet.

use std::fmt;

/// Why replicas could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementError {
    NoBrokers,
    InvalidReplicationFactor {
        replication_factor: i32,
        available_brokers: usize,
    },
    InvalidPartitionCount(i32),
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementError::NoBrokers => {
                write!(f, "There are no unfenced brokers to place replicas on.")
            }
            PlacementError::InvalidReplicationFactor {
                replication_factor,
                available_brokers,
            } => write!(
                f,
                "Unable to replicate the partition {replication_factor} time(s): the target \
                 replication factor of {replication_factor} cannot be reached because only \
                 {available_brokers} broker(s) are registered and unfenced."
            ),
            PlacementError::InvalidPartitionCount(n) => {
                write!(f, "Number of partitions must be positive, got {n}.")
            }
        }
    }
}

/// Where placement starts; derived by the caller from something random (e.g. the topic id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementSeed {
    pub start_index: usize,
    pub replica_shift: usize,
}

/// Assigns `replication_factor` distinct brokers to each of `num_partitions` partitions numbered
/// from `first_partition`. `brokers` must be the eligible broker ids; order does not matter
/// (they are sorted first so the result depends only on the set). Returns one replica list per
/// partition; the first replica is the preferred leader.
pub fn assign_replicas(
    brokers: &[i32],
    num_partitions: i32,
    replication_factor: i32,
    first_partition: i32,
    seed: PlacementSeed,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    if num_partitions <= 0 {
        return Err(PlacementError::InvalidPartitionCount(num_partitions));
    }
    let mut brokers = brokers.to_vec();
    brokers.sort_unstable();
    brokers.dedup();
    let n = brokers.len();
    if n == 0 {
        return Err(PlacementError::NoBrokers);
    }
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if rf == 0 || rf > n {
        return Err(PlacementError::InvalidReplicationFactor {
            replication_factor,
            available_brokers: n,
        });
    }
    debug_assert!(first_partition >= 0, "partition ids start at 0");
    let first_partition = usize::try_from(first_partition).unwrap_or(0);
    let start_index = seed.start_index % n;
    let count = usize::try_from(num_partitions).unwrap_or(0);

    let mut assignment = Vec::with_capacity(count);
    for i in 0..count {
        let partition = first_partition + i;
        // Kafka bumps the shift every time the partition id wraps around the broker list.
        let shift = seed.replica_shift % n + partition / n;
        let first = (partition + start_index) % n;
        let mut replicas = Vec::with_capacity(rf);
        replicas.push(brokers[first]);
        for j in 0..rf - 1 {
            // With n == 1, rf == 1 and this loop does not run, so `n - 1` is never 0 here.
            let offset = 1 + (shift + j) % (n - 1);
            replicas.push(brokers[(first + offset) % n]);
        }
        debug_assert!(
            all_distinct(&replicas),
            "placement produced duplicates: {replicas:?}"
        );
        assignment.push(replicas);
    }
    Ok(assignment)
}

fn all_distinct(ids: &[i32]) -> bool {
    ids.iter().enumerate().all(|(i, id)| !ids[..i].contains(id))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn seed(start_index: usize, replica_shift: usize) -> PlacementSeed {
        PlacementSeed {
            start_index,
            replica_shift,
        }
    }

    #[test]
    fn matches_kafka_round_robin() {
        // Kafka's AdminUtils with startIndex 0, nextReplicaShift 0, brokers 0..5, 10 partitions, rf 3.
        let got = assign_replicas(&[0, 1, 2, 3, 4], 10, 3, 0, seed(0, 0)).unwrap();
        let expected = vec![
            vec![0, 1, 2],
            vec![1, 2, 3],
            vec![2, 3, 4],
            vec![3, 4, 0],
            vec![4, 0, 1],
            vec![0, 2, 3],
            vec![1, 3, 4],
            vec![2, 4, 0],
            vec![3, 0, 1],
            vec![4, 1, 2],
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn spreads_leaders_and_replicas_evenly() {
        let brokers = [7, 3, 11, 5];
        for start in 0..4 {
            for shift in 0..4 {
                let a = assign_replicas(&brokers, 12, 3, 0, seed(start, shift)).unwrap();
                let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
                let mut replicas: BTreeMap<i32, usize> = BTreeMap::new();
                for r in &a {
                    assert_eq!(r.len(), 3);
                    assert!(all_distinct(r), "{r:?}");
                    *leaders.entry(r[0]).or_default() += 1;
                    for b in r {
                        *replicas.entry(*b).or_default() += 1;
                    }
                }
                // 12 partitions over 4 brokers: exactly 3 leaderships and 9 replicas each.
                assert_eq!(leaders.len(), 4);
                assert!(leaders.values().all(|&c| c == 3), "{leaders:?}");
                assert!(replicas.values().all(|&c| c == 9), "{replicas:?}");
            }
        }
    }

    #[test]
    fn result_depends_on_broker_set_not_order() {
        let a = assign_replicas(&[3, 1, 2], 6, 2, 0, seed(1, 2)).unwrap();
        let b = assign_replicas(&[1, 2, 3, 3], 6, 2, 0, seed(1, 2)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn continues_from_first_partition() {
        // Adding partitions 4..9 continues the pattern of a 9-partition topic.
        let whole = assign_replicas(&[1, 2, 3], 9, 2, 0, seed(2, 1)).unwrap();
        let tail = assign_replicas(&[1, 2, 3], 5, 2, 4, seed(2, 1)).unwrap();
        assert_eq!(&whole[4..], &tail[..]);
    }

    #[test]
    fn rejects_impossible_requests() {
        assert_eq!(
            assign_replicas(&[], 1, 1, 0, seed(0, 0)),
            Err(PlacementError::NoBrokers)
        );
        assert!(matches!(
            assign_replicas(&[1, 2], 1, 3, 0, seed(0, 0)),
            Err(PlacementError::InvalidReplicationFactor { .. })
        ));
        assert!(assign_replicas(&[1, 2], 1, 0, 0, seed(0, 0)).is_err());
        assert!(assign_replicas(&[1, 2], 0, 1, 0, seed(0, 0)).is_err());
        let single = assign_replicas(&[9], 3, 1, 0, seed(5, 5)).unwrap();
        assert_eq!(single, vec![vec![9], vec![9], vec![9]]);
    }
}
