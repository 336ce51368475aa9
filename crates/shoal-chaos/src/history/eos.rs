//! What the exactly-once workload recorded: every transaction with the outcome its client was
//! told, every record a read_committed reader was handed during the run, the final reads of both
//! topics, and the samples of last stable offsets and group offsets.
//!
//! A record names its own transaction in its value (`eos:s:...` for the source stage,
//! `eos:t:...` for the transform stage, which also names the input record it was made from), so
//! whatever a reader finds in the log can be tied back to the transaction that wrote it and to
//! what that transaction's client was told. The checker (`checker::eos`) needs nothing else.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The stage that wrote a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// A transactional producer writing numbered records to the input topic.
    Source,
    /// A consume-transform-produce member: input records in, one output record each, the input
    /// offsets committed in the same transaction.
    Transform,
}

impl Stage {
    fn tag(self) -> &'static str {
        match self {
            Stage::Source => "s",
            Stage::Transform => "t",
        }
    }
}

/// One transaction: its stage, its writer (source producer index or transform member number)
/// and its number in that writer's sequence. A writer never reuses a number, also not across a
/// rebuilt client, so the id is unique in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TxnId {
    pub stage: Stage,
    pub writer: u32,
    pub txn: u64,
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}/{}", self.stage.tag(), self.writer, self.txn)
    }
}

/// One record: the `index`-th of its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RecordKey {
    pub txn: TxnId,
    pub index: u32,
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.txn, self.index)
    }
}

/// The input record an output record was made from, and where the transform read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct InputRef {
    pub key: RecordKey,
    pub partition: i32,
    pub offset: i64,
}

/// What a record's value carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EosValue {
    pub key: RecordKey,
    /// How many records its transaction holds.
    pub count: u32,
    /// Output records only: the input record it was made from.
    pub input: Option<InputRef>,
}

/// `eos:s:<producer>:<txn>:<index>:<count>` for a source record;
/// `eos:t:<member>:<txn>:<index>:<count>:<in producer>:<in txn>:<in index>:<in partition>:<in offset>`
/// for an output record.
impl fmt::Display for EosValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.key;
        write!(
            f,
            "eos:{}:{}:{}:{}:{}",
            k.txn.stage.tag(),
            k.txn.writer,
            k.txn.txn,
            k.index,
            self.count
        )?;
        if let Some(i) = &self.input {
            write!(
                f,
                ":{}:{}:{}:{}:{}",
                i.key.txn.writer, i.key.txn.txn, i.key.index, i.partition, i.offset
            )?;
        }
        Ok(())
    }
}

impl FromStr for EosValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fields: Vec<&str> = s.split(':').collect();
        let bad = || format!("record value {s:?} is not an eos record");
        let num = |i: usize| -> Result<u64, String> {
            fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(bad)
        };
        let small = |i: usize| -> Result<u32, String> { u32::try_from(num(i)?).map_err(|_| bad()) };
        if fields.first() != Some(&"eos") {
            return Err(bad());
        }
        let (stage, len) = match fields.get(1) {
            Some(&"s") => (Stage::Source, 6),
            Some(&"t") => (Stage::Transform, 11),
            _ => return Err(bad()),
        };
        if fields.len() != len {
            return Err(bad());
        }
        let key = RecordKey {
            txn: TxnId {
                stage,
                writer: small(2)?,
                txn: num(3)?,
            },
            index: small(4)?,
        };
        let input = if stage == Stage::Transform {
            let signed = |i: usize| -> Result<i64, String> {
                fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(bad)
            };
            Some(InputRef {
                key: RecordKey {
                    txn: TxnId {
                        stage: Stage::Source,
                        writer: small(6)?,
                        txn: num(7)?,
                    },
                    index: small(8)?,
                },
                partition: i32::try_from(signed(9)?).map_err(|_| bad())?,
                offset: signed(10)?,
            })
        } else {
            None
        };
        Ok(EosValue {
            key,
            count: small(5)?,
            input,
        })
    }
}

/// What a transaction's client was told at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// `commit_transaction` returned Ok: every record must be visible to read_committed.
    Committed,
    /// `abort_transaction` returned Ok: no record may be visible to read_committed.
    Aborted,
    /// Neither (a fatal error, a fenced producer, retries exhausted): either is fine, but all
    /// of its records or none.
    Unknown,
}

