//! One task per backend: asks for its load report every `poll_interval_ms`
//! (with backoff while it is unreachable), forgets the rooms it removed,
//! notices restarts, and sweeps its room list into the map whenever the map
//! cannot be sure to hold all of it (first contact, restart, lost removals).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::control::{LoadReport, RequestBody, ResponseBody};
use common::names::RoomName;

use crate::app::App;
use crate::fleet::{Backend, Health};

/// Rooms asked for per `ListRooms` page (well under the frame limit).
const SWEEP_PAGE: u32 = common::control::MAX_LIST_PAGE;

pub async fn run(app: Arc<App>, backend: Arc<Backend>, startup: bool) {
    let interval = Duration::from_millis(app.config.poll_interval_ms);
    let retry_max = Duration::from_millis(app.config.backend_retry_max_ms);
    // Pokes (a request that failed, or succeeded against a backend thought
    // down) poll early, but not more often than this.
    let min_gap = interval.min(Duration::from_millis(50));
    let mut settled = !startup;
    loop {
        let ok = tokio::select! {
            ok = poll_once(&app, &backend) => ok,
            _ = backend.cancel.cancelled() => false,
        };
        if ok {
            crate::moves::after_poll(&app, &backend);
        }
        if !settled {
            settled = true;
            app.startup_backend_settled();
        }
        let polled = tokio::time::Instant::now();
        let wait = if ok {
            interval
        } else {
            let failures = backend.status().consecutive_failures.clamp(1, 16);
            interval.saturating_mul(1 << (failures - 1)).min(retry_max)
        };
        tokio::select! {
            _ = backend.cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = backend.poke.notified() => {
                tokio::select! {
                    _ = backend.cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(polled + min_gap) => {}
                }
            }
        }
    }
}

/// One poll; false when the backend could not be reached.
pub async fn poll_once(app: &App, backend: &Backend) -> bool {
    let _sync = backend.sync.lock().await;
    let cursor = backend.status().removed_cursor;
    let ok = match app.call(backend, RequestBody::Load { removed_after: cursor }).await {
        Ok(ResponseBody::Load(report)) => apply_report(app, backend, report).await,
        Ok(other) => {
            mark_down(app, backend, &format!("unexpected answer to load: {other:?}"));
            false
        }
        Err(e) => {
            mark_down(app, backend, &e.to_string());
            false
        }
    };
    publish(app, backend);
    ok
}

async fn apply_report(app: &App, backend: &Backend, mut report: LoadReport) -> bool {
    let removed = std::mem::take(&mut report.removed);
    let complete = report.removed_complete;
    let (was, first, restarted, need_sweep, pending_drain) = {
        let mut s = backend.status();
        let first = s.instance.is_none();
        let restarted = s.instance.is_some_and(|i| i != report.instance);
        if first || restarted {
            s.instance = Some(report.instance);
            s.swept = false;
            s.uncertain.clear();
            if restarted && backend.admin_drained() && !report.draining {
                s.pending_drain = Some(true);
            }
        }
        let was = s.health;
        s.health = Health::Up;
        s.consecutive_failures = 0;
        s.down_since = None;
        s.last_error = None;
        s.removed_cursor = report.removed_cursor;
        s.placed_since_report = 0;
        s.reported_at = Some(Instant::now());
        s.report = Some(report);
        (was, first, restarted, !s.swept || !complete, s.pending_drain)
    };
    if was == Health::Down {
        tracing::info!(backend = backend.id, "backend reachable again");
    }
    // A request that asked about a room before this point and records the
    // answer after it sees the bump and checks again (directory.rs).
    if restarted || (!first && !removed.is_empty()) {
        backend.begin_forgetting();
    }
    if restarted {
        let forgotten = app.rooms.forget_backend(&backend.id);
        tracing::warn!(
            backend = backend.id,
            forgotten,
            "backend restarted and lost its rooms; forgetting them"
        );
    } else if !first {
        for room in removed {
            app.rooms.forget(&room.key, &backend.id, Some(room.epoch));
        }
    }
    app.metrics.rooms_known.set(app.rooms.len() as i64);
    if need_sweep && !sweep(app, backend).await {
        return false;
    }
    if first || restarted || was == Health::Down {
        push_bans(app, backend, first).await;
    }
    if let Some(draining) = pending_drain {
        if let Ok(ResponseBody::Drained { draining }) =
            app.call(backend, RequestBody::Drain { draining }).await
        {
            let mut s = backend.status();
            s.pending_drain = None;
            if let Some(r) = s.report.as_mut() {
                r.draining = draining;
            }
        }
    }
    true
}

