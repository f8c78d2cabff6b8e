//! The control listener: aux-srv's way in (see `common::control` for the
//! protocol). The first frame must be the auth frame: a longer one is
//! refused from its length prefix, before its bytes are read, and only
//! [`MAX_UNAUTHENTICATED`] connections may wait to authenticate at once. The
//! token is checked before a byte is decoded; garbage, oversize frames and
//! wrong tokens close the connection and are counted.

use std::net::Ipv4Addr;
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
use common::ws::{ChatMessage, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use http_listener::accept::Listener;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::registry::{CreateError, Removal};
use crate::room::{Outgoing, Poster, Room, RoomError, encode};
use crate::{Shared, moves};

/// Time a new control connection has to authenticate.
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Control connections that may wait to authenticate at once; more are
/// closed on arrival. aux-srv holds a handful of connections per backend.
pub const MAX_UNAUTHENTICATED: usize = 64;
/// Share of the frame limit a list or read answer may fill.
const ANSWER_BUDGET_DIVISOR: usize = 2;

/// Serves the control listener until `stop` is cancelled, each connection
/// on a task of its own that also ends on `stop`. Accepting is the HTTP
/// listeners' own ([`http_listener::accept::Listener`]): out of descriptors,
/// it backs off and logs once a second instead of spinning.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, stop: CancellationToken) {
    let unauthenticated = Arc::new(Semaphore::new(MAX_UNAUTHENTICATED));
    let mut listener = Listener::new(listener, "control");
    loop {
        let (stream, _) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let shared = shared.clone();
        let unauthenticated = unauthenticated.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = connection(&shared, stream, &unauthenticated) => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

fn reject(shared: &Shared, reason: &'static str) {
    shared.metrics.control_rejected.with_label_values(&[reason]).inc();
    tracing::warn!(reason, "control connection refused");
}

/// Waits for the auth frame; true when it carries the token. The codec
/// refuses any first frame longer than the auth frame from its length
/// prefix, so an unauthenticated peer never makes us buffer more.
async fn authenticate(
    shared: &Shared,
    framed: &mut Framed<TcpStream, LengthDelimitedCodec>,
) -> bool {
    let token = &shared.config.control_token;
    framed.codec_mut().set_max_frame_length(control::auth_frame(token).len());
    match tokio::time::timeout(AUTH_TIMEOUT, framed.next()).await {
        Ok(Some(Ok(frame))) if control::check_auth(&frame, token) => {}
        Ok(Some(Ok(_))) => {
            reject(shared, "bad_token");
            return false;
        }
        Ok(Some(Err(_))) => {
            reject(shared, "oversize");
            return false;
        }
        Ok(None) => return false,
        Err(_) => {
            reject(shared, "timeout");
            return false;
        }
    }
    framed.codec_mut().set_max_frame_length(shared.config.control_max_frame_bytes);
    framed.send(Bytes::from_static(AUTH_OK)).await.is_ok()
}

async fn connection(shared: &Shared, stream: TcpStream, unauthenticated: &Semaphore) {
    let Ok(waiting) = unauthenticated.try_acquire() else {
        return reject(shared, "too_many_unauthenticated");
    };
    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
    let authenticated = authenticate(shared, &mut framed).await;
    drop(waiting);
    if !authenticated {
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

pub(crate) fn fail(code: ErrorCode, message: impl Into<String>) -> ResponseBody {
    ResponseBody::Error { code, message: message.into() }
}

pub(crate) fn room_error(e: &RoomError) -> ResponseBody {
    let code = match e {
        RoomError::Closed => ErrorCode::NotFound,
        RoomError::TextTooLong(_) => ErrorCode::TooLarge,
        RoomError::Moving => ErrorCode::Moving,
        _ => ErrorCode::BadRequest,
    };
    ResponseBody::Error { code, message: format!("{}: {e}", e.code()) }
}

/// A refused request, small enough to pass around in a `Result`.
pub(crate) struct Refusal(pub ErrorCode, pub String);

impl From<Refusal> for ResponseBody {
    fn from(Refusal(code, message): Refusal) -> Self {
        ResponseBody::Error { code, message }
    }
}

pub(crate) fn find(shared: &Shared, name: &str) -> Result<Arc<Room>, Refusal> {
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
    match shared.verify_password(password, hash.to_owned()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refusal(ErrorCode::WrongPassword, "wrong password".into())),
        Err(busy) => Err(Refusal(ErrorCode::Internal, busy.to_string())),
    }
}

async fn handle(shared: &Shared, body: RequestBody) -> ResponseBody {
    match body {
        RequestBody::CreateRoom { name, password_hash, owner_key_hash } => {
            create_room(shared, &name, password_hash, owner_key_hash)
        }
        RequestBody::LookupRoom { name } => match find(shared, &name) {
            Ok(room) => ResponseBody::Room(Some(room.info())),
            Err(Refusal(ErrorCode::NotFound, _)) => ResponseBody::Room(None),
            Err(e) => e.into(),
        },
        RequestBody::ListRooms { after, limit } => {
            let limit = limit.clamp(1, MAX_LIST_PAGE) as usize;
            let (rooms, next_after) = shared.registry.list(after.as_deref(), limit, budget(shared));
            ResponseBody::Rooms { rooms, next_after }
        }
        RequestBody::Load { removed_after } => {
            ResponseBody::Load(load_report(shared, removed_after))
        }
        RequestBody::DeleteRoom { name } => match RoomName::parse(&name) {
            Ok(name) => ResponseBody::Deleted {
                existed: shared.registry.remove(name.key(), Removal::Deleted),
            },
            Err(e) => fail(ErrorCode::BadName, e.to_string()),
        },
        RequestBody::Announce { text } => announce(shared, &text),
        RequestBody::PostMessage { room, nick, text, password, client_id } => {
            post_message(shared, &room, &nick, text, password, client_id)
                .await
                .unwrap_or_else(ResponseBody::from)
        }
        RequestBody::ReadMessages { room, after, limit, password } => {
            read_messages(shared, &room, after, limit, password)
                .await
                .unwrap_or_else(ResponseBody::from)
        }
        RequestBody::Drain { draining } => {
            shared.draining.store(draining, Ordering::Release);
            tracing::info!(draining, "drain state changed");
            ResponseBody::Drained { draining }
        }
        RequestBody::OwnerAct { room, owner_key, act } => {
            crate::moderation_control::owner_act(shared, &room, &owner_key, act)
        }
        RequestBody::ListReports { limit } => {
            crate::moderation_control::list_reports(shared, limit, budget(shared))
        }
        RequestBody::Bans { set, lift } => crate::moderation_control::bans(shared, &set, &lift),
        RequestBody::FreezeRoom { name, ttl_ms } => moves::freeze(shared, &name, ttl_ms),
        RequestBody::ExportRoom { name } => moves::export(shared, &name),
        RequestBody::ImportRoom { snapshot, from, from_instance } => {
            moves::import(shared, *snapshot, from, from_instance)
        }
        RequestBody::CompleteMove { name, epoch, to } => {
            moves::complete(shared, &name, epoch, to, None)
        }
        RequestBody::CompleteMoveTo { name, epoch, to, ws_url } => {
            moves::complete(shared, &name, epoch, to, Some(ws_url))
        }
        RequestBody::CommitImport { name, epoch } => moves::commit(shared, &name, epoch),
        RequestBody::AbortMove { name } => moves::abort(shared, &name),
        RequestBody::AbortImport { name, epoch } => moves::abort_import(shared, &name, epoch),
        RequestBody::MoveStatus { name } => moves::status(shared, &name),
        RequestBody::EvacuationDone { moved, failed } => {
            tracing::info!(moved, failed, "aux-srv finished evacuating this backend");
            shared.evacuation_done.notify_waiters();
            ResponseBody::Ack
        }
    }
}

/// How many bytes a list or read answer may fill.
fn budget(shared: &Shared) -> usize {
    shared.config.control_max_frame_bytes / ANSWER_BUDGET_DIVISOR
}

fn create_room(
    shared: &Shared,
    name: &str,
    password_hash: Option<String>,
    owner_key_hash: Option<[u8; 32]>,
) -> ResponseBody {
    let name = match RoomName::parse(name) {
        Ok(name) => name,
        Err(e) => return fail(ErrorCode::BadName, e.to_string()),
    };
    if password_hash.as_deref().is_some_and(|h| !is_valid_hash(h)) {
        return fail(ErrorCode::BadRequest, "password_hash is not a PHC hash string");
    }
    let draining = shared.draining.load(Ordering::Acquire);
    match shared.registry.create(&name, password_hash, owner_key_hash, draining) {
        Ok((room, created)) => {
            if created {
                shared.moves.created(name.key());
                tracing::info!(room = name.key(), "room created");
            }
            ResponseBody::Created { room: room.info(), created }
        }
        Err(CreateError::Draining) => fail(ErrorCode::Draining, "backend is draining"),
    }
}

fn announce(shared: &Shared, text: &str) -> ResponseBody {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > shared.config.max_text_chars {
        return fail(ErrorCode::BadRequest, "notice must be 1 to max_text_chars characters");
    }
    let frame = encode(&ServerFrame::Notice { text: text.to_owned(), moderation: false });
    let rooms = shared.registry.all();
    for room in &rooms {
        room.announce(&frame);
    }
    ResponseBody::Announced { rooms: rooms.len() as u32 }
}

async fn post_message(
    shared: &Shared,
    room: &str,
    nick: &str,
    text: String,
    password: Option<String>,
    client_id: Option<String>,
) -> Result<ResponseBody, Refusal> {
    let room = find(shared, room)?;
    check_password(shared, &room, password).await?;
    let nick = match parse_nick(nick) {
        Ok(Some(nick)) => nick,
        Ok(None) => random_nick(&mut rand::rng()),
        Err(e) => return Err(Refusal(ErrorCode::BadRequest, format!("{}: {e}", e.code()))),
    };
    let out = Outgoing { text, client_id, drawing: None, reply_to: None };
    Ok(match room.post(Poster::Guest(&nick), out, None) {
        Ok((message, new)) => {
            if new {
                // The HTTP API's clients are counted as one (aux-srv passes no address).
                shared.previews.after_post(&room, &message, Ipv4Addr::UNSPECIFIED.into());
            }
            ResponseBody::Posted { message: MessageRecord::from(&message) }
        }
        Err(e) => room_error(&e),
    })
}

async fn read_messages(
    shared: &Shared,
    room: &str,
    after: Option<u64>,
    limit: u32,
    password: Option<String>,
) -> Result<ResponseBody, Refusal> {
    let room = find(shared, room)?;
    check_password(shared, &room, password).await?;
    let limit = limit.clamp(1, MAX_READ_PAGE) as usize;
    let (messages, last_seq) = room.read(after, limit);
    // Keep the answer under the frame limit: drop from the far end.
    let messages = fit_to_budget(&messages, after.is_none(), budget(shared));
    Ok(ResponseBody::Messages { messages, last_seq })
}

/// The records of as many `messages` as fit in `budget` bytes, kept from the
/// newest end when `newest_first`, else from the oldest; in seq order.
fn fit_to_budget(
    messages: &[ChatMessage],
    newest_first: bool,
    budget: usize,
) -> Vec<MessageRecord> {
    let mut used = 0;
    let mut fits = |m: &&ChatMessage| {
        used += m.text.len() + m.from.nick.len() + 96;
        used <= budget
    };
    if newest_first {
        let mut records: Vec<MessageRecord> =
            messages.iter().rev().take_while(&mut fits).map(MessageRecord::from).collect();
        records.reverse();
        records
    } else {
        messages.iter().take_while(fits).map(MessageRecord::from).collect()
    }
}

fn load_report(shared: &Shared, removed_after: u64) -> LoadReport {
    shared.last_polled_ms.store(shared.clock_ms(), Ordering::Release);
    let (removed, removed_cursor, removed_complete) = shared.registry.removed_since(removed_after);
    LoadReport {
        backend_id: shared.config.id.clone(),
        instance: shared.instance,
        public_url: shared.config.public_url.clone(),
        draining: shared.draining.load(Ordering::Acquire),
        connections: shared.connection_slots.load(Ordering::Relaxed) as u64,
        max_connections: shared.config.max_connections as u64,
        rooms: shared.registry.len() as u64,
        messages_per_sec: shared.load.messages_per_sec(),
        cpu_cores: shared.load.cpu_cores(),
        memory_bytes: shared.metrics.process_stats().1,
        removed,
        removed_cursor,
        removed_complete,
        frozen_rooms: shared.moves.frozen_count() as u32,
        evacuate: shared.evacuate.load(Ordering::Acquire),
        pending_imports: shared.moves.pending_imports(),
    }
}
