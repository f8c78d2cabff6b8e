//! Evacuating a backend: drain it, then move every room it holds, a few at
//! a time; the answer comes when all are done.

use super::*;

/// What an evacuation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Evacuated {
    pub moved: u32,
    pub failed: u32,
    pub took_ms: u64,
}

/// Every room name a backend holds, page by page (from the backend itself:
/// it may hold rooms the map does not know yet).
async fn room_names(app: &App, backend: &Backend) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut after = None;
    loop {
        let list =
            RequestBody::ListRooms { after: after.clone(), limit: common::control::MAX_LIST_PAGE };
        match app.call(backend, list).await {
            Ok(ResponseBody::Rooms { rooms, next_after }) => {
                names.extend(rooms.into_iter().map(|r| r.name));
                match next_after {
                    Some(next) => after = Some(next),
                    None => return Some(names),
                }
            }
            _ => return None,
        }
    }
}

/// Drains `backend` and moves every room off it, `move_concurrency` at a
/// time. `None` when that backend is unknown or already being evacuated.
/// `by_admin`: the drain is the operator's and outlives a restart; a
/// backend shutting down drains itself, and its next process takes rooms.
pub async fn evacuate(app: &App, id: &str, by_admin: bool) -> Option<Evacuated> {
    let backend = app.fleet.get(id)?;
    app.moves.evacuating.insert(id.to_owned(), ()).is_none().then_some(())?;
    let started = Instant::now();
    if by_admin {
        backend.set_admin_drained(true);
        let _ = app.call(&backend, RequestBody::Drain { draining: true }).await;
    }
    let mut result = Evacuated::default();
    match room_names(app, &backend).await {
        Some(names) => {
            let outcomes: Vec<bool> = futures_util::stream::iter(names)
                .map(|name| async move {
                    let Ok(name) = RoomName::parse(&name) else { return false };
                    match move_room(app, &name, None).await {
                        Ok(_) => true,
                        // Gone meanwhile (expired, deleted): nothing to move.
                        Err(MoveError::NotFound) => true,
                        Err(_) => false,
                    }
                })
                .buffer_unordered(app.config.move_concurrency)
                .collect()
                .await;
            result.moved = outcomes.iter().filter(|ok| **ok).count() as u32;
            result.failed = outcomes.len() as u32 - result.moved;
        }
        None => result.failed = 1,
    }
    result.took_ms = started.elapsed().as_millis() as u64;
    let done = RequestBody::EvacuationDone { moved: result.moved, failed: result.failed };
    let _ = app.call(&backend, done).await;
    app.moves.evacuating.remove(id);
    tracing::info!(
        backend = id,
        moved = result.moved,
        failed = result.failed,
        took_ms = result.took_ms,
        "backend evacuated"
    );
    Some(result)
}
