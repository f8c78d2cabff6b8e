//! One member of `load-test migrate`: joins, sends, follows moves, and
//! counts what it saw. It follows a move as the web client does: straight
//! to the URL `closing moved` names (aux-srv only if that fails), and after
//! a `closing moved` it offers the member list it kept
//! (`resume.has_members`) — it keeps none, since it shows nothing, but it
//! stands in for clients that do.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use http::Method;
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::MigrateReport;
use crate::net::{self, Http, Ws};

/// Longest a member keeps trying to join again after a move.
const REJOIN_FOR: Duration = Duration::from_secs(30);

/// One room's shared tallies.
#[derive(Default)]
pub(super) struct RoomCount {
    /// Messages its senders saw confirmed.
    pub(super) confirmed: AtomicU64,
    /// Sends not confirmed yet.
    pub(super) unconfirmed: AtomicU64,
}

/// When one member went through each step of following a move: its
/// connection closed, aux-srv answered where the room is, the websocket to
/// the new backend opened, the `welcome` came, the first message came.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Steps {
    pub(super) closed: Option<Instant>,
    pub(super) located: Option<Instant>,
    pub(super) connected: Option<Instant>,
    pub(super) welcomed: Option<Instant>,
    pub(super) message: Option<Instant>,
}

impl Steps {
    /// The steps by name, in order.
    pub(super) fn named(&self) -> [(&'static str, Option<Instant>); 5] {
        [
            ("closed", self.closed),
            ("located", self.located),
            ("connected", self.connected),
            ("welcomed", self.welcomed),
            ("message", self.message),
        ]
    }
}

/// What one member saw.
#[derive(Debug, Default)]
pub(super) struct MemberResult {
    pause: Option<Duration>,
    /// Its first move, step by step.
    pub(super) steps: Steps,
    follows: u32,
    last_seq: u64,
    gaps: u64,
    duplicates: u64,
    unconfirmed: u64,
    error: Option<String>,
}

impl MemberResult {
    /// A member that could not run at all.
    pub(super) fn failed(error: String) -> Self {
        MemberResult { error: Some(error), ..Default::default() }
    }

    pub(super) fn error(&self) -> Option<&String> {
        self.error.as_ref()
    }

    /// Adds what this member saw to the run's `report` and its pause to
    /// `pauses`; `confirmed` is how many messages its room confirmed in all.
    pub(super) fn add_to(
        &self,
        report: &mut MigrateReport,
        confirmed: u64,
        pauses: &mut Histogram<u64>,
    ) {
        let tail = confirmed.saturating_sub(self.last_seq);
        report.lost += self.gaps + tail + self.unconfirmed;
        report.lost_gaps += self.gaps;
        report.lost_tail += tail;
        report.lost_unconfirmed += self.unconfirmed;
        report.duplicates += self.duplicates;
        report.members_followed += usize::from(self.follows > 0);
        report.failed_members += usize::from(self.error.is_some());
        if let Some(p) = self.pause {
            let _ = pauses.record(p.as_micros() as u64);
        }
    }
}

pub(super) struct Member {
    pub(super) aux: String,
    pub(super) room: String,
    pub(super) index: usize,
    pub(super) source: Ipv4Addr,
    pub(super) http: Http,
    /// Send one message every this often (senders only).
    pub(super) every: Option<Duration>,
    pub(super) count: Arc<RoomCount>,
    pub(super) text_bytes: usize,
}

/// A message as this member reads it: where it is in the room's order and
/// whose send it confirms.
#[derive(Deserialize)]
struct Seen {
    seq: u64,
    #[serde(default)]
    client_id: Option<String>,
}

/// Who `welcome` says this member is.
#[derive(Deserialize)]
struct You {
    id: u64,
    #[serde(default)]
    token: String,
}

/// The fields of a server frame this member reads (a `message`, an `error`
/// or a `welcome`); the rest, the member list among it, is skipped without
/// being built.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
    #[serde(default)]
    epoch: Option<u64>,
    #[serde(default)]
    you: Option<You>,
    #[serde(default)]
    last_seq: Option<u64>,
    #[serde(default)]
    messages: Vec<Seen>,
    /// Why a `closing` came, and where a `closing moved` says the room went.
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    ws_url: Option<String>,
}

impl Frame {
    /// The message this frame is, if it is one.
    fn message(self) -> Option<Seen> {
        (self.kind == "message").then_some(Seen { seq: self.seq?, client_id: self.client_id })
    }
}

struct Conn {
    sink: SplitSink<Ws, Message>,
    stream: SplitStream<Ws>,
}

