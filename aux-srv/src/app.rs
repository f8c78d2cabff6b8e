//! The state one aux-srv shares between its listeners, pollers and tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::config::{AuxConfig, BackendEntry, ConfigError};
use common::control::{ErrorCode, RequestBody, ResponseBody};
use common::net::{IpRateLimiter, Rate, TrustedProxies};
use startup::password_pool::PasswordPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fleet::{Backend, Fleet, Health};
use crate::metrics::Metrics;
use crate::moves::Moves;
use crate::poller;
use crate::room_map::RoomMap;
use control_client::ControlError;

pub struct App {
    pub config: AuxConfig,
    pub fleet: Fleet,
    pub rooms: RoomMap,
    pub metrics: Metrics,
    /// Rooms moving between backends, and evacuations.
    pub moves: Moves,
    pub create_limit: IpRateLimiter,
    pub post_limit: IpRateLimiter,
    /// Wrong `X-Room-Password`s: growing waits per address and per room.
    pub password_attempts: crate::http::attempts::PasswordLimiter,
    pub trusted_proxies: TrustedProxies,
    /// Fleet-wide address bans, pushed to every backend.
    pub bans: crate::bans::FleetBans,
    /// Password hashing is slow and memory-hungry on purpose: a few at a
    /// time, on threads that reuse their memory.
    pub passwords: PasswordPool,
    /// Cancelled when aux-srv shuts down; every task watches it.
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    started: Instant,
    /// Start-up sweeps still running (of the backends in the config).
    startup_pending: AtomicUsize,
    startup_done: Notify,
    ready: AtomicBool,
    draining: AtomicBool,
}

impl App {
    pub fn new(config: AuxConfig, shutdown: CancellationToken) -> Result<Arc<Self>, ConfigError> {
        let trusted_proxies = config.trusted_proxy_list()?;
        let passwords = PasswordPool::new(
            config.password_checks.concurrent,
            Duration::from_millis(config.password_checks.wait_ms),
        )
        .map_err(|e| ConfigError::new("password_checks.concurrent", e.to_string()))?;
        let metrics = Metrics::new();
        let moves = Moves::new(&metrics.registry);
        Ok(Arc::new(App {
            create_limit: IpRateLimiter::new(Rate::per_minute(
                config.room_create_per_minute,
                config.room_create_burst,
            )),
            post_limit: IpRateLimiter::new(Rate::per_minute(
                config.http_post_per_minute,
                config.http_post_burst,
            )),
            password_attempts: crate::http::attempts::PasswordLimiter::new(
                &config.password_attempts,
            ),
            trusted_proxies,
            bans: crate::bans::FleetBans::default(),
            passwords,
            fleet: Fleet::default(),
            rooms: RoomMap::default(),
            metrics,
            moves,
            shutdown,
            tasks: TaskTracker::new(),
            started: Instant::now(),
            startup_pending: AtomicUsize::new(config.backends.len()),
            startup_done: Notify::new(),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            config,
        }))
    }

    /// Ready once the start-up sweep is done (or its wait ran out), until
    /// shutdown begins.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.is_draining()
    }

    /// True once shutdown began (readiness answers 503 from then on).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire) || self.shutdown.is_cancelled()
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Called by each configured backend's poller after its first attempt.
    pub fn startup_backend_settled(&self) {
        let before = self.startup_pending.fetch_sub(1, Ordering::AcqRel);
        if before <= 1 {
            self.startup_done.notify_waiters();
        }
    }

    /// Waits until every configured backend was swept or found unreachable,
    /// or the rebuild timeout passed, then declares readiness.
    pub async fn await_startup(&self) {
        let deadline = Duration::from_millis(self.config.rebuild_timeout_ms);
        let wait = async {
            loop {
                let notified = self.startup_done.notified();
                if self.startup_pending.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let complete = tokio::time::timeout(deadline, wait).await.is_ok();
        let took = self.started.elapsed();
        self.metrics.startup_rebuild_seconds.set(took.as_secs_f64());
        if complete {
            tracing::info!(
                rooms = self.rooms.len(),
                took_ms = took.as_millis() as u64,
                "room map rebuilt, ready"
            );
        } else {
            tracing::warn!(
                rooms = self.rooms.len(),
                "room map rebuild still running after rebuild_timeout_ms; ready anyway (unknown names are still asked of every backend)"
            );
        }
        self.ready.store(true, Ordering::Release);
    }

    /// Adds a backend and starts polling it.
    pub fn add_backend(
        self: &Arc<Self>,
        entry: BackendEntry,
        startup: bool,
    ) -> Option<Arc<Backend>> {
        let backend = Arc::new(Backend::new(
            entry,
            &self.config.control_token,
            Duration::from_millis(self.config.control_timeout_ms),
            self.config.control_pool_size,
            self.shutdown.child_token(),
        ));
        if !self.fleet.add(backend.clone()) {
            return None;
        }
        self.metrics.set_backend_state(&backend.id, "unknown");
        self.tasks.spawn(poller::run(self.clone(), backend.clone(), startup));
        Some(backend)
    }

    /// Stops using a backend and forgets its rooms.
    pub fn remove_backend(&self, id: &str) -> Option<(Arc<Backend>, usize)> {
        let backend = self.fleet.remove(id)?;
        backend.cancel.cancel();
        let forgotten = self.rooms.forget_backend(id);
        self.metrics.forget_backend(id);
        self.metrics.rooms_known.set(self.rooms.len() as i64);
        Some((backend, forgotten))
    }

    /// One control request, counted, with a word to the poller when the
    /// answer contradicts what it believes about the backend's health.
    pub async fn call(
        &self,
        backend: &Backend,
        body: RequestBody,
    ) -> Result<ResponseBody, ControlError> {
        let kind = body.kind();
        let result = backend.client.request(body).await;
        let label = match &result {
            Ok(ResponseBody::Error { .. }) => "error",
            Ok(_) => "ok",
            Err(ControlError::NotSent(_)) => "unreachable",
            Err(ControlError::Uncertain(_)) => "uncertain",
        };
        self.metrics.control(kind, label);
        let health = backend.health();
        if result.is_err() == (health == Health::Up) {
            backend.poke.notify_one();
        }
        result
    }
}

/// A backend's refusal, as the HTTP API reports it.
pub fn error_status(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::NotFound => 404,
        ErrorCode::Draining => 503,
        ErrorCode::BadName | ErrorCode::BadRequest => 400,
        ErrorCode::PasswordRequired => 401,
        ErrorCode::WrongPassword | ErrorCode::NotOwner => 403,
        ErrorCode::TooLarge => 413,
        ErrorCode::Internal => 502,
        ErrorCode::Moving => 503,
        ErrorCode::MoveConflict => 409,
    }
}
