//! `MetadataDelta`: what one metadata fetch brings, and how a follower applies it.

use serde::{Deserialize, Serialize};

use crate::image::MetadataImage;
use crate::records::MetadataBatch;

/// The answer to "what happened after offset N".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataDelta {
    /// The record batches after N, each with its Raft log index, in order, then the offset the
    /// follower is at once it applied them (entries without records, such as a new leader's
    /// blank entry, move the offset without a batch).
    Batches {
        batches: Vec<(u64, MetadataBatch)>,
        last_offset: u64,
    },
    /// N is older than what the voter keeps (or 0): the whole image, at its own offset.
    Image(Box<MetadataImage>),
}

impl MetadataDelta {
    /// The offset a follower is at after applying this delta.
    pub fn last_offset(&self) -> u64 {
        match self {
            MetadataDelta::Batches { last_offset, .. } => *last_offset,
            MetadataDelta::Image(image) => image.last_applied_index,
        }
    }

    /// Applies the delta to `image` (pure). Returns whether the image changed. A delta that
    /// would move the offset backwards (a voter that is behind this follower) changes nothing;
    /// nor does a batch at or below the image's offset (already applied).
    pub fn apply_to(self, image: &mut MetadataImage) -> bool {
        if self.last_offset() <= image.last_applied_index {
            return false;
        }
        match self {
            MetadataDelta::Image(new) => {
                if new.cluster_id != image.cluster_id {
                    tracing::error!(
                        ours = %image.cluster_id,
                        theirs = %new.cluster_id,
                        "metadata image of another cluster ignored"
                    );
                    return false;
                }
                *image = *new;
            }
            MetadataDelta::Batches {
                batches,
                last_offset,
            } => {
                for (index, batch) in batches {
                    if index > image.last_applied_index {
                        image.apply_batch(index, &batch);
                    }
                }
                image.mark_applied(last_offset.max(image.last_applied_index));
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::MetadataRecord;
    use uuid::Uuid;

    fn topic(name: &str, id: u128) -> MetadataBatch {
        vec![MetadataRecord::Topic {
            name: name.into(),
            topic_id: Uuid::from_u128(id),
        }]
    }

    #[test]
    fn batches_apply_once_and_in_order() {
        let mut image = MetadataImage::empty("c");
        let delta = MetadataDelta::Batches {
            batches: vec![(2, topic("a", 1)), (5, topic("b", 2))],
            last_offset: 7,
        };
        assert!(delta.clone().apply_to(&mut image));
        assert_eq!(image.last_applied_index, 7);
        assert_eq!(image.topics.len(), 2);
        // The same delta again (a retried fetch) changes nothing.
        let before = image.clone();
        assert!(!delta.apply_to(&mut image));
        assert_eq!(image, before);
        // An overlapping one applies only what is new.
        let overlapping = MetadataDelta::Batches {
            batches: vec![(5, topic("b", 2)), (8, topic("c", 3))],
            last_offset: 8,
        };
        assert!(overlapping.apply_to(&mut image));
        assert_eq!(image.topics.len(), 3);
        assert_eq!(image.last_applied_index, 8);
    }

    #[test]
    fn an_image_replaces_and_never_goes_back() {
        let mut image = MetadataImage::empty("c");
        let mut newer = MetadataImage::empty("c");
        newer.apply_batch(10, &topic("x", 9));
        assert!(MetadataDelta::Image(Box::new(newer.clone())).apply_to(&mut image));
        assert_eq!(image, newer);
        let mut older = MetadataImage::empty("c");
        older.apply_batch(4, &topic("y", 8));
        assert!(!MetadataDelta::Image(Box::new(older)).apply_to(&mut image));
        assert_eq!(image, newer);
        let mut foreign = MetadataImage::empty("other");
        foreign.apply_batch(20, &topic("z", 7));
        assert!(!MetadataDelta::Image(Box::new(foreign)).apply_to(&mut image));
        assert_eq!(image, newer);
    }

    #[test]
    fn replaying_batches_equals_the_voters_image() {
        // What a voter applies and what a follower rebuilds from deltas are the same image.
        let batches = vec![(1, topic("a", 1)), (3, topic("b", 2)), (4, topic("c", 3))];
        let mut voter = MetadataImage::empty("c");
        for (index, batch) in &batches {
            voter.apply_batch(*index, batch);
        }
        voter.mark_applied(6);
        let mut follower = MetadataImage::empty("c");
        MetadataDelta::Batches {
            batches: batches[..1].to_vec(),
            last_offset: 2,
        }
        .apply_to(&mut follower);
        MetadataDelta::Batches {
            batches: batches[1..].to_vec(),
            last_offset: 6,
        }
        .apply_to(&mut follower);
        assert_eq!(follower, voter);
    }
}
