//! Wire layouts of the Kafka requests this front accepts, read from Apache Kafka's own
//! message definitions (`clients/src/main/resources/common/message/*Request.json`, the copy
//! bundled with kafka-python 3.0.12, Apache-2.0, kept verbatim under `schemas/`; that bundle
//! lacks KIP-848's two requests, whose layouts Shoal writes itself in the same format).
//!
//! Why a second description of the wire format next to `kafka-protocol`'s decoder: that
//! decoder calls `Vec::with_capacity(count)` with an array count taken straight from the
//! frame, so 4 bytes (`0x7fffffff`) can make it reserve gigabytes and abort the process.
//! [`crate::length_guard`] walks a request with these layouts first and rejects any count or
//! length the frame cannot back, before `kafka-protocol` sees a byte. An API without a layout
//! here is therefore never dispatched (see [`crate::SupportedApis`]).
//!
//! The definitions are embedded at compile time and parsed once; a parse failure is a
//! programmer error (a unit test parses every file).

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// Highest API key this table can index (`kafka-protocol` 0.18 knows keys up to 92).
const MAX_API_KEY: usize = 127;

/// The embedded Kafka request definitions, one per API.
const REQUEST_JSON: &[(&str, &str)] = &[
    (
        "AddOffsetsToTxnRequest",
        include_str!("../schemas/AddOffsetsToTxnRequest.json"),
    ),
    (
        "AddPartitionsToTxnRequest",
        include_str!("../schemas/AddPartitionsToTxnRequest.json"),
    ),
    (
        "AlterClientQuotasRequest",
        include_str!("../schemas/AlterClientQuotasRequest.json"),
    ),
    (
        "AlterConfigsRequest",
        include_str!("../schemas/AlterConfigsRequest.json"),
    ),
    (
        "AlterPartitionReassignmentsRequest",
        include_str!("../schemas/AlterPartitionReassignmentsRequest.json"),
    ),
    (
        "AlterReplicaLogDirsRequest",
        include_str!("../schemas/AlterReplicaLogDirsRequest.json"),
    ),
    (
        "AlterUserScramCredentialsRequest",
        include_str!("../schemas/AlterUserScramCredentialsRequest.json"),
    ),
    (
        "ApiVersionsRequest",
        include_str!("../schemas/ApiVersionsRequest.json"),
    ),
    (
        "CreateAclsRequest",
        include_str!("../schemas/CreateAclsRequest.json"),
    ),
    (
        "CreatePartitionsRequest",
        include_str!("../schemas/CreatePartitionsRequest.json"),
    ),
    (
        "CreateTopicsRequest",
        include_str!("../schemas/CreateTopicsRequest.json"),
    ),
    (
        "DeleteAclsRequest",
        include_str!("../schemas/DeleteAclsRequest.json"),
    ),
    (
        "DeleteGroupsRequest",
        include_str!("../schemas/DeleteGroupsRequest.json"),
    ),
    (
        "DeleteRecordsRequest",
        include_str!("../schemas/DeleteRecordsRequest.json"),
    ),
    (
        "ConsumerGroupDescribeRequest",
        include_str!("../schemas/ConsumerGroupDescribeRequest.json"),
    ),
    (
        "ConsumerGroupHeartbeatRequest",
        include_str!("../schemas/ConsumerGroupHeartbeatRequest.json"),
    ),
    (
        "DeleteTopicsRequest",
        include_str!("../schemas/DeleteTopicsRequest.json"),
    ),
    (
        "DescribeAclsRequest",
        include_str!("../schemas/DescribeAclsRequest.json"),
    ),
    (
        "DescribeClientQuotasRequest",
        include_str!("../schemas/DescribeClientQuotasRequest.json"),
    ),
    (
        "DescribeClusterRequest",
        include_str!("../schemas/DescribeClusterRequest.json"),
    ),
    (
        "DescribeConfigsRequest",
        include_str!("../schemas/DescribeConfigsRequest.json"),
    ),
    (
        "DescribeGroupsRequest",
        include_str!("../schemas/DescribeGroupsRequest.json"),
    ),
    (
        "DescribeLogDirsRequest",
        include_str!("../schemas/DescribeLogDirsRequest.json"),
    ),
    (
        "DescribeProducersRequest",
        include_str!("../schemas/DescribeProducersRequest.json"),
    ),
    (
        "DescribeQuorumRequest",
        include_str!("../schemas/DescribeQuorumRequest.json"),
    ),
    (
        "DescribeTopicPartitionsRequest",
        include_str!("../schemas/DescribeTopicPartitionsRequest.json"),
    ),
    (
        "DescribeTransactionsRequest",
        include_str!("../schemas/DescribeTransactionsRequest.json"),
    ),
    (
        "DescribeUserScramCredentialsRequest",
        include_str!("../schemas/DescribeUserScramCredentialsRequest.json"),
    ),
    (
        "ElectLeadersRequest",
        include_str!("../schemas/ElectLeadersRequest.json"),
    ),
    (
        "EndTxnRequest",
        include_str!("../schemas/EndTxnRequest.json"),
    ),
    ("FetchRequest", include_str!("../schemas/FetchRequest.json")),
    (
        "FindCoordinatorRequest",
        include_str!("../schemas/FindCoordinatorRequest.json"),
    ),
    (
        "HeartbeatRequest",
        include_str!("../schemas/HeartbeatRequest.json"),
    ),
    (
        "IncrementalAlterConfigsRequest",
        include_str!("../schemas/IncrementalAlterConfigsRequest.json"),
    ),
    (
        "InitProducerIdRequest",
        include_str!("../schemas/InitProducerIdRequest.json"),
    ),
    (
        "JoinGroupRequest",
        include_str!("../schemas/JoinGroupRequest.json"),
    ),
    (
        "LeaveGroupRequest",
        include_str!("../schemas/LeaveGroupRequest.json"),
    ),
    (
        "ListConfigResourcesRequest",
        include_str!("../schemas/ListConfigResourcesRequest.json"),
    ),
    (
        "ListGroupsRequest",
        include_str!("../schemas/ListGroupsRequest.json"),
    ),
    (
        "ListOffsetsRequest",
        include_str!("../schemas/ListOffsetsRequest.json"),
    ),
    (
        "ListPartitionReassignmentsRequest",
        include_str!("../schemas/ListPartitionReassignmentsRequest.json"),
    ),
    (
        "ListTransactionsRequest",
        include_str!("../schemas/ListTransactionsRequest.json"),
    ),
    (
        "MetadataRequest",
        include_str!("../schemas/MetadataRequest.json"),
    ),
    (
        "OffsetCommitRequest",
        include_str!("../schemas/OffsetCommitRequest.json"),
    ),
    (
        "OffsetDeleteRequest",
        include_str!("../schemas/OffsetDeleteRequest.json"),
    ),
    (
        "OffsetFetchRequest",
        include_str!("../schemas/OffsetFetchRequest.json"),
    ),
    (
        "OffsetForLeaderEpochRequest",
        include_str!("../schemas/OffsetForLeaderEpochRequest.json"),
    ),
    (
        "ProduceRequest",
        include_str!("../schemas/ProduceRequest.json"),
    ),
    (
        "SaslAuthenticateRequest",
        include_str!("../schemas/SaslAuthenticateRequest.json"),
    ),
    (
        "SaslHandshakeRequest",
        include_str!("../schemas/SaslHandshakeRequest.json"),
    ),
    (
        "SyncGroupRequest",
        include_str!("../schemas/SyncGroupRequest.json"),
    ),
    (
        "TxnOffsetCommitRequest",
        include_str!("../schemas/TxnOffsetCommitRequest.json"),
    ),
    (
        "UnregisterBrokerRequest",
        include_str!("../schemas/UnregisterBrokerRequest.json"),
    ),
    (
        "UpdateFeaturesRequest",
        include_str!("../schemas/UpdateFeaturesRequest.json"),
    ),
    (
        "WriteTxnMarkersRequest",
        include_str!("../schemas/WriteTxnMarkersRequest.json"),
    ),
];

