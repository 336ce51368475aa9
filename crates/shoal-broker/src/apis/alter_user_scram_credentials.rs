//! AlterUserScramCredentials: set or delete users' SCRAM credentials (KIP-554). The client
//! sends the *salted* password, never the password; the broker derives the stored keys and the
//! controller commits them as metadata records. Needs ALTER on the cluster. Answers per user,
//! as Kafka: every change of a user applies, or none.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::UserScramAlteration;
use shoal_sasl::{ScramCredential, ScramMechanism};

use crate::Broker;
use crate::apis::{ItemOutcome, cluster_change_allowed, forward_valid, str_bytes};
use crate::error_codes::controller_error_code;

/// A Kafka error and its message.
type Refusal = (ResponseError, String);
/// One user's changes, or why the broker refuses them without asking the controller.
type Checked = Result<UserScramAlteration, Refusal>;

fn result(user: &str, code: i16, message: Option<&str>) -> AlterUserScramCredentialsResult {
    AlterUserScramCredentialsResult::default()
        .with_user(str_bytes(user))
        .with_error_code(code)
        .with_error_message(message.map(str_bytes))
}

/// Groups the request by user (first appearance order) and checks what needs no image:
/// mechanisms, one change per (user, mechanism), acceptable credentials.
fn check(request: &AlterUserScramCredentialsRequest) -> Vec<(String, Checked)> {
    let mut users: BTreeMap<String, usize> = BTreeMap::new();
    let mut checked: Vec<(String, Checked)> = Vec::new();
    let mut seen: HashSet<(String, i8)> = HashSet::new();
    let mut slot = |user: &StrBytes| -> usize {
        let user = user.as_str().to_owned();
        *users.entry(user.clone()).or_insert_with(|| {
            checked.push((
                user.clone(),
                Ok(UserScramAlteration {
                    user,
                    deletions: Vec::new(),
                    upsertions: Vec::new(),
                }),
            ));
            checked.len() - 1
        })
    };
    let mut outcomes: Vec<(usize, Result<Change, Refusal>)> = Vec::new();
    for d in &request.deletions {
        let index = slot(&d.name);
        let change = mechanism(d.mechanism).and_then(|m| {
            duplicate(&mut seen, d.name.as_str(), d.mechanism)?;
            Ok(Change::Delete(m))
        });
        outcomes.push((index, change));
    }
    for u in &request.upsertions {
        let index = slot(&u.name);
        let change = mechanism(u.mechanism).and_then(|m| {
            duplicate(&mut seen, u.name.as_str(), u.mechanism)?;
            if u.name.is_empty() {
                return Err((
                    ResponseError::UnacceptableCredential,
                    "Username must not be empty".to_owned(),
                ));
            }
            let iterations = u32::try_from(u.iterations).unwrap_or(0);
            ScramCredential::from_salted_password(
                m,
                u.salt.to_vec(),
                &u.salted_password,
                iterations,
            )
            .map(Change::Upsert)
            .map_err(|e| (ResponseError::UnacceptableCredential, e.to_string()))
        });
        outcomes.push((index, change));
    }
    for (index, change) in outcomes {
        let Some((_, entry)) = checked.get_mut(index) else {
            continue;
        };
        match (entry.as_mut(), change) {
            (Err(_), _) => {}
            (Ok(_), Err(e)) => *entry = Err(e),
            (Ok(a), Ok(Change::Delete(m))) => a.deletions.push(m),
            (Ok(a), Ok(Change::Upsert(c))) => a.upsertions.push(c),
        }
    }
    checked
}

enum Change {
    Delete(ScramMechanism),
    Upsert(ScramCredential),
}

fn mechanism(code: i8) -> Result<ScramMechanism, Refusal> {
    ScramMechanism::from_code(code).map_err(|_| {
        (
            ResponseError::UnsupportedSaslMechanism,
            format!("Unknown SCRAM mechanism {code}"),
        )
    })
}

fn duplicate(seen: &mut HashSet<(String, i8)>, user: &str, mechanism: i8) -> Result<(), Refusal> {
    if seen.insert((user.to_owned(), mechanism)) {
        Ok(())
    } else {
        Err((
            ResponseError::DuplicateResource,
            "A user credential cannot be altered twice in the same request".to_owned(),
        ))
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> Reply {
    let count = request.deletions.len() + request.upsertions.len();
    let checked = check(&request);
    let refuse_all = |error: ResponseError, message: &str| {
        let results = checked
            .iter()
            .map(|(user, _)| result(user, error.code(), Some(message)))
            .collect();
        Reply::Ready(ResponseKind::AlterUserScramCredentials(
            AlterUserScramCredentialsResponse::default().with_results(results),
        ))
    };
    if let Err((error, message)) =
        cluster_change_allowed(broker, ctx, Operation::Alter, count, false)
    {
        return refuse_all(error, &message);
    }
    let users: Vec<String> = checked.iter().map(|(user, _)| user.clone()).collect();
    let parsed = checked.into_iter().map(|(_, c)| c).collect();
    let outcomes = forward_valid(broker, parsed, async |valid| {
        broker.controller.alter_user_scram_credentials(valid).await
    })
    .await;
    let results = users
        .iter()
        .zip(outcomes)
        .map(|(user, outcome)| match outcome {
            ItemOutcome::Invalid((error, message)) => result(user, error.code(), Some(&message)),
            ItemOutcome::Done(_, ()) => {
                tracing::info!(target: "shoal::audit", principal = %ctx.principal, user,
                    "SCRAM credentials altered");
                result(user, 0, None)
            }
            ItemOutcome::Refused(error) => result(
                user,
                controller_error_code(&error),
                Some(&error.to_string()),
            ),
        })
        .collect();
    Reply::Ready(ResponseKind::AlterUserScramCredentials(
        AlterUserScramCredentialsResponse::default().with_results(results),
    ))
}
