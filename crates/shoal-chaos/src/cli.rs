//! Flags. Every bound a run has (duration, fault count, rates, timeouts) is a flag here.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::history::FaultKind;

#[derive(Debug, Parser)]
#[command(
    name = "shoal-chaos",
    version,
    about = "Fault injection against a Kafka-compatible cluster: an idempotent acks=all workload \
             and an exactly-once (transactional) workload, a nemesis that kills, pauses, \
             partitions and restarts nodes (transaction and group coordinators among them), and \
             a checker that reports lost, duplicated and reordered records and broken \
             transactions",
    after_help = "Workloads (--workload): idempotent (producers + a consumer group), eos \
                  (transactional producers, a consume-transform-produce group with \
                  send_offsets_to_transaction, read_committed readers), all (both at once).\n\n\
                  Exit codes: 0 no anomaly; 1 an anomaly: records lost, duplicated, reordered, \
                  moved or consumed again after a commit, or (eos) an aborted transaction read \
                  (G1a), part of a transaction read (G1b), a committed transaction incomplete, an \
                  input transformed twice or never, a read record vanished, a hung last stable \
                  offset, committed offsets going backwards; 2 bad flags or cluster unreachable; \
                  3 the run could not finish (a fault could not be injected or healed, the final \
                  read did not complete)."
)]
pub struct Args {
    /// Bootstrap servers of the cluster under test.
    #[arg(
        long,
        env = "SHOAL_BROKERS",
        default_value = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    )]
    pub brokers: String,

    /// Where the nodes run, which decides how faults are injected.
    #[arg(long, value_enum, default_value_t = TargetKind::Local)]
    pub target: TargetKind,

    /// Data directory of `make cluster` (holds node<N>.pid); local target.
    #[arg(long, default_value = "./.cluster")]
    pub cluster_dir: PathBuf,

    /// The script that (re)starts one node of the local cluster: `<script> start-node N DIR`.
    #[arg(long, default_value = "deploy/local-cluster.sh")]
    pub cluster_script: PathBuf,

    /// Internal (the compose target's replace fault runs it in a throwaway container that
    /// mounts a stopped node's volume): delete everything inside DIR, a Shoal data directory,
    /// and exit.
    #[arg(long, value_name = "DIR", hide = true)]
    pub empty_data_dir: Option<PathBuf>,

    /// Container names of nodes 1..N; compose target.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "shoal-node1,shoal-node2,shoal-node3"
    )]
    pub containers: Vec<String>,

    /// The Docker network a partition fault disconnects a container from; compose target.
    #[arg(long, default_value = "shoal-net")]
    pub network: String,

    /// Admin HTTP listener (host:port) of nodes 1..N, for /readyz.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:19644,127.0.0.1:19645,127.0.0.1:19646"
    )]
    pub admin: Vec<String>,

    /// Which workload runs: idempotent, eos (exactly-once) or all (both at once).
    #[arg(long, value_enum, default_value_t = Workload::Idempotent)]
    pub workload: Workload,

    /// Fault kinds, used in turn.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kill,pause,rolling"
    )]
    pub faults: Vec<FaultFlag>,

    /// How long the workload writes, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(10..=86_400))]
    pub duration_s: u64,

    /// Seconds from the start of one fault to the start of the next.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=3_600))]
    pub interval_s: u64,

    /// How long a kill, pause or partition lasts before it is healed, in seconds. Past the
    /// broker session timeout, so the victim is fenced.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub fault_s: u64,

    /// At most this many faults (a rolling restart counts once).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub max_faults: u32,

    /// Topic to create and write (default: chaos-<unix seconds>). Must not exist.
    #[arg(long)]
    pub topic: Option<String>,

    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=1_000))]
    pub partitions: i32,

    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=16))]
    pub replication_factor: i32,

    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=16))]
    pub min_insync_replicas: i32,

    /// Idempotent producers, each with its own producer id.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub producers: u32,

    /// Records per second per producer.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate: u32,

    /// Members of the consumer group (0: no group).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub consumers: u32,

    /// Transactional producers of the exactly-once workload's source stage.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub eos_producers: u32,

    /// Records per source transaction (spread over the partitions).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub eos_records_per_txn: u32,

    /// Every N-th transaction (source and transform) is aborted on purpose; 0: never.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub eos_abort_every: u32,

    /// Transactions per second per source producer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub eos_txn_rate: u32,

    /// Members of the consume-transform-produce group (0: no transform stage).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=8))]
    pub eos_transformers: u32,

    /// transaction.timeout.ms of every transactional producer: how long the coordinator lets a
    /// transaction stay open before aborting it.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1_000..=900_000))]
    pub eos_transaction_timeout_ms: u32,

    /// A last stable offset stuck below the high watermark longer than this is a hung
    /// transaction. Must exceed the transaction timeout plus the coordinator's abort interval
    /// (transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 s by default).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=3_600))]
    pub eos_hung_lso_s: u64,

    /// Bound on the transform stage's drain after the run: until the group's committed
    /// offsets reach the end of the input.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(5..=3_600))]
    pub eos_drain_timeout_s: u64,

    /// Seed for the choice of victims (default: from the clock; printed in the report).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Directory for report.json, summary.txt and timeline.svg (and history.jsonl).
    #[arg(long, default_value = "./chaos-report")]
    pub out: PathBuf,

    /// Bound on waiting for the cluster to heal (nodes ready, ISR full) and for the final read.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(5..=3_600))]
    pub heal_timeout_s: u64,

    /// librdkafka message.timeout.ms for the producers: how long a record may wait for a
    /// leader before the client reports it failed.
    #[arg(long, default_value_t = 60_000)]
    pub message_timeout_ms: u32,

    /// Also write history.jsonl: every ack, consume, commit and stored record (about 300 bytes
    /// per record, so 180 MB for 10 minutes at the default rate).
    #[arg(long)]
    pub keep_history: bool,

    /// Print the JSON report on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,

    /// Kafka client properties (`key=value` lines, `#` comments) for every client of the run,
    /// e.g. `security.protocol=SASL_SSL`, `sasl.mechanism`, `sasl.username`, `sasl.password`,
    /// `ssl.ca.location`: librdkafka's names. Applied after the run's own client settings.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,

    /// One librdkafka client setting, as kcat's -X; repeatable, applied after --command-config.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = crate::client_settings::parse_flag)]
    pub client_settings: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Idempotent acks=all producers and a consumer group.
    Idempotent,
    /// Transactional producers, a consume-transform-produce group, read_committed readers.
    Eos,
    /// Both at once.
    All,
}

