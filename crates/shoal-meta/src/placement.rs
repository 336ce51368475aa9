//! Replica placement: which brokers hold each partition, and who is the preferred leader.
//!
//! A pure function, so it can be tested exhaustively and the controller can record its result
//! as facts. It follows Kafka's `AdminUtils.assignReplicasToBrokers`:
//!
//! - **Rack-unaware** (no broker has `broker.rack`): the first replica of partition `p` is
//!   broker `(p + start_index) % n`, so preferred leaders are spread round-robin; the other
//!   replicas follow at a distance that shifts by one every `n` partitions, so followers of one
//!   broker are spread over all others instead of always landing on its neighbour.
//! - **Rack-aware** (any broker has a rack): the same walk over a broker list that alternates
//!   racks (first broker of each rack in rack order, then the second of each, ...), and a
//!   replica is skipped while its rack already holds one of the partition's replicas and some
//!   rack holds none (or its broker already does while some broker holds none). So each
//!   partition spans min(replication factor, racks) racks, and a rack's loss leaves every
//!   partition with a replica when there are at least as many racks as replicas. Brokers
//!   without a rack count as one rack of their own, as in KRaft (Kafka's ZooKeeper-era tool
//!   refused such a mix).
//!
//! The controller picks `start_index` and `replica_shift` (from the random topic id) so that
//! many small topics do not all put their leaders on the lowest broker id.

use std::collections::BTreeMap;
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

/// A broker replicas may be placed on, with its `broker.rack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibleBroker {
    pub id: i32,
    pub rack: Option<String>,
}

/// Assigns `replication_factor` distinct brokers to each of `num_partitions` partitions numbered
/// from `first_partition`. `brokers` must be the eligible brokers; order does not matter (the
/// result depends only on the set). Returns one replica list per partition; the first replica
/// is the preferred leader.
pub fn assign_replicas(
    brokers: &[EligibleBroker],
    num_partitions: i32,
    replication_factor: i32,
    first_partition: i32,
    seed: PlacementSeed,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    if num_partitions <= 0 {
        return Err(PlacementError::InvalidPartitionCount(num_partitions));
    }
    // One rack per broker id (the first given, should a caller repeat an id).
    let mut racks: BTreeMap<i32, Option<&str>> = BTreeMap::new();
    for b in brokers {
        racks.entry(b.id).or_insert(b.rack.as_deref());
    }
    let rack_aware = racks.values().any(Option::is_some);
    let brokers: Vec<i32> = if rack_aware {
        rack_alternated(&racks)
    } else {
        racks.keys().copied().collect()
    };
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
        let replicas = if rack_aware {
            rack_aware_replicas(&brokers, &racks, first, shift, rf)
        } else {
            let mut replicas = Vec::with_capacity(rf);
            replicas.push(brokers[first]);
            for j in 0..rf - 1 {
                replicas.push(brokers[replica_index(first, shift, j, n)]);
            }
            replicas
        };
        debug_assert!(
            all_distinct(&replicas),
            "placement produced duplicates: {replicas:?}"
        );
        assignment.push(replicas);
    }
    Ok(assignment)
}

/// The index of the `j`-th candidate after the first replica at `first` (Kafka's
/// `replicaIndex`). Called only with `n >= 2`: a lone broker never needs a second replica.
fn replica_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    debug_assert!(n >= 2, "a second replica needs a second broker");
    (first + 1 + (shift + j) % (n - 1)) % n
}

/// Kafka's `getRackAlternatedBrokerList`: racks in order (brokers without a rack first, as one
/// rack), each rack's brokers in id order, taking one broker from each rack in turn.
fn rack_alternated(racks: &BTreeMap<i32, Option<&str>>) -> Vec<i32> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for (id, rack) in racks {
        by_rack.entry(*rack).or_default().push(*id);
    }
    let mut columns: Vec<std::vec::IntoIter<i32>> =
        by_rack.into_values().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(racks.len());
    while out.len() < racks.len() {
        for column in &mut columns {
            if let Some(id) = column.next() {
                out.push(id);
            }
        }
    }
    out
}

