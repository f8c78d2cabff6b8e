//! The steps backend tests take again and again, each named once: a room
//! with its first member, a message said and echoed back, a refusal that
//! ends the connection, a plain room creation over the control protocol,
//! the seqs of a list of messages, and the names of the labelled counters
//! tests read.

use common::control::RequestBody;
use serde_json::Value;

use crate::backend::TestBackend;
use crate::ws::{Ending, WsClient};

impl TestBackend {
    /// Creates `room` and joins it as `nick`; returns the member and its
    /// `welcome`.
    pub async fn create_room_and_join(&self, room: &str, nick: &str) -> (WsClient, Value) {
        self.create_room(room).await;
        self.member(room, nick).await
    }
}

impl WsClient {
    /// Says `text` and waits for the room to send it back; returns that
    /// `message` frame (its seq, its author).
    pub async fn say_and_await_echo(&mut self, text: &str) -> Value {
        self.say(text).await;
        let echo = self.expect("message").await;
        assert_eq!(echo["text"], text);
        echo
    }

    /// Reads until the server ends the connection, which must begin with
    /// the error `code` and end with the close code `close`.
    pub async fn expect_error_and_close(&mut self, code: &str, close: u16) {
        let (frames, ending) = self.until_closed().await;
        assert_eq!(frames[0]["code"], code);
        assert_eq!(ending, Ending::Close(close));
    }
}

/// A `CreateRoom` control request for `name`: no password, no owner key.
pub fn create_room_request(name: &str) -> RequestBody {
    RequestBody::CreateRoom { name: name.into(), password_hash: None, owner_key_hash: None }
}

/// The seqs of a JSON list of messages (a `welcome`'s or a `history` page's).
pub fn seqs_of(messages: &Value) -> Vec<u64> {
    let messages = messages.as_array().expect("a list of messages");
    messages.iter().map(|m| m["seq"].as_u64().expect("a message's seq")).collect()
}

/// The sample of `instantchat_backend_disconnects_total` for `reason`.
pub fn disconnects(reason: &str) -> String {
    labelled("instantchat_backend_disconnects_total", "reason", reason)
}

/// The sample of `instantchat_backend_refusals_total` (the abuse defences'
/// refusals) for `reason`.
pub fn refusals(reason: &str) -> String {
    labelled("instantchat_backend_refusals_total", "reason", reason)
}

/// The sample of `instantchat_backend_control_rejected_total` for `reason`.
pub fn control_rejections(reason: &str) -> String {
    labelled("instantchat_backend_control_rejected_total", "reason", reason)
}

fn labelled(name: &str, label: &str, value: &str) -> String {
    format!(r#"{name}{{{label}="{value}"}}"#)
}
