//! `FollowerProgress`: what a partition leader knows about one follower, learned from its
//! fetches (Kafka's `Replica` fetch state).
//!
//! **Why "caught up" is defined this way.** A follower fetching at offset X proves it holds
//! everything below X. It is *caught up* at the moment of a fetch if X reaches the leader's log
//! end then; and, because a busy leader's log end moves between fetches, also if X reaches the
//! leader's log end *as of its previous fetch* — then it was caught up at the time of that
//! previous fetch (Kafka's `Replica.updateFetchState`). `replica.lag.time.max.ms` is measured
//! from the last time a follower was caught up, so a follower that keeps up with a steady
//! stream is never shrunk out, and one that stops fetching or falls behind is, after that long.

/// One follower's replication progress on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The broker epoch the follower fetched with (KIP-903: an ISR expansion names it).
    pub broker_epoch: i64,
    /// The follower's log end offset: the offset of its last consistent fetch; -1 = unknown.
    pub log_end_offset: i64,
    /// When it last fetched (ms, the leader's clock); `i64::MIN` = never under this leadership.
    pub last_fetch_ms: i64,
    /// The leader's log end offset at that fetch.
    pub last_fetch_leader_log_end_offset: i64,
    /// The last time it was caught up (see the module docs).
    pub last_caught_up_ms: i64,
    /// The follower's log start offset, as its last fetch reported it (`None`: not reported
    /// under this leadership); DeleteRecords waits for it.
    pub log_start_offset: Option<i64>,
}

impl FollowerProgress {
    /// The state a new leader starts a follower with. An in-sync follower gets a full lag
    /// window from `now_ms` (it was in sync with the previous leader); any other starts as
    /// never caught up.
    pub fn at_leadership_start(in_sync: bool, now_ms: i64) -> Self {
        FollowerProgress {
            broker_epoch: -1,
            log_end_offset: -1,
            last_fetch_ms: i64::MIN,
            last_fetch_leader_log_end_offset: -1,
            last_caught_up_ms: if in_sync { now_ms } else { i64::MIN },
            log_start_offset: None,
        }
    }

    /// Records a consistent fetch at `fetch_offset` when the leader's log ended at
    /// `leader_log_end_offset`.
    pub fn record_fetch(
        &mut self,
        fetch_offset: i64,
        leader_log_end_offset: i64,
        broker_epoch: i64,
        now_ms: i64,
    ) {
        if fetch_offset >= leader_log_end_offset {
            self.last_caught_up_ms = self.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= self.last_fetch_leader_log_end_offset
            && self.last_fetch_ms != i64::MIN
        {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.last_fetch_ms);
        }
        self.log_end_offset = fetch_offset;
        self.last_fetch_leader_log_end_offset = leader_log_end_offset;
        self.last_fetch_ms = now_ms;
        self.broker_epoch = broker_epoch;
    }

    /// Whether the follower has not been caught up for longer than `lag_max_ms`.
    pub fn is_lagging(&self, now_ms: i64, lag_max_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_caught_up_ms) > lag_max_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetching_to_the_log_end_is_caught_up_now() {
        let mut p = FollowerProgress::at_leadership_start(false, 0);
        assert!(p.is_lagging(10, 5));
        p.record_fetch(100, 100, 7, 10);
        assert_eq!(
            (p.log_end_offset, p.last_caught_up_ms, p.broker_epoch),
            (100, 10, 7)
        );
        assert!(!p.is_lagging(15, 5));
        assert!(p.is_lagging(16, 5));
    }

    #[test]
    fn reaching_the_previous_log_end_is_caught_up_as_of_the_previous_fetch() {
        let mut p = FollowerProgress::at_leadership_start(false, 0);
        p.record_fetch(50, 100, 1, 10); // behind
        assert_eq!(p.last_caught_up_ms, i64::MIN);
        p.record_fetch(100, 180, 1, 20); // reached the log end of the fetch at 10
        assert_eq!(p.last_caught_up_ms, 10);
        p.record_fetch(150, 260, 1, 30); // did not reach 180: no progress
        assert_eq!(p.last_caught_up_ms, 10);
        assert!(p.is_lagging(41, 30));
    }

    #[test]
    fn an_in_sync_follower_gets_a_full_window_from_a_new_leader() {
        let p = FollowerProgress::at_leadership_start(true, 1_000);
        assert!(!p.is_lagging(1_000 + 30_000, 30_000));
        assert!(p.is_lagging(1_001 + 30_000, 30_000));
        // The first fetch after leadership start cannot vouch for earlier fetches.
        let mut p = FollowerProgress::at_leadership_start(false, 0);
        p.record_fetch(0, 0, 1, 5);
        assert_eq!(p.last_caught_up_ms, 5);
    }
}
