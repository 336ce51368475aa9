//! Transactions in compaction: which batches of aborted transactions the cleaner removes, when
//! a transaction marker may go, and which aborted-transaction entries a cleaned segment keeps
//! (Kafka's `CleanedTransactionMetadata` and the batch rules of `LogCleaner.cleanInto`).
//!
//! **Which transactions were aborted** comes from the segments' aborted-transaction entries
//! (`txn_index`), walked in offset order beside the batches: a producer is "in an aborted
//! transaction" from an entry's `first_offset` until that transaction's ABORT marker. Its
//! batches there are aborted: they add no keys to the cleaner's map (they must not shadow an
//! earlier value of their key) and are removed whole. Any other transactional batch belongs to
//! a committed transaction (the cleaner never reads at or above the last stable offset, so every
//! transaction it sees is decided) and is compacted by key like any batch.
//!
//! **Entries are read lazily.** The walk needs every entry whose transaction began at or before
//! the batch at hand. Entries are stored in marker order, not start order, so [`CleanedTxns`]
//! reads ahead until it has read an entry whose `last_stable_offset` is past the batch: when
//! that abort was written no other transaction that began at or before the batch was still
//! open, so every such transaction's entry comes before it (the rule Kafka's
//! `collectAbortedTxns` stops by). What is held is the entries read but not yet begun and the
//! aborted transactions in progress, not the whole index.
//!
//! **A marker may go** only once no data batch of its transaction remains (Kafka's rule): an
//! ABORT marker when the pass saw no batch of its transaction — a pass that sees some removes
//! them and keeps the marker and its entry until the next pass; a COMMIT marker when the pass
//! traversed no batch of its transaction, kept or not. Then its delete horizon applies (KIP-534,
//! as Kafka 2.8+ does for markers): the pass that first finds it removable rewrites it with the
//! delete-horizon attribute (0x40) and `baseTimestamp` = now + `delete.retention.ms` (record
//! timestamps unchanged); a pass at or after that time removes it. So a `read_committed`
//! consumer that read a transaction's data, or an aborted list naming it, before its last data
//! went has `delete.retention.ms` to reach the marker. The horizon lives in the batch, so it
//! survives restarts and travels to followers with the bytes.
//!
//! **Producer state.** A marker the partition's producer state may still need stays whole
//! ([`ActiveProducers`]): one at or above the offset of the producer snapshot a restart replays
//! from (a replay from there must see the end of every transaction the snapshot holds open, or
//! the last stable offset would stick), and the last one of a producer the state tracks (it
//! holds the producer's epoch, for fencing, after a restart without a snapshot).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::batch::RecordBatchHeader;
use crate::batch::{CRC_COVERED_FROM, LOG_OVERHEAD_BYTES, RECORD_BATCH_HEADER_BYTES};
use crate::compression;
use crate::control::{ControlType, parse_marker};
use crate::error::{IoResultExt, LogError, Result};
use crate::record_view::records;
use crate::txn_index::{AbortedTxn, TXN_INDEX_ENTRY_BYTES, TXN_INDEX_VERSION};

/// Kafka's `RecordBatch` attribute bit 6: `baseTimestamp` holds the batch's delete horizon.
pub const DELETE_HORIZON_BIT: i16 = 0x40;
const ATTRIBUTES_AT: usize = 21;
const BASE_TIMESTAMP_AT: usize = 27;
/// Entries read from an index file per `pread`.
const READ_CHUNK_ENTRIES: usize = 1024;

/// What the partition's producer state needs the cleaner to keep (Kafka's
/// `lastRecordsOfActiveProducers`, plus the snapshot bound; see the module docs). The default
/// keeps nothing: a caller with a producer state must say what it tracks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActiveProducers {
    /// Producer id → (epoch, last offset of its last data batch, if one is recorded).
    producers: HashMap<i64, (i16, Option<i64>)>,
    /// The producer snapshot's offset: markers at or above it are kept.
    snapshot_offset: Option<i64>,
}

