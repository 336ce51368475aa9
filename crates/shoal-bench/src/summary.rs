//! Result of one benchmark run: throughput, latency percentiles, formatting.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

/// Latency histograms record microseconds, from 1 µs to one hour, 3 significant digits.
pub fn new_latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 3_600_000_000, 3)?)
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// Extract percentiles from a histogram of microseconds; `None` if it is empty.
    pub fn from_micros(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        })
    }
}

/// What one `produce`, `produce-txn` or `consume` run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// "produce", "produce-txn" or "consume".
    pub op: &'static str,
    pub topic: String,
    /// Records successfully delivered (produce), delivered in committed transactions
    /// (produce-txn) or received (consume).
    pub records: u64,
    /// Key + value bytes of those records.
    pub bytes: u64,
    /// From the first send (or assign) to the last delivery report (or record); for
    /// produce-txn to the end of the last commit (when the records became readable).
    pub elapsed: Duration,
    /// Failed deliveries (produce) or consumer errors (consume).
    pub errors: u64,
    /// Records handed to the client that never got a delivery report (purged at the end).
    pub undelivered: u64,
    /// Why the run stopped early, if it did ("time limit", "end of partitions").
    pub stopped_by: Option<&'static str>,
    pub first_error: Option<String>,
    pub latency: Option<Percentiles>,
    /// CPU time (user + system, all threads) this client process used during the run.
    pub client_cpu: Option<Duration>,
    /// For a consume in a consumer group: how long joining and committing took.
    pub group: Option<GroupTiming>,
    /// For a produce-txn run: transactions, aborts and commit latency.
    pub txn: Option<TxnStats>,
}

/// The transaction part of a `produce-txn` run.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnStats {
    pub records_per_txn: u64,
    pub producers: u32,
    /// Transactions committed (their records are `Summary::records`).
    pub committed: u64,
    /// Transactions aborted after an abortable error, and the records sent in them.
    pub aborted: u64,
    pub aborted_records: u64,
    /// Why the first aborted transaction was aborted.
    pub first_abort: Option<String>,
    /// The longest init_transactions (the first one on a fresh cluster also creates
    /// `__transaction_state`); not part of `elapsed`.
    pub init: Duration,
    /// The commit as the application sees it: from the end of the transaction's sends to
    /// the return of commit_transaction, i.e. `flush` + `end_txn`.
    pub commit: Option<Percentiles>,
    /// The commit's first part: the delivery reports of the transaction's last records
    /// (including what is left of `linger.ms` for the last batches).
    pub flush: Option<Percentiles>,
    /// The commit's second part: EndTxn until the coordinator answers.
    pub end_txn: Option<Percentiles>,
}

/// The group part of a `consume --group` run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupTiming {
    /// subscribe() until the first assignment (FindCoordinator, JoinGroup, SyncGroup, and the
    /// broker's `group.initial.rebalance.delay.ms`); not part of `elapsed`.
    pub join: Duration,
    /// The synchronous commit of the final positions.
    pub final_commit: Duration,
}

impl Summary {
    pub fn records_per_sec(&self) -> f64 {
        per_sec(self.records as f64, self.elapsed)
    }

    /// Throughput in MB/s, 1 MB = 10^6 bytes of keys + values (no protocol overhead).
    pub fn mb_per_sec(&self) -> f64 {
        per_sec(self.bytes as f64 / 1e6, self.elapsed)
    }

    /// Committed transactions per second (0 for other ops).
    pub fn transactions_per_sec(&self) -> f64 {
        self.txn
            .as_ref()
            .map_or(0.0, |t| per_sec(t.committed as f64, self.elapsed))
    }

