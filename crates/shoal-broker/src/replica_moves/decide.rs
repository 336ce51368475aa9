//! What an AlterReplicaLogDirs request does to one partition: a pure function with table
//! tests, in the order Kafka's `ReplicaManager.alterReplicaLogDirs` checks.

use kafka_protocol::ResponseError;

/// Where the replica is on this broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replica {
    /// Not assigned here, or not opened yet.
    NotHosted,
    /// Assigned here but its log could not be opened, or its directory failed.
    Offline,
    /// Open in directory `dir`, and being moved to `moving_to`.
    Hosted {
        dir: usize,
        moving_to: Option<usize>,
    },
}

/// Everything the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveInput {
    /// The copy's directory name fits in a directory entry.
    pub name_fits: bool,
    /// The requested directory's position in `log.dirs`, if it is one.
    pub target: Option<usize>,
    pub target_failed: bool,
    /// Some log directory of this broker failed.
    pub any_dir_failed: bool,
    pub replica: Replica,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveDecision {
    /// Answer with this error code; change nothing.
    Refuse(i16),
    /// The replica is not here yet: remember the directory for when it is created, and
    /// answer REPLICA_NOT_AVAILABLE (Kafka does both).
    Prefer(usize),
    /// Already there and not moving, or already moving there: nothing to do.
    Nothing,
    /// Stop the move in progress (the replica is already in the requested directory).
    Cancel,
    /// Start a move to `target`, stopping a move elsewhere first.
    Start { target: usize, cancel_first: bool },
}

pub fn decide(input: MoveInput) -> MoveDecision {
    if !input.name_fits {
        return MoveDecision::Refuse(ResponseError::InvalidTopicException.code());
    }
    let Some(target) = input.target else {
        return MoveDecision::Refuse(ResponseError::LogDirNotFound.code());
    };
    if input.target_failed {
        return MoveDecision::Refuse(ResponseError::KafkaStorageError.code());
    }
    match input.replica {
        Replica::Offline => MoveDecision::Refuse(ResponseError::KafkaStorageError.code()),
        Replica::NotHosted => MoveDecision::Prefer(target),
        Replica::Hosted { dir, moving_to } if dir == target => match moving_to {
            Some(_) => MoveDecision::Cancel,
            None => MoveDecision::Nothing,
        },
        Replica::Hosted { moving_to, .. } if moving_to == Some(target) => MoveDecision::Nothing,
        // Kafka creates no copy while a directory is offline: it could end up with copies of
        // one partition in several directories.
        Replica::Hosted { .. } if input.any_dir_failed => {
            MoveDecision::Refuse(ResponseError::KafkaStorageError.code())
        }
        Replica::Hosted { moving_to, .. } => MoveDecision::Start {
            target,
            cancel_first: moving_to.is_some(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_kafkas_checks_in_order() {
        let ok = MoveInput {
            name_fits: true,
            target: Some(1),
            target_failed: false,
            any_dir_failed: false,
            replica: Replica::Hosted {
                dir: 0,
                moving_to: None,
            },
        };
        let code = |e: ResponseError| MoveDecision::Refuse(e.code());
        let hosted = |dir, moving_to| Replica::Hosted { dir, moving_to };
        let cases = [
            (
                ok,
                MoveDecision::Start {
                    target: 1,
                    cancel_first: false,
                },
            ),
            (
                MoveInput {
                    name_fits: false,
                    target: None,
                    ..ok
                },
                code(ResponseError::InvalidTopicException),
            ),
            (
                MoveInput {
                    target: None,
                    target_failed: true,
                    ..ok
                },
                code(ResponseError::LogDirNotFound),
            ),
            (
                MoveInput {
                    target_failed: true,
                    replica: Replica::NotHosted,
                    ..ok
                },
                code(ResponseError::KafkaStorageError),
            ),
            (
                MoveInput {
                    replica: Replica::Offline,
                    ..ok
                },
                code(ResponseError::KafkaStorageError),
            ),
            (
                MoveInput {
                    replica: Replica::NotHosted,
                    any_dir_failed: true,
                    ..ok
                },
                MoveDecision::Prefer(1),
            ),
            (
                MoveInput {
                    replica: hosted(1, None),
                    ..ok
                },
                MoveDecision::Nothing,
            ),
            (
                MoveInput {
                    replica: hosted(1, Some(2)),
                    ..ok
                },
                MoveDecision::Cancel,
            ),
            (
                MoveInput {
                    replica: hosted(0, Some(1)),
                    any_dir_failed: true,
                    ..ok
                },
                MoveDecision::Nothing,
            ),
            (
                MoveInput {
                    replica: hosted(0, Some(2)),
                    ..ok
                },
                MoveDecision::Start {
                    target: 1,
                    cancel_first: true,
                },
            ),
            (
                MoveInput {
                    any_dir_failed: true,
                    ..ok
                },
                code(ResponseError::KafkaStorageError),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(decide(input), expected, "{input:?}");
        }
    }
}
