//! One websocket connection, from the upgrade to the close.
//!
//! A connection is one task running two halves side by side: the *reader*
//! parses client frames and acts on the room; the *writer* takes the queue
//! the room fills ([`crate::link`]) and writes it to the socket, one flush per
//! batch, sends pings, and performs every close. Whoever decides to close
//! (the reader, a room, the heartbeat in [`crate::connections`], shutdown)
//! asks the writer through [`ConnCtl`]; the writer sends what is queued
//! (except for a slow consumer), then the close frame.
//!
//! The task holds no timers: the heartbeat decides pings and timeouts for
//! every connection, which keeps an idle connection's task small.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use common::names::{parse_nick, parse_required_nick, random_nick};
use common::net::{Rate, TokenBucket};
use common::ws::{ClientFrame, CloseReason, Limits, Member, ServerFrame, close_code};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::Shared;
use crate::batch::Batch;
use crate::limits::FloodWatch;
use crate::link::{ConnCtl, Link};
use crate::metrics::Disconnect;
use crate::room::{Outgoing, Room, encode};

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// How long a close may take before the connection is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for the peer's answering close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Leaves the room when the reader ends, however it ends.
struct Membership {
    room: Arc<Room>,
    me: Member,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.room.leave(self.me.id);
    }
}

/// Serves one upgraded connection to `room` until it closes.
///
/// Not an `async fn`, whose arguments stay in the future for its whole life
/// next to the locals moved out of them (the unsplit websocket alone is 328
/// bytes): the async block below uses what it captures in place.
pub fn serve(
    shared: Arc<Shared>,
    room: Option<Arc<Room>>,
    ws: Ws,
) -> impl Future<Output = ()> + Send {
    let (mut sink, mut stream) = ws.split();
    // The first ping at a random point of the first interval: after a join
    // storm, every connection's pings would otherwise fall in one heartbeat.
    let now = shared.clock_ms();
    let first_ping = now + rand::rng().random_range(0..shared.config.ping_interval_ms.max(1));
    let ctl = Arc::new(ConnCtl::new(shared.config.send_queue_frames, now, first_ping));
    async move {
        let registered = shared.conns.register(ctl.clone());
        if shared.shutdown.is_cancelled() {
            // Shutdown began after the upgrade was accepted: `close_all` may
            // have missed this connection.
            ctl.close(close_code::GOING_AWAY, Disconnect::Shutdown);
        }
        let Some(room) = room else {
            let frame = encode(&ServerFrame::error("room_not_found", "No room of that name here."));
            Link::new(ctl.clone()).push_and_close(
                &frame,
                close_code::ROOM_NOT_FOUND,
                Disconnect::JoinRefused,
            );
            let _ = write_loop(&shared, &mut sink, &ctl).await;
            finish(&shared, &ctl);
            return;
        };

        let mut reader = Reader::new(shared.clone(), room, ctl.clone());
        let writer_closed = {
            let read = reader.run(&mut stream);
            let write = write_loop(&shared, &mut sink, &ctl);
            tokio::pin!(read, write);
            tokio::select! {
                () = &mut read => false,
                closed = &mut write => closed,
            }
        };
        // Leave the room before waiting on the peer's close answer.
        drop(reader);
        drop(registered);
        if writer_closed && ctl.reason() != Some(Disconnect::SlowConsumer) {
            Box::pin(linger(&mut stream)).await;
        }
        finish(&shared, &ctl);
    }
}

/// Reads until the peer answers our close frame, for a short while.
async fn linger(stream: &mut SplitStream<Ws>) {
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(msg)) = stream.next().await {
            if msg.is_close() {
                break;
            }
        }
    })
    .await;
}

fn finish(shared: &Shared, ctl: &ConnCtl) {
    let reason = ctl.reason().unwrap_or(Disconnect::ClientClosed);
    if reason == Disconnect::SlowConsumer {
        shared.metrics.slow_consumer_closes.inc();
    }
    shared.metrics.disconnect(reason);
}

/// Writes queued frames and pings, and closes. Returns true when it sent a
/// close frame (the peer may answer it), false when the connection broke or
/// was abandoned.
async fn write_loop(shared: &Shared, sink: &mut SplitSink<Ws, Message>, ctl: &ConnCtl) -> bool {
    loop {
        ctl.writer_work().await;
        if ctl.is_abandoned() {
            return false;
        }
        if ctl.close_code().is_some() {
            break;
        }
        let Some(mut batch) = next_batch(shared, ctl) else { continue };
        ctl.begin_write(shared.clock_ms());
        let written = poll_fn(|cx| poll_write(cx, ctl, sink, &mut batch)).await;
        ctl.end_write();
        if written.is_err() {
            ctl.note_reason(Disconnect::ClientClosed);
            return false;
        }
    }
    // Boxed: the close path is cold, and its state would otherwise be part
    // of every idle connection's task.
    Box::pin(close(shared, sink, ctl)).await
}

/// A ping if one is due, then every queued frame; `None` when there is
/// nothing to write.
fn next_batch(shared: &Shared, ctl: &ConnCtl) -> Option<Batch> {
    let ping = ctl.take_ping();
    let frames = ctl.take_frames();
    if !ping && frames.is_empty() {
        return None;
    }
    Some(Batch::new(ping, frames.into_iter(), shared.fragment_bytes))
}

