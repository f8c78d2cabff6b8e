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

use bincode::{Decode, Encode};
use subtle::ConstantTimeEq;

use crate::ws::{ChatMessage, LinkPreview, Member, VoteCounts};

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

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Request {
    pub id: u64,
    pub body: RequestBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum RequestBody {
    /// Create the room, or return it if it exists (idempotent).
    CreateRoom {
        name: String,
        password_hash: Option<String>,
        /// SHA-256 of the owner key aux-srv handed the creator; `None` = no
        /// owner. Ignored when the room exists already.
        owner_key_hash: Option<[u8; 32]>,
    },
    LookupRoom {
        name: String,
    },
    /// Rooms in key order, strictly after `after`.
    ListRooms {
        after: Option<String>,
        limit: u32,
    },
    /// The load report, with the rooms removed after cursor `removed_after`.
    Load {
        removed_after: u64,
    },
    DeleteRoom {
        name: String,
    },
    Announce {
        text: String,
    },
    /// Post as a named sender that is not a member (the HTTP API).
    PostMessage {
        room: String,
        nick: String,
        text: String,
        password: Option<String>,
        client_id: Option<String>,
    },
    /// With `after`, the oldest `limit` messages after that seq; without it,
    /// the newest `limit` messages. Oldest first either way.
    ReadMessages {
        room: String,
        after: Option<u64>,
        limit: u32,
        password: Option<String>,
    },
    /// Refuse new rooms (true) or accept them again (false).
    Drain {
        draining: bool,
    },
    /// Moving a room, step 1 (source): stop taking writes for `ttl_ms`. The
    /// room unfreezes by itself when that passes without `CompleteMove`.
    FreezeRoom {
        name: String,
        ttl_ms: u64,
    },
    /// Step 2 (source): everything the room is; only while frozen.
    ExportRoom {
        name: String,
    },
    /// Step 3 (target): hold the room as a *pending import*, invisible to
    /// clients and to `ListRooms`, until `CommitImport` or `AbortImport`.
    ImportRoom {
        snapshot: Box<RoomSnapshot>,
        /// The source backend's id and process `instance` (kept to settle
        /// an import aux-srv left unsettled).
        from: String,
        from_instance: u64,
    },
    /// Step 4 (source), the point of no return: if the room is still frozen,
    /// close its members with `closing moved` and keep a tombstone "moved to
    /// `to`"; refused if the freeze ran out (the room may have taken writes).
    CompleteMove {
        name: String,
        epoch: u64,
        to: String,
    },
    /// Step 5 (target): the pending import becomes the live room.
    CommitImport {
        name: String,
        epoch: u64,
    },
    /// Undo step 1 (source): take writes again.
    AbortMove {
        name: String,
    },
    /// Undo step 3 (target): forget the pending import.
    AbortImport {
        name: String,
        epoch: u64,
    },
    /// Where this backend stands on a room: live (frozen?), moved away,
    /// pending import, or unknown.
    MoveStatus {
        name: String,
    },
    /// aux-srv finished the evacuation this backend asked for (its load
    /// report's `evacuate`): what is left cannot move; stop waiting.
    EvacuationDone {
        moved: u32,
        failed: u32,
    },
    /// An owner's act over HTTP, authorised by the room's owner key.
    OwnerAct {
        room: String,
        owner_key: String,
        act: OwnerAct,
    },
    /// The reported messages of every room, most reported first.
    ListReports {
        limit: u32,
    },
    /// Adds (or renews) the fleet-wide IP bans in `set`, lifts those in
    /// `lift`; answers every ban the backend then holds.
    Bans {
        set: Vec<IpBan>,
        lift: Vec<String>,
    },
}

/// What an owner does over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum OwnerAct {
    Topic { text: String },
    Delete { seq: u64 },
}

/// A fleet-wide ban of one client address.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct IpBan {
    /// The address as text (`203.0.113.7`, `2001:db8::1`).
    pub ip: String,
    /// Milliseconds until it ends (relative: the two clocks need not agree).
    pub remaining_ms: u64,
    pub reason: Option<String>,
}

/// A reported message, with how often and when it was reported.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ReportRecord {
    pub room: String,
    pub seq: u64,
    /// Empty when the message was deleted since.
    pub text: String,
    pub from_nick: String,
    pub count: u32,
    /// Milliseconds since the Unix epoch.
    pub first_ms: u64,
    pub last_ms: u64,
    /// The latest reasons given (a few, most recent last).
    pub reasons: Vec<String>,
}

