//! The control listener: aux-srv's way in (see `common::control` for the
//! protocol). The token is checked before a byte is decoded; garbage,
//! oversize frames and wrong tokens close the connection and are counted.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::control::{
    self, AUTH_OK, ErrorCode, LoadReport, MAX_LIST_PAGE, MAX_READ_PAGE, MessageRecord, Request,
    RequestBody, Response, ResponseBody,
};
use common::names::{RoomName, parse_nick, random_nick};
use common::password::is_valid_hash;
use common::ws::{CloseReason, Member, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::registry::CreateError;
use crate::room::{Outgoing, Room, RoomError, encode};

/// Time a new control connection has to authenticate.
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Share of the frame limit a list or read answer may fill.
const ANSWER_BUDGET_DIVISOR: usize = 2;

/// Serves the control listener until `stop` is cancelled.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, stop: CancellationToken) {
    crate::accept_loop(listener, stop, "control", move |stream| {
        let shared = shared.clone();
        async move { connection(&shared, stream).await }
    })
    .await;
}

fn reject(shared: &Shared, reason: &'static str) {
    shared.metrics.control_rejected.with_label_values(&[reason]).inc();
    tracing::warn!(reason, "control connection refused");
}

async fn connection(shared: &Shared, stream: TcpStream) {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(shared.config.control_max_frame_bytes)
        .new_codec();
    let mut framed = Framed::new(stream, codec);
    match tokio::time::timeout(AUTH_TIMEOUT, framed.next()).await {
        Ok(Some(Ok(frame))) if control::check_auth(&frame, &shared.config.control_token) => {}
        Ok(Some(Ok(_))) => return reject(shared, "bad_token"),
        Ok(Some(Err(_))) => return reject(shared, "oversize"),
        Ok(None) => return,
        Err(_) => return reject(shared, "timeout"),
    }
    if framed.send(Bytes::from_static(AUTH_OK)).await.is_err() {
        return;
    }
    loop {
        let frame = match framed.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                return reject(shared, "oversize");
            }
            Some(Err(_)) | None => return,
        };
        let Ok(request) = control::decode::<Request>(&frame) else {
            return reject(shared, "garbage");
        };
        let kind = request.body.kind();
        let body = handle(shared, request.body).await;
        let result = match &body {
            ResponseBody::Error { code, .. } => code.as_str(),
            _ => "ok",
        };
        shared.metrics.control_requests.with_label_values(&[kind, result]).inc();
        let answer = control::encode(&Response { id: request.id, body });
        if framed.send(Bytes::from(answer)).await.is_err() {
            return;
        }
    }
}

fn fail(code: ErrorCode, message: impl Into<String>) -> ResponseBody {
    ResponseBody::Error { code, message: message.into() }
}

fn room_error(e: &RoomError) -> ResponseBody {
    let code = match e {
        RoomError::Closed => ErrorCode::NotFound,
        RoomError::TextTooLong(_) => ErrorCode::TooLarge,
        _ => ErrorCode::BadRequest,
    };
    ResponseBody::Error { code, message: format!("{}: {e}", e.code()) }
}

/// A refused request, small enough to pass around in a `Result`.
struct Refusal(ErrorCode, String);

impl From<Refusal> for ResponseBody {
    fn from(Refusal(code, message): Refusal) -> Self {
        ResponseBody::Error { code, message }
    }
}

fn find(shared: &Shared, name: &str) -> Result<Arc<Room>, Refusal> {
    let name = RoomName::parse(name).map_err(|e| Refusal(ErrorCode::BadName, e.to_string()))?;
    shared
        .registry
        .get(name.key())
        .ok_or_else(|| Refusal(ErrorCode::NotFound, "no such room".into()))
}

async fn check_password(
    shared: &Shared,
    room: &Room,
    password: Option<String>,
) -> Result<(), Refusal> {
    let Some(hash) = room.password_hash() else { return Ok(()) };
    let Some(password) = password else {
        return Err(Refusal(ErrorCode::PasswordRequired, "this room needs a password".into()));
    };
    if shared.verify_password(password, hash.to_owned()).await {
        Ok(())
    } else {
        Err(Refusal(ErrorCode::WrongPassword, "wrong password".into()))
    }
}

