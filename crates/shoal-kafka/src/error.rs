//! Typed errors of the Kafka front. Each one ends a connection (Kafka closes the socket on a
//! request it cannot parse); none of them ends the server.

use std::io;

use crate::length_guard::LengthGuardError;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size_bytes} is not positive")]
    NonPositiveSize { size_bytes: i32 },
    #[error("frame size {size_bytes} exceeds socket.request.max.bytes {max_bytes}")]
    TooLarge { size_bytes: i32, max_bytes: usize },
    #[error(
        "frame size {size_bytes} exceeds the whole request memory pool (queued.max.request.bytes {pool_bytes})"
    )]
    LargerThanPool {
        size_bytes: usize,
        pool_bytes: usize,
    },
    #[error(
        "frame not complete within socket.request.read.timeout.ms {read_timeout_ms} ({buffered_bytes} bytes buffered)"
    )]
    ReadTimeout {
        read_timeout_ms: u64,
        buffered_bytes: usize,
    },
    #[error("connection closed inside a frame ({buffered_bytes} bytes buffered)")]
    TruncatedFrame { buffered_bytes: usize },
    #[error("socket read failed: {0}")]
    Io(#[from] io::Error),
}

/// Why a request header (or the body it announces) was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("frame of {size_bytes} bytes is too short for a request header")]
    ShortHeader { size_bytes: usize },
    #[error("unknown api key {api_key}")]
    UnknownApiKey { api_key: i16 },
    #[error(
        "request header v{header_version} of api key {api_key} v{api_version} is malformed: {reason}"
    )]
    MalformedHeader {
        api_key: i16,
        api_version: i16,
        header_version: i16,
        reason: String,
    },
    #[error(
        "{api_key:?} v{api_version} is not supported and its response cannot carry an error code"
    )]
    UnsupportedWithoutErrorCode {
        api_key: kafka_protocol::messages::ApiKey,
        api_version: i16,
    },
    #[error("{api_key:?} v{api_version} body rejected: {source}")]
    BodyLength {
        api_key: kafka_protocol::messages::ApiKey,
        api_version: i16,
        source: LengthGuardError,
    },
    #[error("{api_key:?} v{api_version} body does not decode: {reason}")]
    MalformedBody {
        api_key: kafka_protocol::messages::ApiKey,
        api_version: i16,
        reason: String,
    },
}

/// A response that could not be serialized (a bug in the handler or in this crate).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("{api_key:?} v{api_version} response does not encode: {reason}")]
    Body {
        api_key: kafka_protocol::messages::ApiKey,
        api_version: i16,
        reason: String,
    },
    #[error("response frame of {size_bytes} bytes exceeds i32::MAX")]
    TooLarge { size_bytes: usize },
}
