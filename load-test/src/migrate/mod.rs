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
//! /admin/backends/{id}/evacuate`. It runs in one process (no workers).//!
//! This file sets the scene and sums up; `member.rs` is one member's side.

mod member;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use http::Method;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cli::MigrateArgs;
use crate::net::{self, Http};
use crate::stats::{Percentiles, new_histogram};
use member::{Member, MemberResult, RoomCount};

/// Members connecting from one source address.
const MEMBERS_PER_SOURCE: usize = 20;

/// The report of one run.
#[derive(Debug, Default, Serialize)]
pub struct MigrateReport {
    pub shape: String,
    pub rooms: usize,
    pub members: usize,
    pub messages_sent: u64,
    pub move_answer: Value,
    pub move_took_ms: u64,
    pub members_followed: usize,
    pub pause_ms: Percentiles,
    /// When members got through each step of following the move, in ms
    /// after it was asked for (`closed`, `located`, `connected`,
    /// `welcomed`, `message`; see `member::Steps`).
    pub steps_ms: Vec<(&'static str, Percentiles)>,
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
        let MigrateReport {
            shape,
            rooms,
            members,
            messages_sent,
            move_answer,
            move_took_ms,
            members_followed,
            pause_ms: Percentiles { p50_ms, p90_ms, p99_ms, max_ms, .. },
            steps_ms,
            lost,
            lost_gaps,
            lost_tail,
            lost_unconfirmed,
            duplicates,
            failed_members,
        } = self;
        let steps: String = steps_ms
            .iter()
            .map(|(step, p)| {
                format!(
                    "  {step:<10} p50 {:>5.0}  p99 {:>5.0}  max {:>5.0}\n",
                    p.p50_ms, p.p99_ms, p.max_ms
                )
            })
            .collect();
        format!(
            "migrate ({shape}): {rooms} room(s), {members} members, {messages_sent} messages sent\n\
             move: {move_took_ms} ms  answer {move_answer}\n\
             members that followed: {members_followed}/{members}\n\
             pause seen by members (last message before → first after), ms: \
             p50 {p50_ms:.0}  p90 {p90_ms:.0}  p99 {p99_ms:.0}  max {max_ms:.0}\n\
             members' steps, ms after the move was asked for:\n{steps}\
             lost {lost} (gaps {lost_gaps}, tail {lost_tail}, unconfirmed {lost_unconfirmed})  \
             duplicates {duplicates}  members failed {failed_members}\n",
        )
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
        results.push(task.await.unwrap_or_else(|e| MemberResult::failed(e.to_string())));
    }
    if let Some(e) = results.iter().find_map(MemberResult::error) {
        eprintln!("load-test migrate: a member failed: {e}");
    }
    let mut report = MigrateReport {
        shape: if evacuate { "evacuate".into() } else { "one room".into() },
        rooms,
        members,
        messages_sent: counts.iter().map(|c| c.confirmed.load(Ordering::Relaxed)).sum(),
        move_answer,
        move_took_ms,
        ..MigrateReport::default()
    };
    let mut pauses = new_histogram();
    for (i, r) in results.iter().enumerate() {
        let confirmed = counts[i / size].confirmed.load(Ordering::Relaxed);
        r.add_to(&mut report, confirmed, &mut pauses);
    }
    report.pause_ms = Percentiles::of(&pauses);
    report.steps_ms = step_percentiles(&results, started);
    Ok(report)
}

/// Per step of following the move, when members got there (ms after
/// `started`).
fn step_percentiles(
    results: &[MemberResult],
    started: Instant,
) -> Vec<(&'static str, Percentiles)> {
    let names = member::Steps::default().named().map(|(name, _)| name);
    (0..names.len())
        .map(|i| {
            let mut h = new_histogram();
            for t in results.iter().filter_map(|r| r.steps.named()[i].1) {
                let _ = h.record(t.saturating_duration_since(started).as_micros() as u64);
            }
            (names[i], Percentiles::of(&h))
        })
        .collect()
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
