//! What OffsetCommit and TxnOffsetCommit share: sorting a request's partitions into those
//! passed to the group coordinator and those answered at once, in Kafka's order (READ on each
//! topic, decided once per distinct name as Kafka's `filterByAuthorized`, so a denied client
//! learns nothing about which topics exist; then UNKNOWN_TOPIC_OR_PARTITION for a partition the
//! metadata does not know), while the request's other partitions are still committed.

use std::collections::HashMap;

use kafka_protocol::ResponseError;
use shoal_acl::{Operation, ResourceType};
use shoal_group::coordinator::CommitOffset;
use shoal_kafka::RequestContext;

use crate::Broker;

/// One partition of a commit request.
pub(crate) struct AskedPartition {
    pub index: i32,
    pub offset: i64,
    /// -1 when the request version carries none.
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

impl AskedPartition {
    /// `leader_epoch` is `None` for request versions that do not carry one.
    pub fn new(index: i32, offset: i64, leader_epoch: Option<i32>, metadata: Option<&str>) -> Self {
        AskedPartition {
            index,
            offset,
            leader_epoch: leader_epoch.unwrap_or(-1),
            metadata: metadata.map(str::to_owned),
        }
    }
}

/// A request's partitions sorted out.
pub(crate) struct CommitPlan {
    /// What to hand the coordinator, in request order.
    pub offsets: Vec<CommitOffset>,
    /// (topic index, partition index) of each entry of `offsets`.
    positions: Vec<(usize, usize)>,
    /// Per topic in request order: (partition index, error code) per partition; 0 for the
    /// ones passed on until [`CommitPlan::answered`].
    pub codes: Vec<Vec<(i32, i16)>>,
}

/// Sorts `topics` (name, partitions, in request order); `retention_ms` goes with every offset.
pub(crate) fn plan(
    broker: &Broker,
    ctx: &RequestContext,
    topics: impl IntoIterator<Item = (String, Vec<AskedPartition>)>,
    retention_ms: Option<i64>,
) -> CommitPlan {
    let image = broker.image();
    let mut plan = CommitPlan {
        offsets: Vec::new(),
        positions: Vec::new(),
        codes: Vec::new(),
    };
    let mut readable: HashMap<String, bool> = HashMap::new();
    for (t, (name, partitions)) in topics.into_iter().enumerate() {
        let authorized = *readable.entry(name.clone()).or_insert_with(|| {
            broker
                .authorization
                .allowed(ctx, Operation::Read, ResourceType::Topic, &name)
        });
        if !authorized {
            let code = ResponseError::TopicAuthorizationFailed.code();
            plan.codes
                .push(partitions.iter().map(|p| (p.index, code)).collect());
            continue;
        }
        let known = image.topic_by_name(&name);
        let mut codes = Vec::with_capacity(partitions.len());
        for (p, partition) in partitions.into_iter().enumerate() {
            if known.is_some_and(|k| k.partition(partition.index).is_some()) {
                plan.positions.push((t, p));
                codes.push((partition.index, 0));
                plan.offsets.push(CommitOffset {
                    topic: name.clone(),
                    partition: partition.index,
                    offset: partition.offset,
                    leader_epoch: partition.leader_epoch,
                    metadata: partition.metadata,
                    retention_ms,
                });
            } else {
                codes.push((
                    partition.index,
                    ResponseError::UnknownTopicOrPartition.code(),
                ));
            }
        }
        plan.codes.push(codes);
    }
    plan
}

impl CommitPlan {
    /// The response's topics: `topic(name, partitions)` per requested topic, in order, with
    /// `partition(index, code)` per partition.
    pub(crate) fn respond<N, T, P>(
        self,
        names: Vec<N>,
        topic: impl Fn(N, Vec<P>) -> T,
        partition: impl Fn(i32, i16) -> P,
    ) -> Vec<T> {
        names
            .into_iter()
            .zip(self.codes)
            .map(|(name, codes)| {
                let partitions = codes
                    .into_iter()
                    .map(|(index, code)| partition(index, code))
                    .collect();
                topic(name, partitions)
            })
            .collect()
    }

    /// The coordinator's codes for [`CommitPlan::offsets`], in their order.
    pub(crate) fn answered(&mut self, codes: impl IntoIterator<Item = i16>) {
        for ((t, p), code) in self.positions.iter().zip(codes) {
            if let Some(slot) = self.codes.get_mut(*t).and_then(|t| t.get_mut(*p)) {
                slot.1 = code;
            }
        }
    }
}
