//! The log's aborted-transaction index (see `txn_index`): one `.txnindex` per segment, each
//! entry in the segment holding its ABORT marker. The partition's producer state decides what
//! goes in (it knows where each transaction started and what else was open); the log stores
//! it, carries it through retention, truncation and compaction, and answers fetches from it.

use crate::error::{LogError, Result};
use crate::log::Log;
use crate::txn_index::{AbortedTxn, Collected, MAX_ABORTED_TXNS_COLLECTED};

impl Log {
    /// Records an aborted transaction in the segment holding its marker (`last_offset`,
    /// normally in the active segment). An I/O failure takes the log offline: the index would
    /// no longer say what the log holds, and a restart rebuilds it (see `txn_index`).
    pub fn append_aborted_txn(&mut self, txn: AbortedTxn) -> Result<()> {
        self.check_online()?;
        let first_base_offset = self
            .sealed
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| self.active.base_offset());
        if txn.last_offset >= self.log_end_offset || txn.last_offset < first_base_offset {
            return Err(self.out_of_range(txn.last_offset));
        }
        let segment = if txn.last_offset >= self.active.base_offset() {
            &mut self.active
        } else {
            let base = self.floor_sealed_base(txn.last_offset);
            match self.sealed.get_mut(&base) {
                Some(segment) => segment,
                None => return Err(self.out_of_range(txn.last_offset)),
            }
        };
        match segment.append_aborted_txn(&txn) {
            Err(error @ LogError::Io { .. }) => {
                let reason = format!("the transaction index cannot be written: {error}");
                tracing::error!(dir = %self.dir.display(), %reason, "log offline");
                self.offline = Some(reason);
                Err(error)
            }
            result => result,
        }
    }

    /// The aborted transactions a fetch of `[start_offset, upper_bound_offset)` must report
    /// (Kafka's `collectAbortedTransactions`): from the segment holding `start_offset` on,
    /// every entry with `last_offset >= start_offset` and `first_offset < upper_bound_offset`,
    /// until an entry's last stable offset reaches `upper_bound_offset`. At most
    /// `txn_index::MAX_ABORTED_TXNS_COLLECTED`; more is [`LogError::TooManyAbortedTxns`].
    pub fn collect_aborted_txns(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<Vec<AbortedTxn>> {
        self.check_online()?;
        let mut found = Vec::new();
        for segment in self.segments_from(start_offset) {
            let collected = segment.collect_aborted_txns(
                start_offset,
                upper_bound_offset,
                MAX_ABORTED_TXNS_COLLECTED,
                &mut found,
            )?;
            if collected == Collected::Complete {
                break;
            }
        }
        Ok(found)
    }

    /// Drops every entry whose marker is at or after `offset`, in every segment: the
    /// producer-state replay from `offset` writes them again.
    pub fn truncate_aborted_txns_from(&mut self, offset: i64) -> Result<()> {
        self.check_online()?;
        // Sealed segments change: a cleaning planned before must not swap in copies of them.
        self.truncations += 1;
        if offset < self.active.base_offset() {
            let floor = self.floor_sealed_base(offset);
            for segment in self.sealed.range_mut(floor..).map(|(_, s)| s) {
                segment.truncate_aborted_txns_from(offset)?;
            }
        }
        self.active.truncate_aborted_txns_from(offset)
    }

    /// fsyncs every transaction index written since its last fsync (before a producer snapshot
    /// that counts on them is written).
    pub fn flush_txn_indexes(&mut self) -> Result<()> {
        self.check_online()?;
        for segment in self.sealed.values_mut() {
            segment.flush_txn_index()?;
        }
        self.active.flush_txn_index()
    }
}
