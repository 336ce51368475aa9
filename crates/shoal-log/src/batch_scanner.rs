//! Sequential walk over the batches of a segment file, for recovery and index rebuilds.
//!
//! Reads go through one fixed window (at most `SCAN_WINDOW_BYTES`), so scanning a 1 GiB
//! segment of small batches costs ~1000 reads, not one per batch, and a corrupt `batchLength`
//! can never size an allocation: a batch larger than the window has its CRC computed
//! piecewise through the window. The scanner reports the first batch that is torn or invalid
//! and stops; deciding what to do about it (truncate) is the caller's job.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::batch::{CRC_COVERED_FROM, RECORD_BATCH_HEADER_BYTES, RecordBatchHeader};
use crate::error::{IoResultExt, Result};

/// Size of the read window.
const SCAN_WINDOW_BYTES: usize = 1 << 20;

/// How much of each batch to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Header structure only (trusted data: tail of a cleanly closed segment).
    Header,
    /// Header and CRC-32C of the whole batch (recovery).
    Crc,
}

/// What the scanner found at its position.
#[derive(Debug)]
pub(crate) enum Scanned {
    Batch {
        position: u64,
        header: RecordBatchHeader,
    },
    /// The data at `position` is not a whole valid batch; scanning stops here.
    Invalid {
        position: u64,
        reason: String,
    },
    End,
}

pub(crate) struct BatchScanner {
    file: Arc<File>,
    path: PathBuf,
    end: u64,
    position: u64,
    verify: Verify,
    window: Vec<u8>,
    window_start: u64,
    window_len: usize,
    stopped: bool,
}

impl BatchScanner {
    /// Scans `[start, end)` of `file`; `start` must be a batch boundary.
    pub(crate) fn new(
        file: Arc<File>,
        path: PathBuf,
        start: u64,
        end: u64,
        verify: Verify,
    ) -> Self {
        debug_assert!(start <= end);
        let window_bytes =
            usize::try_from(end - start).map_or(SCAN_WINDOW_BYTES, |n| n.min(SCAN_WINDOW_BYTES));
        Self {
            file,
            path,
            end,
            position: start,
            verify,
            window: vec![0; window_bytes.max(RECORD_BATCH_HEADER_BYTES)],
            window_start: start,
            window_len: 0,
            stopped: false,
        }
    }

    pub(crate) fn next_batch(&mut self) -> Result<Scanned> {
        if self.stopped || self.position == self.end {
            return Ok(Scanned::End);
        }
        let position = self.position;
        let remaining = self.end - position;
        if remaining < RECORD_BATCH_HEADER_BYTES as u64 {
            return Ok(self.invalid(format!(
                "{remaining} trailing bytes are shorter than a batch header"
            )));
        }
        let header =
            match RecordBatchHeader::parse(self.bytes_at(position, RECORD_BATCH_HEADER_BYTES)?) {
                Ok(header) => header,
                Err(e) => return Ok(self.invalid(e.to_string())),
            };
        let size_bytes = header.size_bytes() as u64;
        if size_bytes > remaining {
            return Ok(self.invalid(format!(
                "batch at base offset {} claims {size_bytes} bytes but only {remaining} remain",
                header.base_offset
            )));
        }
        if self.verify == Verify::Crc {
            let computed =
                self.crc_of(position + CRC_COVERED_FROM as u64, position + size_bytes)?;
            if computed != header.crc {
                return Ok(self.invalid(format!(
                    "CRC mismatch at base offset {}: stored {:#010x}, computed {computed:#010x}",
                    header.base_offset, header.crc
                )));
            }
        }
        self.position += size_bytes;
        Ok(Scanned::Batch { position, header })
    }

    fn invalid(&mut self, reason: String) -> Scanned {
        self.stopped = true;
        Scanned::Invalid {
            position: self.position,
            reason,
        }
    }

    /// CRC-32C of `[from, to)`, read through the window.
    fn crc_of(&mut self, from: u64, to: u64) -> Result<u32> {
        let mut crc = 0;
        let mut at = from;
        while at < to {
            let chunk =
                usize::try_from(to - at).map_or(self.window.len(), |n| n.min(self.window.len()));
            crc = crc32c::crc32c_append(crc, self.bytes_at(at, chunk)?);
            at += chunk as u64;
        }
        Ok(crc)
    }

    /// `len` (<= window size) bytes at `at` (< end), refilling the window if needed.
    fn bytes_at(&mut self, at: u64, len: usize) -> Result<&[u8]> {
        debug_assert!(len <= self.window.len() && at + len as u64 <= self.end);
        let in_window = at >= self.window_start
            && at + len as u64 <= self.window_start + self.window_len as u64;
        if !in_window {
            let fill = usize::try_from(self.end - at)
                .map_or(self.window.len(), |n| n.min(self.window.len()));
            self.file
                .read_exact_at(&mut self.window[..fill], at)
                .at(&self.path)?;
            self.window_start = at;
            self.window_len = fill;
        }
        let offset = (at - self.window_start) as usize;
        Ok(&self.window[offset..offset + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::build_batch;
    use std::io::Write;

    fn scan_all(bytes: &[u8], verify: Verify) -> Vec<Scanned> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        let mut scanner = BatchScanner::new(
            Arc::new(file),
            PathBuf::from("test"),
            0,
            bytes.len() as u64,
            verify,
        );
        let mut found = Vec::new();
        loop {
            match scanner.next_batch().unwrap() {
                Scanned::End => return found,
                other => found.push(other),
            }
        }
    }

    #[test]
    fn walks_batches_larger_than_the_window() {
        let big = vec![9u8; SCAN_WINDOW_BYTES + 12_345];
        let mut bytes = build_batch(0, 0, &[b"small"]);
        bytes.extend_from_slice(&build_batch(1, 0, &[&big, b"x"]));
        bytes.extend_from_slice(&build_batch(3, 0, &[b"tail"]));
        let found = scan_all(&bytes, Verify::Crc);
        let offsets: Vec<_> = found
            .iter()
            .map(|s| match s {
                Scanned::Batch { header, .. } => header.base_offset,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(offsets, vec![0, 1, 3]);
    }

    #[test]
    fn stops_at_a_crc_mismatch_only_when_verifying() {
        let mut bytes = build_batch(0, 0, &[b"a"]);
        let second_at = bytes.len() as u64;
        bytes.extend_from_slice(&build_batch(1, 0, &[b"b"]));
        bytes.extend_from_slice(&build_batch(2, 0, &[b"c"]));
        bytes[second_at as usize + 65] ^= 1;
        let found = scan_all(&bytes, Verify::Crc);
        assert_eq!(found.len(), 2);
        assert!(matches!(found[1], Scanned::Invalid { position, .. } if position == second_at));
        assert_eq!(scan_all(&bytes, Verify::Header).len(), 3);
    }

    #[test]
    fn torn_tails_are_invalid() {
        let batch = build_batch(0, 0, &[b"abc"]);
        for cut in [10, 61, batch.len() - 1] {
            let mut bytes = build_batch(5, 0, &[b"x"]);
            let torn_at = bytes.len() as u64;
            bytes.extend_from_slice(&batch[..cut]);
            let found = scan_all(&bytes, Verify::Header);
            assert_eq!(found.len(), 2, "cut at {cut}");
            assert!(matches!(found[1], Scanned::Invalid { position, .. } if position == torn_at));
        }
    }
}
