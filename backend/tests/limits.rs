//! Every limit of the contract, answered as the contract says: an `error`
//! frame with the connection kept, or a close code, or an HTTP refusal before
//! the upgrade.

mod support;

use std::time::Duration;

use common::config::BackendConfig;
use common::ws::ClientFrame;
use futures_util::SinkExt;
use support::{Ending, WsClient, disconnects, join_frame, quick, start_backend, test_config};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

#[tokio::test]
async fn text_longer_than_4000_characters_is_refused_and_the_connection_stays() {
    let backend = start_backend(quick()).await;
    let (mut a, _) = backend.create_room_and_join("limits", "a").await;
    a.say(&"é".repeat(4000)).await;
    assert_eq!(a.expect("message").await["seq"], 1, "4000 characters (8000 bytes) is fine");
    a.say(&"x".repeat(4001)).await;
    let error = a.expect("error").await;
    assert_eq!(error["code"], "text_too_long");
    a.send(&ClientFrame::Edit { seq: 1, text: "y".repeat(4001) }).await;
    assert_eq!(a.expect("error").await["code"], "text_too_long");
    a.say("still here").await;
    assert_eq!(a.expect("message").await["seq"], 2);
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_an_error_and_the_connection_stays() {
    let backend = start_backend(quick()).await;
    let (mut a, _) = backend.create_room_and_join("garbage", "a").await;
    for (text, code) in [
        ("not json", "bad_json"),
        ("[1,2,3]", "bad_json"),
        (r#"{"no":"type"}"#, "bad_json"),
        (r#"{"type":"shout","text":"x"}"#, "unknown_type"),
        (r#"{"type":"send"}"#, "empty_message"),
        (r#"{"type":"edit","seq":"one","text":"x"}"#, "bad_request"),
        (r#"{"type":"delete"}"#, "bad_request"),
        (r#"{"type":"join"}"#, "already_joined"),
    ] {
        a.send_text(text).await;
        let error = a.expect("error").await;
        assert_eq!(error["code"], code, "for {text}");
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    a.say_and_await_echo("fine").await;
}

#[tokio::test]
async fn a_frame_over_16_kib_closes_with_1009() {
    let backend = start_backend(quick()).await;
    let (mut a, _) = backend.create_room_and_join("big", "a").await;
    a.send_text(&format!(r#"{{"type":"send","text":"{}"}}"#, "x".repeat(16 * 1024))).await;
    let (_, ending) = a.until_closed().await;
    assert_eq!(ending, Ending::Close(1009));
    backend.await_metric(&disconnects("frame_too_big"), 1.0).await;
}

#[tokio::test]
async fn binary_frames_close_with_1003() {
    let backend = start_backend(quick()).await;
    let (mut a, _) = backend.create_room_and_join("binary", "a").await;
    a.ws.send(Message::Binary(Bytes::from_static(b"\x00\x01"))).await.unwrap();
    assert_eq!(a.until_closed().await.1, Ending::Close(1003));
}

#[tokio::test]
async fn non_utf8_text_closes_with_1007() {
    let backend = start_backend(quick()).await;
    let (mut a, _) = backend.create_room_and_join("utf8", "a").await;
    let frame = Frame::message(
        Bytes::from_static(b"{\"type\":\"send\",\"text\":\"\xff\xfe\"}"),
        OpCode::Data(Data::Text),
        true,
    );
    a.ws.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(a.until_closed().await.1, Ending::Close(1007));
}

#[tokio::test]
async fn flooding_is_rate_limited_then_closed_with_1008() {
    let config =
        BackendConfig { rate_per_sec: 10, rate_burst: 20, flood_close_after: 10, ..test_config() };
    let backend = start_backend(config).await;
    let (mut a, _) = backend.create_room_and_join("flood", "a").await;
    let (mut b, _) = backend.member("flood", "b").await;
    for i in 0..25 {
        a.say(&format!("m{i}")).await;
    }
    let mut messages = 0;
    let mut limited = Vec::new();
    while messages + limited.len() < 25 {
        let frame = a.next().await;
        match frame["type"].as_str() {
            Some("message") => messages += 1,
            Some("error") => {
                assert_eq!(frame["code"], "rate_limited");
                limited.push(frame["retry_after_ms"].as_u64().expect("retry_after_ms"));
            }
            _ => {}
        }
    }
    // The burst is 20; the join used one token and a few refill while sending.
    assert!((19..=22).contains(&messages), "{messages} got through");
    assert!(limited.iter().all(|ms| (1..=101).contains(ms)), "{limited:?}");
    // Keep flooding: the connection is closed with 1008.
    for i in 0..30 {
        if a.ws.send(Message::text(format!(r#"{{"type":"typing","n":{i}}}"#))).await.is_err() {
            break;
        }
    }
    assert_eq!(a.until_closed().await.1, Ending::Close(1008));
    backend.await_metric(&disconnects("flooding"), 1.0).await;
    assert!(backend.metric("instantchat_backend_rate_limited_total").await >= 11.0);
    // The other member was not disturbed.
    b.say("calm").await;
    while b.expect("message").await["text"] != "calm" {}
}

#[tokio::test]
async fn a_full_room_refuses_the_next_member() {
    let backend = start_backend(BackendConfig { max_members: 2, ..quick() }).await;
    backend.create_room("tiny").await;
    let (_a, _) = backend.member("tiny", "a").await;
    let (_b, _) = backend.member("tiny", "b").await;
    let mut c = backend.connect("tiny").await;
    c.send(&join_frame(None, None, None)).await;
    c.expect_error_and_close("room_full", 1013).await;
}

#[tokio::test]
async fn a_forbidden_origin_gets_403_before_the_upgrade() {
    let backend = start_backend(quick()).await;
    backend.create_room("origin").await;
    let url = backend.ws_url("origin");
    match WsClient::connect_with_origin(&url, "http://evil.example").await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("origin_not_allowed"), "{body}");
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    // The page's own host may connect (aux-srv serves it from another port).
    assert!(WsClient::connect_with_origin(&url, "http://127.0.0.1:8080").await.is_ok());

    let listed = start_backend(BackendConfig {
        allowed_origins: vec!["https://chat.example".into()],
        ..quick()
    })
    .await;
    listed.create_room("origin").await;
    let url = listed.ws_url("origin");
    assert!(WsClient::connect_with_origin(&url, "https://chat.example").await.is_ok());
    assert!(WsClient::connect_with_origin(&url, "http://127.0.0.1:8080").await.is_err());
}

#[tokio::test]
async fn connections_over_the_cap_get_503() {
    let backend = start_backend(BackendConfig { max_connections: 2, ..quick() }).await;
    backend.create_room("cap").await;
    let a = backend.connect("cap").await;
    let _b = backend.connect("cap").await;
    match tokio_tungstenite::connect_async(backend.ws_url("cap")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    drop(a);
    backend.await_metric("instantchat_backend_connections", 1.0).await;
    let _c = backend.connect("cap").await;
}

#[tokio::test]
async fn bad_requests_are_refused_before_the_upgrade() {
    let backend = start_backend(quick()).await;
    let (status, body) = support::http_get(backend.public, "/ws/room").await;
    assert_eq!(status, 400);
    assert!(body.contains("not_websocket"));
    match tokio_tungstenite::connect_async(backend.ws_url("a%20b")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected 400, got {:?}", other.map(|_| ())),
    }
    assert_eq!(support::http_get(backend.public, "/nothing").await.0, 404);
    assert_eq!(support::http_get(backend.public, "/livez").await.0, 200);
    assert_eq!(support::http_get(backend.public, "/readyz").await.0, 200);
}

#[tokio::test]
async fn a_client_that_never_joins_is_closed() {
    let backend = start_backend(BackendConfig { join_timeout_ms: 200, ..quick() }).await;
    backend.create_room("lobby").await;
    let mut c = backend.connect("lobby").await;
    c.expect_error_and_close("join_timeout", 1008).await;
}

#[tokio::test]
async fn silent_peers_are_pinged_then_dropped_while_live_ones_stay() {
    let config = BackendConfig { ping_interval_ms: 100, idle_timeout_ms: 350, ..quick() };
    let backend = start_backend(config).await;
    backend.create_room("pings").await;
    // This member's client never reads, so it never answers pings.
    let (_silent, _) = backend.member("pings", "silent").await;
    let (mut live, _) = backend.member("pings", "live").await;
    // Reading is what makes a client answer pings.
    let left = live.expect("left").await;
    assert_eq!(left["member"]["nick"], "silent");
    backend.await_metric(&disconnects("timeout"), 1.0).await;
    // The live client answered every ping while reading: it is still here.
    live.say_and_await_echo("still here").await;
}

/// A proxy in front (nginx) closes a websocket the server sends nothing on,
/// so a client that talks but is sent nothing is pinged as well.
#[tokio::test]
async fn talkative_peers_are_pinged_too() {
    let config = BackendConfig { ping_interval_ms: 100, idle_timeout_ms: 350, ..quick() };
    let backend = start_backend(config).await;
    let (mut alone, _) = backend.create_room_and_join("talk", "alone").await;
    let pinged = tokio::time::timeout(Duration::from_secs(5), async {
        let mut typing = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = typing.tick() => alone.send(&ClientFrame::Typing).await,
                msg = futures_util::StreamExt::next(&mut alone.ws) => match msg {
                    Some(Ok(Message::Ping(_))) => return,
                    Some(Ok(_)) => {}
                    other => panic!("connection ended: {other:?}"),
                },
            }
        }
    })
    .await;
    assert!(pinged.is_ok(), "a client typing every 20 ms was never pinged");
}

/// A client that keeps talking but never reads: its queue never fills (it
/// is sent only its welcome), but the write of that welcome cannot finish.
#[tokio::test]
async fn a_client_whose_write_is_stuck_is_closed_after_the_idle_timeout() {
    let config = BackendConfig { ping_interval_ms: 100, idle_timeout_ms: 400, ..quick() };
    let backend = start_backend(config).await;
    let (mut other, _) = backend.create_room_and_join("stuck", "other").await;
    // 3 MB of history: far more than the socket buffers between them.
    let text = "w".repeat(3000);
    for _ in 0..1000 {
        other.say(&text).await;
        other.expect("message").await;
    }

    let mut stuck = backend.connect_with_receive_buffer("stuck", 4096).await;
    stuck.send(&join_frame(Some("stuck"), None, None)).await;
    assert_eq!(other.expect("joined").await["member"]["nick"], "stuck");

    // It keeps talking (so it is not a dead peer), and never reads.
    let talking = tokio::spawn(async move {
        loop {
            if stuck.ws.send(Message::text(r#"{"type":"typing"}"#)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let left = tokio::time::timeout(Duration::from_secs(5), other.expect("left")).await;
    assert_eq!(left.expect("the stuck client was closed")["member"]["nick"], "stuck");
    backend.await_metric(&disconnects("slow_consumer"), 1.0).await;
    talking.abort();
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_the_room_keeps_going() {
    let config = BackendConfig { send_queue_frames: 64, ..quick() };
    let backend = start_backend(config).await;
    backend.create_room("slow").await;

    // A reader with a tiny receive window that never reads.
    let mut slow = backend.connect_with_receive_buffer("slow", 4096).await;
    slow.join("slow").await;

    let (mut fast, _) = backend.member("slow", "fast").await;
    let text = "z".repeat(3000);
    let mut seqs = Vec::new();
    let mut saw_left = false;
    for _ in 0..3000 {
        fast.say(&text).await;
        loop {
            let frame = fast.next().await;
            match frame["type"].as_str() {
                Some("message") => {
                    seqs.push(frame["seq"].as_u64().unwrap());
                    break;
                }
                Some("left") => {
                    assert_eq!(frame["member"]["nick"], "slow");
                    saw_left = true;
                }
                _ => {}
            }
        }
        if saw_left {
            break;
        }
    }
    assert!(saw_left, "the slow member was closed");
    backend.await_metric(&disconnects("slow_consumer"), 1.0).await;
    assert!(seqs.iter().copied().eq(1..=seqs.len() as u64), "the fast member missed nothing");
    // And the room goes on at full speed after it.
    for _ in 0..100 {
        fast.say("after").await;
    }
    for _ in 0..100 {
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(2), fast.expect("message")).await.unwrap()["text"],
            "after"
        );
    }
}
