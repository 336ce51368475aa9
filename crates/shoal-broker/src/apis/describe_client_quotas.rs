//! DescribeClientQuotas (KIP-546): the quotas whose entities match a filter, from this
//! broker's metadata image. Needs DESCRIBE_CONFIGS on the cluster, as in Kafka.
//!
//! A filter is a list of components, each one entity type matched exactly (a name), as its
//! default, or as any value; `strict` leaves out entities with other types. Matching is
//! [`describe`], a pure function with table tests, as Kafka's `ClientQuotasImage.describe`.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    DescribeClientQuotasRequest, DescribeClientQuotasResponse, ResponseKind,
};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::client_quotas::{
    CLIENT_ID_ENTITY, ClientQuotaEntity, ClientQuotas, IP_ENTITY, QuotaEntityName, QuotaValue,
    USER_ENTITY,
};

use crate::Broker;
use crate::apis::str_bytes;

/// Kafka's match types of a filter component.
const MATCH_TYPE_EXACT: i8 = 0;
const MATCH_TYPE_DEFAULT: i8 = 1;
const MATCH_TYPE_SPECIFIED: i8 = 2;

/// A filter component as sent: entity type, match type, match string.
pub type Component<'a> = (&'a str, i8, Option<&'a str>);

type Refusal = (ResponseError, String);

/// One matching entity and its values, borrowed from the image.
pub type Described<'q> = (&'q ClientQuotaEntity, &'q BTreeMap<String, QuotaValue>);

/// The entities of `quotas` that match the filter, with their values, in entity order.
pub fn describe<'q>(
    quotas: &'q ClientQuotas,
    components: &[Component<'_>],
    strict: bool,
) -> Result<Vec<Described<'q>>, Refusal> {
    let invalid = |why: String| Err((ResponseError::InvalidRequest, why));
    // Per type: Some(name) to match exactly (None inside: the default), None for any value.
    let mut wanted: BTreeMap<&str, Option<Option<&str>>> = BTreeMap::new();
    for &(entity_type, match_type, matched) in components {
        if entity_type.is_empty() {
            return invalid("Invalid empty entity type.".to_string());
        }
        if wanted.contains_key(entity_type) {
            return invalid(format!(
                "Entity type {entity_type} cannot appear more than once in the filter."
            ));
        }
        if ![USER_ENTITY, CLIENT_ID_ENTITY, IP_ENTITY].contains(&entity_type) {
            return Err((
                ResponseError::UnsupportedVersion,
                format!("Unsupported entity type {entity_type}"),
            ));
        }
        let want = match (match_type, matched) {
            (MATCH_TYPE_EXACT, Some(name)) => Some(Some(name)),
            (MATCH_TYPE_EXACT, None) => {
                return invalid(
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.".to_string(),
                );
            }
            (MATCH_TYPE_DEFAULT, None) => Some(None),
            (MATCH_TYPE_SPECIFIED, None) => None,
            (MATCH_TYPE_DEFAULT | MATCH_TYPE_SPECIFIED, Some(_)) => {
                return invalid(format!(
                    "Request specified match type {match_type}, but also specified a match string."
                ));
            }
            (other, _) => {
                return Err((
                    ResponseError::UnsupportedVersion,
                    format!("Unsupported match type {other}"),
                ));
            }
        };
        wanted.insert(entity_type, want);
    }
    if wanted.contains_key(IP_ENTITY)
        && (wanted.contains_key(USER_ENTITY) || wanted.contains_key(CLIENT_ID_ENTITY))
    {
        return invalid(
            "Invalid entity filter component combination. IP filter component should not be \
             used with user or clientId filter component."
                .to_string(),
        );
    }
    let matches = |entity: &ClientQuotaEntity| {
        let parts = parts_of(entity);
        if strict && parts.len() != wanted.len() {
            return false;
        }
        wanted.iter().all(|(entity_type, want)| {
            parts
                .get(entity_type)
                .is_some_and(|name| want.is_none_or(|w| w == name.as_wire()))
        })
    };
    Ok(quotas
        .entities
        .iter()
        .filter(|(entity, _)| matches(entity))
        .collect())
}

