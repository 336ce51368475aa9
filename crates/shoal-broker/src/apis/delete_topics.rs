//! DeleteTopics by name (v0–5) or by name or id (v6+); logs are removed as brokers apply it.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind};
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::TopicRef;
use uuid::Uuid;

use crate::Broker;
use crate::apis::internal_topics::{self, AdminAction};
use crate::apis::{bounded_timeout_ms, str_bytes, topic_name};
use crate::error_codes::controller_error_code;

const MAX_ADMIN_TIMEOUT_MS: u64 = 120_000;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> Reply {
    let refs: Vec<TopicRef> = if ctx.api_version >= 6 {
        request
            .topics
            .iter()
            .map(|t| match &t.name {
                Some(name) => TopicRef::Name(name.0.as_str().to_string()),
                None => TopicRef::Id(t.topic_id),
            })
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| TopicRef::Name(n.0.as_str().to_string()))
            .collect()
    };
    if !broker.config.delete_topic_enable {
        let responses = refs
            .iter()
            .map(|r| result_for(r).with_error_code(ResponseError::TopicDeletionDisabled.code()))
            .collect();
        return Reply::Ready(ResponseKind::DeleteTopics(
            DeleteTopicsResponse::default().with_responses(responses),
        ));
    }
    let image = broker.image();
    let outcome = internal_topics::forward_allowed(
        refs.clone(),
        |r| {
            let name = match r {
                TopicRef::Name(name) => Some(name.as_str()),
                TopicRef::Id(id) => image.topic(id).map(|t| t.name.as_str()),
            };
            name.and_then(|n| internal_topics::refusal(AdminAction::Delete, n))
        },
        |allowed| broker.controller.delete_topics(allowed),
    )
    .await;
    if let Some(index) = outcome.log_index {
        let timeout =
            Duration::from_millis(bounded_timeout_ms(request.timeout_ms, MAX_ADMIN_TIMEOUT_MS));
        broker.wait_for_metadata(index, timeout).await;
    }
    let responses = refs
        .iter()
        .zip(outcome.results)
        .map(|(r, result)| {
            let response = result_for(r);
            match result {
                Ok(id) => {
                    let mut response = response;
                    if ctx.api_version >= 6 {
                        response.topic_id = id;
                        if response.name.is_none() {
                            response.name = image.topic(&id).map(|t| topic_name(&t.name));
                        }
                    }
                    response
                }
                Err(error) => response
                    .with_error_code(controller_error_code(&error))
                    .with_error_message(
                        (ctx.api_version >= 5).then(|| str_bytes(&error.to_string())),
                    ),
            }
        })
        .collect();
    Reply::Ready(ResponseKind::DeleteTopics(
        DeleteTopicsResponse::default().with_responses(responses),
    ))
}

fn result_for(topic: &TopicRef) -> DeletableTopicResult {
    match topic {
        TopicRef::Name(name) => DeletableTopicResult::default()
            .with_name(Some(topic_name(name)))
            .with_topic_id(Uuid::nil()),
        TopicRef::Id(id) => DeletableTopicResult::default().with_topic_id(*id),
    }
}
