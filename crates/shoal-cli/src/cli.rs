//! The command line. Verbs and flags follow Kafka's tools (`kafka-topics.sh`,
//! `kafka-consumer-groups.sh`, `kafka-acls.sh`, `kafka-configs.sh`, `kafka-metadata-quorum.sh`)
//! and Redpanda's `rpk`.

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;
use shoal_acl::{Operation, PatternFilter, PatternType, Permission, Principal};
use shoal_sasl::{MAX_ITERATIONS, MIN_ITERATIONS, ScramMechanism};

use crate::output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "shoalctl",
    version,
    about = "Operate a Shoal (or any Kafka) cluster: topics, groups, ACLs, SCRAM users, health, the metadata quorum",
    after_help = "Exit codes: 0 done; 1 the operation failed (or `cluster health` found problems, `txn find-hanging` hanging transactions); 2 bad usage."
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

    /// Kafka client properties (security.protocol, ssl.*), as kafka-*.sh --command-config.
    #[arg(long, global = true, env = "SHOAL_COMMAND_CONFIG")]
    pub command_config: Option<std::path::PathBuf>,

    /// One Kafka client property, name=value (e.g. security.protocol=SASL_SSL); repeatable,
    /// and wins over the same name in --command-config.
    #[arg(long, global = true, value_parser = parse_pair)]
    pub command_property: Vec<(String, String)>,

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
    /// Transactions: list, describe, a partition's producers, hanging ones (kafka-transactions.sh).
    #[command(subcommand)]
    Txn(TxnCommand),
    /// Partitions: offsets (log start, LSO, high watermark), leader elections.
    #[command(subcommand)]
    Partition(PartitionCommand),
    /// The cluster: id, controller, brokers, health, the metadata quorum, balance.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Brokers: retire one (move its replicas away, then unregister it).
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// ACLs: create, list, delete (kafka-acls.sh --add, --list, --remove).
    #[command(subcommand)]
    Acl(AclCommand),
    /// SCRAM users: create, list, delete (kafka-configs.sh --entity-type users, SCRAM-SHA-*).
    #[command(subcommand)]
    User(UserCommand),
    /// Client quotas: list, set, delete byte rates of users and client ids
    /// (kafka-configs.sh --entity-type users/clients, KIP-546).
    #[command(subcommand)]
    Quota(QuotaCommand),
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
    /// The console producer: one record per stdin line.
    Produce(ProduceArgs),
    /// The console consumer: records to stdout, formatted.
    Consume(ConsumeArgs),
    /// Delete records below an offset (DeleteRecords, as kafka-delete-records): the log start
    /// of each partition moves up on every in-sync replica.
    Trim(TrimArgs),
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
pub struct TrimArgs {
    /// The topic whose records to delete.
    pub topic: Option<String>,
    /// Only this partition; repeatable. Default: every partition of the topic.
    #[arg(long, requires = "topic")]
    pub partition: Vec<i32>,
    /// Delete the records below this offset. Default: the high watermark (every record
    /// consumers can read now).
    #[arg(long, requires = "topic")]
    pub offset: Option<i64>,
    /// Kafka's kafka-delete-records file:
    /// {"partitions":[{"topic":"t","partition":0,"offset":3}],"version":1}.
    #[arg(long, value_name = "FILE")]
    pub offset_json_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Split each line at the first SEP into key and value (kafka-console-producer's
    /// parse.key / key.separator).
    #[arg(short = 'K', long)]
    pub key_separator: Option<String>,
    /// Each line starts with headers, `k1:v1,k2:v2`, then a TAB (parse.headers).
    #[arg(long)]
    pub parse_headers: bool,
    /// A header for every record, name=value; repeatable.
    #[arg(short = 'H', long = "header", value_parser = parse_pair)]
    pub headers: Vec<(String, String)>,
    /// Write every record to this partition (default: the key's partition, or sticky).
    #[arg(short, long)]
    pub partition: Option<i32>,
    #[arg(long, default_value = "all", value_parser = ["all", "-1", "1", "0"])]
    pub acks: String,
    #[arg(short = 'z', long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    pub compression: String,
    /// librdkafka client settings, name=value; repeatable.
    #[arg(short = 'X', value_parser = parse_pair)]
    pub client_config: Vec<(String, String)>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("start").multiple(false)))]
