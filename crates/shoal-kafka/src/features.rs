//! Feature levels as ApiVersions v3+ reports them (KIP-584): the ranges this binary supports
//! and the cluster's finalized levels, with the metadata offset they were read at as the epoch.
//!
//! **Why here.** This crate answers ApiVersions itself (it is about framing, and every client
//! sends it first), but the levels live in the cluster's metadata. The broker publishes each new
//! image's levels into a [`SharedFeatures`]; every listener reads the latest on each ApiVersions.
//! Clients act on them: a Kafka 4 producer speaks transaction version 2 only once
//! `transaction.version` is finalized at 2.

use std::sync::{Arc, RwLock};

/// One snapshot of the levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureLevels {
    /// (name, min level, max level) this binary supports.
    pub supported: Vec<(String, i16, i16)>,
    /// (name, level) finalized in the cluster; level 0 is left out, as Kafka does.
    pub finalized: Vec<(String, i16)>,
    /// The metadata offset the finalized levels were read at; -1 before any.
    pub epoch: i64,
}

impl Default for FeatureLevels {
    fn default() -> Self {
        FeatureLevels {
            supported: Vec::new(),
            finalized: Vec::new(),
            epoch: -1,
        }
    }
}

/// The latest [`FeatureLevels`], shared by the broker (writer) and every listener (readers).
#[derive(Debug, Clone, Default)]
pub struct SharedFeatures(Arc<RwLock<Arc<FeatureLevels>>>);

impl SharedFeatures {
    /// Replaces the levels; an older epoch than the current one is ignored (images only move on).
    pub fn publish(&self, levels: FeatureLevels) {
        let mut current = self.0.write().unwrap_or_else(|p| p.into_inner());
        if levels.epoch >= current.epoch {
            *current = Arc::new(levels);
        }
    }

    pub fn current(&self) -> Arc<FeatureLevels> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(epoch: i64, level: i16) -> FeatureLevels {
        FeatureLevels {
            supported: vec![("transaction.version".into(), 0, 2)],
            finalized: vec![("transaction.version".into(), level)],
            epoch,
        }
    }

    #[test]
    fn the_newest_epoch_wins() {
        let shared = SharedFeatures::default();
        assert_eq!(shared.current().epoch, -1);
        shared.publish(levels(5, 2));
        shared.publish(levels(3, 1));
        assert_eq!(
            *shared.current(),
            levels(5, 2),
            "an older image never replaces a newer"
        );
        shared.clone().publish(levels(7, 2));
        assert_eq!(shared.current().epoch, 7, "clones share the levels");
    }
}