impl ActiveProducers {
    /// `snapshot_offset`: where a restart's producer-state replay starts (`None`: no bound).
    pub fn new(snapshot_offset: Option<i64>) -> Self {
        Self {
            producers: HashMap::new(),
            snapshot_offset,
        }
    }

    /// A producer the state tracks: its current epoch and the last offset of its last data
    /// batch, if it has one here.
    pub fn insert(&mut self, producer_id: i64, epoch: i16, last_data_offset: Option<i64>) {
        self.producers
            .insert(producer_id, (epoch, last_data_offset));
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Whether the control batch `header` must stay whatever its transaction: it is at or
    /// above the snapshot, or it may be the last entry of a tracked producer (its epoch is the
    /// producer's and no data batch of the producer is recorded after it).
    pub(crate) fn keeps_marker(&self, header: &RecordBatchHeader) -> bool {
        if self
            .snapshot_offset
            .is_some_and(|snapshot| header.last_offset() >= snapshot)
        {
            return true;
        }
        self.producers
            .get(&header.producer_id)
            .is_some_and(|(epoch, last_data_offset)| {
                header.producer_epoch >= *epoch
                    && last_data_offset.is_none_or(|data| header.base_offset > data)
            })
    }
}

/// A batch as the transaction tracking sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxnBatch {
    pub(crate) producer_id: i64,
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) is_transactional: bool,
}

impl From<&RecordBatchHeader> for TxnBatch {
    fn from(header: &RecordBatchHeader) -> Self {
        Self {
            producer_id: header.producer_id,
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            is_transactional: header.is_transactional(),
        }
    }
}

/// What a control batch is, for the cleaner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Abort,
    Commit,
    /// Another control type, or one whose record cannot be read: kept.
    Other,
    /// No records (emptied by another cleaner): nothing reads it.
    Empty,
}

/// The kind of the control batch `batch` and, if its record cannot be read, why.
pub(crate) fn classify_control(
    header: &RecordBatchHeader,
    batch: &[u8],
) -> (Control, Option<String>) {
    if header.record_count < 1 {
        return (Control::Empty, None);
    }
    match parse_marker(batch) {
        Ok(Some((ControlType::Abort, _))) => (Control::Abort, None),
        Ok(Some((ControlType::Commit, _))) => (Control::Commit, None),
        Ok(None) => (Control::Other, None),
        Err(error) => (Control::Other, Some(error.to_string())),
    }
}

/// The transaction a data batch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataTxn {
    None,
    Committed,
    Aborted,
}

/// What happens to a control batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkerFate {
    Keep,
    /// Kept, rewritten with this delete horizon.
    SetHorizon(i64),
    Remove,
}

/// A control batch's situation in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkerCase {
    /// No data batch of its transaction remains ([`CleanedTxns::on_control`]).
    pub(crate) removable: bool,
    /// Its delete horizon, if a pass set one.
    pub(crate) horizon_ms: Option<i64>,
    /// The producer state needs it ([`ActiveProducers::keeps_marker`]).
    pub(crate) protected: bool,
    /// It holds no records.
    pub(crate) empty: bool,
}

/// Kafka's rules for a control batch (see the module docs).
pub(crate) fn marker_fate(case: MarkerCase, now_ms: i64, delete_retention_ms: i64) -> MarkerFate {
    if !case.removable {
        return MarkerFate::Keep;
    }
    if case.empty {
        // Nothing to rewrite or to read: it stays only for the producer state.
        return if case.protected {
            MarkerFate::Keep
        } else {
            MarkerFate::Remove
        };
    }
    match case.horizon_ms {
        None => MarkerFate::SetHorizon(now_ms.saturating_add(delete_retention_ms.max(0))),
        Some(horizon) if horizon <= now_ms && !case.protected => MarkerFate::Remove,
        Some(_) => MarkerFate::Keep,
    }
}

/// The delete horizon a cleaner stored in the batch, if any (KIP-534).
pub(crate) fn delete_horizon(header: &RecordBatchHeader) -> Option<i64> {
    (header.attributes & DELETE_HORIZON_BIT != 0).then_some(header.base_timestamp)
}

