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
//! Unlike a FIFO semaphore, a waiter does not queue behind a larger one: waiters retry
//! whenever a release frees enough for the smallest of them, so small requests of well-behaved
//! clients keep flowing while a large frame waits, and releases that fit nobody wake nobody.
//! The price: a large frame may wait while small ones keep passing, which matters only while
//! the pool is nearly full. Stalled frames are bounded by `socket.request.read.timeout.ms`, so
//! reserved memory always comes back. Kafka's default is -1 (unbounded); Shoal insists on a
//! bound, [`DEFAULT_QUEUED_MAX_REQUEST_BYTES`](crate::DEFAULT_QUEUED_MAX_REQUEST_BYTES).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Which pool's metrics a [`MemoryPool`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// `queued.max.request.bytes`: request frames.
    Requests,
    /// `fetch.response.pool.bytes`: record bytes of Fetch responses until they are written.
    FetchResponses,
}

impl PoolKind {
    fn record_capacity(self, bytes: usize) {
        match self {
            PoolKind::Requests => shoal_metrics::record_request_pool_capacity(bytes),
            PoolKind::FetchResponses => shoal_metrics::record_fetch_pool_capacity(bytes),
        }
    }

    fn record_use(self, bytes: usize, reserved: bool) {
        match self {
            PoolKind::Requests => shoal_metrics::record_request_pool_use(bytes, reserved),
            PoolKind::FetchResponses => shoal_metrics::record_fetch_pool_use(bytes, reserved),
        }
    }
}

/// One node's pool of request (or fetch response) bytes.
#[derive(Debug)]
pub struct MemoryPool {
    kind: PoolKind,
    capacity_bytes: usize,
    used_bytes: AtomicUsize,
    released: Notify,
    /// How many reservations of each size wait: a release wakes the waiters only when the
    /// smallest of them fits, so small requests coming and going do not wake every stalled
    /// large frame each time (a flood of waiters would otherwise cost a wake-up per waiter
    /// per request).
    waiting_sizes: Mutex<BTreeMap<usize, usize>>,
    waiting: AtomicUsize,
    /// Wake-ups sent to waiters (tests read it).
    wakeups: AtomicUsize,
}

impl MemoryPool {
    /// A request pool of `capacity_bytes` (must be positive).
    pub fn new(capacity_bytes: usize) -> Arc<MemoryPool> {
        Self::of_kind(PoolKind::Requests, capacity_bytes)
    }

    /// A pool of `capacity_bytes` (must be positive) reporting as `kind`.
    pub fn of_kind(kind: PoolKind, capacity_bytes: usize) -> Arc<MemoryPool> {
        assert!(capacity_bytes > 0, "a memory pool must be positive");
        kind.record_capacity(capacity_bytes);
        Arc::new(MemoryPool {
            kind,
            capacity_bytes,
            used_bytes: AtomicUsize::new(0),
            released: Notify::new(),
            waiting_sizes: Mutex::new(BTreeMap::new()),
            waiting: AtomicUsize::new(0),
            wakeups: AtomicUsize::new(0),
        })
    }

    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// Bytes reserved now.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::SeqCst)
    }

    /// Reservations waiting for memory now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    fn waiting_sizes(&self) -> std::sync::MutexGuard<'_, BTreeMap<usize, usize>> {
        self.waiting_sizes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves as much of `max_bytes` as is free now, if that is at least `min_bytes`.
    // SeqCst throughout: a waiter registers, then reads `used`; a release writes `used`, then
    // reads the registrations; one of the two always sees the other.
    pub fn try_reserve_up_to(
        self: &Arc<Self>,
        max_bytes: usize,
        min_bytes: usize,
    ) -> Option<Reservation> {
        let mut used = self.used_bytes.load(Ordering::SeqCst);
        loop {
            let bytes = self.capacity_bytes.saturating_sub(used).min(max_bytes);
            if bytes < min_bytes {
                return None;
            }
            match self.used_bytes.compare_exchange_weak(
                used,
                used + bytes,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    self.kind.record_use(bytes, true);
                    return Some(Reservation {
                        pool: Arc::clone(self),
                        bytes,
                    });
                }
                Err(now) => used = now,
            }
        }
    }

    /// Reserves `bytes` if they are free now.
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        self.try_reserve_up_to(bytes, bytes)
    }

    /// Reserves `bytes`, waiting until they are free. `bytes` must not exceed the capacity
    /// (such a reservation could never be granted). Cancel-safe: dropped before it resolves,
    /// it has reserved nothing.
    pub async fn reserve(self: &Arc<Self>, bytes: usize) -> Reservation {
        debug_assert!(bytes <= self.capacity_bytes);
        if let Some(reservation) = self.try_reserve(bytes) {
            return reservation;
        }
        let _waiting = Waiting::register(self, bytes);
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
        if bytes == 0 {
            return;
        }
        let used = self.used_bytes.fetch_sub(bytes, Ordering::SeqCst) - bytes;
        self.kind.record_use(bytes, false);
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let smallest = self.waiting_sizes().keys().next().copied();
        let free = self.capacity_bytes.saturating_sub(used);
        if smallest.is_some_and(|smallest| smallest <= free) {
            self.wakeups.fetch_add(1, Ordering::Relaxed);
            self.released.notify_waiters();
        }
    }
}

