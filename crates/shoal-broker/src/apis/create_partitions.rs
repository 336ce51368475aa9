//! CreatePartitions: grow a topic's partition count (never shrink, as in Kafka).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, ResponseKind};
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::CreatePartitions;

use crate::Broker;
use crate::apis::internal_topics::{self, AdminAction};
use crate::apis::{bounded_timeout_ms, str_bytes};
use crate::error_codes::controller_error_code;

const MAX_ADMIN_TIMEOUT_MS: u64 = 120_000;

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> Reply {
    let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
    let requests = request
        .topics
        .into_iter()
        .map(|t| CreatePartitions {
            topic: t.name.0.as_str().to_string(),
            new_total_count: t.count,
            assignments: t.assignments.map(|a| {
                a.into_iter()
                    .map(|x| x.broker_ids.into_iter().map(|b| b.0).collect())
                    .collect()
            }),
        })
        .collect();
    let outcome = internal_topics::forward_allowed(
        requests,
        |t| internal_topics::refusal(AdminAction::CreatePartitions, &t.topic),
        |allowed| {
            broker
                .controller
                .create_partitions(allowed, request.validate_only)
        },
    )
    .await;
    if let Some(index) = outcome.log_index {
        let timeout =
            Duration::from_millis(bounded_timeout_ms(request.timeout_ms, MAX_ADMIN_TIMEOUT_MS));
        broker.wait_for_metadata(index, timeout).await;
    }
    let results = names
        .into_iter()
        .zip(outcome.results)
        .map(|(name, result)| {
            let response = CreatePartitionsTopicResult::default().with_name(name);
            match result {
                Ok(_) => response,
                Err(error) => response
                    .with_error_code(controller_error_code(&error))
                    .with_error_message(Some(str_bytes(&error.to_string()))),
            }
        })
        .collect();
    Reply::Ready(ResponseKind::CreatePartitions(
        CreatePartitionsResponse::default().with_results(results),
    ))
}