    /// One JSON object (one line); the transaction fields are present only for produce-txn.
    pub fn to_json(&self) -> serde_json::Value {
        let mut j = self.base_json();
        if let (Some(t), Some(obj)) = (&self.txn, j.as_object_mut()) {
            let pct = |p: Option<Percentiles>, f: fn(&Percentiles) -> f64| {
                p.as_ref().map(|p| round3(f(p)))
            };
            let fields = json!({
                "records_per_txn": t.records_per_txn,
                "producers": t.producers,
                "transactions": t.committed,
                "transactions_per_s": round3(self.transactions_per_sec()),
                "aborted_transactions": t.aborted,
                "aborted_records": t.aborted_records,
                "first_abort": t.first_abort,
                "init_ms": round3(t.init.as_secs_f64() * 1000.0),
                "commit_p50_ms": pct(t.commit, |p| p.p50),
                "commit_p99_ms": pct(t.commit, |p| p.p99),
                "commit_p999_ms": pct(t.commit, |p| p.p999),
                "commit_max_ms": pct(t.commit, |p| p.max),
                "commit_mean_ms": pct(t.commit, |p| p.mean),
                "flush_p50_ms": pct(t.flush, |p| p.p50),
                "flush_p99_ms": pct(t.flush, |p| p.p99),
                "flush_p999_ms": pct(t.flush, |p| p.p999),
                "end_txn_p50_ms": pct(t.end_txn, |p| p.p50),
                "end_txn_p99_ms": pct(t.end_txn, |p| p.p99),
                "end_txn_p999_ms": pct(t.end_txn, |p| p.p999),
            });
            if let serde_json::Value::Object(extra) = fields {
                obj.extend(extra);
            }
        }
        j
    }

    fn base_json(&self) -> serde_json::Value {
        let lat = self.latency;
        json!({
            "op": self.op,
            "topic": self.topic,
            "records": self.records,
            "bytes": self.bytes,
            "elapsed_s": round3(self.elapsed.as_secs_f64()),
            "records_per_s": self.records_per_sec().round(),
            "mb_per_s": round3(self.mb_per_sec()),
            "errors": self.errors,
            "undelivered": self.undelivered,
            "stopped_by": self.stopped_by,
            "first_error": self.first_error,
            "p50_ms": lat.map(|l| round3(l.p50)),
            "p99_ms": lat.map(|l| round3(l.p99)),
            "p999_ms": lat.map(|l| round3(l.p999)),
            "max_ms": lat.map(|l| round3(l.max)),
            "mean_ms": lat.map(|l| round3(l.mean)),
            "client_cpu_s": self.client_cpu.map(|c| round3(c.as_secs_f64())),
            "group_join_ms": self.group.map(|g| round3(g.join.as_secs_f64() * 1000.0)),
            "group_commit_ms": self.group.map(|g| round3(g.final_commit.as_secs_f64() * 1000.0)),
        })
    }

    /// Human-readable multi-line summary.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} {}: {} records, {} bytes in {:.3} s: {:.0} records/s, {:.2} MB/s",
            self.op,
            self.topic,
            self.records,
            self.bytes,
            self.elapsed.as_secs_f64(),
            self.records_per_sec(),
            self.mb_per_sec(),
        );
        if let Some(l) = self.latency {
            s.push_str(&format!(
                "\n  latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
                l.p50, l.p99, l.p999, l.max, l.mean
            ));
        }
        if let Some(cpu) = self.client_cpu {
            s.push_str(&format!(
                "\n  client cpu: {:.2} s ({:.0} % of one core, {:.2} µs/record)",
                cpu.as_secs_f64(),
                per_sec(cpu.as_secs_f64() * 100.0, self.elapsed),
                if self.records > 0 {
                    cpu.as_secs_f64() * 1e6 / self.records as f64
                } else {
                    0.0
                }
            ));
        }
        if let Some(g) = self.group {
            s.push_str(&format!(
                "\n  group: joined in {:.1} ms, final commit {:.2} ms",
                g.join.as_secs_f64() * 1000.0,
                g.final_commit.as_secs_f64() * 1000.0
            ));
        }
        if let Some(t) = &self.txn {
            s.push_str(&format!(
                "\n  transactions: {} committed ({:.1}/s, {} records each, {} producer{}), {} aborted ({} records); init {:.1} ms",
                t.committed,
                self.transactions_per_sec(),
                t.records_per_txn,
                t.producers,
                if t.producers == 1 { "" } else { "s" },
                t.aborted,
                t.aborted_records,
                t.init.as_secs_f64() * 1000.0,
            ));
            if let Some(c) = t.commit {
                s.push_str(&format!(
                    "\n  commit ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
                    c.p50, c.p99, c.p999, c.max, c.mean
                ));
            }
            if let Some(f) = t.flush {
                s.push_str(&format!(
                    "\n    flush ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}",
                    f.p50, f.p99, f.p999
                ));
            }
            if let Some(e) = t.end_txn {
                s.push_str(&format!(
                    "\n    EndTxn ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}",
                    e.p50, e.p99, e.p999
                ));
            }
            if let Some(why) = &t.first_abort {
                s.push_str(&format!("\n  first abort: {why}"));
            }
        }
        s.push_str(&format!("\n  errors: {}", self.errors));
        if self.undelivered > 0 {
            s.push_str(&format!("  undelivered: {}", self.undelivered));
        }
        if let Some(why) = self.stopped_by {
            s.push_str(&format!("  (stopped by {why})"));
        }
        if let Some(e) = &self.first_error {
            s.push_str(&format!("\n  first error: {e}"));
        }
        s
    }
}

