//! The edges of one connection: waiting for the `welcome` after `join`,
//! reading what the server's close means, and closing cleanly ourselves.

use std::time::Duration;

use common::ws::{ServerFrame, close_code};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::error::CliError;
use crate::frames::{self, Incoming, Welcome};
use crate::transport::Socket;

/// How long the server gets to answer our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How one connection ended.
pub enum Ended {
    Quit,
    /// The room is elsewhere now: ask aux-srv again right away.
    Moved,
    Lost(String),
    Fatal(CliError),
}

/// Join refusals that a retry would only repeat.
const FATAL_JOIN_ERRORS: &[&str] = &[
    "bad_nick",
    "reserved_nick",
    "password_required",
    "wrong_password",
    "room_full",
    "banned",
    "room_locked",
];

pub fn lost(url: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Unreachable { target: url.to_owned(), why: e.to_string() }
}

/// Challenges answered per connection before giving up (a room whose
/// puzzle keeps changing under us).
const MAX_CHALLENGES: u32 = 3;

/// Reads until the `welcome`; a refused join is fatal or transient. A
/// proof-of-work challenge is solved and `join` (the frame sent) sent again
/// with its answer.
pub async fn await_welcome(
    socket: &mut Socket,
    url: &str,
    wait: Duration,
    join: &str,
) -> Result<Box<Welcome>, CliError> {
    let mut challenges = 0;
    loop {
        let message = tokio::time::timeout(wait, socket.next())
            .await
            .map_err(|_| lost(url, "no welcome in time"))?
            .ok_or_else(|| lost(url, "closed before the welcome"))?
            .map_err(|e| lost(url, e))?;
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => {
                let code = frame.map(|f| u16::from(f.code));
                return Err(lost(url, format!("closed with {code:?} before the welcome")));
            }
            _ => continue,
        };
        match frames::parse(&text) {
            Ok(Incoming::Welcome(welcome)) => return Ok(welcome),
            Ok(Incoming::Frame(ServerFrame::Error { code, .. }))
                if code == "challenge" && challenges < MAX_CHALLENGES =>
            {
                challenges += 1;
                let answer = answer_challenge(&text, join).await;
                let answer = answer.ok_or_else(|| lost(url, "an unreadable challenge"))?;
                socket.send(Message::text(answer)).await.map_err(|e| lost(url, e))?;
            }
            Ok(Incoming::Frame(ServerFrame::Error { code, message, .. }))
                if FATAL_JOIN_ERRORS.contains(&code.as_str()) =>
            {
                return Err(CliError::JoinRefused { code, message });
            }
            Ok(Incoming::Frame(ServerFrame::Error { code, message, .. })) => {
                return Err(lost(url, format!("{code}: {message}")));
            }
            Ok(Incoming::Closing { reason, .. }) => {
                return Err(lost(url, format!("closing ({reason}) before the welcome")));
            }
            Ok(_) => {}
            Err(why) => tracing::warn!(%why, "unreadable frame ignored"),
        }
    }
}

/// `join` with `pow`, the answer to the challenge in the `error` frame
/// `text` (solved off the async threads: it is tens of thousands of hashes).
async fn answer_challenge(text: &str, join: &str) -> Option<String> {
    let error: serde_json::Value = serde_json::from_str(text).ok()?;
    let challenge: common::pow::Challenge =
        serde_json::from_value(error.get("challenge")?.clone()).ok()?;
    let solved = tokio::task::spawn_blocking(move || common::pow::solve(&challenge)).await.ok()?;
    let mut join: serde_json::Value = serde_json::from_str(join).ok()?;
    join.as_object_mut()?.insert("pow".into(), serde_json::to_value(solved).ok()?);
    Some(join.to_string())
}

/// What the server's close (and the `closing` before it) means for us.
pub fn ended_by_server(code: Option<u16>, reason: Option<&str>) -> Ended {
    const SERVICE_RESTART: u16 = 1012;
    match (reason, code) {
        (Some("moved"), _) | (_, Some(SERVICE_RESTART)) => Ended::Moved,
        (Some("room_deleted"), _) => Ended::Fatal(CliError::Ended("the room was deleted".into())),
        (Some("kicked"), _) => Ended::Fatal(CliError::Ended("an owner removed you".into())),
        (Some("replaced"), _) => {
            Ended::Fatal(CliError::Ended("you joined this room from somewhere else".into()))
        }
        (_, Some(close_code::JOIN_REFUSED)) => {
            Ended::Fatal(CliError::Ended("the room refused this member".into()))
        }
        (reason, code) => Ended::Lost(format!(
            "the server closed the connection (code {}, {})",
            code.map_or("none".into(), |c| c.to_string()),
            reason.unwrap_or("no reason given")
        )),
    }
}

/// A close frame, then what the server still sends until it closes too.
pub async fn close(socket: &mut Socket) {
    let frame = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ =
        tokio::time::timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = socket.next().await {} })
            .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_close_means() {
        assert!(matches!(ended_by_server(Some(1012), None), Ended::Moved));
        assert!(matches!(ended_by_server(Some(1000), Some("moved")), Ended::Moved));
        assert!(matches!(ended_by_server(Some(1001), Some("shutdown")), Ended::Lost(_)));
        assert!(matches!(ended_by_server(Some(4404), None), Ended::Lost(_)));
        assert!(matches!(ended_by_server(None, None), Ended::Lost(_)));
        assert!(matches!(ended_by_server(Some(1000), Some("room_deleted")), Ended::Fatal(_)));
        assert!(matches!(ended_by_server(Some(4403), Some("kicked")), Ended::Fatal(_)));
        assert!(matches!(ended_by_server(Some(4403), None), Ended::Fatal(_)));
        assert!(matches!(ended_by_server(Some(1000), Some("replaced")), Ended::Fatal(_)));
    }

    #[tokio::test]
    async fn a_challenge_is_answered_with_the_same_join_and_a_solved_pow() {
        let secret = [3u8; 32];
        let challenge = common::pow::issue(&secret, "room", 10, 4_000_000_000);
        let error = serde_json::json!({
            "type": "error", "code": "challenge", "message": "solve it", "challenge": challenge,
        })
        .to_string();
        let join = r#"{"type":"join","nick":"ada","reclaim":"t0k"}"#;
        let answer = answer_challenge(&error, join).await.expect("an answer");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            (answer["nick"].as_str(), answer["reclaim"].as_str()),
            (Some("ada"), Some("t0k"))
        );
        let pow: common::pow::PowSolution = serde_json::from_value(answer["pow"].clone()).unwrap();
        assert_eq!(common::pow::verify(&secret, "room", &pow, 10, 0), Ok(()));
        assert_eq!(answer_challenge(r#"{"type":"error","code":"challenge"}"#, join).await, None);
    }
}
