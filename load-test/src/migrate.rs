//! `load-test migrate`: rooms moving between backends under load, as members
//! feel it. Members follow a move the way the web client does (`closing
//! moved`/1012 → ask aux-srv again → join with `resume` and `reclaim`,
//! re-send unconfirmed messages by `client_id`); each one measures its
//! *pause*: from the last message it got before its connection closed to
//! the first it got after joining again. Losses are counted per member:
//! seqs skipped, seqs seen twice, seqs never seen by the end.
//!
//! Two shapes: one room (`--members 1000 --rate 100`) moved with
//! `POST /admin/rooms/{room}/move`; or many small rooms (`--rooms 2000
//! --room-size 5`) all placed on one backend, then `POST
//! /admin/backends/{id}/evacuate`. It runs in one process (no workers).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http::Method;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::cli::MigrateArgs;
use crate::net::{self, Http, Ws};
use crate::stats::{Percentiles, new_histogram};

/// Members connecting from one source address.
const MEMBERS_PER_SOURCE: usize = 20;

/// Longest a member keeps trying to join again after a move.
const REJOIN_FOR: Duration = Duration::from_secs(30);

/// One room's shared tallies.
#[derive(Default)]
struct RoomCount {
    /// Messages its senders saw confirmed.
    confirmed: AtomicU64,
    /// Sends not confirmed yet.
    unconfirmed: AtomicU64,
}

/// What one member saw.
#[derive(Debug, Default)]
struct MemberResult {
    pause: Option<Duration>,
    follows: u32,
    last_seq: u64,
    gaps: u64,
    duplicates: u64,
    unconfirmed: u64,
    error: Option<String>,
}

/// The report of one run.
#[derive(Debug, Serialize)]
pub struct MigrateReport {
    pub shape: String,
    pub rooms: usize,
    pub members: usize,
    pub messages_sent: u64,
    pub move_answer: Value,
    pub move_took_ms: u64,
    pub members_followed: usize,
    pub pause_ms: Percentiles,
    pub lost: u64,
    /// `lost`, by kind: seqs skipped; members that ended behind their room's
    /// confirmed messages; sends never confirmed.
    pub lost_gaps: u64,
    pub lost_tail: u64,
    pub lost_unconfirmed: u64,
    pub duplicates: u64,
    pub failed_members: usize,
}

impl MigrateReport {
    pub fn table(&self) -> String {
        format!(
            "migrate ({shape}): {rooms} room(s), {members} members, {sent} messages sent\n\
             move: {took} ms  answer {answer}\n\
             members that followed: {followed}/{members}\n\
             pause seen by members (last message before → first after), ms: \
             p50 {p50:.0}  p90 {p90:.0}  p99 {p99:.0}  max {max:.0}\n\
             lost {lost} (gaps {gaps}, tail {tail}, unconfirmed {unconfirmed})  duplicates {dups}  \
             members failed {failed}\n",
            shape = self.shape,
            rooms = self.rooms,
            members = self.members,
            sent = self.messages_sent,
            took = self.move_took_ms,
            answer = self.move_answer,
            followed = self.members_followed,
            p50 = self.pause_ms.p50_ms,
            p90 = self.pause_ms.p90_ms,
            p99 = self.pause_ms.p99_ms,
            max = self.pause_ms.max_ms,
            lost = self.lost,
            gaps = self.lost_gaps,
            tail = self.lost_tail,
            unconfirmed = self.lost_unconfirmed,
            dups = self.duplicates,
            failed = self.failed_members,
        )
    }
}

struct Member {
    aux: String,
    room: String,
    index: usize,
    source: Ipv4Addr,
    http: Http,
    /// Send one message every this often (senders only).
    every: Option<Duration>,
    count: Arc<RoomCount>,
    text_bytes: usize,
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

