//! One module per noun; each verb turns flags into Kafka requests and the answers into a
//! table or JSON. A Kafka error in an answer becomes a one-line error naming it (exit 1).

/// In a noun's tests: for each verb, `fn name(args) -> Args`, the arguments the module's
/// `parse_verb(verb, args)` (a command line of that verb, parsed as the binary would) gives.
#[cfg(test)]
macro_rules! verb_args {
    ($command:ident($line:ty) { $($name:ident: $verb:literal => $variant:ident($args:ty)),+ $(,)? }) => {
        $(
            fn $name(args: $line) -> $args {
                match parse_verb($verb, args) {
                    $command::$variant(a) => a,
                    other => panic!("{other:?}"),
                }
            }
        )+
    };
}

mod acl;
mod broker;
mod cluster;
mod cluster_view;
pub mod console;
mod features;
mod group;
mod group_config;
mod log_dirs;
mod move_dir;
mod partition;
mod partition_describe;
mod progress;
mod quota;
mod reassign;
mod reassign_throttle;
mod reset_offsets;
mod topic;
mod topic_trim;
mod txn;
mod txn_hanging;
mod user;

use std::fmt::Display;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use kafka_protocol::protocol::StrBytes;
use serde_json::{Value, json};

use crate::cli::{Cli, Command};
use crate::kafka::Client;
use crate::kafka::security::{ClientProperties, Transport};
use crate::output::{Output, Row, with_fields};

pub async fn run(cli: &Cli, out: &Output, timeout: Duration) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Cluster(crate::cli::ClusterCommand::Quorum(args)) => {
            // The controller listener with CONTROLLER:SSL takes the command config's TLS
            // settings (a certificate of the cluster CA).
            let properties =
                ClientProperties::load(cli.command_config.as_deref(), &cli.command_property)?;
            let tls = Transport::from_properties(&properties)?.tls;
            match &args.action {
                None | Some(crate::cli::QuorumCommand::Describe) => {
                    cluster::quorum(&cli.controllers, out, timeout, tls).await
                }
                Some(crate::cli::QuorumCommand::AddVoter(add)) => {
                    cluster::add_voter(&cli.controllers, add, out, timeout, tls).await
                }
                Some(crate::cli::QuorumCommand::RemoveVoter(remove)) => {
                    cluster::remove_voter(&cli.controllers, remove, out, timeout, tls).await
                }
            }
        }
        Command::Topic(c) => topic::run(&mut connect(cli, timeout).await?, c, out).await,
        Command::Group(c) => group::run(&mut connect(cli, timeout).await?, c, out).await,
        Command::Txn(c) => txn::run(&mut connect(cli, timeout).await?, c, out).await,
        Command::Cluster(c) => cluster::run(&mut connect(cli, timeout).await?, c, out).await,
        Command::Broker(c) => broker::run(&mut connect(cli, timeout).await?, c, out).await,
        Command::Partition(crate::cli::PartitionCommand::ElectLeaders(args)) => {
            partition::elect_leaders(&mut connect(cli, timeout).await?, args, out).await
        }
        Command::Partition(crate::cli::PartitionCommand::Describe(args)) => {
            partition_describe::describe(&mut connect(cli, timeout).await?, args, out).await
        }
        Command::Partition(crate::cli::PartitionCommand::Reassign(args)) => {
            let plan = reassign::plan(args)?;
            reassign::log_dir_moves(args)?;
            reassign::reassign(&mut connect(cli, timeout).await?, args, plan, out).await
        }
        Command::Partition(crate::cli::PartitionCommand::Reassignments(args)) => {
            reassign::list_reassignments(&mut connect(cli, timeout).await?, args, out).await
        }
        Command::Partition(crate::cli::PartitionCommand::MoveDir(args)) => {
            let moves = move_dir::plan(args)?;
            move_dir::run(&mut connect(cli, timeout).await?, args, moves, out).await
        }
        // Flags are checked before connecting: bad input fails without a broker.
        Command::Acl(c) => acl::run(cli, c, out, timeout).await,
        Command::User(c) => user::run(cli, c, out, timeout).await,
        Command::Quota(c) => quota::run(cli, c, out, timeout).await,
        Command::Completion { .. } => Ok(ExitCode::SUCCESS),
    }
}

async fn connect(cli: &Cli, timeout: Duration) -> anyhow::Result<Client> {
    let properties = ClientProperties::load(cli.command_config.as_deref(), &cli.command_property)?;
    let transport = Transport::from_properties(&properties)?;
    Client::connect(&cli.brokers, timeout, transport).await
}

