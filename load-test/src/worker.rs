//! A worker: one share of a run's members (or of its HTTP clients), in this
//! process or in a child process of its own.
//!
//! The conversation with the coordinator, in order:
//! worker → `Ready` (everyone joined) · coordinator → `Go {start_ms}` ·
//! worker → `Progress`… then `Drained` (the measured phase and the drain are
//! over; connections still open) · coordinator → `Close` · worker → `Done`.
//! A child process speaks it as JSON lines: the plan and the coordinator's
//! messages on stdin, its own on stdout.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aux_load;
use crate::cli::Scenario;
use crate::member::{MemberCtx, MemberSpec, SendPlan, Tail, Window, join};
use crate::net::{self, Http};
use crate::stats::{Collected, Collector, HistData, now_ms};

/// A room made during setup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomRef {
    pub name: String,
    pub ws_url: String,
}

/// Everything a worker needs to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerPlan {
    pub scenario: Scenario,
    pub rooms: Vec<RoomRef>,
    pub index: usize,
    pub workers: usize,
    pub sources: usize,
    /// Unique per run; prefixes the names this run creates.
    pub run_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    Go { start_ms: u64 },
    Close,
}

/// A worker's progress, once a second.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    pub connected: u64,
    pub counters: BTreeMap<String, u64>,
    /// Events per series so far.
    pub counts: BTreeMap<String, u64>,
    /// The last whole second's histogram per series.
    pub last_second: BTreeMap<String, HistData>,
}

/// Per room: the highest seq anyone here saw, and each member's last seq.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoomTail {
    pub max_seq: u64,
    pub members_last: Vec<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    pub collected: Collected,
    pub tails: BTreeMap<usize, RoomTail>,
    /// Rooms this worker created (aux scenario): a sample, for the restart check.
    pub created_sample: Vec<String>,
    pub connected: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    Ready { connected: u64 },
    Progress(Progress),
    Drained,
    Done(Box<WorkerResult>),
    Failed(String),
}

/// Which members a worker runs: every `workers`-th, from `index`.
pub fn my_members(total: usize, index: usize, workers: usize) -> impl Iterator<Item = usize> {
    (index..total).step_by(workers.max(1))
}

/// Runs one worker to the end. Never panics on the network: everything
/// that goes wrong is counted.
pub async fn run_worker(
    plan: WorkerPlan,
    mut from_coordinator: mpsc::UnboundedReceiver<ToWorker>,
    to_coordinator: mpsc::UnboundedSender<FromWorker>,
) {
    let out = to_coordinator.clone();
    let result = match plan.scenario {
        Scenario::Aux(_) => aux_load::run(&plan, &mut from_coordinator, &out).await,
        _ => run_members(&plan, &mut from_coordinator, &out).await,
    };
    match result {
        Ok(result) => {
            let _ = to_coordinator.send(FromWorker::Done(Box::new(result)));
        }
        Err(e) => {
            let _ = to_coordinator.send(FromWorker::Failed(format!("{e:#}")));
        }
    }
}

/// Waits for `Go`; `None` when the coordinator went away.
pub async fn wait_go(rx: &mut mpsc::UnboundedReceiver<ToWorker>) -> Option<u64> {
    match rx.recv().await? {
        ToWorker::Go { start_ms } => Some(start_ms),
        ToWorker::Close => None,
    }
}

/// The tokio instant of a Unix-ms time.
pub fn instant_of(unix_ms: u64) -> Instant {
    let now_ms = now_ms();
    if unix_ms >= now_ms {
        Instant::now() + Duration::from_millis(unix_ms - now_ms)
    } else {
        Instant::now()
            .checked_sub(Duration::from_millis(now_ms - unix_ms))
            .unwrap_or_else(Instant::now)
    }
}

/// Sends progress once a second until `stop`.
pub fn spawn_progress(
    stats: Collector,
    connected: Arc<AtomicUsize>,
    start_ms: u64,
    out: mpsc::UnboundedSender<FromWorker>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let collected_second = now_ms().saturating_sub(start_ms) / 1000;
            let last = collected_second.saturating_sub(1) as usize;
            let all = stats.collected();
            let progress = Progress {
                connected: connected.load(Ordering::Relaxed) as u64,
                counts: all.series.keys().map(|k| (k.clone(), stats.count(k))).collect(),
                last_second: all
                    .series
                    .keys()
                    .map(|k| (k.clone(), stats.second(k, last)))
                    .collect(),
                counters: all.counters,
            };
            if out.send(FromWorker::Progress(progress)).is_err() {
                return;
            }
        }
    });
}

