//! Every integration test of `shoal-replica` in one test binary: linking one binary instead of
//! 4 (each links the whole crate graph) makes `make test` shorter. Each module is one former test file, run
//! alone with `cargo test -p shoal-replica --test integration <module>::`.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod producer_state_recovery;
mod replication;
mod transaction_recovery;
mod transactions;
mod txn_common;
