//! Bounded resources of the Kafka front (issue #15): the request memory pool
//! (`queued.max.request.bytes`), the request read timeout (`socket.request.read.timeout.ms`)
//! and `max.connections.per.ip`, over real TCP sockets on 127.0.0.0/8.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, HeartbeatRequest, RequestKind};
use shoal_kafka::MemoryPool;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

/// Polls `condition` until it holds, failing after [`WAIT`].
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A connection from `source` (any 127/8 address reaches a loopback listener).
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A Metadata round trip on `stream`; proves the connection was admitted and is served.
async fn metadata_roundtrip(stream: &mut TcpStream, correlation_id: i32) {
    stream
        .write_all(&metadata(4, correlation_id))
        .await
        .unwrap();
    let (got, _) = read_decoded(stream, ApiKey::Metadata, 4).await;
    assert_eq!(got, correlation_id);
}

/// The first `bytes` of a frame announcing `size` bytes.
fn frame_start(size: i32, bytes: usize) -> Vec<u8> {
    let mut out = size.to_be_bytes().to_vec();
    out.resize(4 + bytes, 0);
    out
}

/// A server whose request memory pool (`queued.max.request.bytes`) is `pool_bytes`.
async fn start_with_small_pool(pool_bytes: usize) -> (Arc<MemoryPool>, TestServer) {
    let pool = MemoryPool::new(pool_bytes);
    let server = start_with_pool(
        Arc::new(TestHandler::new()),
        |_| {},
        Some(Arc::clone(&pool)),
    )
    .await;
    (pool, server)
}

#[tokio::test]
async fn a_full_pool_pauses_reading_until_memory_is_freed() {
    let (pool, server) = start_with_small_pool(1_000).await;
    // A stalled frame reserves nearly the whole pool as soon as its size prefix arrives.
    let mut staller = connect(server.addr).await;
    staller.write_all(&frame_start(990, 10)).await.unwrap();
    wait_until("the stalled frame holds its reservation", || {
        pool.used_bytes() == 990
    })
    .await;
    // Another connection's request does not fit: that connection is not read meanwhile.
    let mut client = connect(server.addr).await;
    client.write_all(&metadata(4, 7)).await.unwrap();
    let early = tokio::time::timeout(
        Duration::from_millis(300),
        read_decoded(&mut client, ApiKey::Metadata, 4),
    )
    .await;
    assert!(early.is_err(), "a request was served beyond the pool");
    // Freed (the staller leaves), the paused connection reads on and is answered.
    drop(staller);
    let (correlation_id, _) =
        tokio::time::timeout(WAIT, read_decoded(&mut client, ApiKey::Metadata, 4))
            .await
            .expect("the paused connection did not resume");
    assert_eq!(correlation_id, 7);
    wait_until("every reservation is released", || pool.used_bytes() == 0).await;
}

#[tokio::test]
async fn a_frame_larger_than_the_pool_is_refused() {
    let (pool, server) = start_with_small_pool(1_000).await;
    let mut stream = connect(server.addr).await;
    // Within socket.request.max.bytes, but it could never be granted: closed, not parked.
    stream.write_all(&frame_start(1_001, 10)).await.unwrap();
    assert_closed(&mut stream).await;
    assert_eq!(pool.used_bytes(), 0);
    let mut other = connect(server.addr).await;
    metadata_roundtrip(&mut other, 1).await;
}