/// Writes `batch` and flushes once. Gives up (`Ok`, the rest unsent) as soon
/// as the connection is closing, so a write stuck on a full TCP window
/// never delays a close.
///
/// Written against the `Sink` methods rather than `feed`/`flush` futures:
/// this keeps the write's state to the iterator, in every idle task.
fn poll_write(
    cx: &mut Context<'_>,
    ctl: &ConnCtl,
    sink: &mut SplitSink<Ws, Message>,
    batch: &mut Batch,
) -> Poll<Result<(), WsError>> {
    ctl.register_task(cx);
    if ctl.is_closing() {
        return Poll::Ready(Ok(()));
    }
    loop {
        ready!(sink.poll_ready_unpin(cx))?;
        match batch.next() {
            Some(message) => sink.start_send_unpin(message)?,
            None => return sink.poll_flush_unpin(cx),
        }
    }
}

/// Sends what is queued (unless the client is too slow for it), a `closing`
/// frame when shutting down, and the close frame.
async fn close(shared: &Shared, sink: &mut SplitSink<Ws, Message>, ctl: &ConnCtl) -> bool {
    let code = ctl.close_code().unwrap_or(close_code::NORMAL);
    let slow = ctl.reason() == Some(Disconnect::SlowConsumer);
    let shutdown = ctl.reason() == Some(Disconnect::Shutdown);
    let limit = if slow { Duration::from_millis(200) } else { CLOSE_TIMEOUT };
    let sent = tokio::time::timeout(limit, async {
        if !slow {
            for message in Batch::new(false, ctl.take_frames().into_iter(), shared.fragment_bytes) {
                sink.feed(message).await?;
            }
            if shutdown {
                let frame = encode(&ServerFrame::Closing { reason: CloseReason::Shutdown });
                sink.feed(Message::Text(frame)).await?;
            }
        }
        let reason = match ctl.reason() {
            Some(Disconnect::SlowConsumer) => "too slow to keep up",
            Some(Disconnect::Flooding) => "too many messages",
            Some(Disconnect::FrameTooBig) => "frame too big",
            Some(Disconnect::BinaryFrame) => "binary frames are not accepted",
            Some(Disconnect::Shutdown) => "server shutting down",
            _ => "",
        };
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        sink.send(Message::Close(Some(frame))).await
    })
    .await;
    matches!(sent, Ok(Ok(())))
}

/// What a connection knows while reading.
struct Reader {
    shared: Arc<Shared>,
    room: Arc<Room>,
    link: Link,
    member: Option<Membership>,
    bucket: TokenBucket,
    rate: Rate,
    flood: FloodWatch,
    limits: Limits,
}

enum Flow {
    Continue,
    Close(u16, Disconnect),
    /// A `join` to carry out (it may wait for a password check).
    Join(Box<JoinRequest>),
}

struct JoinRequest {
    nick: Option<String>,
    password: Option<String>,
    resume: Option<common::ws::Resume>,
}

impl Reader {
    fn new(shared: Arc<Shared>, room: Arc<Room>, ctl: Arc<ConnCtl>) -> Self {
        let cfg = &shared.config;
        let now = Instant::now();
        Reader {
            bucket: TokenBucket::new(Rate::per_second(cfg.rate_per_sec, cfg.rate_burst), now),
            rate: Rate::per_second(cfg.rate_per_sec, cfg.rate_burst),
            flood: FloodWatch::new(cfg.flood_close_after, now),
            limits: shared.limits.clone(),
            shared,
            room,
            link: Link::new(ctl),
            member: None,
        }
    }

