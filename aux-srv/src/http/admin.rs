//! The admin API, on its own listener. Every call needs
//! `Authorization: Bearer <admin_token>` (compared in constant time); with no
//! token configured every call is refused.
//!
//! | call | does |
//! |---|---|
//! | `GET /admin/backends` | backends with state, load and score |
//! | `POST /admin/backends` `{"id", "control_addr", "public_url"?}` | add one (not persisted: edit the config too) |
//! | `DELETE /admin/backends/{id}[?force=true]` | stop using one (refused while it holds rooms, unless forced) |
//! | `POST /admin/backends/{id}/drain` `{"draining": bool}`? | no new rooms there (default `true`; `false` undoes) |
//! | `GET /admin/rooms?after=KEY&limit=N` | rooms of every backend, by key, paged |
//! | `DELETE /admin/rooms/{room}` | delete a room (its members get `closing room_deleted`) |
//! | `POST /admin/announce` `{"text"}` | a notice to every room on every backend |
//! | `GET /admin/reports`, `GET`/`POST /admin/bans`, `DELETE /admin/bans/{ip}` | moderation (`moderation.rs`) |
//!
//! Moving rooms (`/admin/rooms/{room}/move`, `/admin/backends/{id}/evacuate`,
//! `/admin/rebalance`) is in `admin_moves.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use common::config::BackendEntry;
use common::control::{MAX_LIST_PAGE, RequestBody, ResponseBody, RoomInfo};
use common::names::RoomName;
use futures_util::future::join_all;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::directory::{Lookup, RoomError};
use crate::fleet::Backend;
use crate::http::admin_moves;
use crate::http::api::room_error;
use crate::http::moderation;
use crate::http::respond::{self, ApiError, Resp, percent_decode, query_param};

/// Most rooms one admin page lists.
pub const MAX_ROOMS_PAGE: u32 = 1000;
/// Longest announcement, in characters.
pub const MAX_ANNOUNCE_CHARS: usize = 1000;

pub async fn handle(app: Arc<App>, req: Request<Incoming>, _peer: SocketAddr) -> Resp {
    let started = Instant::now();
    let (route, result) = match authorize(&app, &req) {
        Ok(()) => route(&app, req).await,
        Err(e) => ("admin_unauthorized", Err(e)),
    };
    let mut resp = result.unwrap_or_else(ApiError::into_response);
    if resp.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
    }
    app.metrics.http_request(route, resp.status().as_u16(), started.elapsed().as_secs_f64());
    resp
}

fn authorize(app: &App, req: &Request<Incoming>) -> Result<(), ApiError> {
    let token = app.config.admin_token.as_bytes();
    if token.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "The admin API is disabled: no admin_token is configured.",
        ));
    }
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if given.len() == token.len() && bool::from(given.ct_eq(token)) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "A valid admin bearer token is required.",
    ))
}