/// An inclusive version range as written in Kafka's JSON ("3+", "0-12", "7", "none").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Versions {
    pub min: i16,
    pub max: i16,
}

impl Versions {
    const NONE: Versions = Versions { min: 1, max: 0 };

    pub fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    fn parse(text: &str) -> Result<Versions, String> {
        let text = text.trim();
        if text == "none" {
            return Ok(Versions::NONE);
        }
        let number = |s: &str| {
            s.trim()
                .parse::<i16>()
                .map_err(|e| format!("{text:?}: {e}"))
        };
        if let Some(min) = text.strip_suffix('+') {
            return Ok(Versions {
                min: number(min)?,
                max: i16::MAX,
            });
        }
        if let Some((min, max)) = text.split_once('-') {
            return Ok(Versions {
                min: number(min)?,
                max: number(max)?,
            });
        }
        let only = number(text)?;
        Ok(Versions {
            min: only,
            max: only,
        })
    }
}

/// How one field is laid out on the wire.
#[derive(Debug, Clone)]
pub(crate) enum FieldKind {
    /// Fixed-width value: int8/bool (1), int16/uint16 (2), int32/uint32 (4), int64/float64 (8), uuid (16).
    Fixed(usize),
    /// `string`: i16 length (or compact uvarint length+1 in flexible versions), -1/0 = null.
    String,
    /// `bytes` and `records`: i32 length (or compact), -1/0 = null.
    Bytes,
    /// `[]T`: i32 count (or compact), -1/0 = null.
    Array(Box<FieldKind>),
    /// A nested struct; `nullable` ones carry an i8 presence marker in those versions.
    Struct {
        fields: Vec<Field>,
        nullable: Versions,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: String,
    pub versions: Versions,
    /// Versions in which this field travels in the tagged-field section instead of inline.
    pub tagged_versions: Versions,
    pub tag: Option<u32>,
    pub kind: FieldKind,
}

impl Field {
    pub fn is_tagged_in(&self, version: i16) -> bool {
        self.tag.is_some() && self.tagged_versions.contains(version)
    }
}

/// The layout of one request message.
#[derive(Debug, Clone)]
pub(crate) struct RequestSchema {
    pub api_key: i16,
    pub valid_versions: Versions,
    pub flexible_versions: Versions,
    pub fields: Vec<Field>,
}

/// Returns the layout of the request with `api_key`, if this crate embeds one.
pub(crate) fn request_schema(api_key: i16) -> Option<&'static RequestSchema> {
    let index = usize::try_from(api_key).ok()?;
    SCHEMAS.get(index)?.as_ref()
}

