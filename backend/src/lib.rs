//! The backend: rooms in RAM and the websockets of everyone in them.
//!
//! - [`run`] starts the service on two listeners and stops it on a signal.
//! - [`http`]: the public listener — websocket upgrades, health, metrics.
//! - [`session`]: one websocket connection's task, from upgrade to close:
//!   its [`reader`] half (client frames → room) and [`writer`] half (queue →
//!   socket, and every close); [`batch`] what a writer sends per wake (long
//!   frames as fragments).
//! - [`conn`]: a connection's one handle, [`conn::Conn`] — its bounded,
//!   shared-bytes queue and close/ping flags, held by its task, its room and
//!   the heartbeat; [`disconnect`] why a connection ends (close code, close
//!   text and metric label in one enum).
//! - [`room`]: a room's members, ring buffer and rules; [`ring`] the buffer.
//! - [`registry`]: the rooms by key, expiry, and the removal log.
//! - [`connections`]: every open connection, and the heartbeat that pings,
//!   times out and closes them (connections carry no timers of their own).
//! - [`limits`]: per-connection flood control.
//! - [`bans`]: fleet-wide address bans pushed by aux-srv (room owners' own
//!   bans live with the room, in `room/moderation.rs`).
//! - [`limits`]: per-connection flood control; [`defences`]: the automatic
//!   defences against abuse (per-address limits, password back-off, proof of
//!   work, spam repeats, automatic slow mode).
//! - [`control`]: the control listener for aux-srv.
//! - [`load`]: load figures reported to aux-srv; [`metrics`]: Prometheus.
//! - [`preview`]: asks file-srv for link previews, off the message path.
//!
//! **Room state lives only here, in RAM.** Nothing is written to disk; a
//! restarted backend starts empty, with a new `instance` id.

pub mod bans;
pub mod batch;
pub mod conn;
pub mod connections;
pub mod control;
pub mod defences;
pub mod disconnect;
pub mod http;
pub mod limits;
pub mod load;
pub mod metrics;
pub mod moderation_control;
pub mod moves;
pub mod preview;
pub mod reader;
pub mod registry;
pub mod ring;
pub mod room;
pub mod session;
pub mod writer;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::config::BackendConfig;
use common::net::Rate;
use common::ws::Limits;
use rand::Rng;
use startup::password_pool::{PasswordPool, PasswordPoolError};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connections::Connections;
use crate::disconnect::Disconnect;
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
    /// Websocket connections counted against `max_connections`: a slot is
    /// taken before the upgrade ([`Shared::reserve_connection`]) and freed
    /// when the connection's task ends.
    pub connection_slots: AtomicUsize,
    pub ws_config: WebSocketConfig,
    /// Frames longer than this go out in fragments ([`batch`]).
    pub fragment_bytes: usize,
    /// The limits a `welcome` tells clients.
    pub limits: Limits,
    /// Each connection's message rate (its token bucket's refill and burst).
    pub rate: Rate,
    pub load: LoadSampler,
    /// Websocket connection tasks, awaited on shutdown.
    pub connection_tasks: TaskTracker,
    /// The open websocket connections' handles, watched by the heartbeat.
    pub connections: Connections,
    /// Asks file-srv for link previews, off the message path.
    pub previews: preview::Previewer,
    /// Rooms moving in or out: pending imports, tombstones, frozen rooms.
    pub moves: moves::Moves,
    /// Set on SIGTERM with `evacuate_on_shutdown`: the load report asks
    /// aux-srv to move every room elsewhere.
    pub evacuate: AtomicBool,
    /// aux-srv said the evacuation is over (`EvacuationDone`).
    pub evacuation_done: tokio::sync::Notify,
    /// [`Shared::clock_ms`] of the last load report aux-srv asked for: an
    /// evacuation stops waiting for an aux-srv that does not poll.
    pub last_polled_ms: AtomicU64,
    /// Room-password checks, a few at a time, on threads reusing their memory.
    passwords: PasswordPool,
    /// Fleet-wide address bans (checked at `join`).
    pub ip_bans: bans::IpBans,
    /// The automatic defences against abuse.
    pub defences: Arc<defences::Defences>,
    started: Instant,
}

/// A reserved connection slot; frees itself when dropped.
pub struct ConnectionSlot {
    shared: Arc<Shared>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let open = self.shared.connection_slots.fetch_sub(1, Ordering::AcqRel) - 1;
        self.shared.metrics.connections.set(open as i64);
    }
}

impl Shared {
    fn new(config: BackendConfig) -> std::io::Result<Self> {
        let metrics = Arc::new(Metrics::new(&config.id));
        let settings = RoomSettings {
            max_messages: config.max_messages,
            max_members: config.max_members,
            max_text_chars: config.max_text_chars,
            history_page_max: config.history_page_max,
            idle: Duration::from_secs(config.room_idle_secs),
            silent: Duration::from_secs(config.room_silent_secs),
            max_votes: config.max_votes_per_room,
            arrival: Duration::from_secs(config.move_arrival_secs),
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
        let passwords = PasswordPool::new(
            config.password_checks.concurrent,
            Duration::from_millis(config.password_checks.wait_ms),
        )?;
        let defences = Arc::new(defences::Defences::new(
            &config.defences,
            &config.password_attempts,
            &metrics,
        ));
        Ok(Shared {
            registry: RoomRegistry::new(settings, metrics.clone()),
            metrics,
            draining: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            instance: rand::rng().random(),
            connection_slots: AtomicUsize::new(0),
            ws_config,
            fragment_bytes: (config.ws_write_buffer_bytes / 2).max(1024),
            limits,
            rate: Rate::per_second(config.rate_per_sec, config.rate_burst),
            load: LoadSampler::default(),
            connection_tasks: TaskTracker::new(),
            connections: Connections::default(),
            previews: preview::Previewer::new(&config),
            moves: moves::Moves::default(),
            evacuate: AtomicBool::new(false),
            evacuation_done: tokio::sync::Notify::new(),
            last_polled_ms: AtomicU64::new(0),
            passwords,
            ip_bans: bans::IpBans::default(),
            defences,
            started: Instant::now(),
            config,
        })
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
        self.connection_slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|n| {
                self.metrics.connections.set(n as i64 + 1);
                ConnectionSlot { shared: self.clone() }
            })
    }

