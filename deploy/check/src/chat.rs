//! Talking in a room over a websocket, as the tests do it.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::WAIT;
use crate::client::WebSocket;

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
