//! The exactly-once checker: a pure function from an [`EosHistory`] to the anomalies in it.
//!
//! What Kafka promises a transactional producer and a read_committed consumer, each as a rule
//! over what clients were told and what readers found (the cluster's own word is never taken):
//! - aborted read (Jepsen's G1a): a read_committed reader (the observer, a transform member's
//!   consumer or the final read) was handed a record of a transaction whose abort succeeded.
//! - partial read (G1b): the final read_committed read holds some but not all records of a
//!   transaction, whatever its outcome. Only the final read is held to this: during the run the
//!   commit markers reach a transaction's partitions one after the other, so a reader may see
//!   one partition's share before another's; once nothing is open and the read reaches the last
//!   stable offset of every partition, a transaction is there whole or not at all.
//! - lost: a record of a committed transaction missing from the final read; a committed
//!   transaction with missing records is also counted as such (incomplete commit).
//! - duplicated: one record at more than one place in the final read.
//! - reordered: in a partition, one writer's records out of (transaction, index) order; a
//!   writer runs one transaction at a time, so its next transaction's records must follow.
//! - output duplicated: two output records (in the final read) made from one input record: the
//!   consume-transform-produce loop processed an input twice with both results committed.
//! - output missing: an input record in the final read with no output record, after the
//!   transform stage drained.
//! - vanished: a record a read_committed reader was handed during the run that the final read
//!   does not hold at that offset (a visible record later truncated away).
//! - hung LSO: a partition's last stable offset stuck below its high watermark for longer than
//!   the rule's bound (a transaction nobody ends holds every read_committed reader back).
//! - offsets backwards: the group's committed offset of a partition, asked with require_stable,
//!   lower than an answer before it or than an offset a transform transaction had committed
//!   before the question was asked.
//!
//! Transactions of unknown outcome may be visible or not, but all of them or none.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use super::Findings;
use crate::history::eos::{
    EosHistory, InputRef, Outcome, Read, Reader, RecordKey, Stage, Stored, Topic, Txn, TxnId,
};