/// A waiting reservation's entry in `waiting_sizes`, removed however the wait ends.
struct Waiting<'a> {
    pool: &'a MemoryPool,
    bytes: usize,
}

impl<'a> Waiting<'a> {
    fn register(pool: &'a MemoryPool, bytes: usize) -> Waiting<'a> {
        *pool.waiting_sizes().entry(bytes).or_insert(0) += 1;
        pool.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting { pool, bytes }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.pool.waiting.fetch_sub(1, Ordering::SeqCst);
        let mut sizes = self.pool.waiting_sizes();
        if let Some(count) = sizes.get_mut(&self.bytes) {
            *count -= 1;
            if *count == 0 {
                sizes.remove(&self.bytes);
            }
        }
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

    /// Makes this reservation `bytes`: a smaller one gives the rest back at once; a larger one
    /// takes the difference even past the pool's capacity (for what was already allocated,
    /// e.g. the one batch KIP-74 lets a fetch return beyond its limit). Until it shrinks,
    /// others wait.
    pub fn resize(&mut self, bytes: usize) {
        if bytes < self.bytes {
            let freed = self.bytes - bytes;
            self.bytes = bytes;
            self.pool.release(freed);
        } else if bytes > self.bytes {
            let extra = bytes - self.bytes;
            self.pool.used_bytes.fetch_add(extra, Ordering::SeqCst);
            self.pool.kind.record_use(extra, true);
            self.bytes = bytes;
        }
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
    fn up_to_takes_what_is_free_and_resize_gives_back_or_overcommits() {
        let pool = MemoryPool::of_kind(PoolKind::FetchResponses, 100);
        let a = pool.try_reserve_up_to(70, 10).unwrap();
        assert_eq!(a.bytes(), 70);
        let mut b = pool.try_reserve_up_to(70, 10).unwrap();
        assert_eq!(b.bytes(), 30, "what is left");
        assert!(pool.try_reserve_up_to(70, 1).is_none(), "nothing left");
        b.resize(5);
        assert_eq!(pool.used_bytes(), 75);
        assert!(
            pool.try_reserve_up_to(70, 30).is_none(),
            "below the minimum"
        );
        b.resize(60);
        assert_eq!(
            pool.used_bytes(),
            130,
            "overcommitted for bytes already read"
        );
        assert!(pool.try_reserve(1).is_none());
        assert!(pool.try_reserve_up_to(1, 1).is_none());
        drop(a);
        assert_eq!(pool.used_bytes(), 60);
        assert_eq!(pool.try_reserve_up_to(100, 1).unwrap().bytes(), 40);
        drop(b);
        assert_eq!(pool.used_bytes(), 0);
    }

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

    #[tokio::test]
    async fn releases_that_fit_no_waiter_wake_nobody() {
        let pool = MemoryPool::new(100);
        let held = pool.try_reserve(90).unwrap();
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move { pool.reserve(60).await.bytes() })
            })
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while pool.waiting() < 10 {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::task::yield_now().await;
        }
        // Small requests come and go: 10 free bytes never fit a 60-byte waiter.
        for _ in 0..1_000 {
            drop(pool.try_reserve(10).unwrap());
        }
        assert_eq!(pool.wakeups.load(Ordering::Relaxed), 0);
        drop(held);
        for waiter in waiters {
            // One at a time: each waiter gets its turn as the previous one's bytes come back.
            assert_eq!(
                tokio::time::timeout(Duration::from_secs(10), waiter)
                    .await
                    .unwrap()
                    .unwrap(),
                60
            );
        }
        assert_eq!(pool.waiting(), 0);
        assert_eq!(pool.used_bytes(), 0);
    }
}