pub struct ConsumeArgs {
    pub topic: String,
    /// Consume in this group (partitions assigned by the group, offsets committed).
    #[arg(short, long)]
    pub group: Option<String>,
    /// Only this partition (not with --group).
    #[arg(short, long, conflicts_with = "group")]
    pub partition: Option<i32>,
    /// Start at the log start (with a group: when it has no committed offset).
    #[arg(long, group = "start")]
    pub from_beginning: bool,
    /// Start at the log end (the default without a group).
    #[arg(long, group = "start")]
    pub from_end: bool,
    /// Start at this offset in every partition read.
    #[arg(long, group = "start", conflicts_with = "group")]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time (as --to-datetime of reset-offsets).
    #[arg(long, group = "start", conflicts_with = "group")]
    pub from_timestamp: Option<String>,
    /// Stop after this many records.
    #[arg(short = 'n', long)]
    pub count: Option<u64>,
    /// Stop when nothing arrives for this long (default: wait forever).
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// Output per record: %t topic, %p partition, %o offset, %T timestamp (ms), %k key,
    /// %v value, %h headers (k=v,...), \n \t; ignored with -o json (one JSON object per line).
    #[arg(short = 'f', long, default_value = "%v\\n")]
    pub format: String,
    /// librdkafka client settings, name=value; repeatable.
    #[arg(short = 'X', value_parser = parse_pair)]
    pub client_config: Vec<(String, String)>,
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
pub enum TxnCommand {
    /// Every transactional id every broker coordinates, with its producer id and state.
    List {
        /// Only these states (Empty, Ongoing, PrepareCommit, ...); repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only transactions open longer than this many milliseconds.
        #[arg(long)]
        duration_ms: Option<i64>,
    },
    /// One transactional id: state, producer id and epoch, timeout, start time, partitions.
    Describe { transactional_id: String },
    /// The active producers of a partition on its leader, with their open transactions.
    DescribeProducers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
    },
    /// Abort a hanging transaction on one partition: the open transaction starting at
    /// --start-offset gets an abort marker (WriteTxnMarkers). Aborting a transaction its
    /// producer is still running breaks that transaction: needs --force.
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// CURRENT_TXN_START_OFFSET of the transaction, from `txn describe-producers`.
        #[arg(long)]
        start_offset: i64,
        #[arg(long)]
        force: bool,
    },
    /// Find hanging transactions (kafka-transactions.sh find-hanging): open on a partition for
    /// longer than --max-transaction-timeout, and not open with that partition on any
    /// coordinator. Exit 1 when any is found.
    FindHanging(FindHanging),
}

#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("scope")
        .required(true)
        .multiple(true)
        .args(["broker_id", "topic"])
))]
pub struct FindHanging {
    /// Search the partitions this broker replicates (every topic, internal ones included).
    #[arg(long, value_name = "ID")]
    pub broker_id: Option<i32>,
    /// Search this topic's partitions.
    #[arg(long)]
    pub topic: Option<String>,
    /// Only this partition of --topic.
    #[arg(long, requires = "topic")]
    pub partition: Option<i32>,
    /// The largest transaction.timeout.ms in use, in minutes: open transactions whose producer
    /// last wrote longer ago than this are checked with their coordinator (0: every open one).
    #[arg(long, value_name = "MINUTES", default_value_t = 15)]
    pub max_transaction_timeout: u32,
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
    /// Move a group's committed offsets (a dry run unless --execute; the group must be empty).
    ResetOffsets(ResetOffsets),
    /// A consumer group's own session timeout and heartbeat interval (KIP-848 group configs,
    /// as kafka-configs --entity-type groups): shown, or set and deleted.
    Config {
        group: String,
        /// name=value (consumer.session.timeout.ms, consumer.heartbeat.interval.ms); repeatable.
        #[arg(long = "set", value_parser = parse_pair)]
        set: Vec<(String, String)>,
        /// A config to return to the broker's value; repeatable.
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("to").required(true).multiple(false)))]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(false)))]
pub struct ResetOffsets {
    pub group: String,
    /// TOPIC or TOPIC:P1,P2 ; repeatable.
    #[arg(long, group = "which")]
    pub topic: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long, group = "which")]
    pub all_topics: bool,
    #[arg(long, group = "to")]
    pub to_earliest: bool,
    #[arg(long, group = "to")]
    pub to_latest: bool,
    /// An offset, clamped to each partition's [log start, log end].
    #[arg(long, group = "to", allow_negative_numbers = true)]
    pub to_offset: Option<i64>,
    /// The first offset at or after a time: RFC 3339 (2026-12-01T10:00:00Z), a UTC
    /// YYYY-MM-DDTHH:MM:SS[.sss], or milliseconds since the epoch.
    #[arg(long, group = "to")]
    pub to_datetime: Option<String>,
    /// Move each committed offset by N (negative: back), clamped to the log.
    #[arg(long, group = "to", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets (without it, only show them).
    #[arg(long)]
    pub execute: bool,
}

