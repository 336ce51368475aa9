//! The Raft network of a single-voter quorum: there is nobody to talk to.
//!
//! With one voter openraft never sends an RPC (it is its own quorum), but it still needs a
//! [`RaftNetworkFactory`]. Every connection made by this factory fails with `Unreachable`, so a
//! misconfiguration (a second voter in the membership) shows up as replication errors in the
//! logs instead of silently "succeeding". The gRPC transport of the multi-controller issue
//! replaces this type; nothing else in the crate depends on it.

use std::io;

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use crate::raft::types::{NodeId, TypeConfig};

/// Creates connections that are always unreachable.
#[derive(Debug, Clone, Default)]
pub struct UnreachableNetworkFactory;

/// A connection to a peer that cannot be reached.
#[derive(Debug, Clone)]
pub struct UnreachableConnection {
    target: NodeId,
}

impl UnreachableConnection {
    fn error<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        let cause = io::Error::new(
            io::ErrorKind::NotConnected,
            format!(
                "no Raft transport configured: node {} is unreachable (single-voter quorum)",
                self.target
            ),
        );
        RPCError::Unreachable(Unreachable::new(&cause))
    }
}

impl RaftNetworkFactory<TypeConfig> for UnreachableNetworkFactory {
    type Network = UnreachableConnection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Self::Network {
        UnreachableConnection { target }
    }
}

impl RaftNetwork<TypeConfig> for UnreachableConnection {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.error())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(self.error())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.error())
    }
}
