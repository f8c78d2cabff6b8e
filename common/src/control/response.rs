//! What a backend answers: one [`Response`] per request, with the same `id`.

use bincode::{Decode, Encode};

use super::{IpBan, MessageRecord, RoomSnapshot};

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

/// Where one backend stands on a room ([`RequestBody::MoveStatus`](super::RequestBody::MoveStatus)).
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

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RemovedRoom {
    pub cursor: u64,
    pub key: String,
    /// The epoch of the room that was removed: a room of the same name created
    /// again afterwards has another epoch and must not be forgotten.
    pub epoch: u64,
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
