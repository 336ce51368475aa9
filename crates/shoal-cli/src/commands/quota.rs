//! `shoalctl quota ...`, what `kafka-configs.sh --entity-type users/clients` does for client
//! quotas (KIP-546): `list` over DescribeClientQuotas, `set` and `delete` over
//! AlterClientQuotas (v1, as Kafka 4's admin client; v0 for a broker without it).
//!
//! Flags become requests and answers become rows in pure functions (unit-tested without a
//! broker); the async verbs only connect, send and print.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::{Value, json};

use super::{Outcome, check, connect};
use crate::cli::{Cli, QuotaCommand, QuotaEntityArgs, QuotaList};
use crate::output::{Output, Row};

const LIST_HEADER: [&str; 4] = ["USER", "CLIENT-ID", "QUOTA", "VALUE"];
const USER: &str = "user";
const CLIENT_ID: &str = "client-id";
/// DescribeClientQuotas match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;

/// One part of an entity as the wire carries it: (entity type, name; `None` the default).
pub type EntityPart = (String, Option<String>);

pub async fn run(
    cli: &Cli,
    command: &QuotaCommand,
    out: &Output,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let mut client = connect(cli, timeout).await?;
    match command {
        QuotaCommand::List(args) => {
            let response = client.any().call(describe_request(args)).await?;
            let rows = described(&response)?;
            out.emit_rows(
                "",
                LIST_HEADER.to_vec(),
                rows.iter().map(|r| (r.cells(), r.json())),
                Value::from,
            );
            Ok(ExitCode::SUCCESS)
        }
        QuotaCommand::Set(args) => {
            let entity = entity_parts(&args.entity);
            let ops: Vec<(String, Option<f64>)> = args
                .quotas
                .iter()
                .map(|(k, v)| (k.clone(), Some(*v)))
                .collect();
            let request = alter_request(&entity, &ops, args.validate_only);
            let response = client.any().call(request).await?;
            report(
                &entity,
                &ops,
                &response,
                if args.validate_only { "valid" } else { "set" },
                out,
            )
        }
        QuotaCommand::Delete(args) => {
            let entity = entity_parts(&args.entity);
            let keys = if args.keys.is_empty() {
                // Every quota the entity has: ask for exactly this entity first.
                let response = client.any().call(exact_request(&entity)).await?;
                let keys: Vec<String> = described(&response)?.into_iter().map(|r| r.key).collect();
                if keys.is_empty() {
                    bail!("{} has no quotas", entity_label(&entity));
                }
                keys
            } else {
                args.keys.clone()
            };
            let ops: Vec<(String, Option<f64>)> = keys.into_iter().map(|k| (k, None)).collect();
            let response = client
                .any()
                .call(alter_request(&entity, &ops, false))
                .await?;
            report(&entity, &ops, &response, "deleted", out)
        }
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The entity the flags name, user first (the order Kafka's tools send).
pub fn entity_parts(args: &QuotaEntityArgs) -> Vec<EntityPart> {
    let mut parts = Vec::new();
    if args.user.is_some() || args.user_default {
        parts.push((USER.to_string(), args.user.clone()));
    }
    if args.client_id.is_some() || args.client_id_default {
        parts.push((CLIENT_ID.to_string(), args.client_id.clone()));
    }
    parts
}

/// How Kafka's tools name an entity: `user=alice client-id=<default>`.
pub fn entity_label(parts: &[EntityPart]) -> String {
    parts
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// AlterClientQuotas of one entity: each key set (`Some`) or removed (`None`).
pub fn alter_request(
    entity: &[EntityPart],
    ops: &[(String, Option<f64>)],
    validate_only: bool,
) -> AlterClientQuotasRequest {
    let entry = EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(t, n)| {
                    EntityData::default()
                        .with_entity_type(text(t))
                        .with_entity_name(n.as_deref().map(text))
                })
                .collect(),
        )
        .with_ops(
            ops.iter()
                .map(|(key, value)| {
                    OpData::default()
                        .with_key(text(key))
                        .with_value(value.unwrap_or(0.0))
                        .with_remove(value.is_none())
                })
                .collect(),
        );
    AlterClientQuotasRequest::default()
        .with_entries(vec![entry])
        .with_validate_only(validate_only)
}

fn component(entity_type: &str, name: Option<&str>) -> ComponentData {
    ComponentData::default()
        .with_entity_type(text(entity_type))
        .with_match_type(if name.is_some() {
            MATCH_EXACT
        } else {
            MATCH_DEFAULT
        })
        .with_match(name.map(text))
}

/// DescribeClientQuotas for `quota list`'s flags (no flag: every entity).
pub fn describe_request(args: &QuotaList) -> DescribeClientQuotasRequest {
    let mut components = Vec::new();
    if args.user.is_some() || args.user_default {
        components.push(component(USER, args.user.as_deref()));
    }
    if args.client_id.is_some() || args.client_id_default {
        components.push(component(CLIENT_ID, args.client_id.as_deref()));
    }
    DescribeClientQuotasRequest::default()
        .with_components(components)
        .with_strict(args.strict)
}

/// DescribeClientQuotas of exactly one entity.
pub fn exact_request(entity: &[EntityPart]) -> DescribeClientQuotasRequest {
    DescribeClientQuotasRequest::default()
        .with_components(
            entity
                .iter()
                .map(|(t, n)| component(t, n.as_deref()))
                .collect(),
        )
        .with_strict(true)
}

/// One quota as `quota list` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaRow {
    /// `None`: the entity has no user part; `Some(None)`: the default user.
    pub user: Option<Option<String>>,
    pub client_id: Option<Option<String>>,
    pub key: String,
    pub value: f64,
}

fn cell(part: &Option<Option<String>>) -> String {
    match part {
        None => "-".to_string(),
        Some(None) => "<default>".to_string(),
        Some(Some(name)) => name.clone(),
    }
}

fn part_json(part: &Option<Option<String>>) -> Value {
    match part {
        None => Value::Null,
        Some(None) => json!({"default": true}),
        Some(Some(name)) => json!({"name": name}),
    }
}

/// A quota value as people write it: whole numbers without a fraction.
fn value_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

impl Row for QuotaRow {
    fn cells(&self) -> Vec<String> {
        vec![
            cell(&self.user),
            cell(&self.client_id),
            self.key.clone(),
            value_text(self.value),
        ]
    }

    fn json(&self) -> Value {
        json!({
            "user": part_json(&self.user),
            "client_id": part_json(&self.client_id),
            "quota": self.key,
            "value": self.value,
        })
    }
}

/// The quotas a DescribeClientQuotas answer lists, one row per (entity, key), in the
/// broker's entity order; a refusal fails.
pub fn described(response: &DescribeClientQuotasResponse) -> anyhow::Result<Vec<QuotaRow>> {
    check(
        "listing client quotas",
        response.error_code,
        response.error_message.as_deref(),
    )?;
    let mut rows = Vec::new();
    for entry in response.entries.iter().flatten() {
        let mut user = None;
        let mut client_id = None;
        for part in &entry.entity {
            let name = part.entity_name.as_ref().map(|n| n.to_string());
            match part.entity_type.as_str() {
                USER => user = Some(name),
                CLIENT_ID => client_id = Some(name),
                _ => {}
            }
        }
        for value in &entry.values {
            rows.push(QuotaRow {
                user: user.clone(),
                client_id: client_id.clone(),
                key: value.key.to_string(),
                value: value.value,
            });
        }
    }
    Ok(rows)
}

/// What `set` or `delete` asked of the entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Altered {
    pub entity: String,
    pub ops: Vec<(String, Option<f64>)>,
}