type Routed = (&'static str, Result<Resp, ApiError>);

async fn route(app: &Arc<App>, req: Request<Incoming>) -> Routed {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    match (method, segments.as_slice()) {
        (Method::GET, ["admin", "backends"]) => ("/admin/backends", Ok(list_backends(app))),
        (Method::POST, ["admin", "backends"]) => ("/admin/backends", add_backend(app, req).await),
        (Method::DELETE, ["admin", "backends", id]) => {
            let force =
                query_param(req.uri().query(), "force").is_some_and(|v| v == "true" || v == "1");
            ("/admin/backends/{id}", remove_backend(app, id, force))
        }
        (Method::POST, ["admin", "backends", id, "drain"]) => {
            let id = id.to_string();
            ("/admin/backends/{id}/drain", drain(app, &id, req).await)
        }
        (Method::GET, ["admin", "rooms"]) => ("/admin/rooms", list_rooms(app, &req).await),
        (Method::DELETE, ["admin", "rooms", room]) => {
            let room = room.to_string();
            ("/admin/rooms/{room}", delete_room(app, &room).await)
        }
        (Method::POST, ["admin", "announce"]) => ("/admin/announce", announce(app, req).await),
        (Method::GET, ["admin", "reports"]) => {
            ("/admin/reports", moderation::list_reports(app, &req).await)
        }
        (Method::GET, ["admin", "bans"]) => ("/admin/bans", Ok(moderation::list_bans(app))),
        (Method::POST, ["admin", "bans"]) => ("/admin/bans", moderation::add_ban(app, req).await),
        (Method::DELETE, ["admin", "bans", ip]) => {
            let ip = ip.to_string();
            ("/admin/bans/{ip}", moderation::lift_ban(app, &ip).await)
        }
        (Method::POST, ["admin", "rooms", room, "move"]) => {
            let room = room.to_string();
            ("/admin/rooms/{room}/move", admin_moves::move_room(app, &room, req).await)
        }
        (Method::POST, ["admin", "backends", id, "evacuate"]) => {
            let id = id.to_string();
            ("/admin/backends/{id}/evacuate", admin_moves::evacuate(app, &id).await)
        }
        (Method::POST, ["admin", "rebalance"]) => {
            ("/admin/rebalance", admin_moves::rebalance(app, req).await)
        }
        _ => ("admin_other", Err(ApiError::not_found())),
    }
}

fn backend_json(app: &App, b: &Backend) -> Value {
    let score = b.placement_score(&app.config.placement);
    let state = b.state_label();
    let public_url = b.public_url();
    // Counted before the status lock is taken: never both at once.
    let rooms_mapped = app.rooms.count_on(&b.id);
    let s = b.status();
    let load = s.report.as_ref().map(|r| {
        json!({
            "instance": r.instance,
            "connections": r.connections,
            "max_connections": r.max_connections,
            "rooms": r.rooms,
            "messages_per_sec": r.messages_per_sec,
            "cpu_cores": r.cpu_cores,
            "memory_bytes": r.memory_bytes,
            "draining": r.draining,
        })
    });
    json!({
        "id": b.id,
        "control_addr": b.entry().control_addr,
        "public_url": public_url,
        "state": state,
        "health": s.health,
        "draining": state == "draining" || b.admin_drained(),
        "admin_drained": b.admin_drained(),
        "score": score,
        "load": load,
        "rooms_mapped": rooms_mapped,
        "rooms_swept": s.swept,
        "reported_secs_ago": s.reported_at.map(|t| t.elapsed().as_secs_f64()),
        "down_secs": s.down_since.map(|t| t.elapsed().as_secs()),
        "last_error": s.last_error,
        "frozen_rooms": s.report.as_ref().map_or(0, |r| r.frozen_rooms),
        "evacuating": app.moves.is_evacuating(&b.id),
    })
}

fn list_backends(app: &App) -> Resp {
    let backends: Vec<Value> = app.fleet.all().iter().map(|b| backend_json(app, b)).collect();
    let moves = admin_moves::in_progress(app);
    respond::json(StatusCode::OK, &json!({ "backends": backends, "moves": moves }))
}

async fn add_backend(app: &Arc<App>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let body = respond::read_body(req, app.config.max_body_bytes).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request("bad_json", "Send {\"id\", \"control_addr\"}."));
    }
    let entry: BackendEntry = respond::parse_json(&body)?;
    entry.check().map_err(|(field, message)| {
        ApiError::bad_request("bad_backend", format!("{field} {message}"))
    })?;
    let Some(backend) = app.add_backend(entry.clone(), false) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "backend_exists",
            "A backend with this id exists.",
        ));
    };
    tracing::info!(
        backend = entry.id,
        addr = entry.control_addr,
        "backend added through the admin API"
    );
    // Answer once the first poll is done, so the caller sees whether it works.
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(app.config.control_timeout_ms * 2),
        async {
            while backend.status().reported_at.is_none() && backend.status().last_error.is_none() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        },
    )
    .await;
    Ok(respond::json(StatusCode::CREATED, &backend_json(app, &backend)))
}

fn remove_backend(app: &App, id: &str, force: bool) -> Result<Resp, ApiError> {
    let backend = app.fleet.get(id).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "backend_not_found", "No backend with this id.")
    })?;
    let rooms = app.rooms.count_on(id) as u64;
    let reported = backend.status().report.as_ref().map_or(0, |r| r.rooms);
    if !force && rooms.max(reported) > 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "backend_not_empty",
            format!(
                "This backend holds {} rooms: drain it and wait for them to expire, or remove with ?force=true (its rooms are then forgotten and their names can be taken elsewhere).",
                rooms.max(reported)
            ),
        ));
    }
    let (_, forgotten) = app.remove_backend(id).ok_or_else(ApiError::not_found)?;
    tracing::info!(backend = id, forgotten, "backend removed through the admin API");
    Ok(respond::json(StatusCode::OK, &json!({ "removed": id, "rooms_forgotten": forgotten })))
}

#[derive(Deserialize)]
struct DrainBody {
    #[serde(default = "yes")]
    draining: bool,
}

fn yes() -> bool {
    true
}

async fn drain(app: &App, id: &str, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let backend = app.fleet.get(id).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "backend_not_found", "No backend with this id.")
    })?;
    let body = respond::read_body(req, app.config.max_body_bytes).await?;
    let DrainBody { draining } = respond::parse_json(&body)?;
    backend.set_admin_drained(draining);
    let acknowledged = match app.call(&backend, RequestBody::Drain { draining }).await {
        Ok(ResponseBody::Drained { draining }) => {
            let mut s = backend.status();
            s.pending_drain = None;
            if let Some(r) = s.report.as_mut() {
                r.draining = draining;
            }
            true
        }
        _ => {
            backend.status().pending_drain = Some(draining);
            false
        }
    };
    tracing::info!(backend = id, draining, acknowledged, "drain set through the admin API");
    let status = if acknowledged { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok(respond::json(
        status,
        &json!({ "id": id, "draining": draining, "backend_acknowledged": acknowledged }),
    ))
}