/// CPU time used so far by this process (all threads), from /proc/self/stat.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_proc_stat_cpu(&stat)
}

/// CPU time used since `t0` (a [`process_cpu_time`] reading).
pub fn cpu_since(t0: Option<Duration>) -> Option<Duration> {
    Some(process_cpu_time()?.saturating_sub(t0?))
}

/// utime + stime (fields 14 and 15, in USER_HZ = 100 ticks/s) of a /proc/PID/stat line.
fn parse_proc_stat_cpu(stat: &str) -> Option<Duration> {
    // The command name (field 2) may contain spaces; fields are counted after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn per_sec(amount: f64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { amount / secs } else { 0.0 }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(latency: Option<Percentiles>) -> Summary {
        Summary {
            op: "produce",
            topic: "t".into(),
            records: 3_000_000,
            bytes: 300_000_000,
            elapsed: Duration::from_millis(1500),
            errors: 2,
            undelivered: 0,
            stopped_by: None,
            first_error: None,
            latency,
            client_cpu: None,
            group: None,
            txn: None,
        }
    }

    #[test]
    fn proc_stat_parsing() {
        let line = "1234 (shoal bench) R 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 9 0 100 200 300";
        assert_eq!(parse_proc_stat_cpu(line), Some(Duration::from_millis(1750)));
        assert_eq!(parse_proc_stat_cpu("garbage"), None);
        assert!(process_cpu_time().is_some());
    }

    #[test]
    fn percentiles_of_uniform_distribution() {
        let mut h = new_latency_histogram().unwrap();
        for us in 1..=10_000u64 {
            h.record(us * 10).unwrap(); // 10 µs .. 100 ms
        }
        let p = Percentiles::from_micros(&h).unwrap();
        // 3 significant digits: within 0.1 %.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 1e-9;
        assert!(close(p.p50, 50.0), "p50 {}", p.p50);
        assert!(close(p.p99, 99.0), "p99 {}", p.p99);
        assert!(close(p.p999, 99.9), "p99.9 {}", p.p999);
        assert!(close(p.max, 100.0), "max {}", p.max);
        assert!(close(p.mean, 50.005), "mean {}", p.mean);
    }

    #[test]
    fn percentiles_with_outlier() {
        let mut h = new_latency_histogram().unwrap();
        h.record_n(1_000, 9_990).unwrap(); // 1 ms
        h.record_n(2_000_000, 10).unwrap(); // 2 s
        let p = Percentiles::from_micros(&h).unwrap();
        assert_eq!(p.p50, 1.0);
        assert_eq!(p.p99, 1.0);
        assert!((p.p999 - 1.0).abs() < 0.01, "{}", p.p999);
        assert!((p.max - 2000.0).abs() < 2.0, "{}", p.max);
    }

    #[test]
    fn empty_histogram_has_no_percentiles() {
        assert_eq!(
            Percentiles::from_micros(&new_latency_histogram().unwrap()),
            None
        );
    }

    #[test]
    fn histogram_accepts_huge_values() {
        let mut h = new_latency_histogram().unwrap();
        h.record(3_600_000_000).unwrap();
        assert!(h.record(3_600_000_000 * 4).is_err());
    }

    #[test]
    fn rates() {
        let s = summary(None);
        assert_eq!(s.records_per_sec(), 2_000_000.0);
        assert_eq!(s.mb_per_sec(), 200.0);
        let zero = Summary {
            elapsed: Duration::ZERO,
            ..s
        };
        assert_eq!(zero.records_per_sec(), 0.0);
    }

    #[test]
    fn json_fields() {
        let s = summary(Some(Percentiles {
            p50: 1.2345,
            p99: 5.0,
            p999: 9.0,
            max: 12.0,
            mean: 1.5,
        }));
        let j = s.to_json();
        assert_eq!(j["op"], "produce");
        assert_eq!(j["records"], 3_000_000);
        assert_eq!(j["records_per_s"], 2_000_000.0);
        assert_eq!(j["mb_per_s"], 200.0);
        assert_eq!(j["p50_ms"], 1.235);
        assert_eq!(j["p999_ms"], 9.0);
        assert_eq!(j["errors"], 2);
        assert!(j["stopped_by"].is_null());
        let j = summary(None).to_json();
        assert!(j["p99_ms"].is_null());
        // One line, parseable.
        let line = j.to_string();
        assert!(!line.contains('\n'));
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn txn_fields() {
        let pct = |base: f64| Percentiles {
            p50: base,
            p99: base * 2.0,
            p999: base * 3.0,
            max: base * 4.0,
            mean: base * 1.1,
        };
        let mut s = summary(Some(pct(1.0)));
        s.op = "produce-txn";
        s.txn = Some(TxnStats {
            records_per_txn: 1000,
            producers: 1,
            committed: 3000,
            aborted: 1,
            aborted_records: 1000,
            first_abort: Some("Broker: Producer fenced".into()),
            init: Duration::from_micros(12_345),
            commit: Some(pct(4.0)),
            flush: Some(pct(1.5)),
            end_txn: Some(pct(2.5)),
        });
        assert_eq!(s.transactions_per_sec(), 2000.0);
        let j = s.to_json();
        assert_eq!(j["op"], "produce-txn");
        assert_eq!(j["records_per_s"], 2_000_000.0);
        assert_eq!(j["transactions"], 3000);
        assert_eq!(j["transactions_per_s"], 2000.0);
        assert_eq!(j["aborted_transactions"], 1);
        assert_eq!(j["aborted_records"], 1000);
        assert_eq!(j["init_ms"], 12.345);
        assert_eq!(j["commit_p50_ms"], 4.0);
        assert_eq!(j["commit_p99_ms"], 8.0);
        assert_eq!(j["commit_p999_ms"], 12.0);
        assert_eq!(j["flush_p99_ms"], 3.0);
        assert_eq!(j["end_txn_p99_ms"], 5.0);
        assert_eq!(j["p99_ms"], 2.0, "record latency stays in p99_ms");
        let t = s.to_text();
        assert!(t.contains("transactions: 3000 committed (2000.0/s, 1000 records each, 1 producer), 1 aborted (1000 records)"), "{t}");
        assert!(
            t.contains("commit ms: p50 4.000  p99 8.000  p99.9 12.000"),
            "{t}"
        );
        assert!(t.contains("first abort: Broker: Producer fenced"), "{t}");

        // Other ops carry no transaction fields.
        let plain = summary(None);
        assert_eq!(plain.transactions_per_sec(), 0.0);
        assert!(plain.to_json().get("commit_p99_ms").is_none());
        assert!(!plain.to_text().contains("transactions"));
    }

    #[test]
    fn text_format() {
        let mut s = summary(Some(Percentiles {
            p50: 1.0,
            p99: 2.0,
            p999: 3.0,
            max: 4.0,
            mean: 1.1,
        }));
        s.stopped_by = Some("time limit");
        s.first_error = Some("Broker: Not leader".into());
        let t = s.to_text();
        assert!(
            t.starts_with("produce t: 3000000 records, 300000000 bytes in 1.500 s: 2000000 records/s, 200.00 MB/s"),
            "{t}"
        );
        assert!(
            t.contains("p50 1.000  p99 2.000  p99.9 3.000  max 4.000"),
            "{t}"
        );
        assert!(t.contains("errors: 2  (stopped by time limit)"), "{t}");
        assert!(t.contains("first error: Broker: Not leader"), "{t}");
        assert!(!summary(None).to_text().contains("latency"));
    }
}
