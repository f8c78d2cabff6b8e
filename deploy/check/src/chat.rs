//! Talking in a room over a websocket, as the tests do it: the steps of a
//! chat through a public origin, shared by `tests/nginx_e2e.rs` and the
//! container test's `stack-chat`.

use futures_util::{SinkExt, StreamExt};
use http::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::WAIT;
use crate::client::{Origin, WebSocket};

/// The next server frame of type `kind` (others are skipped).
pub async fn next_frame(ws: &mut WebSocket, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no `{kind}` frame in time"))
            .unwrap_or_else(|| panic!("socket closed before a `{kind}` frame"))
            .expect("websocket frame");
        if let Message::Text(text) = message {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] == kind {
                return frame;
            }
        }
    }
}

/// Sends one JSON frame.
pub async fn send(ws: &mut WebSocket, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.expect("send frame");
}

/// The close frame's code, after an `error` frame.
pub async fn closed_with(ws: &mut WebSocket) -> u16 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.expect("close in time") {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("websocket error before the close: {e}"),
        }
    }
}

/// The status and body of a websocket upgrade refused with HTTP.
pub fn ws_refused_status(error: tokio_tungstenite::tungstenite::Error) -> (u16, String) {
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (response.status().as_u16(), body)
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// A drawing: uploaded through `public`, fetched back byte for byte with
/// its safe headers, then sent by `bob` and seen by `ada`.
pub async fn a_drawing_goes_up_and_round(
    public: &Origin,
    ada: &mut WebSocket,
    bob: &mut WebSocket,
) {
    let page_origin = public.url();
    let drawing = test_support::solid(4, 3, [200, 30, 30, 255]);
    let uploaded = public
        .request(
            Method::POST,
            "/files",
            &[("content-type", "image/png"), ("origin", &page_origin)],
            drawing.clone(),
        )
        .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    let upload = uploaded.json();
    let id = upload["id"].as_str().unwrap().to_owned();
    let url = upload["url"].as_str().unwrap();
    assert_eq!(url, format!("{page_origin}/files/{id}.png"));
    let fetched = public.get(&format!("/files/{id}.png")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.header("content-type"), Some("image/png"));
    assert!(fetched.header("cache-control").is_some_and(|c| c.contains("immutable")));
    assert_eq!(fetched.body.as_ref(), drawing.as_slice(), "the same bytes come back");
    send(bob, json!({"type": "send", "text": "", "drawing": id})).await;
    assert_eq!(next_frame(ada, "message").await["drawing"], id);
}

/// The HTTP API reads the same room, and its text holds `line`.
pub async fn history_over_http(public: &Origin, room: &str, line: &str) {
    let history = public
        .request(
            Method::GET,
            &format!("/api/rooms/{room}/messages"),
            &[("accept", "text/plain")],
            "",
        )
        .await;
    assert_eq!(history.status, 200);
    assert!(history.text().contains(line), "{}", history.text());
}

/// `ws://…` (or `wss://…`) of an origin URL.
pub fn ws_base(origin_url: &str) -> String {
    origin_url.replacen("http", "ws", 1)
}

/// Creates `room` with the HTTP API, as the page does; returns its
/// websocket URL and the id of the backend holding it (nginx routes
/// `/b/<id>/ws/<room>`).
pub async fn create_room(public: &Origin, room: &str) -> (String, String) {
    open_room(public, room, 201).await
}

/// Asks for `room` with the HTTP API (`PUT`, as the page does) and expects
/// `status`: 201 when this creates it, 200 when it exists. Returns its
/// websocket URL and the id of the backend holding it.
pub async fn open_room(public: &Origin, room: &str, status: u16) -> (String, String) {
    let page_origin = public.url();
    let ws_base = ws_base(&page_origin);
    let answer = public
        .request(
            Method::PUT,
            &format!("/api/rooms/{room}"),
            &[("content-type", "application/json"), ("origin", &page_origin)],
            "{}",
        )
        .await;
    assert_eq!(answer.status, status, "PUT /api/rooms/{room}: {}", answer.text());
    let answer = answer.json();
    let ws_url = answer["ws_url"].as_str().expect("ws_url").to_owned();
    assert_eq!(answer["files_url"], page_origin, "drawings come from the same origin");
    let backend = ws_url
        .strip_prefix(&format!("{ws_base}/b/"))
        .and_then(|rest| rest.strip_suffix(&format!("/ws/{room}")))
        .unwrap_or_else(|| panic!("ws_url {ws_url} is not {ws_base}/b/<id>/ws/{room}"))
        .to_owned();
    (ws_url, backend)
}

/// ada and bob join the room at `ws_url`; ada says `text` and both see it.
/// Returns their sockets.
pub async fn two_people_chat(public: &Origin, ws_url: &str, text: &str) -> (WebSocket, WebSocket) {
    let page_origin = public.url();
    let mut ada = public.websocket(ws_url, Some(&page_origin)).await.expect("ada connects");
    send(&mut ada, json!({"type": "join", "nick": "ada"})).await;
    assert_eq!(next_frame(&mut ada, "welcome").await["you"]["nick"], "ada");
    let mut bob = public.websocket(ws_url, Some(&page_origin)).await.expect("bob connects");
    send(&mut bob, json!({"type": "join", "nick": "bob"})).await;
    next_frame(&mut bob, "welcome").await;
    assert_eq!(next_frame(&mut ada, "joined").await["member"]["nick"], "bob");
    // A client id of its own: a room that already holds a message with the
    // same id (a second chat in a moved room) would answer with that one.
    let client_id = format!("c-{}", unique());
    send(&mut ada, json!({"type": "send", "text": text, "client_id": client_id})).await;
    for ws in [&mut ada, &mut bob] {
        let message = next_frame(ws, "message").await;
        assert_eq!(
            (message["text"].as_str(), message["from"]["nick"].as_str()),
            (Some(text), Some("ada"))
        );
    }
    (ada, bob)
}

/// A number that differs between calls (nanoseconds since the epoch).
fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}
