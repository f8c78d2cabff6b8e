//! One member's presence in a room, across connections.
//!
//! [`run`] locates the room through aux-srv, connects, joins, and then
//! relays: [`Command`]s from the person (or script) become frames, frames
//! become [`Event`]s. When the connection ends it decides what that means —
//! the room moved (`closing moved`, close 1012: join at once where the
//! `closing` said it went, or ask aux-srv again if it did not say),
//! the connection dropped (again, after a backoff with jitter), or the room
//! is done with us (deleted, kicked, replaced, refused: stop with an error)
//! — and rejoins with `resume {epoch, after_seq}` and `reclaim` so nothing
//! is shown twice or missed. Unconfirmed sends go again ([`Outbox`]).

use std::time::Duration;

use common::ws::{ClientFrame, Resume, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::backoff::Backoff;
use crate::error::CliError;
use crate::frames::{self, Incoming, Welcome};
use crate::handshake::{Ended, await_welcome, close, ended_by_server, lost};
use crate::locate::locate;
use crate::outbox::{Outbox, Pending};
use crate::room_url::RoomUrl;
use crate::transport::{Connector, Socket};

/// What the session needs to know.
#[derive(Clone)]
pub struct SessionConfig {
    pub room: RoomUrl,
    pub nick: Option<String>,
    pub password: Option<String>,
    pub connector: Connector,
    /// Nothing heard for this long (the server pings every 30 s): the
    /// connection is taken for dead.
    pub idle_timeout: Duration,
    pub backoff: Backoff,
}

/// What the person (or script) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Send {
        text: String,
        reply_to: Option<u64>,
    },
    Nick(String),
    /// Vote on message `seq`: 1 up, -1 down, 0 takes the vote back. Sent
    /// only while connected (a vote is not worth keeping for later).
    Vote {
        seq: u64,
        value: i64,
    },
    /// Leave. With `flush`, only once every send is confirmed or refused.
    Quit {
        flush: bool,
    },
}

/// What happened, for the screen or stdout.
#[derive(Debug, Clone)]
pub enum Event {
    Connecting,
    /// Joined (again). `replace`: what was shown is stale (first join, or
    /// the room was created anew); otherwise `welcome.messages` follow on.
    Joined {
        welcome: Box<Welcome>,
        files_url: String,
        replace: bool,
    },
    Frame(ServerFrame),
    /// The connection is gone; the next attempt comes after `retry_in`.
    Offline {
        why: String,
        retry_in: Duration,
    },
    /// A send the server (or our own check of its limits) refused for good.
    SendFailed {
        text: String,
        code: String,
        message: String,
    },
}

/// Most sends waiting at once; the command channel waits when it is full.
const OUTBOX_CAPACITY: usize = 256;

struct Session {
    config: SessionConfig,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    outbox: Outbox,
    nick: Option<String>,
    epoch: Option<u64>,
    last_seq: u64,
    token: Option<String>,
    my_id: Option<u64>,
    max_text_chars: Option<u32>,
    quitting: Option<bool>,
    /// Where the last `closing moved` said the room went.
    moved_to: Option<String>,
    /// The drawings' address aux-srv gave last (a move does not change it).
    files_url: String,
}

/// Runs until the person quits (`Ok`) or the room refuses us (`Err`).
pub async fn run(
    config: SessionConfig,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) -> Result<(), CliError> {
    let nick = config.nick.clone();
    let mut session = Session {
        config,
        commands,
        events,
        outbox: Outbox::new(OUTBOX_CAPACITY),
        nick,
        epoch: None,
        last_seq: 0,
        token: None,
        my_id: None,
        max_text_chars: None,
        quitting: None,
        moved_to: None,
        files_url: String::new(),
    };
    session.run().await
}

