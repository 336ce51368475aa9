//! One module per noun; each verb turns flags into Kafka requests and the answers into a
//! table or JSON. A Kafka error in an answer becomes a one-line error naming it (exit 1).

mod acl;
mod cluster;
pub mod console;
mod group;
mod partition;
mod reset_offsets;
mod topic;
mod user;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use crate::cli::{Cli, Command};
use crate::kafka::Client;
use crate::kafka::security::{ClientProperties, Transport};
use crate::output::Output;

pub async fn run(cli: &Cli, out: &Output, timeout: Duration) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Cluster(crate::cli::ClusterCommand::Quorum) => {
            cluster::quorum(&cli.controllers, out, timeout).await
        }
        Command::Topic(c) => topic::run(&mut connect(cli, timeout).await?, c, out).await,
        Command::Group(c) => group::run(&mut connect(cli, timeout).await?, c, out).await,
        Command::Cluster(c) => cluster::run(&mut connect(cli, timeout).await?, c, out).await,
        Command::Partition(crate::cli::PartitionCommand::ElectLeaders(args)) => {
            partition::elect_leaders(&mut connect(cli, timeout).await?, args, out).await
        }
        // Flags are checked before connecting: bad input fails without a broker.
        Command::Acl(c) => acl::run(cli, c, out, timeout).await,
        Command::User(c) => user::run(cli, c, out, timeout).await,
        Command::Completion { .. } => Ok(ExitCode::SUCCESS),
    }
}

async fn connect(cli: &Cli, timeout: Duration) -> anyhow::Result<Client> {
    let properties = ClientProperties::load(cli.command_config.as_deref())?;
    let transport = Transport::from_properties(&properties)?;
    Client::connect(&cli.brokers, timeout, transport).await
}

/// Fails with Kafka's error name (and the broker's message) unless `code` is 0.
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
