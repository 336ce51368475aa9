//! The command line. Verbs and flags follow Kafka's tools (`kafka-topics.sh`,
//! `kafka-consumer-groups.sh`, `kafka-metadata-quorum.sh`) and Redpanda's `rpk`.

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

use crate::output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "shoalctl",
    version,
    about = "Operate a Shoal (or any Kafka) cluster: topics, groups, health, the metadata quorum",
    after_help = "Exit codes: 0 done; 1 the operation failed (or `cluster health` found problems); 2 bad usage."
)]
pub struct Cli {
    /// Bootstrap servers.
    #[arg(
        long,
        global = true,
        env = "SHOAL_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,

    /// Controller gRPC addresses, for what Kafka has no API for (`cluster quorum`).
    #[arg(
        long,
        global = true,
        env = "SHOAL_CONTROLLERS",
        default_value = "127.0.0.1:9093"
    )]
    pub controllers: String,

    /// Output: aligned table, or JSON for scripts.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Bound on each network operation, in milliseconds.
    #[arg(long, global = true, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub timeout_ms: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Topics: list, describe, create, delete, add partitions, change configs.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Consumer groups: list, describe (members, offsets, lag), delete.
    #[command(subcommand)]
    Group(GroupCommand),
    /// The cluster: id, controller, brokers, health, the metadata quorum.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Every topic with its partition count and replication factor.
    List {
        /// Include internal topics (__consumer_offsets).
        #[arg(long)]
        internal: bool,
    },
    /// Partitions (leader, epoch, replicas, ISR, log start, high watermark) and non-default configs.
    Describe { topic: String },
    /// Create a topic.
    Create(CreateTopic),
    /// Delete topics.
    Delete {
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Raise the partition count to `--count` (partitions are never removed).
    AddPartitions {
        topic: String,
        /// The new total number of partitions.
        #[arg(long)]
        count: i32,
    },
    /// Set or delete topic configs (IncrementalAlterConfigs).
    AlterConfig {
        topic: String,
        /// name=value; repeatable.
        #[arg(long = "set", value_parser = parse_pair)]
        set: Vec<(String, String)>,
        /// A config to return to its default; repeatable.
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct CreateTopic {
    pub topic: String,
    #[arg(short, long, default_value_t = -1)]
    pub partitions: i32,
    /// Replication factor (-1: the broker's default.replication.factor).
    #[arg(short, long, default_value_t = -1)]
    pub replication_factor: i16,
    /// name=value topic config; repeatable.
    #[arg(short, long = "config", value_parser = parse_pair)]
    pub config: Vec<(String, String)>,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Every group on every broker, with its state.
    List,
    /// Members and their assignments, and per partition committed offset, log end and lag.
    Describe { group: String },
    /// Delete empty groups and their committed offsets.
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Cluster id, controller, and every broker with its state.
    Info,
    /// Offline, under-replicated and under-min-ISR partitions and fenced brokers; exit 1 if any.
    Health,
    /// The metadata quorum: leader, term, voters and observers with log end offsets and lag.
    Quorum,
}

pub fn parse_pair(raw: &str) -> Result<(String, String), String> {
    let (k, v) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?} must look like name=value"))?;
    if k.trim().is_empty() {
        return Err(format!("{raw:?} has an empty name"));
    }
    Ok((k.trim().to_string(), v.trim().to_string()))
}