    async fn run(
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
            Err(e) => return MemberResult { error: Some(format!("{e:#}")), ..Default::default() },
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

/// Runs the scenario and returns its report.
pub async fn run(args: &MigrateArgs) -> anyhow::Result<MigrateReport> {
    net::raise_nofile_limit();
    let aux = args.common.aux.trim_end_matches('/').to_owned();
    let admin = args.admin.trim_end_matches('/').to_owned();
    let http = Http::new(None, 64);
    let evacuate = args.rooms > 1 || args.evacuate;
    let (rooms, size) = if evacuate { (args.rooms, args.room_size) } else { (1, args.members) };
    let run_id = format!("{:x}", rand::random::<u32>());
    let names: Vec<String> = (0..rooms).map(|i| format!("mig-{run_id}-{i}")).collect();

    // Place every room on one backend: the others are drained meanwhile.
    let backends =
        admin_call(&http, &admin, &args.admin_token, Method::GET, "/admin/backends", None).await?;
    let ids: Vec<String> = backends["backends"]
        .as_array()
        .context("backends")?
        .iter()
        .filter_map(|b| b["id"].as_str().map(str::to_owned))
        .collect();
    if ids.len() < 2 {
        bail!("migrate needs two backends or more");
    }
    let source = args.from.clone().unwrap_or_else(|| ids[0].clone());
    // The rooms go to the source: every other backend drains meanwhile.
    let drain_others = async |draining: bool| -> anyhow::Result<()> {
        for id in ids.iter().filter(|id| **id != source) {
            let path = format!("/admin/backends/{id}/drain");
            let body = Some(json!({ "draining": draining }));
            admin_call(&http, &admin, &args.admin_token, Method::POST, &path, body).await?;
        }
        Ok(())
    };
    drain_others(true).await?;
    let created = futures_util::stream::iter(names.iter())
        .map(|name| http.room(&aux, Method::PUT, name))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    drain_others(false).await?;
    for c in created {
        c?.map_err(|e| anyhow!("create: {e}"))?;
    }

    let stop = CancellationToken::new();
    let done = CancellationToken::new();
    let hard = CancellationToken::new();
    let counts: Vec<Arc<RoomCount>> = (0..rooms).map(|_| Arc::default()).collect();
    let joined = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let senders = if evacuate { 1 } else { args.senders.min(size) };
    let every = Duration::from_secs_f64(if evacuate {
        args.every.as_secs_f64()
    } else {
        senders as f64 / args.rate
    });
    let gate = Arc::new(tokio::sync::Semaphore::new(args.common.connect_concurrency.max(1)));
    for (r, name) in names.iter().enumerate() {
        for m in 0..size {
            let index = r * size + m;
            // People come from many addresses: 20 members per source
            // address, each with its own HTTP connection to aux-srv (whose
            // per-address connection limit a rejoin storm would hit).
            let source = net::source_addr(index / MEMBERS_PER_SOURCE);
            let member = Member {
                aux: aux.clone(),
                room: name.clone(),
                index,
                source,
                // No idle keep-alive: 10,000 members' idle connections
                // would fill aux-srv's connection limit.
                http: Http::new(Some(source), 0),
                every: (m < senders).then_some(every),
                count: counts[r].clone(),
                text_bytes: args.common.text_bytes,
            };
            let (stop, done, hard, joined, gate) =
                (stop.clone(), done.clone(), hard.clone(), joined.clone(), gate.clone());
            tasks.push(tokio::spawn(member.run(stop, done, hard, gate, joined)));
        }
    }
    let members = rooms * size;
    while joined.load(Ordering::Relaxed) < members {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Everyone has joined (or failed to); let the traffic run a moment.
    tokio::time::sleep(args.warmup).await;
    let started = Instant::now();
    let move_answer = if evacuate {
        let path = format!("/admin/backends/{source}/evacuate");
        admin_call(&http, &admin, &args.admin_token, Method::POST, &path, None).await?
    } else {
        let path = format!("/admin/rooms/{}/move", names[0]);
        admin_call(&http, &admin, &args.admin_token, Method::POST, &path, Some(json!({}))).await?
    };
    let move_took_ms =
        move_answer["took_ms"].as_u64().unwrap_or(started.elapsed().as_millis() as u64);
    tokio::time::sleep(args.after).await;
    stop.cancel();
    // Wait for the last sends to be confirmed, then for every member to see them.
    let drain_until = Instant::now() + args.common.drain;
    while Instant::now() < drain_until
        && counts.iter().any(|c| c.unconfirmed.load(Ordering::Relaxed) > 0)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done.cancel();
    // Members still behind (rejoining) get until the end of the drain.
    let hard_stop = hard.clone();
    let left = drain_until.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
    tokio::spawn(async move {
        tokio::time::sleep(left).await;
        hard_stop.cancel();
    });
    let mut results = Vec::new();
    for task in tasks {
        results.push(
            task.await.unwrap_or_else(|e| MemberResult {
                error: Some(e.to_string()),
                ..Default::default()
            }),
        );
    }
    let mut pauses = new_histogram();
    let (mut gaps, mut tail, mut unconfirmed) = (0, 0, 0);
    let mut duplicates = 0;
    let mut followed = 0;
    let mut failed = 0;
    for (i, r) in results.iter().enumerate() {
        let confirmed = counts[i / size].confirmed.load(Ordering::Relaxed);
        gaps += r.gaps;
        tail += confirmed.saturating_sub(r.last_seq);
        unconfirmed += r.unconfirmed;
        duplicates += r.duplicates;
        followed += usize::from(r.follows > 0);
        failed += usize::from(r.error.is_some());
        if let Some(p) = r.pause {
            let _ = pauses.record(p.as_micros() as u64);
        }
    }
    if let Some(e) = results.iter().find_map(|r| r.error.as_ref()) {
        eprintln!("load-test migrate: a member failed: {e}");
    }
    Ok(MigrateReport {
        shape: if evacuate { "evacuate".into() } else { "one room".into() },
        rooms,
        members,
        messages_sent: counts.iter().map(|c| c.confirmed.load(Ordering::Relaxed)).sum(),
        move_answer,
        move_took_ms,
        members_followed: followed,
        pause_ms: Percentiles::of(&pauses),
        lost: gaps + tail + unconfirmed,
        lost_gaps: gaps,
        lost_tail: tail,
        lost_unconfirmed: unconfirmed,
        duplicates,
        failed_members: failed,
    })
}

async fn admin_call(
    http: &Http,
    admin: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = format!("{admin}{path}");
    let (status, bytes) = http
        .call_with_auth(method, &url, token, body.map(|b| b.to_string()).unwrap_or_default())
        .await?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{url}: HTTP {status} {value}");
    }
    Ok(value)
}
