//! `shoalctl acl ...`, what `kafka-acls.sh` does: `create` (--add), `list` (--list) and
//! `delete` (--remove) over CreateAcls, DescribeAcls and DeleteAcls (versions 1-3).
//!
//! Flags become requests and answers become rows in pure functions (unit-tested without a
//! broker); the async verbs only check the flags, connect, send and print. The vocabulary
//! (names, wire codes, filters) is `shoal-acl`'s.

use std::collections::{BTreeSet, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::{Value, json};
use shoal_acl::{
    ANY_CODE, AclBinding, AclEntry, AclFilter, Operation, PatternFilter, PatternType, Permission,
    ResourcePattern, ResourceType, WILDCARD,
};

use super::{Tally, check, connect, dedupe, label};
use crate::cli::{AclCommand, AclCreate, AclDelete, AclFilterArgs, AclResources, Cli};
use crate::kafka::Client;
use crate::output::{Output, Row, with_fields};

/// The name of Kafka's one CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The columns of one ACL, in every table of this noun.
const HEADER: [&str; 7] = [
    "RESOURCE_TYPE",
    "NAME",
    "PATTERN_TYPE",
    "PRINCIPAL",
    "HOST",
    "OPERATION",
    "PERMISSION",
];

pub async fn run(
    cli: &Cli,
    command: &AclCommand,
    out: &Output,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    match command {
        AclCommand::Create(args) => {
            let bindings = create_bindings(args)?;
            let mut client = connect(cli, timeout).await?;
            let response = client.any().call(create_request(&bindings)).await?;
            report_created(&created(&bindings, &response)?, out)
        }
        AclCommand::List(args) => {
            let filters = filters(args)?;
            let mut client = connect(cli, timeout).await?;
            let rows = describe_all(&mut client, &filters).await?;
            out.emit_rows(
                "",
                HEADER.to_vec(),
                rows.iter().map(|r| (r.cells(), r.json())),
                Value::from,
            );
            Ok(ExitCode::SUCCESS)
        }
        AclCommand::Delete(args) => delete(cli, args, out, timeout).await,
    }
}

/// Every ACL matching any of `filters` (one DescribeAcls each), sorted, each once.
async fn describe_all(
    client: &mut Client,
    filters: &[AclFilter],
) -> anyhow::Result<BTreeSet<AclRow>> {
    let mut rows = BTreeSet::new();
    for filter in filters {
        let response = client.any().call(describe_request(filter)).await?;
        rows.extend(described(&response)?);
    }
    Ok(rows)
}

async fn delete(
    cli: &Cli,
    args: &AclDelete,
    out: &Output,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let filters = filters(&args.filter)?;
    let mut client = connect(cli, timeout).await?;
    if !args.force {
        // kafka-acls asks before removing; a script cannot answer, so show and refuse.
        let rows = describe_all(&mut client, &filters).await?;
        let title = if rows.is_empty() {
            "no ACLs match".to_string()
        } else {
            format!(
                "{} ACL(s) match; nothing deleted (add --force to delete them):",
                rows.len()
            )
        };
        let not_deleted = [
            ("deleted", json!(false)),
            ("error", Value::Null),
            ("message", Value::Null),
        ];
        out.emit_rows(
            &title,
            HEADER.to_vec(),
            rows.iter()
                .map(|r| (r.cells(), with_fields(r.json(), not_deleted.clone()))),
            |acls| json!({"executed": false, "acls": acls}),
        );
        if rows.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        bail!(
            "not deleting {} ACL(s) without --force (they are listed above)",
            rows.len()
        );
    }
    let response = client.any().call(delete_request(&filters)).await?;
    let (outcomes, filter_errors) = deleted(&filters, &response)?;
    report(
        &outcomes,
        "deleted",
        out,
        |acls| json!({"executed": true, "acls": acls}),
    );
    if let Some(refused) = filter_errors.first() {
        refused.check(&format!(
            "deleting ACLs matching {}",
            describe_filter(refused.item)
        ))?;
    }
    first_failure("deleting", &outcomes)
}

/// Prints every ACL's result (`done`: created, deleted), the JSON array given to `json`.
fn report(outcomes: &[Outcome], done: &str, out: &Output, json: impl FnOnce(Vec<Value>) -> Value) {
    let mut header = HEADER.to_vec();
    header.push("STATUS");
    out.emit_rows("", header, outcomes.iter().map(|o| o.line(done)), json);
}

fn report_created(outcomes: &[Outcome], out: &Output) -> anyhow::Result<ExitCode> {
    report(outcomes, "created", out, Value::from);
    first_failure("creating", outcomes)
}

/// The first failed ACL as the command's error (exit 1), after every result was printed.
fn first_failure(doing: &str, outcomes: &[Outcome]) -> anyhow::Result<ExitCode> {
    super::first_failure(
        outcomes,
        |row| format!("{doing} ACL {row}"),
        Tally {
            total: outcomes.len(),
            noun: "",
            from: 1,
        },
    )
}

/// The resources the flags name, in flag order: `--cluster` is the resource `kafka-cluster`.
pub fn resources(flags: &AclResources) -> anyhow::Result<Vec<(ResourceType, String)>> {
    let mut out = Vec::new();
    let named = [
        (ResourceType::Topic, &flags.topic, "--topic", "topic"),
        (ResourceType::Group, &flags.group, "--group", "group"),
        (
            ResourceType::TransactionalId,
            &flags.transactional_id,
            "--transactional-id",
            "transactional id",
        ),
    ];
    for (resource_type, names, flag, what) in named {
        for name in names {
            if name.is_empty() {
                bail!("{flag} needs a name (\"*\" for every {what})");
            }
            out.push((resource_type, name.clone()));
        }
    }
    if flags.cluster {
        out.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
    }
    Ok(dedupe(out))
}

/// The ACLs `acl create` asks for: every resource x (allow principals x allow hosts, deny
/// principals x deny hosts) x operation, each checked as Kafka's CreateAcls checks it.
pub fn create_bindings(args: &AclCreate) -> anyhow::Result<Vec<AclBinding>> {
    let resources = resources(&args.resources)?;
    if resources.is_empty() {
        bail!("give at least one resource: --topic, --group, --cluster or --transactional-id");
    }
    if args.allow_principal.is_empty() && args.deny_principal.is_empty() {
        bail!("give at least one --allow-principal or --deny-principal");
    }
    if !args.allow_host.is_empty() && args.allow_principal.is_empty() {
        bail!("--allow-host needs --allow-principal");
    }
    if !args.deny_host.is_empty() && args.deny_principal.is_empty() {
        bail!("--deny-host needs --deny-principal");
    }
    let pattern_type = args.resource_pattern_type;
    if pattern_type == PatternType::Prefixed
        && let Some((resource_type, _)) = resources.iter().find(|(_, name)| name == WILDCARD)
    {
        bail!(
            "{resource_type} \"*\" with --resource-pattern-type prefixed: a PREFIXED pattern \
             cannot be the wildcard * (use literal \"*\" for every name)"
        );
    }
    let hosts = |given: &[String]| {
        if given.is_empty() {
            vec![WILDCARD.to_string()]
        } else {
            given.to_vec()
        }
    };
    let operations: &[Operation] = if args.operation.is_empty() {
        &[Operation::All]
    } else {
        &args.operation
    };
    let sides = [
        (
            Permission::Allow,
            &args.allow_principal,
            hosts(&args.allow_host),
        ),
        (
            Permission::Deny,
            &args.deny_principal,
            hosts(&args.deny_host),
        ),
    ];
    let mut bindings = Vec::new();
    for (resource_type, name) in &resources {
        for (permission, principals, hosts) in &sides {
            for principal in principals.iter() {
                for host in hosts {
                    for operation in operations {
                        bindings.push(AclBinding {
                            pattern: ResourcePattern {
                                resource_type: *resource_type,
                                name: name.clone(),
                                pattern_type,
                            },
                            entry: AclEntry {
                                principal: principal.clone(),
                                host: host.clone(),
                                operation: *operation,
                                permission: *permission,
                            },
                        });
                    }
                }
            }
        }
    }
    for binding in &bindings {
        binding
            .validate()
            .map_err(|e| anyhow!("ACL {}: {e}", AclRow::from(binding)))?;
    }
    Ok(dedupe(bindings))
}

/// One CreateAcls request for every binding.
pub fn create_request(bindings: &[AclBinding]) -> CreateAclsRequest {
    CreateAclsRequest::default().with_creations(
        bindings
            .iter()
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.pattern.resource_type.code())
                    .with_resource_name(StrBytes::from_string(b.pattern.name.clone()))
                    .with_resource_pattern_type(b.pattern.pattern_type.code())
                    .with_principal(StrBytes::from_string(b.entry.principal.to_string()))
                    .with_host(StrBytes::from_string(b.entry.host.clone()))
                    .with_operation(b.entry.operation.code())
                    .with_permission_type(b.entry.permission.code())
            })
            .collect(),
    )
}

