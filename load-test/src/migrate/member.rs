//! One member of `load-test migrate`: joins, sends, follows moves, and
//! counts what it saw.

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
use serde_json::{Value, json};
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

/// What one member saw.
#[derive(Debug, Default)]
pub(super) struct MemberResult {
    pause: Option<Duration>,
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
    /// Asks aux-srv where the room is, connects and joins; with `state`,
    /// as that member again (`resume`, `reclaim`).
    async fn join(&self, state: Option<&State>) -> anyhow::Result<(Conn, Value)> {
        let answer = match self.http.room(&self.aux, Method::PUT, &self.room).await? {
            Ok(answer) => answer,
            Err(e) => bail!("room lookup: {e}"),
        };
        let (host, port) = net::ws_target(&answer.ws_url)?;
        let addr: SocketAddr = net::resolve(&host, port).await?;
        let ws = net::connect_ws(&answer.ws_url, addr, Some(self.source)).await?;
        let (mut sink, mut stream) = ws.split();
        let mut join = json!({"type": "join", "nick": format!("mv{}", self.index)});
        if let Some(s) = state {
            join = json!({
                "type": "join",
                "resume": {"epoch": s.epoch, "after_seq": s.last_seq},
                "reclaim": s.token,
            });
        }
        sink.send(Message::text(join.to_string())).await?;
        let welcome = tokio::time::timeout(net::REQUEST_TIMEOUT, async {
            while let Some(msg) = stream.next().await {
                if let Message::Text(text) = msg? {
                    let frame: Value = serde_json::from_str(&text)?;
                    match frame["type"].as_str() {
                        Some("welcome") => return Ok(frame),
                        Some("error") => bail!("join refused: {}", frame["code"]),
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
    fn note(&self, state: &mut State, m: &Value, pause_from: &mut Option<Instant>) {
        let Some(seq) = m["seq"].as_u64() else { return };
        if let Some(at) = pause_from.take() {
            state.result.pause = Some(at.elapsed());
        }
        if seq <= state.last_seq {
            state.result.duplicates += 1;
            return;
        }
        state.result.gaps += seq - state.last_seq - 1;
        state.last_seq = seq;
        if let Some(c) = m["client_id"].as_str() {
            if state.outbox.remove(c).is_some() {
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
        let first = self.join(None).await;
        drop(permit);
        joined.fetch_add(1, Ordering::Relaxed);
        let (mut conn, welcome) = match first {
            Ok(joined) => joined,
            Err(e) => return MemberResult::failed(format!("{e:#}")),
        };
        let mut state = State {
            token: welcome["you"]["token"].as_str().unwrap_or_default().to_owned(),
            epoch: welcome["epoch"].as_u64().unwrap_or(0),
            id: welcome["you"]["id"].as_u64().unwrap_or(0),
            last_seq: welcome["last_seq"].as_u64().unwrap_or(0),
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
                            let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                            match frame["type"].as_str() {
                                Some("message") => {
                                    last_message = Instant::now();
                                    self.note(&mut state, &frame, &mut pause_from);
                                }
                                Some("error") if frame["code"] == "room_moving" => {
                                    let wait = frame["retry_after_ms"].as_u64().unwrap_or(500);
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
                        match self.rejoin(&mut state).await {
                            Ok((new_conn, welcome)) => {
                                conn = new_conn;
                                resend_at = None;
                                state.result.follows += 1;
                                for m in welcome["messages"].as_array().into_iter().flatten() {
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

    async fn rejoin(&self, state: &mut State) -> anyhow::Result<(Conn, Value)> {
        let deadline = Instant::now() + REJOIN_FOR;
        loop {
            match self.join(Some(state)).await {
                Ok((conn, welcome)) => {
                    if welcome["epoch"].as_u64() != Some(state.epoch) {
                        bail!("the room started over (epoch changed)");
                    }
                    if welcome["you"]["id"].as_u64() != Some(state.id) {
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