struct State {
    token: String,
    epoch: u64,
    id: u64,
    last_seq: u64,
    outbox: BTreeMap<String, String>,
    result: MemberResult,
}

fn send_frame(client_id: &str, text: &str) -> Message {
    Message::text(json!({"type": "send", "text": text, "client_id": client_id}).to_string())
}

impl Member {
    /// Connects to `ws_url` (`None`: asks aux-srv where the room is) and
    /// joins; with `state`, as that member again (`resume`, `reclaim`; its
    /// member list offered when `at_move`).
    async fn join(
        &self,
        ws_url: Option<String>,
        state: Option<(&State, bool)>,
        steps: &mut Steps,
    ) -> anyhow::Result<(Conn, Frame)> {
        let ws_url = match ws_url {
            Some(url) => url,
            None => match self.http.room(&self.aux, Method::PUT, &self.room).await? {
                Ok(answer) => answer.ws_url,
                Err(e) => bail!("room lookup: {e}"),
            },
        };
        steps.located = Some(Instant::now());
        let (host, port) = net::ws_target(&ws_url)?;
        let addr: SocketAddr = net::resolve(&host, port).await?;
        let ws = net::connect_ws(&ws_url, addr, Some(self.source)).await?;
        steps.connected = Some(Instant::now());
        let (mut sink, mut stream) = ws.split();
        let mut join = json!({"type": "join", "nick": format!("mv{}", self.index)});
        if let Some((s, at_move)) = state {
            join = json!({
                "type": "join",
                "resume": {"epoch": s.epoch, "after_seq": s.last_seq, "has_members": at_move},
                "reclaim": s.token,
            });
        }
        sink.send(Message::text(join.to_string())).await?;
        let welcome = tokio::time::timeout(net::REQUEST_TIMEOUT, async {
            while let Some(msg) = stream.next().await {
                if let Message::Text(text) = msg? {
                    let frame: Frame = serde_json::from_str(&text)?;
                    match frame.kind.as_str() {
                        "welcome" => {
                            steps.welcomed = Some(Instant::now());
                            return Ok(frame);
                        }
                        "error" => bail!("join refused: {:?}", frame.code),
                        _ => {}
                    }
                }
            }
            bail!("closed before welcome")
        })
        .await
        .map_err(|_| anyhow!("no welcome in time"))??;
        Ok((Conn { sink, stream }, welcome))
    }

