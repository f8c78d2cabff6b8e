//! The admin API's calls that move rooms (see `crate::moves`):
//!
//! | call | does |
//! |---|---|
//! | `POST /admin/rooms/{room}/move` `{}` or `{"to"}` | moves one room → `{room, from, to, took_ms}` |
//! | `POST /admin/backends/{id}/evacuate` | drains the backend and moves every room off it → `{moved, failed, took_ms}` |
//! | `POST /admin/rebalance` `{"margin"?, "max_rooms"?}` | moves rooms from the most to the least loaded backend → `{from, to, moved, failed, took_ms}` |

use std::time::Instant;

use common::control::{RequestBody, ResponseBody};
use common::names::RoomName;
use futures_util::StreamExt;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::http::respond::{self, ApiError, Resp, percent_decode};
use crate::moves::{self, MoveError};

fn move_error(e: &MoveError) -> ApiError {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    ApiError::new(status, e.code(), format!("{}.", capitalized(&e.to_string())))
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    #[serde(default)]
    to: Option<String>,
}

/// `POST /admin/rooms/{room}/move`.
pub async fn move_room(app: &App, raw: &str, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let body = respond::read_body(req, app.config.max_body_bytes).await?;
    let MoveBody { to } =
        if body.is_empty() { MoveBody::default() } else { respond::parse_json(&body)? };
    let decoded = percent_decode(raw).unwrap_or_default();
    let name =
        RoomName::parse(&decoded).map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let moved = moves::move_room(app, &name, to.as_deref()).await.map_err(|e| move_error(&e))?;
    Ok(respond::json(StatusCode::OK, &moved))
}

/// `POST /admin/backends/{id}/evacuate`.
pub async fn evacuate(app: &App, id: &str) -> Result<Resp, ApiError> {
    if app.fleet.get(id).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "backend_not_found",
            "No backend with this id.",
        ));
    }
    match moves::evacuate(app, id, true).await {
        Some(done) => Ok(respond::json(StatusCode::OK, &done)),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "evacuation_running",
            "This backend is being evacuated already.",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RebalanceBody {
    /// Stop when the two scores are this close.
    #[serde(default = "default_margin")]
    margin: f64,
    #[serde(default = "default_max_rooms")]
    max_rooms: usize,
}

fn default_margin() -> f64 {
    0.05
}

fn default_max_rooms() -> usize {
    100
}

/// `POST /admin/rebalance`: the busiest rooms of the most loaded backend
/// go to the least loaded one, until about half the connection gap moved
/// (scores come from load reports, seconds old: one round, not a loop).
pub async fn rebalance(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let body = respond::read_body(req, app.config.max_body_bytes).await?;
    let RebalanceBody { margin, max_rooms } = if body.is_empty() {
        RebalanceBody { margin: default_margin(), max_rooms: default_max_rooms() }
    } else {
        respond::parse_json(&body)?
    };
    let started = Instant::now();
    let order = app.fleet.placement_order(&app.config.placement);
    let (Some((least, low)), Some((most, high))) = (order.first(), order.last()) else {
        return Ok(respond::json(StatusCode::OK, &json!({"moved": 0, "failed": 0, "took_ms": 0})));
    };
    if least.id == most.id || high - low <= margin {
        return Ok(respond::json(
            StatusCode::OK,
            &json!({"moved": 0, "failed": 0, "took_ms": 0, "balanced": true}),
        ));
    }
    let connections =
        |b: &crate::fleet::Backend| b.status().report.as_ref().map_or(0, |r| r.connections);
    let gap = connections(most).saturating_sub(connections(least)) / 2;
    let mut rooms = match app
        .call(most, RequestBody::ListRooms { after: None, limit: common::control::MAX_LIST_PAGE })
        .await
    {
        Ok(ResponseBody::Rooms { rooms, .. }) => rooms,
        _ => return Err(move_error(&MoveError::Unavailable)),
    };
    rooms.sort_by_key(|r| std::cmp::Reverse(r.members));
    let mut chosen = Vec::new();
    let mut members = 0u64;
    for room in rooms {
        if chosen.len() >= max_rooms || (members >= gap && !chosen.is_empty()) {
            break;
        }
        members += u64::from(room.members);
        chosen.push(room.name);
    }
    let to = least.id.clone();
    let results: Vec<bool> = futures_util::stream::iter(chosen)
        .map(|name| {
            let to = to.clone();
            async move {
                let Ok(name) = RoomName::parse(&name) else { return false };
                moves::move_room(app, &name, Some(&to)).await.is_ok()
            }
        })
        .buffer_unordered(app.config.move_concurrency)
        .collect()
        .await;
    let moved = results.iter().filter(|ok| **ok).count();
    Ok(respond::json(
        StatusCode::OK,
        &json!({
            "from": most.id,
            "to": least.id,
            "moved": moved,
            "failed": results.len() - moved,
            "took_ms": started.elapsed().as_millis() as u64,
        }),
    ))
}

/// The moves in progress, for `GET /admin/backends`.
pub fn in_progress(app: &App) -> Value {
    let list: Vec<Value> = app
        .moves
        .in_progress()
        .into_iter()
        .map(|(m, ms)| json!({"room": m.room, "from": m.from, "to": m.to, "running_ms": ms}))
        .collect();
    Value::Array(list)
}
