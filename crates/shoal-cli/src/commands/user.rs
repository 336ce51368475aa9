//! `shoalctl user ...`, what `kafka-configs.sh --entity-type users` does for SCRAM credentials
//! (`--add-config 'SCRAM-SHA-256=[iterations=8192,password=...]'`, `--delete-config`,
//! `--describe`): `create`, `delete` and `list` over AlterUserScramCredentials and
//! DescribeUserScramCredentials (v0, KIP-554).
//!
//! The password is salted here, as Kafka's admin client does: a fresh random salt per mechanism
//! and RFC 5802's `Hi` (PBKDF2), so only the salted password crosses the network, and the
//! password is never printed. Flags become requests and answers become rows in pure functions
//! (unit-tested without a broker); the async verbs only check the flags, connect, send and print.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::{Value, json};
use shoal_sasl::ScramMechanism;

use super::{Tally, check, connect, dedupe, first_failure, label};
use crate::cli::{Cli, Password, UserCommand, UserCreate, UserDelete};
use crate::output::{Output, Row, with_fields};

/// The columns of `user list`: one row per credential.
const LIST_HEADER: [&str; 3] = ["USER", "MECHANISM", "ITERATIONS"];

pub async fn run(
    cli: &Cli,
    command: &UserCommand,
    out: &Output,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Create(args) => create(cli, args, out, timeout).await,
        UserCommand::Delete(args) => delete(cli, args, out, timeout).await,
        UserCommand::List(args) => {
            let names = dedupe(args.names.clone());
            let mut client = connect(cli, timeout).await?;
            let response = client.any().call(describe_request(&names)).await?;
            let (rows, failures) = described(&response)?;
            out.emit_rows(
                "",
                LIST_HEADER.to_vec(),
                rows.iter().map(|r| (r.cells(), r.json())),
                Value::from,
            );
            first_failure(
                &failures,
                |user| format!("listing SCRAM credentials of user {user}"),
                Tally {
                    total: names.len(),
                    noun: " users",
                    from: 2,
                },
            )
        }
    }
}

async fn create(
    cli: &Cli,
    args: &UserCreate,
    out: &Output,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    // Flags (and the password) are checked before connecting: bad input fails without a broker.
    let password = match &args.password {
        Some(password) => password.clone(),
        None => read_password(&mut std::io::stdin().lock())?,
    };
    let mechanisms = create_mechanisms(&args.mechanism);
    let request = create_request(&args.name, &mechanisms, &password, args.iterations)?;
    drop(password);
    let mut client = connect(cli, timeout).await?;
    let response = client.any().call(request).await?;
    let codes: Vec<i8> = mechanisms.iter().map(|m| m.code()).collect();
    let outcome = altered(&args.name, &codes, Some(args.iterations), &response)?;
    report(&outcome, "created", out)
}

async fn delete(
    cli: &Cli,
    args: &UserDelete,
    out: &Output,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let mut client = connect(cli, timeout).await?;
    let mechanisms: Vec<i8> = if args.mechanism.is_empty() {
        // Every mechanism the user has: ask first (a user without any: RESOURCE_NOT_FOUND).
        let response = client
            .any()
            .call(describe_request(std::slice::from_ref(&args.name)))
            .await?;
        let (rows, failures) = described(&response)?;
        if let Some(failure) = failures.first() {
            failure.check(&format!(
                "deleting SCRAM credentials of user {}",
                failure.item
            ))?;
        }
        let codes = mechanisms_of(&args.name, &rows);
        if codes.is_empty() {
            bail!("user {} has no SCRAM credentials", args.name);
        }
        codes
    } else {
        dedupe(args.mechanism.iter().map(|m| m.code()).collect())
    };
    let response = client
        .any()
        .call(delete_request(&args.name, &mechanisms))
        .await?;
    let outcome = altered(&args.name, &mechanisms, None, &response)?;
    report(&outcome, "deleted", out)
}

