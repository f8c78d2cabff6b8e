//! A connection's reader half: parses client frames, applies the rate limit,
//! joins the room and acts on it. It never writes to the socket: answers go
//! through the connection's queue ([`Conn::push`]) and closes through
//! [`Conn::close`], both carried out by the writer ([`crate::writer`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use common::names::{parse_nick, parse_required_nick};
use common::net::TokenBucket;
use common::pow::PowSolution;
use common::ws::{ClientFrame, JoinExtras, Resume, ServerFrame};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::Shared;
use crate::conn::Conn;
use crate::defences::SendWatch;
use crate::disconnect::Disconnect;
use crate::limits::FloodWatch;
use crate::room::{Actor, JoinAs, Outgoing, Poster, Room, RoomError, encode};
use crate::session::Ws;

/// What a connection knows while reading. Leaves the room when dropped,
/// however the connection ends.
pub struct Reader {
    shared: Arc<Shared>,
    room: Arc<Room>,
    conn: Arc<Conn>,
    /// Set once joined. Only the id: the member's nick lives in its seat.
    member_id: Option<u64>,
    bucket: TokenBucket,
    flood: FloodWatch,
    /// Who file-srv counts this connection's link previews against (and
    /// the defences count wrong passwords against).
    client_ip: IpAddr,
    /// Spam repeats and slow mode ([`crate::defences`]).
    sends: SendWatch,
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(id) = self.member_id {
            self.room.leave(id, &self.conn);
        }
    }
}

enum Flow {
    Continue,
    Close(Disconnect),
    /// A `join` to carry out (it may wait for a password check).
    Join(Box<JoinRequest>),
}

struct JoinRequest {
    nick: Option<String>,
    password: Option<String>,
    resume: Option<Resume>,
    reclaim: Option<String>,
    extras: JoinExtras,
    pow: Option<PowSolution>,
}

/// What a read error means for the connection: a close frame to send, or
/// (`None`) a peer already gone.
fn read_error(error: &WsError) -> Option<Disconnect> {
    match error {
        WsError::Capacity(_) => Some(Disconnect::FrameTooBig),
        WsError::Utf8(_) => Some(Disconnect::InvalidUtf8),
        // The peer dropped the TCP connection: nobody is left to tell.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) => Some(Disconnect::ProtocolError),
        _ => None,
    }
}

impl Reader {
    pub fn new(shared: Arc<Shared>, room: Arc<Room>, conn: Arc<Conn>, client_ip: IpAddr) -> Self {
        let now = Instant::now();
        Reader {
            bucket: TokenBucket::new(shared.rate, now),
            flood: FloodWatch::new(shared.config.flood_close_after, now),
            shared,
            room,
            conn,
            member_id: None,
            client_ip,
            sends: SendWatch::default(),
        }
    }

    /// The member's id once joined.
    pub fn member_id(&self) -> Option<u64> {
        self.member_id
    }

    /// Reads until the peer goes away or a close is decided (then waits for
    /// the writer to finish it).
    pub async fn run(&mut self, stream: &mut SplitStream<Ws>) {
        loop {
            self.conn.wait_for_half_free().await;
            let flow = match stream.next().await {
                None => {
                    self.conn.note_reason(Disconnect::ClientClosed);
                    return;
                }
                Some(Ok(msg)) => self.on_message(msg),
                Some(Err(e)) => match read_error(&e) {
                    Some(reason) => Flow::Close(reason),
                    None => {
                        self.conn.note_reason(Disconnect::Error);
                        return;
                    }
                },
            };
            // Boxed: joining happens once, and its state (a password check)
            // would otherwise be part of every idle connection's task.
            let flow = match flow {
                Flow::Join(request) => Box::pin(self.join(*request)).await,
                flow => flow,
            };
            if let Flow::Close(reason) = flow {
                self.conn.close(reason);
                break;
            }
        }
        // The writer performs the close; reading more would only race it.
        std::future::pending::<()>().await;
    }