/// One partition's replicas on the rack-alternated list `brokers`, from the leader at index
/// `first` (Kafka's rack-aware loop: the candidate walk shifts by `shift * racks`).
fn rack_aware_replicas(
    brokers: &[i32],
    racks: &BTreeMap<i32, Option<&str>>,
    first: usize,
    shift: usize,
    rf: usize,
) -> Vec<i32> {
    let n = brokers.len();
    let rack_of = |id: i32| racks.get(&id).copied().flatten();
    let rack_count = {
        let mut all: Vec<Option<&str>> = racks.values().copied().collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    };
    let leader = brokers[first];
    let mut replicas = Vec::with_capacity(rf);
    replicas.push(leader);
    let mut racks_used = vec![rack_of(leader)];
    let mut j = 0;
    while replicas.len() < rf {
        let candidate = brokers[replica_index(first, shift * rack_count, j, n)];
        j += 1;
        let rack = rack_of(candidate);
        let rack_ok = !racks_used.contains(&rack) || racks_used.len() == rack_count;
        let broker_ok = !replicas.contains(&candidate) || replicas.len() == n;
        if rack_ok && broker_ok {
            replicas.push(candidate);
            if !racks_used.contains(&rack) {
                racks_used.push(rack);
            }
        }
    }
    replicas
}