impl Session {
    async fn run(&mut self) -> Result<(), CliError> {
        let mut backoff = self.config.backoff.clone();
        loop {
            self.emit(Event::Connecting).await;
            let why = match self.connect().await {
                Ok(Some((socket, welcome, files_url))) => {
                    backoff.reset();
                    self.welcomed(welcome, files_url).await;
                    match self.serve(socket).await {
                        Ended::Quit => return Ok(()),
                        Ended::Moved => {
                            let to = self.moved_to.as_deref().unwrap_or("where aux-srv says");
                            tracing::info!(to, "the room moved; following it");
                            continue;
                        }
                        Ended::Lost(why) => why,
                        Ended::Fatal(e) => return Err(e),
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) if e.is_transient() => e.to_string(),
                Err(e) => return Err(e),
            };
            self.outbox.disconnected();
            let wait = backoff.next_wait();
            tracing::info!(%why, ?wait, "connection lost; reconnecting");
            self.emit(Event::Offline { why, retry_in: wait }).await;
            if !self.wait_offline(wait).await {
                return Ok(());
            }
        }
    }

    async fn emit(&self, event: Event) {
        // A closed receiver means the UI is gone; it quits us next.
        let _ = self.events.send(event).await;
    }

    fn done(&self) -> bool {
        match self.quitting {
            Some(flush) => !flush || self.outbox.is_empty(),
            None => false,
        }
    }

    /// Waits `wait`, taking commands meanwhile. False when told to quit.
    async fn wait_offline(&mut self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        loop {
            if self.done() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return true,
                command = self.commands.recv(), if self.takes_commands() => {
                    self.command_offline(command).await;
                }
            }
        }
    }

    fn takes_commands(&self) -> bool {
        self.quitting.is_none() && self.outbox.has_room()
    }

