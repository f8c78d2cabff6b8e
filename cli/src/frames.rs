//! Reading server frames leniently and writing the `join` frame.
//!
//! The frame types are `common::ws`'s. This client must keep working while
//! servers gain frames and fields (votes, previews, topics, member tokens,
//! new `closing` reasons), so a frame is first read as JSON: the parts the
//! shared types do not carry yet (`welcome.you.token`, any `closing`
//! reason) are taken from there, and frame types this client does not know
//! are passed over rather than treated as errors.

use common::ws::{ChatMessage, ClientFrame, Limits, Member, Resume, ServerFrame};
use serde_json::Value;

/// The room as it is when we (re)join.
#[derive(Debug, Clone)]
pub struct Welcome {
    pub room: String,
    pub epoch: u64,
    pub you: Member,
    pub members: Vec<Member>,
    pub messages: Vec<ChatMessage>,
    pub last_seq: u64,
    pub resumed: bool,
    pub limits: Option<Limits>,
    /// The member token, from servers that give one (`welcome.you.token`).
    pub token: Option<String>,
}

/// One frame from the server.
#[derive(Debug, Clone)]
pub enum Incoming {
    Welcome(Box<Welcome>),
    /// `closing {reason}`, with any reason (`moved`, `replaced`, `kicked`…),
    /// and, for `moved`, where the room went (`ws_url`).
    Closing {
        reason: String,
        ws_url: Option<String>,
    },
    Frame(ServerFrame),
    /// A frame type this client does not handle; ignored.
    Unknown(String),
}

/// Reads one text frame. `Err` only for frames that are not JSON objects
/// with a `type`, or known types with the wrong shape.
pub fn parse(text: &str) -> Result<Incoming, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let kind =
        value.get("type").and_then(Value::as_str).ok_or("a frame without a type")?.to_owned();
    match kind.as_str() {
        "closing" => {
            let reason = value.get("reason").and_then(Value::as_str).unwrap_or("unknown");
            let ws_url = value.get("ws_url").and_then(Value::as_str).map(str::to_owned);
            return Ok(Incoming::Closing { reason: reason.to_owned(), ws_url });
        }
        "message" | "joined" | "left" | "typing" | "nick" | "edited" | "deleted" | "history"
        | "notice" | "error" | "welcome" | "votes" | "preview" => {}
        _ => return Ok(Incoming::Unknown(kind)),
    }
    match serde_json::from_value::<ServerFrame>(value).map_err(|e| format!("{kind}: {e}"))? {
        ServerFrame::Welcome {
            room,
            epoch,
            you,
            members,
            messages,
            last_seq,
            resumed,
            limits,
            ..
        } => {
            let token = you.token.clone();
            let you = Member { id: you.id, nick: you.nick };
            Ok(Incoming::Welcome(Box::new(Welcome {
                room,
                epoch,
                you,
                members,
                messages,
                last_seq,
                resumed,
                limits,
                token,
            })))
        }
        frame => Ok(Incoming::Frame(frame)),
    }
}

/// The `join` frame; `reclaim` names the member we were (contract second
/// round), which servers that do not know it ignore.
pub fn join(
    nick: Option<&str>,
    password: Option<&str>,
    resume: Option<Resume>,
    reclaim: Option<&str>,
) -> String {
    let frame = ClientFrame::Join {
        nick: nick.map(str::to_owned),
        password: password.map(str::to_owned),
        resume,
        reclaim: reclaim.map(str::to_owned),
        pow: None,
    };
    encode(&frame)
}

/// Any client frame as JSON text.
pub fn encode(frame: &ClientFrame) -> String {
    serde_json::to_string(frame).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_servers_are_understood() {
        let welcome = parse(
            r#"{"type":"welcome","room":"R","epoch":3,"you":{"id":7,"nick":"ada","token":"t0k"},
                "members":[],"messages":[],"last_seq":0,"topic":"hi","settings":{}}"#,
        )
        .unwrap();
        let Incoming::Welcome(w) = welcome else { panic!("{welcome:?}") };
        assert_eq!((w.epoch, w.token.as_deref()), (3, Some("t0k")));

        let moved = parse(r#"{"type":"closing","reason":"moved"}"#).unwrap();
        assert!(
            matches!(moved, Incoming::Closing { ref reason, ws_url: None } if reason == "moved")
        );
        let moved =
            parse(r#"{"type":"closing","reason":"moved","ws_url":"ws://b2/ws/R"}"#).unwrap();
        let Incoming::Closing { ws_url, .. } = moved else { panic!("{moved:?}") };
        assert_eq!(ws_url.as_deref(), Some("ws://b2/ws/R"));
        let votes = parse(r#"{"type":"votes","seq":1,"up":2,"down":0}"#).unwrap();
        assert!(matches!(votes, Incoming::Frame(ServerFrame::Votes { seq: 1, up: 2, down: 0 })));
        let topic = parse(r#"{"type":"topic","text":"hi"}"#).unwrap();
        assert!(matches!(topic, Incoming::Unknown(ref t) if t == "topic"));
        let voted = parse(
            r#"{"type":"message","seq":1,"ts":0,"from":{"id":1,"nick":"a"},"text":"x","up":3}"#,
        )
        .unwrap();
        assert!(matches!(voted, Incoming::Frame(ServerFrame::Message(ref m)) if m.seq == 1));
    }

    #[test]
    fn broken_frames_are_errors() {
        assert!(parse("[]").is_err());
        assert!(parse(r#"{"type":"message","seq":"x"}"#).is_err());
        assert!(parse("nope").is_err());
    }

    #[test]
    fn join_carries_resume_and_reclaim() {
        let text = join(
            Some("ada"),
            None,
            Some(Resume { epoch: 5, after_seq: 9, has_members: false }),
            Some("t0k"),
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "join");
        assert_eq!(v["nick"], "ada");
        assert_eq!(v["resume"]["after_seq"], 9);
        assert_eq!(v["reclaim"], "t0k");
        assert!(v.get("password").is_none());
        let bare: Value = serde_json::from_str(&join(None, None, None, None)).unwrap();
        assert_eq!(bare, serde_json::json!({"type": "join"}));
    }
}
