//! This backend's side of moving rooms (aux-srv orchestrates; see
//! `aux-srv/src/moves.rs` and ARCHITECTURE.md "Moving a room").
//!
//! As a **source**: `FreezeRoom` (writes and joins answered `room_moving`
//! until a deadline), `ExportRoom` (the snapshot, only while frozen),
//! `CompleteMove` (if still frozen: members get `closing moved`, the room
//! goes, a tombstone "moved to X" stays) or `AbortMove` (unfreeze).
//!
//! As a **target**: `ImportRoom` keeps the room *pending* — no client can
//! join it and `ListRooms` does not show it — until `CommitImport` makes it
//! live or `AbortImport` drops it. Pending imports are reported in every
//! load report, so that an aux-srv that died between the source's
//! `CompleteMove` and the target's `CommitImport` can settle them after its
//! restart by asking the source (`MoveStatus`). A member told `closing
//! moved` may reach the target before aux-srv's `CommitImport` does: its
//! websocket waits for the import to be settled ([`Moves::settled`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::control::{ErrorCode, MoveState, PendingImport, ResponseBody, RoomSnapshot};
use common::names::RoomName;

use crate::Shared;
use crate::registry::RoomRegistry;
use crate::room::Room;

/// How long a tombstone says where a room went; also how long a pending
/// import waits to be settled before it is dropped.
pub const KEEP_FOR: Duration = Duration::from_secs(600);
/// Longest freeze aux-srv may ask for.
pub const MAX_FREEZE: Duration = Duration::from_secs(60);
/// Most pending imports held at once (each may be a whole room).
pub const MAX_PENDING: usize = 10_000;
/// Longest a websocket for a room whose import is pending waits for it to
/// be committed (normally one control round trip).
pub const ARRIVAL_WAIT: Duration = Duration::from_secs(2);

struct Pending {
    room: Arc<Room>,
    from: String,
    from_instance: u64,
    at: Instant,
}

struct Tombstone {
    epoch: u64,
    to: String,
    at: Instant,
}

#[derive(Default)]
struct Book {
    pending: HashMap<String, Pending>,
    moved: HashMap<String, Tombstone>,
    /// Rooms frozen by a `FreezeRoom` (some may have thawed by their deadline).
    frozen: HashMap<String, Arc<Room>>,
}

/// Pending imports, tombstones and frozen rooms.
#[derive(Default)]
pub struct Moves {
    book: Mutex<Book>,
    /// Woken whenever a pending import is committed or dropped.
    settled: tokio::sync::Notify,
}

fn fail(code: ErrorCode, message: impl Into<String>) -> ResponseBody {
    ResponseBody::Error { code, message: message.into() }
}

fn parse(name: &str) -> Result<RoomName, String> {
    RoomName::parse(name).map_err(|e| e.to_string())
}

impl Moves {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rooms frozen right now (forgetting those that thawed).
    pub fn frozen_count(&self) -> usize {
        let mut book = self.book();
        book.frozen.retain(|_, room| room.is_frozen());
        book.frozen.len()
    }

    /// Imports waiting to be committed or aborted.
    pub fn pending_imports(&self) -> Vec<PendingImport> {
        let now = Instant::now();
        self.book()
            .pending
            .values()
            .map(|p| PendingImport {
                name: p.room.info().name,
                epoch: p.room.epoch(),
                from: p.from.clone(),
                from_instance: p.from_instance,
                age_ms: now.duration_since(p.at).as_millis() as u64,
            })
            .collect()
    }

    /// True while an import of `key` waits to be committed or dropped.
    pub fn is_pending(&self, key: &str) -> bool {
        self.book().pending.contains_key(key)
    }

    /// The room of `key`, live here — waiting, if its import is pending,
    /// until that is settled (at most [`ARRIVAL_WAIT`]). `None` when there
    /// is none (or the import was dropped).
    pub async fn settled(&self, registry: &RoomRegistry, key: &str) -> Option<Arc<Room>> {
        let deadline = tokio::time::Instant::now() + ARRIVAL_WAIT;
        loop {
            // Listening before looking, so that a commit in between wakes us.
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(room) = registry.get(key) {
                return Some(room);
            }
            if !self.is_pending(key) {
                return None;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return registry.get(key);
            }
        }
    }

    /// A room of this name was created here: an old tombstone no longer
    /// says where it is.
    pub fn created(&self, key: &str) {
        self.book().moved.remove(key);
    }

