//! `shoalctl partition reassign --throttle RATE`, as `kafka-reassign-partitions --throttle`:
//! a move copies no faster than RATE bytes/s, so producers and consumers keep the disks and
//! the network.
//!
//! Kafka's recipe, step for step: each moving partition's current replicas go into its topic's
//! `leader.replication.throttled.replicas` (whichever of them leads serves the copy) and the
//! replicas it gains into `follower.replication.throttled.replicas`; every broker involved
//! gets `leader.replication.throttled.rate` and `follower.replication.throttled.rate` as its own
//! dynamic config. Once the moves complete (`--wait`), all of it is removed again, as Kafka's
//! `--verify` does. Which replicas to name is a pure function of the moves and the current
//! replica sets ([`throttled_replicas`]).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::protocol::StrBytes;

use super::check;
use super::reassign::Move;
use crate::kafka::Client;

const TOPIC_RESOURCE: i8 = 2;
const BROKER_RESOURCE: i8 = 4;
const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";
const LEADER_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";

/// What one throttled command sets and later removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePlan {
    /// topic → (leader replica list, follower replica list), Kafka's `partition:broker` form.
    pub topics: BTreeMap<String, (String, String)>,
    /// Every broker a move reads from or writes to.
    pub brokers: BTreeSet<i32>,
}

/// The replicas to throttle for `moves`, given each partition's `current` replicas: the
/// current ones as leaders, the added ones as followers (Kafka's
/// `calculateLeaderThrottles` / `calculateFollowerThrottles`).
pub fn throttled_replicas(
    moves: &[Move],
    current: &BTreeMap<(String, i32), Vec<i32>>,
) -> anyhow::Result<ThrottlePlan> {
    let mut leaders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut followers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut brokers = BTreeSet::new();
    for m in moves {
        let Some(target) = &m.replicas else { continue };
        let now = current
            .get(&(m.topic.clone(), m.partition))
            .with_context(|| format!("{}:{} does not exist", m.topic, m.partition))?;
        let p = m.partition;
        let leader = leaders.entry(m.topic.clone()).or_default();
        leader.extend(now.iter().map(|b| format!("{p}:{b}")));
        let follower = followers.entry(m.topic.clone()).or_default();
        follower.extend(
            target
                .iter()
                .filter(|b| !now.contains(b))
                .map(|b| format!("{p}:{b}")),
        );
        brokers.extend(now.iter().chain(target));
    }
    let topics = leaders
        .into_iter()
        .map(|(topic, leader)| {
            let follower = followers.remove(&topic).unwrap_or_default();
            (topic, (leader.join(","), follower.join(",")))
        })
        .collect();
    Ok(ThrottlePlan { topics, brokers })
}

/// Each partition's replicas now, from Metadata.
pub async fn current_replicas(
    client: &mut Client,
    moves: &[Move],
) -> anyhow::Result<BTreeMap<(String, i32), Vec<i32>>> {
    let topics: Vec<String> = moves
        .iter()
        .map(|m| m.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let metadata = client.metadata(Some(&topics)).await?;
    let mut out = BTreeMap::new();
    for t in &metadata.topics {
        let Some(name) = &t.name else { continue };
        check(&format!("topic {}", name.0), t.error_code, None)?;
        for p in &t.partitions {
            out.insert(
                (name.0.to_string(), p.partition_index),
                p.replica_nodes.iter().map(|b| b.0).collect(),
            );
        }
    }
    Ok(out)
}

/// Sets the plan's replica lists and every involved broker's rates (`Some`), or removes them
/// all (`None`); one IncrementalAlterConfigs, each resource checked.
pub async fn apply(
    client: &mut Client,
    plan: &ThrottlePlan,
    rate: Option<u64>,
) -> anyhow::Result<()> {
    let op = |name: &str, value: Option<&str>| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_config_operation(if value.is_some() { 0 } else { 1 })
            .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
    };
    let mut resources = Vec::new();
    for (topic, (leader, follower)) in &plan.topics {
        let configs = match rate {
            Some(_) => vec![
                op(LEADER_REPLICAS, Some(leader)),
                op(FOLLOWER_REPLICAS, Some(follower)),
            ],
            None => vec![op(LEADER_REPLICAS, None), op(FOLLOWER_REPLICAS, None)],
        };
        resources.push(
            AlterConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(topic.clone()))
                .with_configs(configs),
        );
    }
    let rate = rate.map(|r| r.to_string());
    for broker in &plan.brokers {
        resources.push(
            AlterConfigsResource::default()
                .with_resource_type(BROKER_RESOURCE)
                .with_resource_name(StrBytes::from_string(broker.to_string()))
                .with_configs(vec![
                    op(LEADER_RATE, rate.as_deref()),
                    op(FOLLOWER_RATE, rate.as_deref()),
                ]),
        );
    }
    let response = client
        .any()
        .call(IncrementalAlterConfigsRequest::default().with_resources(resources))
        .await?;
    for r in &response.responses {
        let what = match r.resource_type {
            TOPIC_RESOURCE => format!("throttle of topic {}", r.resource_name),
            _ => format!("throttle rate of broker {}", r.resource_name),
        };
        check(&what, r.error_code, r.error_message.as_deref())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(topic: &str, partition: i32, replicas: &[i32]) -> Move {
        Move {
            topic: topic.into(),
            partition,
            replicas: Some(replicas.to_vec()),
        }
    }

    #[test]
    fn current_replicas_lead_the_copy_and_added_ones_follow() {
        let current = BTreeMap::from([
            (("a".to_string(), 0), vec![1, 2]),
            (("a".to_string(), 1), vec![2, 3]),
            (("b".to_string(), 0), vec![1, 2, 3]),
        ]);
        let plan = throttled_replicas(
            &[
                mv("a", 0, &[1, 2, 4]),
                mv("a", 1, &[3, 4]),
                mv("b", 0, &[3, 2, 1]),
            ],
            &current,
        )
        .unwrap();
        assert_eq!(
            plan.topics,
            BTreeMap::from([
                (
                    "a".to_string(),
                    ("0:1,0:2,1:2,1:3".to_string(), "0:4,1:4".to_string())
                ),
                // A reorder copies nothing: no follower is throttled.
                ("b".to_string(), ("0:1,0:2,0:3".to_string(), String::new())),
            ])
        );
        assert_eq!(plan.brokers, BTreeSet::from([1, 2, 3, 4]));
    }

    #[test]
    fn an_unknown_partition_is_an_error_and_a_cancel_throttles_nothing() {
        let current = BTreeMap::from([(("a".to_string(), 0), vec![1])]);
        let err = throttled_replicas(&[mv("a", 5, &[1, 2])], &current).unwrap_err();
        assert!(err.to_string().contains("a:5 does not exist"), "{err}");
        let cancel = Move {
            topic: "a".into(),
            partition: 0,
            replicas: None,
        };
        let plan = throttled_replicas(&[cancel], &current).unwrap();
        assert!(plan.topics.is_empty() && plan.brokers.is_empty());
    }
}
