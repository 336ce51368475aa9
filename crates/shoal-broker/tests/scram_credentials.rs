//! SCRAM credentials over the Kafka protocol (KIP-554): AlterUserScramCredentials stores what
//! RFC 5802 derives from the client's salted password, DescribeUserScramCredentials shows
//! mechanisms and iterations only; Kafka's per-user error codes; ALTER / DESCRIBE on the
//! cluster; credentials survive a restart.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use common::{
    CLUSTER_AUTHORIZATION_FAILED, DUPLICATE_RESOURCE, Harness, RESOURCE_NOT_FOUND, SECURED,
    UNACCEPTABLE_CREDENTIAL, UNSUPPORTED_SASL_MECHANISM, s,
};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::*;
use shoal_sasl::{ScramMechanism, salted_password};

fn upsert(user: &str, mechanism: i8, password: &str, iterations: i32) -> ScramCredentialUpsertion {
    let salt = format!("salt-of-{user}").into_bytes();
    let salted = ScramMechanism::from_code(mechanism)
        .ok()
        .and_then(|m| {
            let i = u32::try_from(iterations).unwrap_or(0).max(4096);
            salted_password(m, password.as_bytes(), &salt, i).ok()
        })
        .unwrap_or_else(|| vec![0; 32]);
    ScramCredentialUpsertion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(salt.into())
        .with_salted_password(salted.into())
}

fn delete(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
}

async fn alter(
    h: &Harness,
    principal: &str,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16)> {
    let request = AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions);
    let r = h.ask(principal, 0, request).await;
    r.results
        .iter()
        .map(|r| (r.user.as_str().to_owned(), r.error_code))
        .collect()
}

/// (top-level error, [(user, error, [(mechanism, iterations)])])
async fn describe(
    h: &Harness,
    principal: &str,
    users: Option<&[&str]>,
) -> (i16, Vec<(String, i16, Vec<(i8, i32)>)>) {
    let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
        u.iter()
            .map(|n| describe_user_scram_credentials_request::UserName::default().with_name(s(n)))
            .collect()
    }));
    let r = h.ask(principal, 0, request).await;
    let results = r
        .results
        .iter()
        .map(|u| {
            (
                u.user.as_str().to_owned(),
                u.error_code,
                u.credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            )
        })
        .collect();
    (r.error_code, results)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_stored_derived_described_and_kept() {
    let h = Harness::start_secured(&[]).await;
    // One request, one result per user, each with Kafka's code.
    let mut results = alter(
        &h,
        "User:admin",
        vec![delete("nobody", 1)],
        vec![
            upsert("ann", 1, "pencil", 4096),
            upsert("ann", 2, "pencil", 4096),
            upsert("bob", 3, "pw", 4096),
            upsert("cid", 1, "pw", 100),
            upsert("dee", 1, "pw", 4096),
            upsert("dee", 1, "pw", 4096),
            upsert("", 1, "pw", 4096),
        ],
    )
    .await;
    results.sort();
    assert_eq!(
        results,
        vec![
            ("".to_owned(), UNACCEPTABLE_CREDENTIAL),
            ("ann".to_owned(), 0),
            ("bob".to_owned(), UNSUPPORTED_SASL_MECHANISM),
            ("cid".to_owned(), UNACCEPTABLE_CREDENTIAL),
            ("dee".to_owned(), DUPLICATE_RESOURCE),
            ("nobody".to_owned(), RESOURCE_NOT_FOUND),
        ]
    );
    // Stored: the derived keys (PLAIN verifies against them), never the password.
    let image = h.broker.image();
    let ann = &image.scram_credentials["ann"];
    assert_eq!(ann.len(), 2);
    assert!(ann[&ScramMechanism::Sha256].verifies(b"pencil"));
    assert!(ann[&ScramMechanism::Sha512].verifies(b"pencil"));
    assert!(!ann[&ScramMechanism::Sha256].verifies(b"Pencil"));
    assert_eq!(
        image.scram_credentials.len(),
        1,
        "nothing of the refused users"
    );
    // Described: mechanisms and iterations only.
    assert_eq!(
        describe(&h, "User:admin", None).await,
        (0, vec![("ann".to_owned(), 0, vec![(1, 4096), (2, 4096)])])
    );
    let (_, named) = describe(&h, "User:admin", Some(&["ann", "zed", "zed"])).await;
    assert_eq!(
        named
            .iter()
            .map(|(u, e, _)| (u.as_str(), *e))
            .collect::<Vec<_>>(),
        vec![("ann", 0), ("zed", DUPLICATE_RESOURCE)]
    );
    let (_, missing) = describe(&h, "User:admin", Some(&["zed"])).await;
    assert_eq!(missing[0].1, RESOURCE_NOT_FOUND);
    // Only with ALTER / DESCRIBE on the cluster.
    assert_eq!(
        alter(
            &h,
            "User:alice",
            vec![],
            vec![upsert("alice", 1, "pw", 4096)]
        )
        .await,
        vec![("alice".to_owned(), CLUSTER_AUTHORIZATION_FAILED)]
    );
    assert_eq!(
        describe(&h, "User:alice", None).await.0,
        CLUSTER_AUTHORIZATION_FAILED
    );
    // A deletion and a replacement; then a restart keeps what is left.
    assert_eq!(
        alter(
            &h,
            "User:admin",
            vec![delete("ann", 2)],
            vec![upsert("ann", 1, "new-pw", 8192)]
        )
        .await,
        vec![("ann".to_owned(), 0)]
    );
    let h = h.restart(SECURED).await;
    let image = h.broker.image();
    let ann = &image.scram_credentials["ann"];
    assert_eq!(
        ann.keys().copied().collect::<Vec<_>>(),
        vec![ScramMechanism::Sha256]
    );
    assert!(ann[&ScramMechanism::Sha256].verifies(b"new-pw"));
    assert_eq!(ann[&ScramMechanism::Sha256].iterations, 8192);
    h.stop().await;
}
