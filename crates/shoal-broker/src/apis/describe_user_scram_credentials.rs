//! DescribeUserScramCredentials: which users have which SCRAM mechanisms and iteration counts
//! (never a key or salt), from this broker's image. Needs DESCRIBE on the cluster.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, ResponseKind,
};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{MAX_BATCH_ITEMS, str_bytes};

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> Reply {
    let response = DescribeUserScramCredentialsResponse::default();
    if !broker
        .authorization
        .allowed_on_cluster(ctx, Operation::Describe)
    {
        return Reply::Ready(ResponseKind::DescribeUserScramCredentials(
            response
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(str_bytes("Cluster authorization failed."))),
        ));
    }
    let image = broker.image();
    let described = |user: &str| {
        let result = DescribeUserScramCredentialsResult::default().with_user(str_bytes(user));
        match image.scram_credentials.get(user) {
            Some(credentials) => result.with_credential_infos(
                credentials
                    .values()
                    .map(|c| {
                        CredentialInfo::default()
                            .with_mechanism(c.mechanism.code())
                            .with_iterations(i32::try_from(c.iterations).unwrap_or(i32::MAX))
                    })
                    .collect(),
            ),
            None => result
                .with_error_code(ResponseError::ResourceNotFound.code())
                .with_error_message(Some(str_bytes(
                    "Attempt to describe a user credential that does not exist",
                ))),
        }
    };
    let results = match request.users.filter(|u| !u.is_empty()) {
        None => image
            .scram_credentials
            .keys()
            .map(|user| described(user))
            .collect(),
        Some(users) if users.len() > MAX_BATCH_ITEMS => {
            return Reply::Ready(ResponseKind::DescribeUserScramCredentials(
                response
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(&format!(
                        "A request may name at most {MAX_BATCH_ITEMS} users."
                    )))),
            ));
        }
        Some(users) => {
            let mut seen = HashSet::new();
            let duplicated: HashSet<&str> = users
                .iter()
                .map(|u| u.name.as_str())
                .filter(|u| !seen.insert(*u))
                .collect();
            let mut reported = HashSet::new();
            users
                .iter()
                .map(|u| u.name.as_str())
                .filter(|u| reported.insert(*u))
                .map(|user| {
                    if duplicated.contains(user) {
                        DescribeUserScramCredentialsResult::default()
                            .with_user(str_bytes(user))
                            .with_error_code(ResponseError::DuplicateResource.code())
                            .with_error_message(Some(str_bytes(
                                "Cannot describe the same user twice in one request",
                            )))
                    } else {
                        described(user)
                    }
                })
                .collect()
        }
    };
    Reply::Ready(ResponseKind::DescribeUserScramCredentials(
        response.with_results(results),
    ))
}
