//! Start-up, the accept loop, the background sweep and the drain.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use common::config::FileSrvConfig;
use http_listener::{Acceptor, request};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cors::Cors;
use crate::metrics::Metrics;
use crate::preview::Previews;
use crate::service::{self, AppState};
use crate::store::Store;
use common::net::{IpRateLimiter, Rate, TrustedProxies};

/// Per-connection read buffer cap (headers; body frames are read through it).
const MAX_BUF_BYTES: usize = 64 * 1024;

/// Serves `listener` until `shutdown` completes, then drains: readiness turns
/// 503, no new connections are taken, requests in flight get up to
/// `shutdown_grace_ms` to finish, and what is left is cut.
pub async fn run(
    listener: TcpListener,
    config: FileSrvConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    common::config::Validate::validate(&config)?;
    let metrics = Metrics::new();
    let store = {
        let dir = Path::new(&config.data_dir).to_owned();
        let (ttl, quota, metrics) =
            (Duration::from_secs(config.ttl_secs), config.quota_bytes, metrics.clone());
        tokio::task::spawn_blocking(move || Store::open(&dir, ttl, quota, metrics))
            .await?
            .with_context(|| format!("opening the data folder {}", config.data_dir))?
    };
    let proxies = TrustedProxies::parse(&config.trusted_proxies).map_err(anyhow::Error::msg)?;
    let state = Arc::new(AppState {
        public_url: config.public_url.trim_end_matches('/').to_owned(),
        store: Arc::new(store),
        limiter: IpRateLimiter::new(Rate::per_minute(
            config.upload_rate_per_min,
            config.upload_burst,
        )),
        cors: Cors::new(&config.allowed_origins),
        proxies,
        upload_permits: Semaphore::new(config.max_concurrent_uploads),
        metrics,
        draining: AtomicBool::new(false),
        previews: Previews::new(&config),
        config,
    });

    let stop_sweep = CancellationToken::new();
    let sweeper = tokio::spawn(sweep_loop(state.clone(), stop_sweep.clone()));

    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, data_dir = %state.config.data_dir, "file-srv serving");
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    let limits = state.config.http.clone();
    let mut acceptor = Acceptor::new(listener, &limits, "files");
    let body_timeout =
        Duration::from_millis(limits.body_timeout_ms.max(state.config.upload_timeout_ms));
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = acceptor.accept() => {
                let (peer, admission, connection) =
                    (accepted.peer, accepted.admission(), accepted.connection);
                let clock = accepted.stream.clock();
                let mut builder = http_listener::http1_builder(&limits, admission);
                builder.max_buf_size(MAX_BUF_BYTES);
                let state = state.clone();
                let service = service_fn(move |mut req| {
                    let max_body = state.config.max_bytes;
                    let refused = request::check(&mut req, admission, &clock, max_body, body_timeout);
                    let state = state.clone();
                    async move {
                        match refused {
                            Some(refused) => Ok(refused.map(crate::response::full_body)),
                            None => service::handle(state, req, peer).await,
                        }
                    }
                });
                let conn = builder.serve_connection(TokioIo::new(accepted.stream), service);
                let conn = graceful.watch(conn);
                connections.spawn(async move {
                    let _connection = connection;
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }

    state.draining.store(true, Ordering::Relaxed);
    drop(acceptor);
    let grace = Duration::from_millis(state.config.shutdown_grace_ms);
    tracing::info!(connections = connections.len(), ?grace, "draining");
    let drained = tokio::time::timeout(grace, async {
        graceful.shutdown().await;
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(left = connections.len(), "grace period over; closing connections");
        connections.shutdown().await;
    }
    stop_sweep.cancel();
    let _ = sweeper.await;
    tracing::info!("file-srv stopped");
    Ok(())
}

/// Removes expired drawings every `sweep_interval_ms` (first right at
/// start-up) and forgets idle rate-limit buckets.
async fn sweep_loop(state: Arc<AppState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(state.config.sweep_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let store = state.store.clone();
        match tokio::task::spawn_blocking(move || store.sweep(SystemTime::now())).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired drawings removed"),
            Err(e) => tracing::error!(error = %e, "the sweep failed"),
        }
        state.limiter.prune(Instant::now());
    }
}