/// An entity's parts by Kafka's entity type names.
fn parts_of(entity: &ClientQuotaEntity) -> BTreeMap<&'static str, &QuotaEntityName> {
    let mut parts = BTreeMap::new();
    if let Some(user) = &entity.user {
        parts.insert(USER_ENTITY, user);
    }
    if let Some(client_id) = &entity.client_id {
        parts.insert(CLIENT_ID_ENTITY, client_id);
    }
    parts
}

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeClientQuotasRequest,
) -> Reply {
    let respond = |response: DescribeClientQuotasResponse| {
        Reply::Ready(ResponseKind::DescribeClientQuotas(response))
    };
    let refuse = |error: ResponseError, message: &str| {
        respond(
            DescribeClientQuotasResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(message)))
                .with_entries(None),
        )
    };
    if !broker
        .authorization
        .allowed_on_cluster(ctx, Operation::DescribeConfigs)
    {
        return refuse(
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        );
    }
    let components: Vec<Component<'_>> = request
        .components
        .iter()
        .map(|c: &ComponentData| {
            (
                c.entity_type.as_str(),
                c.match_type,
                c._match.as_ref().map(|m| m.as_str()),
            )
        })
        .collect();
    let image = broker.image();
    match describe(&image.client_quotas, &components, request.strict) {
        Err((error, message)) => refuse(error, &message),
        Ok(found) => {
            let entries = found
                .into_iter()
                .map(|(entity, values)| {
                    EntryData::default()
                        .with_entity(
                            parts_of(entity)
                                .into_iter()
                                .map(|(entity_type, name)| {
                                    EntityData::default()
                                        .with_entity_type(str_bytes(entity_type))
                                        .with_entity_name(name.as_wire().map(str_bytes))
                                })
                                .collect(),
                        )
                        .with_values(
                            values
                                .iter()
                                .map(|(key, value)| {
                                    ValueData::default()
                                        .with_key(str_bytes(key))
                                        .with_value(value.0)
                                })
                                .collect(),
                        )
                })
                .collect();
            respond(DescribeClientQuotasResponse::default().with_entries(Some(entries)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_meta::client_quotas::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE};

    fn name(n: &str) -> QuotaEntityName {
        QuotaEntityName::Name(n.to_string())
    }

    fn quotas() -> ClientQuotas {
        let mut q = ClientQuotas::default();
        for entity in [
            ClientQuotaEntity::user(name("alice")),
            ClientQuotaEntity::user(QuotaEntityName::Default),
            ClientQuotaEntity::client_id(name("app")),
            ClientQuotaEntity::user_and_client_id(name("alice"), name("app")),
            ClientQuotaEntity::user_and_client_id(
                QuotaEntityName::Default,
                QuotaEntityName::Default,
            ),
        ] {
            q.set(&entity, PRODUCER_BYTE_RATE, Some(100.0));
        }
        q.set(
            &ClientQuotaEntity::user(name("alice")),
            CONSUMER_BYTE_RATE,
            Some(200.0),
        );
        q
    }

    fn found(components: &[Component<'_>], strict: bool) -> Result<Vec<String>, String> {
        let q = quotas();
        describe(&q, components, strict)
            .map(|entries| entries.iter().map(|(e, _)| e.to_string()).collect())
            .map_err(|(code, message)| format!("{code:?}: {message}"))
    }

    #[test]
    fn filters_match_as_kafka_does() {
        let all: Vec<String> = [
            "client-id=app",
            "user=<default>",
            "user=<default> client-id=<default>",
            "user=alice",
            "user=alice client-id=app",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(found(&[], false), Ok(all));
        // Strict with no components: only an entity with no parts, which cannot exist.
        assert_eq!(found(&[], true), Ok(vec![]));
        assert_eq!(
            found(&[(USER_ENTITY, MATCH_TYPE_EXACT, Some("alice"))], false),
            Ok(vec!["user=alice".into(), "user=alice client-id=app".into()])
        );
        assert_eq!(
            found(&[(USER_ENTITY, MATCH_TYPE_EXACT, Some("alice"))], true),
            Ok(vec!["user=alice".into()])
        );
        assert_eq!(
            found(&[(USER_ENTITY, MATCH_TYPE_DEFAULT, None)], false),
            Ok(vec![
                "user=<default>".into(),
                "user=<default> client-id=<default>".into()
            ])
        );
        // SPECIFIED matches any value of the type, the default included (Kafka's image does).
        assert_eq!(
            found(&[(CLIENT_ID_ENTITY, MATCH_TYPE_SPECIFIED, None)], true),
            Ok(vec!["client-id=app".into()])
        );
        assert_eq!(
            found(
                &[
                    (USER_ENTITY, MATCH_TYPE_SPECIFIED, None),
                    (CLIENT_ID_ENTITY, MATCH_TYPE_SPECIFIED, None)
                ],
                true
            ),
            Ok(vec![
                "user=<default> client-id=<default>".into(),
                "user=alice client-id=app".into()
            ])
        );
        assert_eq!(
            found(&[(IP_ENTITY, MATCH_TYPE_SPECIFIED, None)], false),
            Ok(vec![])
        );
    }

    #[test]
    fn bad_filters_are_refused_with_kafka_codes() {
        for (components, expected) in [
            (
                vec![("", MATCH_TYPE_EXACT, Some("x"))],
                "InvalidRequest: Invalid empty entity type",
            ),
            (
                vec![
                    (USER_ENTITY, MATCH_TYPE_DEFAULT, None),
                    (USER_ENTITY, MATCH_TYPE_SPECIFIED, None),
                ],
                "InvalidRequest: Entity type user cannot appear more than once",
            ),
            (
                vec![("topic", MATCH_TYPE_SPECIFIED, None)],
                "UnsupportedVersion: Unsupported entity type topic",
            ),
            (
                vec![(USER_ENTITY, MATCH_TYPE_EXACT, None)],
                "InvalidRequest: Request specified MATCH_TYPE_EXACT",
            ),
            (
                vec![(USER_ENTITY, MATCH_TYPE_DEFAULT, Some("x"))],
                "InvalidRequest: Request specified match type 1",
            ),
            (
                vec![(USER_ENTITY, 7, None)],
                "UnsupportedVersion: Unsupported match type 7",
            ),
            (
                vec![
                    (IP_ENTITY, MATCH_TYPE_SPECIFIED, None),
                    (USER_ENTITY, MATCH_TYPE_SPECIFIED, None),
                ],
                "InvalidRequest: Invalid entity filter component combination",
            ),
        ] {
            let got = found(&components, false).unwrap_err();
            assert!(got.starts_with(expected), "{components:?}: {got}");
        }
    }
}
