//! Transaction gauges, read at scrape time: per partition this broker leads, its last stable
//! offset, how many transactions are open in it and how old the oldest one is; per
//! coordinator, how many transactions it has open.
//!
//! Why they exist: a transaction that nobody ends holds its partition's last stable offset
//! (LSO), and read_committed consumers stop there without an error, so the symptom is lag that
//! only grows. `shoal_high_watermark - shoal_last_stable_offset` and the oldest open
//! transaction's age show it on the partition itself; the coordinator's count beside it tells a
//! hanging transaction (open on a partition, ended or unknown on its coordinator: `shoalctl txn
//! find-hanging`) from a producer that is merely slow.
//!
//! Only a partition's leader reports it, so `sum()` over nodes counts each transaction once.
//! Followers report 0 open transactions (and age 0) rather than nothing, so a former leader's
//! value drops at once after a leadership move instead of lingering until its series expires.
//!
//! A partition's open transactions are read under its state lock, which an append holds across
//! its disk write: the reads run on a blocking thread, never on the task serving `/metrics`.

use std::sync::Arc;

use shoal_broker::Broker;
use shoal_broker::time::wall_ms;
use shoal_metrics::names;

use super::state::MAX_PARTITION_SERIES;

/// What one hosted partition reports.
struct PartitionTxns {
    topic: String,
    partition: i32,
    /// `Some` on the leader only: (LSO, open transactions, oldest open transaction's age).
    led: Option<(i64, usize, f64)>,
}

pub async fn refresh(broker: &Arc<Broker>) {
    metrics::gauge!(names::TXN_COORDINATOR_OPEN_TRANSACTIONS)
        .set(broker.transactions.coordinator.open_transaction_count() as f64);
    let partitions = broker.replicas.all_partitions();
    let read = tokio::task::spawn_blocking(move || {
        partitions
            .iter()
            .take(MAX_PARTITION_SERIES)
            .map(|p| {
                let led = p.is_leader().then(|| {
                    let open = p.ongoing_transactions();
                    let age_s =
                        oldest_open_age_seconds(open.iter().map(|t| t.started_ms), wall_ms());
                    (p.last_stable_offset(), open.len(), age_s)
                });
                PartitionTxns {
                    topic: p.topic().to_string(),
                    partition: p.index(),
                    led,
                }
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Ok(rows) = read else {
        return;
    };
    for row in rows {
        let labels = [
            ("topic", row.topic),
            ("partition", row.partition.to_string()),
        ];
        let (open, age_s) = match row.led {
            Some((lso, open, age_s)) => {
                metrics::gauge!(names::LAST_STABLE_OFFSET, &labels).set(lso as f64);
                (open, age_s)
            }
            None => (0, 0.0),
        };
        metrics::gauge!(names::OPEN_TRANSACTIONS, &labels).set(open as f64);
        metrics::gauge!(names::OLDEST_OPEN_TRANSACTION_AGE_SECONDS, &labels).set(age_s);
    }
}

/// Seconds since the earliest start among `started_ms` (each open transaction's first batch
/// timestamp), at `now_ms`; 0 when there is none. An unknown start (negative, Kafka's
/// NO_TIMESTAMP) is left out, and a start ahead of this broker's clock (a producer's clock
/// running fast) counts as age 0, never negative.
fn oldest_open_age_seconds(started_ms: impl IntoIterator<Item = i64>, now_ms: i64) -> f64 {
    started_ms
        .into_iter()
        .filter(|ms| *ms >= 0)
        .min()
        .map_or(0.0, |oldest_ms| {
            now_ms.saturating_sub(oldest_ms).max(0) as f64 / 1000.0
        })
}

#[cfg(test)]
mod tests {
    use super::oldest_open_age_seconds;

    #[test]
    fn the_oldest_open_transaction_sets_the_age() {
        let now_ms = 1_000_000;
        let cases: &[(&[i64], f64)] = &[
            // No open transaction.
            (&[], 0.0),
            // One, started 2.5 s ago.
            (&[997_500], 2.5),
            // The earliest start wins, whatever the order (offsets and clocks may disagree).
            (&[999_000, 940_000, 990_000], 60.0),
            // An unknown start is ignored; only unknown ones: 0.
            (&[-1, 999_000], 1.0),
            (&[-1], 0.0),
            // A start ahead of this clock: 0, not negative.
            (&[1_005_000], 0.0),
        ];
        for (started_ms, want_s) in cases {
            let got_s = oldest_open_age_seconds(started_ms.iter().copied(), now_ms);
            assert!(
                (got_s - want_s).abs() < 1e-9,
                "{started_ms:?}: {got_s} != {want_s}"
            );
        }
    }
}
