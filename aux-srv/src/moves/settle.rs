//! Settling what a mover left unfinished: pending imports older than the
//! freeze are committed or dropped according to where the source says the
//! room is; a creation of the same name settles first.

use super::*;

/// After each poll of `backend`: starts the evacuation it asks for (a
/// backend shutting down), and settles its old pending imports.
pub fn after_poll(app: &Arc<App>, backend: &Arc<Backend>) {
    let (wants_evacuation, instance, pending) = {
        let s = backend.status();
        match s.report.as_ref() {
            Some(r) => (r.evacuate, r.instance, r.pending_imports.clone()),
            None => return,
        }
    };
    let served = app.moves.asked_by.get(&backend.id).is_some_and(|i| *i == instance);
    if wants_evacuation && !served && !app.moves.is_evacuating(&backend.id) {
        app.moves.asked_by.insert(backend.id.clone(), instance);
        let app2 = app.clone();
        let id = backend.id.clone();
        app.tasks.spawn(async move {
            evacuate(&app2, &id, false).await;
        });
    }
    let old = Duration::from_millis(app.config.move_freeze_ms.saturating_mul(2));
    for import in pending {
        if Duration::from_millis(import.age_ms) < old {
            continue;
        }
        let (app2, target) = (app.clone(), backend.clone());
        app.tasks.spawn(async move { settle_pending(&app2, &target, import).await });
    }
}

/// Settles an import that no mover finished (aux-srv died between the
/// source's `CompleteMove` and the target's `CommitImport`, the commit's
/// answer was lost, or the source died mid-move): under the name's lock
/// (skipped when busy: the next poll tries again).
pub async fn settle_pending(app: &App, target: &Backend, import: PendingImport) {
    let Ok(name) = RoomName::parse(&import.name) else { return };
    let Ok(_lock) =
        tokio::time::timeout(Duration::from_millis(10), app.rooms.lock(name.key())).await
    else {
        return; // a move or creation of this name is running: next poll
    };
    if app.moves.in_progress.contains_key(name.key()) {
        return;
    }
    settle_locked(app, target, &name, import).await;
}

/// Before a creation of `name` (its lock held): settles a pending import of
/// that name somewhere. True when one was committed.
pub async fn settle_before_creating(app: &App, name: &RoomName) -> bool {
    let found = app.fleet.all().into_iter().find_map(|b| {
        let import = b
            .status()
            .report
            .as_ref()?
            .pending_imports
            .iter()
            .find(|p| RoomName::parse(&p.name).is_ok_and(|n| n.key() == name.key()))?
            .clone();
        Some((b, import))
    });
    match found {
        Some((target, import)) => settle_locked(app, &target, name, import).await == Some(true),
        None => false,
    }
}

/// The decision, the name's lock held: commit the import if the source says
/// the room moved there, or if the source restarted (lost the room) and
/// nobody else holds the name; drop it if the source still holds the room
/// live (or the name lives elsewhere now); otherwise wait. `Some(true)` when
/// committed.
async fn settle_locked(
    app: &App,
    target: &Backend,
    name: &RoomName,
    import: PendingImport,
) -> Option<bool> {
    let epoch = import.epoch;
    let source = app.fleet.get(&import.from)?;
    let status = RequestBody::MoveStatus { name: import.name.clone() };
    let verdict = match app.call(&source, status).await {
        Ok(ResponseBody::MoveStatus { state, instance }) => match state {
            MoveState::Moved { epoch: e, to } => Some(e == epoch && to == target.id),
            MoveState::Live { frozen: true, .. } => None,
            MoveState::Live { .. } => Some(false),
            // The source lost its rooms: the import is the only copy.
            MoveState::Unknown | MoveState::Pending { .. } if instance != import.from_instance => {
                Some(true)
            }
            MoveState::Unknown | MoveState::Pending { .. } => None,
        },
        _ => None,
    };
    // Never beside a live room of that name (created anew while aux-srv
    // did not know about the import): then the import goes.
    let verdict = match verdict {
        Some(true) => match app.find(name).await {
            Lookup::NotFound => Some(true),
            Lookup::Found(found) if found.backend.id == import.from => Some(true),
            Lookup::Found(_) => Some(false),
            Lookup::Unavailable => None,
        },
        other => other,
    };
    match verdict {
        Some(true) => {
            let body = RequestBody::CommitImport { name: import.name.clone(), epoch };
            if let Ok(ResponseBody::Moving { room }) = app.call(target, body).await {
                app.rooms.switch(&target.id, &room);
                tracing::info!(room = name.key(), backend = target.id, "pending import committed");
                return Some(true);
            }
            None
        }
        Some(false) => {
            abort_target(app, target, &import.name, epoch).await;
            tracing::info!(room = name.key(), backend = target.id, "pending import dropped");
            Some(false)
        }
        None => None,
    }
}
