//! A tonic gRPC server served through `LimitedIncoming` (as the controller and replication
//! listeners are) closes connections beyond its bound and admits new ones once a slot frees.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::time::Duration;

use shoal_net::{ConnectionLimiter, ConnectionLimits, LimitedIncoming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

/// The HTTP/2 client preface and an empty SETTINGS frame.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Whether the server answers an HTTP/2 preface on a new connection (`false`: it closed it).
async fn served(addr: std::net::SocketAddr) -> (bool, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The write may fail if the server already closed the connection.
    let _ = stream.write_all(PREFACE).await;
    let mut frame_header = [0u8; 9];
    let read = tokio::time::timeout(WAIT, stream.read_exact(&mut frame_header))
        .await
        .expect("the server neither answered nor closed");
    // An answer starts with the server's SETTINGS frame (type 4).
    (read.is_ok() && frame_header[3] == 4, stream)
}

#[tokio::test]
async fn a_grpc_listener_closes_connections_beyond_its_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limiter = ConnectionLimiter::new("grpc-test", ConnectionLimits::total(2));
    let incoming = LimitedIncoming::new(listener, limiter.clone());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::default())
            .serve_with_incoming(incoming),
    );
    let (first_served, first) = served(addr).await;
    let (second_served, _second) = served(addr).await;
    assert!(first_served && second_served);
    let (third_served, _third) = served(addr).await;
    assert!(!third_served, "a connection beyond the bound was served");
    assert_eq!(limiter.open_connections(), 2);
    // A freed slot is reusable.
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    while limiter.open_connections() == 2 {
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (again_served, _again) = served(addr).await;
    assert!(again_served);
    server.abort();
}