    /// Checks a room password on the password pool: `Ok(false)` for a wrong
    /// one (or a malformed stored hash), `Err` when too many checks are
    /// waiting already (the client is told `rate_limited`).
    pub async fn verify_password(
        &self,
        password: String,
        hash: String,
    ) -> Result<bool, PasswordPoolError> {
        match self.passwords.verify(password, hash).await {
            Err(PasswordPoolError::Password(_)) => Ok(false),
            result => result,
        }
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
    common::config::Validate::validate(&config)?;
    let shared = Arc::new(Shared::new(config)?);
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
    if shared.config.allowed_origins.is_empty() && !public_addr.ip().is_loopback() {
        tracing::warn!(
            public = %public_addr,
            "allowed_origins is empty: any page whose Host and Origin name the same host may \
             open websockets here; list the site's origins in production"
        );
    }

    tokio::spawn(http::serve(shared.clone(), listeners.public, stop.clone()));
    tokio::spawn(control::serve(shared.clone(), listeners.control, stop.clone()));
    tokio::spawn(sweep_rooms(shared.clone(), stop.clone()));
    tokio::spawn(connections::heartbeat(shared.clone(), stop.clone()));
    tokio::spawn(defences::sweep(shared.defences.clone(), stop.clone()));
    let sampler = shared.clone();
    let sampler_stop = stop.clone();
    tokio::spawn(async move { sampler.load.run(&sampler.metrics, sampler_stop).await });

    shutdown.await;
    if shared.config.evacuate_on_shutdown && !shared.registry.is_empty() {
        evacuate(&shared).await;
    }
    tracing::info!(backend = %shared.config.id, "shutting down: closing connections");
    // A connection registers before it checks the token, so each one is
    // either closed here or sees the token itself.
    shared.shutdown.cancel();
    shared.connections.close_all(Disconnect::Shutdown);
    shared.connection_tasks.close();
    let grace = Duration::from_millis(shared.config.shutdown_grace_ms);
    if tokio::time::timeout(grace, shared.connection_tasks.wait()).await.is_err() {
        tracing::warn!(
            open = shared.connection_slots.load(Ordering::Relaxed),
            "shutdown grace period over; dropping the remaining connections"
        );
    }
    stop.cancel();
    tracing::info!(backend = %shared.config.id, "backend stopped");
    Ok(())
}

/// How long an evacuation waits for aux-srv's next poll (it polls every
/// `poll_interval_ms`, 2 s by default, sooner after a failure).
const UNPOLLED_GIVE_UP_MS: u64 = 5_000;

/// Asks aux-srv to move every room away (the next load report says
/// `evacuate`), and waits until none is left, aux-srv says it is done, or
/// `evacuate_timeout_ms` passed. Meanwhile the backend serves as usual but
/// takes no new rooms. Without an aux-srv polling, that is the timeout.
async fn evacuate(shared: &Shared) {
    let rooms = shared.registry.len();
    tracing::info!(backend = %shared.config.id, rooms, "shutting down: asking aux-srv to move the rooms away");
    shared.draining.store(true, Ordering::Release);
    let done = shared.evacuation_done.notified();
    shared.evacuate.store(true, Ordering::Release);
    let asked_at = shared.clock_ms();
    let emptied = async {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if shared.registry.is_empty() {
                return;
            }
            // No aux-srv has polled since we asked: nobody will move them.
            let polled = shared.last_polled_ms.load(Ordering::Acquire);
            if polled <= asked_at && shared.clock_ms() > asked_at + UNPOLLED_GIVE_UP_MS {
                tracing::warn!(
                    "no aux-srv polled since the evacuation was asked for; closing the rooms"
                );
                return;
            }
        }
    };
    let timeout = Duration::from_millis(shared.config.evacuate_timeout_ms);
    tokio::select! {
        () = emptied => {}
        () = done => {}
        () = tokio::time::sleep(timeout) => {
            tracing::warn!("evacuation not over after evacuate_timeout_ms; closing what is left");
        }
    }
    tracing::info!(backend = %shared.config.id, left = shared.registry.len(), moved = rooms.saturating_sub(shared.registry.len()), "evacuation over");
}

/// Removes idle rooms, checking a few times per idle period (and settles
/// the arrivals of moved rooms twice per `move_arrival_secs`).
async fn sweep_rooms(shared: Arc<Shared>, stop: CancellationToken) {
    let idle = Duration::from_secs(shared.config.room_idle_secs);
    let arrival = Duration::from_secs(shared.config.move_arrival_secs);
    let every =
        (idle / 4).min(arrival / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                shared.registry.sweep_expired(Instant::now());
                shared.moves.sweep(Instant::now());
                shared.metrics.rooms_frozen.set(shared.moves.frozen_count() as i64);
            }
        }
    }
}
