//! The `aux` scenario's worker: HTTP clients creating rooms
//! (`PUT /api/rooms/{new name}`), then looking them up
//! (`GET /api/rooms/{name}`), as fast as aux-srv answers. Each client is
//! one keep-alive connection with one request at a time, as a browser tab.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cli::Scenario;
use crate::net;
use crate::stats::{Collector, now_ms};
use crate::worker::{
    FromWorker, ToWorker, WorkerPlan, WorkerResult, instant_of, spawn_progress, wait_close, wait_go,
};

pub async fn run(
    plan: &WorkerPlan,
    rx: &mut mpsc::UnboundedReceiver<ToWorker>,
    out: &mpsc::UnboundedSender<FromWorker>,
) -> anyhow::Result<WorkerResult> {
    let Scenario::Aux(args) = &plan.scenario else { anyhow::bail!("not the aux scenario") };
    let stats = Collector::default();
    let clients = args.concurrency.max(1);
    let _ = out.send(FromWorker::Ready { connected: 0 });
    let Some(start_ms) = wait_go(rx).await else { anyhow::bail!("the coordinator went away") };
    stats.start(start_ms);
    let start = instant_of(start_ms);
    let end = start + args.common.duration;
    let switch = start + args.common.duration.mul_f64(args.create_share.clamp(0.0, 1.0));
    let progress_stop = CancellationToken::new();
    let active = Arc::new(AtomicUsize::new(0));
    spawn_progress(stats.clone(), active.clone(), start_ms, out.clone(), progress_stop.clone());

    let mut tasks = Vec::new();
    for c in 0..clients {
        let global = plan.index * clients + c;
        // Each client its own source address: aux-srv limits creations per address.
        let source = net::source_addr(global % plan.sources.max(1));
        let mut http = net::KeepAlive::new(&args.common.aux, Some(source)).await?;
        let (stats, prefix) = (stats.clone(), format!("lt-{}-{global}", plan.run_id));
        let active = active.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            active.fetch_add(1, Ordering::Relaxed);
            let mut created = Vec::new();
            while Instant::now() < switch {
                let name = format!("{prefix}-{}", created.len());
                if request(&mut http, "PUT", &name, "create", &stats).await {
                    created.push(name);
                }
            }
            let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
            while Instant::now() < end && !created.is_empty() {
                let name = &created[rng.random_range(0..created.len())];
                request(&mut http, "GET", name, "lookup", &stats).await;
            }
            active.fetch_sub(1, Ordering::Relaxed);
            created
        }));
    }
    let mut sample = Vec::new();
    let per_worker = args.restart_sample.div_ceil(plan.workers.max(1));
    let mut all = Vec::new();
    for task in tasks {
        all.push(task.await.unwrap_or_default());
    }
    // Spread the sample over the clients.
    let mut i = 0;
    while sample.len() < per_worker && all.iter().any(|c| i < c.len()) {
        for created in &all {
            if sample.len() < per_worker {
                if let Some(name) = created.get(i) {
                    sample.push(name.clone());
                }
            }
        }
        i += 1;
    }
    stats.add("rooms_created", all.iter().map(|c| c.len() as u64).sum());
    tokio::time::sleep_until(end).await;
    let _ = out.send(FromWorker::Drained);
    let _ = wait_close(rx).await;
    progress_stop.cancel();
    Ok(WorkerResult {
        collected: stats.collected(),
        tails: Default::default(),
        created_sample: sample,
        connected: 0,
    })
}

/// One timed request; true on success. Failures count as
/// `http.<status>.<code>` or `http.failed`.
async fn request(
    http: &mut net::KeepAlive,
    method: &str,
    name: &str,
    series: &str,
    stats: &Collector,
) -> bool {
    let started = std::time::Instant::now();
    let path = format!("/api/rooms/{name}");
    let body = if method == "PUT" { "{}" } else { "" };
    match http.request(method, &path, body).await {
        Ok((status, _)) if (200..300).contains(&status) => {
            stats.record(series, started.elapsed().as_micros() as u64, now_ms());
            true
        }
        Ok((status, body)) => {
            let code = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into());
            stats.add(&format!("http.{status}.{code}"), 1);
            if status == 429 {
                // Honour the limit a little rather than spin on it.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
        Err(_) => {
            stats.add("http.failed", 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
            false
        }
    }
}
