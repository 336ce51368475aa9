//! `TxnReplay`: a `__transaction_state` partition read back into its transactional ids.
//!
//! When a broker becomes the leader of a `__transaction_state` partition it coordinates every
//! transactional id that hashes there, and must first know their state: the loader feeds the
//! partition's records from the log start in offset order, and only the latest value per id is
//! kept (a later record replaces an earlier one, a tombstone removes the id), so memory is bounded
//! by the live ids, not by the history the log still holds. Meanwhile the coordinator answers
//! COORDINATOR_LOAD_IN_PROGRESS.
//!
//! A record that does not decode is counted and skipped, as for `__consumer_offsets` (rule 10 of
//! docs/architecture.md): one bad record must not cost every transactional id of the partition.
//! A key of a version this code does not know is a newer release's and is skipped silently.
//!
//! After the load, transactions that were decided but not finished (PrepareCommit, PrepareAbort)
//! must have their markers written again before they complete ([`LoadedTransactions::to_complete`],
//! as Kafka's coordinator resumes them); open ones (Ongoing) run on and time out as usual.

use std::collections::{BTreeMap, HashMap};

use crate::metadata::TransactionMetadata;
use crate::records::{TxnRecord, decode_record};
use crate::state::TransactionState;

/// The records of one partition, replayed.
#[derive(Debug, Default)]
pub struct TxnReplay {
    ids: HashMap<String, TransactionMetadata>,
    records: usize,
    skipped: usize,
    last_skip: Option<String>,
}

/// What a finished replay hands to the coordinator.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoadedTransactions {
    pub metadata: BTreeMap<String, TransactionMetadata>,
    /// Ids whose transaction was decided (PrepareCommit / PrepareAbort) but whose markers may
    /// not all be written: the coordinator writes them again, then completes the transaction.
    pub to_complete: Vec<String>,
    pub records: usize,
    pub skipped: usize,
}

impl TxnReplay {
    pub fn new() -> Self {
        Self::default()
    }