fn room_json(backend: &str, r: &RoomInfo) -> Value {
    json!({
        "name": r.name,
        "key": r.key,
        "backend": backend,
        "has_password": r.has_password,
        "members": r.members,
        "last_seq": r.last_seq,
        "epoch": r.epoch,
    })
}

/// One page of every backend's rooms, merged by key.
async fn list_rooms(app: &App, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let query = req.uri().query();
    let after = query_param(query, "after").filter(|a| !a.is_empty());
    let limit = match query_param(query, "limit") {
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| ApiError::bad_request("bad_request", "`limit` must be a number."))?
            .clamp(1, MAX_ROOMS_PAGE.min(MAX_LIST_PAGE)),
        None => 100,
    };
    let backends = app.fleet.all();
    let answers = join_all(
        backends
            .iter()
            .map(|b| app.call(b, RequestBody::ListRooms { after: after.clone(), limit })),
    )
    .await;
    let mut rooms: Vec<(String, RoomInfo)> = Vec::new();
    let mut unavailable = Vec::new();
    let mut more = false;
    for (b, answer) in backends.iter().zip(answers) {
        match answer {
            Ok(ResponseBody::Rooms { rooms: page, next_after }) => {
                more |= next_after.is_some();
                rooms.extend(page.into_iter().map(|r| (b.id.clone(), r)));
            }
            _ => unavailable.push(b.id.clone()),
        }
    }
    rooms.sort_by(|a, b| a.1.key.cmp(&b.1.key));
    more |= rooms.len() > limit as usize;
    rooms.truncate(limit as usize);
    let next_after = if more { rooms.last().map(|(_, r)| r.key.clone()) } else { None };
    let listed: Vec<Value> = rooms.iter().map(|(b, r)| room_json(b, r)).collect();
    Ok(respond::json(
        StatusCode::OK,
        &json!({ "rooms": listed, "next_after": next_after, "unavailable": unavailable }),
    ))
}

async fn delete_room(app: &App, raw: &str) -> Result<Resp, ApiError> {
    let decoded = percent_decode(raw).unwrap_or_default();
    let name =
        RoomName::parse(&decoded).map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let _lock = app.rooms.lock(name.key()).await;
    let found = match app.find(&name).await {
        Lookup::Found(found) => found,
        Lookup::NotFound => return Err(room_error(RoomError::NotFound)),
        Lookup::Unavailable => return Err(room_error(RoomError::Unavailable)),
    };
    let body = RequestBody::DeleteRoom { name: found.room.name.clone() };
    match app.call(&found.backend, body).await {
        Ok(ResponseBody::Deleted { existed }) => {
            app.rooms.forget(name.key(), &found.backend.id, None);
            app.metrics.rooms_known.set(app.rooms.len() as i64);
            tracing::info!(
                room = name.key(),
                backend = found.backend.id,
                "room deleted through the admin API"
            );
            Ok(respond::json(
                StatusCode::OK,
                &json!({ "deleted": found.room.name, "backend": found.backend.id, "existed": existed }),
            ))
        }
        _ => Err(room_error(RoomError::Unavailable)),
    }
}

#[derive(Deserialize)]
struct AnnounceBody {
    text: String,
}

async fn announce(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let body = respond::read_body(req, app.config.max_body_bytes).await?;
    let AnnounceBody { text } = respond::parse_json(&body)?;
    let text = text.trim().to_owned();
    if text.is_empty() || text.chars().count() > MAX_ANNOUNCE_CHARS {
        return Err(ApiError::bad_request(
            "bad_text",
            format!("The notice must be 1 to {MAX_ANNOUNCE_CHARS} characters."),
        ));
    }
    let backends = app.fleet.all();
    let answers = join_all(
        backends.iter().map(|b| app.call(b, RequestBody::Announce { text: text.clone() })),
    )
    .await;
    let mut total = 0u64;
    let mut per_backend = serde_json::Map::new();
    let mut failed = Vec::new();
    for (b, answer) in backends.iter().zip(answers) {
        match answer {
            Ok(ResponseBody::Announced { rooms }) => {
                total += u64::from(rooms);
                per_backend.insert(b.id.clone(), json!(rooms));
            }
            _ => failed.push(b.id.clone()),
        }
    }
    tracing::info!(rooms = total, failed = failed.len(), "notice announced through the admin API");
    Ok(respond::json(
        StatusCode::OK,
        &json!({ "rooms": total, "backends": per_backend, "failed": failed }),
    ))
}
