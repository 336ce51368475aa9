//! Helpers shared by the MetaNode integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use shoal_meta::{
    BrokerRegistrationRequest, CreateTopic, Endpoint, MetaConfig, MetaNode, MetadataImage,
};
use uuid::Uuid;

pub fn config(dir: &Path) -> MetaConfig {
    let mut config = MetaConfig::new(1, dir.join("meta"));
    config.request_timeout_ms = 10_000;
    config
}

pub async fn start(dir: &Path) -> Arc<MetaNode> {
    MetaNode::start(config(dir)).await.expect("node starts")
}

pub fn broker(id: i32) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        broker_id: id,
        incarnation_id: Uuid::from_u128(0xb0b0_0000 + id as u128),
        listeners: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092 + id as u16,
        }],
        rack: None,
    }
}

/// Registers brokers `1..=n`.
pub async fn register_brokers(node: &MetaNode, n: i32) {
    for id in 1..=n {
        node.controller()
            .register_broker(broker(id))
            .await
            .expect("broker registers");
    }
}

pub fn topic(name: &str, partitions: i32, rf: i16) -> CreateTopic {
    CreateTopic {
        name: name.into(),
        num_partitions: Some(partitions),
        replication_factor: Some(rf),
        ..Default::default()
    }
}

pub fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The image without the applied index (a restart may append a leader's blank entry).
pub fn content(image: &MetadataImage) -> MetadataImage {
    let mut image = image.clone();
    image.last_applied_index = 0;
    image
}

/// Multi-node tests of one binary run one at a time: several three-voter clusters with 50 ms
/// heartbeats on a loaded 2-core CI machine starve each other into needless elections.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
