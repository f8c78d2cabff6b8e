//! A whole run: checks the limits, creates the rooms through aux-srv, reads
//! the services' `/metrics`, starts the workers (tasks or processes), keeps
//! them in step, shows progress, and builds the report.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use http::Method;
use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cli::Scenario;
use crate::net::{self, Http};
use crate::progress::show_progress;
use crate::report::{self, Inputs, Report, Restart};
use crate::services::{cost, scrape_all, services_to_watch};
use crate::stats::{Collected, now_ms};
use crate::worker::{
    FromWorker, Progress, RoomRef, RoomTail, ToWorker, WorkerPlan, WorkerResult, run_worker,
};

/// Where the workers run.
#[derive(Debug, Clone)]
pub enum Workers {
    /// As tasks of this process (tests, and `--workers 1`).
    InProcess,
    /// As child processes of this executable (`--worker-index i`).
    Processes(PathBuf),
}

const SETUP_CONCURRENCY: usize = 64;

fn rooms_needed(scenario: &Scenario) -> usize {
    match scenario {
        Scenario::Fanout(_) => 1,
        Scenario::Rooms(a) => a.rooms,
        Scenario::Idle(a) => a.connections.div_ceil(a.room_size.max(1)),
        Scenario::Connect(a) => a.connections.div_ceil(a.room_size.max(1)),
        Scenario::Aux(_) | Scenario::Migrate(_) => 0,
    }
}

/// Checks the plan against the limits; the error says what to change.
pub fn check_plan(scenario: &Scenario, mode: &Workers) -> anyhow::Result<usize> {
    let c = scenario.common();
    if c.workers == 0 {
        bail!("--workers must be at least 1");
    }
    if c.duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    match scenario {
        Scenario::Fanout(a) if a.members > 0 && a.rate > 0.0 => {}
        Scenario::Fanout(_) => bail!("fanout needs --members and --rate above 0"),
        Scenario::Rooms(a) if a.every_min > a.every_max || a.every_min.is_zero() => {
            bail!("rooms: --every-min must be above 0 and at most --every-max")
        }
        Scenario::Aux(a) if !(0.0..=1.0).contains(&a.create_share) => {
            bail!("aux: --create-share is a fraction between 0 and 1")
        }
        _ => {}
    }
    let connections = scenario.connections();
    let sources = if c.sources > 0 { c.sources } else { net::sources_needed(connections) };
    let processes = match mode {
        Workers::InProcess => 1,
        Workers::Processes(_) => c.workers,
    };
    net::check_capacity(connections, processes, sources)?;
    Ok(sources)
}

