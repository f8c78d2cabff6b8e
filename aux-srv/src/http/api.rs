//! The public JSON API: rooms (create-or-open, create-only, look up) and
//! messages over plain HTTP.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::control::{ErrorCode, MAX_READ_PAGE, RequestBody, ResponseBody};
use common::names::{self, RoomName};
use common::ws::ChatMessage;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::{App, error_status};
use crate::directory::{Found, Lookup, Opened, RoomError};
use crate::http::respond::{self, ApiError, Resp, percent_decode, query_param};

/// Messages per page when the client does not say.
pub const DEFAULT_READ_LIMIT: u32 = 50;

/// The answer of `PUT`, `POST` and `GET` on a room.
#[derive(Debug, Serialize, Deserialize)]
pub struct RoomAnswer {
    pub name: String,
    pub ws_url: String,
    pub files_url: String,
    pub created: bool,
    pub has_password: bool,
    /// Only in the `201` that created the room: the key of its owners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_key: Option<String>,
}

fn answer(app: &App, found: &Found, created: bool) -> Result<RoomAnswer, ApiError> {
    let ws_url = found
        .backend
        .room_ws_url(&found.room.name)
        .ok_or_else(|| room_error(RoomError::Unavailable))?;
    Ok(RoomAnswer {
        name: found.room.name.clone(),
        ws_url,
        files_url: app.config.files_url.trim_end_matches('/').to_owned(),
        created,
        has_password: found.room.has_password,
        owner_key: None,
    })
}

/// A request to one room's API (`/api/rooms/{room}/…`), as the router
/// hands it on.
pub struct RoomRequest {
    /// The `{room}` segment as sent (percent-encoded): each handler parses
    /// it at its own step ([`RoomRequest::name`]), so that refusals keep
    /// their order (an owner call checks the key first).
    pub raw: String,
    /// The client's address (through trusted proxies).
    pub ip: IpAddr,
    pub req: Request<Incoming>,
}

impl RoomRequest {
    pub fn name(&self) -> Result<RoomName, ApiError> {
        parse_room(&self.raw)
    }
}

pub(crate) fn parse_room(raw: &str) -> Result<RoomName, ApiError> {
    let decoded = percent_decode(raw).ok_or_else(|| {
        ApiError::bad_request("bad_room_name", "The room name is not valid UTF-8.")
    })?;
    RoomName::parse(&decoded).map_err(|e| ApiError::bad_request(e.code(), e.to_string()))
}

pub fn room_error(e: RoomError) -> ApiError {
    let status = |s: u16| StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY);
    match e {
        RoomError::Unavailable => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "backend_unavailable", e.to_string())
        }
        RoomError::NoBackend => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_backend", e.to_string())
        }
        RoomError::NotFound => {
            ApiError::new(StatusCode::NOT_FOUND, "room_not_found", e.to_string())
        }
        RoomError::RateLimited(wait) => {
            ApiError::rate_limited(wait, "Too many new rooms from your address; try again later.")
        }
        RoomError::BadPassword => ApiError::bad_request("bad_password", e.to_string()),
        RoomError::PasswordsBusy => ApiError::rate_limited(Duration::from_secs(1), e.to_string()),
        RoomError::Refused { code: ErrorCode::Internal, .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, "internal", "The chat server failed; try again.")
        }
        RoomError::Refused { code, message } => {
            ApiError::new(status(error_status(code)), code.as_str(), message)
        }
    }
}

pub(crate) fn lookup_error(lookup: Lookup) -> ApiError {
    match lookup {
        Lookup::NotFound => room_error(RoomError::NotFound),
        _ => room_error(RoomError::Unavailable),
    }
}

pub async fn get_room(app: &App, raw: &str) -> Result<Resp, ApiError> {
    let name = parse_room(raw)?;
    match app.find(&name).await {
        Lookup::Found(found) => Ok(respond::json(StatusCode::OK, &answer(app, &found, false)?)),
        other => Err(lookup_error(other)),
    }
}

