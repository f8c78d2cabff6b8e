//! The backend: rooms in RAM and the websockets of everyone in them.
//!
//! - [`run`] starts the service on two listeners and stops it on a signal.
//! - [`http`]: the public listener — websocket upgrades, health, metrics.
//! - [`session`]: one websocket connection (reader + writer halves).
//! - [`room`]: a room's members, ring buffer and rules; [`ring`] the buffer.
//! - [`registry`]: the rooms by key, expiry, and the removal log.
//! - [`link`]: the bounded, shared-bytes queue between a room and a member;
//!   [`batch`] what a writer sends per wake (long frames as fragments).
//! - [`connections`]: every open connection, and the heartbeat that pings,
//!   times out and closes them (connections carry no timers of their own).
//! - [`limits`]: per-connection rate limiting.
//! - [`control`]: the control listener for aux-srv; [`control_client`] its client.
//! - [`load`]: load figures reported to aux-srv; [`metrics`]: Prometheus.
//!
//! **Room state lives only here, in RAM.** Nothing is written to disk; a
//! restarted backend starts empty, with a new `instance` id.

pub mod batch;
pub mod connections;
pub mod control;
pub mod control_client;
pub mod http;
pub mod limits;
pub mod link;
pub mod load;
pub mod metrics;
pub mod registry;
pub mod ring;
pub mod room;
pub mod session;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::config::BackendConfig;
use common::ws::Limits;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connections::Connections;
use crate::load::LoadSampler;
use crate::metrics::Metrics;
use crate::registry::RoomRegistry;
use crate::room::RoomSettings;

/// The two sockets a backend serves.
#[derive(Debug)]
pub struct Listeners {
    /// Websockets, health and metrics.
    pub public: TcpListener,
    /// The control protocol (aux-srv only).
    pub control: TcpListener,
}

impl Listeners {
    /// Both listeners on 127.0.0.1, on ports the OS picks (tests, and the
    /// one-process fleet's `--ephemeral`).
    pub async fn bind_loopback() -> std::io::Result<Self> {
        Ok(Listeners {
            public: TcpListener::bind("127.0.0.1:0").await?,
            control: TcpListener::bind("127.0.0.1:0").await?,
        })
    }

    /// `config` pointed at these listeners: its listen addresses, and a
    /// `public_url` of `ws://` the public listener (no proxy in front).
    pub fn configure(&self, config: BackendConfig) -> std::io::Result<BackendConfig> {
        let public = self.public.local_addr()?;
        Ok(BackendConfig {
            listen: public,
            control_listen: self.control.local_addr()?,
            public_url: format!("ws://{public}"),
            ..config
        })
    }
}

/// State every task of one backend shares.
pub struct Shared {
    pub config: BackendConfig,
    pub metrics: Arc<Metrics>,
    pub registry: RoomRegistry,
    /// Set by aux-srv: refuse new rooms, keep serving existing ones.
    pub draining: AtomicBool,
    /// Cancelled when shutdown begins: connections send `closing` and 1001.
    pub shutdown: CancellationToken,
    /// Random per start; tells aux-srv this backend restarted.
    pub instance: u64,
    pub next_member_id: AtomicU64,
    pub open_connections: AtomicUsize,
    pub ws_config: WebSocketConfig,
    /// Frames longer than this go out in fragments ([`batch`]).
    pub fragment_bytes: usize,
    pub limits: Limits,
    pub load: LoadSampler,
    /// Websocket connection tasks, awaited on shutdown.
    pub connections: TaskTracker,
    /// The open websocket connections, watched by the heartbeat.
    pub conns: Connections,
    /// Bounds concurrent password checks: each takes ~20 MiB and tens of ms.
    password_checks: Semaphore,
    started: Instant,
}

/// A reserved connection slot; frees itself when dropped.
pub struct ConnectionSlot {
    shared: Arc<Shared>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let open = self.shared.open_connections.fetch_sub(1, Ordering::AcqRel) - 1;
        self.shared.metrics.connections.set(open as i64);
    }
}

