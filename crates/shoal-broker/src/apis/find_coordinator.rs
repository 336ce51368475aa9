//! FindCoordinator: which broker coordinates a group (the leader of its `__consumer_offsets`
//! partition), creating that topic on first use.
//!
//! v0–3 carry one key and answer at the top level; v4+ (KIP-699) carry a batch of keys and
//! answer each in `coordinators`. Like Kafka, the answer never says NOT_COORDINATOR or
//! LOAD_IN_PROGRESS — the leader is named even while it loads; the group APIs say those.
//! Transactions are not supported, so transaction coordinators are refused with the same fatal
//! error InitProducerId gives a transactional id.
//!
//! Authorization (Kafka's `getCoordinator`), per key and before anything else: a group key needs
//! DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED), a transactional key DESCRIBE on the
//! transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED). A denied key is answered with
//! no node, so it does not even create `__consumer_offsets`.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::str_bytes;
use crate::internal_topic::CoordinatorLocation;

/// Most keys one batched request may ask for (bounds the work one request causes).
const MAX_KEYS: usize = 1_000;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

struct Found {
    /// `None` = found.
    error: Option<(ResponseError, String)>,
    node_id: i32,
    host: String,
    port: i32,
}

impl Found {
    fn error(error: ResponseError, message: impl Into<String>) -> Self {
        Found {
            error: Some((error, message.into())),
            node_id: -1,
            host: String::new(),
            port: -1,
        }
    }

    fn code(&self) -> i16 {
        self.error.as_ref().map_or(0, |(e, _)| e.code())
    }

    fn message(&self) -> Option<StrBytes> {
        self.error.as_ref().map(|(_, m)| str_bytes(m))
    }
}

async fn find(broker: &Arc<Broker>, ctx: &RequestContext, key_type: i8, key: &str) -> Found {
    match key_type {
        KEY_TYPE_GROUP => {
            if !broker
                .authorization
                .allowed(ctx, Operation::Describe, ResourceType::Group, key)
            {
                return Found::error(
                    ResponseError::GroupAuthorizationFailed,
                    "Group authorization failed.",
                );
            }
        }
        KEY_TYPE_TRANSACTION => {
            if !broker.authorization.allowed(
                ctx,
                Operation::Describe,
                ResourceType::TransactionalId,
                key,
            ) {
                return Found::error(
                    ResponseError::TransactionalIdAuthorizationFailed,
                    "Transactional Id authorization failed.",
                );
            }
        }
        other => {
            return Found::error(
                ResponseError::InvalidRequest,
                format!("unsupported coordinator key type {other}"),
            );
        }
    }
    let location = if key_type == KEY_TYPE_TRANSACTION {
        broker.transactions.locate(key).await
    } else {
        broker.groups.locate(key).await
    };
    let node_id = match location {
        CoordinatorLocation::Broker(id) => id,
        CoordinatorLocation::NotAvailable => {
            return Found::error(
                ResponseError::CoordinatorNotAvailable,
                "the coordinator is not available",
            );
        }
    };
    let image = broker.image();
    let endpoint = image
        .brokers
        .get(&node_id)
        .and_then(|b| b.listeners.iter().find(|e| e.name == ctx.listener));
    match endpoint {
        Some(e) => Found {
            error: None,
            node_id,
            host: e.host.clone(),
            port: i32::from(e.port),
        },
        None => Found::error(
            ResponseError::CoordinatorNotAvailable,
            format!("the coordinator has no {} listener", ctx.listener),
        ),
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> Reply {
    let version = ctx.api_version;
    let key_type = if version >= 1 {
        request.key_type
    } else {
        KEY_TYPE_GROUP
    };
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        let too_many = request.coordinator_keys.len() > MAX_KEYS;
        if too_many {
            tracing::warn!(keys = request.coordinator_keys.len(), client = ?ctx.client_id, "FindCoordinator with too many keys refused");
        }
        for key in request.coordinator_keys {
            let found = if too_many {
                Found::error(
                    ResponseError::InvalidRequest,
                    format!("at most {MAX_KEYS} coordinator keys per request"),
                )
            } else {
                find(broker, ctx, key_type, key.as_str()).await
            };
            response.coordinators.push(
                Coordinator::default()
                    .with_error_code(found.code())
                    .with_error_message(found.message())
                    .with_node_id(BrokerId(found.node_id))
                    .with_host(StrBytes::from_string(found.host))
                    .with_port(found.port)
                    .with_key(key),
            );
        }
    } else {
        let found = find(broker, ctx, key_type, request.key.as_str()).await;
        response.error_code = found.code();
        if version >= 1 {
            response.error_message = found.message();
        }
        response.node_id = BrokerId(found.node_id);
        response.host = StrBytes::from_string(found.host);
        response.port = found.port;
    }
    Reply::Ready(ResponseKind::FindCoordinator(response))
}