impl Row for Altered {
    fn cells(&self) -> Vec<String> {
        let ops = self
            .ops
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={}", value_text(*v)),
                None => k.clone(),
            })
            .collect::<Vec<_>>()
            .join(",");
        vec![self.entity.clone(), ops]
    }

    fn json(&self) -> Value {
        json!({
            "entity": self.entity,
            "quotas": self.ops.iter().map(|(k, v)| json!({"quota": k, "value": v})).collect::<Vec<_>>(),
        })
    }
}

/// The entity's outcome from an AlterClientQuotas answer (one entry was sent).
pub fn altered(
    entity: &[EntityPart],
    ops: &[(String, Option<f64>)],
    response: &AlterClientQuotasResponse,
) -> anyhow::Result<Outcome<Altered>> {
    let Some(entry) = response.entries.first() else {
        bail!("the broker answered no entry for {}", entity_label(entity));
    };
    Ok(Outcome::new(
        Altered {
            entity: entity_label(entity),
            ops: ops.to_vec(),
        },
        entry.error_code,
        entry.error_message.as_ref(),
    ))
}

fn report(
    entity: &[EntityPart],
    ops: &[(String, Option<f64>)],
    response: &AlterClientQuotasResponse,
    done: &str,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let outcome = altered(entity, ops, response)?;
    out.emit_rows(
        "",
        vec!["ENTITY", "QUOTAS", "STATUS"],
        [outcome.line(done)],
        Value::from,
    );
    outcome.check(&format!("altering the quotas of {}", entity_label(entity)))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::alter_client_quotas_response::EntryData as AlteredEntry;
    use kafka_protocol::messages::describe_client_quotas_response::{
        EntityData as DescribedEntity, EntryData as DescribedEntry, ValueData,
    };

    fn entity_args(
        user: Option<&str>,
        user_default: bool,
        client: Option<&str>,
        client_default: bool,
    ) -> QuotaEntityArgs {
        QuotaEntityArgs {
            user: user.map(str::to_string),
            user_default,
            client_id: client.map(str::to_string),
            client_id_default: client_default,
        }
    }

    #[test]
    fn flags_become_entities_and_requests() {
        let parts = entity_parts(&entity_args(Some("alice"), false, None, true));
        assert_eq!(
            parts,
            vec![
                ("user".to_string(), Some("alice".to_string())),
                ("client-id".to_string(), None)
            ]
        );
        assert_eq!(entity_label(&parts), "user=alice client-id=<default>");
        let request = alter_request(
            &parts,
            &[
                ("producer_byte_rate".into(), Some(1024.0)),
                ("consumer_byte_rate".into(), None),
            ],
            true,
        );
        assert!(request.validate_only);
        let entry = &request.entries[0];
        assert_eq!(entry.entity[1].entity_name, None);
        assert_eq!(entry.ops[0].value, 1024.0);
        assert!(!entry.ops[0].remove);
        assert!(entry.ops[1].remove);
        let exact = exact_request(&parts);
        assert!(exact.strict);
        assert_eq!(exact.components[0].match_type, MATCH_EXACT);
        assert_eq!(exact.components[1].match_type, MATCH_DEFAULT);
        assert_eq!(exact.components[1]._match, None);
        let all = describe_request(&QuotaList {
            user: None,
            user_default: false,
            client_id: None,
            client_id_default: false,
            strict: false,
        });
        assert!(all.components.is_empty());
    }

    #[test]
    fn answers_become_rows_and_outcomes() {
        let entry = |parts: Vec<(&str, Option<&str>)>, values: Vec<(&str, f64)>| {
            DescribedEntry::default()
                .with_entity(
                    parts
                        .into_iter()
                        .map(|(t, n)| {
                            DescribedEntity::default()
                                .with_entity_type(text(t))
                                .with_entity_name(n.map(text))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .into_iter()
                        .map(|(k, v)| ValueData::default().with_key(text(k)).with_value(v))
                        .collect(),
                )
        };
        let response = DescribeClientQuotasResponse::default().with_entries(Some(vec![
            entry(vec![("user", None)], vec![("producer_byte_rate", 1024.0)]),
            entry(
                vec![("user", Some("alice")), ("client-id", Some("app"))],
                vec![("consumer_byte_rate", 1.5), ("producer_byte_rate", 7.0)],
            ),
        ]));
        let rows = described(&response).unwrap();
        let cells: Vec<Vec<String>> = rows.iter().map(Row::cells).collect();
        assert_eq!(
            cells,
            vec![
                vec!["<default>", "-", "producer_byte_rate", "1024"],
                vec!["alice", "app", "consumer_byte_rate", "1.5"],
                vec!["alice", "app", "producer_byte_rate", "7"],
            ]
            .into_iter()
            .map(|r| r.into_iter().map(str::to_string).collect::<Vec<_>>())
            .collect::<Vec<_>>()
        );
        assert_eq!(rows[0].json()["user"], json!({"default": true}));
        assert_eq!(rows[0].json()["client_id"], Value::Null);
        let refused = DescribeClientQuotasResponse::default()
            .with_error_code(42)
            .with_error_message(Some(text("bad filter")));
        assert!(
            described(&refused)
                .unwrap_err()
                .to_string()
                .contains("INVALID_REQUEST: bad filter")
        );
        let parts = vec![("user".to_string(), Some("bob".to_string()))];
        let answer = AlterClientQuotasResponse::default().with_entries(vec![
            AlteredEntry::default()
                .with_error_code(42)
                .with_error_message(Some(text(
                    "Quota producer_byte_rate must be greater than 0",
                ))),
        ]);
        let outcome = altered(
            &parts,
            &[("producer_byte_rate".into(), Some(-1.0))],
            &answer,
        )
        .unwrap();
        assert!(!outcome.ok());
        assert_eq!(
            outcome.cells("set"),
            vec!["user=bob", "producer_byte_rate=-1", "INVALID_REQUEST"]
        );
    }
}