#[derive(Debug, Subcommand)]
pub enum PartitionCommand {
    /// Elect leaders (ElectLeaders): preferred replicas back in charge, or an unclean leader
    /// for partitions that have none.
    ElectLeaders(ElectLeaders),
    /// Per partition: leader, replicas, ISR, log start, last stable offset, high watermark and
    /// the LSO lag (HW - LSO: what read_committed consumers cannot read yet).
    Describe(PartitionDescribe),
    /// Move partitions to other brokers (AlterPartitionReassignments, as
    /// kafka-reassign-partitions --execute), or cancel moves (--cancel).
    Reassign(Reassign),
    /// The partitions being moved: replicas, and those being added and removed
    /// (ListPartitionReassignments, as kafka-reassign-partitions --verify).
    Reassignments(PartitionDescribe),
    /// Move a broker's replicas to other log directories of that broker (AlterReplicaLogDirs,
    /// as kafka-reassign-partitions with log_dirs); the copy runs while the replica serves.
    MoveDir(MoveDir),
}

#[derive(Debug, Args)]
pub struct MoveDir {
    /// The broker whose replicas move.
    #[arg(long)]
    pub broker: i32,
    /// TOPIC:PARTITION=DIR : the replica's new log directory on the broker, as
    /// `cluster log-dirs` shows it; repeatable.
    #[arg(long = "move", value_name = "SPEC", required = true)]
    pub moves: Vec<String>,
    /// Wait until every replica is in its new directory, reporting progress on stderr.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up (exit 1) after this many milliseconds.
    #[arg(long, default_value_t = 600_000)]
    pub wait_timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct Reassign {
    /// TOPIC:PARTITION=BROKER,BROKER,... : the partition's new replicas, the first preferred
    /// as leader; repeatable. With --cancel: TOPIC:PARTITION.
    #[arg(long = "move", value_name = "SPEC")]
    pub moves: Vec<String>,
    /// A kafka-reassign-partitions JSON file:
    /// {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}; an optional
    /// "log_dirs" (one per replica, a directory or "any") also moves replicas between their
    /// brokers' log directories (AlterReplicaLogDirs).
    #[arg(long, value_name = "FILE")]
    pub reassignment_json_file: Option<std::path::PathBuf>,
    /// Cancel the moves of the partitions named (their replicas go back to the original set).
    #[arg(long)]
    pub cancel: bool,
    /// Refuse a target with another number of replicas than the partition has (KIP-860).
    #[arg(long)]
    pub disallow_replication_factor_change: bool,
    /// Wait until the moves complete, reporting progress on stderr.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up (exit 1) after this many milliseconds.
    #[arg(long, default_value_t = 600_000)]
    pub wait_timeout_ms: u64,
    /// Copy no faster than this many bytes/s (kafka-reassign-partitions --throttle): the moving
    /// replicas are named in their topics' *.replication.throttled.replicas and every broker
    /// involved gets *.replication.throttled.rate; all of it is removed once the moves
    /// complete. Needs --wait.
    #[arg(
        long,
        value_name = "BYTES_PER_S",
        requires = "wait",
        conflicts_with = "cancel"
    )]
    pub throttle: Option<u64>,
}

#[derive(Debug, Args)]
pub struct PartitionDescribe {
    /// TOPIC or TOPIC:P1,P2 ; repeatable. Default: every partition of every topic.
    #[arg(long)]
    pub topic: Vec<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("election").required(true).multiple(false)))]