/// Lists every room of the backend into the map. Rooms the map places there
/// that the listing did not show are checked one by one (they may have been
/// created during the sweep).
async fn sweep(app: &App, backend: &Backend) -> bool {
    let started = Instant::now();
    let uncertain_before = backend.status().uncertain.clone();
    let mut listed = HashSet::new();
    let mut after = None;
    loop {
        let body = RequestBody::ListRooms { after: after.take(), limit: SWEEP_PAGE };
        match app.call(backend, body).await {
            Ok(ResponseBody::Rooms { rooms, next_after }) => {
                for room in &rooms {
                    app.record(backend, room);
                    listed.insert(room.key.clone());
                }
                match next_after {
                    Some(key) if !rooms.is_empty() => after = Some(key),
                    _ => break,
                }
            }
            Ok(other) => {
                mark_down(app, backend, &format!("unexpected answer to list_rooms: {other:?}"));
                return false;
            }
            Err(e) => {
                mark_down(app, backend, &e.to_string());
                return false;
            }
        }
    }
    for key in app.rooms.keys_on(&backend.id) {
        if listed.contains(&key) {
            continue;
        }
        let Some(entry) = app.rooms.get(&key) else { continue };
        let Ok(name) = RoomName::parse(&entry.name) else {
            app.rooms.forget(&key, &backend.id, Some(entry.epoch));
            continue;
        };
        match app.ask(backend, &name).await {
            Ok(Some(room)) => app.record(backend, &room),
            Ok(None) => {
                backend.begin_forgetting();
                app.rooms.forget(&key, &backend.id, Some(entry.epoch));
            }
            Err(e) => {
                mark_down(app, backend, &e.to_string());
                return false;
            }
        }
    }
    if backend.cancel.is_cancelled() {
        // Removed from the fleet while sweeping: leave nothing behind.
        app.rooms.forget_backend(&backend.id);
        return false;
    }
    {
        let mut s = backend.status();
        s.swept = true;
        s.uncertain.retain(|k| !uncertain_before.contains(k));
    }
    let took = started.elapsed();
    app.metrics.rebuild_seconds.observe(took.as_secs_f64());
    app.metrics.rooms_known.set(app.rooms.len() as i64);
    tracing::info!(
        backend = backend.id,
        rooms = listed.len(),
        took_ms = took.as_millis() as u64,
        "swept backend's rooms into the room map"
    );
    true
}

/// Gives a backend seen for the first time, restarted or back from down
/// every fleet-wide ban. On first contact (aux-srv started) the bans it
/// still holds are adopted first, so an aux-srv restart loses none.
async fn push_bans(app: &App, backend: &Backend, first: bool) {
    if first {
        let asked = RequestBody::Bans { set: Vec::new(), lift: Vec::new() };
        if let Ok(ResponseBody::Bans { bans }) = app.call(backend, asked).await {
            let adopted = app.bans.merge(&bans);
            if adopted > 0 {
                tracing::info!(backend = backend.id, adopted, "adopted fleet bans a backend held");
            }
        }
    }
    let set = app.bans.list();
    if set.is_empty() {
        return;
    }
    let count = set.len();
    match app.call(backend, RequestBody::Bans { set, lift: Vec::new() }).await {
        Ok(ResponseBody::Bans { .. }) => {
            tracing::info!(backend = backend.id, bans = count, "fleet bans pushed to backend");
        }
        _ => tracing::warn!(
            backend = backend.id,
            "could not push fleet bans; pushed again when next seen back"
        ),
    }
}

fn mark_down(app: &App, backend: &Backend, error: &str) {
    let was = {
        let mut s = backend.status();
        let was = s.health;
        s.health = Health::Down;
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.down_since.get_or_insert_with(Instant::now);
        s.last_error = Some(error.to_owned());
        was
    };
    backend.client.reset();
    if was != Health::Down {
        tracing::warn!(
            backend = backend.id,
            addr = backend.client.addr(),
            error,
            rooms = app.rooms.count_on(&backend.id),
            "backend unreachable: no new rooms go there and its rooms answer 503 until it is back"
        );
    }
}

fn publish(app: &App, backend: &Backend) {
    if backend.cancel.is_cancelled() {
        return;
    }
    app.metrics.set_backend_state(&backend.id, backend.state_label());
    let score = backend.placement_score(&app.config.placement).unwrap_or(-1.0);
    app.metrics.backend_score.with_label_values(&[&backend.id]).set(score);
}
