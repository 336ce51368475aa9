//! CreatePartitions: grow a topic's partition count (never shrink, as in Kafka).
//!
//! Needs ALTER on the topic (Kafka's `ControllerApis.createPartitions`), checked before the
//! controller is asked: an unauthorized topic is answered TOPIC_AUTHORIZATION_FAILED and keeps
//! its partitions; the others proceed.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, ResponseKind};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::{ControllerError, CreatePartitions};

use crate::Broker;
use crate::apis::internal_topics::{self, AdminAction};
use crate::apis::{bounded_timeout_ms, str_bytes};
use crate::error_codes::controller_error_code;

const MAX_ADMIN_TIMEOUT_MS: u64 = 120_000;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> Reply {
    let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
    let authorized: Vec<bool> = names
        .iter()
        .map(|name| {
            broker.authorization.allowed(
                ctx,
                Operation::Alter,
                ResourceType::Topic,
                name.0.as_str(),
            )
        })
        .collect();
    let requests = request
        .topics
        .into_iter()
        .zip(&authorized)
        .filter_map(|(t, allowed)| allowed.then_some(t))
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
    let mut forwarded = outcome.results.into_iter();
    let results = names
        .into_iter()
        .zip(authorized)
        .map(|(name, allowed)| {
            let response = CreatePartitionsTopicResult::default().with_name(name);
            if !allowed {
                return response.with_error_code(ResponseError::TopicAuthorizationFailed.code());
            }
            let result = forwarded.next().unwrap_or_else(|| {
                Err(ControllerError::Internal(
                    "the controller answered fewer topics than it was sent".to_string(),
                ))
            });
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
