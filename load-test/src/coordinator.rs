//! A whole run: checks the limits, creates the rooms through aux-srv, reads
//! the services' `/metrics`, starts the workers (tasks or processes), keeps
//! them in step, shows progress, and builds the report.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write as _};
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
use crate::procfs;
use crate::report::{self, Inputs, Report, Restart, ServiceCost};
use crate::stats::{Collected, Percentiles, new_histogram, now_ms};
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

/// Backends hold at most this many connections by default (and 20,000 open
/// files per process on this machine).
const BACKEND_CONNECTIONS: usize = 19_000;
const SETUP_CONCURRENCY: usize = 64;

fn rooms_needed(scenario: &Scenario) -> usize {
    match scenario {
        Scenario::Fanout(_) => 1,
        Scenario::Rooms(a) => a.rooms,
        Scenario::Idle(a) => a.connections.div_ceil(a.room_size.max(1)),
        Scenario::Connect(a) => a.connections.div_ceil(a.room_size.max(1)),
        Scenario::Aux(_) => 0,
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
    let mut per_backend: BTreeMap<String, usize> = BTreeMap::new();
    let members = scenario.connections();
    for n in 0..members {
        let room = match &scenario {
            Scenario::Fanout(_) => 0,
            Scenario::Rooms(a) => n / a.room_size.max(1),
            Scenario::Idle(a) => n / a.room_size.max(1),
            Scenario::Connect(a) => n / a.room_size.max(1),
            Scenario::Aux(_) => break,
        };
        if let Some(base) = rooms.get(room).and_then(|r| net::http_base_of_ws(&r.ws_url)) {
            *per_backend.entry(base).or_default() += 1;
        }
    }
    for (backend, n) in &per_backend {
        if *n > BACKEND_CONNECTIONS {
            warnings.push(format!(
                "{n} connections to {backend}: more than a backend holds by default \
                 ({BACKEND_CONNECTIONS}, max_connections; 20,000 open files per process here)"
            ));
        }
    }
    let mut services: Vec<(String, String)> = per_backend
        .keys()
        .cloned()
        .chain(common.backends.iter().map(|b| b.trim_end_matches('/').to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|url| (url, "backend".to_owned()))
        .collect();
    services.push((common.aux.trim_end_matches('/').to_owned(), "aux".to_owned()));
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
    let mut ready = 0;
    let mut connected = 0;
    if !common.quiet && members > 0 {
        eprintln!(
            "load-test: {workers} worker(s) joining {members} member(s) to {} room(s)…",
            rooms.len()
        );
    }
    while ready < workers {
        match inbox.recv().await {
            Some((_, FromWorker::Ready { connected: n })) => {
                ready += 1;
                connected += n;
            }
            Some((i, FromWorker::Failed(e))) => bail!("worker {i} failed: {e}"),
            Some(_) => {}
            None => bail!("the workers stopped before they were ready"),
        }
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
    let mut drained = 0;
    let mut progress_shown = false;
    while drained < workers {
        let msg = tokio::select! {
            msg = inbox.recv() => msg,
            () = tokio::time::sleep_until(deadline) => {
                warnings.push("some workers did not finish the drain in time".into());
                break;
            }
        };
        match msg {
            Some((i, FromWorker::Progress(p))) => {
                latest.insert(i, p);
                if !common.quiet {
                    show_progress(&scenario, start_ms, &latest);
                    progress_shown = true;
                }
            }
            Some((_, FromWorker::Drained)) => drained += 1,
            Some((i, FromWorker::Failed(e))) => bail!("worker {i} failed: {e}"),
            Some(_) => {}
            None => bail!("the workers stopped before the end of the run"),
        }
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
    let mut done = 0;
    let close_deadline = Instant::now() + Duration::from_secs(30);
    while done < workers {
        let msg = tokio::select! {
            msg = inbox.recv() => msg,
            () = tokio::time::sleep_until(close_deadline) => {
                warnings.push(format!("{} worker(s) sent no result", workers - done));
                break;
            }
        };
        match msg {
            Some((_, FromWorker::Done(result))) => {
                let WorkerResult { collected: c, tails: t, created_sample, connected } = *result;
                collected.merge(&c);
                report::merge_tails(&mut tails, &t);
                sample.extend(created_sample);
                connected_final += connected;
                done += 1;
            }
            Some((i, FromWorker::Failed(e))) => bail!("worker {i} failed: {e}"),
            Some(_) => {}
            None => {
                warnings.push(format!("{} worker(s) ended without a result", workers - done));
                break;
            }
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
    if let Some(path) = &common.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &common.plot {
        crate::plot::draw(&report, path).with_context(|| format!("drawing {}", path.display()))?;
    }
    Ok(report)
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

type Scrape = BTreeMap<String, std::collections::HashMap<String, f64>>;

/// Name of the finer CPU figure read from `/proc` for local services.
const PROC_CPU: &str = "procfs_cpu_seconds";

/// Each service's `/metrics`, plus its CPU seconds from `/proc` when it
/// runs here (found once per service and remembered in `pids`).
async fn scrape_all(
    http: &Http,
    services: &[(String, String)],
    pids: &mut BTreeMap<String, Option<u32>>,
) -> Scrape {
    let mut out = BTreeMap::new();
    for (url, _) in services {
        if let Ok(mut metrics) = http.scrape(url).await {
            let pid = *pids
                .entry(url.clone())
                .or_insert_with(|| procfs::port_of(url).and_then(procfs::pid_listening_on));
            if let Some(cpu) = pid.and_then(procfs::cpu_seconds) {
                metrics.insert(PROC_CPU.into(), cpu);
            }
            out.insert(url.clone(), metrics);
        }
    }
    out
}

fn cost(url: &str, role: &str, before: &Scrape, ready: &Scrape, after: &Scrape) -> ServiceCost {
    let get = |s: &Scrape, name: &str| s.get(url).and_then(|m| m.get(name)).copied().unwrap_or(0.0);
    let has_proc =
        [ready, after].iter().all(|s| s.get(url).is_some_and(|m| m.contains_key(PROC_CPU)));
    let cpu = if has_proc { PROC_CPU } else { "process_cpu_seconds_total" };
    ServiceCost {
        url: url.to_owned(),
        role: role.to_owned(),
        cpu_seconds: (get(after, cpu) - get(ready, cpu)).max(0.0),
        cpu_source: if has_proc { "procfs" } else { "metrics" }.into(),
        rss_before_bytes: get(before, "process_resident_memory_bytes") as u64,
        rss_ready_bytes: get(ready, "process_resident_memory_bytes") as u64,
        rss_after_bytes: get(after, "process_resident_memory_bytes") as u64,
        connections: get(after, "instantchat_backend_connections") as u64,
        delivered_frames: (get(after, "instantchat_backend_messages_delivered_total")
            - get(ready, "instantchat_backend_messages_delivered_total"))
        .max(0.0) as u64,
    }
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

fn show_progress(scenario: &Scenario, start_ms: u64, latest: &BTreeMap<usize, Progress>) {
    let elapsed = now_ms().saturating_sub(start_ms) as f64 / 1000.0;
    let total = scenario.common().duration.as_secs_f64();
    let connected: u64 = latest.values().map(|p| p.connected).sum();
    let mut line = format!("[{elapsed:>5.1}s/{total:.0}s]");
    if scenario.connections() > 0 {
        line.push_str(&format!(" conns {connected}"));
    }
    let mut names: BTreeSet<&String> = BTreeSet::new();
    for p in latest.values() {
        names.extend(p.last_second.keys());
    }
    for name in names {
        let mut h = new_histogram();
        for p in latest.values() {
            if let Some(d) = p.last_second.get(name) {
                d.add_to(&mut h);
            }
        }
        let pct = Percentiles::of(&h);
        if pct.count == 0 {
            continue;
        }
        line.push_str(&format!(
            " | {name} {}/s p50 {:.1}ms p99 {:.1}ms",
            report::thousands(pct.count as f64),
            pct.p50_ms,
            pct.p99_ms
        ));
    }
    let counter =
        |k: &str| latest.values().map(|p| p.counters.get(k).copied().unwrap_or(0)).sum::<u64>();
    let prefixed = |pre: &str| {
        latest
            .values()
            .flat_map(|p| p.counters.iter())
            .filter(|(k, _)| k.starts_with(pre))
            .map(|(_, v)| v)
            .sum::<u64>()
    };
    let lost = counter("lost.gaps");
    let errors =
        prefixed("error.") + prefixed("http.") + prefixed("join_failed.") + prefixed("close.");
    line.push_str(&format!(" | lost {lost} errors {errors}"));
    if lost > 0 {
        line.push_str("  <-- LOSS");
    }
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r{line:<150}");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
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
