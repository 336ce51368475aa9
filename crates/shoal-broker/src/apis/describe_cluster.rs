//! DescribeCluster: the cluster id, the controller clients should address, and the brokers.
//!
//! Anyone may ask (Kafka checks nothing for the answer itself). When the request includes the
//! cluster's authorized operations, they are Kafka's bit field (bit `code` set for each of
//! `AclEntry.supportedOperations(CLUSTER)` the principal may do), computed only for a
//! principal that may DESCRIBE the cluster (0 otherwise), as `AuthHelper` does; not asked,
//! the field is Kafka's default `i32::MIN`.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, ResponseKind,
};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::str_bytes;
use crate::authorization::{CLUSTER_NAME, CLUSTER_OPERATIONS};

/// DescribeCluster's endpoint_type: 1 = brokers (the only type served to clients here).
const ENDPOINT_TYPE_BROKERS: i8 = 1;

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> Reply {
    let image = broker.image();
    let mut response = DescribeClusterResponse::default()
        .with_endpoint_type(if ctx.api_version >= 1 {
            ENDPOINT_TYPE_BROKERS
        } else {
            1
        })
        .with_cluster_id(str_bytes(&image.cluster_id))
        .with_controller_id(BrokerId(broker.controller_id_for_clients()))
        .with_cluster_authorized_operations(i32::MIN);
    if ctx.api_version >= 1 && request.endpoint_type != ENDPOINT_TYPE_BROKERS {
        response.error_code = ResponseError::UnsupportedEndpointType.code();
        response.error_message = Some(str_bytes("Only broker endpoints are described."));
        return Reply::Ready(ResponseKind::DescribeCluster(response));
    }
    response.cluster_authorized_operations = if request.include_cluster_authorized_operations {
        let authorization = &broker.authorization;
        if authorization.allowed_on_cluster(ctx, Operation::Describe) {
            // Quiet checks: listing what is allowed is not a denied request.
            authorization.authorized_operations(
                ctx,
                ResourceType::Cluster,
                CLUSTER_NAME,
                &CLUSTER_OPERATIONS,
            )
        } else {
            0
        }
    } else {
        i32::MIN
    };
    response.brokers = image
        .brokers
        .values()
        .filter(|b| request.include_fenced_brokers || !b.fenced)
        .filter_map(|b| {
            let endpoint = b.listeners.iter().find(|e| e.name == ctx.listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.broker_id))
                    .with_host(str_bytes(&endpoint.host))
                    .with_port(i32::from(endpoint.port))
                    .with_rack(b.rack.as_deref().map(str_bytes))
                    .with_is_fenced(ctx.api_version >= 2 && b.fenced),
            )
        })
        .collect();
    Reply::Ready(ResponseKind::DescribeCluster(response))
}
