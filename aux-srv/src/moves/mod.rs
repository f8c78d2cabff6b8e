//! Moving rooms between backends while people talk (ARCHITECTURE.md,
//! "Moving a room"). aux-srv orchestrates over the control protocol, under
//! the room name's lock so that a move never races a creation or deletion:
//!
//! 1. source `FreezeRoom` (writes and joins answered `room_moving` until
//!    `move_freeze_ms`; the room thaws by itself if aux-srv vanishes),
//! 2. source `ExportRoom` → the snapshot,
//! 3. target `ImportRoom` → a *pending* import nobody can join,
//! 4. source `CompleteMove` — the point of no return: only if still frozen,
//!    members get `closing moved` (1012) and a tombstone stays,
//! 5. target `CommitImport` → live; the map switches to the target.
//!
//! A failure before 4 aborts both sides (the source takes writes again); a
//! failure after 4 leaves the pending import for [`settle_pending`], which
//! every poll of a backend runs on imports older than the freeze: it asks
//! the source where the room is and commits or drops the import. So at no
//! moment do two backends take messages for one room, and once the source
//! stopped (step 4) the snapshot that holds every message it sent lives on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::control::{ErrorCode, MoveState, PendingImport, RequestBody, ResponseBody, RoomInfo};
use common::names::RoomName;
use dashmap::DashMap;
use futures_util::StreamExt;
use prometheus::{Histogram, IntCounterVec, Registry};
use serde::Serialize;

use crate::app::App;
use crate::directory::Lookup;
use crate::fleet::{Backend, Health};
use http_listener::metrics::Registrar;

mod evacuate;
mod settle;

pub use self::evacuate::{Evacuated, evacuate};
pub use self::settle::{after_poll, settle_before_creating, settle_pending};

/// A move in progress, as `GET /admin/backends` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InProgress {
    pub room: String,
    pub from: String,
    pub to: String,
    #[serde(skip)]
    pub started: Instant,
}

/// Moves in progress and their metrics.
pub struct Moves {
    in_progress: DashMap<String, InProgress>,
    /// Backends being evacuated (one evacuation per backend at a time).
    evacuating: DashMap<String, ()>,
    /// The process (`instance`) of each backend whose own request for an
    /// evacuation (SIGTERM) was served: once per process.
    asked_by: DashMap<String, u64>,
    outcomes: IntCounterVec,
    seconds: Histogram,
}

/// Every outcome label of `instantchat_aux_room_moves_total`.
pub const OUTCOMES: &[&str] = &["moved", "failed", "unsettled"];

impl Moves {
    pub fn new(registry: &Registry) -> Self {
        let r = Registrar(registry);
        let outcomes = r.counters_of(
            "instantchat_aux_room_moves_total",
            "Room moves by outcome: moved; failed (nothing changed, the source took writes \
             again); unsettled (the source stopped but the target did not confirm yet).",
            "outcome",
            OUTCOMES.iter().copied(),
        );
        let seconds = r.histogram(
            "instantchat_aux_room_move_duration_seconds",
            "Time from freezing a room to its commit on the target.",
            &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        );
        Moves {
            in_progress: DashMap::new(),
            evacuating: DashMap::new(),
            asked_by: DashMap::new(),
            outcomes,
            seconds,
        }
    }

    /// The moves in progress, oldest first.
    pub fn in_progress(&self) -> Vec<(InProgress, u64)> {
        let mut list: Vec<_> = self
            .in_progress
            .iter()
            .map(|m| (m.clone(), m.started.elapsed().as_millis() as u64))
            .collect();
        list.sort_by_key(|(_, ms)| std::cmp::Reverse(*ms));
        list
    }

    pub fn is_evacuating(&self, backend: &str) -> bool {
        self.evacuating.contains_key(backend)
    }
}

/// A finished move.
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    pub room: String,
    pub from: String,
    pub to: String,
    pub took_ms: u64,
}

