//! aux-srv: the coordinator of an instantchat fleet.
//!
//! It serves the web pages and the public HTTP API, decides which backend
//! holds each room, and offers an admin API. The backends hold the truth
//! (their rooms); aux-srv keeps a map of it that it can always rebuild.
//!
//! - [`run`]: the service (public and admin listeners, pollers, shutdown).
//! - [`app`]: the shared state; [`fleet`]: the backends and their health;
//!   [`room_map`]: which backend holds which room, and per-name locks.
//! - [`directory`]: find and place rooms without ever duplicating a name.
//! - [`placement`]: the load score; [`poller`]: load reports, removals,
//!   restarts, sweeps of a backend's room list.
//! - The control protocol client (pooled connections) is the
//!   `instantchat-control-client` crate, next to the protocol it speaks.
//! - [`http`]: the listeners — public routes, JSON API, static files, admin.
//! - [`metrics`]: the Prometheus registry.
//! - [`bans`]: fleet-wide address bans, pushed to every backend.
//!
//! The `instantchat` binary (the `fleet/` crate) runs a whole local fleet in
//! one process: aux-srv, two backends and file-srv.

pub mod app;
pub mod bans;
pub mod directory;
pub mod fleet;
pub mod http;
pub mod metrics;
pub mod moves;
pub mod placement;
pub mod poller;
pub mod room_map;

use std::future::Future;
use std::time::Duration;

use common::config::{AuxConfig, Validate};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::http::api::RoomAnswer;

/// The sockets aux-srv serves, bound by the caller.
#[derive(Debug)]
pub struct Listeners {
    /// Pages, `/api/…`, `/livez`, `/readyz`, `/metrics`.
    pub public: TcpListener,
    /// The admin API.
    pub admin: TcpListener,
}

/// Runs aux-srv until `shutdown` completes: readiness turns 503 for
/// `shutdown_drain_ms`, then the listeners stop accepting and requests in
/// flight get `shutdown_grace_ms`.
pub async fn run(
    listeners: Listeners,
    config: AuxConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let token = CancellationToken::new();
    let app = app::App::new(config, token.clone())?;
    tracing::info!(
        public = %listeners.public.local_addr()?,
        admin = %listeners.admin.local_addr()?,
        backends = app.config.backends.len(),
        admin_api = !app.config.admin_token.is_empty(),
        "aux-srv starting"
    );
    let index = std::path::Path::new(&app.config.web_root).join("index.html");
    if !index.is_file() {
        tracing::warn!(
            web_root = app.config.web_root,
            "no index.html in web_root: the pages will answer 404"
        );
    }
    for entry in app.config.backends.clone() {
        app.add_backend(entry, true);
    }
    {
        let app = app.clone();
        app.tasks.clone().spawn(async move {
            tokio::select! {
                _ = app.await_startup() => {}
                _ = app.shutdown.cancelled() => {}
            }
        });
    }
    {
        let app = app.clone();
        app.tasks.clone().spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let now = std::time::Instant::now();
                        app.create_limit.prune(now);
                        app.post_limit.prune(now);
                        app.password_attempts.prune();
                    }
                    _ = app.shutdown.cancelled() => return,
                }
            }
        });
    }
    let watcher = {
        let app = app.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown => {
                    // Readiness turns 503 first, so that load balancers stop
                    // sending before the listeners close.
                    app.start_draining();
                    let drain = Duration::from_millis(app.config.shutdown_drain_ms);
                    tracing::info!(drain_ms = drain.as_millis() as u64, "aux-srv shutting down");
                    tokio::time::sleep(drain).await;
                    app.shutdown.cancel();
                }
                _ = app.shutdown.cancelled() => {}
            }
        })
    };
    tokio::join!(
        http::server::serve(listeners.public, app.clone(), http::public::handle),
        http::server::serve(listeners.admin, app.clone(), http::admin::handle),
    );
    token.cancel();
    let _ = watcher.await;
    app.tasks.close();
    if tokio::time::timeout(Duration::from_secs(2), app.tasks.wait()).await.is_err() {
        tracing::warn!("background tasks still running at exit");
    }
    tracing::info!("aux-srv stopped");
    Ok(())
}
