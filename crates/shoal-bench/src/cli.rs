//! Command-line interface of `shoal-bench`.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load generator and latency recorder for Kafka-compatible brokers, driven by librdkafka.
#[derive(Debug, Parser)]
#[command(name = "shoal-bench", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Produce fixed-size records as fast as the client allows (or at --rate) and record
    /// per-record latency (send -> delivery report).
    Produce(ProduceArgs),
    /// Produce the same records in transactions of --records-per-txn records each
    /// (begin -> produce -> commit_transaction) and record the commit latency too.
    ProduceTxn(ProduceTxnArgs),
    /// Read records from the beginning of every partition of a topic (assign(), no group), or
    /// as a consumer group member (--group).
    Consume(ConsumeArgs),
    /// Create a topic with the AdminClient (CreateTopics).
    CreateTopic(CreateTopicArgs),
    /// Run librdkafka's in-process mock cluster and print its bootstrap servers (for testing
    /// the benchmark client itself and measuring its ceiling; not a Kafka broker).
    #[command(hide = true)]
    MockCluster(MockClusterArgs),
}

/// Options shared by every subcommand that talks to a cluster.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Bootstrap brokers, comma separated host:port.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,

    /// Extra librdkafka properties, `key=value` (repeatable); applied last.
    #[arg(short = 'X', long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,

    /// Seconds to wait for the cluster's metadata before giving up.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub connect_timeout: f64,

    /// Print one JSON object instead of the human-readable summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    #[value(name = "0")]
    Zero,
    #[value(name = "1")]
    One,
    #[value(name = "all", alias = "-1")]
    All,
}

impl Acks {
    /// The value of librdkafka's `acks` property.
    pub fn as_config(self) -> &'static str {
        match self {
            Acks::Zero => "0",
            Acks::One => "1",
            Acks::All => "all",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The value of librdkafka's `compression.type` property.
    pub fn as_config(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// How the produce benchmark drives librdkafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProducerMode {
    /// BaseProducer; delivery reports served by a dedicated polling thread.
    Thread,
    /// BaseProducer; the sending thread serves delivery reports itself between sends.
    Inline,
    /// FutureProducer + a current-thread tokio runtime, one future per record.
    Future,
}

#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Topic to produce to (must exist, or be auto-created by the broker).
    #[arg(long)]
    pub topic: String,

    /// Number of records to send (the run also stops at --max-seconds).
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,

    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,

    /// Number of distinct keys (8-byte big-endian record index modulo K); no keys if absent.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub key_space: Option<u64>,

    /// Producer acks (`-1` is accepted for `all`).
    #[arg(long, value_enum, default_value = "1", allow_hyphen_values = true)]
    pub acks: Acks,

    /// librdkafka `linger.ms`.
    #[arg(long, default_value_t = 5.0)]
    pub linger_ms: f64,

    /// librdkafka `batch.size` (bytes per partition batch); librdkafka's default if absent.
    #[arg(long)]
    pub batch_size: Option<u64>,

    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compression,

    /// Stop sending after this many seconds even if --records were not all sent.
    #[arg(long, default_value_t = 60.0, value_parser = parse_seconds)]
    pub max_seconds: f64,

    /// Target records/s (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,

    /// librdkafka `queue.buffering.max.messages`: records queued or in flight in the client.
    /// Latency of a saturating producer includes waiting in this queue.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_queued: u64,

    /// Client driving mode (see `ProducerMode`).
    #[arg(long, value_enum, default_value = "inline")]
    pub mode: ProducerMode,

    /// Seconds to wait for outstanding deliveries after the last send.
    #[arg(long, default_value_t = 30.0, value_parser = parse_seconds)]
    pub flush_seconds: f64,

    /// Producers, each with its own client and thread (for `produce-txn`, its own
    /// transactional.id too); --records and --rate are split between them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub producers: u32,
}

impl ProduceArgs {
    pub fn max_duration(&self) -> Duration {
        Duration::from_secs_f64(self.max_seconds)
    }
}

/// `produce-txn`: every `produce` option (records, record size, keys, linger, rate, ...) plus
/// the transaction's. `--acks` defaults to `all` here, the only value transactions allow;
/// `--flush-seconds` is hidden and unused (each commit waits for its records, bounded by
/// `--txn-call-seconds`); `--mode future` is refused.
#[derive(Debug, Clone, Args)]
#[command(
    mut_arg("acks", |a| a.default_value("all")),
    mut_arg("flush_seconds", |a| a.hide(true))
)]
pub struct ProduceTxnArgs {
    #[command(flatten)]
    pub produce: ProduceArgs,

