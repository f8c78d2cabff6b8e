//! file-srv's listener against clients that never finish their requests
//! (issue 15, item 1): the shared rules of `instantchat-http` hold here too.

mod support;

use std::time::Duration;

use common::config::{FileSrvConfig, HttpLimits};
use http_listener::test_client::{
    assert_faulty_requests_answered_in_json, connect_from, exchange, status_of,
};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn declared_too_large_is_413_at_once_and_an_unsent_body_closes() {
    let root = tempfile::tempdir().unwrap();
    let http = HttpLimits { body_timeout_ms: 300, ..HttpLimits::default() };
    let config =
        FileSrvConfig { http, upload_timeout_ms: 300, ..support::files_config(root.path()) };
    let max = config.max_bytes;
    let server = support::start_files(config).await;

    let head = format!("POST /files HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", max + 1);
    let response = exchange([127, 0, 4, 1], server.addr, &head, Duration::from_secs(2)).await;
    assert_eq!(status_of(&response), 413, "{response}");
    assert!(response.contains("\"too_large\""), "{response}");

    let head = "GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
    let response = exchange([127, 0, 4, 2], server.addr, head, Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), 200, "answered, then closed: {response}");
}

#[tokio::test]
async fn heads_hyper_refuses_get_the_json_body() {
    let root = tempfile::tempdir().unwrap();
    let server = support::start_files(support::files_config(root.path())).await;
    assert_faulty_requests_answered_in_json([127, 0, 4, 3], server.addr).await;
}

#[tokio::test]
async fn connections_over_the_per_address_bound_get_health_only() {
    let root = tempfile::tempdir().unwrap();
    let http = HttpLimits { max_connections_per_ip: 2, ..HttpLimits::default() };
    let server =
        support::start_files(FileSrvConfig { http, ..support::files_config(root.path()) }).await;
    let attacker = [127, 0, 5, 1];
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from(attacker, server.addr).await;
        stream
            .write_all(b"POST /files HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    let wait = Duration::from_secs(5);
    let request = "GET /files/nope.png HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    support::eventually_within("the held connections are counted", wait, async || {
        status_of(&exchange(attacker, server.addr, request, wait).await) == 503
    })
    .await;
    let health = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(status_of(&exchange(attacker, server.addr, health, wait).await), 200);
    let other = exchange([127, 0, 5, 2], server.addr, request, wait).await;
    assert_ne!(status_of(&other), 503, "another address is served: {other}");
    drop(held);
}
