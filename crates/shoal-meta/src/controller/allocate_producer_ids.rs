//! Planning a producer id block allocation (Kafka's AllocateProducerIds, KIP-730).
//!
//! Idempotent producers need cluster-unique ids. Brokers take them in blocks so the quorum is
//! asked once per block rather than once per producer; the block's end is committed before any
//! id in it is handed out, so a controller failover can never hand the same id out twice.

use crate::controller::plan::Planned;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Ids per block, as in Kafka (`ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// A block of ids `[first_producer_id, first_producer_id + size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProducerIdBlock {
    pub first_producer_id: i64,
    pub size: i64,
}

pub fn plan_allocate_producer_ids(image: &MetadataImage) -> Planned<ProducerIdBlock> {
    let first = image.next_producer_id;
    let next = first
        .checked_add(PRODUCER_ID_BLOCK_SIZE)
        .ok_or_else(|| ControllerError::Internal("producer ids are exhausted".to_string()))?;
    Ok((
        ProducerIdBlock {
            first_producer_id: first,
            size: PRODUCER_ID_BLOCK_SIZE,
        },
        vec![MetadataRecord::ProducerIds {
            next_producer_id_block_start: next,
        }],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_follow_each_other_without_overlap() {
        let mut image = MetadataImage::empty("c");
        let (first, records) = plan_allocate_producer_ids(&image).unwrap();
        for r in &records {
            assert_eq!(image.apply(r), crate::image::ApplyOutcome::Applied);
        }
        let (second, _) = plan_allocate_producer_ids(&image).unwrap();
        assert_eq!(first.first_producer_id, 0);
        assert_eq!(
            second.first_producer_id,
            first.first_producer_id + first.size
        );
    }

    #[test]
    fn exhaustion_is_an_error_not_a_wrap() {
        let mut image = MetadataImage::empty("c");
        image.next_producer_id = i64::MAX - 10;
        assert!(plan_allocate_producer_ids(&image).is_err());
    }
}