pub struct ElectLeaders {
    /// The preferred (first) replica, where it is in sync.
    #[arg(long, group = "election")]
    pub preferred: bool,
    /// Any live replica for partitions without a leader (may lose acknowledged records).
    #[arg(long, group = "election")]
    pub unclean: bool,
    /// TOPIC or TOPIC:P1,P2 ; repeatable. Default: every partition that needs an election.
    #[arg(long)]
    pub topic: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Cluster id, controller, and every broker with its state.
    Info,
    /// Offline, under-replicated and under-min-ISR partitions and fenced brokers; exit 1 if any.
    Health,
    /// The metadata quorum: leader, term, voters (with their metadata directories) and
    /// observers with log end offsets and lag; `add-voter` (over --controllers).
    Quorum(QuorumArgs),
    /// Disk usage (DescribeLogDirs, as kafka-log-dirs.sh --describe): each broker's log
    /// directory with its total and usable bytes, and the size and lag of every partition in it.
    LogDirs(LogDirsArgs),
    /// Feature levels (ApiVersions, as kafka-features.sh describe): what the broker supports
    /// and what the cluster has finalized.
    Features,
    /// Raise finalized feature levels (UpdateFeatures, as kafka-features.sh upgrade), e.g.
    /// `--feature transaction.version=2`; all or none, upgrades only.
    Upgrade(UpgradeArgs),
    /// Even out replicas, preferred leaders and bytes per broker, keeping rack spread: shows
    /// the plan; `--execute` starts it (partition reassignment).
    Balance(BalanceArgs),
}

#[derive(Debug, Args)]
pub struct QuorumArgs {
    #[command(subcommand)]
    pub action: Option<QuorumCommand>,
}

#[derive(Debug, Subcommand)]
pub enum QuorumCommand {
    /// The quorum's status (the default).
    Describe,
    /// Add a controller voter (KIP-853 AddRaftVoter). With a voter's id: the voter's disk was
    /// wiped or replaced, and the leader records the metadata directory it now runs with; it
    /// then catches up and votes again. With a new id and `--address`: a controller started
    /// with controller.quorum.bootstrap.servers is added as a learner, catches up, and becomes
    /// a voter (metadata.version 7).
    AddVoter(AddVoterArgs),
    /// Remove a controller voter (KIP-853 RemoveRaftVoter, metadata.version 7); a removed
    /// leader steps down. Stop the node afterwards.
    RemoveVoter(RemoveVoterArgs),
}