struct MemberSetup {
    specs: Vec<MemberSpec>,
    /// Connecting is the measured phase (`connect`), not setup.
    storm: bool,
    /// Joins per second per worker in a storm (0 = unpaced).
    storm_rate: f64,
    in_flight: usize,
}

async fn member_setup(plan: &WorkerPlan) -> anyhow::Result<MemberSetup> {
    let total = plan.scenario.connections();
    let mut addrs = HashMap::new();
    let mut specs = Vec::new();
    let workers = plan.workers.max(1);
    let first_source = plan.scenario.common().first_source;
    let (storm, storm_rate, in_flight) = match &plan.scenario {
        Scenario::Connect(a) => (true, a.rate / workers as f64, a.in_flight),
        other => (false, 0.0, other.common().connect_concurrency),
    };
    for n in my_members(total, plan.index, workers) {
        let (room, send) = match &plan.scenario {
            Scenario::Fanout(a) => {
                let publishers = a.publishers.clamp(1, a.members.max(1));
                let send = if n < publishers {
                    SendPlan::Rate(a.rate / publishers as f64)
                } else {
                    SendPlan::Quiet
                };
                (0, send)
            }
            Scenario::Rooms(a) => {
                (n / a.room_size.max(1), SendPlan::Every(a.every_min, a.every_max))
            }
            Scenario::Idle(a) => (n / a.room_size.max(1), SendPlan::Quiet),
            Scenario::Connect(a) => (n / a.room_size.max(1), SendPlan::Quiet),
            Scenario::Aux(_) => unreachable!("aux has no members"),
            Scenario::Migrate(_) => unreachable!("migrate runs outside the coordinator"),
        };
        let room_ref = plan.rooms.get(room).context("fewer rooms than the plan needs")?;
        let addr = match addrs.get(&room_ref.ws_url) {
            Some(addr) => *addr,
            None => {
                let (host, port) = net::ws_target(&room_ref.ws_url)?;
                let addr = net::resolve(&host, port).await?;
                addrs.insert(room_ref.ws_url.clone(), addr);
                addr
            }
        };
        specs.push(MemberSpec {
            index: n,
            room,
            room_name: room_ref.name.clone(),
            ws_url: room_ref.ws_url.clone(),
            addr,
            source: Some(net::source_addr(first_source + n % plan.sources.max(1))),
            send,
        });
    }
    Ok(MemberSetup { specs, storm, storm_rate, in_flight: in_flight.max(1) })
}

