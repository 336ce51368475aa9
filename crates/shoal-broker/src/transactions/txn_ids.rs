//! The transactional ids of one coordinated `__transaction_state` partition, with a count of
//! those whose transaction is open kept as they change: the `transaction.coordinator.max.open.
//! transactions` check runs on every new transaction and the open-transactions gauge on every
//! scrape, and neither should walk every id the coordinator has ever seen.

use std::collections::HashMap;

use shoal_txn::{TransactionMetadata, TransactionState};

/// Whether `state` holds a transaction open (its partitions wait for a marker).
pub fn is_open(state: TransactionState) -> bool {
    matches!(
        state,
        TransactionState::Ongoing
            | TransactionState::PrepareCommit
            | TransactionState::PrepareAbort
            | TransactionState::PrepareEpochFence
    )
}

#[derive(Debug, Default)]
pub struct TxnIds {
    map: HashMap<String, TransactionMetadata>,
    /// Entries of `map` whose state [`is_open`].
    open: usize,
}

impl TxnIds {
    pub fn get(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.map.get(transactional_id)
    }

    pub fn insert(&mut self, transactional_id: String, metadata: TransactionMetadata) {
        let opens = is_open(metadata.state);
        let was = self.map.insert(transactional_id, metadata);
        self.recount(was.as_ref(), opens);
    }

    pub fn remove(&mut self, transactional_id: &str) {
        let was = self.map.remove(transactional_id);
        self.recount(was.as_ref(), false);
    }

    /// Drops the pending state of `transactional_id` (a transition that will not complete).
    pub fn clear_pending(&mut self, transactional_id: &str) {
        if let Some(metadata) = self.map.get_mut(transactional_id) {
            metadata.pending_state = None;
        }
    }

    fn recount(&mut self, was: Option<&TransactionMetadata>, is_now_open: bool) {
        let was_open = was.is_some_and(|m| is_open(m.state));
        match (was_open, is_now_open) {
            (false, true) => self.open += 1,
            (true, false) => self.open = self.open.saturating_sub(1),
            _ => {}
        }
        debug_assert_eq!(
            self.open,
            self.map.values().filter(|m| is_open(m.state)).count(),
            "the open-transaction count drifted from the ids"
        );
    }

    pub fn open(&self) -> usize {
        self.open
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &TransactionMetadata)> {
        self.map.iter()
    }

    pub fn values(&self) -> impl Iterator<Item = &TransactionMetadata> {
        self.map.values()
    }
}

impl FromIterator<(String, TransactionMetadata)> for TxnIds {
    fn from_iter<I: IntoIterator<Item = (String, TransactionMetadata)>>(entries: I) -> Self {
        let mut ids = TxnIds::default();
        for (transactional_id, metadata) in entries {
            ids.insert(transactional_id, metadata);
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(id: &str, state: TransactionState) -> TransactionMetadata {
        let mut m = TransactionMetadata::new(id, 1, 60_000, 0);
        m.state = state;
        m
    }

    #[test]
    fn the_open_count_follows_every_change() {
        use TransactionState::*;
        let mut ids: TxnIds = [
            ("a".to_string(), metadata("a", Ongoing)),
            ("b".to_string(), metadata("b", CompleteCommit)),
        ]
        .into_iter()
        .collect();
        assert_eq!((ids.len(), ids.open()), (2, 1));
        // (id, new state, open count after)
        let steps = [
            ("a", Some(PrepareCommit), 1),
            ("a", Some(CompleteCommit), 0),
            ("b", Some(Ongoing), 1),
            ("c", Some(Empty), 1),
            ("c", Some(PrepareEpochFence), 2),
            ("c", Some(PrepareAbort), 2),
            ("c", None, 1),
            ("b", Some(Dead), 0),
            ("b", None, 0),
        ];
        for (id, state, open) in steps {
            match state {
                Some(state) => ids.insert(id.to_string(), metadata(id, state)),
                None => ids.remove(id),
            }
            assert_eq!(ids.open(), open, "after {id} -> {state:?}");
        }
    }
}
