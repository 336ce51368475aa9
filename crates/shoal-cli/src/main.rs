//! `shoalctl`: the admin CLI. Everything Kafka has an API for goes over the Kafka protocol (so
//! it works against Apache Kafka too); only the quorum status, which Kafka's protocol lacks
//! in this form, uses the controller gRPC API.

mod cli;
mod commands;
mod kafka;
mod output;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, TopicCommand};
use crate::output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completion { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "shoalctl",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let out = Output { format: cli.output };
    let timeout = Duration::from_millis(cli.timeout_ms);
    // The console tools run as long as stdin or the topic gives them records: no overall bound.
    let properties = || {
        kafka::security::ClientProperties::load(
            cli.command_config.as_deref(),
            &cli.command_property,
        )
    };
    let console = match &cli.command {
        Command::Topic(TopicCommand::Produce(args)) => Some(properties().and_then(|p| {
            commands::console::produce(&cli.brokers, &p.librdkafka(), args, &out, timeout)
        })),
        Command::Topic(TopicCommand::Consume(args)) => Some(properties().and_then(|p| {
            commands::console::consume(&cli.brokers, &p.librdkafka(), args, &out, timeout)
        })),
        _ => None,
    };
    if let Some(result) = console {
        return match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("shoalctl: error: {}", format!("{e:#}").replace('\n', " "));
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shoalctl: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One bound on the whole command as well, so nothing can hang.
    let whole = timeout * 6;
    match runtime.block_on(async {
        tokio::time::timeout(whole, commands::run(&cli, &out, timeout))
            .await
            .map_err(|_| anyhow::anyhow!("gave up after {whole:?}"))?
    }) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shoalctl: error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
