//! Per-broker load: replicas, preferred leaderships and bytes; and rack bookkeeping.

use std::collections::BTreeMap;

use crate::{BrokerView, ClusterView};

/// One broker's load under some assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerLoad {
    pub broker: i32,
    pub replicas: usize,
    /// Partitions whose first replica (preferred leader) it is.
    pub leaders: usize,
    pub bytes: u64,
}

/// Loads of every broker of `view` (and of any other broker an assignment names), by id.
pub(crate) fn loads<'a>(
    view: &ClusterView,
    assignment: impl Iterator<Item = &'a Vec<i32>>,
) -> Vec<BrokerLoad> {
    let mut by_id: BTreeMap<i32, BrokerLoad> = view
        .brokers
        .iter()
        .map(|b| {
            (
                b.id,
                BrokerLoad {
                    broker: b.id,
                    ..BrokerLoad::default()
                },
            )
        })
        .collect();
    for (replicas, p) in assignment.zip(&view.partitions) {
        for (i, id) in replicas.iter().enumerate() {
            let load = by_id.entry(*id).or_insert_with(|| BrokerLoad {
                broker: *id,
                ..BrokerLoad::default()
            });
            load.replicas += 1;
            load.bytes += p.size_bytes;
            if i == 0 {
                load.leaders += 1;
            }
        }
    }
    by_id.into_values().collect()
}

/// A broker's rack key: rackless brokers share one.
pub(crate) fn rack_of(brokers: &[BrokerView], id: i32) -> &str {
    brokers
        .iter()
        .find(|b| b.id == id)
        .and_then(|b| b.rack.as_deref())
        .unwrap_or("")
}

/// How many distinct racks `replicas` span.
pub(crate) fn rack_count(brokers: &[BrokerView], replicas: &[i32]) -> usize {
    let mut racks: Vec<&str> = replicas.iter().map(|id| rack_of(brokers, *id)).collect();
    racks.sort_unstable();
    racks.dedup();
    racks.len()
}