#[derive(Debug, Args)]
pub struct AddVoterArgs {
    /// The node id.
    #[arg(long)]
    pub id: i32,
    /// Its metadata directory id (meta.properties directory.id); default: for a voter, the one
    /// it reports to the leader; for a new controller, the one it reports at `--address`.
    #[arg(long)]
    pub directory_id: Option<String>,
    /// A new controller's listener (host:port), as the other controllers reach it.
    #[arg(long)]
    pub address: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveVoterArgs {
    /// The voter's node id.
    #[arg(long)]
    pub id: i32,
    /// Remove it only if it still runs with this metadata directory id.
    #[arg(long)]
    pub directory_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// Start the moves (without it, only show the plan).
    #[arg(long)]
    pub execute: bool,
    /// With --execute: wait until every move completed, reporting progress on stderr.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up (exit 1) after this many milliseconds.
    #[arg(long, default_value_t = 600_000)]
    pub wait_timeout_ms: u64,
    /// Bytes per broker may differ from the mean by this percentage.
    #[arg(long, default_value_t = 10)]
    pub bytes_tolerance_percent: u32,
    /// Most partitions one plan moves or reorders.
    #[arg(long, default_value_t = 1_000)]
    pub max_moves: usize,
}

#[derive(Debug, Subcommand)]
pub enum BrokerCommand {
    /// Cordon broker ID, move every replica off it (rack-aware), wait for the moves, then
    /// unregister it once it is stopped (UnregisterBroker).
    Decommission(DecommissionArgs),
    /// Remove broker ID's registration (UnregisterBroker, as kafka-cluster.sh unregister); it
    /// must hold no replica and be stopped.
    Unregister {
        /// The broker's node.id.
        id: i32,
    },
    /// Place no new replicas on broker ID (KIP-1066: its cordoned.log.dirs=*): new topics and
    /// partitions, the balancer and internal topic growth pass it by; its replicas stay.
    Cordon {
        /// The broker's node.id.
        id: i32,
    },
    /// Undo `cordon` (removes its cordoned.log.dirs).
    Uncordon {
        /// The broker's node.id.
        id: i32,
    },
}

#[derive(Debug, Args)]
pub struct DecommissionArgs {
    /// The broker's node.id.
    pub id: i32,
    /// Show the plan only.
    #[arg(long)]
    pub dry_run: bool,
    /// Give up (exit 1) if the moves take longer than this many milliseconds.
    #[arg(long, default_value_t = 600_000)]
    pub wait_timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// NAME=LEVEL (repeatable): `transaction.version`, `shoal.metadata.version`.
    #[arg(long = "feature", value_name = "NAME=LEVEL")]
    pub features: Vec<String>,
    /// Check with the controller without changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct LogDirsArgs {
    /// Only these brokers (repeatable); every broker in the metadata if absent.
    #[arg(long = "broker")]
    pub broker_ids: Vec<i32>,
    /// Only these topics (repeatable); every partition if absent.
    #[arg(long = "topic")]
    pub topics: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add ACLs (CreateAcls): every resource x principal x host x operation.
    Create(AclCreate),
    /// The ACLs matching a filter (DescribeAcls); without a resource flag, of every resource.
    List(AclFilterArgs),
    /// Delete the ACLs matching a filter (DeleteAcls); without --force, only list them.
    Delete(AclDelete),
}

/// The resources of an ACL command, as kafka-acls names them; each flag is repeatable.
#[derive(Debug, Args)]
pub struct AclResources {
    /// A topic name (`*`: every topic); repeatable.
    #[arg(long)]
    pub topic: Vec<String>,
    /// A consumer group id (`*`: every group); repeatable.
    #[arg(long)]
    pub group: Vec<String>,
    /// The cluster (the resource named kafka-cluster).
    #[arg(long)]
    pub cluster: bool,
    /// A transactional id (`*`: every one); repeatable.
    #[arg(long)]
    pub transactional_id: Vec<String>,
}

#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("resource")
        .required(true)
        .multiple(true)
        .args(["topic", "group", "cluster", "transactional_id"])
))]
#[command(group(
    clap::ArgGroup::new("principal")
        .required(true)
        .multiple(true)
        .args(["allow_principal", "deny_principal"])
))]
pub struct AclCreate {
    #[command(flatten)]
    pub resources: AclResources,
    /// How the resource names match: literal (the name, or `*` for all) or prefixed (every
    /// name that starts with it).
    #[arg(long, value_name = "TYPE", default_value = "literal", value_parser = parse_pattern_type)]
    pub resource_pattern_type: PatternType,
    /// A principal to allow, Type:name (User:alice, User:* for every user); repeatable.
    #[arg(long, value_name = "PRINCIPAL", value_parser = parse_principal)]
    pub allow_principal: Vec<Principal>,
    /// A principal to deny, Type:name; repeatable (DENY wins over ALLOW).
    #[arg(long, value_name = "PRINCIPAL", value_parser = parse_principal)]
    pub deny_principal: Vec<Principal>,
    /// A host the allow principals may connect from; repeatable (default: *, any host).
    #[arg(long, value_name = "HOST", requires = "allow_principal", value_parser = parse_host)]
    pub allow_host: Vec<String>,
    /// A host the deny principals are denied from; repeatable (default: *, any host).
    #[arg(long, value_name = "HOST", requires = "deny_principal", value_parser = parse_host)]
    pub deny_host: Vec<String>,
    /// An operation, Kafka's names in any case (Read, Write, Describe, DescribeConfigs,
    /// IdempotentWrite, All, ...); repeatable (default: All, as kafka-acls).
    #[arg(long, value_name = "OPERATION", value_parser = parse_operation)]
    pub operation: Vec<Operation>,
}

/// Which ACLs `acl list` and `acl delete` mean; each part left out matches anything.
#[derive(Debug, Args)]
pub struct AclFilterArgs {
    #[command(flatten)]
    pub resources: AclResources,
    /// any (ACLs with exactly the given names, whatever their pattern type), match (the ACLs
    /// that apply to the named resources: literal, `*` and matching prefixes), literal or
    /// prefixed.
    #[arg(long, value_name = "TYPE", default_value = "any", value_parser = parse_pattern_filter)]
    pub resource_pattern_type: PatternFilter,
    /// Only ACLs of this principal, Type:name; repeatable.
    #[arg(long, value_name = "PRINCIPAL", value_parser = parse_principal)]
    pub principal: Vec<Principal>,
    /// Only ACLs for this host (`*` matches only ACLs for any host); repeatable.
    #[arg(long, value_name = "HOST", value_parser = parse_host)]
    pub host: Vec<String>,
    /// Only ACLs of this operation (All: only ACLs of operation ALL); repeatable.
    #[arg(long, value_name = "OPERATION", value_parser = parse_operation)]
    pub operation: Vec<Operation>,
    /// Only ALLOW or only DENY ACLs.
    #[arg(long, value_name = "allow|deny", value_parser = parse_permission)]
    pub permission: Option<Permission>,
}

