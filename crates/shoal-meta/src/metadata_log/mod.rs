//! Serving the committed metadata log to nodes that are not voters (`MetadataLog` in
//! `proto/controller.proto`), as KRaft controllers serve `__cluster_metadata` to brokers.
//!
//! A voter's state machine appends every applied batch to a bounded [`MetadataJournal`]; a
//! fetch after offset N gets the batches after N from it, or the whole image when N is older
//! than what the journal keeps ([`MetadataDelta`]). Only applied — hence committed — entries
//! ever leave a voter, so a broker's image is always a prefix of the one true metadata log.
//! `observers` remembers who fetched at which offset, for DescribeQuorum.

pub mod delta;
pub mod journal;
pub mod observers;
pub mod service;

pub use delta::MetadataDelta;
pub use journal::MetadataJournal;
pub use observers::{ObserverStatus, Observers};
