//! Who writes to a leader's log, which decides the validation rules its batches meet.

/// Who a leader append comes from (Kafka's `AppendOrigin`): it decides which of the client
/// rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppendOrigin {
    /// A producer's Produce request: control batches are refused and an idempotent batch must
    /// carry a sequence.
    Client,
    /// The broker's own coordinators: the transaction coordinator's markers (control batches)
    /// and the group coordinator's TxnOffsetCommit records (producer id, no sequence).
    Coordinator,
}
