//! `Authority`: whether this broker may still answer as the coordinator of what it holds.
//!
//! Why: a coordinator answers OffsetFetch, DescribeGroups and the group protocol from memory.
//! A broker that was stopped long enough to be fenced has been replaced as coordinator, yet
//! until it applies the metadata saying so its shards are still here; answering from them would
//! hand a consumer an offset the new coordinator has moved past. The broker supplies the
//! answer (its controller lease, `shoal_meta::ControllerLease`); without one set, the
//! coordinator always answers (a coordinator with no controller, as in unit tests).

/// Consulted before every request is routed to a shard: `false` → NOT_COORDINATOR, and the
/// client looks the coordinator up again.
pub trait Authority: Send + Sync {
    fn holds(&self) -> bool;
}