    /// Drops tombstones and unsettled imports older than [`KEEP_FOR`].
    pub fn sweep(&self, now: Instant) {
        let mut book = self.book();
        book.moved.retain(|_, t| now.duration_since(t.at) < KEEP_FOR);
        book.pending.retain(|key, p| {
            let keep = now.duration_since(p.at) < KEEP_FOR;
            if !keep {
                tracing::warn!(room = key, from = p.from, "unsettled import dropped");
            }
            keep
        });
        drop(book);
        self.settled.notify_waiters();
    }
}

fn update_gauge(shared: &Shared) {
    shared.metrics.rooms_frozen.set(shared.moves.frozen_count() as i64);
}

/// `FreezeRoom`.
pub fn freeze(shared: &Shared, name: &str, ttl_ms: u64) -> ResponseBody {
    let name = match parse(name) {
        Ok(n) => n,
        Err(e) => return fail(ErrorCode::BadName, e),
    };
    let Some(room) = shared.registry.get(name.key()) else {
        return fail(ErrorCode::NotFound, "no such room");
    };
    let ttl = Duration::from_millis(ttl_ms).min(MAX_FREEZE);
    if !room.freeze(ttl) {
        return fail(ErrorCode::NotFound, "no such room");
    }
    shared.moves.book().frozen.insert(name.key().to_owned(), room.clone());
    update_gauge(shared);
    tracing::info!(room = name.key(), ttl_ms = ttl.as_millis() as u64, "room frozen for a move");
    ResponseBody::Moving { room: room.info() }
}

/// `ExportRoom`.
pub fn export(shared: &Shared, name: &str) -> ResponseBody {
    let name = match parse(name) {
        Ok(n) => n,
        Err(e) => return fail(ErrorCode::BadName, e),
    };
    let Some(room) = shared.registry.get(name.key()) else {
        return fail(ErrorCode::NotFound, "no such room");
    };
    match room.snapshot() {
        Some(snapshot) => ResponseBody::Exported { snapshot: Box::new(snapshot) },
        None => fail(ErrorCode::MoveConflict, "the room is not frozen"),
    }
}

/// `ImportRoom`.
pub fn import(
    shared: &Shared,
    snapshot: RoomSnapshot,
    from: String,
    from_instance: u64,
) -> ResponseBody {
    let name = match parse(&snapshot.name) {
        Ok(n) => n,
        Err(e) => return fail(ErrorCode::BadName, e),
    };
    if name.key() != snapshot.key {
        return fail(ErrorCode::BadRequest, "the snapshot's key does not match its name");
    }
    if shared.shutdown.is_cancelled() || shared.draining.load(std::sync::atomic::Ordering::Acquire)
    {
        return fail(ErrorCode::Draining, "backend is draining");
    }
    if let Some(live) = shared.registry.get(name.key()) {
        // A retry of a committed import is answered as done.
        if live.epoch() == snapshot.epoch {
            return ResponseBody::Moving { room: live.info() };
        }
        return fail(ErrorCode::MoveConflict, "a room of this name lives here");
    }
    if snapshot.messages.len() > shared.config.max_messages
        || snapshot.members.len() > crate::room::max_records(shared.config.max_members)
    {
        return fail(ErrorCode::TooLarge, "the snapshot holds more than this backend keeps");
    }
    let mut book = shared.moves.book();
    if book.pending.len() >= MAX_PENDING && !book.pending.contains_key(name.key()) {
        return fail(ErrorCode::Internal, "too many pending imports");
    }
    let settings = shared.registry.settings();
    let room = Arc::new(Room::from_snapshot(snapshot, settings, shared.metrics.clone()));
    let info = room.info();
    book.pending
        .insert(name.key().to_owned(), Pending { room, from, from_instance, at: Instant::now() });
    ResponseBody::Moving { room: info }
}

