//! The control protocol between aux-srv and backends.
//!
//! Transport: TCP, frames of a 4-byte big-endian length followed by that many
//! bytes (`tokio_util::codec::LengthDelimitedCodec` on both sides), each at
//! most [`DEFAULT_MAX_FRAME_BYTES`] unless configured otherwise.
//!
//! 1. The client's first frame is [`auth_frame`]: a fixed magic and the shared
//!    `control_token`, compared in constant time **before anything is
//!    decoded**. A wrong token closes the connection.
//! 2. The server answers [`AUTH_OK`].
//! 3. Then each frame is one bincode-2 [`Request`], answered by exactly one
//!    [`Response`] with the same `id`, in order.
//!
//! Garbage and oversize frames close the connection.
//!
//! This file is the framing (auth, encode/decode with limits); the vocabulary
//! lives beside it: `request.rs` what aux-srv asks, `response.rs` what a
//! backend answers, `snapshot.rs` a room as it moves between backends.

mod request;
mod response;
mod snapshot;

pub use request::{IpBan, OwnerAct, Request, RequestBody};
pub use response::{
    ErrorCode, LoadReport, MoveState, PendingImport, RemovedRoom, ReportRecord, Response,
    ResponseBody, RoomInfo,
};
pub use snapshot::{MemberRecord, MessageRecord, RoomSnapshot};

use bincode::{Decode, Encode};
use subtle::ConstantTimeEq;

/// Largest control frame, in bytes, unless configured otherwise. A room's
/// snapshot travels in one frame ([`RequestBody::ImportRoom`]): 1000 messages
/// of 4000 four-byte characters are 16 MB, so the limit leaves room for that
/// and its members. Only authenticated peers may send frames this long.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 32 << 20;
/// What the first frame starts with; the token follows.
pub const AUTH_MAGIC: &[u8] = b"instantchat-control/1\n";
/// The server's answer to a good token.
pub const AUTH_OK: &[u8] = b"ok";
/// Most rooms one `ListRooms` page may return.
pub const MAX_LIST_PAGE: u32 = 5000;
/// Most messages one `ReadMessages` call may return.
pub const MAX_READ_PAGE: u32 = 200;

/// The body of the first frame a client sends.
pub fn auth_frame(token: &str) -> Vec<u8> {
    let mut frame = Vec::with_capacity(AUTH_MAGIC.len() + token.len());
    frame.extend_from_slice(AUTH_MAGIC);
    frame.extend_from_slice(token.as_bytes());
    frame
}

/// True when `frame` is the auth frame for `token`; constant time in the
/// content (the length of the expected frame is not secret).
pub fn check_auth(frame: &[u8], token: &str) -> bool {
    let expected = auth_frame(token);
    !token.is_empty() && frame.len() == expected.len() && bool::from(frame.ct_eq(&expected))
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DEFAULT_MAX_FRAME_BYTES>()
}

/// Encodes a request or response body (without the length prefix).
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    // Encoding into a Vec only fails for types bincode cannot represent,
    // which none of ours are.
    bincode::encode_to_vec(value, bincode::config::standard()).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
#[error("malformed control frame: {0}")]
pub struct DecodeError(String);

/// Decodes a whole frame body; trailing bytes are an error.
pub fn decode<T: Decode<()>>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, used) = bincode::decode_from_slice(bytes, bincode_config())
        .map_err(|e| DecodeError(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError(format!("{} trailing bytes", bytes.len() - used)));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_is_exact() {
        let frame = auth_frame("s3cret");
        assert!(check_auth(&frame, "s3cret"));
        assert!(!check_auth(&frame, "s3creT"));
        assert!(!check_auth(&auth_frame("s3cre"), "s3cret"));
        assert!(!check_auth(b"garbage", "s3cret"));
        assert!(!check_auth(&auth_frame(""), ""), "an empty token never authenticates");
    }

    #[test]
    fn requests_round_trip() {
        let req = Request {
            id: 42,
            body: RequestBody::CreateRoom {
                name: "Café".into(),
                password_hash: None,
                owner_key_hash: Some([7; 32]),
            },
        };
        assert_eq!(decode::<Request>(&encode(&req)).unwrap(), req);
        let resp = Response {
            id: 42,
            body: ResponseBody::Error { code: ErrorCode::Draining, message: "no".into() },
        };
        assert_eq!(decode::<Response>(&encode(&resp)).unwrap(), resp);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<Request>(&[]).is_err());
        assert!(decode::<Request>(&[0xff; 64]).is_err());
        // A huge declared string length must not allocate: the limit refuses it.
        let mut evil = encode(&Request { id: 1, body: RequestBody::Announce { text: "x".into() } });
        evil.truncate(2);
        evil.extend_from_slice(&[5, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(decode::<Request>(&evil).is_err());
        let mut trailing = encode(&Request { id: 1, body: RequestBody::Drain { draining: true } });
        trailing.push(0);
        assert!(decode::<Request>(&trailing).is_err());
    }
}
