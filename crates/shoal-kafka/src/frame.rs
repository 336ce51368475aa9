//! Length-prefixed frames: `int32 size` + `size` bytes (Kafka's "Common Request and Response
//! Structure").
//!
//! Invariants: the size is checked against `socket.request.max.bytes` *before* any buffer is
//! grown for it, and the buffer grows at most to twice the bytes that actually arrived, so a
//! peer that announces a large frame but sends nothing costs no memory. Frames are split off one shared
//! read buffer as `Bytes` (no copy): `kafka-protocol` decodes records as slices of it, and a
//! burst of pipelined requests arrives in one read syscall. `read_frame` is cancel-safe: every
//! partial read stays in the buffer, and so does a granted pool reservation.
//!
//! Bounds across connections (issue #15): once a frame's size prefix has arrived, its size is
//! reserved from the node's request [`MemoryPool`] (`queued.max.request.bytes`) before any
//! more of the socket is read; while the pool cannot grant it the socket is not read, and a
//! frame larger than the whole pool is refused. Once a frame's first byte has arrived, the
//! whole frame must arrive within `socket.request.read.timeout.ms`, so a peer trickling a
//! frame cannot hold its reservation, or the connection, forever. Only time the server spends
//! reading counts: the clock of a frame whose first bytes came with the previous one starts
//! when the server reads again (after handling that one, or after a full pipeline drained),
//! and starts again when the pool grants the frame's memory.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::error::FrameError;
use crate::memory_pool::{MemoryPool, Reservation};

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

/// One request frame and the pool memory reserved for it (released when dropped).
pub(crate) struct Frame {
    pub payload: Bytes,
    pub reservation: Reservation,
}

/// What bounds a [`FrameReader`].
#[derive(Debug, Clone)]
pub(crate) struct FrameLimits {
    /// `socket.request.max.bytes`.
    pub max_frame_bytes: usize,
    /// `queued.max.request.bytes`, shared by every connection of the node.
    pub pool: Arc<MemoryPool>,
    /// `socket.request.read.timeout.ms`.
    pub read_timeout: Duration,
}

/// Reads frames from one socket.
pub(crate) struct FrameReader<R> {
    reader: R,
    buffer: BytesMut,
    limits: FrameLimits,
    /// The current frame's reservation, once its size prefix has arrived and the pool granted it.
    reservation: Option<Reservation>,
    /// When the server began waiting for the rest of the current frame: its first byte's arrival,
    /// the server's return to reading, or the pool's grant, whichever is latest.
    frame_started: Option<Instant>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(reader: R, limits: FrameLimits) -> FrameReader<R> {
        assert!(
            limits.max_frame_bytes > 0,
            "socket.request.max.bytes must be positive"
        );
        FrameReader {
            reader,
            buffer: BytesMut::with_capacity(READ_CHUNK_MIN_BYTES),
            limits,
            reservation: None,
            frame_started: None,
        }
    }