    /// Notes a `message`; true when it is one of ours (confirmed).
    fn note(&self, state: &mut State, m: Seen, pause_from: &mut Option<Instant>) {
        let seq = m.seq;
        if let Some(at) = pause_from.take() {
            state.result.pause = Some(at.elapsed());
            state.result.steps.message.get_or_insert_with(Instant::now);
        }
        if seq <= state.last_seq {
            state.result.duplicates += 1;
            return;
        }
        state.result.gaps += seq - state.last_seq - 1;
        state.last_seq = seq;
        if let Some(c) = m.client_id {
            if state.outbox.remove(&c).is_some() {
                self.count.confirmed.fetch_add(1, Ordering::Relaxed);
                self.count.unconfirmed.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    pub(super) async fn run(
        self,
        stop: CancellationToken,
        done: CancellationToken,
        hard: CancellationToken,
        gate: Arc<tokio::sync::Semaphore>,
        joined: Arc<AtomicUsize>,
    ) -> MemberResult {
        // Joins go `connect_concurrency` at a time; the rejoins after a move
        // are not held back (that is what is measured).
        let permit = gate.acquire_owned().await;
        let first = self.join(None, None, &mut Steps::default()).await;
        drop(permit);
        joined.fetch_add(1, Ordering::Relaxed);
        let (mut conn, welcome) = match first {
            Ok(joined) => joined,
            Err(e) => return MemberResult::failed(format!("{e:#}")),
        };
        let mut state = State {
            token: welcome.you.as_ref().map(|y| y.token.clone()).unwrap_or_default(),
            epoch: welcome.epoch.unwrap_or(0),
            id: welcome.you.as_ref().map_or(0, |y| y.id),
            last_seq: welcome.last_seq.unwrap_or(0),
            outbox: BTreeMap::new(),
            result: MemberResult::default(),
        };
        let mut last_message = Instant::now();
        let mut pause_from: Option<Instant> = None;
        let mut sent = 0u64;
        let mut tick = self.every.map(|every| {
            let start = tokio::time::Instant::now() + every.mul_f64(rand::random::<f64>());
            tokio::time::interval_at(start, every)
        });
        let filler = "x".repeat(self.text_bytes);
        // After `room_moving`: when to send the unconfirmed ones again (the
        // close of the move usually comes first, and the rejoin sends them).
        let mut resend_at: Option<tokio::time::Instant> = None;
        // Where the last `closing moved` said the room went (`None` inside:
        // it did not say), if one came on this connection.
        let mut moved_to: Option<Option<String>> = None;
        // Set once `done` fired while this member was behind.
        let caught_up = CancellationToken::new();
        loop {
            if caught_up.is_cancelled()
                && state.last_seq >= self.count.confirmed.load(Ordering::Relaxed)
            {
                break;
            }
            tokio::select! {
                // Done: leave once this member has every confirmed message
                // (or the drain is over, `hard`).
                () = done.cancelled(), if !caught_up.is_cancelled() => {
                    if state.last_seq >= self.count.confirmed.load(Ordering::Relaxed) {
                        break;
                    }
                    caught_up.cancel(); // from now on, check after each frame
                }
                () = hard.cancelled() => break,
                () = async { tokio::time::sleep_until(resend_at.unwrap()).await }, if resend_at.is_some() => {
                    resend_at = None;
                    for (c, t) in &state.outbox {
                        let _ = conn.sink.send(send_frame(c, t)).await;
                    }
                }
                _ = async { tick.as_mut().unwrap().tick().await }, if tick.is_some() && !stop.is_cancelled() => {
                    // The tick may have fired as `stop` came: no sends after it.
                    if stop.is_cancelled() {
                        continue;
                    }
                    let client_id = format!("{}-{}", self.index, sent);
                    sent += 1;
                    let text = format!("{client_id} {filler}");
                    self.count.unconfirmed.fetch_add(1, Ordering::Relaxed);
                    let _ = conn.sink.send(send_frame(&client_id, &text)).await;
                    state.outbox.insert(client_id, text);
                }
                msg = conn.stream.next() => {
                    let closed = match msg {
                        Some(Ok(Message::Text(text))) => {
                            let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
                            match frame.kind.as_str() {
                                "message" => {
                                    last_message = Instant::now();
                                    if let Some(m) = frame.message() {
                                        self.note(&mut state, m, &mut pause_from);
                                    }
                                }
                                "closing" if frame.reason.as_deref() == Some("moved") => {
                                    moved_to = Some(frame.ws_url);
                                }
                                "error" if frame.code.as_deref() == Some("room_moving") => {
                                    let wait = frame.retry_after_ms.unwrap_or(500);
                                    resend_at.get_or_insert(
                                        tokio::time::Instant::now() + Duration::from_millis(wait),
                                    );
                                }
                                _ => {}
                            }
                            false
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => true,
                        Some(Ok(_)) => false,
                    };
                    if closed {
                        pause_from = Some(last_message);
                        let first_move = state.result.steps.closed.is_none();
                        let mut steps = Steps { closed: Some(Instant::now()), ..Steps::default() };
                        match self.rejoin(moved_to.take(), &mut state, &mut steps).await {
                            Ok((new_conn, welcome)) => {
                                if first_move {
                                    state.result.steps = steps;
                                }
                                conn = new_conn;
                                resend_at = None;
                                state.result.follows += 1;
                                for m in welcome.messages {
                                    self.note(&mut state, m, &mut pause_from);
                                }
                                for (c, t) in &state.outbox {
                                    let _ = conn.sink.send(send_frame(c, t)).await;
                                }
                            }
                            Err(e) => {
                                state.result.error = Some(format!("{e:#}"));
                                break;
                            }
                        }
                    }
                }
            }
        }
        state.result.last_seq = state.last_seq;
        state.result.unconfirmed = state.outbox.len() as u64;

        let _ = conn.sink.send(Message::Close(None)).await;
        state.result
    }

    /// Joins again as the same member: after a `closing moved` (`moved`),
    /// at the URL it named first, then wherever aux-srv says.
    async fn rejoin(
        &self,
        moved: Option<Option<String>>,
        state: &mut State,
        steps: &mut Steps,
    ) -> anyhow::Result<(Conn, Frame)> {
        let deadline = Instant::now() + REJOIN_FOR;
        let at_move = moved.is_some();
        let mut ws_url = moved.flatten();
        loop {
            match self.join(ws_url.take(), Some((state, at_move)), steps).await {
                Ok((conn, welcome)) => {
                    if welcome.epoch != Some(state.epoch) {
                        bail!("the room started over (epoch changed)");
                    }
                    if welcome.you.as_ref().map(|y| y.id) != Some(state.id) {
                        bail!("came back as another member");
                    }
                    return Ok((conn, welcome));
                }
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
}