    /// Reads until the peer goes away or a close is decided (then waits for
    /// the writer to finish it).
    async fn run(&mut self, stream: &mut SplitStream<Ws>) {
        loop {
            self.link.ctl().wait_for_half_free().await;
            let flow = match stream.next().await {
                None => {
                    self.link.ctl().note_reason(Disconnect::ClientClosed);
                    return;
                }
                Some(Ok(msg)) => {
                    self.link.ctl().last_heard_ms.store(self.shared.clock_ms(), Ordering::Relaxed);
                    match msg {
                        Message::Text(text) => self.on_text(&text),
                        Message::Binary(_) => {
                            Flow::Close(close_code::UNSUPPORTED_DATA, Disconnect::BinaryFrame)
                        }
                        Message::Close(_) => {
                            // tungstenite answers the close; the next read ends.
                            self.link.ctl().note_reason(Disconnect::ClientClosed);
                            Flow::Continue
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Flow::Continue,
                    }
                }
                Some(Err(WsError::Capacity(_))) => {
                    Flow::Close(close_code::MESSAGE_TOO_BIG, Disconnect::FrameTooBig)
                }
                Some(Err(WsError::Utf8(_))) => {
                    Flow::Close(close_code::INVALID_PAYLOAD, Disconnect::InvalidUtf8)
                }
                Some(Err(_)) => {
                    self.link.ctl().note_reason(Disconnect::Error);
                    return;
                }
            };
            // Boxed: joining happens once, and its state (a password check)
            // would otherwise be part of every idle connection's task.
            let flow = match flow {
                Flow::Join(request) => Box::pin(self.join(*request)).await,
                flow => flow,
            };
            if let Flow::Close(code, reason) = flow {
                self.link.ctl().close(code, reason);
                break;
            }
        }
        // The writer performs the close; reading more would only race it.
        std::future::pending::<()>().await;
    }

    fn error(&self, code: &str, message: impl Into<String>) {
        self.link.push(&encode(&ServerFrame::error(code, message)));
    }

    fn on_text(&mut self, text: &str) -> Flow {
        let now = Instant::now();
        if let Err(wait) = self.bucket.take(self.rate, now) {
            self.shared.metrics.rate_limited.inc();
            if self.flood.refused(now) {
                return Flow::Close(close_code::POLICY_VIOLATION, Disconnect::Flooding);
            }
            self.link.push(&encode(&ServerFrame::Error {
                code: "rate_limited".into(),
                message: "Too many messages; slow down.".into(),
                retry_after_ms: Some(wait.as_millis() as u64 + 1),
            }));
            return Flow::Continue;
        }
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                self.refuse_unparsed(text, &e);
                return Flow::Continue;
            }
        };
        match (frame, &self.member) {
            (ClientFrame::Join { nick, password, resume }, None) => {
                return Flow::Join(Box::new(JoinRequest { nick, password, resume }));
            }
            (ClientFrame::Join { .. }, Some(_)) => {
                self.error("already_joined", "This connection has joined already.");
            }
            (_, None) => self.error("not_joined", "Send a join frame first."),
            (frame, Some(m)) => {
                if let Err(e) = self.act(frame, m.me.clone()) {
                    self.link.push(&e.frame());
                }
            }
        }
        Flow::Continue
    }

    /// Tells a malformed frame from an unknown type, in the error frame.
    fn refuse_unparsed(&self, text: &str, error: &serde_json::Error) {
        #[derive(serde::Deserialize)]
        struct TypeOnly {
            #[serde(rename = "type")]
            kind: String,
        }
        match serde_json::from_str::<TypeOnly>(text) {
            Ok(t) if !common::ws::CLIENT_FRAME_TYPES.contains(&t.kind.as_str()) => {
                self.error("unknown_type", format!("Unknown frame type `{}`.", t.kind));
            }
            Ok(_) => self.error("bad_request", format!("Malformed frame: {error}.")),
            Err(_) => self.error("bad_json", "Frames must be JSON objects with a \"type\"."),
        }
    }

    async fn join(&mut self, request: JoinRequest) -> Flow {
        let JoinRequest { nick, password, resume } = request;
        let nick = match parse_nick(nick.as_deref().unwrap_or("")) {
            Ok(Some(nick)) => nick,
            Ok(None) => random_nick(&mut rand::rng()),
            Err(e) => {
                self.error(e.code(), e.to_string());
                return Flow::Continue;
            }
        };
        if let Some(hash) = self.room.password_hash() {
            let Some(password) = password else {
                self.error("password_required", "This room needs a password.");
                return Flow::Continue;
            };
            if !self.shared.verify_password(password, hash.to_owned()).await {
                self.error("wrong_password", "Wrong password.");
                return Flow::Continue;
            }
        }
        let me = Member { id: self.shared.next_member_id.fetch_add(1, Ordering::Relaxed), nick };
        match self.room.join(me.clone(), resume, self.link.clone(), &self.limits) {
            Ok(()) => {
                self.link.ctl().mark_joined();
                self.member = Some(Membership { room: self.room.clone(), me });
                Flow::Continue
            }
            Err(e) => {
                self.link.push(&e.frame());
                let code = match e {
                    crate::room::RoomError::Closed => close_code::ROOM_NOT_FOUND,
                    _ => close_code::TRY_AGAIN_LATER,
                };
                Flow::Close(code, Disconnect::JoinRefused)
            }
        }
    }

    fn act(&mut self, frame: ClientFrame, me: Member) -> Result<(), crate::room::RoomError> {
        use crate::room::RoomError;
        match frame {
            ClientFrame::Send { text, client_id, drawing, reply_to } => {
                let out = Outgoing { text, client_id, drawing, reply_to };
                self.room.post(&me, out, Some(&self.link)).map(|_| ())
            }
            ClientFrame::Typing => {
                self.room.typing(&me);
                Ok(())
            }
            ClientFrame::Nick { nick } => {
                let nick = parse_required_nick(&nick).map_err(RoomError::BadNick)?;
                let renamed = self.room.rename(me.id, nick)?;
                if let Some(m) = &mut self.member {
                    m.me = renamed;
                }
                Ok(())
            }
            ClientFrame::Edit { seq, text } => self.room.edit(me.id, seq, text),
            ClientFrame::Delete { seq } => self.room.delete(me.id, seq),
            ClientFrame::History { before, limit } => {
                self.link.push(&self.room.history(before, limit));
                Ok(())
            }
            ClientFrame::Join { .. } => Ok(()),
        }
    }
}