/// Fails with Kafka's error name (and the broker's message) unless `code` is 0.
/// IncrementalAlterConfigs on one resource: SET each `set` pair, DELETE each `delete` name; an
/// error code is an error naming `what`.
pub async fn alter_resource_configs(
    client: &mut Client,
    resource_type: i8,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
    what: &str,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    // Kafka's operation codes: 0 SET, 1 DELETE.
    let mut configs: Vec<AlterableConfig> = set
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .collect();
    configs.extend(delete.iter().map(|k| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(k.clone()))
            .with_config_operation(1)
    }));
    let response = client
        .any()
        .call(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(StrBytes::from_string(name.to_string()))
                    .with_configs(configs),
            ]),
        )
        .await?;
    let r = response
        .responses
        .first()
        .context("empty IncrementalAlterConfigs answer")?;
    check(what, r.error_code, r.error_message.as_deref())
}

pub fn check(what: &str, code: i16, message: Option<&str>) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    let name = shoal_kafka::error_name(code);
    match message.filter(|m| !m.is_empty()) {
        Some(m) => bail!("{what}: {name}: {m}"),
        None => bail!("{what}: {name}"),
    }
}

/// Keeps the first of equal items, in order (the lists are a command line's worth).
pub fn dedupe<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Kafka's name for a wire code, or `UNKNOWN(code)` for one this tool does not know (a newer
/// broker's): an answer is shown, never refused, for it.
pub fn label<T: Display, E>(code: i8, from_code: impl FnOnce(i8) -> Result<T, E>) -> String {
    from_code(code).map_or_else(|_| format!("UNKNOWN({code})"), |v| v.to_string())
}

/// One item of a create or delete (an ACL, a user's credentials) with Kafka's answer for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<T> {
    pub item: T,
    pub error_code: i16,
    /// The broker's message; an empty one is none.
    pub message: Option<String>,
}

impl<T> Outcome<T> {
    pub fn new(item: T, error_code: i16, message: Option<&StrBytes>) -> Outcome<T> {
        Outcome {
            item,
            error_code,
            message: message.map(|m| m.to_string()).filter(|m| !m.is_empty()),
        }
    }

    pub fn ok(&self) -> bool {
        self.error_code == 0
    }

    /// STATUS: `done` (created, deleted) or Kafka's error name.
    pub fn status(&self, done: &str) -> String {
        if self.ok() {
            done.to_string()
        } else {
            shoal_kafka::error_name(self.error_code).to_string()
        }
    }

    /// Fails with Kafka's error name (and the broker's message) unless the item succeeded.
    pub fn check(&self, what: &str) -> anyhow::Result<()> {
        check(what, self.error_code, self.message.as_deref())
    }
}

impl<T: Row> Outcome<T> {
    /// The item's cells, then STATUS.
    pub fn cells(&self, done: &str) -> Vec<String> {
        let mut cells = self.item.cells();
        cells.push(self.status(done));
        cells
    }

    /// The item's fields, then `done` (true or false), `error` (Kafka's name or null) and
    /// `message`.
    pub fn json(&self, done: &str) -> Value {
        let ok = self.ok();
        with_fields(
            self.item.json(),
            [
                (done, json!(ok)),
                (
                    "error",
                    if ok {
                        Value::Null
                    } else {
                        json!(self.status(done))
                    },
                ),
                ("message", json!(self.message)),
            ],
        )
    }

    /// Both, for [`Output::emit_rows`](crate::output::Output::emit_rows).
    pub fn line(&self, done: &str) -> (Vec<String>, Value) {
        (self.cells(done), self.json(done))
    }
}

/// How a command's error counts its failed items: ` (F of T{noun} failed)`.
pub struct Tally<'a> {
    /// How many items the command was about.
    pub total: usize,
    /// After the total: empty, or e.g. ` users`.
    pub noun: &'a str,
    /// The count is said once at least this many failed (1: always).
    pub from: usize,
}

/// Ends a command once every result is printed: success when nothing failed; else the first
/// failure is the error (exit 1), `what` naming its item, then the tally of failures.
pub fn first_failure<'a, T: 'a>(
    outcomes: impl IntoIterator<Item = &'a Outcome<T>>,
    what: impl FnOnce(&T) -> String,
    tally: Tally<'_>,
) -> anyhow::Result<ExitCode> {
    let failed: Vec<&Outcome<T>> = outcomes.into_iter().filter(|o| !o.ok()).collect();
    if let Some(first) = failed.first() {
        let of = if failed.len() >= tally.from {
            format!(
                " ({} of {}{} failed)",
                failed.len(),
                tally.total,
                tally.noun
            )
        } else {
            String::new()
        };
        first.check(&format!("{}{of}", what(&first.item)))?;
    }
    Ok(ExitCode::SUCCESS)
}