    fn on_message(&mut self, msg: Message) -> Flow {
        self.conn.last_heard_ms.store(self.shared.clock_ms(), Ordering::Relaxed);
        match msg {
            Message::Text(text) => self.on_text(&text),
            Message::Binary(_) => Flow::Close(Disconnect::BinaryFrame),
            Message::Close(_) => {
                // tungstenite answers the close; the next read ends.
                self.conn.note_reason(Disconnect::ClientClosed);
                Flow::Continue
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Flow::Continue,
        }
    }

    fn error(&self, code: &str, message: impl Into<String>) {
        self.conn.push(&encode(&ServerFrame::error(code, message)));
    }

    fn on_text(&mut self, text: &str) -> Flow {
        let now = Instant::now();
        if let Err(wait) = self.bucket.take(self.shared.rate, now) {
            self.shared.metrics.rate_limited.inc();
            if self.flood.refused(now) {
                return Flow::Close(Disconnect::Flooding);
            }
            self.conn.push(&encode(&ServerFrame::Error {
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
        match (frame, self.member_id) {
            (ClientFrame::Join { nick, password, resume, reclaim, pow }, None) => {
                // Once per connection: the join's optional extras (owner_key).
                let extras = serde_json::from_str::<JoinExtras>(text).unwrap_or_default();
                let request = JoinRequest { nick, password, resume, reclaim, pow, extras };
                return Flow::Join(Box::new(request));
            }
            (ClientFrame::Join { .. }, Some(_)) => {
                self.error("already_joined", "This connection has joined already.");
            }
            (_, None) => self.error("not_joined", "Send a join frame first."),
            (frame, Some(id)) => {
                if let Err(e) = self.act(frame, id) {
                    self.conn.push(&e.frame());
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
        let JoinRequest { nick, password, resume, reclaim, pow, extras } = request;
        // No nick: a reclaimed member keeps its own, a new one gets a random one.
        let nick = match parse_nick(nick.as_deref().unwrap_or("")) {
            Ok(nick) => nick,
            Err(e) => {
                self.error(e.code(), e.to_string());
                return Flow::Continue;
            }
        };
        // A banned address is turned away before it costs a password check.
        if let Some(refusal) = self.fleet_ban() {
            return refusal;
        }
        let defences = &self.shared.defences;
        if let Err(challenge) = defences.challenge(&self.room, pow.as_ref(), self.shared.clock_ms())
        {
            self.conn.push(&challenge);
            return Flow::Continue;
        }
        if let Some(hash) = self.room.password_hash() {
            let Some(password) = password else {
                self.error("password_required", "This room needs a password.");
                return Flow::Continue;
            };
            let (ip, room) = (self.client_ip, self.room.key());
            if let Err(wait) = defences.password_wait(ip, room, Instant::now()) {
                self.conn.push(&wait);
                return Flow::Continue;
            }
            match self.shared.verify_password(password, hash.to_owned()).await {
                Ok(true) => self.shared.defences.password_ok(ip),
                Ok(false) => {
                    self.shared.defences.password_failed(ip, room, Instant::now());
                    self.error("wrong_password", "Wrong password.");
                    return Flow::Continue;
                }
                Err(busy) => {
                    self.error("rate_limited", busy.to_string());
                    return Flow::Continue;
                }
            }
        }
        let owner_key = extras.owner_key;
        let request = JoinAs { nick, reclaim, resume, owner_key, ip: self.client_ip };
        match self.room.join(request, self.conn.clone(), &self.shared.limits) {
            Ok(id) => {
                self.conn.mark_joined();
                self.member_id = Some(id);
                tracing::Span::current().record("member", id);
                Flow::Continue
            }
            Err(e) => {
                let barred = match e {
                    RoomError::Locked => Some("locked"),
                    RoomError::Banned { .. } => Some("room_ban"),
                    _ => None,
                };
                if let Some(reason) = barred {
                    return self.barred(e, reason);
                }
                self.conn.push(&e.frame());
                Flow::Close(match e {
                    RoomError::Closed => Disconnect::RoomNotFound,
                    _ => Disconnect::JoinRefused,
                })
            }
        }
    }

    /// A fleet-wide ban of the member's address, as the refusal to return.
    /// (The room's own bans and lock are checked by [`Room::join`].)
    fn fleet_ban(&self) -> Option<Flow> {
        let (wait, reason) = self.shared.ip_bans.check(self.client_ip, Instant::now())?;
        Some(self.barred(RoomError::Banned { wait, reason }, "fleet_ban"))
    }

    /// Refuses a join that is kept out (banned, locked): an error frame and
    /// close 4403, counted by `reason`.
    fn barred(&self, refusal: RoomError, reason: &str) -> Flow {
        self.shared.metrics.joins_barred.with_label_values(&[reason]).inc();
        self.conn.push(&refusal.frame());
        Flow::Close(Disconnect::Barred)
    }

    fn act(&mut self, frame: ClientFrame, id: u64) -> Result<(), RoomError> {
        match frame {
            ClientFrame::Send { text, client_id, drawing, reply_to } => {
                let clock = self.shared.clock_ms();
                let defences = &self.shared.defences;
                let checked =
                    defences.before_send(&self.room, &mut self.sends, &text, Instant::now(), clock);
                if let Err(refusal) = checked {
                    self.conn.push(&refusal);
                    return Ok(());
                }
                let out = Outgoing { text, client_id, drawing, reply_to };
                let (message, new) = self.room.post(Poster::Member(id), out, Some(&self.conn))?;
                if new {
                    defences.after_post(&self.room, &mut self.sends, clock);
                    self.shared.previews.after_post(&self.room, &message, self.client_ip);
                }
                Ok(())
            }
            ClientFrame::Typing => {
                self.room.typing(id);
                Ok(())
            }
            ClientFrame::Nick { nick } => {
                let nick = parse_required_nick(&nick).map_err(RoomError::BadNick)?;
                self.room.rename(id, nick)
            }
            ClientFrame::Edit { seq, text } => self.room.edit(id, seq, text),
            // An owner may delete anyone's message (a notice says so).
            ClientFrame::Delete { seq } => match self.room.delete(id, seq) {
                Err(RoomError::NotYours) => match self.room.delete_as_owner(Actor::Member(id), seq)
                {
                    Err(RoomError::NotOwner) => Err(RoomError::NotYours),
                    other => other,
                },
                other => other,
            },
            ClientFrame::Topic { text } => self.room.set_topic(Actor::Member(id), text),
            ClientFrame::Kick { member, ban_secs, reason } => {
                self.room.kick(id, member, ban_secs, reason)
            }
            ClientFrame::SlowMode { secs } => self.room.set_slow_mode(id, secs),
            ClientFrame::Lock { locked } => self.room.set_locked(id, locked),
            ClientFrame::Report { seq, reason } => {
                self.room.report(id, seq, reason)?;
                self.conn.push(&encode(&ServerFrame::moderation_notice(format!(
                    "Message {seq} was reported to the operators."
                ))));
                Ok(())
            }
            ClientFrame::History { before, limit } => {
                self.conn.push(&self.room.history(before, limit));
                Ok(())
            }
            ClientFrame::Vote { seq, value } => self.room.vote(&self.conn, id, seq, value),
            ClientFrame::Join { .. } => Ok(()),
        }
    }
}
