//! Every integration test of `shoal-broker` in one test binary: linking one binary instead of
//! 13 (each links the whole crate graph) makes `make test` shorter. Each module is one former test file, run
//! alone with `cargo test -p shoal-broker --test integration <module>::`.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod api_version_matrix;
mod authorization;
mod authorization_admin;
mod authorization_groups;
mod common;
mod fuzz_corpus;
mod groups;
mod list_offsets_max_timestamp;
mod replication_mtls;
mod scram_credentials;
mod topic_compression;
mod topic_config_opens_a_log;
mod transaction_v2;
mod txn_offset_commit;
