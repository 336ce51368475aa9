//! SaslHandshake and SaslAuthenticate on a listener without SASL. On a SASL listener the
//! Kafka front authenticates the connection itself (`shoal_kafka::sasl`) and these never reach
//! the broker; here, as in Kafka, they are answered ILLEGAL_SASL_STATE.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse};
use shoal_kafka::{Reply, RequestContext};

use crate::apis::str_bytes;

pub fn handshake(ctx: &RequestContext) -> Reply {
    tracing::debug!(peer = %ctx.peer, listener = %ctx.listener, "SaslHandshake on a listener without SASL");
    Reply::Ready(ResponseKind::SaslHandshake(
        SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code()),
    ))
}

pub fn authenticate(ctx: &RequestContext) -> Reply {
    Reply::Ready(ResponseKind::SaslAuthenticate(
        SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(str_bytes(&format!(
                "listener {} does not use SASL",
                ctx.listener
            )))),
    ))
}