impl RequestBody {
    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestBody::CreateRoom { .. } => "create_room",
            RequestBody::LookupRoom { .. } => "lookup_room",
            RequestBody::ListRooms { .. } => "list_rooms",
            RequestBody::Load { .. } => "load",
            RequestBody::DeleteRoom { .. } => "delete_room",
            RequestBody::Announce { .. } => "announce",
            RequestBody::PostMessage { .. } => "post_message",
            RequestBody::ReadMessages { .. } => "read_messages",
            RequestBody::Drain { .. } => "drain",
            RequestBody::OwnerAct { .. } => "owner_act",
            RequestBody::ListReports { .. } => "list_reports",
            RequestBody::Bans { .. } => "bans",
            RequestBody::FreezeRoom { .. } => "freeze_room",
            RequestBody::ExportRoom { .. } => "export_room",
            RequestBody::ImportRoom { .. } => "import_room",
            RequestBody::CompleteMove { .. } => "complete_move",
            RequestBody::CommitImport { .. } => "commit_import",
            RequestBody::AbortMove { .. } => "abort_move",
            RequestBody::AbortImport { .. } => "abort_import",
            RequestBody::MoveStatus { .. } => "move_status",
            RequestBody::EvacuationDone { .. } => "evacuation_done",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Response {
    pub id: u64,
    pub body: ResponseBody,
}

#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub enum ResponseBody {
    Created {
        room: RoomInfo,
        created: bool,
    },
    Room(Option<RoomInfo>),
    Rooms {
        rooms: Vec<RoomInfo>,
        next_after: Option<String>,
    },
    Load(LoadReport),
    Deleted {
        existed: bool,
    },
    Announced {
        rooms: u32,
    },
    Posted {
        message: MessageRecord,
    },
    Messages {
        messages: Vec<MessageRecord>,
        last_seq: u64,
    },
    Drained {
        draining: bool,
    },
    /// The owner act was done.
    OwnerDone,
    Reports {
        reports: Vec<ReportRecord>,
    },
    Bans {
        bans: Vec<IpBan>,
    },
    /// `FreezeRoom`, `AbortMove`, `CompleteMove`, `CommitImport`,
    /// `ImportRoom` (pending), `AbortImport`: the room as it stands now.
    Moving {
        room: RoomInfo,
    },
    Exported {
        snapshot: Box<RoomSnapshot>,
    },
    /// Where the room stands, and the answering backend's process
    /// `instance` (a restarted source lost what it held).
    MoveStatus {
        state: MoveState,
        instance: u64,
    },
    /// `EvacuationDone` taken note of.
    Ack,
    Error {
        code: ErrorCode,
        message: String,
    },
}

// f64 fields keep LoadReport from being Eq; equality of responses is still
// useful in tests.
impl Eq for ResponseBody {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum ErrorCode {
    NotFound,
    Draining,
    BadName,
    BadRequest,
    PasswordRequired,
    WrongPassword,
    TooLarge,
    Internal,
    /// The owner key is wrong, or the room has no owner.
    NotOwner,
    /// The room is frozen for a move: writes wait until it is over.
    Moving,
    /// A move step that no longer fits the room's state (the freeze ran out,
    /// another epoch, a live room where an import was to go).
    MoveConflict,
}

impl ErrorCode {
    /// The `snake_case` code of the public contract.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "room_not_found",
            ErrorCode::Draining => "backend_draining",
            ErrorCode::BadName => "bad_room_name",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::PasswordRequired => "password_required",
            ErrorCode::WrongPassword => "wrong_password",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Internal => "internal",
            ErrorCode::NotOwner => "not_owner",
            ErrorCode::Moving => "room_moving",
            ErrorCode::MoveConflict => "move_conflict",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RoomInfo {
    /// The name as its creator typed it (NFC).
    pub name: String,
    /// The case-folded key.
    pub key: String,
    pub epoch: u64,
    pub has_password: bool,
    pub members: u32,
    pub last_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct LoadReport {
    pub backend_id: String,
    /// Random per process start: a new value means the backend restarted and
    /// holds none of its old rooms.
    pub instance: u64,
    pub public_url: String,
    pub draining: bool,
    pub connections: u64,
    pub max_connections: u64,
    pub rooms: u64,
    /// Client messages received per second, averaged over the last seconds.
    pub messages_per_sec: f64,
    /// Process CPU use in cores (1.0 = one core busy), recent average.
    pub cpu_cores: f64,
    pub memory_bytes: u64,
    /// Rooms removed (expired or deleted) after the asked cursor.
    pub removed: Vec<RemovedRoom>,
    /// The cursor to ask with next time.
    pub removed_cursor: u64,
    /// False when removals older than the backend remembers were asked for:
    /// the caller should list all rooms again.
    pub removed_complete: bool,
    /// Rooms frozen for a move right now.
    pub frozen_rooms: u32,
    /// The backend is shutting down and asks aux-srv to move its rooms
    /// elsewhere first (`evacuate_on_shutdown`).
    pub evacuate: bool,
    /// Imports not committed nor aborted yet (aux-srv resolves old ones).
    pub pending_imports: Vec<PendingImport>,
}

/// An import waiting for `CommitImport` or `AbortImport`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct PendingImport {
    pub name: String,
    pub epoch: u64,
    /// The source backend's id and its `instance` at the import.
    pub from: String,
    pub from_instance: u64,
    pub age_ms: u64,
}

/// Where one backend stands on a room ([`RequestBody::MoveStatus`]).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum MoveState {
    Live {
        epoch: u64,
        frozen: bool,
    },
    /// Moved away (a tombstone, kept for a while).
    Moved {
        epoch: u64,
        to: String,
    },
    Pending {
        epoch: u64,
        from: String,
    },
    Unknown,
}

/// A member as a room remembers it, by token (`join {reclaim}`).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct MemberRecord {
    pub token: String,
    pub id: u64,
    pub nick: String,
    /// How long ago it left; `None` while it was connected.
    pub gone_ms: Option<u64>,
}