async fn handle(shared: &Shared, body: RequestBody) -> ResponseBody {
    let budget = shared.config.control_max_frame_bytes / ANSWER_BUDGET_DIVISOR;
    match body {
        RequestBody::CreateRoom { name, password_hash } => {
            let name = match RoomName::parse(&name) {
                Ok(name) => name,
                Err(e) => return fail(ErrorCode::BadName, e.to_string()),
            };
            if password_hash.as_deref().is_some_and(|h| !is_valid_hash(h)) {
                return fail(ErrorCode::BadRequest, "password_hash is not a PHC hash string");
            }
            let draining = shared.draining.load(Ordering::Acquire);
            match shared.registry.create(&name, password_hash, draining) {
                Ok((room, created)) => {
                    if created {
                        tracing::info!(room = name.key(), "room created");
                    }
                    ResponseBody::Created { room: room.info(), created }
                }
                Err(CreateError::Draining) => fail(ErrorCode::Draining, "backend is draining"),
            }
        }
        RequestBody::LookupRoom { name } => match find(shared, &name) {
            Ok(room) => ResponseBody::Room(Some(room.info())),
            Err(Refusal(ErrorCode::NotFound, _)) => ResponseBody::Room(None),
            Err(e) => e.into(),
        },
        RequestBody::ListRooms { after, limit } => {
            let limit = limit.clamp(1, MAX_LIST_PAGE) as usize;
            let (rooms, next_after) = shared.registry.list(after.as_deref(), limit, budget);
            ResponseBody::Rooms { rooms, next_after }
        }
        RequestBody::Load { removed_after } => {
            ResponseBody::Load(load_report(shared, removed_after))
        }
        RequestBody::DeleteRoom { name } => {
            let key = match RoomName::parse(&name) {
                Ok(name) => name.key().to_owned(),
                Err(e) => return fail(ErrorCode::BadName, e.to_string()),
            };
            ResponseBody::Deleted {
                existed: shared.registry.remove(&key, CloseReason::RoomDeleted),
            }
        }
        RequestBody::Announce { text } => {
            let text = text.trim();
            if text.is_empty() || text.chars().count() > shared.config.max_text_chars {
                return fail(
                    ErrorCode::BadRequest,
                    "notice must be 1 to max_text_chars characters",
                );
            }
            let frame = encode(&ServerFrame::Notice { text: text.to_owned() });
            let rooms = shared.registry.all();
            for room in &rooms {
                room.announce(&frame);
            }
            ResponseBody::Announced { rooms: rooms.len() as u32 }
        }
        RequestBody::PostMessage { room, nick, text, password, client_id } => {
            let room = match find(shared, &room) {
                Ok(room) => room,
                Err(e) => return e.into(),
            };
            if let Err(e) = check_password(shared, &room, password).await {
                return e.into();
            }
            let nick = match parse_nick(&nick) {
                Ok(Some(nick)) => nick,
                Ok(None) => random_nick(&mut rand::rng()),
                Err(e) => return fail(ErrorCode::BadRequest, format!("{}: {e}", e.code())),
            };
            // Id 0: a sender that is not a member (the HTTP API).
            let from = Member { id: 0, nick };
            let out = Outgoing { text, client_id, drawing: None, reply_to: None };
            match room.post(&from, out, None) {
                Ok((message, _)) => ResponseBody::Posted { message: MessageRecord::from(&message) },
                Err(e) => room_error(&e),
            }
        }
        RequestBody::ReadMessages { room, after, limit, password } => {
            let room = match find(shared, &room) {
                Ok(room) => room,
                Err(e) => return e.into(),
            };
            if let Err(e) = check_password(shared, &room, password).await {
                return e.into();
            }
            let limit = limit.clamp(1, MAX_READ_PAGE) as usize;
            let (messages, last_seq) = room.read(after, limit);
            let mut used = 0;
            let mut records: Vec<MessageRecord> = Vec::with_capacity(messages.len());
            // Keep the answer under the frame limit: drop from the far end.
            let fits = |m: &common::ws::ChatMessage, used: &mut usize| {
                *used += m.text.len() + m.from.nick.len() + 96;
                *used <= budget
            };
            if after.is_some() {
                for m in &messages {
                    if !fits(m, &mut used) {
                        break;
                    }
                    records.push(m.into());
                }
            } else {
                for m in messages.iter().rev() {
                    if !fits(m, &mut used) {
                        break;
                    }
                    records.push(m.into());
                }
                records.reverse();
            }
            ResponseBody::Messages { messages: records, last_seq }
        }
        RequestBody::Drain { draining } => {
            shared.draining.store(draining, Ordering::Release);
            tracing::info!(draining, "drain state changed");
            ResponseBody::Drained { draining }
        }
    }
}

fn load_report(shared: &Shared, removed_after: u64) -> LoadReport {
    let (removed, removed_cursor, removed_complete) = shared.registry.removed_since(removed_after);
    LoadReport {
        backend_id: shared.config.id.clone(),
        instance: shared.instance,
        public_url: shared.config.public_url.clone(),
        draining: shared.draining.load(Ordering::Acquire),
        connections: shared.open_connections.load(Ordering::Relaxed) as u64,
        max_connections: shared.config.max_connections as u64,
        rooms: shared.registry.len() as u64,
        messages_per_sec: shared.load.messages_per_sec(),
        cpu_cores: shared.load.cpu_cores(),
        memory_bytes: shared.metrics.process_stats().1,
        removed,
        removed_cursor,
        removed_complete,
    }
}
