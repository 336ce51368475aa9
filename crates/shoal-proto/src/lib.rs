//! The controller gRPC contract, generated from `proto/controller.proto`.
//!
//! Why a crate of its own: `shoalctl` calls two quorum RPCs (DescribeQuorum and the like) and
//! should not compile openraft, sled and the controller to do it. Nodes (`shoal-meta`) and tools
//! (`shoalctl`) both depend on this crate; only the nodes pull in the quorum's machinery.

/// Messages of package `shoal.controller.v1`, the `RaftService` / `QuorumAdmin` /
/// `ControllerService` servers and their clients.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod controller {
    tonic::include_proto!("shoal.controller.v1");
}
