//! The cluster as the balance planner sees it (`shoal_balance::ClusterView`): replicas and
//! racks from Metadata, sizes from every broker's DescribeLogDirs, and the plan as a table.

use std::collections::BTreeMap;

use kafka_protocol::messages::DescribeLogDirsRequest;
use serde_json::{Value, json};
use shoal_balance::{BrokerView, ClusterView, PartitionView, Plan};

use super::check;
use super::reassign::Move;
use crate::kafka::Client;
use crate::output::{Output, list as id_list};

/// Every partition (internal topics included) with the largest size any replica reported;
/// live brokers accept replicas unless in `leaving`; brokers that only appear in replica
/// lists (down, fenced) are in the view without a rack and accept nothing.
pub async fn load(client: &mut Client, leaving: &[i32]) -> anyhow::Result<ClusterView> {
    let md = client.metadata(None).await?;
    let brokers: Vec<BrokerView> = md
        .brokers
        .iter()
        .map(|b| BrokerView {
            id: b.node_id.0,
            rack: b.rack.as_ref().map(|r| r.to_string()),
            accepting: !leaving.contains(&b.node_id.0),
        })
        .collect();
    let mut sizes: BTreeMap<(String, i32), u64> = BTreeMap::new();
    let live: Vec<i32> = brokers.iter().map(|b| b.id).collect();
    for id in live {
        let response = client
            .broker(id)
            .await?
            .call(DescribeLogDirsRequest::default().with_topics(None))
            .await?;
        check(
            &format!("DescribeLogDirs of broker {id}"),
            response.error_code,
            None,
        )?;
        for dir in &response.results {
            for t in &dir.topics {
                for p in &t.partitions {
                    let size = u64::try_from(p.partition_size).unwrap_or(0);
                    let entry = sizes
                        .entry((t.name.0.to_string(), p.partition_index))
                        .or_insert(0);
                    *entry = (*entry).max(size);
                }
            }
        }
    }
    let mut view = ClusterView {
        brokers,
        partitions: Vec::new(),
    };
    for t in &md.topics {
        let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
            continue;
        };
        check(&format!("topic {name}"), t.error_code, None)?;
        for p in &t.partitions {
            view.add_partition(PartitionView {
                size_bytes: sizes
                    .get(&(name.clone(), p.partition_index))
                    .copied()
                    .unwrap_or(0),
                topic: name.clone(),
                partition: p.partition_index,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
            });
        }
    }
    view.sort();
    Ok(view)
}

/// The plan's moves as reassignments.
pub fn moves(plan: &Plan) -> Vec<Move> {
    plan.moves
        .iter()
        .map(|m| Move {
            topic: m.topic.clone(),
            partition: m.partition,
            replicas: Some(m.to.clone()),
        })
        .collect()
}

/// The plan: its moves, then every broker's load before and after.
pub fn emit(plan: &Plan, out: &Output) {
    let move_rows: Vec<Vec<String>> = plan
        .moves
        .iter()
        .map(|m| {
            vec![
                m.topic.clone(),
                m.partition.to_string(),
                id_list(&m.from),
                id_list(&m.to),
                m.bytes_to_copy.to_string(),
            ]
        })
        .collect();
    let after: BTreeMap<i32, &shoal_balance::BrokerLoad> =
        plan.after.iter().map(|l| (l.broker, l)).collect();
    let broker_rows: Vec<Vec<String>> = plan
        .before
        .iter()
        .map(|b| {
            let a = after.get(&b.broker);
            vec![
                b.broker.to_string(),
                format!("{} -> {}", b.replicas, a.map_or(0, |a| a.replicas)),
                format!("{} -> {}", b.leaders, a.map_or(0, |a| a.leaders)),
                format!("{} -> {}", b.bytes, a.map_or(0, |a| a.bytes)),
            ]
        })
        .collect();
    let total: u64 = plan.moves.iter().map(|m| m.bytes_to_copy).sum();
    let value = json!({
        "moves": plan.moves.iter().map(|m| json!({"topic": m.topic, "partition": m.partition,
            "from": m.from, "to": m.to, "bytes_to_copy": m.bytes_to_copy})).collect::<Vec<Value>>(),
        "bytes_to_copy": total,
        "brokers": plan.before.iter().map(|b| {
            let a = after.get(&b.broker);
            json!({"broker": b.broker,
                "before": {"replicas": b.replicas, "leaders": b.leaders, "bytes": b.bytes},
                "after": {"replicas": a.map_or(0, |a| a.replicas), "leaders": a.map_or(0, |a| a.leaders),
                          "bytes": a.map_or(0, |a| a.bytes)}})
        }).collect::<Vec<Value>>(),
    });
    let title = format!(
        "{} partition(s) to move, {total} bytes to copy",
        plan.moves.len()
    );
    out.emit(
        &value,
        &[
            (
                title.as_str(),
                vec!["TOPIC", "PARTITION", "FROM", "TO", "BYTES"],
                move_rows,
            ),
            (
                "",
                vec!["BROKER", "REPLICAS", "LEADERS", "BYTES"],
                broker_rows,
            ),
        ],
    );
}
