//! A small test handler and a raw Kafka client over real TCP sockets.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test support: a panic is a failed test"
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use shoal_kafka::{
    Handler, KafkaServer, MemoryPool, Reply, RequestContext, ServerConfig, SupportedApis,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Behaviour by API:
/// - Metadata: empty response, delayed by `metadata_delay_ms` or by a pseudo-random 0–22 ms
///   derived from the correlation id when `random_metadata_delays`;
/// - Produce: acks=0 → NoResponse, otherwise an empty response;
/// - Heartbeat: deferred until `gate` is opened.
pub struct TestHandler {
    pub contexts: Mutex<Vec<RequestContext>>,
    pub handled: AtomicUsize,
    pub outstanding: Arc<AtomicUsize>,
    pub max_outstanding: Arc<AtomicUsize>,
    pub random_metadata_delays: bool,
    pub metadata_delay_ms: u64,
    pub gate: watch::Sender<bool>,
}

impl TestHandler {
    pub fn new() -> TestHandler {
        TestHandler {
            contexts: Mutex::new(Vec::new()),
            handled: AtomicUsize::new(0),
            outstanding: Arc::new(AtomicUsize::new(0)),
            max_outstanding: Arc::new(AtomicUsize::new(0)),
            random_metadata_delays: false,
            metadata_delay_ms: 0,
            gate: watch::channel(false).0,
        }
    }
}

impl Handler for TestHandler {
    async fn handle(&self, ctx: RequestContext, request: RequestKind) -> Reply {
        let correlation_id = ctx.correlation_id;
        self.contexts.lock().unwrap().push(ctx);
        self.handled.fetch_add(1, Ordering::SeqCst);
        let now = self.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_outstanding.fetch_max(now, Ordering::SeqCst);
        let outstanding = self.outstanding.clone();
        let done = move |response: ResponseKind| {
            outstanding.fetch_sub(1, Ordering::SeqCst);
            response
        };
        match request {
            RequestKind::Metadata(_) => {
                let delay_ms = if self.random_metadata_delays {
                    (correlation_id as u64).wrapping_mul(7919) % 23
                } else {
                    self.metadata_delay_ms
                };
                Reply::deferred(async move {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    done(ResponseKind::Metadata(MetadataResponse::default()))
                })
            }
            RequestKind::Produce(p) if p.acks == 0 => {
                done(ResponseKind::Produce(ProduceResponse::default()));
                Reply::NoResponse
            }
            RequestKind::Produce(_) => {
                Reply::Ready(done(ResponseKind::Produce(ProduceResponse::default())))
            }
            RequestKind::Heartbeat(_) => {
                let mut gate = self.gate.subscribe();
                Reply::deferred(async move {
                    let _ = gate.wait_for(|open| *open).await;
                    done(ResponseKind::Heartbeat(HeartbeatResponse::default()))
                })
            }
            other => panic!("test handler got unexpected {other:?}"),
        }
    }
}

pub fn supported() -> SupportedApis {
    SupportedApis::new(&[
        (ApiKey::Produce, 3, 9),
        (ApiKey::Metadata, 0, 12),
        (ApiKey::Heartbeat, 0, 3),
    ])
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<()>,
}

pub async fn start(
    handler: Arc<TestHandler>,
    configure: impl FnOnce(&mut ServerConfig),
) -> TestServer {
    start_with_pool(handler, configure, None).await
}

/// Like [`start`], reading requests against `pool` when given (so a test can watch it).
pub async fn start_with_pool(
    handler: Arc<TestHandler>,
    configure: impl FnOnce(&mut ServerConfig),
    pool: Option<Arc<MemoryPool>>,
) -> TestServer {
    let mut config = ServerConfig::new("PLAINTEXT", "127.0.0.1:0".parse().unwrap());
    configure(&mut config);
    let mut server = KafkaServer::bind(config, supported(), handler)
        .await
        .unwrap();
    if let Some(pool) = pool {
        server = server.with_memory_pool(pool);
    }
    let addr = server.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        shutdown: Some(tx),
        task,
    }
}

/// A request frame: header (version per `request_header_version`) + body.
pub fn request_frame(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    body: &RequestKind,
) -> Bytes {
    let mut payload = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|c| StrBytes::from_string(c.to_owned())))
        .encode(&mut payload, api_key.request_header_version(version))
        .unwrap();
    body.encode(&mut payload, version).unwrap();
    frame(&payload)
}

pub fn frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i32(payload.len() as i32);
    out.put_slice(payload);
    out.freeze()
}

pub fn metadata(version: i16, correlation_id: i32) -> Bytes {
    let body = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![])));
    request_frame(
        ApiKey::Metadata,
        version,
        correlation_id,
        Some("test"),
        &body,
    )
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

/// Reads one response frame; returns the correlation id and the rest (body after the header).
pub async fn read_response(stream: &mut TcpStream, header_version: i16) -> (i32, Bytes) {
    let size = tokio::time::timeout(Duration::from_secs(10), stream.read_i32())
        .await
        .expect("response timed out")
        .unwrap();
    assert!(size > 0);
    let mut payload = vec![0; size as usize];
    stream.read_exact(&mut payload).await.unwrap();
    let mut payload = Bytes::from(payload);
    let header = ResponseHeader::decode(&mut payload, header_version).unwrap();
    (header.correlation_id, payload)
}

pub async fn read_decoded(
    stream: &mut TcpStream,
    api_key: ApiKey,
    version: i16,
) -> (i32, ResponseKind) {
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let (correlation_id, mut body) = read_response(stream, header_version).await;
    let response = ResponseKind::decode(api_key, &mut body, version).unwrap();
    assert!(!body.has_remaining(), "{} trailing bytes", body.remaining());
    (correlation_id, response)
}

/// Asserts the server closes the connection (EOF or reset) without sending anything.
pub async fn assert_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("expected close, got {n} bytes"),
        Err(_) => panic!("connection was not closed"),
    }
}

pub async fn api_versions_roundtrip(addr: SocketAddr) {
    let mut stream = connect(addr).await;
    let body = RequestKind::ApiVersions(ApiVersionsRequest::default());
    stream
        .write_all(&request_frame(ApiKey::ApiVersions, 0, 1, None, &body))
        .await
        .unwrap();
    let (correlation_id, response) = read_decoded(&mut stream, ApiKey::ApiVersions, 0).await;
    assert_eq!(correlation_id, 1);
    assert!(matches!(response, ResponseKind::ApiVersions(r) if r.error_code == 0));
}
