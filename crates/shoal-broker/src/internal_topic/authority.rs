//! `CoordinatorAuthority`: whether a coordinator on this broker may still answer from memory.
//!
//! Two conditions, both needed (see `shoal_meta::ControllerLease` for why): the broker's
//! controller lease is in force, and the coordinator has *acted on* the metadata the lease was
//! granted at, i.e. its loader has reconciled an image at least that new and unloaded every
//! partition the image no longer gives this broker. An image applied but not yet reconciled
//! does not count: until the loader has run, the stale shards are still here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use shoal_meta::ControllerLease;

pub struct CoordinatorAuthority {
    lease: Arc<ControllerLease>,
    /// The newest metadata offset whose image the coordinator's loader has reconciled.
    acted_on_offset: AtomicU64,
}

impl CoordinatorAuthority {
    pub fn new(lease: Arc<ControllerLease>) -> Arc<Self> {
        Arc::new(Self {
            lease,
            acted_on_offset: AtomicU64::new(0),
        })
    }

    /// The loader has unloaded every partition the image at `offset` does not give this broker.
    pub fn acted_on(&self, offset: u64) {
        self.acted_on_offset.fetch_max(offset, Ordering::AcqRel);
    }

    pub fn holds(&self) -> bool {
        self.lease
            .holds(self.acted_on_offset.load(Ordering::Acquire))
    }
}

impl shoal_group::Authority for CoordinatorAuthority {
    fn holds(&self) -> bool {
        CoordinatorAuthority::holds(self)
    }
}
