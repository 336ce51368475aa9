//! What the metadata says about one partition, as this replica last heard it.

/// Leader, epochs and replica sets of a partition, copied from the metadata image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl PartitionState {
    pub fn is_leader(&self, broker_id: i32) -> bool {
        self.leader == broker_id
    }
}
