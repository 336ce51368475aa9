//! Hands out producer ids to idempotent producers, from blocks the controller commits.
//!
//! A block's end is committed in the metadata log before any id in it is used, so ids stay
//! unique across restarts and controller changes; ids of a block a broker never used are
//! simply skipped, as in Kafka.

use std::sync::Arc;

use shoal_meta::{ControllerClient, ControllerError};
use tokio::sync::Mutex;

pub struct ProducerIdManager {
    controller: Arc<ControllerClient>,
    /// `[next, end)` of the current block.
    block: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn new(controller: Arc<ControllerClient>) -> Self {
        Self {
            controller,
            block: Mutex::new((0, 0)),
        }
    }

    pub async fn next_producer_id(&self) -> Result<i64, ControllerError> {
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let fresh = self.controller.allocate_producer_ids().await?;
            *block = (
                fresh.first_producer_id,
                fresh.first_producer_id + fresh.size,
            );
            tracing::debug!(
                first = block.0,
                end = block.1,
                "allocated a producer id block"
            );
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}
