//! DescribeCluster: the cluster id, the controller clients should address, and the brokers.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, ResponseKind,
};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::str_bytes;

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