static SCHEMAS: LazyLock<Vec<Option<RequestSchema>>> = LazyLock::new(|| {
    let mut by_key: Vec<Option<RequestSchema>> = vec![None; MAX_API_KEY + 1];
    for (name, json) in REQUEST_JSON {
        let schema = parse_request_schema(json)
            .unwrap_or_else(|e| panic!("embedded Kafka schema {name} is invalid: {e}"));
        let index = usize::try_from(schema.api_key).unwrap_or(usize::MAX);
        assert!(index <= MAX_API_KEY, "{name}: api key {index} out of table");
        assert!(by_key[index].is_none(), "{name}: duplicate api key {index}");
        by_key[index] = Some(schema);
    }
    by_key
});

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonMessage {
    api_key: i16,
    #[serde(rename = "type")]
    message_type: String,
    name: String,
    valid_versions: String,
    flexible_versions: String,
    #[serde(default)]
    fields: Vec<JsonField>,
    #[serde(default)]
    common_structs: Vec<JsonStruct>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonField {
    name: String,
    #[serde(rename = "type")]
    field_type: String,
    versions: String,
    #[serde(default)]
    nullable_versions: Option<String>,
    #[serde(default)]
    tagged_versions: Option<String>,
    #[serde(default)]
    tag: Option<u32>,
    #[serde(default)]
    fields: Option<Vec<JsonField>>,
}

#[derive(Deserialize)]
struct JsonStruct {
    name: String,
    fields: Vec<JsonField>,
}

pub(crate) fn parse_request_schema(json_with_comments: &str) -> Result<RequestSchema, String> {
    let json = strip_line_comments(json_with_comments);
    let message: JsonMessage = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    if message.message_type != "request" {
        return Err(format!(
            "{} is a {}, not a request",
            message.name, message.message_type
        ));
    }
    let common: HashMap<&str, &[JsonField]> = message
        .common_structs
        .iter()
        .map(|s| (s.name.as_str(), s.fields.as_slice()))
        .collect();
    Ok(RequestSchema {
        api_key: message.api_key,
        valid_versions: Versions::parse(&message.valid_versions)?,
        flexible_versions: Versions::parse(&message.flexible_versions)?,
        fields: convert_fields(&message.fields, &common)?,
    })
}

fn convert_fields(
    fields: &[JsonField],
    common: &HashMap<&str, &[JsonField]>,
) -> Result<Vec<Field>, String> {
    fields.iter().map(|f| convert_field(f, common)).collect()
}

fn convert_field(field: &JsonField, common: &HashMap<&str, &[JsonField]>) -> Result<Field, String> {
    let nullable = match &field.nullable_versions {
        Some(v) => Versions::parse(v)?,
        None => Versions::NONE,
    };
    let kind = match field.field_type.strip_prefix("[]") {
        Some(element) => FieldKind::Array(Box::new(convert_type(
            element,
            field,
            common,
            Versions::NONE,
        )?)),
        None => convert_type(&field.field_type, field, common, nullable)?,
    };
    Ok(Field {
        name: field.name.clone(),
        versions: Versions::parse(&field.versions)?,
        tagged_versions: match &field.tagged_versions {
            Some(v) => Versions::parse(v)?,
            None => Versions::NONE,
        },
        tag: field.tag,
        kind,
    })
}

fn convert_type(
    type_name: &str,
    field: &JsonField,
    common: &HashMap<&str, &[JsonField]>,
    nullable: Versions,
) -> Result<FieldKind, String> {
    Ok(match type_name {
        "int8" | "bool" => FieldKind::Fixed(1),
        "int16" | "uint16" => FieldKind::Fixed(2),
        "int32" | "uint32" => FieldKind::Fixed(4),
        "int64" | "float64" => FieldKind::Fixed(8),
        "uuid" => FieldKind::Fixed(16),
        "string" => FieldKind::String,
        "bytes" | "records" => FieldKind::Bytes,
        struct_name => {
            let json_fields = match (&field.fields, common.get(struct_name)) {
                (Some(inline), _) => inline.as_slice(),
                (None, Some(shared)) => shared,
                (None, None) => return Err(format!("{}: unknown type {struct_name}", field.name)),
            };
            FieldKind::Struct {
                fields: convert_fields(json_fields, common)?,
                nullable,
            }
        }
    })
}

/// Kafka's JSON allows `//` comments; serde_json does not. Strips them outside strings.
fn strip_line_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
            } else if b == b'"' {
                in_string = true;
            } else if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
                cut = i;
                break;
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_schema_parses_with_a_distinct_key() {
        let count = (0..=MAX_API_KEY as i16).filter_map(request_schema).count();
        assert_eq!(count, REQUEST_JSON.len());
        let produce = request_schema(0).unwrap();
        assert_eq!(produce.api_key, 0);
        assert_eq!(produce.fields[0].name, "TransactionalId");
        assert_eq!(
            produce.flexible_versions,
            Versions {
                min: 9,
                max: i16::MAX
            }
        );
        assert_eq!(produce.valid_versions, Versions { min: 3, max: 13 });
    }

    #[test]
    fn version_ranges_parse() {
        assert_eq!(
            Versions::parse("3+").unwrap(),
            Versions {
                min: 3,
                max: i16::MAX
            }
        );
        assert_eq!(
            Versions::parse("0-12").unwrap(),
            Versions { min: 0, max: 12 }
        );
        assert_eq!(Versions::parse("7").unwrap(), Versions { min: 7, max: 7 });
        assert!(!Versions::parse("none").unwrap().contains(0));
        assert!(Versions::parse("x").is_err());
    }

    #[test]
    fn comments_are_stripped_outside_strings_only() {
        let text = "{ \"a\": \"http://x\" } // note\n// whole line\n";
        assert_eq!(strip_line_comments(text), "{ \"a\": \"http://x\" } \n\n");
    }

    #[test]
    fn nullable_struct_and_common_structs_resolve() {
        let dtp = request_schema(75).unwrap();
        let cursor = dtp.fields.iter().find(|f| f.name == "Cursor").unwrap();
        assert!(matches!(&cursor.kind, FieldKind::Struct { nullable, .. } if nullable.contains(0)));
        let txn = request_schema(24).unwrap();
        let topics = txn
            .fields
            .iter()
            .find(|f| f.name == "V3AndBelowTopics")
            .unwrap();
        assert!(
            matches!(&topics.kind, FieldKind::Array(e) if matches!(**e, FieldKind::Struct { .. }))
        );
    }
}