/// The filters `acl list` and `acl delete` mean: every resource (one ANY resource when no
/// resource flag is given) x principal x host x operation; a part not given is ANY.
pub fn filters(args: &AclFilterArgs) -> anyhow::Result<Vec<AclFilter>> {
    fn or_any<T: Clone>(given: &[T]) -> Vec<Option<T>> {
        if given.is_empty() {
            vec![None]
        } else {
            given.iter().cloned().map(Some).collect()
        }
    }
    let resources = or_any(&resources(&args.resources)?);
    let mut out = Vec::new();
    for resource in &resources {
        for principal in or_any(&args.principal) {
            for host in or_any(&args.host) {
                for operation in or_any(&args.operation) {
                    out.push(AclFilter {
                        resource_type: resource.as_ref().map(|(t, _)| *t),
                        name: resource.as_ref().map(|(_, n)| n.clone()),
                        pattern: args.resource_pattern_type,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation,
                        permission: args.permission,
                    });
                }
            }
        }
    }
    Ok(dedupe(out))
}

/// `$message` (a DescribeAcls request, a DeleteAcls filter: the same fields) with the fields
/// of `$filter` set: ANY (1) for every part left out, null names.
macro_rules! with_filter {
    ($message:expr, $filter:expr) => {{
        let filter: &AclFilter = $filter;
        let text = |s: &str| StrBytes::from_string(s.to_string());
        $message
            .with_resource_type_filter(filter.resource_type.map_or(ANY_CODE, ResourceType::code))
            .with_resource_name_filter(filter.name.as_deref().map(text))
            .with_pattern_type_filter(filter.pattern.code())
            .with_principal_filter(filter.principal.as_ref().map(|p| text(&p.to_string())))
            .with_host_filter(filter.host.as_deref().map(text))
            .with_operation(filter.operation.map_or(ANY_CODE, Operation::code))
            .with_permission_type(filter.permission.map_or(ANY_CODE, Permission::code))
    }};
}