/// The batch rewritten with the delete horizon `horizon_ms`: the attribute bit set,
/// `baseTimestamp` = the horizon, each record's timestamp delta moved so its timestamp stays;
/// recompressed with its codec, new length and CRC (Kafka's `MemoryRecordsBuilder` with a
/// `deleteHorizonMs`).
pub(crate) fn with_delete_horizon(
    header: &RecordBatchHeader,
    batch: &[u8],
    horizon_ms: i64,
) -> Result<Vec<u8>> {
    let packed = batch
        .get(RECORD_BATCH_HEADER_BYTES..header.size_bytes())
        .ok_or_else(|| LogError::CorruptRecord("a batch shorter than its length".to_owned()))?;
    let section = compression::decompress(
        header.compression_codec(),
        packed,
        compression::MAX_DECOMPRESSED_BYTES,
    )?;
    let count = usize::try_from(header.record_count).unwrap_or(0);
    let mut plain = Vec::with_capacity(section.len() + 10 * count);
    for record in records(&section, count)? {
        let timestamp = header
            .base_timestamp
            .saturating_add(record.timestamp_delta_ms);
        put_record_with_delta(
            record.bytes,
            timestamp.saturating_sub(horizon_ms),
            &mut plain,
        )?;
    }
    let section = compression::compress(header.compression_codec(), &plain)?;
    let mut out = Vec::with_capacity(RECORD_BATCH_HEADER_BYTES + section.len());
    out.extend_from_slice(&batch[..RECORD_BATCH_HEADER_BYTES]);
    out.extend_from_slice(&section);
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES)
        .map_err(|_| LogError::InvalidRecord("a cleaned batch is too large".to_owned()))?;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = header.attributes | DELETE_HORIZON_BIT;
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    out[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&horizon_ms.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_COVERED_FROM..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Appends `record` (length prefix included, as `RecordView::bytes`) to `out` with its
/// timestamp delta replaced by `delta`.
fn put_record_with_delta(record: &[u8], delta: i64, out: &mut Vec<u8>) -> Result<()> {
    let mut at = 0;
    get_varlong(record, &mut at)?; // the length
    let attributes_at = at;
    at += 1;
    get_varlong(record, &mut at)?; // the old delta
    let rest = record
        .get(at..)
        .ok_or_else(|| LogError::InvalidRecord("a record shorter than its header".to_owned()))?;
    let mut body = Vec::with_capacity(1 + 10 + rest.len());
    body.push(record[attributes_at]);
    put_varlong(&mut body, delta);
    body.extend_from_slice(rest);
    put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
    Ok(())
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn get_varlong(buf: &[u8], at: &mut usize) -> Result<i64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *buf
            .get(*at)
            .ok_or_else(|| LogError::InvalidRecord("a varint runs past the record".to_owned()))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(LogError::InvalidRecord(
        "a varint is longer than 10 bytes".to_owned(),
    ))
}

/// An aborted transaction being walked through.
#[derive(Debug, Clone, Copy)]
struct InProgress {
    txn: AbortedTxn,
    /// The pass saw a batch of it (and removed it).
    data_seen: bool,
}

/// Entries ordered by first offset (then marker), for the heap of those not yet begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ByStart(i64, i64, i64, i64);

impl ByStart {
    fn of(txn: AbortedTxn) -> Self {
        Self(
            txn.first_offset,
            txn.last_offset,
            txn.producer_id,
            txn.last_stable_offset,
        )
    }

    fn txn(self) -> AbortedTxn {
        AbortedTxn {
            producer_id: self.2,
            first_offset: self.0,
            last_offset: self.1,
            last_stable_offset: self.3,
        }
    }
}

/// The transaction state of one walk over the log in offset order (Kafka's
/// `CleanedTransactionMetadata`): fed every batch in order, it says which data batches are
/// aborted, whether a marker's transaction has data left, and which aborted-transaction entries
/// the walked segments keep. `entries` yields the walked segments' entries in order, then those
/// of later segments whose transactions began in the walked range.
pub(crate) struct CleanedTxns<I> {
    entries: I,
    entries_done: bool,
    /// The largest `last_stable_offset` read: every entry of a transaction that began below it
    /// has been read.
    read_through: i64,
    /// Read, not yet begun, by first offset.
    upcoming: BinaryHeap<Reverse<ByStart>>,
    aborted: HashMap<i64, InProgress>,
    /// `aborted` by marker offset, to end those whose marker the walk passed without seeing.
    aborted_by_end: BTreeSet<(i64, i64)>,
    /// Producers whose (committed) transaction the walk is in.
    committed: HashSet<i64>,
    /// Entries kept so far, in marker order, for [`Self::end_segment`].
    retained: Vec<AbortedTxn>,
}

impl<I: Iterator<Item = Result<AbortedTxn>>> CleanedTxns<I> {
    pub(crate) fn new(entries: I) -> Self {
        Self {
            entries,
            entries_done: false,
            read_through: i64::MIN,
            upcoming: BinaryHeap::new(),
            aborted: HashMap::new(),
            aborted_by_end: BTreeSet::new(),
            committed: HashSet::new(),
            retained: Vec::new(),
        }
    }

    /// A data batch: which transaction it is in (Kafka's `onBatchRead`).
    pub(crate) fn on_data(&mut self, batch: TxnBatch) -> Result<DataTxn> {
        self.advance(batch)?;
        if !batch.is_transactional {
            return Ok(DataTxn::None);
        }
        if let Some(in_progress) = self.aborted.get_mut(&batch.producer_id) {
            in_progress.data_seen = true;
            return Ok(DataTxn::Aborted);
        }
        self.committed.insert(batch.producer_id);
        Ok(DataTxn::Committed)
    }

    /// A control batch: true if no data batch of its transaction remains, so it may go once
    /// its horizon passed (Kafka's `onControlBatchRead`). An ABORT marker whose transaction's
    /// data this walk saw keeps its entry.
    pub(crate) fn on_control(&mut self, batch: TxnBatch, control: Control) -> Result<bool> {
        self.advance(batch)?;
        let producer_id = batch.producer_id;
        Ok(match control {
            Control::Abort => {
                // Data taken for committed (an index without this entry) keeps the marker too.
                let traversed = self.committed.remove(&producer_id);
                match self.end_aborted(producer_id) {
                    Some(in_progress) if in_progress.data_seen => {
                        self.retained.push(in_progress.txn);
                        false
                    }
                    _ => !traversed,
                }
            }
            Control::Commit => !self.committed.remove(&producer_id),
            Control::Other => false,
            Control::Empty => true,
        })
    }

    /// The walk reached `end_offset` (the end of a segment, or of a cleaned run): ends the
    /// aborted transactions whose marker lies below it (a marker not seen as one keeps the
    /// entry if the walk removed data under it) and returns the entries kept below it.
    pub(crate) fn end_segment(&mut self, end_offset: i64) -> Vec<AbortedTxn> {
        self.end_before(end_offset);
        std::mem::take(&mut self.retained)
    }

    /// Before a batch: ends what it passed, then begins every transaction that begins in it.
    fn advance(&mut self, batch: TxnBatch) -> Result<()> {
        self.end_before(batch.base_offset);
        while !self.entries_done && self.read_through <= batch.last_offset {
            match self.entries.next() {
                Some(entry) => {
                    let entry = entry?;
                    self.read_through = self.read_through.max(entry.last_stable_offset);
                    self.upcoming.push(Reverse(ByStart::of(entry)));
                }
                None => self.entries_done = true,
            }
        }
        while let Some(Reverse(next)) = self.upcoming.peek().copied()
            && next.0 <= batch.last_offset
        {
            self.upcoming.pop();
            let txn = next.txn();
            // Its marker is behind the walk (gone): nothing of it is here to remove.
            if txn.last_offset < batch.base_offset {
                continue;
            }
            // One transaction per producer at a time; a second entry would be a broken index.
            if let std::collections::hash_map::Entry::Vacant(slot) =
                self.aborted.entry(txn.producer_id)
            {
                slot.insert(InProgress {
                    txn,
                    data_seen: false,
                });
                self.aborted_by_end
                    .insert((txn.last_offset, txn.producer_id));
            }
        }
        Ok(())
    }

    fn end_before(&mut self, offset: i64) {
        while let Some(&(last_offset, producer_id)) = self.aborted_by_end.first()
            && last_offset < offset
        {
            if let Some(in_progress) = self.end_aborted(producer_id)
                && in_progress.data_seen
            {
                self.retained.push(in_progress.txn);
            }
        }
    }

    fn end_aborted(&mut self, producer_id: i64) -> Option<InProgress> {
        let in_progress = self.aborted.remove(&producer_id)?;
        self.aborted_by_end
            .remove(&(in_progress.txn.last_offset, producer_id));
        Some(in_progress)
    }
}

/// The entries of the index files at `paths` (in order; a missing file has none), read in
/// chunks, then `after` (entries of later segments, already in memory).
pub(crate) struct IndexEntries {
    paths: VecDeque<PathBuf>,
    current: Option<(File, PathBuf, u64)>,
    position: u64,
    chunk: Vec<u8>,
    chunk_at: usize,
    after: std::vec::IntoIter<AbortedTxn>,
}

impl IndexEntries {
    pub(crate) fn new(paths: Vec<PathBuf>, after: Vec<AbortedTxn>) -> Self {
        Self {
            paths: paths.into(),
            current: None,
            position: 0,
            chunk: Vec::new(),
            chunk_at: 0,
            after: after.into_iter(),
        }
    }

    fn next_entry(&mut self) -> Result<Option<AbortedTxn>> {
        loop {
            if self.chunk_at < self.chunk.len() {
                let mut raw = [0u8; TXN_INDEX_ENTRY_BYTES];
                raw.copy_from_slice(
                    &self.chunk[self.chunk_at..self.chunk_at + TXN_INDEX_ENTRY_BYTES],
                );
                self.chunk_at += TXN_INDEX_ENTRY_BYTES;
                let path = self.current.as_ref().map(|(_, p, _)| p.clone());
                return AbortedTxn::decode(&raw)
                    .map(Some)
                    .map_err(|version| LogError::CorruptIndex {
                        path: path.unwrap_or_default(),
                        reason: format!(
                            "an entry has version {version}; this broker reads version {TXN_INDEX_VERSION} only"
                        ),
                    });
            }
            if let Some((file, path, whole_bytes)) = &self.current {
                if self.position < *whole_bytes {
                    let len = (*whole_bytes - self.position)
                        .min((READ_CHUNK_ENTRIES * TXN_INDEX_ENTRY_BYTES) as u64)
                        as usize;
                    self.chunk.resize(len, 0);
                    file.read_exact_at(&mut self.chunk, self.position)
                        .at(path)?;
                    self.position += len as u64;
                    self.chunk_at = 0;
                    continue;
                }
                self.current = None;
            }
            let Some(path) = self.paths.pop_front() else {
                return Ok(self.after.next());
            };
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at(&path),
            };
            let size_bytes = file.metadata().at(&path)?.len();
            // A torn last entry is not one (the log cuts it at open).
            let whole_bytes = size_bytes - size_bytes % TXN_INDEX_ENTRY_BYTES as u64;
            self.current = Some((file, path, whole_bytes));
            self.position = 0;
            self.chunk.clear();
            self.chunk_at = 0;
        }
    }
}

impl Iterator for IndexEntries {
    type Item = Result<AbortedTxn>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// Writes `entries` (in marker order) to `path` as an index file, fsynced; an empty list makes
/// an empty file (a cleaned segment without entries: its swap removes the old index).
pub(crate) fn write_entries(path: &Path, entries: &[AbortedTxn]) -> Result<()> {
    let file = File::create(path).at(path)?;
    let mut out = std::io::BufWriter::new(file);
    for entry in entries {
        out.write_all(&entry.encode()).at(path)?;
    }
    let file = out.into_inner().map_err(|e| e.into_error()).at(path)?;
    file.sync_all().at(path)
}

#[cfg(test)]
#[path = "cleaner_txn_decisions_tests.rs"]
mod tests;
