//! Room owners over HTTP: `PUT /api/rooms/{room}/topic` and
//! `DELETE /api/rooms/{room}/messages/{seq}`, authorised by the room's owner
//! key in `X-Owner-Key`. aux-srv does not know the key (it handed it out and
//! forgot it); the backend holding the room checks it against its hash.

use std::net::IpAddr;

use common::control::{ErrorCode, OwnerAct, RequestBody, ResponseBody};
use common::owner_key::MAX_OWNER_KEY_CHARS;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::directory::{Lookup, RoomError};
use crate::http::api::{RoomRequest, lookup_error, parse_room, refused, room_error};
use crate::http::respond::{self, ApiError, Resp};

fn not_owner() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "not_owner", "A valid X-Owner-Key header is required.")
}

/// The `X-Owner-Key` header, or `403 not_owner` before anything is asked.
fn owner_key(req: &Request<Incoming>) -> Result<String, ApiError> {
    let key = req.headers().get("x-owner-key").and_then(|v| v.to_str().ok()).map(str::trim);
    match key {
        Some(key) if !key.is_empty() && key.len() <= MAX_OWNER_KEY_CHARS => Ok(key.to_owned()),
        _ => Err(not_owner()),
    }
}

/// Forwards one act to the backend holding the room. Owner keys are
/// random, but each wrong one costs a request: limited like posting.
async fn act(
    app: &App,
    room: &str,
    ip: IpAddr,
    key: String,
    act: OwnerAct,
) -> Result<Resp, ApiError> {
    let name = parse_room(room)?;
    super::api::limit_posts(app, ip, "Too many requests from your address; slow down.")?;
    let found = match app.find(&name).await {
        Lookup::Found(found) => found,
        other => return Err(lookup_error(other)),
    };
    let body = RequestBody::OwnerAct { room: found.room.name.clone(), owner_key: key, act };
    match app.call(&found.backend, body).await {
        Ok(ResponseBody::OwnerDone) => {
            Ok(respond::json(StatusCode::OK, &json!({ "room": found.room.name, "ok": true })))
        }
        Ok(ResponseBody::Error { code: ErrorCode::NotOwner, .. }) => Err(not_owner()),
        Ok(ResponseBody::Error { code: ErrorCode::NotFound, message })
            if message.starts_with("no_such_message") =>
        {
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no_such_message",
                "No message with that seq is kept.",
            ))
        }
        Ok(ResponseBody::Error { code, message }) => Err(refused(app, &found, code, message)),
        _ => Err(room_error(RoomError::Unavailable)),
    }
}

#[derive(Deserialize)]
struct TopicBody {
    text: String,
}

/// `PUT /api/rooms/{room}/topic` `{"text"}`.
pub async fn set_topic(app: &App, call: RoomRequest) -> Result<Resp, ApiError> {
    let key = owner_key(&call.req)?;
    let body = respond::read_body(call.req, app.config.max_body_bytes).await?;
    let TopicBody { text } = respond::parse_json(&body)?;
    act(app, &call.raw, call.ip, key, OwnerAct::Topic { text }).await
}

/// `DELETE /api/rooms/{room}/messages/{seq}`.
pub async fn delete_message(app: &App, call: RoomRequest, seq: &str) -> Result<Resp, ApiError> {
    let key = owner_key(&call.req)?;
    let seq = seq
        .parse::<u64>()
        .map_err(|_| ApiError::bad_request("bad_request", "The seq must be a message number."))?;
    act(app, &call.raw, call.ip, key, OwnerAct::Delete { seq }).await
}