/// DescribeAcls for one filter (every field set: the codec's defaults are not ANY).
pub fn describe_request(filter: &AclFilter) -> DescribeAclsRequest {
    with_filter!(DescribeAclsRequest::default(), filter)
}

/// One DeleteAcls request with every filter.
pub fn delete_request(filters: &[AclFilter]) -> DeleteAclsRequest {
    DeleteAclsRequest::default().with_filters(
        filters
            .iter()
            .map(|filter| with_filter!(DeleteAclsFilter::default(), filter))
            .collect(),
    )
}

/// A filter in words, for error messages.
fn describe_filter(filter: &AclFilter) -> String {
    let mut parts = vec![match (&filter.resource_type, &filter.name) {
        (Some(t), Some(n)) => format!("{t} {n:?}"),
        (Some(t), None) => format!("any {t}"),
        (None, Some(n)) => format!("any resource {n:?}"),
        (None, None) => "any resource".to_string(),
    }];
    match filter.pattern {
        PatternFilter::Any => {}
        PatternFilter::Match => parts.push("pattern MATCH".to_string()),
        PatternFilter::Exactly(p) => parts.push(format!("pattern {p}")),
    }
    if let Some(p) = &filter.principal {
        parts.push(format!("principal {p}"));
    }
    if let Some(h) = &filter.host {
        parts.push(format!("host {h}"));
    }
    if let Some(o) = filter.operation {
        parts.push(format!("operation {o}"));
    }
    if let Some(p) = filter.permission {
        parts.push(format!("permission {p}"));
    }
    parts.join(", ")
}

/// One ACL as printed: Kafka's names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclRow {
    pub resource_type: String,
    pub name: String,
    pub pattern_type: String,
    pub principal: String,
    pub host: String,
    pub operation: String,
    pub permission: String,
}

