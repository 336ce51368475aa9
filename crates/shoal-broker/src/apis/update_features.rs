//! UpdateFeatures (KIP-584, `kafka-features upgrade`, `shoalctl cluster features upgrade`):
//! raise a finalized feature level, e.g. `transaction.version` to 2 on a cluster created
//! before it existed; the controller decides (`shoal_meta::controller::update_features`).
//!
//! As Kafka's `ControllerApis.handleUpdateFeatures`: ALTER on the cluster, else
//! CLUSTER_AUTHORIZATION_FAILED; the updates are applied all or none and the answer is one
//! top-level error, repeated for every feature in the per-feature results of v0 and v1 (v2 has
//! none). `validate_only` (v1+) checks without writing. A success is answered once this
//! broker has applied the new levels, so its next ApiVersions already lists them.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{ResponseKind, UpdateFeaturesRequest, UpdateFeaturesResponse};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::FeatureUpdate;
use shoal_meta::features::{REPORTED_METADATA_VERSION, internal_feature_name};

use crate::Broker;
use crate::apis::{bounded_timeout_ms, str_bytes};
use crate::error_codes::controller_error_code;

const MAX_ADMIN_TIMEOUT_MS: u64 = 120_000;
/// v1+ `upgrade_type`: 1 upgrade, 2 safe downgrade, 3 unsafe downgrade.
const UPGRADE_TYPE_UPGRADE: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: UpdateFeaturesRequest,
) -> Reply {
    let version = ctx.api_version;
    let names: Vec<_> = request
        .feature_updates
        .iter()
        .map(|u| u.feature.clone())
        .collect();
    let respond = |code: i16, message: Option<String>| {
        let message = message.map(|m| str_bytes(&m));
        let mut response = UpdateFeaturesResponse::default()
            .with_error_code(code)
            .with_error_message(message.clone());
        if version < 2 {
            response.results = names
                .iter()
                .map(|name| {
                    UpdatableFeatureResult::default()
                        .with_feature(name.clone())
                        .with_error_code(code)
                        .with_error_message(message.clone())
                })
                .collect();
        }
        Reply::Ready(ResponseKind::UpdateFeatures(response))
    };
    if !broker
        .authorization
        .allowed_on_cluster(ctx, Operation::Alter)
    {
        return respond(
            ResponseError::ClusterAuthorizationFailed.code(),
            Some("Cluster authorization failed.".to_string()),
        );
    }
    let mut updates: Vec<FeatureUpdate> = Vec::with_capacity(request.feature_updates.len());
    for u in &request.feature_updates {
        // Shoal's metadata format goes by shoal.metadata.version (see `crate::features`).
        let Some(name) = internal_feature_name(u.feature.as_str()) else {
            return respond(
                ResponseError::InvalidUpdateVersion.code(),
                Some(format!(
                    "{} levels are Kafka releases; Shoal's metadata format is versioned as \
                     {REPORTED_METADATA_VERSION}.",
                    u.feature.as_str()
                )),
            );
        };
        updates.push(FeatureUpdate {
            name: name.to_string(),
            level: u.max_version_level,
            downgrade: if version == 0 {
                u.allow_downgrade
            } else {
                u.upgrade_type != UPGRADE_TYPE_UPGRADE
            },
        });
    }
    let validate_only = version >= 1 && request.validate_only;
    let outcome = broker
        .controller
        .update_features(updates, validate_only)
        .await;
    if let Some(index) = outcome.log_index {
        let timeout =
            Duration::from_millis(bounded_timeout_ms(request.timeout_ms, MAX_ADMIN_TIMEOUT_MS));
        broker.wait_for_metadata(index, timeout).await;
    }
    match outcome.results.into_iter().next() {
        Some(Ok(())) => respond(0, None),
        Some(Err(error)) => respond(controller_error_code(&error), Some(error.to_string())),
        None => respond(
            ResponseError::UnknownServerError.code(),
            Some("The controller gave no result.".to_string()),
        ),
    }
}
