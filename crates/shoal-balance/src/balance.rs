//! Balancing: replica counts, then preferred leaders, then bytes, with the fewest moves.
//!
//! Greedy and bounded: each step takes the most loaded broker and the least loaded accepting
//! one and moves (or, for leaders, reorders) one partition between them, stopping when the
//! spread is within the goal or no step helps; every loop has a step limit, so a plan is
//! always computed quickly, even for a cluster that cannot be balanced further.

use std::collections::BTreeMap;

use crate::load::rack_count;
use crate::{ClusterView, Plan, finish};

/// What "balanced" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceGoals {
    /// Bytes per broker may differ from the mean by this percentage.
    pub bytes_tolerance_percent: u32,
    /// Most moves and reorders one plan makes (a bound on the work one `--execute` starts).
    pub max_moves: usize,
}

impl Default for BalanceGoals {
    fn default() -> Self {
        BalanceGoals {
            bytes_tolerance_percent: 10,
            max_moves: 1_000,
        }
    }
}

struct State<'a> {
    view: &'a ClusterView,
    target: Vec<Vec<i32>>,
    accepting: Vec<i32>,
}

impl State<'_> {
    /// (replicas, leaders, bytes) of every broker, accepting or holding replicas.
    fn load(&self) -> BTreeMap<i32, (usize, usize, u64)> {
        let mut load: BTreeMap<i32, (usize, usize, u64)> =
            self.accepting.iter().map(|id| (*id, (0, 0, 0))).collect();
        for (replicas, p) in self.target.iter().zip(&self.view.partitions) {
            for (i, id) in replicas.iter().enumerate() {
                let l = load.entry(*id).or_default();
                l.0 += 1;
                l.2 += p.size_bytes;
                if i == 0 {
                    l.1 += 1;
                }
            }
        }
        load
    }

    /// Whether partition `i` has a replica on `from` that can move to `to` keeping its racks.
    fn keeps_racks(&self, i: usize, from: i32, to: i32) -> bool {
        let replicas = &self.target[i];
        if !replicas.contains(&from) || replicas.contains(&to) {
            return false;
        }
        let trial: Vec<i32> = replicas
            .iter()
            .map(|id| if *id == from { to } else { *id })
            .collect();
        rack_count(&self.view.brokers, &trial) >= rack_count(&self.view.brokers, replicas)
    }

    fn replace(&mut self, i: usize, from: i32, to: i32) {
        for id in &mut self.target[i] {
            if *id == from {
                *id = to;
            }
        }
    }
}