impl AclRow {
    /// From an answer's codes and strings: the resource pattern (type, name, pattern type) and
    /// the entry (principal, host, operation, permission).
    fn from_wire(
        (resource_type, name, pattern_type): (i8, &str, i8),
        (principal, host, operation, permission): (&str, &str, i8, i8),
    ) -> AclRow {
        AclRow {
            resource_type: label(resource_type, ResourceType::from_code),
            name: name.to_string(),
            pattern_type: label(pattern_type, PatternType::from_code),
            principal: principal.to_string(),
            host: host.to_string(),
            operation: label(operation, Operation::from_code),
            permission: label(permission, Permission::from_code),
        }
    }

    /// The fields as JSON names them, in the table's column order ([`HEADER`]).
    fn fields(&self) -> [(&'static str, &String); 7] {
        [
            ("resource_type", &self.resource_type),
            ("name", &self.name),
            ("pattern_type", &self.pattern_type),
            ("principal", &self.principal),
            ("host", &self.host),
            ("operation", &self.operation),
            ("permission", &self.permission),
        ]
    }
}

impl Row for AclRow {
    fn cells(&self) -> Vec<String> {
        Vec::from(self.fields().map(|(_, v)| v.clone()))
    }

    fn json(&self) -> Value {
        with_fields(json!({}), self.fields().map(|(k, v)| (k, json!(v))))
    }
}

impl From<&AclBinding> for AclRow {
    fn from(b: &AclBinding) -> AclRow {
        AclRow {
            resource_type: b.pattern.resource_type.to_string(),
            name: b.pattern.name.clone(),
            pattern_type: b.pattern.pattern_type.to_string(),
            principal: b.entry.principal.to_string(),
            host: b.entry.host.clone(),
            operation: b.entry.operation.to_string(),
            permission: b.entry.permission.to_string(),
        }
    }
}

impl std::fmt::Display for AclRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} from {} on {} {:?} ({})",
            self.permission,
            self.principal,
            self.operation,
            self.host,
            self.resource_type,
            self.name,
            self.pattern_type
        )
    }
}

/// The result for one ACL of a create or delete.
pub type Outcome = super::Outcome<AclRow>;

/// CreateAcls answers in request order, one result per ACL.
pub fn created(
    bindings: &[AclBinding],
    response: &CreateAclsResponse,
) -> anyhow::Result<Vec<Outcome>> {
    if response.results.len() != bindings.len() {
        bail!(
            "CreateAcls answered {} results for {} ACLs",
            response.results.len(),
            bindings.len()
        );
    }
    Ok(bindings
        .iter()
        .zip(&response.results)
        .map(|(b, r)| Outcome::new(AclRow::from(b), r.error_code, r.error_message.as_ref()))
        .collect())
}

/// The ACLs a DescribeAcls answer lists; its error (e.g. SECURITY_DISABLED) fails.
pub fn described(response: &DescribeAclsResponse) -> anyhow::Result<Vec<AclRow>> {
    check(
        "listing ACLs",
        response.error_code,
        response.error_message.as_deref(),
    )?;
    Ok(response
        .resources
        .iter()
        .flat_map(|resource| {
            resource.acls.iter().map(|acl| {
                AclRow::from_wire(
                    (
                        resource.resource_type,
                        &resource.resource_name,
                        resource.pattern_type,
                    ),
                    (
                        &acl.principal,
                        &acl.host,
                        acl.operation,
                        acl.permission_type,
                    ),
                )
            })
        })
        .collect())
}

/// A filter DeleteAcls refused: the filter, the error code, the broker's message.
pub type FilterError<'a> = super::Outcome<&'a AclFilter>;