#[tokio::test]
async fn a_trickled_frame_is_closed_after_the_read_timeout() {
    let pool = MemoryPool::new(1 << 20);
    let server = start_with_pool(
        Arc::new(TestHandler::new()),
        |c| c.request_read_timeout_ms = 300,
        Some(Arc::clone(&pool)),
    )
    .await;
    let stream = connect(server.addr).await;
    let (mut read_half, mut write_half) = stream.into_split();
    // Before the first byte leaves: the server's clock cannot start earlier.
    let started = std::time::Instant::now();
    write_half.write_all(&frame_start(10_000, 0)).await.unwrap();
    // One byte every 20 ms: the connection is never idle, the frame never complete.
    let trickle = tokio::spawn(async move {
        for _ in 0..2_000 {
            if write_half.write_all(&[0]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read(&mut read_half, &mut buf),
    )
    .await
    .expect("a trickled frame was not timed out");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected a close, got {read:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    wait_until("the frame's reservation is released", || {
        pool.used_bytes() == 0
    })
    .await;
    trickle.abort();
    // A frame that arrives in pieces within the timeout is served.
    let mut stream = connect(server.addr).await;
    let frame = metadata(4, 3);
    let (head, tail) = frame.split_at(6);
    stream.write_all(head).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(tail).await.unwrap();
    let (correlation_id, _) = read_decoded(&mut stream, ApiKey::Metadata, 4).await;
    assert_eq!(correlation_id, 3);
}

#[tokio::test]
async fn connections_per_ip_are_bounded_with_overrides() {
    let server = start(Arc::new(TestHandler::new()), |c| {
        c.max_connections_per_ip = 2;
        c.max_connections_per_ip_overrides
            .insert("127.0.0.2".parse().unwrap(), 3);
    })
    .await;
    let mut held = Vec::new();
    for i in 0..2 {
        let mut stream = connect_from("127.0.0.1", server.addr).await;
        metadata_roundtrip(&mut stream, i).await;
        held.push(stream);
    }
    let mut over = connect_from("127.0.0.1", server.addr).await;
    assert_closed(&mut over).await;
    // Another address has its own count, and its override.
    for i in 0..3 {
        let mut stream = connect_from("127.0.0.2", server.addr).await;
        metadata_roundtrip(&mut stream, 10 + i).await;
        held.push(stream);
    }
    let mut over = connect_from("127.0.0.2", server.addr).await;
    assert_closed(&mut over).await;
    // A slot freed on 127.0.0.1 is usable again.
    drop(held.remove(0));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut stream = connect_from("127.0.0.1", server.addr).await;
        stream.write_all(&metadata(4, 99)).await.unwrap();
        if let Ok(Ok(size)) = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::io::AsyncReadExt::read_i32(&mut stream),
        )
        .await
        {
            assert!(size > 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a freed per-IP slot was never reusable"
        );
    }
}

#[tokio::test]
async fn time_the_server_spends_elsewhere_does_not_count_against_the_read_timeout() {
    let handler = Arc::new(TestHandler::new());
    let server = start(handler.clone(), |c| {
        c.request_read_timeout_ms = 200;
        c.max_inflight_per_connection = 1;
    })
    .await;
    let mut stream = connect(server.addr).await;
    // A deferred Heartbeat fills the pipeline: the server stops reading this connection.
    let heartbeat = RequestKind::Heartbeat(HeartbeatRequest::default());
    stream
        .write_all(&request_frame(ApiKey::Heartbeat, 3, 1, None, &heartbeat))
        .await
        .unwrap();
    // The next request's first bytes arrive meanwhile (pipelined by the client).
    let next = metadata(4, 2);
    let (head, tail) = next.split_at(6);
    stream.write_all(head).await.unwrap();
    wait_until("the heartbeat is being handled", || {
        handler
            .outstanding
            .load(std::sync::atomic::Ordering::SeqCst)
            == 1
    })
    .await;
    // Longer than the read timeout passes while the server, not the peer, holds things up.
    tokio::time::sleep(Duration::from_millis(600)).await;
    handler.gate.send_replace(true);
    assert_eq!(
        read_decoded(&mut stream, ApiKey::Heartbeat, 3).await.0,
        1,
        "the heartbeat's answer"
    );
    // The server reads again: the rest of the frame is on time.
    stream.write_all(tail).await.unwrap();
    assert_eq!(read_decoded(&mut stream, ApiKey::Metadata, 4).await.0, 2);
}
