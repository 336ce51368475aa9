//! `shoal-bench`: load generator and latency recorder for Kafka-compatible brokers.

mod admin;
mod cli;
mod client;
mod consume;
mod produce;
mod produce_txn;
mod summary;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::cli::{Cli, Command, CommonArgs};
use crate::summary::Summary;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the chain of causes joined.
            eprintln!(
                "shoal-bench: error: {}",
                format!("{e:#}").replace('\n', " ")
            );
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Produce(args) => report(&args.common, &produce::run(&args)?),
        Command::ProduceTxn(args) => report(&args.produce.common, &produce_txn::run(&args)?),
        Command::Consume(args) => report(&args.common, &consume::run(&args)?),
        Command::CreateTopic(args) => {
            let msg = admin::create_topic(&args)?;
            if args.common.json {
                println!(
                    "{}",
                    serde_json::json!({"op": "create-topic", "result": msg})
                );
            } else {
                println!("{msg}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::MockCluster(args) => {
            let cluster = rdkafka::mocking::MockCluster::new(args.brokers)?;
            for spec in &args.topics {
                let (name, parts) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
                let parts: i32 = parts.parse()?;
                cluster.create_topic(name, parts, args.brokers.min(3))?;
            }
            println!("{}", cluster.bootstrap_servers());
            std::thread::sleep(Duration::from_secs_f64(args.max_seconds));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints the summary; a produce run in which records failed or were never delivered, or a
/// transaction was aborted, exits 1.
fn report(common: &CommonArgs, s: &Summary) -> anyhow::Result<ExitCode> {
    if common.json {
        println!("{}", s.to_json());
    } else {
        println!("{}", s.to_text());
    }
    let aborted = s.txn.as_ref().map_or(0, |t| t.aborted);
    if s.op != "consume" && (s.errors > 0 || s.undelivered > 0 || s.records == 0 || aborted > 0) {
        eprintln!(
            "shoal-bench: error: {} delivered, {} failed, {} undelivered, {} transactions aborted{}",
            s.records,
            s.errors,
            s.undelivered,
            aborted,
            s.first_error
                .as_deref()
                .or(s.txn.as_ref().and_then(|t| t.first_abort.as_deref()))
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
