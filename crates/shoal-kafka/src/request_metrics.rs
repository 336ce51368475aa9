//! Per-API request metrics: count, latency from read to encoded response, and the Kafka
//! error codes each response carries.
//!
//! Most APIs report errors per topic or partition, not per response, so a Produce to ten
//! partitions of which two moved counts two NOT_LEADER_OR_FOLLOWER. That is how Kafka's own
//! `ErrorsPerSec` counts (from each response's `errorCounts()`), so dashboards read the same.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use std::time::Instant;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, ResponseKind};

/// Records one answered request (`response` is `None` for acks=0 Produce).
pub(crate) fn record(api_key: ApiKey, received: Instant, response: Option<&ResponseKind>) {
    let errors = response.map(error_names).unwrap_or_default();
    shoal_metrics::record_request(api_name(api_key), received.elapsed(), &errors);
}

/// The API's name as Kafka's docs write it (`Produce`, `OffsetCommit`).
pub fn api_name(api_key: ApiKey) -> &'static str {
    static NAMES: LazyLock<Mutex<HashMap<i16, &'static str>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    names
        .entry(api_key as i16)
        .or_insert_with(|| Box::leak(format!("{api_key:?}").into_boxed_str()))
}

/// Every non-zero error code in `response`, as Kafka's error names.
pub fn error_names(response: &ResponseKind) -> Vec<&'static str> {
    let mut codes = Vec::new();
    error_codes(response, &mut codes);
    codes
        .into_iter()
        .filter(|c| *c != 0)
        .map(error_name)
        .collect()
}

fn error_codes(response: &ResponseKind, out: &mut Vec<i16>) {
    match response {
        ResponseKind::Produce(r) => out.extend(
            r.responses
                .iter()
                .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code)),
        ),
        ResponseKind::Fetch(r) => {
            out.push(r.error_code);
            out.extend(
                r.responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            );
        }
        ResponseKind::ListOffsets(r) => out.extend(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::Metadata(r) => {
            out.push(r.error_code);
            out.extend(r.topics.iter().map(|t| t.error_code));
        }
        ResponseKind::CreateTopics(r) => out.extend(r.topics.iter().map(|t| t.error_code)),
        ResponseKind::DeleteTopics(r) => out.extend(r.responses.iter().map(|t| t.error_code)),
        ResponseKind::CreatePartitions(r) => out.extend(r.results.iter().map(|t| t.error_code)),
        ResponseKind::DescribeConfigs(r) => out.extend(r.results.iter().map(|t| t.error_code)),
        ResponseKind::IncrementalAlterConfigs(r) => {
            out.extend(r.responses.iter().map(|t| t.error_code))
        }
        ResponseKind::DescribeCluster(r) => out.push(r.error_code),
        ResponseKind::UpdateFeatures(r) => out.push(r.error_code),
        ResponseKind::AlterPartitionReassignments(r) => {
            out.push(r.error_code);
            out.extend(
                r.responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            )
        }
        ResponseKind::ListPartitionReassignments(r) => out.push(r.error_code),
        ResponseKind::UnregisterBroker(r) => out.push(r.error_code),
        ResponseKind::DescribeLogDirs(r) => {
            out.push(r.error_code);
            out.extend(r.results.iter().map(|d| d.error_code));
        }
        ResponseKind::InitProducerId(r) => out.push(r.error_code),
        ResponseKind::OffsetForLeaderEpoch(r) => out.extend(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::FindCoordinator(r) => {
            out.push(r.error_code);
            out.extend(r.coordinators.iter().map(|c| c.error_code));
        }
        ResponseKind::JoinGroup(r) => out.push(r.error_code),
        ResponseKind::SyncGroup(r) => out.push(r.error_code),
        ResponseKind::Heartbeat(r) => out.push(r.error_code),
        ResponseKind::LeaveGroup(r) => out.push(r.error_code),
        ResponseKind::OffsetCommit(r) => out.extend(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::OffsetFetch(r) => {
            out.push(r.error_code);
            for g in &r.groups {
                out.push(g.error_code);
                out.extend(
                    g.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                );
            }
            out.extend(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            );
        }
        ResponseKind::DescribeGroups(r) => out.extend(r.groups.iter().map(|g| g.error_code)),
        ResponseKind::ListGroups(r) => out.push(r.error_code),
        ResponseKind::DeleteGroups(r) => out.extend(r.results.iter().map(|g| g.error_code)),
        ResponseKind::OffsetDelete(r) => {
            out.push(r.error_code);
            out.extend(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            );
        }
        ResponseKind::ApiVersions(r) => out.push(r.error_code),
        ResponseKind::ElectLeaders(r) => {
            out.push(r.error_code);
            out.extend(
                r.replica_election_results
                    .iter()
                    .flat_map(|t| t.partition_result.iter().map(|p| p.error_code)),
            );
        }
        _ => {}
    }
}

/// Kafka's name for an error code (`NOT_LEADER_OR_FOLLOWER`), from kafka-protocol's variant
/// name; names are computed once per code, so the label set is bounded by the codes that exist.
pub fn error_name(code: i16) -> &'static str {
    static NAMES: LazyLock<Mutex<HashMap<i16, &'static str>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let Some(error) = ResponseError::try_from_code(code) else {
        return "NONE";
    };
    if let ResponseError::Unknown(_) = error {
        return "UNKNOWN";
    }
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    names
        .entry(code)
        .or_insert_with(|| Box::leak(screaming_snake(&error.to_string()).into_boxed_str()))
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ProduceResponse;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };

    #[test]
    fn api_names() {
        assert_eq!(api_name(ApiKey::Produce), "Produce");
        assert_eq!(api_name(ApiKey::OffsetCommit), "OffsetCommit");
    }

    #[test]
    fn names_are_kafkas() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(74), "FENCED_LEADER_EPOCH");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(30_000), "UNKNOWN");
    }

    #[test]
    fn partition_errors_are_counted_each() {
        let partition = |code| PartitionProduceResponse::default().with_error_code(code);
        let response = ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default().with_partition_responses(vec![
                partition(0),
                partition(6),
                partition(6),
            ]),
        ]);
        assert_eq!(
            error_names(&ResponseKind::Produce(response)),
            vec!["NOT_LEADER_OR_FOLLOWER", "NOT_LEADER_OR_FOLLOWER"]
        );
    }
}
