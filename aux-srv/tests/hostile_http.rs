//! aux-srv's listeners against clients that never finish their requests
//! (issue 15, item 1): body deadline (408), 413 before the body, bounds on
//! connections overall and per address with health checks still answered.

mod support;

use std::time::{Duration, Instant};

use common::config::HttpLimits;
use http_listener::test_client::{
    assert_faulty_requests_answered_in_json, connect_from, error_code, read_until_closed, status_of,
};
use support::{aux_config, start_aux};
use tokio::io::AsyncWriteExt;

fn limits(body_timeout_ms: u64, per_ip: usize) -> HttpLimits {
    HttpLimits { body_timeout_ms, max_connections_per_ip: per_ip, ..HttpLimits::default() }
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_and_the_connection_closes() {
    let aux =
        start_aux(common::config::AuxConfig { http: limits(500, 0), ..aux_config(&[]) }).await;
    // Declared, then nothing: the handler reading it answers 408.
    let mut stream = connect_from([127, 0, 1, 1], aux.public).await;
    let head = "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"name\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let response = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), 408, "{response}");
    assert_eq!(error_code(&response), "request_timeout");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Declared on a route that never reads it: the connection still closes.
    let mut stream = connect_from([127, 0, 1, 2], aux.public).await;
    let head = "GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), 413, "too large, before any byte: {response}");

    let mut stream = connect_from([127, 0, 1, 3], aux.public).await;
    let head = "GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), 200, "answered, then closed: {response}");
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let aux = start_aux(aux_config(&[])).await;
    let mut stream = connect_from([127, 0, 2, 2], aux.public).await;
    let head = "DELETE /api/rooms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), 405, "{response}");
    assert!(response.to_ascii_lowercase().contains("\r\nallow: post\r\n"), "{response}");
}

#[tokio::test]
async fn heads_hyper_refuses_get_the_json_body() {
    let aux = start_aux(aux_config(&[])).await;
    assert_faulty_requests_answered_in_json([127, 0, 2, 3], aux.public).await;
}

#[tokio::test]
async fn a_body_declared_too_large_gets_413_at_once() {
    let aux = start_aux(aux_config(&[])).await;
    let mut stream = connect_from([127, 0, 2, 1], aux.public).await;
    let head = format!(
        "PUT /api/rooms/big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        aux.config.max_body_bytes + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Well before the body deadline (10 s by default): no byte was awaited.
    let response = read_until_closed(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(status_of(&response), 413, "{response}");
    assert_eq!(error_code(&response), "too_large");
}

#[tokio::test]
async fn one_address_cannot_take_every_connection_and_health_still_answers() {
    let aux =
        start_aux(common::config::AuxConfig { http: limits(60_000, 4), ..aux_config(&[]) }).await;
    let attacker = [127, 0, 3, 1];
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect_from(attacker, aux.public).await;
        let head = "POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        held.push(stream);
    }
    // The fifth from that address: health only.
    let request = "GET /api/rooms/lobby HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let health = "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let ask = |from: [u8; 4], raw: &'static str| {
        let addr = aux.public;
        async move {
            // The held connections are counted once accepted: retry until then.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let mut stream = connect_from(from, addr).await;
                stream.write_all(raw.as_bytes()).await.unwrap();
                let response = read_until_closed(&mut stream, Duration::from_secs(5)).await;
                if status_of(&response) == 503 || Instant::now() > deadline || raw == health {
                    return response;
                }
            }
        }
    };
    let refused = ask(attacker, request).await;
    assert_eq!(status_of(&refused), 503, "{refused}");
    assert_eq!(error_code(&refused), "too_many_connections");
    let probe = ask(attacker, health).await;
    assert_eq!(status_of(&probe), 200, "health answers even so: {probe}");
    let other = ask([127, 0, 3, 2], request).await;
    assert_ne!(status_of(&other), 503, "another address is served: {other}");
    drop(held);
}