/// DeleteAcls answers per filter (in request order) with the ACLs each matched: the outcome
/// per ACL (sorted, each ACL once, even if several filters matched it) and the filters refused.
pub fn deleted<'a>(
    filters: &'a [AclFilter],
    response: &DeleteAclsResponse,
) -> anyhow::Result<(Vec<Outcome>, Vec<FilterError<'a>>)> {
    if response.filter_results.len() != filters.len() {
        bail!(
            "DeleteAcls answered {} results for {} filters",
            response.filter_results.len(),
            filters.len()
        );
    }
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut seen = HashSet::new();
    let mut refused = Vec::new();
    for (filter, result) in filters.iter().zip(&response.filter_results) {
        let answer = FilterError::new(filter, result.error_code, result.error_message.as_ref());
        if !answer.ok() {
            refused.push(answer);
        }
        for acl in &result.matching_acls {
            let row = AclRow::from_wire(
                (acl.resource_type, &acl.resource_name, acl.pattern_type),
                (
                    &acl.principal,
                    &acl.host,
                    acl.operation,
                    acl.permission_type,
                ),
            );
            if seen.insert(row.clone()) {
                outcomes.push(Outcome::new(
                    row,
                    acl.error_code,
                    acl.error_message.as_ref(),
                ));
            }
        }
    }
    outcomes.sort_by(|a, b| a.item.cmp(&b.item));
    Ok((outcomes, refused))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser as _;
    use kafka_protocol::messages::create_acls_response::AclCreationResult;
    use kafka_protocol::messages::delete_acls_response::{
        DeleteAclsFilterResult, DeleteAclsMatchingAcl,
    };
    use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
    use shoal_acl::{MATCH_CODE, Principal};

    use super::*;
    use crate::cli::Command;

    /// Parses a command line as the binary would.
    fn parse(args: &str) -> Result<AclCommand, clap::Error> {
        let cli = Cli::try_parse_from(["shoalctl"].into_iter().chain(args.split_whitespace()))?;
        match cli.command {
            Command::Acl(c) => Ok(c),
            other => panic!("not an acl command: {other:?}"),
        }
    }

    fn parse_verb(verb: &str, args: &str) -> AclCommand {
        parse(&format!("acl {verb} {args}")).unwrap()
    }

    verb_args!(AclCommand(&str) {
        create_args: "create" => Create(AclCreate),
        list_args: "list" => List(AclFilterArgs),
        delete_args: "delete" => Delete(AclDelete),
    });

    fn rows(bindings: &[AclBinding]) -> Vec<String> {
        bindings
            .iter()
            .map(|b| AclRow::from(b).cells().join(" "))
            .collect()
    }

    #[test]
    fn create_is_the_cross_product_in_one_request() {
        let args = create_args(
            "--topic orders --topic payments --allow-principal User:alice \
             --allow-principal User:bob --allow-host 10.0.0.1 --allow-host 10.0.0.2 \
             --deny-principal User:mallory --operation Read --operation describe",
        );
        let bindings = create_bindings(&args).unwrap();
        // 2 topics x (2 allow principals x 2 hosts + 1 deny principal x *) x 2 operations.
        assert_eq!(bindings.len(), 2 * (2 * 2 + 1) * 2);
        let got = rows(&bindings);
        for want in [
            "TOPIC orders LITERAL User:alice 10.0.0.1 READ ALLOW",
            "TOPIC payments LITERAL User:bob 10.0.0.2 DESCRIBE ALLOW",
            "TOPIC orders LITERAL User:mallory * READ DENY",
            "TOPIC payments LITERAL User:mallory * DESCRIBE DENY",
        ] {
            assert!(got.contains(&want.to_string()), "{want} not in {got:#?}");
        }
        // Deny principals do not get the allow hosts.
        assert!(!got.iter().any(|r| r.contains("mallory 10.0.0")));

        let request = create_request(&bindings);
        assert_eq!(request.creations.len(), bindings.len());
        let first = &request.creations[0];
        assert_eq!(first.resource_type, ResourceType::Topic.code());
        assert_eq!(first.resource_name.as_str(), "orders");
        assert_eq!(first.resource_pattern_type, PatternType::Literal.code());
        assert_eq!(first.principal.as_str(), "User:alice");
        assert_eq!(first.host.as_str(), "10.0.0.1");
        assert_eq!(first.operation, Operation::Read.code());
        assert_eq!(first.permission_type, Permission::Allow.code());
    }

    #[test]
    fn create_defaults_hosts_to_any_and_dedupes() {
        let args = create_args(
            "--group billing --group billing --transactional-id tx --allow-principal User:a \
             --operation ALL --operation All --resource-pattern-type PREFIXED",
        );
        let got = rows(&create_bindings(&args).unwrap());
        assert_eq!(
            got,
            [
                "GROUP billing PREFIXED User:a * ALL ALLOW",
                "TRANSACTIONAL_ID tx PREFIXED User:a * ALL ALLOW",
            ]
        );
    }

    #[test]
    fn cluster_is_the_resource_kafka_cluster() {
        let args = create_args("--cluster --allow-principal User:ops --operation ClusterAction");
        let bindings = create_bindings(&args).unwrap();
        assert_eq!(
            rows(&bindings),
            ["CLUSTER kafka-cluster LITERAL User:ops * CLUSTER_ACTION ALLOW"]
        );
        let request = create_request(&bindings);
        assert_eq!(request.creations[0].resource_type, 4);
        assert_eq!(request.creations[0].resource_name.as_str(), "kafka-cluster");

        let filters = filters(&list_args("--cluster")).unwrap();
        assert_eq!(filters.len(), 1);
        let request = describe_request(&filters[0]);
        assert_eq!(request.resource_type_filter, 4);
        assert_eq!(
            request.resource_name_filter.as_ref().map(|n| n.as_str()),
            Some("kafka-cluster")
        );
    }

    #[test]
    fn bad_create_input_is_refused_with_a_reason() {
        // Refused when the ACLs are made, the reason naming each of `wants`.
        for (args, wants) in [
            (
                "--topic * --resource-pattern-type prefixed --allow-principal User:a --operation Read",
                &["PREFIXED", "wildcard"][..],
            ),
            (
                "--topic t --topic * --resource-pattern-type prefixed --allow-principal User:a --operation Read",
                &["wildcard"],
            ),
            (
                "--topic= --allow-principal User:a --operation Read",
                &["--topic needs a name"],
            ),
        ] {
            let e = format!("{:#}", create_bindings(&create_args(args)).unwrap_err());
            assert!(wants.iter().all(|w| e.contains(w)), "{args}: {e}");
        }
        for (args, want) in [
            // The literal wildcard is every topic: fine.
            (
                "--topic * --allow-principal User:* --operation Read",
                "TOPIC * LITERAL User:* * READ ALLOW",
            ),
            // No --operation: ALL, as kafka-acls.
            (
                "--topic t --allow-principal User:a",
                "TOPIC t LITERAL User:a * ALL ALLOW",
            ),
        ] {
            assert_eq!(rows(&create_bindings(&create_args(args)).unwrap()), [want]);
        }

        // What clap refuses (exit 2), with the reason.
        for (args, wants) in [
            (
                "--topic t --allow-principal User:a --operation Fly",
                &["unknown operation \"Fly\"", "DESCRIBE_CONFIGS"][..],
            ),
            (
                "--topic t --allow-principal alice --operation Read",
                &["not Type:name"],
            ),
            ("--allow-principal User:a --operation Read", &["--topic"]),
            ("--topic t --operation Read", &["--allow-principal"]),
            (
                "--topic t --deny-principal User:a --allow-host 1.2.3.4 --operation Read",
                &["--allow-principal"],
            ),
            (
                "--topic t --allow-principal User:a --operation Read --resource-pattern-type any",
                &["only a filter"],
            ),
            (
                "--topic t --allow-principal User:a --operation Read --allow-host=",
                &["host is empty"],
            ),
        ] {
            let e = parse(&format!("acl create {args}"))
                .unwrap_err()
                .to_string();
            assert!(wants.iter().all(|w| e.contains(w)), "{args}: {e}");
        }
    }

    #[test]
    fn list_without_a_resource_is_any_resource_and_any_pattern() {
        let filters = filters(&list_args("")).unwrap();
        assert_eq!(filters, [AclFilter::default()]);
        let r = describe_request(&filters[0]);
        assert_eq!(r.resource_type_filter, ANY_CODE);
        assert_eq!(r.resource_name_filter, None);
        assert_eq!(r.pattern_type_filter, ANY_CODE);
        assert_eq!(r.principal_filter, None);
        assert_eq!(r.host_filter, None);
        assert_eq!(r.operation, ANY_CODE);
        assert_eq!(r.permission_type, ANY_CODE);
    }

    #[test]
    fn list_filters_are_the_cross_product_of_the_given_parts() {
        let filters = filters(&list_args(
            "--topic orders --group billing --principal User:alice --principal User:bob \
             --host 10.0.0.1 --operation Write --permission deny --resource-pattern-type match",
        ))
        .unwrap();
        assert_eq!(filters.len(), 4);
        let r = describe_request(&filters[0]);
        assert_eq!(r.resource_type_filter, ResourceType::Topic.code());
        assert_eq!(
            r.resource_name_filter.as_ref().map(|n| n.as_str()),
            Some("orders")
        );
        assert_eq!(r.pattern_type_filter, MATCH_CODE);
        assert_eq!(
            r.principal_filter.as_ref().map(|n| n.as_str()),
            Some("User:alice")
        );
        assert_eq!(r.host_filter.as_ref().map(|n| n.as_str()), Some("10.0.0.1"));
        assert_eq!(r.operation, Operation::Write.code());
        assert_eq!(r.permission_type, Permission::Deny.code());
        assert_eq!(filters[3].resource_type, Some(ResourceType::Group));
        assert_eq!(filters[3].principal, Some(Principal::user("bob")));

        let literal = filters_of("--topic orders --resource-pattern-type Literal");
        assert_eq!(
            literal[0].pattern,
            PatternFilter::Exactly(PatternType::Literal)
        );
        assert_eq!(describe_request(&literal[0]).pattern_type_filter, 3);
        // A name with the default pattern type: that exact name, whatever its pattern type.
        assert_eq!(filters_of("--topic orders")[0].pattern, PatternFilter::Any);
        let e = parse("acl list --resource-pattern-type exact")
            .unwrap_err()
            .to_string();
        assert!(e.contains("any, match, literal, prefixed"), "{e}");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn requests_encode_at_every_version_1_to_3() {
        use bytes::BytesMut;
        use kafka_protocol::protocol::{Decodable, Encodable};
        let bindings = create_bindings(&create_args(
            "--topic t --cluster --allow-principal User:a --operation Read",
        ))
        .unwrap();
        let filters = filters_of("--group g --principal User:a");
        let any = filters_of("");
        for version in 1..=3 {
            let create = create_request(&bindings);
            let mut buf = BytesMut::new();
            create.encode(&mut buf, version).unwrap();
            let decoded = CreateAclsRequest::decode(&mut buf.freeze(), version).unwrap();
            assert_eq!(decoded, create, "v{version}");
            for f in filters.iter().chain(&any) {
                let describe = describe_request(f);
                let mut buf = BytesMut::new();
                describe.encode(&mut buf, version).unwrap();
                let decoded = DescribeAclsRequest::decode(&mut buf.freeze(), version).unwrap();
                assert_eq!(decoded, describe, "v{version}");
            }
            let delete = delete_request(&[filters.clone(), any.clone()].concat());
            let mut buf = BytesMut::new();
            delete.encode(&mut buf, version).unwrap();
            let decoded = DeleteAclsRequest::decode(&mut buf.freeze(), version).unwrap();
            assert_eq!(decoded, delete, "v{version}");
        }
    }

    fn filters_of(args: &str) -> Vec<AclFilter> {
        filters(&list_args(args)).unwrap()
    }

    #[test]
    fn delete_sends_one_filter_per_resource_and_needs_force() {
        let args = delete_args("--topic a --transactional-id tx --principal User:x");
        assert!(!args.force);
        let filters = filters(&args.filter).unwrap();
        let request = delete_request(&filters);
        assert_eq!(request.filters.len(), 2);
        assert_eq!(request.filters[0].resource_type_filter, 2);
        assert_eq!(request.filters[1].resource_type_filter, 5);
        assert_eq!(request.filters[1].pattern_type_filter, ANY_CODE);
        assert_eq!(request.filters[1].operation, ANY_CODE);
        assert_eq!(request.filters[1].host_filter, None);
        assert_eq!(
            request.filters[1]
                .principal_filter
                .as_ref()
                .map(|p| p.as_str()),
            Some("User:x")
        );
        // No resource: one filter over every resource.
        let all = delete_args("--force");
        assert!(all.force);
        let request = delete_request(&filters_of_delete(&all));
        assert_eq!(request.filters.len(), 1);
        assert_eq!(request.filters[0].resource_type_filter, ANY_CODE);
        assert_eq!(request.filters[0].resource_name_filter, None);
    }

    fn filters_of_delete(args: &AclDelete) -> Vec<AclFilter> {
        filters(&args.filter).unwrap()
    }

    fn acl(principal: &str, operation: Operation) -> AclDescription {
        AclDescription::default()
            .with_principal(StrBytes::from_string(principal.to_string()))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(operation.code())
            .with_permission_type(Permission::Allow.code())
    }

    #[test]
    fn described_acls_become_rows_and_errors_fail() {
        let response = DescribeAclsResponse::default().with_resources(vec![
            DescribeAclsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("orders"))
                .with_pattern_type(4)
                .with_acls(vec![
                    acl("User:a", Operation::Read),
                    acl("User:b", Operation::IdempotentWrite),
                ]),
            // A code from a newer broker is shown, not refused.
            DescribeAclsResource::default()
                .with_resource_type(42)
                .with_resource_name(StrBytes::from_static_str("x"))
                .with_pattern_type(3)
                .with_acls(vec![
                    AclDescription::default()
                        .with_principal(StrBytes::from_static_str("User:c"))
                        .with_host(StrBytes::from_static_str("*"))
                        .with_operation(99)
                        .with_permission_type(3),
                ]),
        ]);
        let got: Vec<String> = described(&response)
            .unwrap()
            .iter()
            .map(|r| r.cells().join(" "))
            .collect();
        assert_eq!(
            got,
            [
                "TOPIC orders PREFIXED User:a * READ ALLOW",
                "TOPIC orders PREFIXED User:b * IDEMPOTENT_WRITE ALLOW",
                "UNKNOWN(42) x LITERAL User:c * UNKNOWN(99) ALLOW",
            ]
        );
        let refused = DescribeAclsResponse::default()
            .with_error_code(54)
            .with_error_message(Some(StrBytes::from_static_str(
                "No Authorizer is configured",
            )));
        let e = format!("{:#}", described(&refused).unwrap_err());
        assert_eq!(
            e,
            "listing ACLs: SECURITY_DISABLED: No Authorizer is configured"
        );
    }

    #[test]
    fn create_results_pair_with_the_acls_and_a_failure_exits_1() {
        let bindings = create_bindings(&create_args(
            "--topic t --allow-principal User:a --operation Read --operation Write",
        ))
        .unwrap();
        let response = CreateAclsResponse::default().with_results(vec![
            AclCreationResult::default(),
            AclCreationResult::default()
                .with_error_code(42)
                .with_error_message(Some(StrBytes::from_static_str("bad ACL"))),
        ]);
        let outcomes = created(&bindings, &response).unwrap();
        assert_eq!(outcomes[0].cells("created").last().unwrap(), "created");
        assert_eq!(
            outcomes[1].cells("created").last().unwrap(),
            "INVALID_REQUEST"
        );
        let json = outcomes[1].json("created");
        assert_eq!(json["created"], false);
        assert_eq!(json["error"], "INVALID_REQUEST");
        assert_eq!(json["message"], "bad ACL");
        assert_eq!(json["operation"], "WRITE");
        assert_eq!(outcomes[0].json("created")["error"], Value::Null);
        let e = format!("{:#}", first_failure("creating", &outcomes).unwrap_err());
        assert!(
            e.contains("1 of 2") && e.contains("INVALID_REQUEST: bad ACL"),
            "{e}"
        );
        assert!(first_failure("creating", &outcomes[..1]).is_ok());
        // A short answer is an error, not a panic.
        let short = CreateAclsResponse::default().with_results(vec![AclCreationResult::default()]);
        assert!(created(&bindings, &short).is_err());
    }

    #[test]
    fn deleted_acls_are_listed_once_each_with_filter_errors_apart() {
        let filters = filters_of("--topic a --topic b --topic c");
        let matching = |name: &'static str, code: i16| {
            DeleteAclsMatchingAcl::default()
                .with_error_code(code)
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str(name))
                .with_pattern_type(3)
                .with_principal(StrBytes::from_static_str("User:a"))
                .with_host(StrBytes::from_static_str("*"))
                .with_operation(3)
                .with_permission_type(3)
        };
        let response = DeleteAclsResponse::default().with_filter_results(vec![
            DeleteAclsFilterResult::default().with_matching_acls(vec![matching("a", 0)]),
            DeleteAclsFilterResult::default()
                .with_matching_acls(vec![matching("b", 0), matching("a", 0)]),
            DeleteAclsFilterResult::default().with_error_code(31),
        ]);
        let (outcomes, refused) = deleted(&filters, &response).unwrap();
        let names: Vec<&str> = outcomes.iter().map(|o| o.item.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].item.name.as_deref(), Some("c"));
        assert_eq!(
            shoal_kafka::error_name(refused[0].error_code),
            "CLUSTER_AUTHORIZATION_FAILED"
        );
        assert!(deleted(&filters[..2], &response).is_err());
    }
}