#[derive(Deserialize)]
struct PutBody {
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
struct PostBody {
    name: String,
    #[serde(default)]
    password: Option<String>,
}

/// An empty password is no password.
fn password_of(p: Option<String>) -> Option<String> {
    p.filter(|p| !p.is_empty())
}

pub async fn open_or_create(app: &App, call: RoomRequest) -> Result<Resp, ApiError> {
    let name = call.name()?;
    let body = respond::read_body(call.req, app.config.max_body_bytes).await?;
    let body: PutBody = respond::parse_json(&body)?;
    let opened = app.open_or_create(&name, password_of(body.password), call.ip).await;
    match opened.map_err(room_error)? {
        Opened::Created(found, owner_key) => {
            let answer = RoomAnswer { owner_key: Some(owner_key), ..answer(app, &found, true)? };
            Ok(respond::json(StatusCode::CREATED, &answer))
        }
        Opened::Existing(found) => Ok(respond::json(StatusCode::OK, &answer(app, &found, false)?)),
    }
}

pub async fn create_only(
    app: &Arc<App>,
    req: Request<Incoming>,
    ip: IpAddr,
) -> Result<Resp, ApiError> {
    let body = respond::read_body(req, app.config.max_body_bytes).await?;
    let body: PostBody = respond::parse_json(&body)?;
    let name =
        RoomName::parse(&body.name).map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    match app.open_or_create(&name, password_of(body.password), ip).await.map_err(room_error)? {
        Opened::Created(found, owner_key) => {
            let answer = RoomAnswer { owner_key: Some(owner_key), ..answer(app, &found, true)? };
            Ok(respond::json(StatusCode::CREATED, &answer))
        }
        Opened::Existing(found) => {
            let suggestions = app.suggestions(&name).await;
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "room_exists",
                format!("A room named {} already exists.", found.room.name),
            )
            .with_extra("suggestions", json!(suggestions)))
        }
    }
}

fn room_password(req: &Request<Incoming>) -> Option<String> {
    let value = req.headers().get("x-room-password")?;
    String::from_utf8(value.as_bytes().to_vec()).ok().filter(|p| !p.is_empty())
}

/// True when the client asked for `text/plain` rather than JSON.
fn wants_text(req: &Request<Incoming>) -> bool {
    let Some(accept) = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    match (accept.find("text/plain"), accept.find("application/json")) {
        (Some(text), Some(json)) => text < json,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Maps a backend's answer about a room; `NotFound` also drops the room
/// from the map.
pub(crate) fn refused(app: &App, found: &Found, code: ErrorCode, message: String) -> ApiError {
    if code == ErrorCode::NotFound {
        app.rooms.forget(&found.room.key, &found.backend.id, Some(found.room.epoch));
        return room_error(RoomError::NotFound);
    }
    match code {
        ErrorCode::PasswordRequired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "password_required",
            "This room has a password: send it in the X-Room-Password header.",
        ),
        ErrorCode::WrongPassword => {
            ApiError::new(StatusCode::FORBIDDEN, "wrong_password", "Wrong password.")
        }
        _ => room_error(RoomError::Refused { code, message }),
    }
}

/// 429 `too_many_attempts` while `ip` or the room owes a wait for wrong
/// passwords ([`crate::http::attempts`]).
fn password_wait(app: &App, ip: IpAddr, found: &Found) -> Result<(), ApiError> {
    app.password_attempts.check(ip, &found.room.key).inspect_err(|_| {
        app.metrics.rate_limited.with_label_values(&["password_attempts"]).inc();
    })
}

/// [`refused`], counting a wrong password against `ip` and the room.
fn refused_password(
    app: &App,
    found: &Found,
    code: ErrorCode,
    message: String,
    ip: IpAddr,
) -> ApiError {
    if code == ErrorCode::WrongPassword {
        app.password_attempts.failed(ip, &found.room.key);
    }
    refused(app, found, code, message)
}

pub async fn read_messages(app: &App, call: RoomRequest) -> Result<Resp, ApiError> {
    let (name, req, ip) = (call.name()?, &call.req, call.ip);
    let query = req.uri().query();
    let after = match query_param(query, "after") {
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_request("bad_request", "`after` must be a message number (seq).")
        })?),
        None => None,
    };
    let limit = match query_param(query, "limit") {
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| ApiError::bad_request("bad_request", "`limit` must be a number."))?
            .clamp(1, MAX_READ_PAGE),
        None => DEFAULT_READ_LIMIT,
    };
    let password = room_password(req);
    // Each password costs the backend a slow hash check: guessing is
    // limited like posting.
    if password.is_some() {
        limit_posts(app, ip, "Too many password attempts; slow down.")?;
    }
    let found = match app.find(&name).await {
        Lookup::Found(found) => found,
        other => return Err(lookup_error(other)),
    };
    let guessing = password.is_some();
    if guessing {
        password_wait(app, ip, &found)?;
    }
    let body = RequestBody::ReadMessages { room: found.room.name.clone(), after, limit, password };
    let (messages, last_seq) = match app.call(&found.backend, body).await {
        Ok(ResponseBody::Messages { messages, last_seq }) => {
            if guessing {
                app.password_attempts.succeeded(ip);
            }
            (messages, last_seq)
        }
        Ok(ResponseBody::Error { code, message }) => {
            return Err(refused_password(app, &found, code, message, ip));
        }
        _ => return Err(room_error(RoomError::Unavailable)),
    };
    let messages: Vec<ChatMessage> = messages.into_iter().map(ChatMessage::from).collect();
    if wants_text(req) {
        let files_url = app.config.files_url.trim_end_matches('/');
        let text: String = messages.iter().filter_map(|m| text_line(m, files_url)).collect();
        return Ok(respond::plain(StatusCode::OK, text));
    }
    Ok(respond::json(
        StatusCode::OK,
        &json!({ "room": found.room.name, "messages": messages, "last_seq": last_seq }),
    ))
}

