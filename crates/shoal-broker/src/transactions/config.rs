//! Transaction coordinator and `__transaction_state` settings, by Kafka name, from the broker
//! settings (the schema in `shoal-config` holds their defaults and validators).

use std::collections::BTreeMap;

use shoal_txn::{TRANSACTION_STATE_TOPIC, TransactionVersion, TxnSettings};

use crate::groups::config::get;
use crate::internal_topic::InternalTopicSpec;

/// How `__transaction_state` is created the first time a client looks for a coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTopicConfig {
    /// `transaction.state.log.num.partitions`
    pub num_partitions: i32,
    /// `transaction.state.log.replication.factor`
    pub replication_factor: i16,
    /// `transaction.state.log.min.isr`
    pub min_isr: i32,
    /// `transaction.state.log.segment.bytes`
    pub segment_bytes: u64,
}

impl StateTopicConfig {
    /// Kafka's `TransactionLog` topic configs: compacted, uncompressed, its own min ISR.
    pub fn spec(&self) -> InternalTopicSpec {
        InternalTopicSpec {
            name: TRANSACTION_STATE_TOPIC,
            num_partitions: self.num_partitions,
            replication_factor: self.replication_factor,
            replication_factor_setting: "transaction.state.log.replication.factor",
            min_insync_replicas: Some(self.min_isr),
            configs: [
                ("cleanup.policy", "compact".to_string()),
                ("compression.type", "uncompressed".to_string()),
                ("unclean.leader.election.enable", "false".to_string()),
                ("segment.bytes", self.segment_bytes.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TxnConfig {
    pub state_topic: StateTopicConfig,
    /// The pure decisions' settings (`transaction.max.timeout.ms`,
    /// `transactional.id.expiration.ms`).
    pub settings: TxnSettings,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    pub abort_timed_out_interval_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`
    pub remove_expired_interval_ms: u64,
    /// `transaction.partition.verification.enable` (KIP-890 part 1)
    pub verification_enabled: bool,
    /// `transaction.max.partitions`: most partitions in one transaction.
    pub max_partitions_per_transaction: usize,
    /// `transaction.coordinator.max.open.transactions`: most open transactions per broker.
    pub max_open_transactions: usize,
}

impl TxnConfig {
    pub fn from_settings(settings: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let max_timeout_ms: i32 = get(settings, "transaction.max.timeout.ms")?;
        let expiration_ms: i64 = get(settings, "transactional.id.expiration.ms")?;
        let max_partitions: i32 = get(settings, "transaction.max.partitions")?;
        let max_open: i32 = get(settings, "transaction.coordinator.max.open.transactions")?;
        Ok(TxnConfig {
            state_topic: StateTopicConfig {
                num_partitions: get(settings, "transaction.state.log.num.partitions")?,
                replication_factor: get(settings, "transaction.state.log.replication.factor")?,
                min_isr: get(settings, "transaction.state.log.min.isr")?,
                segment_bytes: get(settings, "transaction.state.log.segment.bytes")?,
            },
            settings: TxnSettings {
                transaction_max_timeout_ms: max_timeout_ms,
                transactional_id_expiration_ms: expiration_ms,
                // Until the first image: then the cluster's finalized `transaction.version`
                // (`TxnCoordinator::set_transaction_version`).
                server_transaction_version: TransactionVersion::Tv0,
            },
            abort_timed_out_interval_ms: get(
                settings,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            )?,
            remove_expired_interval_ms: get(
                settings,
                "transaction.remove.expired.transaction.cleanup.interval.ms",
            )?,
            verification_enabled: get(settings, "transaction.partition.verification.enable")?,
            max_partitions_per_transaction: usize::try_from(max_partitions).unwrap_or(1),
            max_open_transactions: usize::try_from(max_open).unwrap_or(1),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn kafka_defaults_when_unset() {
        let c = TxnConfig::from_settings(&BTreeMap::new()).unwrap();
        assert_eq!(c.state_topic.num_partitions, 50);
        assert_eq!(c.state_topic.replication_factor, 3);
        assert_eq!(c.state_topic.min_isr, 2);
        assert_eq!(c.settings.transaction_max_timeout_ms, 900_000);
        assert_eq!(c.settings.transactional_id_expiration_ms, 604_800_000);
        assert_eq!(c.abort_timed_out_interval_ms, 10_000);
        assert!(c.verification_enabled);
        let spec = c.state_topic.spec();
        assert_eq!(spec.configs["cleanup.policy"], "compact");
        assert_eq!(spec.min_insync_replicas, Some(2));
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        for (name, value) in [
            ("transaction.state.log.num.partitions", "0"),
            ("transaction.max.timeout.ms", "-5"),
            ("transaction.partition.verification.enable", "maybe"),
        ] {
            let settings = BTreeMap::from([(name.to_string(), value.to_string())]);
            let e = TxnConfig::from_settings(&settings).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
    }
}