    /// Records per transaction (the last one of each producer may be shorter).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub records_per_txn: u64,

    /// transactional.id of producer i is `PREFIX-i`; default `shoal-bench-<pid>-<unix ms>`,
    /// unique per run so that no run fences another's producers.
    #[arg(long)]
    pub transactional_id_prefix: Option<String>,

    /// librdkafka `transaction.timeout.ms`: the broker aborts a transaction open this long.
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1000..=900_000))]
    pub transaction_timeout_ms: u64,

    /// Bound of each init_transactions, commit_transaction and abort_transaction call
    /// (retriable failures are retried within it).
    #[arg(long, default_value_t = 30.0, value_parser = parse_seconds)]
    pub txn_call_seconds: f64,

    /// Commit without overriding linger.ms: the transaction's last batches wait out their
    /// linger before the commit, unlike librdkafka's and Java's own commits.
    #[arg(long)]
    pub commit_lingers: bool,
}

impl ProduceTxnArgs {
    pub fn txn_call_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.txn_call_seconds)
    }
}

#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    #[arg(long)]
    pub topic: String,

    /// Stop after this many records (also at --max-seconds).
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,

    #[arg(long, default_value_t = 60.0, value_parser = parse_seconds)]
    pub max_seconds: f64,

    /// Keep waiting for --records even when every partition has reached its end.
    #[arg(long)]
    pub no_stop_at_eof: bool,

    /// Consume as a member of this consumer group (subscribe, auto-commit, a final sync
    /// commit) instead of assigning every partition; a new group starts at the beginning.
    #[arg(long)]
    pub group: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CreateTopicArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    #[arg(long)]
    pub topic: String,

    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,

    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: i32,

    /// A topic config, NAME=VALUE (repeatable), e.g. `--topic-config min.insync.replicas=2`
    /// (`-X/--config` sets librdkafka properties).
    #[arg(long = "topic-config", value_name = "NAME=VALUE", value_parser = parse_topic_config)]
    pub configs: Vec<(String, String)>,

    /// Succeed if the topic already exists.
    #[arg(long)]
    pub if_not_exists: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MockClusterArgs {
    #[arg(long, default_value_t = 1)]
    pub brokers: i32,
    /// Topics to create, NAME:PARTITIONS (repeatable).
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Exit after this many seconds.
    #[arg(long, default_value_t = 3600.0, value_parser = parse_seconds)]
    pub max_seconds: f64,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if v.is_finite() && v > 0.0 && v < 1e7 {
        Ok(v)
    } else {
        Err(format!("{s:?}: must be a positive number of seconds"))
    }
}