    /// Locate, connect and join. `Ok(None)`: told to quit meanwhile.
    async fn connect(&mut self) -> Result<Option<(Socket, Box<Welcome>, String)>, CliError> {
        let config = self.config.clone();
        let resume = self.epoch.map(|epoch| Resume {
            epoch,
            after_seq: self.last_seq,
            // This client shows no member list, so it keeps none to offer.
            has_members: false,
        });
        let join = frames::join(
            self.nick.as_deref(),
            config.password.as_deref(),
            resume,
            self.token.as_deref(),
        );
        let (moved_to, files_url) = (self.moved_to.take(), self.files_url.clone());
        let attempt = async move {
            // Straight to where the room moved; aux-srv only if that fails.
            if let Some(url) = moved_to {
                match join_at(&config, &url, &join).await {
                    Ok((socket, welcome)) => return Ok((socket, welcome, files_url)),
                    Err(e) => tracing::info!(%url, error = %e, "not there; asking aux-srv"),
                }
            }
            let room = locate(&config.connector, &config.room, config.password.as_deref()).await?;
            let (socket, welcome) = join_at(&config, &room.ws_url, &join).await?;
            Ok((socket, welcome, room.files_url))
        };
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                result = &mut attempt => return result.map(Some),
                command = self.commands.recv(), if self.takes_commands() => {
                    self.command_offline(command).await;
                    if self.quitting == Some(false) {
                        return Ok(None);
                    }
                }
            }
        }
    }

    async fn command_offline(&mut self, command: Option<Command>) {
        match command.unwrap_or(Command::Quit { flush: false }) {
            Command::Send { text, reply_to } => self.queue_send(text, reply_to).await,
            Command::Nick(nick) => self.nick = Some(nick),
            Command::Vote { seq, .. } => tracing::debug!(seq, "offline: vote not sent"),
            Command::Quit { flush } => self.quitting = Some(flush),
        }
    }

    /// Checks a send against what we know of the room's limits, then
    /// queues it: a refusal we can predict costs no round trip.
    async fn queue_send(&mut self, text: String, reply_to: Option<u64>) {
        match self.predictable_refusal(&text, reply_to) {
            Some((code, message)) => {
                self.emit(Event::SendFailed { text, code: code.into(), message }).await;
            }
            None => self.outbox.push(text, reply_to),
        }
    }

    fn predictable_refusal(&self, text: &str, reply_to: Option<u64>) -> Option<(&str, String)> {
        if text.trim().is_empty() {
            return Some(("empty_message", "An empty message is not sent.".into()));
        }
        if let Some(max) = self.max_text_chars.filter(|max| text.chars().count() > *max as usize) {
            return Some(("text_too_long", format!("A message has at most {max} characters.")));
        }
        reply_to
            .filter(|seq| *seq == 0 || *seq > self.last_seq)
            .map(|seq| ("bad_reply_to", format!("There is no message {seq} to reply to.")))
    }

    async fn welcomed(&mut self, welcome: Box<Welcome>, files_url: String) {
        self.files_url.clone_from(&files_url);
        let replace = !welcome.resumed || self.epoch != Some(welcome.epoch);
        for message in &welcome.messages {
            if let Some(id) = &message.client_id {
                self.outbox.confirm(id);
            }
        }
        let newest = welcome.messages.iter().map(|m| m.seq).max().unwrap_or(0);
        self.last_seq =
            if replace { welcome.last_seq } else { self.last_seq.max(welcome.last_seq) };
        self.last_seq = self.last_seq.max(newest);
        self.epoch = Some(welcome.epoch);
        self.my_id = Some(welcome.you.id);
        self.nick = Some(welcome.you.nick.clone());
        self.token = welcome.token.clone().or(self.token.take());
        self.max_text_chars = welcome.limits.as_ref().map(|l| l.max_text_chars);
        self.emit(Event::Joined { welcome, files_url, replace }).await;
    }

    /// Relays until the connection ends.
    async fn serve(&mut self, mut socket: Socket) -> Ended {
        let mut closing_reason: Option<String> = None;
        loop {
            if self.done() {
                close(&mut socket).await;
                return Ended::Quit;
            }
            if let Some(text) = self.outbox.next_frame(Instant::now().into_std()) {
                if let Err(e) = socket.send(Message::text(text)).await {
                    return Ended::Lost(e.to_string());
                }
            }
            let retry_at = self.outbox.retry_at().map(Instant::from_std);
            tokio::select! {
                read = tokio::time::timeout(self.config.idle_timeout, socket.next()) => {
                    let message = match read {
                        Err(_) => return Ended::Lost("the server went silent".into()),
                        Ok(None) => return Ended::Lost("the connection closed".into()),
                        Ok(Some(Err(e))) => return Ended::Lost(e.to_string()),
                        Ok(Some(Ok(message))) => message,
                    };
                    match message {
                        Message::Text(text) => match frames::parse(&text) {
                            Ok(Incoming::Closing { reason, ws_url }) => {
                                if reason == "moved" {
                                    self.moved_to = ws_url;
                                }
                                closing_reason = Some(reason);
                            }
                            Ok(Incoming::Frame(frame)) => {
                                if let Some(ended) = self.on_frame(frame).await {
                                    return ended;
                                }
                            }
                            Ok(Incoming::Welcome(_) | Incoming::Unknown(_)) => {}
                            Err(why) => tracing::warn!(%why, "unreadable frame ignored"),
                        },
                        Message::Close(frame) => {
                            let code = frame.map(|f| u16::from(f.code));
                            return ended_by_server(code, closing_reason.as_deref());
                        }
                        _ => {}
                    }
                }
                command = self.commands.recv(), if self.takes_commands() => {
                    let command = command.unwrap_or(Command::Quit { flush: false });
                    let direct = match &command {
                        Command::Nick(nick) => Some(ClientFrame::Nick { nick: nick.clone() }),
                        Command::Vote { seq, value } => {
                            Some(ClientFrame::Vote { seq: *seq, value: *value })
                        }
                        _ => None,
                    };
                    if let Some(frame) = direct {
                        if let Err(e) = socket.send(Message::text(frames::encode(&frame))).await {
                            return Ended::Lost(e.to_string());
                        }
                    } else {
                        self.command_offline(Some(command)).await;
                    }
                }
                _ = sleep_until_some(retry_at) => {}
            }
        }
    }

    async fn on_frame(&mut self, frame: ServerFrame) -> Option<Ended> {
        match &frame {
            ServerFrame::Message(message) => {
                self.last_seq = self.last_seq.max(message.seq);
                if let Some(id) = &message.client_id {
                    self.outbox.confirm(id);
                }
            }
            ServerFrame::Nick { member, .. } if Some(member.id) == self.my_id => {
                self.nick = Some(member.nick.clone());
            }
            ServerFrame::Error { code, .. } if code == "room_not_found" => {
                return Some(Ended::Lost("the room is not on this backend any more".into()));
            }
            ServerFrame::Error { code, message, retry_after_ms } => {
                let now = Instant::now().into_std();
                if let Some(Pending { text, .. }) = self.outbox.refused(code, *retry_after_ms, now)
                {
                    let (code, message) = (code.clone(), message.clone());
                    self.emit(Event::SendFailed { text, code, message }).await;
                    return None;
                }
                if retry_after_ms.is_some() || code == "room_moving" {
                    return None; // a send that will go again; not news
                }
            }
            _ => {}
        }
        self.emit(Event::Frame(frame)).await;
        None
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Opens a websocket to `url`, joins with `join` and waits for the welcome.
async fn join_at(
    config: &SessionConfig,
    url: &str,
    join: &str,
) -> Result<(Socket, Box<Welcome>), CliError> {
    let mut socket = config.connector.websocket(url).await?;
    socket.send(Message::text(join.to_owned())).await.map_err(|e| lost(url, e))?;
    let welcome = await_welcome(&mut socket, url, config.idle_timeout, join).await?;
    Ok((socket, welcome))
}