async fn run_members(
    plan: &WorkerPlan,
    rx: &mut mpsc::UnboundedReceiver<ToWorker>,
    out: &mpsc::UnboundedSender<FromWorker>,
) -> anyhow::Result<WorkerResult> {
    let common = plan.scenario.common().clone();
    let setup = member_setup(plan).await?;
    let stats = Collector::default();
    let ctx = MemberCtx {
        stats: stats.clone(),
        http: Http::new(Some(net::source_addr(common.first_source + plan.index)), 64),
        aux: common.aux.clone(),
        lookup: !common.no_lookup,
        filler: "x".repeat(common.text_bytes),
    };
    let mine = setup.specs.len();
    let connected = Arc::new(AtomicUsize::new(0));
    let settled = Arc::new(AtomicUsize::new(0));
    let settled_note = Arc::new(tokio::sync::Notify::new());
    let permits = Arc::new(Semaphore::new(setup.in_flight));
    let (go_tx, go_rx) = watch::channel::<Option<Window>>(None);
    let (tail_tx, mut tail_rx) = mpsc::unbounded_channel::<Tail>();
    let close = CancellationToken::new();
    let tasks = tokio_util::task::TaskTracker::new();

    for (rank, spec) in setup.specs.into_iter().enumerate() {
        let (ctx, connected, settled, settled_note, permits) = (
            ctx.clone(),
            connected.clone(),
            settled.clone(),
            settled_note.clone(),
            permits.clone(),
        );
        let (mut go_rx, tail_tx, close) = (go_rx.clone(), tail_tx.clone(), close.clone());
        let (storm, storm_rate) = (setup.storm, setup.storm_rate);
        tasks.spawn(async move {
            let mut window = None;
            if storm {
                let Ok(w) = go_rx.wait_for(Option::is_some).await.map(|w| w.expect("set")) else {
                    return;
                };
                if storm_rate > 0.0 {
                    let at = w.start + Duration::from_secs_f64(rank as f64 / storm_rate);
                    tokio::time::sleep_until(at).await;
                }
                window = Some(w);
            }
            let joined = {
                let _permit = permits.acquire().await;
                if window.is_some_and(|w| Instant::now() >= w.end) {
                    ctx.stats.add("join_not_started", 1);
                    None
                } else {
                    join(&spec, &ctx).await.ok()
                }
            };
            if joined.is_some() {
                connected.fetch_add(1, Ordering::Relaxed);
            }
            settled.fetch_add(1, Ordering::Release);
            settled_note.notify_one();
            let Some(joined) = joined else {
                let _ = tail_tx.send(Tail { room: spec.room, last_seq: u64::MAX });
                return;
            };
            let window = match window {
                Some(w) => w,
                None => match go_rx.wait_for(Option::is_some).await {
                    Ok(w) => w.expect("set"),
                    Err(_) => return,
                },
            };
            joined.live(&spec, &ctx, window, tail_tx, close).await;
        });
    }
    tasks.close();
    drop(tail_tx);

    if !setup.storm {
        while settled.load(Ordering::Acquire) < mine {
            settled_note.notified().await;
        }
    }
    let _ = out.send(FromWorker::Ready { connected: connected.load(Ordering::Relaxed) as u64 });
    let Some(start_ms) = wait_go(rx).await else {
        close.cancel();
        anyhow::bail!("the coordinator went away");
    };
    stats.start(start_ms);
    let start = instant_of(start_ms);
    let end = start + common.duration;
    let window = Window { start, end, drain_until: end + common.drain };
    let _ = go_tx.send(Some(window));
    let progress_stop = CancellationToken::new();
    spawn_progress(stats.clone(), connected.clone(), start_ms, out.clone(), progress_stop.clone());

    // A member that never joined reports a tail of u64::MAX: not counted.
    let mut tails: BTreeMap<usize, RoomTail> = BTreeMap::new();
    for _ in 0..mine {
        let Some(tail) = tail_rx.recv().await else { break };
        let room = tails.entry(tail.room).or_default();
        if tail.last_seq != u64::MAX {
            room.max_seq = room.max_seq.max(tail.last_seq);
            room.members_last.push(tail.last_seq);
        }
    }
    // Storm members that never started settle after the window.
    tokio::time::sleep_until(window.drain_until).await;
    let _ = out.send(FromWorker::Drained);
    let _ = wait_close(rx).await;
    close.cancel();
    if tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await.is_err() {
        stats.add("close_timeout", 1);
    }
    progress_stop.cancel();
    Ok(WorkerResult {
        collected: stats.collected(),
        tails,
        created_sample: Vec::new(),
        connected: connected.load(Ordering::Relaxed) as u64,
    })
}

/// Waits for `Close` (or for the coordinator to go away).
pub async fn wait_close(rx: &mut mpsc::UnboundedReceiver<ToWorker>) -> Option<()> {
    loop {
        match rx.recv().await? {
            ToWorker::Close => return Some(()),
            ToWorker::Go { .. } => {}
        }
    }
}

/// The worker process: the plan and commands on stdin, reports on stdout.
pub async fn process_main(index: usize) -> anyhow::Result<()> {
    net::raise_nofile_limit();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let first = lines.next_line().await?.context("no plan on stdin")?;
    let plan: WorkerPlan = serde_json::from_str(&first).context("bad plan")?;
    anyhow::ensure!(plan.index == index, "plan for worker {} given to worker {index}", plan.index);
    let (to_worker, from_coordinator) = mpsc::unbounded_channel();
    let (to_coordinator, mut from_worker) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            match serde_json::from_str::<ToWorker>(&line) {
                Ok(msg) => {
                    if to_worker.send(msg).is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("load-test worker {index}: bad command: {e}"),
            }
        }
    });
    let worker = tokio::spawn(run_worker(plan, from_coordinator, to_coordinator));
    let mut stdout = tokio::io::stdout();
    while let Some(msg) = from_worker.recv().await {
        let mut line = serde_json::to_string(&msg)?;
        line.push('\n');
        stdout.write_all(line.as_bytes()).await?;
        stdout.flush().await?;
        if matches!(msg, FromWorker::Done(_) | FromWorker::Failed(_)) {
            break;
        }
    }
    let _ = worker.await;
    Ok(())
}