/// One transaction as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Txn {
    pub id: TxnId,
    /// Records it holds (the `count` in their values). A transaction is committed only once all
    /// of them were handed to the client.
    pub records: u32,
    /// Aborted by the workload on purpose (outcome Aborted unless the abort itself failed).
    pub abort_on_purpose: bool,
    pub outcome: Outcome,
    pub began_us: u64,
    pub ended_us: u64,
    /// Transform stage: the input offsets (next to read, per partition) sent with
    /// `send_offsets_to_transaction`.
    pub offsets: Vec<(i32, i64)>,
    /// The error that decided an unplanned abort or an unknown outcome.
    pub error: Option<String>,
}

/// Which of the two topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topic {
    Input,
    Output,
}

impl Topic {
    pub fn name(self) -> &'static str {
        match self {
            Topic::Input => "input",
            Topic::Output => "output",
        }
    }
}

/// Who was handed a record during the run; all of them read with isolation.level
/// read_committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reader {
    /// The observer, reading both topics from the start outside any group.
    Observer,
    /// The transform stage's consumer of this member.
    Transform(u32),
    /// The final read after the run.
    Final,
}

impl fmt::Display for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reader::Observer => write!(f, "observer"),
            Reader::Transform(m) => write!(f, "transform member {m}"),
            Reader::Final => write!(f, "final read"),
        }
    }
}

/// A record a read_committed reader was handed during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Read {
    pub reader: Reader,
    pub topic: Topic,
    pub partition: i32,
    pub offset: i64,
    pub value: EosValue,
    pub at_us: u64,
}

/// A record a final read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stored {
    pub topic: Topic,
    pub partition: i32,
    pub offset: i64,
    pub value: EosValue,
}

/// One partition's last stable offset (ListOffsets read_committed) and high watermark
/// (read_uncommitted), asked one after the other at about `at_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LsoSample {
    pub topic: Topic,
    pub partition: i32,
    pub lso: i64,
    pub high: i64,
    pub at_us: u64,
}

/// The transform group's committed offset of an input partition, from an OffsetFetch (with
/// require_stable) sent at `at_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GroupOffsetSample {
    pub partition: i32,
    pub offset: i64,
    pub at_us: u64,
}

/// Everything the exactly-once workload recorded.
#[derive(Debug, Default, Clone, Serialize)]
pub struct EosHistory {
    pub txns: Vec<Txn>,
    /// Records read_committed readers were handed during the run (observer, transform).
    pub reads: Vec<Read>,
    /// The final read_committed read of both topics, to their last stable offsets.
    pub final_committed: Vec<Stored>,
    /// The final read_uncommitted read of both topics, to their high watermarks.
    pub final_uncommitted: Vec<Stored>,
    pub lso: Vec<LsoSample>,
    pub group_offsets: Vec<GroupOffsetSample>,
    /// Clients thrown away after a fatal error and built again.
    pub client_rebuilds: u64,
    /// Client calls that did not return within their bound (the client was given up).
    pub stuck_calls: u64,
    /// Values in the topics that are not eos records (nothing else writes them: 0).
    pub foreign: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let source = EosValue {
            key: RecordKey {
                txn: TxnId {
                    stage: Stage::Source,
                    writer: 1,
                    txn: 42,
                },
                index: 3,
            },
            count: 10,
            input: None,
        };
        assert_eq!(source.to_string(), "eos:s:1:42:3:10");
        assert_eq!(source.to_string().parse::<EosValue>(), Ok(source));
        let output = EosValue {
            key: RecordKey {
                txn: TxnId {
                    stage: Stage::Transform,
                    writer: 2,
                    txn: 7,
                },
                index: 0,
            },
            count: 5,
            input: Some(InputRef {
                key: source.key,
                partition: 4,
                offset: 1234,
            }),
        };
        assert_eq!(output.to_string(), "eos:t:2:7:0:5:1:42:3:4:1234");
        assert_eq!(output.to_string().parse::<EosValue>(), Ok(output));
        for bad in [
            "",
            "0:1",
            "eos:s:1:2:3",
            "eos:x:1:2:3:4",
            "eos:s:1:2:3:4:5",
            "eos:t:1:2:3:4",
            "eos:s:-1:2:3:4",
            "eos:s:a:2:3:4",
        ] {
            assert!(bad.parse::<EosValue>().is_err(), "{bad}");
        }
    }
}