fn all_distinct(ids: &[i32]) -> bool {
    ids.iter().enumerate().all(|(i, id)| !ids[..i].contains(id))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn ids(ids: &[i32]) -> Vec<EligibleBroker> {
        ids.iter()
            .map(|&id| EligibleBroker { id, rack: None })
            .collect()
    }

    fn racked(brokers: &[(i32, &str)]) -> Vec<EligibleBroker> {
        brokers
            .iter()
            .map(|&(id, rack)| EligibleBroker {
                id,
                rack: Some(rack.to_string()),
            })
            .collect()
    }

    fn seed(start_index: usize, replica_shift: usize) -> PlacementSeed {
        PlacementSeed {
            start_index,
            replica_shift,
        }
    }

    #[test]
    fn matches_kafka_round_robin() {
        // Kafka's AdminUtils with startIndex 0, nextReplicaShift 0, brokers 0..5, 10 partitions, rf 3.
        let got = assign_replicas(&ids(&[0, 1, 2, 3, 4]), 10, 3, 0, seed(0, 0)).unwrap();
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
                let a = assign_replicas(&ids(&brokers), 12, 3, 0, seed(start, shift)).unwrap();
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
        let a = assign_replicas(&ids(&[3, 1, 2]), 6, 2, 0, seed(1, 2)).unwrap();
        let b = assign_replicas(&ids(&[1, 2, 3, 3]), 6, 2, 0, seed(1, 2)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn continues_from_first_partition() {
        // Adding partitions 4..9 continues the pattern of a 9-partition topic.
        let whole = assign_replicas(&ids(&[1, 2, 3]), 9, 2, 0, seed(2, 1)).unwrap();
        let tail = assign_replicas(&ids(&[1, 2, 3]), 5, 2, 4, seed(2, 1)).unwrap();
        assert_eq!(&whole[4..], &tail[..]);
    }

    #[test]
    fn rejects_impossible_requests() {
        assert_eq!(
            assign_replicas(&ids(&[]), 1, 1, 0, seed(0, 0)),
            Err(PlacementError::NoBrokers)
        );
        assert!(matches!(
            assign_replicas(&ids(&[1, 2]), 1, 3, 0, seed(0, 0)),
            Err(PlacementError::InvalidReplicationFactor { .. })
        ));
        assert!(assign_replicas(&ids(&[1, 2]), 1, 0, 0, seed(0, 0)).is_err());
        assert!(assign_replicas(&ids(&[1, 2]), 0, 1, 0, seed(0, 0)).is_err());
        let single = assign_replicas(&ids(&[9]), 3, 1, 0, seed(5, 5)).unwrap();
        assert_eq!(single, vec![vec![9], vec![9], vec![9]]);
    }

    /// Kafka's AdminRackAwareTest.testGetRackAlternatedBrokerListAndAssignReplicasToBrokers.
    #[test]
    fn matches_kafka_rack_aware_assignment() {
        let brokers = [
            (0, "rack1"),
            (1, "rack3"),
            (2, "rack3"),
            (3, "rack2"),
            (4, "rack2"),
            (5, "rack1"),
        ];
        let racks: BTreeMap<i32, Option<&str>> =
            brokers.iter().map(|&(id, r)| (id, Some(r))).collect();
        assert_eq!(rack_alternated(&racks), vec![0, 3, 1, 5, 4, 2]);
        let mut without_5 = racks.clone();
        without_5.remove(&5);
        assert_eq!(rack_alternated(&without_5), vec![0, 3, 1, 4, 2]);

        let got = assign_replicas(&racked(&brokers), 7, 3, 0, seed(0, 0)).unwrap();
        let expected = vec![
            vec![0, 3, 1],
            vec![3, 1, 5],
            vec![1, 5, 4],
            vec![5, 4, 2],
            vec![4, 2, 0],
            vec![2, 0, 3],
            vec![0, 4, 2],
        ];
        assert_eq!(got, expected);
    }

    /// Every partition spans min(rf, racks) racks and min(rf, brokers) brokers, leaders are
    /// spread evenly, for uneven racks, every seed and replication factor.
    #[test]
    fn rack_aware_spreads_each_partition_over_racks() {
        let layouts: [&[(i32, &str)]; 4] = [
            &[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")],
            &[(1, "a"), (2, "a"), (3, "a"), (4, "b"), (5, "c")],
            &[(10, "x"), (20, "y"), (30, "x"), (40, "y")],
            &[(1, "a"), (2, "a"), (3, "a")],
        ];
        for layout in layouts {
            let brokers = racked(layout);
            let rack_of: BTreeMap<i32, &str> = layout.iter().copied().collect();
            let rack_count = {
                let mut r: Vec<&str> = rack_of.values().copied().collect();
                r.sort_unstable();
                r.dedup();
                r.len()
            };
            let n = layout.len();
            for rf in 1..=n {
                for start in 0..n {
                    for shift in 0..n {
                        let parts = i32::try_from(n * 4).unwrap();
                        let a = assign_replicas(&brokers, parts, rf as i32, 0, seed(start, shift))
                            .unwrap();
                        let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
                        for r in &a {
                            assert_eq!(r.len(), rf);
                            assert!(all_distinct(r), "{layout:?} rf {rf}: {r:?}");
                            let mut racks: Vec<&str> = r.iter().map(|b| rack_of[b]).collect();
                            racks.sort_unstable();
                            racks.dedup();
                            assert_eq!(racks.len(), rf.min(rack_count), "{layout:?}: {r:?}");
                            *leaders.entry(r[0]).or_default() += 1;
                        }
                        assert_eq!(leaders.len(), n, "{layout:?}: {leaders:?}");
                        assert!(leaders.values().all(|&c| c == 4), "{leaders:?}");
                    }
                }
            }
        }
    }

    /// Brokers without a rack count as one rack of their own (KRaft), not as an error.
    #[test]
    fn brokers_without_a_rack_form_one_rack() {
        let mut brokers = racked(&[(1, "a"), (2, "b")]);
        brokers.extend(ids(&[3, 4]));
        let a = assign_replicas(&brokers, 8, 3, 0, seed(0, 0)).unwrap();
        for r in &a {
            let rackless = r.iter().filter(|b| **b >= 3).count();
            assert_eq!(rackless, 1, "one replica on the rackless 'rack': {r:?}");
        }
        // Without any rack, the result is exactly the rack-unaware one.
        assert_eq!(
            assign_replicas(&ids(&[1, 2, 3]), 6, 2, 0, seed(1, 1)).unwrap(),
            vec![
                vec![2, 1],
                vec![3, 2],
                vec![1, 3],
                vec![2, 3],
                vec![3, 1],
                vec![1, 2]
            ]
        );
    }
}
