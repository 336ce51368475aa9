//! AlterClientQuotas (KIP-546): set or remove byte-rate quotas of users, client ids, both, and
//! their defaults. The controller checks each entity's changes (`shoal_meta` planner) and
//! commits them as ClientQuota records; every broker then enforces them (`crate::quotas`).
//! Needs ALTER_CONFIGS on the cluster, as in Kafka. Answers per entity: all its changes apply,
//! or none.

use std::sync::Arc;

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse, ResponseKind};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::{ClientQuotaAlteration, ClientQuotaOp};

use crate::Broker;
use crate::apis::{ItemOutcome, cluster_change_allowed, forward_valid, str_bytes};
use crate::error_codes::controller_error_code;

/// One entity as sent: `(entity_type, name)`, a null name for the default.
type WireEntity = Vec<(String, Option<String>)>;

fn entry(entity: &WireEntity, code: i16, message: Option<&str>) -> EntryData {
    EntryData::default()
        .with_error_code(code)
        .with_error_message(message.map(str_bytes))
        .with_entity(
            entity
                .iter()
                .map(|(entity_type, name)| {
                    EntityData::default()
                        .with_entity_type(str_bytes(entity_type))
                        .with_entity_name(name.as_deref().map(str_bytes))
                })
                .collect(),
        )
}

fn respond(entries: Vec<EntryData>) -> Reply {
    Reply::Ready(ResponseKind::AlterClientQuotas(
        AlterClientQuotasResponse::default().with_entries(entries),
    ))
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterClientQuotasRequest,
) -> Reply {
    let alterations: Vec<ClientQuotaAlteration> = request
        .entries
        .iter()
        .map(|e| ClientQuotaAlteration {
            entity: e
                .entity
                .iter()
                .map(|part| {
                    (
                        part.entity_type.as_str().to_owned(),
                        part.entity_name.as_ref().map(|n| n.as_str().to_owned()),
                    )
                })
                .collect(),
            ops: e
                .ops
                .iter()
                .map(|op| ClientQuotaOp {
                    key: op.key.as_str().to_owned(),
                    value: op.value,
                    remove: op.remove,
                })
                .collect(),
        })
        .collect();
    let entities: Vec<WireEntity> = alterations.iter().map(|a| a.entity.clone()).collect();
    if let Err((error, message)) = cluster_change_allowed(
        broker,
        ctx,
        Operation::AlterConfigs,
        alterations.len(),
        false,
    ) {
        let message = (!message.is_empty()).then_some(message.as_str());
        return respond(
            entities
                .iter()
                .map(|e| entry(e, error.code(), message))
                .collect(),
        );
    }
    let validate_only = request.validate_only;
    let parsed: Vec<Result<ClientQuotaAlteration, ()>> = alterations.into_iter().map(Ok).collect();
    let outcomes = forward_valid(broker, parsed, async |valid| {
        broker
            .controller
            .alter_client_quotas(valid, validate_only)
            .await
    })
    .await;
    let entries = entities
        .iter()
        .zip(outcomes)
        .map(|(entity, outcome)| match outcome {
            ItemOutcome::Invalid(()) => entry(entity, 0, None),
            ItemOutcome::Done(alteration, ()) => {
                if !validate_only {
                    tracing::info!(target: "shoal::audit", principal = %ctx.principal,
                        entity = ?alteration.entity, ops = ?alteration.ops, "client quotas altered");
                }
                entry(entity, 0, None)
            }
            ItemOutcome::Refused(error) => {
                entry(entity, controller_error_code(&error), Some(&error.to_string()))
            }
        })
        .collect();
    respond(entries)
}