/// Why a move did not happen (or is not settled).
#[derive(Debug, Clone, thiserror::Error)]
pub enum MoveError {
    #[error("no room of that name")]
    NotFound,
    #[error("no backend with id `{0}`")]
    NoSuchBackend(String),
    #[error("the room is on `{0}` already")]
    SameBackend(String),
    #[error("no other backend can take the room now")]
    NoTarget,
    #[error("the backend holding the room is unavailable")]
    Unavailable,
    /// Nothing changed: the room is where it was and takes writes again.
    #[error("the move failed and was undone: {0}")]
    Failed(String),
    /// The source stopped, the target did not confirm: settled later.
    #[error("the move is not settled yet: {0}")]
    Unsettled(String),
}

impl MoveError {
    /// The stable code of the admin API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            MoveError::NotFound => "room_not_found",
            MoveError::NoSuchBackend(_) => "backend_not_found",
            MoveError::SameBackend(_) => "same_backend",
            MoveError::NoTarget => "no_backend",
            MoveError::Unavailable => "backend_unavailable",
            MoveError::Failed(_) => "move_failed",
            MoveError::Unsettled(_) => "move_unsettled",
        }
    }

    /// The HTTP status of the admin API's answer.
    pub fn status(&self) -> u16 {
        match self {
            MoveError::NotFound | MoveError::NoSuchBackend(_) => 404,
            MoveError::SameBackend(_) => 409,
            MoveError::NoTarget | MoveError::Unavailable => 503,
            MoveError::Failed(_) | MoveError::Unsettled(_) => 502,
        }
    }
}

/// Removes the in-progress entry however the move ends.
struct Progress<'a> {
    moves: &'a Moves,
    key: String,
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.moves.in_progress.remove(&self.key);
    }
}

fn pick_target(app: &App, source: &Backend, to: Option<&str>) -> Result<Arc<Backend>, MoveError> {
    if let Some(id) = to {
        let target = app.fleet.get(id).ok_or_else(|| MoveError::NoSuchBackend(id.to_owned()))?;
        if target.id == source.id {
            return Err(MoveError::SameBackend(id.to_owned()));
        }
        if target.health() != Health::Up {
            return Err(MoveError::NoTarget);
        }
        return Ok(target);
    }
    app.fleet
        .placement_order(&app.config.placement)
        .into_iter()
        .map(|(b, _)| b)
        .find(|b| b.id != source.id && !app.moves.is_evacuating(&b.id))
        .ok_or(MoveError::NoTarget)
}

/// Moves one room to `to` (or the least-loaded other backend).
pub async fn move_room(app: &App, name: &RoomName, to: Option<&str>) -> Result<Moved, MoveError> {
    let _lock = app.rooms.lock(name.key()).await;
    let found = match app.find(name).await {
        Lookup::Found(found) => found,
        Lookup::NotFound => return Err(MoveError::NotFound),
        Lookup::Unavailable => return Err(MoveError::Unavailable),
    };
    let source = found.backend;
    let target = pick_target(app, &source, to)?;
    app.moves.in_progress.insert(
        name.key().to_owned(),
        InProgress {
            room: found.room.name.clone(),
            from: source.id.clone(),
            to: target.id.clone(),
            started: Instant::now(),
        },
    );
    let _progress = Progress { moves: &app.moves, key: name.key().to_owned() };
    let started = Instant::now();
    let result = steps(app, &found.room.name, &source, &target).await;
    let outcome = match &result {
        Ok(_) => "moved",
        Err(MoveError::Unsettled(_)) => "unsettled",
        Err(_) => "failed",
    };
    app.moves.outcomes.with_label_values(&[outcome]).inc();
    let took = started.elapsed();
    match &result {
        Ok(_) => {
            app.moves.seconds.observe(took.as_secs_f64());
            tracing::info!(
                room = name.key(),
                from = source.id,
                to = target.id,
                took_ms = took.as_millis() as u64,
                "room moved"
            );
        }
        Err(e) => tracing::warn!(
            room = name.key(),
            from = source.id,
            to = target.id,
            error = %e,
            "room move did not complete"
        ),
    }
    result.map(|room| Moved {
        room: room.name,
        from: source.id.clone(),
        to: target.id.clone(),
        took_ms: took.as_millis() as u64,
    })
}

/// Best effort: the source takes writes again (its freeze would run out anyway).
async fn abort_source(app: &App, source: &Backend, name: &str) {
    let _ = app.call(source, RequestBody::AbortMove { name: name.to_owned() }).await;
}