    /// Bytes read from the socket but not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// The next frame (without the size prefix), or `None` on a clean end of stream at a frame
    /// boundary.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        // Bytes of the next frame that came with the last one start its clock only now that
        // the server reads again: time spent handling requests is not the peer's.
        if self.frame_started.is_none() && !self.buffer.is_empty() {
            self.frame_started = Some(Instant::now());
        }
        loop {
            let missing_bytes = match self.split_frame().await? {
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
            let read = self.reader.read_buf(&mut self.buffer);
            let read_bytes = match self.frame_started {
                Some(started) => {
                    let deadline = started + self.limits.read_timeout;
                    match tokio::time::timeout_at(deadline, read).await {
                        Ok(read) => read?,
                        Err(_elapsed) => {
                            return Err(FrameError::ReadTimeout {
                                read_timeout_ms: u64::try_from(
                                    self.limits.read_timeout.as_millis(),
                                )
                                .unwrap_or(u64::MAX),
                                buffered_bytes: self.buffer.len(),
                            });
                        }
                    }
                }
                None => read.await?,
            };
            if read_bytes == 0 {
                return if self.buffer.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::TruncatedFrame {
                        buffered_bytes: self.buffer.len(),
                    })
                };
            }
            if self.frame_started.is_none() {
                self.frame_started = Some(Instant::now());
            }
        }
    }

    /// Splits one complete frame off the buffer, or says how many more bytes are needed.
    /// Reserves the frame's size from the pool first, waiting while the pool is full.
    async fn split_frame(&mut self) -> Result<Result<Frame, usize>, FrameError> {
        if self.buffer.len() < SIZE_PREFIX_BYTES {
            return Ok(Err(SIZE_PREFIX_BYTES - self.buffer.len()));
        }
        let declared = i32::from_be_bytes([
            self.buffer[0],
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
        ]);
        let size_bytes = validate_frame_size(declared, self.limits.max_frame_bytes)?;
        let reservation = match self.reservation.take() {
            Some(reservation) => reservation,
            None => self.reserve(size_bytes).await?,
        };
        let total_bytes = SIZE_PREFIX_BYTES + size_bytes;
        if self.buffer.len() < total_bytes {
            self.reservation = Some(reservation);
            return Ok(Err(total_bytes - self.buffer.len()));
        }
        self.buffer.advance(SIZE_PREFIX_BYTES);
        let payload = self.buffer.split_to(size_bytes).freeze();
        // Bytes already here belong to the next frame; its clock starts when it is read.
        self.frame_started = None;
        Ok(Ok(Frame {
            payload,
            reservation,
        }))
    }

    /// `size_bytes` from the pool; while the pool is full, the socket is not read.
    async fn reserve(&mut self, size_bytes: usize) -> Result<Reservation, FrameError> {
        let pool = &self.limits.pool;
        if size_bytes > pool.capacity_bytes() {
            return Err(FrameError::LargerThanPool {
                size_bytes,
                pool_bytes: pool.capacity_bytes(),
            });
        }
        if let Some(reservation) = pool.try_reserve(size_bytes) {
            return Ok(reservation);
        }
        shoal_metrics::record_request_pool_wait();
        let reservation = pool.reserve(size_bytes).await;
        // The read timeout counts from the grant: the wait was not the peer's doing.
        self.frame_started = Some(Instant::now());
        Ok(reservation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_frame_bytes: usize, pool_bytes: usize) -> FrameLimits {
        FrameLimits {
            max_frame_bytes,
            pool: MemoryPool::new(pool_bytes),
            read_timeout: Duration::from_secs(30),
        }
    }

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
        let mut reader = FrameReader::new(bytes, limits(100, 1000));
        assert_eq!(
            reader.read_frame().await.unwrap().unwrap().payload.as_ref(),
            &[7, 8]
        );
        assert_eq!(
            reader.read_frame().await.unwrap().unwrap().payload.as_ref(),
            &[9]
        );
        assert!(reader.read_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error() {
        let bytes: &[u8] = &[0, 0, 0, 5, 1, 2];
        let mut reader = FrameReader::new(bytes, limits(100, 1000));
        assert!(matches!(
            reader.read_frame().await,
            Err(FrameError::TruncatedFrame { buffered_bytes: 6 })
        ));
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_buffering_it() {
        let bytes: &[u8] = &[0x0c, 0x80, 0, 0, 1, 2, 3];
        let mut reader = FrameReader::new(bytes, limits(100 * 1024 * 1024, 1000));
        assert!(matches!(
            reader.read_frame().await,
            Err(FrameError::TooLarge { .. })
        ));
        assert!(reader.buffer.capacity() <= 2 * READ_CHUNK_MIN_BYTES);
    }

    #[tokio::test]
    async fn a_large_frame_buffers_what_arrived_not_what_it_claims() {
        let mut bytes = vec![0x03, 0x20, 0, 0]; // 50 MiB, within both bounds
        bytes.resize(4 + 1000, 7);
        let limits = limits(100 * 1024 * 1024, 64 * 1024 * 1024);
        let pool = Arc::clone(&limits.pool);
        let mut reader = FrameReader::new(&bytes[..], limits);
        assert!(matches!(
            reader.read_frame().await,
            Err(FrameError::TruncatedFrame {
                buffered_bytes: 1004
            })
        ));
        // The pool holds the claim; the buffer only what arrived.
        assert_eq!(pool.used_bytes(), 50 * 1024 * 1024);
        assert!(reader.buffer.capacity() <= 2 * READ_CHUNK_MIN_BYTES);
        drop(reader);
        assert_eq!(pool.used_bytes(), 0);
    }

    #[tokio::test]
    async fn frame_larger_than_the_pool_is_refused() {
        let bytes: &[u8] = &[0, 0, 0, 101, 1, 2, 3];
        let mut reader = FrameReader::new(bytes, limits(1000, 100));
        assert!(matches!(
            reader.read_frame().await,
            Err(FrameError::LargerThanPool {
                size_bytes: 101,
                pool_bytes: 100
            })
        ));
    }

    #[tokio::test]
    async fn a_frame_holds_its_reservation_until_dropped() {
        let bytes: &[u8] = &[0, 0, 0, 2, 7, 8];
        let limits = limits(100, 10);
        let pool = Arc::clone(&limits.pool);
        let mut reader = FrameReader::new(bytes, limits);
        let frame = reader.read_frame().await.unwrap().unwrap();
        assert_eq!(pool.used_bytes(), 2);
        drop(frame);
        assert_eq!(pool.used_bytes(), 0);
    }
}
