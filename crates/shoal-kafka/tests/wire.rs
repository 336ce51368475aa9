//! End-to-end tests of the Kafka front over real TCP sockets on 127.0.0.1.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use support::*;
use tokio::io::AsyncWriteExt;

fn api_versions_request(version: i16) -> RequestKind {
    let request = ApiVersionsRequest::default();
    let request = if version >= 3 {
        request
            .with_client_software_name(StrBytes::from_static_str("librdkafka"))
            .with_client_software_version(StrBytes::from_static_str("2.16.0"))
    } else {
        request
    };
    RequestKind::ApiVersions(request)
}

#[tokio::test]
async fn api_versions_v0_v3_v4_decode_with_the_client_decoder() {
    let server = start(Arc::new(TestHandler::new()), |_| {}).await;
    let mut stream = connect(server.addr).await;
    for (correlation_id, version) in [(10, 0), (11, 3), (12, 4)] {
        let frame = request_frame(
            ApiKey::ApiVersions,
            version,
            correlation_id,
            Some("rdkafka"),
            &api_versions_request(version),
        );
        stream.write_all(&frame).await.unwrap();
        let (got_id, response) = read_decoded(&mut stream, ApiKey::ApiVersions, version).await;
        assert_eq!(got_id, correlation_id);
        let ResponseKind::ApiVersions(response) = response else {
            panic!("not ApiVersions")
        };
        assert_eq!(response.error_code, 0);
        let entry = |key: ApiKey| {
            response
                .api_keys
                .iter()
                .find(|k| k.api_key == key as i16)
                .map(|k| (k.min_version, k.max_version))
        };
        assert_eq!(entry(ApiKey::ApiVersions), Some((0, 4)));
        assert_eq!(entry(ApiKey::Metadata), Some((0, 12)));
        assert_eq!(entry(ApiKey::Heartbeat), Some((0, 3)));
        // Produce is accepted from v3 but advertised from v0 (KAFKA-18659).
        assert_eq!(entry(ApiKey::Produce), Some((0, 9)));
        assert_eq!(entry(ApiKey::Fetch), None);
    }
}

#[tokio::test]
async fn api_versions_above_v4_gets_v0_unsupported_version_body() {
    let server = start(Arc::new(TestHandler::new()), |_| {}).await;
    for version in [5i16, 127] {
        let mut stream = connect(server.addr).await;
        // Header v2 (empty tags) and a body the server must not try to parse.
        let mut payload = BytesMut::new();
        payload.put_i16(ApiKey::ApiVersions as i16);
        payload.put_i16(version);
        payload.put_i32(77);
        payload.put_i16(-1);
        payload.put_u8(0);
        payload.put_slice(&[0xde, 0xad, 0xbe, 0xef, 0xff]);
        stream.write_all(&frame(&payload)).await.unwrap();
        let (correlation_id, mut body) = read_response(&mut stream, 0).await;
        assert_eq!(correlation_id, 77);
        assert_eq!(
            body.as_ref(),
            &[0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4],
            "v{version}"
        );
        let decoded = ApiVersionsResponse::decode(&mut body, 0).unwrap();
        assert_eq!(decoded.error_code, 35);
        // The client retries with v0 or the advertised max, and that works on the same connection.
        stream
            .write_all(&request_frame(
                ApiKey::ApiVersions,
                0,
                78,
                None,
                &api_versions_request(0),
            ))
            .await
            .unwrap();
        let (correlation_id, _) = read_decoded(&mut stream, ApiKey::ApiVersions, 0).await;
        assert_eq!(correlation_id, 78);
    }
}

#[tokio::test]
async fn header_v2_with_tagged_fields_is_parsed() {
    let handler = Arc::new(TestHandler::new());
    let server = start(handler.clone(), |_| {}).await;
    let mut stream = connect(server.addr).await;
    // Metadata v12: header v2 with client "cli" and one unknown tagged field (tag 5, 3 bytes).
    let mut payload = BytesMut::new();
    payload.put_i16(ApiKey::Metadata as i16);
    payload.put_i16(12);
    payload.put_i32(42);
    payload.put_i16(3);
    payload.put_slice(b"cli");
    payload.put_slice(&[1, 5, 3, 9, 9, 9]);
    // Body: topics = [] (compact 1), allow_auto_topic_creation, include_topic_authorized_operations, no tags.
    payload.put_slice(&[1, 1, 0, 0]);
    stream.write_all(&frame(&payload)).await.unwrap();
    let (correlation_id, response) = read_decoded(&mut stream, ApiKey::Metadata, 12).await;
    assert_eq!(correlation_id, 42);
    assert!(matches!(response, ResponseKind::Metadata(_)));
    let contexts = handler.contexts.lock().unwrap();
    assert_eq!(contexts[0].client_id.as_deref(), Some("cli"));
    assert_eq!(
        (contexts[0].api_key, contexts[0].api_version),
        (ApiKey::Metadata, 12)
    );
}