/// Runs `scenario` to the end and returns its report (also written to
/// `--json` and `--plot` when given).
pub async fn run(mut scenario: Scenario, mode: Workers) -> anyhow::Result<Report> {
    let sources = check_plan(&scenario, &mode)?;
    scenario.common_mut().sources = sources;
    let common = scenario.common().clone();
    let run_id = format!("{:06x}", rand::rng().random::<u32>() & 0xff_ffff);
    let http = Http::new(None, SETUP_CONCURRENCY);
    let mut warnings = Vec::new();

    let rooms =
        create_rooms(&http, &common.aux, &run_id, rooms_needed(&scenario), common.quiet).await?;
    let services = services_to_watch(&scenario, &rooms, &mut warnings);
    let mut pids = BTreeMap::new();
    let before = scrape_all(&http, &services, &mut pids).await;

    let (to_coordinator, mut inbox) = mpsc::unbounded_channel::<(usize, FromWorker)>();
    let mut outboxes = Vec::new();
    for index in 0..common.workers {
        let plan = WorkerPlan {
            scenario: scenario.clone(),
            rooms: rooms.clone(),
            index,
            workers: common.workers,
            sources,
            run_id: run_id.clone(),
        };
        outboxes.push(start_worker(plan, &mode, to_coordinator.clone()).await?);
    }
    drop(to_coordinator);
    let send_all = |msg: ToWorker| {
        for out in &outboxes {
            let _ = out.send(msg.clone());
        }
    };

    let workers = common.workers;
    let members = scenario.connections();
    if !common.quiet && members > 0 {
        eprintln!(
            "load-test: {workers} worker(s) joining {members} member(s) to {} room(s)…",
            rooms.len()
        );
    }
    let mut connected = 0;
    let joined = gather(&mut inbox, workers, None, |_, msg| match msg {
        FromWorker::Ready { connected: n } => {
            connected += n;
            true
        }
        _ => false,
    })
    .await?;
    if joined != Gathered::All {
        bail!("the workers stopped before they were ready");
    }
    let at_ready = scrape_all(&http, &services, &mut pids).await;
    let start_ms = now_ms() + 300;
    send_all(ToWorker::Go { start_ms });

    let deadline = Instant::now()
        + Duration::from_millis(300)
        + common.duration
        + common.drain
        + Duration::from_secs(30);
    let mut latest: BTreeMap<usize, Progress> = BTreeMap::new();
    let mut progress_shown = false;
    let drained = gather(&mut inbox, workers, Some(deadline), |i, msg| match msg {
        FromWorker::Progress(p) => {
            latest.insert(i, p);
            if !common.quiet {
                show_progress(&scenario, start_ms, &latest);
                progress_shown = true;
            }
            false
        }
        FromWorker::Drained => true,
        _ => false,
    })
    .await?;
    match drained {
        Gathered::All => {}
        Gathered::TimedOut(_) => {
            warnings.push("some workers did not finish the drain in time".into());
        }
        Gathered::Ended(_) => bail!("the workers stopped before the end of the run"),
    }
    if progress_shown && std::io::stderr().is_terminal() {
        eprintln!();
    }
    let after = scrape_all(&http, &services, &mut pids).await;
    send_all(ToWorker::Close);

    let mut collected = Collected::default();
    let mut tails: BTreeMap<usize, RoomTail> = BTreeMap::new();
    let mut sample = Vec::new();
    let mut connected_final = 0;
    let close_deadline = Instant::now() + Duration::from_secs(30);
    let results = gather(&mut inbox, workers, Some(close_deadline), |_, msg| match msg {
        FromWorker::Done(result) => {
            let WorkerResult { collected: c, tails: t, created_sample, connected } = *result;
            collected.merge(&c);
            report::merge_tails(&mut tails, &t);
            sample.extend(created_sample);
            connected_final += connected;
            true
        }
        _ => false,
    })
    .await?;
    match results {
        Gathered::All => {}
        Gathered::TimedOut(done) => {
            warnings.push(format!("{} worker(s) sent no result", workers - done));
        }
        Gathered::Ended(done) => {
            warnings.push(format!("{} worker(s) ended without a result", workers - done));
        }
    }
    let connected =
        if matches!(scenario, Scenario::Connect(_)) { connected_final } else { connected };

    let restart = match &scenario {
        Scenario::Aux(a) => match &a.restart_cmd {
            Some(cmd) => Some(restart_check(&common.aux, cmd, &sample).await?),
            None => None,
        },
        _ => None,
    };

    let costs =
        services.iter().map(|(url, role)| cost(url, role, &before, &at_ready, &after)).collect();
    let report = report::build(Inputs {
        scenario: &scenario,
        run_id,
        started_unix_ms: start_ms,
        workers,
        sources,
        connected,
        collected: &collected,
        tails: &tails,
        services: costs,
        restart,
        warnings,
    });
    write_outputs(&report, &common)?;
    Ok(report)
}

/// How a phase's receiving ended.
#[derive(Debug, PartialEq, Eq)]
enum Gathered {
    /// Every worker sent what the phase waits for.
    All,
    /// The deadline passed with this many counted.
    TimedOut(usize),
    /// Every worker hung up with this many counted.
    Ended(usize),
}

/// Receives the workers' messages until `counts` has said yes to one per
/// worker, the deadline passes, or the workers hang up. A worker's failure
/// ends the run.
async fn gather(
    inbox: &mut mpsc::UnboundedReceiver<(usize, FromWorker)>,
    workers: usize,
    deadline: Option<Instant>,
    mut counts: impl FnMut(usize, FromWorker) -> bool,
) -> anyhow::Result<Gathered> {
    let mut counted = 0;
    while counted < workers {
        let msg = match deadline {
            Some(deadline) => tokio::select! {
                msg = inbox.recv() => msg,
                () = tokio::time::sleep_until(deadline) => return Ok(Gathered::TimedOut(counted)),
            },
            None => inbox.recv().await,
        };
        match msg {
            Some((i, FromWorker::Failed(e))) => bail!("worker {i} failed: {e}"),
            Some((i, msg)) => counted += usize::from(counts(i, msg)),
            None => return Ok(Gathered::Ended(counted)),
        }
    }
    Ok(Gathered::All)
}