/// `[hh:mm] nick: text` (UTC), one line, with terminal control characters
/// removed: this is printed by curl straight into someone's terminal.
pub fn text_line(m: &ChatMessage, files_url: &str) -> Option<String> {
    if m.deleted {
        return None;
    }
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect()
    };
    let minutes = (m.ts / 60_000) % (24 * 60);
    let mut line = format!(
        "[{:02}:{:02}] {}: {}",
        minutes / 60,
        minutes % 60,
        clean(&m.from.nick),
        clean(&m.text)
    );
    if let Some(drawing) = &m.drawing {
        line.push_str(&format!(" [drawing {files_url}/files/{}.png]", clean(drawing)));
    }
    line.push('\n');
    Some(line)
}

#[derive(Deserialize)]
struct PostMessageBody {
    #[serde(default)]
    nick: String,
    text: String,
    #[serde(default)]
    client_id: Option<String>,
}

/// Takes one from `ip`'s posting budget (posts, password guesses, owner
/// acts: each costs a backend real work), or refuses with `message`.
pub(super) fn limit_posts(app: &App, ip: IpAddr, message: &str) -> Result<(), ApiError> {
    app.post_limit.check(ip, Instant::now()).map_err(|wait| {
        app.metrics.rate_limited.with_label_values(&["http_post"]).inc();
        ApiError::rate_limited(wait, message)
    })
}

pub async fn post_message(app: &App, call: RoomRequest) -> Result<Resp, ApiError> {
    let name = call.name()?;
    let RoomRequest { req, ip, .. } = call;
    limit_posts(app, ip, "Too many messages from your address; slow down.")?;
    let password = room_password(&req);
    let is_text = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/plain"));
    let query_nick = query_param(req.uri().query(), "nick");
    let bytes = respond::read_body(req, app.config.max_body_bytes).await?;
    let body: PostMessageBody = if is_text {
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request("bad_request", "The text is not UTF-8."))?;
        PostMessageBody {
            nick: query_nick.unwrap_or_default(),
            text: text.trim_end().to_owned(),
            client_id: None,
        }
    } else {
        respond::parse_json(&bytes)?
    };
    if body.text.trim().is_empty() {
        return Err(ApiError::bad_request("empty_text", "The message text is empty."));
    }
    let nick = match names::parse_nick(&body.nick) {
        Ok(Some(nick)) => nick,
        Ok(None) => names::random_nick(&mut rand::rng()),
        Err(e) => return Err(ApiError::bad_request(e.code(), e.to_string())),
    };
    let found = match app.find(&name).await {
        Lookup::Found(found) => found,
        other => return Err(lookup_error(other)),
    };
    // A client id makes the post safe to repeat if an answer is lost.
    let client_id = body.client_id.or_else(|| Some(format!("http-{:016x}", rand::random::<u64>())));
    let guessing = password.is_some();
    if guessing {
        password_wait(app, ip, &found)?;
    }
    let request = RequestBody::PostMessage {
        room: found.room.name.clone(),
        nick,
        text: body.text,
        password,
        client_id,
    };
    match app.call(&found.backend, request).await {
        Ok(ResponseBody::Posted { message }) => {
            if guessing {
                app.password_attempts.succeeded(ip);
            }
            Ok(respond::json(
                StatusCode::CREATED,
                &json!({ "seq": message.seq, "ts": message.ts, "nick": message.from_nick }),
            ))
        }
        Ok(ResponseBody::Error { code, message }) => {
            Err(refused_password(app, &found, code, message, ip))
        }
        _ => Err(room_error(RoomError::Unavailable)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::ws::Member;

    #[test]
    fn text_lines_are_one_line_and_terminal_safe() {
        let at_13_07 = (13 * 60 + 7) * 60_000 + 5 * 86_400_000;
        let m = ChatMessage {
            drawing: Some("0123456789abcdef0123456789abcdef".into()),
            ..ChatMessage::new(
                1,
                at_13_07,
                Member { id: 1, nick: "ada\u{1b}[31m".into() },
                "hi\nthere\u{7}",
            )
        };
        let line = text_line(&m, "http://f").unwrap();
        assert_eq!(
            line,
            "[13:07] ada[31m: hi there [drawing http://f/files/0123456789abcdef0123456789abcdef.png]\n"
        );
        assert!(text_line(&ChatMessage { deleted: true, ..m }, "").is_none());
    }
}