impl Shared {
    fn new(config: BackendConfig) -> Self {
        let metrics = Arc::new(Metrics::new(&config.id));
        let settings = RoomSettings {
            max_messages: config.max_messages,
            max_members: config.max_members,
            max_text_chars: config.max_text_chars,
            history_page_max: config.history_page_max,
            idle: Duration::from_secs(config.room_idle_secs),
            silent: Duration::from_secs(config.room_silent_secs),
        };
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(config.ws_read_buffer_bytes)
            .write_buffer_size(config.ws_write_buffer_bytes)
            .max_message_size(Some(config.max_frame_bytes))
            .max_frame_size(Some(config.max_frame_bytes));
        let limits = Limits {
            max_text_chars: config.max_text_chars as u32,
            max_frame_bytes: config.max_frame_bytes as u32,
            rate_per_sec: config.rate_per_sec,
            rate_burst: config.rate_burst,
            history_page_max: config.history_page_max as u32,
        };
        let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
        Shared {
            registry: RoomRegistry::new(settings, metrics.clone()),
            metrics,
            draining: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            instance: rand::rng().random(),
            next_member_id: AtomicU64::new(1),
            open_connections: AtomicUsize::new(0),
            ws_config,
            fragment_bytes: (config.ws_write_buffer_bytes / 2).max(1024),
            limits,
            load: LoadSampler::default(),
            connections: TaskTracker::new(),
            conns: Connections::default(),
            password_checks: Semaphore::new(parallelism),
            started: Instant::now(),
            config,
        }
    }

    /// Milliseconds since this backend started (a cheap monotonic clock).
    pub fn clock_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// False once shutdown began.
    pub fn is_ready(&self) -> bool {
        !self.shutdown.is_cancelled()
    }

    /// Takes a connection slot if fewer than `max_connections` are open.
    pub fn reserve_connection(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let max = self.config.max_connections;
        self.open_connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|n| {
                self.metrics.connections.set(n as i64 + 1);
                ConnectionSlot { shared: self.clone() }
            })
    }

    /// Checks a room password on a blocking thread, a few at a time.
    pub async fn verify_password(&self, password: String, hash: String) -> bool {
        let Ok(_permit) = self.password_checks.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || {
            common::password::verify_password(&password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false)
    }
}

/// Serves until `shutdown` resolves, then drains: readiness turns 503, every
/// client gets `closing {reason: "shutdown"}` and close 1001, and the call
/// returns once they are gone or `shutdown_grace_ms` has passed.
pub async fn run(
    listeners: Listeners,
    config: BackendConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::new(config));
    let stop = CancellationToken::new();
    let public_addr = listeners.public.local_addr()?;
    let control_addr = listeners.control.local_addr()?;
    tracing::info!(
        backend = %shared.config.id,
        public = %public_addr,
        control = %control_addr,
        public_url = %shared.config.public_url,
        "backend listening"
    );

    tokio::spawn(http::serve(shared.clone(), listeners.public, stop.clone()));
    tokio::spawn(control::serve(shared.clone(), listeners.control, stop.clone()));
    tokio::spawn(sweep_rooms(shared.clone(), stop.clone()));
    tokio::spawn(connections::heartbeat(shared.clone(), stop.clone()));
    let sampler = shared.clone();
    let sampler_stop = stop.clone();
    tokio::spawn(async move { sampler.load.run(&sampler.metrics, sampler_stop).await });

    shutdown.await;
    tracing::info!(backend = %shared.config.id, "shutting down: closing connections");
    // A connection registers before it checks the token, so each one is
    // either closed here or sees the token itself.
    shared.shutdown.cancel();
    shared.conns.close_all(common::ws::close_code::GOING_AWAY, metrics::Disconnect::Shutdown);
    shared.connections.close();
    let grace = Duration::from_millis(shared.config.shutdown_grace_ms);
    if tokio::time::timeout(grace, shared.connections.wait()).await.is_err() {
        tracing::warn!(
            open = shared.open_connections.load(Ordering::Relaxed),
            "shutdown grace period over; dropping the remaining connections"
        );
    }
    stop.cancel();
    tracing::info!(backend = %shared.config.id, "backend stopped");
    Ok(())
}

/// Accepts connections until `stop` is cancelled, handing each (with
/// TCP_NODELAY set) to `handle` on a task of its own that also ends on `stop`.
async fn accept_loop<F, Fut>(listener: TcpListener, stop: CancellationToken, what: &str, handle: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: back off, don't spin.
                    tracing::warn!(listener = what, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = handle(stream);
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = connection => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

/// Removes idle rooms, checking a few times per idle period.
async fn sweep_rooms(shared: Arc<Shared>, stop: CancellationToken) {
    let idle = Duration::from_secs(shared.config.room_idle_secs);
    let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                shared.registry.sweep_expired(Instant::now());
            }
        }
    }
}
