//! UnregisterBroker (`kafka-cluster unregister --id N`, `shoalctl broker unregister N`): the
//! last step of retiring a broker. The controller refuses while the broker holds a replica or
//! still runs (`shoal_meta::controller::unregister_broker`). ALTER on the cluster, as Kafka's
//! `ControllerApis.handleUnregisterBroker`.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ResponseKind, UnregisterBrokerRequest, UnregisterBrokerResponse};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::str_bytes;
use crate::error_codes::controller_error_code;

/// How long the answer waits for this broker to apply the change.
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: UnregisterBrokerRequest,
) -> Reply {
    let respond = |code: i16, message: Option<String>| {
        Reply::Ready(ResponseKind::UnregisterBroker(
            UnregisterBrokerResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(|m| str_bytes(&m))),
        ))
    };
    if !broker
        .authorization
        .allowed_on_cluster(ctx, Operation::Alter)
    {
        return respond(
            ResponseError::ClusterAuthorizationFailed.code(),
            Some("Cluster authorization failed.".to_string()),
        );
    }
    let outcome = broker
        .controller
        .unregister_broker(request.broker_id.0)
        .await;
    if let Some(index) = outcome.log_index {
        broker.wait_for_metadata(index, APPLY_TIMEOUT).await;
    }
    match outcome.results.into_iter().next() {
        Some(Ok(())) => respond(0, None),
        Some(Err(error)) => respond(controller_error_code(&error), Some(error.to_string())),
        None => respond(
            ResponseError::UnknownServerError.code(),
            Some("The controller gave no result.".to_string()),
        ),
    }
}
