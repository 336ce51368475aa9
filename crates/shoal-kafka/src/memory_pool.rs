//! The request memory pool: `queued.max.request.bytes`, one budget for request bytes across
//! every Kafka connection of the node (Kafka's `MemoryPool`).
//!
//! Why: `socket.request.max.bytes` bounds one frame, `max.connections` the connections, but
//! not their product: 12 connections each stalled partway through a 90 MiB frame once took a
//! node from 215 to 1,354 MiB of RSS. So a connection reserves its frame's declared size from
//! this pool as soon as the 4-byte size prefix has arrived, before it buffers the body; while
//! the pool cannot grant it, that connection does not read its socket (TCP flow control then
//! stops the sender). The reservation is released once the handler has taken the request (as
//! Kafka releases the buffer after `KafkaApis.handle`), or when the connection closes. A frame
//! larger than the whole pool could never be granted and is refused at once.
//!
//! Unlike a FIFO semaphore, a waiter does not queue behind a larger one: each waiter retries
//! whenever memory is released, so small requests of well-behaved clients keep flowing while a
//! large frame waits (stalled frames are themselves bounded by `socket.request.read.timeout.ms`,
//! so reserved memory always comes back). Kafka's default is -1 (unbounded); Shoal insists on
//! a bound, [`DEFAULT_QUEUED_MAX_REQUEST_BYTES`](crate::DEFAULT_QUEUED_MAX_REQUEST_BYTES).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// One node's pool of request bytes.
#[derive(Debug)]
pub struct MemoryPool {
    capacity_bytes: usize,
    used_bytes: AtomicUsize,
    released: Notify,
}

impl MemoryPool {
    /// A pool of `capacity_bytes` (must be positive).
    pub fn new(capacity_bytes: usize) -> Arc<MemoryPool> {
        assert!(
            capacity_bytes > 0,
            "queued.max.request.bytes must be positive"
        );
        shoal_metrics::record_request_pool_capacity(capacity_bytes);
        Arc::new(MemoryPool {
            capacity_bytes,
            used_bytes: AtomicUsize::new(0),
            released: Notify::new(),
        })
    }

    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// Bytes reserved now.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::Acquire)
    }

    /// Reserves `bytes` if they are free now.
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let mut used = self.used_bytes.load(Ordering::Acquire);
        loop {
            let after = used.checked_add(bytes)?;
            if after > self.capacity_bytes {
                return None;
            }
            match self.used_bytes.compare_exchange_weak(
                used,
                after,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    shoal_metrics::record_request_pool_use(bytes, true);
                    return Some(Reservation {
                        pool: Arc::clone(self),
                        bytes,
                    });
                }
                Err(now) => used = now,
            }
        }
    }

    /// Reserves `bytes`, waiting until they are free. `bytes` must not exceed the capacity
    /// (such a reservation could never be granted). Cancel-safe: dropped before it resolves,
    /// it has reserved nothing.
    pub async fn reserve(self: &Arc<Self>, bytes: usize) -> Reservation {
        debug_assert!(bytes <= self.capacity_bytes);
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before trying, so a release between the try and the wait is not missed.
            released.as_mut().enable();
            if let Some(reservation) = self.try_reserve(bytes) {
                return reservation;
            }
            released.await;
        }
    }

    fn release(&self, bytes: usize) {
        self.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
        shoal_metrics::record_request_pool_use(bytes, false);
        self.released.notify_waiters();
    }
}

/// Bytes reserved from a [`MemoryPool`]; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    pool: Arc<MemoryPool>,
    bytes: usize,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let pool = MemoryPool::new(100);
        let a = pool.try_reserve(60).unwrap();
        assert!(pool.try_reserve(41).is_none());
        let b = pool.try_reserve(40).unwrap();
        assert_eq!(pool.used_bytes(), 100);
        drop(a);
        assert_eq!(pool.used_bytes(), 40);
        drop(b);
        assert_eq!(pool.used_bytes(), 0);
        assert!(pool.try_reserve(usize::MAX).is_none());
    }

    #[tokio::test]
    async fn a_waiter_resumes_when_memory_is_released() {
        let pool = MemoryPool::new(100);
        let held = pool.try_reserve(80).unwrap();
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.reserve(50).await.bytes() }
        });
        // A small request is not queued behind the large waiter.
        let small = tokio::time::timeout(Duration::from_secs(10), pool.reserve(20))
            .await
            .unwrap();
        drop(small);
        assert!(!waiter.is_finished());
        drop(held);
        let granted = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(granted, 50);
        assert_eq!(pool.used_bytes(), 0);
    }
}