/// Prints the user's result; a failure is then the command's error (exit 1).
fn report(outcome: &Outcome, done: &str, out: &Output) -> anyhow::Result<ExitCode> {
    let mut header = vec!["USER", "MECHANISMS"];
    if outcome.item.iterations.is_some() {
        header.push("ITERATIONS");
    }
    header.push("STATUS");
    out.emit_rows("", header, [outcome.line(done)], Value::from);
    let doing = if done == "created" {
        "creating"
    } else {
        "deleting"
    };
    outcome.check(&format!(
        "{doing} SCRAM credentials of user {}",
        outcome.item.user
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The mechanisms `user create` sets: the given ones, each once, or SCRAM-SHA-256.
pub fn create_mechanisms(given: &[ScramMechanism]) -> Vec<ScramMechanism> {
    if given.is_empty() {
        vec![ScramMechanism::Sha256]
    } else {
        dedupe(given.to_vec())
    }
}

/// `--password-stdin`: the first line of `input`, without its line ending; empty is refused.
pub fn read_password(input: &mut impl BufRead) -> anyhow::Result<Password> {
    let mut line = String::new();
    let read = input
        .read_line(&mut line)
        .context("--password-stdin: reading stdin")?;
    if read == 0 {
        bail!("--password-stdin: stdin is empty (give the password on its first line)");
    }
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    Password::new(line).map_err(|e| anyhow!("--password-stdin: {e}"))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One AlterUserScramCredentials upsertion per mechanism, each with a fresh random salt and
/// the password salted with it (`Hi(password, salt, iterations)`): the password is not sent.
pub fn create_request(
    user: &str,
    mechanisms: &[ScramMechanism],
    password: &Password,
    iterations: u32,
) -> anyhow::Result<AlterUserScramCredentialsRequest> {
    let wire_iterations =
        i32::try_from(iterations).map_err(|_| anyhow!("{iterations} iterations is too many"))?;
    let mut upsertions = Vec::with_capacity(mechanisms.len());
    for &mechanism in mechanisms {
        let salt = shoal_sasl::new_salt().context("making a salt")?;
        let salted = shoal_sasl::salted_password(mechanism, password.as_bytes(), &salt, iterations)
            .map_err(|e| anyhow!("user {user}: {e}"))?;
        upsertions.push(
            ScramCredentialUpsertion::default()
                .with_name(text(user))
                .with_mechanism(mechanism.code())
                .with_iterations(wire_iterations)
                .with_salt(Bytes::from(salt))
                .with_salted_password(Bytes::from(salted)),
        );
    }
    Ok(AlterUserScramCredentialsRequest::default().with_upsertions(upsertions))
}

/// One AlterUserScramCredentials deletion per mechanism (wire codes).
pub fn delete_request(user: &str, mechanisms: &[i8]) -> AlterUserScramCredentialsRequest {
    AlterUserScramCredentialsRequest::default().with_deletions(
        mechanisms
            .iter()
            .map(|&code| {
                ScramCredentialDeletion::default()
                    .with_name(text(user))
                    .with_mechanism(code)
            })
            .collect(),
    )
}

/// DescribeUserScramCredentials of these users; none: every user (v0's `users` null).
pub fn describe_request(users: &[String]) -> DescribeUserScramCredentialsRequest {
    DescribeUserScramCredentialsRequest::default().with_users(if users.is_empty() {
        None
    } else {
        Some(
            users
                .iter()
                .map(|u| UserName::default().with_name(text(u)))
                .collect(),
        )
    })
}

/// Kafka's name for a mechanism code, or `UNKNOWN(code)` (a newer broker's): shown, not refused.
pub fn mechanism_label(code: i8) -> String {
    label(code, ScramMechanism::from_code)
}

/// One credential as `user list` prints it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CredentialRow {
    pub user: String,
    pub code: i8,
    pub mechanism: String,
    pub iterations: i32,
}

impl Row for CredentialRow {
    fn cells(&self) -> Vec<String> {
        vec![
            self.user.clone(),
            self.mechanism.clone(),
            self.iterations.to_string(),
        ]
    }

    fn json(&self) -> Value {
        json!({"user": self.user, "mechanism": self.mechanism, "iterations": self.iterations})
    }
}

/// A user DescribeUserScramCredentials answered with an error (RESOURCE_NOT_FOUND: no
/// credentials; DUPLICATE_RESOURCE): the user, the error code, the broker's message.
pub type UserFailure = super::Outcome<String>;

/// The credentials a DescribeUserScramCredentials answer lists (sorted by user, mechanism)
/// and the users it refused, in answer order; a refusal of the whole request fails.
pub fn described(
    response: &DescribeUserScramCredentialsResponse,
) -> anyhow::Result<(Vec<CredentialRow>, Vec<UserFailure>)> {
    check(
        "listing SCRAM credentials",
        response.error_code,
        response.error_message.as_deref(),
    )?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for result in &response.results {
        if result.error_code != 0 {
            failures.push(UserFailure::new(
                result.user.to_string(),
                result.error_code,
                result.error_message.as_ref(),
            ));
            continue;
        }
        rows.extend(result.credential_infos.iter().map(|info| CredentialRow {
            user: result.user.to_string(),
            code: info.mechanism,
            mechanism: mechanism_label(info.mechanism),
            iterations: info.iterations,
        }));
    }
    rows.sort();
    Ok((rows, failures))
}

/// The mechanism codes `user` has, from `user list`'s rows.
pub fn mechanisms_of(user: &str, rows: &[CredentialRow]) -> Vec<i8> {
    dedupe(
        rows.iter()
            .filter(|r| r.user == user)
            .map(|r| r.code)
            .collect(),
    )
}

/// What a create or delete asked of one user (every change of a user applies, or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Altered {
    pub user: String,
    pub mechanisms: Vec<String>,
    /// What `create` set; `None` for `delete`.
    pub iterations: Option<u32>,
}

impl Row for Altered {
    fn cells(&self) -> Vec<String> {
        let mut cells = vec![self.user.clone(), self.mechanisms.join(",")];
        if let Some(iterations) = self.iterations {
            cells.push(iterations.to_string());
        }
        cells
    }

    fn json(&self) -> Value {
        with_fields(
            json!({
                "user": self.user,
                "mechanisms": self.mechanisms,
            }),
            self.iterations.map(|i| ("iterations", json!(i))),
        )
    }
}

/// The result of a create or delete for one user.
pub type Outcome = super::Outcome<Altered>;

/// AlterUserScramCredentials answers per user: the result for `user`.
pub fn altered(
    user: &str,
    mechanisms: &[i8],
    iterations: Option<u32>,
    response: &AlterUserScramCredentialsResponse,
) -> anyhow::Result<Outcome> {
    let result = response
        .results
        .iter()
        .find(|r| r.user.as_str() == user)
        .with_context(|| {
            format!(
                "AlterUserScramCredentials answered {} result(s), none for user {user}",
                response.results.len()
            )
        })?;
    Ok(Outcome::new(
        Altered {
            user: user.to_string(),
            mechanisms: mechanisms.iter().map(|&c| mechanism_label(c)).collect(),
            iterations,
        },
        result.error_code,
        result.error_message.as_ref(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser as _;
    use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
    use kafka_protocol::messages::describe_user_scram_credentials_response::{
        CredentialInfo, DescribeUserScramCredentialsResult,
    };

    use super::*;
    use crate::cli::{Command, UserList};

    const RESOURCE_NOT_FOUND: i16 = 91;
    const UNACCEPTABLE_CREDENTIAL: i16 = 93;

    fn parse(args: &[&str]) -> Result<UserCommand, clap::Error> {
        let cli = Cli::try_parse_from(["shoalctl", "user"].iter().chain(args))?;
        match cli.command {
            Command::User(c) => Ok(c),
            other => panic!("not a user command: {other:?}"),
        }
    }

    fn parse_verb(verb: &str, args: &[&str]) -> UserCommand {
        parse(&[&[verb], args].concat()).unwrap()
    }

    verb_args!(UserCommand(&[&str]) {
        create_args: "create" => Create(UserCreate),
        delete_args: "delete" => Delete(UserDelete),
        list_args: "list" => List(UserList),
    });

    fn usage(args: &[&str]) -> String {
        parse(args).unwrap_err().to_string()
    }

    fn password(p: &str) -> Password {
        Password::new(p.to_string()).unwrap()
    }

    #[test]
    fn create_defaults_to_scram_sha_256_and_8192_iterations() {
        let args = create_args(&["alice", "--password", "s3cret"]);
        assert_eq!(args.name, "alice");
        assert_eq!(args.iterations, 8192);
        assert!(!args.password_stdin);
        assert_eq!(args.password, Some(password("s3cret")));
        assert_eq!(create_mechanisms(&args.mechanism), [ScramMechanism::Sha256]);
        // Repeatable, any case, Kafka's enum spelling too; each once.
        let args = create_args(&[
            "alice",
            "--mechanism",
            "scram-sha-512",
            "--mechanism",
            "SCRAM_SHA_256",
            "--mechanism",
            "SCRAM-SHA-512",
            "--password-stdin",
            "--iterations",
            "4096",
        ]);
        assert!(args.password_stdin && args.password.is_none());
        assert_eq!(args.iterations, 4096);
        assert_eq!(
            create_mechanisms(&args.mechanism),
            [ScramMechanism::Sha512, ScramMechanism::Sha256]
        );
        // A password may start with a dash.
        let args = create_args(&["alice", "--password", "-dash-"]);
        assert_eq!(args.password, Some(password("-dash-")));
    }

    #[test]
    fn iterations_are_checked_against_kafkas_bounds() {
        for ok in ["4096", "8192", "16384"] {
            assert_eq!(
                create_args(&["a", "--password", "p", "--iterations", ok]).iterations,
                ok.parse::<u32>().unwrap()
            );
        }
        for bad in ["100", "4095", "16385", "0"] {
            let e = usage(&["create", "a", "--password", "p", "--iterations", bad]);
            assert!(
                e.contains(&format!(
                    "must be 4096 to 16384 (Kafka's bounds), not {bad}"
                )),
                "{e}"
            );
        }
        let e = usage(&["create", "a", "--password", "p", "--iterations", "many"]);
        assert!(e.contains("not a number"), "{e}");
        // And again where the salting happens, whatever the caller.
        let e = create_request("a", &[ScramMechanism::Sha256], &password("p"), 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4096 to 16384") && e.contains("100"), "{e}");
    }

    #[test]
    fn bad_create_input_is_refused_with_a_reason() {
        let e = usage(&["create", "alice"]);
        assert!(
            e.contains("--password") && e.contains("--password-stdin"),
            "{e}"
        );
        let e = usage(&["create", "alice", "--password", "p", "--password-stdin"]);
        assert!(e.contains("cannot be used with"), "{e}");
        let e = usage(&["create", "alice", "--password", ""]);
        assert!(e.contains("the password is empty"), "{e}");
        let e = usage(&["create", "", "--password", "p"]);
        assert!(e.contains("the user name is empty"), "{e}");
        let e = usage(&["create", "alice", "--password", "p", "--mechanism", "PLAIN"]);
        assert!(
            e.contains("unknown SCRAM mechanism \"PLAIN\"")
                && e.contains("SCRAM-SHA-256, SCRAM-SHA-512"),
            "{e}"
        );
        let e = usage(&["delete", "alice", "--mechanism", "SCRAM-SHA-1"]);
        assert!(e.contains("unknown SCRAM mechanism"), "{e}");
    }

    #[test]
    fn the_password_is_never_shown() {
        let args = create_args(&["alice", "--password", "hunter2"]);
        let shown = format!("{args:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        let cli = Cli::try_parse_from(["shoalctl", "user", "create", "a", "--password", "hunter2"])
            .unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"));
        // Nor sent: only salted.
        let request =
            create_request("alice", &ScramMechanism::ALL, &password("hunter2"), 4096).unwrap();
        let shown = format!("{request:?}");
        assert!(!shown.contains("hunter2"));
        for u in &request.upsertions {
            assert!(!u.salted_password.windows(7).any(|w| w == b"hunter2"));
        }
    }

    #[test]
    fn password_stdin_is_the_first_line_without_its_ending() {
        let read = |input: &str| read_password(&mut input.as_bytes());
        assert_eq!(read("s3cret\n").unwrap(), password("s3cret"));
        assert_eq!(read("s3cret\r\n").unwrap(), password("s3cret"));
        assert_eq!(read("s3cret").unwrap(), password("s3cret"));
        assert_eq!(read("first\nsecond\n").unwrap(), password("first"));
        // Other whitespace is part of the password.
        assert_eq!(read(" two words \n").unwrap(), password(" two words "));
        let e = format!("{:#}", read("\n").unwrap_err());
        assert_eq!(e, "--password-stdin: the password is empty");
        let e = format!("{:#}", read("").unwrap_err());
        assert!(e.contains("stdin is empty"), "{e}");
    }

    #[test]
    fn create_salts_each_mechanism_freshly_and_sends_only_the_salted_password() {
        let pw = password("s3cret");
        let request = create_request("alice", &ScramMechanism::ALL, &pw, 8192).unwrap();
        assert!(request.deletions.is_empty());
        assert_eq!(request.upsertions.len(), 2);
        for (u, mechanism) in request.upsertions.iter().zip(ScramMechanism::ALL) {
            assert_eq!(u.name.as_str(), "alice");
            assert_eq!(u.mechanism, mechanism.code());
            assert_eq!(u.iterations, 8192);
            assert_eq!(u.salt.len(), shoal_sasl::SALT_BYTES);
            // SHA-256: 32 bytes, SHA-512: 64.
            assert_eq!(u.salted_password.len(), mechanism.key_len());
            assert_eq!(
                u.salted_password.len(),
                if mechanism == ScramMechanism::Sha256 {
                    32
                } else {
                    64
                }
            );
            let expected =
                shoal_sasl::salted_password(mechanism, b"s3cret", &u.salt, 8192).unwrap();
            assert_eq!(u.salted_password.as_ref(), expected.as_slice());
            // What the broker derives its keys from: acceptable, and verifies the password.
            let credential = shoal_sasl::ScramCredential::from_salted_password(
                mechanism,
                u.salt.to_vec(),
                &u.salted_password,
                8192,
            )
            .unwrap();
            assert!(credential.verifies(b"s3cret"));
            assert!(!credential.verifies(b"s3cret!"));
        }
        // A salt per mechanism, and a new one each time.
        assert_ne!(request.upsertions[0].salt, request.upsertions[1].salt);
        let again = create_request("alice", &ScramMechanism::ALL, &pw, 8192).unwrap();
        assert_ne!(request.upsertions[0].salt, again.upsertions[0].salt);
        assert_ne!(
            request.upsertions[0].salted_password,
            again.upsertions[0].salted_password
        );
    }

    #[test]
    fn delete_and_list_requests() {
        let args = delete_args(&[
            "alice",
            "--mechanism",
            "SCRAM-SHA-512",
            "--mechanism",
            "scram-sha-512",
        ]);
        assert_eq!(
            args.mechanism,
            [ScramMechanism::Sha512, ScramMechanism::Sha512]
        );
        let request = delete_request("alice", &[2, 1]);
        assert!(request.upsertions.is_empty());
        let got: Vec<(&str, i8)> = request
            .deletions
            .iter()
            .map(|d| (d.name.as_str(), d.mechanism))
            .collect();
        assert_eq!(got, [("alice", 2), ("alice", 1)]);
        assert!(delete_args(&["alice"]).mechanism.is_empty());

        // No names: every user, v0's null.
        assert!(list_args(&[]).names.is_empty());
        assert_eq!(describe_request(&[]).users, None);
        let names = list_args(&["alice", "bob"]).names;
        let users = describe_request(&names).users.unwrap();
        let users: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(users, ["alice", "bob"]);
    }

    #[test]
    fn requests_encode_at_v0() {
        use bytes::BytesMut;
        use kafka_protocol::protocol::{Decodable, Encodable};
        let alters = [
            create_request("alice", &ScramMechanism::ALL, &password("p"), 4096).unwrap(),
            delete_request("alice", &[1, 2]),
        ];
        for request in alters {
            let mut buf = BytesMut::new();
            request.encode(&mut buf, 0).unwrap();
            let decoded = AlterUserScramCredentialsRequest::decode(&mut buf.freeze(), 0).unwrap();
            assert_eq!(decoded, request);
        }
        for names in [vec![], vec!["alice".to_string()]] {
            let request = describe_request(&names);
            let mut buf = BytesMut::new();
            request.encode(&mut buf, 0).unwrap();
            let decoded =
                DescribeUserScramCredentialsRequest::decode(&mut buf.freeze(), 0).unwrap();
            assert_eq!(decoded, request);
        }
    }

    fn info(mechanism: i8, iterations: i32) -> CredentialInfo {
        CredentialInfo::default()
            .with_mechanism(mechanism)
            .with_iterations(iterations)
    }

    fn user_result(user: &str, infos: Vec<CredentialInfo>) -> DescribeUserScramCredentialsResult {
        DescribeUserScramCredentialsResult::default()
            .with_user(text(user))
            .with_credential_infos(infos)
    }

    #[test]
    fn described_credentials_become_sorted_rows_and_user_errors_apart() {
        let response = DescribeUserScramCredentialsResponse::default().with_results(vec![
            user_result("bob", vec![info(2, 4096)]),
            user_result("alice", vec![info(2, 8192), info(1, 8192)]),
            DescribeUserScramCredentialsResult::default()
                .with_user(text("nobody"))
                .with_error_code(RESOURCE_NOT_FOUND)
                .with_error_message(Some(text(
                    "Attempt to describe a user credential that does not exist",
                ))),
            // A mechanism from a newer broker is shown, not refused.
            user_result("carol", vec![info(7, 10_000)]),
        ]);
        let (rows, failures) = described(&response).unwrap();
        let cells: Vec<String> = rows.iter().map(|r| r.cells().join(" ")).collect();
        assert_eq!(
            cells,
            [
                "alice SCRAM-SHA-256 8192",
                "alice SCRAM-SHA-512 8192",
                "bob SCRAM-SHA-512 4096",
                "carol UNKNOWN(7) 10000",
            ]
        );
        assert_eq!(
            rows[0].json(),
            json!({"user": "alice", "mechanism": "SCRAM-SHA-256", "iterations": 8192})
        );
        assert_eq!(mechanisms_of("alice", &rows), [1, 2]);
        assert_eq!(mechanisms_of("carol", &rows), [7]);
        assert!(mechanisms_of("dave", &rows).is_empty());
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].item, "nobody");
        let e = format!(
            "{:#}",
            check(
                &format!("listing SCRAM credentials of user {}", failures[0].item),
                failures[0].error_code,
                failures[0].message.as_deref()
            )
            .unwrap_err()
        );
        assert_eq!(
            e,
            "listing SCRAM credentials of user nobody: RESOURCE_NOT_FOUND: Attempt to describe \
             a user credential that does not exist"
        );

        // The whole request refused.
        let refused = DescribeUserScramCredentialsResponse::default().with_error_code(31);
        let e = format!("{:#}", described(&refused).unwrap_err());
        assert_eq!(e, "listing SCRAM credentials: CLUSTER_AUTHORIZATION_FAILED");
    }

    #[test]
    fn alter_results_become_a_status_and_a_failure_exits_1() {
        let ok = AlterUserScramCredentialsResponse::default().with_results(vec![
            AlterUserScramCredentialsResult::default().with_user(text("alice")),
        ]);
        let outcome = altered("alice", &[1, 2], Some(8192), &ok).unwrap();
        assert_eq!(
            outcome.cells("created"),
            ["alice", "SCRAM-SHA-256,SCRAM-SHA-512", "8192", "created"]
        );
        assert_eq!(
            outcome.json("created"),
            json!({"user": "alice", "mechanisms": ["SCRAM-SHA-256", "SCRAM-SHA-512"],
                   "iterations": 8192, "created": true, "error": null, "message": null})
        );
        assert!(
            report(
                &outcome,
                "created",
                &Output {
                    format: crate::output::Format::Json
                }
            )
            .is_ok()
        );

        let refused = AlterUserScramCredentialsResponse::default().with_results(vec![
            AlterUserScramCredentialsResult::default()
                .with_user(text("alice"))
                .with_error_code(UNACCEPTABLE_CREDENTIAL)
                .with_error_message(Some(text("SCRAM-SHA-256 iterations must be 4096 to 16384"))),
        ]);
        let outcome = altered("alice", &[2], None, &refused).unwrap();
        assert_eq!(
            outcome.cells("deleted"),
            ["alice", "SCRAM-SHA-512", "UNACCEPTABLE_CREDENTIAL"]
        );
        let json = outcome.json("deleted");
        assert_eq!(json["deleted"], false);
        assert_eq!(json["error"], "UNACCEPTABLE_CREDENTIAL");
        assert!(json.get("iterations").is_none());
        let e = format!(
            "{:#}",
            report(
                &outcome,
                "deleted",
                &Output {
                    format: crate::output::Format::Json
                }
            )
            .unwrap_err()
        );
        assert_eq!(
            e,
            "deleting SCRAM credentials of user alice: UNACCEPTABLE_CREDENTIAL: SCRAM-SHA-256 \
             iterations must be 4096 to 16384"
        );

        // No result for the user: an error, not a panic.
        let other = AlterUserScramCredentialsResponse::default().with_results(vec![
            AlterUserScramCredentialsResult::default().with_user(text("bob")),
        ]);
        assert!(altered("alice", &[1], None, &other).is_err());
        assert!(
            altered(
                "alice",
                &[1],
                None,
                &AlterUserScramCredentialsResponse::default()
            )
            .is_err()
        );
    }

    #[test]
    fn the_command_line_is_well_formed() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
