//! KIP-848 consumer groups: the consumer group protocol Kafka 4.0 made generally available
//! (`group.protocol=consumer`), coordinated here beside the classic groups.
//!
//! **Why a second protocol.** In the classic protocol every member stops, rejoins and waits
//! for the leader's assignment whenever one member comes or goes. Here the coordinator
//! assigns (`assignor`), and each member moves towards its share in steps driven by its own
//! heartbeats (`reconcile`): a partition that moves is paused between its old owner giving it
//! up and its new owner taking it; every other partition keeps being consumed.
//!
//! Layout: `records` (the group's `__consumer_offsets` records, Kafka's bytes), `member` (one
//! member), `assignor` (`uniform` and `range`, pure), `reconcile` (one member's next step,
//! pure), `group` (one group: decide, write, replay; its `classic` part holds classic-protocol
//! members and the migration between protocols), `group_config` (a group's own session timeout
//! and heartbeat interval), `embedded` (the classic consumer protocol's subscription and
//! assignment bytes).

pub mod assignor;
pub mod embedded;
pub mod group;
pub mod group_config;
pub mod member;
pub mod reconcile;
pub mod records;