/// Best effort: the target drops the pending import (it would be settled anyway).
async fn abort_target(app: &App, target: &Backend, name: &str, epoch: u64) {
    let _ = app.call(target, RequestBody::AbortImport { name: name.to_owned(), epoch }).await;
}

fn refusal(answer: &Result<ResponseBody, control_client::ControlError>) -> String {
    match answer {
        Ok(ResponseBody::Error { code, message }) => format!("{}: {message}", code.as_str()),
        Ok(other) => format!("unexpected answer {other:?}"),
        Err(e) => e.to_string(),
    }
}

async fn steps(
    app: &App,
    name: &str,
    source: &Backend,
    target: &Backend,
) -> Result<RoomInfo, MoveError> {
    let freeze =
        RequestBody::FreezeRoom { name: name.to_owned(), ttl_ms: app.config.move_freeze_ms };
    let frozen = match app.call(source, freeze).await {
        Ok(ResponseBody::Moving { room }) => room,
        Ok(ResponseBody::Error { code: ErrorCode::NotFound, .. }) => {
            return Err(MoveError::NotFound);
        }
        answer => {
            abort_source(app, source, name).await;
            return Err(match answer {
                Err(_) => MoveError::Unavailable,
                answer => MoveError::Failed(format!("freeze: {}", refusal(&answer))),
            });
        }
    };
    let epoch = frozen.epoch;
    let snapshot = match app.call(source, RequestBody::ExportRoom { name: name.to_owned() }).await {
        Ok(ResponseBody::Exported { snapshot }) => snapshot,
        answer => {
            abort_source(app, source, name).await;
            return Err(MoveError::Failed(format!("export: {}", refusal(&answer))));
        }
    };
    let from_instance = source.status().instance.unwrap_or(0);
    let import = RequestBody::ImportRoom { snapshot, from: source.id.clone(), from_instance };
    match app.call(target, import).await {
        Ok(ResponseBody::Moving { .. }) => {}
        answer => {
            if answer.as_ref().is_err_and(|e| e.maybe_sent()) {
                abort_target(app, target, name, epoch).await;
            }
            abort_source(app, source, name).await;
            return Err(MoveError::Failed(format!(
                "import on {}: {}",
                target.id,
                refusal(&answer)
            )));
        }
    }
    // The members are told where the room went (under the name as created,
    // from the freeze's answer: what aux-srv's own answer would say).
    let (room, to) = (name.to_owned(), target.id.clone());
    let complete = match target.room_ws_url(&frozen.name) {
        Some(ws_url) => RequestBody::CompleteMoveTo { name: room, epoch, to, ws_url },
        None => RequestBody::CompleteMove { name: room, epoch, to },
    };
    let decided = match app.call(source, complete).await {
        Ok(ResponseBody::Moving { .. }) => true,
        Ok(_) => false,
        // The answer was lost: ask where the room stands.
        Err(_) => match app.call(source, RequestBody::MoveStatus { name: name.to_owned() }).await {
            Ok(ResponseBody::MoveStatus { state: MoveState::Moved { epoch: e, to }, .. }) => {
                e == epoch && to == target.id
            }
            Ok(ResponseBody::MoveStatus { state: MoveState::Live { .. }, .. }) => false,
            _ => {
                return Err(MoveError::Unsettled(format!(
                    "{} did not confirm; the import on {} waits to be settled",
                    source.id, target.id
                )));
            }
        },
    };
    if !decided {
        abort_target(app, target, name, epoch).await;
        abort_source(app, source, name).await;
        return Err(MoveError::Failed(format!("{} did not stop in time", source.id)));
    }
    // Decided: the source is a tombstone; the room must come alive on the target.
    let key = frozen.key.clone();
    app.rooms.switch(&target.id, &frozen);
    for attempt in 0..3u32 {
        let commit = RequestBody::CommitImport { name: name.to_owned(), epoch };
        if let Ok(ResponseBody::Moving { room }) = app.call(target, commit).await {
            app.rooms.switch(&target.id, &room);
            return Ok(room);
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
    }
    tracing::warn!(room = key, target = target.id, "commit unconfirmed; settled by a later poll");
    Err(MoveError::Unsettled(format!("{} did not confirm the commit", target.id)))
}
