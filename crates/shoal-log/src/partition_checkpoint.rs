//! The per-partition offsets that must survive a restart: log start, recovery point, HW.
//!
//! Kafka keeps these in three directory-wide files; Shoal keeps one small file per partition
//! directory so a partition moves or is deleted as one directory. The recovery point bounds
//! how much of the log an unclean start must rescan; the log start offset remembers
//! DeleteRecords that did not yet empty a segment; the high watermark lets a restarted leader
//! serve committed data before followers report in.
//!
//! Format (text, one value per line, written atomically):
//! ```text
//! 0
//! log-start-offset 0
//! recovery-point 1234
//! high-watermark 1200
//! ```

use std::path::Path;

use crate::checkpoint::{read_bounded, set_aside_damaged, write_atomically};
use crate::error::{LogError, Result};

/// File name inside the partition directory.
pub(crate) const PARTITION_CHECKPOINT_FILE: &str = "partition-checkpoint";
const VERSION: &str = "0";
const MAX_FILE_BYTES: u64 = 4096;
const KEYS: [&str; 3] = ["log-start-offset", "recovery-point", "high-watermark"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartitionCheckpoint {
    pub(crate) log_start_offset: i64,
    pub(crate) recovery_point: i64,
    pub(crate) high_watermark: i64,
}

impl PartitionCheckpoint {
    /// Reads the checkpoint of `dir`; `None` if the partition never wrote one, or if the file
    /// is damaged: then it is set aside and everything it held is derived again (a full
    /// recovery scan, the log start at the first segment, the HW at the log start until the
    /// leader advances it).
    pub(crate) fn read_or_set_aside(dir: &Path) -> Result<Option<Self>> {
        match Self::read(dir) {
            Err(LogError::CorruptCheckpoint { path, reason }) => {
                set_aside_damaged(&path, &reason)?;
                Ok(None)
            }
            other => other,
        }
    }

    pub(crate) fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(PARTITION_CHECKPOINT_FILE);
        let Some(text) = read_bounded(&path, MAX_FILE_BYTES)? else {
            return Ok(None);
        };
        Self::parse(&text)
            .map(Some)
            .map_err(|reason| LogError::CorruptCheckpoint { path, reason })
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        write_atomically(
            &dir.join(PARTITION_CHECKPOINT_FILE),
            self.encode().as_bytes(),
        )
    }

    fn encode(&self) -> String {
        let [start, recovery, hw] = KEYS;
        format!(
            "{VERSION}\n{start} {}\n{recovery} {}\n{hw} {}\n",
            self.log_start_offset, self.recovery_point, self.high_watermark
        )
    }

    fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut lines = text.lines();
        match lines.next() {
            Some(VERSION) => {}
            other => return Err(format!("unsupported version line {other:?}")),
        }
        let mut values = [0i64; 3];
        for (key, value) in KEYS.iter().zip(values.iter_mut()) {
            let line = lines.next().ok_or_else(|| format!("missing {key}"))?;
            let (found_key, number) = line
                .split_once(' ')
                .ok_or_else(|| format!("malformed line {line:?}"))?;
            if found_key != *key {
                return Err(format!("expected {key}, found {found_key:?}"));
            }
            *value = number
                .parse()
                .map_err(|_| format!("{key} is not an integer: {number:?}"))?;
            if *value < 0 {
                return Err(format!("{key} is negative: {value}"));
            }
        }
        if let Some(extra) = lines.next() {
            return Err(format!("unexpected trailing line {extra:?}"));
        }
        let [log_start_offset, recovery_point, high_watermark] = values;
        Ok(Self {
            log_start_offset,
            recovery_point,
            high_watermark,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(PartitionCheckpoint::read(dir.path()).unwrap(), None);
        let checkpoint = PartitionCheckpoint {
            log_start_offset: 5,
            recovery_point: 1_000,
            high_watermark: 990,
        };
        checkpoint.write(dir.path()).unwrap();
        assert_eq!(
            PartitionCheckpoint::read(dir.path()).unwrap(),
            Some(checkpoint)
        );
    }

    #[test]
    fn a_damaged_file_reads_as_none_and_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PARTITION_CHECKPOINT_FILE), b"\xffgarbage").unwrap();
        assert_eq!(
            PartitionCheckpoint::read_or_set_aside(dir.path()).unwrap(),
            None
        );
        assert!(!dir.path().join(PARTITION_CHECKPOINT_FILE).exists());
        assert!(dir.path().join("partition-checkpoint.damaged").exists());
    }

    #[test]
    fn rejects_damaged_text() {
        for text in [
            "",
            "1\nlog-start-offset 0\nrecovery-point 0\nhigh-watermark 0\n",
            "0\nlog-start-offset 0\nrecovery-point 0\n",
            "0\nlog-start-offset 0\nrecovery-point x\nhigh-watermark 0\n",
            "0\nlog-start-offset -1\nrecovery-point 0\nhigh-watermark 0\n",
            "0\nrecovery-point 0\nlog-start-offset 0\nhigh-watermark 0\n",
            "0\nlog-start-offset 0\nrecovery-point 0\nhigh-watermark 0\nmore\n",
        ] {
            assert!(
                PartitionCheckpoint::parse(text).is_err(),
                "accepted {text:?}"
            );
        }
    }
}