#[tokio::test]
async fn null_and_empty_client_ids_are_accepted() {
    let handler = Arc::new(TestHandler::new());
    let server = start(handler.clone(), |_| {}).await;
    let mut stream = connect(server.addr).await;
    let body = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![])));
    stream
        .write_all(&request_frame(ApiKey::Metadata, 4, 1, None, &body))
        .await
        .unwrap();
    stream
        .write_all(&request_frame(ApiKey::Metadata, 4, 2, Some(""), &body))
        .await
        .unwrap();
    assert_eq!(read_decoded(&mut stream, ApiKey::Metadata, 4).await.0, 1);
    assert_eq!(read_decoded(&mut stream, ApiKey::Metadata, 4).await.0, 2);
    let contexts = handler.contexts.lock().unwrap();
    assert_eq!(contexts[0].client_id, None);
    assert_eq!(contexts[1].client_id.as_deref(), Some(""));
    assert_eq!(contexts[0].connection_id, contexts[1].connection_id);
    assert_eq!(contexts[0].listener, "PLAINTEXT");
}

#[tokio::test]
async fn pipelined_requests_with_random_delays_come_back_in_order() {
    let mut handler = TestHandler::new();
    handler.random_metadata_delays = true;
    let handler = Arc::new(handler);
    let server = start(handler.clone(), |c| c.max_inflight_per_connection = 128).await;
    let mut stream = connect(server.addr).await;
    let mut burst = BytesMut::new();
    for correlation_id in 0..100 {
        burst.put_slice(&metadata(4, 1000 + correlation_id));
    }
    stream.write_all(&burst).await.unwrap();
    for correlation_id in 0..100 {
        let (got, response) = read_decoded(&mut stream, ApiKey::Metadata, 4).await;
        assert_eq!(got, 1000 + correlation_id);
        assert!(matches!(response, ResponseKind::Metadata(_)));
    }
    // Delays really overlapped: the handler had many replies outstanding at once.
    assert!(handler.max_outstanding.load(Ordering::SeqCst) > 10);
}

#[tokio::test]
async fn no_response_in_the_middle_keeps_order() {
    let mut handler = TestHandler::new();
    handler.metadata_delay_ms = 50;
    let server = start(Arc::new(handler), |_| {}).await;
    let mut stream = connect(server.addr).await;
    let produce = |acks: i16| {
        RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(acks)
                .with_timeout_ms(1000),
        )
    };
    stream.write_all(&metadata(4, 1)).await.unwrap();
    stream
        .write_all(&request_frame(
            ApiKey::Produce,
            8,
            2,
            Some("p"),
            &produce(0),
        ))
        .await
        .unwrap();
    stream
        .write_all(&request_frame(
            ApiKey::Produce,
            8,
            3,
            Some("p"),
            &produce(1),
        ))
        .await
        .unwrap();
    stream.write_all(&metadata(4, 4)).await.unwrap();
    assert_eq!(read_decoded(&mut stream, ApiKey::Metadata, 4).await.0, 1);
    assert_eq!(read_decoded(&mut stream, ApiKey::Produce, 8).await.0, 3);
    assert_eq!(read_decoded(&mut stream, ApiKey::Metadata, 4).await.0, 4);
}

#[tokio::test]
async fn oversized_frame_closes_the_connection_and_the_server_keeps_serving() {
    let server = start(Arc::new(TestHandler::new()), |_| {}).await;
    let mut stream = connect(server.addr).await;
    stream
        .write_all(&(200 * 1024 * 1024i32).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&[0; 16]).await.unwrap();
    assert_closed(&mut stream).await;
    api_versions_roundtrip(server.addr).await;
}

#[tokio::test]
async fn non_positive_frame_sizes_close_the_connection() {
    let server = start(Arc::new(TestHandler::new()), |_| {}).await;
    for size in [-1i32, 0, i32::MIN] {
        let mut stream = connect(server.addr).await;
        stream.write_all(&size.to_be_bytes()).await.unwrap();
        assert_closed(&mut stream).await;
    }
    api_versions_roundtrip(server.addr).await;
}

#[tokio::test]
async fn unknown_api_key_closes_the_connection() {
    let server = start(Arc::new(TestHandler::new()), |_| {}).await;
    let mut stream = connect(server.addr).await;
    stream
        .write_all(&frame(&[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]))
        .await
        .unwrap();
    assert_closed(&mut stream).await;
}