#[derive(Debug, Args)]
pub struct AclDelete {
    #[command(flatten)]
    pub filter: AclFilterArgs,
    /// Delete (without it, the matching ACLs are listed and nothing is deleted; exit 1).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// The quotas whose entity matches (DescribeClientQuotas); no flag: every quota.
    List(QuotaList),
    /// Set quotas of one entity (AlterClientQuotas): every --quota applies, or none.
    Set(QuotaSet),
    /// Remove quotas of one entity (AlterClientQuotas); without --quota, every one it has.
    Delete(QuotaDelete),
}

/// A quota entity, as kafka-configs names it: a user, a client id, or both; each a name or
/// the default of its kind.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("entity")
        .required(true)
        .multiple(true)
        .args(["user", "user_default", "client_id", "client_id_default"])
))]
pub struct QuotaEntityArgs {
    /// A user (the principal's name, e.g. alice for User:alice; ANONYMOUS without
    /// authentication).
    #[arg(long, conflicts_with = "user_default")]
    pub user: Option<String>,
    /// The default user quota: each user without their own.
    #[arg(long)]
    pub user_default: bool,
    /// A client id (the client.id clients send).
    #[arg(long, conflicts_with = "client_id_default")]
    pub client_id: Option<String>,
    /// The default client id quota: each client id without its own.
    #[arg(long)]
    pub client_id_default: bool,
}

#[derive(Debug, Args)]
pub struct QuotaSet {
    #[command(flatten)]
    pub entity: QuotaEntityArgs,
    /// KEY=VALUE: producer_byte_rate or consumer_byte_rate, in bytes per second on each
    /// broker; repeatable.
    #[arg(long = "quota", value_name = "KEY=VALUE", required = true, value_parser = parse_quota_value)]
    pub quotas: Vec<(String, f64)>,
    /// Check with the controller without changing anything.
    #[arg(long)]
    pub validate_only: bool,
}

#[derive(Debug, Args)]
pub struct QuotaDelete {
    #[command(flatten)]
    pub entity: QuotaEntityArgs,
    /// A quota key to remove; repeatable (default: every quota the entity has).
    #[arg(long = "quota", value_name = "KEY")]
    pub keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct QuotaList {
    /// Only this user's quotas.
    #[arg(long, conflicts_with = "user_default")]
    pub user: Option<String>,
    /// Only default user quotas.
    #[arg(long)]
    pub user_default: bool,
    /// Only this client id's quotas.
    #[arg(long, conflicts_with = "client_id_default")]
    pub client_id: Option<String>,
    /// Only default client id quotas.
    #[arg(long)]
    pub client_id_default: bool,
    /// Only entities with exactly the given kinds (e.g. --user alice --strict leaves out
    /// alice's per-client-id quotas).
    #[arg(long)]
    pub strict: bool,
}

fn parse_quota_value(s: &str) -> Result<(String, f64), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    Ok((key.trim().to_string(), value))
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Set a user's SCRAM credentials (AlterUserScramCredentials): salted here, so the
    /// password never leaves this machine; an existing credential of a mechanism is replaced.
    Create(UserCreate),
    /// Delete a user's SCRAM credentials (AlterUserScramCredentials); without --mechanism,
    /// every one the user has.
    Delete(UserDelete),
    /// Users and their SCRAM mechanisms and iteration counts (DescribeUserScramCredentials);
    /// without a name, every user.
    List(UserList),
}

#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("password_source")
        .required(true)
        .multiple(false)
        .args(["password", "password_stdin"])
))]
pub struct UserCreate {
    /// The user name (the principal User:NAME once logged in).
    #[arg(value_parser = parse_user)]
    pub name: String,
    /// SCRAM-SHA-256 or SCRAM-SHA-512; repeatable (default: SCRAM-SHA-256).
    #[arg(long, value_name = "MECHANISM", value_parser = parse_mechanism)]
    pub mechanism: Vec<ScramMechanism>,
    /// The password (visible to other local users in the process list: prefer
    /// --password-stdin).
    #[arg(long, value_name = "PASSWORD", allow_hyphen_values = true, value_parser = parse_password)]
    pub password: Option<Password>,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// PBKDF2 iterations, 4096 to 16384 (Kafka's bounds).
    #[arg(long, value_name = "N", default_value_t = 8192, value_parser = parse_iterations)]
    pub iterations: u32,
}

