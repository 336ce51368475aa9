//! The run's report: one serializable [`Report`], printed as a table (`table`), written as
//! JSON, and drawn as a timeline (`timeline`). The JSON is the contract for scripts: its field
//! names and meanings are documented in docs/operations.md and only ever added to.

pub mod table;
pub mod timeline;

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::availability::{FaultImpact, Summary};
use crate::checker::Verdict;
use crate::checker::eos::{EosCounts, EosVerdict};
use crate::history::History;

pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// `idempotent`, `eos` or `all`.
    pub workload: String,
    pub topic: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub min_insync_replicas: i32,
    pub target: String,
    pub brokers: String,
    pub faults: Vec<String>,
    pub producers: u32,
    pub rate_per_producer: u32,
    pub consumers: u32,
    pub seed: u64,
    pub started_unix_s: u64,
    pub duration_s: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub sent: u64,
    pub acked: u64,
    /// Delivery reports with an error (the record may or may not be stored).
    pub failed: u64,
    /// Records with no delivery report at all when the producers were closed.
    pub undelivered: u64,
    /// Records the final read found.
    pub stored: u64,
    pub group_consumed: u64,
    pub group_commits: u64,
    pub group_commit_failures: u64,
}

/// The exactly-once workload's part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct EosReport {
    pub input_topic: String,
    pub output_topic: String,
    pub group: String,
    pub producers: u32,
    pub records_per_txn: u32,
    pub abort_every: u32,
    pub txn_rate_per_producer: u32,
    pub transformers: u32,
    pub transaction_timeout_ms: u32,
    pub hung_lso_s: u64,
    pub counts: EosCounts,
    pub anomalies: EosVerdict,
    /// What did not finish in time after the run (the drain, open transactions).
    pub notes: Vec<String>,
    /// The first distinct errors that ended transactions other than by a commit.
    pub transaction_errors: Vec<String>,
}

impl EosReport {
    /// The first few distinct transaction errors of `history`.
    pub fn errors_of(history: &History) -> Vec<String> {
        let mut errors: Vec<String> = Vec::new();
        for e in history.eos.txns.iter().filter_map(|t| t.error.as_ref()) {
            if errors.len() >= 10 {
                break;
            }
            if !errors.contains(e) {
                errors.push(e.clone());
            }
        }
        errors
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    /// "pass" or "fail": fail when anything was lost, duplicated, reordered, moved or consumed
    /// again below a committed offset, or any exactly-once check failed.
    pub verdict: &'static str,
    pub run: RunInfo,
    pub counts: Counts,
    pub anomalies: Verdict,
    /// Absent when the exactly-once workload did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eos: Option<EosReport>,
    pub faults: Vec<FaultImpact>,
    pub unavailability: Summary,
    /// The distinct errors producers were told about, first few.
    pub producer_errors: Vec<String>,
}

impl Report {
    pub fn new(
        run: RunInfo,
        counts: Counts,
        anomalies: Verdict,
        eos: Option<EosReport>,
        faults: Vec<FaultImpact>,
        unavailability: Summary,
        history: &History,
    ) -> Report {
        let mut producer_errors: Vec<String> = Vec::new();
        for f in &history.failures {
            if producer_errors.len() >= 10 {
                break;
            }
            if !producer_errors.contains(&f.error) {
                producer_errors.push(f.error.clone());
            }
        }
        let passed = anomalies.passed() && eos.as_ref().is_none_or(|e| e.anomalies.passed());
        Report {
            version: REPORT_VERSION,
            verdict: if passed { "pass" } else { "fail" },
            run,
            counts,
            anomalies,
            eos,
            faults,
            unavailability,
            producer_errors,
        }
    }
}

impl Report {
    /// True when every check of every workload that ran passed.
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }
}

/// Writes report.json, summary.txt, timeline.svg and (with `keep_history`) history.jsonl.
pub fn write_all(
    dir: &Path,
    report: &Report,
    history: &History,
    keep_history: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, body: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))
    };
    write("report.json", &serde_json::to_vec_pretty(report)?)?;
    write("summary.txt", table::render(report).as_bytes())?;
    write(
        "timeline.svg",
        timeline::render(history, &report.run, report.run.duration_s).as_bytes(),
    )?;
    if keep_history {
        write("history.jsonl", &history_lines(history)?)?;
    }
    Ok(())
}

/// The raw history, one JSON object per event, for anyone who wants to re-check it.
fn history_lines(history: &History) -> anyhow::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut out = Vec::new();
    let mut line = |kind: &str, value: serde_json::Value| -> anyhow::Result<()> {
        let mut object = serde_json::Map::new();
        object.insert("type".into(), kind.into());
        if let serde_json::Value::Object(fields) = value {
            object.extend(fields);
        }
        serde_json::to_writer(&mut out, &object)?;
        out.write_all(b"\n")?;
        Ok(())
    };
    for f in &history.faults {
        line("fault", serde_json::to_value(f)?)?;
    }
    for a in &history.acks {
        line("ack", serde_json::to_value(a)?)?;
    }
    for f in &history.failures {
        line("send-failure", serde_json::to_value(f)?)?;
    }
    for c in &history.consumed {
        line("consumed", serde_json::to_value(c)?)?;
    }
    for c in &history.commits {
        line("commit", serde_json::to_value(c)?)?;
    }
    for o in &history.observed {
        line("stored", serde_json::to_value(o)?)?;
    }
    let eos = &history.eos;
    for t in &eos.txns {
        line("eos-txn", serde_json::to_value(t)?)?;
    }
    for r in &eos.reads {
        line("eos-read", serde_json::to_value(r)?)?;
    }
    for s in &eos.final_committed {
        line("eos-stored-committed", serde_json::to_value(s)?)?;
    }
    for s in &eos.final_uncommitted {
        line("eos-stored-uncommitted", serde_json::to_value(s)?)?;
    }
    for s in &eos.lso {
        line("eos-lso", serde_json::to_value(s)?)?;
    }
    for s in &eos.group_offsets {
        line("eos-group-offset", serde_json::to_value(s)?)?;
    }
    Ok(out)
}
