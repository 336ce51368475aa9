//! `shoal`: one Shoal node — controller, broker, or both.
//!
//! Start-up order matters for safety: metadata first (the Raft quorum decides what exists),
//! then the broker opens and recovers the logs the metadata assigns it, and only then does the
//! Kafka listener accept clients and `/readyz` turn green. Shutdown runs the other way: stop
//! accepting, finish requests already read, close logs cleanly, stop Raft.

mod add_scram;
mod admin_http;
mod admin_listener;
mod admin_token;
mod config;
mod fd_limit;
mod healthcheck;
mod listeners;
mod logging;
mod metrics;
mod node;
mod node_links;
mod oauth;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::config::{ConfigSources, NodeConfig};

/// A Kafka-compatible event streaming node.
#[derive(Debug, Parser)]
#[command(name = "shoal", version, about)]
struct Args {
    /// TOML file of Kafka-named settings (e.g. `num.partitions = 3`).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (Kafka's `log.dir`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// This node's id (`node.id`).
    #[arg(long, value_name = "ID")]
    node_id: Option<i32>,
    /// Sets any setting by its Kafka name; repeatable (like kafka-server-start.sh --override).
    #[arg(long = "override", value_name = "NAME=VALUE", value_parser = parse_override)]
    overrides: Vec<(String, String)>,
    /// A SCRAM credential a new cluster starts with, as Kafka's `kafka-storage format
    /// --add-scram`: `SCRAM-SHA-256=[name=admin,password=admin-secret]`; repeatable. Applied only
    /// when this start creates the cluster.
    #[arg(long = "add-scram", value_name = "MECHANISM=[name=…,password=…]", value_parser = add_scram::parse_add_scram)]
    add_scram: Vec<(String, shoal_sasl::ScramCredential)>,
    /// A feature level a new cluster starts at instead of this binary's newest, as Kafka's
    /// `kafka-storage format --feature`: `metadata.version=2`, `transaction.version=0`;
    /// repeatable. Applied only when this start creates the cluster (raise later with
    /// UpdateFeatures, `shoalctl cluster features upgrade`).
    #[arg(long = "feature", value_name = "NAME=LEVEL", value_parser = parse_feature)]
    features: Vec<(String, i16)>,
    /// Probe this node's /readyz (the container HEALTHCHECK) and exit: 0 ready, 1 not.
    #[arg(long)]
    healthcheck: bool,
}

fn parse_feature(raw: &str) -> Result<(String, i16), String> {
    let (name, level) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?} must look like name=level"))?;
    let level = level
        .trim()
        .parse::<i16>()
        .map_err(|_| format!("{raw:?}: the level must be a small integer"))?;
    Ok((name.trim().to_string(), level))
}

fn parse_override(raw: &str) -> Result<(String, String), String> {
    let (name, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?} must look like name=value"))?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut overrides = args.overrides;
    if let Some(dir) = args.data_dir {
        overrides.push(("log.dir".into(), dir.display().to_string()));
    }
    if let Some(id) = args.node_id {
        overrides.push(("node.id".into(), id.to_string()));
    }
    let sources = ConfigSources {
        file: args.config,
        env: std::env::vars()
            .filter(|(k, _)| k.starts_with("SHOAL_"))
            .collect(),
        overrides,
    };
    let config = match NodeConfig::load(&sources) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("shoal: configuration error: {error:#}");
            return ExitCode::from(2);
        }
    };
    if args.healthcheck {
        return match healthcheck::ready(&config) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("shoal: not ready");
                ExitCode::FAILURE
            }
            Err(error) => {
                eprintln!("shoal: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    logging::init();
    if let Err(error) = metrics::install() {
        // Serving clients matters more than exporting numbers about it.
        tracing::error!(%error, "cannot install the metrics recorder; /metrics stays empty");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shoal: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(node::run(config, args.add_scram, args.features)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("shoal stopped: {error:#}");
            eprintln!("shoal: {error:#}");
            ExitCode::FAILURE
        }
    }
}