impl Workload {
    pub fn idempotent(self) -> bool {
        matches!(self, Workload::Idempotent | Workload::All)
    }

    pub fn eos(self) -> bool {
        matches!(self, Workload::Eos | Workload::All)
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Idempotent => "idempotent",
            Workload::Eos => "eos",
            Workload::All => "all",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetKind {
    /// The processes of `make cluster` (signals by pid).
    Local,
    /// The containers of `make compose-up` (the docker CLI).
    Compose,
    /// No faults: the workload and the checker only (a baseline, or faults you inject
    /// yourself while it runs).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FaultFlag {
    /// SIGKILL a node, restart it after --fault-s.
    Kill,
    /// SIGSTOP a node (docker pause), resume it after --fault-s.
    Pause,
    /// Cut a node off the network (compose only), reconnect it after --fault-s.
    Partition,
    /// SIGTERM every node in turn (controlled shutdown), restarting each and waiting for a
    /// full ISR before the next.
    Rolling,
    /// SIGKILL a node, delete its data directory (a replaced disk), restart it with the same id
    /// after --fault-s; it re-replicates, and a controller gets its vote back with
    /// `shoalctl cluster quorum add-voter`.
    Replace,
    /// Move a partition on a node (a coordinator's partition in the coordinator rounds) off it
    /// and back with `shoalctl partition reassign --wait`: its replica is deleted and copied
    /// again, its leadership moves. Needs --replication-factor 2 or more.
    Reassign,
}

impl FaultFlag {
    pub fn kind(self) -> FaultKind {
        match self {
            FaultFlag::Kill => FaultKind::Kill,
            FaultFlag::Pause => FaultKind::Pause,
            FaultFlag::Partition => FaultKind::Partition,
            FaultFlag::Rolling => FaultKind::Restart,
            FaultFlag::Replace => FaultKind::Replace,
            FaultFlag::Reassign => FaultKind::Reassign,
        }
    }
}

impl Args {
    /// Checks that flags agree with each other; the message is for the user.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_insync_replicas > self.replication_factor {
            return Err(format!(
                "--min-insync-replicas {} is above --replication-factor {}",
                self.min_insync_replicas, self.replication_factor
            ));
        }
        if self.faults.contains(&FaultFlag::Partition) && self.target == TargetKind::Local {
            return Err(
                "--faults partition needs --target compose: processes on one loopback \
                        interface cannot be cut off from each other (use pause for a node that \
                        stops answering)"
                    .into(),
            );
        }
        if self.faults.contains(&FaultFlag::Reassign) && self.replication_factor < 2 {
            return Err(
                "--faults reassign needs --replication-factor 2 or more (it moves a replica off \
                 a node and back)"
                    .into(),
            );
        }
        let nodes = match self.target {
            TargetKind::Local | TargetKind::None => self.admin.len(),
            TargetKind::Compose => self.containers.len(),
        };
        if nodes == 0 {
            return Err("no nodes: --admin / --containers is empty".into());
        }
        if self.target == TargetKind::Compose && self.containers.len() != self.admin.len() {
            return Err(format!(
                "--containers names {} nodes but --admin {}",
                self.containers.len(),
                self.admin.len()
            ));
        }
        // Kafka's abort interval for timed-out transactions (10 s by default) comes on top.
        if self.workload.eos()
            && self.eos_hung_lso_s * 1000 <= u64::from(self.eos_transaction_timeout_ms) + 10_000
        {
            return Err(format!(
                "--eos-hung-lso-s {} must exceed --eos-transaction-timeout-ms {} plus the \
                 coordinator's 10 s abort interval",
                self.eos_hung_lso_s, self.eos_transaction_timeout_ms
            ));
        }
        if self.fault_s >= self.interval_s {
            return Err(format!(
                "--fault-s {} must be shorter than --interval-s {}",
                self.fault_s, self.interval_s
            ));
        }
        Ok(())
    }
}
