//! Assembles a node from its configuration and runs it until SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shoal_broker::{AdvertisedListener, Broker, BrokerConfig, BrokerHandler, supported_apis};
use shoal_kafka::{KafkaServer, ServerConfig};
use shoal_meta::{MetaConfig, MetaNode};
use tokio::sync::watch;

use crate::admin_http::{AdminServer, Readiness};
use crate::config::NodeConfig;
use crate::listeners::{Listener, parse_listeners};

/// Fires once when the node starts shutting down; every server waits on a clone of it.
#[derive(Clone)]
struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let node_id = config.node_id()?;
    let roles = config.string("process.roles")?.replace(' ', "");
    if roles != "broker,controller" && roles != "controller,broker" {
        bail!(
            "process.roles={roles:?}: this version runs combined nodes only (broker,controller); \
             separate roles arrive with the multi-node controller quorum"
        );
    }
    let data_dir = config.data_dir()?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;

    let controller_names: Vec<String> = config
        .string("controller.listener.names")?
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let listeners = parse_listeners(config.string("listeners")?)?;
    let kafka_listeners: Vec<Listener> = listeners
        .iter()
        .filter(|l| !controller_names.contains(&l.name))
        .cloned()
        .collect();
    if kafka_listeners.is_empty() {
        bail!("listeners has no Kafka (non-controller) listener");
    }
    let advertised = match config.get("advertised.listeners") {
        Some(spec) if !spec.trim().is_empty() => parse_listeners(spec)?,
        _ => kafka_listeners.clone(),
    };
    for l in &advertised {
        if !kafka_listeners.iter().any(|k| k.name == l.name) {
            bail!(
                "advertised listener {} has no matching entry in listeners",
                l.name
            );
        }
    }

    let settings = config.values().clone();
    let controller_listen_address = listeners
        .iter()
        .find(|l| controller_names.contains(&l.name))
        .map(|l| {
            let host = if l.host.is_empty() {
                "0.0.0.0"
            } else {
                &l.host
            };
            format!("{host}:{}", l.port)
        });
    let voters = shoal_meta::parse_quorum_voters(config.string("controller.quorum.voters")?)?;
    let meta = MetaNode::start(MetaConfig {
        cluster_id: config.get("cluster.id").map(str::to_string),
        broker_defaults: settings.clone(),
        voters,
        listen_address: controller_listen_address,
        ..MetaConfig::new(node_id, data_dir.join("meta"))
    })
    .await
    .map_err(|e| anyhow::anyhow!("metadata quorum failed to start: {e}"))?;

    let explicit_settings: Vec<String> = settings
        .keys()
        .filter(|name| !config.is_default(name))
        .cloned()
        .collect();
    let broker_config = BrokerConfig {
        node_id,
        data_dir: data_dir.clone(),
        advertised_listeners: advertised
            .iter()
            .map(|l| AdvertisedListener {
                name: l.name.clone(),
                host: if l.host.is_empty() {
                    "127.0.0.1".into()
                } else {
                    l.host.clone()
                },
                port: l.port,
            })
            .collect(),
        rack: config.get("broker.rack").map(str::to_string),
        auto_create_topics_enable: config.bool("auto.create.topics.enable")?,
        delete_topic_enable: config.bool("delete.topic.enable")?,
        fetch_max_bytes: config.usize("fetch.max.bytes")?,
        maintenance_interval_ms: u64::try_from(
            config.i64("log.flush.scheduler.interval.ms")?.max(10),
        )
        .unwrap_or(1000),
        high_watermark_checkpoint_interval_ms: u64::try_from(
            config
                .i64("replica.high.watermark.checkpoint.interval.ms")?
                .max(10),
        )
        .unwrap_or(5000),
        retention_check_interval_ms: u64::try_from(
            config.i64("log.retention.check.interval.ms")?.max(10),
        )
        .unwrap_or(300_000),
        settings,
        explicit_settings,
    };
    let broker = Broker::start(broker_config, Arc::clone(&meta)).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let shutdown = ShutdownSignal(stop_rx);
    let handler = Arc::new(BrokerHandler::new(Arc::clone(&broker)));
    let mut servers = Vec::new();
    for listener in &kafka_listeners {
        let server_config = ServerConfig {
            socket_request_max_bytes: config.usize("socket.request.max.bytes")?,
            max_connections: config.usize("max.connections")?,
            max_inflight_per_connection: config.usize("queued.max.requests.per.connection")?,
            idle_timeout_ms: u64::try_from(config.i64("connections.max.idle.ms")?.max(1000))
                .unwrap_or(600_000),
            ..ServerConfig::new(listener.name.clone(), listener.bind_addr()?)
        };
        let server = KafkaServer::bind(server_config, supported_apis(), Arc::clone(&handler))
            .await
            .with_context(|| {
                format!(
                    "cannot bind Kafka listener {}://{}:{}",
                    listener.name, listener.host, listener.port
                )
            })?;
        tracing::info!(listener = %listener.name, addr = %server.local_addr(), "Kafka listener up");
        let signal = shutdown.clone();
        servers.push(tokio::spawn(server.run(signal.wait())));
    }

    let readiness = Arc::new(Readiness::default());
    let admin_addr = config
        .string("admin.listener")?
        .parse()
        .with_context(|| "admin.listener must be host:port with a numeric host")?;
    let admin = AdminServer::bind(admin_addr, Arc::clone(&readiness), Arc::clone(&meta)).await?;
    tracing::info!(addr = %admin.local_addr()?, "admin listener up");
    let admin_task = tokio::spawn(admin.run(shutdown.clone().wait()));

    readiness.set_ready(true);
    tracing::info!(
        node_id,
        cluster_id = %meta.cluster_id(),
        startup_ms = started.elapsed().as_millis() as u64,
        "shoal node ready"
    );

    wait_for_signal().await?;
    tracing::info!("shutting down");
    readiness.set_ready(false);
    broker.controlled_shutdown(Duration::from_secs(5)).await;
    let _ = stop_tx.send(true);
    let drain = Duration::from_millis(
        u64::try_from(config.i64("shutdown.timeout.ms")?.max(0)).unwrap_or(10_000),
    );
    for server in servers {
        match tokio::time::timeout(drain, server).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "Kafka listener task failed"),
            Err(_) => tracing::warn!("Kafka listener did not drain in time"),
        }
    }
    broker.shutdown().await;
    if let Err(error) = meta.shutdown().await {
        tracing::warn!(%error, "metadata quorum shutdown failed");
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), admin_task).await;
    tracing::info!("shutdown complete");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