fn parse_topic_config(raw: &str) -> Result<(String, String), String> {
    let (name, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?} must look like name=value"))?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("shoal-bench").chain(args.iter().copied()))
    }

    #[test]
    fn produce_defaults() {
        let cli = parse(&["produce", "--topic", "t"]).unwrap();
        let Command::Produce(p) = cli.command else {
            panic!("not produce")
        };
        assert_eq!(p.topic, "t");
        assert_eq!(p.records, 1_000_000);
        assert_eq!(p.record_size, 100);
        assert_eq!(p.acks, Acks::One);
        assert_eq!(p.linger_ms, 5.0);
        assert_eq!(p.compression, Compression::None);
        assert_eq!(p.max_duration(), Duration::from_secs(60));
        assert_eq!(p.mode, ProducerMode::Inline);
        assert!(p.key_space.is_none());
        assert!(!p.common.json);
    }

    #[test]
    fn produce_full() {
        let cli = parse(&[
            "produce",
            "--brokers",
            "h:1,h:2",
            "--topic",
            "t",
            "--records",
            "5000000",
            "--record-size",
            "512",
            "--acks",
            "all",
            "--linger-ms",
            "0",
            "--batch-size",
            "65536",
            "--compression",
            "zstd",
            "--max-seconds",
            "2.5",
            "--key-space",
            "1000",
            "--json",
            "-X",
            "socket.nagle.disable=true",
            "--mode",
            "thread",
        ])
        .unwrap();
        let Command::Produce(p) = cli.command else {
            panic!("not produce")
        };
        assert_eq!(p.common.brokers, "h:1,h:2");
        assert_eq!(p.records, 5_000_000);
        assert_eq!(p.record_size, 512);
        assert_eq!(p.acks.as_config(), "all");
        assert_eq!(p.linger_ms, 0.0);
        assert_eq!(p.batch_size, Some(65536));
        assert_eq!(p.compression.as_config(), "zstd");
        assert_eq!(p.max_duration(), Duration::from_millis(2500));
        assert_eq!(p.key_space, Some(1000));
        assert!(p.common.json);
        assert_eq!(
            p.common.config,
            vec![("socket.nagle.disable".to_string(), "true".to_string())]
        );
        assert_eq!(p.mode, ProducerMode::Thread);
    }

    #[test]
    fn acks_values() {
        for (arg, want) in [("0", "0"), ("1", "1"), ("all", "all"), ("-1", "all")] {
            let cli = parse(&["produce", "--topic", "t", "--acks", arg]).unwrap();
            let Command::Produce(p) = cli.command else {
                panic!("not produce")
            };
            assert_eq!(p.acks.as_config(), want);
        }
        assert!(parse(&["produce", "--topic", "t", "--acks", "2"]).is_err());
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse(&["produce"]).is_err(), "topic is required");
        assert!(parse(&["produce", "--topic", "t", "--compression", "brotli"]).is_err());
        assert!(parse(&["produce", "--topic", "t", "--max-seconds", "0"]).is_err());
        assert!(parse(&["produce", "--topic", "t", "--max-seconds", "-1"]).is_err());
        assert!(parse(&["produce", "--topic", "t", "--key-space", "0"]).is_err());
        assert!(parse(&["produce", "--topic", "t", "-X", "novalue"]).is_err());
        assert!(parse(&["create-topic", "--topic", "t", "--partitions", "0"]).is_err());
    }

    #[test]
    fn produce_txn_defaults_and_values() {
        let cli = parse(&["produce-txn", "--topic", "t"]).unwrap();
        let Command::ProduceTxn(t) = cli.command else {
            panic!("not produce-txn")
        };
        assert_eq!(t.produce.topic, "t");
        assert_eq!(t.produce.acks, Acks::All, "transactions need acks=all");
        assert_eq!(t.produce.records, 1_000_000);
        assert_eq!(t.records_per_txn, 100);
        assert_eq!(t.produce.producers, 1);
        assert!(t.transactional_id_prefix.is_none());
        assert_eq!(t.transaction_timeout_ms, 60_000);
        assert_eq!(t.txn_call_timeout(), Duration::from_secs(30));
        // `produce` keeps its own default.
        let Command::Produce(p) = parse(&["produce", "--topic", "t"]).unwrap().command else {
            panic!("not produce")
        };
        assert_eq!(p.acks, Acks::One);

        let cli = parse(&[
            "produce-txn",
            "--topic",
            "t",
            "--records-per-txn",
            "1000",
            "--producers",
            "4",
            "--rate",
            "50000",
            "--key-space",
            "10",
            "--transactional-id-prefix",
            "run7",
            "--json",
        ])
        .unwrap();
        let Command::ProduceTxn(t) = cli.command else {
            panic!("not produce-txn")
        };
        assert_eq!((t.records_per_txn, t.produce.producers), (1000, 4));
        assert_eq!((t.produce.rate, t.produce.key_space), (50_000, Some(10)));
        assert_eq!(t.transactional_id_prefix.as_deref(), Some("run7"));
        assert!(t.produce.common.json);

        assert!(parse(&["produce-txn", "--topic", "t", "--records-per-txn", "0"]).is_err());
        assert!(parse(&["produce-txn", "--topic", "t", "--producers", "0"]).is_err());
        assert!(
            parse(&[
                "produce-txn",
                "--topic",
                "t",
                "--transaction-timeout-ms",
                "5"
            ])
            .is_err()
        );
    }

    #[test]
    fn consume_and_create_topic() {
        let cli = parse(&[
            "consume",
            "--topic",
            "t",
            "--records",
            "10",
            "--max-seconds",
            "5",
        ])
        .unwrap();
        let Command::Consume(c) = cli.command else {
            panic!("not consume")
        };
        assert_eq!(
            (c.records, c.max_seconds, c.no_stop_at_eof),
            (10, 5.0, false)
        );

        let cli = parse(&[
            "create-topic",
            "--topic",
            "t",
            "--partitions",
            "8",
            "--replication-factor",
            "3",
        ])
        .unwrap();
        let Command::CreateTopic(c) = cli.command else {
            panic!("not create-topic")
        };
        assert_eq!((c.partitions, c.replication_factor), (8, 3));
        assert_eq!(c.common.brokers, "127.0.0.1:9092");
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