/// The bounds the checker needs from the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EosRules {
    /// A last stable offset stuck below the high watermark longer than this is hung: the
    /// transaction timeout, the coordinator's abort interval, a fault and a margin.
    pub hung_lso_us: u64,
    /// Whether the transform stage ran (otherwise no output is expected).
    pub expect_outputs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AbortedRead {
    pub reader: Reader,
    pub topic: Topic,
    pub partition: i32,
    pub offset: i64,
    pub record: RecordKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartialTxn {
    pub txn: TxnId,
    pub outcome: Outcome,
    pub records: u32,
    /// How many of them the final read holds.
    pub seen: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    pub record: RecordKey,
    pub topic: Topic,
    /// Every (partition, offset) it was found at.
    pub at: Vec<(i32, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reorder {
    pub topic: Topic,
    pub partition: i32,
    pub earlier_offset: i64,
    pub earlier: RecordKey,
    pub later_offset: i64,
    pub later: RecordKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputDuplicate {
    pub input: RecordKey,
    /// The output records made from it, with (partition, offset).
    pub outputs: Vec<(RecordKey, i32, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputMissing {
    pub input: RecordKey,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vanished {
    pub reader: Reader,
    pub topic: Topic,
    pub partition: i32,
    pub offset: i64,
    pub record: RecordKey,
    /// What the final read holds there instead (`None`: nothing).
    pub final_holds: Option<RecordKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HungLso {
    pub topic: Topic,
    pub partition: i32,
    pub lso: i64,
    pub from_s: f64,
    /// The last sample that still showed it stuck.
    pub until_s: f64,
    /// Stuck at the last sample of the run.
    pub still_stuck: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffsetBackwards {
    pub partition: i32,
    pub offset: i64,
    pub at_us: u64,
    /// The offset it should not have been below...
    pub floor: i64,
    /// ...and where that came from: "answer" (an earlier OffsetFetch) or "commit" (a transform
    /// transaction that committed before this question was asked).
    pub floor_from: &'static str,
}

/// The exactly-once anomalies, each a count and the first few examples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EosVerdict {
    pub aborted_read: Findings<AbortedRead>,
    pub partial_read: Findings<PartialTxn>,
    pub lost: Findings<RecordKey>,
    pub incomplete_commit: Findings<PartialTxn>,
    pub duplicated: Findings<Duplicate>,
    pub reordered: Findings<Reorder>,
    pub output_duplicated: Findings<OutputDuplicate>,
    pub output_missing: Findings<OutputMissing>,
    pub vanished: Findings<Vanished>,
    pub hung_lso: Findings<HungLso>,
    pub offsets_backwards: Findings<OffsetBackwards>,
}

impl EosVerdict {
    /// True when every exactly-once promise held.
    pub fn passed(&self) -> bool {
        self.anomaly_counts().iter().all(|(_, n)| *n == 0)
    }

    /// Every check by its report name, with its count.
    pub fn anomaly_counts(&self) -> [(&'static str, u64); 11] {
        [
            ("aborted_read", self.aborted_read.count),
            ("partial_read", self.partial_read.count),
            ("lost", self.lost.count),
            ("incomplete_commit", self.incomplete_commit.count),
            ("duplicated", self.duplicated.count),
            ("reordered", self.reordered.count),
            ("output_duplicated", self.output_duplicated.count),
            ("output_missing", self.output_missing.count),
            ("vanished", self.vanished.count),
            ("hung_lso", self.hung_lso.count),
            ("offsets_backwards", self.offsets_backwards.count),
        ]
    }
}

/// Transactions per stage and outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TxnCounts {
    pub committed: u64,
    pub aborted: u64,
    /// Of the aborted: on purpose.
    pub aborted_on_purpose: u64,
    pub unknown: u64,
    /// Of the unknown: visible (whole) in the final read.
    pub unknown_visible: u64,
}

/// What the workload did, for the report (not judged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EosCounts {
    pub source: TxnCounts,
    pub transform: TxnCounts,
    /// Records of committed source transactions.
    pub input_committed: u64,
    /// Records the final read_committed read found in the input / output topic.
    pub input_read: u64,
    pub output_read: u64,
    /// Records of aborted transactions the final read_uncommitted read found (the aborts did
    /// reach the log).
    pub aborted_stored: u64,
    /// Records the final read_uncommitted read found in both topics.
    pub stored_uncommitted: u64,
    pub observer_reads: u64,
    pub transform_reads: u64,
    pub lso_samples: u64,
    pub group_offset_samples: u64,
    pub client_rebuilds: u64,
    /// Client calls that hung past their bound, their clients given up (librdkafka's).
    pub stuck_calls: u64,
    /// Records naming a transaction the history does not hold (not judged; 0 normally).
    pub unrecorded: u64,
}

pub fn check(history: &EosHistory, rules: &EosRules) -> (EosVerdict, EosCounts) {
    let mut verdict = EosVerdict::default();
    let txns: HashMap<TxnId, &Txn> = history.txns.iter().map(|t| (t.id, t)).collect();
    let mut counts = EosCounts {
        lso_samples: history.lso.len() as u64,
        group_offset_samples: history.group_offsets.len() as u64,
        client_rebuilds: history.client_rebuilds,
        stuck_calls: history.stuck_calls,
        ..EosCounts::default()
    };
    check_aborted_reads(history, &txns, &mut verdict, &mut counts);
    check_transactions(history, &mut verdict, &mut counts);
    check_duplicates(&history.final_committed, &mut verdict);
    check_order(&history.final_committed, &mut verdict);
    if rules.expect_outputs {
        check_outputs(&history.final_committed, &mut verdict);
    }
    check_vanished(history, &txns, &mut verdict);
    check_lso(history, rules.hung_lso_us, &mut verdict);
    check_group_offsets(history, &mut verdict);
    counts.stored_uncommitted = history.final_uncommitted.len() as u64;
    counts.aborted_stored = history
        .final_uncommitted
        .iter()
        .filter(|s| txns.get(&s.value.key.txn).map(|t| t.outcome) == Some(Outcome::Aborted))
        .count() as u64;
    (verdict, counts)
}

fn outcome_of(txns: &HashMap<TxnId, &Txn>, id: &TxnId) -> Option<Outcome> {
    txns.get(id).map(|t| t.outcome)
}

/// G1a: any read_committed reader, during the run or at the end, handed a record of an aborted
/// transaction.
fn check_aborted_reads(
    history: &EosHistory,
    txns: &HashMap<TxnId, &Txn>,
    verdict: &mut EosVerdict,
    counts: &mut EosCounts,
) {
    let during = history
        .reads
        .iter()
        .map(|r| (r.reader, r.topic, r.partition, r.offset, r.value.key));
    let at_end = history
        .final_committed
        .iter()
        .map(|s| (Reader::Final, s.topic, s.partition, s.offset, s.value.key));
    for (reader, topic, partition, offset, record) in during.chain(at_end) {
        match reader {
            Reader::Observer => counts.observer_reads += 1,
            Reader::Transform(_) => counts.transform_reads += 1,
            Reader::Final => {}
        }
        match outcome_of(txns, &record.txn) {
            Some(Outcome::Aborted) => verdict.aborted_read.push(AbortedRead {
                reader,
                topic,
                partition,
                offset,
                record,
            }),
            None => counts.unrecorded += 1,
            Some(_) => {}
        }
    }
}

/// G1b, lost records and incomplete commits: each transaction against the final read.
fn check_transactions(history: &EosHistory, verdict: &mut EosVerdict, counts: &mut EosCounts) {
    let mut seen: HashMap<TxnId, BTreeSet<u32>> = HashMap::new();
    for s in &history.final_committed {
        seen.entry(s.value.key.txn)
            .or_default()
            .insert(s.value.key.index);
        match s.topic {
            Topic::Input => counts.input_read += 1,
            Topic::Output => counts.output_read += 1,
        }
    }
    let mut txns: Vec<&Txn> = history.txns.iter().collect();
    txns.sort_by_key(|t| t.id);
    for t in txns {
        let found = seen.get(&t.id);
        let n = found.map_or(0, |s| s.iter().filter(|i| **i < t.records).count()) as u32;
        let by_stage = match t.id.stage {
            Stage::Source => &mut counts.source,
            Stage::Transform => &mut counts.transform,
        };
        match t.outcome {
            Outcome::Committed => by_stage.committed += 1,
            Outcome::Aborted => {
                by_stage.aborted += 1;
                if t.abort_on_purpose {
                    by_stage.aborted_on_purpose += 1;
                }
            }
            Outcome::Unknown => {
                by_stage.unknown += 1;
                if t.records > 0 && n == t.records {
                    by_stage.unknown_visible += 1;
                }
            }
        }
        if t.outcome == Outcome::Committed && t.id.stage == Stage::Source {
            counts.input_committed += u64::from(t.records);
        }
        let partial = PartialTxn {
            txn: t.id,
            outcome: t.outcome,
            records: t.records,
            seen: n,
        };
        if n > 0 && n < t.records {
            verdict.partial_read.push(partial.clone());
        }
        if t.outcome == Outcome::Committed && n < t.records {
            verdict.incomplete_commit.push(partial);
            for index in 0..t.records {
                if found.is_none_or(|s| !s.contains(&index)) {
                    verdict.lost.push(RecordKey { txn: t.id, index });
                }
            }
        }
    }
}

fn check_duplicates(stored: &[Stored], verdict: &mut EosVerdict) {
    let mut at: BTreeMap<RecordKey, (Topic, Vec<(i32, i64)>)> = BTreeMap::new();
    for s in stored {
        at.entry(s.value.key)
            .or_insert_with(|| (s.topic, Vec::new()))
            .1
            .push((s.partition, s.offset));
    }
    for (record, (topic, places)) in at {
        if places.len() > 1 {
            verdict.duplicated.push(Duplicate {
                record,
                topic,
                at: places,
            });
        }
    }
}

/// In each partition, in offset order, each writer's (transaction, index) must rise.
fn check_order(stored: &[Stored], verdict: &mut EosVerdict) {
    let mut by_partition: BTreeMap<(Topic, i32), Vec<&Stored>> = BTreeMap::new();
    for s in stored {
        by_partition
            .entry((s.topic, s.partition))
            .or_default()
            .push(s);
    }
    for ((topic, partition), mut records) in by_partition {
        records.sort_by_key(|s| s.offset);
        let mut last: HashMap<(Stage, u32), &Stored> = HashMap::new();
        for s in records {
            let key = s.value.key;
            let writer = (key.txn.stage, key.txn.writer);
            if let Some(prev) = last.get(&writer)
                && (prev.value.key.txn.txn, prev.value.key.index) > (key.txn.txn, key.index)
            {
                verdict.reordered.push(Reorder {
                    topic,
                    partition,
                    earlier_offset: prev.offset,
                    earlier: prev.value.key,
                    later_offset: s.offset,
                    later: key,
                });
                continue;
            }
            last.insert(writer, s);
        }
    }
}

/// Exactly one output record per input record in the final read.
fn check_outputs(stored: &[Stored], verdict: &mut EosVerdict) {
    let mut outputs: BTreeMap<RecordKey, BTreeMap<RecordKey, (i32, i64)>> = BTreeMap::new();
    for s in stored.iter().filter(|s| s.topic == Topic::Output) {
        if let Some(InputRef { key, .. }) = s.value.input {
            outputs
                .entry(key)
                .or_default()
                .entry(s.value.key)
                .or_insert((s.partition, s.offset));
        }
    }
    let mut inputs: Vec<&Stored> = stored.iter().filter(|s| s.topic == Topic::Input).collect();
    inputs.sort_by_key(|s| (s.partition, s.offset));
    let mut checked: HashSet<RecordKey> = HashSet::new();
    for s in inputs {
        if !checked.insert(s.value.key) {
            continue; // a duplicate input is reported as duplicated
        }
        match outputs.get(&s.value.key) {
            None => verdict.output_missing.push(OutputMissing {
                input: s.value.key,
                partition: s.partition,
                offset: s.offset,
            }),
            Some(made) if made.len() > 1 => verdict.output_duplicated.push(OutputDuplicate {
                input: s.value.key,
                outputs: made.iter().map(|(k, (p, o))| (*k, *p, *o)).collect(),
            }),
            Some(_) => {}
        }
    }
}

/// What read_committed readers were handed during the run must still be in the log, at the
/// same offset, at the end.
fn check_vanished(history: &EosHistory, txns: &HashMap<TxnId, &Txn>, verdict: &mut EosVerdict) {
    let at_end: HashMap<(Topic, i32, i64), RecordKey> = history
        .final_committed
        .iter()
        .map(|s| ((s.topic, s.partition, s.offset), s.value.key))
        .collect();
    let mut reported: HashSet<(Topic, i32, i64)> = HashSet::new();
    for r in &history.reads {
        let Read {
            reader,
            topic,
            partition,
            offset,
            value,
            ..
        } = *r;
        // An aborted record read is already an aborted read; the final read rightly lacks it.
        if outcome_of(txns, &value.key.txn) == Some(Outcome::Aborted) {
            continue;
        }
        let holds = at_end.get(&(topic, partition, offset)).copied();
        if holds != Some(value.key) && reported.insert((topic, partition, offset)) {
            verdict.vanished.push(Vanished {
                reader,
                topic,
                partition,
                offset,
                record: value.key,
                final_holds: holds,
            });
        }
    }
}

/// A stretch of samples in which a partition's LSO stayed at one value below its high
/// watermark, measured between the first and the last sample that showed it.
fn check_lso(history: &EosHistory, hung_lso_us: u64, verdict: &mut EosVerdict) {
    let mut by_partition: BTreeMap<(Topic, i32), Vec<_>> = BTreeMap::new();
    for s in &history.lso {
        by_partition
            .entry((s.topic, s.partition))
            .or_default()
            .push(s);
    }
    for ((topic, partition), mut samples) in by_partition {
        samples.sort_by_key(|s| s.at_us);
        // (lso, first sample, last sample) of the current stretch.
        let mut stretch: Option<(i64, u64, u64)> = None;
        let mut close = |stretch: Option<(i64, u64, u64)>, still_stuck: bool| {
            if let Some((lso, from, until)) = stretch
                && until - from > hung_lso_us
            {
                verdict.hung_lso.push(HungLso {
                    topic,
                    partition,
                    lso,
                    from_s: from as f64 / 1e6,
                    until_s: until as f64 / 1e6,
                    still_stuck,
                });
            }
        };
        for s in samples {
            if s.lso >= s.high {
                close(stretch.take(), false);
                continue;
            }
            match &mut stretch {
                Some((lso, _, until)) if *lso == s.lso => *until = s.at_us,
                _ => {
                    close(stretch.take(), false);
                    stretch = Some((s.lso, s.at_us, s.at_us));
                }
            }
        }
        close(stretch, true);
    }
}

/// Committed offsets only move forward: each OffsetFetch answer is at least every earlier
/// answer and every offset a transform transaction committed before the question was sent.
fn check_group_offsets(history: &EosHistory, verdict: &mut EosVerdict) {
    enum Event {
        Committed(i32, i64),
        Answer(i32, i64),
    }
    let mut events: Vec<(u64, u8, Event)> = Vec::new();
    for t in &history.txns {
        if t.id.stage == Stage::Transform && t.outcome == Outcome::Committed {
            for &(partition, offset) in &t.offsets {
                events.push((t.ended_us, 0, Event::Committed(partition, offset)));
            }
        }
    }
    for s in &history.group_offsets {
        events.push((s.at_us, 1, Event::Answer(s.partition, s.offset)));
    }
    // At the same microsecond a commit sorts first: it returned before the question went out.
    events.sort_by_key(|(at, order, _)| (*at, *order));
    let mut answered: HashMap<i32, i64> = HashMap::new();
    let mut committed: HashMap<i32, i64> = HashMap::new();
    for (at_us, _, event) in events {
        match event {
            Event::Committed(partition, offset) => {
                let c = committed.entry(partition).or_insert(offset);
                *c = (*c).max(offset);
            }
            Event::Answer(partition, offset) => {
                let by_answer = answered.get(&partition).copied();
                let by_commit = committed.get(&partition).copied();
                let floor = match (by_answer, by_commit) {
                    (Some(a), Some(c)) if c > a => Some((c, "commit")),
                    (Some(a), _) => Some((a, "answer")),
                    (None, Some(c)) => Some((c, "commit")),
                    (None, None) => None,
                };
                if let Some((floor, floor_from)) = floor
                    && offset < floor
                {
                    verdict.offsets_backwards.push(OffsetBackwards {
                        partition,
                        offset,
                        at_us,
                        floor,
                        floor_from,
                    });
                }
                let a = answered.entry(partition).or_insert(offset);
                *a = (*a).max(offset);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::eos::{EosValue, GroupOffsetSample, LsoSample};

    const RULES: EosRules = EosRules {
        hung_lso_us: 60_000_000,
        expect_outputs: true,
    };

    fn txn_id(stage: Stage, writer: u32, txn: u64) -> TxnId {
        TxnId { stage, writer, txn }
    }

    fn key(stage: Stage, writer: u32, txn: u64, index: u32) -> RecordKey {
        RecordKey {
            txn: txn_id(stage, writer, txn),
            index,
        }
    }

    /// A builder of histories: source producers write transactions of `n` records over two
    /// partitions; a committed transaction's records are in the log, an aborted one's in the
    /// uncommitted read only. The transform makes one output per visible input.
    struct Builder {
        h: EosHistory,
        /// Next offset per (topic, partition).
        next: HashMap<(Topic, i32), i64>,
        /// Offsets committed by the transform so far, per input partition.
        consumed: BTreeMap<i32, i64>,
        transform_txn: u64,
        clock_us: u64,
    }

    impl Builder {
        fn new() -> Builder {
            Builder {
                h: EosHistory::default(),
                next: HashMap::new(),
                consumed: BTreeMap::new(),
                transform_txn: 0,
                clock_us: 0,
            }
        }

        fn tick(&mut self) -> u64 {
            self.clock_us += 1000;
            self.clock_us
        }

        fn place(&mut self, topic: Topic, partition: i32) -> i64 {
            let next = self.next.entry((topic, partition)).or_insert(0);
            let offset = *next;
            *next += 1;
            offset
        }

        /// Writes a source transaction; returns where its records went.
        fn source(&mut self, writer: u32, txn: u64, n: u32, outcome: Outcome) -> Vec<Stored> {
            let began_us = self.tick();
            let mut records = Vec::new();
            for index in 0..n {
                let partition = (index % 2) as i32;
                let offset = self.place(Topic::Input, partition);
                let s = Stored {
                    topic: Topic::Input,
                    partition,
                    offset,
                    value: EosValue {
                        key: key(Stage::Source, writer, txn, index),
                        count: n,
                        input: None,
                    },
                };
                self.h.final_uncommitted.push(s);
                if outcome != Outcome::Aborted {
                    self.h.final_committed.push(s);
                }
                records.push(s);
            }
            // The marker takes an offset in each partition.
            for partition in 0..2 {
                self.place(Topic::Input, partition);
            }
            let ended_us = self.tick();
            self.h.txns.push(Txn {
                id: txn_id(Stage::Source, writer, txn),
                records: n,
                abort_on_purpose: outcome == Outcome::Aborted,
                outcome,
                began_us,
                ended_us,
                offsets: Vec::new(),
                error: None,
            });
            records
        }

        /// A committed transform transaction over `inputs`; the observer reads its outputs.
        fn transform(&mut self, member: u32, inputs: &[Stored]) -> Vec<Stored> {
            self.transform_txn += 1;
            let txn = self.transform_txn;
            let began_us = self.tick();
            let mut outputs = Vec::new();
            for (index, input) in inputs.iter().enumerate() {
                let offset = self.place(Topic::Output, input.partition);
                let s = Stored {
                    topic: Topic::Output,
                    partition: input.partition,
                    offset,
                    value: EosValue {
                        key: key(Stage::Transform, member, txn, index as u32),
                        count: inputs.len() as u32,
                        input: Some(InputRef {
                            key: input.value.key,
                            partition: input.partition,
                            offset: input.offset,
                        }),
                    },
                };
                let at_us = self.tick();
                self.h.reads.push(Read {
                    reader: Reader::Transform(member),
                    topic: Topic::Input,
                    partition: input.partition,
                    offset: input.offset,
                    value: input.value,
                    at_us,
                });
                self.h.final_committed.push(s);
                self.h.final_uncommitted.push(s);
                let c = self.consumed.entry(input.partition).or_insert(0);
                *c = (*c).max(input.offset + 1);
                outputs.push(s);
            }
            let ended_us = self.tick();
            self.h.txns.push(Txn {
                id: txn_id(Stage::Transform, member, txn),
                records: inputs.len() as u32,
                abort_on_purpose: false,
                outcome: Outcome::Committed,
                began_us,
                ended_us,
                offsets: self.consumed.iter().map(|(p, o)| (*p, *o)).collect(),
                error: None,
            });
            for s in &outputs {
                let at_us = self.tick();
                self.h.reads.push(Read {
                    reader: Reader::Observer,
                    topic: s.topic,
                    partition: s.partition,
                    offset: s.offset,
                    value: s.value,
                    at_us,
                });
            }
            // The group monitor asks after the commit.
            let at_us = self.tick();
            for (&partition, &offset) in &self.consumed {
                self.h.group_offsets.push(GroupOffsetSample {
                    partition,
                    offset,
                    at_us,
                });
            }
            outputs
        }

        /// LSO samples: every partition caught up.
        fn settled(&mut self) {
            let at_us = self.tick();
            for ((topic, partition), next) in self.next.clone() {
                self.h.lso.push(LsoSample {
                    topic,
                    partition,
                    lso: next,
                    high: next,
                    at_us,
                });
            }
        }
    }

    /// Two producers, a deliberate abort each, one unknown-outcome transaction that committed
    /// and one that did not, every visible input transformed once.
    fn clean() -> EosHistory {
        let mut b = Builder::new();
        for txn in 0..6u64 {
            for writer in 0..2 {
                let outcome = match (writer, txn) {
                    (_, 2) => Outcome::Aborted,
                    (0, 4) => Outcome::Unknown,
                    _ => Outcome::Committed,
                };
                let records = b.source(writer, txn, 4, outcome);
                if outcome != Outcome::Aborted {
                    b.transform(1 + writer, &records);
                }
            }
        }
        // An unknown-outcome transaction that did not commit: nothing visible.
        let invisible = b.source(1, 6, 4, Outcome::Aborted);
        assert_eq!(invisible.len(), 4);
        if let Some(t) = b.h.txns.last_mut() {
            t.outcome = Outcome::Unknown;
            t.abort_on_purpose = false;
        }
        b.settled();
        b.h
    }

    fn run(h: &EosHistory) -> EosVerdict {
        check(h, &RULES).0
    }

    #[test]
    fn a_clean_history_passes() {
        let h = clean();
        let (v, counts) = check(&h, &RULES);
        assert!(v.passed(), "{v:#?}");
        assert_eq!(counts.source.committed, 9);
        assert_eq!(counts.source.aborted, 2);
        assert_eq!(counts.source.aborted_on_purpose, 2);
        assert_eq!(counts.source.unknown, 2);
        assert_eq!(counts.source.unknown_visible, 1);
        assert_eq!(counts.transform.committed, 10);
        assert_eq!(counts.input_committed, 36);
        assert_eq!(counts.input_read, 40);
        assert_eq!(counts.output_read, 40);
        assert_eq!(counts.aborted_stored, 8);
        assert_eq!(counts.unrecorded, 0);
    }

    #[test]
    fn an_aborted_record_read_committed_is_g1a() {
        // The observer was handed a record of an aborted transaction.
        let mut h = clean();
        let aborted = h
            .final_uncommitted
            .iter()
            .find(|s| s.value.key.txn == txn_id(Stage::Source, 0, 2))
            .copied()
            .expect("an aborted record");
        h.reads.push(Read {
            reader: Reader::Observer,
            topic: aborted.topic,
            partition: aborted.partition,
            offset: aborted.offset,
            value: aborted.value,
            at_us: 1,
        });
        let v = run(&h);
        assert_eq!(v.aborted_read.count, 1, "{v:#?}");
        assert_eq!(v.aborted_read.examples[0].reader, Reader::Observer);
        assert_eq!(
            v.vanished.count, 0,
            "an aborted read is not also 'vanished'"
        );
        assert!(!v.passed());
    }

    #[test]
    fn an_aborted_transaction_in_the_final_read_is_g1a() {
        let mut h = clean();
        let aborted: Vec<Stored> = h
            .final_uncommitted
            .iter()
            .filter(|s| s.value.key.txn == txn_id(Stage::Source, 1, 2))
            .copied()
            .collect();
        h.final_committed.extend(aborted);
        let v = run(&h);
        assert_eq!(v.aborted_read.count, 4);
        assert_eq!(v.aborted_read.examples[0].reader, Reader::Final);
        // ...and the transform did not process them: no output for four visible inputs.
        assert_eq!(v.output_missing.count, 4);
        assert_eq!(v.partial_read.count, 0);
    }

    #[test]
    fn part_of_a_transaction_in_the_final_read_is_g1b() {
        // An unknown-outcome transaction half visible: all or nothing is still the rule.
        let mut h = clean();
        let invisible: Vec<Stored> = h
            .final_uncommitted
            .iter()
            .filter(|s| s.value.key.txn == txn_id(Stage::Source, 1, 6))
            .take(2)
            .copied()
            .collect();
        h.final_committed.extend(invisible);
        let v = run(&h);
        assert_eq!(v.partial_read.count, 1, "{v:#?}");
        let p = &v.partial_read.examples[0];
        assert_eq!((p.outcome, p.records, p.seen), (Outcome::Unknown, 4, 2));
        assert_eq!(
            v.aborted_read.count + v.lost.count + v.incomplete_commit.count,
            0
        );
    }

    #[test]
    fn a_committed_transaction_with_a_missing_record_is_lost_and_incomplete() {
        let mut h = clean();
        let gone = key(Stage::Source, 1, 3, 2);
        h.final_committed.retain(|s| s.value.key != gone);
        let v = run(&h);
        assert_eq!(v.lost.count, 1);
        assert_eq!(v.lost.examples, vec![gone]);
        assert_eq!(v.incomplete_commit.count, 1);
        assert_eq!(v.incomplete_commit.examples[0].seen, 3);
        assert_eq!(
            v.partial_read.count, 1,
            "three of four is also a partial read"
        );
        // The transform's read of it during the run no longer matches the log.
        assert_eq!(v.vanished.count, 1);
    }

    #[test]
    fn a_committed_transaction_missing_whole_is_lost_but_not_partial() {
        let mut h = clean();
        let gone = txn_id(Stage::Source, 0, 5);
        h.final_committed.retain(|s| s.value.key.txn != gone);
        h.reads.retain(|r| r.value.key.txn != gone);
        let v = run(&h);
        assert_eq!(v.lost.count, 4);
        assert_eq!(v.incomplete_commit.count, 1);
        assert_eq!(v.partial_read.count, 0);
    }

    #[test]
    fn a_record_stored_twice_is_duplicated() {
        let mut h = clean();
        let mut again = h.final_committed[0];
        again.offset = 1_000;
        h.final_committed.push(again);
        let v = run(&h);
        assert_eq!(v.duplicated.count, 1, "{v:#?}");
        assert_eq!(v.duplicated.examples[0].at.len(), 2);
        assert_eq!(v.output_duplicated.count, 0);
    }

    #[test]
    fn a_later_transaction_stored_before_an_earlier_one_is_reordered() {
        let mut h = clean();
        // Producer 0's records in input partition 0 are t0#0, t0#2, t1#0, t1#2: swap the two in
        // the middle, so transaction 1's first record sits before transaction 0's last.
        let mine = |s: &Stored| {
            s.topic == Topic::Input
                && s.partition == 0
                && s.value.key.txn.writer == 0
                && s.value.key.txn.txn <= 1
        };
        let mut offsets: Vec<(i64, EosValue)> = h
            .final_committed
            .iter()
            .filter(|s| mine(s))
            .map(|s| (s.offset, s.value))
            .collect();
        offsets.sort_by_key(|(o, _)| *o);
        let (a, va) = offsets[1];
        let (b, vb) = offsets[2];
        for s in h.final_committed.iter_mut().filter(|s| mine(s)) {
            if s.offset == a {
                s.value = vb;
            } else if s.offset == b {
                s.value = va;
            }
        }
        h.reads.clear();
        let v = run(&h);
        assert_eq!(v.reordered.count, 1, "{v:#?}");
        let r = &v.reordered.examples[0];
        assert_eq!(
            (r.topic, r.earlier, r.later),
            (Topic::Input, vb.key, va.key)
        );
        assert_eq!(v.duplicated.count + v.lost.count, 0);
    }

    #[test]
    fn an_input_transformed_twice_is_an_output_duplicate() {
        // Member 2 processed an input member 1 had already processed, and both committed.
        let mut b = Builder::new();
        let inputs = b.source(0, 0, 2, Outcome::Committed);
        b.transform(1, &inputs);
        b.consumed.clear();
        b.transform(2, &inputs[..1]);
        b.settled();
        let v = run(&b.h);
        assert_eq!(v.output_duplicated.count, 1, "{v:#?}");
        assert_eq!(v.output_duplicated.examples[0].input, inputs[0].value.key);
        assert_eq!(v.output_duplicated.examples[0].outputs.len(), 2);
        assert_eq!(v.duplicated.count, 0);
    }

    #[test]
    fn an_input_never_transformed_is_output_missing() {
        let mut b = Builder::new();
        let inputs = b.source(0, 0, 3, Outcome::Committed);
        b.transform(1, &inputs[..2]);
        b.settled();
        let v = run(&b.h);
        assert_eq!(v.output_missing.count, 1);
        assert_eq!(v.output_missing.examples[0].input, inputs[2].value.key);
        // Without a transform stage nothing is expected.
        let (v, _) = check(
            &b.h,
            &EosRules {
                expect_outputs: false,
                ..RULES
            },
        );
        assert!(v.passed(), "{v:#?}");
    }

    #[test]
    fn a_read_record_truncated_away_has_vanished() {
        let mut h = clean();
        let victim = h
            .reads
            .iter()
            .find(|r| r.reader == Reader::Observer)
            .copied()
            .expect("an observer read");
        // The final read holds another record of the same writer at that offset.
        for s in h.final_committed.iter_mut() {
            if (s.topic, s.partition, s.offset) == (victim.topic, victim.partition, victim.offset) {
                s.offset += 10_000;
            }
        }
        let v = run(&h);
        assert_eq!(v.vanished.count, 1, "{v:#?}");
        assert_eq!(v.vanished.examples[0].final_holds, None);
    }

    fn lso(partition: i32, lso: i64, high: i64, at_s: u64) -> LsoSample {
        LsoSample {
            topic: Topic::Input,
            partition,
            lso,
            high,
            at_us: at_s * 1_000_000,
        }
    }

    #[test]
    fn an_lso_stuck_below_the_high_watermark_past_the_bound_is_hung() {
        let mut h = clean();
        // Partition 0: open transactions come and go (LSO moves); partition 1: stuck at 40
        // from 10 s to 75 s while the high watermark grows, then it moves on.
        for t in 0..100u64 {
            h.lso.push(lso(0, t as i64 * 10, t as i64 * 10 + 5, t));
            let lso1 = if (10..=75).contains(&t) {
                40
            } else {
                t as i64 * 10
            };
            h.lso.push(lso(1, lso1, t as i64 * 10 + 5, t));
        }
        let v = run(&h);
        assert_eq!(v.hung_lso.count, 1, "{v:#?}");
        let hung = &v.hung_lso.examples[0];
        assert_eq!((hung.partition, hung.lso), (1, 40));
        assert_eq!(
            (hung.from_s, hung.until_s, hung.still_stuck),
            (10.0, 75.0, false)
        );
    }

    #[test]
    fn an_lso_stuck_at_the_end_of_the_run_is_hung_and_still_stuck() {
        let mut h = clean();
        for t in 0..70u64 {
            h.lso.push(lso(3, 7, 20, t));
        }
        let v = run(&h);
        assert_eq!(v.hung_lso.count, 1);
        assert!(v.hung_lso.examples[0].still_stuck);
    }

    #[test]
    fn an_lso_at_the_high_watermark_or_briefly_behind_is_not_hung() {
        let mut h = clean();
        for t in 0..200u64 {
            // Idle at 50 for a long time (nothing open), then a transaction open for 30 s.
            let high = if t < 150 { 50 } else { 60 };
            let l = if t < 180 { 50 } else { 60 };
            h.lso.push(lso(4, l, high, t));
        }
        assert!(run(&h).passed());
    }

    #[test]
    fn committed_offsets_going_backwards_are_reported() {
        let mut h = clean();
        let last = h
            .group_offsets
            .iter()
            .filter(|s| s.partition == 0)
            .max_by_key(|s| s.at_us)
            .copied()
            .expect("a sample");
        // A later answer lower than the one before it.
        h.group_offsets.push(GroupOffsetSample {
            partition: 0,
            offset: last.offset - 3,
            at_us: last.at_us + 10,
        });
        let v = run(&h);
        assert_eq!(v.offsets_backwards.count, 1, "{v:#?}");
        let b = &v.offsets_backwards.examples[0];
        assert_eq!((b.floor, b.offset), (last.offset, last.offset - 3));
    }

    #[test]
    fn an_answer_below_an_earlier_commit_is_backwards_but_not_below_a_later_one() {
        let mut b = Builder::new();
        let inputs = b.source(0, 0, 4, Outcome::Committed);
        b.h.group_offsets.clear();
        b.transform(1, &inputs);
        b.h.group_offsets.clear();
        let committed_at = b.h.txns.last().map(|t| t.ended_us).expect("a commit");
        // Asked before the commit returned: an older answer is fine.
        b.h.group_offsets.push(GroupOffsetSample {
            partition: 0,
            offset: 0,
            at_us: committed_at - 1,
        });
        assert!(run(&b.h).offsets_backwards.count == 0);
        // Asked after it: the answer must include it.
        b.h.group_offsets.push(GroupOffsetSample {
            partition: 1,
            offset: 0,
            at_us: committed_at + 1,
        });
        let v = run(&b.h);
        assert_eq!(v.offsets_backwards.count, 1, "{v:#?}");
        assert_eq!(v.offsets_backwards.examples[0].floor_from, "commit");
    }

    #[test]
    fn every_anomaly_kind_has_a_name() {
        let v = EosVerdict::default();
        let names: HashSet<&str> = v.anomaly_counts().iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), 11);
        assert!(v.passed());
    }
}