/// Everything a room is, as it moves from one backend to another. Times are
/// ages (milliseconds before the export), since the two processes share no
/// clock.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RoomSnapshot {
    /// As its creator typed it.
    pub name: String,
    pub key: String,
    pub epoch: u64,
    pub password_hash: Option<String>,
    /// The seq the next message gets (the ring may be empty).
    pub next_seq: u64,
    /// The ring buffer, oldest first, with edits, deletions, client ids and
    /// previews.
    pub messages: Vec<MessageRecord>,
    pub next_member_id: u64,
    pub members: Vec<MemberRecord>,
    /// How long the room has had no members (`None`: it has members).
    pub empty_ms: Option<u64>,
    /// How long ago its last message came (`None`: never).
    pub last_message_ms: Option<u64>,
    /// What later features keep per room (owner key hash, topic, settings,
    /// votes, bans…), by name, each in its own encoding: a backend that does
    /// not know a name keeps the bytes and passes them on.
    pub extensions: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RemovedRoom {
    pub cursor: u64,
    pub key: String,
    /// The epoch of the room that was removed: a room of the same name created
    /// again afterwards has another epoch and must not be forgotten.
    pub epoch: u64,
}

/// A message as the control protocol carries it (bincode cannot carry the
/// optional-field JSON shape of [`ChatMessage`] directly).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct MessageRecord {
    pub seq: u64,
    pub ts: u64,
    pub from_id: u64,
    pub from_nick: String,
    pub text: String,
    pub drawing: Option<String>,
    pub reply_to: Option<u64>,
    pub client_id: Option<String>,
    pub edited: bool,
    pub deleted: bool,
    pub preview: Option<Box<LinkPreview>>,
    /// Vote counts (0 and 0 when nobody voted).
    pub up: u32,
    pub down: u32,
}

impl From<&ChatMessage> for MessageRecord {
    fn from(m: &ChatMessage) -> Self {
        MessageRecord {
            seq: m.seq,
            ts: m.ts,
            from_id: m.from.id,
            from_nick: m.from.nick.clone(),
            text: m.text.clone(),
            drawing: m.drawing.clone(),
            reply_to: m.reply_to,
            client_id: m.client_id.clone(),
            edited: m.edited,
            deleted: m.deleted,
            preview: m.preview.clone(),
            up: m.votes.map_or(0, |v| v.up),
            down: m.votes.map_or(0, |v| v.down),
        }
    }
}

impl From<MessageRecord> for ChatMessage {
    fn from(r: MessageRecord) -> Self {
        ChatMessage {
            seq: r.seq,
            ts: r.ts,
            from: Member { id: r.from_id, nick: r.from_nick },
            text: r.text,
            drawing: r.drawing,
            reply_to: r.reply_to,
            client_id: r.client_id,
            edited: r.edited,
            deleted: r.deleted,
            preview: r.preview,
            votes: VoteCounts { up: r.up, down: r.down }.non_zero(),
        }
    }
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
