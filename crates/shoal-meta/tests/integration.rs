//! Every integration test of `shoal-meta` in one test binary: linking one binary instead of
//! 8 (each links the whole crate graph) makes `make test` shorter. Each module is one former test file, run
//! alone with `cargo test -p shoal-meta --test integration <module>::`.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod common;
mod controller;
mod forwarded_formats;
mod liveness;
mod metadata_formats;
mod mutual_tls;
mod node_restart;
mod quorum;
mod raft_storage;
