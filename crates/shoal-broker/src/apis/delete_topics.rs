//! DeleteTopics by name (v0–5) or by name or id (v6+); logs are removed as brokers apply it.
//!
//! Authorization is Kafka's (`ControllerApis.deleteTopics`), decided here before anything is
//! sent to the controller: DELETE on the cluster allows every topic; otherwise a topic named
//! in the request needs DESCRIBE (else TOPIC_AUTHORIZATION_FAILED, whether or not it exists)
//! and DELETE (else TOPIC_AUTHORIZATION_FAILED, or UNKNOWN_TOPIC_OR_PARTITION if it does not
//! exist). A topic given by id is first resolved in the image (an unknown id is
//! UNKNOWN_TOPIC_ID) and needs DELETE on its name; a refusal names the topic only to a
//! principal that may DESCRIBE it, so ids do not reveal names.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::{ControllerError, MetadataImage, TopicRef};
use uuid::Uuid;

use crate::Broker;
use crate::apis::internal_topics::{self, AdminAction};
use crate::apis::{bounded_timeout_ms, str_bytes, topic_name};
use crate::authorization::CLUSTER_NAME;
use crate::error_codes::controller_error_code;

const MAX_ADMIN_TIMEOUT_MS: u64 = 120_000;

/// What becomes of one topic of the request once authorization has been decided.
enum Verdict {
    /// Sent to the controller.
    Forward,
    /// TOPIC_AUTHORIZATION_FAILED; the name is shown only to a principal that may describe it.
    Unauthorized { shown_name: Option<String> },
    /// Answered here without asking the controller (an unknown topic the principal may not
    /// delete: forwarding it would let a topic created meanwhile be deleted).
    Answer(ControllerError),
}

fn verdict(
    broker: &Broker,
    ctx: &RequestContext,
    image: &MetadataImage,
    cluster_delete: bool,
    topic: &TopicRef,
) -> Verdict {
    let may = |operation: Operation, name: &str| {
        cluster_delete
            || broker
                .authorization
                .allowed(ctx, operation, ResourceType::Topic, name)
    };
    match topic {
        TopicRef::Name(name) => {
            if !may(Operation::Describe, name) {
                Verdict::Unauthorized {
                    shown_name: Some(name.clone()),
                }
            } else if may(Operation::Delete, name) {
                Verdict::Forward
            } else if image.topic_by_name(name).is_some() {
                Verdict::Unauthorized {
                    shown_name: Some(name.clone()),
                }
            } else {
                Verdict::Answer(ControllerError::UnknownTopicOrPartition(name.clone()))
            }
        }
        TopicRef::Id(id) => match image.topic(id) {
            // Not in this broker's image yet: only a principal who may delete any topic has
            // it sent on (the controller answers UNKNOWN_TOPIC_ID if it does not exist there).
            None if cluster_delete => Verdict::Forward,
            None => Verdict::Answer(ControllerError::UnknownTopicId(*id)),
            Some(t) if may(Operation::Delete, &t.name) => Verdict::Forward,
            Some(t) => Verdict::Unauthorized {
                shown_name: may(Operation::Describe, &t.name).then(|| t.name.clone()),
            },
        },
    }
}

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
    // Kafka asks about the cluster without logging a denial (most deleters hold topic ACLs).
    let cluster_delete = broker.authorization.allowed_quietly(
        ctx,
        Operation::Delete,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    let verdicts: Vec<Verdict> = refs
        .iter()
        .map(|r| verdict(broker, ctx, &image, cluster_delete, r))
        .collect();
    let forwarded_refs: Vec<TopicRef> = refs
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| matches!(v, Verdict::Forward))
        .map(|(r, _)| r.clone())
        .collect();
    let outcome = internal_topics::forward_allowed(
        forwarded_refs,
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
    let mut forwarded = outcome.results.into_iter();
    let responses = refs
        .iter()
        .zip(verdicts)
        .map(|(r, verdict)| {
            let result = match verdict {
                Verdict::Forward => forwarded.next().unwrap_or_else(|| {
                    Err(ControllerError::Internal(
                        "the controller answered fewer topics than it was sent".to_string(),
                    ))
                }),
                Verdict::Answer(error) => Err(error),
                Verdict::Unauthorized { shown_name } => {
                    let mut response = result_for(r)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    if ctx.api_version >= 6 && matches!(r, TopicRef::Id(_)) {
                        response.name = shown_name.map(|n| topic_name(&n));
                    }
                    return response;
                }
            };
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
        TopicRef::Id(id) => DeletableTopicResult::default()
            .with_name(None)
            .with_topic_id(*id),
    }
}