/// The JSON report and the plot, where the command line asked for them.
fn write_outputs(report: &Report, common: &crate::cli::Common) -> anyhow::Result<()> {
    if let Some(path) = &common.json {
        let json = serde_json::to_string_pretty(report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &common.plot {
        crate::plot::draw(report, path).with_context(|| format!("drawing {}", path.display()))?;
    }
    Ok(())
}

async fn create_rooms(
    http: &Http,
    aux: &str,
    run_id: &str,
    count: usize,
    quiet: bool,
) -> anyhow::Result<Vec<RoomRef>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if !quiet && count > 1000 {
        eprintln!("load-test: creating {count} rooms through {aux}…");
    }
    let results: Vec<anyhow::Result<RoomRef>> = futures_util::stream::iter(0..count)
        .map(|i| async move {
            let name = format!("lt-{run_id}-{i}");
            match http.room(aux, Method::PUT, &name).await? {
                Ok(answer) => Ok(RoomRef { name: answer.name, ws_url: answer.ws_url }),
                Err(e) if e.status == 429 => bail!(
                    "aux-srv refused to create room {name}: {e} — run the fleet with a higher \
                     room_create_per_minute / room_create_burst (see docs/BENCHMARKS.md)"
                ),
                Err(e) => bail!("aux-srv refused to create room {name}: {e}"),
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await;
    results
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("setting up rooms via {aux}"))
}

/// Starts one worker; returns where to send it commands.
async fn start_worker(
    plan: WorkerPlan,
    mode: &Workers,
    to_coordinator: mpsc::UnboundedSender<(usize, FromWorker)>,
) -> anyhow::Result<mpsc::UnboundedSender<ToWorker>> {
    let index = plan.index;
    let (to_worker, mut commands) = mpsc::unbounded_channel::<ToWorker>();
    match mode {
        Workers::InProcess => {
            let (reports_tx, mut reports) = mpsc::unbounded_channel();
            tokio::spawn(run_worker(plan, commands, reports_tx));
            tokio::spawn(async move {
                while let Some(msg) = reports.recv().await {
                    if to_coordinator.send((index, msg)).is_err() {
                        return;
                    }
                }
            });
        }
        Workers::Processes(exe) => {
            let mut child = tokio::process::Command::new(exe)
                .arg("--worker-index")
                .arg(index.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting worker process {}", exe.display()))?;
            let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("worker stdin"))?;
            let stdout = child.stdout.take().ok_or_else(|| anyhow!("worker stdout"))?;
            let mut first = serde_json::to_string(&plan)?;
            first.push('\n');
            stdin.write_all(first.as_bytes()).await?;
            tokio::spawn(async move {
                while let Some(cmd) = commands.recv().await {
                    let Ok(mut line) = serde_json::to_string(&cmd) else { continue };
                    line.push('\n');
                    if stdin.write_all(line.as_bytes()).await.is_err()
                        || stdin.flush().await.is_err()
                    {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                let mut finished = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let msg = match serde_json::from_str::<FromWorker>(&line) {
                        Ok(msg) => msg,
                        Err(e) => FromWorker::Failed(format!("unreadable report: {e}")),
                    };
                    finished |= matches!(msg, FromWorker::Done(_) | FromWorker::Failed(_));
                    if to_coordinator.send((index, msg)).is_err() {
                        break;
                    }
                }
                let status = child.wait().await;
                if !finished {
                    let why = format!("worker process ended early ({status:?})");
                    let _ = to_coordinator.send((index, FromWorker::Failed(why)));
                }
            });
        }
    }
    Ok(to_worker)
}

/// Runs the restart command, then times aux-srv until it is ready and finds
/// every sampled room again.
async fn restart_check(aux: &str, cmd: &str, sample: &[String]) -> anyhow::Result<Restart> {
    let status = tokio::process::Command::new("sh").arg("-c").arg(cmd).status().await?;
    if !status.success() {
        bail!("the restart command failed: {status}");
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let http = Http::new(None, 64);
    let mut report = Restart { sampled: sample.len(), ..Restart::default() };
    let ready_url = format!("{}/readyz", aux.trim_end_matches('/'));
    while Instant::now() < deadline {
        if matches!(http.call(Method::GET, &ready_url, "").await, Ok((s, _)) if s.is_success()) {
            report.ready_after_s = Some(started.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut missing: Vec<&String> = sample.iter().collect();
    while Instant::now() < deadline && !missing.is_empty() {
        let results: Vec<bool> = futures_util::stream::iter(missing.iter())
            .map(|name| {
                let http = http.clone();
                async move { matches!(http.room(aux, Method::GET, name).await, Ok(Ok(_))) }
            })
            .buffered(64)
            .collect()
            .await;
        missing = missing.into_iter().zip(results).filter(|(_, ok)| !ok).map(|(n, _)| n).collect();
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    report.found = sample.len() - missing.len();
    if missing.is_empty() {
        report.all_found_after_s = Some(started.elapsed().as_secs_f64());
    }
    if let Ok(metrics) = http.scrape(aux).await {
        report.rebuild_seconds = metrics.get("instantchat_aux_startup_rebuild_seconds").copied();
        report.rooms_known = metrics.get("instantchat_aux_rooms_known").map(|v| *v as u64);
    }
    Ok(report)
}
