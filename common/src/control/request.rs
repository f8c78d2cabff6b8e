//! What aux-srv asks a backend: one [`Request`] per frame.

use bincode::{Decode, Encode};

use super::RoomSnapshot;

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
    /// Step 4 as `CompleteMove`, and each member's `closing moved` names
    /// `ws_url`, the room's websocket URL on the target, so that clients
    /// go straight there instead of asking aux-srv first. A variant of its
    /// own, added last, so that a backend still decodes every request of the
    /// aux-srv of the release before (upgrade backends before aux-srv).
    CompleteMoveTo {
        name: String,
        epoch: u64,
        to: String,
        ws_url: String,
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
            RequestBody::CompleteMove { .. } | RequestBody::CompleteMoveTo { .. } => {
                "complete_move"
            }
            RequestBody::CommitImport { .. } => "commit_import",
            RequestBody::AbortMove { .. } => "abort_move",
            RequestBody::AbortImport { .. } => "abort_import",
            RequestBody::MoveStatus { .. } => "move_status",
            RequestBody::EvacuationDone { .. } => "evacuation_done",
        }
    }
}
