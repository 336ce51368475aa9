//! The single-node rule: a one-node cluster serves groups with no override.
//!
//! Kafka creates `__consumer_offsets` with `offsets.topic.replication.factor` (3) replicas and
//! waits for that many brokers, so a lone Kafka broker never serves a consumer group until the
//! operator lowers the setting. That wait protects committed offsets on a real cluster, and it
//! stays. It cannot protect anything while the metadata quorum has exactly one voter and no
//! second broker has ever registered: there is nowhere to put a second copy, and waiting only
//! makes the node useless. Then, and only then, internal and auto-created topics get as many
//! replicas as there are brokers (at least 1, at most the configured factor), with a warning.
//! Once a second broker or voter has ever existed, Kafka's rule applies again for good.

use shoal_meta::MetadataImage;

/// The facts the rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterShape {
    /// Voters of the metadata quorum (`controller.quorum.voters`).
    pub voters: usize,
    /// Brokers that have ever registered (the image never forgets a registration).
    pub brokers_ever_registered: usize,
    /// Brokers registered and not fenced now.
    pub brokers_unfenced: usize,
}

impl ClusterShape {
    pub fn of(image: &MetadataImage, voters: usize) -> Self {
        ClusterShape {
            voters,
            brokers_ever_registered: image.brokers.len(),
            brokers_unfenced: image.unfenced_broker_ids().len(),
        }
    }

    /// Whether the cluster is, and always was, one node.
    pub fn is_single_node(&self) -> bool {
        self.voters == 1 && self.brokers_ever_registered <= 1
    }
}

/// The replication factor the single-node rule lowers `configured` to, or `None` where Kafka's
/// rule applies unchanged (enough brokers, no broker at all, or not a single-node cluster).
pub fn single_node_replication_factor(configured: i16, shape: ClusterShape) -> Option<i16> {
    let available = i16::try_from(shape.brokers_unfenced).unwrap_or(i16::MAX);
    (shape.is_single_node() && available >= 1 && available < configured).then_some(available)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(voters: usize, ever: usize, unfenced: usize) -> ClusterShape {
        ClusterShape {
            voters,
            brokers_ever_registered: ever,
            brokers_unfenced: unfenced,
        }
    }

    #[test]
    fn lowers_only_on_a_cluster_that_is_and_always_was_one_node() {
        // (configured, shape, expected)
        let cases = [
            (3, shape(1, 1, 1), Some(1)),
            (2, shape(1, 1, 1), Some(1)),
            (1, shape(1, 1, 1), None),
            // Nobody registered yet: nothing to place on; wait as Kafka does.
            (3, shape(1, 0, 0), None),
            // The lone broker is fenced right now: wait for it rather than guess.
            (3, shape(1, 1, 0), None),
            // A second broker ever registered: Kafka's rule, even if it is gone now.
            (3, shape(1, 2, 1), None),
            (3, shape(1, 2, 2), None),
            // More than one voter: a real cluster being formed.
            (3, shape(3, 1, 1), None),
            (3, shape(2, 1, 1), None),
        ];
        for (configured, shape, expected) in cases {
            assert_eq!(
                single_node_replication_factor(configured, shape),
                expected,
                "{configured} {shape:?}"
            );
        }
    }
}