/// The plan balancing `view` (see the module docs).
pub fn plan_balance(view: &ClusterView, goals: BalanceGoals) -> Plan {
    let mut s = State {
        view,
        target: view.partitions.iter().map(|p| p.replicas.clone()).collect(),
        accepting: view
            .brokers
            .iter()
            .filter(|b| b.accepting)
            .map(|b| b.id)
            .collect(),
    };
    let mut steps = 0;
    // 1. Replica counts: from the most loaded broker that has a replica some less loaded
    // broker can take (the most loaded one may be stuck on its rack).
    while steps < goals.max_moves {
        let load = s.load();
        let mut sources: Vec<(i32, usize, u64)> =
            load.iter().map(|(id, l)| (*id, l.0, l.2)).collect();
        sources.sort_by_key(|(id, count, bytes)| {
            (std::cmp::Reverse(*count), std::cmp::Reverse(*bytes), *id)
        });
        let step = sources.iter().find_map(|&(src, src_count, src_bytes)| {
            let mut dsts: Vec<(i32, usize, u64)> = s
                .accepting
                .iter()
                .map(|id| {
                    let l = load.get(id).copied().unwrap_or_default();
                    (*id, l.0, l.2)
                })
                .filter(|(_, count, _)| count + 1 < src_count)
                .collect();
            dsts.sort_by_key(|(id, count, bytes)| (*count, *bytes, *id));
            dsts.into_iter().find_map(|(dst, _, dst_bytes)| {
                let gap = src_bytes.abs_diff(dst_bytes);
                (0..s.target.len())
                    .filter(|i| s.target[*i].contains(&src) && s.keeps_racks(*i, src, dst))
                    .min_by_key(|i| {
                        let size = view.partitions[*i].size_bytes;
                        let after = (src_bytes - size.min(src_bytes)).abs_diff(dst_bytes + size);
                        (after.min(gap.saturating_add(size)), size, *i)
                    })
                    .map(|i| (i, src, dst))
            })
        });
        let Some((i, src, dst)) = step else {
            break;
        };
        s.replace(i, src, dst);
        steps += 1;
    }
    // 2. Preferred leaders: reorder, no data moves.
    while steps < goals.max_moves {
        let load = s.load();
        let Some((&src, &(_, src_leaders, _))) = load
            .iter()
            .max_by_key(|(id, l)| (l.1, std::cmp::Reverse(**id)))
        else {
            break;
        };
        let swap = s
            .accepting
            .iter()
            .filter_map(|dst| {
                let leaders = load.get(dst).map_or(0, |l| l.1);
                (leaders + 1 < src_leaders).then_some((leaders, *dst))
            })
            .min()
            .and_then(|(_, dst)| {
                (0..s.target.len())
                    .find(|i| s.target[*i].first() == Some(&src) && s.target[*i].contains(&dst))
                    .map(|i| (i, dst))
            });
        let Some((i, dst)) = swap else {
            break;
        };
        let replicas = &mut s.target[i];
        if let Some(pos) = replicas.iter().position(|id| *id == dst) {
            replicas.swap(0, pos);
        }
        steps += 1;
    }
    // 3. Bytes: swap replicas of two partitions between the heaviest and the lightest broker
    // (counts stay), while that narrows their gap and the gap exceeds the tolerance.
    while steps < goals.max_moves && !s.accepting.is_empty() {
        let load = s.load();
        let total: u64 = load.values().map(|l| l.2).sum();
        let mean = total / load.len().max(1) as u64;
        let tolerance = mean * u64::from(goals.bytes_tolerance_percent) / 100;
        let Some((&heavy, &(_, _, heavy_bytes))) = load
            .iter()
            .max_by_key(|(id, l)| (l.2, std::cmp::Reverse(**id)))
        else {
            break;
        };
        let Some((&light, &(_, _, light_bytes))) = load
            .iter()
            .filter(|(id, _)| s.accepting.contains(id))
            .min_by_key(|(id, l)| (l.2, **id))
        else {
            break;
        };
        if heavy_bytes.saturating_sub(mean) <= tolerance
            && mean.saturating_sub(light_bytes) <= tolerance
        {
            break;
        }
        let gap = heavy_bytes.abs_diff(light_bytes);
        let mut best: Option<(u64, usize, usize)> = None;
        for a in (0..s.target.len()).filter(|i| s.keeps_racks(*i, heavy, light)) {
            for b in (0..s.target.len()).filter(|i| *i != a && s.keeps_racks(*i, light, heavy)) {
                let (sa, sb) = (view.partitions[a].size_bytes, view.partitions[b].size_bytes);
                if sa <= sb {
                    continue;
                }
                let after = (heavy_bytes - sa + sb).abs_diff(light_bytes + sa - sb);
                if after < gap && best.is_none_or(|(g, _, _)| after < g) {
                    best = Some((after, a, b));
                }
            }
        }
        let Some((_, a, b)) = best else {
            break;
        };
        s.replace(a, heavy, light);
        s.replace(b, light, heavy);
        steps += 2;
    }
    finish(view, &s.target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BrokerView, PartitionView};

    fn brokers(ids: &[(i32, Option<&str>)]) -> Vec<BrokerView> {
        ids.iter()
            .map(|(id, rack)| BrokerView {
                id: *id,
                rack: rack.map(str::to_string),
                accepting: true,
            })
            .collect()
    }

    fn partitions(assignment: &[(&[i32], u64)]) -> Vec<PartitionView> {
        assignment
            .iter()
            .enumerate()
            .map(|(i, (replicas, size))| PartitionView {
                topic: "t".into(),
                partition: i as i32,
                replicas: replicas.to_vec(),
                size_bytes: *size,
            })
            .collect()
    }

    fn spread(plan: &Plan, f: impl Fn(&crate::BrokerLoad) -> u64) -> u64 {
        let values: Vec<u64> = plan.after.iter().map(f).collect();
        values.iter().max().unwrap_or(&0) - values.iter().min().unwrap_or(&0)
    }

    #[test]
    fn a_new_broker_gets_its_share_with_the_fewest_moves() {
        // Three brokers hold six RF-2 partitions; broker 4 just joined with nothing.
        let view = ClusterView {
            brokers: brokers(&[(1, None), (2, None), (3, None), (4, None)]),
            partitions: partitions(&[
                (&[1, 2], 10),
                (&[2, 3], 10),
                (&[3, 1], 10),
                (&[1, 3], 10),
                (&[2, 1], 10),
                (&[3, 2], 10),
            ]),
        };
        let plan = plan_balance(&view, BalanceGoals::default());
        assert_eq!(spread(&plan, |l| l.replicas as u64), 0, "{:?}", plan.after);
        assert!(spread(&plan, |l| l.leaders as u64) <= 1, "{:?}", plan.after);
        // 12 replicas over 4 brokers: 3 moves to broker 4, nothing else.
        let added: usize = plan
            .moves
            .iter()
            .map(|m| m.to.iter().filter(|b| !m.from.contains(b)).count())
            .sum();
        assert_eq!(added, 3, "{:?}", plan.moves);
        assert!(
            plan.moves
                .iter()
                .all(|m| m.to.contains(&4) || m.to[0] != m.from[0])
        );
    }

    #[test]
    fn a_balanced_cluster_needs_nothing() {
        let view = ClusterView {
            brokers: brokers(&[(1, None), (2, None), (3, None)]),
            partitions: partitions(&[(&[1, 2], 5), (&[2, 3], 5), (&[3, 1], 5)]),
        };
        assert!(
            plan_balance(&view, BalanceGoals::default())
                .moves
                .is_empty()
        );
    }

    #[test]
    fn moves_never_cost_a_partition_a_rack() {
        // Racks a = {1, 2}, b = {3}. Everything spans both racks; 2 is empty. Moving a
        // replica from 3 to 2 would leave a partition on rack a only: not allowed.
        let view = ClusterView {
            brokers: brokers(&[(1, Some("a")), (2, Some("a")), (3, Some("b"))]),
            partitions: partitions(&[(&[1, 3], 1), (&[3, 1], 1), (&[1, 3], 1), (&[3, 1], 1)]),
        };
        let plan = plan_balance(&view, BalanceGoals::default());
        for m in &plan.moves {
            assert_eq!(
                rack_count(&view.brokers, &m.to),
                2,
                "{m:?} left a rack: {:?}",
                plan.moves
            );
        }
        // Broker 1's replicas are shared with 2 instead.
        let after: Vec<(i32, usize)> = plan.after.iter().map(|l| (l.broker, l.replicas)).collect();
        assert_eq!(after, vec![(1, 2), (2, 2), (3, 4)]);
    }

    #[test]
    fn bytes_even_out_by_swapping_when_counts_are_balanced() {
        // Counts are even (2 each) but broker 1 holds the two big partitions.
        let view = ClusterView {
            brokers: brokers(&[(1, None), (2, None)]),
            partitions: partitions(&[(&[1], 1000), (&[1], 1000), (&[2], 10), (&[2], 10)]),
        };
        let plan = plan_balance(&view, BalanceGoals::default());
        let bytes: Vec<u64> = plan.after.iter().map(|l| l.bytes).collect();
        assert_eq!(bytes, vec![1010, 1010], "{:?}", plan.moves);
        assert_eq!(plan.moves.len(), 2);
    }

    #[test]
    fn a_byte_swap_moves_replicas_only_between_the_two_brokers_it_evens() {
        // After the count step (0 -> 4), 4 is heaviest and 1 lightest; no swap between them
        // narrows their gap, and partitions on 2 or 3 must not be "swapped" by it (the planner
        // once did, undoing its own count move).
        let view = ClusterView {
            brokers: brokers(&[(1, None), (2, None), (3, None), (4, None)]),
            partitions: partitions(&[
                (&[1], 6000),
                (&[1], 3000),
                (&[1], 1000),
                (&[2], 5000),
                (&[3], 5000),
            ]),
        };
        for max_moves in [1, 2, 3, 1_000] {
            let goals = BalanceGoals {
                max_moves,
                ..BalanceGoals::default()
            };
            let plan = plan_balance(&view, goals);
            let moved: Vec<(i32, Vec<i32>)> = plan
                .moves
                .iter()
                .map(|m| (m.partition, m.to.clone()))
                .collect();
            assert_eq!(moved, vec![(0, vec![4])], "at most {max_moves} moves");
        }
    }

    #[test]
    fn a_broker_that_accepts_nothing_gets_nothing() {
        let mut view = ClusterView {
            brokers: brokers(&[(1, None), (2, None), (3, None)]),
            partitions: partitions(&[(&[1], 1), (&[1], 1), (&[1], 1), (&[2], 1)]),
        };
        view.brokers[2].accepting = false;
        let plan = plan_balance(&view, BalanceGoals::default());
        assert!(
            plan.moves.iter().all(|m| !m.to.contains(&3)),
            "{:?}",
            plan.moves
        );
        let after: Vec<(i32, usize)> = plan.after.iter().map(|l| (l.broker, l.replicas)).collect();
        assert_eq!(after, vec![(1, 2), (2, 2), (3, 0)]);
    }
}