/// `CompleteMove` (and `CompleteMoveTo`, whose `ws_url` the members'
/// `closing moved` names).
pub fn complete(
    shared: &Shared,
    name: &str,
    epoch: u64,
    to: String,
    ws_url: Option<String>,
) -> ResponseBody {
    let name = match parse(name) {
        Ok(n) => n,
        Err(e) => return fail(ErrorCode::BadName, e),
    };
    let Some(room) = shared.registry.get(name.key()) else {
        // A retry after a lost answer: the tombstone says it is done.
        let book = shared.moves.book();
        return match book.moved.get(name.key()) {
            Some(t) if t.epoch == epoch && t.to == to => ResponseBody::Moving {
                room: common::control::RoomInfo {
                    name: name.display().to_owned(),
                    key: name.key().to_owned(),
                    epoch,
                    has_password: false,
                    members: 0,
                    last_seq: 0,
                },
            },
            _ => fail(ErrorCode::NotFound, "no such room"),
        };
    };
    let info = room.info();
    if !room.complete_move(epoch, ws_url) {
        return fail(ErrorCode::MoveConflict, "the room is not frozen (the freeze ran out?)");
    }
    shared.registry.remove_moved(&room);
    {
        let mut book = shared.moves.book();
        book.frozen.remove(name.key());
        book.moved
            .insert(name.key().to_owned(), Tombstone { epoch, to: to.clone(), at: Instant::now() });
    }
    update_gauge(shared);
    tracing::info!(room = name.key(), to, members = info.members, "room moved away");
    ResponseBody::Moving { room: info }
}

/// `CommitImport`.
pub fn commit(shared: &Shared, name: &str, epoch: u64) -> ResponseBody {
    let name = match parse(name) {
        Ok(n) => n,
        Err(e) => return fail(ErrorCode::BadName, e),
    };
    let mut book = shared.moves.book();
    let pending = match book.pending.remove(name.key()) {
        Some(p) if p.room.epoch() == epoch => p,
        Some(p) => {
            book.pending.insert(name.key().to_owned(), p);
            return fail(ErrorCode::MoveConflict, "the pending import has another epoch");
        }
        None => {
            drop(book);
            // A retry after a lost answer: already live.
            return match shared.registry.get(name.key()) {
                Some(live) if live.epoch() == epoch => ResponseBody::Moving { room: live.info() },
                _ => fail(ErrorCode::NotFound, "no pending import of this room"),
            };
        }
    };
    book.moved.remove(name.key());
    drop(book);
    let inserted = shared.registry.insert_moved_in(pending.room);
    shared.moves.settled.notify_waiters();
    match inserted {
        Ok(room) => {
            tracing::info!(room = name.key(), from = pending.from, "room moved in");
            ResponseBody::Moving { room: room.info() }
        }
        Err(_) => fail(ErrorCode::MoveConflict, "a room of this name lives here"),
    }
}

/// `AbortMove`.
pub fn abort(shared: &Shared, name: &str) -> ResponseBody {
    let name = match parse(name) {
        Ok(n) => n,
        Err(e) => return fail(ErrorCode::BadName, e),
    };
    shared.moves.book().frozen.remove(name.key());
    update_gauge(shared);
    match shared.registry.get(name.key()) {
        Some(room) => {
            room.unfreeze();
            tracing::info!(room = name.key(), "move aborted; the room takes writes again");
            ResponseBody::Moving { room: room.info() }
        }
        None => fail(ErrorCode::NotFound, "no such room"),
    }
}

/// `AbortImport`.
pub fn abort_import(shared: &Shared, name: &str, epoch: u64) -> ResponseBody {
    let name = match parse(name) {
        Ok(n) => n,
        Err(e) => return fail(ErrorCode::BadName, e),
    };
    let mut book = shared.moves.book();
    match book.pending.get(name.key()) {
        Some(p) if p.room.epoch() == epoch => {
            let p = book.pending.remove(name.key()).expect("just seen");
            drop(book);
            shared.moves.settled.notify_waiters();
            ResponseBody::Moving { room: p.room.info() }
        }
        _ => fail(ErrorCode::NotFound, "no pending import of this room"),
    }
}

/// `MoveStatus`.
pub fn status(shared: &Shared, name: &str) -> ResponseBody {
    let name = match parse(name) {
        Ok(n) => n,
        Err(e) => return fail(ErrorCode::BadName, e),
    };
    let key = name.key();
    let state = if let Some(room) = shared.registry.get(key) {
        MoveState::Live { epoch: room.epoch(), frozen: room.is_frozen() }
    } else {
        let book = shared.moves.book();
        if let Some(t) = book.moved.get(key) {
            MoveState::Moved { epoch: t.epoch, to: t.to.clone() }
        } else if let Some(p) = book.pending.get(key) {
            MoveState::Pending { epoch: p.room.epoch(), from: p.from.clone() }
        } else {
            MoveState::Unknown
        }
    };
    ResponseBody::MoveStatus { state, instance: shared.instance }
}