#[tokio::test]
async fn garbage_body_closes_the_connection() {
    let handler = Arc::new(TestHandler::new());
    let server = start(handler.clone(), |_| {}).await;
    // Metadata v1: one topic whose name is cut short; then a truncated body.
    for body in [&[0u8, 0, 0, 1, 0, 9, b'a'][..], &[0, 0][..]] {
        let mut stream = connect(server.addr).await;
        let mut payload = vec![0, 3, 0, 1, 0, 0, 0, 5, 0xff, 0xff];
        payload.extend_from_slice(body);
        stream.write_all(&frame(&payload)).await.unwrap();
        assert_closed(&mut stream).await;
    }
    assert_eq!(handler.handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn huge_array_counts_in_small_frames_are_refused_without_allocating() {
    let handler = Arc::new(TestHandler::new());
    let server = start(handler.clone(), |_| {}).await;
    // Unguarded, kafka-protocol would Vec::with_capacity(2^31 or 2^32 topics) = hundreds of GB
    // and abort this test process.
    let cases: [(i16, &[u8]); 2] = [
        (1, &[0x7f, 0xff, 0xff, 0xff]),
        (12, &[0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0, 0]),
    ];
    for (version, body) in cases {
        let mut stream = connect(server.addr).await;
        let mut payload = vec![0, 3, 0, version as u8, 0, 0, 0, 5, 0xff, 0xff];
        if version >= 9 {
            payload.push(0); // header v2 tags
        }
        payload.extend_from_slice(body);
        stream.write_all(&frame(&payload)).await.unwrap();
        assert_closed(&mut stream).await;
    }
    assert_eq!(handler.handled.load(Ordering::SeqCst), 0);
    api_versions_roundtrip(server.addr).await;
}

#[tokio::test]
async fn unsupported_versions_get_an_error_code_or_a_close() {
    let server = start(Arc::new(TestHandler::new()), |_| {}).await;
    let mut stream = connect(server.addr).await;
    // Heartbeat v4 is outside 0..3 but its response has an error_code.
    let heartbeat = RequestKind::Heartbeat(HeartbeatRequest::default());
    stream
        .write_all(&request_frame(ApiKey::Heartbeat, 4, 9, None, &heartbeat))
        .await
        .unwrap();
    let (correlation_id, response) = read_decoded(&mut stream, ApiKey::Heartbeat, 4).await;
    assert_eq!(correlation_id, 9);
    assert!(matches!(response, ResponseKind::Heartbeat(r) if r.error_code == 35));
    // Metadata v13 is outside 0..12: it has an error_code at v13.
    stream.write_all(&metadata(13, 10)).await.unwrap();
    let (_, response) = read_decoded(&mut stream, ApiKey::Metadata, 13).await;
    assert!(matches!(response, ResponseKind::Metadata(r) if r.error_code == 35));
    // Fetch v4 (not served, no top-level error_code at v4): close.
    let fetch = RequestKind::Fetch(FetchRequest::default());
    stream
        .write_all(&request_frame(ApiKey::Fetch, 4, 11, None, &fetch))
        .await
        .unwrap();
    assert_closed(&mut stream).await;
}

#[tokio::test]
async fn max_inflight_bounds_what_the_handler_sees() {
    let handler = Arc::new(TestHandler::new());
    let server = start(handler.clone(), |c| c.max_inflight_per_connection = 4).await;
    let mut stream = connect(server.addr).await;
    let heartbeat = RequestKind::Heartbeat(HeartbeatRequest::default());
    let mut burst = BytesMut::new();
    for correlation_id in 0..20 {
        burst.put_slice(&request_frame(
            ApiKey::Heartbeat,
            3,
            correlation_id,
            None,
            &heartbeat,
        ));
    }
    stream.write_all(&burst).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        handler.handled.load(Ordering::SeqCst),
        4,
        "reading must pause at 4 outstanding"
    );
    handler.gate.send_replace(true);
    for correlation_id in 0..20 {
        assert_eq!(
            read_decoded(&mut stream, ApiKey::Heartbeat, 3).await.0,
            correlation_id
        );
    }
    assert_eq!(handler.handled.load(Ordering::SeqCst), 20);
    assert!(handler.max_outstanding.load(Ordering::SeqCst) <= 4);
}

#[tokio::test]
async fn graceful_shutdown_finishes_an_in_flight_deferred_reply() {
    let mut handler = TestHandler::new();
    handler.metadata_delay_ms = 300;
    let handler = Arc::new(handler);
    let mut server = start(handler.clone(), |_| {}).await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&metadata(4, 5)).await.unwrap();
    while handler.handled.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.shutdown.take().unwrap().send(()).unwrap();
    let (correlation_id, _) = read_decoded(&mut stream, ApiKey::Metadata, 4).await;
    assert_eq!(correlation_id, 5);
    assert_closed(&mut stream).await;
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "listener must be closed"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed() {
    let server = start(Arc::new(TestHandler::new()), |c| c.max_connections = 1).await;
    let mut first = connect(server.addr).await;
    first.write_all(&metadata(4, 1)).await.unwrap();
    assert_eq!(read_decoded(&mut first, ApiKey::Metadata, 4).await.0, 1);
    let mut second = connect(server.addr).await;
    assert_closed(&mut second).await;
    drop(first);
    // The slot is freed once the first connection ends.
    tokio::time::sleep(Duration::from_millis(100)).await;
    api_versions_roundtrip(server.addr).await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let server = start(Arc::new(TestHandler::new()), |c| c.idle_timeout_ms = 200).await;
    let mut stream = connect(server.addr).await;
    stream.write_all(&metadata(4, 1)).await.unwrap();
    assert_eq!(read_decoded(&mut stream, ApiKey::Metadata, 4).await.0, 1);
    let started = std::time::Instant::now();
    assert_closed(&mut stream).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
}
