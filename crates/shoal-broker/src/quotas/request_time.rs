//! Request-time quotas (Kafka's `request_percentage`, `ClientRequestQuotaManager`): a client
//! that keeps the broker's request handling busy beyond its share is throttled like one over
//! its byte rate.
//!
//! What counts is the time `BrokerHandler` spends answering a request up to the reply (an
//! append, a read, a group operation), not what it then waits for (acks=all replication, a
//! long poll), as Kafka counts request handler thread time. Shoal has no separate network
//! threads whose time it could attribute, so its share is of request handling alone. Exempt
//! as in Kafka: the SASL handshake (before any identity is known) and inter-broker
//! WriteTxnMarkers; ApiVersions is answered by the wire front and never reaches the handler.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ResponseKind};
use shoal_kafka::{HeldResponse, Reply};

/// Recorded units per second of one thread's time at one percent (1 unit = 10 ns handling).
pub const UNITS_PER_PERCENT: u64 = 1_000_000;

/// `handled` of request time in recorded units.
pub fn units(handled: Duration) -> u64 {
    u64::try_from(handled.as_nanos() / 10).unwrap_or(u64::MAX)
}

/// Requests no request quota applies to.
pub fn is_exempt(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::SaslHandshake
            | ApiKey::SaslAuthenticate
            | ApiKey::WriteTxnMarkers
            | ApiKey::ApiVersions
    )
}

/// Raises the response's `throttle_time_ms` to at least `ms` (a byte-rate throttle may have
/// set a longer one). Every response Shoal sends has the field but those of the exempt APIs;
/// versions without it leave it out on the wire.
pub fn raise_throttle(response: &mut ResponseKind, ms: i32) {
    macro_rules! raise {
        ($($variant:ident,)*) => {
            match response {
                $(ResponseKind::$variant(r) => r.throttle_time_ms = r.throttle_time_ms.max(ms),)*
                _ => {}
            }
        };
    }
    raise!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        DescribeTopicPartitions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        DescribeConfigs,
        CreatePartitions,
        IncrementalAlterConfigs,
        AlterConfigs,
        DescribeCluster,
        DescribeLogDirs,
        AlterReplicaLogDirs,
        InitProducerId,
        AddPartitionsToTxn,
        AddOffsetsToTxn,
        EndTxn,
        DescribeProducers,
        DescribeTransactions,
        ListTransactions,
        TxnOffsetCommit,
        OffsetForLeaderEpoch,
        FindCoordinator,
        JoinGroup,
        SyncGroup,
        Heartbeat,
        LeaveGroup,
        OffsetCommit,
        OffsetFetch,
        DescribeGroups,
        ListGroups,
        DeleteGroups,
        OffsetDelete,
        ElectLeaders,
        UpdateFeatures,
        AlterPartitionReassignments,
        ListPartitionReassignments,
        UnregisterBroker,
        DescribeAcls,
        CreateAcls,
        DeleteAcls,
        DescribeUserScramCredentials,
        AlterUserScramCredentials,
        DescribeClientQuotas,
        AlterClientQuotas,
    );
}

/// `reply` with its response's throttle raised to `ms`, now or when it completes.
pub fn throttled(reply: Reply, ms: i32) -> Reply {
    match reply {
        Reply::Ready(mut response) => {
            raise_throttle(&mut response, ms);
            Reply::Ready(response)
        }
        Reply::Deferred(future) => Reply::deferred(async move {
            let mut response = future.await;
            raise_throttle(&mut response, ms);
            response
        }),
        Reply::Held(future) => Reply::Held(Box::pin(async move {
            let HeldResponse {
                mut response,
                memory,
            } = future.await;
            raise_throttle(&mut response, ms);
            HeldResponse { response, memory }
        })),
        Reply::NoResponse => Reply::NoResponse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{MetadataResponse, ProduceResponse, SaslHandshakeResponse};

    #[test]
    fn a_throttle_is_raised_never_lowered_and_exempt_answers_are_left_alone() {
        let mut metadata = ResponseKind::Metadata(MetadataResponse::default());
        raise_throttle(&mut metadata, 250);
        let ResponseKind::Metadata(m) = &metadata else {
            unreachable!()
        };
        assert_eq!(m.throttle_time_ms, 250);
        let mut produce =
            ResponseKind::Produce(ProduceResponse::default().with_throttle_time_ms(900));
        raise_throttle(&mut produce, 250);
        let ResponseKind::Produce(p) = &produce else {
            unreachable!()
        };
        assert_eq!(p.throttle_time_ms, 900);
        let mut sasl = ResponseKind::SaslHandshake(SaslHandshakeResponse::default());
        raise_throttle(&mut sasl, 250);
        assert!(is_exempt(ApiKey::SaslHandshake) && !is_exempt(ApiKey::Metadata));
        assert_eq!(units(Duration::from_millis(1)), 100_000);
    }

    #[tokio::test]
    async fn deferred_and_held_answers_are_throttled_when_they_complete() {
        let deferred =
            Reply::deferred(async { ResponseKind::Metadata(MetadataResponse::default()) });
        let Reply::Deferred(f) = throttled(deferred, 40) else {
            panic!("not deferred")
        };
        let ResponseKind::Metadata(m) = f.await else {
            panic!("not metadata")
        };
        assert_eq!(m.throttle_time_ms, 40);
        let held = Reply::Held(Box::pin(async {
            HeldResponse {
                response: ResponseKind::Metadata(MetadataResponse::default()),
                memory: None,
            }
        }));
        let Reply::Held(f) = throttled(held, 41) else {
            panic!("not held")
        };
        let ResponseKind::Metadata(m) = f.await.response else {
            panic!("not metadata")
        };
        assert_eq!(m.throttle_time_ms, 41);
        assert!(matches!(throttled(Reply::NoResponse, 5), Reply::NoResponse));
    }
}