#[derive(Debug, Args)]
pub struct UserDelete {
    #[arg(value_parser = parse_user)]
    pub name: String,
    /// A mechanism to delete; repeatable (default: every mechanism the user has).
    #[arg(long, value_name = "MECHANISM", value_parser = parse_mechanism)]
    pub mechanism: Vec<ScramMechanism>,
}

#[derive(Debug, Args)]
pub struct UserList {
    /// Users to list (default: every user with a SCRAM credential).
    #[arg(value_name = "NAME", value_parser = parse_user)]
    pub names: Vec<String>,
}

/// A password from the command line or stdin: never shown, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Refuses the empty password.
    pub fn new(password: String) -> Result<Password, String> {
        if password.is_empty() {
            return Err("the password is empty".to_string());
        }
        Ok(Password(password))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

pub fn parse_password(raw: &str) -> Result<Password, String> {
    Password::new(raw.to_string())
}

pub fn parse_user(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("the user name is empty".to_string());
    }
    Ok(raw.to_string())
}

/// A SCRAM mechanism by its SASL name, in any case (`SCRAM_SHA_512`, Kafka's enum name, too).
pub fn parse_mechanism(raw: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_name(&raw.trim().replace('_', "-")).map_err(|_| {
        let names: Vec<&str> = ScramMechanism::ALL.iter().map(|m| m.name()).collect();
        format!(
            "unknown SCRAM mechanism {raw:?} (one of {})",
            names.join(", ")
        )
    })
}

/// An iteration count within Kafka's bounds (the broker refuses any other).
pub fn parse_iterations(raw: &str) -> Result<u32, String> {
    let n: u32 = raw
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a number"))?;
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&n) {
        return Err(format!(
            "SCRAM iterations must be {MIN_ITERATIONS} to {MAX_ITERATIONS} (Kafka's bounds), not {n}"
        ));
    }
    Ok(n)
}

pub fn parse_principal(raw: &str) -> Result<Principal, String> {
    Principal::parse(raw).map_err(|e| e.to_string())
}

pub fn parse_operation(raw: &str) -> Result<Operation, String> {
    Operation::parse(raw).map_err(|e| e.to_string())
}

pub fn parse_permission(raw: &str) -> Result<Permission, String> {
    Permission::parse(raw).map_err(|e| e.to_string())
}

pub fn parse_host(raw: &str) -> Result<String, String> {
    let host = raw.trim();
    if host.is_empty() {
        return Err("the host is empty (use * for any host)".to_string());
    }
    Ok(host.to_string())
}

/// `literal` or `prefixed`: what an ACL is created with.
pub fn parse_pattern_type(raw: &str) -> Result<PatternType, String> {
    if raw.eq_ignore_ascii_case("any") || raw.eq_ignore_ascii_case("match") {
        return Err(format!(
            "{raw} is only a filter (acl list, acl delete): ACLs are created literal or prefixed"
        ));
    }
    PatternType::parse(raw).map_err(|e| e.to_string())
}

/// `any`, `match`, `literal` or `prefixed`: a filter's pattern type.
pub fn parse_pattern_filter(raw: &str) -> Result<PatternFilter, String> {
    if raw.eq_ignore_ascii_case("any") {
        return Ok(PatternFilter::Any);
    }
    if raw.eq_ignore_ascii_case("match") {
        return Ok(PatternFilter::Match);
    }
    PatternType::parse(raw)
        .map(PatternFilter::Exactly)
        .map_err(|_| format!("unknown pattern type {raw:?} (one of any, match, literal, prefixed)"))
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    /// A directory id is base64url and may start with '-': given as `--directory-id=ID` it is
    /// a value (shoal-chaos passes it so), given as a separate word clap takes it for a flag.
    #[test]
    fn a_directory_id_starting_with_a_dash_is_taken_with_equals() {
        let base = ["shoalctl", "cluster", "quorum", "add-voter", "--id", "3"];
        let joined = [&base[..], &["--directory-id=-2Nh61LaTv-UzbzEURKFDg"]].concat();
        assert!(Cli::try_parse_from(joined).is_ok());
        let split = [&base[..], &["--directory-id", "-2Nh61LaTv-UzbzEURKFDg"]].concat();
        assert!(Cli::try_parse_from(split).is_err());
    }
}