    /// One record (`value` `None` is a tombstone).
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.records += 1;
        match decode_record(key, value) {
            Ok(TxnRecord::Value {
                transactional_id,
                value,
            }) => match TransactionMetadata::from_log_value(&transactional_id, &value) {
                // A Dead value is not written (expiration writes a tombstone); read as one.
                Ok(meta) if meta.state == TransactionState::Dead => {
                    self.ids.remove(&transactional_id);
                }
                Ok(meta) => {
                    self.ids.insert(transactional_id, meta);
                }
                Err(e) => self.skip(&transactional_id, &e.to_string()),
            },
            Ok(TxnRecord::Tombstone { transactional_id }) => {
                self.ids.remove(&transactional_id);
            }
            Ok(TxnRecord::UnknownKeyVersion(_)) => {}
            Err(e) => self.skip("(undecodable key or value)", &e.to_string()),
        }
    }

    fn skip(&mut self, what: &str, why: &str) {
        self.skipped += 1;
        self.last_skip = Some(format!("{what}: {why}"));
    }

    /// Records replayed so far, and of those skipped.
    pub fn counts(&self) -> (usize, usize) {
        (self.records, self.skipped)
    }

    /// Why the last skipped record was skipped (for the loader's log line).
    pub fn last_skip(&self) -> Option<&str> {
        self.last_skip.as_deref()
    }

    pub fn finish(self) -> LoadedTransactions {
        let metadata: BTreeMap<String, TransactionMetadata> = self.ids.into_iter().collect();
        let to_complete = metadata
            .iter()
            .filter(|(_, m)| {
                matches!(
                    m.state,
                    TransactionState::PrepareCommit | TransactionState::PrepareAbort
                )
            })
            .map(|(id, _)| id.clone())
            .collect();
        LoadedTransactions {
            metadata,
            to_complete,
            records: self.records,
            skipped: self.skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::records::{TransactionLogValue, encode_key, encode_value, tombstone};
    use crate::state::TransactionState::*;

    const NOW: i64 = 1_700_000_000_000;

    fn meta(id: &str, state: TransactionState, epoch: i16) -> TransactionMetadata {
        let mut m = TransactionMetadata::new(id, 4000, 60_000, NOW);
        m.state = state;
        m.producer_epoch = epoch;
        if state != Empty && state != CompleteCommit && state != CompleteAbort {
            m.partitions = [("orders".to_string(), 3)].into_iter().collect();
        }
        m
    }

    /// The record the coordinator writes for `m`, at value version `version`.
    fn record(m: &TransactionMetadata, version: i16) -> (Vec<u8>, Option<Vec<u8>>) {
        let value = TransactionLogValue {
            producer_id: m.producer_id,
            previous_producer_id: m.previous_producer_id,
            next_producer_id: m.next_producer_id,
            producer_epoch: m.producer_epoch,
            transaction_timeout_ms: m.txn_timeout_ms,
            state: m.state,
            partitions: m.partitions.clone(),
            last_update_timestamp_ms: m.txn_last_update_timestamp_ms,
            start_timestamp_ms: m.txn_start_timestamp_ms,
            client_transaction_version: 0,
        };
        (
            encode_key(&m.transactional_id).unwrap(),
            Some(encode_value(&value, version).unwrap()),
        )
    }

    fn replay(records: &[(Vec<u8>, Option<Vec<u8>>)]) -> LoadedTransactions {
        let mut r = TxnReplay::new();
        for (key, value) in records {
            r.apply(key, value.as_deref());
        }
        r.finish()
    }

    #[test]
    fn the_latest_value_per_id_wins_and_tombstones_remove() {
        let loaded = replay(&[
            record(&meta("a", Empty, 0), 0),
            record(&meta("b", Ongoing, 0), 1),
            record(&meta("a", Ongoing, 1), 1),
            record(&meta("a", PrepareCommit, 1), 1),
            record(&meta("a", CompleteCommit, 1), 1),
            tombstone("b").unwrap(),
            // A tombstone of an id never seen changes nothing.
            tombstone("never").unwrap(),
            record(&meta("c", PrepareAbort, 7), 0),
        ]);
        assert_eq!(loaded.records, 8);
        assert_eq!(loaded.skipped, 0);
        assert_eq!(
            loaded.metadata.keys().collect::<Vec<_>>(),
            vec!["a", "c"],
            "b expired"
        );
        let a = &loaded.metadata["a"];
        assert_eq!((a.state, a.producer_epoch), (CompleteCommit, 1));
        assert!(a.pending_state.is_none());
        assert_eq!(loaded.to_complete, vec!["c".to_string()]);
        assert_eq!(loaded.metadata["c"].partitions.len(), 1);
    }

    #[test]
    fn an_id_written_again_after_its_tombstone_is_back() {
        let loaded = replay(&[
            record(&meta("a", CompleteAbort, 2), 1),
            tombstone("a").unwrap(),
            record(&meta("a", Empty, 0), 1),
        ]);
        assert_eq!(loaded.metadata["a"].producer_epoch, 0);
    }

    #[test]
    fn undecodable_records_are_skipped_and_counted_the_rest_loads() {
        let good = record(&meta("a", Ongoing, 3), 1);
        let mut truncated_value = record(&meta("b", Ongoing, 1), 1);
        if let Some(v) = truncated_value.1.as_mut() {
            v.truncate(v.len() / 2);
        }
        let mut r = TxnReplay::new();
        r.apply(&good.0, good.1.as_deref());
        r.apply(&[0xff], Some(b"junk"));
        r.apply(&truncated_value.0, truncated_value.1.as_deref());
        // A newer release's key version: skipped without counting it as damage.
        r.apply(&[0x00, 0x07, 0x00, 0x01, b'x'], Some(b"whatever"));
        assert_eq!(r.counts(), (4, 2));
        assert!(r.last_skip().is_some());
        let loaded = r.finish();
        assert_eq!(loaded.metadata.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(loaded.to_complete.is_empty());
    }
}
