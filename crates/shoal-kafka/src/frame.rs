//! Length-prefixed frames: `int32 size` + `size` bytes (Kafka's "Common Request and Response
//! Structure").
//!
//! Invariants: the size is checked against `socket.request.max.bytes` *before* any buffer is
//! grown for it, and the buffer grows at most to twice the bytes that actually arrived, so a
//! peer that announces a large frame but sends nothing costs no memory. Frames are split off one shared
//! read buffer as `Bytes` (no copy): `kafka-protocol` decodes records as slices of it, and a
//! burst of pipelined requests arrives in one read syscall. `read_frame` is cancel-safe: every
//! partial read stays in the buffer.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::FrameError;

/// Size of the `int32` length prefix.
const SIZE_PREFIX_BYTES: usize = 4;
/// Smallest read: lets several small pipelined requests arrive in one syscall.
const READ_CHUNK_MIN_BYTES: usize = 64 * 1024;

/// Checks a frame's declared size; a pure decision kept apart from the I/O.
pub(crate) fn validate_frame_size(size_bytes: i32, max_bytes: usize) -> Result<usize, FrameError> {
    if size_bytes <= 0 {
        return Err(FrameError::NonPositiveSize { size_bytes });
    }
    match usize::try_from(size_bytes) {
        Ok(size) if size <= max_bytes => Ok(size),
        _ => Err(FrameError::TooLarge {
            size_bytes,
            max_bytes,
        }),
    }
}

/// Reads frames from one socket.
pub(crate) struct FrameReader<R> {
    reader: R,
    buffer: BytesMut,
    max_frame_bytes: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(reader: R, max_frame_bytes: usize) -> FrameReader<R> {
        assert!(
            max_frame_bytes > 0,
            "socket.request.max.bytes must be positive"
        );
        FrameReader {
            reader,
            buffer: BytesMut::with_capacity(READ_CHUNK_MIN_BYTES),
            max_frame_bytes,
        }
    }

    /// Bytes read from the socket but not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// The next frame's payload (without the size prefix), or `None` on a clean end of stream
    /// at a frame boundary.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            let missing_bytes = match self.split_frame()? {
                Ok(frame) => return Ok(Some(frame)),
                Err(missing_bytes) => missing_bytes,
            };
            debug_assert!(missing_bytes > 0);
            // Room for at least one chunk; for a big frame, at most double what has arrived.
            let target_spare_bytes = missing_bytes
                .max(READ_CHUNK_MIN_BYTES)
                .min(self.buffer.len().max(READ_CHUNK_MIN_BYTES));
            if self.buffer.capacity() - self.buffer.len() < target_spare_bytes {
                self.buffer.reserve(target_spare_bytes);
            }
            if self.reader.read_buf(&mut self.buffer).await? == 0 {
                return if self.buffer.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::TruncatedFrame {
                        buffered_bytes: self.buffer.len(),
                    })
                };
            }
        }
    }

    /// Splits one complete frame off the buffer, or says how many more bytes are needed.
    fn split_frame(&mut self) -> Result<Result<Bytes, usize>, FrameError> {
        if self.buffer.len() < SIZE_PREFIX_BYTES {
            return Ok(Err(SIZE_PREFIX_BYTES - self.buffer.len()));
        }
        let declared = i32::from_be_bytes([
            self.buffer[0],
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
        ]);
        let size_bytes = validate_frame_size(declared, self.max_frame_bytes)?;
        let total_bytes = SIZE_PREFIX_BYTES + size_bytes;
        if self.buffer.len() < total_bytes {
            return Ok(Err(total_bytes - self.buffer.len()));
        }
        self.buffer.advance(SIZE_PREFIX_BYTES);
        Ok(Ok(self.buffer.split_to(size_bytes).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bounded() {
        assert!(matches!(
            validate_frame_size(0, 100),
            Err(FrameError::NonPositiveSize { .. })
        ));
        assert!(matches!(
            validate_frame_size(-1, 100),
            Err(FrameError::NonPositiveSize { .. })
        ));
        assert!(matches!(
            validate_frame_size(101, 100),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(validate_frame_size(100, 100).unwrap(), 100);
    }

    #[tokio::test]
    async fn splits_pipelined_frames_and_reports_clean_eof() {
        let bytes: &[u8] = &[0, 0, 0, 2, 7, 8, 0, 0, 0, 1, 9];
        let mut reader = FrameReader::new(bytes, 100);
        assert_eq!(
            reader.read_frame().await.unwrap().unwrap().as_ref(),
            &[7, 8]
        );
        assert_eq!(reader.read_frame().await.unwrap().unwrap().as_ref(), &[9]);
        assert!(reader.read_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error() {
        let bytes: &[u8] = &[0, 0, 0, 5, 1, 2];
        let mut reader = FrameReader::new(bytes, 100);
        assert!(matches!(
            reader.read_frame().await,
            Err(FrameError::TruncatedFrame { buffered_bytes: 6 })
        ));
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_buffering_it() {
        let bytes: &[u8] = &[0x0c, 0x80, 0, 0, 1, 2, 3];
        let mut reader = FrameReader::new(bytes, 100 * 1024 * 1024);
        assert!(matches!(
            reader.read_frame().await,
            Err(FrameError::TooLarge { .. })
        ));
        assert!(reader.buffer.capacity() <= 2 * READ_CHUNK_MIN_BYTES);
    }
}
